//! Account cards (an account's name with its identity and agreement public
//! keys), their fingerprints, and org roles.
//!
//! Must never: produce a fingerprint that does not cover both keys (a
//! swapped agreement key must change it).

use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::sign::{self, DOMAIN_CARD};

/// A role in an organization. The sync API spells it in snake case
/// (`owner`, `admin`, `member`, `viewer`); syncproto re-exports this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    /// Reads and writes records.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    /// May sign record writes.
    pub fn writes(self) -> bool {
        !matches!(self, Role::Viewer)
    }

    /// May sign membership-log entries.
    pub fn administers(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Whether a signer with this role may invite, confirm, change or
    /// remove someone whose role is (or becomes) `target`: the owner any
    /// non-owner role, an admin members and viewers only.
    pub fn manages(self, target: Role) -> bool {
        match self {
            Role::Owner => target != Role::Owner,
            Role::Admin => matches!(target, Role::Member | Role::Viewer),
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (owner, admin, member, viewer)"))
    }
}

/// An account as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountCard {
    /// The account's name on the sync server (1–64 of `[A-Za-z0-9._-]`).
    pub account: String,
    /// Ed25519: signs everything the account sends.
    pub identity: PublicKey,
    /// X25519: receives org-key grants and share keys.
    pub agreement: PublicKey,
}

/// Whether `name` is a valid account name.
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl AccountCard {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.identity, &self.agreement)
    }
}

/// First 16 bytes of `SHA-256("gatehouse/fingerprint/v1" ‖ 0 ‖ identity ‖ agreement)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    pub fn of(identity: &PublicKey, agreement: &PublicKey) -> Fingerprint {
        let h = sign::tagged_hash("gatehouse/fingerprint/v1", &[identity, agreement]);
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&h[..16]);
        Fingerprint(fp)
    }
}

impl std::fmt::Display for Fingerprint {
    /// 32 lowercase hex digits in groups of 4 joined by `-`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = sign::hex(&self.0);
        let groups: Vec<&str> = (0..8).map(|i| &h[4 * i..4 * i + 4]).collect();
        f.write_str(&groups.join("-"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;
    /// Accepts the displayed form, any case, with or without `-`.
    fn from_str(s: &str) -> Result<Self, String> {
        let compact: String = s.chars().filter(|c| *c != '-').collect();
        sign::parse_hex::<16>(&compact.to_ascii_lowercase())
            .map(Fingerprint)
            .ok_or_else(|| format!("{s:?} is not a fingerprint (32 hex digits)"))
    }
}

/// A card with its self-signature (the identity key vouches for the agreement key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCard {
    pub card: AccountCard,
    pub signature: Vec<u8>,
}

impl SignedCard {
    pub fn sign(identity_seed: &[u8; 32], card: AccountCard) -> SignedCard {
        let key = ed25519_dalek::SigningKey::from_bytes(identity_seed);
        let signature = sign::sign(&key, DOMAIN_CARD, &card);
        SignedCard { card, signature }
    }

    /// The self-signature holds and the account name is valid.
    pub fn verify(&self) -> bool {
        valid_account_name(&self.card.account)
            && sign::verify(
                &self.card.identity,
                DOMAIN_CARD,
                &self.card,
                &self.signature,
            )
    }
}
