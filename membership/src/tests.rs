//! The log's rules, chain verification against dropped / reordered / forged
//! entries, write checks and grants.

use crate::card::{AccountCard, Role, SignedCard};
use crate::envelope::{Scope, SignedWrite, WriteBody, WriteError, check_write, content_hash};
use crate::grant::{GrantError, SignedGrant};
use crate::invite::{InviteCode, secret_hash};
use crate::log::{EntryBody, KeyGen, LogError, MembershipState, Op, SignedEntry};
use crate::sign;

struct Acct {
    name: String,
    seed: [u8; 32],
    agree: [u8; 32],
    card: SignedCard,
}

fn acct(name: &str) -> Acct {
    let mut seed = [0u8; 32];
    let mut agree = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    getrandom::fill(&mut agree).unwrap();
    let card = SignedCard::sign(
        &seed,
        AccountCard {
            account: name.into(),
            identity: sign::identity_public(&seed),
            agreement: sign::agreement_public(&agree),
        },
    );
    Acct {
        name: name.into(),
        seed,
        agree,
        card,
    }
}

const ORG: &str = "acme";
const T0: u64 = 1_700_000_000_000;

/// Builds a log by signing entries in order.
struct Chain {
    entries: Vec<SignedEntry>,
    keys: Vec<[u8; 32]>,
}

impl Chain {
    fn new(owner: &Acct) -> Chain {
        let key = [7u8; 32];
        let g = SignedEntry::sign(
            &owner.seed,
            EntryBody {
                org: ORG.into(),
                seq: 0,
                prev: [0; 32],
                time_ms: T0,
                signer: owner.name.clone(),
                op: Op::Genesis {
                    owner: owner.card.clone(),
                    key: KeyGen::for_key(ORG, 1, &key),
                },
            },
        );
        Chain {
            entries: vec![g],
            keys: vec![key],
        }
    }

    fn body(&self, by: &Acct, op: Op) -> EntryBody {
        let last = self.entries.last().unwrap();
        EntryBody {
            org: ORG.into(),
            seq: last.body.seq + 1,
            prev: last.hash(),
            time_ms: last.body.time_ms + 1000,
            signer: by.name.clone(),
            op,
        }
    }

    fn push(&mut self, by: &Acct, op: Op) -> SignedEntry {
        let e = SignedEntry::sign(&by.seed, self.body(by, op));
        self.entries.push(e.clone());
        e
    }

    fn invite_and_confirm(&mut self, by: &Acct, who: &Acct, role: Role) {
        let id: [u8; 16] = rand16();
        self.push(
            by,
            Op::Invite {
                invite_id: id,
                role,
                secret_hash: secret_hash(&id, &[1; 32]),
                expires_ms: T0 + 86_400_000,
            },
        );
        self.push(
            by,
            Op::Confirm {
                invite_id: id,
                member: who.card.clone(),
                role,
            },
        );
    }

    fn next_key(&mut self) -> KeyGen {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).unwrap();
        self.keys.push(k);
        KeyGen::for_key(ORG, self.keys.len() as u32, &k)
    }

    fn verify(&self) -> Result<MembershipState, LogError> {
        MembershipState::verify_chain(&self.entries)
    }

    /// Whether appending `op` signed by `by` is accepted (without keeping it).
    fn try_op(&self, by: &Acct, op: Op) -> Result<(), LogError> {
        let state = self.verify().unwrap();
        state
            .applied(&SignedEntry::sign(&by.seed, self.body(by, op)))
            .map(|_| ())
    }
}

fn rand16() -> [u8; 16] {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).unwrap();
    id
}

/// alice owner, dave admin, bob member, carol viewer.
fn team() -> (Chain, Acct, Acct, Acct, Acct) {
    let (alice, bob, carol, dave) = (acct("alice"), acct("bob"), acct("carol"), acct("dave"));
    let mut c = Chain::new(&alice);
    c.invite_and_confirm(&alice, &dave, Role::Admin);
    c.invite_and_confirm(&dave, &bob, Role::Member);
    c.invite_and_confirm(&dave, &carol, Role::Viewer);
    (c, alice, bob, carol, dave)
}

