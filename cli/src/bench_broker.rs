//! `gatehouse bench broker`: broker round trips beside baselines measured in
//! the same run — in-process XChaCha20-Poly1305 for sealing, and OpenSSH's
//! `ssh-agent` signing with an Ed25519 key over its socket for approvals.
//!
//! Runs its own broker in a throwaway profile (never touches yours). Must
//! never: report a figure it did not measure in this run.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use gatehouse_ipc::broker::{
    Action, BrokerRequest, BrokerResponse, Decision, FieldAddress, KeyScope, OpenItem, SealItem,
};
use gatehouse_ipc::{Layout, SecretBytes};
use serde::Serialize;

use crate::commands::BrokerConn;

#[derive(Args, Debug)]
pub struct BenchBrokerArgs {
    #[arg(long)]
    json: bool,
    /// Round trips per latency figure.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
}

#[derive(Args, Debug)]
pub struct FileRequestsArgs {
    #[arg(long)]
    count: usize,
    #[arg(long)]
    org: String,
}

#[derive(Debug, Serialize, Default)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    Latency {
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

#[derive(Debug, Serialize)]
pub struct BrokerBench {
    pub seal_1k_ipc: Latency,
    pub open_1k_ipc: Latency,
    pub seal_1k_in_process: Latency,
    pub approval_sign_ipc: Latency,
    pub ssh_agent_ed25519_sign: Option<Latency>,
    pub ssh_agent_error: Option<String>,
    pub approval_sign_p50_vs_ssh_agent: Option<f64>,
    pub batch_seal_64k_ipc_mb_s: f64,
    pub batch_seal_64k_in_process_mb_s: f64,
    pub batch_seal_ratio: f64,
    pub broker_idle_rss_kib: u64,
    pub signout_purge_cached_fields: usize,
    pub signout_purge_broker_us: u64,
    pub signout_round_trip_us: f64,
    pub secret_memory: String,
}

