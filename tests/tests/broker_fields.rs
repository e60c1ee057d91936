//! Field crypto through a real broker, attacked from outside: ciphertexts
//! moved to another record, field, kind, binding, org or scope; every bit
//! flip; every truncation; batches with one bad item; sign-out; throttled
//! wrong passphrases. Every failure is checked for its exact error.

use std::time::Duration;

use anyhow::{Result, bail};
use gatehouse_ipc::broker::{
    BrokerError, BrokerRequest, BrokerResponse, FieldAddress, KeyScope, OpenFailure, OpenItem,
    OrgInfo, SealItem,
};
use gatehouse_ipc::{PeerRole, SecretBytes};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};

const PASSPHRASE: &[u8] = b"fields-test-passphrase";

fn ok(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerResponse> {
    Ok(serde_json::from_value(p.ok(req)?)?)
}

fn err(p: &mut Peer, req: &BrokerRequest) -> Result<BrokerError> {
    Ok(serde_json::from_value(p.err(req)?)?)
}

/// A broker with an account, signed in, and a ui peer (a person's tool).
fn signed_in() -> Result<(BrokerFixture, Peer)> {
    let f = BrokerFixture::start(Options::default())?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ok(
        &mut ui,
        &BrokerRequest::AccountInit {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
        },
    )?;
    Ok((f, ui))
}

fn sign_in(p: &mut Peer) -> Result<()> {
    let r = ok(
        p,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    assert!(matches!(r, BrokerResponse::SignedIn { .. }), "{r:?}");
    Ok(())
}

fn org(p: &mut Peer, name: &str) -> Result<OrgInfo> {
    match ok(p, &BrokerRequest::OrgCreate { name: name.into() })? {
        BrokerResponse::Org(o) => Ok(o),
        other => bail!("OrgCreate: {other:?}"),
    }
}

fn addr(scope: KeyScope, record_id: &str, field: &str) -> FieldAddress {
    FieldAddress {
        scope,
        record_kind: "host".into(),
        record_id: record_id.into(),
        field: field.into(),
        binding: b"10.0.0.1:22 admin SHA256:abc".to_vec(),
    }
}

fn seal_many(p: &mut Peer, items: &[(FieldAddress, Vec<u8>)]) -> Result<Vec<Vec<u8>>> {
    let req = BrokerRequest::SealFields {
        items: items
            .iter()
            .map(|(a, pt)| SealItem {
                address: a.clone(),
                plaintext: SecretBytes::copy_from(pt),
            })
            .collect(),
    };
    match ok(p, &req)? {
        BrokerResponse::Sealed(v) => Ok(v.into_iter().map(|s| s.0).collect()),
        other => bail!("SealFields: {other:?}"),
    }
}

fn seal(p: &mut Peer, a: &FieldAddress, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut v = seal_many(p, &[(a.clone(), plaintext.to_vec())])?;
    assert_eq!(v.len(), 1);
    Ok(v.remove(0))
}

fn open_req(items: &[(FieldAddress, Vec<u8>)]) -> BrokerRequest {
    BrokerRequest::OpenFields {
        items: items
            .iter()
            .map(|(a, s)| OpenItem {
                address: a.clone(),
                sealed: s.clone(),
            })
            .collect(),
    }
}

/// Opens one field: the plaintext, or the broker error.
fn open(p: &mut Peer, a: &FieldAddress, sealed: &[u8]) -> Result<Result<Vec<u8>, BrokerError>> {
    let v = p.call(&open_req(&[(a.clone(), sealed.to_vec())]))?;
    if let Some(e) = v.get("err") {
        return Ok(Err(serde_json::from_value(e.clone())?));
    }
    match v.get("ok").map(|o| serde_json::from_value(o.clone())) {
        Some(Ok(BrokerResponse::Opened(mut items))) if items.len() == 1 => {
            Ok(Ok(items.remove(0).expose().to_vec()))
        }
        _ => bail!("OpenFields: unexpected reply {v}"),
    }
}

/// Asserts an open of `sealed` at `a` fails with exactly `failure`, naming `a`.
fn assert_open_fails(
    p: &mut Peer,
    a: &FieldAddress,
    sealed: &[u8],
    failure: OpenFailure,
    what: &str,
) -> Result<()> {
    match open(p, a, sealed)? {
        Err(BrokerError::OpenFailed {
            address,
            failure: got,
        }) => {
            assert_eq!(got, failure, "{what}: failure kind");
            assert!(
                address.contains(&a.record_id) && address.contains(&a.field),
                "{what}: error address {address:?} does not name record {} field {}",
                a.record_id,
                a.field
            );
            assert_eq!(address, a.to_string(), "{what}: address");
        }
        Err(other) => panic!("{what}: expected OpenFailed({failure:?}), got {other:?}"),
        Ok(_) => panic!("{what}: opened (expected {failure:?})"),
    }
    Ok(())
}

fn key_id(o: &OrgInfo) -> [u8; 8] {
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&o.key_id[2 * i..2 * i + 2], 16).expect("hex key id");
    }
    id
}

