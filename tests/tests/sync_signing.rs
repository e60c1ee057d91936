//! The broker's sync ops (issue 13, "Accounts and devices"): only syncd may
//! ask, and the broker signs with the account's identity key only a sync
//! server's device challenge for this account and a write of a record the
//! local store holds — never other bytes (it is no signing oracle). Real
//! broker, real peers identified by their executables.

use anyhow::{Context, Result};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{BrokerRequest, KeyScope, MacItem, VerifyItem};
use gatehouse_ipc::record_content::{self, FieldValue};
use gatehouse_ipc::sync_record;
use gatehouse_membership::auth::AuthChallenge;
use gatehouse_membership::envelope::content_hash;
use gatehouse_membership::{Scope, SignedCard, SignedWrite, WriteBody, sign};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn started() -> Result<BrokerFixture> {
    let f = BrokerFixture::start(Options::default())?;
    let out = f.cli(
        &["account", "init", "--passphrase-stdin"],
        "sync-sign-pass\n",
    )?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(f)
}

fn bytes_of(v: &serde_json::Value, variant: &str) -> Result<Vec<u8>> {
    serde_json::from_value(v[variant].clone()).with_context(|| format!("{variant} in {v}"))
}

/// The reason of a `SyncRefused` error (fails on anything else).
fn refusal(p: &mut Peer, req: &BrokerRequest) -> Result<String> {
    let e = p.err(req)?;
    e["SyncRefused"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("expected SyncRefused, got {e}"))
}

fn challenge(account: &str) -> AuthChallenge {
    AuthChallenge {
        server: "0123456789abcdef".into(),
        account: account.into(),
        device: "laptop".into(),
        nonce: vec![42; 32],
        time_ms: 1_700_000_000_000,
    }
}

