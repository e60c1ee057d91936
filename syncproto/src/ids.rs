//! Identifiers on the wire: accounts, organizations, record spaces, key ids.
//!
//! Owns: their syntax (validated at deserialization, so a handler never sees
//! a malformed id) and how a key id and a fingerprint derive from a public key.
//! Must never: accept path separators, whitespace or control characters in an id.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::limits::MAX_ID_LEN;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check_token(what: &'static str, s: &str) -> Result<(), IdError> {
    let err = |reason| IdError {
        what,
        value: s.chars().take(80).collect(),
        reason,
    };
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(err("longer than 64 bytes"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(err(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    if s.starts_with('.') {
        return Err(err("must not start with '.'"));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<$name, IdError> {
                let s = s.into();
                check_token($what, &s)?;
                Ok($name(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<$name, IdError> {
                $name::new(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_id!(
    /// An account name on a server (`alice`), unique per server.
    AccountId,
    "account id"
);
token_id!(
    /// An organization id, chosen by its creator (random, e.g. 16 hex digits), unique per server.
    OrgId,
    "org id"
);
token_id!(
    /// A record id (the local store's 16 hex digits; any token is accepted).
    RecordId,
    "record id"
);
token_id!(
    /// A record kind name as `gatehouse_records::Kind::as_str` spells it (`host`, `procedure`, …).
    KindName,
    "record kind"
);
token_id!(
    /// A share-relay channel id (issue 14), chosen by the sharer (random).
    ChannelId,
    "channel id"
);

/// Where records live on the server: an organization's space, or one
/// account's private space (only that account reads or writes it).
/// String form (paths, JSON): `org:ID` or `private:ACCOUNT`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum SpaceId {
    Org(OrgId),
    Private(AccountId),
}

impl std::fmt::Display for SpaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpaceId::Org(o) => write!(f, "org:{o}"),
            SpaceId::Private(a) => write!(f, "private:{a}"),
        }
    }
}

impl std::str::FromStr for SpaceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<SpaceId, IdError> {
        if let Some(o) = s.strip_prefix("org:") {
            Ok(SpaceId::Org(OrgId::new(o)?))
        } else if let Some(a) = s.strip_prefix("private:") {
            Ok(SpaceId::Private(AccountId::new(a)?))
        } else {
            Err(IdError {
                what: "space id",
                value: s.chars().take(80).collect(),
                reason: "must be org:ID or private:ACCOUNT",
            })
        }
    }
}

impl Serialize for SpaceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SpaceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpaceId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A public key's id: the first 16 bytes of SHA-256(public key), 32 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyId(String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn parse(s: &str) -> Result<KeyId, IdError> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(KeyId(s.to_string()))
        } else {
            Err(IdError {
                what: "key id",
                value: s.chars().take(80).collect(),
                reason: "must be 32 lowercase hex digits",
            })
        }
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyId, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The key id of a public key (Ed25519 or X25519, 32 bytes).
pub fn key_id(public_key: &[u8]) -> KeyId {
    let h = Sha256::digest(public_key);
    KeyId(h[..16].iter().map(|b| format!("{b:02x}")).collect())
}

/// What a person compares (invite codes, `org confirm --fingerprint`):
/// `SHA256:` + unpadded standard base64 of SHA-256(public key), as OpenSSH prints.
pub fn fingerprint(public_key: &[u8]) -> String {
    use base64::Engine;
    let h = Sha256::digest(public_key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_separators_and_junk() {
        assert!(AccountId::new("alice").is_ok());
        assert!(AccountId::new("a/b").is_err());
        assert!(AccountId::new("").is_err());
        assert!(AccountId::new("..").is_err());
        assert!(AccountId::new("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<OrgId>("\"a b\"").is_err());
    }

    #[test]
    fn space_ids_round_trip() {
        let s: SpaceId = "org:acme".parse().unwrap();
        assert_eq!(s, SpaceId::Org(OrgId::new("acme").unwrap()));
        assert_eq!(s.to_string(), "org:acme");
        let p: SpaceId = "private:bob".parse().unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"private:bob\"");
        assert!("acme".parse::<SpaceId>().is_err());
        assert!("org:a/b".parse::<SpaceId>().is_err());
    }

    #[test]
    fn key_ids_and_fingerprints() {
        let k = key_id(&[7u8; 32]);
        assert_eq!(k.as_str().len(), 32);
        assert_eq!(KeyId::parse(k.as_str()).unwrap(), k);
        assert!(KeyId::parse("XYZ").is_err());
        assert!(fingerprint(&[7u8; 32]).starts_with("SHA256:"));
        assert_ne!(fingerprint(&[7u8; 32]), fingerprint(&[8u8; 32]));
    }
}
