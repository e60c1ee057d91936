//! The envelope every service shares: handshake, request ids, replies, events.
//!
//! A connection starts with the client's [`Hello`]; the server answers
//! [`ServerMessage::Welcome`] (with the role it *determined* for the peer) or
//! [`ServerMessage::Refused`] and closes. Then the client sends
//! [`ClientMessage::Request`]s, each with an id the reply echoes; a subscribed
//! client also receives [`ServerMessage::Event`]s.
//! Must never: carry a role or identity claimed by the client.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::peer::PeerRole;

/// Bumped on any incompatible change of any service's messages.
pub const PROTOCOL_VERSION: u32 = 1;

/// One service's message types. Implemented by a marker type per service.
pub trait Service: 'static {
    /// Socket file name in the runtime directory, e.g. `broker.sock`.
    const SOCKET: &'static str;
    /// Human name used in errors ("broker unavailable").
    const NAME: &'static str;
    type Request: Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug;
    type Response: Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug;
    type Error: Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + std::fmt::Display;
    type Event: Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + Clone;
}

/// First frame of every connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub protocol: u32,
    /// The socket name the client meant to reach (catches a misrouted client).
    pub service: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Welcome {
    pub protocol: u32,
    /// The role the server determined from the peer's executable.
    pub role: PeerRole,
    pub server_pid: u32,
    pub server_version: String,
}

/// Client → server frames.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClientMessage<Q> {
    Hello(Hello),
    Request { id: u64, body: Q },
}

/// Server → client frames.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerMessage<R, E, V> {
    Welcome(Welcome),
    /// The connection is refused (handshake or identity); the server closes it.
    Refused(ProtocolError),
    Reply {
        id: u64,
        result: Result<R, E>,
    },
    /// A frame could not be understood; the server closes the connection.
    Malformed(ProtocolError),
    Event(V),
}

/// Errors of the connection itself (not of one request).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("protocol version mismatch: server speaks {server}, client {client}")]
    VersionMismatch { server: u32, client: u32 },
    #[error("this socket serves {served}, not {requested}")]
    WrongService { served: String, requested: String },
    #[error("peer refused: {0}")]
    PeerRefused(String),
    #[error("the first frame must be a Hello")]
    HelloExpected,
    #[error("frame too large: {len} bytes (limit {max})")]
    FrameTooLarge { len: u64, max: u64 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("server busy: {0}")]
    Busy(String),
}
