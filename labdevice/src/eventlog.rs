//! The device's event log: one JSON object per line, written and flushed
//! *before* the logged command is executed.
//!
//! ```json
//! {"ts_ms":1764104266123,"seq":7,"session":3,"kind":"command","text":"show version"}
//! ```
//!
//! `ts_ms` is milliseconds since the Unix epoch, `seq` a counter that strictly
//! increases over the whole log (two events may share a millisecond), `session`
//! the connection number (0 for device-wide events). Kinds: `connect`, `auth`,
//! `command` (an interactive line), `exec` (an exec channel request), `answer`
//! (a reply to a device question such as `[confirm]`), `data` (raw bytes as
//! they arrive, only with `--log-data`), `reboot`, `disconnect`.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::Error;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A TCP connection was accepted.
    Connect,
    /// An authentication attempt and its result (never the secret).
    Auth,
    /// A complete interactive command line, before it runs.
    Command,
    /// An exec channel request, before it runs.
    Exec,
    /// An answer to a device question (`Save? [yes/no]`, `[confirm]`, `[y/N]`).
    Answer,
    /// Raw channel bytes on arrival (opt-in).
    Data,
    /// The device is rebooting.
    Reboot,
    /// A connection ended.
    Disconnect,
}

#[derive(Serialize)]
struct Line<'a> {
    ts_ms: u128,
    seq: u64,
    session: u64,
    kind: Kind,
    text: &'a str,
}

/// An append-only JSON-lines log; a sink that drops everything when no file was given.
pub struct EventLog {
    inner: Mutex<(Option<File>, u64)>,
}

impl EventLog {
    /// A log that discards events.
    pub fn none() -> Self {
        Self {
            inner: Mutex::new((None, 0)),
        }
    }

    /// Opens (creates or appends to) a log file.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::File {
                what: "log",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            inner: Mutex::new((Some(file), 0)),
        })
    }

    /// Writes one event and flushes it. Logging failures are ignored on
    /// purpose: a full disk must not change what the device does.
    pub fn record(&self, session: u64, kind: Kind, text: &str) {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (file, seq) = &mut *guard;
        *seq += 1;
        let Some(file) = file.as_mut() else { return };
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let line = Line {
            ts_ms,
            seq: *seq,
            session,
            kind,
            text,
        };
        if let Ok(mut json) = serde_json::to_string(&line) {
            json.push('\n');
            let _ = file.write_all(json.as_bytes());
            let _ = file.flush();
        }
    }
}
