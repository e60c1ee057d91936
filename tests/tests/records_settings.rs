//! `gatehouse settings` through the real CLI and broker: values read back,
//! bad values refused naming the setting, per-organization tier models, and
//! sign-out honouring what the settings say it clears (and nothing more).

mod records_common;

use anyhow::Result;
use records_common::*;

fn settings(f: &gatehouse_tests::broker::BrokerFixture, args: &[&str]) -> Result<String> {
    let mut a = vec!["settings"];
    a.extend_from_slice(args);
    Ok(ok(f.cli(&a, "")?)?.trim().to_string())
}

#[test]
fn settings_are_set_read_back_and_refused_with_the_key_named() -> Result<()> {
    let f = signed_in()?;
    assert_eq!(settings(&f, &["get", "theme"])?, "dark");
    settings(&f, &["set", "theme", "light"])?;
    assert_eq!(settings(&f, &["get", "theme"])?, "light");
    let e = fail(f.cli(&["settings", "set", "font-size", "40"], "")?)?;
    assert!(e.contains("font-size") && e.contains("8–32"), "{e}");
    let e = fail(f.cli(&["settings", "set", "colour", "red"], "")?)?;
    assert!(e.contains("unknown setting \"colour\""), "{e}");
    let e = fail(f.cli(
        &["settings", "set", "sign-out.decrypted-cache", "false"],
        "",
    )?)?;
    assert!(e.contains("cannot be turned off"), "{e}");
    // Tier models are per organization.
    settings(&f, &["set", "ai.model.best", "--org", "noc", "big-model-1"])?;
    settings(&f, &["set", "ai.default-tier", "best"])?;
    assert_eq!(
        settings(&f, &["get", "ai.model.best", "--org", "noc"])?,
        "big-model-1"
    );
    let e = fail(f.cli(&["settings", "get", "ai.model.best"], "")?)?;
    assert!(e.contains("--org"), "{e}");
    let e = fail(f.cli(
        &["settings", "set", "ai.model.fast", "--org", "nope", "m"],
        "",
    )?)?;
    assert!(e.contains("nope"), "{e}");
    let list: serde_json::Value = serde_json::from_str(&settings(&f, &["list", "--json"])?)?;
    let rows = list.as_array().unwrap();
    let best = rows
        .iter()
        .find(|r| r["key"] == "ai.model.best")
        .expect("per-org row");
    assert_eq!(best["org"], "noc", "organization named, not its id: {best}");
    assert_eq!(best["value"], "big-model-1");
    assert!(
        rows.iter()
            .all(|r| r["explain"].as_str().is_some_and(|e| e.len() > 10))
    );
    // The record is private and verified like any other.
    let verify = ok(f.cli(&["records", "verify"], "")?)?;
    assert!(!verify.contains("FAIL"), "{verify}");
    Ok(())
}

#[test]
fn sign_out_clears_local_records_and_recordings_only_when_asked() -> Result<()> {
    let f = signed_in()?;
    ok(f.cli(
        &[
            "host",
            "add",
            "edge1",
            "--org",
            "noc",
            "--address",
            "10.0.0.2",
        ],
        "",
    )?)?;
    let rec_dir = f.home.join("recordings");
    std::fs::create_dir_all(&rec_dir)?;
    std::fs::write(rec_dir.join("fake.rec"), b"sealed bytes")?;
    // Owned by the test user, as sessiond would leave them.
    f.scratch.give(&rec_dir)?;
    f.scratch.give(&rec_dir.join("fake.rec"))?;
    let hosts = |f: &gatehouse_tests::broker::BrokerFixture| -> Result<usize> {
        Ok(json(f.cli(&["host", "list", "--json"], "")?)?
            .as_array()
            .map(Vec::len)
            .unwrap_or(0))
    };
    // Defaults: sign-out clears the decrypted cache only.
    let out = ok(f.cli(&["signout"], "")?)?;
    assert!(!out.contains("local records"), "{out}");
    assert_eq!(hosts(&f)?, 1);
    assert!(rec_dir.join("fake.rec").exists());
    ok(f.cli(
        &["signin", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?)?;
    settings(&f, &["set", "sign-out.local-records", "true"])?;
    settings(&f, &["set", "sign-out.recordings", "true"])?;
    let out = ok(f.cli(&["signout"], "")?)?;
    assert!(out.contains("local records: deleted"), "{out}");
    assert!(out.contains("recordings: deleted 1 file(s)"), "{out}");
    assert_eq!(hosts(&f)?, 0);
    assert!(!rec_dir.join("fake.rec").exists());
    // The host's address left the file too (secure delete, vacuum).
    let raw = raw_db(&f);
    assert!(
        !raw.windows(b"10.0.0.2".len()).any(|w| w == b"10.0.0.2"),
        "plaintext address left on disk"
    );
    Ok(())
}
