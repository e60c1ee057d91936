//! Reading a request body the way a responder needs to: the last thing the
//! user said, the last tool result, in either wire format.
//!
//! Owns: format-neutral lookups into an OpenAI Chat Completions or Anthropic
//! Messages request body.
//! Must never: fail loudly — a body without the thing asked for gives `None`.

use serde_json::Value;

/// The content of the last message if it is a tool result: an OpenAI
/// `role: "tool"` message, or the last `tool_result` block of an Anthropic
/// user message.
pub fn last_tool_result(body: &Value) -> Option<String> {
    let last = body.get("messages")?.as_array()?.last()?;
    match last.get("role")?.as_str()? {
        "tool" => text_of(last.get("content")?),
        "user" => {
            let blocks = last.get("content")?.as_array()?;
            let result = blocks
                .iter()
                .rev()
                .find(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))?;
            match result.get("content") {
                Some(content) => text_of(content),
                None => Some(String::new()),
            }
        }
        _ => None,
    }
}

/// The text of the last user message that carries text (tool-result-only
/// user messages of the Anthropic format are skipped).
pub fn last_user_text(body: &Value) -> Option<String> {
    body.get("messages")?
        .as_array()?
        .iter()
        .rev()
        .filter(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .find_map(|message| text_of(message.get("content")?).filter(|text| !text.is_empty()))
}

/// A string, or the text blocks/parts of an array joined.
fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_formats() {
        let openai = json!({"messages": [
            {"role": "user", "content": "show interfaces"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": "eth0 up"},
        ]});
        assert_eq!(last_tool_result(&openai).as_deref(), Some("eth0 up"));
        assert_eq!(last_user_text(&openai).as_deref(), Some("show interfaces"));
        let anthropic = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "show interfaces"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "x", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "eth0 up"}]},
        ]});
        assert_eq!(last_tool_result(&anthropic).as_deref(), Some("eth0 up"));
        assert_eq!(
            last_user_text(&anthropic).as_deref(),
            Some("show interfaces")
        );
        assert_eq!(
            last_tool_result(&json!({"messages": [{"role": "user", "content": "hi"}]})),
            None
        );
        assert_eq!(last_tool_result(&json!(null)), None);
    }
}
