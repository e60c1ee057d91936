//! `gatehouse bench sessions`: SSH through sessiond beside OpenSSH's own
//! client, measured in the same run against the same real `sshd`.
//!
//! Owns a throwaway world: a private broker and sessiond (temporary
//! profile), a real OpenSSH `sshd` on loopback started as the current user
//! (public-key login with a key generated now and kept in the keychain, so
//! sessiond authenticates through broker signatures), and the lab devices.
//! Measures: streaming N MB of output (sessiond → this process vs `ssh` →
//! this process), connect+authenticate+run `true`, and a read-only exec on a
//! simulated RouterOS. Must never: touch the user's own profile, or leave a
//! process running.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gatehouse_ipc::broker::BrokerRequest;
use gatehouse_ipc::sessiond::{HostRef, SessionEvent, SessiondRequest, SessiondResponse};
use gatehouse_ipc::{Layout, SecretBytes};
use serde::Serialize;

use crate::bench_broker::start_private_broker;
use crate::commands::BrokerConn;
use crate::session_cmds::SessiondConn;

#[derive(Args, Debug)]
pub struct BenchSessionsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Megabytes (10^6 bytes) of output to stream per throughput run.
    #[arg(long, default_value_t = 100)]
    pub megabytes: u64,
    /// Throughput runs per client (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Latency samples per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
}

#[derive(Debug, Serialize)]
pub struct SessionsBench {
    pub megabytes: u64,
    /// Through sessiond with the session recorded (as always by default).
    pub sessiond_mb_s: f64,
    /// Through sessiond, `--no-record`.
    pub sessiond_unrecorded_mb_s: f64,
    pub openssh_mb_s: f64,
    /// Recorded sessiond ÷ OpenSSH (target ≥ 0.8).
    pub throughput_ratio: f64,
    pub unrecorded_ratio: f64,
    /// Connect, authenticate (broker-signed key) and run `true`, median ms.
    pub sessiond_connect_auth_exec_ms: f64,
    pub openssh_connect_auth_exec_ms: f64,
    pub connect_ratio: f64,
    /// A read-only command on the simulated RouterOS (connect, prompt, paging off, command), median ms.
    pub lab_readonly_exec_ms: f64,
    pub recorded: bool,
}

/// The throwaway world; everything stops on drop.
struct World {
    _broker: crate::bench_broker::PrivateBroker,
    layout: Layout,
    sessiond: std::process::Child,
    sshd: std::process::Child,
    dir: PathBuf,
    port: u16,
    user: String,
    key: PathBuf,
    known_hosts: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = gatehouse(&self.layout, &["lab", "down"], "");
        for c in [&mut self.sessiond, &mut self.sshd] {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts an installed daemon (beside this binary) in `layout`'s profile.
pub(crate) fn spawn_daemon(layout: &Layout, binary: &str) -> anyhow::Result<std::process::Child> {
    let install = gatehouse_ipc::peer::Installation::of_current_exe()?;
    crate::supervisor::daemon_command(&install.dir.join(binary))
        .args(["--profile", &layout.profile])
        .env("GATEHOUSE_HOME", &layout.root)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary}"))
}

/// Runs this `gatehouse` in the world's profile.
pub(crate) fn gatehouse(layout: &Layout, args: &[&str], stdin: &str) -> anyhow::Result<String> {
    let mut c = Command::new(std::env::current_exe()?);
    c.env("GATEHOUSE_HOME", &layout.root)
        .args(["--profile", &layout.profile])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().context("stdin")?, stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "gatehouse {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_sshd() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("OpenSSH sshd not found (Debian: apt-get install openssh-server)")
}

/// Starts sshd as the current user: public-key login only, for this user.
fn start_sshd(dir: &Path, user_pub: &str) -> anyhow::Result<(std::process::Child, u16, String)> {
    let host_key = dir.join("host_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key))?;
    let fp = run(Command::new("ssh-keygen")
        .arg("-lf")
        .arg(host_key.with_extension("pub")))?;
    // "256 SHA256:xxx comment (ED25519)" → "ssh-ed25519 SHA256:xxx"
    let sha = fp
        .split_whitespace()
        .nth(1)
        .context("ssh-keygen -l output")?;
    let pinned = format!("ssh-ed25519 {sha}");
    let authorized = dir.join("authorized_keys");
    std::fs::write(&authorized, user_pub)?;
    let port = free_port()?;
    if nix::unistd::getuid().is_root() {
        std::fs::create_dir_all("/run/sshd")?;
    }
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host_key.display(),
            dir.join("sshd.pid").display(),
            authorized.display()
        ),
    )?;
    let child = Command::new(find_sshd()?)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sshd")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("sshd did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, port, pinned))
}

