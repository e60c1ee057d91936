//! `gatehouse lab up | down | status`: simulated devices on loopback.
//!
//! Owns starting `gatehouse-labdevice` processes (a RouterOS and an IOS
//! device) from the installation directory, giving each a generated password
//! stored in the keychain, and adding each as a host record in the `lab`
//! organization (address, port, `keychain:` password reference, pinned host
//! key). The lab's own files live in `<profile>/lab/` (0700).
//! Must never: put a password on a command line or in a host record as a
//! literal (records hold only the `keychain:lab-NAME` reference).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use gatehouse_ipc::broker::{BrokerError, BrokerRequest, SecretKind};
use gatehouse_ipc::client::CallError;
use gatehouse_ipc::{Layout, SecretBytes};
use serde::{Deserialize, Serialize};

use crate::commands::BrokerConn;

/// The lab: (host name, vendor, device hostname).
const DEVICES: [(&str, &str, &str); 2] = [("r1", "routeros", "R1"), ("sw1", "ios", "SW1")];
const LAB_ORG: &str = "lab";

#[derive(Subcommand, Debug)]
pub enum LabCmd {
    /// Start the simulated devices and add them as hosts of the `lab` organization.
    Up {
        /// Also log every raw byte that reaches a device, as it arrives (to
        /// audit exactly what was sent; keystrokes typed into a device shell
        /// are logged too).
        #[arg(long)]
        log_data: bool,
    },
    /// Stop the simulated devices and remove their host records.
    Down,
    /// Show the running simulated devices.
    Status {
        #[arg(long)]
        json: bool,
    },
}

/// One running device (`lab/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabDevice {
    pub name: String,
    pub vendor: String,
    pub pid: i32,
    pub port: u16,
    pub host_key: String,
    pub log: PathBuf,
}

fn lab_dir(layout: &Layout) -> anyhow::Result<PathBuf> {
    let dir = layout.root.join("lab");
    gatehouse_ipc::paths::make_private_dir(&dir)?;
    Ok(dir)
}

