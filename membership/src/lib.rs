//! Teams' public-key layer, shared by the broker, syncd, the sync server
//! and the tests: account cards and fingerprints, the hash-chained
//! membership log and its verification, signed record-write envelopes, and
//! org-key grants wrapped to a member's X25519 key.
//!
//! Pure: functions over bytes and public keys (and, for sealing/opening a
//! grant or signing, a key passed in by reference). No I/O, no clock, no
//! key storage — the broker holds every private key.
//! Must never: sign or verify anything without its domain-separation
//! prefix ([`sign`]), accept a log entry the chain rule refuses, or hand
//! out a grant's key whose commitment the log does not hold.
//!
//! The byte strings signed and hashed are specified in docs/sync.md
//! ("Keys and signatures").

pub mod auth;
pub mod card;
pub mod envelope;
pub mod grant;
pub mod invite;
pub mod log;
pub mod sealed_box;
pub mod share;
pub mod sign;

pub use card::{AccountCard, Fingerprint, Role, SignedCard};
pub use envelope::{Scope, SignedWrite, WriteBody, WriteError};
pub use grant::{GrantBody, GrantError, SignedGrant};
pub use invite::InviteCode;
pub use log::{EntryBody, KeyGen, LogError, MembershipState, Op, SignedEntry};

/// An Ed25519 or X25519 public key.
pub type PublicKey = [u8; 32];

#[cfg(test)]
mod tests;
