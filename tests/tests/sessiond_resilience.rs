//! One bad client never takes sessiond down for others: floods of malformed,
//! truncated and oversized frames, a client killed in the middle of a
//! session, requests naming sessions of other processes, a daemon asking for
//! a shell. (Peers of no role are refused by the shared ipc server: see
//! broker_roles.rs.) After
//! each, a read-only command on a lab device still runs.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::sessiond::{HostRef, SessiondRequest};
use gatehouse_tests::broker::{BrokerFixture, Options};
use gatehouse_tests::{LineReader, proc};
use serde_json::json;

fn still_works(f: &BrokerFixture) -> Result<()> {
    let out = f.cli_ok(
        &["exec", "r1", "--org", "lab", "--", "/system identity print"],
        "",
    )?;
    anyhow::ensure!(out.contains("R1"), "{out}");
    Ok(())
}

#[test]
fn bad_clients_do_not_disturb_sessiond() -> Result<()> {
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        ..Options::default()
    })?;
    let init = f.cli(
        &["account", "init", "--passphrase-stdin"],
        "resilience-pass\n",
    )?;
    anyhow::ensure!(init.status.success());
    f.cli_ok(&["lab", "up"], "")?;
    f.start_sessiond()?;
    let pid = f.sessiond_pid();
    still_works(&f)?;

    // 3 processes × 40 connections of garbage, from a valid role (the ui peer).
    let mut floods = Vec::new();
    for _ in 0..3 {
        let mut c = f.command(&f.install_dir().join("gatehouse-ui"));
        c.args(["garbage"])
            .arg(f.runtime())
            .args(["40", "sessiond.sock"])
            .stdout(Stdio::piped());
        floods.push(c.spawn()?);
    }
    for c in floods {
        let out = c.wait_with_output()?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "garbage done 40",
            "every garbage connection is closed by sessiond"
        );
    }
    assert!(proc::is_alive(pid));
    still_works(&f)?;

    // A client killed in the middle of a session: the session ends, sessiond lives.
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args(["--profile", &f.profile, "connect", "sw1", "--org", "lab"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut shell = c.spawn()?;
    let mut typing = shell.stdin.take().context("stdin")?;
    std::io::Write::write_all(&mut typing, b"show clock\r")?;
    let mut lines = LineReader::spawn(shell.stdout.take().context("stdout")?);
    lines.wait_for(Duration::from_secs(15), |l| l.contains("UTC"))?;
    proc::kill9(shell.id())?;
    let _ = shell.wait();
    let mut ui = f.peer(PeerRole::Ui)?;
    proc::wait_until(
        "the killed client's session to end",
        Duration::from_secs(10),
        || {
            let v = ui.call_json(&json!({ "sessiond": SessiondRequest::List }))?;
            Ok(v["ok"]["Sessions"].as_array().is_some_and(|a| a.is_empty()))
        },
    )?;
    assert!(proc::is_alive(pid));

    // Keystrokes for a session of another process, for no session: refused.
    let v = ui.call_json(&json!({ "sessiond": SessiondRequest::Input {
        session: 1,
        data: SecretBytes::copy_from(b"reload\r"),
    } }))?;
    assert!(v["err"].get("NoSuchSession").is_some(), "{v}");
    // A daemon may not open an interactive shell.
    let mut copilot = f.peer(PeerRole::Copilotd)?;
    let v = copilot.call_json(&json!({ "sessiond": SessiondRequest::OpenShell {
        host: HostRef { host: "sw1".into(), org: Some("lab".into()) },
        cols: 80,
        rows: 24,
        term: "xterm".into(),
        presence_ticket: None,
    } }))?;
    assert!(v["err"].get("Forbidden").is_some(), "{v}");
    still_works(&f)?;
    let _ = f.cli(&["lab", "down"], "");
    Ok(())
}
