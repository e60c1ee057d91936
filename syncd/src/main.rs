//! `gatehouse-syncd`: start-up of the sync daemon.
//!
//! Order (as sessiond and copilotd): resolve the profile, refuse to run
//! without a configured server, start the peer-executable helper, open the
//! store and its own state directory, apply the sandbox before any thread
//! exists, connect to the broker while dumpable (it identifies us by our
//! executable), then become non-dumpable and serve.
//! Normally started and supervised by `gatehouse up`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gatehouse_ipc::broker::{Broker, BrokerRequest};
use gatehouse_ipc::client::{Client, SharedClient};
use gatehouse_ipc::exe_resolver::HelperResolver;
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::syncd::Syncd;
use gatehouse_ipc::{Layout, server};
use gatehouse_records::Store;
use gatehouse_sandbox::hardening::{self, Strictness};
use gatehouse_sandbox::profile::{SyncdPaths, syncd_profile};
use gatehouse_syncd::config;
use gatehouse_syncd::service::SyncService;

/// How often syncd syncs on its own (a person's `sync now` does it at once).
const SYNC_EVERY: Duration = Duration::from_secs(30);

/// The Gatehouse sync daemon (normally started by `gatehouse up`).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Profile name; GATEHOUSE_HOME overrides.
    #[arg(long)]
    profile: Option<String>,
    /// Start even if a sandbox layer cannot be applied.
    #[arg(long)]
    allow_degraded: bool,
    /// Internal: run as the peer-executable helper.
    #[arg(long, hide = true)]
    exe_resolver: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    gatehouse_sandbox::daemon::main("gatehouse-syncd", args.exe_resolver, || run(args))
}

/// Follows the broker's events (sign-out ends the session); exits when the
/// broker goes away (it could not identify us again).
async fn follow_broker(service: Arc<SyncService>, events: Client<Broker>) {
    let rt = tokio::runtime::Handle::current();
    let e = events
        .follow(|e| {
            let service = service.clone();
            rt.spawn(async move { service.on_broker_event(&e).await });
        })
        .await;
    tracing::warn!("lost the broker ({e}); exiting");
    std::process::exit(3);
}

/// Syncs every [`SYNC_EVERY`] once the device is connected; failures are in
/// the status (offline, refused), and the next round tries again.
async fn sync_loop(service: Arc<SyncService>) {
    loop {
        tokio::time::sleep(SYNC_EVERY).await;
        if let Err(e) = service.sync_if_connected().await {
            tracing::info!("sync: {e}");
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let layout = Layout::resolve(args.profile.as_deref()).map_err(|e| e.to_string())?;
    layout.ensure().map_err(|e| e.to_string())?;
    if config::load_server(&layout.root)?.is_none() {
        return Err(format!(
            "no sync server configured ({} is missing): run `gatehouse sync connect URL --pin SHA256`",
            config::server_path(&layout.root).display()
        ));
    }
    let install =
        Installation::of_current_exe().map_err(|e| format!("cannot locate own executable: {e}"))?;
    let resolver = HelperResolver::spawn(&install.binary_path("gatehouse-syncd"))
        .map_err(|e| format!("cannot start the peer-executable helper: {e}"))?;
    let state_dir = config::dir(&layout.root);
    gatehouse_ipc::paths::make_private_dir(&state_dir)
        .map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let store = Store::open_in(&layout).map_err(|e| format!("records store: {e}"))?;
    let mut profile = syncd_profile(&SyncdPaths {
        records_files: store.files(),
        state_dir,
        runtime_dir: layout.runtime.clone(),
        install_dir: install.dir.clone(),
    });
    profile.flags.non_dumpable = false;
    let strictness = if args.allow_degraded {
        Strictness::AllowDegraded
    } else {
        Strictness::Strict
    };
    let report = hardening::apply(&profile, strictness)
        .map_err(|e| format!("sandbox: {e} (use --allow-degraded to start anyway)"))?;
    let hardening = report.summary("none");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let _guard = rt.enter();
    gatehouse_syncclient::install_provider();
    let listener = server::bind::<Syncd>(&layout.runtime).map_err(|e| {
        format!(
            "cannot bind {}: {e}",
            layout
                .socket(<Syncd as gatehouse_ipc::Service>::SOCKET)
                .display()
        )
    })?;
    // Both broker connections while still dumpable, then never again.
    let wait = Duration::from_secs(10);
    let (broker, events) = rt
        .block_on(async {
            let broker = SharedClient::<Broker>::connect(&layout.runtime, wait).await?;
            let mut events = Client::<Broker>::connect(&layout.runtime, wait).await?;
            events.call(BrokerRequest::Subscribe).await.map_err(|e| {
                gatehouse_ipc::client::ClientError::Unexpected {
                    service: "broker",
                    what: e.to_string(),
                }
            })?;
            Ok::<_, gatehouse_ipc::client::ClientError>((Arc::new(broker), events))
        })
        .map_err(|e| format!("cannot reach the broker: {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    let service = SyncService::new(&layout, hardening, broker, store)?;
    rt.spawn(follow_broker(service.clone(), events));
    rt.spawn(sync_loop(service.clone()));
    tracing::info!(
        "syncd serving on {} (pid {})",
        layout
            .socket(<Syncd as gatehouse_ipc::Service>::SOCKET)
            .display(),
        std::process::id()
    );
    rt.block_on(server::serve::<Syncd, _>(
        listener,
        install,
        Arc::new(resolver),
        service,
    ));
    Ok(())
}