/// A broker in a throwaway profile, killed on drop.
pub(crate) struct PrivateBroker {
    child: std::process::Child,
    pub(crate) home: std::path::PathBuf,
    pub(crate) layout: Layout,
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

pub(crate) fn start_private_broker() -> anyhow::Result<PrivateBroker> {
    let install = gatehouse_ipc::peer::Installation::of_current_exe()?;
    let home = std::env::temp_dir().join(format!("gatehouse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let layout = Layout::under(home.clone(), home.join("run"), "bench".into());
    layout.ensure()?;
    let child = crate::supervisor::daemon_command(&install.dir.join("gatehouse-broker"))
        .args(["--keychain", "keyutils"])
        .env("GATEHOUSE_HOME", &home)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("starting gatehouse-broker")?;
    let mut pb = PrivateBroker {
        child,
        home,
        layout,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while BrokerConn::connect_layout(&pb.layout).is_err() {
        if Instant::now() > deadline {
            bail!("the benchmark broker did not start");
        }
        if let Some(s) = pb.child.try_wait()? {
            bail!("the benchmark broker exited: {s}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(pb)
}

fn addr(org: &str, record: usize, field: &str) -> FieldAddress {
    FieldAddress {
        scope: KeyScope::Org(org.into()),
        record_kind: "host".into(),
        record_id: format!("bench-{record}"),
        field: field.into(),
        binding: b"10.0.0.1:22:admin".to_vec(),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

pub fn run(args: &BenchBrokerArgs) -> anyhow::Result<ExitCode> {
    let n = args.iterations.max(10);
    let pb = start_private_broker()?;
    let mut b = BrokerConn::connect_layout(&pb.layout)?;
    let pass = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<16>());
    b.ask(BrokerRequest::AccountInit {
        passphrase: SecretBytes::copy_from(pass.as_bytes()),
    })?;
    let org = match b.ask(BrokerRequest::OrgCreate {
        name: "bench".into(),
    })? {
        BrokerResponse::Org(o) => o.id,
        r => bail!("unexpected {r:?}"),
    };
    let broker_pid = b.server_pid();
    let idle_rss = rss_kib(broker_pid);
    let secret_memory = match b.ask(BrokerRequest::Status)? {
        BrokerResponse::Status(s) => s.hardening.secret_memory,
        _ => String::new(),
    };

    // 1 KiB seal/open round trips.
    let kib = vec![0x5au8; 1024];
    let a = addr(&org, 0, "ssh.password");
    let (mut seal_s, mut open_s) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let sealed = match b.ask(BrokerRequest::SealFields {
            items: vec![SealItem {
                address: a.clone(),
                plaintext: SecretBytes::copy_from(&kib),
            }],
        })? {
            BrokerResponse::Sealed(mut s) => s.remove(0).0,
            r => bail!("unexpected {r:?}"),
        };
        seal_s.push(t.elapsed());
        let t = Instant::now();
        b.ask(BrokerRequest::OpenFields {
            items: vec![OpenItem {
                address: a.clone(),
                sealed,
            }],
        })?;
        open_s.push(t.elapsed());
    }
    // In-process baseline with the same code the broker runs.
    let key = gatehouse_ipc::os::random_bytes::<32>();
    let kid = gatehouse_ipc::os::random_bytes::<8>();
    let mut local = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(gatehouse_crypto::seal_field(&key, &kid, &a, &kib));
        local.push(t.elapsed());
    }

    // Approval signing: a second process files the requests (a requester may not decide its own).
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(&exe)
        .args([
            "bench",
            "file-requests",
            "--count",
            &n.to_string(),
            "--org",
            "bench",
        ])
        .env("GATEHOUSE_HOME", &pb.home)
        .status()?;
    if !status.success() {
        bail!("filing approval requests failed: {status}");
    }
    let ids: Vec<u64> = match b.ask(BrokerRequest::ListApprovals)? {
        BrokerResponse::Approvals(v) => v.into_iter().map(|v| v.id).collect(),
        r => bail!("unexpected {r:?}"),
    };
    let mut sign_s = Vec::with_capacity(ids.len());
    for id in ids {
        let t = Instant::now();
        b.ask(BrokerRequest::DecideApproval {
            id,
            decision: Decision::Approve,
            presence: None,
        })?;
        sign_s.push(t.elapsed());
    }
    let (agent, agent_error) = match ssh_agent_sign_latency(n) {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };

    // Batch sealing of 64 KiB fields, 16 per request: 5 alternating trials of
    // each, median reported (scheduling on a small machine makes single
    // trials swing by 2x).
    let field64 = vec![0xa5u8; 64 * 1024];
    let rounds = 16;
    let bytes = (rounds * 16 * field64.len()) as f64;
    let (mut ipc, mut in_process) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        for r in 0..rounds {
            let items = (0..16)
                .map(|i| SealItem {
                    address: addr(&org, r * 16 + i, "procedure.body"),
                    plaintext: SecretBytes::copy_from(&field64),
                })
                .collect();
            b.ask(BrokerRequest::SealFields { items })?;
        }
        ipc.push(bytes / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        for r in 0..rounds {
            for i in 0..16 {
                std::hint::black_box(gatehouse_crypto::seal_field(
                    &key,
                    &kid,
                    &addr(&org, r * 16 + i, "procedure.body"),
                    &field64,
                ));
            }
        }
        in_process.push(bytes / t.elapsed().as_secs_f64() / 1e6);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ipc_mb_s = median(ipc);
    let local_mb_s = median(in_process);

    // Sign-out with 10,000 cached secret fields.
    let cached = 10_000;
    for chunk in 0..cached / 1000 {
        let items: Vec<SealItem> = (0..1000)
            .map(|i| {
                let k = chunk * 1000 + i;
                SealItem {
                    address: addr(&org, k, "ssh.password"),
                    plaintext: SecretBytes::new(format!("bench-secret-{k:08}").into_bytes()),
                }
            })
            .collect();
        let addrs: Vec<FieldAddress> = items.iter().map(|i| i.address.clone()).collect();
        let sealed = match b.ask(BrokerRequest::SealFields { items })? {
            BrokerResponse::Sealed(s) => s,
            r => bail!("unexpected {r:?}"),
        };
        let items = addrs
            .into_iter()
            .zip(sealed)
            .map(|(address, s)| OpenItem {
                address,
                sealed: s.0,
            })
            .collect();
        b.ask(BrokerRequest::OpenFields { items })?;
    }
    let t = Instant::now();
    let purge = match b.ask(BrokerRequest::SignOut)? {
        BrokerResponse::SignedOut(r) => r,
        r => bail!("unexpected {r:?}"),
    };
    let signout_rt = t.elapsed().as_secs_f64() * 1e6;

    let sign = latency(sign_s);
    let ratio = agent.as_ref().map(|a| sign.p50_us / a.p50_us);
    let report = BrokerBench {
        seal_1k_ipc: latency(seal_s),
        open_1k_ipc: latency(open_s),
        seal_1k_in_process: latency(local),
        approval_sign_ipc: sign,
        ssh_agent_ed25519_sign: agent,
        ssh_agent_error: agent_error,
        approval_sign_p50_vs_ssh_agent: ratio,
        batch_seal_64k_ipc_mb_s: ipc_mb_s,
        batch_seal_64k_in_process_mb_s: local_mb_s,
        batch_seal_ratio: ipc_mb_s / local_mb_s,
        broker_idle_rss_kib: idle_rss,
        signout_purge_cached_fields: purge.cached_secrets_zeroized,
        signout_purge_broker_us: purge.micros,
        signout_round_trip_us: signout_rt,
        secret_memory,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &BrokerBench) {
    println!("{:<44} {:>12} {:>12}", "measure", "p50 µs", "p99 µs");
    for (name, l) in [
        ("seal 1 KiB via broker", &r.seal_1k_ipc),
        ("open 1 KiB via broker", &r.open_1k_ipc),
        ("seal 1 KiB in-process (baseline)", &r.seal_1k_in_process),
        ("approval sign via broker", &r.approval_sign_ipc),
    ] {
        println!("{:<44} {:>12.1} {:>12.1}", name, l.p50_us, l.p99_us);
    }
    match &r.ssh_agent_ed25519_sign {
        Some(l) => println!(
            "{:<44} {:>12.1} {:>12.1}",
            "ssh-agent Ed25519 sign (baseline)", l.p50_us, l.p99_us
        ),
        None => println!(
            "ssh-agent baseline unavailable: {}",
            r.ssh_agent_error.as_deref().unwrap_or("?")
        ),
    }
    if let Some(x) = r.approval_sign_p50_vs_ssh_agent {
        println!("approval sign p50 / ssh-agent p50: {x:.3}");
    }
    println!(
        "batch seal 64 KiB fields: {:.0} MB/s via broker, {:.0} MB/s in-process (ratio {:.2})",
        r.batch_seal_64k_ipc_mb_s, r.batch_seal_64k_in_process_mb_s, r.batch_seal_ratio
    );
    println!(
        "broker idle RSS: {} KiB; secret memory: {}",
        r.broker_idle_rss_kib, r.secret_memory
    );
    println!(
        "sign-out purge of {} cached fields: {} µs in the broker, {:.0} µs round trip",
        r.signout_purge_cached_fields, r.signout_purge_broker_us, r.signout_round_trip_us
    );
}

/// Files `count` approval requests (used by the benchmark from a second process).
pub fn file_requests(profile: Option<&str>, args: &FileRequestsArgs) -> anyhow::Result<ExitCode> {
    let mut b = BrokerConn::connect(profile)?;
    let org = crate::commands::org_id(&mut b, &args.org)?;
    for i in 0..args.count {
        b.ask(BrokerRequest::RequestApproval {
            action: Action {
                host: "bench-router".into(),
                vendor: "ios".into(),
                org: org.clone(),
                credential: Some("keychain:bench".into()),
                command: format!("interface Gi0/{i}\n shutdown"),
                expected_effect: "bench".into(),
            },
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Round trips of SSH_AGENTC_SIGN_REQUEST to a fresh `ssh-agent` holding an Ed25519 key.
fn ssh_agent_sign_latency(n: usize) -> anyhow::Result<Latency> {
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cleanup = DirGuard(dir.clone());
    let key = dir.join("id_ed25519");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .stdout(Stdio::null())
        .status()
        .context("running ssh-keygen (install openssh-client)")?;
    if !ok.success() {
        bail!("ssh-keygen failed");
    }
    let sock = dir.join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ssh-agent")?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            if Instant::now() > deadline {
                bail!("ssh-agent socket did not appear");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let added = std::process::Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &sock)
            .stderr(Stdio::null())
            .status()?;
        if !added.success() {
            bail!("ssh-add failed");
        }
        let pubkey = std::fs::read_to_string(key.with_extension("pub"))?;
        let blob = base64::engine::general_purpose::STANDARD.decode(
            pubkey
                .split_whitespace()
                .nth(1)
                .context("public key format")?,
        )?;
        let mut s = UnixStream::connect(&sock)?;
        let data = [0x42u8; 64];
        let mut req = Vec::new();
        req.push(13u8); // SSH_AGENTC_SIGN_REQUEST
        put_string(&mut req, &blob);
        put_string(&mut req, &data);
        req.extend_from_slice(&0u32.to_be_bytes());
        let mut framed = (req.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&req);
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            s.write_all(&framed)?;
            let mut len = [0u8; 4];
            s.read_exact(&mut len)?;
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            s.read_exact(&mut body)?;
            samples.push(t.elapsed());
            if body.first() != Some(&14) {
                bail!("ssh-agent refused to sign (reply type {:?})", body.first());
            }
        }
        Ok(latency(samples))
    })();
    let _ = agent.kill();
    let _ = agent.wait();
    drop(cleanup);
    result
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Removes a temporary directory when dropped.
struct DirGuard(std::path::PathBuf);
impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
