//! Request validation for the scripted provider, strict enough to catch the
//! client bugs a real provider would answer with 400.
//!
//! Owns: the checks on a Chat Completions or Messages request body (model,
//! streaming, message roles and content, tool calls answered by exactly the
//! tool results that follow them, tool definitions) and the wording of the
//! rejection, modelled on the real providers' messages.
//! Must never: accept a conversation a real provider would refuse because of
//! its tool-call bookkeeping, or panic on any body.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// What a valid request asked for.
#[derive(Debug, Clone)]
pub(super) struct Accepted {
    pub model: String,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Validates a Chat Completions request.
pub(super) fn openai(body: &Value) -> Result<Accepted, String> {
    let request = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = model(request)?;
    require_streaming(request)?;
    if let Some(max_tokens) = request.get("max_tokens") {
        positive_integer(max_tokens, "max_tokens")?;
    }
    let include_usage = match request.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => match options.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => return Err("stream_options.include_usage must be a boolean".into()),
        },
        Some(_) => return Err("stream_options must be an object".into()),
    };
    let messages = non_empty_array(request, "messages")?;
    // Ids of the last assistant message's tool calls not yet answered.
    let mut unanswered: BTreeSet<String> = BTreeSet::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let message = message
            .as_object()
            .ok_or_else(|| format!("{at} must be an object"))?;
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.role is missing or not a string"))?;
        if role != "tool" && !unanswered.is_empty() {
            return Err(unanswered_openai(&unanswered));
        }
        match role {
            "system" | "developer" | "user" => openai_content(message, &at, false)?,
            "assistant" => {
                let has_calls = match message.get("tool_calls") {
                    None | Some(Value::Null) => false,
                    Some(Value::Array(calls)) => {
                        for (j, call) in calls.iter().enumerate() {
                            let id = openai_tool_call(call, &format!("{at}.tool_calls[{j}]"))?;
                            if !unanswered.insert(id.clone()) {
                                return Err(format!("{at}.tool_calls[{j}]: duplicate id {id:?}"));
                            }
                        }
                        !calls.is_empty()
                    }
                    Some(_) => return Err(format!("{at}.tool_calls must be an array")),
                };
                openai_content(message, &at, has_calls)?;
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}.tool_call_id is missing or not a string"))?;
                if !unanswered.remove(id) {
                    return Err(format!(
                        "Invalid parameter: {at} with role 'tool' must be a response to a preceding message with 'tool_calls' (no unanswered tool call has id {id:?})"
                    ));
                }
                openai_content(message, &at, false)?;
            }
            other => {
                return Err(format!(
                    "Invalid value for {at}.role: {other:?}. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'."
                ));
            }
        }
    }
    if !unanswered.is_empty() {
        return Err(unanswered_openai(&unanswered));
    }
    match request.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) if tools.is_empty() => {
            return Err("[] is too short - 'tools'".into());
        }
        Some(Value::Array(tools)) => {
            for (i, tool) in tools.iter().enumerate() {
                let at = format!("tools[{i}]");
                let tool = tool
                    .as_object()
                    .ok_or_else(|| format!("{at} must be an object"))?;
                if tool.get("type").and_then(Value::as_str) != Some("function") {
                    return Err(format!("{at}.type must be 'function'"));
                }
                let function = tool
                    .get("function")
                    .and_then(Value::as_object)
                    .ok_or_else(|| format!("{at}.function is missing or not an object"))?;
                tool_name(function.get("name"), &format!("{at}.function.name"))?;
                optional_string(function, "description", &format!("{at}.function"))?;
                match function.get("parameters") {
                    None | Some(Value::Object(_)) => {}
                    Some(_) => return Err(format!("{at}.function.parameters must be an object")),
                }
            }
        }
        Some(_) => return Err("tools must be an array".into()),
    }
    Ok(Accepted {
        model,
        include_usage,
    })
}

