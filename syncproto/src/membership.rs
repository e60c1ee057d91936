//! The membership log of an organization: entries, roles, and [`Roster`], the
//! pure state machine that applies entries in order and refuses any entry the
//! log does not allow (wrong sequence, broken hash link, signer not an
//! admin/owner, a rule of the roles below, a bad signature).
//!
//! Owns: the entry format, the hash-link rule, and who may do what. The server
//! and every client apply the same rules through [`Roster::apply`].
//! Must never: verify a signature itself (no crypto here: the caller passes an
//! Ed25519 verifier), do I/O, or accept an entry out of order.
//!
//! Rules (checked in [`Roster::apply`]):
//! * seq 1 is `Create`, signed by the owner it names with the identity key it names.
//! * every later entry has `seq = previous + 1`, `prev_hash = hash(previous)`,
//!   and is signed by a current owner or admin with the identity key the log holds for them.
//! * only the owner grants or takes away `admin`, invites an admin or removes one;
//!   nobody changes the owner's role or removes the owner.
//! * `Confirm` consumes an open, unexpired invite (by `at_ms`) for an account that is not a member.
//! * `Rotate` moves the key generation forward by exactly one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bytes::{Bytes, Hash32};
use crate::ids::{AccountId, KeyId, OrgId, key_id};
use crate::signing;

/// Roles in an organization, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Reads and writes records.
    Member,
    /// Also invites, confirms, changes roles of members and viewers, removes them.
    Admin,
    /// Exactly one; also manages admins and rotates keys.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn can_write_records(self) -> bool {
        self >= Role::Member
    }
    pub fn can_manage(self) -> bool {
        self >= Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(format!("unknown role {s:?} (owner, admin, member, viewer)")),
        }
    }
}

/// What an entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogAction {
    /// The first entry: the org exists, `owner` owns it, key generation 1.
    Create {
        owner: AccountId,
        identity_key: Bytes,
        agreement_key: Bytes,
    },
    /// An invite: whoever shows the secret whose [`signing::invite_secret_hash`]
    /// is `secret_hash` may ask to join with `role` until `expires_ms`.
    Invite {
        invite_id: String,
        role: Role,
        secret_hash: Hash32,
        expires_ms: u64,
    },
    /// An admin confirmed a pending joiner (after comparing fingerprints):
    /// the account becomes a member with these keys.
    Confirm {
        invite_id: String,
        account: AccountId,
        role: Role,
        identity_key: Bytes,
        agreement_key: Bytes,
    },
    RevokeInvite {
        invite_id: String,
    },
    SetRole {
        account: AccountId,
        role: Role,
    },
    Remove {
        account: AccountId,
    },
    /// A new org key generation (granted to the remaining members in the same step).
    Rotate {
        generation: u32,
    },
    /// Anything else a client version wants in the log (signed and chained
    /// like the rest, no effect on roles). `name` says what `body` is.
    Extension {
        name: String,
        body: Bytes,
    },
}

/// One membership-log entry as it travels and as the server stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub org: OrgId,
    /// 1 for the first entry.
    pub seq: u64,
    /// [`LogEntry::hash`] of entry `seq - 1`; all zeros for seq 1.
    pub prev_hash: Hash32,
    /// The signer's clock at signing (ms since the epoch).
    pub at_ms: u64,
    pub signer: AccountId,
    /// Key id of the signer's Ed25519 identity key.
    pub signer_key_id: KeyId,
    pub action: LogAction,
    /// Ed25519 over [`signing::log_entry_bytes`].
    pub signature: Bytes,
}

