//! `gatehouse up | down | status`: the process supervisor and the status view.
//!
//! Owns starting the broker from the installation directory (beside this
//! binary), restarting it after a crash with backoff, and stopping it.
//! Must never: start a daemon from anywhere but the installation directory,
//! or pass a secret on a command line.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, BrokerStatus};
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::sessiond::{SessiondRequest, SessiondResponse, SessiondStatus};
use gatehouse_sandbox::hardening::inspect_pid;
use gatehouse_sandbox::status::{ProcessRow, kernel_row, process_rows};
use serde::Serialize;

use crate::commands::BrokerConn;

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Stay in the foreground (the supervisor itself), instead of detaching.
    #[arg(long)]
    foreground: bool,
    /// Let the broker start even if a sandbox layer cannot be applied (shown in status).
    #[arg(long)]
    allow_degraded: bool,
    /// Keychain backend for the broker: secret-service or keyutils.
    #[arg(long)]
    keychain: Option<String>,
}

fn pid_file(layout: &Layout) -> PathBuf {
    layout.runtime.join("supervisor.pid")
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The supervisor's pid, if one runs for this profile.
pub fn supervisor_pid(layout: &Layout) -> Option<i32> {
    read_pid(&pid_file(layout)).filter(|p| alive(*p))
}

fn broker_answers(layout: &Layout) -> bool {
    BrokerConn::connect_layout(layout).is_ok()
}

fn sessiond_answers(layout: &Layout) -> bool {
    crate::session_cmds::SessiondConn::connect(layout).is_ok()
}

pub(crate) fn copilotd_status(layout: &Layout) -> Option<gatehouse_ipc::copilotd::CopilotStatus> {
    use gatehouse_ipc::copilotd::{CopilotRequest, CopilotResponse, Copilotd};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut c = gatehouse_ipc::client::Client::<Copilotd>::connect(
            &layout.runtime,
            Duration::from_secs(2),
        )
        .await
        .ok()?;
        match c.call(CopilotRequest::Status).await {
            Ok(CopilotResponse::Status(s)) => Some(*s),
            _ => None,
        }
    })
}

