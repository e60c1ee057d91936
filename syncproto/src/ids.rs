//! Identifiers on the wire: accounts, organizations, record spaces, key ids.
//!
//! Owns: their syntax (validated at deserialization, so a handler never sees
//! a malformed id) and how a key id and a fingerprint derive from a public key.
//! Must never: accept path separators, whitespace or control characters in an id.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
}
