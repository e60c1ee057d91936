//! Reading a recording back: the metadata line, then every chunk in order,
//! authenticated before its events are parsed; a file cut short yields its
//! verified prefix.
//! Must never: return bytes of a chunk that failed authentication, accept a
//! chunk out of order or from another recording, or panic on a damaged file.

use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::layout::*;
use crate::{error::*, format::*, seal::*};

// ---------------------------------------------------------------------------
// Reading

/// A recording read back: the verified chunks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub meta: RecordingMeta,
    pub header: CastHeader,
    pub events: Vec<Event>,
    /// The final chunk is there: the recording was finished.
    pub complete: bool,
    /// Chunks read.
    pub chunks: u64,
    /// Bytes at the end that do not form a whole chunk (a write cut short).
    pub trailing_bytes: u64,
}

impl Recording {
    /// The sum of all intervals.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.events.iter().map(|e| e.interval_us).sum())
    }

    /// All output ("o" events) concatenated.
    pub fn output_text(&self) -> String {
        let mut s = String::new();
        for e in &self.events {
            if let EventData::Output(o) = &e.data {
                s.push_str(o);
            }
        }
        s
    }
}

/// Reads sealed recordings.
pub struct RecordingReader;

impl RecordingReader {
    /// Reads and verifies the recording at `path`. A file cut short gives the
    /// chunks before the cut with `complete: false`; any other damage is an error.
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<Recording, RecordingError> {
        let bytes = std::fs::read(path).map_err(|source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, key)
    }

    /// As [`open`](Self::open), for a file already in memory.
    pub fn from_bytes(bytes: &[u8], key: &[u8; 32]) -> Result<Recording, RecordingError> {
        let (line, meta_len) = parse_meta_line(bytes)?;
        let id = line.meta.id.clone();
        if line.key_check != key_check(key, &id) {
            return Err(RecordingError::WrongKey(id));
        }
        let prefix = aad_prefix(&bytes[..meta_len], &id);
        let cipher = ChunkCipher {
            key: Zeroizing::new(*key),
        };
        let mut framing = Framing::default();
        let mut parser = CastParser::default();
        let mut plain = Zeroizing::new(Vec::new());
        let mut pos = meta_len;
        let mut trailing_bytes = 0u64;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let Some(h) = ChunkHeader::parse(rest) else {
                framing.trailing(rest.len() as u64)?;
                trailing_bytes = rest.len() as u64;
                break;
            };
            framing.check(&h)?;
            let total = CHUNK_HEADER_LEN + h.body_len;
            let Some(body) = rest.get(CHUNK_HEADER_LEN..total) else {
                trailing_bytes = rest.len() as u64;
                break;
            };
            let (ciphertext, tag) = body.split_at(h.body_len - TAG_LEN);
            plain.clear();
            plain.extend_from_slice(ciphertext);
            if !cipher.open(
                &h.nonce,
                &chunk_aad(&prefix, h.index, h.flags),
                &mut plain,
                tag,
            ) {
                return Err(RecordingError::ChunkAuth { index: h.index });
            }
            parser.feed(h.index, &plain)?;
            framing.accept(&h);
            pos += total;
        }
        let header = parser
            .header
            .unwrap_or_else(|| CastHeader::new(&line.meta, &RecordingOptions::default()));
        Ok(Recording {
            meta: line.meta,
            header,
            events: parser.events,
            complete: framing.final_seen.is_some(),
            chunks: framing.next_index,
            trailing_bytes,
        })
    }
}

/// Parses chunk plaintexts as asciicast lines.
#[derive(Default)]
pub(crate) struct CastParser {
    pub(crate) header: Option<CastHeader>,
    pub(crate) events: Vec<Event>,
}

impl CastParser {
    pub(crate) fn feed(&mut self, index: u64, plain: &[u8]) -> Result<(), RecordingError> {
        let bad = |what: String| RecordingError::BadContent { index, what };
        if plain.is_empty() {
            return Ok(());
        }
        let Some(body) = plain.strip_suffix(b"\n") else {
            return Err(bad("does not end with a whole line".into()));
        };
        for (n, line) in body.split(|&b| b == b'\n').enumerate() {
            if self.header.is_none() {
                let h: CastHeader = serde_json::from_slice(line)
                    .map_err(|e| bad(format!("asciicast header: {e}")))?;
                if h.version != 3 {
                    return Err(bad(format!("asciicast version {} (expected 3)", h.version)));
                }
                self.header = Some(h);
                continue;
            }
            if line.first() == Some(&b'#') {
                continue;
            }
            let event = parse_event(line).map_err(|what| bad(format!("line {}: {what}", n + 1)))?;
            self.events.push(event);
        }
        Ok(())
    }
}
