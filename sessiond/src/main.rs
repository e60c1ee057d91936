//! `gatehouse-sessiond`: start-up of the session daemon.
//!
//! Order matters: resolve the profile, start the peer-executable helper,
//! open the store and create the directories the sandbox names, apply the
//! sandbox (before any thread exists), connect to the broker — it identifies
//! us by our executable, which it can read only while we are dumpable — then
//! become non-dumpable and serve.
//! Normally started and supervised by `gatehouse up`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gatehouse_ipc::broker::{Broker, BrokerRequest};
use gatehouse_ipc::client::Client;
use gatehouse_ipc::exe_resolver::HelperResolver;
use gatehouse_ipc::peer::Installation;
use gatehouse_ipc::sessiond::Sessiond;
use gatehouse_ipc::{Layout, server};
use gatehouse_records::Store;
use gatehouse_sandbox::hardening::{self, Strictness};
use gatehouse_sandbox::profile::{SessiondPaths, sessiond_profile};
use gatehouse_sessiond::service::SessionService;

/// Every heap block sessiond frees is zeroized first: a released password,
/// copied into library buffers (russh takes owned strings), does not outlive them.
#[global_allocator]
static ALLOC: gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc =
    gatehouse_sandbox::zeroizing_alloc::ZeroizingAlloc;

/// The Gatehouse session daemon (normally started by `gatehouse up`).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Profile name (all state of one installation); GATEHOUSE_HOME overrides.
    #[arg(long)]
    profile: Option<String>,
    /// Start even if a sandbox layer cannot be applied (shown in `gatehouse status`).
    #[arg(long)]
    allow_degraded: bool,
    /// Internal: run as the peer-executable helper (see ipc::exe_resolver).
    #[arg(long, hide = true)]
    exe_resolver: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    gatehouse_sandbox::daemon::main("gatehouse-sessiond", args.exe_resolver, || run(args))
}

/// Follows the broker's events (sign-out closes sessions). sessiond cannot
/// reconnect once it is non-dumpable (the broker identifies peers by their
/// executable, which it can read only while they are dumpable): when the
/// broker goes away, sessiond closes every session and exits, and the
/// supervisor starts a fresh one.
async fn follow_broker(service: Arc<SessionService>, events: Client<Broker>) {
    let e = events.follow(|e| service.on_broker_event(&e)).await;
    tracing::warn!("lost the broker ({e}); closing sessions and exiting");
    service.close_all("the broker went away");
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::process::exit(3);
}

fn run(args: Args) -> Result<(), String> {
    let layout = Layout::resolve(args.profile.as_deref()).map_err(|e| e.to_string())?;
    layout.ensure().map_err(|e| e.to_string())?;
    let install =
        Installation::of_current_exe().map_err(|e| format!("cannot locate own executable: {e}"))?;
    let resolver = HelperResolver::spawn(&install.binary_path("gatehouse-sessiond"))
        .map_err(|e| format!("cannot start the peer-executable helper: {e}"))?;

    // Everything the sandbox names must exist before it is applied; the
    // store stays open for sessiond's life (see SessiondPaths::records_files).
    let recordings = gatehouse_recordings::recordings_dir(&layout);
    let audit_dir = gatehouse_sessiond::audit::log_path(&layout.root)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| layout.root.join("audit"));
    for d in [&recordings, &audit_dir] {
        gatehouse_ipc::paths::make_private_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let store = Store::open_in(&layout).map_err(|e| format!("records store: {e}"))?;
    let paths = SessiondPaths {
        recordings_dir: recordings,
        audit_dir,
        records_files: store.files(),
        runtime_dir: layout.runtime.clone(),
        install_dir: install.dir.clone(),
    };
    let mut profile = sessiond_profile(&paths);
    // Non-dumpable only after the broker identified us (below).
    profile.flags.non_dumpable = false;
    let strictness = if args.allow_degraded {
        Strictness::AllowDegraded
    } else {
        Strictness::Strict
    };
    // Before any thread exists: Landlock (ABI < 8) binds the calling thread
    // and the threads it creates later.
    let report = hardening::apply(&profile, strictness)
        .map_err(|e| format!("sandbox: {e} (use --allow-degraded to start anyway)"))?;
    // dumpable: read live by the service (it turns non-dumpable below).
    let hardening = report.summary("none");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let _guard = rt.enter();
    let listener = server::bind::<Sessiond>(&layout.runtime).map_err(|e| {
        format!(
            "cannot bind {}: {e}",
            layout
                .socket(<Sessiond as gatehouse_ipc::Service>::SOCKET)
                .display()
        )
    })?;
    let service = SessionService::new(layout.clone(), store, hardening);
    // Both broker connections while still dumpable, then never again.
    let events = rt.block_on(async {
        service.broker().connect().await?;
        let mut c = Client::<Broker>::connect(&layout.runtime, Duration::from_secs(10))
            .await
            .map_err(|e| gatehouse_ipc::sessiond::SessiondError::Broker(e.to_string()))?;
        c.call(BrokerRequest::Subscribe)
            .await
            .map_err(|e| gatehouse_ipc::sessiond::SessiondError::Broker(e.to_string()))?;
        Ok::<_, gatehouse_ipc::sessiond::SessiondError>(c)
    });
    let events = events.map_err(|e| format!("cannot reach the broker: {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    rt.spawn(follow_broker(service.clone(), events));
    tracing::info!(
        "sessiond serving on {} (pid {})",
        layout
            .socket(<Sessiond as gatehouse_ipc::Service>::SOCKET)
            .display(),
        std::process::id()
    );
    rt.block_on(server::serve::<Sessiond, _>(
        listener,
        install,
        Arc::new(resolver),
        service,
    ));
    Ok(())
}
