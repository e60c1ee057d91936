//! The sync server as a real process (`gatehouse-sync-server --self-signed`,
//! pinned by the fingerprint it prints), on both storage backends with the
//! SAME scenarios: an SQLite file, and a throwaway PostgreSQL 15 cluster
//! (initdb in a temp dir, private Unix socket, run as the unprivileged test
//! user when the test runs as root).
//!
//! Scenarios: roles enforced by the server from the membership log (member
//! writes, viewer refused, outsider and removed member refused), CAS
//! conflicts, incremental pull, long-poll wake-up; bad input (malformed
//! body, oversize record with the limit named, forged and mismatched write
//! signatures, wrong challenge signature, replayed challenge, forged and
//! out-of-order log entries, grants by a non-admin, a wrong certificate
//! pin); a database dump that holds no canary plaintext. PostgreSQL only:
//! two server processes on one database serve the same org.
//!
//! Build the server first: `cargo build -p gatehouse-sync-server`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use gatehouse_membership::card::Role as MRole;
use gatehouse_membership::envelope::SignedWrite;
use gatehouse_membership::{KeyGen, Op, SignedEntry, SignedGrant, sign};
use gatehouse_sync_server::client::{ClientError, Method, SyncClient};
use gatehouse_sync_server::fixture::{TestAccount, TestOrg, random, signed_host};
use gatehouse_sync_server::pgcluster::PgCluster;
use gatehouse_syncproto::limits::MAX_RECORD_BYTES;
use gatehouse_syncproto::{
    AccountId, Bytes, ChallengeResponse, ErrorCode, KeyGrant, PushResult, RecordEnvelope,
    SealedField, SpaceId,
};
use gatehouse_tests::TestUser;

// ---------------------------------------------------------------- backends

enum Db {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Pg {
        cluster: PgCluster,
        _dir: tempfile::TempDir,
    },
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn postgres() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let user = TestUser::primary();
        let run_as = (!user.is_current()).then_some((user.uid, user.gid));
        let cluster = PgCluster::start(dir.path(), run_as).expect("starting PostgreSQL");
        cluster.create_db("sync").unwrap();
        Db::Pg { cluster, _dir: dir }
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite { dir } => format!("sqlite:{}", dir.path().join("sync.sqlite").display()),
            Db::Pg { cluster, .. } => cluster.url("sync"),
        }
    }

    /// Everything the database holds, as a hostile server operator would
    /// copy it: the SQLite files (db, WAL) or pg_dump plus the raw data dir.
    fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Db::Sqlite { dir } => read_tree(dir.path(), &mut out),
            Db::Pg { cluster, .. } => {
                out.extend(cluster.dump("sync").unwrap());
                read_tree(cluster.data_dir(), &mut out);
            }
        }
        out
    }
}

