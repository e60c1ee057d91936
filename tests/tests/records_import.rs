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
    let cfg = user_file(
        &f,
        "ssh_config",
        "Host *\n  User nobody\nHost core-sw1 core-sw1-alias # the core pair\n  HostName 10.0.0.1\n  User admin\n  IdentityFile ~/.ssh/id_core\nHost web-?\n  User www\nHost edge\n  HostName edge.example.net\n  Port 2222\nHost badport\n  HostName 10.0.0.5\n  Port 70000\nHost bad-addr\n  HostName 10.0.0.300\nMatch exec \"true\"\n  User x\nHost 42\nHost CORE-SW1\nHost revoked-one\n  HostName 10.0.0.8\n",
    )?;
    let salt = [9u8; 20];
    let hashed = {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt)?;
        mac.update(b"[edge.example.net]:2222");
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let kh = user_file(
        &f,
        "known_hosts",
        &format!(
            "10.0.0.1 ssh-rsa {}\n10.0.0.1 ssh-ed25519 {}\n|1|{}|{hashed} ecdsa-sha2-nistp256 {}\n|1|aGFzaA==|aGFzaA== ssh-ed25519 {}\n10.0.0.8 ssh-ed25519 {}\n@revoked * ssh-ed25519 {}\n@cert-authority *.example.net ssh-ed25519 {}\n",
            key_blob(1),
            key_blob(2),
            b64(&salt),
            key_blob(3),
            key_blob(4),
            key_blob(5),
            key_blob(5),
            key_blob(6),
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
    // Wildcards are not hosts; the comment is not host names.
    assert!(
        !out.contains("web-?") && !out.contains("host the "),
        "{out}"
    );
    assert!(!out.contains("created host #"), "{out}");
    assert!(
        out.contains("line 17: Match exec true: the \"exec\" criterion is not evaluated"),
        "{out}"
    );
    assert!(
        out.contains("known_hosts line 7: @cert-authority *.example.net"),
        "{out}"
    );
    assert!(
        out.contains("skipped badport (line 12): invalid port"),
        "{out}"
    );
    assert!(
        out.contains("skipped bad-addr (line 15): invalid address"),
        "{out}"
    );
    // A bare number is refused with the field named; a name differing only
    // in case is one host (OpenSSH matches names ignoring case).
    assert!(
        out.contains("skipped 42 (line 19): invalid name: \"42\" is a bare number"),
        "{out}"
    );
    assert!(!out.contains("CORE-SW1"), "{out}");
    assert!(
        out.contains("note: revoked-one (line 21): host key ssh-ed25519 SHA256:")
            && out.contains("is marked @revoked on line 6: not pinned"),
        "{out}"
    );
    assert!(
        out.contains("created host core-sw1 (id ") && out.contains("10.0.0.1:22 with host key"),
        "{out}"
    );
    assert!(out.contains("imported 4 of 4 host(s); skipped 3"), "{out}");
    let h = json(f.cli(
        &["host", "show", "imported/core-sw1", "--reveal", "--json"],
        "",
    )?)?;
    // `Host *` came first: its User wins, as in OpenSSH.
    assert_eq!(h["fields"]["ssh.username"], "nobody");
    assert_eq!(h["fields"]["ssh.private_key_path"], "~/.ssh/id_core");
    let fp = h["fields"]["ssh.host_key_fingerprint"].as_str().unwrap();
    assert!(
        fp.starts_with("ssh-ed25519 SHA256:"),
        "ed25519 preferred: {fp}"
    );
    // The hashed entry for [edge.example.net]:2222 matched.
    let e = json(f.cli(&["host", "show", "imported/edge", "--json"], "")?)?;
    assert_eq!(e["fields"]["port"], 2222);
    assert!(
        e["fields"]["ssh.host_key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("ecdsa-sha2-nistp256 SHA256:")
    );
    let r = json(f.cli(&["host", "show", "imported/revoked-one", "--json"], "")?)?;
    assert!(r["fields"]["ssh.host_key_fingerprint"].is_null(), "{r}");
    // Importing again: every host is a duplicate, skipped with the reason;
    // a name differing only in case is the same name.
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
        again.contains("imported 0 of 0 host(s); skipped 7"),
        "{again}"
    );
    Ok(())
}

/// What `ssh -G -F CONFIG HOST` says for the four options Gatehouse imports.
fn ssh_g(config: &str, host: &str) -> Result<(String, u16, String, Vec<String>)> {
    let out = std::process::Command::new("ssh")
        .args(["-G", "-F", config, host])
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "ssh -G {host}: {out:?}");
    let text = String::from_utf8(out.stdout)?;
    let mut hostname = String::new();
    let mut port = 0;
    let mut user = String::new();
    let mut ids = Vec::new();
    for l in text.lines() {
        match l.split_once(' ') {
            Some(("hostname", v)) => hostname = v.to_string(),
            Some(("port", v)) => port = v.parse()?,
            Some(("user", v)) => user = v.to_string(),
            Some(("identityfile", v)) => ids.push(v.to_string()),
            _ => {}
        }
    }
    Ok((hostname, port, user, ids))
}

