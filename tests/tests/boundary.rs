//! The privilege boundary against a program running as the same user
//! (issue 15): each attack of the issue, against the installed layout
//! (binaries setgid to the group `gatehouse` by `scripts/install`, the
//! group-only state beside them), run as an unprivileged test user. The
//! installed-layout tests need root to install (CI runs as root) and are
//! skipped otherwise; the development-build test runs everywhere.
//!
//! The "preload" is a real shared library built here with `cc`, whose
//! constructor writes a marker file: proof of whether its code ran.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{Action, BrokerRequest, Decision};
use gatehouse_ipc::sessiond::{HostRef, SessiondRequest};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer, boundary_available};

const PASSPHRASE: &str = "boundary-test-passphrase";

/// Builds the spy library in a directory the test user can read; returns
/// (library, marker file it writes when its constructor runs).
fn spy_library(f: &BrokerFixture) -> Result<(PathBuf, PathBuf)> {
    let dir = f.scratch.user_dir("spy")?;
    let src = dir.join("spy.c");
    let marker = dir.join("ran");
    let code = format!(
        "#include <stdio.h>\n#include <unistd.h>\n\
         __attribute__((constructor)) static void spy(void) {{\n\
           FILE *f = fopen(\"{}\", \"a\");\n\
           if (f) {{ fprintf(f, \"%d\\n\", getpid()); fclose(f); }}\n\
         }}\n",
        marker.display()
    );
    std::fs::write(&src, code)?;
    let lib = dir.join("spy.so");
    let st = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .context("cc (build-essential) builds the spy library")?;
    anyhow::ensure!(st.success(), "cc failed");
    f.scratch.give(&lib)?;
    // The spy writes its marker as the test user.
    f.scratch.give(&dir)?;
    Ok((lib, marker))
}

fn ran(marker: &Path) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|s| !s.trim().is_empty())
}

fn installed() -> Result<BrokerFixture> {
    BrokerFixture::start(Options {
        boundary: true,
        ..Options::default()
    })
}

/// Starts the installed broker binary under `prefix` with `env` in a fresh
/// profile; returns its exit status and stderr (it must not keep running).
fn start_broker_with(
    f: &BrokerFixture,
    prefix: &[&str],
    env: &[(&str, &str)],
) -> Result<(Option<i32>, String, bool)> {
    let home = f.scratch.user_dir(format!("other-{}", prefix.len()))?;
    let exe = f.install_dir().join("gatehouse-broker");
    let mut c = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = f.scratch.command(first);
            c.args(rest).arg(&exe);
            c
        }
        None => f.scratch.command(&exe),
    };
    c.env("GATEHOUSE_HOME", &home)
        .args(["--profile", "preloaded", "--keychain", "keyutils"])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = gatehouse_tests::ChildGuard::spawn(&mut c)?;
    let socket = home.join("run").join("broker.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.has_exited()? {
            let mut err = String::new();
            if let Some(mut e) = child.child_mut().stderr.take() {
                use std::io::Read;
                e.read_to_string(&mut err)?;
            }
            return Ok((status.code(), err, socket.exists()));
        }
        if socket.exists() {
            return Ok((None, String::new(), true));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the broker neither exited nor bound its socket")
}

#[test]
fn a_broker_started_under_ld_preload_refuses_to_run() -> Result<()> {
    // A development build: the loader honours the preload (its constructor
    // runs: only the setgid install stops that), but the broker refuses to
    // serve, so it never sees a passphrase.
    let f = BrokerFixture::start(Options::default())?;
    let (lib, marker) = spy_library(&f)?;
    let lib = lib.to_string_lossy().into_owned();
    for (var, value) in [("LD_PRELOAD", lib.as_str()), ("LD_LIBRARY_PATH", "/tmp")] {
        let (code, err, bound) = start_broker_with(&f, &[], &[(var, value)])?;
        assert_eq!(code, Some(1), "{var}: {err}");
        assert!(!bound, "{var}: the broker bound its socket");
        assert!(err.contains(&format!("{var} is set")), "{var}: {err}");
    }
    assert!(
        ran(&marker),
        "control: the preload did run in the development build"
    );
    Ok(())
}

#[test]
fn installed_binaries_ignore_preloads_and_refuse_a_start_without_their_group() -> Result<()> {
    if !boundary_available(
        "installed_binaries_ignore_preloads_and_refuse_a_start_without_their_group",
    ) {
        return Ok(());
    }
    let f = installed()?;
    let (lib, marker) = spy_library(&f)?;
    let lib = lib.to_string_lossy().into_owned();
    // `LD_PRELOAD=spy.so gatehouse-broker`: the loader runs the setgid binary
    // in secure mode and ignores the preload; the spy never runs.
    let (code, err, bound) = start_broker_with(&f, &[], &[("LD_PRELOAD", &lib)])?;
    assert!(bound && code.is_none(), "{code:?} {err}");
    assert!(!ran(&marker), "the preload ran inside the installed broker");
    // Under no_new_privs the group is not granted and the preload does load:
    // the broker refuses to run.
    let (code, err, bound) =
        start_broker_with(&f, &["setpriv", "--no-new-privs"], &[("LD_PRELOAD", &lib)])?;
    assert_eq!(code, Some(1), "{err}");
    assert!(!bound);
    assert!(err.contains("LD_PRELOAD is set"), "{err}");
    let (code, err, bound) = start_broker_with(&f, &["setpriv", "--no-new-privs"], &[])?;
    assert_eq!(code, Some(1), "{err}");
    assert!(!bound);
    assert!(err.contains("runs with effective gid"), "{err}");
    Ok(())
}

