//! Keys and secrets in memory, seen by root: the account and org keys are in
//! no Gatehouse process's readable memory (memfd_secret), and after sign-out
//! the broker holds none of the secrets it handled.

use anyhow::{Context, Result};
use base64::Engine as _;
use gatehouse_broker::crypto::{KdfParams, derive_account_key, unwrap_key_into};
use gatehouse_ipc::broker::{
    BrokerRequest, FieldAddress, KeyScope, OpenItem, SealItem, SecretKind,
};
use gatehouse_ipc::{PeerRole, SecretBytes};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::{scan_process, users};

const PASSPHRASE: &[u8] = b"memory-test-passphrase";

fn b64(s: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap_or_default())
        .expect("base64 in account.json")
}

/// Every process running a binary from the fixture's install dir (broker,
/// its exe-resolver helper, peers).
fn gatehouse_pids(f: &BrokerFixture) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
            && exe.parent() == Some(f.install_dir())
        {
            out.push((pid, exe.file_name().unwrap().to_string_lossy().to_string()));
        }
    }
    out
}

fn skip_unless_root(test: &str) -> bool {
    if !users::is_root() {
        println!("SKIPPED {test}: scanning other processes' memory needs root");
        return true;
    }
    false
}

#[test]
fn keys_are_unreadable_even_to_root() -> Result<()> {
    if skip_unless_root("keys_are_unreadable_even_to_root") {
        return Ok(());
    }
    let f = BrokerFixture::start(Options::default())?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ui.ok(&BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(PASSPHRASE),
    })?;
    let org = ui.ok(&BrokerRequest::OrgCreate {
        name: "mem-org".into(),
    })?;
    let org_id = org["Org"]["id"].as_str().context("org id")?.to_string();
    // Use the keys: seal and open through the org key and the private key.
    for scope in [KeyScope::Org(org_id.clone()), KeyScope::Private] {
        let address = FieldAddress {
            scope,
            record_kind: "host".into(),
            record_id: "h".into(),
            field: "f".into(),
            binding: vec![],
        };
        let sealed = ui.ok(&BrokerRequest::SealFields {
            items: vec![SealItem {
                address: address.clone(),
                plaintext: SecretBytes::copy_from(b"plain"),
            }],
        })?;
        let bytes: Vec<u8> = serde_json::from_value(sealed["Sealed"][0].clone())?;
        ui.ok(&BrokerRequest::OpenFields {
            items: vec![OpenItem {
                address,
                sealed: bytes,
            }],
        })?;
    }

    // Compute the keys ourselves from what is on disk and the passphrase.
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.home.join("state/account.json"))?)?;
    let kdf: KdfParams = serde_json::from_value(account["kdf"].clone())?;
    let mut account_key = [0u8; 32];
    derive_account_key(kdf, PASSPHRASE, &b64(&account["salt"]), &mut account_key)
        .map_err(anyhow::Error::msg)?;
    let mut keys: Vec<(&str, [u8; 32])> = vec![("account key", account_key)];
    for (name, purpose, wrapped) in [
        ("user key", "user".to_string(), b64(&account["user_key"])),
        (
            "approval key",
            "approval".to_string(),
            b64(&account["approval_seed"]),
        ),
        (
            "org key",
            format!("org:{org_id}"),
            b64(&account["orgs"][0]["wrapped"]),
        ),
    ] {
        let mut k = [0u8; 32];
        // Unwrapping succeeds only with the real account key: our computation is right.
        assert!(
            unwrap_key_into(&account_key, &purpose, &wrapped, &mut k),
            "{name} does not unwrap"
        );
        keys.push((name, k));
    }
    let needles: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_slice()).collect();

    // Control: the scanner finds these exact bytes where they are readable (our own memory).
    let own = scan_process(std::process::id(), &needles)?;
    assert!(
        own.found(0) && own.found(3),
        "scanner control failed: cannot find the keys in the test process"
    );

    let procs = gatehouse_pids(&f);
    assert!(
        procs.iter().any(|(p, _)| *p == f.broker_pid()),
        "broker not among {procs:?}"
    );
    assert!(
        procs.len() >= 3,
        "expected broker, its helper and a peer: {procs:?}"
    );
    for (pid, name) in &procs {
        let r = scan_process(*pid, &needles)?;
        let maps = gatehouse_sandbox::memscan::read_maps(*pid)?;
        for h in &r.hits {
            let m = maps.iter().find(|m| m.contains(h.address));
            eprintln!(
                "HIT {} in {name}: {:#x} map {:?}",
                keys[h.needle].0,
                h.address,
                m.map(|m| (m.start, m.end, m.end - m.start))
            );
        }
        if let Some(h) = r.hits.first() {
            panic!(
                "{} found in {name} (pid {pid}) at {:#x} in {:?} {}",
                keys[h.needle].0, h.address, h.mapping, h.perms
            );
        }
        if *pid == f.broker_pid() {
            let (kind, why) = gatehouse_sandbox::secret_mem::probe_memory_kind();
            if kind == gatehouse_sandbox::secret_mem::MemoryKind::MemfdSecret {
                assert!(
                    r.eio_regions().count() > 0,
                    "broker has no memfd_secret pages unreadable to root: {:?}",
                    r.unreadable
                );
            } else {
                println!(
                    "memfd_secret unavailable on this kernel ({why:?}): checking the mlock fallback instead"
                );
                let locked = gatehouse_tests::proc::status_field(*pid, "VmLck")?;
                assert_ne!(locked.trim(), "0 kB", "keys are not in locked memory");
            }
            println!(
                "broker: {} bytes scanned, {} bytes unreadable to root",
                r.bytes_scanned, r.bytes_unreadable
            );
        }
    }
    Ok(())
}

