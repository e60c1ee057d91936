//! Device credentials from the broker: a password only to sessiond, only for
//! a host record whose MAC verifies and whose destination matches; SSH keys
//! never released, only used to sign an exact user-authentication request.
//! Host records are written by the real CLI; the requests are built by
//! sessiond's own code (`hosts::Host`), sent by a peer with the sessiond role.

use anyhow::{Context, Result};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{BrokerRequest, HostCredential};
use gatehouse_records::Store;
use gatehouse_sessiond::hosts::{CredentialField, Host};
use gatehouse_tests::broker::{BrokerFixture, Options};

fn ok(out: std::process::Output) -> Result<()> {
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn host(f: &BrokerFixture, name: &str) -> Result<Host> {
    let store = Store::open(&f.home.join(gatehouse_records::store::FILE_NAME))?;
    Host::load(&store, None, name).map_err(|e| anyhow::anyhow!("{e}"))
}

fn refused(v: &serde_json::Value) -> bool {
    v["err"].get("CredentialRefused").is_some()
}

/// An SSH `publickey` userauth request as a client would have signed it.
fn userauth(user: &str, alg: &str, blob: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let string = |s: &[u8], v: &mut Vec<u8>| {
        v.extend((s.len() as u32).to_be_bytes());
        v.extend(s);
    };
    string(&[9u8; 32], &mut v);
    v.push(50);
    string(user.as_bytes(), &mut v);
    string(b"ssh-connection", &mut v);
    string(b"publickey", &mut v);
    v.push(1);
    string(alg.as_bytes(), &mut v);
    string(blob, &mut v);
    v
}

#[test]
fn passwords_and_signatures_only_for_verified_records_and_their_destination() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "cred-test-pass\n",
    )?)?;
    ok(f.cli(&["org", "create", "net"], "")?)?;
    // A password in the keychain, referenced by one host; a literal sealed in another.
    let kc_password = format!("kc-{}", std::process::id());
    ok(f.cli(&["keychain", "set", "core-pw"], &format!("{kc_password}\n"))?)?;
    ok(f.cli(
        &[
            "host",
            "add",
            "core1",
            "--org",
            "net",
            "--address",
            "10.0.0.1",
            "--port",
            "22",
            "--vendor",
            "ios",
            "--ssh-user",
            "admin",
            "--password-ref",
            "keychain:core-pw",
        ],
        "",
    )?)?;
    let literal = format!("lit-{}", std::process::id());
    ok(f.cli(
        &[
            "host",
            "add",
            "edge1",
            "--org",
            "net",
            "--address",
            "10.0.0.2",
            "--vendor",
            "linux",
            "--ssh-user",
            "ops",
            "--password-stdin",
        ],
        &format!("{literal}\n"),
    )?)?;
    // An SSH key made by the real ssh-keygen, kept in the keychain.
    let dir = f.scratch.user_dir("keys")?;
    let key_path = dir.join("id");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_path)
        .status()?;
    anyhow::ensure!(st.success());
    let private = std::fs::read_to_string(&key_path)?;
    let public = std::fs::read_to_string(key_path.with_extension("pub"))?;
    ok(f.cli(
        &["keychain", "set", "edge-key", "--kind", "private-key"],
        &private,
    )?)?;
    ok(f.cli(
        &[
            "host",
            "edit",
            "edge1",
            "--org",
            "net",
            "--ssh-key",
            "keychain:edge-key",
        ],
        "",
    )?)?;

    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let core = host(&f, "core1")?;
    let edge = host(&f, "edge1")?;
    let release = |h: &HostCredential| BrokerRequest::ReleasePassword {
        host: Box::new(h.clone()),
    };

    // The right requests: the keychain payload, the sealed literal.
    let core_req = core.credential_request(CredentialField::Password, None);
    let got = sessiond.ok(&release(&core_req))?;
    let bytes: Vec<u8> = serde_json::from_value(got["Password"].clone())?;
    assert_eq!(bytes, kc_password.as_bytes());
    let edge_req = edge.credential_request(CredentialField::Password, None);
    let got = sessiond.ok(&release(&edge_req))?;
    let bytes: Vec<u8> = serde_json::from_value(got["Password"].clone())?;
    assert_eq!(bytes, literal.as_bytes());

    // Only sessiond gets passwords.
    for role in [PeerRole::Copilotd, PeerRole::Ui] {
        let mut p = f.peer(role)?;
        let v = p.call(&release(&core_req))?;
        assert!(v["err"].get("Forbidden").is_some(), "{role:?}: {v}");
    }

    // Another destination than the record names.
    let mut elsewhere = core_req.clone();
    elsewhere.destination.address = "10.6.6.6".into();
    assert!(refused(&sessiond.call(&release(&elsewhere))?));
    let mut other_port = core_req.clone();
    other_port.destination.port = 2222;
    assert!(refused(&sessiond.call(&release(&other_port))?));
    let mut other_user = core_req.clone();
    other_user.destination.username = "root".into();
    assert!(refused(&sessiond.call(&release(&other_user))?));

    // A record changed without the key (address rewritten in the MACed content, destination to match).
    let mut forged = core_req.clone();
    let content = String::from_utf8_lossy(&forged.record.item.content).into_owned();
    anyhow::ensure!(content.contains("\"10.0.0.1\""));
    forged.record.item.content = content.replace("\"10.0.0.1\"", "\"10.6.6.6\"").into_bytes();
    forged.destination.address = "10.6.6.6".into();
    let v = sessiond.call(&release(&forged))?;
    assert!(refused(&v), "{v}");
    assert!(v.to_string().contains("integrity"), "{v}");

    // One record's ciphertext presented with another record's MAC.
    let mut mixed = core_req.clone();
    mixed.field = edge_req.field.clone();
    assert!(refused(&sessiond.call(&release(&mixed))?));

    // Keys: the public half is given, never the private key; signatures only
    // over a publickey userauth request for the record's user and this key.
    let key_req = edge.credential_request(CredentialField::PrivateKey, None);
    let pk = sessiond.ok(&BrokerRequest::SshPublicKey {
        host: Box::new(key_req.clone()),
    })?;
    let pk_text = pk["PublicKey"].as_str().context("public key")?.to_string();
    let mut expected_words = public.split_whitespace();
    let (alg, b64) = (
        expected_words.next().context("alg")?,
        expected_words.next().context("b64")?,
    );
    assert!(
        pk_text.starts_with(&format!("{alg} {b64}")),
        "{pk_text} vs {public}"
    );
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let to_sign = userauth("ops", alg, &blob);
    let sig = sessiond.ok(&BrokerRequest::SshSign {
        host: Box::new(key_req.clone()),
        to_sign: to_sign.clone(),
    })?;
    let sig: Vec<u8> = serde_json::from_value(sig["Signature"].clone())?;
    // The blob is string("ssh-ed25519") ‖ string(64-byte signature); verify it.
    let alg_len = u32::from_be_bytes(sig[..4].try_into()?) as usize;
    assert_eq!(&sig[4..4 + alg_len], alg.as_bytes());
    let raw = &sig[4 + alg_len + 4..];
    let vk = ed25519_dalek::VerifyingKey::from_bytes(blob[blob.len() - 32..].try_into()?)?;
    vk.verify_strict(&to_sign, &ed25519_dalek::Signature::from_slice(raw)?)?;
    for bad in [
        userauth("root", alg, &blob),
        b"please sign this contract".to_vec(),
        userauth("ops", alg, b"another key"),
    ] {
        let v = sessiond.call(&BrokerRequest::SshSign {
            host: Box::new(key_req.clone()),
            to_sign: bad,
        })?;
        assert!(refused(&v), "{v}");
    }
    // The private key never crosses the socket: no reply carried its base64 body.
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!pk.to_string().contains(&body[..40]));

    // Every use and every refusal is in the credential log, naming the
    // field, the destination and the daemon, never the value.
    let log_path = f.home.join("audit").join("credentials.jsonl");
    let (rows, bad): (Vec<gatehouse_ipc::audit::CredentialRow>, _) =
        gatehouse_ipc::audit::read(&log_path)?;
    assert!(bad.is_empty(), "{bad:?}");
    let count = |op: &str, refused: bool| {
        rows.iter()
            .filter(|r| r.operation.to_string() == op && r.refused.is_some() == refused)
            .count()
    };
    assert!(count("ReleasePassword", false) >= 2, "{rows:#?}");
    assert!(count("ReleasePassword", true) >= 1, "{rows:#?}");
    assert!(count("SshPublicKey", false) >= 1, "{rows:#?}");
    assert!(count("SshSign", false) >= 1, "{rows:#?}");
    assert_eq!(count("SshSign", true), 3, "{rows:#?}");
    // (The CLI's `host edit` above opened the record: its OpenFields rows are the cli's.)
    for r in rows
        .iter()
        .filter(|r| r.operation.to_string() != "OpenFields")
    {
        assert_eq!(r.requester.role, PeerRole::Sessiond);
        assert_eq!(r.requester.pid, sessiond.pid() as i32);
    }
    // The row names the keychain entry the field referred to, not only the field.
    assert!(
        rows.iter().any(|r| r.credential.contains("ssh.password")
            && r.credential.ends_with("(keychain:core-pw)")
            && r.destination == "admin@10.0.0.1:22"
            && r.refused.is_none()),
        "{rows:#?}"
    );
    let text = std::fs::read_to_string(&log_path)?;
    for secret in [&kc_password, &literal] {
        assert!(
            !text.contains(secret.as_str()),
            "a value in the credential log"
        );
    }
    // No row, no credential: when the log cannot be written, nothing is released.
    std::fs::rename(&log_path, log_path.with_extension("old"))?;
    std::fs::create_dir(&log_path)?;
    let v = sessiond.call(&release(&core_req))?;
    assert!(
        v["err"]["Storage"]
            .as_str()
            .is_some_and(|e| e.contains("nothing released")),
        "{v}"
    );
    assert!(v.get("ok").is_none(), "{v}");
    std::fs::remove_dir(&log_path)?;
    sessiond.ok(&release(&core_req))?;

    // Signed out: nothing is released.
    ok(f.cli(&["signout"], "")?)?;
    let v = sessiond.call(&release(&core_req))?;
    assert!(
        v["err"] == "SignedOut" || v["err"].get("SignedOut").is_some(),
        "{v}"
    );
    Ok(())
}