fn refusal(p: &Peer) -> String {
    p.hello.to_string()
}

#[test]
fn a_preloaded_or_copied_client_is_refused_at_welcome() -> Result<()> {
    if !boundary_available("a_preloaded_or_copied_client_is_refused_at_welcome") {
        return Ok(());
    }
    let f = installed()?;
    let (lib, marker) = spy_library(&f)?;
    let lib = lib.to_string_lossy().into_owned();
    let status = f.cli_ok(&["status"], "")?;
    assert!(status.contains("privilege boundary: ON"), "{status}");
    // Control: the unmodified installed binary gets its role.
    let ui = f.peer(PeerRole::Ui)?;
    assert_eq!(ui.role().as_deref(), Some("ui"), "{}", ui.hello);
    // The attacker's code in the process (a preload under no_new_privs; it
    // does not refuse itself) connects: the broker refuses it at Welcome
    // because the process lacks the group.
    for role in [PeerRole::Ui, PeerRole::Copilotd, PeerRole::Sessiond] {
        let p = f.peer_via(
            &["setpriv", "--no-new-privs"],
            role,
            &[
                ("LD_PRELOAD", lib.as_str()),
                ("GATEHOUSE_TEST_PEER_SKIP_BOUNDARY", "1"),
            ],
        )?;
        assert!(p.role().is_none(), "{role}: {}", p.hello);
        assert!(
            refusal(&p).contains("not the gatehouse group"),
            "{role}: {}",
            p.hello
        );
    }
    assert!(ran(&marker), "control: the preload ran in those processes");
    // The unmodified binary started that way refuses itself before connecting.
    let p = f.peer_via(&["setpriv", "--no-new-privs"], PeerRole::Ui, &[])?;
    assert!(
        refusal(&p).contains("runs with effective gid"),
        "{}",
        p.hello
    );
    // A windowless copy of the app elsewhere: not the installed setgid binary.
    let dir = f.scratch.user_dir("copy")?;
    let copy =
        gatehouse_tests::install_into(&dir, &f.install_dir().join("gatehouse-ui"), "gatehouse-ui")?;
    f.scratch.give(&copy)?;
    let p = f.peer_at(&copy)?;
    assert!(p.role().is_none(), "{}", p.hello);
    Ok(())
}

#[test]
fn daemon_roles_go_to_one_supervised_process_each() -> Result<()> {
    if !boundary_available("daemon_roles_go_to_one_supervised_process_each") {
        return Ok(());
    }
    let f = installed()?;
    // The broker's supervisor here is the test process: peers it starts are
    // supervised siblings.
    let first = f.peer(PeerRole::Sessiond)?;
    assert_eq!(first.role().as_deref(), Some("sessiond"), "{}", first.hello);
    let second = f.peer(PeerRole::Sessiond)?;
    assert!(second.role().is_none(), "{}", second.hello);
    assert!(
        refusal(&second).contains("one process per role"),
        "{}",
        second.hello
    );
    // Started by another process (a shell that forks it): not supervised.
    let stray = f.peer_via(
        &["sh", "-c", "\"$0\" \"$@\"; exit $?"],
        PeerRole::Copilotd,
        &[],
    )?;
    assert!(stray.role().is_none(), "{}", stray.hello);
    assert!(refusal(&stray).contains("supervisor"), "{}", stray.hello);
    // Non-daemon roles are not limited.
    let ui1 = f.peer(PeerRole::Ui)?;
    let ui2 = f.peer(PeerRole::Ui)?;
    assert_eq!(
        (ui1.role(), ui2.role()),
        (Some("ui".into()), Some("ui".into()))
    );
    // When the holder goes, a restarted daemon takes the role.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = f.peer(PeerRole::Sessiond)?;
        if again.role().as_deref() == Some("sessiond") {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{}", again.hello);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn action(command: &str) -> Action {
    Action {
        host: "core-sw1".into(),
        vendor: "ios".into(),
        org: "acme".into(),
        credential: None,
        command: command.into(),
        expected_effect: "as described".into(),
    }
}

fn request(p: &mut Peer, command: &str) -> Result<u64> {
    let v = p.ok(&BrokerRequest::RequestApproval {
        action: action(command),
    })?;
    v["ApprovalRequested"]["id"]
        .as_u64()
        .with_context(|| format!("RequestApproval: {v}"))
}

fn state(f: &BrokerFixture, id: u64) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(&f.cli_ok(&["approvals", "show", &id.to_string(), "--json"], "")?)?;
    Ok(v["state"].as_str().unwrap_or_default().to_string())
}

