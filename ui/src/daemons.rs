//! The UI's way to the daemons: broker calls over `gatehouse_ipc`, calls
//! and event streams of sessiond and copilotd, and the records store.
//!
//! Owns: [`Call`] and [`Watch`] (effects the app state asks for, as data;
//! one variant per screen, whose module runs it), the plumbing they share
//! ([`broker_call`], [`daemon_call`], [`daemon_connect`]), turning every
//! failure into a readable [`DaemonError`], and the broker event stream
//! ([`events`]) that reconnects when the broker goes away. The broker
//! identifies this process by its executable (`gatehouse-ui` beside the
//! broker → the `ui` role); we never claim a role.
//!
//! Must never: ask for an org key or a keychain payload (no `Release*`);
//! open a sealed field except on a person's explicit act — a host's Reveal,
//! opening a procedure, playing a recording — always through the broker,
//! which logs every opened field; keep a passphrase after its request is
//! sent; retry a request on its own; or panic on what a daemon answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_ipc::broker::{
    ApprovalState, ApprovalView, Broker, BrokerError, BrokerEvent, BrokerRequest, BrokerResponse,
    BrokerStatus, Decision, PurgeReport,
};
use gatehouse_ipc::client::{CallError, Client, ClientError, DEFAULT_TIMEOUT};
use gatehouse_ipc::wire::Service;
use gatehouse_ipc::{Layout, SecretBytes};
use iced::futures::stream::BoxStream;

use crate::{audit_log, copilot, diagrams, hosts, procedures, recordings, security, terminal};
use gatehouse_records::model::Kind;
use gatehouse_records::store::{Filter, Store};

/// How long the event stream waits before reconnecting to a lost broker.
pub const RECONNECT_AFTER: Duration = Duration::from_millis(1500);

/// Where this profile's daemons and store are.
#[derive(Debug, Clone)]
pub struct Daemons {
    layout: Arc<Layout>,
}

impl Daemons {
    pub fn new(layout: Layout) -> Daemons {
        Daemons {
            layout: Arc::new(layout),
        }
    }

    /// The profile of `--profile` (or the default one).
    pub fn resolve(profile: Option<&str>) -> Result<Daemons, String> {
        Layout::resolve(profile)
            .map(Daemons::new)
            .map_err(|e| format!("cannot find the Gatehouse profile: {e}"))
    }

