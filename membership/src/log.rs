//! The membership log of an organization: an append-only, hash-chained list
//! of entries, each signed by the Ed25519 identity key of an owner or admin,
//! and [`MembershipState`], what the log says after applying its entries in
//! order.
//!
//! Owns: the entry format, the chain rule and the role rules. The sync server
//! (before storing an entry) and every client (before trusting a log) apply
//! the same rules through [`MembershipState::apply`] / [`MembershipState::verify_chain`].
//! Must never: accept an entry out of order, with a broken hash link, with a
//! signature that does not verify under the signer's key as the log holds it,
//! or that a rule below refuses; leave the state half-changed after a refusal.
//!
//! Rules:
//! * seq 0 is `Genesis`, and only seq 0: the owner's self-signed card, the
//!   first key generation (1); signed by that owner's identity key.
//! * every later entry has `seq = head + 1`, `prev = hash(head entry)`, the
//!   same org, a time not before the previous entry's, and is signed by a
//!   current owner or admin with the identity key the log holds for them.
//! * the owner manages every non-owner role, an admin manages members and
//!   viewers only ([`Role::manages`]); nobody invites, makes or removes an owner.
//! * `Confirm` consumes an open, unexpired invite (by the entry's time) with
//!   the invite's role, for a self-signed card of an account that is not an
//!   active member.
//! * `Remove` takes an active member out and moves the key to the next
//!   generation in the same entry; `Rotate` moves it forward by exactly one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::card::{Fingerprint, Role, SignedCard};
use crate::sign::{self, DOMAIN_ENTRY};

/// Hash domain of a log entry (the chain link).
pub const DOMAIN_ENTRY_HASH: &str = "gatehouse/membership-entry-hash/v1";
/// Hash domain of an org-key commitment.
pub const DOMAIN_KEY_COMMIT: &str = "gatehouse/org-key-commitment/v1";

/// One org-key generation as the log records it: its number and a
/// commitment to the key (the key itself travels only in grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGen {
    pub generation: u32,
    /// [`KeyGen::commit`] of the org key of this generation.
    pub commitment: [u8; 32],
}

impl KeyGen {
    /// `SHA-256(DOMAIN_KEY_COMMIT ‖ 0 ‖ org ‖ 0 ‖ generation (LE) ‖ key)`.
    pub fn commit(org: &str, generation: u32, key: &[u8; 32]) -> [u8; 32] {
        sign::tagged_hash(
            DOMAIN_KEY_COMMIT,
            &[org.as_bytes(), &[0], &generation.to_le_bytes(), key],
        )
    }

    pub fn for_key(org: &str, generation: u32, key: &[u8; 32]) -> KeyGen {
        KeyGen {
            generation,
            commitment: KeyGen::commit(org, generation, key),
        }
    }
}

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The org exists; `owner` owns it; its first key generation.
    Genesis {
        owner: SignedCard,
        key: KeyGen,
    },
    /// Whoever shows the secret hashing to `secret_hash`
    /// ([`crate::invite::secret_hash`]) may ask to join with `role`.
    Invite {
        invite_id: [u8; 16],
        role: Role,
        secret_hash: [u8; 32],
        expires_ms: u64,
    },
    /// An admin compared fingerprints and confirms the joiner's card.
    Confirm {
        invite_id: [u8; 16],
        member: SignedCard,
        role: Role,
    },
    /// An open invite is withdrawn.
    RevokeInvite {
        invite_id: [u8; 16],
    },
    ChangeRole {
        account: String,
        role: Role,
    },
    /// The member is out, and the org key moves to `next_key` in the same step.
    Remove {
        account: String,
        next_key: KeyGen,
    },
    /// A new key generation (e.g. a device was lost).
    Rotate {
        key: KeyGen,
    },
}

/// The signed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryBody {
    pub org: String,
    /// 0 for genesis.
    pub seq: u64,
    /// [`SignedEntry::hash`] of entry `seq - 1`; zeros for genesis.
    pub prev: [u8; 32],
    /// The signer's clock (ms since the epoch).
    pub time_ms: u64,
    /// The signing account (its identity key is looked up in the log).
    pub signer: String,
    pub op: Op,
}

