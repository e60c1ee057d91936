//! The broker under abuse and failure, from outside: floods of malformed,
//! truncated and oversized frames from many connections (valid role peers
//! and refused ones) while a well-behaved peer keeps working; an oversized
//! length prefix answered without allocating; clients that never finish the
//! handshake; `kill -9` of the broker seen by connected and new clients; and
//! the `gatehouse up` supervisor restarting a killed broker (signed out
//! unless the device was remembered).
//!
//! Raw protocol clients with a role: this test binary installs *itself* under
//! a role's name (`gatehouse-copilotd`) and runs as the test user with
//! `GH_RAW_MODE` set; the broker identifies it by that installed path exactly
//! as it would the real daemon, and `raw_client_helper` (a no-op in a normal
//! run) then speaks bytes on the socket and reports what came back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::broker::{BrokerError, BrokerEvent, BrokerRequest, BrokerResponse};
use gatehouse_ipc::codec::{check_len, decode, encode_frame};
use gatehouse_ipc::wire::{ClientMessage, Hello, PROTOCOL_VERSION, ProtocolError, ServerMessage};
use gatehouse_tests::broker::{BrokerFixture, Options, Peer};
use gatehouse_tests::{install_into, proc};

type Reply = ServerMessage<BrokerResponse, BrokerError, BrokerEvent>;

// ---------------------------------------------------------------- helpers

fn rss_kib(pid: u32) -> Result<u64> {
    let v = proc::status_field(pid, "VmRSS")?;
    v.split_whitespace()
        .next()
        .context("VmRSS")?
        .parse()
        .with_context(|| format!("VmRSS {v:?}"))
}

fn is_ok(v: &serde_json::Value) -> bool {
    v.get("ok").is_some()
}

fn transport(v: &serde_json::Value) -> Option<String> {
    v.get("transport")
        .and_then(|t| t.as_str())
        .map(str::to_string)
}

/// Installs this test binary as the copilotd role binary (see the module doc).
fn install_raw_client(f: &BrokerFixture) -> Result<PathBuf> {
    install_into(
        f.install_dir(),
        &std::env::current_exe()?,
        PeerRole::Copilotd.binary_name(),
    )
}

/// Runs the raw client as the test user in `mode`; returns the child (stdout piped).
fn spawn_raw(f: &BrokerFixture, exe: &Path, mode: &str) -> Result<Child> {
    let mut c = f.command(exe);
    c.args([
        "raw_client_helper",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("GH_RAW_MODE", mode)
    .env("GH_RAW_RUNTIME", f.runtime())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    Ok(c.spawn()?)
}

/// Waits for a child and returns its `RAW ` lines.
fn raw_lines(child: Child, within: Duration) -> Result<Vec<String>> {
    let mut g = gatehouse_tests::ChildGuard::new(child);
    let mut out = g.child_mut().stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let status = g.wait_timeout(within)?;
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("raw client failed ({status}):\n{text}");
    }
    Ok(text
        .lines()
        // libtest's "test raw_client_helper ... " may precede the first line.
        .filter_map(|l| l.find("RAW ").map(|i| l[i + 4..].to_string()))
        .collect())
}

/// Polls `gatehouse status --json` until `pred` holds for its `broker` object.
fn wait_status(
    f: &BrokerFixture,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = f.cli(&["status", "--json"], "")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let b = &v["broker"];
            if !b.is_null() && pred(b) {
                return Ok(b.clone());
            }
        }
        last = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out waiting for {what}; last status: {last}")
}

/// sessiond's pid from `gatehouse status`, once `pred` accepts it.
fn sessiond_pid(f: &BrokerFixture, pred: impl Fn(u32) -> bool) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let out = f.cli(&["status", "--json"], "")?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            && let Some(p) = v["sessiond"]["pid"].as_u64()
            && pred(p as u32)
        {
            return Ok(p as u32);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("sessiond did not answer as expected")
}

// ------------------------------------------------------------- raw client