fn unanswered_openai(ids: &BTreeSet<String>) -> String {
    format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

/// Checks one assistant tool call and returns its id.
fn openai_tool_call(call: &Value, at: &str) -> Result<String, String> {
    let call = call
        .as_object()
        .ok_or_else(|| format!("{at} must be an object"))?;
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("{at}.id is missing or empty"))?;
    if call.get("type").and_then(Value::as_str) != Some("function") {
        return Err(format!("{at}.type must be 'function'"));
    }
    let function = call
        .get("function")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{at}.function is missing or not an object"))?;
    tool_name(function.get("name"), &format!("{at}.function.name"))?;
    let arguments = match function.get("arguments") {
        Some(Value::String(arguments)) => arguments,
        Some(other) => {
            return Err(format!(
                "Invalid type for '{at}.function.arguments': expected a string, but got {}",
                type_name(other)
            ));
        }
        None => return Err(format!("{at}.function.arguments is missing")),
    };
    if let Err(e) = serde_json::from_str::<Value>(arguments) {
        return Err(format!("{at}.function.arguments is not valid JSON: {e}"));
    }
    Ok(id.to_owned())
}

/// `content` must be a string or an array of text parts; `null` or absent
/// only when `may_be_empty` (an assistant message that makes tool calls).
fn openai_content(
    message: &Map<String, Value>,
    at: &str,
    may_be_empty: bool,
) -> Result<(), String> {
    match message.get("content") {
        Some(Value::String(_)) => Ok(()),
        None | Some(Value::Null) if may_be_empty => Ok(()),
        None | Some(Value::Null) => Err(format!("{at}.content is required")),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str);
                let text = part.get("text").and_then(Value::as_str);
                if kind != Some("text") || text.is_none() {
                    return Err(format!(
                        "{at}.content[{j}] must be a text part {{\"type\":\"text\",\"text\":…}}"
                    ));
                }
            }
            Ok(())
        }
        Some(other) => Err(format!(
            "Invalid type for '{at}.content': expected a string or an array, but got {}",
            type_name(other)
        )),
    }
}

/// Validates a Messages request.
pub(super) fn anthropic(headers: &HeaderMap, body: &Value) -> Result<Accepted, String> {
    if headers.get("anthropic-version").is_none() {
        return Err("anthropic-version: header is required".into());
    }
    let request = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = model(request)?;
    match request.get("max_tokens") {
        Some(value) => positive_integer(value, "max_tokens")?,
        None => return Err("max_tokens: Field required".into()),
    }
    require_streaming(request)?;
    match request.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text")
                    || block.get("text").and_then(Value::as_str).is_none()
                {
                    return Err(format!("system.{i}: must be a text block"));
                }
            }
        }
        Some(_) => return Err("system: must be a string or an array of text blocks".into()),
    }
    let messages = non_empty_array(request, "messages")?;
    let mut unanswered: BTreeSet<String> = BTreeSet::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages.{i}");
        let message = message
            .as_object()
            .ok_or_else(|| format!("{at}: must be an object"))?;
        let role = message.get("role").and_then(Value::as_str);
        match role {
            Some("user") | Some("assistant") => {}
            _ => {
                return Err(format!("{at}.role: Input should be 'user' or 'assistant'"));
            }
        }
        if i == 0 && role != Some("user") {
            return Err("messages: first message must use the \"user\" role".into());
        }
        let blocks = anthropic_blocks(message, &at)?;
        if role == Some("assistant") {
            if !unanswered.is_empty() {
                return Err(unanswered_anthropic(i, &unanswered));
            }
            for (j, block) in blocks.iter().enumerate() {
                let at = format!("{at}.content.{j}");
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => anthropic_text(block, &at)?,
                    Some("tool_use") => {
                        let id = block
                            .get("id")
                            .and_then(Value::as_str)
                            .filter(|id| !id.is_empty())
                            .ok_or_else(|| format!("{at}.tool_use.id: Field required"))?;
                        tool_name(block.get("name"), &format!("{at}.tool_use.name"))?;
                        if !block.get("input").is_some_and(Value::is_object) {
                            return Err(format!(
                                "{at}.tool_use.input: Input should be a valid dictionary"
                            ));
                        }
                        if !unanswered.insert(id.to_owned()) {
                            return Err(format!("{at}: duplicate tool_use id {id:?}"));
                        }
                    }
                    other => {
                        return Err(format!(
                            "{at}: unsupported block type {other:?} in an assistant message"
                        ));
                    }
                }
            }
        } else {
            let mut answers_expected = std::mem::take(&mut unanswered);
            for (j, block) in blocks.iter().enumerate() {
                let at = format!("{at}.content.{j}");
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => anthropic_text(block, &at)?,
                    Some("tool_result") => {
                        let id = block
                            .get("tool_use_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                format!("{at}.tool_result.tool_use_id: Field required")
                            })?;
                        if !answers_expected.remove(id) {
                            return Err(format!(
                                "{at}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                            ));
                        }
                        match block.get("content") {
                            None | Some(Value::String(_)) => {}
                            Some(Value::Array(parts)) => {
                                for (k, part) in parts.iter().enumerate() {
                                    anthropic_text(part, &format!("{at}.content.{k}"))?;
                                }
                            }
                            Some(_) => {
                                return Err(format!(
                                    "{at}.tool_result.content: must be a string or an array of blocks"
                                ));
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "{at}: unsupported block type {other:?} in a user message"
                        ));
                    }
                }
            }
            if !answers_expected.is_empty() {
                return Err(unanswered_anthropic(i.saturating_sub(1), &answers_expected));
            }
        }
    }
    if !unanswered.is_empty() {
        return Err(unanswered_anthropic(messages.len() - 1, &unanswered));
    }
    match request.get("tools") {
        None => {}
        Some(Value::Array(tools)) => {
            for (i, tool) in tools.iter().enumerate() {
                let at = format!("tools.{i}");
                let tool = tool
                    .as_object()
                    .ok_or_else(|| format!("{at}: must be an object"))?;
                tool_name(tool.get("name"), &format!("{at}.name"))?;
                optional_string(tool, "description", &at)?;
                let schema_type = tool
                    .get("input_schema")
                    .and_then(Value::as_object)
                    .and_then(|schema| schema.get("type"))
                    .and_then(Value::as_str);
                if schema_type != Some("object") {
                    return Err(format!("{at}.input_schema.type: Input should be 'object'"));
                }
            }
        }
        Some(_) => return Err("tools: Input should be a valid list".into()),
    }
    Ok(Accepted {
        model,
        include_usage: true,
    })
}