/// The attack: a same-uid program adds a host pointing at its own SSH server
/// with `--password-ref keychain:NAME` and asks for a read-only session. The
/// entry is bound to the destination of its first use; another destination
/// is refused (and logged, naming the entry) until a person adds it with the
/// account passphrase.
#[test]
fn a_keychain_entry_goes_to_a_new_destination_only_after_presence() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "bind-test-pass\n",
    )?)?;
    ok(f.cli(&["org", "create", "net"], "")?)?;
    let secret = format!("kc-{}", std::process::id());
    ok(f.cli(&["keychain", "set", "core-pw"], &format!("{secret}\n"))?)?;
    let add = |name: &str, address: &str, port: &str, user: &str| {
        f.cli(
            &[
                "host",
                "add",
                name,
                "--org",
                "net",
                "--address",
                address,
                "--port",
                port,
                "--vendor",
                "linux",
                "--ssh-user",
                user,
                "--password-ref",
                "keychain:core-pw",
            ],
            "",
        )
    };
    ok(add("core1", "10.0.0.1", "22", "admin")?)?;
    ok(add("rogue", "10.6.6.6", "2222", "admin")?)?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let release = |h: &Host| BrokerRequest::ReleasePassword {
        host: Box::new(h.credential_request(CredentialField::Password, None)),
    };
    // First use binds core-pw to admin@10.0.0.1:22.
    sessiond.ok(&release(&host(&f, "core1")?))?;
    // The attacker's host: a verified record, but a new destination.
    let v = sessiond.call(&release(&host(&f, "rogue")?))?;
    let e = &v["err"]["NewDestination"];
    assert_eq!(e["entry"], "core-pw", "{v}");
    assert_eq!(e["destination"], "admin@10.6.6.6:2222", "{v}");
    assert!(!v.to_string().contains(&secret), "{v}");
    // Binding it needs the passphrase: none (no terminal), a wrong one.
    let out = f.cli(&["keychain", "bind", "core-pw", "admin@10.6.6.6:2222"], "")?;
    assert!(!out.status.success());
    let out = f.cli(
        &[
            "keychain",
            "bind",
            "core-pw",
            "admin@10.6.6.6:2222",
            "--passphrase-stdin",
        ],
        "not-the-passphrase\n",
    )?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{out:?}"
    );
    assert!(
        sessiond.call(&release(&host(&f, "rogue")?))?["err"]
            .get("NewDestination")
            .is_some()
    );
    // A person with the passphrase adds the destination: now it is released.
    ok(f.cli(
        &[
            "keychain",
            "bind",
            "core-pw",
            "admin@10.6.6.6:2222",
            "--passphrase-stdin",
        ],
        "bind-test-pass\n",
    )?)?;
    let got = sessiond.ok(&release(&host(&f, "rogue")?))?;
    let bytes: Vec<u8> = serde_json::from_value(got["Password"].clone())?;
    assert_eq!(bytes, secret.as_bytes());
    // The refusal is in the credential log, naming the entry and the destination.
    let (rows, _): (Vec<gatehouse_ipc::audit::CredentialRow>, _) =
        gatehouse_ipc::audit::read(&f.home.join("audit").join("credentials.jsonl"))?;
    assert!(
        rows.iter()
            .any(|r| r.credential.ends_with("(keychain:core-pw)")
                && r.destination == "admin@10.6.6.6:2222"
                && r.refused.as_deref().is_some_and(|e| e.contains("bound to"))),
        "{rows:#?}"
    );
    Ok(())
}

