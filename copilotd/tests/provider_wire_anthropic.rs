//! The Anthropic Messages client against hand-written, byte-exact streams
//! copied from Anthropic's "Streaming Messages" documentation (the basic
//! text stream and the tool-use stream, pings included), replayed by a raw
//! TCP server.

mod provider_support;

use gatehouse_copilotd::provider::{ProtocolError, ProviderError, ProviderKind, StopReason};
use provider_support::{FAKE_KEY, RawServer, Reply, any_body, provider, send_collecting};
use serde_json::json;

/// "Basic streaming request" response, verbatim.
const BASIC_TEXT_STREAM: &str = "event: message_start
data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-opus-4-1-20250805\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}

event: content_block_start
data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}

event: ping
data: {\"type\": \"ping\"}

event: content_block_delta
data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}

event: content_block_delta
data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"!\"}}

event: content_block_stop
data: {\"type\": \"content_block_stop\", \"index\": 0}

event: message_delta
data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}

event: message_stop
data: {\"type\": \"message_stop\"}

";

/// "Streaming request with tool use" response, verbatim.
const TOOL_USE_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" let"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'s"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" for"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" Francisco"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" CA"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":":"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"unit\": \"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}
"#;

#[tokio::test]
async fn basic_text_stream_from_the_docs() {
    let server = RawServer::start(vec![Reply::sse(BASIC_TEXT_STREAM).in_pieces_of(5)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    let completion = result.unwrap();
    assert_eq!(deltas, ["Hello", "!"]);
    assert_eq!(completion.text, "Hello!");
    assert_eq!(completion.stop, StopReason::EndTurn);
    assert_eq!(completion.usage.input_tokens, 25);
    assert_eq!(completion.usage.output_tokens, 15);

    let request = &server.requests()[0];
    assert_eq!(request.request_line(), "POST /v1/messages HTTP/1.1");
    assert_eq!(request.header("x-api-key").as_deref(), Some(FAKE_KEY));
    assert_eq!(
        request.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn tool_use_stream_from_the_docs() {
    // The doc's stream ends without a blank line after message_stop: the
    // last event still counts when the connection closes.
    let server = RawServer::start(vec![Reply::sse(TOOL_USE_STREAM).in_pieces_of(11)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    let completion = result.unwrap();
    assert_eq!(deltas.len(), 13);
    assert_eq!(deltas.first().map(String::as_str), Some("Okay"));
    assert_eq!(
        completion.text,
        "Okay, let's check the weather for San Francisco, CA:"
    );
    assert_eq!(completion.stop, StopReason::ToolUse);
    assert_eq!(completion.tool_calls.len(), 1);
    let call = &completion.tool_calls[0];
    assert_eq!(call.id, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(call.name, "get_weather");
    assert_eq!(
        call.arguments,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(completion.usage.input_tokens, 472);
    assert_eq!(completion.usage.output_tokens, 89);
}

#[tokio::test]
async fn parallel_tool_uses_and_a_tool_without_input() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"list_devices\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"show_interface\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"name\\\": \\\"Gi\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"0/1\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":30}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let completion = send_collecting(&provider, &any_body()).await.0.unwrap();
    let calls: Vec<_> = completion
        .tool_calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("toolu_a", "list_devices", json!({})),
            ("toolu_b", "show_interface", json!({"name": "Gi0/1"})),
        ]
    );
}

#[tokio::test]
async fn unknown_events_and_thinking_blocks_are_skipped() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: some_future_event\ndata: {\"type\":\"some_future_event\",\"x\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    let completion = result.unwrap();
    assert_eq!(deltas, ["42"]);
    assert_eq!(completion.text, "42");
    assert_eq!(completion.stop, StopReason::MaxTokens);
}

#[tokio::test]
async fn an_error_event_is_reported() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Remote { kind, message }) => {
            assert_eq!(
                (kind.as_str(), message.as_str()),
                ("overloaded_error", "Overloaded")
            );
        }
        other => panic!("expected Remote, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stream_closed_before_message_stop_is_truncated() {
    let cut = &TOOL_USE_STREAM[..TOOL_USE_STREAM.find("event: message_delta").unwrap()];
    let server = RawServer::start(vec![Reply::sse(cut)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Protocol(ProtocolError::Truncated { expected, .. })) => {
            assert_eq!(expected, "event: message_stop");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[tokio::test]
async fn events_out_of_order_are_named() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
    );
    let server = RawServer::start(vec![Reply::sse(stream)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed response from the AI provider: event 2 (content_block_delta) does not have the expected shape: delta for content block 3, which never started"
    );
}

#[tokio::test]
async fn partial_json_that_never_closes_is_a_protocol_error() {
    let cut = TOOL_USE_STREAM.replace("renheit\\\"}", "renheit\\\"");
    let server = RawServer::start(vec![Reply::sse(&cut)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let (result, _) = send_collecting(&provider, &any_body()).await;
    match result {
        Err(ProviderError::Protocol(ProtocolError::InvalidToolArguments { id, name, .. })) => {
            assert_eq!(
                (id.as_str(), name.as_str()),
                ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
            );
        }
        other => panic!("expected InvalidToolArguments, got {other:?}"),
    }
}