fn read_state(dir: &Path) -> Vec<LabDevice> {
    std::fs::read(dir.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Runs this `gatehouse` binary with `args` in the same profile.
fn gatehouse(profile: Option<&str>, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut c = std::process::Command::new(std::env::current_exe()?);
    if let Some(p) = profile {
        c.args(["--profile", p]);
    }
    Ok(c.args(args).stdin(Stdio::null()).output()?)
}

pub fn run(profile: Option<&str>, cmd: LabCmd) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let dir = lab_dir(&layout)?;
    match cmd {
        LabCmd::Up { log_data } => up(profile, &dir, log_data),
        LabCmd::Down => down(profile, &dir),
        LabCmd::Status { json } => {
            let devices: Vec<_> = read_state(&dir)
                .into_iter()
                .filter(|d| alive(d.pid))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&devices)?);
            } else if devices.is_empty() {
                println!("lab is down");
            } else {
                print_devices(&devices);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_devices(devices: &[LabDevice]) {
    println!(
        "{:<6} {:<9} {:>7} {:<16} {:<22} LOG",
        "HOST", "VENDOR", "PID", "ADDRESS", "CREDENTIAL"
    );
    for d in devices {
        println!(
            "{:<6} {:<9} {:>7} {:<16} {:<22} {}",
            d.name,
            d.vendor,
            d.pid,
            format!("127.0.0.1:{}", d.port),
            format!("keychain:lab-{}", d.name),
            d.log.display()
        );
    }
}

fn up(profile: Option<&str>, dir: &Path, log_data: bool) -> anyhow::Result<ExitCode> {
    if read_state(dir).iter().any(|d| alive(d.pid)) {
        println!("lab already up (gatehouse lab status)");
        return Ok(ExitCode::SUCCESS);
    }
    let install = gatehouse_ipc::peer::Installation::of_current_exe()?;
    let exe = install.binary_path("gatehouse-labdevice");
    if !exe.exists() {
        bail!(
            "{} not found: the lab simulator must be installed beside gatehouse",
            exe.display()
        );
    }
    let mut b = BrokerConn::connect(profile)?;
    match b.call(BrokerRequest::OrgCreate {
        name: LAB_ORG.into(),
    }) {
        Ok(_) | Err(CallError::Remote(BrokerError::OrgExists(_))) => {}
        Err(e) => return Err(e.into()),
    }
    let mut devices = Vec::new();
    for (name, vendor, hostname) in DEVICES {
        let d = start_device(&exe, dir, name, vendor, hostname, &mut b, log_data)?;
        // A previous lab's record of this host (old port and key) is replaced.
        let _ = gatehouse(profile, &["host", "rm", name, "--org", LAB_ORG]);
        let fingerprint = d
            .host_key
            .split_whitespace()
            .nth(1)
            .and_then(gatehouse_records::ssh_config::fingerprint_of_blob)
            .context("the device announced no host key")?;
        let out = gatehouse(
            profile,
            &[
                "host",
                "add",
                name,
                "--org",
                LAB_ORG,
                "--folder",
                "lab",
                "--address",
                "127.0.0.1",
                "--port",
                &d.port.to_string(),
                "--vendor",
                vendor,
                "--ssh-user",
                "admin",
                "--password-ref",
                &format!("keychain:lab-{name}"),
                "--host-key",
                &format!("ssh-ed25519 {fingerprint}"),
                "--tag",
                "lab",
            ],
        )?;
        if !out.status.success() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            bail!(
                "adding host {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        devices.push(d);
    }
    gatehouse_ipc::os::write_atomic(
        &dir.join("state.json"),
        &serde_json::to_vec_pretty(&devices)?,
    )?;
    print_devices(&devices);
    Ok(ExitCode::SUCCESS)
}

/// Starts one device, waits for its address and host key, stores its password in the keychain.
fn start_device(
    exe: &Path,
    dir: &Path,
    name: &str,
    vendor: &str,
    hostname: &str,
    b: &mut BrokerConn,
    log_data: bool,
) -> anyhow::Result<LabDevice> {
    let hex = gatehouse_ipc::os::hex(&gatehouse_ipc::os::random_bytes::<12>());
    let password = SecretBytes::new(format!("lab-{hex}").into_bytes());
    let pw_file = dir.join(format!("{name}.password"));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&pw_file)?
        .write_all(password.expose())?;
    b.ask(BrokerRequest::KeychainSet {
        name: format!("lab-{name}"),
        kind: SecretKind::Password,
        payload: password,
    })?;
    let out_file = dir.join(format!("{name}.out"));
    let log = dir.join(format!("{name}.log.jsonl"));
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    if log_data {
        cmd.arg("--log-data");
    }
    let child = cmd
        .args([
            "--vendor",
            vendor,
            "--listen",
            "127.0.0.1:0",
            "--user",
            "admin",
            "--hostname",
            hostname,
        ])
        .arg("--host-key")
        .arg(dir.join(format!("{name}.key")))
        .arg("--password-file")
        .arg(&pw_file)
        .arg("--log")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file)?)
        .stderr(std::fs::File::create(dir.join(format!("{name}.err")))?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let port = text
            .lines()
            .find_map(|l| l.strip_prefix("listening "))
            .and_then(|a| a.rsplit(':').next()?.parse().ok());
        let host_key = text
            .lines()
            .find_map(|l| l.strip_prefix("host-key "))
            .map(str::to_string);
        if let (Some(port), Some(host_key)) = (port, host_key) {
            return Ok(LabDevice {
                name: name.into(),
                vendor: vendor.into(),
                pid,
                port,
                host_key,
                log,
            });
        }
        if !alive(pid) || Instant::now() > deadline {
            bail!(
                "lab device {name} did not start; see {}",
                dir.join(format!("{name}.err")).display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn down(profile: Option<&str>, dir: &Path) -> anyhow::Result<ExitCode> {
    let devices = read_state(dir);
    for d in &devices {
        if alive(d.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = gatehouse(profile, &["host", "rm", &d.name, "--org", LAB_ORG]);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while devices.iter().any(|d| alive(d.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(dir.join("state.json"));
    println!("lab down ({} device(s) stopped)", devices.len());
    Ok(ExitCode::SUCCESS)
}
