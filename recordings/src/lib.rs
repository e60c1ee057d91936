//! Session recordings: asciicast v3, sealed at rest in chunks.
//!
//! Owns the recording file format (`<profile>/recordings/<id>.cast.sealed`),
//! writing it while a session runs, reading it back (a verified prefix of a
//! file that a crash cut short), listing recordings without a key, and
//! exporting plain asciicast v3.
//! Must never: put session data on disk in plaintext (the plaintext metadata
//! line holds only id, host, user, kind, start time and terminal size: no
//! output, no command), return bytes of a chunk that failed authentication,
//! accept a chunk out of order or from another recording, record keystrokes
//! unless asked to, or panic on a damaged file.
//!
//! File layout (version 1):
//!
//! ```text
//! gatehouse-recording/v1 {"id":…,"host":…,"user":…,"kind":"shell",…,"key_check":…}\n
//! chunk 0 ‖ chunk 1 ‖ … ‖ chunk N (FINAL flag)
//!
//! chunk = body_len u32 LE ‖ index u64 LE ‖ flags u8 ‖ nonce (24) ‖ body
//! body  = XChaCha20-Poly1305 ciphertext ‖ tag (16), body_len bytes
//! aad   = "gatehouse/recording/v1" ‖ SHA-256(metadata line) ‖ lp(id) ‖ index ‖ flags
//! ```
//!
//! The chunk plaintexts, concatenated, are an asciicast v3 file: chunk 0
//! starts with the header line and every chunk holds whole lines. Each chunk
//! is appended with one `write()`, so killing the writer leaves whole chunks.
//! A finished recording ends with a chunk flagged FINAL; a file without one
//! was cut short (sessiond crashed, or is still writing) and the chunks before
//! the cut stay readable. `key_check` (a hash of key and id) lets a reader say
//! "wrong key" instead of "chunk 0 failed authentication".

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use gatehouse_ipc::{Layout, SecretBytes};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The start of every recording file.
const MAGIC: &[u8] = b"gatehouse-recording/v1 ";
const AAD_DOMAIN: &[u8] = b"gatehouse/recording/v1";
const KEY_CHECK_DOMAIN: &[u8] = b"gatehouse/recording/key-check/v1";
/// File name suffix of a sealed recording.
pub const FILE_SUFFIX: &str = ".cast.sealed";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// `body_len (4) ‖ index (8) ‖ flags (1) ‖ nonce (24)`.
const CHUNK_HEADER_LEN: usize = 4 + 8 + 1 + NONCE_LEN;
const FLAG_FINAL: u8 = 0x01;
const KNOWN_FLAGS: u8 = FLAG_FINAL;

/// A chunk is sealed once its plaintext reaches this size.
const SEAL_AT: usize = 64 * 1024;
/// Longer output is split into several events (raw bytes before escaping).
const MAX_EVENT_TEXT: usize = 64 * 1024;
/// Readers refuse chunk bodies larger than this (the writer stays far below).
pub const MAX_CHUNK_BODY: usize = 16 * 1024 * 1024;
/// Readers refuse a metadata line longer than this.
const MAX_META_LINE: usize = 16 * 1024;
/// Marker labels are cut to this many bytes.
const MAX_MARKER: usize = 4 * 1024;
const ID_BYTES: usize = 16;

/// Where a profile keeps its recordings.
pub fn recordings_dir(layout: &Layout) -> PathBuf {
    layout.root.join("recordings")
}

/// The file of recording `id` in `dir`.
pub fn recording_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{FILE_SUFFIX}"))
}

/// A new random recording id: 32 lowercase hex digits.
pub fn new_recording_id() -> io::Result<String> {
    let mut b = [0u8; ID_BYTES];
    fill_random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| io::Error::other(format!("OS random source: {e}")))
}

/// Whether `id` has the form [`new_recording_id`] gives (so it is safe in a path).
pub fn is_recording_id(id: &str) -> bool {
    id.len() == 2 * ID_BYTES && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 32-byte key the broker answered `RecordingKey` with.
pub fn recording_key(secret: &SecretBytes) -> Result<Zeroizing<[u8; 32]>, RecordingError> {
    let mut key = Zeroizing::new([0u8; 32]);
    if secret.len() != key.len() {
        return Err(RecordingError::KeyLength(secret.len()));
    }
    key.copy_from_slice(secret.expose());
    Ok(key)
}

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
struct MetaLine {
    #[serde(flatten)]
    meta: RecordingMeta,
    key_check: String,
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
    fn new(meta: &RecordingMeta, opts: &RecordingOptions) -> CastHeader {
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

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("not a Gatehouse recording (the file does not start with \"gatehouse-recording/v1\")")]
    BadMagic,
    #[error(
        "the file ends inside its metadata line ({0} bytes): it was cut short while being created"
    )]
    MetaTruncated(usize),
    #[error("the metadata line is longer than {MAX_META_LINE} bytes")]
    MetaTooLong,
    #[error("the metadata line is not valid: {0}")]
    BadMeta(String),
    #[error("invalid recording id {0:?} (expected 32 lowercase hex digits)")]
    BadId(String),
    #[error("a recording key has 32 bytes, the broker gave {0}")]
    KeyLength(usize),
    #[error("wrong key for recording {0}")]
    WrongKey(String),
    #[error("chunk {index}: unknown flags {flags:#04x}")]
    UnknownFlags { index: u64, flags: u8 },
    #[error("chunk {index}: body length {len} is impossible (corrupt chunk header)")]
    BadChunkLength { index: u64, len: u64 },
    #[error(
        "chunk out of order: expected chunk {expected}, found chunk {found} (chunks were dropped, reordered or copied in)"
    )]
    ChunkOutOfOrder { expected: u64, found: u64 },
    #[error("chunk {index} failed authentication: it was altered, or moved from another recording")]
    ChunkAuth { index: u64 },
    #[error("{bytes} bytes follow the final chunk {index}")]
    DataAfterFinal { index: u64, bytes: u64 },
    #[error("chunk {index}: {what}")]
    BadContent { index: u64, what: String },
}

fn key_check(key: &[u8; 32], id: &str) -> String {
    let mut h = Sha256::new();
    h.update(KEY_CHECK_DOMAIN);
    h.update(key);
    h.update(id.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `domain ‖ SHA-256(metadata line) ‖ lp(id)`; index and flags follow per chunk.
fn aad_prefix(meta_line: &[u8], id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 32 + 4 + id.len() + 9);
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(&Sha256::digest(meta_line));
    aad.extend_from_slice(&(id.len() as u32).to_le_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn chunk_aad(prefix: &[u8], index: u64, flags: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(prefix.len() + 9);
    aad.extend_from_slice(prefix);
    aad.extend_from_slice(&index.to_le_bytes());
    aad.push(flags);
    aad
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20 turns the key and
/// the first 16 nonce bytes into a subkey, then ChaCha20-Poly1305 runs with
/// nonce `0000 ‖ last 8 bytes`. Byte for byte what
/// `chacha20poly1305::XChaCha20Poly1305` computes (tested); ring's
/// ChaCha20-Poly1305 runs about twice as fast on the recording path.
struct ChunkCipher {
    key: Zeroizing<[u8; 32]>,
}

impl ChunkCipher {
    fn inner(&self, nonce: &[u8; NONCE_LEN]) -> Option<(LessSafeKey, Nonce)> {
        let (head, tail) = nonce.split_first_chunk::<16>()?;
        let mut derived = chacha20::hchacha::<U10>(
            GenericArray::from_slice(&self.key[..]),
            GenericArray::from_slice(head),
        );
        let key = UnboundKey::new(&CHACHA20_POLY1305, &derived).ok();
        derived.as_mut_slice().zeroize();
        let mut inner_nonce = [0u8; 12];
        inner_nonce[4..].copy_from_slice(tail);
        Some((
            LessSafeKey::new(key?),
            Nonce::assume_unique_for_key(inner_nonce),
        ))
    }

    /// Encrypts `buf` in place; `None` only if the input is beyond the cipher's limits.
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let (key, nonce) = self.inner(nonce)?;
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Decrypts `buf` in place; `false` if authentication failed.
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        let Some((key, nonce)) = self.inner(nonce) else {
            return false;
        };
        let Ok(tag) = ring::aead::Tag::try_from(tag) else {
            return false;
        };
        key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf, 0..)
            .is_ok()
    }
}

// ---------------------------------------------------------------------------
// Writing

/// What [`RecordingWriter::finish`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRecording {
    pub path: PathBuf,
    pub bytes: u64,
    pub chunks: u64,
    pub duration: Duration,
}

#[derive(Clone, Copy)]
enum Stream {
    Output,
    Input,
}

impl Stream {
    fn code(self) -> &'static str {
        match self {
            Stream::Output => "o",
            Stream::Input => "i",
        }
    }
}