#[test]
fn ssh_config_import_equals_what_ssh_g_prints_for_every_host() -> Result<()> {
    let f = signed_in()?;
    // A realistic configuration, generated: comments after Host names,
    // wildcard blocks before and after the hosts' own, first value wins,
    // Match blocks (evaluated and not), an Include that is reported, %h,
    // quoting, IPv6, case.
    let mut cfg = String::from(
        "# generated for the import test\nInclude conf.d/*.conf\nHost *.lab # every lab box\n  User labops\n  Port 2200\nMatch originalhost core-*\n  Port 8022\n  IdentityFile ~/.ssh/id_core\nMatch exec \"false\"\n  User never\n",
    );
    let mut names = Vec::new();
    for i in 0..6 {
        let n = format!("r{i}.lab");
        cfg.push_str(&format!(
            "Host {n} r{i}-alias # router {i}\n  HostName %h.example.net\n  User admin{i}\n  Port {}\n",
            2000 + i
        ));
        names.push(n);
        names.push(format!("r{i}-alias"));
    }
    for i in 0..4 {
        let n = format!("core-{i}");
        cfg.push_str(&format!(
            "Host {n}\n  HostName 10.1.0.{i}\n  IdentityFile \"~/.ssh/id {i}\"\n"
        ));
        names.push(n);
    }
    cfg.push_str("Host v6-edge\n  HostName 2001:db8::7\n  Port 2222\nHost Mixed-Case\n  HostName mixed.example.net\nHost * !bastion\n  User fallback\n  IdentityFile ~/.ssh/id_all\nHost *\n  User last\n  IdentityFile ~/.ssh/id_last\nHost bastion\n  HostName 192.0.2.9\n");
    names.extend(["v6-edge".to_string(), "Mixed-Case".into(), "bastion".into()]);
    let path = user_file(&f, "ssh_config", &cfg)?;
    let out = ok(f.cli(
        &[
            "host",
            "import",
            "--ssh-config",
            &path,
            "--org",
            "noc",
            "--folder",
            "g",
        ],
        "",
    )?)?;
    assert!(
        out.contains("line 2: Include conf.d/*.conf: not followed"),
        "{out}"
    );
    assert!(out.contains("Match exec false"), "{out}");
    assert!(
        out.contains("[2001:db8::7]:2222"),
        "IPv6 printed in brackets: {out}"
    );
    assert!(
        out.contains(&format!(
            "imported {0} of {0} host(s); skipped 0",
            names.len()
        )),
        "{out}"
    );
    for n in &names {
        let (hostname, port, user, ids) = ssh_g(&path, n)?;
        let h = json(f.cli(
            &["host", "show", &format!("g/{n}"), "--reveal", "--json"],
            "",
        )?)?;
        let fields = &h["fields"];
        assert_eq!(fields["address"], hostname.as_str(), "{n}: HostName");
        assert_eq!(fields["port"], port, "{n}: Port");
        assert_eq!(fields["ssh.username"], user.as_str(), "{n}: User");
        assert_eq!(
            fields["ssh.private_key_path"],
            ids.first().map(String::as_str).unwrap_or_default(),
            "{n}: IdentityFile (ssh -G lists {ids:?})"
        );
    }
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
    // Said once, not "cannot open …: cannot open …".
    assert_eq!(err.matches("cannot open").count(), 1, "{err}");
    v["org_id"] = "0000000000000000".into();
    let foreign = user_file(&f, "foreign.bundle", &v.to_string())?;
    let err = fail(f.cli(&["import", &foreign], "")?)?;
    assert!(err.contains("not a member"), "{err}");
    Ok(())
}
