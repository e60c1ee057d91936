//! The provider client and the scripted provider together, over real HTTP
//! on loopback, in both wire formats: whole conversations with tool calls
//! and results, request validation, error turns and retries, the responder
//! mode, and byte-exact recording of what the provider received.

mod provider_support;

use gatehouse_copilotd::provider::{
    ChatRequest, Message, Provider, ProviderError, ProviderKind, StopReason, ToolCall, ToolSpec,
};
use gatehouse_labprovider::{ScriptedProvider, Turn, last_tool_result};
use provider_support::{config, send_collecting};
use serde_json::{Value, json};

const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAi, ProviderKind::Anthropic];

fn base_url(server: &ScriptedProvider, kind: ProviderKind) -> String {
    match kind {
        ProviderKind::OpenAi => server.base_url_openai(),
        ProviderKind::Anthropic => server.base_url_anthropic(),
    }
}

fn client(server: &ScriptedProvider, kind: ProviderKind) -> Provider {
    Provider::new(config(kind, base_url(server, kind))).unwrap()
}

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "run_command".to_owned(),
        description: "Propose a command to run on a device (approval-gated).".to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {"device": {"type": "string"}, "command": {"type": "string"}},
            "required": ["device", "command"],
        }),
    }]
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        system: "You are a careful network engineer.".to_owned(),
        messages,
        tools: tools(),
        max_tokens: 512,
    }
}

#[tokio::test]
async fn a_conversation_with_parallel_tool_calls_round_trips_in_both_formats() {
    for kind in KINDS {
        let server = ScriptedProvider::start(vec![
            Turn::TextThenToolCalls(
                "Checking both uplinks — ünïcode and all.".to_owned(),
                vec![
                    (
                        "run_command".to_owned(),
                        json!({"device": "edge-1", "command": "show interface Gi0/1"}),
                    ),
                    (
                        "run_command".to_owned(),
                        json!({"device": "edge-2", "command": "show interface Gi0/2"}),
                    ),
                ],
            ),
            Turn::Text("Both uplinks are up.".to_owned()),
        ])
        .await
        .unwrap();
        let provider = client(&server, kind);

        let mut messages = vec![Message::user("Are the uplinks up?")];
        let first_body = provider.request_body(&request(messages.clone()));
        let (first, deltas) = send_collecting(&provider, &first_body).await;
        let first = first.unwrap();
        assert_eq!(
            deltas.concat(),
            "Checking both uplinks — ünïcode and all.",
            "{kind:?}"
        );
        assert!(deltas.len() > 3, "text arrives in pieces ({kind:?})");
        assert_eq!(first.stop, StopReason::ToolUse);
        let prefix = match kind {
            ProviderKind::OpenAi => "call_",
            ProviderKind::Anthropic => "toolu_",
        };
        let ids: Vec<_> = first.tool_calls.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, [format!("{prefix}1"), format!("{prefix}2")]);
        assert_eq!(
            first.tool_calls[1].arguments["command"],
            "show interface Gi0/2"
        );
        assert!(first.usage.input_tokens > 0 && first.usage.output_tokens > 0);

        messages.push(Message::assistant(
            first.text.clone(),
            first.tool_calls.clone(),
        ));
        for call in &first.tool_calls {
            messages.push(Message::tool_result(
                &call.id,
                format!("{}: up/up", call.arguments["device"]),
            ));
        }
        let second_body = provider.request_body(&request(messages));
        let (second, _) = send_collecting(&provider, &second_body).await;
        let second = second.unwrap();
        assert_eq!(second.text, "Both uplinks are up.");
        assert_eq!(second.stop, StopReason::EndTurn);
        assert!(second.tool_calls.is_empty());

        let received = server.received();
        assert_eq!(received.len(), 2);
        assert_eq!(
            received[0],
            serde_json::to_vec(&first_body).unwrap(),
            "byte for byte"
        );
        assert_eq!(received[1], serde_json::to_vec(&second_body).unwrap());
        server.shutdown();
    }
}

#[test]
fn request_bodies_have_the_documented_shapes() {
    let calls = vec![ToolCall {
        id: "id_1".to_owned(),
        name: "run_command".to_owned(),
        arguments: json!({"device": "edge-1", "command": "show version"}),
    }];
    let req = request(vec![
        Message::user("hi"),
        Message::assistant("", calls),
        Message::tool_result("id_1", "IOS 17"),
    ]);
    let openai = Provider::new(config(
        ProviderKind::OpenAi,
        "https://api.example.test/v1".into(),
    ))
    .unwrap()
    .request_body(&req);
    assert_eq!(
        openai,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are a careful network engineer."},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "id_1", "type": "function", "function": {
                        "name": "run_command",
                        "arguments": "{\"command\":\"show version\",\"device\":\"edge-1\"}",
                    }},
                ]},
                {"role": "tool", "tool_call_id": "id_1", "content": "IOS 17"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 512,
            "tools": [{"type": "function", "function": {
                "name": "run_command",
                "description": "Propose a command to run on a device (approval-gated).",
                "parameters": tools()[0].parameters,
            }}],
        })
    );
    let anthropic = Provider::new(config(
        ProviderKind::Anthropic,
        "https://api.example.test".into(),
    ))
    .unwrap()
    .request_body(&req);
    assert_eq!(
        anthropic,
        json!({
            "model": "test-model",
            "max_tokens": 512,
            "system": "You are a careful network engineer.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "id_1", "name": "run_command",
                     "input": {"device": "edge-1", "command": "show version"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "id_1", "content": "IOS 17"},
                ]},
            ],
            "stream": true,
            "tools": [{
                "name": "run_command",
                "description": "Propose a command to run on a device (approval-gated).",
                "input_schema": tools()[0].parameters,
            }],
        })
    );
}