fn hello_frame() -> Vec<u8> {
    let hello: ClientMessage<BrokerRequest> = ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        service: "broker.sock".into(),
    });
    encode_frame(&hello).expect("hello encodes").to_vec()
}

/// Reads one frame (blocking, with the socket's read timeout).
fn read_reply(s: &mut UnixStream) -> std::io::Result<Reply> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix)?;
    let len = check_len(prefix).map_err(std::io::Error::other)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    decode(&body).map_err(std::io::Error::other)
}

/// Reads until EOF; `Ok(true)` if the server closed within the timeout.
fn closed_by_server(s: &mut UnixStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn describe(r: &std::io::Result<Reply>) -> String {
    match r {
        Ok(ServerMessage::Welcome(w)) => format!("welcome {}", w.role),
        Ok(ServerMessage::Malformed(ProtocolError::FrameTooLarge { len, max })) => {
            format!("frame-too-large {len} {max}")
        }
        Ok(ServerMessage::Malformed(e)) => format!("malformed {e}"),
        Ok(ServerMessage::Refused(e)) => format!("refused {e}"),
        Ok(other) => format!("other {other:?}"),
        Err(e) => format!("io {e}"),
    }
}

/// `oversized`: handshake, then a 4 GiB length prefix (and 64 KiB of filler
/// the broker must not wait for); reports the reply and whether it closed.
/// `idle N`: N connections that send half a Hello and then nothing; reports
/// how each ended and after how long.
fn raw_client(mode: &str, runtime: &Path) -> std::io::Result<()> {
    let socket = runtime.join("broker.sock");
    let mut words = mode.split_whitespace();
    match words.next() {
        Some("oversized") => {
            let mut s = UnixStream::connect(&socket)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(&hello_frame())?;
            println!("RAW hello {}", describe(&read_reply(&mut s)));
            s.write_all(&u32::MAX.to_le_bytes())?;
            // Filler: if the broker tried to read a 4 GiB body it would wait for more.
            let _ = s.write_all(&[0x5a; 64 * 1024]);
            let t0 = Instant::now();
            println!("RAW reply {}", describe(&read_reply(&mut s)));
            println!(
                "RAW closed {} {}",
                closed_by_server(&mut s),
                t0.elapsed().as_millis()
            );
        }
        Some("idle") => {
            let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
            let hello = hello_frame();
            let mut conns = Vec::new();
            for _ in 0..n {
                let mut s = UnixStream::connect(&socket)?;
                s.set_read_timeout(Some(Duration::from_secs(15)))?;
                s.write_all(&hello[..hello.len() / 2])?; // and never the rest
                conns.push(s);
            }
            let t0 = Instant::now();
            println!("RAW connected {n}");
            std::io::stdout().flush()?;
            for mut s in conns {
                let r = read_reply(&mut s);
                let closed = closed_by_server(&mut s);
                println!(
                    "RAW idle-end {} | closed {closed} | after_ms {}",
                    describe(&r),
                    t0.elapsed().as_millis()
                );
            }
        }
        _ => println!("RAW unknown mode {mode:?}"),
    }
    std::io::stdout().flush()
}

/// The raw client's entry point; a no-op unless run by `spawn_raw`.
#[test]
fn raw_client_helper() {
    let (Ok(mode), Some(runtime)) = (
        std::env::var("GH_RAW_MODE"),
        std::env::var_os("GH_RAW_RUNTIME"),
    ) else {
        return;
    };
    if let Err(e) = raw_client(&mode, Path::new(&runtime)) {
        println!("RAW error {e}");
    }
}

// ------------------------------------------------------------------ tests

/// Junk from a refused peer (this test process: not an installed binary).
fn junk_from_refused_peer(socket: &Path, i: usize) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let junk: Vec<u8> = match i % 4 {
        0 => u32::MAX.to_le_bytes().to_vec(),
        1 => (0..2048u32).map(|x| (x * 7 + i as u32) as u8).collect(),
        2 => [hello_frame(), vec![0xff; 64]].concat(),
        _ => vec![],
    };
    let _ = s.write_all(&junk);
    // The broker refuses it at identification and closes.
    closed_by_server(&mut s)
}

