//! The OpenAI Chat Completions client against hand-written, byte-exact
//! streams in the documented format (the API reference's chunk example, the
//! function-calling guide's fragment sequence, the `include_usage` trailer),
//! replayed by a raw TCP server, so the parser is checked against the real
//! format and not only against our own scripted server.

mod provider_support;

use gatehouse_copilotd::provider::{ProtocolError, ProviderError, ProviderKind, StopReason};
use provider_support::{RawServer, Reply, any_body, provider, send_collecting};
use serde_json::json;

/// The API reference's chat.completion.chunk example, filled in, plus the
/// usage chunk `stream_options.include_usage` adds before `[DONE]`.
const TEXT_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\" How can I assist you\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\" today?\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
    "data: [DONE]\n\n",
);

/// Two parallel calls, fragments as the function-calling guide shows them
/// (id, type and name only in each call's first fragment; explicit nulls
/// elsewhere, as the API sends them), arguments split mid-token.
const PARALLEL_TOOL_CALLS_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,\"tool_calls\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_DdmO9pD3xa9XTPNJ32zg2hcA\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":null,\"type\":null,\"function\":{\"name\":null,\"arguments\":\"{\\\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"location\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":\\\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"Paris\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\",\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\" France\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_3pQ7x0VQf0nLsNf2Y5wJ1abc\",\"type\":\"function\",\"function\":{\"name\":\"show_interface\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"na\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"me\\\": \\\"Gi0/1\\\", \\\"det\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"ail\\\": true}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1723000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[],\"usage\":{\"prompt_tokens\":82,\"completion_tokens\":41,\"total_tokens\":123,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
);

#[tokio::test]
async fn text_deltas_arrive_in_order_and_usage_is_counted() {
    // Written 7 bytes at a time so events straddle reads.
    let server = RawServer::start(vec![Reply::sse(TEXT_STREAM).in_pieces_of(7)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    let completion = result.unwrap();
    assert_eq!(deltas, ["Hello", "!", " How can I assist you", " today?"]);
    assert_eq!(completion.text, "Hello! How can I assist you today?");
    assert!(completion.tool_calls.is_empty());
    assert_eq!(completion.stop, StopReason::EndTurn);
    assert_eq!(completion.usage.input_tokens, 9);
    assert_eq!(completion.usage.output_tokens, 12);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.request_line(), "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer test-key-not-a-real-secret")
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(request.body, serde_json::to_vec(&any_body()).unwrap());
}

#[tokio::test]
async fn parallel_tool_calls_are_assembled_from_fragments() {
    let server = RawServer::start(vec![
        Reply::sse(PARALLEL_TOOL_CALLS_STREAM).in_pieces_of(13),
    ])
    .await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    let completion = result.unwrap();
    assert!(deltas.is_empty());
    assert_eq!(completion.stop, StopReason::ToolUse);
    assert_eq!(completion.tool_calls.len(), 2);
    assert_eq!(completion.tool_calls[0].id, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    assert_eq!(completion.tool_calls[0].name, "get_weather");
    assert_eq!(
        completion.tool_calls[0].arguments,
        json!({"location": "Paris, France"})
    );
    assert_eq!(completion.tool_calls[1].id, "call_3pQ7x0VQf0nLsNf2Y5wJ1abc");
    assert_eq!(completion.tool_calls[1].name, "show_interface");
    assert_eq!(
        completion.tool_calls[1].arguments,
        json!({"name": "Gi0/1", "detail": true})
    );
    assert_eq!(completion.usage.input_tokens, 82);
    assert_eq!(completion.usage.output_tokens, 41);
}

#[tokio::test]
async fn ollama_style_whole_calls_without_index_are_accepted() {
    // Older Ollama releases send each call whole, without `index`, and
    // finish with "stop".
    let stream = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama3.1\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"ping\",\"arguments\":\"{\\\"host\\\":\\\"10.0.0.1\\\"}\"}},{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"ping\",\"arguments\":\"{\\\"host\\\":\\\"10.0.0.2\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama3.1\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let completion = send_collecting(&provider, &any_body()).await.0.unwrap();
    assert_eq!(completion.stop, StopReason::ToolUse);
    let hosts: Vec<_> = completion
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.arguments["host"].as_str().unwrap()))
        .collect();
    assert_eq!(hosts, [("call_a", "10.0.0.1"), ("call_b", "10.0.0.2")]);
}

