//! Server-sent events decoding, byte by byte, with hard size caps.
//!
//! Owns: splitting a response body that arrives in arbitrary chunks into
//! lines and events (`event:`/`data:` fields, comments, blank-line dispatch)
//! and enforcing `MAX_STREAM_BYTES`, `MAX_SSE_LINE_BYTES` and
//! `MAX_SSE_EVENT_BYTES`.
//! Must never: interpret event payloads (that is the wire modules' job),
//! buffer without bound, or panic on any input.
//!
//! Stricter than the SSE spec on one point: a line that is not a known field
//! (`data`, `event`, `id`, `retry`), a comment or blank is an error, so a
//! proxy's HTML page or a JSON error body sent with status 200 is reported
//! instead of silently ignored. Lines end with LF or CRLF (no provider uses
//! bare CR).

use super::error::ProtocolError;

/// The most a single streamed response may carry.
pub const MAX_STREAM_BYTES: usize = 8 * 1024 * 1024;
/// The longest line accepted in a stream.
pub const MAX_SSE_LINE_BYTES: usize = 1024 * 1024;
/// The most data one event may carry (several `data:` lines add up).
pub const MAX_SSE_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// 1-based position in the stream.
    pub number: u64,
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` lines joined with LF.
    pub data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes of the line being received.
    partial_line: Vec<u8>,
    lines_seen: u64,
    bytes_seen: usize,
    events_dispatched: u64,
    event_name: Option<String>,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    pub fn events_dispatched(&self) -> u64 {
        self.events_dispatched
    }

    /// Feeds the next chunk of the body; complete events are pushed to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProtocolError> {
        self.bytes_seen = self.bytes_seen.saturating_add(chunk.len());
        if self.bytes_seen > MAX_STREAM_BYTES {
            return Err(ProtocolError::StreamTooLarge {
                limit: MAX_STREAM_BYTES,
            });
        }
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = tail.get(1..).unwrap_or_default();
            if self.partial_line.is_empty() {
                self.line(head, out)?;
            } else {
                let mut line = std::mem::take(&mut self.partial_line);
                line.extend_from_slice(head);
                self.line(&line, out)?;
            }
        }
        if self.partial_line.len() + rest.len() > MAX_SSE_LINE_BYTES {
            return Err(ProtocolError::LineTooLong {
                line: self.lines_seen + 1,
                limit: MAX_SSE_LINE_BYTES,
            });
        }
        self.partial_line.extend_from_slice(rest);
        Ok(())
    }

    /// The body ended: a last line without its newline still counts, and an
    /// event whose blank line never came is dispatched (a server that closes
    /// right after its final `data:` line has still said everything).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), ProtocolError> {
        if !self.partial_line.is_empty() {
            let line = std::mem::take(&mut self.partial_line);
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProtocolError> {
        self.lines_seen += 1;
        let number = self.lines_seen;
        if raw.len() > MAX_SSE_LINE_BYTES {
            return Err(ProtocolError::LineTooLong {
                line: number,
                limit: MAX_SSE_LINE_BYTES,
            });
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text =
            std::str::from_utf8(raw).map_err(|_| ProtocolError::InvalidUtf8 { line: number })?;
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        if text.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if text.starts_with(':') {
            return Ok(()); // comment, often a keep-alive
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_SSE_EVENT_BYTES {
                    return Err(ProtocolError::EventTooLarge {
                        event: self.events_dispatched + 1,
                        limit: MAX_SSE_EVENT_BYTES,
                    });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event_name = Some(value.to_owned()),
            "id" | "retry" => {}
            _ => {
                return Err(ProtocolError::NotServerSentEvents {
                    line: number,
                    excerpt: excerpt(text),
                });
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let name = self.event_name.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        self.events_dispatched += 1;
        out.push(SseEvent {
            number: self.events_dispatched,
            name,
            data: std::mem::take(&mut self.data),
        });
    }
}

/// At most 80 characters of `text`, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_chunks(body: &[u8], chunk: usize) -> Result<Vec<SseEvent>, ProtocolError> {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        for piece in body.chunks(chunk) {
            decoder.feed(piece, &mut out)?;
        }
        decoder.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn events_are_the_same_whatever_the_chunking() {
        let body = b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\nid: 3\nretry: 10\ndata: [DONE]\n\n";
        let whole = decode_in_chunks(body, body.len()).unwrap();
        for size in 1..body.len() {
            assert_eq!(
                decode_in_chunks(body, size).unwrap(),
                whole,
                "chunk size {size}"
            );
        }
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].name.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[1].data, "x\ny");
        assert_eq!(whole[2].data, "[DONE]");
        assert_eq!(whole[2].number, 3);
    }

    #[test]
    fn garbage_and_bad_utf8_are_named_by_line() {
        assert_eq!(
            decode_in_chunks(b"data: ok\n\n<html>\n", 4),
            Err(ProtocolError::NotServerSentEvents {
                line: 3,
                excerpt: "<html>".into()
            })
        );
        assert_eq!(
            decode_in_chunks(b"data: \xff\xfe\n\n", 3),
            Err(ProtocolError::InvalidUtf8 { line: 1 })
        );
    }

    #[test]
    fn an_endless_line_is_cut_off_at_the_cap() {
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let piece = vec![b'a'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..(MAX_SSE_LINE_BYTES / piece.len() + 2) {
            result = decoder.feed(&piece, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(ProtocolError::LineTooLong {
                line: 1,
                limit: MAX_SSE_LINE_BYTES
            })
        );
    }
}