#[test]
fn a_moved_ciphertext_never_opens() -> Result<()> {
    let (_f, mut ui) = signed_in()?;
    let a = org(&mut ui, "acme")?;
    let b = org(&mut ui, "globex")?;
    assert_ne!(a.key_id, b.key_id);
    let home = addr(KeyScope::Org(a.id.clone()), "rec-1", "ssh.password");
    let secret = b"correct horse battery staple".to_vec();
    let sealed = seal(&mut ui, &home, &secret)?;
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_slice()),
        "ciphertext contains the plaintext"
    );
    // Header: version 1, then the org's key id.
    assert_eq!(sealed[0], 1);
    assert_eq!(sealed[1..9], key_id(&a));
    assert_eq!(open(&mut ui, &home, &sealed)?, Ok(secret.clone()));
    // Sealing twice gives different ciphertexts (fresh nonce), both open.
    let again = seal(&mut ui, &home, &secret)?;
    assert_ne!(again, sealed);
    assert_eq!(open(&mut ui, &home, &again)?, Ok(secret.clone()));

    let moved = |f: &dyn Fn(&mut FieldAddress)| {
        let mut m = home.clone();
        f(&mut m);
        m
    };
    // Same key, other place: the associated data differs → Tampered.
    for (what, to) in [
        ("other record id", moved(&|m| m.record_id = "rec-2".into())),
        (
            "other field",
            moved(&|m| m.field = "enable.password".into()),
        ),
        (
            "other record kind",
            moved(&|m| m.record_kind = "vault".into()),
        ),
        (
            "other binding",
            moved(&|m| m.binding = b"10.6.6.6:22 admin SHA256:abc".to_vec()),
        ),
        ("empty binding", moved(&|m| m.binding.clear())),
        ("binding one byte longer", moved(&|m| m.binding.push(b' '))),
        // Length prefixes: moving a byte between record id and field must not collide.
        (
            "record/field boundary shifted",
            moved(&|m| {
                m.record_id = "rec-1s".into();
                m.field = "sh.password".into();
            }),
        ),
    ] {
        assert_open_fails(&mut ui, &to, &sealed, OpenFailure::Tampered, what)?;
    }
    // Another org, or the private scope: the key id names a key that scope
    // does not have → UnknownKey.
    let other_org = moved(&|m| m.scope = KeyScope::Org(b.id.clone()));
    assert_open_fails(
        &mut ui,
        &other_org,
        &sealed,
        OpenFailure::UnknownKey,
        "other org",
    )?;
    let private = moved(&|m| m.scope = KeyScope::Private);
    assert_open_fails(
        &mut ui,
        &private,
        &sealed,
        OpenFailure::UnknownKey,
        "private scope",
    )?;
    // An attacker who rewrites the key id to the other org's still fails:
    // the key id is authenticated and the key is wrong → Tampered.
    let mut relabelled = sealed.clone();
    relabelled[1..9].copy_from_slice(&key_id(&b));
    assert_open_fails(
        &mut ui,
        &other_org,
        &relabelled,
        OpenFailure::Tampered,
        "other org, key id rewritten",
    )?;
    // A scope naming no org of this account.
    let nowhere = moved(&|m| m.scope = KeyScope::Org("0000000000000000".into()));
    match open(&mut ui, &nowhere, &sealed)? {
        Err(BrokerError::NoSuchOrg(id)) => assert_eq!(id, "0000000000000000"),
        other => panic!("unknown org: {other:?}"),
    }

    // A private ciphertext moved into an org, and to another private record.
    let mine = addr(KeyScope::Private, "rec-p", "api.token");
    let psealed = seal(&mut ui, &mine, b"private-token-value")?;
    assert_eq!(
        open(&mut ui, &mine, &psealed)?,
        Ok(b"private-token-value".to_vec())
    );
    let mut into_org = mine.clone();
    into_org.scope = KeyScope::Org(a.id.clone());
    assert_open_fails(
        &mut ui,
        &into_org,
        &psealed,
        OpenFailure::UnknownKey,
        "private → org",
    )?;
    let mut other_rec = mine.clone();
    other_rec.record_id = "rec-q".into();
    assert_open_fails(
        &mut ui,
        &other_rec,
        &psealed,
        OpenFailure::Tampered,
        "private → other record",
    )?;
    // The original still opens after all the failures.
    assert_eq!(open(&mut ui, &home, &sealed)?, Ok(secret));
    Ok(())
}