fn unanswered_anthropic(index: usize, ids: &BTreeSet<String>) -> String {
    format!(
        "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ids.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

/// The content of a message as blocks (a string is one text block).
fn anthropic_blocks(message: &Map<String, Value>, at: &str) -> Result<Vec<Value>, String> {
    match message.get("content") {
        Some(Value::String(text)) if text.is_empty() => {
            Err(format!("{at}: all messages must have non-empty content"))
        }
        Some(Value::String(text)) => Ok(vec![serde_json::json!({"type": "text", "text": text})]),
        Some(Value::Array(blocks)) if blocks.is_empty() => {
            Err(format!("{at}: all messages must have non-empty content"))
        }
        Some(Value::Array(blocks)) => Ok(blocks.clone()),
        _ => Err(format!(
            "{at}.content: Input should be a valid string or list"
        )),
    }
}

fn anthropic_text(block: &Value, at: &str) -> Result<(), String> {
    match block.get("text").and_then(Value::as_str) {
        Some("") => Err(format!("{at}: text content blocks must be non-empty")),
        Some(_) if block.get("type").and_then(Value::as_str) == Some("text") => Ok(()),
        _ => Err(format!(
            "{at}: must be a text block {{\"type\":\"text\",\"text\":…}}"
        )),
    }
}

fn model(request: &Map<String, Value>) -> Result<String, String> {
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        _ => Err("you must provide a model parameter".into()),
    }
}

fn require_streaming(request: &Map<String, Value>) -> Result<(), String> {
    if request.get("stream") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err("this scripted provider only streams: the request must have \"stream\": true".into())
    }
}

fn non_empty_array<'a>(request: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match request.get(key) {
        Some(Value::Array(items)) if items.is_empty() => Err(format!("[] is too short - '{key}'")),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!(
            "'{key}' must be an array, not {}",
            type_name(other)
        )),
        None => Err(format!("'{key}' is a required property")),
    }
}

fn positive_integer(value: &Value, key: &str) -> Result<(), String> {
    match value.as_u64() {
        Some(n) if n >= 1 => Ok(()),
        _ => Err(format!("{key}: must be a positive integer, got {value}")),
    }
}

fn optional_string(object: &Map<String, Value>, key: &str, at: &str) -> Result<(), String> {
    match object.get(key) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("{at}.{key} must be a string")),
    }
}

/// Tool names: 1 to 64 of `[a-zA-Z0-9_-]`, as both providers require.
fn tool_name(name: Option<&Value>, at: &str) -> Result<(), String> {
    let name = name
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at} is missing or not a string"))?;
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{at}: string does not match pattern '^[a-zA-Z0-9_-]{{1,64}}$': {name:?}"
        ))
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