#[test]
fn a_valid_log_gives_the_roles_it_says() {
    let (c, ..) = team();
    let s = c.verify().unwrap();
    assert_eq!(s.head_seq, 6);
    assert_eq!(s.owner, "alice");
    assert_eq!(s.role("alice"), Some(Role::Owner));
    assert_eq!(s.role("dave"), Some(Role::Admin));
    assert_eq!(s.role("bob"), Some(Role::Member));
    assert_eq!(s.role("carol"), Some(Role::Viewer));
    assert_eq!(s.current_key().generation, 1);
    assert_eq!(s.head_hash, c.entries.last().unwrap().hash());
}

#[test]
fn a_dropped_entry_is_refused() {
    let (mut c, ..) = team();
    c.entries.remove(3);
    assert!(matches!(
        c.verify(),
        Err(LogError::Sequence { want: 3, got: 4 })
    ));
    // Dropping the tail is only detectable against a known head: the state
    // says which head it verified.
    let (mut c, ..) = team();
    c.entries.pop();
    assert_eq!(c.verify().unwrap().head_seq, 5);
}

#[test]
fn reordered_entries_are_refused() {
    let (mut c, ..) = team();
    c.entries.swap(3, 4);
    assert!(matches!(c.verify(), Err(LogError::Sequence { .. })));
    // Renumbering does not help: the signature covers seq, and the link breaks.
    let (mut c, ..) = team();
    c.entries[4].body.seq = 3;
    c.entries.swap(3, 4);
    c.entries.truncate(4);
    assert!(matches!(
        c.verify(),
        Err(LogError::HashLink { .. } | LogError::BadSignature { .. })
    ));
}

#[test]
fn forged_and_tampered_entries_are_refused() {
    let (c, _alice, bob, _carol, dave) = team();
    // Tampered after signing: bob's role raised to admin in his Confirm entry.
    let mut t = c.entries.clone();
    if let Op::Confirm { role, .. } = &mut t[4].body.op {
        *role = Role::Admin;
    }
    assert!(matches!(
        MembershipState::verify_chain(&t),
        Err(LogError::BadSignature { seq: 4, .. })
    ));
    // Forged: an entry naming alice as signer but signed by bob's key.
    let forged = SignedEntry::sign(
        &bob.seed,
        c.body(
            &acct("alice"),
            Op::ChangeRole {
                account: "bob".into(),
                role: Role::Admin,
            },
        ),
    );
    let s = c.verify().unwrap();
    assert!(matches!(
        s.applied(&forged),
        Err(LogError::BadSignature { .. })
    ));
    // A member (not admin) signing with his own key.
    assert!(matches!(
        c.try_op(
            &bob,
            Op::ChangeRole {
                account: "carol".into(),
                role: Role::Member
            }
        ),
        Err(LogError::NotAdmin { .. })
    ));
    // An outsider.
    let mallory = acct("mallory");
    assert!(matches!(
        c.try_op(
            &mallory,
            Op::Rotate {
                key: KeyGen::for_key(ORG, 2, &[0; 32])
            }
        ),
        Err(LogError::NotAdmin { .. })
    ));
    // A genesis in the middle, an entry from another org.
    let mut other = c.body(&dave, Op::RevokeInvite { invite_id: [0; 16] });
    other.org = "other".into();
    assert!(matches!(
        s.applied(&SignedEntry::sign(&dave.seed, other)),
        Err(LogError::WrongOrg { .. })
    ));
    let g = Chain::new(&dave).entries.remove(0);
    let mut g2 = g.body.clone();
    g2.seq = 7;
    g2.prev = s.head_hash;
    assert!(matches!(
        s.applied(&SignedEntry::sign(&dave.seed, g2)),
        Err(LogError::GenesisMisplaced { .. })
    ));
    // A forged genesis (owner card signed by someone else) fails.
    let mut bad = Chain::new(&dave);
    bad.entries[0].body.signer = "alice".into();
    assert!(bad.verify().is_err());
}

#[test]
fn time_must_not_go_backwards() {
    let (c, alice, ..) = team();
    let s = c.verify().unwrap();
    let mut b = c.body(&alice, Op::RevokeInvite { invite_id: [0; 16] });
    b.time_ms = T0 - 1;
    assert!(matches!(
        s.applied(&SignedEntry::sign(&alice.seed, b)),
        Err(LogError::TimeBackwards { .. })
    ));
}