/// A private host record, MACed by the broker for a person's tool (ui).
fn stored_host(f: &BrokerFixture, id: &str, password_ct: &[u8]) -> Result<VerifyItem> {
    let content = record_content::encode(
        "private",
        1,
        2,
        1,
        &[
            ("address", FieldValue::Plain(br#""192.0.2.7""#)),
            ("name", FieldValue::Plain(br#""core-sw1""#)),
            ("ssh.password", FieldValue::Sealed(password_ct)),
        ],
    );
    let item = MacItem {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: id.into(),
        content,
    };
    let mut ui = f.peer(PeerRole::Ui)?;
    let v = ui.ok(&BrokerRequest::MacRecords {
        items: vec![item.clone()],
    })?;
    let macs: Vec<Vec<u8>> = serde_json::from_value(v["Macs"].clone())?;
    Ok(VerifyItem {
        item,
        mac: macs.into_iter().next().context("one mac")?,
    })
}

fn write_for(record: &VerifyItem, account: &str) -> Result<WriteBody> {
    let wire = sync_record::to_wire(&record.item.content)?;
    Ok(WriteBody {
        scope: Scope::Private(account.into()),
        kind: record.item.record_kind.clone(),
        id: record.item.record_id.clone(),
        revision: 1,
        base_revision: 0,
        deleted: false,
        content: content_hash(
            &wire.plain,
            wire.sealed.iter().map(|(n, c)| (n.as_str(), c.as_slice())),
        ),
        generation: 0,
        log_head: 0,
        writer: account.into(),
    })
}

#[test]
fn the_card_names_the_account_once_and_is_self_signed() -> Result<()> {
    let f = started()?;
    let mut syncd = f.peer(PeerRole::Syncd)?;
    // Before the account has a name on sync servers, nothing is signed.
    let why = refusal(
        &mut syncd,
        &BrokerRequest::SyncSignChallenge {
            challenge: sign::encode(&challenge("alice")),
        },
    )?;
    assert!(why.contains("no name"), "{why}");

    let e = syncd.err(&BrokerRequest::SyncCard {
        account: "alice smith".into(),
    })?;
    assert!(e.to_string().contains("account name"), "{e}");

    let card = bytes_of(
        &syncd.ok(&BrokerRequest::SyncCard {
            account: "alice".into(),
        })?,
        "Card",
    )?;
    let card: SignedCard = sign::decode_exact("card", &card)?;
    assert!(card.verify(), "the card's self-signature verifies");
    assert_eq!(card.card.account, "alice");
    // The same card again; another name is refused (one name per account).
    let again = bytes_of(
        &syncd.ok(&BrokerRequest::SyncCard {
            account: "alice".into(),
        })?,
        "Card",
    )?;
    assert_eq!(sign::decode_exact::<SignedCard>("card", &again)?, card);
    let e = syncd.err(&BrokerRequest::SyncCard {
        account: "mallory".into(),
    })?;
    assert!(e.to_string().contains("not \\\"mallory\\\""), "{e}");

    // The card's keys are the account file's public halves.
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.home.join("state").join("account.json"))?)?;
    assert_eq!(
        account["account_keys"]["identity_public"],
        sign::hex(&card.card.identity)
    );
    assert_eq!(account["account_keys"]["sync_account"], "alice");
    Ok(())
}

#[test]
fn only_a_challenge_body_for_this_account_is_signed() -> Result<()> {
    let f = started()?;
    let mut syncd = f.peer(PeerRole::Syncd)?;
    let card = bytes_of(
        &syncd.ok(&BrokerRequest::SyncCard {
            account: "alice".into(),
        })?,
        "Card",
    )?;
    let card: SignedCard = sign::decode_exact("card", &card)?;

    let good = challenge("alice");
    let sig = bytes_of(
        &syncd.ok(&BrokerRequest::SyncSignChallenge {
            challenge: sign::encode(&good),
        })?,
        "Signature",
    )?;
    assert!(good.verify(&card.card.identity, &sig));
    // Signed under the challenge's domain: not a record write's signature.
    assert!(!sign::verify(
        &card.card.identity,
        sign::DOMAIN_WRITE,
        &good,
        &sig
    ));

    let record = stored_host(&f, "h1", &[9; 40])?;
    let write = write_for(&record, "alice")?;
    let mut trailing = sign::encode(&good);
    trailing.push(0);
    let mut short_nonce = good.clone();
    short_nonce.nonce.pop();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "arbitrary bytes",
            b"sign me, please".to_vec(),
            "not a device challenge",
        ),
        ("empty", Vec::new(), "not a device challenge"),
        // A valid body of another kind is still not a challenge.
        (
            "a record write",
            sign::encode(&write),
            "not a device challenge",
        ),
        ("trailing bytes", trailing, "trailing"),
        (
            "another account",
            sign::encode(&challenge("mallory")),
            "\"mallory\"",
        ),
        ("a short nonce", sign::encode(&short_nonce), "nonce"),
    ];
    for (what, bytes, needle) in cases {
        let why = refusal(
            &mut syncd,
            &BrokerRequest::SyncSignChallenge { challenge: bytes },
        )?;
        assert!(why.contains(needle), "{what}: {why}");
    }

    // Every other role is refused before anything is checked, by name.
    for role in [PeerRole::Ui, PeerRole::Sessiond, PeerRole::Copilotd] {
        let mut p = f.peer(role)?;
        for req in [
            BrokerRequest::SyncSignChallenge {
                challenge: sign::encode(&good),
            },
            BrokerRequest::SyncCard {
                account: "alice".into(),
            },
            BrokerRequest::SyncSignWrite {
                record: Box::new(record.clone()),
                write: sign::encode(&write),
            },
        ] {
            let e = p.err(&req)?;
            assert_eq!(e["Forbidden"]["role"], role.as_str(), "{role}: {e}");
            assert_eq!(
                e["Forbidden"]["operation"],
                serde_json::to_value(req.operation())?,
                "{role}: {e}"
            );
        }
    }
    // The CLI is a person's tool: it reaches the server through syncd.
    let out = f.cli(&["status"], "")?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}

