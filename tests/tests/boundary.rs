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
