//! The sync wire protocol between `gatehouse-syncd` (and tests, benches) and
//! `gatehouse-sync-server`: every HTTP request and response body, the record
//! envelope as it travels, membership-log entries, key grants, the device
//! challenge, error codes and size limits — and the exact byte strings that
//! get signed ([`signing`]) and hashed.
//!
//! Owns: the shape of every message and the canonical signed bytes.
//! Must never: hold or use a key, do I/O, or depend on a daemon crate. The
//! server and the clients both build signed bytes only through [`signing`].
//!
//! Bodies travel as JSON (`Content-Type: application/json`); byte strings in
//! JSON are base64 (standard alphabet, padded). Signed bytes are postcard
//! encodings of the `*Signed` views below, behind a domain-separation prefix.

pub mod api;
pub mod bytes;
pub mod ids;
pub mod limits;
pub mod membership;
pub mod record;
pub mod signing;

pub use api::*;
pub use bytes::{Bytes, Hash32};
pub use ids::{AccountId, KeyId, OrgId, SpaceId, fingerprint, key_id};
pub use membership::{LogAction, LogEntry, Role, Roster, RosterError};
pub use record::{RecordEnvelope, SealedField};

/// The protocol version (path prefix `/v1`). A server answers `GET /v1/info`
/// with the versions it speaks.
pub const PROTOCOL_VERSION: u32 = 1;
