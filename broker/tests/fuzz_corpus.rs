//! Replays the `ipc_frame` fuzz seed corpus (fuzz/corpus/ipc_frame) and a
//! few thousand deterministic random byte strings through
//! `gatehouse_broker::fuzz::fuzz_frame` — the entry point the fuzz target
//! calls — so a crash found by fuzzing stays fixed and the target works
//! without nightly.
//!
//! The seed files are written by the ignored test `write_seed_corpus`:
//! `cargo test -p gatehouse-broker --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::path::PathBuf;

use gatehouse_broker::fuzz::{
    FUZZ_PASSPHRASE, dispatcher_available, fuzz_frame, fuzz_frame_replies,
};
use gatehouse_broker::roles::allowed;
use gatehouse_ipc::broker::{
    Action, ApprovalToken, BrokerRequest, Decision, FieldAddress, KeyScope, OpenItem, Requester,
    SealItem, SecretKind,
};
use gatehouse_ipc::codec::encode_frame;
use gatehouse_ipc::wire::{ClientMessage, Hello, PROTOCOL_VERSION};
use gatehouse_ipc::{MAX_FRAME, PeerRole, SecretBytes};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("corpus")
        .join("ipc_frame")
}

/// SplitMix64: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn addr(scope: KeyScope) -> FieldAddress {
    FieldAddress {
        scope,
        record_kind: "host".into(),
        record_id: "h1".into(),
        field: "ssh.password".into(),
        binding: vec![],
    }
}

fn action(command: &str) -> Action {
    Action {
        host: "r1".into(),
        vendor: "routeros".into(),
        org: "o".into(),
        credential: Some("keychain:r1".into()),
        command: command.into(),
        expected_effect: "reboot".into(),
    }
}

fn requester(role: PeerRole) -> Requester {
    Requester {
        role,
        pid: 1,
        exe: "/opt/gatehouse/bin/gatehouse".into(),
    }
}

