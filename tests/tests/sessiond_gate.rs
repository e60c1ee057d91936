//! The gate in front of devices, end to end: the real broker, the real
//! sessiond and simulated devices (`gatehouse lab up --log-data`, which log
//! every byte on arrival). Read-only commands run; a gated command without a
//! token, with a token for another command or host, another process's token,
//! a replayed or an expired token is refused and the device receives none
//! of its bytes; an edited command needs its own approval; the broker spends
//! a token before the device sees the command; every outcome is audited.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{Action, BrokerRequest};
use gatehouse_ipc::sessiond::{HostRef, SessiondRequest};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};
use serde_json::{Value, json};

struct Lab {
    f: BrokerFixture,
    /// Device name → its event log.
    logs: Vec<(String, std::path::PathBuf)>,
}

impl Lab {
    fn start(ttl_secs: u64) -> Result<Lab> {
        let mut f = BrokerFixture::start(Options {
            real_sessiond: true,
            broker_args: vec!["--approval-ttl-secs".into(), ttl_secs.to_string()],
            ..Options::default()
        })?;
        let init = f.cli(
            &["account", "init", "--passphrase-stdin"],
            "gate-test-passphrase\n",
        )?;
        assert!(init.status.success(), "{init:?}");
        f.cli_ok(&["lab", "up", "--log-data"], "")?;
        f.start_sessiond()?;
        let logs = f.lab_logs()?;
        Ok(Lab { f, logs })
    }

