//! `gatehouse-labdevice`: run one simulated device until SIGINT/SIGTERM.
//! Prints `listening ADDR` as the first line on stdout once bound, then
//! `host-key ssh-ed25519 AAAA...` (the public host key, for known_hosts).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gatehouse_labdevice::device::Vendor;
use gatehouse_labdevice::{Options, hostkey, start};

/// Lab device simulator (SSH server imitating RouterOS or IOS).
#[derive(Debug, Parser)]
#[command(name = "gatehouse-labdevice", version)]
struct Args {
    /// routeros or ios.
    #[arg(long)]
    vendor: Vendor,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// OpenSSH private host key; an Ed25519 key is generated there if missing.
    #[arg(long)]
    host_key: PathBuf,
    /// Login name.
    #[arg(long, default_value = "admin")]
    user: String,
    /// File holding the password (also the IOS enable secret).
    #[arg(long)]
    password_file: PathBuf,
    /// authorized_keys file for public-key login.
    #[arg(long)]
    authorized_key: Option<PathBuf>,
    /// Offer keyboard-interactive authentication (one "Password:" prompt).
    #[arg(long)]
    keyboard_interactive: bool,
    /// Offer keyboard-interactive only, not the password method (implies --keyboard-interactive).
    #[arg(long)]
    keyboard_interactive_only: bool,
    /// Hostname (IOS) or identity (RouterOS) at boot.
    #[arg(long, default_value = "R1")]
    hostname: String,
    /// JSON-lines event log.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Also log raw bytes as they arrive (kind "data").
    #[arg(long)]
    log_data: bool,
}

async fn run(args: Args) -> Result<(), gatehouse_labdevice::error::Error> {
    let password = hostkey::read_password(&args.password_file)?;
    let mut opts = Options::new(args.vendor, &args.hostname, &args.user, "");
    opts.password = password;
    opts.listen = args.listen;
    let key = hostkey::load_or_generate(&args.host_key)?;
    let public = key.public_key().to_openssh().unwrap_or_default();
    opts.host_key = Some(key);
    if let Some(p) = &args.authorized_key {
        opts.authorized_keys = hostkey::read_authorized_keys(p)?;
    }
    opts.keyboard_interactive = args.keyboard_interactive || args.keyboard_interactive_only;
    opts.password_auth = !args.keyboard_interactive_only;
    opts.log = args.log.clone();
    opts.log_data = args.log_data;
    let dev = start(opts).await?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {}", dev.addr);
        let _ = writeln!(out, "host-key {public}");
        let _ = out.flush();
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| gatehouse_labdevice::error::Error::Listen {
            addr: "signal".into(),
            source,
        })?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    dev.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-labdevice: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-labdevice: {e}");
            ExitCode::FAILURE
        }
    }
}
