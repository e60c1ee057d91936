//! `gatehouse-records`: the operational records Gatehouse keeps (hosts,
//! diagrams, procedures and their runs, memories, connectors, MCP servers,
//! keychain pointers, a person's settings), the one table that says which of their fields are
//! sealed ([`fields::TABLE`]), and the local SQLite store that enforces it.
//!
//! Owns: record types ([`model`]), the field table and canonical encodings
//! ([`fields`]), input checks ([`validate`]), building hosts from a
//! person's input ([`host_edit`], shared by the CLI and the UI), the store
//! ([`store`]), the memory-only decrypted cache ([`cache`]), the
//! broker-facing [`sealer::Sealer`], OpenSSH config import ([`ssh_config`])
//! and org bundles ([`bundle`]).
//! Must never: hold a key (sealing, opening and MACs are the broker's, through
//! a `Sealer`), write a sealed field's plaintext to disk, or call the broker
//! while listing (listing takes no `Sealer`).

pub mod bundle;
pub mod cache;
pub mod fields;
pub mod host_edit;
pub mod model;
pub mod runbook;
pub mod sealer;
pub mod settings;
pub mod ssh_config;
pub mod store;
pub mod validate;

#[cfg(test)]
mod test_sealer;
#[cfg(test)]
mod tests;

pub use model::{Kind, Meta, Record, Secret};
pub use sealer::{BrokerSealer, Sealer, SealerError};
pub use store::{Filter, Opened, Store, StoredRecord, Summary};

/// Every way a records operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Bad input; nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("invalid name: a {kind} named {name:?} already exists in folder {folder:?} ({scope})")]
    Duplicate {
        kind: Kind,
        name: String,
        folder: String,
        scope: String,
    },
    #[error(
        "invalid {field}: no keychain entry named {name:?} (create it with `gatehouse keychain set {name}`)"
    )]
    NoSuchKeychainEntry { field: String, name: String },
    #[error("no {kind} {key:?}")]
    NotFound { kind: Kind, key: String },
    #[error("{kind} {key:?} is ambiguous: matches ids {}", ids.join(", "))]
    Ambiguous {
        kind: Kind,
        key: String,
        ids: Vec<String>,
    },
    #[error("record {kind}/{id} belongs to {actual}, not {expected}")]
    WrongScope {
        kind: Kind,
        id: String,
        expected: String,
        actual: String,
    },
    /// The record MAC does not verify: someone without the key changed it.
    #[error(
        "record {kind}/{id} was modified without the key (tampered): its MAC does not verify{}",
        describe_fields(fields)
    )]
    Tampered {
        kind: Kind,
        id: String,
        /// Sealed fields that no longer open, with why.
        fields: Vec<(String, String)>,
    },
    /// The name/folder index columns disagree with the record's (MACed) fields.
    #[error(
        "record {kind}/{id} was modified without the key (tampered): its name/folder index does not match its authenticated fields"
    )]
    IndexMismatch { kind: Kind, id: String },
    #[error("record {kind}/{id} field {field} does not open: {reason}")]
    OpenFailed {
        kind: Kind,
        id: String,
        field: String,
        reason: String,
    },
    /// A field the table does not classify (a programming error caught by the tests).
    #[error(
        "{kind} field {field:?} is not in the field table: classify it as sealed or plaintext in records/src/fields.rs"
    )]
    Unclassified { kind: Kind, field: String },
    #[error(
        "record {kind}/{id} changed since it was read (revision {expected} expected, {found} found)"
    )]
    Conflict {
        kind: Kind,
        id: String,
        expected: u64,
        found: u64,
    },
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("corrupt record data: {what}")]
    Corrupt { what: String },
    /// (Not a `#[source]`: the text already holds the broker's words; a
    /// source would make `{:#}` print them twice.)
    #[error("broker: {0}")]
    Sealer(SealerError),
    #[error("store {path}: {source}")]
    Db {
        path: String,
        source: rusqlite::Error,
    },
}

fn describe_fields(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(f, why)| format!("; field {f} does not open: {why}"))
        .collect()
}

impl From<SealerError> for RecordError {
    fn from(e: SealerError) -> RecordError {
        RecordError::Sealer(e)
    }
}