/// An entry with its signature: Ed25519 over `DOMAIN_ENTRY ‖ 0 ‖ postcard(body)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEntry {
    pub body: EntryBody,
    pub signature: Vec<u8>,
}

impl SignedEntry {
    pub fn sign(identity_seed: &[u8; 32], body: EntryBody) -> SignedEntry {
        let key = ed25519_dalek::SigningKey::from_bytes(identity_seed);
        let signature = sign::sign(&key, DOMAIN_ENTRY, &body);
        SignedEntry { body, signature }
    }

    /// The chain link: `SHA-256(DOMAIN_ENTRY_HASH ‖ 0 ‖ postcard(entry))`
    /// (covers the signature too).
    pub fn hash(&self) -> [u8; 32] {
        sign::tagged_hash(DOMAIN_ENTRY_HASH, &[&sign::encode(self)])
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        sign::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SignedEntry, sign::DecodeError> {
        sign::decode_exact("membership-log entry", bytes)
    }
}

/// Why an entry (or a chain) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("entry is for org {got:?}, this log is {want:?}")]
    WrongOrg { want: String, got: String },
    #[error("entry has seq {got}, expected {want} (an entry is missing, repeated or out of order)")]
    Sequence { want: u64, got: u64 },
    #[error("entry {seq}: its prev hash does not match entry {}", seq.saturating_sub(1))]
    HashLink { seq: u64 },
    #[error("entry {seq}: genesis must be the first entry and only the first")]
    GenesisMisplaced { seq: u64 },
    #[error("entry {seq}: time goes backwards ({time_ms} < {prev_ms})")]
    TimeBackwards {
        seq: u64,
        time_ms: u64,
        prev_ms: u64,
    },
    #[error("entry {seq}: {signer:?} is not an active owner or admin")]
    NotAdmin { seq: u64, signer: String },
    #[error("entry {seq}: the signature does not verify under {signer:?}'s identity key")]
    BadSignature { seq: u64, signer: String },
    #[error("entry {seq}: the card of {account:?} is not validly self-signed")]
    BadCard { seq: u64, account: String },
    #[error("entry {seq}: {reason}")]
    Rule { seq: u64, reason: String },
    #[error("the log is empty")]
    Empty,
    #[error("the owner's fingerprint is {got}, the invite pinned {want}")]
    OwnerNotPinned { want: Fingerprint, got: Fingerprint },
}

/// A member as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub card: SignedCard,
    pub role: Role,
    /// Seq of the entry that made them a member.
    pub since_seq: u64,
}

/// An invite as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteState {
    pub role: Role,
    pub secret_hash: [u8; 32],
    pub expires_ms: u64,
    pub inviter: String,
    pub open: bool,
}

/// What a log says after its entries are applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipState {
    pub org: String,
    pub owner: String,
    /// Active members by account.
    pub members: BTreeMap<String, Member>,
    /// Removed accounts, with the seq of their removal.
    pub removed: BTreeMap<String, u64>,
    pub invites: BTreeMap<[u8; 16], InviteState>,
    /// Every key generation, oldest first (the last is current).
    pub keys: Vec<KeyGen>,
    pub head_seq: u64,
    pub head_hash: [u8; 32],
    pub head_time_ms: u64,
}

