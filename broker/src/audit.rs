//! The broker's credential-use log: one synced row per credential it
//! releases or uses for a daemon, per sealed field it opens for a person's
//! tool (`OpenFields`: a reveal, an edit, an export), and per refusal, in
//! `<data>/audit/credentials.jsonl` (format: `gatehouse_ipc::audit`).
//!
//! Owns the rule "no row, no credential": the row is on disk before the
//! credential leaves the broker, and a failed write refuses the release.
//! Also owns the session audit log's rows for approval requests that end
//! without running — rejected by a person, withdrawn by their requester,
//! expired, dropped — in `<data>/audit/sessions.jsonl` (format:
//! `gatehouse_ipc::audit::sessions`, beside sessiond's rows): every refusal
//! is audited, whoever asked.
//! Must never: write a credential's value (rows name the field and the
//! destination), or release a credential whose row could not be written;
//! write a refused command in plaintext (it is sealed under the user's own
//! key, or not kept while signed out).

use std::path::PathBuf;

use base64::Engine as _;
use gatehouse_ipc::audit::CredentialRow;
use gatehouse_ipc::audit::sessions::{self, AuditRow, Outcome};
use gatehouse_ipc::broker::{
    ApprovalView, BrokerError, COPILOT_ACTION_PREFIX, Operation, Requester,
};

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

/// Writes the session audit log's row for each approval request that ended
/// without running.
pub struct RefusalAudit {
    path: PathBuf,
}

impl RefusalAudit {
    /// Rows go to `path` (`<data>/audit/sessions.jsonl`).
    pub fn new(path: PathBuf) -> RefusalAudit {
        RefusalAudit { path }
    }

    /// One `refused` row for `view`: what was asked (host, org, class, the
    /// command sealed under the user's key), who asked, and `reason` (who or
    /// what refused it, and why). A failed write is logged: the refusal
    /// stands either way.
    pub fn refused(&self, vault: &crate::vault::Vault, view: &ApprovalView, reason: String) {
        let id = sessions::new_row_id();
        // Sealing needs the account signed in; never fall back to plaintext.
        let command_sealed = vault
            .seal_field(
                &sessions::command_address(&id),
                view.action.command.as_bytes(),
            )
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s))
            .unwrap_or_default();
        let kind = match view.action.vendor.strip_prefix(COPILOT_ACTION_PREFIX) {
            Some(tool) => tool.to_string(),
            None => "exec".into(),
        };
        let row = AuditRow {
            id,
            time_ms: now_ms(),
            session: None,
            kind,
            requester: view.requester.clone(),
            approver: None,
            approval_id: Some(view.id),
            class: view.class.clone(),
            host: view.action.host.clone(),
            host_id: None,
            org: view.action.org.clone(),
            outcome: Outcome::Refused { reason },
            recording: None,
            command_sealed,
        };
        if let Err(e) = gatehouse_ipc::audit::append(&self.path, &row) {
            tracing::error!(
                "cannot write the refusal of request {} to {}: {e}",
                view.id,
                self.path.display()
            );
        }
    }
}
