//! Renders a scripted model turn as the byte stream a real provider would
//! send: OpenAI `chat.completion.chunk`s ending in `data: [DONE]`, or
//! Anthropic `event:`/`data:` pairs from `message_start` to `message_stop`.
//!
//! Owns: the shape and order of the streamed events, how text and tool-call
//! arguments are cut into fragments, and the plausible usage numbers
//! (about one token per four bytes).
//! Must never: produce a stream a real provider could not have sent.

use serde_json::{Value, json};

/// What the model "says" in one turn.
#[derive(Debug, Clone)]
pub(super) struct Utterance {
    pub text: String,
    /// (id, name, arguments)
    pub calls: Vec<(String, String, Value)>,
}

/// How many bytes one text fragment carries at most.
const TEXT_PIECE_BYTES: usize = 6;
/// How many bytes one arguments fragment carries at most.
const ARGUMENTS_PIECE_BYTES: usize = 5;

/// Tokens for `bytes` of text, at least 1.
pub(super) fn tokens_for(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// The OpenAI stream, one SSE event per element.
pub(super) fn openai(
    utterance: &Utterance,
    completion_id: &str,
    model: &str,
    include_usage: bool,
    input_tokens: u64,
    created: u64,
) -> Vec<String> {
    let chunk = |delta: Value, finish_reason: Value| {
        let mut chunk = json!({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let mut events = Vec::new();
    let first_content = if utterance.text.is_empty() {
        Value::Null
    } else {
        json!("")
    };
    events.push(chunk(
        json!({"role": "assistant", "content": first_content, "refusal": null}),
        Value::Null,
    ));
    for piece in pieces(&utterance.text, TEXT_PIECE_BYTES) {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    let mut output_bytes = utterance.text.len();
    for (index, (id, name, arguments)) in utterance.calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{
                "index": index,
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
            Value::Null,
        ));
        let arguments = arguments.to_string();
        output_bytes += name.len() + arguments.len();
        for piece in pieces(&arguments, ARGUMENTS_PIECE_BYTES) {
            events.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    let finish_reason = if utterance.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    events.push(chunk(json!({}), json!(finish_reason)));
    if include_usage {
        let output_tokens = tokens_for(output_bytes);
        let usage = json!({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": [],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        });
        events.push(format!("data: {usage}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// The Anthropic stream, one SSE event per element.
pub(super) fn anthropic(
    utterance: &Utterance,
    message_id: &str,
    model: &str,
    input_tokens: u64,
) -> Vec<String> {
    let event = |data: Value| {
        let name = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        format!("event: {name}\ndata: {data}\n\n")
    };
    let mut events = vec![event(json!({
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }))];
    let mut index = 0usize;
    let mut output_bytes = 0usize;
    if !utterance.text.is_empty() {
        events.push(event(json!({
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        })));
        events.push(event(json!({"type": "ping"})));
        for piece in pieces(&utterance.text, TEXT_PIECE_BYTES) {
            events.push(event(json!({
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            })));
        }
        events.push(event(json!({"type": "content_block_stop", "index": index})));
        output_bytes += utterance.text.len();
        index += 1;
    }
    for (id, name, arguments) in &utterance.calls {
        events.push(event(json!({
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}},
        })));
        let arguments = arguments.to_string();
        output_bytes += name.len() + arguments.len();
        // The real API opens every tool_use block with an empty fragment.
        let fragments = std::iter::once("").chain(pieces(&arguments, ARGUMENTS_PIECE_BYTES));
        for piece in fragments {
            events.push(event(json!({
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            })));
        }
        events.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    let stop_reason = if utterance.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    events.push(event(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": tokens_for(output_bytes)},
    })));
    events.push(event(json!({"type": "message_stop"})));
    events
}

/// `text` cut into pieces of at most `max_bytes` (more only for a single
/// wider character), never inside a character.
fn pieces(text: &str, max_bytes: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + max_bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(text.get(start..end).unwrap_or_default());
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cover_the_text_and_respect_characters() {
        let text = "héllo wörld ✓✓ done";
        let cut = pieces(text, 3);
        assert_eq!(cut.concat(), text);
        assert!(cut.iter().all(|p| !p.is_empty() && p.len() <= 4));
        assert!(pieces("", 3).is_empty());
    }
}