fn start_world() -> anyhow::Result<World> {
    let broker = start_private_broker()?;
    let layout = broker.layout.clone();
    let mut b = BrokerConn::connect_layout(&layout)?;
    let pass = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<16>());
    b.ask(BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(pass.as_bytes()),
    })?;
    let sessiond = spawn_daemon(&layout, "gatehouse-sessiond")?;
    let dir = layout.root.join("bench-sshd");
    gatehouse_ipc::paths::make_private_dir(&dir)?;
    let key = dir.join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key))?;
    let user_pub = std::fs::read_to_string(key.with_extension("pub"))?;
    let (sshd, port, pinned) = start_sshd(&dir, &user_pub)?;
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())?
        .context("no passwd entry for the current user")?
        .name;
    let known_hosts = dir.join("known_hosts");
    let host_pub = std::fs::read_to_string(dir.join("host_ed25519.pub"))?;
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{port} {}\n",
            host_pub
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )?;
    let world = World {
        _broker: broker,
        layout,
        sessiond,
        sshd,
        dir,
        port,
        user,
        key,
        known_hosts,
    };
    // The key goes to the keychain; the host names it, with its host key pinned.
    let private = std::fs::read_to_string(&world.key)?;
    gatehouse(
        &world.layout,
        &["keychain", "set", "bench-key", "--kind", "private-key"],
        &private,
    )?;
    gatehouse(
        &world.layout,
        &[
            "host",
            "add",
            "bench-sshd",
            "--private",
            "--address",
            "127.0.0.1",
            "--port",
            &world.port.to_string(),
            "--vendor",
            "linux",
            "--ssh-user",
            &world.user,
            "--ssh-key",
            "keychain:bench-key",
            "--host-key",
            &pinned,
        ],
        "",
    )?;
    gatehouse(&world.layout, &["lab", "up"], "")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while SessiondConn::connect(&world.layout).is_err() {
        if Instant::now() > deadline {
            bail!("the benchmark sessiond did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(world)
}

/// Runs `command` on `host` through sessiond; returns (output bytes, seconds).
pub(crate) fn sessiond_exec(
    layout: &Layout,
    host: &str,
    org: Option<&str>,
    command: &str,
    record: bool,
) -> anyhow::Result<(u64, f64)> {
    let t0 = Instant::now();
    let mut s = SessiondConn::connect(layout)?;
    let started = s.call(SessiondRequest::Exec {
        host: HostRef {
            host: host.into(),
            org: org.map(str::to_string),
        },
        command: command.into(),
        approval: None,
        record,
    })?;
    if !matches!(started, SessiondResponse::Started { .. }) {
        bail!("unexpected reply {started:?}");
    }
    let mut bytes = 0u64;
    loop {
        match s.next_event(Duration::from_secs(600))? {
            Some(SessionEvent::Output { data, .. } | SessionEvent::Stderr { data, .. }) => {
                bytes += data.len() as u64
            }
            Some(SessionEvent::Exited { status, reason, .. }) => {
                if status != Some(0) {
                    bail!("{command:?} on {host} ended with {status:?} {reason:?}");
                }
                return Ok((bytes, t0.elapsed().as_secs_f64()));
            }
            None => {}
        }
    }
}

/// Runs `command` with OpenSSH's client against the bench sshd; returns (output bytes, seconds).
fn openssh_exec(w: &World, command: &str) -> anyhow::Result<(u64, f64)> {
    let t0 = Instant::now();
    let mut child = Command::new("ssh")
        .arg("-i")
        .arg(&w.key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", w.known_hosts.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-F",
            "/dev/null",
            "-p",
        ])
        .arg(w.port.to_string())
        .arg(format!("{}@127.0.0.1", w.user))
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ssh")?;
    let mut out = child.stdout.take().context("stdout")?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    let status = child.wait()?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!("ssh {command:?}: {status}: {}", err.trim());
    }
    Ok((bytes, t0.elapsed().as_secs_f64()))
}

