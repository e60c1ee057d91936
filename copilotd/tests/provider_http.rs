//! HTTP behaviour of the provider client against a raw loopback server:
//! retries and backoff, credentials errors, unreachable hosts, stalls,
//! oversize streams, and configuration checks.

mod provider_support;

use std::time::{Duration, Instant};

use gatehouse_copilotd::provider::{
    MAX_SSE_LINE_BYTES, MAX_STREAM_BYTES, ProtocolError, Provider, ProviderError, ProviderKind,
    WaitingFor,
};
use provider_support::{FAKE_KEY, RawServer, Reply, any_body, config, provider, send_collecting};
use zeroize::Zeroizing;

const OK_STREAM: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"fine\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_then_succeeds() {
    let server = RawServer::start(vec![
        Reply::json(
            429,
            "retry-after: 1\r\n",
            r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        ),
        Reply::sse(OK_STREAM),
    ])
    .await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let started = Instant::now();
    let completion = send_collecting(&provider, &any_body()).await.0.unwrap();
    assert_eq!(completion.text, "fine");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry sends the same bytes"
    );
}

#[tokio::test]
async fn two_500s_then_success() {
    let server = RawServer::start(vec![
        Reply::json(
            500,
            "",
            r#"{"error":{"message":"internal","type":"server_error"}}"#,
        ),
        Reply::json(503, "", "upstream unavailable"),
        Reply::sse(OK_STREAM),
    ])
    .await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let started = Instant::now();
    let completion = send_collecting(&provider, &any_body()).await.0.unwrap();
    assert_eq!(completion.text, "fine");
    // 250 ms then 500 ms of backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn retries_run_out_with_the_last_status_and_what_the_provider_said() {
    let server = RawServer::start(vec![
        Reply::json(
            529,
            "",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        );
        3
    ])
    .await;
    let mut config = config(ProviderKind::Anthropic, server.base_url_anthropic());
    config.max_retries = 2;
    let provider = Provider::new(config).unwrap();
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    match &error {
        ProviderError::Http {
            status,
            body_excerpt,
            attempts,
        } => {
            assert_eq!((*status, *attempts), (529, 3));
            assert_eq!(body_excerpt, "overloaded_error: Overloaded");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn rate_limited_on_every_attempt() {
    let server = RawServer::start(vec![Reply::json(429, "retry-after-ms: 10\r\n", "{}"); 2]).await;
    let mut config = config(ProviderKind::OpenAi, server.base_url_openai());
    config.max_retries = 1;
    let provider = Provider::new(config).unwrap();
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(
        matches!(
            error,
            ProviderError::RateLimited { retry_after: Some(after), attempts: 2 } if after == Duration::from_millis(10)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_401_is_not_retried_and_says_so_clearly() {
    let server = RawServer::start(vec![
        Reply::json(
            401,
            "",
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        ),
        Reply::sse(OK_STREAM),
    ])
    .await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the AI provider refused the credentials (HTTP 401): authentication_error: invalid x-api-key"
    );
    assert!(!error.to_string().contains(FAKE_KEY));
    assert_eq!(server.requests().len(), 1, "401 is never retried");
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let server = RawServer::start(vec![
        Reply::json(400, "", r#"{"error":{"message":"you must provide a model parameter","type":"invalid_request_error"}}"#),
        Reply::sse(OK_STREAM),
    ])
    .await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(
        matches!(&error, ProviderError::Http { status: 400, attempts: 1, body_excerpt } if body_excerpt == "invalid_request_error: you must provide a model parameter"),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn connection_refused_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}/v1");
    let provider = provider(ProviderKind::OpenAi, base);
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot reach the AI provider at http://127.0.0.1:{port}/v1/chat/completions: connection refused"
        )
    );
    assert!(matches!(error, ProviderError::Unreachable { .. }));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = RawServer::start(vec![
        Reply::raw(Vec::new()).then_stall(Duration::from_secs(10)),
    ])
    .await;
    let mut config = config(ProviderKind::OpenAi, server.base_url_openai());
    config.timeout = Duration::from_millis(300);
    let provider = Provider::new(config).unwrap();
    let started = Instant::now();
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(
            error,
            ProviderError::Timeout {
                waiting_for: WaitingFor::ResponseHeaders,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_that_stalls_midway_times_out() {
    let half = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"thinking\"}}]}\n\n";
    let server = RawServer::start(vec![Reply::sse(half).then_stall(Duration::from_secs(10))]).await;
    let mut config = config(ProviderKind::OpenAi, server.base_url_openai());
    config.timeout = Duration::from_millis(300);
    let provider = Provider::new(config).unwrap();
    let (result, deltas) = send_collecting(&provider, &any_body()).await;
    assert_eq!(deltas, ["thinking"]);
    let error = result.unwrap_err();
    assert!(
        matches!(error, ProviderError::Timeout { waiting_for: WaitingFor::StreamData, after } if after == Duration::from_millis(300)),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_oversize_stream_is_cut_off() {
    // Valid keep-alive comments, but more of them than any answer needs.
    let line = format!(": {}\n", "x".repeat(1000));
    let body = line.repeat(MAX_STREAM_BYTES / line.len() + 10);
    let server = RawServer::start(vec![Reply::sse(&body).in_pieces_of(64 * 1024)]).await;
    let provider = provider(ProviderKind::OpenAi, server.base_url_openai());
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(
        matches!(error, ProviderError::Protocol(ProtocolError::StreamTooLarge { limit }) if limit == MAX_STREAM_BYTES),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_oversize_line_is_cut_off() {
    let body = format!("data: {}\n\n", "y".repeat(MAX_SSE_LINE_BYTES + 10));
    let server = RawServer::start(vec![Reply::sse(&body).in_pieces_of(64 * 1024)]).await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(
        matches!(
            error,
            ProviderError::Protocol(ProtocolError::LineTooLong { line: 1, .. })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = RawServer::start(vec![
        Reply::raw(
            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/steal\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
        ),
    ])
    .await;
    let provider = provider(ProviderKind::Anthropic, server.base_url_anthropic());
    let error = send_collecting(&provider, &any_body()).await.0.unwrap_err();
    assert!(
        matches!(error, ProviderError::Http { status: 307, .. }),
        "{error:?}"
    );
}

#[test]
fn configuration_is_checked_up_front() {
    let mut cleartext = config(
        ProviderKind::OpenAi,
        "http://models.example.test/v1".to_owned(),
    );
    assert!(matches!(
        Provider::new(cleartext.clone()),
        Err(ProviderError::CleartextApiKey { .. })
    ));
    cleartext.api_key = None;
    assert!(Provider::new(cleartext).is_ok(), "no key, nothing to leak");

    let local = config(ProviderKind::OpenAi, "http://localhost:11434/v1".to_owned());
    assert!(Provider::new(local).is_ok());
    let local6 = config(ProviderKind::OpenAi, "http://[::1]:8080/v1".to_owned());
    assert!(Provider::new(local6).is_ok());

    let mut bad_key = config(
        ProviderKind::OpenAi,
        "https://api.example.test/v1".to_owned(),
    );
    bad_key.api_key = Some(Zeroizing::new("line\nbreak".to_owned()));
    let error = Provider::new(bad_key).unwrap_err();
    assert!(matches!(error, ProviderError::ApiKeyNotHeaderSafe));
    assert!(!error.to_string().contains("break"));

    let bad_url = config(ProviderKind::Anthropic, "api.anthropic.com".to_owned());
    assert!(matches!(
        Provider::new(bad_url),
        Err(ProviderError::InvalidBaseUrl { .. })
    ));

    let debug = format!(
        "{:?}",
        config(ProviderKind::OpenAi, "https://x.test/v1".to_owned())
    );
    assert!(!debug.contains(FAKE_KEY), "{debug}");
    assert!(debug.contains("<redacted>"));
}
