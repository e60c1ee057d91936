//! `gatehouse sync connect | status | now`: a person's face of syncd.
//!
//! Owns checking a server before it is configured (its certificate must be
//! the pinned one: the CLI asks `GET /v1/info` itself), writing
//! `<data>/sync/server.json` (whose presence makes the supervisor start
//! syncd), and the requests to syncd.
//! Must never: accept a server without a pin, or sign anything (syncd asks
//! the broker; the CLI holds no key).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, BundleKdf};
use gatehouse_ipc::client::{CallError, Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::sync_state::{self as config, ServerConfig};
use gatehouse_ipc::syncd::{
    SyncEvent, SyncReport, SyncStatus, Syncd, SyncdError, SyncdRequest, SyncdResponse,
};
use gatehouse_ipc::{Layout, SecretBytes};

#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Connect this profile to a sync server: check its certificate against
    /// the pin, register the account's card if the server does not know it,
    /// and sign this device in (the broker signs the server's challenge).
    Connect {
        /// The server, `https://HOST:PORT`.
        url: String,
        /// SHA-256 of the server's certificate (64 hex digits, as
        /// `gatehouse-sync-server` prints it). Required: an unpinned server
        /// is refused.
        #[arg(long)]
        pin: Option<String>,
        /// The account's name on sync servers (fixed at the first connect;
        /// default: your user name).
        #[arg(long)]
        account: Option<String>,
        /// This device's name (default: the host name).
        #[arg(long)]
        device: Option<String>,
        /// Read the passphrase (to upload the key bundle a second device
        /// signs in with) as one line from stdin. Without a terminal or
        /// this flag the bundle is not uploaded.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// The sync state: server, account, last sync, pending changes,
    /// conflicts, offline.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Push local changes and pull the server's now.
    Now {
        #[arg(long)]
        json: bool,
    },
}

/// A connection to syncd.
pub struct SyncdConn {
    rt: tokio::runtime::Runtime,
    client: Client<Syncd>,
}

impl SyncdConn {
    pub fn connect(layout: &Layout) -> anyhow::Result<SyncdConn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt
            .block_on(Client::<Syncd>::connect(&layout.runtime, DEFAULT_TIMEOUT))
            .context(
                "syncd is not running (`gatehouse up` starts it once `gatehouse sync connect` configured a server)",
            )?;
        Ok(SyncdConn { rt, client })
    }

    pub fn call(&mut self, req: SyncdRequest) -> Result<SyncdResponse, CallError<SyncdError>> {
        self.rt.block_on(self.client.call(req))
    }

    fn next_event(&mut self, wait: Duration) -> anyhow::Result<Option<SyncEvent>> {
        Ok(self.rt.block_on(self.client.next_event(wait))?)
    }
}

/// One line of a pull's progress: sequence position of total, records,
/// rate and time left.
fn progress_line(position: u64, total: u64, records: u64, secs: f64) -> String {
    let rate = records as f64 / secs.max(1e-3);
    let left = if position == 0 || total <= position {
        0.0
    } else {
        secs * (total - position) as f64 / position as f64
    };
    format!(
        "pulling: {position}/{total} ({}%), {records} records, {rate:.0} records/s, ETA {left:.0} s",
        position * 100 / total.max(1)
    )
}