impl LogEntry {
    /// SHA-256(`gatehouse-sync/v1/log-hash\0` ‖ signed bytes ‖ signature).
    pub fn hash(&self) -> Hash32 {
        let mut h = Sha256::new();
        h.update(signing::LOG_HASH_DOMAIN);
        h.update(signing::log_entry_bytes(self));
        h.update(&self.signature.0);
        Hash32(h.finalize().into())
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("entry is for org {got}, this log is {want}")]
    WrongOrg { want: OrgId, got: OrgId },
    #[error("entry seq {got}, expected {want}")]
    Sequence { want: u64, got: u64 },
    #[error("entry {seq}: prev_hash does not match the previous entry")]
    HashLink { seq: u64 },
    #[error("entry {seq}: the first entry must be Create (and only the first)")]
    CreateMisplaced { seq: u64 },
    #[error("entry {seq}: {signer} is not an owner or admin of the org")]
    NotAdmin { seq: u64, signer: AccountId },
    #[error("entry {seq}: signer key {key} is not {signer}'s identity key in this log")]
    WrongKey {
        seq: u64,
        signer: AccountId,
        key: KeyId,
    },
    #[error("entry {seq}: bad signature")]
    BadSignature { seq: u64 },
    #[error("entry {seq}: {reason}")]
    Rule { seq: u64, reason: String },
}

/// A member as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    pub identity_key: Bytes,
    pub agreement_key: Bytes,
    /// Log seq of the entry that made them a member.
    pub since_seq: u64,
}

/// An invite as the log has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteState {
    pub role: Role,
    pub secret_hash: Hash32,
    pub expires_ms: u64,
    pub open: bool,
}

/// The state a log describes after its entries are applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub org: OrgId,
    pub members: BTreeMap<AccountId, Member>,
    /// Accounts removed, with the seq of their removal.
    pub removed: BTreeMap<AccountId, u64>,
    pub invites: BTreeMap<String, InviteState>,
    pub owner: Option<AccountId>,
    /// Current org key generation (1 after Create).
    pub generation: u32,
    /// seq and hash of the last applied entry (0 and zeros before Create).
    pub head_seq: u64,
    pub head_hash: Hash32,
}

/// An Ed25519 verifier: (public key, message, signature) → valid.
pub type Verify<'a> = &'a dyn Fn(&[u8], &[u8], &[u8]) -> bool;

impl Roster {
    pub fn new(org: OrgId) -> Roster {
        Roster {
            org,
            members: BTreeMap::new(),
            removed: BTreeMap::new(),
            invites: BTreeMap::new(),
            owner: None,
            generation: 0,
            head_seq: 0,
            head_hash: Hash32::ZERO,
        }
    }

    /// The role of `account` now, if a member.
    pub fn role(&self, account: &AccountId) -> Option<Role> {
        self.members.get(account).map(|m| m.role)
    }