fn read_tree(dir: &Path, out: &mut Vec<u8>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p: PathBuf = e.path();
        if p.is_dir() {
            read_tree(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
}

// ---------------------------------------------------------------- the server process

use gatehouse_tests::sync_server::SyncServerProcess as Server;

// ---------------------------------------------------------------- accounts, the log, records

type Acct = TestAccount;

fn acct(name: &str) -> Acct {
    TestAccount::generate(name)
}

async fn join(anon: &SyncClient, a: &Acct) -> SyncClient {
    a.register(anon).await.unwrap();
    a.sign_in(anon, "laptop").await.unwrap()
}

fn now_ms() -> u64 {
    gatehouse_ipc::os::now_ms()
}

/// A host record envelope signed by `by`; `sealed` are (field, ciphertext).
fn record(
    space: &SpaceId,
    by: &Acct,
    id: &str,
    base: u64,
    plain: &str,
    sealed: Vec<(&str, Vec<u8>)>,
) -> RecordEnvelope {
    let sealed = sealed
        .into_iter()
        .map(|(f, c)| SealedField {
            field: f.into(),
            ciphertext: Bytes(c),
        })
        .collect();
    signed_host(space, by, id, base, plain, sealed).unwrap()
}

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> (ErrorCode, String) {
    match r {
        Err(ClientError::Api { error, .. }) => (error.code, error.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// alice owner, bob member, carol viewer, mallory registered outsider.
struct Team {
    alice: Acct,
    bob: Acct,
    carol: Acct,
    mallory: Acct,
    a: SyncClient,
    b: SyncClient,
    c: SyncClient,
    m: SyncClient,
    org: TestOrg,
}

async fn team(s: &Server) -> Team {
    let anon = s.client();
    let (alice, bob, carol, mallory) = (acct("alice"), acct("bob"), acct("carol"), acct("mallory"));
    let a = join(&anon, &alice).await;
    let b = join(&anon, &bob).await;
    let c = join(&anon, &carol).await;
    let m = join(&anon, &mallory).await;
    let mut org = TestOrg::create(&alice, &a, "acme").await.unwrap();
    org.add(&a, &alice, &bob, MRole::Member).await.unwrap();
    org.add(&a, &alice, &carol, MRole::Viewer).await.unwrap();
    Team {
        alice,
        bob,
        carol,
        mallory,
        a,
        b,
        c,
        m,
        org,
    }
}

// ---------------------------------------------------------------- scenarios

async fn roles_cas_pull_and_removal(db: &Db) {
    let s = Server::start(&db.url());
    let mut t = team(&s).await;
    let sp = t.org.space();

    // alice writes; bob pulls the envelope exactly as pushed.
    let r1 = record(
        &sp,
        &t.alice,
        "h1",
        0,
        r#"{"name":"r1"}"#,
        vec![("password", vec![1; 40])],
    );
    let p = t.a.push(&sp, vec![r1.clone()]).await.unwrap();
    assert_eq!(p.results, vec![PushResult::Accepted { seq: 1 }]);
    let got = t.b.pull(&sp, 0, None).await.unwrap();
    assert_eq!(got.head_seq, 1);
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].record, r1);

    // bob (member) edits on revision 1; alice's concurrent edit on 1 conflicts.
    let r2 = record(&sp, &t.bob, "h1", 1, r#"{"name":"r1-bob"}"#, vec![]);
    assert_eq!(
        t.b.push(&sp, vec![r2.clone()]).await.unwrap().results,
        vec![PushResult::Accepted { seq: 2 }]
    );
    let stale = record(&sp, &t.alice, "h1", 1, r#"{"name":"r1-alice"}"#, vec![]);
    assert_eq!(
        t.a.push(&sp, vec![stale]).await.unwrap().results,
        vec![PushResult::Conflict {
            current_revision: 2,
            current_seq: 2
        }]
    );
    // A "new" record that exists is a conflict too.
    let again = record(&sp, &t.alice, "h1", 0, r#"{"name":"x"}"#, vec![]);
    assert!(matches!(
        t.a.push(&sp, vec![again]).await.unwrap().results[0],
        PushResult::Conflict {
            current_revision: 2,
            ..
        }
    ));
    // Incremental: after seq 1, only the latest revision of h1 (seq 2).
    let inc = t.a.pull(&sp, 1, None).await.unwrap();
    assert_eq!(inc.records.len(), 1);
    assert_eq!(inc.records[0].seq, 2);
    assert_eq!(inc.records[0].record, r2);
    // Paging.
    for i in 0..5 {
        let r = record(
            &sp,
            &t.alice,
            &format!("p{i}"),
            0,
            r#"{"name":"p"}"#,
            vec![],
        );
        t.a.push(&sp, vec![r]).await.unwrap();
    }
    let page = t.a.pull(&sp, 0, Some(3)).await.unwrap();
    assert_eq!(page.records.len(), 3);
    assert!(page.more);
    let rest = t.a.pull(&sp, page.records[2].seq, None).await.unwrap();
    assert_eq!(rest.records.len(), 3);
    assert!(!rest.more);

    // carol (viewer) reads but may not write; mallory (outsider) neither.
    assert_eq!(t.c.pull(&sp, 0, None).await.unwrap().head_seq, 7);
    let by_carol = record(&sp, &t.carol, "c1", 0, r#"{"name":"c"}"#, vec![]);
    let (c, m) = code(t.c.push(&sp, vec![by_carol]).await);
    assert_eq!(c, ErrorCode::Forbidden, "{m}");
    assert!(m.contains("viewer"), "{m}");
    assert_eq!(code(t.m.pull(&sp, 0, None).await).0, ErrorCode::NotMember);
    let by_m = record(&sp, &t.mallory, "m1", 0, r#"{"name":"m"}"#, vec![]);
    assert_eq!(
        code(t.m.push(&sp, vec![by_m]).await).0,
        ErrorCode::NotMember
    );
    // A private space is its own account's only.
    let priv_b = SpaceId::Private(AccountId::new("bob").unwrap());
    let mine = record(&priv_b, &t.bob, "n1", 0, r#"{"name":"note"}"#, vec![]);
    t.b.push(&priv_b, vec![mine]).await.unwrap();
    assert_eq!(
        code(t.a.pull(&priv_b, 0, None).await).0,
        ErrorCode::Forbidden
    );

    // Long-poll: bob waits past the head; alice's push wakes him.
    let head = t.b.pull(&sp, 0, None).await.unwrap().head_seq;
    let waiter = {
        let (b, sp) = (t.b.clone(), sp.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            (b.wait(&sp, head, 20_000).await.unwrap(), t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = record(&sp, &t.alice, "w1", 0, r#"{"name":"w"}"#, vec![]);
    t.a.push(&sp, vec![r]).await.unwrap();
    let (w, took) = waiter.await.unwrap();
    assert!(w.changed && w.head_seq == head + 1, "{w:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let idle = t.b.wait(&sp, head + 1, 200).await.unwrap();
    assert!(!idle.changed);

    // bob is removed (with a rotation): the server refuses him from then on,
    // but still shows him the log so his client learns of the removal.
    let k2 = KeyGen::for_key("acme", 2, &random::<32>());
    let alice = acct_ref(&t.alice);
    t.org
        .append(
            &t.a,
            alice,
            Op::Remove {
                account: "bob".into(),
                next_key: k2,
            },
        )
        .await
        .unwrap();
    let (c, m) = code(t.b.pull(&sp, 0, None).await);
    assert_eq!(c, ErrorCode::NotMember);
    assert!(m.contains("removed"), "{m}");
    let late = record(&sp, &t.bob, "h9", 0, r#"{"name":"late"}"#, vec![]);
    assert_eq!(
        code(t.b.push(&sp, vec![late]).await).0,
        ErrorCode::NotMember
    );
    let log = t.b.log(&t.org.id, None).await.unwrap();
    assert_eq!(log.entries.len(), t.org.entries.len());
    let entries: Vec<SignedEntry> = log
        .entries
        .iter()
        .map(|e| SignedEntry::from_bytes(&e.entry.0).unwrap())
        .collect();
    let st = gatehouse_membership::MembershipState::verify_chain(&entries).unwrap();
    assert!(st.removed.contains_key("bob"));
    drop(s.child);
}

fn acct_ref(a: &Acct) -> &Acct {
    a
}

async fn bad_input_is_refused_clearly(db: &Db) {
    let s = Server::start(&db.url());
    let mut t = team(&s).await;
    let sp = t.org.space();
    let path = format!("/v1/spaces/{sp}/records");

    // Malformed bodies.
    let (st, body) =
        t.a.raw(Method::POST, &path, b"{not json".to_vec())
            .await
            .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("bad_request") && body.contains("malformed body"),
        "{body}"
    );
    let (st, body) =
        t.a.raw(
            Method::POST,
            &path,
            br#"{"records":[{"space":"org:acme"}]}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    let (st, body) =
        t.a.raw(Method::POST, "/v1/spaces/org:a%2Fb/records", b"{}".to_vec())
            .await
            .unwrap();
    assert_eq!(st, 400, "{body}");

    // An oversize record: 413 naming the limit.
    let big = record(
        &sp,
        &t.alice,
        "big",
        0,
        r#"{"name":"big"}"#,
        vec![("blob", vec![0; MAX_RECORD_BYTES])],
    );
    let (c, m) = code(t.a.push(&sp, vec![big]).await);
    assert_eq!(c, ErrorCode::TooLarge);
    assert!(m.contains(&MAX_RECORD_BYTES.to_string()), "{m}");

    // A write signed by another key than the writer's.
    let mut forged = record(&sp, &t.alice, "f1", 0, r#"{"name":"f"}"#, vec![]);
    let by_bob = record(&sp, &t.bob, "f1", 0, r#"{"name":"f"}"#, vec![]);
    let mut w = SignedWrite::from_bytes(&by_bob.write.0).unwrap();
    w.body.writer = "alice".into();
    forged.write = Bytes(w.to_bytes());
    let (c, m) = code(t.a.push(&sp, vec![forged]).await);
    assert_eq!(c, ErrorCode::BadSignature, "{m}");
    // Content changed after signing (a flipped ciphertext byte).
    let mut flipped = record(
        &sp,
        &t.alice,
        "f2",
        0,
        r#"{"name":"f"}"#,
        vec![("password", vec![5; 40])],
    );
    flipped.sealed[0].ciphertext.0[3] ^= 1;
    assert_eq!(
        code(t.a.push(&sp, vec![flipped]).await).0,
        ErrorCode::BadSignature
    );
    // An envelope naming another writer than the session.
    let as_bob = record(&sp, &t.bob, "f3", 0, r#"{"name":"f"}"#, vec![]);
    assert_eq!(
        code(t.a.push(&sp, vec![as_bob]).await).0,
        ErrorCode::Forbidden
    );
    // Nothing half-applied: a push with one bad record stores none.
    let good = record(&sp, &t.alice, "g1", 0, r#"{"name":"g"}"#, vec![]);
    let mut bad = record(&sp, &t.alice, "g2", 0, r#"{"name":"g"}"#, vec![]);
    bad.revision = 5;
    assert_eq!(
        code(t.a.push(&sp, vec![good, bad]).await).0,
        ErrorCode::BadRequest
    );
    assert_eq!(t.a.pull(&sp, 0, None).await.unwrap().head_seq, 0);

    // Device challenge: a wrong key, a replayed challenge, an unknown account.
    let anon = s.client();
    let ch = anon.challenge("alice", "laptop").await.unwrap();
    let wrong = gatehouse_membership::auth::AuthChallenge {
        server: ch.server.clone(),
        account: "alice".into(),
        device: "laptop".into(),
        nonce: ch.nonce.0.clone(),
        time_ms: ch.time_ms,
    };
    let resp = |sig: Vec<u8>| ChallengeResponse {
        challenge_id: ch.challenge_id.clone(),
        account: AccountId::new("alice").unwrap(),
        device: "laptop".into(),
        signature: Bytes(sig),
    };
    let (c, m) = code(anon.respond(&resp(wrong.sign(&t.bob.seed))).await);
    assert_eq!(c, ErrorCode::Unauthorized);
    assert!(m.contains("does not verify"), "{m}");
    // The challenge was consumed by the failed try: the right signature now fails too.
    let (c, m) = code(anon.respond(&resp(wrong.sign(&t.alice.seed))).await);
    assert_eq!(c, ErrorCode::Unauthorized);
    assert!(m.contains("already used"), "{m}");
    assert_eq!(
        code(anon.challenge("nobody", "x").await).0,
        ErrorCode::NotFound
    );
    // A made-up token.
    let fake = anon.with_token("AAAA");
    assert_eq!(
        code(fake.pull(&sp, 0, None).await).0,
        ErrorCode::Unauthorized
    );
    // A name taken.
    assert_eq!(
        code(anon.register(sign::encode(&acct("alice").card)).await).0,
        ErrorCode::Conflict
    );

    // Membership log: forged signature, out of order, a member signing, a replay.
    let erin = acct("erin");
    join(&anon, &erin).await;
    let mut e = t.org.entry(
        &t.alice,
        Op::ChangeRole {
            account: "carol".into(),
            role: MRole::Member,
        },
    );
    e.signature = SignedEntry::sign(&t.bob.seed, e.body.clone()).signature;
    let (c, m) = code(t.a.append_log(&t.org.id, e.to_bytes()).await);
    assert_eq!(c, ErrorCode::LogRejected);
    assert!(m.contains("signature"), "{m}");
    let mut skip = t
        .org
        .entry(&t.alice, Op::RevokeInvite { invite_id: [0; 16] });
    skip.body.seq += 1;
    let skip = SignedEntry::sign(&t.alice.seed, skip.body);
    assert_eq!(
        code(t.a.append_log(&t.org.id, skip.to_bytes()).await).0,
        ErrorCode::LogRejected
    );
    let by_member = t.org.entry(
        &t.bob,
        Op::ChangeRole {
            account: "carol".into(),
            role: MRole::Member,
        },
    );
    assert_eq!(
        code(t.b.append_log(&t.org.id, by_member.to_bytes()).await).0,
        ErrorCode::LogRejected
    );
    let replay = t.org.entries[1].clone();
    assert_eq!(
        code(t.a.append_log(&t.org.id, replay.to_bytes()).await).0,
        ErrorCode::LogRejected
    );
    let (st, body) =
        t.a.raw(
            Method::POST,
            &format!("/v1/orgs/{}/log", t.org.id),
            br#"{"entry":"AAAA"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    // A confirm of a card other than the one erin registered.
    let invite_id = random::<16>();
    t.org
        .append(
            &t.a,
            acct_ref(&t.alice),
            Op::Invite {
                invite_id,
                role: MRole::Member,
                secret_hash: [0; 32],
                expires_ms: now_ms() + 60_000,
            },
        )
        .await
        .unwrap();
    let swapped = acct("erin");
    let conf = t.org.entry(
        &t.alice,
        Op::Confirm {
            invite_id,
            member: swapped.card.clone(),
            role: MRole::Member,
        },
    );
    let (c, m) = code(t.a.append_log(&t.org.id, conf.to_bytes()).await);
    assert_eq!(c, ErrorCode::LogRejected);
    assert!(m.contains("differs"), "{m}");

    // Grants: by a member refused; by the owner, to a member, accepted and
    // served to that member only.
    let key = random::<32>();
    let head = t.org.entries.last().unwrap().body.seq;
    let grant = |by: &Acct, to: &str, agreement: &[u8; 32]| {
        let g =
            SignedGrant::seal(&by.seed, &by.name, "acme", 1, head, to, agreement, &key).unwrap();
        KeyGrant {
            org: t.org.id.clone(),
            generation: 1,
            recipient: AccountId::new(to).unwrap(),
            granter: AccountId::new(by.name.clone()).unwrap(),
            log_seq: head,
            grant: Bytes(g.to_bytes()),
        }
    };
    let to_carol = grant(&t.bob, "carol", &t.carol.card.card.agreement);
    assert_eq!(
        code(t.b.post_grants(&t.org.id, vec![to_carol]).await).0,
        ErrorCode::Forbidden
    );
    let to_mallory = grant(&t.alice, "mallory", &t.mallory.card.card.agreement);
    assert_eq!(
        code(t.a.post_grants(&t.org.id, vec![to_mallory]).await).0,
        ErrorCode::Forbidden
    );
    let ok = grant(&t.alice, "bob", &t.bob.card.card.agreement);
    let mut moved = ok.clone();
    moved.recipient = AccountId::new("carol").unwrap();
    assert_eq!(
        code(t.a.post_grants(&t.org.id, vec![moved]).await).0,
        ErrorCode::BadRequest
    );
    t.a.post_grants(&t.org.id, vec![ok.clone()]).await.unwrap();
    assert_eq!(t.b.grants(&t.org.id).await.unwrap().grants, vec![ok]);
    assert!(t.c.grants(&t.org.id).await.unwrap().grants.is_empty());
    assert_eq!(code(t.m.grants(&t.org.id).await).0, ErrorCode::NotMember);

    // A client pinning another certificate refuses the server.
    let wrong_pin = SyncClient::new(&s.url, &"ab".repeat(32)).unwrap();
    match wrong_pin.info().await {
        Err(ClientError::Transport(m)) => assert!(m.contains("pinned"), "{m}"),
        other => panic!("a wrong pin must fail the handshake: {other:?}"),
    }

    // A body over the request limit. Last: the server answers 413 before
    // reading the body and closes that connection, and a request that
    // reqwest's pool sends next on it fails with a transport error.
    let (st, body) =
        t.a.raw(Method::POST, &path, vec![b' '; 9 * 1024 * 1024])
            .await
            .unwrap();
    assert_eq!(st, 413, "{body}");
}

async fn dump_holds_no_canary_plaintext(db: &Db) {
    let s = Server::start(&db.url());
    let t = team(&s).await;
    let sp = t.org.space();
    let canary = format!("CANARY-{}", hex(&random::<8>()));
    let visible = format!("visible-host-{}", hex(&random::<8>()));
    // The client seals the canary (here: ChaCha20-Poly1305 with a key the
    // server never sees); only the ciphertext travels.
    let key = random::<32>();
    let nonce = random::<12>();
    let ct = ChaCha20Poly1305::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), canary.as_bytes())
        .unwrap();
    let mut sealed = nonce.to_vec();
    sealed.extend(ct);
    let plain = format!(r#"{{"name":"{visible}"}}"#);
    for i in 0..20 {
        let r = record(
            &sp,
            &t.alice,
            &format!("c{i}"),
            0,
            &plain,
            vec![("password", sealed.clone())],
        );
        t.a.push(&sp, vec![r]).await.unwrap();
    }
    assert_eq!(t.b.pull(&sp, 0, None).await.unwrap().records.len(), 20);
    drop(s.child);
    let dump = db.dump();
    assert!(
        memchr::memmem::find(&dump, visible.as_bytes()).is_some(),
        "the dump must hold the plaintext-allowed field (else it scanned nothing)"
    );
    assert!(
        memchr::memmem::find(&dump, canary.as_bytes()).is_none(),
        "the canary plaintext is in the server's database"
    );
    assert!(memchr::memmem::find(&dump, &key).is_none());
}

/// Pushes to one space at once from a member, a viewer, an outsider and
/// a stale writer (PostgreSQL commits them in shared batches): each gets its
/// own outcome, and only the member's records are stored.
async fn concurrent_pushes_keep_their_own_outcomes(db: &Db) {
    let s = Server::start(&db.url());
    let t = team(&s).await;
    let sp = t.org.space();
    let base = record(&sp, &t.alice, "shared", 0, r#"{"name":"v1"}"#, vec![]);
    t.a.push(&sp, vec![base]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let jobs = [
            (
                t.a.clone(),
                record(
                    &sp,
                    &t.alice,
                    &format!("a{i}"),
                    0,
                    r#"{"name":"a"}"#,
                    vec![],
                ),
                "member",
            ),
            (
                t.b.clone(),
                record(&sp, &t.bob, &format!("b{i}"), 0, r#"{"name":"b"}"#, vec![]),
                "member",
            ),
            (
                t.c.clone(),
                record(
                    &sp,
                    &t.carol,
                    &format!("c{i}"),
                    0,
                    r#"{"name":"c"}"#,
                    vec![],
                ),
                "viewer",
            ),
            (
                t.m.clone(),
                record(
                    &sp,
                    &t.mallory,
                    &format!("m{i}"),
                    0,
                    r#"{"name":"m"}"#,
                    vec![],
                ),
                "outsider",
            ),
            // Based on revision 0 of a record at revision 1: a conflict.
            (
                t.b.clone(),
                record(&sp, &t.bob, "shared", 0, r#"{"name":"stale"}"#, vec![]),
                "stale",
            ),
        ];
        for (client, r, who) in jobs {
            let sp = sp.clone();
            tasks.push(tokio::spawn(async move {
                (who, client.push(&sp, vec![r]).await)
            }));
        }
    }
    for task in tasks {
        match task.await.unwrap() {
            ("member", Ok(p)) => {
                assert!(matches!(p.results[0], PushResult::Accepted { .. }), "{p:?}")
            }
            ("stale", Ok(p)) => {
                assert!(
                    matches!(
                        p.results[0],
                        PushResult::Conflict {
                            current_revision: 1,
                            ..
                        }
                    ),
                    "{p:?}"
                )
            }
            ("viewer", Err(e)) => assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}"),
            ("outsider", Err(e)) => assert_eq!(e.code(), Some(ErrorCode::NotMember), "{e}"),
            (who, other) => panic!("{who}: {other:?}"),
        }
    }
    let pulled = t.a.pull(&sp, 0, None).await.unwrap().records;
    let ids: Vec<String> = pulled.iter().map(|r| r.record.id.to_string()).collect();
    assert_eq!(pulled.len(), 41, "{ids:?}");
    assert!(
        ids.iter()
            .all(|i| i == "shared" || i.starts_with('a') || i.starts_with('b')),
        "{ids:?}"
    );
    let shared = pulled
        .iter()
        .find(|r| r.record.id.as_str() == "shared")
        .unwrap();
    assert_eq!(shared.record.revision, 1);
    // Every accepted write got its own sequence number.
    let mut seqs: Vec<u64> = pulled.iter().map(|r| r.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 41);
}

/// A new device signs in with the passphrase AND the Secret Key: the sealed
/// key bundle is released only for the verifier both derive, wrong tries
/// are limited (one at a time, five per window, counted in the database),
/// and the database holds neither secret, nor the verifier, nor the bundle's
/// plaintext.
async fn key_bundle_needs_both_secrets(db: &Db) {
    use gatehouse_crypto::KdfParams;
    use gatehouse_crypto::two_secret::{SecretKey, derive, open_bundle, seal_bundle};
    use gatehouse_syncproto::limits::{BUNDLE_MAX_WRONG, MAX_BUNDLE_BYTES};
    use gatehouse_syncproto::{KdfParams as WireKdf, PutBundle};

    let s = Server::start(&db.url());
    let anon = s.client();
    let (alice, bob) = (acct("alice"), acct("bob"));
    let a = join(&anon, &alice).await;
    let b = join(&anon, &bob).await;
    // The server's floor (8 MiB) keeps the test quick; accounts use 19 MiB.
    let kdf = KdfParams {
        m_cost_kib: 8 * 1024,
        t_cost: 1,
        p_cost: 1,
    };
    let salt = random::<16>();
    let passphrase = format!("correct horse {}", hex(&random::<4>()));
    let secret = SecretKey::generate();
    let keys = derive(kdf, &salt, "alice", passphrase.as_bytes(), &secret).unwrap();
    let canary = format!("BUNDLE-CANARY-{}", hex(&random::<8>()));
    let wire_kdf = WireKdf {
        algorithm: "argon2id".into(),
        salt: Bytes(salt.to_vec()),
        m_kib: kdf.m_cost_kib,
        t: kdf.t_cost,
        p: kdf.p_cost,
    };
    let put = PutBundle {
        kdf: wire_kdf.clone(),
        verifier: Bytes(keys.verifier.to_vec()),
        bundle: Bytes(seal_bundle(&keys.bundle_key, "alice", canary.as_bytes())),
    };
    a.put_bundle(&put).await.unwrap();

    // Bad input: each refused, naming what was wrong; nothing stored.
    let mut bad = put.clone();
    bad.verifier = Bytes(vec![0; 31]);
    let (c, m) = code(a.put_bundle(&bad).await);
    assert!(
        c == ErrorCode::BadRequest && m.contains("verifier is 31 bytes"),
        "{m}"
    );
    for (field, k) in [
        (
            "algorithm",
            WireKdf {
                algorithm: "scrypt".into(),
                ..wire_kdf.clone()
            },
        ),
        (
            "m_kib",
            WireKdf {
                m_kib: 1024,
                ..wire_kdf.clone()
            },
        ),
        (
            "salt",
            WireKdf {
                salt: Bytes(vec![1; 4]),
                ..wire_kdf.clone()
            },
        ),
    ] {
        let mut bad = put.clone();
        bad.kdf = k;
        let (c, m) = code(a.put_bundle(&bad).await);
        assert!(
            c == ErrorCode::BadRequest && m.contains(field),
            "{field}: {m}"
        );
    }
    let mut big = put.clone();
    big.bundle = Bytes(vec![7; MAX_BUNDLE_BYTES + 1]);
    let (c, m) = code(a.put_bundle(&big).await);
    assert!(
        c == ErrorCode::TooLarge && m.contains(&MAX_BUNDLE_BYTES.to_string()),
        "{m}"
    );
    assert_eq!(code(anon.put_bundle(&put).await).0, ErrorCode::Unauthorized);
    assert_eq!(
        code(anon.bundle_params("nobody").await).0,
        ErrorCode::NotFound
    );
    assert_eq!(
        code(anon.fetch_bundle("nobody", &[0; 32]).await).0,
        ErrorCode::NotFound
    );
    // Bob's session stores Bob's bundle, never Alice's.
    let mut bobs = put.clone();
    bobs.kdf.salt = Bytes(vec![9; 16]);
    assert_eq!(b.put_bundle(&bobs).await.unwrap().account.as_str(), "bob");
    assert_eq!(anon.bundle_params("alice").await.unwrap().kdf, wire_kdf);

    // A new device: public parameters, both secrets, the bundle opens.
    let p = anon.bundle_params("alice").await.unwrap();
    let device_kdf = KdfParams {
        m_cost_kib: p.kdf.m_kib,
        t_cost: p.kdf.t,
        p_cost: p.kdf.p,
    };
    let typed = SecretKey::parse(&secret.display().to_lowercase()).unwrap();
    let k2 = derive(
        device_kdf,
        &p.kdf.salt.0,
        "alice",
        passphrase.as_bytes(),
        &typed,
    )
    .unwrap();
    let got = anon.fetch_bundle("alice", &k2.verifier[..]).await.unwrap();
    assert_eq!(
        open_bundle(&k2.bundle_key, "alice", &got.bundle.0)
            .unwrap()
            .as_slice(),
        canary.as_bytes()
    );
    // The bundle does not open for another account, or with a flipped bit.
    assert!(open_bundle(&k2.bundle_key, "bob", &got.bundle.0).is_none());
    let mut flipped = got.bundle.0.clone();
    flipped[30] ^= 1;
    assert!(open_bundle(&k2.bundle_key, "alice", &flipped).is_none());

    // One secret alone is refused and counted.
    let wrong_secret = derive(
        device_kdf,
        &salt,
        "alice",
        passphrase.as_bytes(),
        &SecretKey::generate(),
    )
    .unwrap();
    let wrong_pass = derive(device_kdf, &salt, "alice", b"correct horse?", &secret).unwrap();
    let mut wrong = 0;
    for k in [&wrong_secret, &wrong_pass] {
        let (c, m) = code(anon.fetch_bundle("alice", &k.verifier[..]).await);
        assert!(
            c == ErrorCode::Unauthorized && m.contains("wrong passphrase or Secret Key"),
            "{m}"
        );
        wrong += 1;
    }
    // A burst of guesses at once: one try runs at a time, the rest wait.
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let anon = anon.clone();
            tokio::spawn(async move { anon.fetch_bundle("alice", &random::<32>()).await })
        })
        .collect();
    let mut waited = 0;
    for task in burst {
        match task.await.unwrap() {
            Err(ClientError::Api { error, .. }) if error.code == ErrorCode::Unauthorized => {
                wrong += 1
            }
            Err(ClientError::Api { error, .. }) if error.code == ErrorCode::RateLimited => {
                assert!(error.retry_after_ms.is_some(), "{error:?}");
                waited += 1;
            }
            other => panic!("a guess must be refused: {other:?}"),
        }
    }
    assert!(waited >= 1, "eight guesses at once all ran");
    // Then guesses until the window is full: exactly BUNDLE_MAX_WRONG ran.
    let limited = loop {
        match anon.fetch_bundle("alice", &random::<32>()).await {
            Err(ClientError::Api { error, .. }) if error.code == ErrorCode::Unauthorized => {
                wrong += 1
            }
            Err(ClientError::Api { error, .. }) if error.code == ErrorCode::RateLimited => {
                break error;
            }
            other => panic!("a guess must be refused: {other:?}"),
        }
        assert!(
            wrong <= BUNDLE_MAX_WRONG,
            "more than {BUNDLE_MAX_WRONG} wrong tries ran"
        );
    };
    assert_eq!(wrong, BUNDLE_MAX_WRONG);
    assert!(limited.retry_after_ms.unwrap() > 60_000, "{limited:?}");
    assert!(
        limited
            .message
            .contains("wrong passphrase or Secret Key tries"),
        "{limited:?}"
    );
    // While the window is full even the right secrets wait.
    assert_eq!(
        code(anon.fetch_bundle("alice", &k2.verifier[..]).await).0,
        ErrorCode::RateLimited
    );
    // Storing a new bundle (a signed-in device) starts the counters over.
    a.put_bundle(&put).await.unwrap();
    anon.fetch_bundle("alice", &k2.verifier[..]).await.unwrap();

    drop(s.child);
    let dump = db.dump();
    assert!(
        memchr::memmem::find(&dump, &got.bundle.0[..40]).is_some(),
        "the dump must hold the sealed bundle (else it scanned nothing)"
    );
    for (what, needle) in [
        ("the bundle's plaintext", canary.as_bytes().to_vec()),
        ("the verifier", keys.verifier.to_vec()),
        ("the verifier in hex", hex(&keys.verifier[..]).into_bytes()),
        ("the bundle key", keys.bundle_key.to_vec()),
        ("the passphrase", passphrase.clone().into_bytes()),
        ("the Secret Key", secret.display().as_bytes().to_vec()),
        ("the Secret Key's bytes", secret.as_bytes().to_vec()),
    ] {
        assert!(
            memchr::memmem::find(&dump, &needle).is_none(),
            "{what} is in the server's database"
        );
    }
}

/// The live-sharing relay: a sharer-signed list per epoch; frames only from
/// the sharer and the current participants, for the current epoch; a
/// participant revoked (a new epoch without them) can neither post nor read
/// anymore, and what they kept opens nothing sent after; a hostile or
/// careless put (another org's member, a forged list, a lower epoch, someone
/// else's channel) is refused; frames come back byte for byte.
async fn relay_carries_sealed_frames_only_for_the_current_list(db: &Db) {
    use gatehouse_membership::share::{
        Direction, FrameHeader, FrameKind, Invitee, ShareRole, SignedShareList, open_frame,
        seal_frame,
    };
    let s = Server::start(&db.url());
    let mut t = team(&s).await;
    let state = t.org.state().unwrap();
    let channel = format!("ch-{}", hex(&random::<8>()));
    let invitee = |a: &Acct, role| Invitee {
        account: a.name.clone(),
        role,
        agreement_key: a.card.card.agreement,
    };
    let seal_list = |epoch, inv: &[Invitee]| {
        SignedShareList::seal(
            &t.alice.seed,
            "alice",
            t.org.id.as_str(),
            &channel,
            "r1",
            epoch,
            inv,
        )
        .unwrap()
    };
    let (l1, k1) = seal_list(
        1,
        &[
            invitee(&t.bob, ShareRole::CoWorker),
            invitee(&t.carol, ShareRole::Viewer),
        ],
    );
    // Only the sharer puts its own list.
    let (c, m) = code(t.b.put_relay(&channel, l1.to_bytes()).await);
    assert_eq!(c, ErrorCode::Forbidden, "{m}");
    let info = t.a.put_relay(&channel, l1.to_bytes()).await.unwrap();
    assert_eq!(info.epoch, 1);
    assert_eq!(info.participants.len(), 2);
    // A participant gets the list byte for byte and opens their keys.
    let got = t.c.relay(&channel).await.unwrap();
    assert_eq!(got.list.0, l1.to_bytes());
    let carol_keys = SignedShareList::from_bytes(&got.list.0)
        .unwrap()
        .open(&state, "carol", &t.carol.agreement, None)
        .unwrap();
    // An outsider sees nothing of the channel.
    assert_eq!(code(t.m.relay(&channel).await).0, ErrorCode::Forbidden);
    assert_eq!(
        code(t.m.frames(&channel, 0, 0).await).0,
        ErrorCode::Forbidden
    );
    // Output from the sharer, long-polled by carol: woken by the post, byte for byte.
    let header = |sender: &str, epoch, direction, kind, counter| FrameHeader {
        channel: channel.clone(),
        epoch,
        sender: String::from(sender),
        direction,
        kind,
        counter,
        nonce: [0; 24],
    };
    let out = seal_frame(
        &k1.broadcast,
        header("alice", 1, Direction::ToParticipants, FrameKind::Output, 1),
        b"r1> ",
    )
    .unwrap();
    let waiting = {
        let c = t.c.clone();
        let ch = channel.clone();
        tokio::spawn(async move { c.frames(&ch, 0, 20_000).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seq = t.a.send_frame(&channel, 1, out.clone()).await.unwrap();
    let woke = waiting.await.unwrap().unwrap();
    assert_eq!(woke.frames.len(), 1);
    assert_eq!(woke.frames[0].seq, seq);
    assert_eq!(woke.frames[0].sender.as_str(), "alice");
    assert_eq!(woke.frames[0].body.0, out);
    let (_, body) = open_frame(&carol_keys.broadcast, &woke.frames[0].body.0).unwrap();
    assert_eq!(body.as_slice(), b"r1> ");
    // A participant's input, sealed under their own key: the sharer opens it.
    let typed = seal_frame(
        &k1.input["bob"],
        header("bob", 1, Direction::ToSharer, FrameKind::Input, 1),
        b"show clock\r",
    )
    .unwrap();
    t.b.send_frame(&channel, 1, typed).await.unwrap();
    let all = t.a.frames(&channel, 0, 0).await.unwrap();
    assert_eq!(all.frames.len(), 2);
    assert!(open_frame(&k1.input["bob"], &all.frames[1].body.0).is_ok());
    // Oversized and outsider frames are refused.
    let (c, m) = code(
        t.b.send_frame(
            &channel,
            1,
            vec![0; gatehouse_syncproto::limits::MAX_RELAY_FRAME_BYTES + 1],
        )
        .await,
    );
    assert_eq!(c, ErrorCode::TooLarge, "{m}");
    assert_eq!(
        code(t.m.send_frame(&channel, 1, vec![1; 64]).await).0,
        ErrorCode::Forbidden
    );

    // carol revoked: epoch 2, bob only.
    let (l2, k2) = seal_list(2, &[invitee(&t.bob, ShareRole::CoWorker)]);
    t.a.put_relay(&channel, l2.to_bytes()).await.unwrap();
    // The old list again (a replay), or a lower epoch: refused.
    let (c, m) = code(t.a.put_relay(&channel, l1.to_bytes()).await);
    assert_eq!(c, ErrorCode::Conflict, "{m}");
    assert!(m.contains("higher"), "{m}");
    // carol can neither read nor post; bob's frames for the old epoch are refused.
    assert_eq!(
        code(t.c.frames(&channel, 0, 0).await).0,
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(t.c.send_frame(&channel, 1, vec![1; 64]).await).0,
        ErrorCode::Forbidden
    );
    let (c, m) = code(t.b.send_frame(&channel, 1, vec![1; 64]).await);
    assert_eq!(c, ErrorCode::Forbidden);
    assert!(m.contains("epoch 2"), "{m}");
    // What carol kept opens nothing sent after.
    let after = seal_frame(
        &k2.broadcast,
        header("alice", 2, Direction::ToParticipants, FrameKind::Output, 1),
        b"after revocation",
    )
    .unwrap();
    t.a.send_frame(&channel, 2, after.clone()).await.unwrap();
    assert!(open_frame(&carol_keys.broadcast, &after).is_err());

    // Lists the server refuses: a forged signature, a participant from
    // outside the org, someone else's channel.
    let mut forged = l2.clone();
    forged.list.epoch = 3;
    let (c, m) = code(t.a.put_relay(&channel, forged.to_bytes()).await);
    assert_eq!(c, ErrorCode::BadSignature, "{m}");
    let (with_mallory, _) = seal_list(3, &[invitee(&t.mallory, ShareRole::Viewer)]);
    let (c, m) = code(t.a.put_relay(&channel, with_mallory.to_bytes()).await);
    assert_eq!(c, ErrorCode::BadSignature, "{m}");
    assert!(m.contains("mallory"), "{m}");
    let (bobs, _) = SignedShareList::seal(
        &t.bob.seed,
        "bob",
        t.org.id.as_str(),
        &channel,
        "r1",
        9,
        &[invitee(&t.carol, ShareRole::Viewer)],
    )
    .unwrap();
    let (c, m) = code(t.b.put_relay(&channel, bobs.to_bytes()).await);
    assert_eq!(c, ErrorCode::Conflict, "{m}");
    assert!(m.contains("another sharer"), "{m}");
    let (c, m) = code(t.a.put_relay(&channel, vec![1, 2, 3]).await);
    assert_eq!(c, ErrorCode::BadRequest, "{m}");
    let _ = &mut t;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! suite {
    ($backend:ident, $db:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn roles_cas_pull_and_removal() {
                super::roles_cas_pull_and_removal(&$db).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn bad_input_is_refused_clearly() {
                super::bad_input_is_refused_clearly(&$db).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn concurrent_pushes_keep_their_own_outcomes() {
                super::concurrent_pushes_keep_their_own_outcomes(&$db).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn key_bundle_needs_both_secrets() {
                super::key_bundle_needs_both_secrets(&$db).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn relay_carries_sealed_frames_only_for_the_current_list() {
                super::relay_carries_sealed_frames_only_for_the_current_list(&$db).await
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn dump_holds_no_canary_plaintext() {
                super::dump_holds_no_canary_plaintext(&$db).await
            }
        }
    };
}

suite!(sqlite, Db::sqlite());
suite!(postgres, Db::postgres());

/// Two server processes on one PostgreSQL database serve one org: a push to
/// one is pulled from the other, a long-poll on one wakes on a push to the
/// other (LISTEN/NOTIFY), and the sequence is shared.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_postgres_database() {
    let db = Db::postgres();
    let s1 = Server::start(&db.url());
    let s2 = Server::start(&db.url());
    assert_eq!(
        s1.client().info().await.unwrap().server_id,
        s2.client().info().await.unwrap().server_id
    );
    // Set up through server 1; sign in on server 2 (sessions live in the database).
    let t = team(&s1).await;
    let b2 = s2
        .client()
        .sign_in("bob", "desktop", &t.bob.seed)
        .await
        .unwrap();
    let sp = t.org.space();
    let r = record(
        &sp,
        &t.alice,
        "h1",
        0,
        r#"{"name":"shared"}"#,
        vec![("password", vec![9; 40])],
    );
    t.a.push(&sp, vec![r.clone()]).await.unwrap();
    let got = b2.pull(&sp, 0, None).await.unwrap();
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].record, r);

    // A wait on server 2 wakes on a push through server 1.
    let waiter = {
        let (b2, sp) = (b2.clone(), sp.clone());
        tokio::spawn(async move { b2.wait(&sp, 1, 20_000).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r2 = record(&sp, &t.alice, "h2", 0, r#"{"name":"two"}"#, vec![]);
    t.a.push(&sp, vec![r2]).await.unwrap();
    let w = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the wait on server 2 did not wake")
        .unwrap();
    assert!(w.changed && w.head_seq == 2, "{w:?}");

    // Concurrent pushes through both servers: every seq used once, none lost.
    let a1 = t.a.clone();
    let a2 = s2
        .client()
        .sign_in("alice", "phone", &t.alice.seed)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (n, c) in [(0, a1), (1, a2)] {
        let sp = sp.clone();
        let recs: Vec<RecordEnvelope> = (0..25)
            .map(|i| {
                record(
                    &sp,
                    &t.alice,
                    &format!("x{n}-{i}"),
                    0,
                    r#"{"name":"x"}"#,
                    vec![],
                )
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for r in recs {
                match c.push(&sp, vec![r]).await.unwrap().results[0] {
                    PushResult::Accepted { seq } => seqs.push(seq),
                    ref o => panic!("{o:?}"),
                }
            }
            seqs
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (3..=52).collect::<Vec<u64>>());
    // The same record CAS'd through both servers at once: exactly one wins.
    let base = record(&sp, &t.alice, "race", 0, r#"{"name":"r"}"#, vec![]);
    t.a.push(&sp, vec![base]).await.unwrap();
    let e1 = record(&sp, &t.alice, "race", 1, r#"{"name":"one"}"#, vec![]);
    let e2 = record(&sp, &t.alice, "race", 1, r#"{"name":"two"}"#, vec![]);
    let a2 = s2
        .client()
        .sign_in("alice", "tablet", &t.alice.seed)
        .await
        .unwrap();
    let (x, y) = tokio::join!(t.a.push(&sp, vec![e1]), a2.push(&sp, vec![e2]));
    let wins = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|p| matches!(p.results[0], PushResult::Accepted { .. }))
        .count();
    assert_eq!(wins, 1);
    let _ = (&t.carol, &t.mallory, &t.c, &t.m, &t.b);
}