#[test]
fn provider_keys_only_to_copilotd_and_only_for_their_endpoint() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "provider-key-pass\n",
    )?)?;
    let key = format!("sk-test-{}", std::process::id());
    let endpoint = "https://api.example.invalid/v1";
    ok(f.cli(
        &[
            "copilot",
            "config",
            "--kind",
            "openai",
            "--endpoint",
            endpoint,
            "--model",
            "m",
            "--api-key-stdin",
            "--api-key-name",
            "prov",
        ],
        &format!("{key}\n"),
    )?)?;
    // The settings file names the reference, never the key.
    let settings = std::fs::read_to_string(f.home.join("copilot").join("provider.json"))?;
    assert!(settings.contains("keychain:prov"), "{settings}");
    assert!(!settings.contains(&key));
    let release = |endpoint: &str| BrokerRequest::ReleaseProviderKey {
        name: "prov".into(),
        endpoint: endpoint.into(),
    };
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let got = copilot.ok(&release(endpoint))?;
    let bytes: Vec<u8> = serde_json::from_value(got["ProviderKey"].clone())?;
    assert_eq!(bytes, key.as_bytes());
    // Another endpoint (a rewritten settings file): refused.
    let v = copilot.call(&release("https://attacker.example.invalid/v1"))?;
    assert!(refused(&v), "{v}");
    // Only copilotd; and a password entry is not a provider key.
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    assert!(
        sessiond.call(&release(endpoint))?["err"]
            .get("Forbidden")
            .is_some()
    );
    ok(f.cli(&["keychain", "set", "pw"], "not-a-provider-key\n")?)?;
    let v = copilot.call(&BrokerRequest::ReleaseProviderKey {
        name: "pw".into(),
        endpoint: endpoint.into(),
    })?;
    assert!(refused(&v), "{v}");
    Ok(())
}

