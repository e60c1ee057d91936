//! Messages of the sync daemon (`syncd.sock`).
//!
//! Owns the request/response/error/event types a person's tools (the CLI,
//! the app) speak to `gatehouse-syncd`: connect this device to the
//! configured sync server, sync now, and the sync state.
//! Must never: carry a key, a session token or a record's plaintext (syncd
//! holds none of them for a client to ask for), or a field by which a client
//! claims who it is.

use serde::{Deserialize, Serialize};

use crate::broker::Hardening;
use crate::wire::Service;

/// Marker type for the sync service.
pub struct Syncd;

impl Service for Syncd {
    const SOCKET: &'static str = "syncd.sock";
    const NAME: &'static str = "syncd";
    type Request = SyncdRequest;
    type Response = SyncdResponse;
    type Error = SyncdError;
    type Event = SyncEvent;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncdRequest {
    Status,
    /// Connects this device to the configured server as `account` (its
    /// name there) from device `device`: registers the account's card if
    /// the server does not know it (a known name must carry the same card),
    /// then answers a device challenge the broker signs (cli/ui).
    Connect {
        account: String,
        device: String,
    },
    /// Pushes local changes and pulls the server's now (cli/ui).
    SyncNow,
    /// Stores the account's key bundle (made by the broker) on the server,
    /// so a second device can sign in with the passphrase and the Secret
    /// Key (cli/ui).
    PutBundle(Box<crate::broker::KeyBundleOut>),
    /// Follow syncs' progress on this connection (any role).
    Subscribe,
}

/// Where syncd stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub pid: u32,
    pub hardening: Hardening,
    /// The configured server (`https://HOST:PORT`).
    pub server: Option<String>,
    /// The server's id (`GET /v1/info`).
    pub server_id: Option<String>,
    /// The account's name on the server, once connected.
    pub account: Option<String>,
    pub device: Option<String>,
    /// Whether this device holds a session now.
    pub signed_in: bool,
    /// When the last sync that reached the server ended.
    pub last_sync_ms: Option<u64>,
    /// Local changes not yet on the server.
    pub pending: u64,
    /// Conflict copies kept (`KIND/ID` each).
    pub conflicts: Vec<String>,
    /// Why the last contact with the server failed, while it does.
    pub offline: Option<String>,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub pushed: u64,
    pub pulled: u64,
    pub conflicts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncdResponse {
    Status(Box<SyncStatus>),
    Connected {
        account: String,
        server_id: String,
        /// Whether this connect registered the account's card (a new
        /// account on this server).
        registered: bool,
    },
    Synced(SyncReport),
    BundleStored,
    Subscribed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SyncdError {
    #[error("no sync server configured: run `gatehouse sync connect URL --pin SHA256`")]
    NotConfigured,
    #[error("not connected to the sync server yet: run `gatehouse sync connect URL --pin SHA256`")]
    NotConnected,
    #[error("role {role} may not {what}")]
    Forbidden { role: crate::PeerRole, what: String },
    /// The server did not answer (down, TLS or pin failure): local work
    /// goes on and syncs later.
    #[error("the sync server is unreachable ({0}); local work goes on and syncs when it is back")]
    Offline(String),
    /// The server answered with a refusal.
    #[error("the sync server refused: {0}")]
    Server(String),
    /// What the server sent fails a check; nothing of it was applied.
    #[error("refused what the server sent: {0}")]
    Hostile(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("local state: {0}")]
    Local(String),
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
}

/// Pushed to subscribed clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncEvent {
    Synced(SyncReport),
    /// A pull under way: `position` of `total` sequence numbers after the
    /// cursor fetched, `records` envelopes so far.
    Pulling {
        position: u64,
        total: u64,
        records: u64,
    },
    /// Everything fetched; `records` are being checked and applied.
    Applying {
        records: u64,
    },
}