#[tokio::test]
async fn the_provider_receives_exactly_the_redacted_body() {
    const CANARY: &str = "CANARY-enable-secret-5f1d";
    for kind in KINDS {
        let server = ScriptedProvider::start(vec![Turn::Text("ok".to_owned())])
            .await
            .unwrap();
        let provider = client(&server, kind);
        let body = provider.request_body(&request(vec![Message::user(format!(
            "config has enable secret {CANARY}"
        ))]));
        // The caller's redaction step, on the exact body.
        let redacted: Value =
            serde_json::from_str(&body.to_string().replace(CANARY, "[REDACTED]")).unwrap();
        send_collecting(&provider, &redacted).await.0.unwrap();
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert!(
            !String::from_utf8_lossy(&received[0]).contains(CANARY),
            "the provider never received the canary ({kind:?})"
        );
        assert_eq!(received[0], serde_json::to_vec(&redacted).unwrap());
    }
}

#[tokio::test]
async fn client_bugs_get_a_400_like_a_real_provider_and_consume_no_turn() {
    for kind in KINDS {
        let server = ScriptedProvider::start(vec![Turn::Text("still here".to_owned())])
            .await
            .unwrap();
        let provider = client(&server, kind);
        let good = provider.request_body(&request(vec![Message::user("hi")]));

        let mut no_model = good.clone();
        no_model.as_object_mut().unwrap().remove("model");
        let error = send_collecting(&provider, &no_model).await.0.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Http { status: 400, attempts: 1, body_excerpt } if body_excerpt == "invalid_request_error: you must provide a model parameter"),
            "{kind:?}: {error:?}"
        );

        // A tool result answering a call that was never made.
        let orphan = provider.request_body(&request(vec![
            Message::user("hi"),
            Message::tool_result("call_999", "nothing"),
        ]));
        let error = send_collecting(&provider, &orphan).await.0.unwrap_err();
        let ProviderError::Http {
            status: 400,
            body_excerpt,
            ..
        } = &error
        else {
            panic!("{kind:?}: {error:?}");
        };
        assert!(
            body_excerpt.contains("call_999"),
            "{kind:?}: {body_excerpt}"
        );

        // A tool call left unanswered.
        let unanswered = provider.request_body(&request(vec![
            Message::user("hi"),
            Message::assistant(
                "",
                vec![ToolCall {
                    id: "call_7".into(),
                    name: "run_command".into(),
                    arguments: json!({}),
                }],
            ),
            Message::user("never mind"),
        ]));
        let error = send_collecting(&provider, &unanswered).await.0.unwrap_err();
        let ProviderError::Http {
            status: 400,
            body_excerpt,
            ..
        } = &error
        else {
            panic!("{kind:?}: {error:?}");
        };
        assert!(body_excerpt.contains("call_7"), "{kind:?}: {body_excerpt}");

        let mut malformed = good.clone();
        malformed["messages"] = json!([{"role": "wizard", "content": "hi"}]);
        let error = send_collecting(&provider, &malformed).await.0.unwrap_err();
        assert!(
            matches!(error, ProviderError::Http { status: 400, .. }),
            "{kind:?}: {error:?}"
        );

        let mut bad_tool = good.clone();
        match kind {
            ProviderKind::OpenAi => {
                bad_tool["tools"][0]["function"]["name"] = json!("run command!")
            }
            ProviderKind::Anthropic => bad_tool["tools"][0]["name"] = json!("run command!"),
        }
        let error = send_collecting(&provider, &bad_tool).await.0.unwrap_err();
        assert!(
            matches!(error, ProviderError::Http { status: 400, .. }),
            "{kind:?}: {error:?}"
        );

        // None of that consumed the turn.
        let completion = send_collecting(&provider, &good).await.0.unwrap();
        assert_eq!(completion.text, "still here");
        assert_eq!(server.received().len(), 6);

        // The script is used up now.
        let error = send_collecting(&provider, &good).await.0.unwrap_err();
        let ProviderError::Http {
            status: 400,
            body_excerpt,
            ..
        } = &error
        else {
            panic!("{kind:?}: {error:?}");
        };
        assert!(body_excerpt.contains("no turn left"), "{body_excerpt}");
    }
}

