//! sessiond against a real OpenSSH sshd on loopback, driven by the real CLI:
//! password, keyboard-interactive and broker-signed public-key logins (the
//! private key's bytes never in sessiond's memory: root scan); an unknown
//! host key refused until pinned, a changed one refused naming both; large
//! output complete; killing sessiond mid-session leaves a playable
//! recording prefix and the audit row.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::sshd::{AuthMethods, Sshd};
use gatehouse_tests::{LineReader, scan_process, users};
use serde_json::Value;

/// Which credential the host record holds.
enum Cred {
    Password,
    Key,
}

fn ok(out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A broker, sessiond and an account; host `target` points at `sshd`.
fn world(sshd: &Sshd, cred: Cred, pin: bool) -> Result<BrokerFixture> {
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        ..Options::default()
    })?;
    ok(f.cli(
        &["account", "init", "--passphrase-stdin"],
        "ssh-test-pass\n",
    )?)?;
    let port = sshd.port.to_string();
    let mut args = vec![
        "host",
        "add",
        "target",
        "--private",
        "--address",
        "127.0.0.1",
        "--port",
        &port,
        "--vendor",
        "linux",
        "--ssh-user",
        &sshd.user,
    ];
    if pin {
        args.extend(["--host-key", &sshd.host_key_fingerprint]);
    }
    let stdin = match cred {
        Cred::Password => {
            args.push("--password-stdin");
            format!("{}\n", sshd.password)
        }
        Cred::Key => {
            ok(f.cli(
                &["keychain", "set", "target-key", "--kind", "private-key"],
                &sshd.client_private_key,
            )?)?;
            args.extend(["--ssh-key", "keychain:target-key"]);
            String::new()
        }
    };
    ok(f.cli(&args, &stdin)?)?;
    f.start_sessiond()?;
    Ok(f)
}

fn exec(f: &BrokerFixture, command: &str) -> Result<std::process::Output> {
    f.cli(&["exec", "target", "--org", "private", "--", command], "")
}

/// The raw ed25519 seed inside an OpenSSH private key (32 bytes before the
/// last copy of the public key in the decoded key file).
fn ed25519_seed(private_pem: &str, public_line: &str) -> Result<Vec<u8>> {
    let body: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let blob = base64::engine::general_purpose::STANDARD.decode(body)?;
    let public = base64::engine::general_purpose::STANDARD.decode(
        public_line
            .split_whitespace()
            .nth(1)
            .context("public key")?,
    )?;
    let pk = &public[public.len() - 32..];
    let at = blob
        .windows(32)
        .rposition(|w| w == pk)
        .context("public key inside the private key file")?;
    Ok(blob[at - 32..at].to_vec())
}

#[test]
fn password_keyboard_interactive_and_broker_signed_key_logins() -> Result<()> {
    if !users::is_root() {
        eprintln!("SKIPPED: sshd needs root (CI runs as root)");
        return Ok(());
    }
    for (methods, cred) in [
        (AuthMethods::PasswordOnly, Cred::Password),
        (AuthMethods::KeyboardInteractiveOnly, Cred::Password),
        (AuthMethods::PublicKeyOnly, Cred::Key),
    ] {
        let sshd = Sshd::start_with(methods)?;
        let is_key = matches!(cred, Cred::Key);
        let f = world(&sshd, cred, true)?;
        let out = ok(exec(&f, "id -un; echo via-$SSH_CONNECTION")?)?;
        assert!(
            out.starts_with(&format!("{}\n", sshd.user)),
            "{methods:?}: {out}"
        );
        assert!(out.contains("via-127.0.0.1"), "{methods:?}: {out}");
        // Exit codes come through (GNU ls: 2 for a missing operand).
        let failed = exec(&f, "ls /nonexistent-gatehouse-path")?;
        assert_eq!(failed.status.code(), Some(2), "{methods:?}");
        assert!(
            String::from_utf8_lossy(&failed.stderr).contains("No such file"),
            "{methods:?}: stderr is passed through"
        );
        // Neither the password nor the key is left in sessiond's memory.
        let mut needles: Vec<Vec<u8>> = vec![sshd.password.as_bytes().to_vec()];
        if is_key {
            needles.push(ed25519_seed(
                &sshd.client_private_key,
                &sshd.client_public_key,
            )?);
            let pem_line = sshd
                .client_private_key
                .lines()
                .nth(1)
                .context("pem body")?
                .to_string();
            needles.push(pem_line.into_bytes());
        }
        // Control: the login name is in sessiond's memory (it read the host record).
        needles.push(format!("\"{}\"", sshd.user).into_bytes());
        let refs: Vec<&[u8]> = needles.iter().map(Vec::as_slice).collect();
        let scan = scan_process(f.sessiond_pid(), &refs)?;
        assert!(
            scan.found(refs.len() - 1),
            "{methods:?}: the scan does not even find the login name"
        );
        for (i, n) in ["password", "key seed", "key file line"]
            .iter()
            .enumerate()
            .take(refs.len() - 1)
        {
            assert!(
                !scan.found(i),
                "{methods:?}: the {n} is in sessiond's memory ({} bytes scanned)",
                scan.bytes_scanned
            );
        }
        assert!(
            scan.bytes_scanned > 1_000_000,
            "{methods:?}: scan read too little"
        );
    }
    Ok(())
}

