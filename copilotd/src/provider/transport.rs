//! HTTP for the provider clients: endpoint URLs, the reqwest client, auth
//! headers, retries with backoff, timeouts, and pumping a streamed body
//! through the SSE decoder into a wire assembler.
//!
//! Owns: which failures are retried (429 and 5xx, before any byte of a
//! stream was consumed) and how long to wait (250 ms doubling, capped at
//! 8 s; a `retry-after`/`retry-after-ms` header wins, capped at 30 s), and
//! turning reqwest errors into precise `ProviderError`s.
//! Must never: retry after streaming started, follow a redirect, read an
//! unbounded body, or put the API key anywhere but its header (marked
//! sensitive).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use zeroize::Zeroizing;

use super::anthropic;
use super::error::{ProtocolError, ProviderError, WaitingFor};
use super::openai;
use super::sse::SseDecoder;
use super::{Completion, Delta, Provider, ProviderKind};

const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How much of an error response is read for its excerpt.
const ERROR_BODY_READ_LIMIT: usize = 16 * 1024;
/// How much of it is shown.
const ERROR_EXCERPT_CHARS: usize = 300;

/// The request URL for `kind` under `base_url` (query string kept).
pub(super) fn endpoint(kind: ProviderKind, base_url: &str) -> Result<reqwest::Url, ProviderError> {
    let invalid = |reason: &str| ProviderError::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url = reqwest::Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(invalid("there is no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not accepted; configure the API key instead",
        ));
    }
    let suffix = match kind {
        ProviderKind::OpenAi => "/chat/completions",
        ProviderKind::Anthropic => "/v1/messages",
    };
    let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    Ok(url)
}

pub(super) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

pub(super) fn client(
    endpoint: &reqwest::Url,
    timeout: Duration,
    default_headers: HeaderMap,
) -> Result<reqwest::Client, ProviderError> {
    crate::install_tls_provider();
    let mut builder = reqwest::Client::builder()
        .default_headers(default_headers)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse-copilotd/", env!("CARGO_PKG_VERSION")));
    if is_loopback(endpoint) {
        // A local model server is never behind the environment's proxy.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| ProviderError::ClientSetup(error_chain(&e)))
}

fn headers(provider: &Provider) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let secret = |text: &str| {
        // Checked in `Provider::new`; a failure here would only drop the header.
        HeaderValue::from_str(text).ok().map(|mut value| {
            value.set_sensitive(true);
            value
        })
    };
    match provider.kind {
        ProviderKind::OpenAi => {
            if let Some(key) = &provider.api_key {
                let bearer = Zeroizing::new(format!("Bearer {}", key.as_str()));
                if let Some(value) = secret(&bearer) {
                    headers.insert(AUTHORIZATION, value);
                }
            }
        }
        ProviderKind::Anthropic => {
            if let Some(value) = provider.api_key.as_ref().and_then(|key| secret(key)) {
                headers.insert(HeaderName::from_static("x-api-key"), value);
            }
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(anthropic::API_VERSION),
            );
        }
    }
    headers
}