#[test]
fn every_bit_flip_and_every_truncation_fails() -> Result<()> {
    let (_f, mut ui) = signed_in()?;
    let a = addr(KeyScope::Private, "rec-flip", "ssh.password");
    let sealed = seal(&mut ui, &a, b"pw!")?;
    // 1 version + 8 key id + 24 nonce + 3 ciphertext + 16 tag.
    assert_eq!(sealed.len(), 52);
    let mut checked = 0;
    for i in 0..sealed.len() {
        for bit in 0..8 {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1 << bit;
            let expect = match i {
                0 => OpenFailure::UnknownVersion,
                1..=8 => OpenFailure::UnknownKey,
                _ => OpenFailure::Tampered,
            };
            assert_open_fails(
                &mut ui,
                &a,
                &flipped,
                expect,
                &format!("bit {bit} of byte {i}"),
            )?;
            checked += 1;
        }
    }
    assert_eq!(checked, 52 * 8);
    for len in 0..sealed.len() {
        let expect = if len < 49 {
            OpenFailure::Truncated
        } else {
            OpenFailure::Tampered
        };
        assert_open_fails(
            &mut ui,
            &a,
            &sealed[..len],
            expect,
            &format!("truncated to {len}"),
        )?;
        // Cut from the front too: never opens (what it fails on depends on
        // which byte lands in the version position).
        let front = &sealed[sealed.len() - len..];
        match open(&mut ui, &a, front)? {
            Err(BrokerError::OpenFailed { failure, .. }) => {
                if len < 49 {
                    assert_eq!(failure, OpenFailure::Truncated, "front cut to {len}");
                }
            }
            other => panic!("front cut to {len}: {other:?}"),
        }
    }
    // One byte appended.
    let mut longer = sealed.clone();
    longer.push(0);
    assert_open_fails(&mut ui, &a, &longer, OpenFailure::Tampered, "appended byte")?;
    // The broker is not wedged, and the genuine ciphertext still opens.
    assert_eq!(open(&mut ui, &a, &sealed)?, Ok(b"pw!".to_vec()));
    Ok(())
}