/// `sync now` with a progress line on stderr while it pulls.
fn sync_with_progress(layout: &Layout) -> anyhow::Result<SyncReport> {
    let mut events = SyncdConn::connect(layout)?;
    match events.call(SyncdRequest::Subscribe) {
        Ok(SyncdResponse::Subscribed) => {}
        Ok(other) => bail!("unexpected answer from syncd: {other:?}"),
        Err(e) => bail!("{e}"),
    }
    let started = Instant::now();
    let l = layout.clone();
    let sync = std::thread::spawn(move || -> anyhow::Result<SyncReport> {
        match SyncdConn::connect(&l)?.call(SyncdRequest::SyncNow) {
            Ok(SyncdResponse::Synced(r)) => Ok(r),
            Ok(other) => bail!("unexpected answer from syncd: {other:?}"),
            Err(e) => bail!("{e}"),
        }
    });
    let mut shown = false;
    // Until the sync ends, then what is left of its events (they are sent
    // before its answer).
    loop {
        let done = sync.is_finished();
        let wait = Duration::from_millis(if done { 20 } else { 100 });
        match events.next_event(wait) {
            Ok(Some(SyncEvent::Pulling {
                position,
                total,
                records,
            })) => {
                let secs = started.elapsed().as_secs_f64();
                eprint!("\r{}", progress_line(position, total, records, secs));
                shown = true;
            }
            Ok(Some(SyncEvent::Applying { records })) => {
                eprint!("\rchecking and applying {records} records (one transaction)…");
                shown = true;
            }
            Ok(Some(_)) => {}
            Ok(None) if done => break,
            Ok(None) => {}
            Err(_) if done => break,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    if shown {
        eprintln!();
    }
    sync.join()
        .map_err(|_| anyhow::anyhow!("the sync thread panicked"))?
}

/// syncd's status, if it runs.
pub fn syncd_status(layout: &Layout) -> Option<SyncStatus> {
    match SyncdConn::connect(layout).ok()?.call(SyncdRequest::Status) {
        Ok(SyncdResponse::Status(s)) => Some(*s),
        _ => None,
    }
}

/// A name as the server accepts it: `[A-Za-z0-9._-]`, other characters
/// dropped, at most 64.
fn name_from(raw: &str, fallback: &str) -> String {
    let n: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if n.is_empty() { fallback.into() } else { n }
}

fn default_account() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    name_from(&user, "me")
}

fn default_device() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    name_from(&host, "device")
}

pub fn run(profile: Option<&str>, cmd: SyncCmd) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    match cmd {
        SyncCmd::Connect {
            url,
            pin,
            account,
            device,
            passphrase_stdin,
        } => {
            let (url, pin) = check_args(&layout, &url, pin.as_deref())?;
            let account = account.unwrap_or_else(default_account);
            let device = device.unwrap_or_else(default_device);
            connect(&layout, &url, &pin, &account, &device)?;
            upload_bundle(profile, &layout, passphrase_stdin)?;
            Ok(ExitCode::SUCCESS)
        }
        SyncCmd::Status { json } => status(&layout, json),
        SyncCmd::Now { json } => now(&layout, json),
    }
}