    /// Every event the device `name` logged.
    fn events(&self, name: &str) -> Result<Vec<Value>> {
        let (_, path) = self
            .logs
            .iter()
            .find(|(n, _)| n == name)
            .context("no such device")?;
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Whether any byte sequence containing `needle` reached device `name`
    /// (raw data events, command lines and exec requests).
    fn received(&self, name: &str, needle: &str) -> Result<bool> {
        Ok(self
            .events(name)?
            .iter()
            .any(|e| e["text"].as_str().is_some_and(|t| t.contains(needle))))
    }

    fn cleanup(&self) {
        let _ = self.f.cli(&["lab", "down"], "");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn host(name: &str) -> HostRef {
    HostRef {
        host: name.into(),
        org: Some("lab".into()),
    }
}

fn sessiond(peer: &mut Peer, req: SessiondRequest) -> Result<Value> {
    peer.call_json(&json!({ "sessiond": req }))
}

fn prepared_action(peer: &mut Peer, host_name: &str, command: &str) -> Result<Action> {
    let v = sessiond(
        peer,
        SessiondRequest::Prepare {
            host: host(host_name),
            command: command.into(),
        },
    )?;
    Ok(serde_json::from_value(
        v["ok"]["Prepared"]["action"].clone(),
    )?)
}

/// Files a request from `peer` for `command` on `host_name`; returns its id.
fn request(peer: &mut Peer, host_name: &str, command: &str) -> Result<u64> {
    let action = prepared_action(peer, host_name, command)?;
    let ok = peer.ok(&BrokerRequest::RequestApproval { action })?;
    ok["ApprovalRequested"]["id"].as_u64().context("id")
}

/// The token `peer` collects for request `id` (after a person approved it).
fn token(peer: &mut Peer, id: u64) -> Result<Value> {
    let ok = peer.ok(&BrokerRequest::ApprovalOutcome { id })?;
    ok["Outcome"]["Approved"]
        .as_object()
        .map(|t| Value::Object(t.clone()))
        .with_context(|| format!("request {id} not approved: {ok}"))
}

fn exec_with(
    peer: &mut Peer,
    host_name: &str,
    command: &str,
    token: Option<&Value>,
) -> Result<Value> {
    let mut req = serde_json::to_value(SessiondRequest::Exec {
        host: host(host_name),
        command: command.into(),
        approval: None,
        record: true,
    })?;
    req["Exec"]["approval"] = token.cloned().unwrap_or(Value::Null);
    peer.call_json(&json!({ "sessiond": req }))
}

fn output_of(v: &Value) -> String {
    v["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .filter_map(|e| e["Output"]["data"].as_array())
                .flatten()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect::<Vec<u8>>()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn error_kind(v: &Value) -> String {
    match &v["err"] {
        Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
        Value::String(s) => s.clone(),
        other => format!("not an error: {other} (whole reply {v})"),
    }
}

#[test]
fn gated_commands_need_exactly_their_own_unspent_token() -> Result<()> {
    let lab = Lab::start(3)?;
    let f = &lab.f;
    let mut ui = f.peer(PeerRole::Ui)?;
    let mut copilot = f.peer(PeerRole::Copilotd)?;

    // Read-only runs at once, and its output comes back.
    let print = exec_with(&mut copilot, "r1", "/ip address print", None)?;
    assert!(print.get("ok").is_some(), "{print}");
    assert!(
        output_of(&print).contains("ADDRESS"),
        "output: {}",
        output_of(&print)
    );

    // A moderate command without a token: refused, the device got nothing.
    let add = "/ip address add address=10.77.0.1/24 interface=ether2";
    let refused = exec_with(&mut copilot, "r1", add, None)?;
    assert_eq!(error_kind(&refused), "ApprovalRequired", "{refused}");
    assert!(!lab.received("r1", "10.77.0.1")?);

    // A person approves the ui peer's request (the CLI is another process).
    let id = request(&mut ui, "r1", add)?;
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let t = token(&mut ui, id)?;

    // The token for another command, another host, or presented by another process: refused.
    let other_cmd = exec_with(
        &mut ui,
        "r1",
        "/ip address add address=10.88.0.1/24 interface=ether2",
        Some(&t),
    )?;
    assert_eq!(error_kind(&other_cmd), "Approval", "{other_cmd}");
    assert!(
        other_cmd["err"]["Approval"]["Mismatch"] == "Command",
        "{other_cmd}"
    );
    let other_host = exec_with(&mut ui, "sw1", add, Some(&t))?;
    assert!(
        other_host["err"]["Approval"]["Mismatch"] == "Host",
        "{other_host}"
    );
    let stolen = exec_with(&mut copilot, "r1", add, Some(&t))?;
    assert_eq!(error_kind(&stolen), "TokenNotYours", "{stolen}");
    assert!(!lab.received("r1", "10.77.0.1")?);
    assert!(!lab.received("r1", "10.88.0.1")?);
    assert!(!lab.received("sw1", "10.77.0.1")?);

    // The right token runs it — after the broker recorded the nonce as spent.
    let nonce_log = f.home.join("state").join("used-nonces.log");
    let ran = exec_with(&mut ui, "r1", add, Some(&t))?;
    assert!(ran.get("ok").is_some(), "{ran}");
    let arrived = lab
        .events("r1")?
        .into_iter()
        .find(|e| e["text"].as_str().is_some_and(|t| t.contains("10.77.0.1")))
        .context("the approved command reached the device")?;
    let spent_ms = std::fs::metadata(&nonce_log)?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    assert!(
        arrived["ts_ms"].as_u64().context("ts")? >= spent_ms,
        "the device saw the command at {} before the token was spent at {spent_ms}",
        arrived["ts_ms"]
    );
    let listed = exec_with(&mut ui, "r1", "/ip address print", None)?;
    assert!(
        output_of(&listed).contains("10.77.0.1"),
        "{}",
        output_of(&listed)
    );

    // Replayed: refused by the broker, nothing more reaches the device.
    let before = lab.events("r1")?.len();
    let replay = exec_with(&mut ui, "r1", add, Some(&t))?;
    assert!(replay["err"]["Approval"] == "Replayed", "{replay}");
    let after: Vec<Value> = lab.events("r1")?.into_iter().skip(before).collect();
    assert!(
        !after
            .iter()
            .any(|e| e["text"].as_str().is_some_and(|t| t.contains("10.77.0.1"))),
        "{after:?}"
    );

    // Expired (the broker here signs tokens valid for 3 s).
    let late_cmd = "/ip address add address=10.99.0.1/24 interface=ether3";
    let id = request(&mut ui, "r1", late_cmd)?;
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let late = token(&mut ui, id)?;
    std::thread::sleep(Duration::from_millis(3300));
    let expired = exec_with(&mut ui, "r1", late_cmd, Some(&late))?;
    assert!(expired["err"]["Approval"] == "Expired", "{expired}");
    assert!(!lab.received("r1", "10.99.0.1")?);

    // An edit is a new request, classified again, that needs its own approval.
    let id = request(
        &mut ui,
        "r1",
        "/ip address add address=10.55.0.1/24 interface=ether2",
    )?;
    let edited = "/system reboot";
    f.cli_ok(
        &["approvals", "approve", &id.to_string(), "--edit", edited],
        "",
    )?;
    let outcome = ui.ok(&BrokerRequest::ApprovalOutcome { id })?;
    let new_id = outcome["Outcome"]["Edited"]["new_id"]
        .as_u64()
        .with_context(|| format!("{outcome}"))?;
    let shown = ui.ok(&BrokerRequest::ShowApproval { id: new_id })?;
    assert_eq!(shown["Approval"]["class"], "dangerous", "{shown}");
    assert_eq!(shown["Approval"]["state"], "Pending", "{shown}");
    let pending = ui.ok(&BrokerRequest::ApprovalOutcome { id: new_id })?;
    assert_eq!(pending["Outcome"], "Pending", "{pending}");
    let without = exec_with(&mut ui, "r1", edited, None)?;
    assert_eq!(error_kind(&without), "ApprovalRequired", "{without}");
    assert!(!lab.received("r1", "10.55.0.1")?);
    assert!(!lab.received("r1", "reboot")?);

    // Org policy can block dangerous commands outright, whatever the approvals.
    let orgs: Value = serde_json::from_str(&f.cli_ok(&["org", "list", "--json"], "")?)?;
    let lab_id = orgs
        .as_array()
        .context("orgs")?
        .iter()
        .find(|o| o["name"] == "lab")
        .and_then(|o| o["id"].as_str())
        .context("lab org")?
        .to_string();
    f.set_org_policy(
        "lab",
        r#"{"allow":[],"block":[],"block_dangerous":true,"block_unknown":false}"#,
        "gate-test-passphrase",
    )?;
    let blocked = exec_with(&mut ui, "r1", edited, None)?;
    assert_eq!(error_kind(&blocked), "Blocked", "{blocked}");
    // A file where policies used to live (`<data>/org-policy/`, writable by
    // any program of the user) lifts nothing: sessiond asks the broker.
    let old_dir = f.home.join("org-policy");
    std::fs::create_dir_all(&old_dir)?;
    std::fs::write(old_dir.join(format!("{lab_id}.json")), "{}")?;
    let still_blocked = exec_with(&mut ui, "r1", edited, None)?;
    assert_eq!(error_kind(&still_blocked), "Blocked", "{still_blocked}");
    let still_ok = exec_with(&mut ui, "r1", "/system identity print", None)?;
    assert!(still_ok.get("ok").is_some(), "{still_ok}");
    assert!(!lab.received("r1", "reboot")?);

    // The audit log has the refusals and the execution, command texts opened.
    let log: Value = serde_json::from_str(&f.cli_ok(&["audit", "log", "--json"], "")?)?;
    let rows = log.as_array().context("rows")?;
    let find = |cmd: &str, outcome: &str| {
        rows.iter()
            .filter(|r| r["command"] == cmd && r["outcome"] == outcome)
            .count()
    };
    assert!(find(add, "refused") >= 4, "{log:#}");
    assert_eq!(find(add, "started"), 1, "{log:#}");
    assert_eq!(find(add, "exited"), 1, "{log:#}");
    let started = rows
        .iter()
        .find(|r| r["command"] == add && r["outcome"] == "started")
        .context("started row")?;
    assert_eq!(started["approver"]["role"], "cli", "{started}");
    assert_eq!(started["requester"]["role"], "ui", "{started}");
    assert_eq!(started["class"], "moderate", "{started}");
    // The command text is not in the log file in plaintext.
    let raw = std::fs::read_to_string(f.home.join("audit").join("sessions.jsonl"))?;
    assert!(
        !raw.contains("10.77.0.1"),
        "plaintext command in the audit log"
    );
    Ok(())
}

/// `gatehouse exec --request` in the background; returns the child and the id
/// of the request it filed.
fn exec_request(f: &BrokerFixture, command: &str) -> Result<(std::process::Child, u64)> {
    let mut c = f.command(&f.install_dir().join("gatehouse"));
    c.args([
        "--profile",
        &f.profile,
        "exec",
        "r1",
        "--org",
        "lab",
        "--request",
        "--",
        command,
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = c.spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value = serde_json::from_str(&f.cli_ok(&["approvals", "list", "--json"], "")?)?;
        if let Some(id) = list.as_array().and_then(|a| {
            a.iter()
                .find(|v| v["state"] == "Pending" && v["action"]["command"] == command)
                .and_then(|v| v["id"].as_u64())
        }) {
            return Ok((child, id));
        }
        if std::time::Instant::now() > deadline {
            bail!("no pending request for {command:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exec_request_waits_for_a_person_to_approve_reject_or_edit() -> Result<()> {
    let lab = Lab::start(60)?;
    let f = &lab.f;

    // Approved: runs, the device has the change.
    let add = "/ip address add address=10.11.0.1/24 interface=ether2";
    let (child, id) = exec_request(f, add)?;
    assert!(
        !lab.received("r1", "10.11.0.1")?,
        "sent before the decision"
    );
    let shown = f.cli_ok(&["approvals", "show", &id.to_string()], "")?;
    for want in [
        add,
        "r1 (routeros)",
        "moderate",
        "ssh.password of admin@r1",
        "cli pid",
    ] {
        assert!(
            shown.contains(want),
            "approvals show lacks {want:?}: {shown}"
        );
    }
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.received("r1", "10.11.0.1")?);

    // Rejected: exit 3, nothing sent.
    let add2 = "/ip address add address=10.22.0.1/24 interface=ether2";
    let (child, id) = exec_request(f, add2)?;
    f.cli_ok(
        &[
            "approvals",
            "reject",
            &id.to_string(),
            "--reason",
            "not today",
        ],
        "",
    )?;
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not today"));
    assert!(!lab.received("r1", "10.22.0.1")?);

    // Edited: the edit is classified again and needs its own approval; the
    // waiting exec then runs the edited text, never the original.
    let add3 = "/ip address add address=10.33.0.1/24 interface=ether2";
    let edit = "/ip address add address=10.44.0.1/24 interface=ether3";
    let (child, id) = exec_request(f, add3)?;
    let out = f.cli_ok(
        &["approvals", "approve", &id.to_string(), "--edit", edit],
        "",
    )?;
    // "request N edited; the edited command is request M and needs its own decision"
    let new_id: u64 = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .next_back()
        .with_context(|| format!("new request id in {out:?}"))?;
    assert_ne!(new_id, id);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !lab.received("r1", "10.44.0.1")?,
        "the edit ran before its own approval"
    );
    f.cli_ok(&["approvals", "approve", &new_id.to_string()], "")?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.received("r1", "10.44.0.1")?);
    assert!(!lab.received("r1", "10.33.0.1")?);
    Ok(())
}

/// Lines of the broker's credential-use log (`audit/credentials.jsonl`).
fn credential_rows(f: &BrokerFixture) -> Result<usize> {
    let path = f.home.join("audit").join("credentials.jsonl");
    Ok(std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count())
}

/// Authentication attempts the device `name` logged.
fn logins(lab: &Lab, name: &str) -> Result<usize> {
    Ok(lab
        .events(name)?
        .iter()
        .filter(|e| e["kind"] == "auth")
        .count())
}

#[test]
fn forged_and_replayed_tokens_release_no_credential_and_log_in_nowhere() -> Result<()> {
    let lab = Lab::start(60)?;
    let f = &lab.f;
    let mut ui = f.peer(PeerRole::Ui)?;
    let add = "/ip address add address=10.66.0.1/24 interface=ether2";
    let id = request(&mut ui, "r1", add)?;
    f.cli_ok(&["approvals", "approve", &id.to_string()], "")?;
    let t = token(&mut ui, id)?;

    // Forged: one bit of the signature flipped, and a fresh nonce with the
    // old signature (a token the broker never signed).
    let mut flipped = t.clone();
    let sig = flipped["signature"]
        .as_array_mut()
        .context("signature bytes")?;
    let b0 = sig[0].as_u64().context("byte")?;
    sig[0] = json!(b0 ^ 1);
    let mut renonced = t.clone();
    renonced["nonce"] = json!(vec![7u8; 16]);
    for forged in [&flipped, &renonced] {
        let (creds, auths) = (credential_rows(f)?, logins(&lab, "r1")?);
        let v = exec_with(&mut ui, "r1", add, Some(forged))?;
        assert!(v["err"]["Approval"] == "BadSignature", "{v}");
        assert_eq!(
            credential_rows(f)?,
            creds,
            "a forged token made the broker log a credential use"
        );
        assert_eq!(logins(&lab, "r1")?, auths, "sessiond logged in on r1");
    }
    assert!(!lab.received("r1", "10.66.0.1")?);

    // The genuine token runs once (and logs in, using the credential)...
    let (creds, auths) = (credential_rows(f)?, logins(&lab, "r1")?);
    let ran = exec_with(&mut ui, "r1", add, Some(&t))?;
    assert!(ran.get("ok").is_some(), "{ran}");
    assert!(
        credential_rows(f)? > creds,
        "the real run used a credential"
    );
    assert!(logins(&lab, "r1")? > auths, "the real run logged in");

    // ...and replayed, it releases nothing and logs in nowhere.
    let (creds, auths) = (credential_rows(f)?, logins(&lab, "r1")?);
    let replay = exec_with(&mut ui, "r1", add, Some(&t))?;
    assert!(replay["err"]["Approval"] == "Replayed", "{replay}");
    assert_eq!(credential_rows(f)?, creds, "a replay released a credential");
    assert_eq!(logins(&lab, "r1")?, auths, "a replay logged in on r1");

    // Every refusal is audited.
    let log: Value = serde_json::from_str(&f.cli_ok(&["audit", "log", "--json"], "")?)?;
    let refused = log
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| r["command"] == add && r["outcome"] == "refused")
        .count();
    assert_eq!(refused, 3, "{log:#}");
    Ok(())
}