#[test]
fn batches_round_trip_and_one_bad_item_fails_the_whole_batch() -> Result<()> {
    let (_f, mut ui) = signed_in()?;
    let o = org(&mut ui, "batch-org")?;
    let items: Vec<(FieldAddress, Vec<u8>)> = (0..60)
        .map(|i| {
            let scope = if i % 2 == 0 {
                KeyScope::Private
            } else {
                KeyScope::Org(o.id.clone())
            };
            let pt = format!("secret-value-{i}-").repeat(1 + i % 7).into_bytes();
            (
                addr(scope, &format!("rec-{i}"), &format!("field-{}", i % 3)),
                pt,
            )
        })
        .collect();
    let sealed = seal_many(&mut ui, &items)?;
    assert_eq!(sealed.len(), items.len());
    let opened_items: Vec<(FieldAddress, Vec<u8>)> = items
        .iter()
        .zip(&sealed)
        .map(|((a, _), s)| (a.clone(), s.clone()))
        .collect();
    match ok(&mut ui, &open_req(&opened_items))? {
        BrokerResponse::Opened(v) => {
            assert_eq!(v.len(), items.len());
            for (i, (got, (_, want))) in v.iter().zip(&items).enumerate() {
                assert_eq!(got.expose(), want.as_slice(), "item {i}");
            }
        }
        other => panic!("OpenFields: {other:?}"),
    }
    // Each ciphertext belongs to its own item: item 37 moved to another record.
    let mut bad = opened_items.clone();
    bad[37].0.record_id = "rec-elsewhere".into();
    match err(&mut ui, &open_req(&bad))? {
        BrokerError::OpenFailed { address, failure } => {
            assert_eq!(failure, OpenFailure::Tampered);
            assert_eq!(address, bad[37].0.to_string());
            assert!(address.contains("rec-elsewhere") && address.contains("field-1"));
        }
        other => panic!("batch with a moved item: {other:?}"),
    }
    // Two ciphertexts swapped: the first swapped item is named.
    let mut swapped = opened_items.clone();
    let (s10, s20) = (swapped[10].1.clone(), swapped[20].1.clone());
    swapped[10].1 = s20;
    swapped[20].1 = s10;
    match err(&mut ui, &open_req(&swapped))? {
        BrokerError::OpenFailed { address, failure } => {
            assert_eq!(failure, OpenFailure::Tampered);
            assert_eq!(address, swapped[10].0.to_string());
        }
        other => panic!("batch with swapped items: {other:?}"),
    }
    // The last item truncated: everything before it opened, yet nothing is returned.
    let mut last_bad = opened_items.clone();
    let n = last_bad.len() - 1;
    last_bad[n].1.truncate(10);
    match err(&mut ui, &open_req(&last_bad))? {
        BrokerError::OpenFailed { address, failure } => {
            assert_eq!(failure, OpenFailure::Truncated);
            assert_eq!(address, last_bad[n].0.to_string());
        }
        other => panic!("batch with a truncated last item: {other:?}"),
    }
    // A seal batch with one item for an org this account does not have: no ciphertexts at all.
    let mut seal_bad = items[..5].to_vec();
    seal_bad[3].0.scope = KeyScope::Org("ffffffffffffffff".into());
    let v = ui.call(&BrokerRequest::SealFields {
        items: seal_bad
            .iter()
            .map(|(a, p)| SealItem {
                address: a.clone(),
                plaintext: SecretBytes::copy_from(p),
            })
            .collect(),
    })?;
    let e: BrokerError = serde_json::from_value(v.get("err").cloned().unwrap_or_default())
        .unwrap_or_else(|_| panic!("seal batch with a bad scope: {v}"));
    assert_eq!(e, BrokerError::NoSuchOrg("ffffffffffffffff".into()));
    // The good batch still opens afterwards.
    assert!(matches!(
        ok(&mut ui, &open_req(&opened_items))?,
        BrokerResponse::Opened(v) if v.len() == items.len()
    ));
    Ok(())
}

#[test]
fn sign_out_locks_fields_and_sign_in_restores_them() -> Result<()> {
    let (mut f, mut ui) = signed_in()?;
    let o = org(&mut ui, "lock-org")?;
    let pa = addr(KeyScope::Private, "rec-lock", "ssh.password");
    let oa = addr(KeyScope::Org(o.id.clone()), "rec-lock", "ssh.password");
    let ps = seal(&mut ui, &pa, b"private-before-signout")?;
    let os = seal(&mut ui, &oa, b"org-before-signout")?;

    let report = match ok(&mut ui, &BrokerRequest::SignOut)? {
        BrokerResponse::SignedOut(r) => r,
        other => bail!("SignOut: {other:?}"),
    };
    assert!(report.keys_zeroized >= 5, "{report:?}"); // account, user, keychain, approval, org
    for (a, s) in [(&pa, &ps), (&oa, &os)] {
        assert_eq!(open(&mut ui, a, s)?, Err(BrokerError::SignedOut));
        assert_eq!(
            err(
                &mut ui,
                &BrokerRequest::SealFields {
                    items: vec![SealItem {
                        address: a.clone(),
                        plaintext: SecretBytes::copy_from(b"after"),
                    }],
                },
            )?,
            BrokerError::SignedOut
        );
    }
    // A daemon's seal is refused too (it may seal, but not while signed out).
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    assert_eq!(
        err(
            &mut sessiond,
            &BrokerRequest::SealFields {
                items: vec![SealItem {
                    address: pa.clone(),
                    plaintext: SecretBytes::copy_from(b"recording"),
                }],
            },
        )?,
        BrokerError::SignedOut
    );

    sign_in(&mut ui)?;
    assert_eq!(
        open(&mut ui, &pa, &ps)?,
        Ok(b"private-before-signout".to_vec())
    );
    assert_eq!(open(&mut ui, &oa, &os)?, Ok(b"org-before-signout".to_vec()));

    // The keys are the account's, not the process's: a restarted broker opens them too.
    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    assert_eq!(open(&mut ui, &pa, &ps)?, Err(BrokerError::SignedOut));
    sign_in(&mut ui)?;
    assert_eq!(
        open(&mut ui, &pa, &ps)?,
        Ok(b"private-before-signout".to_vec())
    );
    assert_eq!(open(&mut ui, &oa, &os)?, Ok(b"org-before-signout".to_vec()));
    Ok(())
}