    /// Applies every entry in order, from a fresh roster.
    pub fn from_entries<'e>(
        org: OrgId,
        entries: impl IntoIterator<Item = &'e LogEntry>,
        verify: Verify<'_>,
    ) -> Result<Roster, RosterError> {
        let mut r = Roster::new(org);
        for e in entries {
            r.apply(e, verify)?;
        }
        Ok(r)
    }

    /// Checks `e` against the state and applies it, or leaves the state unchanged.
    pub fn apply(&mut self, e: &LogEntry, verify: Verify<'_>) -> Result<(), RosterError> {
        let seq = e.seq;
        if e.org != self.org {
            return Err(RosterError::WrongOrg {
                want: self.org.clone(),
                got: e.org.clone(),
            });
        }
        if seq != self.head_seq + 1 {
            return Err(RosterError::Sequence {
                want: self.head_seq + 1,
                got: seq,
            });
        }
        if e.prev_hash != self.head_hash {
            return Err(RosterError::HashLink { seq });
        }
        let rule = |reason: String| RosterError::Rule { seq, reason };
        let is_create = matches!(e.action, LogAction::Create { .. });
        if (seq == 1) != is_create {
            return Err(RosterError::CreateMisplaced { seq });
        }
        // Who signs, with which key.
        let signer_key: Bytes = if let LogAction::Create {
            owner,
            identity_key,
            ..
        } = &e.action
        {
            if owner != &e.signer {
                return Err(rule("Create must be signed by the owner it names".into()));
            }
            identity_key.clone()
        } else {
            let m = self.members.get(&e.signer).ok_or(RosterError::NotAdmin {
                seq,
                signer: e.signer.clone(),
            })?;
            if !m.role.can_manage() {
                return Err(RosterError::NotAdmin {
                    seq,
                    signer: e.signer.clone(),
                });
            }
            m.identity_key.clone()
        };
        if key_id(&signer_key.0) != e.signer_key_id {
            return Err(RosterError::WrongKey {
                seq,
                signer: e.signer.clone(),
                key: e.signer_key_id.clone(),
            });
        }
        if !verify(&signer_key.0, &signing::log_entry_bytes(e), &e.signature.0) {
            return Err(RosterError::BadSignature { seq });
        }
        let signer_is_owner = self.owner.as_ref() == Some(&e.signer);
        let mut next = self.clone();
        match &e.action {
            LogAction::Create {
                owner,
                identity_key,
                agreement_key,
            } => {
                check_key_len(identity_key, "identity_key").map_err(rule)?;
                check_key_len(agreement_key, "agreement_key").map_err(rule)?;
                next.members.insert(
                    owner.clone(),
                    Member {
                        role: Role::Owner,
                        identity_key: identity_key.clone(),
                        agreement_key: agreement_key.clone(),
                        since_seq: seq,
                    },
                );
                next.owner = Some(owner.clone());
                next.generation = 1;
            }
            LogAction::Invite {
                invite_id,
                role,
                secret_hash,
                expires_ms,
            } => {
                if *role == Role::Owner {
                    return Err(rule("nobody is invited as owner".into()));
                }
                if *role == Role::Admin && !signer_is_owner {
                    return Err(rule("only the owner invites an admin".into()));
                }
                if invite_id.is_empty() || invite_id.len() > 64 {
                    return Err(rule("invite_id must be 1..=64 bytes".into()));
                }
                if next.invites.contains_key(invite_id) {
                    return Err(rule(format!("invite {invite_id:?} already exists")));
                }
                next.invites.insert(
                    invite_id.clone(),
                    InviteState {
                        role: *role,
                        secret_hash: *secret_hash,
                        expires_ms: *expires_ms,
                        open: true,
                    },
                );
            }
            LogAction::Confirm {
                invite_id,
                account,
                role,
                identity_key,
                agreement_key,
            } => {
                let inv = next
                    .invites
                    .get_mut(invite_id)
                    .ok_or_else(|| rule(format!("no invite {invite_id:?}")))?;
                if !inv.open {
                    return Err(rule(format!("invite {invite_id:?} is used or revoked")));
                }
                if e.at_ms > inv.expires_ms {
                    return Err(rule(format!("invite {invite_id:?} expired")));
                }
                if *role == Role::Owner || *role > inv.role {
                    return Err(rule(format!(
                        "role {role} is above the invite's role {}",
                        inv.role
                    )));
                }
                inv.open = false;
                if next.members.contains_key(account) {
                    return Err(rule(format!("{account} is already a member")));
                }
                check_key_len(identity_key, "identity_key").map_err(rule)?;
                check_key_len(agreement_key, "agreement_key").map_err(rule)?;
                next.removed.remove(account);
                next.members.insert(
                    account.clone(),
                    Member {
                        role: *role,
                        identity_key: identity_key.clone(),
                        agreement_key: agreement_key.clone(),
                        since_seq: seq,
                    },
                );
            }
            LogAction::RevokeInvite { invite_id } => {
                let inv = next
                    .invites
                    .get_mut(invite_id)
                    .ok_or_else(|| rule(format!("no invite {invite_id:?}")))?;
                inv.open = false;
            }
            LogAction::SetRole { account, role } => {
                let cur = next
                    .members
                    .get(account)
                    .map(|m| m.role)
                    .ok_or_else(|| rule(format!("{account} is not a member")))?;
                if cur == Role::Owner || *role == Role::Owner {
                    return Err(rule("the owner's role does not change".into()));
                }
                if (cur == Role::Admin || *role == Role::Admin) && !signer_is_owner {
                    return Err(rule("only the owner grants or takes away admin".into()));
                }
                if let Some(m) = next.members.get_mut(account) {
                    m.role = *role;
                }
            }
            LogAction::Remove { account } => {
                let cur = next
                    .members
                    .get(account)
                    .map(|m| m.role)
                    .ok_or_else(|| rule(format!("{account} is not a member")))?;
                if cur == Role::Owner {
                    return Err(rule("the owner cannot be removed".into()));
                }
                if cur == Role::Admin && !signer_is_owner {
                    return Err(rule("only the owner removes an admin".into()));
                }
                next.members.remove(account);
                next.removed.insert(account.clone(), seq);
            }
            LogAction::Rotate { generation } => {
                if *generation != next.generation + 1 {
                    return Err(rule(format!(
                        "rotation to generation {generation}, expected {}",
                        next.generation + 1
                    )));
                }
                next.generation = *generation;
            }
            LogAction::Extension { name, .. } => {
                if name.is_empty() || name.len() > 64 {
                    return Err(rule("extension name must be 1..=64 bytes".into()));
                }
            }
        }
        next.head_seq = seq;
        next.head_hash = e.hash();
        *self = next;
        Ok(())
    }
}

