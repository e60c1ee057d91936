//! [`SecretBytes`]: secret payloads on the wire (passphrases, keychain
//! payloads, field plaintexts).
//!
//! Owns: a byte buffer that is zeroized when dropped, serializes as bytes and
//! has a `Debug` that never shows the content. Must never: implement `Display`,
//! grow (reallocation would leave an unzeroized copy behind), or be logged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes, zeroized on drop; `Debug` prints only the length.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes` (no copy is made).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new exact-size buffer.
    pub fn copy_from(bytes: &[u8]) -> Self {
        SecretBytes::new(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes one trailing `\n` (and `\r`) in place, as typed lines carry one.
    pub fn trim_line_end(&mut self) {
        while matches!(self.0.last(), Some(b'\n' | b'\r')) {
            if let Some(last) = self.0.last_mut() {
                last.zeroize();
            }
            self.0.pop();
        }
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SecretBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SecretBytes, E> {
                Ok(SecretBytes::copy_from(v))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<SecretBytes, E> {
                Ok(SecretBytes::new(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SecretBytes, A::Error> {
                let mut out = Zeroizing::new(Vec::with_capacity(
                    seq.size_hint().unwrap_or(0).min(1 << 20),
                ));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(SecretBytes(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Plain (non-secret) bytes that serialize compactly, e.g. ciphertexts.
pub mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_content() {
        let s = SecretBytes::copy_from(b"hunter2-canary");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("14 bytes"));
    }

    #[test]
    fn roundtrips_through_postcard() {
        let s = SecretBytes::copy_from(b"\x00\x01payload\xff");
        let wire = postcard::to_stdvec(&s).unwrap();
        let back: SecretBytes = postcard::from_bytes(&wire).unwrap();
        assert_eq!(back.expose(), s.expose());
    }

    #[test]
    fn trims_line_end() {
        let mut s = SecretBytes::copy_from(b"pass\r\n");
        s.trim_line_end();
        assert_eq!(s.expose(), b"pass");
    }
}
