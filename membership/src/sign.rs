//! Domain-separated signatures and hashes, and exact decoding.
//!
//! Every signature in teams is Ed25519 (strict verification) over
//! `DOMAIN ‖ 0x00 ‖ postcard(body)`; every hash is SHA-256 over
//! `DOMAIN ‖ 0x00 ‖ parts`. Owns the list of domains.
//! Must never: sign bytes without a domain, or accept a decoded value with
//! trailing bytes.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::PublicKey;

/// syncd's device authentication: a server challenge.
pub const DOMAIN_AUTH: &str = "gatehouse/sync-auth/v1";
/// A record write (create, update, tombstone).
pub const DOMAIN_WRITE: &str = "gatehouse/record-write/v1";
/// An org-key grant to a member.
pub const DOMAIN_GRANT: &str = "gatehouse/grant/v1";
/// A membership-log entry.
pub const DOMAIN_ENTRY: &str = "gatehouse/membership-entry/v1";
/// An account card's self-signature.
pub const DOMAIN_CARD: &str = "gatehouse/account-card/v1";

/// The exact message signed for `body` under `domain`.
pub fn message<T: Serialize>(domain: &str, body: &T) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 1 + 128);
    m.extend_from_slice(domain.as_bytes());
    m.push(0);
    // postcard to a Vec only fails for types serde cannot represent; ours are plain data.
    m.extend_from_slice(&postcard::to_allocvec(body).expect("postcard encodes plain data"));
    m
}

/// Signs `body` under `domain` (64 bytes).
pub fn sign<T: Serialize>(key: &SigningKey, domain: &str, body: &T) -> Vec<u8> {
    key.sign(&message(domain, body)).to_bytes().to_vec()
}

/// Checks a signature by `public` on `body` under `domain`.
pub fn verify<T: Serialize>(public: &PublicKey, domain: &str, body: &T, signature: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_strict(&message(domain, body), &sig).is_ok()
}

/// SHA-256 of `domain ‖ 0x00 ‖ parts…`.
pub fn tagged_hash(domain: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} does not decode: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what} has {extra} trailing bytes")]
    Trailing { what: &'static str, extra: usize },
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
}

/// Most bytes any one teams object (entry, grant, envelope, card) may take.
pub const MAX_OBJECT_BYTES: usize = 64 * 1024;

/// Decodes exactly one `T` from `bytes` (postcard), refusing trailing bytes.
pub fn decode_exact<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(DecodeError::TooLarge {
            what,
            len: bytes.len(),
            limit: MAX_OBJECT_BYTES,
        });
    }
    let (v, rest) = postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    Ok(v)
}

/// Encodes `v` (postcard).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("postcard encodes plain data")
}

/// The public half of an Ed25519 seed.
pub fn identity_public(seed: &[u8; 32]) -> PublicKey {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// The public half of an X25519 secret.
pub fn agreement_public(secret: &[u8; 32]) -> PublicKey {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lowercase or uppercase hex of exactly `N` bytes.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
