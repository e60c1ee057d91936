//! Signed record writes: every record revision a client pushes carries the
//! writer's signature over what it wrote, so every other client can check
//! the writer was allowed to write it (against the membership log), even if
//! the server accepted a write it should have refused.
//!
//! Owns: [`WriteBody`] (what is signed), the content hash, and the client
//! side check [`check_write`].
//! Must never: accept a write whose writer is not an active writing member of
//! the log the caller verified, or whose content does not hash to what was signed.

use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::log::MembershipState;
use crate::sign::{self, DOMAIN_WRITE};

const DOMAIN_CONTENT: &str = "gatehouse/record-content/v1";

/// Where a record lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    Org(String),
    /// An account's private records.
    Private(String),
}

/// What the writer signs for one record revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBody {
    pub scope: Scope,
    pub kind: String,
    pub id: String,
    pub revision: u64,
    pub base_revision: u64,
    pub deleted: bool,
    /// [`content_hash`] of the revision's stored content.
    pub content: [u8; 32],
    /// The org key generation the sealed fields use (0 for private records).
    pub generation: u32,
    /// The membership-log head seq the writer had verified (0 for private).
    pub log_head: u64,
    pub writer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWrite {
    pub body: WriteBody,
    pub signature: Vec<u8>,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the write signature does not verify under {0:?}'s identity key")]
    BadSignature(String),
    #[error("{0:?} is not an active member of the org")]
    NotMember(String),
    #[error("{writer:?} is a {role} and may not write records")]
    ReadOnly {
        writer: String,
        role: crate::card::Role,
    },
    #[error("the write claims log head {claimed}, past the verified head {head}")]
    FutureLog { claimed: u64, head: u64 },
    #[error("the write uses key generation {0}, which the log does not have")]
    UnknownGeneration(u32),
    #[error("the record's content does not match what its writer signed")]
    ContentMismatch,
    #[error("the write is for {0:?}, not this org")]
    WrongScope(Scope),
}

/// `SHA-256(DOMAIN_CONTENT ‖ 0 ‖ len(plain) ‖ plain ‖ for each sealed field: len(name) ‖ name ‖ len(ct) ‖ ct)`
/// (lengths as u64 LE; fields in the order given, which the wire requires sorted).
pub fn content_hash<'a>(
    plain: &str,
    sealed: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> [u8; 32] {
    let mut parts: Vec<Vec<u8>> = vec![
        (plain.len() as u64).to_le_bytes().to_vec(),
        plain.as_bytes().to_vec(),
    ];
    for (name, ct) in sealed {
        parts.push((name.len() as u64).to_le_bytes().to_vec());
        parts.push(name.as_bytes().to_vec());
        parts.push((ct.len() as u64).to_le_bytes().to_vec());
        parts.push(ct.to_vec());
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    sign::tagged_hash(DOMAIN_CONTENT, &refs)
}

impl SignedWrite {
    pub fn sign(identity_seed: &[u8; 32], body: WriteBody) -> SignedWrite {
        let key = ed25519_dalek::SigningKey::from_bytes(identity_seed);
        let signature = sign::sign(&key, DOMAIN_WRITE, &body);
        SignedWrite { body, signature }
    }

    pub fn verify(&self, identity: &PublicKey) -> bool {
        sign::verify(identity, DOMAIN_WRITE, &self.body, &self.signature)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        sign::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedWrite, sign::DecodeError> {
        sign::decode_exact("record write", bytes)
    }
}

/// A client's check of an org record's write against the membership log it
/// verified: the writer is an active member who may write, the signature
/// verifies under the writer's key from the log, the key generation exists,
/// and `content` is what was signed.
pub fn check_write(
    state: &MembershipState,
    write: &SignedWrite,
    content: [u8; 32],
) -> Result<(), WriteError> {
    let b = &write.body;
    if b.scope != Scope::Org(state.org.clone()) {
        return Err(WriteError::WrongScope(b.scope.clone()));
    }
    let member = state
        .members
        .get(&b.writer)
        .ok_or_else(|| WriteError::NotMember(b.writer.clone()))?;
    if !member.role.writes() {
        return Err(WriteError::ReadOnly {
            writer: b.writer.clone(),
            role: member.role,
        });
    }
    if !write.verify(&member.card.card.identity) {
        return Err(WriteError::BadSignature(b.writer.clone()));
    }
    if b.log_head > state.head_seq {
        return Err(WriteError::FutureLog {
            claimed: b.log_head,
            head: state.head_seq,
        });
    }
    if state.key(b.generation).is_none() {
        return Err(WriteError::UnknownGeneration(b.generation));
    }
    if b.content != content {
        return Err(WriteError::ContentMismatch);
    }
    Ok(())
}
