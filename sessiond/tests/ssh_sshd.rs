//! The SSH client against a real OpenSSH sshd (tests/src/sshd.rs): each
//! authentication method alone, host key pinning (unknown, changed),
//! exec exit codes / stderr / large output with backpressure, PTY shells,
//! timeouts and refused connections.

mod ssh_support;

use std::time::{Duration, Instant};

use gatehouse_sessiond::ssh::{self, AuthMethod, ShellEvent, SshError, Target};
use gatehouse_tests::sshd::{AuthMethods, Sshd};
use gatehouse_tests::users;
use ssh_support::{Asked, TestCreds, exec};

const T: Duration = Duration::from_secs(20);

fn sshd_or_skip(test: &str, methods: AuthMethods) -> Option<Sshd> {
    if !users::is_root() {
        eprintln!("SKIPPED {test}: starting sshd needs root (CI runs as root)");
        return None;
    }
    Some(Sshd::start_with(methods).expect("starting sshd"))
}

fn target(sshd: &Sshd) -> Target {
    Target {
        host_name: "sshd-fixture".into(),
        address: "127.0.0.1".into(),
        port: sshd.port,
        username: sshd.user.clone(),
        pinned_host_key: Some(sshd.host_key_fingerprint.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_exec_status_and_stderr() {
    let Some(sshd) = sshd_or_skip("password_login", AuthMethods::PasswordOnly) else {
        return;
    };
    let mut creds = TestCreds::password(&sshd.password);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::Password);
    assert_eq!(conn.host_key(), sshd.host_key_fingerprint);

    let r = exec(&conn, "id -un; echo to-stderr >&2; exit 3", 16).await;
    assert_eq!(r.stdout_text(), format!("{}\n", sshd.user));
    assert_eq!(r.stderr_text(), "to-stderr\n");
    assert_eq!(r.status, Some(3));

    let r = exec(&conn, "no-such-command-gatehouse", 16).await;
    assert_eq!(r.status, Some(127));
    assert!(r.stderr_text().contains("not found"), "{}", r.stderr_text());
    assert!(r.stdout.is_empty());

    // Several commands on one connection, one after another and at once.
    let (a, b) = tokio::join!(exec(&conn, "echo a", 4), exec(&conn, "echo b; exit 0", 4));
    assert_eq!((a.stdout_text(), a.status), ("a\n".into(), Some(0)));
    assert_eq!((b.stdout_text(), b.status), ("b\n".into(), Some(0)));
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_interactive_only_login() {
    let Some(sshd) = sshd_or_skip("kbd_only", AuthMethods::KeyboardInteractiveOnly) else {
        return;
    };
    let mut creds = TestCreds::password(&sshd.password);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::KeyboardInteractive);
    assert_eq!(creds.asked(), vec![Asked::Password]);
    let r = exec(&conn, "echo kbd-ok", 4).await;
    assert_eq!(r.stdout_text(), "kbd-ok\n");
    conn.close().await;

    // A wrong password is refused, naming what was tried and what is offered.
    let mut wrong = TestCreds::password("not-the-password");
    let err = ssh::connect(&target(&sshd), &mut wrong, T)
        .await
        .unwrap_err();
    match &err {
        SshError::AuthFailed { reason } => {
            assert!(
                reason.contains("keyboard-interactive (rejected)"),
                "{reason}"
            );
            assert!(reason.contains("offers keyboard-interactive"), "{reason}");
            assert!(!reason.contains("password (rejected)"), "{reason}");
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publickey_login_signs_through_the_source() {
    let Some(sshd) = sshd_or_skip("publickey", AuthMethods::PublicKeyOnly) else {
        return;
    };
    let mut creds = TestCreds::key(&sshd.client_private_key);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::PublicKey);
    assert_eq!(creds.asked(), vec![Asked::PublicKey, Asked::Sign]);
    let r = exec(&conn, "echo key-ok", 4).await;
    assert_eq!(r.stdout_text(), "key-ok\n");
    conn.close().await;

    // A key the server does not know: refused before any signature is asked
    // for, and no password is fetched from a server that takes none.
    let other = gatehouse_labdevice::hostkey::generate().unwrap();
    let mut creds = TestCreds::password("unused").with_key(other);
    let err = ssh::connect(&target(&sshd), &mut creds, T)
        .await
        .unwrap_err();
    match &err {
        SshError::AuthFailed { reason } => {
            assert!(reason.contains("publickey (rejected)"), "{reason}");
            assert!(reason.contains("offers publickey"), "{reason}");
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    assert_eq!(creds.asked(), vec![Asked::PublicKey]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_is_preferred_and_password_never_fetched_when_it_works() {
    let Some(sshd) = sshd_or_skip("key_preferred", AuthMethods::All) else {
        return;
    };
    let mut creds = TestCreds::key(&sshd.client_private_key);
    creds.password = Some(sshd.password.clone());
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::PublicKey);
    assert!(
        !creds.asked().contains(&Asked::Password),
        "{:?}",
        creds.asked()
    );
    conn.close().await;

    // Without a key: password (our order is publickey, password,
    // keyboard-interactive, each only when the server offers it).
    let mut creds = TestCreds::password(&sshd.password);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.auth_method(), AuthMethod::Password);
    conn.close().await;

    // A broken signer fails the connection with its own error.
    struct BadSigner(TestCreds);
    impl ssh::CredentialSource for BadSigner {
        async fn password(&mut self) -> Result<zeroize::Zeroizing<String>, SshError> {
            self.0.password().await
        }
        async fn public_key(&mut self) -> Result<Option<String>, SshError> {
            self.0.public_key().await
        }
        async fn sign(&mut self, _to_sign: Vec<u8>) -> Result<Vec<u8>, SshError> {
            Ok(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00".to_vec())
        }
    }
    let mut bad = BadSigner(TestCreds::key(&sshd.client_private_key));
    let err = ssh::connect(&target(&sshd), &mut bad, T).await.unwrap_err();
    assert!(
        matches!(&err, SshError::Credential(m) if m.contains("not an SSH signature blob")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_changed_host_keys_are_refused_before_authentication() {
    let Some(mut sshd) = sshd_or_skip("host_keys", AuthMethods::All) else {
        return;
    };
    let old = sshd.host_key_fingerprint.clone();

    let mut t = target(&sshd);
    t.pinned_host_key = None;
    let mut creds = TestCreds::password(&sshd.password);
    let err = ssh::connect(&t, &mut creds, T).await.unwrap_err();
    match &err {
        SshError::HostKeyUnknown { presented } => assert_eq!(presented, &old),
        other => panic!("expected HostKeyUnknown, got {other:?}"),
    }
    assert!(err.to_string().contains(&old), "{err}");
    assert!(
        creds.asked().is_empty(),
        "credentials asked: {:?}",
        creds.asked()
    );

    sshd.restart_with_new_host_key().unwrap();
    let new = sshd.host_key_fingerprint.clone();
    assert_ne!(old, new);
    let mut t = target(&sshd);
    t.pinned_host_key = Some(old.clone());
    let err = ssh::connect(&t, &mut creds, T).await.unwrap_err();
    match &err {
        SshError::HostKeyChanged {
            expected,
            presented,
        } => {
            assert_eq!(expected, &old);
            assert_eq!(presented, &new);
        }
        other => panic!("expected HostKeyChanged, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&old) && msg.contains(&new), "{msg}");
    assert!(
        creds.asked().is_empty(),
        "credentials asked: {:?}",
        creds.asked()
    );
    // No login reached sshd.
    let log = sshd.log_lines(Duration::from_millis(200)).join("\n");
    assert!(!log.contains("Accepted"), "{log}");
    assert!(!log.contains("Failed password"), "{log}");

    // Same algorithm, one character of the fingerprint off: still refused.
    let mut t = target(&sshd);
    let mut off = new.clone();
    let last = off.pop().unwrap();
    off.push(if last == 'A' { 'B' } else { 'A' });
    t.pinned_host_key = Some(off);
    assert!(matches!(
        ssh::connect(&t, &mut creds, T).await,
        Err(SshError::HostKeyChanged { .. })
    ));

    // The new pin works.
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    assert_eq!(conn.host_key(), new);
    conn.close().await;
}

/// `seq 1 N` as the shell prints it.
fn seq_bytes(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        v.extend_from_slice(i.to_string().as_bytes());
        v.push(b'\n');
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_arrives_complete_and_in_order_with_a_slow_reader() {
    let Some(sshd) = sshd_or_skip("large_output", AuthMethods::PasswordOnly) else {
        return;
    };
    let mut creds = TestCreds::password(&sshd.password);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();

    // ~20.9 MB of distinct lines, with a little stderr at the end.
    let n = 3_000_000;
    let want = seq_bytes(n);
    let started = Instant::now();
    let r = exec(&conn, &format!("seq 1 {n}; echo done >&2"), 64).await;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "exec: {} bytes in {secs:.2}s = {:.1} MB/s, {} chunks",
        r.stdout.len(),
        r.stdout.len() as f64 / secs / 1e6,
        r.chunks
    );
    assert_eq!(r.stdout.len(), want.len());
    assert!(r.stdout == want, "stdout differs from seq 1 {n}");
    assert_eq!(r.stderr_text(), "done\n");
    assert_eq!(r.status, Some(0));

    // A reader that takes its time (capacity 1, sleeps): backpressure, no loss.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(c) = rx.recv().await {
            if let ssh::Chunk::Stdout(d) = c {
                got.extend_from_slice(&d);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        got
    });
    let status = conn.exec("head -c 4000000 /dev/zero", tx).await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(status, Some(0));
    assert_eq!(got.len(), 4_000_000);
    assert!(got.iter().all(|&b| b == 0));

    // A receiver that goes away ends the exec with an error, not a hang.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let err = tokio::time::timeout(T, conn.exec("yes", tx))
        .await
        .expect("exec returned")
        .unwrap_err();
    assert!(matches!(err, SshError::Channel(_)), "{err:?}");
    // The connection is still usable.
    assert_eq!(exec(&conn, "echo still", 4).await.stdout_text(), "still\n");
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_shell_has_size_term_resize_and_exit_status() {
    let Some(sshd) = sshd_or_skip("pty_shell", AuthMethods::PasswordOnly) else {
        return;
    };
    let mut creds = TestCreds::password(&sshd.password);
    let conn = ssh::connect(&target(&sshd), &mut creds, T).await.unwrap();
    let shell = conn.shell(100, 30, "xterm").await.unwrap();
    let (writer, mut reader) = shell.into_parts();

    async fn read_until(
        reader: &mut ssh::ShellReader,
        seen: &mut String,
        want: &str,
    ) -> Option<ShellEvent> {
        let deadline = tokio::time::Instant::now() + T;
        while !seen.contains(want) {
            match tokio::time::timeout_at(deadline, reader.next()).await {
                Ok(Some(ShellEvent::Data(d))) => seen.push_str(&String::from_utf8_lossy(&d)),
                Ok(other) => return other,
                Err(_) => panic!("timed out waiting for {want:?}; seen {seen:?}"),
            }
        }
        None
    }

    let mut seen = String::new();
    // Written from another task: the writer is Clone + Send.
    let w = writer.clone();
    tokio::spawn(async move {
        w.write(b"stty size; echo TERM=$TERM; tty\n").await.unwrap();
    })
    .await
    .unwrap();
    read_until(&mut reader, &mut seen, "/dev/pts/").await;
    assert!(seen.contains("30 100"), "{seen:?}");
    assert!(seen.contains("TERM=xterm"), "{seen:?}");
    // The PTY echoes input and ends lines with CR LF.
    assert!(seen.contains("stty size; echo"), "{seen:?}");
    assert!(seen.contains("\r\n"), "{seen:?}");

    writer.resize(120, 40).await.unwrap();
    let mut seen = String::new();
    writer.write(b"stty size\n").await.unwrap();
    read_until(&mut reader, &mut seen, "40 120").await;

    writer.write(b"exit 7\n").await.unwrap();
    let mut seen = String::new();
    let end = read_until(&mut reader, &mut seen, "never-printed").await;
    assert_eq!(end, Some(ShellEvent::Exit(Some(7))), "{seen:?}");
    assert_eq!(reader.next().await, None);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_and_closed_port_is_a_connect_error() {
    // A TCP listener that accepts and never speaks SSH.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let t = Target {
        host_name: "silent".into(),
        address: "127.0.0.1".into(),
        port,
        username: "nobody".into(),
        pinned_host_key: Some("ssh-ed25519 SHA256:x".into()),
    };
    let mut creds = TestCreds::password("x");
    let started = Instant::now();
    let err = ssh::connect(&t, &mut creds, Duration::from_millis(700))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(5),
        "{took:?}"
    );
    hold.abort();

    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap().port();
    drop(free);
    let t = Target { port: closed, ..t };
    let err = ssh::connect(&t, &mut creds, T).await.unwrap_err();
    assert!(matches!(err, SshError::Connect { .. }), "{err:?}");
    assert!(creds.asked().is_empty());
}
