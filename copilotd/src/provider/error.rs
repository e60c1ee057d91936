//! Everything that can go wrong talking to an AI provider, worded for the
//! operator who has to fix it.
//!
//! Owns: `ProviderError` (transport, HTTP status, credentials, rate limits,
//! errors the provider reports inside a stream) and `ProtocolError` (a
//! response that does not follow the wire format).
//! Must never: carry an API key or any part of a request body. Only short
//! excerpts of what the *server* said end up here.

use std::fmt;
use std::time::Duration;

/// Why a call to the AI provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// `base_url` is not an absolute http(s) URL.
    #[error("invalid AI provider URL {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },

    /// An API key was configured for a plain-http URL that is not loopback:
    /// the key would cross the network in clear text.
    #[error(
        "refusing to send the API key in clear text to {url}: use https, or a loopback address for a local model server"
    )]
    CleartextApiKey { url: String },

    /// The API key cannot be put in an HTTP header (control characters or
    /// non-ASCII). The key itself is never shown.
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    ApiKeyNotHeaderSafe,

    /// The HTTP client could not be set up (TLS roots, resolver).
    #[error("cannot set up the HTTP client: {0}")]
    ClientSetup(String),

    /// The request body could not be serialised.
    #[error("cannot serialise the request body: {0}")]
    Body(String),

    /// No connection could be made (refused, DNS failure, unreachable host,
    /// TLS handshake failure).
    #[error("cannot reach the AI provider at {url}: {reason}")]
    Unreachable { url: String, reason: String },

    /// The provider took longer than the configured timeout.
    #[error("the AI provider did not answer within {after:?} ({waiting_for})")]
    Timeout {
        after: Duration,
        waiting_for: WaitingFor,
    },

    /// 401 or 403: the key is missing, wrong, or not allowed to use the model.
    /// Never retried.
    #[error("the AI provider refused the credentials (HTTP {status}): {body_excerpt}")]
    Auth { status: u16, body_excerpt: String },

    /// 429 on every attempt.
    #[error("the AI provider is rate limiting us (HTTP 429, {attempts} attempt(s){})", RetryAfterNote(*.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        attempts: u32,
    },

    /// Any other non-success status (4xx at once, 5xx after the retries).
    #[error("the AI provider answered HTTP {status} ({attempts} attempt(s)): {body_excerpt}")]
    Http {
        status: u16,
        body_excerpt: String,
        attempts: u32,
    },

    /// The provider reported an error inside a stream that had started
    /// (Anthropic `event: error`, an OpenAI-style `{"error":{…}}` chunk).
    #[error("the AI provider reported an error mid-stream ({kind}): {message}")]
    Remote { kind: String, message: String },

    /// The response does not follow the wire format.
    #[error("malformed response from the AI provider: {0}")]
    Protocol(#[from] ProtocolError),
}

/// What we were waiting for when a timeout struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    /// The status line and headers of the response.
    ResponseHeaders,
    /// The next bytes of a streamed response.
    StreamData,
    /// The body of an error response.
    ErrorBody,
}

impl fmt::Display for WaitingFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitingFor::ResponseHeaders => "waiting for the response to start",
            WaitingFor::StreamData => "waiting for more of the streamed response",
            WaitingFor::ErrorBody => "waiting for the body of an error response",
        })
    }
}

struct RetryAfterNote(Option<Duration>);

impl fmt::Display for RetryAfterNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(after) => write!(f, "; it asked us to wait {}s", after.as_secs_f64()),
            None => Ok(()),
        }
    }
}

/// A response that does not follow the provider's wire format. Lines and
/// events are numbered from 1 in the order they arrived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("expected an event stream (text/event-stream) but got content-type {content_type:?}")]
    NotAnEventStream { content_type: String },

    #[error("the streamed response is larger than {limit} bytes")]
    StreamTooLarge { limit: usize },

    #[error("line {line} of the stream is longer than {limit} bytes")]
    LineTooLong { line: u64, limit: usize },

    #[error("event {event} carries more than {limit} bytes of data")]
    EventTooLarge { event: u64, limit: usize },

    #[error("line {line} of the stream is not valid UTF-8")]
    InvalidUtf8 { line: u64 },

    #[error("line {line} is not a server-sent-events field: {excerpt:?}")]
    NotServerSentEvents { line: u64, excerpt: String },

    #[error("event {event} ({what}) is not valid JSON: {reason}")]
    InvalidJson {
        event: u64,
        what: &'static str,
        reason: String,
    },

    #[error("event {event} ({what}) does not have the expected shape: {reason}")]
    UnexpectedShape {
        event: u64,
        what: String,
        reason: String,
    },

    #[error("the stream ended after {events} event(s) without {expected}")]
    Truncated { expected: &'static str, events: u64 },

    #[error("the stream broke off: {reason}")]
    Interrupted { reason: String },

    #[error("tool call {index} has no name")]
    ToolCallWithoutName { index: u64 },

    #[error("the arguments of tool call {name:?} ({id}) are not a JSON object: {reason}")]
    InvalidToolArguments {
        id: String,
        name: String,
        reason: String,
    },
}