#[test]
fn sign_out_leaves_no_secret_in_the_broker_and_sign_in_restores() -> Result<()> {
    if skip_unless_root("sign_out_leaves_no_secret_in_the_broker_and_sign_in_restores") {
        return Ok(());
    }
    let f = BrokerFixture::start(Options::default())?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ui.ok(&BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(PASSPHRASE),
    })?;
    // Remember the device so that there is unlock material to purge.
    ui.ok(&BrokerRequest::SignIn {
        passphrase: SecretBytes::copy_from(PASSPHRASE),
        remember_device: true,
    })?;
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let payload = format!("CANARY-KEYCHAIN-{tag}");
    let plain = format!("CANARY-FIELD-{tag}");
    ui.ok(&BrokerRequest::KeychainSet {
        name: "canary".into(),
        kind: SecretKind::Password,
        payload: SecretBytes::copy_from(payload.as_bytes()),
    })?;
    let address = FieldAddress {
        scope: KeyScope::Private,
        record_kind: "host".into(),
        record_id: "c".into(),
        field: "ssh.password".into(),
        binding: vec![],
    };
    let sealed = ui.ok(&BrokerRequest::SealFields {
        items: vec![SealItem {
            address: address.clone(),
            plaintext: SecretBytes::copy_from(plain.as_bytes()),
        }],
    })?;
    let sealed: Vec<u8> = serde_json::from_value(sealed["Sealed"][0].clone())?;
    ui.ok(&BrokerRequest::OpenFields {
        items: vec![OpenItem {
            address: address.clone(),
            sealed: sealed.clone(),
        }],
    })?;
    // The redaction matcher holds copies of the values too.
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let red = copilot.ok(&BrokerRequest::Redact {
        text: format!("login with {payload} now"),
    })?;
    assert!(
        !red.to_string().contains(&payload),
        "redaction left the payload: {red}"
    );
    let unlock_key = format!("gatehouse:{}:unlock", f.profile);
    let keyctl = |args: &[&str]| -> Result<std::process::Output> {
        Ok(f.command(std::path::Path::new("/usr/bin/keyctl"))
            .args(args)
            .output()?)
    };
    assert!(
        keyctl(&["search", "@u", "user", &unlock_key])?
            .status
            .success(),
        "unlock material was not stored"
    );

    let report = ui.ok(&BrokerRequest::SignOut)?;
    assert!(
        report["SignedOut"]["keys_zeroized"].as_u64().unwrap_or(0) >= 4,
        "{report}"
    );
    assert_eq!(
        report["SignedOut"]["unlock_material_deleted"], true,
        "{report}"
    );
    assert!(
        !keyctl(&["search", "@u", "user", &unlock_key])?
            .status
            .success(),
        "unlock material still in the keychain"
    );

    let needles: [&[u8]; 2] = [payload.as_bytes(), plain.as_bytes()];
    let r = scan_process(f.broker_pid(), &needles)?;
    assert!(
        r.hits.is_empty(),
        "broker still holds canaries after sign-out: {:?}",
        r.hits
    );
    // Control: the scanner finds the canaries where they legitimately remain (this test's own memory).
    let own = scan_process(std::process::id(), &needles)?;
    assert!(
        own.found(0) && own.found(1),
        "scanner control: the test's own copies not found"
    );

    for req in [
        BrokerRequest::OrgList,
        BrokerRequest::KeychainList,
        BrokerRequest::SealFields {
            items: vec![SealItem {
                address: address.clone(),
                plaintext: SecretBytes::copy_from(b"x"),
            }],
        },
        BrokerRequest::OpenFields {
            items: vec![OpenItem {
                address: address.clone(),
                sealed: sealed.clone(),
            }],
        },
        BrokerRequest::KeychainSet {
            name: "n".into(),
            kind: SecretKind::Token,
            payload: SecretBytes::copy_from(b"value"),
        },
    ] {
        let e = ui.err(&req)?;
        assert_eq!(
            e,
            serde_json::json!("SignedOut"),
            "{req:?} after sign-out: {e}"
        );
    }
    assert_eq!(
        copilot.err(&BrokerRequest::Redact { text: "x".into() })?,
        serde_json::json!("SignedOut")
    );

    ui.ok(&BrokerRequest::SignIn {
        passphrase: SecretBytes::copy_from(PASSPHRASE),
        remember_device: false,
    })?;
    let opened = ui.ok(&BrokerRequest::OpenFields {
        items: vec![OpenItem { address, sealed }],
    })?;
    let back: Vec<u8> = serde_json::from_value(opened["Opened"][0].clone())?;
    assert_eq!(back, plain.as_bytes());
    let list = ui.ok(&BrokerRequest::KeychainList)?;
    assert!(list.to_string().contains("canary"), "{list}");
    let red = copilot.ok(&BrokerRequest::Redact {
        text: format!("again {payload}"),
    })?;
    assert!(
        red.to_string().contains("{{keychain:canary}}"),
        "keychain payload not redacted after sign-in: {red}"
    );
    Ok(())
}

#[test]
fn sign_out_tells_subscribed_daemons_to_purge() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let mut ui = f.peer(PeerRole::Ui)?;
    ui.ok(&BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(PASSPHRASE),
    })?;
    let mut sub = f.command(&f.install_dir().join("gatehouse-sessiond"));
    sub.arg("subscribe")
        .arg(f.runtime())
        .stdout(std::process::Stdio::piped());
    let mut child = gatehouse_tests::ChildGuard::spawn(&mut sub)?;
    let mut lines =
        gatehouse_tests::LineReader::spawn(child.child_mut().stdout.take().context("stdout")?);
    let first = lines.next_line(std::time::Duration::from_secs(10))?;
    assert!(first.contains("subscribed"), "{first}");
    let report = ui.ok(&BrokerRequest::SignOut)?;
    assert!(
        report["SignedOut"]["daemons_notified"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{report}"
    );
    let event = lines.wait_for(std::time::Duration::from_secs(10), |l| l.contains("event"))?;
    assert!(event.contains("SignedOut"), "{event}");
    Ok(())
}