#[test]
fn a_flood_of_bad_frames_does_not_disturb_a_good_peer() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let broker_pid = f.broker_pid();
    let raw = install_raw_client(&f)?;
    let mut good = f.peer(PeerRole::Ui)?;
    assert_eq!(good.role().as_deref(), Some("ui"), "{}", good.hello);
    for _ in 0..3 {
        good.ok(&BrokerRequest::Status)?;
    }
    let rss_before = rss_kib(broker_pid)?;

    // For FLOOD, rounds of garbage from valid role peers (3 processes × 50
    // connections each, under the 256-connection cap) and junk from refused
    // peers (this process, 4 threads), while the good peer keeps calling.
    const FLOOD: Duration = Duration::from_secs(3);
    const PER_PROCESS: usize = 50;
    let flood_until = Instant::now() + FLOOD;
    let spawn_round = || -> Result<Vec<Child>> {
        let mut round = Vec::new();
        for role in [PeerRole::Sessiond, PeerRole::Sessiond, PeerRole::Ui] {
            let mut c = f.command(&f.install_dir().join(role.binary_name()));
            c.arg("garbage")
                .arg(f.runtime())
                .arg(PER_PROCESS.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            round.push(c.spawn()?);
        }
        Ok(round)
    };
    let mut garbage = spawn_round()?;
    // An oversized prefix from a valid peer, answered and closed.
    let oversized = spawn_raw(&f, &raw, "oversized")?;
    let socket = f.socket();
    let refused: Vec<_> = (0..4)
        .map(|t| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let (mut sent, mut closed) = (0, 0);
                while Instant::now() < flood_until {
                    closed += junk_from_refused_peer(&socket, t + sent) as usize;
                    sent += 1;
                }
                (sent, closed)
            })
        })
        .collect();

    // Every call of the good peer must succeed.
    let mut calls = 0;
    let mut garbage_procs = 0;
    let mut slowest = Duration::ZERO;
    let mut rss_peak = rss_before;
    let deadline = Instant::now() + FLOOD + Duration::from_secs(30);
    loop {
        // Reap finished garbage peers: each must have seen all its connections closed.
        let mut still = Vec::new();
        for mut c in garbage {
            if c.try_wait()?.is_none() {
                still.push(c);
                continue;
            }
            let mut text = String::new();
            c.stdout
                .take()
                .context("stdout")?
                .read_to_string(&mut text)?;
            let status = c.wait()?;
            assert!(status.success(), "garbage peer: {status} {text}");
            assert_eq!(
                text.trim(),
                format!("garbage done {PER_PROCESS}"),
                "every garbage connection must be closed by the broker"
            );
            garbage_procs += 1;
        }
        garbage = still;
        let flooding = Instant::now() < flood_until;
        if garbage.is_empty() && flooding {
            garbage = spawn_round()?;
        }
        if garbage.is_empty() && !flooding && calls >= 20 {
            break;
        }
        if Instant::now() > deadline {
            for c in &mut garbage {
                let _ = c.kill();
            }
            bail!("the flood did not end in time ({calls} good calls)");
        }
        let t0 = Instant::now();
        let reply = good.call(&BrokerRequest::Status)?;
        slowest = slowest.max(t0.elapsed());
        assert!(is_ok(&reply), "good call {calls} failed: {reply}");
        calls += 1;
        rss_peak = rss_peak.max(rss_kib(broker_pid)?);
    }
    let (mut refused_sent, mut refused_closed) = (0, 0);
    for t in refused {
        let (s, c) = t.join().expect("refused-peer thread");
        refused_sent += s;
        refused_closed += c;
    }
    assert!(refused_sent > 0);
    assert_eq!(
        refused_closed, refused_sent,
        "refused connections closed by the broker"
    );
    let lines = raw_lines(oversized, Duration::from_secs(20))?;
    assert!(
        lines.iter().any(|l| l == "hello welcome copilotd"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l
            == &format!(
                "reply frame-too-large {} {}",
                u32::MAX,
                gatehouse_ipc::MAX_FRAME
            )),
        "oversized prefix: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("closed true")),
        "oversized prefix: connection not closed: {lines:?}"
    );

    // Alive, small, and serving new peers.
    assert!(proc::is_alive(broker_pid), "broker died in the flood");
    rss_peak = rss_peak.max(rss_kib(broker_pid)?);
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "broker RSS grew from {rss_before} KiB to {rss_peak} KiB"
    );
    good.ok(&BrokerRequest::Status)?;
    let mut fresh = f.peer(PeerRole::Sessiond)?;
    assert_eq!(fresh.role().as_deref(), Some("sessiond"), "{}", fresh.hello);
    fresh.ok(&BrokerRequest::Status)?;
    eprintln!(
        "flood: {garbage_procs} garbage peers × {PER_PROCESS} connections, {refused_sent} refused \
         connections, {calls} good calls (slowest {slowest:?}); broker RSS {rss_before} -> peak {rss_peak} KiB"
    );
    Ok(())
}

