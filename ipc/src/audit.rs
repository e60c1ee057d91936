//! Audit logs: append-only JSON-lines files under `<data>/audit/`, and the
//! broker's credential-use rows.
//!
//! Owns the file discipline every audit log shares (private directory, one
//! JSON object per line, each append synced before it is acknowledged, a
//! damaged line reported by number while the rest still read) and the row
//! format of `credentials.jsonl`, which the broker writes and `gatehouse
//! audit log` reads; [`sessions`] holds the rows sessiond writes to
//! `sessions.jsonl`, which the CLI and the app read.
//! Must never: hold a secret — rows name records, fields and destinations,
//! never values.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::broker::{Operation, Requester};

pub mod sessions;

/// `<data>/audit/`.
pub fn audit_dir(data_root: &Path) -> PathBuf {
    data_root.join("audit")
}

/// The broker's credential log: `<data>/audit/credentials.jsonl`.
pub fn credentials_log(data_root: &Path) -> PathBuf {
    audit_dir(data_root).join("credentials.jsonl")
}

/// One use of a stored credential by the broker for a daemon: a password or
/// token released, a key used to sign or to derive its public half — or the
/// refusal to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub time_ms: u64,
    /// The broker operation (`ReleasePassword`, `SshSign`, …).
    pub operation: Operation,
    /// The daemon that asked, as the broker identified it.
    pub requester: Requester,
    /// The sealed field or keychain entry (`org:acme/host/<id>/ssh.password`,
    /// `keychain:openai`).
    pub credential: String,
    /// Where it was for (`user@address:port`, an endpoint).
    pub destination: String,
    /// `None` when released; the refusal otherwise.
    pub refused: Option<String>,
}

/// Appends one row as a JSON line and syncs it to disk.
pub fn append<T: Serialize>(path: &Path, row: &T) -> std::io::Result<()> {
    append_all(path, std::slice::from_ref(row))
}

/// Appends rows as JSON lines in one write and syncs them to disk once (a
/// batch of credential uses: every row is on disk before any is acknowledged).
pub fn append_all<T: Serialize>(path: &Path, rows: &[T]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::paths::make_private_dir(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    let mut lines = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut lines, row).map_err(std::io::Error::other)?;
        lines.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&lines)?;
    f.sync_data()
}

/// Reads every row; a damaged line is reported by number, the rest still read.
pub fn read<T: DeserializeOwned>(path: &Path) -> std::io::Result<(Vec<T>, Vec<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => rows.push(r),
            Err(e) => bad.push(format!("{} line {}: {e}", path.display(), n + 1)),
        }
    }
    Ok((rows, bad))
}