#[test]
fn role_rules() {
    let (mut c, alice, bob, _carol, dave) = team();
    let inv = |role| Op::Invite {
        invite_id: rand16(),
        role,
        secret_hash: [0; 32],
        expires_ms: T0 + 86_400_000,
    };
    // admin: members and viewers only.
    assert!(c.try_op(&dave, inv(Role::Member)).is_ok());
    assert!(matches!(
        c.try_op(&dave, inv(Role::Admin)),
        Err(LogError::Rule { .. })
    ));
    assert!(c.try_op(&alice, inv(Role::Admin)).is_ok());
    // Nobody invites an owner, changes the owner or removes the owner.
    assert!(c.try_op(&alice, inv(Role::Owner)).is_err());
    let to_owner = Op::ChangeRole {
        account: "bob".into(),
        role: Role::Owner,
    };
    assert!(c.try_op(&alice, to_owner).is_err());
    let k2 = KeyGen::for_key(ORG, 2, &[2; 32]);
    let rm = |who: &str| Op::Remove {
        account: who.into(),
        next_key: k2,
    };
    assert!(c.try_op(&dave, rm("alice")).is_err());
    assert!(c.try_op(&alice, rm("alice")).is_err());
    // An admin does not remove an admin; the owner does.
    assert!(c.try_op(&dave, rm("dave")).is_err());
    assert!(c.try_op(&alice, rm("dave")).is_ok());
    // Removal must move the key exactly one generation.
    let skip = Op::Remove {
        account: "bob".into(),
        next_key: KeyGen::for_key(ORG, 3, &[2; 32]),
    };
    assert!(c.try_op(&dave, skip).is_err());
    // Remove bob: he is gone, the key moved.
    let k = c.next_key();
    c.push(
        &dave,
        Op::Remove {
            account: "bob".into(),
            next_key: k,
        },
    );
    let s = c.verify().unwrap();
    assert_eq!(s.role("bob"), None);
    assert_eq!(s.removed.get("bob"), Some(&7));
    assert_eq!(s.current_key().generation, 2);
    // A removed admin signs nothing any more.
    let k = c.next_key();
    c.push(
        &alice,
        Op::Remove {
            account: "dave".into(),
            next_key: k,
        },
    );
    assert!(matches!(
        c.try_op(&dave, inv(Role::Viewer)),
        Err(LogError::NotAdmin { .. })
    ));
    let _ = bob;
}

#[test]
fn invites_are_single_use_expire_and_keep_their_role() {
    let (mut c, alice, ..) = team();
    let erin = acct("erin");
    let id = rand16();
    c.push(
        &alice,
        Op::Invite {
            invite_id: id,
            role: Role::Viewer,
            secret_hash: [0; 32],
            expires_ms: T0 + 7_500,
        },
    );
    let confirm = |role| Op::Confirm {
        invite_id: id,
        member: erin.card.clone(),
        role,
    };
    // A viewer invite does not confirm a member.
    assert!(c.try_op(&alice, confirm(Role::Member)).is_err());
    // Expired (issued at T0 + 7 s, valid to T0 + 7.5 s, confirmed at T0 + 8 s).
    assert!(matches!(
        c.try_op(&alice, confirm(Role::Viewer)),
        Err(LogError::Rule { ref reason, .. }) if reason.contains("expired")
    ));
    let id2 = rand16();
    c.push(
        &alice,
        Op::Invite {
            invite_id: id2,
            role: Role::Viewer,
            secret_hash: [0; 32],
            expires_ms: T0 + 86_400_000,
        },
    );
    let ok = Op::Confirm {
        invite_id: id2,
        member: erin.card.clone(),
        role: Role::Viewer,
    };
    c.push(&alice, ok.clone());
    // Used.
    assert!(c.try_op(&alice, ok).is_err());
    // A card whose self-signature fails is refused.
    let mut fake = acct("frank").card;
    fake.card.agreement = [9; 32];
    let id3 = rand16();
    c.push(
        &alice,
        Op::Invite {
            invite_id: id3,
            role: Role::Member,
            secret_hash: [0; 32],
            expires_ms: T0 + 86_400_000,
        },
    );
    assert!(matches!(
        c.try_op(
            &alice,
            Op::Confirm {
                invite_id: id3,
                member: fake,
                role: Role::Member
            }
        ),
        Err(LogError::BadCard { .. })
    ));
}

