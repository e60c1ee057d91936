//! The Anthropic Messages wire format.
//!
//! Owns: turning a `ChatRequest` into the JSON body of
//! `POST {base}/v1/messages` with `stream: true` (system prompt at the top
//! level, tool use as `tool_use` content blocks, tool results as `tool_result`
//! blocks in a user message, adjacent same-role messages merged), and
//! assembling the streamed events (`message_start`, `content_block_start`,
//! `content_block_delta` with `text_delta` / `input_json_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`, `ping`, `error`)
//! into a `Completion`.
//! Must never: do I/O, or accept a malformed event silently.
//!
//! Unknown event types, block types (thinking, server tools) and delta types
//! (thinking, signature, citations) are skipped, as Anthropic's versioning
//! policy asks of clients. Usage in `message_delta` is cumulative, so the last
//! value wins.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ProtocolError, ProviderError};
use super::sse::SseEvent;
use super::{ChatRequest, Completion, Delta, Role, StopReason, ToolCall, Usage};

/// The `anthropic-version` header value this module speaks.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// The JSON body for `req`.
pub(crate) fn request_body(model: &str, req: &ChatRequest) -> Value {
    let mut system = req.system.clone();
    // (role, content blocks); adjacent messages of one role are merged, which
    // is what puts parallel tool results in a single user message.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        let (role, blocks) = match message.role {
            Role::System => {
                if !system.is_empty() && !message.content.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&message.content);
                continue;
            }
            Role::User => ("user", vec![text_block(&message.content)]),
            Role::Assistant => {
                let mut blocks = Vec::with_capacity(message.tool_calls.len() + 1);
                if !message.content.is_empty() || message.tool_calls.is_empty() {
                    blocks.push(text_block(&message.content));
                }
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
                }));
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                    "content": message.content,
                })],
            ),
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = Value::String(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
    }
    body
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: WireBlockStart,
    },
    ContentBlockDelta {
        index: u64,
        delta: WireBlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlockStart {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct WireMessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        start_input: Option<Value>,
        partial_json: String,
    },
    Skipped,
}

/// Assembles one streamed message from its events.
#[derive(Debug, Default)]
pub(crate) struct EventAssembler {
    started: bool,
    blocks: BTreeMap<u64, Block>,
    stop_reason: Option<String>,
    usage: Usage,
}

/// What the stream looks like when it is complete.
pub(crate) const TERMINAL: &str = "event: message_stop";

impl EventAssembler {
    /// Takes one event; `Ok(true)` once `message_stop` arrived.
    pub fn on_event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<bool, ProviderError> {
        let value: Value =
            serde_json::from_str(&event.data).map_err(|e| ProtocolError::InvalidJson {
                event: event.number,
                what: "message stream event",
                reason: e.to_string(),
            })?;
        let what = || {
            value
                .get("type")
                .and_then(Value::as_str)
                .or(event.name.as_deref())
                .unwrap_or("untyped event")
                .to_owned()
        };
        let shape = |reason: String| ProtocolError::UnexpectedShape {
            event: event.number,
            what: what(),
            reason,
        };
        let parsed: WireEvent =
            serde_json::from_value(value.clone()).map_err(|e| shape(e.to_string()))?;
        if !self.started
            && !matches!(
                parsed,
                WireEvent::MessageStart { .. }
                    | WireEvent::Ping
                    | WireEvent::Error { .. }
                    | WireEvent::Unknown
            )
        {
            return Err(shape("the stream did not begin with message_start".to_owned()).into());
        }
        match parsed {
            WireEvent::MessageStart { message } => {
                self.started = true;
                if let Some(usage) = message.usage {
                    self.take_usage(usage);
                }
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    WireBlockStart::Text { text } => {
                        if !text.is_empty() {
                            on_delta(Delta::Text(text.clone()));
                        }
                        Block::Text(text)
                    }
                    WireBlockStart::ToolUse { id, name, input } => Block::ToolUse {
                        id,
                        name,
                        start_input: input,
                        partial_json: String::new(),
                    },
                    WireBlockStart::Other => Block::Skipped,
                };
                if self.blocks.insert(index, block).is_some() {
                    return Err(shape(format!("content block {index} started twice")).into());
                }
            }
            WireEvent::ContentBlockDelta { index, delta } => {
                let Some(block) = self.blocks.get_mut(&index) else {
                    return Err(shape(format!(
                        "delta for content block {index}, which never started"
                    ))
                    .into());
                };
                match (block, delta) {
                    (Block::Text(text), WireBlockDelta::TextDelta { text: piece }) => {
                        if !piece.is_empty() {
                            text.push_str(&piece);
                            on_delta(Delta::Text(piece));
                        }
                    }
                    (
                        Block::ToolUse { partial_json, .. },
                        WireBlockDelta::InputJsonDelta {
                            partial_json: piece,
                        },
                    ) => partial_json.push_str(&piece),
                    (_, WireBlockDelta::Other) | (Block::Skipped, _) => {}
                    (Block::Text(_), WireBlockDelta::InputJsonDelta { .. }) => {
                        return Err(
                            shape(format!("input_json_delta for text block {index}")).into()
                        );
                    }
                    (Block::ToolUse { .. }, WireBlockDelta::TextDelta { .. }) => {
                        return Err(shape(format!("text_delta for tool_use block {index}")).into());
                    }
                }
            }
            WireEvent::ContentBlockStop { index } => {
                if !self.blocks.contains_key(&index) {
                    return Err(
                        shape(format!("content block {index} stopped but never started")).into(),
                    );
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = usage {
                    self.take_usage(usage);
                }
            }
            WireEvent::MessageStop => return Ok(true),
            WireEvent::Ping | WireEvent::Unknown => {}
            WireEvent::Error { error } => {
                return Err(ProviderError::Remote {
                    kind: error.kind.unwrap_or_else(|| "error".to_owned()),
                    message: error.message.unwrap_or_default(),
                });
            }
        }
        Ok(false)
    }

    fn take_usage(&mut self, usage: WireUsage) {
        if let Some(input) = usage.input_tokens {
            self.usage.input_tokens = input;
        }
        if let Some(output) = usage.output_tokens {
            self.usage.output_tokens = output;
        }
    }

    pub fn finish(self) -> Result<Completion, ProviderError> {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks.into_values() {
            match block {
                Block::Text(piece) => text.push_str(&piece),
                Block::ToolUse {
                    id,
                    name,
                    start_input,
                    partial_json,
                } => {
                    let arguments = if partial_json.trim().is_empty() {
                        match start_input {
                            Some(input @ Value::Object(_)) => input,
                            None | Some(Value::Null) => Value::Object(Default::default()),
                            Some(other) => {
                                return Err(ProtocolError::InvalidToolArguments {
                                    id,
                                    name,
                                    reason: format!("input is {other}"),
                                }
                                .into());
                            }
                        }
                    } else {
                        super::parse_tool_arguments(&id, &name, &partial_json)?
                    };
                    tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments,
                    });
                }
                Block::Skipped => {}
            }
        }
        let stop = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_owned()),
            None if tool_calls.is_empty() => StopReason::EndTurn,
            None => StopReason::ToolUse,
        };
        Ok(Completion {
            text,
            tool_calls,
            stop,
            usage: self.usage,
        })
    }
}
