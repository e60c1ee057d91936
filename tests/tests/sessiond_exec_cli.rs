//! `gatehouse exec` as a person uses it, against the real broker, sessiond
//! and the simulated lab (`gatehouse lab up --log-data`): every failure says
//! what and why on stderr with a distinct exit status, and a multi-line
//! change (IOS `configure terminal`, `hostname X`, `end`) is classified line
//! by line, approved once, and runs line by line on one shell — stopping at
//! the first line the device refuses.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_tests::broker::{BrokerFixture, Options};
use serde_json::Value;

struct Lab {
    f: BrokerFixture,
    /// Device name → its event log.
    logs: Vec<(String, std::path::PathBuf)>,
}

impl Lab {
    fn start() -> Result<Lab> {
        let mut f = BrokerFixture::start(Options {
            real_sessiond: true,
            ..Options::default()
        })?;
        f.cli_ok(
            &["account", "init", "--passphrase-stdin"],
            "exec-cli-test-passphrase\n",
        )?;
        f.cli_ok(&["lab", "up", "--log-data"], "")?;
        f.start_sessiond()?;
        let logs = f.lab_logs()?;
        Ok(Lab { f, logs })
    }

    /// Command lines device `name` logged (kind "command").
    fn commands(&self, name: &str) -> Result<Vec<String>> {
        let (_, log) = self
            .logs
            .iter()
            .find(|(n, _)| n == name)
            .context("no such device")?;
        Ok(std::fs::read_to_string(log)?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "command")
            .filter_map(|e| e["text"].as_str().map(str::to_string))
            .collect())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.f.cli(&["lab", "down"], "");
    }
}

/// Exit status and stderr of a failed `gatehouse ARGS`.
fn fails(f: &BrokerFixture, args: &[&str]) -> Result<(i32, String)> {
    let o = f.cli(args, "")?;
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.success() {
        bail!("{args:?} succeeded: {}", String::from_utf8_lossy(&o.stdout));
    }
    Ok((o.status.code().unwrap_or(-1), stderr))
}

#[test]
fn exec_failures_say_what_and_why() -> Result<()> {
    let lab = Lab::start()?;
    let f = &lab.f;
    // Unknown host.
    let (code, err) = fails(f, &["exec", "nosuch", "--org", "lab", "--", "show version"])?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no host \"nosuch\""), "{err}");
    // Unknown organization.
    let (_, err) = fails(f, &["exec", "sw1", "--org", "nope", "--", "show version"])?;
    assert!(err.contains("nope"), "{err}");
    // A gated command without --request: what it is and how to ask.
    let (code, err) = fails(f, &["exec", "r1", "--org", "lab", "--", "/system reboot"])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("approval") && err.contains("--request"),
        "{err}"
    );
    // A line the device refuses: the device's words, exit 1.
    let (code, err) = fails(f, &["exec", "sw1", "--org", "lab", "--", "show frobnicate"])?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the device refused line 1 \"show frobnicate\": % Invalid input"),
        "{err}"
    );
    // A command line with a control character sessiond will not send.
    let (code, err) = fails(
        f,
        &["exec", "sw1", "--org", "lab", "--", "show version\u{7}"],
    )?;
    assert_ne!(code, 0);
    assert!(err.contains("control character"), "{err}");
    // Empty script.
    let empty = f.scratch.write_user_file("empty.txt", "\n\n", 0o600)?;
    let (_, err) = fails(
        f,
        &[
            "exec",
            "sw1",
            "--org",
            "lab",
            "--script",
            &empty.display().to_string(),
        ],
    )?;
    assert!(err.contains("holds no command line"), "{err}");
    assert!(
        !lab.commands("sw1")?
            .iter()
            .any(|c| c.contains("frobnicate\u{7}"))
    );
    Ok(())
}