pub fn up(profile: Option<&str>, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    layout.ensure()?;
    if args.foreground {
        return supervise(&layout, args);
    }
    if let Some(pid) = supervisor_pid(&layout) {
        println!("already up (supervisor pid {pid})");
        return Ok(ExitCode::SUCCESS);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.runtime.join("supervisor.log"))
        .context("opening supervisor.log")?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    if let Some(p) = profile {
        cmd.args(["--profile", p]);
    }
    cmd.args(["up", "--foreground"]);
    if args.allow_degraded {
        cmd.arg("--allow-degraded");
    }
    if let Some(k) = &args.keychain {
        cmd.args(["--keychain", k]);
    }
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().context("starting the supervisor")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let sync_configured = gatehouse_ipc::sync_state::server_path(&layout.root).exists();
        if broker_answers(&layout)
            && sessiond_answers(&layout)
            && copilotd_status(&layout).is_some()
            && (!sync_configured || crate::sync_cmds::syncd_status(&layout).is_some())
        {
            println!(
                "up: broker, sessiond{} running (supervisor pid {})",
                if sync_configured {
                    ", copilotd and syncd"
                } else {
                    " and copilotd"
                },
                child.id()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the supervisor exited ({status}); see {}",
                layout.runtime.join("supervisor.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "the broker, sessiond and copilotd did not all answer within 15 s; see {}",
        layout.runtime.join("supervisor.log").display()
    )
}

/// One supervised daemon: its binary beside `gatehouse`, and its arguments.
struct Daemon {
    name: &'static str,
    path: PathBuf,
    args: Vec<String>,
    /// Started only once this file exists (syncd: a configured sync server).
    when: Option<PathBuf>,
}

/// Runs the daemons (broker, sessiond) and restarts each when it dies, with
/// backoff, until SIGTERM/SIGINT.
fn supervise(layout: &Layout, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let install = Installation::of_current_exe()?;
    // The profile name also namespaces keychain entries, so pass it even
    // when GATEHOUSE_HOME decides the directories.
    let mut common = vec!["--profile".to_string(), layout.profile.clone()];
    if args.allow_degraded {
        common.push("--allow-degraded".into());
    }
    let mut broker_args = common.clone();
    if let Some(k) = &args.keychain {
        broker_args.extend(["--keychain".to_string(), k.clone()]);
    }
    let daemons = [
        Daemon {
            name: "broker",
            path: install.dir.join("gatehouse-broker"),
            args: broker_args,
            when: None,
        },
        Daemon {
            name: "sessiond",
            path: install.dir.join("gatehouse-sessiond"),
            args: common.clone(),
            when: None,
        },
        // Needs the broker and sessiond: until they answer it exits and is restarted.
        Daemon {
            name: "copilotd",
            path: install.dir.join("gatehouse-copilotd"),
            args: common.clone(),
            when: None,
        },
        // Only once a sync server is configured (`gatehouse sync connect`
        // writes it, and then finds syncd started).
        Daemon {
            name: "syncd",
            path: install.dir.join("gatehouse-syncd"),
            args: common,
            when: Some(gatehouse_ipc::sync_state::server_path(&layout.root)),
        },
    ];
    // A conditional daemon's binary may be missing until it is needed
    // (keep_running says so then).
    for d in daemons.iter().filter(|d| d.when.is_none()) {
        if !d.path.exists() {
            bail!(
                "{} not found: the {} must be installed beside gatehouse",
                d.path.display(),
                d.name
            );
        }
    }
    if let Some(pid) = supervisor_pid(layout) {
        bail!("a supervisor already runs for this profile (pid {pid})");
    }
    // The supervisor holds no secret, but nothing it starts needs new
    // privileges, and no same-uid process should be able to ptrace it.
    nix::sys::prctl::set_no_new_privs()?;
    nix::sys::prctl::set_dumpable(false)?;
    gatehouse_ipc::os::write_atomic(&pid_file(layout), std::process::id().to_string().as_bytes())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let runs = run_all(&daemons, stop_rx);
        tokio::pin!(runs);
        tokio::select! {
            r = &mut runs => return r,
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
        runs.await
    });
    let _ = std::fs::remove_file(pid_file(layout));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Keeps every daemon running until `stop` turns true.
async fn run_all(
    daemons: &[Daemon],
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let [broker, sessiond, copilotd, syncd] = daemons else {
        bail!("the supervisor runs exactly the broker, sessiond, copilotd and syncd");
    };
    let (a, b, c, d) = tokio::join!(
        keep_running(broker, stop.clone()),
        keep_running(sessiond, stop.clone()),
        keep_running(copilotd, stop.clone()),
        keep_running(syncd, stop)
    );
    a.and(b).and(c).and(d)
}

/// A command starting the daemon at `path`. The daemons refuse to start
/// with a dynamic-loader variable (a preload runs other code inside them);
/// a shell's or cargo's `LD_LIBRARY_PATH` is not an attack on them, so
/// whatever starts a daemon (the supervisor, the benchmarks) starts it
/// without any `LD_*` variable, through this.
pub fn daemon_command(path: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(path);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LD_") {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// Runs `d`, restarting it with backoff, until `stop` turns true.
async fn keep_running(
    d: &Daemon,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(100);
    loop {
        // A conditional daemon waits for its file (checked twice a second).
        let mut said = false;
        while let Some(when) = &d.when
            && !(when.exists() && d.path.exists())
        {
            if when.exists() && !said {
                eprintln!(
                    "supervisor: {} is configured but {} is not installed beside gatehouse",
                    d.name,
                    d.path.display()
                );
                said = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
        let mut cmd = tokio::process::Command::from(daemon_command(&d.path));
        cmd.args(&d.args);
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", d.path.display()))?;
        let started = Instant::now();
        eprintln!(
            "supervisor: {} started (pid {})",
            d.name,
            child.id().unwrap_or(0)
        );
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(100);
                }
                eprintln!("supervisor: {} exited ({status}); restarting in {backoff:?}", d.name);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            _ = stop.changed() => {
                stop_child(&mut child).await;
                return Ok(());
            }
        }
    }
}

async fn stop_child(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

pub fn down(profile: Option<&str>) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let Some(pid) = supervisor_pid(&layout) else {
        println!("not running");
        return Ok(ExitCode::SUCCESS);
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        bail!("supervisor pid {pid} did not stop");
    }
    println!("down");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub profile: String,
    pub runtime_dir: String,
    pub processes: Vec<ProcessRow>,
    pub broker: Option<BrokerStatus>,
    pub broker_error: Option<String>,
    pub sessiond: Option<SessiondStatus>,
    pub copilotd: Option<gatehouse_ipc::copilotd::CopilotStatus>,
    /// Runs only when a sync server is configured.
    pub syncd: Option<gatehouse_ipc::syncd::SyncStatus>,
}

pub fn collect_status(layout: &Layout) -> StatusReport {
    let mut processes = Vec::new();
    if let Some(pid) = supervisor_pid(layout)
        && let Ok(h) = inspect_pid(pid)
    {
        processes.push(kernel_row("gatehouse up", "supervisor", &h));
    }
    let (broker, broker_error) =
        match BrokerConn::connect_layout(layout).and_then(|mut b| b.ask(BrokerRequest::Status)) {
            Ok(BrokerResponse::Status(s)) => (Some(*s), None),
            Ok(other) => (None, Some(format!("unexpected reply {other:?}"))),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
    let sessiond = crate::session_cmds::SessiondConn::connect(layout)
        .ok()
        .and_then(|mut c| match c.call(SessiondRequest::Status) {
            Ok(SessiondResponse::Status(s)) => Some(*s),
            _ => None,
        });
    let copilotd = copilotd_status(layout);
    let syncd = crate::sync_cmds::syncd_status(layout);
    processes.extend(process_rows(
        broker.as_ref(),
        sessiond.as_ref(),
        copilotd.as_ref(),
        syncd.as_ref(),
    ));
    StatusReport {
        sessiond,
        copilotd,
        syncd,
        profile: layout.profile.clone(),
        runtime_dir: layout.runtime.display().to_string(),
        processes,
        broker,
        broker_error,
    }
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

pub fn print_status(r: &StatusReport) {
    println!("profile {}  (sockets in {})", r.profile, r.runtime_dir);
    println!(
        "{:<18} {:>7} {:>6} {:<10} {:<8} {:<6} {:<11} {:<22} {:<16} {:<5}",
        "PROCESS",
        "PID",
        "UID",
        "ROLE",
        "DUMPABLE",
        "NNP",
        "SECCOMP",
        "LANDLOCK",
        "SECRET MEMORY",
        "CORE"
    );
    for p in &r.processes {
        println!(
            "{:<18} {:>7} {:>6} {:<10} {:<8} {:<6} {:<11} {:<22} {:<16} {:<5}",
            p.process,
            p.pid,
            p.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into()),
            p.role,
            yes_no(p.dumpable),
            yes_no(p.no_new_privs),
            p.seccomp,
            p.landlock,
            p.secret_memory,
            p.core_limit
        );
    }
    match (&r.broker, &r.broker_error) {
        (Some(s), _) => {
            println!(
                "keychain backend: {}{}",
                s.keychain_backend,
                s.keychain_warning
                    .as_ref()
                    .map(|w| format!("  (warning: {w})"))
                    .unwrap_or_default()
            );
            let state = if !s.account_initialized {
                "no account (gatehouse account init)"
            } else if s.signed_in {
                "signed in"
            } else {
                "signed out"
            };
            println!(
                "account: {state}; {} organization(s); {} pending approval(s); {} Autopilot task(s); {} cached secret(s); device remembered: {}",
                s.orgs,
                s.pending_approvals,
                s.autopilot_tasks,
                s.cached_secrets,
                if s.remembered_device { "yes" } else { "no" }
            );
            for d in &s.hardening.degraded {
                println!("DEGRADED: {d}");
            }
            println!("{}", boundary_line(s));
            if let Some(at) = &s.remembered_at {
                println!("remembered unlock material: {at}");
            }
        }
        (None, Some(e)) => println!("broker: {e}"),
        (None, None) => {}
    }
    match &r.sessiond {
        Some(s) => println!(
            "sessiond: {} open session(s); sees the account {}",
            s.sessions,
            if s.signed_in {
                "signed in"
            } else {
                "signed out"
            }
        ),
        None => println!("sessiond: not running"),
    }
    match &r.copilotd {
        Some(c) => println!(
            "copilotd: provider {}; {} conversation(s)",
            c.provider.as_deref().unwrap_or("not configured"),
            c.conversations
        ),
        None => println!("copilotd: not running"),
    }
    match &r.syncd {
        Some(s) => println!(
            "syncd: {} as {}; {}",
            s.server.as_deref().unwrap_or("?"),
            s.account.as_deref().unwrap_or("(not connected)"),
            match &s.offline {
                Some(why) => format!("offline ({why})"),
                None if s.signed_in => "signed in".to_string(),
                None => "no session".to_string(),
            }
        ),
        None => println!("syncd: not running (starts once a sync server is configured)"),
    }
}

/// One line saying whether the privilege boundary is on.
pub fn boundary_line(s: &gatehouse_ipc::broker::BrokerStatus) -> String {
    match s.boundary_group {
        Some(gid) => format!(
            "privilege boundary: ON (binaries setgid to group gid {gid}; only they reach the broker)"
        ),
        None => "privilege boundary: OFF (development build, not installed setgid: any program running as you can take any role; install with scripts/install)".into(),
    }
}

pub fn status(profile: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let report = collect_status(&layout);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_status(&report);
    }
    Ok(if report.broker.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
