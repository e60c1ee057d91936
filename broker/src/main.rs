//! `gatehouse-broker`: start-up of the key broker.
//!
//! Order matters: resolve the profile, bind the socket, open the keychain,
//! then apply the sandbox — all before any secret is read — then load the
//! account (auto-unlocking only if this device was remembered) and serve.
//! Normally started and supervised by `gatehouse up`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gatehouse_broker::keychain::{Backend, Keychain};
use gatehouse_broker::service::{BrokerDirs, BrokerService};
use gatehouse_ipc::broker::Broker;
use gatehouse_ipc::exe_resolver::HelperResolver;
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::{Layout, server};
use gatehouse_sandbox::hardening::{self, Strictness};
use gatehouse_sandbox::profile::{BrokerPaths, broker_profile};

/// Every heap block the broker frees is zeroized first: secrets that pass
/// through ordinary buffers (requests, serde, library tables) do not outlive them.
#[global_allocator]
static ALLOC: gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc =
    gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc;

/// The Gatehouse key broker (normally started by `gatehouse up`).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Profile name (all state of one installation); GATEHOUSE_HOME overrides.
    #[arg(long)]
    profile: Option<String>,
    /// Start even if a sandbox layer cannot be applied (shown in `gatehouse status`).
    #[arg(long)]
    allow_degraded: bool,
    /// Keychain backend: secret-service or keyutils (default: Secret Service if a session bus offers it).
    #[arg(long)]
    keychain: Option<Backend>,
    /// How long an approval token stays valid after a person approves, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    approval_ttl_secs: u64,
    /// Internal: run as the broker's peer-executable helper (see exe_resolver).
    #[arg(long, hide = true)]
    exe_resolver: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    gatehouse_sandbox::daemon::main("gatehouse-broker", args.exe_resolver, || run(args))
}

fn run(args: Args) -> Result<(), String> {
    let layout = Layout::resolve(args.profile.as_deref()).map_err(|e| e.to_string())?;
    layout.ensure().map_err(|e| e.to_string())?;
    let install =
        Installation::of_current_exe().map_err(|e| format!("cannot locate own executable: {e}"))?;
    let resolver = HelperResolver::spawn(&install.binary_path("gatehouse-broker"))
        .map_err(|e| format!("cannot start the peer-executable helper: {e}"))?;

    // Sandbox: before any secret is read, and before any thread exists
    // (Landlock below ABI 8 restricts only the calling thread and its future threads).
    // The privilege boundary (a setgid install): remembered unlock material
    // goes to the group-only state the installer made, never to the keychain.
    let group_state = match install.group {
        Some(gid) => Some(
            gatehouse_ipc::paths::group_state_dir(
                &gatehouse_ipc::paths::group_state_root(&install.dir),
                gid,
                &layout.profile,
            )
            .map_err(|e| format!("group-only state: {e}"))?,
        ),
        None => None,
    };
    let dirs = BrokerDirs {
        state: layout.broker_state.clone(),
        credential_log: gatehouse_ipc::audit::credentials_log(&layout.root),
        session_log: gatehouse_ipc::audit::sessions::log_path(&layout.root),
        group_state: group_state.clone(),
        boundary_group: install.group,
    };
    // Landlock names paths that exist: make the shared directories first.
    let audit_dir = gatehouse_ipc::audit::audit_dir(&layout.root);
    gatehouse_ipc::paths::make_private_dir(&audit_dir).map_err(|e| e.to_string())?;
    let mut paths = BrokerPaths::new(&layout.broker_state, &layout.runtime, &install.dir);
    paths.extra_read_write.push(audit_dir);
    paths.extra_read_write.extend(group_state);
    if let Ok(addr) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        paths.dbus_abstract = addr.contains("abstract=");
        paths.dbus_dir = addr
            .split(';')
            .flat_map(|a| a.split(','))
            .find_map(|kv| {
                kv.strip_prefix("unix:path=")
                    .or_else(|| kv.strip_prefix("path="))
            })
            .and_then(|p| PathBuf::from(p).parent().map(PathBuf::from));
    }
    let strictness = if args.allow_degraded {
        Strictness::AllowDegraded
    } else {
        Strictness::Strict
    };
    let report = hardening::apply(&broker_profile(&paths), strictness)
        .map_err(|e| format!("sandbox: {e} (use --allow-degraded to start anyway)"))?;
    // The vault fills in the secret-memory kind it got.
    let hardening = report.summary("");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let _guard = rt.enter();
    let listener = server::bind::<Broker>(&layout.runtime).map_err(|e| {
        format!(
            "cannot bind {}: {e}",
            layout
                .socket(<Broker as gatehouse_ipc::Service>::SOCKET)
                .display()
        )
    })?;
    let keychain =
        Keychain::open(args.keychain, &layout.profile).map_err(|e| format!("keychain: {e}"))?;

    let service = BrokerService::open(
        dirs,
        keychain,
        args.approval_ttl_secs * 1000,
        hardening,
        install.dir.display().to_string(),
    )?;
    tracing::info!(
        "broker serving on {} (pid {})",
        layout
            .socket(<Broker as gatehouse_ipc::Service>::SOCKET)
            .display(),
        std::process::id()
    );
    rt.block_on(server::serve::<Broker, _>(
        listener,
        install,
        std::sync::Arc::new(resolver),
        service,
    ));
    Ok(())
}
