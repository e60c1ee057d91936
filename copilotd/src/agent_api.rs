//! The agent as its tools see it: the small interface a tool module
//! (`record_tools`, `connectors`, `mcp::call`) runs against, and the types
//! and helpers those tools share with the agent loop.
//!
//! Owns: [`AgentApi`] (announce a call, seek and spend a person's approval,
//! resolve the conversation's organization, reach the broker, the record
//! store and the data directory), [`Approval`], [`MAX_RESULT`] and the
//! mapping of broker call errors to [`CopilotError`].
//! Must never: import the agent loop or any tool module (the dependency
//! graph is tools → this interface ← agent), or carry out anything itself:
//! it only names what a tool may ask of the agent running it.

use std::sync::MutexGuard;

use gatehouse_ipc::broker::{Action, ApprovalToken, Broker, BrokerError, KeyScope};
use gatehouse_ipc::client::{CallError, SharedClient};
use gatehouse_ipc::copilotd::{ChatSettings, CopilotError, GateDecision};
use gatehouse_records::Store;

use crate::provider::ToolCall;

/// Most of a command's (or a tool call's) output the model sees.
pub(crate) const MAX_RESULT: usize = 32 * 1024;

/// What became of a request for a person's approval.
pub(crate) enum Approval {
    /// Approved: carry out `token.action` (possibly a person's edit).
    Granted(Box<ApprovalToken>),
    /// Not approved; what the model is told.
    NotRun(String),
}

/// A daemon copilotd talks to failed or answered out of protocol.
pub(crate) fn daemon(service: &str, e: impl std::fmt::Display) -> CopilotError {
    CopilotError::Daemon {
        service: service.into(),
        reason: e.to_string(),
    }
}

/// A failed broker call: signed out (or not set up) is the person's to
/// fix, anything else is the broker's failure.
pub(crate) fn broker_call_error(e: CallError<BrokerError>) -> CopilotError {
    match e {
        CallError::Remote(BrokerError::SignedOut | BrokerError::NotInitialized) => {
            CopilotError::SignedOut
        }
        other => daemon("broker", other),
    }
}

/// What a tool may ask of the agent running it (the agent loop's `Agent`
/// implements it).
pub(crate) trait AgentApi {
    /// Tells the person's window about a tool call and the gate's decision
    /// (the arguments pass redaction first).
    async fn announce(
        &self,
        conversation: u64,
        call: &ToolCall,
        class: &str,
        reasons: Vec<String>,
        decision: GateDecision,
    ) -> Result<(), CopilotError>;

    /// Files an approval request for `action` through the broker, announces
    /// the call as waiting for a person, and waits for the decision. A
    /// granted token covers `token.action`, which a person may have edited:
    /// carry out that, never the original. Every way of not running comes
    /// back as the sentence the model is told.
    async fn seek_approval(
        &self,
        conversation: u64,
        call: &ToolCall,
        action: Action,
        class: &str,
        reasons: &[String],
    ) -> Result<Approval, CopilotError>;

    /// Spends a token for an action copilotd carries out itself (an API
    /// call, a record write: `Action::executor` is copilotd), right before
    /// carrying it out. The broker checks the signature, that the token is
    /// this process's own, that it covers `action` exactly, and single use.
    async fn spend(
        &self,
        token: &ApprovalToken,
        action: &Action,
    ) -> Result<Result<(), BrokerError>, CopilotError>;

    /// The key scope of the conversation's organization, resolved by name
    /// or id through the broker: `Ok(None)` is every scope; the inner error
    /// (no such organization) is for the model, the outer one a daemon's.
    async fn org_scope(
        &self,
        settings: &ChatSettings,
    ) -> Result<Result<Option<KeyScope>, String>, CopilotError>;

    /// The broker connection (shared with the MCP connections).
    fn broker(&self) -> &SharedClient<Broker>;

    /// The record store, locked (never hold it across an await).
    fn store(&self) -> MutexGuard<'_, Store>;

    /// Announces a call as refused and tells the model not to retry it.
    async fn refuse(
        &self,
        conversation: u64,
        call: &ToolCall,
        class: &str,
        reasons: Vec<String>,
        reason: impl Into<String>,
    ) -> Result<String, CopilotError> {
        let reason = reason.into();
        let d = GateDecision::Refuse {
            reason: reason.clone(),
        };
        self.announce(conversation, call, class, reasons, d).await?;
        Ok(format!("Not run: {reason}. Do not retry it."))
    }
}
