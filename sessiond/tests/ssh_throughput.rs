//! Throughput of exec output through the SSH module against OpenSSH's own
//! `ssh` client, both reading 100 MB from the same real sshd. Ignored by
//! default (it measures; run it in release):
//!
//! ```sh
//! cargo test --release -p gatehouse-sessiond --test ssh_throughput -- --ignored --nocapture
//! ```

mod ssh_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_sessiond::ssh::{self, Chunk, Target};
use gatehouse_tests::sshd::{AuthMethods, Sshd};
use ssh_support::TestCreds;

const BYTES: u64 = 100_000_000;
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run in release with --ignored --nocapture"]
async fn exec_throughput_against_openssh() {
    let sshd = Sshd::start_with(AuthMethods::PublicKeyOnly).unwrap();
    let target = Target {
        host_name: "sshd".into(),
        address: "127.0.0.1".into(),
        port: sshd.port,
        username: sshd.user.clone(),
        pinned_host_key: Some(sshd.host_key_fingerprint.clone()),
    };
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let command = format!("head -c {BYTES} /dev/zero");

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut theirs_gcm = Vec::new();
    for _ in 0..ROUNDS {
        let mut creds = TestCreds::key(&sshd.client_private_key);
        let started = Instant::now();
        let conn = ssh::connect(&target, &mut creds, Duration::from_secs(20))
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let count = tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(Chunk::Stdout(d)) = rx.recv().await {
                n += d.len() as u64;
            }
            n
        });
        let status = conn.exec(&command, tx).await.unwrap();
        let n = count.await.unwrap();
        conn.close().await;
        let secs = started.elapsed().as_secs_f64();
        assert_eq!((status, n), (Some(0), BYTES));
        ours.push(BYTES as f64 / secs / 1e6);

        for (cipher, results) in [
            (None, &mut theirs),
            (Some("aes256-gcm@openssh.com"), &mut theirs_gcm),
        ] {
            let started = Instant::now();
            let mut cmd = Command::new("ssh");
            if let Some(c) = cipher {
                cmd.args(["-c", c]);
            }
            let st = cmd
                .args(["-F", "/dev/null", "-T", "-o", "BatchMode=yes"])
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", known.display()))
                .args(["-o", "IdentitiesOnly=yes", "-i"])
                .arg(&sshd.client_key_path)
                .arg("-p")
                .arg(sshd.port.to_string())
                .arg(format!("{}@127.0.0.1", sshd.user))
                .arg(&command)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert!(st.success());
            results.push(BYTES as f64 / secs / 1e6);
        }
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "100 MB exec, connect included, best of {ROUNDS}: gatehouse {:.0} MB/s; OpenSSH ssh {:.0} MB/s \
         with its default cipher ({:.0}%), {:.0} MB/s with aes256-gcm ({:.0}%); \
         all: {ours:.0?} vs {theirs:.0?} / {theirs_gcm:.0?}",
        best(&ours),
        best(&theirs),
        100.0 * best(&ours) / best(&theirs),
        best(&theirs_gcm),
        100.0 * best(&ours) / best(&theirs_gcm),
    );
}
