//! sshd fixture: the real OpenSSH client logs in with the generated key,
//! password and keyboard-interactive; `ssh-keyscan` sees the host key the
//! fixture reports; a restart with a new host key is noticed by `ssh`; each
//! single-method server refuses the other methods.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gatehouse_tests::sshd::{AuthMethods, Sshd, fingerprint_of_line};
use gatehouse_tests::users;

/// Skips (printing why) when not root: sshd needs root.
fn root_or_skip(test: &str) -> bool {
    if !users::is_root() {
        eprintln!("SKIPPED {test}: sshd needs root (CI runs as root)");
        return false;
    }
    true
}

struct Client {
    dir: tempfile::TempDir,
}

impl Client {
    fn new(sshd: &Sshd) -> Client {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("{}\n", sshd.known_hosts_line()),
        )
        .unwrap();
        // Askpass for password / keyboard-interactive prompts: prints the
        // run-time password from a 0600 file.
        std::fs::write(dir.path().join("pw"), &sshd.password).unwrap();
        std::fs::set_permissions(
            dir.path().join("pw"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let askpass = dir.path().join("askpass");
        std::fs::write(
            &askpass,
            format!("#!/bin/sh\ncat '{}'\n", dir.path().join("pw").display()),
        )
        .unwrap();
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        Client { dir }
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// `ssh` with only `methods` preferred; key auth uses the fixture key.
    fn ssh(&self, sshd: &Sshd, methods: &str, key: Option<&Path>, command: &str) -> Output {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-T"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg("-o")
            .arg(format!("PreferredAuthentications={methods}"))
            .arg("-p")
            .arg(sshd.port.to_string());
        match key {
            Some(k) => {
                cmd.arg("-i").arg(k);
            }
            None => {
                cmd.args(["-o", "IdentityFile=/dev/null"]);
            }
        }
        cmd.arg(format!("{}@127.0.0.1", sshd.user))
            .arg(command)
            .env("SSH_ASKPASS", self.dir.path().join("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn keyscan(port: u16) -> String {
    let out = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &port.to_string(), "127.0.0.1"])
        .output()
        .expect("ssh-keyscan");
    text(&out.stdout)
}

#[test]
fn key_login_runs_a_command_as_the_ssh_user_and_keyscan_matches() {
    if !root_or_skip("key_login_runs_a_command_as_the_ssh_user_and_keyscan_matches") {
        return;
    }
    let sshd = Sshd::start().unwrap();
    assert!(sshd.host_key_fingerprint.starts_with("ssh-ed25519 SHA256:"));
    assert!(
        sshd.client_private_key
            .contains("BEGIN OPENSSH PRIVATE KEY")
    );
    assert!(sshd.client_public_key.starts_with("ssh-ed25519 AAAA"));
    assert!(sshd.password.len() >= 16);

    let c = Client::new(&sshd);
    let out = c.ssh(
        &sshd,
        "publickey",
        Some(&sshd.client_key_path),
        "id -un; echo marker-$((6*7))",
    );
    assert!(out.status.success(), "ssh failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\nmarker-42\n", sshd.user));

    // ssh-keyscan sees exactly the key (and so the fingerprint) the fixture reports.
    let scanned = keyscan(sshd.port);
    let line = scanned
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("ssh-ed25519"))
        .unwrap_or_else(|| panic!("no ed25519 key scanned: {scanned:?}"));
    let key = line.split_once(' ').unwrap().1;
    let want: Vec<&str> = sshd.host_public_key.split_whitespace().take(2).collect();
    assert_eq!(key.split_whitespace().collect::<Vec<_>>(), want);
    assert_eq!(fingerprint_of_line(key).unwrap(), sshd.host_key_fingerprint);
}

#[test]
fn password_and_keyboard_interactive_logins_work_with_the_generated_password() {
    if !root_or_skip("password_and_keyboard_interactive_logins_work_with_the_generated_password") {
        return;
    }
    let mut sshd = Sshd::start().unwrap();
    let c = Client::new(&sshd);
    let out = c.ssh(&sshd, "password", None, "echo via-password");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "via-password\n");
    let out = c.ssh(&sshd, "keyboard-interactive", None, "echo via-kbd");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "via-kbd\n");
    let log = sshd.log_lines(Duration::from_millis(300)).join("\n");
    assert!(
        log.contains(&format!("Accepted password for {}", sshd.user)),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Accepted keyboard-interactive/pam for {}",
            sshd.user
        )),
        "{log}"
    );
}

#[test]
fn keyboard_interactive_only_refuses_password_and_key() {
    if !root_or_skip("keyboard_interactive_only_refuses_password_and_key") {
        return;
    }
    let sshd = Sshd::start_with(AuthMethods::KeyboardInteractiveOnly).unwrap();
    let c = Client::new(&sshd);
    let out = c.ssh(&sshd, "password", None, "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("Permission denied (keyboard-interactive)"));
    let out = c.ssh(&sshd, "publickey", Some(&sshd.client_key_path), "true");
    assert_eq!(out.status.code(), Some(255));
    let out = c.ssh(&sshd, "keyboard-interactive", None, "echo kbd-only");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "kbd-only\n");
}

#[test]
fn password_only_and_publickey_only_refuse_the_others() {
    if !root_or_skip("password_only_and_publickey_only_refuse_the_others") {
        return;
    }
    let sshd = Sshd::start_with(AuthMethods::PasswordOnly).unwrap();
    let c = Client::new(&sshd);
    let out = c.ssh(&sshd, "keyboard-interactive", None, "true");
    assert!(text(&out.stderr).contains("Permission denied (password)"));
    let out = c.ssh(&sshd, "password", None, "echo pw-only");
    assert_eq!(text(&out.stdout), "pw-only\n", "{}", text(&out.stderr));

    let sshd = Sshd::start_with(AuthMethods::PublicKeyOnly).unwrap();
    let c = Client::new(&sshd);
    let out = c.ssh(&sshd, "password,keyboard-interactive", None, "true");
    assert!(text(&out.stderr).contains("Permission denied (publickey)"));
    let out = c.ssh(
        &sshd,
        "publickey",
        Some(&sshd.client_key_path),
        "echo key-only",
    );
    assert_eq!(text(&out.stdout), "key-only\n", "{}", text(&out.stderr));
}

#[test]
fn restart_with_new_host_key_is_detected_by_ssh() {
    if !root_or_skip("restart_with_new_host_key_is_detected_by_ssh") {
        return;
    }
    let mut sshd = Sshd::start().unwrap();
    let c = Client::new(&sshd);
    let (old_port, old_fp) = (sshd.port, sshd.host_key_fingerprint.clone());
    sshd.restart_with_new_host_key().unwrap();
    assert_eq!(sshd.port, old_port);
    assert_ne!(sshd.host_key_fingerprint, old_fp);
    let out = c.ssh(&sshd, "publickey", Some(&sshd.client_key_path), "true");
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert!(
        err.contains(sshd.host_key_fingerprint.split_once(' ').unwrap().1),
        "{err}"
    );
    assert_eq!(
        fingerprint_of_line(
            keyscan(sshd.port)
                .lines()
                .find(|l| !l.starts_with('#'))
                .unwrap()
                .split_once(' ')
                .unwrap()
                .1
        )
        .unwrap(),
        sshd.host_key_fingerprint
    );
}