/// The URL and pin, checked (a pin is required), and gatehouse up.
fn check_args(layout: &Layout, url: &str, pin: Option<&str>) -> anyhow::Result<(String, String)> {
    let Some(pin) = pin else {
        bail!(
            "refusing an unpinned server: pass --pin with the SHA-256 of its certificate (gatehouse-sync-server prints it at start)"
        );
    };
    if !gatehouse_syncclient::valid_pin(pin) {
        bail!("--pin must be the certificate's SHA-256: 64 hex digits, got {pin:?}");
    }
    let pin = pin.trim().replace(':', "").to_ascii_lowercase();
    let url = url.trim_end_matches('/').to_string();
    if !url.starts_with("https://") {
        bail!("the sync server URL must be https://HOST:PORT, got {url:?}");
    }
    if crate::supervisor::supervisor_pid(layout).is_none() {
        bail!("gatehouse is not up: run `gatehouse up` first (syncd runs under it)");
    }
    Ok((url, pin))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A pinned client of `url`; its `GET /v1/info` answered (the certificate
/// is checked here, before anything is saved).
fn pinned(
    rt: &tokio::runtime::Runtime,
    url: &str,
    pin: &str,
) -> anyhow::Result<(gatehouse_syncclient::SyncClient, String)> {
    rt.block_on(async {
        let c = gatehouse_syncclient::SyncClient::new(url, pin)?;
        let info = c.info().await?;
        Ok::<_, gatehouse_syncclient::ClientError>((c, info.server_id))
    })
    .with_context(|| format!("cannot use the sync server at {url}"))
}

/// Saves the server, waits for the supervisor to start syncd, and asks it
/// to connect this device.
fn connect(
    layout: &Layout,
    url: &str,
    pin: &str,
    account: &str,
    device: &str,
) -> anyhow::Result<()> {
    let rt = runtime()?;
    let (_, server_id) = pinned(&rt, url, pin)?;
    let new = ServerConfig {
        url: url.to_string(),
        pin: pin.to_string(),
        server_id,
    };
    let old = config::load_server(&layout.root).map_err(anyhow::Error::msg)?;
    if old.as_ref().is_some_and(|o| o.server_id != new.server_id) {
        // Another server: its cursors and revisions mean nothing here.
        config::save_state(&layout.root, &config::SyncState::default())
            .map_err(anyhow::Error::msg)?;
    }
    config::save_server(&layout.root, &new).map_err(anyhow::Error::msg)?;
    // The supervisor starts syncd once the server file exists.
    let mut conn = wait_for_syncd(layout)?;
    match conn.call(SyncdRequest::Connect {
        account: account.into(),
        device: device.into(),
    }) {
        Ok(SyncdResponse::Connected {
            account,
            server_id,
            registered,
        }) => {
            println!(
                "connected to {url} (server {server_id}) as {account} from device {device}{}",
                if registered {
                    "; registered the account's card"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Ok(other) => bail!("unexpected answer from syncd: {other:?}"),
        Err(e) => bail!("{e}"),
    }
}

fn wait_for_syncd(layout: &Layout) -> anyhow::Result<SyncdConn> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match SyncdConn::connect(layout) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "{e:#}; see {}",
                    layout.runtime.join("supervisor.log").display()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Uploads the account's key bundle (the broker makes it with the
/// passphrase; syncd stores it with its session).
fn upload_bundle(
    profile: Option<&str>,
    layout: &Layout,
    passphrase_stdin: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !passphrase_stdin && !std::io::stdin().is_terminal() {
        println!(
            "key bundle not uploaded (no terminal): rerun with --passphrase-stdin so a second device can sign in"
        );
        return Ok(());
    }
    let pass = crate::commands::read_secret_line(
        "Account passphrase (seals the key bundle a second device signs in with): ",
        passphrase_stdin,
    )?;
    let mut b = crate::commands::BrokerConn::connect(profile)?;
    let bundle = match b.ask(BrokerRequest::SyncKeyBundle { presence: pass })? {
        BrokerResponse::KeyBundle(k) => k,
        other => bail!("unexpected broker answer: {other:?}"),
    };
    match SyncdConn::connect(layout)?.call(SyncdRequest::PutBundle(bundle)) {
        Ok(SyncdResponse::BundleStored) => {
            println!(
                "key bundle stored on the server: a second device signs in with `gatehouse account from-server` (passphrase and Secret Key)"
            );
            Ok(())
        }
        Ok(other) => bail!("unexpected answer from syncd: {other:?}"),
        Err(e) => bail!("{e}"),
    }
}

/// `gatehouse account from-server`.
#[derive(clap::Args, Debug)]
pub struct FromServerArgs {
    /// The server, `https://HOST:PORT`.
    url: String,
    /// SHA-256 of the server's certificate (64 hex digits).
    #[arg(long)]
    pin: Option<String>,
    /// The account's name on the server.
    #[arg(long)]
    account: String,
    /// This device's name (default: the host name).
    #[arg(long)]
    device: Option<String>,
    /// Read the passphrase, then the Secret Key, as two lines from stdin.
    #[arg(long)]
    secrets_stdin: bool,
}

pub fn account_from_server(profile: Option<&str>, a: &FromServerArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let (url, pin) = check_args(&layout, &a.url, a.pin.as_deref())?;
    let mut b = crate::commands::BrokerConn::connect(profile)?;
    if let BrokerResponse::Status(s) = b.ask(BrokerRequest::Status)?
        && s.account_initialized
    {
        bail!("this profile already has an account: sign in on an empty profile (--profile NEW)");
    }
    let rt = runtime()?;
    let (client, _) = pinned(&rt, &url, &pin)?;
    let params = rt
        .block_on(client.bundle_params(&a.account))
        .with_context(|| format!("no key bundle for {:?} on {url}", a.account))?;
    if params.kdf.algorithm != "argon2id" {
        bail!(
            "the server's key bundle uses {:?}, not argon2id",
            params.kdf.algorithm
        );
    }
    let kdf = BundleKdf {
        m_kib: params.kdf.m_kib,
        t: params.kdf.t,
        p: params.kdf.p,
        salt: params.kdf.salt.0.clone(),
    };
    let pass = crate::commands::read_secret_line("Account passphrase: ", a.secrets_stdin)?;
    let secret = crate::commands::read_secret_line("Secret Key (GH1-…): ", a.secrets_stdin)?;
    let verifier = match b.ask(BrokerRequest::BundleVerifier {
        account: a.account.clone(),
        kdf: kdf.clone(),
        passphrase: SecretBytes::copy_from(pass.expose()),
        secret_key: SecretBytes::copy_from(secret.expose()),
    })? {
        BrokerResponse::Verifier(v) => v,
        other => bail!("unexpected broker answer: {other:?}"),
    };
    let bundle = rt
        .block_on(client.fetch_bundle(&a.account, &verifier))
        .context("the server did not release the key bundle (wrong passphrase or Secret Key?)")?;
    if bundle.account.as_str() != a.account {
        bail!(
            "the server sent the bundle of {:?}, not {:?}",
            bundle.account.as_str(),
            a.account
        );
    }
    b.ask(BrokerRequest::AccountFromBundle {
        account: a.account.clone(),
        kdf,
        passphrase: pass,
        secret_key: secret,
        bundle: bundle.bundle.0,
    })?;
    println!("signed in as {} from its key bundle", a.account);
    let device = a.device.clone().unwrap_or_else(default_device);
    connect(&layout, &url, &pin, &a.account, &device)?;
    // The rebuild: everything the server holds for the account.
    let started = Instant::now();
    wait_for_syncd(&layout)?;
    let r = sync_with_progress(&layout)?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "rebuilt: {} records pulled in {secs:.1} s ({:.0} records/s)",
        r.pulled,
        r.pulled as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}

fn ago(ms: u64) -> String {
    let now = gatehouse_ipc::os::now_ms();
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn status(layout: &Layout, json: bool) -> anyhow::Result<ExitCode> {
    let server = config::load_server(&layout.root).map_err(anyhow::Error::msg)?;
    let s = syncd_status(layout);
    if json {
        let v = serde_json::json!({
            "server": server.as_ref().map(|s| &s.url),
            "server_id": server.as_ref().map(|s| &s.server_id),
            "syncd_running": s.is_some(),
            "account": s.as_ref().and_then(|s| s.account.clone()),
            "device": s.as_ref().and_then(|s| s.device.clone()),
            "signed_in": s.as_ref().is_some_and(|s| s.signed_in),
            "last_sync_ms": s.as_ref().and_then(|s| s.last_sync_ms),
            "pending": s.as_ref().map(|s| s.pending),
            "conflicts": s.as_ref().map(|s| s.conflicts.clone()).unwrap_or_default(),
            "offline": s.as_ref().and_then(|s| s.offline.clone()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(server) = server else {
        println!("sync: no server configured (gatehouse sync connect URL --pin SHA256)");
        return Ok(ExitCode::SUCCESS);
    };
    println!("server: {} (server {})", server.url, server.server_id);
    let Some(s) = s else {
        println!("syncd: not running (gatehouse up)");
        return Ok(ExitCode::from(2));
    };
    println!(
        "account: {} on device {}; {}",
        s.account.as_deref().unwrap_or("(not connected)"),
        s.device.as_deref().unwrap_or("?"),
        if s.signed_in {
            "signed in"
        } else {
            "no session"
        }
    );
    println!(
        "last sync: {}",
        s.last_sync_ms.map(ago).unwrap_or_else(|| "never".into())
    );
    println!("pending changes: {}", s.pending);
    println!("conflicts: {}", s.conflicts.len());
    for c in &s.conflicts {
        println!("  {c}");
    }
    match &s.offline {
        Some(why) => println!("offline: {why}"),
        None => println!("offline: no"),
    }
    Ok(ExitCode::SUCCESS)
}

fn now(layout: &Layout, json: bool) -> anyhow::Result<ExitCode> {
    let r = if json {
        match SyncdConn::connect(layout)?.call(SyncdRequest::SyncNow) {
            Ok(SyncdResponse::Synced(r)) => r,
            Ok(other) => bail!("unexpected answer from syncd: {other:?}"),
            Err(e) => bail!("{e}"),
        }
    } else {
        sync_with_progress(layout)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "synced: {} pushed, {} pulled, {} conflict(s)",
            r.pushed, r.pulled, r.conflicts
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::progress_line;

    #[test]
    fn the_progress_line_says_position_rate_and_time_left() {
        assert_eq!(
            progress_line(250, 1000, 240, 0.5),
            "pulling: 250/1000 (25%), 240 records, 480 records/s, ETA 2 s"
        );
        assert!(progress_line(0, 0, 0, 0.0).starts_with("pulling: 0/0 (0%)"));
    }
}