#[test]
fn the_owner_is_pinned_by_fingerprint() {
    let (c, alice, bob, ..) = team();
    let fp = alice.card.card.fingerprint();
    assert!(MembershipState::verify_chain_pinned(&c.entries, fp).is_ok());
    assert!(matches!(
        MembershipState::verify_chain_pinned(&c.entries, bob.card.card.fingerprint()),
        Err(LogError::OwnerNotPinned { .. })
    ));
    // A server that swaps the whole log for one it made (its own owner) fails the pin.
    let mallory = acct("alice");
    let fake = Chain::new(&mallory);
    assert!(fake.verify().is_ok());
    assert!(MembershipState::verify_chain_pinned(&fake.entries, fp).is_err());
}

#[test]
fn entries_round_trip_and_refuse_trailing_bytes() {
    let (c, ..) = team();
    let b = c.entries[2].to_bytes();
    assert_eq!(SignedEntry::from_bytes(&b).unwrap(), c.entries[2]);
    let mut t = b.clone();
    t.push(0);
    assert!(SignedEntry::from_bytes(&t).is_err());
    assert!(SignedEntry::from_bytes(&b[..b.len() - 3]).is_err());
}

fn write(by: &Acct, s: &MembershipState, content: [u8; 32]) -> SignedWrite {
    SignedWrite::sign(
        &by.seed,
        WriteBody {
            scope: Scope::Org(ORG.into()),
            kind: "host".into(),
            id: "0011".into(),
            revision: 1,
            base_revision: 0,
            deleted: false,
            content,
            generation: s.current_key().generation,
            log_head: s.head_seq,
            writer: by.name.clone(),
        },
    )
}