/// The first bytes of a UTF-8 character split across two writes.
#[derive(Default)]
struct Utf8Carry {
    bytes: [u8; 3],
    len: usize,
}

/// Writes one recording as the session runs.
///
/// Events are buffered and sealed into a chunk when the buffer passes 64 KiB
/// or on [`flush`](Self::flush) (call it on a timer, ~every 500 ms). Each
/// chunk is one `write()`; there is no fsync until [`finish`](Self::finish).
/// Dropping an unfinished writer seals what it holds, not flagged final (the
/// recording then reads as incomplete). After a write error the writer
/// refuses further events.
pub struct RecordingWriter {
    file: File,
    path: PathBuf,
    cipher: ChunkCipher,
    aad_prefix: Vec<u8>,
    next_index: u64,
    /// Reserved chunk header, then the plaintext lines of the next chunk.
    buf: Zeroizing<Vec<u8>>,
    /// Output with a carried partial character prepended.
    scratch: Zeroizing<Vec<u8>>,
    started: Instant,
    /// Clock reading (µs since `started`) of the last event.
    last_event_us: u64,
    event_open: bool,
    event_text_len: usize,
    output_carry: Utf8Carry,
    input_carry: Utf8Carry,
    record_input: bool,
    bytes_written: u64,
    finished: bool,
    failed: bool,
}

impl RecordingWriter {
    /// Creates `dir/<meta.id>.cast.sealed` (mode 0600; `dir` is created 0700)
    /// and writes the metadata line and the header chunk.
    pub fn create(
        dir: &Path,
        key: Zeroizing<[u8; 32]>,
        meta: RecordingMeta,
        opts: RecordingOptions,
    ) -> io::Result<RecordingWriter> {
        if !is_recording_id(&meta.id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                RecordingError::BadId(meta.id),
            ));
        }
        gatehouse_ipc::paths::make_private_dir(dir).map_err(io::Error::other)?;
        let header = CastHeader::new(&meta, &opts);
        let mut meta_line = MAGIC.to_vec();
        let line = MetaLine {
            key_check: key_check(&key, &meta.id),
            meta,
        };
        serde_json::to_writer(&mut meta_line, &line)?;
        meta_line.push(b'\n');
        if meta_line.len() > MAX_META_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                RecordingError::MetaTooLong,
            ));
        }
        let path = recording_path(dir, &line.meta.id);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&meta_line)?;

        let mut buf = Zeroizing::new(Vec::with_capacity(
            CHUNK_HEADER_LEN + SEAL_AT + 6 * MAX_EVENT_TEXT + 64,
        ));
        buf.resize(CHUNK_HEADER_LEN, 0);
        serde_json::to_writer(&mut *buf, &header)?;
        buf.push(b'\n');

        let mut w = RecordingWriter {
            file,
            cipher: ChunkCipher { key },
            aad_prefix: aad_prefix(&meta_line, &line.meta.id),
            path,
            next_index: 0,
            buf,
            scratch: Zeroizing::new(Vec::new()),
            started: Instant::now(),
            last_event_us: 0,
            event_open: false,
            event_text_len: 0,
            output_carry: Utf8Carry::default(),
            input_carry: Utf8Carry::default(),
            record_input: opts.record_input,
            bytes_written: meta_line.len() as u64,
            finished: false,
            failed: false,
        };
        w.seal(false)?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the device sent to the terminal.
    pub fn output(&mut self, data: &[u8]) -> io::Result<()> {
        self.text(Stream::Output, data)
    }

    /// Keystrokes; ignored unless the recording was created with `record_input`.
    pub fn input(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.record_input {
            return Ok(());
        }
        self.text(Stream::Input, data)
    }

    pub fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        self.usable()?;
        let t = self.clock_us();
        self.whole_event("r", t, &format!("{cols}x{rows}"))
    }

    /// A marker (cut to 4 KiB).
    pub fn marker(&mut self, label: &str) -> io::Result<()> {
        self.usable()?;
        let t = self.clock_us();
        let label = &label[..floor_char_boundary(label, MAX_MARKER)];
        self.whole_event("m", t, label)
    }

    /// The session's exit status; `None` (killed by a signal, or unknown) records nothing.
    pub fn exit(&mut self, status: Option<u32>) -> io::Result<()> {
        self.usable()?;
        match status {
            Some(n) => {
                let t = self.clock_us();
                self.whole_event("x", t, &n.to_string())
            }
            None => Ok(()),
        }
    }

    /// Seals what is buffered into a chunk (nothing if nothing is buffered).
    pub fn flush(&mut self) -> io::Result<()> {
        self.usable()?;
        self.seal(false)
    }

    /// Ends the recording: a partial character left at the end becomes U+FFFD,
    /// the last chunk is sealed with the FINAL flag, and the file is synced.
    pub fn finish(mut self) -> io::Result<FinishedRecording> {
        self.usable()?;
        let t = self.clock_us();
        for stream in [Stream::Output, Stream::Input] {
            let carry = self.carry_mut(stream);
            if carry.len > 0 {
                carry.len = 0;
                self.event_text(stream.code(), t, "\u{FFFD}")?;
                self.end_event()?;
            }
        }
        self.seal(true)?;
        self.finished = true;
        self.file.sync_all()?;
        Ok(FinishedRecording {
            path: self.path.clone(),
            bytes: self.bytes_written,
            chunks: self.next_index,
            duration: Duration::from_micros(self.last_event_us),
        })
    }

    fn usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "the recording stopped after an earlier write error",
            ));
        }
        if self.finished {
            return Err(io::Error::other("the recording is finished"));
        }
        Ok(())
    }

    fn clock_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn carry_mut(&mut self, stream: Stream) -> &mut Utf8Carry {
        match stream {
            Stream::Output => &mut self.output_carry,
            Stream::Input => &mut self.input_carry,
        }
    }

    fn text(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        self.usable()?;
        if data.is_empty() {
            return Ok(());
        }
        let t = self.clock_us();
        let code = stream.code();
        // A character split across writes: prepend its first bytes (rare, small copy).
        let mut joined = std::mem::take(&mut self.scratch);
        let carry = self.carry_mut(stream);
        let input: &[u8] = if carry.len == 0 {
            data
        } else {
            joined.clear();
            joined.extend_from_slice(&carry.bytes[..carry.len]);
            joined.extend_from_slice(data);
            carry.len = 0;
            &joined
        };
        let result = self.text_events(stream, code, t, input);
        self.scratch = joined;
        result
    }

    fn text_events(&mut self, stream: Stream, code: &str, t: u64, input: &[u8]) -> io::Result<()> {
        let (body, tail) = input.split_at(input.len() - incomplete_tail_len(input));
        match std::str::from_utf8(body) {
            // The common case: one fast validation pass.
            Ok(text) => self.event_text(code, t, text)?,
            Err(_) => {
                for piece in body.utf8_chunks() {
                    self.event_text(code, t, piece.valid())?;
                    if !piece.invalid().is_empty() {
                        self.event_text(code, t, "\u{FFFD}")?;
                    }
                }
            }
        }
        let carry = self.carry_mut(stream);
        carry.bytes[..tail.len()].copy_from_slice(tail);
        carry.len = tail.len();
        self.end_event()
    }

    fn begin_event(&mut self, code: &str, t: u64) {
        let interval = t.saturating_sub(self.last_event_us);
        self.last_event_us = self.last_event_us.max(t);
        push_event_start(&mut self.buf, interval, code);
        self.event_open = true;
        self.event_text_len = 0;
    }

    /// Appends `s` to the open text event (opening one if needed), splitting
    /// into events of at most `MAX_EVENT_TEXT` bytes.
    fn event_text(&mut self, code: &str, t: u64, mut s: &str) -> io::Result<()> {
        while !s.is_empty() {
            if !self.event_open {
                self.begin_event(code, t);
            }
            let room = MAX_EVENT_TEXT - self.event_text_len;
            let cut = if s.len() <= room {
                s.len()
            } else {
                floor_char_boundary(s, room)
            };
            if cut == 0 {
                self.end_event()?;
                continue;
            }
            let (now, rest) = s.split_at(cut);
            escape_json_into(&mut self.buf, now);
            self.event_text_len += cut;
            s = rest;
            if self.event_text_len >= MAX_EVENT_TEXT {
                self.end_event()?;
            }
        }
        Ok(())
    }

    fn end_event(&mut self) -> io::Result<()> {
        if !self.event_open {
            return Ok(());
        }
        self.buf.extend_from_slice(b"\"]\n");
        self.event_open = false;
        self.event_text_len = 0;
        if self.buf.len() - CHUNK_HEADER_LEN >= SEAL_AT {
            self.seal(false)?;
        }
        Ok(())
    }

    fn whole_event(&mut self, code: &str, t: u64, data: &str) -> io::Result<()> {
        self.begin_event(code, t);
        escape_json_into(&mut self.buf, data);
        self.end_event()
    }

    /// Encrypts the buffered plaintext in place and appends it as one chunk.
    fn seal(&mut self, final_chunk: bool) -> io::Result<()> {
        let plain_len = self.buf.len() - CHUNK_HEADER_LEN;
        if plain_len == 0 && !final_chunk {
            return Ok(());
        }
        let body_len = plain_len + TAG_LEN;
        if body_len > MAX_CHUNK_BODY {
            self.failed = true;
            return Err(io::Error::other("recording chunk too large"));
        }
        let index = self.next_index;
        let flags = if final_chunk { FLAG_FINAL } else { 0 };
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let aad = chunk_aad(&self.aad_prefix, index, flags);
        let Some(tag) = self
            .cipher
            .seal(&nonce, &aad, &mut self.buf[CHUNK_HEADER_LEN..])
        else {
            self.failed = true;
            return Err(io::Error::other("recording chunk could not be sealed"));
        };
        self.buf.extend_from_slice(&tag);
        self.buf[0..4].copy_from_slice(&(body_len as u32).to_le_bytes());
        self.buf[4..12].copy_from_slice(&index.to_le_bytes());
        self.buf[12] = flags;
        self.buf[13..CHUNK_HEADER_LEN].copy_from_slice(&nonce);
        let written = self.file.write_all(&self.buf);
        // The buffer now holds ciphertext only; start the next chunk.
        self.buf.truncate(CHUNK_HEADER_LEN);
        if let Err(e) = written {
            self.failed = true;
            // Best effort: cut a partly written chunk so the file stays a clean prefix.
            let _ = self.file.set_len(self.bytes_written);
            return Err(e);
        }
        self.bytes_written += (CHUNK_HEADER_LEN + body_len) as u64;
        self.next_index += 1;
        Ok(())
    }
}

