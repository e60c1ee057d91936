//! AI provider clients: the request and response types the agent loop uses,
//! and `Provider`, which speaks either wire format over HTTP(S).
//!
//! Owns: the provider-neutral conversation types (`ChatRequest`, `Message`,
//! `ToolSpec`, `ToolCall`, `Completion`), building the exact JSON body for a
//! request (`Provider::request_body`) and sending an already-built body with
//! streaming (`Provider::send`).
//! Must never: add anything to a body between `request_body` and `send` (the
//! caller redacts what `request_body` returns, and exactly that is sent),
//! follow redirects (an `x-api-key` header would follow them), log or format
//! the API key, or send the key in clear text off the machine.

mod anthropic;
mod error;
mod openai;
mod sse;
mod transport;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

pub use error::{ProtocolError, ProviderError, WaitingFor};
pub use sse::{MAX_SSE_EVENT_BYTES, MAX_SSE_LINE_BYTES, MAX_STREAM_BYTES};

/// Which wire format the provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions (`POST {base_url}/chat/completions`); also
    /// Ollama, llama.cpp, vLLM. `base_url` ends in `/v1`.
    OpenAi,
    /// Anthropic Messages (`POST {base_url}/v1/messages`); `base_url` is the
    /// bare origin, e.g. `https://api.anthropic.com`.
    Anthropic,
}

/// How to reach one provider.
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`,
    /// `https://api.anthropic.com`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic);
    /// no auth header at all when `None`.
    pub api_key: Option<Zeroizing<String>>,
    /// Bounds connecting, the wait for the response to start, and every gap
    /// between two pieces of a streamed response. Not the whole stream.
    pub timeout: Duration,
    /// Extra attempts after a 429 or 5xx.
    pub max_retries: u32,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call; `Message::tool_call_id` names the call.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message made; empty for other roles.
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message::plain(Role::System, content.into())
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::plain(Role::User, content.into())
    }

    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message {
            role: Role::Assistant,
            content: content.into(),
            tool_calls,
            tool_call_id: None,
        }
    }

    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(tool_call_id.into()),
        }
    }

    fn plain(role: Role, content: String) -> Message {
        Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-issued (`call_…`, `toolu_…`); echoed back with the result.
    pub id: String,
    pub name: String,
    /// Always a JSON object.
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
}

/// A piece of a response as it streams in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It wants tool results (`Completion::tool_calls` is non-empty).
    ToolUse,
    /// It ran into `max_tokens`.
    MaxTokens,
    StopSequence,
    /// OpenAI's content filter cut the answer.
    ContentFilter,
    /// Anthropic: the model declined.
    Refusal,
    /// A reason this client does not know, verbatim.
    Other(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One complete model turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// All text, in order (the concatenation of every `Delta::Text`).
    pub text: String,
    /// In the order the model made them.
    pub tool_calls: Vec<ToolCall>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// A client for one provider, model and key.
pub struct Provider {
    kind: ProviderKind,
    model: String,
    endpoint: reqwest::Url,
    api_key: Option<Zeroizing<String>>,
    timeout: Duration,
    max_retries: u32,
    http: reqwest::Client,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Provider {
    pub fn new(cfg: ProviderConfig) -> Result<Provider, ProviderError> {
        let endpoint = transport::endpoint(cfg.kind, &cfg.base_url)?;
        if let Some(key) = &cfg.api_key {
            if endpoint.scheme() == "http" && !transport::is_loopback(&endpoint) {
                return Err(ProviderError::CleartextApiKey {
                    url: endpoint.to_string(),
                });
            }
            if reqwest::header::HeaderValue::from_str(key).is_err() {
                return Err(ProviderError::ApiKeyNotHeaderSafe);
            }
        }
        let http = transport::client(&endpoint, cfg.timeout, reqwest::header::HeaderMap::new())?;
        Ok(Provider {
            kind: cfg.kind,
            model: cfg.model,
            endpoint,
            api_key: cfg.api_key,
            timeout: cfg.timeout,
            max_retries: cfg.max_retries,
            http,
        })
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The exact JSON body that would be sent for `req`, so the caller can
    /// redact and inspect it before handing it to `send`.
    pub fn request_body(&self, req: &ChatRequest) -> Value {
        match self.kind {
            ProviderKind::OpenAi => openai::request_body(&self.model, req),
            ProviderKind::Anthropic => anthropic::request_body(&self.model, req),
        }
    }

    /// Sends `body` (already redacted by the caller) and streams the answer:
    /// `on_delta` gets each text piece as it arrives; tool calls are
    /// assembled from their fragments and returned whole. Retries 429 and
    /// 5xx with exponential backoff up to `max_retries` times, only before
    /// anything was streamed.
    pub async fn send(
        &self,
        body: &Value,
        on_delta: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<Completion, ProviderError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::Body(e.to_string()))?;
        let response = transport::post_with_retries(self, bytes).await?;
        transport::read_stream(self, response, on_delta).await
    }
}

/// Parses assembled tool-call arguments: empty means `{}`, anything else
/// must be a JSON object.
fn parse_tool_arguments(id: &str, name: &str, raw: &str) -> Result<Value, ProtocolError> {
    let invalid = |reason: String| ProtocolError::InvalidToolArguments {
        id: id.to_owned(),
        name: name.to_owned(),
        reason,
    };
    if raw.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(invalid(format!("got {}", sse::excerpt(&other.to_string())))),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// An HTTP client for another endpoint copilotd talks to (an MCP server),
/// sending `headers` (its auth) with every request:
/// the provider's settings (rustls/ring, no redirects, connect timeout, no
/// proxy for loopback).
pub(crate) fn http_client(
    url: &str,
    timeout: Duration,
    headers: reqwest::header::HeaderMap,
) -> Result<reqwest::Client, String> {
    let url = reqwest::Url::parse(url.trim()).map_err(|e| format!("URL {url:?}: {e}"))?;
    transport::client(&url, timeout, headers).map_err(|e| e.to_string())
}
