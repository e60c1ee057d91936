//! The record envelope: one revision of one record as it travels between a
//! client and the server and as the server stores it, byte for byte.
//!
//! Owns: the envelope's fields and its structural check ([`RecordEnvelope::check_shape`]).
//! Must never: carry a plaintext of a sealed field or a key. The server
//! never opens `sealed`, never checks `mac` (it has no key) and returns the
//! envelope exactly as it was pushed.

use serde::{Deserialize, Serialize};

use crate::bytes::Bytes;
use crate::ids::{AccountId, KindName, RecordId, SpaceId};
use crate::limits::{MAX_ID_LEN, MAX_RECORD_BYTES};

/// One sealed field as the local store keeps it (`sealed_fields.ciphertext`:
/// format version, key id, nonce, ciphertext+tag; bound by associated data to
/// scope ‖ kind ‖ record id ‖ field name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedField {
    pub field: String,
    pub ciphertext: Bytes,
}

/// One record revision on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEnvelope {
    pub space: SpaceId,
    pub kind: KindName,
    pub id: RecordId,
    /// This revision (≥ 1); always `base_revision + 1`.
    pub revision: u64,
    /// The revision this write was based on (0 = the record is new). The
    /// server accepts the write only if its current revision equals this
    /// (compare-and-swap).
    pub base_revision: u64,
    /// A tombstone: `plain` is `""`, `sealed` is empty.
    pub deleted: bool,
    /// The plaintext fields as the store keeps them (`records.plain`, JSON
    /// text: name, folder, hostnames, … — what the field table allows).
    pub plain: String,
    /// Sealed fields, sorted by `field`, no duplicates.
    pub sealed: Vec<SealedField>,
    /// The record MAC as the store keeps it (`records.mac`).
    pub mac: Bytes,
    /// The account that wrote this revision (the server stores only writes
    /// whose session is this account).
    pub writer: AccountId,
    /// `postcard(gatehouse_membership::SignedWrite)`: the writer's identity-key
    /// signature over scope, kind, id, revision, base revision, tombstone flag,
    /// a hash of the content (plain + sealed as stored), key generation and
    /// the log head the writer saw. The server decodes it and checks that it
    /// names this envelope's space/kind/id/revisions/tombstone and the
    /// writer's registered identity key, and that the signature verifies.
    pub write: Bytes,
}

/// What is wrong with an envelope's shape (before any role or revision check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("revision must be base_revision + 1 (got revision {revision}, base {base})")]
    Revision { revision: u64, base: u64 },
    #[error("a tombstone carries no plaintext and no sealed fields")]
    TombstoneWithContent,
    #[error("sealed fields must be sorted by name without duplicates (at {0:?})")]
    SealedOrder(String),
    #[error("field name {0:?} is empty, too long or not a plain token")]
    FieldName(String),
    #[error("plain is not a JSON object")]
    PlainNotJson,
    #[error("record is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
}

impl RecordEnvelope {
    /// The size the record limit is measured on (its JSON encoding).
    pub fn wire_size(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// Checks what can be checked without state: revision arithmetic,
    /// tombstone emptiness, sealed-field order and names, `plain` being a JSON
    /// object, and the size limit.
    pub fn check_shape(&self) -> Result<(), ShapeError> {
        if self.base_revision.checked_add(1) != Some(self.revision) {
            return Err(ShapeError::Revision {
                revision: self.revision,
                base: self.base_revision,
            });
        }
        if self.deleted && (!self.plain.is_empty() || !self.sealed.is_empty()) {
            return Err(ShapeError::TombstoneWithContent);
        }
        if !self.deleted
            && !matches!(
                serde_json::from_str::<serde_json::Value>(&self.plain),
                Ok(serde_json::Value::Object(_))
            )
        {
            return Err(ShapeError::PlainNotJson);
        }
        let mut prev: Option<&str> = None;
        for f in &self.sealed {
            let ok = !f.field.is_empty()
                && f.field.len() <= MAX_ID_LEN * 2
                && f.field
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(ShapeError::FieldName(f.field.chars().take(80).collect()));
            }
            if prev.is_some_and(|p| p >= f.field.as_str()) {
                return Err(ShapeError::SealedOrder(f.field.clone()));
            }
            prev = Some(&f.field);
        }
        let size = self.wire_size();
        if size > MAX_RECORD_BYTES {
            return Err(ShapeError::TooLarge {
                size,
                limit: MAX_RECORD_BYTES,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;

    pub fn sample() -> RecordEnvelope {
        RecordEnvelope {
            space: SpaceId::Org(OrgId::new("acme").unwrap()),
            kind: KindName::new("host").unwrap(),
            id: RecordId::new("00112233aabbccdd").unwrap(),
            revision: 1,
            base_revision: 0,
            deleted: false,
            plain: r#"{"name":"r1","address":"10.0.0.1"}"#.into(),
            sealed: vec![SealedField {
                field: "protocols.ssh.password".into(),
                ciphertext: Bytes(vec![1; 40]),
            }],
            mac: Bytes(vec![2; 32]),
            writer: AccountId::new("alice").unwrap(),
            write: Bytes(vec![3; 180]),
        }
    }

    #[test]
    fn shape_checks() {
        let ok = sample();
        ok.check_shape().unwrap();
        let mut r = ok.clone();
        r.revision = 3;
        assert!(matches!(r.check_shape(), Err(ShapeError::Revision { .. })));
        let mut r = ok.clone();
        r.deleted = true;
        assert_eq!(r.check_shape(), Err(ShapeError::TombstoneWithContent));
        let mut r = ok.clone();
        r.sealed.push(r.sealed[0].clone());
        assert!(matches!(r.check_shape(), Err(ShapeError::SealedOrder(_))));
        let mut r = ok.clone();
        r.plain = "[1]".into();
        assert_eq!(r.check_shape(), Err(ShapeError::PlainNotJson));
        let mut r = ok.clone();
        r.sealed[0].ciphertext = Bytes(vec![0; MAX_RECORD_BYTES]);
        assert!(matches!(r.check_shape(), Err(ShapeError::TooLarge { .. })));
        let mut r = ok;
        r.sealed[0].field = "a/b".into();
        assert!(matches!(r.check_shape(), Err(ShapeError::FieldName(_))));
    }

    #[test]
    fn envelope_round_trips_through_json() {
        let r = sample();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<RecordEnvelope>(&j).unwrap(), r);
    }
}
