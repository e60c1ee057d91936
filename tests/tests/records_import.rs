//! OpenSSH config import (created / skipped and why, host keys from
//! known_hosts), a kill -9 in the middle of an import (every acknowledged
//! record intact, none half-written), and org bundles (export / import).

mod records_common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use base64::Engine as _;
use gatehouse_tests::{ChildGuard, LineReader};
use records_common::*;

fn key_blob(seed: u8) -> String {
    let mut b = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20".to_vec();
    b.extend([seed; 32]);
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn ssh_config_import_reports_created_skipped_and_why() -> Result<()> {
    let f = signed_in()?;
    ok(f.cli(
        &[
            "host",
            "add",
            "existing",
            "--org",
            "noc",
            "--address",
            "10.9.9.9",
        ],
        "",
    )?)?;
    let cfg = user_file(
        &f,
        "ssh_config",
        "Host *\n  User nobody\nHost core-sw1 core-sw1-alias\n  HostName 10.0.0.1\n  User admin\n  IdentityFile ~/.ssh/id_core\nHost web-?\n  User www\nHost edge\n  HostName edge.example.net\n  Port 2222\nHost badport\n  HostName 10.0.0.5\n  Port 70000\nHost existing\n  HostName 10.0.0.6\nHost bad-addr\n  HostName 10.0.0.300\nMatch host foo\n  User x\n",
    )?;
    let kh = user_file(
        &f,
        "known_hosts",
        &format!(
            "10.0.0.1 ssh-rsa {}\n10.0.0.1 ssh-ed25519 {}\n[edge.example.net]:2222 ecdsa-sha2-nistp256 {}\n|1|aGFzaA==|aGFzaA== ssh-ed25519 {}\n",
            key_blob(1),
            key_blob(2),
            key_blob(3),
            key_blob(4)
        ),
    )?;
    let out = ok(f.cli(
        &[
            "host",
            "import",
            "--ssh-config",
            &cfg,
            "--known-hosts",
            &kh,
            "--org",
            "noc",
            "--folder",
            "imported",
        ],
        "",
    )?)?;
    assert!(out.contains("Host *: wildcard pattern skipped"), "{out}");
    assert!(
        out.contains("Host web-?: wildcard pattern skipped"),
        "{out}"
    );
    assert!(
        out.contains("Match host foo: conditional block skipped"),
        "{out}"
    );
    assert!(out.contains("1 hashed known_hosts entry"), "{out}");
    assert!(
        out.contains("skipped badport (line 12): invalid port"),
        "{out}"
    );
    assert!(
        out.contains("skipped bad-addr (line 17): invalid address"),
        "{out}"
    );
    assert!(!out.contains("skipped existing"), "another folder: {out}");
    assert!(
        out.contains("created host core-sw1 (id ") && out.contains("10.0.0.1:22 with host key"),
        "{out}"
    );
    assert!(out.contains("imported 4 of 4 host(s); skipped 2"), "{out}");
    let h = json(f.cli(
        &["host", "show", "imported/core-sw1", "--reveal", "--json"],
        "",
    )?)?;
    assert_eq!(h["fields"]["ssh.username"], "admin");
    assert_eq!(h["fields"]["ssh.private_key_path"], "~/.ssh/id_core");
    let fp = h["fields"]["ssh.host_key_fingerprint"].as_str().unwrap();
    assert!(
        fp.starts_with("ssh-ed25519 SHA256:"),
        "ed25519 preferred: {fp}"
    );
    let e = json(f.cli(&["host", "show", "imported/edge", "--json"], "")?)?;
    assert_eq!(e["fields"]["port"], 2222);
    assert!(
        e["fields"]["ssh.host_key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("ecdsa-sha2-nistp256 SHA256:")
    );
    // Importing again: every host is a duplicate, skipped with the reason.
    let again = ok(f.cli(
        &[
            "host",
            "import",
            "--ssh-config",
            &cfg,
            "--org",
            "noc",
            "--folder",
            "imported",
        ],
        "",
    )?)?;
    assert!(again.contains("skipped core-sw1 (line 3): invalid name: a host named \"core-sw1\" already exists in folder \"imported\""), "{again}");
    assert!(
        again.contains("imported 0 of 0 host(s); skipped 6"),
        "{again}"
    );
    Ok(())
}

#[test]
fn kill_9_during_an_import_loses_no_acknowledged_record_and_leaves_none_half_written() -> Result<()>
{
    let f = signed_in()?;
    const N: usize = 4000;
    let mut cfg = String::new();
    for i in 0..N {
        cfg.push_str(&format!(
            "Host h{i}\n  HostName 10.{}.{}.{}\n  User admin\n  IdentityFile ~/.ssh/key-{i}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let cfg = user_file(&f, "big_config", &cfg)?;
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args([
        "--profile",
        &f.profile,
        "host",
        "import",
        "--ssh-config",
        &cfg,
        "--org",
        "noc",
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut c)?;
    let mut lines = LineReader::spawn(g.child_mut().stdout.take().unwrap());
    // "Acknowledged" = the CLI printed `created host NAME (id ID)`, which it
    // does only after the transaction holding that record committed.
    let mut acked = HashSet::new();
    while acked.len() < 200 {
        let l = lines.next_line(Duration::from_secs(60))?;
        if let Some(rest) = l.strip_prefix("created host ") {
            acked.insert(
                rest.split("(id ")
                    .nth(1)
                    .unwrap()
                    .split(')')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    g.kill9()?;
    let _ = g.wait_timeout(Duration::from_secs(10));
    // Lines already in the pipe are acknowledgements too.
    while let Ok(l) = lines.next_line(Duration::from_millis(300)) {
        if let Some(rest) = l.strip_prefix("created host ") {
            acked.insert(
                rest.split("(id ")
                    .nth(1)
                    .unwrap()
                    .split(')')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert!(
        acked.len() < N,
        "the import finished before the kill; make it bigger"
    );

    let listed = json(f.cli(&["host", "list", "--json"], "")?)?;
    let ids: HashSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    for a in &acked {
        assert!(
            ids.contains(a),
            "acknowledged host {a} is missing after kill -9"
        );
    }
    // At most the one record committed between its commit and its line.
    assert!(
        ids.len() <= acked.len() + 1,
        "{} stored, {} acknowledged",
        ids.len(),
        acked.len()
    );
    // Every stored record is whole: MAC verifies and every sealed field opens.
    let v = json(f.cli(&["records", "verify", "--json"], "")?)?;
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["records"].as_u64().unwrap() as usize, ids.len());
    {
        let db = RawDb::open(&f)?;
        assert_eq!(
            db.count("sealed_fields")?,
            ids.len() as i64,
            "one sealed key path per host"
        );
        assert_eq!(db.count("audit")?, ids.len() as i64);
    }
    // And the store keeps working.
    ok(f.cli(
        &[
            "host",
            "add",
            "after-crash",
            "--org",
            "noc",
            "--address",
            "10.200.0.1",
        ],
        "",
    )?)?;
    Ok(())
}

#[test]
fn an_org_exports_as_one_sealed_bundle_and_imports_back() -> Result<()> {
    let f = signed_in()?;
    ok(f.cli(&["org", "create", "lab"], "")?)?;
    ok(f.cli(
        &[
            "host",
            "add",
            "a",
            "--org",
            "noc",
            "--address",
            "10.0.0.1",
            "--ssh-user",
            "admin",
            "--password-stdin",
        ],
        "bundle-canary-pw\n",
    )?)?;
    let b = created_id(&ok(f.cli(
        &["host", "add", "b", "--org", "noc", "--address", "10.0.0.2"],
        "",
    )?)?)?;
    let body = user_file(&f, "p.md", "bundle-canary-body")?;
    ok(f.cli(
        &["procedure", "add", "p", "--org", "noc", "--body", &body],
        "",
    )?)?;
    ok(f.cli(
        &[
            "host",
            "add",
            "other",
            "--org",
            "lab",
            "--address",
            "10.0.0.3",
        ],
        "",
    )?)?;
    ok(f.cli(
        &["host", "add", "mine", "--private", "--address", "10.0.0.4"],
        "",
    )?)?;
    let out = f.home.join("noc.bundle");
    let exported = ok(f.cli(&["export", "--org", "noc", out.to_str().unwrap()], "")?)?;
    assert!(exported.contains("exported 3 record(s)"), "{exported}");
    let text = std::fs::read_to_string(&out)?;
    for needle in [
        "bundle-canary-pw",
        "bundle-canary-body",
        "10.0.0.1",
        "\"a\"",
    ] {
        assert!(!text.contains(needle), "{needle} in the bundle");
    }
    ok(f.cli(&["host", "rm", &b], "")?)?;
    let imported = ok(f.cli(&["import", out.to_str().unwrap()], "")?)?;
    assert!(
        imported.contains("1 created, 0 updated, 2 skipped"),
        "{imported}"
    );
    assert_eq!(
        json(f.cli(&["host", "show", &b, "--json"], "")?)?["fields"]["address"],
        "10.0.0.2"
    );
    // A bundle altered outside Gatehouse does not open; one for an org we are not in is refused.
    let mut v: serde_json::Value = serde_json::from_str(&text)?;
    v["count"] = 99.into();
    let bad = user_file(&f, "bad.bundle", &v.to_string())?;
    let err = fail(f.cli(&["import", &bad], "")?)?;
    assert!(
        err.contains("bundle/") && err.contains("field records"),
        "{err}"
    );
    v["org_id"] = "0000000000000000".into();
    let foreign = user_file(&f, "foreign.bundle", &v.to_string())?;
    let err = fail(f.cli(&["import", &foreign], "")?)?;
    assert!(err.contains("not a member"), "{err}");
    Ok(())
}
