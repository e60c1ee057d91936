//! Org-key grants: one generation of an org key wrapped to one member's
//! X25519 agreement key and signed by the granting owner/admin.
//!
//! Owns: the grant format, wrapping (ephemeral X25519 → HMAC-SHA256 key
//! derivation → XChaCha20-Poly1305, with every routing field as associated
//! data) and opening (which checks the key against the log's commitment).
//! Must never: hand out a key whose commitment the log does not hold, or
//! open a grant whose routing fields were changed.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::PublicKey;
use crate::log::{KeyGen, MembershipState};
use crate::sealed_box;
use crate::sign::{self, DOMAIN_GRANT};

const DOMAIN_WRAP: &str = "gatehouse/grant-wrap/v1";

/// The routing fields (signed, and the wrap's associated data) and the wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantBody {
    pub org: String,
    pub generation: u32,
    pub recipient: String,
    /// The recipient's agreement key the key was wrapped to.
    pub recipient_key: PublicKey,
    pub granter: String,
    /// The log head the granter verified.
    pub log_seq: u64,
    pub ephemeral: PublicKey,
    pub nonce: [u8; 24],
    /// XChaCha20-Poly1305 of the 32-byte org key.
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    pub body: GrantBody,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the grant is for org {got:?}, not {want:?}")]
    WrongOrg { want: String, got: String },
    #[error("the grant is for {got:?}, not {want:?}")]
    WrongRecipient { want: String, got: String },
    #[error("the granter {0:?} is not an active owner or admin")]
    GranterNotAdmin(String),
    #[error("the grant signature does not verify under {0:?}'s identity key")]
    BadSignature(String),
    #[error("the recipient {0:?} is not an active member")]
    RecipientNotMember(String),
    #[error("the grant is wrapped to another agreement key than {0:?}'s card")]
    RecipientKey(String),
    #[error("the log has no key generation {0}")]
    UnknownGeneration(u32),
    #[error("the grant does not open (wrong key or tampered)")]
    Open,
    #[error("the key does not match the log's commitment for generation {0}")]
    Commitment(u32),
    #[error("no randomness: {0}")]
    Random(String),
}

struct AssociatedData<'a> {
    org: &'a str,
    generation: u32,
    recipient: &'a str,
    recipient_key: &'a PublicKey,
    granter: &'a str,
    log_seq: u64,
    ephemeral: &'a PublicKey,
}

impl AssociatedData<'_> {
    fn of(b: &GrantBody) -> AssociatedData<'_> {
        AssociatedData {
            org: &b.org,
            generation: b.generation,
            recipient: &b.recipient,
            recipient_key: &b.recipient_key,
            granter: &b.granter,
            log_seq: b.log_seq,
            ephemeral: &b.ephemeral,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        sign::message(
            DOMAIN_WRAP,
            &(
                self.org,
                self.generation,
                self.recipient,
                self.recipient_key,
                self.granter,
                self.log_seq,
                self.ephemeral,
            ),
        )
    }
}

impl SignedGrant {
    /// Wraps `org_key` to `recipient_key` and signs the grant with the granter's identity key.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        granter_seed: &[u8; 32],
        granter: &str,
        org: &str,
        generation: u32,
        log_seq: u64,
        recipient: &str,
        recipient_key: &PublicKey,
        org_key: &[u8; 32],
    ) -> Result<SignedGrant, GrantError> {
        let mut body = GrantBody {
            org: org.into(),
            generation,
            recipient: recipient.into(),
            recipient_key: *recipient_key,
            granter: granter.into(),
            log_seq,
            ephemeral: [0; 32],
            nonce: [0; 24],
            wrapped: Vec::new(),
        };
        let sealed = sealed_box::seal_to(DOMAIN_WRAP, recipient_key, org_key, |ephemeral| {
            let mut routed = body.clone();
            routed.ephemeral = *ephemeral;
            AssociatedData::of(&routed).bytes()
        })
        .map_err(|e| GrantError::Random(e.0))?;
        body.ephemeral = sealed.ephemeral;
        body.nonce = sealed.nonce;
        body.wrapped = sealed.ciphertext;
        let sk = ed25519_dalek::SigningKey::from_bytes(granter_seed);
        let signature = sign::sign(&sk, DOMAIN_GRANT, &body);
        Ok(SignedGrant { body, signature })
    }

    /// What the server and a recipient check without the recipient's secret:
    /// the granter is an active owner/admin in `state` and signed it, the
    /// recipient is an active member and the key was wrapped to their card's
    /// agreement key, the generation exists.
    pub fn check(&self, state: &MembershipState) -> Result<(), GrantError> {
        let b = &self.body;
        if b.org != state.org {
            return Err(GrantError::WrongOrg {
                want: state.org.clone(),
                got: b.org.clone(),
            });
        }
        let granter = state
            .members
            .get(&b.granter)
            .filter(|m| m.role.administers())
            .ok_or_else(|| GrantError::GranterNotAdmin(b.granter.clone()))?;
        if !sign::verify(
            &granter.card.card.identity,
            DOMAIN_GRANT,
            b,
            &self.signature,
        ) {
            return Err(GrantError::BadSignature(b.granter.clone()));
        }
        let recipient = state
            .members
            .get(&b.recipient)
            .ok_or_else(|| GrantError::RecipientNotMember(b.recipient.clone()))?;
        if recipient.card.card.agreement != b.recipient_key {
            return Err(GrantError::RecipientKey(b.recipient.clone()));
        }
        if state.key(b.generation).is_none() {
            return Err(GrantError::UnknownGeneration(b.generation));
        }
        Ok(())
    }

    /// The recipient opens the grant: [`SignedGrant::check`], then unwrap
    /// with its agreement secret, then compare to the log's commitment.
    pub fn open(
        &self,
        state: &MembershipState,
        me: &str,
        agreement_secret: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, GrantError> {
        self.check(state)?;
        let b = &self.body;
        if b.recipient != me {
            return Err(GrantError::WrongRecipient {
                want: me.into(),
                got: b.recipient.clone(),
            });
        }
        let aad = AssociatedData::of(b).bytes();
        let plain = sealed_box::open_from(
            DOMAIN_WRAP,
            agreement_secret,
            &b.recipient_key,
            &b.ephemeral,
            &b.nonce,
            &b.wrapped,
            &aad,
        )
        .ok_or(GrantError::Open)?;
        let org_key: [u8; 32] = plain.as_slice().try_into().map_err(|_| GrantError::Open)?;
        let org_key = Zeroizing::new(org_key);
        let gen_ = state
            .key(b.generation)
            .ok_or(GrantError::UnknownGeneration(b.generation))?;
        if KeyGen::commit(&b.org, b.generation, &org_key) != gen_.commitment {
            return Err(GrantError::Commitment(b.generation));
        }
        Ok(org_key)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        sign::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedGrant, sign::DecodeError> {
        sign::decode_exact("key grant", bytes)
    }
}