#[test]
fn cli_approvals_need_the_passphrase_and_wrong_tries_are_throttled() -> Result<()> {
    if !boundary_available("cli_approvals_need_the_passphrase_and_wrong_tries_are_throttled") {
        return Ok(());
    }
    let f = installed()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let mut sessiond = f.peer(PeerRole::Sessiond)?;
    let id = request(&mut sessiond, "configure terminal")?;
    let ids = id.to_string();
    // A same-uid script: `gatehouse approvals approve ID`, no terminal.
    let out = f.cli(&["approvals", "approve", &ids], "")?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs proof of presence"), "{err}");
    assert_eq!(state(&f, id)?, "Pending");
    // Guessing: three wrong passphrases, then the throttle refuses even the right one.
    for n in 1..=3 {
        let out = f.cli(
            &["approvals", "approve", &ids, "--passphrase-stdin"],
            &format!("guess-{n}\n"),
        )?;
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("wrong passphrase"), "{err}");
    }
    let out = f.cli(
        &["approvals", "approve", &ids, "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too many failed attempts"),
        "{out:?}"
    );
    assert_eq!(state(&f, id)?, "Pending");
    // The person, after the delay, with the passphrase.
    std::thread::sleep(Duration::from_millis(1100));
    f.cli_ok(
        &["approvals", "approve", &ids, "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    assert_eq!(state(&f, id)?, "Approved");
    // A rejection needs no presence (it cannot make anything run).
    let id2 = request(&mut sessiond, "configure terminal")?;
    f.cli_ok(&["approvals", "reject", &id2.to_string()], "")?;
    // The app: a moderate decision as before; a dangerous one needs presence.
    let mut ui = f.peer(PeerRole::Ui)?;
    let moderate = request(&mut sessiond, "configure terminal")?;
    ui.ok(&BrokerRequest::DecideApproval {
        id: moderate,
        decision: Decision::Approve,
        presence: None,
    })?;
    let dangerous = request(&mut sessiond, "reload")?;
    let v = ui.call(&BrokerRequest::DecideApproval {
        id: dangerous,
        decision: Decision::Approve,
        presence: None,
    })?;
    assert!(v["err"].get("PresenceRequired").is_some(), "{v}");
    ui.ok(&BrokerRequest::DecideApproval {
        id: dangerous,
        decision: Decision::Approve,
        presence: Some(SecretBytes::copy_from(PASSPHRASE.as_bytes())),
    })?;
    Ok(())
}

#[test]
fn remembered_unlock_material_is_closed_to_the_user() -> Result<()> {
    if !boundary_available("remembered_unlock_material_is_closed_to_the_user") {
        return Ok(());
    }
    let mut f = installed()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(
        &["signin", "--remember", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let status = f.cli_ok(&["status"], "")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("remembered unlock material: "))
        .with_context(|| format!("no remembered line: {status}"))?;
    let path = line
        .trim_start_matches("remembered unlock material: ")
        .trim_end_matches(" (gatehouse group only)");
    let path = PathBuf::from(path);
    assert!(path.starts_with(f.group_state_root()), "{line}");
    // It exists (root sees it) ...
    assert!(std::fs::metadata(&path)?.len() > 0);
    // ... and a same-uid reader gets EACCES, for the file and the directory.
    for target in [path.as_path(), f.group_state_root().as_path()] {
        let out = f.scratch.command("cat").arg(target).output()?;
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}: {out:?}",
            target.display()
        );
    }
    // Nothing of it in the user's kernel keyring.
    let keys = f
        .scratch
        .command("sh")
        .args([
            "-c",
            "for k in $(keyctl rlist @u 2>/dev/null); do keyctl rdescribe $k; echo; done",
        ])
        .output()?;
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(!keys.contains(":unlock"), "{keys}");
    // The broker, restarted, still signs in with it.
    f.start_broker()?;
    let status = f.cli_ok(&["status"], "")?;
    assert!(status.contains("account: signed in"), "{status}");
    Ok(())
}

#[test]
fn audit_isolation_on_the_installed_layout_passes_every_boundary_row() -> Result<()> {
    if !boundary_available("audit_isolation_on_the_installed_layout_passes_every_boundary_row") {
        return Ok(());
    }
    let f = installed()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let out = f.cli(&["audit", "isolation", "--json"], "")?;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    for name in [
        "boundary: setgid install",
        "boundary: group-only state",
        "boundary: no LD_* in broker",
        "boundary: remembered material closed to the user",
        "boundary: decisions need presence",
        "boundary: keychain entries bound to destinations",
        "boundary: org policies kept by the broker",
    ] {
        let row = rows
            .iter()
            .find(|r| r["check"] == name)
            .with_context(|| format!("no row {name}: {rows:#?}"))?;
        assert_eq!(row["outcome"], "pass", "{row}");
    }
    assert!(
        rows.iter()
            .filter(|r| r["check"]
                .as_str()
                .is_some_and(|c| c.starts_with("boundary: ")))
            .all(|r| r["outcome"] != "fail"),
        "{rows:#?}"
    );
    Ok(())
}

/// The credential log's rows (`<home>/audit/credentials.jsonl`).
fn credential_rows(f: &BrokerFixture) -> Result<Vec<gatehouse_ipc::audit::CredentialRow>> {
    let (rows, _) = gatehouse_ipc::audit::read(&f.home.join("audit").join("credentials.jsonl"))?;
    Ok(rows)
}

