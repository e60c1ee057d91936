//! Test harness: starts the real `gatehouse-labdevice` binary on 127.0.0.1
//! and drives it with the real OpenSSH client (`ssh`), authenticating with a
//! key made by `ssh-keygen` at test time, or with a password supplied through
//! `SSH_ASKPASS` (`SSH_ASKPASS_REQUIRE=force`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "s3cret-lab";

/// A running device process.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The announced public host key (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    child: Child,
}

impl Lab {
    /// Starts a device of `vendor` ("ios" | "routeros") with key and password auth.
    pub fn start(vendor: &str, extra: &[&str]) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("password"), format!("{PASSWORD}\n")).unwrap();
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "lab-test", "-f"])
            .arg(d.join("id"))
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse-labdevice"))
            .args([
                "--vendor",
                vendor,
                "--listen",
                "127.0.0.1:0",
                "--user",
                "admin",
            ])
            .arg("--host-key")
            .arg(d.join("host_key"))
            .arg("--password-file")
            .arg(d.join("password"))
            .arg("--authorized-key")
            .arg(d.join("id.pub"))
            .arg("--log")
            .arg(d.join("log.jsonl"))
            .args(["--hostname", if vendor == "ios" { "R1" } else { "MT1" }])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn device");
        let mut first = String::new();
        let mut second = String::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        reader.read_line(&mut second).unwrap();
        let host_key = second
            .trim()
            .strip_prefix("host-key ")
            .unwrap_or_else(|| panic!("second line {second:?}"))
            .to_string();
        let addr = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {first:?}"));
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Lab {
            dir,
            port,
            host_key,
            child,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ssh` with key auth and no host-key checks.
    pub fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args([
            "-p",
            &self.port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-e",
            "none",
            "-F",
            "/dev/null",
            "-i",
        ])
        .arg(self.path("id"));
        c
    }

    /// `ssh` with password (or keyboard-interactive) auth through SSH_ASKPASS.
    pub fn ssh_password(&self, method: &str, password: &str) -> Command {
        let script = self.path(&format!("askpass-{}", password.len()));
        std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut c = Command::new("ssh");
        c.env("SSH_ASKPASS", &script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .args([
                "-p",
                &self.port.to_string(),
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
            ])
            .arg(format!("PreferredAuthentications={method}"));
        c
    }

    /// Runs one command over an exec channel: (exit code, stdout, stderr).
    pub fn exec(&self, command: &str) -> (i32, String, String) {
        run_with_timeout(
            self.ssh()
                .arg("admin@127.0.0.1")
                .arg(command)
                .stdin(Stdio::null()),
        )
    }

    /// Starts an interactive `ssh -tt` session.
    pub fn shell(&self) -> Shell {
        let mut c = self.ssh();
        c.arg("-tt").arg("admin@127.0.0.1");
        Shell::spawn(c)
    }

    /// The event log, parsed.
    pub fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_with_timeout(cmd: &mut Command) -> (i32, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("ssh timed out");
    let out = String::from_utf8_lossy(&t1.join().unwrap()).into_owned();
    let err = String::from_utf8_lossy(&t2.join().unwrap()).into_owned();
    (status.code().unwrap_or(-1), out, err)
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An interactive session: write input, wait for output.
pub struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    buf: Arc<Mutex<Vec<u8>>>,
    cursor: usize,
}

impl Shell {
    pub fn spawn(mut cmd: Command) -> Shell {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh -tt");
        let stdin = child.stdin.take();
        let buf = Arc::new(Mutex::new(Vec::new()));
        for mut r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let b = buf.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
        Shell {
            child,
            stdin,
            buf,
            cursor: 0,
        }
    }

    pub fn send(&mut self, text: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(text.as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// Everything received so far.
    pub fn all(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Waits until `pat` appears after the cursor; returns the text up to
    /// and including it, and moves the cursor past it.
    pub fn expect(&mut self, pat: &str) -> String {
        let start = Instant::now();
        loop {
            {
                let b = self.buf.lock().unwrap();
                let text = String::from_utf8_lossy(&b[self.cursor.min(b.len())..]).into_owned();
                if let Some(i) = text.find(pat) {
                    let end = i + pat.len();
                    self.cursor += text[..end].len();
                    return text[..end].to_string();
                }
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "timed out waiting for {pat:?}; after cursor: {:?}",
                    String::from_utf8_lossy(&self.buf.lock().unwrap()[self.cursor..])
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for whichever of `pats` comes first; returns its index and the text.
    pub fn expect_any(&mut self, pats: &[&str]) -> (usize, String) {
        let start = Instant::now();
        loop {
            {
                let b = self.buf.lock().unwrap();
                let text = String::from_utf8_lossy(&b[self.cursor.min(b.len())..]).into_owned();
                let hit = pats
                    .iter()
                    .enumerate()
                    .filter_map(|(n, p)| text.find(p).map(|i| (i + p.len(), n)))
                    .min();
                if let Some((end, n)) = hit {
                    self.cursor += end;
                    return (n, text[..end].to_string());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {pats:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `line` + "\n" and waits for `prompt`; returns the output in between.
    pub fn cmd(&mut self, line: &str, prompt: &str) -> String {
        self.send(&format!("{line}\n"));
        self.expect(prompt)
    }

    /// Waits for ssh to exit; returns its exit code.
    pub fn wait(mut self) -> i32 {
        self.stdin.take();
        let s = wait_timeout(&mut self.child, Duration::from_secs(20)).expect("ssh did not exit");
        s.code().unwrap_or(-1)
    }

    /// Waits for ssh to exit without closing stdin first.
    pub fn wait_open(mut self) -> (i32, String) {
        let s = wait_timeout(&mut self.child, Duration::from_secs(20)).expect("ssh did not exit");
        std::thread::sleep(Duration::from_millis(50));
        (s.code().unwrap_or(-1), self.all())
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