fn check_key_len(k: &Bytes, what: &str) -> Result<(), String> {
    if k.len() == 32 {
        Ok(())
    } else {
        Err(format!("{what} must be 32 bytes, got {}", k.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A stand-in signature for the pure rules: "signature" = SHA-256(key ‖ msg).
    // (Real Ed25519 is exercised by the server's and the broker's tests.)
    fn fake_sign(key: &[u8], msg: &[u8]) -> Bytes {
        let mut h = Sha256::new();
        h.update(key);
        h.update(msg);
        Bytes(h.finalize().to_vec())
    }
    fn fake_verify(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        fake_sign(key, msg).0 == sig
    }

    fn acct(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }
    fn ik(s: &str) -> Bytes {
        Bytes(Sha256::digest(format!("id-{s}")).to_vec())
    }
    fn ak(s: &str) -> Bytes {
        Bytes(Sha256::digest(format!("ag-{s}")).to_vec())
    }

    struct Log {
        org: OrgId,
        entries: Vec<LogEntry>,
    }

    impl Log {
        fn push(&mut self, signer: &str, action: LogAction) -> LogEntry {
            let prev = self.entries.last();
            let mut e = LogEntry {
                org: self.org.clone(),
                seq: prev.map_or(1, |p| p.seq + 1),
                prev_hash: prev.map_or(Hash32::ZERO, |p| p.hash()),
                at_ms: 1000,
                signer: acct(signer),
                signer_key_id: key_id(&ik(signer).0),
                action,
                signature: Bytes::default(),
            };
            e.signature = fake_sign(&ik(signer).0, &signing::log_entry_bytes(&e));
            self.entries.push(e.clone());
            e
        }
        fn roster(&self) -> Result<Roster, RosterError> {
            Roster::from_entries(self.org.clone(), &self.entries, &fake_verify)
        }
    }

    fn started() -> Log {
        let mut l = Log {
            org: OrgId::new("acme").unwrap(),
            entries: vec![],
        };
        l.push(
            "alice",
            LogAction::Create {
                owner: acct("alice"),
                identity_key: ik("alice"),
                agreement_key: ak("alice"),
            },
        );
        l
    }

    fn add(l: &mut Log, who: &str, role: Role) {
        let id = format!("inv-{who}");
        l.push(
            "alice",
            LogAction::Invite {
                invite_id: id.clone(),
                role,
                secret_hash: Hash32([1; 32]),
                expires_ms: 10_000,
            },
        );
        l.push(
            "alice",
            LogAction::Confirm {
                invite_id: id,
                account: acct(who),
                role,
                identity_key: ik(who),
                agreement_key: ak(who),
            },
        );
    }

    #[test]
    fn a_valid_log_gives_roles() {
        let mut l = started();
        add(&mut l, "bob", Role::Member);
        add(&mut l, "carol", Role::Viewer);
        l.push(
            "alice",
            LogAction::Remove {
                account: acct("bob"),
            },
        );
        l.push("alice", LogAction::Rotate { generation: 2 });
        let r = l.roster().unwrap();
        assert_eq!(r.role(&acct("alice")), Some(Role::Owner));
        assert_eq!(r.role(&acct("carol")), Some(Role::Viewer));
        assert_eq!(r.role(&acct("bob")), None);
        assert_eq!(r.removed.get(&acct("bob")), Some(&6));
        assert_eq!(r.generation, 2);
        assert_eq!(r.head_seq, 7);
    }

    #[test]
    fn dropped_reordered_forged_entries_fail() {
        let mut l = started();
        add(&mut l, "bob", Role::Member);
        // dropped
        let mut d = l.entries.clone();
        d.remove(1);
        assert!(matches!(
            Roster::from_entries(l.org.clone(), &d, &fake_verify),
            Err(RosterError::Sequence { .. })
        ));
        // reordered
        let mut o = l.entries.clone();
        o.swap(1, 2);
        assert!(Roster::from_entries(l.org.clone(), &o, &fake_verify).is_err());
        // forged: content changed after signing
        let mut f = l.entries.clone();
        if let LogAction::Confirm { role, .. } = &mut f[2].action {
            *role = Role::Viewer;
        }
        assert_eq!(
            Roster::from_entries(l.org.clone(), &f, &fake_verify),
            Err(RosterError::BadSignature { seq: 3 })
        );
        // a changed earlier entry breaks the next link even if re-signed
        let mut g = l.entries.clone();
        g[1].at_ms += 1;
        g[1].signature = fake_sign(&ik("alice").0, &signing::log_entry_bytes(&g[1]));
        assert_eq!(
            Roster::from_entries(l.org.clone(), &g, &fake_verify),
            Err(RosterError::HashLink { seq: 3 })
        );
    }

    #[test]
    fn non_admins_and_rules_are_refused() {
        let mut l = started();
        add(&mut l, "bob", Role::Member);
        let r = l.roster().unwrap();
        // a member signs an entry
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push(
            "bob",
            LogAction::Remove {
                account: acct("alice"),
            },
        );
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::NotAdmin { .. })
        ));
        // the owner cannot be removed, even by the owner
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push(
            "alice",
            LogAction::Remove {
                account: acct("alice"),
            },
        );
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::Rule { .. })
        ));
        // an invite is used once
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push(
            "alice",
            LogAction::Confirm {
                invite_id: "inv-bob".into(),
                account: acct("eve"),
                role: Role::Member,
                identity_key: ik("eve"),
                agreement_key: ak("eve"),
            },
        );
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::Rule { .. })
        ));
        // rotation skips a generation
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push("alice", LogAction::Rotate { generation: 5 });
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::Rule { .. })
        ));
        // state unchanged after refusals
        assert_eq!(r, l.roster().unwrap());
    }

    #[test]
    fn an_admin_cannot_touch_admins_or_rotate() {
        let mut l = started();
        add(&mut l, "dave", Role::Admin);
        add(&mut l, "erin", Role::Admin);
        let r = l.roster().unwrap();
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push(
            "dave",
            LogAction::Remove {
                account: acct("erin"),
            },
        );
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::Rule { .. })
        ));
        let mut bad = Log {
            org: l.org.clone(),
            entries: l.entries.clone(),
        };
        let e = bad.push(
            "dave",
            LogAction::SetRole {
                account: acct("erin"),
                role: Role::Member,
            },
        );
        assert!(matches!(
            r.clone().apply(&e, &fake_verify),
            Err(RosterError::Rule { .. })
        ));
        // an admin removes a member and rotates in the same step
        add(&mut l, "bob", Role::Member);
        l.push(
            "dave",
            LogAction::Remove {
                account: acct("bob"),
            },
        );
        l.push("dave", LogAction::Rotate { generation: 2 });
        assert_eq!(l.roster().unwrap().generation, 2);
    }
}
