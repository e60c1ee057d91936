//! Messages of the session daemon (`sessiond.sock`).
//!
//! Owns the request/response/error/event types of SSH sessions: gated
//! command execution, interactive shells, recordings and the audit log.
//! Must never: carry a device credential (sessiond gets those from the
//! broker, for one connection), or a field by which a client claims who it is.

use serde::{Deserialize, Serialize};

use crate::broker::{Action, ApprovalError, ApprovalToken, Requester};
use crate::secret::{SecretBytes, bytes};
use crate::wire::Service;

/// Marker type for the session service.
pub struct Sessiond;

impl Service for Sessiond {
    const SOCKET: &'static str = "sessiond.sock";
    const NAME: &'static str = "sessiond";
    type Request = SessiondRequest;
    type Response = SessiondResponse;
    type Error = SessiondError;
    type Event = SessionEvent;
}

/// Which host: its id, `NAME` or `FOLDER/NAME`, optionally within one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRef {
    pub host: String,
    /// Organization id or name; `None` searches every scope.
    pub org: Option<String>,
}

/// How sessiond judged a command for a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The exact action an approval must cover to run this command here.
    pub action: Action,
    /// `read-only`, `moderate`, `dangerous` or `unknown`.
    pub class: String,
    pub reasons: Vec<String>,
    /// Whether running it needs an approval token.
    pub needs_approval: bool,
    /// Set when org policy blocks the command outright.
    pub blocked: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: u64,
    pub host: String,
    pub user: String,
    pub kind: SessionKind,
    pub owner: Requester,
    pub recording: Option<String>,
    pub started_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    Shell,
    Exec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessiondStatus {
    pub version: String,
    pub pid: u32,
    pub hardening: crate::broker::Hardening,
    pub sessions: usize,
    pub broker_connected: bool,
    pub signed_in: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SessiondRequest {
    Status,
    /// Classifies `command` for `host` and returns the exact action an
    /// approval would have to cover. Runs nothing.
    Prepare {
        host: HostRef,
        command: String,
    },
    /// Runs one command. Read-only commands run; anything else needs
    /// `approval`, a broker-signed token for exactly this action, which
    /// sessiond spends (with the broker) before sending a byte to the device.
    /// On success the connection receives the output as events, then `Exited`.
    Exec {
        host: HostRef,
        command: String,
        approval: Option<Box<ApprovalToken>>,
        /// Also record this exec (asciicast); shells are always recorded.
        record: bool,
    },
    /// Opens an interactive shell with a PTY (a person at a terminal: cli and
    /// ui only). The connection receives the output as events.
    OpenShell {
        host: HostRef,
        cols: u16,
        rows: u16,
        term: String,
        /// The broker's shell ticket for this host (`BrokerRequest::ShellTicket`),
        /// passed on with the credential request; `None` when the broker
        /// gave none (the org asks no presence).
        presence_ticket: Option<SecretBytes>,
    },
    /// Keystrokes for a shell this process opened (may be sent on another
    /// connection of the same process).
    Input {
        session: u64,
        data: SecretBytes,
    },
    Resize {
        session: u64,
        cols: u16,
        rows: u16,
    },
    /// Adds a marker to the session's recording.
    Mark {
        session: u64,
        label: String,
    },
    Close {
        session: u64,
    },
    List,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SessiondResponse {
    Status(Box<SessiondStatus>),
    Prepared(Box<Prepared>),
    /// The session runs; output follows as events on this connection.
    Started {
        session: u64,
        class: String,
        recording: Option<String>,
        /// `ssh-ed25519 SHA256:…` the device presented (matched the record).
        host_key: String,
        user: String,
    },
    Done,
    Sessions(Vec<SessionInfo>),
}

/// Pushed to the connection that started a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    Output {
        session: u64,
        #[serde(with = "bytes")]
        data: Vec<u8>,
    },
    /// Standard error of an exec (shells have one stream).
    Stderr {
        session: u64,
        #[serde(with = "bytes")]
        data: Vec<u8>,
    },
    /// The remote command or shell ended. The last event of a session.
    Exited {
        session: u64,
        status: Option<u32>,
        /// Why it ended, when not by the command's own exit
        /// (connection dropped, closed by sign-out, …).
        reason: Option<String>,
    },
}

/// Every error a sessiond request can end in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SessiondError {
    #[error("no host {0:?}")]
    HostNotFound(String),
    #[error("host record {host:?}: {reason}")]
    HostRecord { host: String, reason: String },
    #[error(
        "host {host:?} presented key {presented}, which is not pinned yet: after checking it out of band, pin it with `gatehouse host edit {host} --host-key '{presented}'` (or answer yes when `gatehouse connect`/`exec` asks)"
    )]
    HostKeyUnknown { host: String, presented: String },
    #[error(
        "HOST KEY CHANGED for {host:?}: the record pins {expected} but the device presented {presented}. Refusing to connect (a changed key can mean someone is intercepting the connection)"
    )]
    HostKeyChanged {
        host: String,
        expected: String,
        presented: String,
    },
    #[error("cannot reach {host:?} at {address}: {reason}")]
    Connect {
        host: String,
        address: String,
        reason: String,
    },
    #[error("authentication as {user:?} on {host:?} failed: {reason}")]
    AuthFailed {
        host: String,
        user: String,
        reason: String,
    },
    #[error(
        "this command is {class} ({}): it needs an approval token. Request one with `gatehouse exec HOST --request -- COMMAND`",
        reasons.join("; ")
    )]
    ApprovalRequired { class: String, reasons: Vec<String> },
    #[error("blocked by organization policy: {0}")]
    Blocked(String),
    #[error("approval refused: {0}")]
    Approval(ApprovalError),
    #[error("the approval token was issued to another process (pid {token_pid}, not {peer_pid})")]
    TokenNotYours { token_pid: i32, peer_pid: i32 },
    #[error("role {0} may not do this")]
    Forbidden(crate::peer::PeerRole),
    #[error("broker: {0}")]
    Broker(String),
    #[error("signed out: run `gatehouse signin`")]
    SignedOut,
    #[error("no session {0} of yours")]
    NoSuchSession(u64),
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("device: {0}")]
    Device(String),
    #[error("internal error: {0}")]
    Internal(String),
}
