//! The event log and authentication, with the real OpenSSH client.

mod common;

use std::process::Stdio;

use common::{Lab, PASSWORD, run_with_timeout};

#[test]
fn log_lists_every_command_in_order_with_timestamps() {
    let lab = Lab::start("ios", &[]);
    let (code, _, _) = lab.exec("show clock");
    assert_eq!(code, 0);
    let mut sh = lab.shell();
    sh.expect("R1>");
    let typed = [
        "show version",
        "terminal length 0",
        "sh ip int br",
        "bogus",
        "",
    ];
    for t in typed {
        sh.cmd(t, "R1>");
    }
    sh.send("exit\n");
    assert_eq!(sh.wait(), 0);

    let log = lab.log();
    let kinds: Vec<&str> = log.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"connect") && kinds.contains(&"auth"),
        "{kinds:?}"
    );
    let exec: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "exec")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(exec, ["show clock"]);
    let commands: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "command")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    let mut want = typed.to_vec();
    want.push("exit");
    assert_eq!(commands, want);
    let mut last_ts = 0;
    let mut last_seq = 0;
    for e in &log {
        let ts = e["ts_ms"].as_u64().unwrap();
        let seq = e["seq"].as_u64().unwrap();
        assert!(ts >= last_ts, "timestamps never go back");
        assert!(seq > last_seq, "seq strictly increases");
        assert!(ts > 1_600_000_000_000, "epoch milliseconds");
        last_ts = ts;
        last_seq = seq;
    }
    // The password never reaches the log.
    let raw = std::fs::read_to_string(lab.path("log.jsonl")).unwrap();
    assert!(!raw.contains(PASSWORD));
}

#[test]
fn password_auth_right_and_wrong() {
    let lab = Lab::start("routeros", &[]);
    let (code, out, err) = run_with_timeout(
        lab.ssh_password("password", PASSWORD)
            .arg("admin@127.0.0.1")
            .arg("/system identity print")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name: MT1"), "{out}");

    let (code, out, err) = run_with_timeout(
        lab.ssh_password("password", "wrong-password")
            .arg("admin@127.0.0.1")
            .arg("/system identity print")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 255, "{out}");
    assert!(err.contains("Permission denied"), "{err}");
    let log = lab.log();
    assert!(
        log.iter()
            .any(|e| e["kind"] == "auth" && e["text"] == "password rejected for admin")
    );
    assert!(!log.iter().any(|e| e["kind"] == "exec"
        && e["session"] == 2
        && e["text"] != "/system identity print"));
    // Wrong user, right password.
    let (code, _, _) = run_with_timeout(
        lab.ssh_password("password", PASSWORD)
            .arg("root@127.0.0.1")
            .arg("/system identity print")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 255);
}

#[test]
fn keyboard_interactive_only_device() {
    let lab = Lab::start("ios", &["--keyboard-interactive-only"]);
    // The password method is not offered.
    let (code, _, err) = run_with_timeout(
        lab.ssh_password("password", PASSWORD)
            .arg("admin@127.0.0.1")
            .arg("show version")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 255, "{err}");
    let (code, out, err) = run_with_timeout(
        lab.ssh_password("keyboard-interactive", PASSWORD)
            .arg("admin@127.0.0.1")
            .arg("show version")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Cisco IOS"));
    let (code, _, err) = run_with_timeout(
        lab.ssh_password("keyboard-interactive", "nope")
            .arg("admin@127.0.0.1")
            .arg("show version")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn unknown_public_key_refused() {
    let lab = Lab::start("ios", &[]);
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(lab.path("other"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = lab.ssh();
    c.arg("-i").arg(lab.path("other"));
    // Replace the identity: IdentitiesOnly with two -i offers both, so use a fresh command.
    let mut c = std::process::Command::new("ssh");
    c.args([
        "-F",
        "/dev/null",
        "-p",
        &lab.port.to_string(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey",
        "-i",
    ])
    .arg(lab.path("other"))
    .arg("admin@127.0.0.1")
    .arg("show version")
    .stdin(Stdio::null());
    let (code, _, err) = run_with_timeout(&mut c);
    assert_eq!(code, 255, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}