#[test]
fn only_opened_credentials_join_exact_value_redaction() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "redact-scope-pass\n",
    )?)?;
    let secret = format!("cred-{}-x9", std::process::id());
    let private_text = format!(
        "/ip address print where comment=note-{}",
        std::process::id()
    );
    let seal_open = |kind: &str, field: &str, value: &str| -> Result<()> {
        let args = [
            "--private",
            "--kind",
            kind,
            "--record",
            "r1",
            "--field",
            field,
        ];
        let sealed = f.cli(&[&["field", "seal"][..], &args].concat(), value)?;
        let ct = String::from_utf8_lossy(&sealed.stdout).trim().to_string();
        ok(f.cli(
            &[&["field", "open"][..], &args, &[ct.as_str()]].concat(),
            "",
        )?)?;
        Ok(())
    };
    seal_open("host", "ssh.password", &secret)?;
    seal_open("audit", "command", &private_text)?;
    let out = f.cli(&["redact"], &format!("{secret} | {private_text}\n"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&secret),
        "an opened credential is redacted: {text}"
    );
    assert!(
        text.contains(&private_text),
        "a private, non-credential field is not scrubbed from prompts: {text}"
    );
    Ok(())
}

/// Opening a sealed field for a person's tool (`OpenFields`: the UI's
/// Reveal, `host show --reveal`, an edit) writes a synced row per field to
/// the credential log before the value leaves; no row, no value.
#[test]
fn open_fields_writes_a_row_per_field_and_refuses_without_one() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "open-audit-pass\n",
    )?)?;
    ok(f.cli(&["org", "create", "net"], "")?)?;
    let literal = format!("reveal-me-{}", std::process::id());
    ok(f.cli(
        &[
            "host",
            "add",
            "r1",
            "--org",
            "net",
            "--address",
            "10.0.0.9",
            "--ssh-user",
            "ops",
            "--password-stdin",
        ],
        &format!("{literal}\n"),
    )?)?;
    let log_path = f.home.join("audit").join("credentials.jsonl");
    let read = || -> Result<Vec<gatehouse_ipc::audit::CredentialRow>> {
        let (rows, bad) = gatehouse_ipc::audit::read(&log_path)?;
        anyhow::ensure!(bad.is_empty(), "{bad:?}");
        Ok(rows)
    };
    assert!(
        read()?
            .iter()
            .all(|r| r.operation.to_string() != "OpenFields"),
        "adding a host opens nothing"
    );
    // `host show --reveal` reveals the record's one sealed field: one row
    // (`RevealFields`: values shown to a person).
    let out = f.cli_ok(&["host", "show", "r1", "--reveal"], "")?;
    assert!(out.contains(&literal), "{out}");
    let rows = read()?;
    let opened: Vec<_> = rows
        .iter()
        .filter(|r| r.operation.to_string() == "RevealFields")
        .collect();
    assert_eq!(opened.len(), 1, "one sealed field, one row: {rows:#?}");
    let r = opened[0];
    assert_eq!(r.requester.role, PeerRole::Cli);
    assert!(r.credential.ends_with("field ssh.password"), "{r:?}");
    assert!(r.credential.contains("host/"), "{r:?}");
    assert!(
        r.destination.starts_with("revealed to cli pid "),
        "{}",
        r.destination
    );
    assert!(r.refused.is_none());
    let text = std::fs::read_to_string(&log_path)?;
    assert!(
        !text.contains(&literal),
        "the log names fields, never values"
    );

    // No row, no value: with the log unwritable the field is not opened.
    std::fs::rename(&log_path, log_path.with_extension("old"))?;
    std::fs::create_dir(&log_path)?;
    let out = f.cli(&["host", "show", "r1", "--reveal"], "")?;
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("nothing released"), "{all}");
    assert!(!all.contains(&literal), "{all}");
    std::fs::remove_dir(&log_path)?;
    std::fs::rename(log_path.with_extension("old"), &log_path)?;

    // A field that does not open (another record's ciphertext) is refused,
    // and the refusal is a row too.
    let store = gatehouse_records::Store::open(&f.home.join(gatehouse_records::store::FILE_NAME))?;
    let stored = store.resolve(gatehouse_records::Kind::Host, None, "r1")?;
    let mut address =
        gatehouse_records::store::field_address(&stored.meta, "ssh.password", &stored.plain);
    address.record_id = "someone-else".into();
    let mut ui = f.peer(PeerRole::Ui)?;
    let v = ui.call(&BrokerRequest::OpenFields {
        items: vec![gatehouse_ipc::broker::OpenItem {
            address,
            sealed: stored.sealed["ssh.password"].clone(),
        }],
    })?;
    assert!(v.get("err").is_some(), "{v}");
    let rows = read()?;
    let last = rows.last().context("rows")?;
    assert_eq!(last.operation.to_string(), "OpenFields");
    assert!(last.refused.is_some() && last.credential.contains("someone-else"));
    assert_eq!(last.destination, format!("shown to ui pid {}", ui.pid()));
    Ok(())
}