#[test]
fn only_writes_of_stored_records_are_signed() -> Result<()> {
    let f = started()?;
    let mut syncd = f.peer(PeerRole::Syncd)?;
    let card = bytes_of(
        &syncd.ok(&BrokerRequest::SyncCard {
            account: "alice".into(),
        })?,
        "Card",
    )?;
    let card: SignedCard = sign::decode_exact("card", &card)?;
    let record = stored_host(&f, "h1", &[9; 40])?;
    let other = stored_host(&f, "h2", &[8; 40])?;
    let write = write_for(&record, "alice")?;

    let sign_write = |syncd: &mut Peer, record: &VerifyItem, body: &WriteBody| {
        syncd.call(&BrokerRequest::SyncSignWrite {
            record: Box::new(record.clone()),
            write: sign::encode(body),
        })
    };
    let v = sign_write(&mut syncd, &record, &write)?;
    let sig = bytes_of(&v["ok"], "Signature")?;
    let signed = SignedWrite {
        body: write.clone(),
        signature: sig,
    };
    assert!(signed.verify(&card.card.identity));

    // A tombstone of a stored record: the empty content.
    let mut tomb = write.clone();
    tomb.deleted = true;
    tomb.revision = 2;
    tomb.base_revision = 1;
    tomb.content = content_hash("", []);
    assert!(sign_write(&mut syncd, &record, &tomb)?.get("ok").is_some());

    // Each refused, with why.
    let mut forged_content = write.clone();
    forged_content.content = write_for(&other, "alice")?.content;
    let mut other_writer = write.clone();
    other_writer.writer = "mallory".into();
    let mut other_scope = write.clone();
    other_scope.scope = Scope::Org("acme".into());
    let mut other_private = write.clone();
    other_private.scope = Scope::Private("bob".into());
    let mut other_id = write.clone();
    other_id.id = "h2".into();
    let mut generation = write.clone();
    generation.generation = 3;
    let cases: Vec<(&str, &VerifyItem, WriteBody, &str)> = vec![
        (
            "content not the stored record's",
            &record,
            forged_content,
            "content hash",
        ),
        ("another writer", &record, other_writer, "\"mallory\""),
        (
            "an org scope for a private record",
            &record,
            other_scope,
            "is for",
        ),
        (
            "another account's private space",
            &record,
            other_private,
            "is for",
        ),
        ("another record id", &record, other_id, "h2"),
        (
            "a key generation on a private record",
            &record,
            generation,
            "generation",
        ),
    ];
    for (what, rec, body, needle) in cases {
        let why = refusal(
            &mut syncd,
            &BrokerRequest::SyncSignWrite {
                record: Box::new(rec.clone()),
                write: sign::encode(&body),
            },
        )?;
        assert!(why.contains(needle), "{what}: {why}");
    }

    // A record the local store does not hold (its MAC does not verify),
    // with the content hash computed from the forged content.
    let mut forged = record.clone();
    forged.item.content = record_content::encode(
        "private",
        1,
        2,
        1,
        &[("address", FieldValue::Plain(br#""203.0.113.66""#))],
    );
    let body = write_for(&forged, "alice")?;
    let e = syncd.err(&BrokerRequest::SyncSignWrite {
        record: Box::new(forged),
        write: sign::encode(&body),
    })?;
    assert!(e.to_string().contains("integrity"), "{e}");

    // Bytes that are not a write body, including a valid challenge.
    for bytes in [b"not a write".to_vec(), sign::encode(&challenge("alice"))] {
        let why = refusal(
            &mut syncd,
            &BrokerRequest::SyncSignWrite {
                record: Box::new(record.clone()),
                write: bytes,
            },
        )?;
        assert!(why.contains("not a record write"), "{why}");
    }
    Ok(())
}

#[test]
fn signed_out_nothing_is_signed() -> Result<()> {
    let f = started()?;
    let mut syncd = f.peer(PeerRole::Syncd)?;
    syncd.ok(&BrokerRequest::SyncCard {
        account: "alice".into(),
    })?;
    let out = f.cli(&["signout"], "")?;
    assert!(out.status.success(), "{}", text(&out));
    let e = syncd.err(&BrokerRequest::SyncSignChallenge {
        challenge: sign::encode(&challenge("alice")),
    })?;
    assert!(e.to_string().contains("SignedOut"), "{e}");
    Ok(())
}