impl Drop for RecordingWriter {
    fn drop(&mut self) {
        if !self.finished && !self.failed {
            let _ = self.seal(false);
        }
    }
}

/// `[interval, "code", "` with the interval in seconds (microsecond precision).
fn push_event_start(out: &mut Vec<u8>, interval_us: u64, code: &str) {
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
fn incomplete_tail_len(b: &[u8]) -> usize {
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
fn floor_char_boundary(s: &str, at: usize) -> usize {
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
static ESCAPE: [u8; 256] = {
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
fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    control | has_zero(w ^ (ONES * b'"' as u64)) | has_zero(w ^ (ONES * b'\\' as u64))
}

/// Appends `s` as the contents of a JSON string (without quotes). Bytes that
/// need no escaping are skipped 8 at a time and copied in runs.
fn escape_json_into(out: &mut Vec<u8>, s: &str) {
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

/// Splits off and parses the metadata line; returns it and its length with the newline.
fn parse_meta_line(bytes: &[u8]) -> Result<(MetaLine, usize), RecordingError> {
    if !bytes.starts_with(MAGIC) {
        return Err(if MAGIC.starts_with(bytes) {
            RecordingError::MetaTruncated(bytes.len())
        } else {
            RecordingError::BadMagic
        });
    }
    let window = &bytes[..bytes.len().min(MAX_META_LINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return Err(if bytes.len() < MAX_META_LINE {
            RecordingError::MetaTruncated(bytes.len())
        } else {
            RecordingError::MetaTooLong
        });
    };
    let line: MetaLine = serde_json::from_slice(&bytes[MAGIC.len()..nl])
        .map_err(|e| RecordingError::BadMeta(e.to_string()))?;
    if !is_recording_id(&line.meta.id) {
        return Err(RecordingError::BadId(line.meta.id));
    }
    Ok((line, nl + 1))
}

struct ChunkHeader {
    body_len: usize,
    index: u64,
    flags: u8,
    nonce: [u8; NONCE_LEN],
}

impl ChunkHeader {
    /// The header at the start of `b`, if `b` holds a whole one.
    fn parse(b: &[u8]) -> Option<ChunkHeader> {
        let (len, rest) = b.split_first_chunk::<4>()?;
        let (index, rest) = rest.split_first_chunk::<8>()?;
        let (flags, rest) = rest.split_first()?;
        let (nonce, _) = rest.split_first_chunk::<NONCE_LEN>()?;
        Some(ChunkHeader {
            body_len: u32::from_le_bytes(*len) as usize,
            index: u64::from_le_bytes(*index),
            flags: *flags,
            nonce: *nonce,
        })
    }
}

/// The rules chunk headers follow, checked without the key.
#[derive(Default)]
struct Framing {
    next_index: u64,
    /// Index of the final chunk, once seen.
    final_seen: Option<u64>,
}

impl Framing {
    fn check(&self, h: &ChunkHeader) -> Result<(), RecordingError> {
        if let Some(index) = self.final_seen {
            return Err(RecordingError::DataAfterFinal {
                index,
                bytes: (CHUNK_HEADER_LEN + h.body_len) as u64,
            });
        }
        if h.index != self.next_index {
            return Err(RecordingError::ChunkOutOfOrder {
                expected: self.next_index,
                found: h.index,
            });
        }
        if h.flags & !KNOWN_FLAGS != 0 {
            return Err(RecordingError::UnknownFlags {
                index: h.index,
                flags: h.flags,
            });
        }
        if h.body_len < TAG_LEN || h.body_len > MAX_CHUNK_BODY {
            return Err(RecordingError::BadChunkLength {
                index: h.index,
                len: h.body_len as u64,
            });
        }
        Ok(())
    }

    fn accept(&mut self, h: &ChunkHeader) {
        if h.flags & FLAG_FINAL != 0 {
            self.final_seen = Some(h.index);
        }
        self.next_index += 1;
    }

    /// Bytes at the end too few for a chunk header.
    fn trailing(&self, bytes: u64) -> Result<(), RecordingError> {
        match self.final_seen {
            Some(index) => Err(RecordingError::DataAfterFinal { index, bytes }),
            None => Ok(()),
        }
    }
}

/// Parses chunk plaintexts as asciicast lines.
#[derive(Default)]
struct CastParser {
    header: Option<CastHeader>,
    events: Vec<Event>,
}

impl CastParser {
    fn feed(&mut self, index: u64, plain: &[u8]) -> Result<(), RecordingError> {
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

fn parse_event(line: &[u8]) -> Result<Event, String> {
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

// ---------------------------------------------------------------------------
// Listing (no key) and export

/// What [`scan`] learns from a file without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkScan {
    pub chunks: u64,
    pub complete: bool,
    pub trailing_bytes: u64,
}

/// Reads the metadata line of `path` and walks its chunk headers (no decryption).
pub fn scan(path: &Path) -> Result<(RecordingMeta, ChunkScan), RecordingError> {
    let io_err = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let mut head = Vec::with_capacity(MAX_META_LINE);
    (&file)
        .take(MAX_META_LINE as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let (line, meta_len) = parse_meta_line(&head)?;
    let mut framing = Framing::default();
    let mut pos = meta_len as u64;
    let mut trailing_bytes = 0;
    let mut hbuf = [0u8; CHUNK_HEADER_LEN];
    while pos < size {
        let left = size - pos;
        if left < CHUNK_HEADER_LEN as u64 {
            framing.trailing(left)?;
            trailing_bytes = left;
            break;
        }
        file.read_exact_at(&mut hbuf, pos).map_err(io_err)?;
        let Some(h) = ChunkHeader::parse(&hbuf) else {
            break;
        };
        framing.check(&h)?;
        let total = (CHUNK_HEADER_LEN + h.body_len) as u64;
        if left < total {
            trailing_bytes = left;
            break;
        }
        framing.accept(&h);
        pos += total;
    }
    Ok((
        line.meta,
        ChunkScan {
            chunks: framing.next_index,
            complete: framing.final_seen.is_some(),
            trailing_bytes,
        },
    ))
}

/// One recording as [`list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecording {
    pub path: PathBuf,
    pub meta: RecordingMeta,
    pub size: u64,
    /// The file's modification time (its last chunk), Unix ms.
    pub modified_ms: Option<u64>,
    pub scan: ChunkScan,
}

impl ListedRecording {
    /// For a complete recording, from its start to its last write.
    pub fn duration_ms(&self) -> Option<u64> {
        if !self.scan.complete {
            return None;
        }
        Some(self.modified_ms?.saturating_sub(self.meta.started_ms))
    }
}

/// A file in the recordings directory that [`list`] could not read.
#[derive(Debug)]
pub struct UnreadableRecording {
    pub path: PathBuf,
    pub error: RecordingError,
}

/// Every `*.cast.sealed` file in `dir` (none if `dir` does not exist), oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<Result<ListedRecording, UnreadableRecording>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(FILE_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let md = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(source) => {
                out.push(Err(UnreadableRecording {
                    error: RecordingError::Io {
                        path: path.clone(),
                        source,
                    },
                    path,
                }));
                continue;
            }
        };
        let modified_ms = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.push(match scan(&path) {
            Ok((meta, scan)) => Ok(ListedRecording {
                path,
                meta,
                size: md.len(),
                modified_ms,
                scan,
            }),
            Err(error) => Err(UnreadableRecording { path, error }),
        });
    }
    out.sort_by_key(|r| match r {
        Ok(l) => (0, l.meta.started_ms, l.path.clone()),
        Err(u) => (1, 0, u.path.clone()),
    });
    Ok(out)
}

/// Writes `rec` as a plain asciicast v3 file (header, then one event per line).
pub fn write_asciicast(rec: &Recording, w: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    serde_json::to_writer(&mut line, &rec.header)?;
    line.push(b'\n');
    w.write_all(&line)?;
    for e in &rec.events {
        line.clear();
        let (code, data) = e.data.code_and_data();
        push_event_start(&mut line, e.interval_us, code);
        escape_json_into(&mut line, &data);
        line.extend_from_slice(b"\"]\n");
        w.write_all(&line)?;
    }
    Ok(())
}

/// `rec` as a plain asciicast v3 file, which `asciinema play` (3.x) plays.
pub fn export_asciicast(rec: &Recording) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_asciicast(rec, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

    fn random_key() -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut k[..]).expect("random");
        k
    }

    fn meta(id: &str) -> RecordingMeta {
        RecordingMeta {
            id: id.into(),
            host: "core-sw1".into(),
            user: "admin".into(),
            kind: RecordingKind::Shell,
            started_ms: 1_760_000_000_123,
            cols: 80,
            rows: 24,
        }
    }

    fn opts() -> RecordingOptions {
        RecordingOptions {
            term_type: Some("xterm-256color".into()),
            title: Some("core-sw1".into()),
            command: None,
            record_input: false,
        }
    }

    fn writer(dir: &Path, key: &Zeroizing<[u8; 32]>) -> RecordingWriter {
        let id = new_recording_id().expect("id");
        RecordingWriter::create(dir, key.clone(), meta(&id), opts()).expect("create")
    }

    fn read(bytes: &[u8], key: &[u8; 32]) -> Result<Recording, RecordingError> {
        RecordingReader::from_bytes(bytes, key)
    }

    /// Byte ranges `(start, end)` of each chunk in a file.
    fn chunk_ranges(bytes: &[u8]) -> Vec<(usize, usize)> {
        let (_, mut pos) = parse_meta_line(bytes).expect("meta");
        let mut out = Vec::new();
        while let Some(h) = ChunkHeader::parse(&bytes[pos..]) {
            let end = pos + CHUNK_HEADER_LEN + h.body_len;
            out.push((pos, end));
            pos = end;
        }
        out
    }

    /// A finished recording of `n` outputs of ~`size` bytes, flushed every `every`.
    fn many_chunks(
        dir: &Path,
        key: &Zeroizing<[u8; 32]>,
        n: usize,
        every: usize,
    ) -> (PathBuf, String) {
        let mut w = writer(dir, key);
        let mut all = String::new();
        for i in 0..n {
            let line = format!("line {i}: \x1b[1mbold\x1b[0m \"quoted\" ünïcödé ☃\r\n");
            w.output(line.as_bytes()).expect("output");
            all.push_str(&line);
            if i % every == every - 1 {
                w.flush().expect("flush");
            }
        }
        w.exit(Some(0)).expect("exit");
        let done = w.finish().expect("finish");
        (done.path, all)
    }

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let mut w = writer(dir.path(), &key);
        w.output(b"hello\r\n").expect("output");
        w.input(b"secret\r").expect("input is ignored");
        w.resize(120, 40).expect("resize");
        w.marker("before reload").expect("marker");
        w.output(b"\x1b[31mred\x1b[0m \\ \"q\" \t\x07\x7f")
            .expect("output");
        w.exit(Some(3)).expect("exit");
        let id = w
            .path()
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let done = w.finish().expect("finish");
        assert_eq!(done.chunks, 2, "header chunk and final chunk");
        assert!(id.ends_with(FILE_SUFFIX));

        let rec = RecordingReader::open(&done.path, &key).expect("open");
        assert!(rec.complete);
        assert_eq!(rec.trailing_bytes, 0);
        assert_eq!(rec.chunks, 2);
        assert_eq!(rec.meta, meta(&rec.meta.id));
        assert_eq!(rec.header.version, 3);
        assert_eq!(rec.header.term.cols, 80);
        assert_eq!(rec.header.term.term_type.as_deref(), Some("xterm-256color"));
        assert_eq!(rec.header.timestamp, Some(1_760_000_000));
        let data: Vec<_> = rec.events.iter().map(|e| e.data.clone()).collect();
        assert_eq!(
            data,
            vec![
                EventData::Output("hello\r\n".into()),
                EventData::Resize {
                    cols: 120,
                    rows: 40
                },
                EventData::Marker("before reload".into()),
                EventData::Output("\x1b[31mred\x1b[0m \\ \"q\" \t\x07\x7f".into()),
                EventData::Exit(3),
            ]
        );
        assert_eq!(
            rec.duration(),
            Duration::from_micros(rec.events.iter().map(|e| e.interval_us).sum())
        );

        // Nothing of the session is on disk in plaintext.
        let raw = std::fs::read(&done.path).expect("read");
        for needle in [&b"hello"[..], b"reload", b"xterm", b"red"] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "{:?} found in plaintext",
                String::from_utf8_lossy(needle)
            );
        }
        assert_eq!(raw.len() as u64, done.bytes);
    }

    #[test]
    fn input_is_recorded_only_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let id = new_recording_id().expect("id");
        let mut o = opts();
        o.record_input = true;
        o.command = Some("show running-config".into());
        let mut w = RecordingWriter::create(dir.path(), key.clone(), meta(&id), o).expect("create");
        w.input(b"ls\r").expect("input");
        w.output(b"file\r\n").expect("output");
        let done = w.finish().expect("finish");
        let rec = RecordingReader::open(&done.path, &key).expect("open");
        assert_eq!(rec.header.command.as_deref(), Some("show running-config"));
        assert_eq!(rec.events[0].data, EventData::Input("ls\r".into()));
        assert_eq!(rec.events[1].data, EventData::Output("file\r\n".into()));
        let raw = std::fs::read(&done.path).expect("read");
        assert!(
            !raw.windows(7).any(|w| w == b"running"),
            "command in plaintext"
        );
    }

    #[test]
    fn many_chunks_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, all) = many_chunks(dir.path(), &key, 400, 37);
        let rec = RecordingReader::open(&path, &key).expect("open");
        assert!(rec.complete);
        assert!(rec.chunks > 10, "{} chunks", rec.chunks);
        assert_eq!(rec.output_text(), all);
        assert_eq!(
            rec.events.last().map(|e| &e.data),
            Some(&EventData::Exit(0))
        );
    }

    #[test]
    fn large_output_is_split_into_events_and_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let mut w = writer(dir.path(), &key);
        // 300 KB in one call, multibyte characters straddling every split point.
        let big: String = "aé☃𝄞\n".repeat(300_000 / 11);
        w.output(big.as_bytes()).expect("output");
        let done = w.finish().expect("finish");
        let rec = RecordingReader::open(&done.path, &key).expect("open");
        assert_eq!(rec.output_text(), big);
        assert!(rec.events.len() >= 4);
        for e in &rec.events {
            if let EventData::Output(s) = &e.data {
                assert!(s.len() <= MAX_EVENT_TEXT);
            }
        }
        assert!(
            rec.events[1..]
                .iter()
                .all(|e| e.interval_us == 0 || e.interval_us < 1_000_000)
        );
        assert!(rec.chunks >= 3, "{} chunks", rec.chunks);
    }

    #[test]
    fn truncation_leaves_a_readable_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, all) = many_chunks(dir.path(), &key, 60, 7);
        let bytes = std::fs::read(&path).expect("read");
        let ranges = chunk_ranges(&bytes);
        let meta_len = ranges[0].0;
        for cut in 0..bytes.len() {
            let r = read(&bytes[..cut], &key);
            if cut < meta_len {
                assert!(
                    matches!(r, Err(RecordingError::MetaTruncated(n)) if n == cut),
                    "cut {cut}: {r:?}"
                );
                continue;
            }
            let rec = r.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert!(!rec.complete, "cut {cut}");
            let whole = ranges.iter().filter(|(_, end)| *end <= cut).count();
            assert_eq!(rec.chunks, whole as u64, "cut {cut}");
            let last_end = ranges
                .iter()
                .map(|r| r.1)
                .filter(|e| *e <= cut)
                .max()
                .unwrap_or(meta_len);
            assert_eq!(rec.trailing_bytes, (cut - last_end) as u64, "cut {cut}");
            assert!(all.starts_with(&rec.output_text()), "cut {cut}");
        }
        let rec = read(&bytes, &key).expect("whole");
        assert!(rec.complete);
        assert_eq!(rec.output_text(), all);
    }

    /// The writer side of `sigkill_leaves_a_readable_prefix`: records numbered
    /// lines until killed. Runs only when that test starts it.
    #[test]
    #[ignore = "child process of sigkill_leaves_a_readable_prefix"]
    fn sigkill_child_writer() {
        let (Some(dir), Some(key_hex)) = (
            std::env::var_os("GATEHOUSE_TEST_REC_DIR"),
            std::env::var("GATEHOUSE_TEST_REC_KEY").ok(),
        ) else {
            return;
        };
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&key_hex[2 * i..2 * i + 2], 16).expect("hex key");
        }
        let mut w = writer(Path::new(&dir), &key);
        for i in 0u64.. {
            w.output(format!("line {i}\r\n").as_bytes())
                .expect("output");
            if i % 50 == 0 {
                w.flush().expect("flush");
            }
        }
    }

    #[test]
    fn sigkill_leaves_a_readable_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "recording::tests::sigkill_child_writer",
                "--ignored",
            ])
            .env("GATEHOUSE_TEST_REC_DIR", dir.path())
            .env("GATEHOUSE_TEST_REC_KEY", &key_hex)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn the writer");
        let deadline = Instant::now() + Duration::from_secs(60);
        let path = loop {
            let listed = list(dir.path()).expect("list");
            if let Some(Ok(l)) = listed.first()
                && l.scan.chunks >= 20
            {
                break l.path.clone();
            }
            assert!(Instant::now() < deadline, "the writer made no progress");
            std::thread::sleep(Duration::from_millis(20));
        };
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let rec = RecordingReader::open(&path, &key).expect("readable after SIGKILL");
        assert!(!rec.complete);
        assert!(rec.chunks >= 20);
        let text = rec.output_text();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(lines.len() > 50);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(*l, format!("line {i}"));
        }
    }

    #[test]
    fn dropped_writer_reads_as_incomplete_with_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let mut w = writer(dir.path(), &key);
        w.output(b"before crash\r\n").expect("output");
        let path = w.path().to_path_buf();
        drop(w);
        let rec = RecordingReader::open(&path, &key).expect("open");
        assert!(!rec.complete);
        assert_eq!(rec.output_text(), "before crash\r\n");
    }

    #[test]
    fn flipped_bit_names_the_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, _) = many_chunks(dir.path(), &key, 60, 7);
        let bytes = std::fs::read(&path).expect("read");
        let ranges = chunk_ranges(&bytes);
        for (k, (start, end)) in ranges.iter().enumerate() {
            // Nonce, ciphertext and tag: authentication fails.
            for at in [
                start + 13,
                start + CHUNK_HEADER_LEN,
                (start + end) / 2,
                end - 1,
            ] {
                let mut b = bytes.clone();
                b[at] ^= 0x10;
                match read(&b, &key) {
                    Err(RecordingError::ChunkAuth { index }) => assert_eq!(index, k as u64),
                    other => panic!("chunk {k} byte {at}: {other:?}"),
                }
            }
            // The index: out of order. The flags: unknown, or FINAL too early.
            let mut b = bytes.clone();
            b[start + 4] ^= 0x40;
            assert!(
                matches!(read(&b, &key), Err(RecordingError::ChunkOutOfOrder { expected, .. }) if expected == k as u64)
            );
            let mut b = bytes.clone();
            b[start + 12] ^= 0x80;
            assert!(
                matches!(read(&b, &key), Err(RecordingError::UnknownFlags { index, .. }) if index == k as u64)
            );
            let mut b = bytes.clone();
            b[start + 12] ^= FLAG_FINAL;
            assert!(
                matches!(read(&b, &key), Err(RecordingError::ChunkAuth { index }) if index == k as u64)
            );
        }
    }

    #[test]
    fn random_damage_gives_an_error_or_a_verified_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, all) = many_chunks(dir.path(), &key, 40, 6);
        let bytes = std::fs::read(&path).expect("read");
        let damaged = dir.path().join(format!("{}{FILE_SUFFIX}", "f".repeat(32)));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % b.len();
                match next() % 4 {
                    0 => b[at] ^= 1 << (next() % 8),
                    1 => b[at] = next() as u8,
                    2 => b.truncate(at),
                    _ => b.insert(at, next() as u8),
                }
                if b.is_empty() {
                    break;
                }
            }
            // Whatever is returned was authenticated: only ever a prefix of the output.
            if let Ok(rec) = read(&b, &key) {
                assert!(all.starts_with(&rec.output_text()), "round {round}");
            }
            std::fs::write(&damaged, &b).expect("write");
            let _ = scan(&damaged);
        }
    }

    #[test]
    fn altered_metadata_fails_authentication() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, _) = many_chunks(dir.path(), &key, 10, 3);
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.contains("\"host\":\"core-sw1\""));
        let mut b = bytes.clone();
        let at = text.find("core-sw1").expect("host");
        b[at] = b'X';
        assert!(matches!(
            read(&b, &key),
            Err(RecordingError::ChunkAuth { index: 0 })
        ));
    }

    #[test]
    fn chunks_from_another_recording_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        // Same key, same content and chunk sizes: only the binding differs.
        let (a, _) = many_chunks(dir.path(), &key, 30, 5);
        let (b, _) = many_chunks(dir.path(), &key, 30, 5);
        let a = std::fs::read(a).expect("a");
        let b = std::fs::read(b).expect("b");
        let ra = chunk_ranges(&a);
        let rb = chunk_ranges(&b);
        assert_eq!(ra.len(), rb.len());
        let k = 2;
        let mut mixed = a[..ra[k].0].to_vec();
        mixed.extend_from_slice(&b[rb[k].0..rb[k].1]);
        mixed.extend_from_slice(&a[ra[k].1..]);
        assert!(matches!(
            read(&mixed, &key),
            Err(RecordingError::ChunkAuth { index: 2 })
        ));
    }

    #[test]
    fn reordered_or_dropped_chunks_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, _) = many_chunks(dir.path(), &key, 30, 5);
        let bytes = std::fs::read(&path).expect("read");
        let r = chunk_ranges(&bytes);
        // Swap chunks 2 and 3.
        let mut swapped = bytes[..r[2].0].to_vec();
        swapped.extend_from_slice(&bytes[r[3].0..r[3].1]);
        swapped.extend_from_slice(&bytes[r[2].0..r[2].1]);
        swapped.extend_from_slice(&bytes[r[3].1..]);
        assert!(matches!(
            read(&swapped, &key),
            Err(RecordingError::ChunkOutOfOrder {
                expected: 2,
                found: 3
            })
        ));
        // Drop chunk 2.
        let mut dropped = bytes[..r[2].0].to_vec();
        dropped.extend_from_slice(&bytes[r[2].1..]);
        assert!(matches!(
            read(&dropped, &key),
            Err(RecordingError::ChunkOutOfOrder {
                expected: 2,
                found: 3
            })
        ));
        // Anything after the final chunk.
        let mut extra = bytes.clone();
        extra.extend_from_slice(&bytes[r[1].0..r[1].1]);
        assert!(matches!(
            read(&extra, &key),
            Err(RecordingError::DataAfterFinal { .. })
        ));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            read(&extra, &key),
            Err(RecordingError::DataAfterFinal { bytes: 1, .. })
        ));
    }

    #[test]
    fn wrong_key_and_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, _) = many_chunks(dir.path(), &key, 3, 1);
        let bytes = std::fs::read(&path).expect("read");
        let other = random_key();
        let e = read(&bytes, &other).expect_err("wrong key");
        assert!(matches!(e, RecordingError::WrongKey(_)), "{e:?}");
        assert!(e.to_string().starts_with("wrong key for recording "));
        assert!(matches!(
            read(b"{\"version\":3}\n", &key),
            Err(RecordingError::BadMagic)
        ));
        assert!(matches!(
            read(b"", &key),
            Err(RecordingError::MetaTruncated(0))
        ));
        assert!(matches!(
            read(b"gatehouse-recording/v1 {}\n", &key),
            Err(RecordingError::BadMeta(_))
        ));
        let mut long = MAGIC.to_vec();
        long.resize(MAX_META_LINE + 10, b' ');
        assert!(matches!(
            read(&long, &key),
            Err(RecordingError::MetaTooLong)
        ));
        let evil = concat!(
            r#"gatehouse-recording/v1 {"id":"../../x","host":"h","user":"u","kind":"shell","#,
            r#""started_ms":0,"cols":1,"rows":1,"key_check":""}"#,
            "\n"
        );
        assert!(matches!(
            read(evil.as_bytes(), &key),
            Err(RecordingError::BadId(_))
        ));
        // A huge length in a chunk header.
        let r = chunk_ranges(&bytes);
        let mut b = bytes.clone();
        b[r[1].0 + 3] = 0x7f;
        assert!(matches!(
            read(&b, &key),
            Err(RecordingError::BadChunkLength { index: 1, .. })
        ));
        assert!(RecordingReader::open(&dir.path().join("missing"), &key).is_err());
        let secret = SecretBytes::copy_from(&[1u8; 31]);
        assert!(matches!(
            recording_key(&secret),
            Err(RecordingError::KeyLength(31))
        ));
        let secret = SecretBytes::copy_from(&[7u8; 32]);
        assert_eq!(*recording_key(&secret).expect("key"), [7u8; 32]);
    }

    #[test]
    fn multibyte_characters_split_across_writes_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let text = "né ☃ 𝄞 ok";
        let b = text.as_bytes();
        for split in 0..=b.len() {
            let mut w = writer(dir.path(), &key);
            w.output(&b[..split]).expect("first");
            w.flush().expect("flush between the halves");
            w.output(&b[split..]).expect("second");
            let done = w.finish().expect("finish");
            let rec = RecordingReader::open(&done.path, &key).expect("open");
            assert_eq!(rec.output_text(), text, "split at {split}");
        }
        // One byte at a time.
        let mut w = writer(dir.path(), &key);
        for byte in b {
            w.output(std::slice::from_ref(byte)).expect("byte");
        }
        let done = w.finish().expect("finish");
        let rec = RecordingReader::open(&done.path, &key).expect("open");
        assert_eq!(rec.output_text(), text);
        // Truly invalid bytes become U+FFFD; a partial character at the end too.
        let mut w = writer(dir.path(), &key);
        w.output(b"a\xffb\xc3(c").expect("invalid");
        w.output(b"\xe2\x98").expect("partial at the end");
        let done = w.finish().expect("finish");
        let rec = RecordingReader::open(&done.path, &key).expect("open");
        assert_eq!(rec.output_text(), "a\u{FFFD}b\u{FFFD}(c\u{FFFD}");
    }

    #[test]
    fn chunk_cipher_is_standard_xchacha20_poly1305() {
        let key = random_key();
        let ours = ChunkCipher { key: key.clone() };
        let reference = XChaCha20Poly1305::new(Key::from_slice(&key[..]));
        for len in [0usize, 1, 63, 64, 65, 1000, 70_000] {
            let mut nonce = [0u8; NONCE_LEN];
            fill_random(&mut nonce).expect("nonce");
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut a = plain.clone();
            let tag = ours.seal(&nonce, b"aad", &mut a).expect("seal");
            let mut b = plain.clone();
            let rtag = reference
                .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"aad", &mut b)
                .expect("reference seal");
            assert_eq!(a, b, "ciphertext, {len} bytes");
            assert_eq!(&tag[..], &rtag[..], "tag, {len} bytes");
            assert!(ours.open(&nonce, b"aad", &mut a, &tag));
            assert_eq!(a, plain);
            assert!(!ours.open(&nonce, b"aaD", &mut b.clone(), &tag));
            let mut bad = tag;
            bad[0] ^= 1;
            assert!(!ours.open(&nonce, b"aad", &mut b, &bad));
        }
    }

    #[test]
    fn incomplete_tail_is_found_only_for_a_cut_character() {
        let snow = "☃".as_bytes(); // e2 98 83
        let clef = "𝄞".as_bytes(); // f0 9d 84 9e
        assert_eq!(incomplete_tail_len(b""), 0);
        assert_eq!(incomplete_tail_len(b"abc"), 0);
        assert_eq!(incomplete_tail_len(snow), 0);
        assert_eq!(incomplete_tail_len(&snow[..1]), 1);
        assert_eq!(incomplete_tail_len(&snow[..2]), 2);
        assert_eq!(incomplete_tail_len(&clef[..3]), 3);
        assert_eq!(incomplete_tail_len(clef), 0);
        assert_eq!(
            incomplete_tail_len(b"a\x9d\x84\x9e"),
            0,
            "stray continuations"
        );
        assert_eq!(incomplete_tail_len(b"a\xff"), 0, "not a lead byte");
    }

    #[test]
    fn escaping_matches_json() {
        // Every byte value at every position of a word: the lowest flag is exact.
        for b in 0u8..=0xff {
            for pos in 0..8 {
                for filler in [b'a', 0xa9, b'"', 0x01] {
                    let mut w = [filler; 8];
                    w[pos] = b;
                    let needs = |x: u8| x < 0x20 || x == b'"' || x == b'\\';
                    let first = w.iter().position(|&x| needs(x));
                    let mask = escape_mask(u64::from_le_bytes(w));
                    let found = (mask != 0).then(|| (mask.trailing_zeros() / 8) as usize);
                    assert_eq!(found, first, "{w:02x?}");
                }
            }
        }
        // Strings of every length mixing clean runs, escapes and UTF-8.
        let alphabet: Vec<char> = ('\0'..='\u{7f}')
            .chain(['é', '☃', '𝄞', '\u{2028}'])
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200 {
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(3) {
                        alphabet[(seed >> 8) as usize % alphabet.len()]
                    } else {
                        'x'
                    }
                })
                .collect();
            let mut out = vec![b'"'];
            escape_json_into(&mut out, &text);
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).expect("valid JSON string");
            assert_eq!(back, text);
        }
    }

    /// Checks `text` line by line against the asciicast v3 format.
    fn assert_valid_asciicast_v3(text: &str) -> usize {
        let mut lines = text.lines();
        let header: serde_json::Value =
            serde_json::from_str(lines.next().expect("header line")).expect("header JSON");
        assert_eq!(header["version"], 3);
        assert!(header["term"]["cols"].as_u64().is_some_and(|c| c > 0));
        assert!(header["term"]["rows"].as_u64().is_some_and(|r| r > 0));
        let mut n = 0;
        for line in lines {
            let ev: serde_json::Value = serde_json::from_str(line).expect("event JSON");
            let arr = ev.as_array().expect("event array");
            assert_eq!(arr.len(), 3, "{line}");
            let t = arr[0].as_f64().expect("interval number");
            assert!(t >= 0.0 && t.is_finite(), "{line}");
            let code = arr[1].as_str().expect("code string");
            assert!(["o", "i", "r", "m", "x"].contains(&code), "{line}");
            let data = arr[2].as_str().expect("data string");
            match code {
                "r" => {
                    let (c, r) = data.split_once('x').expect("COLSxROWS");
                    c.parse::<u16>().expect("cols");
                    r.parse::<u16>().expect("rows");
                }
                "x" => {
                    data.parse::<u32>().expect("status");
                }
                _ => {}
            }
            n += 1;
        }
        assert!(text.ends_with('\n'));
        n
    }

    #[test]
    fn export_is_valid_asciicast_v3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let mut w = writer(dir.path(), &key);
        w.output("héllo \x1b[1mworld\x1b[0m\r\n".as_bytes())
            .expect("o");
        w.resize(100, 30).expect("r");
        w.marker("m \"1\"\n").expect("m");
        w.output(b"\x00\x01\x1f bye").expect("o");
        w.exit(Some(0)).expect("x");
        let done = w.finish().expect("finish");
        let rec = RecordingReader::open(&done.path, &key).expect("open");
        let cast = export_asciicast(&rec);
        assert_eq!(assert_valid_asciicast_v3(&cast), 5);
        assert!(
            cast.lines()
                .last()
                .expect("last")
                .ends_with(", \"x\", \"0\"]")
        );
        // The export is exactly the sealed plaintext stream (reader and writer agree).
        let mut plain = Vec::new();
        let bytes = std::fs::read(&done.path).expect("read");
        let (_, meta_len) = parse_meta_line(&bytes).expect("meta");
        let prefix = aad_prefix(&bytes[..meta_len], &rec.meta.id);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&key[..]));
        for (start, end) in chunk_ranges(&bytes) {
            let h = ChunkHeader::parse(&bytes[start..]).expect("header");
            let body = &bytes[start + CHUNK_HEADER_LEN..end];
            let (ct, tag) = body.split_at(body.len() - TAG_LEN);
            let mut p = ct.to_vec();
            cipher
                .decrypt_in_place_detached(
                    XNonce::from_slice(&h.nonce),
                    &chunk_aad(&prefix, h.index, h.flags),
                    &mut p,
                    Tag::from_slice(tag),
                )
                .expect("decrypt");
            plain.extend_from_slice(&p);
        }
        assert_eq!(String::from_utf8(plain).expect("utf8"), cast);
        // Reading the export back gives the same events.
        let reparsed: Vec<Event> = cast
            .lines()
            .skip(1)
            .map(|l| parse_event(l.as_bytes()).expect("event"))
            .collect();
        assert_eq!(reparsed, rec.events);
    }

    /// Plays the export with asciinema 3 when it is installed (`asciinema convert -f raw`).
    #[test]
    fn export_converts_with_asciinema_3_when_present() {
        let Ok(out) = std::process::Command::new("asciinema")
            .arg("--version")
            .output()
        else {
            eprintln!(
                "asciinema not installed: format checked by export_is_valid_asciicast_v3 only"
            );
            return;
        };
        let version = String::from_utf8_lossy(&out.stdout).to_string();
        if !version.trim_start_matches("asciinema ").starts_with('3') {
            eprintln!("asciinema {version:?} reads only asciicast v1/v2: skipped");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let (path, all) = many_chunks(dir.path(), &key, 50, 9);
        let rec = RecordingReader::open(&path, &key).expect("open");
        let cast = dir.path().join("export.cast");
        std::fs::write(&cast, export_asciicast(&rec)).expect("write");
        let raw = dir.path().join("export.raw");
        let st = std::process::Command::new("asciinema")
            .args(["convert", "-f", "raw"])
            .arg(&cast)
            .arg(&raw)
            .status()
            .expect("run asciinema");
        assert!(st.success());
        // Raw output starts by setting the terminal size from the header.
        let expected = format!("\x1b[8;{};{}t{all}", rec.meta.rows, rec.meta.cols);
        assert_eq!(std::fs::read_to_string(&raw).expect("raw"), expected);
    }

    #[test]
    fn list_reads_metadata_and_completeness_without_a_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        assert!(
            list(&dir.path().join("none"))
                .expect("missing dir")
                .is_empty()
        );
        let (done, _) = many_chunks(dir.path(), &key, 20, 4);
        let mut running = writer(dir.path(), &key);
        running.output(b"still going").expect("o");
        running.flush().expect("flush");
        std::fs::write(dir.path().join(format!("junk{FILE_SUFFIX}")), b"junk").expect("junk");
        std::fs::write(dir.path().join("notes.txt"), b"ignored").expect("other");
        let entries = list(dir.path()).expect("list");
        assert_eq!(entries.len(), 3);
        let ok: Vec<&ListedRecording> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
        assert_eq!(ok.len(), 2);
        let fin = ok.iter().find(|l| l.path == done).expect("finished one");
        assert!(fin.scan.complete);
        assert_eq!(fin.size, std::fs::metadata(&done).expect("md").len());
        assert_eq!(fin.meta.host, "core-sw1");
        assert!(fin.duration_ms().is_some());
        let run = ok
            .iter()
            .find(|l| l.path == running.path())
            .expect("running one");
        assert!(!run.scan.complete);
        assert_eq!(run.scan.chunks, 2);
        assert_eq!(run.duration_ms(), None);
        let bad = entries.iter().find_map(|e| e.as_ref().err()).expect("junk");
        assert!(matches!(bad.error, RecordingError::BadMagic));
        // A structurally damaged file is reported, not listed as fine.
        let mut b = std::fs::read(&done).expect("read");
        let r = chunk_ranges(&b);
        b[r[1].0 + 4] ^= 1;
        let damaged = dir.path().join(format!("{}{FILE_SUFFIX}", "0".repeat(32)));
        std::fs::write(&damaged, &b).expect("write");
        assert!(matches!(
            scan(&damaged),
            Err(RecordingError::ChunkOutOfOrder { .. })
        ));
        drop(running);
    }

    #[test]
    fn create_refuses_bad_ids_and_existing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = random_key();
        let e = RecordingWriter::create(dir.path(), key.clone(), meta("../etc/x"), opts())
            .err()
            .expect("bad id");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let id = new_recording_id().expect("id");
        assert!(is_recording_id(&id));
        let w =
            RecordingWriter::create(dir.path(), key.clone(), meta(&id), opts()).expect("create");
        let e = RecordingWriter::create(dir.path(), key.clone(), meta(&id), opts())
            .err()
            .expect("exists");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        drop(w);
    }

    /// User + system CPU time of this thread (the machine may be shared).
    fn thread_cpu() -> Duration {
        use nix::sys::resource::{UsageWho, getrusage};
        let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        tv(u.user_time()) + tv(u.system_time())
    }

    /// Writer throughput: `cargo test --release -p gatehouse-sessiond --lib
    /// recording::tests::writer_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement; run by hand in release"]
    fn writer_throughput() {
        // GATEHOUSE_BENCH_DIR=/dev/shm keeps the disk out of the measurement.
        let dir = match std::env::var_os("GATEHOUSE_BENCH_DIR") {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .expect("tempdir");
        let key = random_key();
        // Terminal-like output: text, escapes, some UTF-8, in 32 KiB packets.
        let mut packet = Vec::new();
        while packet.len() < 32 * 1024 {
            packet.extend_from_slice(
                "Gi0/1    up    up   \x1b[32mconnected\x1b[0m  1000  full  ünï ☃ 10.0.0.1/24\r\n"
                    .as_bytes(),
            );
        }
        packet.truncate(32 * 1024);
        let total: usize = 100 * 1024 * 1024;
        let mib = (total >> 20) as f64;
        for (name, data) in [
            ("terminal text", packet.clone()),
            ("plain ASCII", vec![b'x'; 32 * 1024]),
        ] {
            // Best of 5: the machine may be shared.
            let (mut best_cpu, mut best_wall, mut best_read) = (0f64, 0f64, 0f64);
            for _ in 0..5 {
                let mut w = writer(dir.path(), &key);
                let (t0, cpu0) = (Instant::now(), thread_cpu());
                let mut sent = 0;
                while sent < total {
                    w.output(&data).expect("output");
                    sent += data.len();
                }
                let (wall, cpu) = (t0.elapsed(), thread_cpu() - cpu0);
                let done = w.finish().expect("finish");
                best_cpu = best_cpu.max(mib / cpu.as_secs_f64());
                best_wall = best_wall.max(mib / wall.as_secs_f64());
                let cpu0 = thread_cpu();
                let rec = RecordingReader::open(&done.path, &key).expect("open");
                best_read = best_read.max(mib / (thread_cpu() - cpu0).as_secs_f64());
                assert!(rec.complete);
                std::fs::remove_file(&done.path).expect("rm");
            }
            println!(
                "{name}, {mib} MiB in 32 KiB writes: writer {best_cpu:.0} MiB/s per CPU second \
                 ({best_wall:.0} MiB/s wall); reader {best_read:.0} MiB/s per CPU second"
            );
        }
    }
}