impl MembershipState {
    /// The state after the genesis entry alone.
    pub fn genesis(entry: &SignedEntry) -> Result<MembershipState, LogError> {
        let b = &entry.body;
        let Op::Genesis { owner, key } = &b.op else {
            return Err(LogError::GenesisMisplaced { seq: b.seq });
        };
        if b.seq != 0 {
            return Err(LogError::GenesisMisplaced { seq: b.seq });
        }
        if b.prev != [0; 32] {
            return Err(LogError::HashLink { seq: 0 });
        }
        if !owner.verify() {
            return Err(LogError::BadCard {
                seq: 0,
                account: owner.card.account.clone(),
            });
        }
        if owner.card.account != b.signer {
            return Err(LogError::Rule {
                seq: 0,
                reason: "genesis must be signed by the owner it names".into(),
            });
        }
        if !sign::verify(&owner.card.identity, DOMAIN_ENTRY, b, &entry.signature) {
            return Err(LogError::BadSignature {
                seq: 0,
                signer: b.signer.clone(),
            });
        }
        if key.generation != 1 {
            return Err(LogError::Rule {
                seq: 0,
                reason: format!("the first key generation is 1, not {}", key.generation),
            });
        }
        if b.org.is_empty() || b.org.len() > 64 {
            return Err(LogError::Rule {
                seq: 0,
                reason: "the org id must be 1..=64 bytes".into(),
            });
        }
        let mut members = BTreeMap::new();
        members.insert(
            b.signer.clone(),
            Member {
                card: owner.clone(),
                role: Role::Owner,
                since_seq: 0,
            },
        );
        Ok(MembershipState {
            org: b.org.clone(),
            owner: b.signer.clone(),
            members,
            removed: BTreeMap::new(),
            invites: BTreeMap::new(),
            keys: vec![*key],
            head_seq: 0,
            head_hash: entry.hash(),
            head_time_ms: b.time_ms,
        })
    }

