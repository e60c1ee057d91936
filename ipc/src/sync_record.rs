//! A stored record as it travels to a sync server, and back.
//!
//! Owns the one mapping between a record's MACed content
//! ([`crate::record_content`]) and the sync envelope's `plain` JSON and
//! sealed fields: syncd builds envelopes with it, the broker recomputes it
//! from a MAC-verified record before it signs a write, and a receiving device
//! rebuilds the MACed content from an envelope with it (then the broker
//! checks the record's MAC, so a ciphertext moved between records, or a
//! plaintext changed by the server, fails). Must never: produce a mapping
//! that does not round-trip byte for byte (a plaintext field that is not
//! canonical JSON is refused, not rewritten), or drop a field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record_content::{self, FieldValue};

/// The envelope's `plain`: the record's meta and its plaintext fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain {
    owner: String,
    created_ms: u64,
    updated_ms: u64,
    revision: u64,
    fields: BTreeMap<String, serde_json::Value>,
}

/// The envelope's `plain`, read: the record's meta and plaintext fields.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePlain {
    pub owner: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub revision: u64,
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// Reads an envelope's `plain` (refusing anything but a Gatehouse record).
pub fn read_plain(plain: &str) -> Result<WirePlain, SyncRecordError> {
    let p: Plain =
        serde_json::from_str(plain).map_err(|e| SyncRecordError::Plain(e.to_string()))?;
    Ok(WirePlain {
        owner: p.owner,
        created_ms: p.created_ms,
        updated_ms: p.updated_ms,
        revision: p.revision,
        fields: p.fields,
    })
}

/// A record in envelope form: `plain` (a JSON object) and the sealed
/// fields' ciphertexts in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    pub plain: String,
    pub sealed: Vec<(String, Vec<u8>)>,
}

/// Why a record does not map to or from its envelope form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncRecordError {
    #[error("{0}")]
    Content(#[from] record_content::ContentError),
    #[error("plaintext field {0:?} is not canonical JSON")]
    NotCanonical(String),
    #[error("the envelope's plain part is not a Gatehouse record: {0}")]
    Plain(String),
    #[error("field {0:?} is both plaintext and sealed")]
    Duplicate(String),
}

/// The envelope form of MACed record content.
pub fn to_wire(content: &[u8]) -> Result<WireRecord, SyncRecordError> {
    let c = record_content::decode(content)?;
    let mut fields = BTreeMap::new();
    let mut sealed = Vec::new();
    for (name, value) in &c.fields {
        match value {
            FieldValue::Plain(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(bytes)
                    .map_err(|_| SyncRecordError::NotCanonical((*name).into()))?;
                if serde_json::to_vec(&v).ok().as_deref() != Some(*bytes) {
                    return Err(SyncRecordError::NotCanonical((*name).into()));
                }
                fields.insert((*name).to_string(), v);
            }
            FieldValue::Sealed(ct) => sealed.push(((*name).to_string(), ct.to_vec())),
        }
    }
    let plain = Plain {
        owner: c.owner.into(),
        created_ms: c.created_ms,
        updated_ms: c.updated_ms,
        revision: c.revision,
        fields,
    };
    let plain = serde_json::to_string(&plain).map_err(|e| SyncRecordError::Plain(e.to_string()))?;
    Ok(WireRecord { plain, sealed })
}

/// The MACed content an envelope describes (the inverse of [`to_wire`]).
pub fn from_wire(plain: &str, sealed: &[(String, Vec<u8>)]) -> Result<Vec<u8>, SyncRecordError> {
    let p: Plain =
        serde_json::from_str(plain).map_err(|e| SyncRecordError::Plain(e.to_string()))?;
    let plain_bytes: Vec<(String, Vec<u8>)> = p
        .fields
        .iter()
        .map(|(n, v)| {
            serde_json::to_vec(v)
                .map(|b| (n.clone(), b))
                .map_err(|e| SyncRecordError::Plain(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let mut fields: Vec<(&str, FieldValue<'_>)> = plain_bytes
        .iter()
        .map(|(n, b)| (n.as_str(), FieldValue::Plain(b.as_slice())))
        .chain(
            sealed
                .iter()
                .map(|(n, ct)| (n.as_str(), FieldValue::Sealed(ct.as_slice()))),
        )
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = fields.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(SyncRecordError::Duplicate(w[0].0.into()));
    }
    Ok(record_content::encode(
        &p.owner,
        p.created_ms,
        p.updated_ms,
        p.revision,
        &fields,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        record_content::encode(
            "private",
            1,
            2,
            3,
            &[
                ("address", FieldValue::Plain(br#""10.0.0.1""#)),
                ("port", FieldValue::Plain(b"22")),
                ("ssh.password", FieldValue::Sealed(&[1, 2, 3])),
                ("tags", FieldValue::Plain(br#"{"a":[1,2],"b":null}"#)),
            ],
        )
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let content = sample();
        let w = to_wire(&content).unwrap();
        assert_eq!(w.sealed, vec![("ssh.password".to_string(), vec![1, 2, 3])]);
        assert!(!w.plain.contains("ssh.password"));
        assert_eq!(from_wire(&w.plain, &w.sealed).unwrap(), content);
    }

    #[test]
    fn refuses_what_would_not_round_trip() {
        let odd = record_content::encode("o", 0, 0, 0, &[("a", FieldValue::Plain(b"{ }"))]);
        assert_eq!(
            to_wire(&odd),
            Err(SyncRecordError::NotCanonical("a".into()))
        );
        let w = to_wire(&sample()).unwrap();
        let dup = vec![("port".to_string(), vec![9])];
        assert_eq!(
            from_wire(&w.plain, &dup),
            Err(SyncRecordError::Duplicate("port".into()))
        );
        assert!(matches!(
            from_wire(r#"{"owner":"o"}"#, &[]),
            Err(SyncRecordError::Plain(_))
        ));
        assert!(matches!(
            from_wire(&w.plain.replace("\"owner\"", "\"extra\":1,\"owner\""), &[]),
            Err(SyncRecordError::Plain(_))
        ));
    }
}