#[test]
fn unknown_host_key_needs_a_pin_and_a_changed_one_is_refused() -> Result<()> {
    if !users::is_root() {
        eprintln!("SKIPPED: sshd needs root (CI runs as root)");
        return Ok(());
    }
    let mut sshd = Sshd::start_with(AuthMethods::PasswordOnly)?;
    let f = world(&sshd, Cred::Password, false)?;
    // No pin: refused, naming the key it saw; nothing authenticated.
    let unknown = exec(&f, "true")?;
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains(&sshd.host_key_fingerprint), "{err}");
    assert!(err.contains("not pinned"), "{err}");
    // Pinning a different key than presented is refused too.
    let wrong = f.cli(
        &[
            "exec",
            "target",
            "--org",
            "private",
            "--accept-host-key",
            "ssh-ed25519 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--",
            "true",
        ],
        "",
    )?;
    assert!(!wrong.status.success());
    // The exact key: pinned in the record, then it runs.
    let pinned = f.cli(
        &[
            "exec",
            "target",
            "--org",
            "private",
            "--accept-host-key",
            &sshd.host_key_fingerprint,
            "--",
            "echo pinned-ok",
        ],
        "",
    )?;
    assert_eq!(ok(pinned)?, "pinned-ok\n");
    let shown: Value = serde_json::from_str(&ok(
        f.cli(&["host", "show", "target", "--private", "--json"], "")?
    )?)?;
    assert_eq!(
        shown["fields"]["ssh.host_key_fingerprint"],
        sshd.host_key_fingerprint.as_str()
    );
    // The password still opens: it was sealed again, bound to the new pin.
    ok(exec(&f, "true")?)?;

    // The server's key changes: refused, both fingerprints named, no login tried.
    let old = sshd.host_key_fingerprint.clone();
    let logins_before = sshd
        .log_lines(Duration::from_millis(200))
        .iter()
        .filter(|l| l.contains("Accepted") || l.contains("Failed"))
        .count();
    sshd.restart_with_new_host_key()?;
    assert_ne!(old, sshd.host_key_fingerprint);
    let changed = exec(&f, "echo must-not-run")?;
    assert!(!changed.status.success());
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("HOST KEY CHANGED"), "{err}");
    assert!(
        err.contains(&old) && err.contains(&sshd.host_key_fingerprint),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&changed.stdout).contains("must-not-run"));
    let logins_after = sshd
        .log_lines(Duration::from_millis(300))
        .iter()
        .filter(|l| l.contains("Accepted") || l.contains("Failed"))
        .count();
    assert!(
        logins_after <= logins_before,
        "a login was attempted against the changed key"
    );
    // The refusal is in the audit log.
    let log: Value = serde_json::from_str(&ok(f.cli(&["audit", "log", "--json"], "")?)?)?;
    assert!(
        log.as_array()
            .context("rows")?
            .iter()
            .any(|r| r["outcome"] == "refused"
                && r["reason"]
                    .as_str()
                    .is_some_and(|s| s.contains("HOST KEY CHANGED"))),
        "{log:#}"
    );
    Ok(())
}

