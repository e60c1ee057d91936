//! Writing a recording while a session runs: events are buffered, sealed
//! in chunks of whole lines and appended with one write each.
//! Must never: write session data in plaintext, or record keystrokes unless asked to.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::layout::*;
use crate::{error::*, format::*, ids::*, seal::*};

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
pub(crate) enum Stream {
    Output,
    Input,
}

impl Stream {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Stream::Output => "o",
            Stream::Input => "i",
        }
    }
}

/// The first bytes of a UTF-8 character split across two writes.
#[derive(Default)]
pub(crate) struct Utf8Carry {
    pub(crate) bytes: [u8; 3],
    pub(crate) len: usize,
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

    pub(crate) fn usable(&self) -> io::Result<()> {
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

    pub(crate) fn clock_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn carry_mut(&mut self, stream: Stream) -> &mut Utf8Carry {
        match stream {
            Stream::Output => &mut self.output_carry,
            Stream::Input => &mut self.input_carry,
        }
    }

    pub(crate) fn text(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
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

    pub(crate) fn text_events(
        &mut self,
        stream: Stream,
        code: &str,
        t: u64,
        input: &[u8],
    ) -> io::Result<()> {
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

    pub(crate) fn begin_event(&mut self, code: &str, t: u64) {
        let interval = t.saturating_sub(self.last_event_us);
        self.last_event_us = self.last_event_us.max(t);
        push_event_start(&mut self.buf, interval, code);
        self.event_open = true;
        self.event_text_len = 0;
    }

    /// Appends `s` to the open text event (opening one if needed), splitting
    /// into events of at most `MAX_EVENT_TEXT` bytes.
    pub(crate) fn event_text(&mut self, code: &str, t: u64, mut s: &str) -> io::Result<()> {
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

    pub(crate) fn end_event(&mut self) -> io::Result<()> {
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

    pub(crate) fn whole_event(&mut self, code: &str, t: u64, data: &str) -> io::Result<()> {
        self.begin_event(code, t);
        escape_json_into(&mut self.buf, data);
        self.end_event()
    }

    /// Encrypts the buffered plaintext in place and appends it as one chunk.
    pub(crate) fn seal(&mut self, final_chunk: bool) -> io::Result<()> {
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
