//! The broker's credential-use log: one synced row per credential it
//! releases or uses for a daemon, per sealed field it opens for a person's
//! tool (`OpenFields`: a reveal, an edit, an export), and per refusal, in
//! `<data>/audit/credentials.jsonl` (format: `gatehouse_ipc::audit`).
//!
//! Owns the rule "no row, no credential": the row is on disk before the
//! credential leaves the broker, and a failed write refuses the release.
//! Must never: write a credential's value (rows name the field and the
//! destination), or release a credential whose row could not be written.

use std::path::PathBuf;

use gatehouse_ipc::audit::CredentialRow;
use gatehouse_ipc::broker::{BrokerError, Operation, Requester};

use crate::vault::now_ms;

pub struct CredentialAudit {
    path: PathBuf,
}

impl CredentialAudit {
    pub fn new(path: PathBuf) -> CredentialAudit {
        CredentialAudit { path }
    }

    /// Records the result of one credential use, then passes it on; a row
    /// that cannot be written turns a release into a refusal.
    pub fn audited<T>(
        &self,
        operation: Operation,
        requester: &Requester,
        credential: String,
        destination: String,
        result: Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        self.audited_all(operation, requester, vec![credential], destination, result)
    }

    /// [`Self::audited`] for a batch: one row per credential (all with the
    /// batch's outcome), written and synced together before the result
    /// leaves; no rows written, nothing released.
    pub fn audited_all<T>(
        &self,
        operation: Operation,
        requester: &Requester,
        credentials: Vec<String>,
        destination: String,
        result: Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let time_ms = now_ms();
        let refused = result.as_ref().err().map(|e| e.to_string());
        let rows: Vec<CredentialRow> = credentials
            .into_iter()
            .map(|credential| CredentialRow {
                time_ms,
                operation,
                requester: requester.clone(),
                credential,
                destination: destination.clone(),
                refused: refused.clone(),
            })
            .collect();
        gatehouse_ipc::audit::append_all(&self.path, &rows).map_err(|e| {
            BrokerError::Storage(format!(
                "credential audit log {}: {e} (nothing released)",
                self.path.display()
            ))
        })?;
        result
    }
}
