//! `gatehouse-copilotd`: start-up of the copilot daemon.
//!
//! The same order as sessiond: peer-executable helper, store, MCP stdio
//! servers (spawned: no exec later), sandbox (before any thread), then the connections that identify us by our
//! executable (broker, sessiond) while we are still dumpable, then
//! non-dumpable, then serve. Normally started by `gatehouse up`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gatehouse_copilotd::agent::Links;
use gatehouse_copilotd::service::CopilotService;
use gatehouse_ipc::broker::{Broker, BrokerRequest};
use gatehouse_ipc::client::{Client, SharedClient};
use gatehouse_ipc::copilotd::Copilotd;
use gatehouse_ipc::exe_resolver::HelperResolver;
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::{Layout, server};
use gatehouse_records::Store;
use gatehouse_sandbox::hardening::{self, Strictness};
use gatehouse_sandbox::profile::{CopilotdPaths, copilotd_profile};

/// Freed heap is zeroized: prompts and device output pass through here.
#[global_allocator]
static ALLOC: gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc =
    gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc;

/// The Gatehouse copilot daemon (normally started by `gatehouse up`).
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
    gatehouse_sandbox::daemon::main("gatehouse-copilotd", args.exe_resolver, || run(args))
}

/// Follows the broker's events (sign-out purges conversations); exits when
/// the broker goes away (it could not identify us again).
async fn follow_broker(service: Arc<CopilotService>, events: Client<Broker>) {
    let e = events.follow(|e| service.on_broker_event(&e)).await;
    tracing::warn!("lost the broker ({e}); exiting");
    std::process::exit(3);
}

fn run(args: Args) -> Result<(), String> {
    let layout = Layout::resolve(args.profile.as_deref()).map_err(|e| e.to_string())?;
    layout.ensure().map_err(|e| e.to_string())?;
    let install =
        Installation::of_current_exe().map_err(|e| format!("cannot locate own executable: {e}"))?;
    let resolver = HelperResolver::spawn(&install.binary_path("gatehouse-copilotd"))
        .map_err(|e| format!("cannot start the peer-executable helper: {e}"))?;
    let config_dir = gatehouse_copilotd::config::dir(&layout.root);
    gatehouse_ipc::paths::make_private_dir(&config_dir)
        .map_err(|e| format!("{}: {e}", config_dir.display()))?;
    let store = Store::open_in(&layout).map_err(|e| format!("records store: {e}"))?;
    // MCP stdio servers are started now: there is no exec after the sandbox.
    let mcp = gatehouse_copilotd::mcp::launch(&store);
    let mut profile = copilotd_profile(&CopilotdPaths {
        records_files: store.files(),
        config_dir,
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
    if !mcp.is_empty() {
        tracing::info!("connecting to {} MCP servers", mcp.len());
    }
    gatehouse_copilotd::install_tls_provider();
    let listener = server::bind::<Copilotd>(&layout.runtime).map_err(|e| {
        format!(
            "cannot bind {}: {e}",
            layout
                .socket(<Copilotd as gatehouse_ipc::Service>::SOCKET)
                .display()
        )
    })?;
    // Every connection that identifies us by our executable, while dumpable.
    let wait = Duration::from_secs(10);
    let (links, events) = rt
        .block_on(async {
            let broker = SharedClient::connect(&layout.runtime, wait).await?;
            let sessiond = SharedClient::connect(&layout.runtime, wait).await?;
            // A device may take its time to connect, answer and finish a command.
            sessiond.lock().await.set_timeout(Duration::from_secs(300));
            let mut events = Client::<Broker>::connect(&layout.runtime, wait).await?;
            events.call(BrokerRequest::Subscribe).await.map_err(|e| {
                gatehouse_ipc::client::ClientError::Unexpected {
                    service: "broker",
                    what: e.to_string(),
                }
            })?;
            let broker = Arc::new(broker);
            Ok::<_, gatehouse_ipc::client::ClientError>((Links { broker, sessiond }, events))
        })
        .map_err(|e| format!("cannot reach the broker and sessiond: {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    // MCP connections start once the broker is reachable: HTTP servers'
    // sealed auth is released by it.
    gatehouse_copilotd::mcp::start(mcp, links.broker.clone());
    let service = CopilotService::new(layout.clone(), links, store, hardening);
    rt.spawn(follow_broker(service.clone(), events));
    tracing::info!(
        "copilotd serving on {} (pid {})",
        layout
            .socket(<Copilotd as gatehouse_ipc::Service>::SOCKET)
            .display(),
        std::process::id()
    );
    rt.block_on(server::serve::<Copilotd, _>(
        listener,
        install,
        Arc::new(resolver),
        service,
    ));
    Ok(())
}