#[test]
fn clients_that_never_finish_the_handshake_do_not_block_others() -> Result<()> {
    let f = BrokerFixture::start(Options::default())?;
    let raw = install_raw_client(&f)?;
    let idle = spawn_raw(&f, &raw, "idle 20")?;
    // Give the idle connections time to be accepted and stall.
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let mut p = f.peer(PeerRole::Ui)?;
    assert_eq!(p.role().as_deref(), Some("ui"), "{}", p.hello);
    p.ok(&BrokerRequest::Status)?;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "a new peer waited {took:?} behind idle handshakes"
    );
    // The idle ones are cut off by the 5 s handshake timeout.
    let lines = raw_lines(idle, Duration::from_secs(30))?;
    let ends: Vec<_> = lines.iter().filter(|l| l.starts_with("idle-end")).collect();
    assert_eq!(ends.len(), 20, "{lines:?}");
    for l in ends {
        assert!(
            l.contains("handshake timed out") && l.contains("closed true"),
            "{l}"
        );
        let ms: u64 = l
            .rsplit(' ')
            .next()
            .and_then(|m| m.parse().ok())
            .context("after_ms")?;
        assert!(
            (4_000..12_000).contains(&ms),
            "closed after {ms} ms (handshake timeout is 5 s): {l}"
        );
    }
    p.ok(&BrokerRequest::Status)?;
    Ok(())
}

#[test]
fn kill_9_of_the_broker_fails_clients_fast() -> Result<()> {
    let mut f = BrokerFixture::start(Options::default())?;
    let mut p = f.peer(PeerRole::Ui)?;
    p.ok(&BrokerRequest::Status)?;
    f.broker.as_mut().context("broker")?.kill9()?;

    let t0 = Instant::now();
    let reply = p.call(&BrokerRequest::Status)?;
    let took = t0.elapsed();
    let msg = transport(&reply).with_context(|| format!("not a transport error: {reply}"))?;
    assert!(
        msg.contains("unavailable") || msg.contains("closed"),
        "connected client after kill -9: {msg}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}: {msg}");

    let t0 = Instant::now();
    let fresh: Peer = f.peer(PeerRole::Ui)?;
    let took = t0.elapsed();
    let msg = transport(&fresh.hello)
        .with_context(|| format!("connected to a killed broker: {}", fresh.hello))?;
    assert!(msg.contains("broker unavailable"), "new client: {msg}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {msg}");
    Ok(())
}

/// Kills the supervisor's process group (supervisor + broker) if a test fails.
struct SupervisorGuard {
    pid_file: PathBuf,
    pids: Vec<u32>,
}

impl Drop for SupervisorGuard {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // `gatehouse up` starts the supervisor as a process-group leader.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = proc::kill9(pid as u32);
        }
        for pid in &self.pids {
            let _ = proc::kill9(*pid);
        }
    }
}

