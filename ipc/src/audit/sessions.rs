//! The session audit log: one JSON line per thing sessiond ran or refused.
//!
//! Owns the row format and the append-only file `<data>/audit/sessions.jsonl`.
//! Metadata (who asked, who approved, class, host, time, outcome) is
//! plaintext so it can be listed and filtered; the command text is sealed
//! by the broker under the user's own key, bound to the row id.
//! Must never: write a command's text in plaintext, or acknowledge an
//! execution before its row is on disk (each row is fsynced).

use std::path::{Path, PathBuf};

use crate::broker::{FieldAddress, KeyScope, Requester};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Passed the gate; the command was sent to the device.
    Started,
    /// Finished (after a `Started` row with the same session).
    Exited {
        status: Option<u32>,
        reason: Option<String>,
    },
    /// Refused before anything reached the device.
    Refused { reason: String },
    /// Could not run (connection, authentication, device error).
    Failed { reason: String },
    /// A line typed into an interactive shell (the row's sealed command is
    /// the line), written before its Enter reaches the device.
    Typed,
}

impl Outcome {
    /// One line for a person (`exited 0`, `REFUSED: …`), as `audit log` and
    /// the desktop app show it.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Started => "started".to_string(),
            Outcome::Exited { status, reason } => match (status, reason) {
                (Some(s), _) => format!("exited {s}"),
                (None, Some(why)) => format!("ended: {why}"),
                (None, None) => "ended".into(),
            },
            Outcome::Refused { reason } => format!("REFUSED: {reason}"),
            Outcome::Failed { reason } => format!("failed: {reason}"),
            Outcome::Typed => "typed".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: String,
    pub time_ms: u64,
    pub session: Option<u64>,
    pub kind: String,
    pub requester: Requester,
    pub approver: Option<Requester>,
    pub approval_id: Option<u64>,
    pub class: String,
    pub host: String,
    pub host_id: Option<String>,
    pub org: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub recording: Option<String>,
    /// The command, sealed (base64); see [`command_address`].
    pub command_sealed: String,
}

pub fn log_path(data_root: &Path) -> PathBuf {
    super::audit_dir(data_root).join("sessions.jsonl")
}

/// Where a row's command text is sealed.
pub fn command_address(row_id: &str) -> FieldAddress {
    FieldAddress {
        scope: KeyScope::Private,
        record_kind: "audit".into(),
        record_id: row_id.into(),
        field: "command".into(),
        binding: Vec::new(),
    }
}

/// A fresh random row id.
pub fn new_row_id() -> String {
    let mut b = [0u8; 12];
    if getrandom::fill(&mut b).is_err() {
        // The id only needs to be unique; fall back to the clock.
        b[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub use crate::os::now_ms;

/// Appends one row and syncs it to disk.
pub fn append(data_root: &Path, row: &AuditRow) -> std::io::Result<()> {
    super::append(&log_path(data_root), row)
}

/// Reads every row; a damaged line is reported by number, the rest still read.
pub fn read(data_root: &Path) -> std::io::Result<(Vec<AuditRow>, Vec<String>)> {
    super::read(&log_path(data_root))
}