#[test]
fn revealing_a_password_from_the_cli_needs_the_passphrase() -> Result<()> {
    if !boundary_available("revealing_a_password_from_the_cli_needs_the_passphrase") {
        return Ok(());
    }
    let f = installed()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let secret = format!("device-pw-{}", std::process::id());
    f.cli_ok(
        &[
            "host",
            "add",
            "edge1",
            "--private",
            "--address",
            "10.0.0.2",
            "--vendor",
            "linux",
            "--ssh-user",
            "ops",
            "--password-stdin",
        ],
        &format!("{secret}\n"),
    )?;
    // Masked, as before: no presence asked, nothing revealed.
    let shown = f.cli_ok(&["host", "show", "edge1", "--private"], "")?;
    assert!(
        shown.contains("••••") && !shown.contains(&secret),
        "{shown}"
    );
    // A same-uid script: `host show --reveal` and `field open`, no terminal.
    let out = f.cli(&["host", "show", "edge1", "--private", "--reveal"], "")?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("revealing host/")
            && err.contains("ssh.password from the CLI needs proof of presence"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));
    // The refusal is in the credential log, naming the field.
    let rows = credential_rows(&f)?;
    assert!(
        rows.iter().any(
            |r| r.operation == gatehouse_ipc::broker::Operation::RevealFields
                && r.credential.contains("ssh.password")
                && r.refused
                    .as_deref()
                    .is_some_and(|e| e.contains("proof of presence"))
        ),
        "{rows:#?}"
    );
    // A wrong passphrase is refused (and throttled like sign-in).
    let out = f.cli(
        &[
            "host",
            "show",
            "edge1",
            "--private",
            "--reveal",
            "--passphrase-stdin",
        ],
        "not-the-passphrase\n",
    )?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{out:?}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    // The person, with the passphrase: shown, and logged as revealed.
    let shown = f.cli_ok(
        &[
            "host",
            "show",
            "edge1",
            "--private",
            "--reveal",
            "--passphrase-stdin",
        ],
        &format!("{PASSPHRASE}\n"),
    )?;
    assert!(shown.contains(&secret), "{shown}");
    let rows = credential_rows(&f)?;
    assert!(
        rows.iter().any(
            |r| r.operation == gatehouse_ipc::broker::Operation::RevealFields
                && r.credential.contains("ssh.password")
                && r.refused.is_none()
                && r.destination.starts_with("revealed to cli")
        ),
        "{rows:#?}"
    );
    Ok(())
}

/// A fixture with the real sessiond and the simulated lab (`gatehouse lab
/// up`), installed with the boundary when this run is root, else a
/// development build.
fn lab() -> Result<BrokerFixture> {
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        boundary: gatehouse_tests::users::is_root(),
        ..Options::default()
    })?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(&["lab", "up"], "")?;
    f.start_sessiond()?;
    Ok(f)
}

/// `gatehouse ARGS` in the background as the test user, stdin piped.
fn spawn_cli(f: &BrokerFixture, args: &[&str]) -> Result<std::process::Child> {
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args(["--profile", &f.profile])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    Ok(c.spawn()?)
}