/// `gatehouse exec ARGS` in the background with `stdin`; returns it and the
/// approval id it filed.
fn exec_request(f: &BrokerFixture, args: &[&str], stdin: &str) -> Result<(Child, u64)> {
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args(["--profile", &f.profile])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let list: Value = serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
        if let Some(id) = list
            .as_array()
            .and_then(|a| a.iter().find(|r| r["state"] == "Pending"))
            .and_then(|r| r["id"].as_u64())
        {
            return Ok((child, id));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("no request filed")
}

#[test]
fn a_multi_line_change_is_one_approval_run_line_by_line() -> Result<()> {
    let lab = Lab::start()?;
    let f = &lab.f;
    let args = ["exec", "r1", "--org", "lab", "--request", "--script", "-"];
    let change = "/ip address\nadd address=10.33.0.1/24 interface=ether2\n/\n";
    let (child, id) = exec_request(f, &args, change)?;
    let shown: Value =
        serde_json::from_str(&f.cli_ok(&["approvals", "show", &id.to_string(), "--json"], "")?)?;
    assert_eq!(
        shown["action"]["command"], "/ip address\nadd address=10.33.0.1/24 interface=ether2\n/",
        "{shown}"
    );
    // Classified line by line, following the menu: the add is a change.
    assert_eq!(shown["class"], "moderate", "{shown}");
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let out = child.wait_with_output()?;
    assert!(out.status.success(), "{out:?}");
    let cmds = lab.commands("r1")?;
    let at = cmds
        .iter()
        .position(|c| c == "/ip address")
        .context("the first line reached r1")?;
    assert_eq!(
        cmds[at..at + 3],
        [
            "/ip address",
            "add address=10.33.0.1/24 interface=ether2",
            "/"
        ]
    );
    let listed = f.cli_ok(
        &["exec", "r1", "--org", "lab", "--", "/ip address print"],
        "",
    )?;
    assert!(listed.contains("10.33.0.1/24"), "{listed}");

    // A refused line stops the change; the lines after it are not sent.
    let (child, id) = exec_request(
        f,
        &args,
        "/ip address\nfrobnicate\nadd address=10.44.0.1/24 interface=ether2\n/\n",
    )?;
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the device refused line 2 \"frobnicate\": bad command name")
            && err.contains("2 later line(s) not sent"),
        "{err}"
    );
    assert!(!lab.commands("r1")?.iter().any(|c| c.contains("10.44.0.1")));
    Ok(())
}

/// A request a person rejects never reaches sessiond, yet it is a refusal:
/// `gatehouse audit log` has its row — the host, the organization by name,
/// the request, the command (sealed, opened while signed in), who refused
/// it and why — and the device never saw the command.
#[test]
fn a_rejected_request_leaves_an_audit_row() -> Result<()> {
    let lab = Lab::start()?;
    let f = &lab.f;
    let change = "/ip address add address=10.55.0.1/24 interface=ether2";
    let args = ["exec", "r1", "--org", "lab", "--request", "--", change];
    let (child, id) = exec_request(f, &args, "")?;
    f.cli_ok(
        &[
            "approvals",
            "reject",
            &id.to_string(),
            "--reason",
            "change window closed",
        ],
        "",
    )?;
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!lab.commands("r1")?.iter().any(|c| c.contains("10.55.0.1")));

    let log: Value = serde_json::from_str(&f.cli_ok(&["audit", "log", "--json"], "")?)?;
    let rows = log.as_array().context("rows")?;
    let row = rows
        .iter()
        .find(|r| r["approval_id"].as_u64() == Some(id))
        .with_context(|| format!("no audit row for request {id}: {log:#}"))?;
    assert_eq!(row["outcome"], "refused", "{row:#}");
    assert_eq!(row["host"], "r1", "{row:#}");
    assert_eq!(row["org_name"], "lab", "{row:#}");
    assert_eq!(row["class"], "moderate", "{row:#}");
    assert_eq!(row["command"], change, "{row:#}");
    assert_eq!(row["requester"]["role"], "cli", "{row:#}");
    let reason = row["reason"].as_str().context("reason")?;
    assert!(
        reason.starts_with("rejected by cli pid ") && reason.ends_with(": change window closed"),
        "{reason}"
    );
    // Only one row for it: the refusal is written once.
    assert_eq!(
        rows.iter()
            .filter(|r| r["approval_id"].as_u64() == Some(id))
            .count(),
        1,
        "{log:#}"
    );
    // The table says the same to a person.
    let table = f.cli_ok(&["audit", "log", "--host", "r1"], "")?;
    let line = table
        .lines()
        .find(|l| l.contains("REFUSED: rejected by"))
        .with_context(|| table.clone())?;
    assert!(line.contains("lab") && line.contains(change), "{table}");
    Ok(())
}
