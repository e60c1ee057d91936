//! The sync wire protocol between `gatehouse-syncd` (and tests, benches) and
//! `gatehouse-sync-server`: every HTTP request and response body, the record
//! envelope as it travels, membership-log entries, key grants, the device
//! challenge, error codes and size limits.
//!
//! Owns: the shape of every HTTP message. Signed objects (account cards,
//! membership-log entries, record-write signatures, key grants) travel as
//! opaque byte strings: their format, the exact signed bytes and their
//! verification belong to `gatehouse-membership` (see docs/sync.md).
//! Must never: hold or use a key, do I/O, or depend on a daemon crate.
//!
//! Bodies travel as JSON (`Content-Type: application/json`); byte strings in
//! JSON are base64 (standard alphabet, padded).

pub mod api;
pub mod bytes;
pub mod ids;
pub mod limits;
pub mod record;

pub use api::*;
pub use bytes::{Bytes, Hash32};
/// Org roles: the membership crate's, which also holds their rules.
pub use gatehouse_membership::Role;
pub use ids::{AccountId, ChannelId, KindName, OrgId, RecordId, SpaceId};
pub use record::{RecordEnvelope, SealedField};

/// The protocol version (path prefix `/v1`). A server answers `GET /v1/info`
/// with the versions it speaks.
pub const PROTOCOL_VERSION: u32 = 1;
