//! The OpenAI Chat Completions wire format (also spoken by Ollama, llama.cpp,
//! vLLM and most local model servers).
//!
//! Owns: turning a `ChatRequest` into the JSON body of
//! `POST {base}/chat/completions` with `stream: true`, and assembling the
//! streamed `chat.completion.chunk`s (text pieces, tool-call fragments keyed
//! by `index`, `finish_reason`, the trailing usage chunk, `data: [DONE]`)
//! into a `Completion`.
//! Must never: do I/O, or accept a malformed chunk silently.
//!
//! Leniencies, each for a server seen in the wild: a tool-call fragment
//! without `index` continues the previous call unless it brings a new `id`;
//! `arguments` may arrive as a JSON object instead of a string; a call
//! without `id` gets `call_idx_N`; `finish_reason: "stop"` together with tool
//! calls is reported as `ToolUse`; a stream without any `finish_reason` ends
//! as `ToolUse` if it carried tool calls, else `EndTurn`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ProtocolError, ProviderError};
use super::sse::SseEvent;
use super::{ChatRequest, Completion, Delta, Role, StopReason, ToolCall, Usage};

/// The JSON body for `req`.
pub(crate) fn request_body(model: &str, req: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for message in &req.messages {
        messages.push(match message.role {
            Role::System => json!({"role": "system", "content": message.content}),
            Role::User => json!({"role": "user", "content": message.content}),
            Role::Assistant => {
                let mut out = json!({"role": "assistant"});
                out["content"] = if message.content.is_empty() && !message.tool_calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(message.content.clone())
                };
                if !message.tool_calls.is_empty() {
                    out["tool_calls"] = message
                        .tool_calls
                        .iter()
                        .map(|call| {
                            json!({
                                "id": call.id,
                                "type": "function",
                                "function": {
                                    "name": call.name,
                                    "arguments": call.arguments.to_string(),
                                },
                            })
                        })
                        .collect();
                }
                out
            }
            Role::Tool => json!({
                "role": "tool",
                "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
                "content": message.content,
            }),
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": req.max_tokens,
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
    }
    body
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallFragment>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallFragment {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(Debug, Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Debug, Default)]
struct PartialCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

/// Assembles one streamed completion from its chunks.
#[derive(Debug, Default)]
pub(crate) struct ChunkAssembler {
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
}

/// What the stream looks like when it is complete.
pub(crate) const TERMINAL: &str = "data: [DONE]";

impl ChunkAssembler {
    /// Takes one event; `Ok(true)` once `[DONE]` arrived.
    pub fn on_event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<bool, ProviderError> {
        if event.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let value: Value =
            serde_json::from_str(&event.data).map_err(|e| ProtocolError::InvalidJson {
                event: event.number,
                what: "chat.completion.chunk",
                reason: e.to_string(),
            })?;
        let chunk: Chunk = serde_json::from_value(value).map_err(|e| shape(event, e))?;
        if let Some(error) = chunk.error {
            let kind = error
                .kind
                .or_else(|| {
                    error
                        .code
                        .map(|code| code.to_string().trim_matches('"').to_owned())
                })
                .unwrap_or_else(|| "error".to_owned());
            return Err(ProviderError::Remote {
                kind,
                message: error.message.unwrap_or_default(),
            });
        }
        if let Some(usage) = chunk.usage {
            self.usage.input_tokens = usage.prompt_tokens.unwrap_or(self.usage.input_tokens);
            self.usage.output_tokens = usage.completion_tokens.unwrap_or(self.usage.output_tokens);
        }
        let choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|choice| choice.index.unwrap_or(0) == 0);
        let Some(choice) = choice else {
            return Ok(false);
        };
        if let Some(delta) = choice.delta {
            for piece in [delta.content, delta.refusal].into_iter().flatten() {
                if !piece.is_empty() {
                    self.text.push_str(&piece);
                    on_delta(Delta::Text(piece));
                }
            }
            for fragment in delta.tool_calls.unwrap_or_default() {
                self.add_fragment(event, fragment)?;
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason);
        }
        Ok(false)
    }

    fn add_fragment(
        &mut self,
        event: &SseEvent,
        fragment: ToolCallFragment,
    ) -> Result<(), ProtocolError> {
        let id = fragment.id.filter(|id| !id.is_empty());
        let position = match fragment.index {
            Some(index) => self.calls.iter().position(|call| call.index == index),
            None => match (&id, self.calls.last()) {
                (Some(id), Some(last)) if last.id != *id => None,
                (_, Some(_)) => Some(self.calls.len() - 1),
                (_, None) => None,
            },
        };
        let position = match position {
            Some(position) => position,
            None => {
                let index = fragment
                    .index
                    .unwrap_or_else(|| self.calls.last().map_or(0, |last| last.index + 1));
                self.calls.push(PartialCall {
                    index,
                    ..PartialCall::default()
                });
                self.calls.len() - 1
            }
        };
        let Some(call) = self.calls.get_mut(position) else {
            return Ok(());
        };
        if let Some(id) = id {
            if call.id.is_empty() {
                call.id = id;
            } else if call.id != id {
                return Err(ProtocolError::UnexpectedShape {
                    event: event.number,
                    what: "chat.completion.chunk".to_owned(),
                    reason: format!(
                        "tool call {} changed its id from {:?} to {id:?}",
                        call.index, call.id
                    ),
                });
            }
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|name| !name.is_empty()) {
                if call.name.is_empty() {
                    call.name = name;
                } else if call.name != name {
                    call.name.push_str(&name);
                }
            }
            match function.arguments {
                None | Some(Value::Null) => {}
                Some(Value::String(piece)) => call.arguments.push_str(&piece),
                Some(whole @ Value::Object(_)) => call.arguments = whole.to_string(),
                Some(other) => {
                    return Err(ProtocolError::UnexpectedShape {
                        event: event.number,
                        what: "chat.completion.chunk".to_owned(),
                        reason: format!(
                            "tool call {} arguments are neither a string nor an object: {other}",
                            call.index
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Completion, ProviderError> {
        self.calls.sort_by_key(|call| call.index);
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for call in self.calls {
            if call.name.is_empty() {
                return Err(ProtocolError::ToolCallWithoutName { index: call.index }.into());
            }
            let id = if call.id.is_empty() {
                format!("call_idx_{}", call.index)
            } else {
                call.id
            };
            let arguments = super::parse_tool_arguments(&id, &call.name, &call.arguments)?;
            tool_calls.push(ToolCall {
                id,
                name: call.name,
                arguments,
            });
        }
        let stop = match self.finish_reason.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("stop") | None if !tool_calls.is_empty() => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::ContentFilter,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        Ok(Completion {
            text: self.text,
            tool_calls,
            stop,
            usage: self.usage,
        })
    }
}

fn shape(event: &SseEvent, error: serde_json::Error) -> ProtocolError {
    ProtocolError::UnexpectedShape {
        event: event.number,
        what: "chat.completion.chunk".to_owned(),
        reason: error.to_string(),
    }
}
