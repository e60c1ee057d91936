//! The account's Secret Key and sync identity (issue 13, "Accounts and
//! devices"): `account init` prints the Secret Key once, `account
//! secret-key` prints the same key again only for the right passphrase
//! (throttled like sign-in), daemons and a same-uid client without the
//! passphrase never get it, and the account file holds it only wrapped,
//! beside the identity keys' public halves.

use anyhow::Result;
use gatehouse_crypto::two_secret::SecretKey;
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::BrokerRequest;
use gatehouse_tests::broker::{BrokerFixture, Options};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_secret_key_is_shown_at_creation_and_again_only_for_the_passphrase() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let out = f.cli(&["account", "init", "--passphrase-stdin"], "sk-test-pass\n")?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let shown = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Secret Key: "))
        .unwrap_or_else(|| panic!("no Secret Key line in {stdout}"))
        .trim()
        .to_string();
    let key = SecretKey::parse(&shown)?;

    // Again, with the passphrase: the same key.
    let again = f.cli_ok(
        &["account", "secret-key", "--passphrase-stdin"],
        "sk-test-pass\n",
    )?;
    assert_eq!(SecretKey::parse(again.trim())?, key);

    // A wrong passphrase: refused, counted like a wrong sign-in.
    let wrong = f.cli(
        &["account", "secret-key", "--passphrase-stdin"],
        "sk-test-pasS\n",
    )?;
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).to_lowercase().contains("passphrase"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains(&shown));

    // A same-uid program speaking the protocol as a person's tool (the ui
    // role), without the passphrase, gets nothing; daemons may not even ask.
    let mut ui = f.peer(PeerRole::Ui)?;
    let v = ui.call(&BrokerRequest::AccountSecretKey {
        presence: SecretBytes::copy_from(b""),
    })?;
    assert!(v.get("ok").is_none(), "{v}");
    assert!(!v.to_string().contains(&shown[4..]), "{v}");
    for role in [PeerRole::Sessiond, PeerRole::Copilotd] {
        let mut d = f.peer(role)?;
        let v = d.call(&BrokerRequest::AccountSecretKey {
            presence: SecretBytes::copy_from(b"sk-test-pass"),
        })?;
        assert!(v.get("ok").is_none(), "{role:?}: {v}");
        assert_eq!(
            v["err"]["Forbidden"]["operation"], "AccountSecretKey",
            "{role:?}: {v}"
        );
    }

    // The account file: the identity's public halves, nothing in clear.
    let mut state = Vec::new();
    for e in walk(&f.home)? {
        state.extend(std::fs::read(e).unwrap_or_default());
    }
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(find(&f.home, "account.json")?)?)?;
    let keys = &account["account_keys"];
    for field in ["identity_public", "agreement_public"] {
        let hex = keys[field].as_str().unwrap_or_default();
        assert_eq!(hex.len(), 64, "{field}: {keys}");
    }
    for needle in [
        shown.as_bytes().to_vec(),
        shown[4..].replace('-', "").into_bytes(),
        key.as_bytes().to_vec(),
    ] {
        assert!(
            memchr::memmem::find(&state, &needle).is_none(),
            "the Secret Key is in the profile in clear"
        );
    }

    // Signed out: nothing, even with the passphrase.
    f.cli_ok(&["signout"], "")?;
    let out = f.cli(
        &["account", "secret-key", "--passphrase-stdin"],
        "sk-test-pass\n",
    )?;
    assert!(!out.status.success());
    assert!(!text(&out).contains(&shown));
    Ok(())
}

fn walk(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn find(dir: &std::path::Path, name: &str) -> Result<std::path::PathBuf> {
    walk(dir)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .ok_or_else(|| anyhow::anyhow!("no {name} under {}", dir.display()))
}