/// POSTs `body` until a success status, a non-retryable failure, or the
/// retries run out.
pub(super) async fn post_with_retries(
    provider: &Provider,
    body: Vec<u8>,
) -> Result<reqwest::Response, ProviderError> {
    let url = provider.endpoint.as_str();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let request = provider
            .http
            .post(provider.endpoint.clone())
            .headers(headers(provider))
            .body(body.clone());
        let response = match tokio::time::timeout(provider.timeout, request.send()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    after: provider.timeout,
                    waiting_for: WaitingFor::ResponseHeaders,
                });
            }
            Ok(Err(e)) => return Err(send_error(provider, &e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let body_excerpt = error_excerpt(provider, response).await;
        let may_retry = attempt <= provider.max_retries;
        let wait = match status {
            401 | 403 => {
                return Err(ProviderError::Auth {
                    status,
                    body_excerpt,
                });
            }
            429 if may_retry => {
                retry_after.map_or_else(|| backoff(attempt), |after| after.min(MAX_RETRY_AFTER))
            }
            429 => {
                return Err(ProviderError::RateLimited {
                    retry_after,
                    attempts: attempt,
                });
            }
            500..=599 if may_retry => backoff(attempt),
            _ => {
                return Err(ProviderError::Http {
                    status,
                    body_excerpt,
                    attempts: attempt,
                });
            }
        };
        tracing::warn!(
            %url, status, attempt, wait_ms = wait.as_millis() as u64, provider_said = %body_excerpt,
            "AI provider request failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// 250 ms, 500 ms, 1 s, … capped at `MAX_BACKOFF`, for the retry after
/// failed attempt number `attempt` (1-based).
fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    INITIAL_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF)
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; HTTP dates are
/// not honoured (the backoff applies instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value = headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(
            (ms / 1000.0).min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    number("retry-after")
        .map(|secs| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// A short, single-line account of an error response: the provider's own
/// `error.type: error.message` when it sent JSON, else the start of the body.
async fn error_excerpt(provider: &Provider, mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_READ_LIMIT {
        match tokio::time::timeout(provider.timeout, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
            Ok(Ok(None)) => break,
            Ok(Err(_)) | Err(_) => {
                if body.is_empty() {
                    return "(the error body could not be read)".to_owned();
                }
                break;
            }
        }
    }
    body.truncate(ERROR_BODY_READ_LIMIT);
    let text = String::from_utf8_lossy(&body);
    if let Ok(json) = serde_json::from_str::<Value>(&text) {
        let error = json.get("error").unwrap_or(&json);
        if let Some(message) = error.get("message").and_then(Value::as_str) {
            let kind = error.get("type").and_then(Value::as_str);
            let described = match kind {
                Some(kind) => format!("{kind}: {message}"),
                None => message.to_owned(),
            };
            return one_line(&described);
        }
    }
    if text.trim().is_empty() {
        return "(empty body)".to_owned();
    }
    one_line(&text)
}

fn one_line(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = collapsed.chars().take(ERROR_EXCERPT_CHARS).collect();
    if collapsed.chars().nth(ERROR_EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

fn send_error(provider: &Provider, error: &reqwest::Error) -> ProviderError {
    if error.is_timeout() && !error.is_connect() {
        return ProviderError::Timeout {
            after: provider.timeout,
            waiting_for: WaitingFor::ResponseHeaders,
        };
    }
    let reason = if error.is_timeout() {
        format!("connecting timed out after {:?}", provider.timeout)
    } else {
        error_chain(error)
    };
    ProviderError::Unreachable {
        url: provider.endpoint.to_string(),
        reason,
    }
}

/// The most specific cause of `error`: the I/O error kind when there is one
/// ("connection refused"), else the innermost message.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    let mut io_kind = None;
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = err;
        current = err.source();
    }
    match io_kind {
        Some(kind) if kind != std::io::ErrorKind::Other => kind.to_string(),
        _ => innermost.to_string(),
    }
}

enum Assembler {
    OpenAi(openai::ChunkAssembler),
    Anthropic(anthropic::EventAssembler),
}

/// Reads the streamed body to its terminal event and assembles the turn.
pub(super) async fn read_stream(
    provider: &Provider,
    mut response: reqwest::Response,
    on_delta: &mut (dyn FnMut(Delta) + Send),
) -> Result<Completion, ProviderError> {
    if let Some(content_type) = response.headers().get(CONTENT_TYPE) {
        let content_type = String::from_utf8_lossy(content_type.as_bytes()).into_owned();
        if !content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(ProtocolError::NotAnEventStream { content_type }.into());
        }
    }
    let (mut assembler, terminal) = match provider.kind {
        ProviderKind::OpenAi => (
            Assembler::OpenAi(openai::ChunkAssembler::default()),
            openai::TERMINAL,
        ),
        ProviderKind::Anthropic => (
            Assembler::Anthropic(anthropic::EventAssembler::default()),
            anthropic::TERMINAL,
        ),
    };
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(provider.timeout, response.chunk()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    after: provider.timeout,
                    waiting_for: WaitingFor::StreamData,
                });
            }
            Ok(Err(e)) if e.is_timeout() => {
                return Err(ProviderError::Timeout {
                    after: provider.timeout,
                    waiting_for: WaitingFor::StreamData,
                });
            }
            Ok(Err(e)) => {
                return Err(ProtocolError::Interrupted {
                    reason: format!(
                        "{} (after {} event(s), before {terminal})",
                        error_chain(&e),
                        decoder.events_dispatched()
                    ),
                }
                .into());
            }
            Ok(Ok(chunk)) => chunk,
        };
        let ended = chunk.is_none();
        // Events decoded before a bad line still count; the error comes after.
        let decoded = match chunk {
            Some(chunk) => decoder.feed(&chunk, &mut events),
            None => decoder.finish(&mut events),
        };
        for event in events.drain(..) {
            let done = match &mut assembler {
                Assembler::OpenAi(a) => a.on_event(&event, on_delta)?,
                Assembler::Anthropic(a) => a.on_event(&event, on_delta)?,
            };
            if done {
                return match assembler {
                    Assembler::OpenAi(a) => a.finish(),
                    Assembler::Anthropic(a) => a.finish(),
                };
            }
        }
        decoded?;
        if ended {
            return Err(ProtocolError::Truncated {
                expected: terminal,
                events: decoder.events_dispatched(),
            }
            .into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path_and_query() {
        let url = endpoint(ProviderKind::OpenAi, "http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:11434/v1/chat/completions");
        let url = endpoint(
            ProviderKind::OpenAi,
            "https://example.test/openai/v1?api-version=2",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.test/openai/v1/chat/completions?api-version=2"
        );
        let url = endpoint(ProviderKind::Anthropic, "https://api.anthropic.com").unwrap();
        assert_eq!(url.as_str(), "https://api.anthropic.com/v1/messages");
        assert!(endpoint(ProviderKind::OpenAi, "ftp://x/v1").is_err());
        assert!(endpoint(ProviderKind::OpenAi, "not a url").is_err());
        assert!(endpoint(ProviderKind::OpenAi, "https://user:pw@x/v1").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after", HeaderValue::from_static("99999"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
    }
}