/// One request of every kind (several for the interesting ones).
fn sample_requests() -> Vec<(&'static str, BrokerRequest)> {
    let token = ApprovalToken {
        approval_id: 1,
        action: action("/system reboot"),
        requester: requester(PeerRole::Sessiond),
        approver: requester(PeerRole::Ui),
        nonce: [7; 16],
        expires_ms: u64::MAX,
        signature: vec![0; 64],
    };
    vec![
        ("status", BrokerRequest::Status),
        (
            "account-init",
            BrokerRequest::AccountInit {
                passphrase: SecretBytes::copy_from(b"another-passphrase"),
            },
        ),
        (
            "signin-ok",
            BrokerRequest::SignIn {
                passphrase: SecretBytes::copy_from(FUZZ_PASSPHRASE),
                remember_device: false,
            },
        ),
        (
            "signin-remember",
            BrokerRequest::SignIn {
                passphrase: SecretBytes::copy_from(FUZZ_PASSPHRASE),
                remember_device: true,
            },
        ),
        (
            "signin-wrong",
            BrokerRequest::SignIn {
                passphrase: SecretBytes::copy_from(b"wrong-passphrase"),
                remember_device: false,
            },
        ),
        ("signout", BrokerRequest::SignOut),
        (
            "org-create",
            BrokerRequest::OrgCreate {
                name: "acme".into(),
            },
        ),
        ("org-list", BrokerRequest::OrgList),
        (
            "keychain-set",
            BrokerRequest::KeychainSet {
                name: "core-sw1".into(),
                kind: SecretKind::Password,
                payload: SecretBytes::copy_from(b"hunter2-hunter2"),
            },
        ),
        (
            "keychain-set-reserved",
            BrokerRequest::KeychainSet {
                name: "unlock".into(),
                kind: SecretKind::Token,
                payload: SecretBytes::copy_from(b"x"),
            },
        ),
        ("keychain-list", BrokerRequest::KeychainList),
        (
            "keychain-remove",
            BrokerRequest::KeychainRemove {
                name: "core-sw1".into(),
            },
        ),
        (
            "seal-private",
            BrokerRequest::SealFields {
                items: vec![SealItem {
                    address: addr(KeyScope::Private),
                    plaintext: SecretBytes::copy_from(b"s3cret-value"),
                }],
            },
        ),
        (
            "open-garbage",
            BrokerRequest::OpenFields {
                items: vec![OpenItem {
                    address: addr(KeyScope::Private),
                    sealed: vec![1; 60],
                }],
            },
        ),
        (
            "open-empty",
            BrokerRequest::OpenFields {
                items: vec![OpenItem {
                    address: addr(KeyScope::Private),
                    sealed: vec![],
                }],
            },
        ),
        (
            "request-approval",
            BrokerRequest::RequestApproval {
                action: action("/system reboot"),
            },
        ),
        (
            "request-approval-empty",
            BrokerRequest::RequestApproval { action: action("") },
        ),
        ("list-approvals", BrokerRequest::ListApprovals),
        ("show-approval", BrokerRequest::ShowApproval { id: 1 }),
        ("approval-outcome", BrokerRequest::ApprovalOutcome { id: 1 }),
        (
            "decide-approve",
            BrokerRequest::DecideApproval {
                id: 1,
                decision: Decision::Approve,
                presence: None,
            },
        ),
        (
            "decide-reject",
            BrokerRequest::DecideApproval {
                id: 1,
                decision: Decision::Reject {
                    reason: "no".into(),
                },
                presence: None,
            },
        ),
        (
            "decide-edit",
            BrokerRequest::DecideApproval {
                id: 1,
                decision: Decision::Edit {
                    command: "/system print".into(),
                },
                presence: None,
            },
        ),
        (
            "consume",
            BrokerRequest::ConsumeApproval {
                token: Box::new(token),
                action: action("/system reboot"),
            },
        ),
        (
            "redact",
            BrokerRequest::Redact {
                text: "password hunter2-hunter2 and s3cret-value".into(),
            },
        ),
        ("subscribe", BrokerRequest::Subscribe),
        (
            "sync-card",
            BrokerRequest::SyncCard {
                account: "fuzz-account".into(),
            },
        ),
        (
            "sync-sign-challenge",
            BrokerRequest::SyncSignChallenge {
                challenge: gatehouse_membership::sign::encode(
                    &gatehouse_membership::auth::AuthChallenge {
                        server: "server".into(),
                        account: "fuzz-account".into(),
                        device: "device".into(),
                        nonce: vec![7; 32],
                        time_ms: 1,
                    },
                ),
            },
        ),
        (
            "sync-sign-write",
            BrokerRequest::SyncSignWrite {
                record: Box::new(gatehouse_ipc::broker::VerifyItem {
                    item: gatehouse_ipc::broker::MacItem {
                        scope: KeyScope::Private,
                        record_kind: "host".into(),
                        record_id: "h1".into(),
                        content: b"fields".to_vec(),
                    },
                    mac: vec![0; 32],
                }),
                write: vec![0; 48],
            },
        ),
    ]
}

fn request_frame(id: u64, body: BrokerRequest) -> Vec<u8> {
    encode_frame(&ClientMessage::Request { id, body })
        .expect("encodes")
        .to_vec()
}

fn hello_frame(protocol: u32, service: &str) -> Vec<u8> {
    let hello: ClientMessage<BrokerRequest> = ClientMessage::Hello(Hello {
        protocol,
        service: service.into(),
    });
    encode_frame(&hello).expect("encodes").to_vec()
}

/// Request, approve, fetch the outcome, consume twice — the token is for
/// `/system reboot`, the consumption for `consumed`.
fn approval_sequence(consumed: &Action) -> Vec<u8> {
    let unsigned = ApprovalToken {
        approval_id: 0,
        action: consumed.clone(),
        requester: requester(PeerRole::Sessiond),
        approver: requester(PeerRole::Ui),
        nonce: [0; 16],
        expires_ms: 0,
        signature: vec![],
    };
    [
        request_frame(
            2,
            BrokerRequest::RequestApproval {
                action: action("/system reboot"),
            },
        ),
        request_frame(
            1,
            BrokerRequest::DecideApproval {
                id: 0,
                decision: Decision::Approve,
                presence: None,
            },
        ),
        request_frame(7, BrokerRequest::ApprovalOutcome { id: 0 }),
        request_frame(
            12,
            BrokerRequest::ConsumeApproval {
                token: Box::new(unsigned.clone()),
                action: consumed.clone(),
            },
        ),
        request_frame(
            17,
            BrokerRequest::ConsumeApproval {
                token: Box::new(unsigned),
                action: consumed.clone(),
            },
        ),
    ]
    .concat()
}