    pub fn runtime(&self) -> PathBuf {
        self.layout.runtime.clone()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

/// A failed daemon call, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonError {
    /// The broker is not running or went away: the UI shows a reconnecting state.
    Unavailable(String),
    /// The broker answered with an error (wrong passphrase, forbidden, …).
    Broker(BrokerError),
    /// sessiond or copilotd is not running or went away (`daemon` names it).
    DaemonUnavailable { daemon: &'static str, why: String },
    /// sessiond or copilotd answered with an error (its message, verbatim).
    Refused { daemon: &'static str, error: String },
    /// The records store could not be read or written.
    Store(String),
    /// A daemon answered something this UI did not ask for.
    Unexpected(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Unavailable(why) => write!(f, "broker unavailable: {why}"),
            DaemonError::Broker(e) => write!(f, "{e}"),
            DaemonError::DaemonUnavailable { daemon, why } => {
                write!(f, "{daemon} unavailable: {why}")
            }
            DaemonError::Refused { daemon, error } => write!(f, "{daemon}: {error}"),
            DaemonError::Store(e) => write!(f, "records store: {e}"),
            DaemonError::Unexpected(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<ClientError> for DaemonError {
    fn from(e: ClientError) -> Self {
        DaemonError::Unavailable(e.to_string())
    }
}

impl From<CallError<BrokerError>> for DaemonError {
    fn from(e: CallError<BrokerError>) -> Self {
        match e {
            CallError::Transport(t) => t.into(),
            CallError::Remote(r) => DaemonError::Broker(r),
        }
    }
}

/// One request to sessiond or copilotd on a fresh connection (`S::NAME`
/// names the daemon in errors). The broker has its own [`broker_call`]
/// because its errors are typed (the app reacts to `SignedOut`).
pub async fn daemon_call<S: Service>(
    d: &Daemons,
    req: S::Request,
) -> Result<S::Response, DaemonError> {
    let mut client = daemon_connect::<S>(d).await?;
    client.call(req).await.map_err(|e| daemon_error::<S>(e))
}

/// A connection to sessiond or copilotd (for calls whose answers are
/// followed by events on the same connection).
pub async fn daemon_connect<S: Service>(d: &Daemons) -> Result<Client<S>, DaemonError> {
    Client::<S>::connect(&d.layout.runtime, DEFAULT_TIMEOUT)
        .await
        .map_err(|e| DaemonError::DaemonUnavailable {
            daemon: S::NAME,
            why: e.to_string(),
        })
}

/// A sessiond/copilotd call failure, as a person reads it.
pub fn daemon_error<S: Service>(e: CallError<S::Error>) -> DaemonError {
    match e {
        CallError::Transport(t) => DaemonError::DaemonUnavailable {
            daemon: S::NAME,
            why: t.to_string(),
        },
        CallError::Remote(r) => DaemonError::Refused {
            daemon: S::NAME,
            error: r.to_string(),
        },
    }
}

/// A host as the list shows it: plaintext fields only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub id: String,
    pub name: String,
    pub address: String,
    pub port: String,
    pub vendor: String,
    pub tags: Vec<String>,
    pub folder: String,
    /// The organization (or private scope) the host belongs to.
    pub scope: gatehouse_ipc::broker::KeyScope,
}

/// An effect the app state asks for.
#[derive(Debug, Clone)]
pub enum Call {
    Status,
    /// The passphrase is moved into the request and zeroized with it.
    SignIn {
        passphrase: SecretBytes,
        remember_device: bool,
    },
    SignOut,
    ListApprovals,
    ShowApproval(u64),
    Decide {
        id: u64,
        decision: Decision,
        /// The account passphrase typed on the card (proof of presence,
        /// verified by the broker); moved into the request.
        presence: Option<SecretBytes>,
    },
    LoadHosts,
    /// Show a desktop notification (see [`crate::notify`]).
    Notify(crate::notify::Notice),
    // One variant per screen that talks to the daemons; each screen's
    // module owns its calls and runs them (`<module>::run`).
    Hosts(hosts::Call),
    Terminal(terminal::Call),
    Copilot(copilot::Call),
    Procedures(procedures::Call),
    Recordings(recordings::Call),
    Audit(audit_log::Call),
    Diagrams(diagrams::Call),
    Security(security::Call),
    Settings(crate::settings_screen::Call),
}

/// A long-lived call whose answers arrive one by one (a shell's output, a
/// chat turn's events): the shell runs it as a stream of [`Reply`]s until
/// it ends. One variant per screen, like [`Call`].
#[derive(Debug, Clone)]
pub enum Watch {
    Terminal(terminal::Watch),
    Copilot(copilot::Watch),
}

/// Runs a [`Watch`]: its replies, until it ends.
pub fn watch(d: Daemons, w: Watch) -> BoxStream<'static, Reply> {
    match w {
        Watch::Terminal(w) => terminal::watch(d, w),
        Watch::Copilot(w) => copilot::watch(d, w),
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(Result<Box<BrokerStatus>, DaemonError>),
    SignedIn(Result<(), DaemonError>),
    /// The broker's purge report, and what the person's settings had
    /// cleared of the profile's files (one line each).
    SignedOut(Result<(PurgeReport, Vec<String>), DaemonError>),
    Approvals(Result<Vec<ApprovalView>, DaemonError>),
    Approval(Result<Box<ApprovalView>, DaemonError>),
    Decided {
        id: u64,
        result: Result<(ApprovalState, Option<u64>), DaemonError>,
    },
    Hosts(Result<Vec<HostRow>, DaemonError>),
    /// A desktop notification was shown (its id) or not (why).
    Notified(Result<u32, String>),
    Host(hosts::Reply),
    Terminal(terminal::Reply),
    Copilot(copilot::Reply),
    Procedures(procedures::Reply),
    Recordings(recordings::Reply),
    Audit(audit_log::Reply),
    Diagrams(diagrams::Reply),
    Security(security::Reply),
    Settings(crate::settings_screen::Reply),
}

pub async fn broker_call(d: &Daemons, req: BrokerRequest) -> Result<BrokerResponse, DaemonError> {
    let mut client = Client::<Broker>::connect(&d.layout.runtime, DEFAULT_TIMEOUT).await?;
    Ok(client.call(req).await?)
}

/// Signs out as `gatehouse sign-out` does: the person's sign-out options
/// are read (and verified) while the broker still can, the broker purges,
/// then the profile's files the options name are cleared.
async fn sign_out(d: &Daemons) -> Result<(PurgeReport, Vec<String>), DaemonError> {
    let layout = d.layout.clone();
    let clears =
        tokio::task::spawn_blocking(move || gatehouse_records::settings::sign_out_clears(&layout))
            .await
            .unwrap_or_default();
    let report = match broker_call(d, BrokerRequest::SignOut).await? {
        BrokerResponse::SignedOut(p) => p,
        r => return Err(unexpected(r)),
    };
    let layout = d.layout.clone();
    let cleared = tokio::task::spawn_blocking(move || {
        gatehouse_records::settings::clear_after_sign_out(
            &layout,
            &gatehouse_recordings::recordings_dir(&layout),
            &clears,
        )
    })
    .await
    .unwrap_or_else(|e| vec![format!("clearing after sign-out failed: {e}")]);
    Ok((report, cleared))
}

fn unexpected(r: BrokerResponse) -> DaemonError {
    DaemonError::Unexpected(format!("{r:?}"))
}

/// Runs one call (one broker connection per call: nothing is kept open
/// that a signed-out UI would have to forget).
pub async fn run(d: Daemons, call: Call) -> Reply {
    match call {
        Call::Status => Reply::Status(match broker_call(&d, BrokerRequest::Status).await {
            Ok(BrokerResponse::Status(s)) => Ok(s),
            Ok(r) => Err(unexpected(r)),
            Err(e) => Err(e),
        }),
        Call::SignIn {
            passphrase,
            remember_device,
        } => Reply::SignedIn(
            match broker_call(
                &d,
                BrokerRequest::SignIn {
                    passphrase,
                    remember_device,
                },
            )
            .await
            {
                Ok(BrokerResponse::SignedIn { .. }) => Ok(()),
                Ok(r) => Err(unexpected(r)),
                Err(e) => Err(e),
            },
        ),
        Call::SignOut => Reply::SignedOut(sign_out(&d).await),
        Call::ListApprovals => {
            Reply::Approvals(match broker_call(&d, BrokerRequest::ListApprovals).await {
                Ok(BrokerResponse::Approvals(v)) => Ok(v),
                Ok(r) => Err(unexpected(r)),
                Err(e) => Err(e),
            })
        }
        Call::ShowApproval(id) => Reply::Approval(
            match broker_call(&d, BrokerRequest::ShowApproval { id }).await {
                Ok(BrokerResponse::Approval(v)) => Ok(v),
                Ok(r) => Err(unexpected(r)),
                Err(e) => Err(e),
            },
        ),
        Call::Decide {
            id,
            decision,
            presence,
        } => Reply::Decided {
            id,
            result: match broker_call(
                &d,
                BrokerRequest::DecideApproval {
                    id,
                    decision,
                    presence,
                },
            )
            .await
            {
                Ok(BrokerResponse::Decided { state, new_id }) => Ok((state, new_id)),
                Ok(r) => Err(unexpected(r)),
                Err(e) => Err(e),
            },
        },
        Call::Notify(n) => Reply::Notified(crate::notify::send(n).await),
        Call::LoadHosts => {
            let layout = d.layout.clone();
            Reply::Hosts(
                tokio::task::spawn_blocking(move || load_hosts(&layout))
                    .await
                    .unwrap_or_else(|e| Err(DaemonError::Store(e.to_string()))),
            )
        }
        Call::Hosts(c) => Reply::Host(hosts::run(d, c).await),
        Call::Terminal(c) => Reply::Terminal(terminal::run(d, c).await),
        Call::Copilot(c) => Reply::Copilot(copilot::run(d, c).await),
        Call::Procedures(c) => Reply::Procedures(procedures::run(d, c).await),
        Call::Recordings(c) => Reply::Recordings(recordings::run(d, c).await),
        Call::Audit(c) => Reply::Audit(audit_log::run(d, c).await),
        Call::Diagrams(c) => Reply::Diagrams(diagrams::run(d, c).await),
        Call::Security(c) => Reply::Security(security::run(d, c).await),
        Call::Settings(c) => crate::settings_screen::run(d, c).await,
    }
}

/// Runs `f` on the profile's files (the store, logs, recordings) on a
/// blocking thread; a panic there becomes an error, never the app's.
pub async fn on_files<T: Send + 'static>(
    d: &Daemons,
    f: impl FnOnce(&Layout) -> T + Send + 'static,
) -> Result<T, String> {
    let layout = d.layout.clone();
    tokio::task::spawn_blocking(move || f(&layout))
        .await
        .map_err(|e| format!("reading the profile's files failed: {e}"))
}

/// Every host record's plaintext fields (the store only: no broker, nothing opened).
pub fn load_hosts(layout: &Layout) -> Result<Vec<HostRow>, DaemonError> {
    let store = Store::open_in(layout).map_err(|e| DaemonError::Store(e.to_string()))?;
    let rows = store
        .list(&Filter::kind(Kind::Host))
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    let text = |s: &gatehouse_records::store::Summary, k: &str| -> String {
        match s.fields.get(k) {
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    Ok(rows
        .iter()
        .map(|s| HostRow {
            id: s.meta.id.clone(),
            name: s.name().to_string(),
            address: text(s, "address"),
            port: text(s, "port"),
            vendor: text(s, "vendor"),
            tags: s
                .fields
                .get("tags")
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            folder: s.folder().to_string(),
            scope: s.meta.scope.clone(),
        })
        .collect())
}

/// What the event stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Subscribed: events follow.
    Connected,
    Event(BrokerEvent),
    /// The connection failed or was lost; retrying after [`RECONNECT_AFTER`].
    Lost(String),
}

/// The broker's events, forever: subscribes, forwards every event, and on
/// loss reports it and reconnects.
pub fn events(d: Daemons) -> impl iced::futures::Stream<Item = Feed> + Send + 'static {
    iced::stream::channel(
        16,
        async move |mut out: iced::futures::channel::mpsc::Sender<Feed>| {
            use iced::futures::SinkExt;
            loop {
                match subscribe(&d).await {
                    Ok(mut client) => {
                        if out.send(Feed::Connected).await.is_err() {
                            return;
                        }
                        loop {
                            match client.next_event(Duration::from_secs(3600)).await {
                                Ok(Some(e)) => {
                                    if out.send(Feed::Event(e)).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    if out.send(Feed::Lost(e.to_string())).await.is_err() {
                                        return;
                                    }
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        if out.send(Feed::Lost(e.to_string())).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        },
    )
}

/// A connection subscribed to the broker's events.
pub async fn subscribe(d: &Daemons) -> Result<Client<Broker>, DaemonError> {
    let mut client = Client::<Broker>::connect(&d.layout.runtime, DEFAULT_TIMEOUT).await?;
    match client.call(BrokerRequest::Subscribe).await? {
        BrokerResponse::Subscribed => Ok(client),
        r => Err(unexpected(r)),
    }
}