fn wrong(p: &mut Peer) -> Result<BrokerError> {
    err(
        p,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(b"not-the-passphrase"),
            remember_device: false,
        },
    )
}

fn too_soon(e: &BrokerError) -> u64 {
    match e {
        BrokerError::TooSoon { retry_after_ms } => *retry_after_ms,
        other => panic!("expected TooSoon, got {other:?}"),
    }
}

#[test]
fn wrong_passphrases_are_throttled_with_a_growing_delay() -> Result<()> {
    let (mut f, mut ui) = signed_in()?;
    let a = addr(KeyScope::Private, "rec-t", "ssh.password");
    let sealed = seal(&mut ui, &a, b"throttled")?;
    ok(&mut ui, &BrokerRequest::SignOut)?;

    // Three free attempts; the third arms a 1 s delay.
    assert_eq!(
        wrong(&mut ui)?,
        BrokerError::WrongPassphrase {
            failures: 1,
            retry_after_ms: 0
        }
    );
    assert_eq!(
        wrong(&mut ui)?,
        BrokerError::WrongPassphrase {
            failures: 2,
            retry_after_ms: 0
        }
    );
    assert_eq!(
        wrong(&mut ui)?,
        BrokerError::WrongPassphrase {
            failures: 3,
            retry_after_ms: 1000
        }
    );
    // Within the delay every attempt is refused, the right passphrase included.
    let first = too_soon(&wrong(&mut ui)?);
    assert!(first > 0 && first <= 1000, "{first}");
    let right = err(
        &mut ui,
        &BrokerRequest::SignIn {
            passphrase: SecretBytes::copy_from(PASSPHRASE),
            remember_device: false,
        },
    )?;
    assert!(too_soon(&right) <= 1000);
    // A wrong attempt did not unlock anything.
    assert_eq!(open(&mut ui, &a, &sealed)?, Err(BrokerError::SignedOut));

    std::thread::sleep(Duration::from_millis(first + 100));
    assert_eq!(
        wrong(&mut ui)?,
        BrokerError::WrongPassphrase {
            failures: 4,
            retry_after_ms: 2000
        }
    );
    let second = too_soon(&wrong(&mut ui)?);
    assert!(
        second > first && second > 1000 && second <= 2000,
        "delay did not grow: {first} then {second}"
    );
    // The throttle survives a broker restart.
    f.start_broker()?;
    let mut ui = f.peer(PeerRole::Ui)?;
    let after_restart = too_soon(&wrong(&mut ui)?);
    assert!(after_restart <= 2000, "{after_restart}");

    std::thread::sleep(Duration::from_millis(after_restart + 100));
    sign_in(&mut ui)?;
    assert_eq!(open(&mut ui, &a, &sealed)?, Ok(b"throttled".to_vec()));
    // A success resets the count.
    ok(&mut ui, &BrokerRequest::SignOut)?;
    assert_eq!(
        wrong(&mut ui)?,
        BrokerError::WrongPassphrase {
            failures: 1,
            retry_after_ms: 0
        }
    );
    Ok(())
}