/// The seed corpus: valid frames of every request kind (under each role via
/// the id), connection-like sequences, and truncated/oversized/garbage frames.
fn seed_corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, req) in sample_requests() {
        // id % 5 picks the role (cli, ui, sessiond, copilotd, syncd): the first one
        // the role table allows, so the seed gets past the role check.
        let id = PeerRole::ALL
            .iter()
            .position(|r| allowed(*r, req.operation()))
            .unwrap_or(0) as u64;
        out.push((format!("req-{name}"), request_frame(id, req)));
    }
    // Approval life cycle under the right roles (the harness maps approval
    // id 0 to the newest request and fills an unsigned token with the real
    // one): sessiond (id ≡ 2) requests, ui (id ≡ 1) approves, sessiond asks
    // for the outcome and consumes the token twice (the second is a replay).
    let hello = hello_frame(PROTOCOL_VERSION, "broker.sock");
    out.push((
        "seq-approval".into(),
        approval_sequence(&action("/system reboot")),
    ));
    out.push((
        "seq-approval-mismatch".into(),
        approval_sequence(&action("/system reset-configuration")),
    ));
    out.push((
        "seq-keychain".into(),
        [
            hello.clone(),
            request_frame(
                0,
                BrokerRequest::KeychainSet {
                    name: "r1".into(),
                    kind: SecretKind::Token,
                    payload: SecretBytes::copy_from(b"tok-abcdef-123456"),
                },
            ),
            request_frame(
                5,
                BrokerRequest::Redact {
                    text: "token tok-abcdef-123456".into(),
                },
            ),
            request_frame(10, BrokerRequest::KeychainList),
        ]
        .concat(),
    ));
    out.push((
        "seq-seal-open".into(),
        [
            request_frame(
                2,
                BrokerRequest::SealFields {
                    items: vec![SealItem {
                        address: addr(KeyScope::Private),
                        plaintext: SecretBytes::copy_from(b"field-value"),
                    }],
                },
            ),
            request_frame(6, BrokerRequest::OrgList),
        ]
        .concat(),
    ));
    out.push((
        "seq-signout-signin".into(),
        [
            request_frame(0, BrokerRequest::SignOut),
            request_frame(1, BrokerRequest::Status),
            request_frame(
                5,
                BrokerRequest::SignIn {
                    passphrase: SecretBytes::copy_from(FUZZ_PASSPHRASE),
                    remember_device: false,
                },
            ),
        ]
        .concat(),
    ));
    out.push(("hello".into(), hello.clone()));
    out.push((
        "hello-wrong-version".into(),
        hello_frame(PROTOCOL_VERSION + 1, "broker.sock"),
    ));
    out.push((
        "hello-wrong-service".into(),
        hello_frame(PROTOCOL_VERSION, "sessiond.sock"),
    ));
    // Broken frames.
    let status = request_frame(0, BrokerRequest::Status);
    out.push(("bad-empty".into(), vec![]));
    out.push(("bad-short-prefix".into(), vec![5, 0]));
    out.push(("bad-prefix-only".into(), 16u32.to_le_bytes().to_vec()));
    out.push(("bad-len-4gib".into(), u32::MAX.to_le_bytes().to_vec()));
    out.push((
        "bad-len-over-limit".into(),
        [
            ((MAX_FRAME + 1) as u32).to_le_bytes().as_slice(),
            b"abcdefgh",
        ]
        .concat(),
    ));
    out.push(("bad-truncated".into(), status[..status.len() - 1].to_vec()));
    out.push((
        "bad-truncated-body".into(),
        [100u32.to_le_bytes().as_slice(), b"abc"].concat(),
    ));
    out.push((
        "bad-trailing".into(),
        [
            ((status.len() - 4 + 1) as u32).to_le_bytes().as_slice(),
            &status[4..],
            &[0],
        ]
        .concat(),
    ));
    out.push((
        "bad-ff".into(),
        [8u32.to_le_bytes().as_slice(), &[0xff; 8]].concat(),
    ));
    out.push((
        "bad-unknown-variant".into(),
        [3u32.to_le_bytes().as_slice(), &[1, 1, 200]].concat(),
    ));
    out.push((
        "bad-huge-vec-len".into(),
        // Request id 0, SealFields, then a varint item count of ~2^63.
        [
            12u32.to_le_bytes().as_slice(),
            &[1, 0, 9],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ]
        .concat(),
    ));
    out.push((
        "bad-huge-string-len".into(),
        // Request id 0, OrgCreate, then a string length of 2^32.
        [
            8u32.to_le_bytes().as_slice(),
            &[1, 0, 4],
            &[0x80, 0x80, 0x80, 0x80, 0x10],
        ]
        .concat(),
    ));
    out.push((
        "bad-invalid-utf8".into(),
        [6u32.to_le_bytes().as_slice(), &[1, 0, 4, 2, 0xc3, 0x28]].concat(),
    ));
    out.push(("good-then-garbage".into(), [status, vec![0xff; 9]].concat()));
    out
}