#[test]
fn large_output_arrives_complete() -> Result<()> {
    if !users::is_root() {
        eprintln!("SKIPPED: sshd needs root (CI runs as root)");
        return Ok(());
    }
    let sshd = Sshd::start_with(AuthMethods::PublicKeyOnly)?;
    let f = world(&sshd, Cred::Key, true)?;
    // 20 MB of random bytes in a file the login user can read.
    let n = 20_000_000usize;
    let mut data = vec![0u8; n];
    getrandom::fill(&mut data).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let path = format!("/tmp/gatehouse-large-{}", std::process::id());
    std::fs::write(&path, &data)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    let out = f.cli(
        &[
            "exec",
            "target",
            "--org",
            "private",
            "--",
            &format!("cat {path}"),
        ],
        "",
    );
    let _ = std::fs::remove_file(&path);
    let out = out?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), n);
    assert!(out.stdout == data, "the bytes differ");
    Ok(())
}

#[test]
fn killing_sessiond_mid_session_leaves_a_playable_prefix_and_the_audit_row() -> Result<()> {
    if !users::is_root() {
        eprintln!("SKIPPED: sshd needs root (CI runs as root)");
        return Ok(());
    }
    let sshd = Sshd::start_with(AuthMethods::PublicKeyOnly)?;
    let f = world(&sshd, Cred::Key, true)?;
    // A read-only command with steady output: top, batch mode, 10 screens a second.
    let command = "top -b -d 0.1 -n 300";
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args([
        "--profile",
        &f.profile,
        "exec",
        "target",
        "--org",
        "private",
        "--",
        command,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut cli = c.spawn()?;
    let mut lines = LineReader::spawn(cli.stdout.take().context("stdout")?);
    // Wait for output well past the first recording flush (500 ms).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut screens = 0;
    while screens < 12 {
        let l = lines.next_line(Duration::from_secs(10))?;
        if l.starts_with("top - ") {
            screens += 1;
        }
        if Instant::now() > deadline {
            bail!("no output");
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(f.sessiond_pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let status = cli.wait()?;
    let mut err = String::new();
    cli.stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut err)?;
    assert!(!status.success(), "the CLI saw the session end: {err}");

    // The audit row of the start is there, naming the recording.
    let log: Value = serde_json::from_str(&ok(f.cli(&["audit", "log", "--json"], "")?)?)?;
    let row = log
        .as_array()
        .context("rows")?
        .iter()
        .find(|r| r["command"] == command && r["outcome"] == "started")
        .with_context(|| format!("no started row: {log:#}"))?
        .clone();
    let id = row["recording"]
        .as_str()
        .context("recording id")?
        .to_string();
    // The recording is incomplete but its prefix plays and exports.
    let list: Value = serde_json::from_str(&ok(f.cli(&["recordings", "list", "--json"], "")?)?)?;
    let rec = list
        .as_array()
        .context("list")?
        .iter()
        .find(|r| r["id"] == id.as_str())
        .with_context(|| format!("{list:#}"))?;
    assert_eq!(rec["complete"], false, "{rec}");
    let played = ok(f.cli(&["recordings", "play", &id, "--no-wait"], "")?)?;
    let played_screens = played.matches("top - ").count();
    assert!(
        played_screens >= 3,
        "{played_screens} screens in the prefix"
    );
    assert!(played_screens < 300, "the whole run was recorded?");
    let cast = ok(f.cli(&["recordings", "export", &id], "")?)?;
    let header: Value = serde_json::from_str(cast.lines().next().context("header")?)?;
    assert_eq!(header["version"], 3);
    for line in cast.lines().skip(1) {
        let ev: Value = serde_json::from_str(line)?;
        assert!(ev[0].as_f64().is_some_and(|t| t >= 0.0), "{line}");
    }
    Ok(())
}

#[test]
fn interactive_shell_exit_status_and_sign_out_closing_it() -> Result<()> {
    if !users::is_root() {
        eprintln!("SKIPPED: sshd needs root (CI runs as root)");
        return Ok(());
    }
    let sshd = Sshd::start_with(AuthMethods::PublicKeyOnly)?;
    let f = world(&sshd, Cred::Key, true)?;
    let connect = |f: &BrokerFixture| -> Result<std::process::Child> {
        let mut c = f.command(&f.install_dir().join("gatehouse"));
        c.args([
            "--profile",
            &f.profile,
            "connect",
            "target",
            "--org",
            "private",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        Ok(c.spawn()?)
    };
    // The remote shell's exit status is the CLI's.
    let mut shell = connect(&f)?;
    std::io::Write::write_all(
        shell.stdin.as_mut().context("stdin")?,
        b"echo inside-$((6*7))\nexit 3\n",
    )?;
    let out = shell.wait_with_output()?;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("inside-42"));
    // Every line typed has its own audit row (sealed; opened for the user),
    // not only "(interactive shell)".
    let log: Value = serde_json::from_str(&ok(f.cli(&["audit", "log", "--json"], "")?)?)?;
    let typed: Vec<&str> = log
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| r["kind"] == "shell" && r["outcome"] == "typed")
        .filter_map(|r| r["command"].as_str())
        .collect();
    assert_eq!(typed, ["echo inside-$((6*7))", "exit 3"], "{log:#}");

    // Sign-out closes an open session (it holds an authenticated connection).
    let mut shell = connect(&f)?;
    let mut typing = shell.stdin.take().context("stdin")?;
    std::io::Write::write_all(&mut typing, b"echo ready\n")?;
    let mut lines = LineReader::spawn(shell.stdout.take().context("stdout")?);
    while !lines.next_line(Duration::from_secs(15))?.contains("ready") {}
    ok(f.cli(&["signout"], "")?)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = shell.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            bail!("sign-out did not close the session");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(typing);
    let mut err = String::new();
    shell
        .stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut err)?;
    assert!(!status.success());
    assert!(err.contains("closed by sign-out"), "{err}");
    // The audit log (read after signing in again) has the session's end and why.
    ok(f.cli(&["signin", "--passphrase-stdin"], "ssh-test-pass\n")?)?;
    let log: Value = serde_json::from_str(&ok(f.cli(&["audit", "log", "--json"], "")?)?)?;
    assert!(
        log.as_array()
            .context("rows")?
            .iter()
            .any(|r| r["kind"] == "shell"
                && r["outcome"] == "exited"
                && r["reason"] == "closed by sign-out"),
        "{log:#}"
    );
    // That row was written while signed out: the table says so instead of
    // "(sealed)" over nothing.
    let table = ok(f.cli(&["audit", "log"], "")?)?;
    let ended = table
        .lines()
        .find(|l| l.contains("closed by sign") || l.contains("ended: closed"))
        .with_context(|| table.clone())?;
    assert!(
        ended.contains("(not kept: written while signed out)"),
        "{table}"
    );
    // The recording has the session's end: why, and an exit event.
    let recs: Value = serde_json::from_str(&ok(f.cli(&["recordings", "list", "--json"], "")?)?)?;
    let last = recs
        .as_array()
        .context("recordings")?
        .iter()
        .filter(|r| r["kind"] == "shell")
        .max_by_key(|r| r["started_ms"].as_u64().unwrap_or(0))
        .context("a shell recording")?;
    let id = last["id"].as_str().context("id")?;
    let cast = f.scratch.write_user_file("signed-out.cast", "", 0o600)?;
    ok(f.cli(
        &[
            "recordings",
            "export",
            id,
            "-o",
            &cast.display().to_string(),
        ],
        "",
    )?)?;
    let text = std::fs::read_to_string(&cast)?;
    assert!(
        text.contains("\"m\", \"session ended: closed by sign-out\"")
            || text.contains("\"m\",\"session ended: closed by sign-out\""),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("\"x\"") && l.contains("129")),
        "{text}"
    );
    Ok(())
}
