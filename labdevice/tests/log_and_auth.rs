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

#[test]
fn announced_host_key_verifies_with_strict_checking() {
    let lab = Lab::start("ios", &[]);
    assert!(lab.host_key.starts_with("ssh-ed25519 "), "{}", lab.host_key);
    let kh = lab.path("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:{} {}\n", lab.port, lab.host_key)).unwrap();
    let mut c = lab.ssh();
    c.arg("-o")
        .arg("StrictHostKeyChecking=yes")
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("admin@127.0.0.1")
        .arg("show privilege")
        .stdin(Stdio::null());
    let (code, out, err) = run_with_timeout(&mut c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Current privilege level is 15"), "{out}");
}

#[test]
fn exec_questions_read_stdin_and_eof_never_confirms() {
    let lab = Lab::start("ios", &[]);
    // Nothing on stdin: the reload question is abandoned, the device stays up.
    let (code, out, _) = lab.exec("reload");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[confirm]"), "{out}");
    assert!(!lab.log().iter().any(|e| e["kind"] == "reboot"));

    let lab = Lab::start("routeros", &[]);
    let mut c = lab.ssh();
    c.arg("admin@127.0.0.1")
        .arg("/system reboot")
        .stdin(Stdio::piped());
    let mut sh = common::Shell::spawn(c);
    sh.expect("Reboot, yes? [y/N]: ");
    sh.send("y");
    let (code, out) = sh.wait_open();
    assert_eq!(code, 255, "{out}");
    assert!(lab.log().iter().any(|e| e["kind"] == "reboot"));
}

#[test]
fn garbage_before_ssh_does_not_hurt_the_device() {
    use std::io::{Read, Write};
    let lab = Lab::start("routeros", &[]);
    for junk in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        &b"SSH-2.0-x\r\n\x00\x00\x00\x0c\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        &[0u8; 4096][..],
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(junk);
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    }
    let (code, out, _) = lab.exec("/system identity print");
    assert_eq!(code, 0);
    assert!(out.contains("MT1"));
}