/// Writes `bytes` of base64 text lines (76 columns) to `path`.
fn write_text(path: &Path, bytes: u64) -> anyhow::Result<()> {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut raw = [0u8; 57];
    let mut written = 0u64;
    while written < bytes {
        gatehouse_ipc::os::fill_random(&mut raw);
        let mut line = base64::engine::general_purpose::STANDARD.encode(raw);
        line.push('\n');
        let take = (bytes - written).min(line.len() as u64) as usize;
        out.write_all(&line.as_bytes()[..take])?;
        written += take as u64;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run_bench(args: &BenchSessionsArgs) -> anyhow::Result<ExitCode> {
    let w = start_world()?;
    let bytes = args.megabytes * 1_000_000;
    // Terminal-like output: a text file of base64 lines (a large log or
    // config dump), streamed with a read-only `cat`.
    let file = w.dir.join("stream.txt");
    write_text(&file, bytes)?;
    let stream = format!("cat {}", file.display());
    let (mut ours, mut bare, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let (n, secs) = sessiond_exec(&w.layout, "bench-sshd", Some("private"), &stream, true)?;
        if n != bytes {
            bail!("sessiond delivered {n} of {bytes} bytes");
        }
        ours.push(n as f64 / secs / 1e6);
        let (n, secs) = sessiond_exec(&w.layout, "bench-sshd", Some("private"), &stream, false)?;
        if n != bytes {
            bail!("sessiond delivered {n} of {bytes} bytes");
        }
        bare.push(n as f64 / secs / 1e6);
        let (n, secs) = openssh_exec(&w, &stream)?;
        if n != bytes {
            bail!("ssh delivered {n} of {bytes} bytes");
        }
        theirs.push(n as f64 / secs / 1e6);
    }
    let (mut ours_lat, mut theirs_lat, mut lab) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.samples.max(1) {
        ours_lat
            .push(sessiond_exec(&w.layout, "bench-sshd", Some("private"), "true", false)?.1 * 1e3);
        theirs_lat.push(openssh_exec(&w, "true")?.1 * 1e3);
        lab.push(
            sessiond_exec(
                &w.layout,
                "r1",
                Some("lab"),
                "/system identity print",
                false,
            )?
            .1 * 1e3,
        );
    }
    let (sessiond_mb_s, sessiond_unrecorded_mb_s, openssh_mb_s) =
        (median(ours), median(bare), median(theirs));
    let (a, b) = (median(ours_lat), median(theirs_lat));
    let r = SessionsBench {
        megabytes: args.megabytes,
        sessiond_mb_s,
        sessiond_unrecorded_mb_s,
        openssh_mb_s,
        throughput_ratio: sessiond_mb_s / openssh_mb_s,
        unrecorded_ratio: sessiond_unrecorded_mb_s / openssh_mb_s,
        sessiond_connect_auth_exec_ms: a,
        openssh_connect_auth_exec_ms: b,
        connect_ratio: a / b,
        lab_readonly_exec_ms: median(lab),
        recorded: true,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{:<44} {:>12} {:>12} {:>8}",
            "MEASURE", "SESSIOND", "OPENSSH", "RATIO"
        );
        println!(
            "{:<44} {:>12.1} {:>12.1} {:>8.2}",
            format!("stream {} MB (MB/s, recorded)", r.megabytes),
            r.sessiond_mb_s,
            r.openssh_mb_s,
            r.throughput_ratio
        );
        println!(
            "{:<44} {:>12.1} {:>12.1} {:>8.2}",
            "  the same, --no-record (MB/s)",
            r.sessiond_unrecorded_mb_s,
            r.openssh_mb_s,
            r.unrecorded_ratio
        );
        println!(
            "{:<44} {:>12.1} {:>12.1} {:>8.2}",
            "connect + key auth + `true` (ms, median)",
            r.sessiond_connect_auth_exec_ms,
            r.openssh_connect_auth_exec_ms,
            r.connect_ratio
        );
        println!(
            "{:<44} {:>12.1} {:>12} {:>8}",
            "read-only exec on simulated RouterOS (ms)", r.lab_readonly_exec_ms, "-", "-"
        );
    }
    Ok(ExitCode::SUCCESS)
}