#[test]
fn a_cli_waiting_for_a_decision_is_not_dumpable() -> Result<()> {
    let f = lab()?;
    let waiting = spawn_cli(
        &f,
        &[
            "exec",
            "r1",
            "--org",
            "lab",
            "--request",
            "--",
            "/system reboot",
        ],
    )?;
    let pid = waiting.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let id = loop {
        let list: serde_json::Value =
            serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
        if let Some(id) = list
            .as_array()
            .and_then(|a| a.iter().find(|r| r["state"] == "Pending"))
            .and_then(|r| r["id"].as_u64())
        {
            break id;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no request filed");
        std::thread::sleep(Duration::from_millis(100));
    };
    // It waits for a person: its /proc files are root's (the kernel's mark of
    // a non-dumpable process) and a same-uid reader is refused.
    use std::os::unix::fs::MetadataExt;
    let status = std::fs::metadata(format!("/proc/{pid}/status"))?;
    assert_eq!(status.uid(), 0, "/proc/{pid}/status is not root's");
    for file in ["environ", "mem"] {
        let out = f
            .scratch
            .command("head")
            .args(["-c", "1"])
            .arg(format!("/proc/{pid}/{file}"))
            .output()?;
        assert!(!out.status.success(), "{file}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{file}: {out:?}"
        );
    }
    // Control: the same reader reads a dumpable process of the user.
    let mut control = f.scratch.command("sleep").arg("30").spawn()?;
    let out = f
        .scratch
        .command("head")
        .args(["-c", "1"])
        .arg(format!("/proc/{}/environ", control.id()))
        .output()?;
    let _ = control.kill();
    let _ = control.wait();
    assert!(out.status.success(), "control: {out:?}");
    // Rejected: the waiting CLI ends, nothing ran.
    f.cli_ok(&["approvals", "reject", &id.to_string()], "")?;
    let out = waiting.wait_with_output()?;
    assert!(!out.status.success(), "{out:?}");
    Ok(())
}

#[test]
fn connect_needs_presence_only_where_the_org_policy_says_so() -> Result<()> {
    let f = lab()?;
    let lab_id = f.org_id("lab")?;
    let set_policy = |json: &str| f.set_org_policy("lab", json, PASSPHRASE);
    // Opens `connect sw1` with `stdin`, waits for the device's clock (or the
    // CLI's end); returns (connected, stderr).
    let connect = |extra: &[&str], stdin: &[u8]| -> Result<(bool, String)> {
        let mut args = vec!["connect", "sw1", "--org", "lab"];
        args.extend_from_slice(extra);
        let mut shell = spawn_cli(&f, &args)?;
        let mut typing = shell.stdin.take().context("stdin")?;
        std::io::Write::write_all(&mut typing, stdin)?;
        let mut lines = gatehouse_tests::LineReader::spawn(shell.stdout.take().context("stdout")?);
        let connected = lines
            .wait_for(Duration::from_secs(20), |l| l.contains("UTC"))
            .is_ok();
        let _ = shell.kill();
        drop(typing);
        let out = shell.wait_with_output()?;
        Ok((connected, String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    // The org asks nothing: a shell opens without the passphrase.
    set_policy(r#"{"connect_needs_presence": false}"#)?;
    let (connected, err) = connect(&[], b"show clock\r")?;
    assert!(connected, "{err}");
    // The org says so: without the passphrase (no terminal) nothing opens,
    // the error says why; a wrong passphrase is refused.
    set_policy(r#"{"connect_needs_presence": true}"#)?;
    let (connected, err) = connect(&[], b"show clock\r")?;
    assert!(!connected, "{err}");
    assert!(err.contains("connect_needs_presence"), "{err}");
    assert!(err.contains("needs proof of presence"), "{err}");
    // A same-uid program cannot lift the rule: a file where policies used
    // to live changes nothing, and setting it needs the passphrase.
    let old_dir = f.home.join("org-policy");
    std::fs::create_dir_all(&old_dir)?;
    std::fs::write(
        old_dir.join(format!("{lab_id}.json")),
        r#"{"connect_needs_presence": false}"#,
    )?;
    let (connected, err) = connect(&[], b"show clock\r")?;
    assert!(!connected, "{err}");
    let lifted = f.home.join("lift.json");
    std::fs::write(&lifted, r#"{"connect_needs_presence": false}"#)?;
    let lifted = lifted.display().to_string();
    let out = f.cli(
        &["org", "policy", "set", "lab", &lifted, "--passphrase-stdin"],
        "guess\n",
    )?;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{out:?}"
    );
    let shown = f.cli_ok(&["org", "policy", "show", "lab"], "")?;
    assert!(
        shown.contains(r#""connect_needs_presence": true"#),
        "{shown}"
    );
    if gatehouse_tests::users::is_root() {
        // Installed: the broker's copy is in the group-only state (root sees
        // it); the user's uid can neither read nor replace it.
        let stored = find_file(&f.group_state_root(), &format!("{lab_id}.json"))
            .context("the policy in the group-only state")?;
        assert!(stored.parent().is_some_and(|p| p.ends_with("org-policy")));
        for script in ["cat \"$0\"", "echo {} > \"$0\""] {
            let out = f
                .scratch
                .command("sh")
                .args(["-c", script, &stored.display().to_string()])
                .output()?;
            assert!(!out.status.success(), "{script}: {out:?}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
                "{script}: {out:?}"
            );
        }
    }
    let (connected, err) = connect(&["--passphrase-stdin"], b"guess\nshow clock\r")?;
    assert!(!connected, "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
    std::thread::sleep(Duration::from_millis(1100));
    // The person, with the passphrase: the shell opens.
    let (connected, err) = connect(
        &["--passphrase-stdin"],
        format!("{PASSPHRASE}\nshow clock\r").as_bytes(),
    )?;
    assert!(connected, "{err}");
    // The broker enforces it, not the CLI: a cli-role process that asks
    // sessiond for the shell directly, without a ticket or with a forged
    // one, gets no credential (the test peer installed as `gatehouse`).
    gatehouse_tests::install(
        &f.scratch,
        &gatehouse_tests::find_binary("gatehouse-test-peer")?,
        "gatehouse",
    )?;
    if gatehouse_tests::users::is_root() {
        gatehouse_tests::broker::install_boundary(f.install_dir())?;
    }
    let mut cli = f.peer(PeerRole::Cli)?;
    assert_eq!(cli.role().as_deref(), Some("cli"), "{}", cli.hello);
    for ticket in [None, Some(SecretBytes::copy_from(&[7u8; 32]))] {
        let v = cli.call_json(
            &serde_json::json!({ "sessiond": SessiondRequest::OpenShell {
            host: HostRef { host: "sw1".into(), org: Some("lab".into()) },
            cols: 80,
            rows: 24,
            term: "xterm".into(),
            presence_ticket: ticket,
        } }),
        )?;
        assert!(v.get("err").is_some(), "{v}");
        assert!(v.to_string().contains("connect_needs_presence"), "{v}");
    }
    Ok(())
}

#[test]
fn a_keychain_password_goes_to_another_host_key_only_after_presence() -> Result<()> {
    if !boundary_available("a_keychain_password_goes_to_another_host_key_only_after_presence") {
        return Ok(());
    }
    let mut sshd = gatehouse_tests::sshd::Sshd::start()?;
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        boundary: true,
        ..Options::default()
    })?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(
        &["keychain", "set", "dev-pw"],
        &format!("{}\n", sshd.password),
    )?;
    let port = sshd.port.to_string();
    let user = sshd.user.clone();
    let add = |f: &BrokerFixture, name: &str, key: &str| {
        f.cli_ok(
            &[
                "host",
                "add",
                name,
                "--private",
                "--address",
                "127.0.0.1",
                "--port",
                &port,
                "--vendor",
                "linux",
                "--ssh-user",
                &user,
                "--host-key",
                key,
                "--password-ref",
                "keychain:dev-pw",
            ],
            "",
        )
    };
    add(&f, "real", &sshd.host_key_fingerprint)?;
    f.start_sessiond()?;
    let exec = |f: &BrokerFixture, name: &str| {
        f.cli(&["exec", name, "--org", "private", "--", "id -un"], "")
    };
    // First use binds dev-pw to user@127.0.0.1:PORT with this host key.
    let out = exec(&f, "real")?;
    assert!(out.status.success(), "{out:?}");
    // The same address, port and user behind another host key (a server the
    // attacker put there), and a record pinning that key.
    sshd.restart_with_new_host_key()?;
    add(&f, "impostor", &sshd.host_key_fingerprint)?;
    let out = exec(&f, "impostor")?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("dev-pw") && err.contains("is bound to"),
        "{err}"
    );
    assert!(err.contains(&sshd.host_key_fingerprint), "{err}");
    // Logged as refused, naming the entry and the new host key.
    let rows = credential_rows(&f)?;
    assert!(
        rows.iter()
            .any(|r| r.credential.ends_with("(keychain:dev-pw)")
                && r.destination.contains(&sshd.host_key_fingerprint)
                && r.refused.is_some()),
        "{rows:#?}"
    );
    // A person binds the new key with the passphrase: now it goes there.
    let place = format!("{}@127.0.0.1:{port}", sshd.user);
    let out = f.cli(
        &[
            "keychain",
            "bind",
            "dev-pw",
            &place,
            "--host-key",
            &sshd.host_key_fingerprint,
        ],
        "",
    )?;
    assert!(!out.status.success(), "{out:?}");
    f.cli_ok(
        &[
            "keychain",
            "bind",
            "dev-pw",
            &place,
            "--host-key",
            &sshd.host_key_fingerprint,
            "--passphrase-stdin",
        ],
        &format!("{PASSPHRASE}\n"),
    )?;
    let out = exec(&f, "impostor")?;
    assert!(out.status.success(), "{out:?}");
    f.sessiond = None;
    Ok(())
}

/// Removes the package however the test ends (`apt-get remove`, then a
/// purge so the system keeps no trace of the test).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("apt-get")
            .args(["remove", "-y", "gatehouse"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        let _ = std::process::Command::new("dpkg")
            .args(["--purge", "gatehouse"])
            .output();
    }
}

#[test]
fn the_debian_package_installs_the_boundary_into_the_system() -> Result<()> {
    if !boundary_available("the_debian_package_installs_the_boundary_into_the_system") {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let out_dir = tempfile::tempdir()?;
    let from = gatehouse_tests::find_binary("gatehouse")?;
    let from = from.parent().context("binary dir")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deb");
    let built = std::process::Command::new(&script)
        .args(["--profile", "debug", "--from"])
        .arg(from)
        .arg("--out")
        .arg(out_dir.path())
        .output()?;
    anyhow::ensure!(built.status.success(), "scripts/deb: {built:?}");
    let deb = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
    let file = deb.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        file.starts_with("gatehouse_") && file.ends_with(".deb"),
        "{}",
        deb.display()
    );
    // Into the real system, as a person would.
    let _installed = Installed;
    let apt = std::process::Command::new("apt-get")
        .args(["install", "-y"])
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()?;
    anyhow::ensure!(apt.status.success(), "apt-get install: {apt:?}");
    let group = nix::unistd::Group::from_name("gatehouse")?.context("no group gatehouse")?;
    let gid = group.gid.as_raw();
    for b in [
        "gatehouse",
        "gatehouse-broker",
        "gatehouse-sessiond",
        "gatehouse-copilotd",
        "gatehouse-ui",
    ] {
        let m = std::fs::metadata(Path::new("/usr/bin").join(b))?;
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, gid, 0o2755),
            "/usr/bin/{b}"
        );
    }
    let state = std::fs::metadata("/var/lib/gatehouse")?;
    assert_eq!(
        (state.uid(), state.gid(), state.mode() & 0o7777),
        (0, gid, 0o070)
    );
    // The user (not in the group) checks it in one command.
    let scratch = gatehouse_tests::Scratch::primary()?;
    let home = scratch.user_dir("deb-home")?;
    let cli = |args: &[&str]| {
        scratch
            .command("/usr/bin/gatehouse")
            .env("GATEHOUSE_HOME", &home)
            .args(["--profile", "debtest"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let up = cli(&["up", "--keychain", "keyutils"])?;
    anyhow::ensure!(up.status.success(), "gatehouse up: {up:?}");
    let audit = cli(&["audit", "isolation", "--json"]);
    let down = cli(&["down"]);
    let audit = audit?;
    let rows: serde_json::Value = serde_json::from_slice(&audit.stdout)
        .with_context(|| String::from_utf8_lossy(&audit.stderr).into_owned())?;
    for name in [
        "boundary: setgid install",
        "boundary: group-only state",
        "boundary: Debian package install",
    ] {
        let row = rows
            .as_array()
            .and_then(|r| r.iter().find(|r| r["check"] == name))
            .with_context(|| format!("no row {name}: {rows:#}"))?;
        assert_eq!(row["outcome"], "pass", "{row}");
    }
    assert!(down?.status.success());
    // Removed: the binaries go.
    drop(_installed);
    assert!(!Path::new("/usr/bin/gatehouse-broker").exists());
    Ok(())
}

/// The first file named `name` under `dir` (depth-first), as root sees it.
fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

/// The app's side of the same rule (the broker's answer to a ui-role peer,
/// the installed app's binary name): with the boundary on, a credential
/// revealed to the app needs the passphrase as it does from the CLI (under
/// X11 a same-uid program clicks Reveal); every try is a credential-log row.
#[test]
fn revealing_a_password_to_the_app_needs_the_passphrase() -> Result<()> {
    if !boundary_available("revealing_a_password_to_the_app_needs_the_passphrase") {
        return Ok(());
    }
    let f = installed()?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let secret = format!("app-device-pw-{}", std::process::id());
    f.cli_ok(
        &[
            "host",
            "add",
            "edge2",
            "--private",
            "--address",
            "10.0.0.3",
            "--vendor",
            "linux",
            "--ssh-user",
            "ops",
            "--password-stdin",
        ],
        &format!("{secret}\n"),
    )?;
    let store = gatehouse_records::Store::open(&f.home.join(gatehouse_records::store::FILE_NAME))?;
    let stored = store.resolve(gatehouse_records::Kind::Host, None, "edge2")?;
    let reveal = |presence: Option<&str>| BrokerRequest::RevealFields {
        items: vec![gatehouse_ipc::broker::OpenItem {
            address: gatehouse_records::store::field_address(
                &stored.meta,
                "ssh.password",
                &stored.plain,
            ),
            sealed: stored.sealed["ssh.password"].clone(),
        }],
        presence: presence.map(|p| SecretBytes::copy_from(p.as_bytes())),
    };
    let mut ui = f.peer(PeerRole::Ui)?;
    assert_eq!(ui.role().as_deref(), Some("ui"), "{}", ui.hello);
    // A click on Reveal (no passphrase): refused, saying why.
    let e = ui.err(&reveal(None))?;
    let why = e["PresenceRequired"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("ssh.password") && why.contains("from the app"),
        "{e}"
    );
    // A wrong passphrase: refused.
    let e = ui.err(&reveal(Some("not-the-passphrase")))?;
    assert!(e.get("WrongPassphrase").is_some(), "{e}");
    std::thread::sleep(Duration::from_millis(1100));
    // The person, with the passphrase: opened.
    let ok = ui.ok(&reveal(Some(PASSPHRASE)))?;
    let opened: gatehouse_ipc::broker::BrokerResponse = serde_json::from_value(ok)?;
    let gatehouse_ipc::broker::BrokerResponse::Opened(values) = opened else {
        bail!("not an Opened answer: {opened:?}");
    };
    assert!(
        values
            .first()
            .is_some_and(|v| String::from_utf8_lossy(v.expose()).contains(&secret)),
        "the revealed value is the password"
    );
    // Every try is in the credential log: two refusals, then the reveal.
    let rows: Vec<_> = credential_rows(&f)?
        .into_iter()
        .filter(|r| {
            r.operation == gatehouse_ipc::broker::Operation::RevealFields
                && r.destination.starts_with("revealed to ui")
        })
        .collect();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        rows[0]
            .refused
            .as_deref()
            .is_some_and(|e| e.contains("proof of presence")),
        "{rows:#?}"
    );
    assert!(
        rows[1].refused.is_some() && rows[2].refused.is_none(),
        "{rows:#?}"
    );
    Ok(())
}

/// A shell the app opens to a host of an org whose policy says
/// `connect_needs_presence` needs the broker's shell ticket like `connect`:
/// a ui-role process asking sessiond without one, or with a forged one,
/// gets no credential; the broker gives the app a ticket only for the
/// passphrase. (Runs in a development build too: the org's policy asks it
/// of every shell, as it always asked `connect`.)
#[test]
fn a_shell_the_app_opens_to_a_presence_org_needs_a_ticket() -> Result<()> {
    let f = lab()?;
    let org = f.org_id("lab")?;
    f.set_org_policy("lab", r#"{"connect_needs_presence": true}"#, PASSPHRASE)?;
    let mut ui = f.peer(PeerRole::Ui)?;
    assert_eq!(ui.role().as_deref(), Some("ui"), "{}", ui.hello);
    for ticket in [None, Some(SecretBytes::copy_from(&[7u8; 32]))] {
        let v = ui.call_json(
            &serde_json::json!({ "sessiond": SessiondRequest::OpenShell {
            host: HostRef { host: "sw1".into(), org: Some("lab".into()) },
            cols: 80,
            rows: 24,
            term: "xterm".into(),
            presence_ticket: ticket,
        } }),
        )?;
        assert!(v.get("err").is_some(), "{v}");
        let text = v.to_string();
        assert!(text.contains("connect_needs_presence"), "{v}");
    }
    // The ticket: none without the passphrase, none for a wrong one.
    let store = gatehouse_records::Store::open(&f.home.join(gatehouse_records::store::FILE_NAME))?;
    let scope = gatehouse_ipc::broker::KeyScope::Org(org);
    let sw1 = store.resolve(gatehouse_records::Kind::Host, Some(&scope), "sw1")?;
    let ticket = |presence: Option<&str>| BrokerRequest::ShellTicket {
        scope: sw1.meta.scope.clone(),
        record_id: sw1.meta.id.clone(),
        presence: presence.map(|p| SecretBytes::copy_from(p.as_bytes())),
    };
    let e = ui.err(&ticket(None))?;
    assert!(e.get("PresenceRequired").is_some(), "{e}");
    let e = ui.err(&ticket(Some("guess")))?;
    assert!(e.get("WrongPassphrase").is_some(), "{e}");
    std::thread::sleep(Duration::from_millis(1100));
    let ok = ui.ok(&ticket(Some(PASSPHRASE)))?;
    let issued: gatehouse_ipc::broker::BrokerResponse = serde_json::from_value(ok)?;
    assert!(
        matches!(
            issued,
            gatehouse_ipc::broker::BrokerResponse::ShellTicket(Some(_))
        ),
        "{issued:?}"
    );
    Ok(())
}

/// The attack of the issue through the REAL window of the installed app
/// (setgid, under Xvfb): a same-uid program drives it with xdotool (XTEST,
/// what any X11 client may do). Reveal and a terminal tab to a host of an
/// org whose policy says `connect_needs_presence` give nothing until the
/// account passphrase is typed into the app's prompt; a wrong one is
/// refused. Read from outside: the credential log (every reveal, refused
/// or not, and every credential released to sessiond) and every byte the
/// lab device received.
#[test]
fn the_installed_app_reveals_and_opens_shells_only_with_the_passphrase() -> Result<()> {
    use gatehouse_ipc::broker::Operation;
    if !boundary_available("the_installed_app_reveals_and_opens_shells_only_with_the_passphrase") {
        return Ok(());
    }
    let x = gatehouse_tests::xvfb::Xvfb::start()?;
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        boundary: true,
        ..Options::default()
    })?;
    // The real app in place of the test peer, setgid like the rest.
    gatehouse_tests::install(
        &f.scratch,
        &gatehouse_tests::find_binary("gatehouse-ui")?,
        "gatehouse-ui",
    )?;
    gatehouse_tests::broker::install_boundary(f.install_dir())?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(&["lab", "up", "--log-data"], "")?;
    let result = (|| {
        f.set_org_policy("lab", r#"{"connect_needs_presence": true}"#, PASSPHRASE)?;
        f.start_sessiond()?;
        let status = f.cli_ok(&["status"], "")?;
        assert!(status.contains("privilege boundary: ON"), "{status}");
        let (mut app, win) = x.open_app(&f, &[])?;
        x.focus(&win)?;
        std::thread::sleep(Duration::from_secs(2));

        // Rows of the credential log that are reveals to the app.
        let reveals = || -> Result<Vec<gatehouse_ipc::audit::CredentialRow>> {
            Ok(credential_rows(&f)?
                .into_iter()
                .filter(|r| {
                    r.operation == Operation::RevealFields
                        && r.destination.starts_with("revealed to ui")
                })
                .collect())
        };
        let released = || -> Result<usize> {
            Ok(credential_rows(&f)?
                .iter()
                .filter(|r| r.operation == Operation::ReleasePassword && r.refused.is_none())
                .count())
        };
        let wait_reveals = |what: &str, n: usize| {
            gatehouse_tests::proc::wait_until(what, Duration::from_secs(60), || {
                Ok(reveals()?.len() >= n)
            })
        };

        // Hosts (Ctrl+1), the first host, Reveal (V): the broker refuses
        // the click, the app asks for the passphrase.
        x.keys(&["ctrl+1"], 12)?;
        std::thread::sleep(Duration::from_millis(500));
        x.keys(&["Down"], 12)?;
        std::thread::sleep(Duration::from_millis(1500));
        x.keys(&["v"], 12)?;
        wait_reveals("the app's first reveal", 1)?;
        let rows = reveals()?;
        assert!(
            rows[0]
                .refused
                .as_deref()
                .is_some_and(|e| e.contains("proof of presence")),
            "{rows:#?}"
        );
        // A wrong passphrase typed into the prompt: refused.
        std::thread::sleep(Duration::from_millis(500));
        x.type_text("not-the-passphrase", 5)?;
        x.keys(&["Return"], 12)?;
        wait_reveals("the reveal with a wrong passphrase", 2)?;
        let rows = reveals()?;
        assert!(
            rows[1]
                .refused
                .as_deref()
                .is_some_and(|e| e.contains("wrong passphrase")),
            "{rows:#?}"
        );
        // The person's passphrase (after the throttle's delay): revealed.
        std::thread::sleep(Duration::from_millis(1500));
        x.type_text(PASSPHRASE, 5)?;
        x.keys(&["Return"], 12)?;
        wait_reveals("the reveal with the passphrase", 3)?;
        let rows = reveals()?;
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert!(rows[2].refused.is_none(), "{rows:#?}");

        // A terminal tab to sw1 (Terminals, Ctrl+Shift+T, the host, Enter): no
        // credential goes to sessiond, nothing reaches the device.
        assert_eq!(released()?, 0);
        x.keys(&["ctrl+2"], 12)?;
        std::thread::sleep(Duration::from_millis(500));
        x.keys(&["ctrl+shift+t"], 12)?;
        std::thread::sleep(Duration::from_millis(500));
        x.type_text("sw1", 5)?;
        x.keys(&["Return"], 12)?;
        std::thread::sleep(Duration::from_secs(3));
        x.keys(&["Return"], 12)?;
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(released()?, 0, "a shell opened without the passphrase");
        let log = f.lab_log("sw1")?;
        // The passphrase typed into the tab's prompt: the shell opens and
        // what is typed reaches the device.
        x.type_text(PASSPHRASE, 5)?;
        x.keys(&["Return"], 12)?;
        gatehouse_tests::proc::wait_until(
            "the shell's credential release",
            Duration::from_secs(60),
            || Ok(released()? >= 1),
        )?;
        std::thread::sleep(Duration::from_secs(2));
        x.type_text("show clock", 5)?;
        x.keys(&["Return"], 12)?;
        gatehouse_tests::proc::wait_until(
            "the device to receive what was typed",
            Duration::from_secs(60),
            || gatehouse_tests::device_received(&log, "show clock"),
        )?;
        if let Some(s) = app.has_exited()? {
            bail!("the app exited during the test: {s}");
        }
        Ok(())
    })();
    let _ = f.cli(&["lab", "down"], "");
    result
}
