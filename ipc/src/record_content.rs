//! The bytes a record MAC covers: written by `records`, read back by the
//! broker when a host record is presented to obtain a credential.
//!
//! Owns one format, in one place: a domain string, the record's meta
//! (owner, times, revision) and every field in name order, each
//! length-prefixed and tagged plaintext (canonical JSON) or sealed
//! (ciphertext). Must never: accept trailing bytes, duplicate or unsorted
//! field names, or a length that runs past the end (a parsed content is
//! exactly what was MACed, read one way only).

const DOMAIN: &[u8] = b"gatehouse/record/v1";
/// Most fields a record may have (the field table has far fewer).
const MAX_FIELDS: u64 = 4096;

/// One field of a record as the MAC covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// Canonical JSON of a plaintext field.
    Plain(&'a [u8]),
    /// A sealed field's ciphertext.
    Sealed(&'a [u8]),
}

/// A record's MACed content, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordContent<'a> {
    pub owner: &'a str,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub revision: u64,
    /// In name order, names unique.
    pub fields: Vec<(&'a str, FieldValue<'a>)>,
}

impl<'a> RecordContent<'a> {
    pub fn field(&self, name: &str) -> Option<&FieldValue<'a>> {
        self.fields
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| &self.fields[i].1)
    }
}

fn push_lp(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u64).to_le_bytes());
    out.extend(b);
}

/// Encodes a record's content. `fields` must be sorted by name, names unique.
pub fn encode(
    owner: &str,
    created_ms: u64,
    updated_ms: u64,
    revision: u64,
    fields: &[(&str, FieldValue<'_>)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    push_lp(&mut out, DOMAIN);
    push_lp(&mut out, owner.as_bytes());
    out.extend(created_ms.to_le_bytes());
    out.extend(updated_ms.to_le_bytes());
    out.extend(revision.to_le_bytes());
    out.extend((fields.len() as u64).to_le_bytes());
    for (name, value) in fields {
        push_lp(&mut out, name.as_bytes());
        match value {
            FieldValue::Plain(b) => {
                out.push(0);
                push_lp(&mut out, b);
            }
            FieldValue::Sealed(b) => {
                out.push(1);
                push_lp(&mut out, b);
            }
        }
    }
    out
}

/// The binding of a sealed field: each plaintext field it is bound to, by
/// name, with its canonical JSON (`null` when absent), length-prefixed, in
/// the order the field table lists them. Written by `records` when sealing,
/// recomputed by the broker from a verified record before releasing.
pub fn binding<'a>(bound: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, canonical) in bound {
        push_lp(&mut out, name.as_bytes());
        push_lp(&mut out, canonical);
    }
    out
}

/// Why content did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("record content ends early ({0})")]
    Truncated(&'static str),
    #[error("record content has the wrong domain")]
    Domain,
    #[error("record content: {0}")]
    Malformed(&'static str),
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ContentError> {
        if self.rest.len() < n {
            return Err(ContentError::Truncated(what));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, ContentError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn lp(&mut self, what: &'static str) -> Result<&'a [u8], ContentError> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).map_err(|_| ContentError::Truncated(what))?;
        self.take(n, what)
    }
}

/// Decodes content written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<RecordContent<'_>, ContentError> {
    let mut r = Reader { rest: bytes };
    if r.lp("domain")? != DOMAIN {
        return Err(ContentError::Domain);
    }
    let owner = std::str::from_utf8(r.lp("owner")?)
        .map_err(|_| ContentError::Malformed("owner is not UTF-8"))?;
    let created_ms = r.u64("created")?;
    let updated_ms = r.u64("updated")?;
    let revision = r.u64("revision")?;
    let count = r.u64("field count")?;
    if count > MAX_FIELDS {
        return Err(ContentError::Malformed("too many fields"));
    }
    let mut fields: Vec<(&str, FieldValue<'_>)> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let name = std::str::from_utf8(r.lp("field name")?)
            .map_err(|_| ContentError::Malformed("field name is not UTF-8"))?;
        if let Some((prev, _)) = fields.last()
            && *prev >= name
        {
            return Err(ContentError::Malformed("field names unsorted or repeated"));
        }
        let tag = r.take(1, "field tag")?[0];
        let value = r.lp("field value")?;
        let value = match tag {
            0 => FieldValue::Plain(value),
            1 => FieldValue::Sealed(value),
            _ => return Err(ContentError::Malformed("unknown field tag")),
        };
        fields.push((name, value));
    }
    if !r.rest.is_empty() {
        return Err(ContentError::Malformed("trailing bytes"));
    }
    Ok(RecordContent {
        owner,
        created_ms,
        updated_ms,
        revision,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lookup() {
        let fields = [
            ("address", FieldValue::Plain(b"\"10.0.0.1\"")),
            ("port", FieldValue::Plain(b"22")),
            ("ssh.password", FieldValue::Sealed(&[1, 2, 3])),
        ];
        let bytes = encode("me", 1, 2, 3, &fields);
        let c = decode(&bytes).unwrap();
        assert_eq!(c.owner, "me");
        assert_eq!(c.revision, 3);
        assert_eq!(c.field("port"), Some(&FieldValue::Plain(b"22")));
        assert_eq!(
            c.field("ssh.password"),
            Some(&FieldValue::Sealed(&[1, 2, 3]))
        );
        assert_eq!(c.field("nope"), None);
    }

    #[test]
    fn every_truncation_and_extension_fails() {
        let fields = [
            ("a", FieldValue::Plain(b"1")),
            ("b", FieldValue::Sealed(b"xyz")),
        ];
        let bytes = encode("me", 1, 2, 3, &fields);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn unsorted_or_repeated_names_fail() {
        for fields in [
            [
                ("b", FieldValue::Plain(b"1")),
                ("a", FieldValue::Plain(b"1")),
            ],
            [
                ("a", FieldValue::Plain(b"1")),
                ("a", FieldValue::Sealed(b"1")),
            ],
        ] {
            assert!(decode(&encode("o", 0, 0, 0, &fields)).is_err());
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate_or_panic() {
        let mut bytes = encode("o", 0, 0, 0, &[]);
        // Overwrite the field count with a huge value.
        let n = bytes.len();
        bytes[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&bytes).is_err());
        let mut bad = Vec::new();
        bad.extend(u64::MAX.to_le_bytes());
        assert!(decode(&bad).is_err());
    }
}