const PASSPHRASE: &str = "pass-phrase-123";

#[test]
fn the_supervisor_restarts_a_killed_broker() -> Result<()> {
    // The real sessiond and copilotd too: `gatehouse up` waits for every daemon.
    let mut f = BrokerFixture::start(Options {
        real_sessiond: true,
        real_copilotd: true,
        ..Options::default()
    })?;
    f.broker = None; // the fixture's own broker: killed; `gatehouse up` runs the installed one
    let mut guard = SupervisorGuard {
        pid_file: f.runtime().join("supervisor.pid"),
        pids: Vec::new(),
    };
    f.cli_ok(&["up"], "")?;
    let sup: u32 = std::fs::read_to_string(&guard.pid_file)?.trim().parse()?;
    guard.pids.push(sup);
    // The supervisor is hardened too: no_new_privs, and not dumpable (its
    // /proc entries then belong to root, so the test user cannot read its memory).
    let status = proc::status(sup)?;
    assert_eq!(
        status.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "{status:?}"
    );
    let mem_owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("/proc/{sup}/mem"))?);
    if gatehouse_tests::users::is_root() {
        assert_eq!(
            mem_owner, 0,
            "supervisor is dumpable: /proc/{sup}/mem owned by uid {mem_owner}"
        );
    }
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    let first = wait_status(&f, "signed in", Duration::from_secs(10), |b| {
        b["signed_in"] == true
    })?;
    let pid1 = first["pid"].as_u64().context("broker.pid")? as u32;
    guard.pids.push(pid1);
    let sessiond1 = sessiond_pid(&f, |_| true)?;
    guard.pids.push(sessiond1);
    assert_eq!(first["remembered_device"], false, "{first}");

    // kill -9: restarted, signed out (the device was not remembered).
    proc::kill9(pid1)?;
    let second = wait_status(&f, "a restarted broker", Duration::from_secs(10), |b| {
        b["pid"].as_u64().is_some_and(|p| p != pid1 as u64)
    })?;
    let pid2 = second["pid"].as_u64().context("broker.pid")? as u32;
    guard.pids.push(pid2);
    assert!(proc::is_alive(sup), "the supervisor died");
    // sessiond cannot be identified again once non-dumpable: it closed its
    // sessions and exited with the broker, and the supervisor started a fresh one.
    let sessiond2 = sessiond_pid(&f, |p| p != sessiond1)?;
    guard.pids.push(sessiond2);
    assert!(!proc::is_alive(sessiond1), "the old sessiond lives on");
    assert_eq!(second["account_initialized"], true, "{second}");
    assert_eq!(second["signed_in"], false, "restart must lock: {second}");

    // Remembered device: a restart unlocks by itself.
    let out = f.cli_ok(
        &["signin", "--passphrase-stdin", "--remember"],
        &format!("{PASSPHRASE}\n"),
    )?;
    assert!(out.contains("remembered"), "{out}");
    proc::kill9(pid2)?;
    let third = wait_status(&f, "a second restart", Duration::from_secs(10), |b| {
        b["pid"].as_u64().is_some_and(|p| p != pid2 as u64)
    })?;
    guard.pids.push(third["pid"].as_u64().unwrap_or(0) as u32);
    assert_eq!(
        third["signed_in"], true,
        "remembered device must unlock after restart: {third}"
    );
    assert_eq!(third["remembered_device"], true, "{third}");

    // Sign out (deletes the unlock material from the keyring), then down.
    f.cli_ok(&["signout"], "")?;
    f.cli_ok(&["down"], "")?;
    proc::wait_until("supervisor exit", Duration::from_secs(5), || {
        Ok(!proc::is_alive(sup))
    })?;
    let last = guard.pids[guard.pids.len() - 1];
    proc::wait_until("broker exit", Duration::from_secs(5), || {
        Ok(!proc::is_alive(last))
    })?;
    Ok(())
}