#[test]
fn writes_are_checked_against_the_log() {
    let (mut c, _alice, bob, carol, dave) = team();
    let s = c.verify().unwrap();
    let content = content_hash(r#"{"name":"r1"}"#, [("password", &[1u8, 2, 3][..])]);
    assert!(check_write(&s, &write(&bob, &s, content), content).is_ok());
    assert!(matches!(
        check_write(&s, &write(&carol, &s, content), content),
        Err(WriteError::ReadOnly { .. })
    ));
    let other = content_hash(r#"{"name":"r2"}"#, [("password", &[1u8, 2, 3][..])]);
    assert_eq!(
        check_write(&s, &write(&bob, &s, content), other),
        Err(WriteError::ContentMismatch)
    );
    let mut forged = write(&bob, &s, content);
    forged.body.writer = "dave".into();
    assert!(matches!(
        check_write(&s, &forged, content),
        Err(WriteError::BadSignature(_))
    ));
    let mallory = acct("mallory");
    assert!(matches!(
        check_write(&s, &write(&mallory, &s, content), content),
        Err(WriteError::NotMember(_))
    ));
    // After bob's removal, a write signed by him is refused.
    let k = c.next_key();
    c.push(
        &dave,
        Op::Remove {
            account: "bob".into(),
            next_key: k,
        },
    );
    let s2 = c.verify().unwrap();
    assert!(matches!(
        check_write(&s2, &write(&bob, &s, content), content),
        Err(WriteError::NotMember(_))
    ));
    let b = write(&dave, &s2, content).to_bytes();
    assert!(SignedWrite::from_bytes(&b).is_ok());
}

#[test]
fn grants_open_only_for_their_recipient_and_commitment() {
    let (mut c, alice, bob, carol, dave) = team();
    let s = c.verify().unwrap();
    let key = c.keys[0];
    let g = SignedGrant::seal(
        &dave.seed,
        "dave",
        ORG,
        1,
        s.head_seq,
        "bob",
        &bob.card.card.agreement,
        &key,
    )
    .unwrap();
    g.check(&s).unwrap();
    assert_eq!(*g.open(&s, "bob", &bob.agree).unwrap(), key);
    assert!(g.open(&s, "carol", &carol.agree).is_err());
    // Moved to carol by the server: routing is signed and bound.
    let mut moved = g.clone();
    moved.body.recipient = "carol".into();
    assert!(matches!(moved.check(&s), Err(GrantError::BadSignature(_))));
    // A grant of a key the log did not commit to.
    let bad = SignedGrant::seal(
        &dave.seed,
        "dave",
        ORG,
        1,
        s.head_seq,
        "bob",
        &bob.card.card.agreement,
        &[0xEE; 32],
    )
    .unwrap();
    assert_eq!(
        bad.open(&s, "bob", &bob.agree).unwrap_err(),
        GrantError::Commitment(1)
    );
    // A member cannot grant.
    let by_bob = SignedGrant::seal(
        &bob.seed,
        "bob",
        ORG,
        1,
        s.head_seq,
        "carol",
        &carol.card.card.agreement,
        &key,
    )
    .unwrap();
    assert!(matches!(
        by_bob.check(&s),
        Err(GrantError::GranterNotAdmin(_))
    ));
    // After removal, bob's old grant no longer checks (not a member).
    let k = c.next_key();
    c.push(
        &alice,
        Op::Remove {
            account: "bob".into(),
            next_key: k,
        },
    );
    let s2 = c.verify().unwrap();
    assert!(matches!(
        g.check(&s2),
        Err(GrantError::RecipientNotMember(_))
    ));
    let b = g.to_bytes();
    assert_eq!(SignedGrant::from_bytes(&b).unwrap(), g);
}

#[test]
fn invite_codes_round_trip() {
    let alice = acct("alice");
    let code = InviteCode {
        server: "https://127.0.0.1:8443".into(),
        server_pin: Some([3; 32]),
        org: ORG.into(),
        owner: alice.card.card.fingerprint(),
        inviter: alice.card.card.fingerprint(),
        invite_id: rand16(),
        secret: [5; 32],
    };
    let s = code.to_string();
    assert!(s.starts_with("ghinv1-"));
    assert_eq!(s.parse::<InviteCode>().unwrap(), code);
    assert!(s[..s.len() - 4].parse::<InviteCode>().is_err());
    assert!("nope".parse::<InviteCode>().is_err());
}

// ------------------------------------------------------------ live sharing

use crate::share::{
    Direction, FrameError, FrameHeader, FrameKind, Invitee, ReplayGuard, ShareError, ShareRole,
    SignedShareList, open_frame, seal_frame,
};

fn invitee(a: &Acct, role: ShareRole) -> Invitee {
    Invitee {
        account: a.name.clone(),
        role,
        agreement_key: a.card.card.agreement,
    }
}

fn header(
    sender: &str,
    epoch: u64,
    direction: Direction,
    kind: FrameKind,
    counter: u64,
) -> FrameHeader {
    FrameHeader {
        channel: "ch1".into(),
        epoch,
        sender: sender.into(),
        direction,
        kind,
        counter,
        nonce: [0; 24],
    }
}

#[test]
fn share_keys_open_only_for_their_participant_and_input_keys_name_the_typist() {
    let (c, alice, bob, carol, dave) = team();
    let s = c.verify().unwrap();
    let (list, keys) = SignedShareList::seal(
        &alice.seed,
        "alice",
        ORG,
        "ch1",
        "r1 session 7",
        1,
        &[
            invitee(&bob, ShareRole::CoWorker),
            invitee(&carol, ShareRole::Viewer),
        ],
    )
    .unwrap();
    assert_eq!(list.owner(), "alice");
    let bob_keys = list.open(&s, "bob", &bob.agree, None).unwrap();
    let carol_keys = list.open(&s, "carol", &carol.agree, None).unwrap();
    assert_eq!(
        (bob_keys.role, carol_keys.role),
        (ShareRole::CoWorker, ShareRole::Viewer)
    );
    assert_eq!(*bob_keys.broadcast, *keys.broadcast);
    assert_eq!(*carol_keys.broadcast, *keys.broadcast);
    assert_ne!(*bob_keys.input, *carol_keys.input);
    // Not listed: nothing; another's secret: nothing.
    assert_eq!(
        list.open(&s, "dave", &dave.agree, None).err(),
        Some(ShareError::NotParticipant("dave".into()))
    );
    assert!(matches!(
        list.open(&s, "bob", &carol.agree, None),
        Err(ShareError::Open(_))
    ));
    // Output: every participant reads it.
    let out = seal_frame(
        &keys.broadcast,
        header("alice", 1, Direction::ToParticipants, FrameKind::Output, 1),
        b"r1> ",
    )
    .unwrap();
    assert_eq!(
        open_frame(&carol_keys.broadcast, &out)
            .unwrap()
            .1
            .as_slice(),
        b"r1> "
    );
    // Input: sealed under the typist's own key; carol cannot type as bob.
    let typed = seal_frame(
        &carol_keys.input,
        header("bob", 1, Direction::ToSharer, FrameKind::Input, 1),
        b"/system reboot\r",
    )
    .unwrap();
    assert_eq!(
        open_frame(&keys.input["bob"], &typed).err(),
        Some(FrameError::Open)
    );
    assert!(
        open_frame(&keys.input["carol"], &typed).is_ok(),
        "carol's own key opens it, header and all"
    );
    // ... and the sharer sees the header names bob while carol's key sealed it:
    // the sharer picks the key by the header's sender, so the frame is refused.
}

#[test]
fn a_changed_list_or_frame_is_refused() {
    let (c, alice, bob, carol, _) = team();
    let s = c.verify().unwrap();
    let (list, keys) = SignedShareList::seal(
        &alice.seed,
        "alice",
        ORG,
        "ch1",
        "r1",
        3,
        &[invitee(&bob, ShareRole::Viewer)],
    )
    .unwrap();
    // A hostile server raises bob's role, swaps his key, or adds carol: the signature fails.
    let mut raised = list.clone();
    raised.list.participants[0].role = ShareRole::Owner;
    assert_eq!(
        raised.check(&s).err(),
        Some(ShareError::BadSignature("alice".into()))
    );
    let mut swapped = list.clone();
    swapped.list.participants[0].agreement_key = carol.card.card.agreement;
    assert!(swapped.check(&s).is_err());
    let mut other_org = list.clone();
    other_org.list.org = "other".into();
    assert!(matches!(
        other_org.check(&s),
        Err(ShareError::WrongOrg { .. })
    ));
    // A list signed by someone else claiming to be alice.
    let (forged, _) = SignedShareList::seal(
        &carol.seed,
        "alice",
        ORG,
        "ch1",
        "r1",
        4,
        &[invitee(&bob, ShareRole::Owner)],
    )
    .unwrap();
    assert_eq!(
        forged.check(&s).err(),
        Some(ShareError::BadSignature("alice".into()))
    );
    // An old list replayed after a newer one.
    assert_eq!(
        list.open(&s, "bob", &bob.agree, Some(3)).err(),
        Some(ShareError::StaleEpoch { have: 3, got: 3 })
    );
    // Bytes round-trip; trailing bytes are refused.
    let bytes = list.to_bytes();
    assert_eq!(SignedShareList::from_bytes(&bytes).unwrap(), list);
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(SignedShareList::from_bytes(&longer).is_err());
    // A frame with any header field changed, or a flipped body bit, does not open.
    let frame = seal_frame(
        &keys.broadcast,
        header("alice", 3, Direction::ToParticipants, FrameKind::Output, 9),
        b"output",
    )
    .unwrap();
    let mut flipped = frame.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        open_frame(&keys.broadcast, &flipped).err(),
        Some(FrameError::Open)
    );
    let (h, body) = crate::share::frame_header(&frame).unwrap();
    for change in 0..4 {
        let mut h2 = h.clone();
        match change {
            0 => h2.epoch += 1,
            1 => h2.sender = "bob".into(),
            2 => h2.kind = FrameKind::Control,
            _ => h2.counter += 1,
        }
        let mut moved = sign::encode(&h2);
        moved.extend_from_slice(body);
        assert_eq!(
            open_frame(&keys.broadcast, &moved).err(),
            Some(FrameError::Open),
            "{change}"
        );
    }
    // Oversized bodies are refused before sealing.
    assert!(matches!(
        seal_frame(
            &keys.broadcast,
            h.clone(),
            &vec![0; crate::share::MAX_FRAME_BODY + 1]
        ),
        Err(FrameError::TooLarge(_))
    ));
}

#[test]
fn shape_rules_one_owner_no_duplicates_members_only() {
    let (mut c, alice, bob, carol, dave) = team();
    let s = c.verify().unwrap();
    let seal = |inv: &[Invitee]| {
        SignedShareList::seal(&alice.seed, "alice", ORG, "ch", "r1", 1, inv).map(|(l, _)| l)
    };
    assert_eq!(
        seal(&[
            invitee(&bob, ShareRole::Owner),
            invitee(&carol, ShareRole::Owner)
        ])
        .err(),
        Some(ShareError::Owners(2))
    );
    assert_eq!(
        seal(&[
            invitee(&bob, ShareRole::Viewer),
            invitee(&bob, ShareRole::CoWorker)
        ])
        .err(),
        Some(ShareError::Duplicate("bob".into()))
    );
    assert_eq!(
        seal(&[invitee(&alice, ShareRole::Viewer)]).err(),
        Some(ShareError::SharerListed)
    );
    // Handing the owner role over: bob owns it, alice still shares.
    let handed = seal(&[
        invitee(&bob, ShareRole::Owner),
        invitee(&dave, ShareRole::Viewer),
    ])
    .unwrap();
    assert_eq!(handed.owner(), "bob");
    handed.check(&s).unwrap();
    // An outsider, or a member removed since, is refused by every client.
    let mallory = acct("mallory");
    let with_outsider = seal(&[invitee(&mallory, ShareRole::Viewer)]).unwrap();
    assert_eq!(
        with_outsider.check(&s).err(),
        Some(ShareError::ParticipantNotMember("mallory".into()))
    );
    let to_carol = seal(&[invitee(&carol, ShareRole::Viewer)]).unwrap();
    let next_key = c.next_key();
    c.push(
        &alice,
        Op::Remove {
            account: "carol".into(),
            next_key,
        },
    );
    let after = c.verify().unwrap();
    assert_eq!(
        to_carol.check(&after).err(),
        Some(ShareError::ParticipantNotMember("carol".into()))
    );
}

#[test]
fn a_revoked_participant_keeps_nothing_of_the_next_epoch() {
    let (c, alice, bob, carol, _) = team();
    let s = c.verify().unwrap();
    let both = [
        invitee(&bob, ShareRole::CoWorker),
        invitee(&carol, ShareRole::Viewer),
    ];
    let (l1, k1) = SignedShareList::seal(&alice.seed, "alice", ORG, "ch", "r1", 1, &both).unwrap();
    let carol_old = l1.open(&s, "carol", &carol.agree, None).unwrap();
    // carol revoked: epoch 2 with bob only.
    let (l2, k2) = SignedShareList::seal(
        &alice.seed,
        "alice",
        ORG,
        "ch",
        "r1",
        2,
        &[invitee(&bob, ShareRole::CoWorker)],
    )
    .unwrap();
    assert_ne!(*k1.broadcast, *k2.broadcast);
    let bob_new = l2.open(&s, "bob", &bob.agree, Some(1)).unwrap();
    assert_eq!(bob_new.epoch, 2);
    assert_eq!(
        l2.open(&s, "carol", &carol.agree, Some(1)).err(),
        Some(ShareError::NotParticipant("carol".into()))
    );
    let after = seal_frame(
        &k2.broadcast,
        header("alice", 2, Direction::ToParticipants, FrameKind::Output, 1),
        b"after revocation",
    )
    .unwrap();
    assert!(open_frame(&bob_new.broadcast, &after).is_ok());
    assert_eq!(
        open_frame(&carol_old.broadcast, &after).err(),
        Some(FrameError::Open)
    );
    assert_eq!(
        open_frame(&carol_old.input, &after).err(),
        Some(FrameError::Open)
    );
}

#[test]
fn replayed_and_reordered_frames_are_refused() {
    let mut g = ReplayGuard::default();
    let h = |sender: &str, epoch, counter| {
        header(
            sender,
            epoch,
            Direction::ToSharer,
            FrameKind::Input,
            counter,
        )
    };
    g.accept(&h("bob", 1, 1)).unwrap();
    g.accept(&h("bob", 1, 5)).unwrap();
    assert!(matches!(
        g.accept(&h("bob", 1, 5)),
        Err(FrameError::Replayed {
            have: 5,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        g.accept(&h("bob", 1, 3)),
        Err(FrameError::Replayed { .. })
    ));
    // Counters are per sender and epoch.
    g.accept(&h("carol", 1, 1)).unwrap();
    g.accept(&h("bob", 2, 1)).unwrap();
}
