//! The asciicast v3 event model: the plaintext metadata line, the header,
//! events and their JSON encoding (escaping on the write path, parsing on
//! the read path), and the plain export.
//! Must never: hold key material; anything here may be printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of session was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingKind {
    Shell,
    Exec,
}

impl From<gatehouse_ipc::sessiond::SessionKind> for RecordingKind {
    fn from(k: gatehouse_ipc::sessiond::SessionKind) -> Self {
        match k {
            gatehouse_ipc::sessiond::SessionKind::Shell => RecordingKind::Shell,
            gatehouse_ipc::sessiond::SessionKind::Exec => RecordingKind::Exec,
        }
    }
}

impl std::fmt::Display for RecordingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordingKind::Shell => "shell",
            RecordingKind::Exec => "exec",
        })
    }
}

/// The plaintext metadata of a recording: readable without the key, so it
/// holds nothing a session printed or was asked to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    pub id: String,
    pub host: String,
    pub user: String,
    pub kind: RecordingKind,
    /// Unix time in milliseconds when the recording started.
    pub started_ms: u64,
    /// Terminal size when the recording started.
    pub cols: u16,
    pub rows: u16,
}

/// The metadata line as stored: the metadata and the key check.
#[derive(Serialize, Deserialize)]
pub(crate) struct MetaLine {
    #[serde(flatten)]
    pub(crate) meta: RecordingMeta,
    pub(crate) key_check: String,
}

/// What goes into the (sealed) asciicast header besides the metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingOptions {
    /// `TERM` of the session, e.g. `xterm-256color`.
    pub term_type: Option<String>,
    pub title: Option<String>,
    /// The command of an exec session (sealed; never in the metadata line).
    pub command: Option<String>,
    /// Record keystrokes ("i" events). Off by default: they capture passwords.
    pub record_input: bool,
}

/// The asciicast v3 header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastHeader {
    /// Always 3.
    pub version: u8,
    pub term: CastTerm,
    /// Unix time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastTerm {
    pub cols: u16,
    pub rows: u16,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub term_type: Option<String>,
}

impl CastHeader {
    pub(crate) fn new(meta: &RecordingMeta, opts: &RecordingOptions) -> CastHeader {
        CastHeader {
            version: 3,
            term: CastTerm {
                cols: meta.cols,
                rows: meta.rows,
                term_type: opts.term_type.clone(),
            },
            timestamp: Some(meta.started_ms / 1000),
            title: opts.title.clone(),
            command: opts.command.clone(),
            env: BTreeMap::new(),
        }
    }
}

/// One asciicast event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the previous event (or the start), in microseconds.
    pub interval_us: u64,
    pub data: EventData,
}

impl Event {
    pub fn interval(&self) -> Duration {
        Duration::from_micros(self.interval_us)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// "o": what the device sent to the terminal.
    Output(String),
    /// "i": keystrokes (only when input recording was on).
    Input(String),
    /// "r": the terminal was resized.
    Resize { cols: u16, rows: u16 },
    /// "m": a marker, with its label.
    Marker(String),
    /// "x": the exit status of the session.
    Exit(u32),
    /// An event code this version does not know (kept, as the format asks).
    Other { code: String, data: String },
}

impl EventData {
    /// The asciicast code and data string.
    pub fn code_and_data(&self) -> (&str, std::borrow::Cow<'_, str>) {
        use std::borrow::Cow;
        match self {
            EventData::Output(s) => ("o", Cow::Borrowed(s)),
            EventData::Input(s) => ("i", Cow::Borrowed(s)),
            EventData::Resize { cols, rows } => ("r", Cow::Owned(format!("{cols}x{rows}"))),
            EventData::Marker(s) => ("m", Cow::Borrowed(s)),
            EventData::Exit(n) => ("x", Cow::Owned(n.to_string())),
            EventData::Other { code, data } => (code, Cow::Borrowed(data)),
        }
    }
}

/// `[interval, "code", "` with the interval in seconds (microsecond precision).
pub(crate) fn push_event_start(out: &mut Vec<u8>, interval_us: u64, code: &str) {
    let _ = write!(
        out,
        "[{}.{:06}, \"",
        interval_us / 1_000_000,
        interval_us % 1_000_000
    );
    escape_json_into(out, code);
    out.extend_from_slice(b"\", \"");
}

/// How many bytes at the end of `b` start a character whose remaining bytes
/// have not arrived yet (0 to 3). Whether they are valid is decided once the
/// rest arrives.
pub(crate) fn incomplete_tail_len(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let byte = b[b.len() - back];
        if byte & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back for the lead
        }
        let width = match byte {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return 0, // ASCII or not a lead byte: nothing to wait for
        };
        return if back < width { back } else { 0 };
    }
    0
}

/// The largest char boundary of `s` at or below `at`.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Which bytes need escaping in a JSON string: 0 none, `u` as `\u00XX`, else the letter after `\`.
pub(crate) static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A mask with the high bit set in the bytes of `w` that need escaping in
/// JSON (< 0x20, `"`, `\\`). The classic has-zero / has-less bit tricks: bits
/// above the first flagged byte may be false, the lowest one is exact.
pub(crate) fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
}

/// Appends `s` as the contents of a JSON string (without quotes). Bytes that
/// need no escaping are skipped 8 at a time and copied in runs.
pub(crate) fn escape_json_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes[i..].first_chunk::<8>() {
            let mask = escape_mask(u64::from_le_bytes(*word));
            if mask == 0 {
                i += 8;
                continue;
            }
            i += (mask.trailing_zeros() / 8) as usize;
        }
        let b = bytes[i];
        let esc = ESCAPE[b as usize];
        if esc != 0 {
            out.extend_from_slice(&bytes[copied..i]);
            if esc == b'u' {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            copied = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[copied..]);
}

pub(crate) fn parse_event(line: &[u8]) -> Result<Event, String> {
    let (secs, code, data): (f64, String, String) =
        serde_json::from_slice(line).map_err(|e| format!("event: {e}"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "event interval {secs} is not a non-negative number"
        ));
    }
    // `as` saturates: an absurd interval cannot wrap.
    let interval_us = (secs * 1_000_000.0).round() as u64;
    let data = match code.as_str() {
        "o" => EventData::Output(data),
        "i" => EventData::Input(data),
        "m" => EventData::Marker(data),
        "r" => {
            let size = data
                .split_once('x')
                .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)));
            let Some((cols, rows)) = size else {
                return Err(format!("resize event {data:?} is not COLSxROWS"));
            };
            EventData::Resize { cols, rows }
        }
        "x" => EventData::Exit(
            data.parse()
                .map_err(|_| format!("exit event {data:?} is not a status number"))?,
        ),
        _ => EventData::Other { code, data },
    };
    Ok(Event { interval_us, data })
}