#[tokio::test]
async fn a_stream_closed_before_done_is_truncated() {
    let cut = TEXT_STREAM.replace("data: [DONE]\n\n", "");
    let server = RawServer::start(vec![Reply::sse(&cut)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    assert_eq!(deltas.len(), 4, "what arrived was still streamed");
    match result {
        Err(ProviderError::Protocol(ProtocolError::Truncated { expected, events })) => {
            assert_eq!(expected, "data: [DONE]");
            assert_eq!(events, 7);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stream_cut_mid_event_is_truncated() {
    let cut = &TEXT_STREAM[..TEXT_STREAM.len() / 2];
    let server = RawServer::start(vec![Reply::sse(cut)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    assert!(
        matches!(
            result,
            Err(ProviderError::Protocol(ProtocolError::Truncated { .. }))
                | Err(ProviderError::Protocol(ProtocolError::InvalidJson { .. }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn garbage_lines_are_a_protocol_error_naming_the_line() {
    let stream = format!(
        "{}<html><body>502 Bad Gateway</body></html>\n\n",
        &TEXT_STREAM[..TEXT_STREAM.find("data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\", \"system_fingerprint\": \"fp_44709d6fcb\", \"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"}").unwrap()]
    );
    let server = RawServer::start(vec![Reply::sse(&stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    assert_eq!(deltas, ["Hello"]);
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed response from the AI provider: line 5 is not a server-sent-events field: \"<html><body>502 Bad Gateway</body></html>\""
    );
}

#[tokio::test]
async fn invalid_json_in_a_chunk_names_the_event() {
    let stream = "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"unterminated\n\n";
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Protocol(ProtocolError::InvalidJson { event, what, .. })) => {
            assert_eq!(event, 2);
            assert_eq!(what, "chat.completion.chunk");
        }
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

#[tokio::test]
async fn a_chunk_of_the_wrong_shape_is_named() {
    let stream =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":42}}]}\n\ndata: [DONE]\n\n";
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    assert!(
        matches!(
            result,
            Err(ProviderError::Protocol(ProtocolError::UnexpectedShape {
                event: 1,
                ..
            }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn arguments_that_are_not_json_are_a_protocol_error_naming_the_call() {
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_x\",\"type\":\"function\",\"function\":{\"name\":\"ping\",\"arguments\":\"{\\\"host\\\": \"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Protocol(ProtocolError::InvalidToolArguments { id, name, .. })) => {
            assert_eq!((id.as_str(), name.as_str()), ("call_x", "ping"));
        }
        other => panic!("expected InvalidToolArguments, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_chunk_mid_stream_is_reported() {
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Remote { kind, message }) => {
            assert_eq!(kind, "server_error");
            assert_eq!(
                message,
                "The server had an error while processing your request."
            );
        }
        other => panic!("expected Remote, got {other:?}"),
    }
}

#[tokio::test]
async fn a_json_body_with_status_200_is_not_an_event_stream() {
    let server = RawServer::start(vec![Reply::json(200, "", "{\"choices\":[]}")]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    assert!(
        matches!(
            result,
            Err(ProviderError::Protocol(ProtocolError::NotAnEventStream { ref content_type })) if content_type == "application/json"
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn no_key_means_no_authorization_header() {
    let server = RawServer::start(vec![Reply::sse(TEXT_STREAM)]).await;
    let mut config = provider_support::config(ProviderKind::OpenAi, server.base_url_openai());
    config.api_key = None;
    let provider = gatehouse_copilotd::provider::Provider::new(config).unwrap();
    send_collecting(&provider, &any_body()).await.0.unwrap();
    assert_eq!(server.requests()[0].header("authorization"), None);
}