#[tokio::test]
async fn openai_arguments_sent_as_an_object_are_rejected() {
    let server = ScriptedProvider::start(vec![]).await.unwrap();
    let provider = client(&server, ProviderKind::OpenAi);
    let mut body = provider.request_body(&request(vec![
        Message::user("hi"),
        Message::assistant(
            "",
            vec![ToolCall {
                id: "call_1".into(),
                name: "run_command".into(),
                arguments: json!({"a": 1}),
            }],
        ),
        Message::tool_result("call_1", "done"),
    ]));
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = json!({"a": 1});
    let error = send_collecting(&provider, &body).await.0.unwrap_err();
    let ProviderError::Http {
        status: 400,
        body_excerpt,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(
        body_excerpt.contains("expected a string, but got an object"),
        "{body_excerpt}"
    );
}

#[tokio::test]
async fn anthropic_requests_need_the_version_header() {
    let server = ScriptedProvider::start(vec![Turn::Text("x".into())])
        .await
        .unwrap();
    let body = json!({"model": "m", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    gatehouse_copilotd::install_tls_provider();
    let status = reqwest::Client::new()
        .post(format!("{}/v1/messages", server.base_url_anthropic()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn error_turns_are_retried_like_real_failures() {
    for kind in KINDS {
        let server = ScriptedProvider::start(vec![
            Turn::Error {
                status: 500,
                body: r#"{"error":{"message":"boom","type":"server_error"}}"#.into(),
            },
            Turn::Error {
                status: 429,
                body: r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#.into(),
            },
            Turn::Text("recovered".into()),
        ])
        .await
        .unwrap();
        let provider = client(&server, kind);
        let body = provider.request_body(&request(vec![Message::user("hi")]));
        let completion = send_collecting(&provider, &body).await.0.unwrap();
        assert_eq!(completion.text, "recovered", "{kind:?}");
        assert_eq!(server.received().len(), 3);

        let server = ScriptedProvider::start(vec![Turn::Error {
            status: 401,
            body: r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#.into(),
        }])
        .await
        .unwrap();
        let provider = client(&server, kind);
        let error = send_collecting(&provider, &body).await.0.unwrap_err();
        assert!(
            matches!(error, ProviderError::Auth { status: 401, .. }),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_responder_answers_from_the_last_tool_result() {
    for kind in KINDS {
        let server = ScriptedProvider::start_with(|body| match last_tool_result(body) {
            None => Turn::ToolCalls(vec![(
                "run_command".to_owned(),
                json!({"device": "core-1", "command": "show ip route 0.0.0.0"}),
            )]),
            Some(result) if result.contains("via 10.0.0.1") => {
                Turn::Text("The default route points at 10.0.0.1.".to_owned())
            }
            Some(other) => Turn::Text(format!("Unexpected output: {other}")),
        })
        .await
        .unwrap();
        let provider = client(&server, kind);
        let mut messages = vec![Message::user("Where does the default route point?")];
        let first = send_collecting(
            &provider,
            &provider.request_body(&request(messages.clone())),
        )
        .await
        .0
        .unwrap();
        assert_eq!(first.tool_calls.len(), 1, "{kind:?}");
        messages.push(Message::assistant(
            first.text.clone(),
            first.tool_calls.clone(),
        ));
        messages.push(Message::tool_result(
            &first.tool_calls[0].id,
            "S* 0.0.0.0/0 [1/0] via 10.0.0.1",
        ));
        let second = send_collecting(&provider, &provider.request_body(&request(messages)))
            .await
            .0
            .unwrap();
        assert_eq!(second.text, "The default route points at 10.0.0.1.");
    }
}

#[tokio::test]
async fn malformed_json_and_unknown_paths_get_provider_style_errors() {
    let server = ScriptedProvider::start(vec![]).await.unwrap();
    gatehouse_copilotd::install_tls_provider();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/chat/completions", server.base_url_openai()))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let response = http
        .post(format!("{}/v1/completions", server.base_url_anthropic()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.received(), vec![b"{\"model\": ".to_vec()]);
}

#[tokio::test]
async fn a_send_can_run_on_another_task() {
    fn assert_send<T: Send>(value: T) -> T {
        value
    }
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Provider>();
    assert_send_sync::<ScriptedProvider>();

    let server = ScriptedProvider::start(vec![Turn::Text("from a task".into())])
        .await
        .unwrap();
    let provider = std::sync::Arc::new(client(&server, ProviderKind::OpenAi));
    let body = provider.request_body(&request(vec![Message::user("hi")]));
    let task = tokio::spawn(assert_send(async move {
        let mut pieces = 0;
        let completion = provider.send(&body, &mut |_| pieces += 1).await;
        (completion, pieces)
    }));
    let (completion, pieces) = task.await.unwrap();
    assert_eq!(completion.unwrap().text, "from a task");
    assert!(pieces > 1);
}