/// Regenerates fuzz/corpus/ipc_frame/ (run on purpose; not part of the suite).
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seed_corpus() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

#[test]
fn seed_corpus_is_on_disk() {
    for (name, bytes) in seed_corpus() {
        let p = corpus_dir().join(format!("seed-{name}"));
        let on_disk = std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with --ignored write_seed_corpus)",
                p.display()
            )
        });
        assert_eq!(
            on_disk,
            bytes,
            "{} is stale (regenerate with --ignored write_seed_corpus)",
            p.display()
        );
    }
}

#[test]
fn replay_corpus_and_random_inputs() {
    dispatcher_available().expect("the fuzz harness builds a real broker service");

    // The harness reaches deep paths: a whole approval life cycle on real
    // tokens (before any other input changes the shared broker state).
    let seeds = seed_corpus();
    let seed = |name: &str| &seeds.iter().find(|(n, _)| n == name).expect(name).1;
    let got = fuzz_frame_replies(seed("seq-approval"));
    let kinds: Vec<_> = got
        .iter()
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        kinds,
        [
            "sessiond ok ApprovalRequested",
            "ui ok Decided",
            "sessiond ok Outcome",
            "sessiond ok Consumed",
            "sessiond err approval:",
        ],
        "{got:?}"
    );
    assert!(got[4].contains("already used"), "replay: {got:?}");
    let got = fuzz_frame_replies(seed("seq-approval-mismatch"));
    assert!(
        got.get(3).is_some_and(|l| l.contains("Command differs")),
        "mismatched action consumed: {got:?}"
    );
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 24, "only {} seed files", files.len());
    for f in &files {
        fuzz_frame(&std::fs::read(f).unwrap());
    }

    // Random inputs: pure noise, and seed inputs with bytes flipped,
    // replaced or cut off (noise alone rarely gets past the decoder).
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, b)| b).collect();
    let mut rng = Rng(0x6761_7465_686f_7573);
    for i in 0..2000 {
        let input: Vec<u8> = match i % 3 {
            0 => {
                let len = rng.below(64) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if len >= 4 && rng.below(2) == 0 {
                    // A plausible length prefix.
                    v[..4].copy_from_slice(&((len - 4) as u32).to_le_bytes());
                }
                v
            }
            _ => {
                let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..=rng.below(4) {
                    if v.is_empty() {
                        break;
                    }
                    let at = rng.below(v.len() as u64) as usize;
                    match rng.below(3) {
                        0 => v[at] ^= 1 << rng.below(8),
                        1 => v[at] = rng.next() as u8,
                        _ => v.truncate(at),
                    }
                }
                v
            }
        };
        fuzz_frame(&input);
    }
}