    /// Verifies a whole log from its first entry and returns its state.
    pub fn verify_chain<'e>(
        entries: impl IntoIterator<Item = &'e SignedEntry>,
    ) -> Result<MembershipState, LogError> {
        let mut it = entries.into_iter();
        let first = it.next().ok_or(LogError::Empty)?;
        let mut state = MembershipState::genesis(first)?;
        for e in it {
            state.apply(e)?;
        }
        Ok(state)
    }

    /// [`MembershipState::verify_chain`], and the owner's card has the
    /// fingerprint an invite code pinned.
    pub fn verify_chain_pinned<'e>(
        entries: impl IntoIterator<Item = &'e SignedEntry>,
        owner: Fingerprint,
    ) -> Result<MembershipState, LogError> {
        let mut it = entries.into_iter().peekable();
        if let Some(first) = it.peek()
            && let Op::Genesis { owner: card, .. } = &first.body.op
        {
            let got = card.card.fingerprint();
            if got != owner {
                return Err(LogError::OwnerNotPinned { want: owner, got });
            }
        }
        MembershipState::verify_chain(it)
    }

    /// The current role of `account`, if an active member.
    pub fn role(&self, account: &str) -> Option<Role> {
        self.members.get(account).map(|m| m.role)
    }

    /// The current key generation.
    pub fn current_key(&self) -> KeyGen {
        *self.keys.last().expect("a state always has generation 1")
    }

    /// The key generation `generation`, if the log has it.
    pub fn key(&self, generation: u32) -> Option<KeyGen> {
        self.keys
            .iter()
            .find(|k| k.generation == generation)
            .copied()
    }

    /// Checks `entry` against this state and applies it; on any refusal the
    /// state is unchanged.
    pub fn apply(&mut self, entry: &SignedEntry) -> Result<(), LogError> {
        let next = self.applied(entry)?;
        *self = next;
        Ok(())
    }

    /// The state after `entry`, or why `entry` is refused.
    pub fn applied(&self, entry: &SignedEntry) -> Result<MembershipState, LogError> {
        let b = &entry.body;
        let seq = b.seq;
        if b.org != self.org {
            return Err(LogError::WrongOrg {
                want: self.org.clone(),
                got: b.org.clone(),
            });
        }
        if seq != self.head_seq + 1 {
            return Err(LogError::Sequence {
                want: self.head_seq + 1,
                got: seq,
            });
        }
        if b.prev != self.head_hash {
            return Err(LogError::HashLink { seq });
        }
        if matches!(b.op, Op::Genesis { .. }) {
            return Err(LogError::GenesisMisplaced { seq });
        }
        if b.time_ms < self.head_time_ms {
            return Err(LogError::TimeBackwards {
                seq,
                time_ms: b.time_ms,
                prev_ms: self.head_time_ms,
            });
        }
        let signer = self
            .members
            .get(&b.signer)
            .filter(|m| m.role.administers())
            .ok_or_else(|| LogError::NotAdmin {
                seq,
                signer: b.signer.clone(),
            })?;
        if !sign::verify(
            &signer.card.card.identity,
            DOMAIN_ENTRY,
            b,
            &entry.signature,
        ) {
            return Err(LogError::BadSignature {
                seq,
                signer: b.signer.clone(),
            });
        }
        let by = signer.role;
        let rule = |reason: String| LogError::Rule { seq, reason };
        let mut next = self.clone();
        match &b.op {
            Op::Genesis { .. } => unreachable!("refused above"),
            Op::Invite {
                invite_id,
                role,
                secret_hash,
                expires_ms,
            } => {
                if !by.manages(*role) {
                    return Err(rule(format!("a {by} may not invite a {role}")));
                }
                if next.invites.contains_key(invite_id) {
                    return Err(rule("the invite id is already used".into()));
                }
                if *expires_ms <= b.time_ms {
                    return Err(rule("the invite expires before it is issued".into()));
                }
                next.invites.insert(
                    *invite_id,
                    InviteState {
                        role: *role,
                        secret_hash: *secret_hash,
                        expires_ms: *expires_ms,
                        inviter: b.signer.clone(),
                        open: true,
                    },
                );
            }
            Op::Confirm {
                invite_id,
                member,
                role,
            } => {
                let inv = next
                    .invites
                    .get_mut(invite_id)
                    .ok_or_else(|| rule("no such invite".into()))?;
                if !inv.open {
                    return Err(rule("the invite was already used or revoked".into()));
                }
                if b.time_ms > inv.expires_ms {
                    return Err(rule("the invite expired".into()));
                }
                if inv.role != *role {
                    return Err(rule(format!(
                        "the invite is for a {}, not a {role}",
                        inv.role
                    )));
                }
                if !by.manages(*role) {
                    return Err(rule(format!("a {by} may not confirm a {role}")));
                }
                inv.open = false;
                if !member.verify() {
                    return Err(LogError::BadCard {
                        seq,
                        account: member.card.account.clone(),
                    });
                }
                let account = member.card.account.clone();
                if next.members.contains_key(&account) {
                    return Err(rule(format!("{account} is already a member")));
                }
                next.removed.remove(&account);
                next.members.insert(
                    account,
                    Member {
                        card: member.clone(),
                        role: *role,
                        since_seq: seq,
                    },
                );
            }
            Op::RevokeInvite { invite_id } => {
                let inv = next
                    .invites
                    .get_mut(invite_id)
                    .ok_or_else(|| rule("no such invite".into()))?;
                if !inv.open {
                    return Err(rule("the invite is not open".into()));
                }
                if !by.manages(inv.role) {
                    return Err(rule(format!("a {by} may not revoke a {} invite", inv.role)));
                }
                inv.open = false;
            }
            Op::ChangeRole { account, role } => {
                let m = next
                    .members
                    .get_mut(account)
                    .ok_or_else(|| rule(format!("{account} is not an active member")))?;
                if !by.manages(m.role) || !by.manages(*role) {
                    return Err(rule(format!(
                        "a {by} may not change a {} to a {role}",
                        m.role
                    )));
                }
                m.role = *role;
            }
            Op::Remove { account, next_key } => {
                let m = next
                    .members
                    .get(account)
                    .ok_or_else(|| rule(format!("{account} is not an active member")))?;
                if !by.manages(m.role) {
                    return Err(rule(format!("a {by} may not remove a {}", m.role)));
                }
                next.members.remove(account);
                next.removed.insert(account.clone(), seq);
                next.push_key(*next_key).map_err(rule)?;
            }
            Op::Rotate { key } => {
                next.push_key(*key).map_err(rule)?;
            }
        }
        next.head_seq = seq;
        next.head_hash = entry.hash();
        next.head_time_ms = b.time_ms;
        Ok(next)
    }

    fn push_key(&mut self, key: KeyGen) -> Result<(), String> {
        let want = self.current_key().generation + 1;
        if key.generation != want {
            return Err(format!(
                "the next key generation is {want}, not {}",
                key.generation
            ));
        }
        self.keys.push(key);
        Ok(())
    }

    /// The identity key of an active member.
    pub fn identity_of(&self, account: &str) -> Option<PublicKey> {
        self.members.get(account).map(|m| m.card.card.identity)
    }
}
