//! The sessiond service: what each request does, in which order.
//!
//! Owns the session table and the order of every execution: find the host →
//! classify → (gated) check the token is the caller's and covers this exact
//! action → connect and authenticate with broker-held credentials → get the
//! device ready (prompt, paging) → (gated) spend the token with the broker →
//! only then send the command. Every execution or refusal gets an audit row.
//! Must never: send a gated command's bytes before the broker confirmed the
//! token, let a daemon open an interactive shell, or let one process type
//! into another's session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use gatehouse_ipc::broker::{
    ApprovalToken, BrokerEvent, BrokerRequest, BrokerResponse, Hardening, KeyScope, Requester,
    SealItem, ShellUse,
};
use gatehouse_ipc::server::{Events, Handler, PendingStreams};
use gatehouse_ipc::sessiond::{
    HostRef, Prepared, SessionEvent, SessionInfo, SessionKind, Sessiond, SessiondError,
    SessiondRequest, SessiondResponse, SessiondStatus,
};
use gatehouse_ipc::{Layout, PeerIdentity, PeerRole, SecretBytes};
use gatehouse_records::Store;
use tokio::sync::{mpsc, watch};

use crate::audit::{self, AuditRow, Outcome};
use crate::broker_link::{BrokerCredentials, BrokerLink};
use crate::driver::{self, DeviceOutput, DeviceShell};
use crate::gate;
use crate::hosts::{self, Host};
use crate::recorder::{Recorded, Recorder};
use crate::ssh::{self, Chunk, Connection, SshError, Target};
use crate::typed_lines::TypedLines;

/// Events buffered per session before the device is made to wait.
const EVENT_QUEUE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const DEVICE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_COMMAND: usize = 64 * 1024;

/// The fixed part of a session's audit rows: who asked what where, on
/// whose approval (session and recording once they exist).
#[derive(Debug, Clone)]
struct AuditCtx {
    requester: Requester,
    kind: SessionKind,
    host: String,
    host_id: Option<String>,
    org: String,
    command: String,
    class: String,
    approver: Option<Requester>,
    approval_id: Option<u64>,
    session: Option<u64>,
    recording: Option<String>,
}

impl AuditCtx {
    fn new(peer: &PeerIdentity, kind: SessionKind, host_ref: &HostRef, command: &str) -> AuditCtx {
        AuditCtx {
            requester: requester(peer),
            kind,
            host: host_ref.host.clone(),
            host_id: None,
            org: host_ref.org.clone().unwrap_or_default(),
            command: command.to_string(),
            class: String::new(),
            approver: None,
            approval_id: None,
            session: None,
            recording: None,
        }
    }

    fn host(mut self, h: &Host) -> AuditCtx {
        self.host = h.name.clone();
        self.host_id = Some(h.id.clone());
        self.org = h.org.clone();
        self
    }

    fn class(mut self, class: &str) -> AuditCtx {
        self.class = class.to_string();
        self
    }

    fn token(mut self, t: Option<&ApprovalToken>) -> AuditCtx {
        self.approver = t.map(|t| t.approver.clone());
        self.approval_id = t.map(|t| t.approval_id);
        self
    }
}

/// One execution being decided: what runs where, and on whose approval.
struct ExecPlan {
    host: Host,
    command: String,
    prepared: Prepared,
    token: Option<ApprovalToken>,
    audit: AuditCtx,
}

struct Session {
    info: SessionInfo,
    owner_pid: i32,
    /// Keystrokes and resizes go here (shells only).
    input: Option<mpsc::Sender<ShellInput>>,
    /// Set to a reason to end the session.
    stop: watch::Sender<Option<String>>,
    recorder: Option<Arc<Recorder>>,
    /// Shells: the session's audit context and the line being typed.
    typed: Option<Arc<std::sync::Mutex<(AuditCtx, TypedLines)>>>,
}

enum ShellInput {
    Data(SecretBytes),
    Resize(u16, u16),
}

pub struct SessionService {
    /// Itself, to spawn session tasks from `&self` handlers.
    me: std::sync::Weak<SessionService>,
    layout: Layout,
    /// Opened before the sandbox and kept open: the store's WAL files stay
    /// in place for the Landlock rules that name them.
    store: Mutex<Store>,
    broker: BrokerLink,
    hardening: Hardening,
    sessions: Mutex<HashMap<u64, Session>>,
    /// Event streams waiting for their connection (taken after the reply).
    pending: PendingStreams<SessionEvent>,
    next_session: std::sync::atomic::AtomicU64,
    signed_in: std::sync::atomic::AtomicBool,
}

fn requester(peer: &PeerIdentity) -> Requester {
    Requester {
        role: peer.role,
        pid: peer.pid,
        exe: peer.exe.display().to_string(),
    }
}

fn ssh_error(host: &Host, e: SshError) -> SessiondError {
    match e {
        SshError::HostKeyUnknown { presented } => SessiondError::HostKeyUnknown {
            host: host.name.clone(),
            presented,
        },
        SshError::HostKeyChanged {
            expected,
            presented,
        } => SessiondError::HostKeyChanged {
            host: host.name.clone(),
            expected,
            presented,
        },
        SshError::AuthFailed { reason } => SessiondError::AuthFailed {
            host: host.name.clone(),
            user: host.username.clone(),
            reason,
        },
        SshError::Connect { reason } => SessiondError::Connect {
            host: host.name.clone(),
            address: format!("{}:{}", host.address, host.port),
            reason,
        },
        SshError::Timeout { after } => SessiondError::Connect {
            host: host.name.clone(),
            address: format!("{}:{}", host.address, host.port),
            reason: format!("timed out after {after:?}"),
        },
        other => SessiondError::Device(other.to_string()),
    }
}

impl SessionService {
    pub fn new(layout: Layout, store: Store, hardening: Hardening) -> Arc<SessionService> {
        Arc::new_cyclic(|me| SessionService {
            me: me.clone(),
            store: Mutex::new(store),
            broker: BrokerLink::new(layout.runtime.clone()),
            layout,
            hardening,
            sessions: Mutex::new(HashMap::new()),
            pending: PendingStreams::default(),
            next_session: std::sync::atomic::AtomicU64::new(1),
            signed_in: std::sync::atomic::AtomicBool::new(true),
        })
    }

    pub fn broker(&self) -> &BrokerLink {
        &self.broker
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reacts to the broker's events: sign-out closes every session (they
    /// all hold an authenticated connection).
    pub fn on_broker_event(&self, e: &BrokerEvent) {
        match e {
            BrokerEvent::SignedOut => {
                self.signed_in
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                let n = self.close_all("closed by sign-out");
                tracing::info!("sign-out: closed {n} sessions");
            }
            BrokerEvent::SignedIn => self
                .signed_in
                .store(true, std::sync::atomic::Ordering::SeqCst),
            _ => {}
        }
    }

    /// Ends every session with `reason`; returns how many.
    pub fn close_all(&self, reason: &str) -> usize {
        let sessions = self.sessions();
        for s in sessions.values() {
            let _ = s.stop.send(Some(reason.to_string()));
        }
        sessions.len()
    }

    async fn orgs(&self) -> Result<Vec<gatehouse_ipc::broker::OrgInfo>, SessiondError> {
        match self.broker.call(BrokerRequest::OrgList).await? {
            BrokerResponse::Orgs(o) => Ok(o),
            other => Err(SessiondError::Internal(format!(
                "unexpected broker reply {other:?}"
            ))),
        }
    }

    async fn host(&self, r: &HostRef) -> Result<Host, SessiondError> {
        if r.host.is_empty() || r.host.len() > 512 {
            return Err(SessiondError::Invalid {
                what: "host".into(),
                reason: "empty or over 512 bytes".into(),
            });
        }
        let scope: Option<KeyScope> = if r.org.is_some() {
            hosts::scope_of(r, &self.orgs().await?)?
        } else {
            None
        };
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        Host::load(&store, scope.as_ref(), &r.host)
    }

    async fn prepare(&self, host: &Host, command: &str) -> Result<Prepared, SessiondError> {
        if command.trim().is_empty() || command.len() > MAX_COMMAND {
            return Err(SessiondError::Invalid {
                what: "command".into(),
                reason: "empty or over 64 KiB".into(),
            });
        }
        let policy = match self
            .broker
            .call(BrokerRequest::OrgPolicyGet {
                org: host.org.clone(),
            })
            .await?
        {
            BrokerResponse::OrgPolicy(json) => gate::parse_policy(&json)?,
            _ => {
                return Err(SessiondError::Broker(
                    "unexpected reply to OrgPolicyGet".into(),
                ));
            }
        };
        Ok(gate::prepare(host, command, &policy))
    }

    /// Seals `command` for the audit row `id` (under the user's own key).
    async fn seal_command(&self, id: &str, command: &str) -> String {
        let req = BrokerRequest::SealFields {
            items: vec![SealItem {
                address: audit::command_address(id),
                plaintext: SecretBytes::copy_from(command.as_bytes()),
            }],
        };
        match self.broker.call(req).await {
            Ok(BrokerResponse::Sealed(mut v)) if v.len() == 1 => {
                base64::engine::general_purpose::STANDARD.encode(v.remove(0).0)
            }
            // Never fall back to plaintext: the row keeps its metadata only.
            _ => String::new(),
        }
    }

    /// Asks the broker whether `token` would be accepted for `prepared`
    /// (signature, expiry, not yet used) without spending it.
    async fn check_approval(
        &self,
        token: &ApprovalToken,
        prepared: &Prepared,
    ) -> Result<(), SessiondError> {
        let req = BrokerRequest::CheckApproval {
            token: Box::new(token.clone()),
            action: covered_action(token, prepared),
        };
        match self.broker.call(req).await? {
            BrokerResponse::ApprovalValid => Ok(()),
            other => Err(SessiondError::Internal(format!(
                "unexpected broker reply {other:?}"
            ))),
        }
    }

    /// Appends one audit row for `ctx` with `outcome`.
    async fn audit(&self, ctx: &AuditCtx, outcome: Outcome) {
        let id = audit::new_row_id();
        let row = AuditRow {
            command_sealed: self.seal_command(&id, &ctx.command).await,
            id,
            time_ms: audit::now_ms(),
            session: ctx.session,
            kind: match ctx.kind {
                SessionKind::Shell => "shell".into(),
                SessionKind::Exec => "exec".into(),
            },
            requester: ctx.requester.clone(),
            approver: ctx.approver.clone(),
            approval_id: ctx.approval_id,
            class: ctx.class.clone(),
            host: ctx.host.clone(),
            host_id: ctx.host_id.clone(),
            org: ctx.org.clone(),
            outcome,
            recording: ctx.recording.clone(),
        };
        if let Err(e) = audit::append(&self.layout.root, &row) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }

    /// The end of a session: the recording's exit event, the `exited`
    /// audit row, out of the table, and the client's last event.
    async fn finish_session(
        &self,
        ctx: &AuditCtx,
        recorder: Option<&Recorder>,
        tx: &mpsc::Sender<SessionEvent>,
        (status, reason): (Option<u32>, Option<String>),
    ) {
        if let Some(r) = recorder {
            r.exit(status, reason.as_deref());
            r.finish();
        }
        let outcome = Outcome::Exited {
            status,
            reason: reason.clone(),
        };
        self.audit(ctx, outcome).await;
        let Some(session) = ctx.session else { return };
        self.sessions().remove(&session);
        let _ = tx
            .send(SessionEvent::Exited {
                session,
                status,
                reason,
            })
            .await;
    }

    /// Connects and authenticates. `for_driver`: the connection will drive a
    /// device shell (RouterOS then logs in with console flags that turn
    /// paging off; a person's terminal keeps the plain login).
    /// `shell`: set for an interactive shell (who opened it and the
    /// broker's shell ticket), passed on with every credential request.
    async fn connect(
        &self,
        host: &Host,
        for_driver: bool,
        shell: Option<ShellUse>,
    ) -> Result<Connection, SessiondError> {
        let username = match gatehouse_policy::Vendor::parse_platform(&host.vendor) {
            Some(v) if for_driver => driver::login_name(v, &host.username),
            _ => host.username.clone(),
        };
        let target = Target {
            host_name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            username,
            pinned_host_key: host.pinned_host_key.clone(),
        };
        let mut creds = BrokerCredentials {
            link: &self.broker,
            host,
            shell,
        };
        ssh::connect(&target, &mut creds, CONNECT_TIMEOUT)
            .await
            .map_err(|e| ssh_error(host, e))
    }

    fn new_session(
        &self,
        conn: u64,
        peer: &PeerIdentity,
        kind: SessionKind,
        host: &Host,
        recorder: Option<Arc<Recorder>>,
        input: Option<mpsc::Sender<ShellInput>>,
    ) -> (
        u64,
        mpsc::Sender<SessionEvent>,
        watch::Receiver<Option<String>>,
    ) {
        let id = self
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tx = self.pending.open(conn, EVENT_QUEUE);
        let (stop, stop_rx) = watch::channel(None);
        self.sessions().insert(
            id,
            Session {
                info: SessionInfo {
                    id,
                    host: host.name.clone(),
                    user: host.username.clone(),
                    kind,
                    owner: requester(peer),
                    recording: recorder.as_ref().map(|r| r.id().to_string()),
                    started_ms: audit::now_ms(),
                },
                owner_pid: peer.pid,
                input,
                stop,
                recorder,
                typed: None,
            },
        );
        (id, tx, stop_rx)
    }

    async fn recorder(
        &self,
        host: &Host,
        what: Recorded<'_>,
    ) -> Result<Arc<Recorder>, SessiondError> {
        Recorder::start(&self.layout, &self.broker, host, &what)
            .await
            .map(Arc::new)
    }

    /// Audits a refused execution and hands the error back.
    async fn refused(&self, ctx: &AuditCtx, e: SessiondError) -> SessiondError {
        let reason = e.to_string();
        self.audit(ctx, Outcome::Refused { reason }).await;
        e
    }

    async fn exec(
        self: &Arc<Self>,
        peer: &PeerIdentity,
        conn_id: u64,
        host_ref: HostRef,
        command: String,
        approval: Option<Box<ApprovalToken>>,
        record: bool,
    ) -> Result<SessiondResponse, SessiondError> {
        let ctx = AuditCtx::new(peer, SessionKind::Exec, &host_ref, &command);
        let host = match self.host(&host_ref).await {
            Ok(h) => h,
            Err(e) => return Err(self.refused(&ctx, e).await),
        };
        let prepared = self.prepare(&host, &command).await?;
        let token = approval.map(|t| *t);
        let plan = ExecPlan {
            audit: ctx.host(&host).class(&prepared.class).token(token.as_ref()),
            host,
            command,
            prepared,
            token,
        };
        if let Some(reason) = &plan.prepared.blocked {
            let e = SessiondError::Blocked(reason.clone());
            return Err(self.refused(&plan.audit, e).await);
        }
        if plan.prepared.needs_approval {
            let checked = match &plan.token {
                None => Err(SessiondError::ApprovalRequired {
                    class: plan.prepared.class.clone(),
                    reasons: plan.prepared.reasons.clone(),
                }),
                Some(t) => gate::check_token(t, &plan.prepared, peer),
            };
            if let Err(e) = checked {
                return Err(self.refused(&plan.audit, e).await);
            }
            // The broker checks the signature, expiry and single use before
            // any credential is asked for: a forged or replayed token
            // releases no password and logs in nowhere.
            if let Some(t) = &plan.token
                && let Err(e) = self.check_approval(t, &plan.prepared).await
            {
                return Err(self.refused(&plan.audit, e).await);
            }
        }
        // Connect, authenticate and get the device ready: no command byte yet.
        let vendor = gatehouse_policy::Vendor::parse_platform(&plan.host.vendor);
        let drives_shell = vendor.is_some_and(driver::uses_shell);
        let connection = match self.connect(&plan.host, drives_shell, None).await {
            Ok(c) => c,
            Err(e) => return Err(self.refused(&plan.audit, e).await),
        };
        let mut device = None;
        if let Some(v) = vendor.filter(|v| driver::uses_shell(*v)) {
            match DeviceShell::open(&connection, v, DEVICE_TIMEOUT).await {
                Ok(d) => device = Some(d),
                Err(e) => {
                    connection.close().await;
                    let e = SessiondError::Device(e.to_string());
                    return Err(self.refused(&plan.audit, e).await);
                }
            }
        }
        // Spend the token: from here on the command may reach the device.
        if plan.prepared.needs_approval
            && let Some(t) = &plan.token
        {
            let req = BrokerRequest::ConsumeApproval {
                token: Box::new(t.clone()),
                action: covered_action(t, &plan.prepared),
            };
            let spent = match self.broker.call(req).await {
                Ok(BrokerResponse::Consumed) => Ok(()),
                Ok(other) => Err(SessiondError::Internal(format!(
                    "unexpected broker reply {other:?}"
                ))),
                Err(e) => Err(e),
            };
            if let Err(e) = spent {
                connection.close().await;
                return Err(self.refused(&plan.audit, e).await);
            }
        }
        let recorder = if record {
            match self
                .recorder(
                    &plan.host,
                    Recorded {
                        kind: SessionKind::Exec,
                        cols: 120,
                        rows: 40,
                        term: "xterm-256color",
                        command: Some(&plan.command),
                    },
                )
                .await
            {
                Ok(r) => Some(r),
                Err(e) => {
                    connection.close().await;
                    return Err(self.refused(&plan.audit, e).await);
                }
            }
        } else {
            None
        };
        let (session, tx, stop) = self.new_session(
            conn_id,
            peer,
            SessionKind::Exec,
            &plan.host,
            recorder.clone(),
            None,
        );
        let mut ctx = plan.audit.clone();
        ctx.session = Some(session);
        ctx.recording = recorder.as_ref().map(|r| r.id().to_string());
        self.audit(&ctx, Outcome::Started).await;
        let reply = SessiondResponse::Started {
            session,
            class: plan.prepared.class.clone(),
            recording: ctx.recording.clone(),
            host_key: connection.host_key().to_string(),
            user: plan.host.username.clone(),
        };
        let this = self.clone();
        tokio::spawn(async move {
            let ended = run_exec(
                connection,
                device,
                &plan.command,
                session,
                &tx,
                recorder.as_deref(),
                stop,
            )
            .await;
            this.finish_session(&ctx, recorder.as_deref(), &tx, ended)
                .await;
        });
        Ok(reply)
    }

    async fn open_shell(
        self: &Arc<Self>,
        peer: &PeerIdentity,
        conn_id: u64,
        host_ref: HostRef,
        pty: PtySize,
        presence_ticket: Option<SecretBytes>,
    ) -> Result<SessiondResponse, SessiondError> {
        if !matches!(peer.role, PeerRole::Cli | PeerRole::Ui) {
            return Err(SessiondError::Forbidden(peer.role));
        }
        let PtySize { cols, rows, term } = pty;
        let (cols, rows) = (cols.clamp(1, 1000), rows.clamp(1, 1000));
        if term.is_empty() || term.len() > 64 || !term.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SessiondError::Invalid {
                what: "terminal type".into(),
                reason: "1–64 printable ASCII characters".into(),
            });
        }
        let host = self.host(&host_ref).await?;
        let mut ctx = AuditCtx::new(peer, SessionKind::Shell, &host_ref, "(interactive shell)")
            .host(&host)
            .class("interactive");
        let shell_use = ShellUse {
            opened_by: peer.role,
            ticket: presence_ticket,
        };
        let connection = match self.connect(&host, false, Some(shell_use)).await {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                self.audit(&ctx, Outcome::Failed { reason }).await;
                return Err(e);
            }
        };
        let shell = match connection.shell(cols, rows, &term).await {
            Ok(s) => s,
            Err(e) => {
                connection.close().await;
                return Err(ssh_error(&host, e));
            }
        };
        let recorder = match self
            .recorder(
                &host,
                Recorded {
                    kind: SessionKind::Shell,
                    cols,
                    rows,
                    term: &term,
                    command: None,
                },
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                connection.close().await;
                return Err(e);
            }
        };
        let (input_tx, input_rx) = mpsc::channel(64);
        let (session, tx, stop) = self.new_session(
            conn_id,
            peer,
            SessionKind::Shell,
            &host,
            Some(recorder.clone()),
            Some(input_tx),
        );
        ctx.session = Some(session);
        ctx.recording = Some(recorder.id().to_string());
        if let Some(s) = self.sessions().get_mut(&session) {
            s.typed = Some(Arc::new(std::sync::Mutex::new((
                ctx.clone(),
                TypedLines::default(),
            ))));
        }
        self.audit(&ctx, Outcome::Started).await;
        let reply = SessiondResponse::Started {
            session,
            class: ctx.class.clone(),
            recording: ctx.recording.clone(),
            host_key: connection.host_key().to_string(),
            user: host.username.clone(),
        };
        let this = self.clone();
        tokio::spawn(async move {
            let ended = run_shell(connection, shell, session, &tx, &recorder, input_rx, stop).await;
            this.finish_session(&ctx, Some(&recorder), &tx, ended).await;
        });
        Ok(reply)
    }

    /// The session `id` if `peer` owns it.
    fn owned<T>(
        &self,
        peer: &PeerIdentity,
        id: u64,
        f: impl FnOnce(&Session) -> T,
    ) -> Result<T, SessiondError> {
        let sessions = self.sessions();
        match sessions.get(&id) {
            Some(s) if s.owner_pid == peer.pid => Ok(f(s)),
            _ => Err(SessiondError::NoSuchSession(id)),
        }
    }

    async fn send_input(
        &self,
        peer: &PeerIdentity,
        id: u64,
        input: ShellInput,
    ) -> Result<SessiondResponse, SessiondError> {
        let (tx, typed) = self.owned(peer, id, |s| (s.input.clone(), s.typed.clone()))?;
        let tx = tx.ok_or(SessiondError::Invalid {
            what: "session".into(),
            reason: "not an interactive shell".into(),
        })?;
        // Every line typed gets its sealed audit row before its Enter is sent.
        if let (ShellInput::Data(data), Some(typed)) = (&input, typed) {
            let (ctx, lines) = {
                let mut t = typed.lock().unwrap_or_else(|p| p.into_inner());
                let lines = t.1.feed(data.expose());
                (t.0.clone(), lines)
            };
            for line in lines {
                let mut row = ctx.clone();
                row.command = line;
                self.audit(&row, Outcome::Typed).await;
            }
        }
        tx.send(input)
            .await
            .map_err(|_| SessiondError::NoSuchSession(id))?;
        Ok(SessiondResponse::Done)
    }

    fn status(&self) -> SessiondStatus {
        SessiondStatus {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            hardening: Hardening {
                // Read live: sessiond turns non-dumpable after start-up.
                dumpable: nix::sys::prctl::get_dumpable().unwrap_or(true),
                ..self.hardening.clone()
            },
            sessions: self.sessions().len(),
            broker_connected: true,
            signed_in: self.signed_in.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    pub async fn dispatch(
        self: &Arc<Self>,
        peer: &PeerIdentity,
        conn: u64,
        req: SessiondRequest,
    ) -> Result<SessiondResponse, SessiondError> {
        if peer.role == PeerRole::Sessiond {
            return Err(SessiondError::Forbidden(peer.role));
        }
        match req {
            SessiondRequest::Status => Ok(SessiondResponse::Status(Box::new(self.status()))),
            SessiondRequest::Prepare { host, command } => {
                let host = self.host(&host).await?;
                Ok(SessiondResponse::Prepared(Box::new(
                    self.prepare(&host, &command).await?,
                )))
            }
            SessiondRequest::Exec {
                host,
                command,
                approval,
                record,
            } => self.exec(peer, conn, host, command, approval, record).await,
            SessiondRequest::OpenShell {
                host,
                cols,
                rows,
                term,
                presence_ticket,
            } => {
                let pty = PtySize { cols, rows, term };
                self.open_shell(peer, conn, host, pty, presence_ticket)
                    .await
            }
            SessiondRequest::Input { session, data } => {
                self.send_input(peer, session, ShellInput::Data(data)).await
            }
            SessiondRequest::Resize {
                session,
                cols,
                rows,
            } => {
                let (cols, rows) = (cols.clamp(1, 1000), rows.clamp(1, 1000));
                self.send_input(peer, session, ShellInput::Resize(cols, rows))
                    .await
            }
            SessiondRequest::Mark { session, label } => {
                let rec = self.owned(peer, session, |s| s.recorder.clone())?;
                if let Some(r) = rec {
                    r.marker(&label);
                }
                Ok(SessiondResponse::Done)
            }
            SessiondRequest::Close { session } => {
                self.owned(peer, session, |s| {
                    let _ = s.stop.send(Some("closed by the client".into()));
                })?;
                Ok(SessiondResponse::Done)
            }
            SessiondRequest::List => {
                let sessions = self.sessions();
                let mut list: Vec<SessionInfo> = sessions
                    .values()
                    .filter(|s| {
                        matches!(peer.role, PeerRole::Cli | PeerRole::Ui) || s.owner_pid == peer.pid
                    })
                    .map(|s| s.info.clone())
                    .collect();
                list.sort_by_key(|s| s.id);
                Ok(SessiondResponse::Sessions(list))
            }
        }
    }
}

/// The terminal an interactive shell is opened with (as the client asked).
struct PtySize {
    cols: u16,
    rows: u16,
    term: String,
}

/// The action a token must cover: what runs, with the expected effect taken
/// from the token (it is the requester's description, signed, not something
/// sessiond can derive).
fn covered_action(token: &ApprovalToken, prepared: &Prepared) -> gatehouse_ipc::broker::Action {
    gatehouse_ipc::broker::Action {
        expected_effect: token.action.expected_effect.clone(),
        ..prepared.action.clone()
    }
}

/// Runs one command (exec channel, or the device's shell) and streams its
/// output. Returns the exit status and, when it did not end by itself, why.
async fn run_exec(
    connection: Connection,
    device: Option<DeviceShell>,
    command: &str,
    session: u64,
    tx: &mpsc::Sender<SessionEvent>,
    recorder: Option<&Recorder>,
    mut stop: watch::Receiver<Option<String>>,
) -> (Option<u32>, Option<String>) {
    let stopped = async {
        loop {
            if let Some(reason) = stop.borrow().clone() {
                return reason;
            }
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    if let Some(mut device) = device {
        let ended = tokio::select! {
            ended = run_lines(&mut device, command, session, tx, recorder) => ended,
            reason = stopped => (None, Some(reason)),
        };
        connection.close().await;
        return ended;
    }
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(16);
    let run = connection.exec(command, chunk_tx);
    let forward = async {
        while let Some(chunk) = chunk_rx.recv().await {
            let event = match chunk {
                Chunk::Stdout(data) => {
                    if let Some(r) = recorder {
                        r.output(&data);
                    }
                    SessionEvent::Output { session, data }
                }
                Chunk::Stderr(data) => {
                    if let Some(r) = recorder {
                        r.output(&data);
                    }
                    SessionEvent::Stderr { session, data }
                }
            };
            if tx.send(event).await.is_err() {
                return false;
            }
        }
        true
    };
    let outcome = tokio::select! {
        (status, delivered) = async { tokio::join!(run, forward) } => {
            match (status, delivered) {
                (Ok(s), true) => (s, None),
                (Ok(s), false) => (s, Some("the client went away".to_string())),
                (Err(e), _) => (None, Some(e.to_string())),
            }
        }
        reason = stopped => (None, Some(reason)),
        _ = tx.closed() => (None, Some("the client went away".to_string())),
    };
    connection.close().await;
    outcome
}

/// The lines of an approved command as a device shell gets them: one line
/// per line of the text (a multi-line change, e.g. `configure terminal` then
/// `hostname X`, was classified line by line and approved as a whole).
pub fn command_lines(command: &str) -> Vec<&str> {
    command
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Sends an approved command to a device shell line by line, streaming each
/// line's output. Stops at the first line the device refuses, asks a
/// question after, or ends the shell on; the lines after it are not sent.
async fn run_lines(
    device: &mut DeviceShell,
    command: &str,
    session: u64,
    tx: &mpsc::Sender<SessionEvent>,
    recorder: Option<&Recorder>,
) -> (Option<u32>, Option<String>) {
    let lines = command_lines(command);
    let total = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let out = match device.run(line, DEVICE_TIMEOUT).await {
            Ok(o) => o,
            Err(e) => return (None, Some(format!("device: {e}"))),
        };
        let mut text = out.text().as_bytes().to_vec();
        // Device output ends at the prompt; end its last line like a program's.
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        if let Some(r) = recorder {
            r.output(&text);
        }
        if !text.is_empty()
            && tx
                .send(SessionEvent::Output {
                    session,
                    data: text,
                })
                .await
                .is_err()
        {
            return (None, Some("the client went away".into()));
        }
        let left = total - i - 1;
        let not_sent = if left > 0 {
            format!(" ({left} later line(s) not sent)")
        } else {
            String::new()
        };
        match &out {
            // A device shell has no exit status per command: the prompt came back.
            DeviceOutput::Completed { text, .. } => {
                if let Some(err) = driver::refusal(text) {
                    return (
                        Some(1),
                        Some(format!(
                            "the device refused line {} {line:?}: {err}{not_sent}",
                            i + 1
                        )),
                    );
                }
            }
            DeviceOutput::Question { question, .. } => {
                return (
                    None,
                    Some(format!(
                        "the device asks {question:?}; no answer was sent (an answer is a new command to approve){not_sent}"
                    )),
                );
            }
            DeviceOutput::ShellClosed { status, .. } => {
                return (
                    *status,
                    Some(format!("the device closed the shell{not_sent}")),
                );
            }
            DeviceOutput::ConnectionDropped { reason, .. } => {
                return (
                    None,
                    Some(format!(
                        "the device dropped the connection{}{not_sent}",
                        reason
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )),
                );
            }
        }
    }
    (Some(0), None)
}

/// Pumps an interactive shell until it ends, the client stops it, or sign-out.
async fn run_shell(
    connection: Connection,
    shell: ssh::Shell,
    session: u64,
    tx: &mpsc::Sender<SessionEvent>,
    recorder: &Recorder,
    mut input: mpsc::Receiver<ShellInput>,
    mut stop: watch::Receiver<Option<String>>,
) -> (Option<u32>, Option<String>) {
    let (writer, mut reader) = shell.into_parts();
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            ev = reader.next() => match ev {
                Some(ssh::ShellEvent::Data(data)) => {
                    recorder.output(&data);
                    if tx.send(SessionEvent::Output { session, data }).await.is_err() {
                        break (None, Some("the client went away".to_string()));
                    }
                }
                Some(ssh::ShellEvent::Exit(status)) => break (status, None),
                Some(ssh::ShellEvent::Closed) | None => break (None, Some("the connection closed".to_string())),
            },
            i = input.recv() => match i {
                Some(ShellInput::Data(d)) => {
                    if let Err(e) = writer.write(d.expose()).await {
                        break (None, Some(format!("write failed: {e}")));
                    }
                }
                Some(ShellInput::Resize(c, r)) => {
                    recorder.resize(c, r);
                    let _ = writer.resize(c, r).await;
                }
                None => {}
            },
            changed = stop.changed() => {
                let reason = stop.borrow().clone();
                if changed.is_err() || reason.is_some() {
                    break (None, Some(reason.unwrap_or_else(|| "stopped".into())));
                }
            }
            // The client's connection ended (even while the device is quiet).
            _ = tx.closed() => break (None, Some("the client went away".to_string())),
            _ = flush.tick() => recorder.flush(),
        }
    };
    connection.close().await;
    outcome
}

impl Handler<Sessiond> for SessionService {
    async fn handle(
        &self,
        peer: &PeerIdentity,
        conn: u64,
        req: SessiondRequest,
    ) -> Result<SessiondResponse, SessiondError> {
        // `dispatch` needs an Arc to spawn session tasks.
        let Some(this) = self.me.upgrade() else {
            return Err(SessiondError::Internal("shutting down".into()));
        };
        this.dispatch(peer, conn, req).await
    }

    fn subscribes(&self, req: &SessiondRequest) -> bool {
        matches!(
            req,
            SessiondRequest::Exec { .. } | SessiondRequest::OpenShell { .. }
        )
    }

    fn take_events(&self, conn: u64) -> Option<Events<SessionEvent>> {
        self.pending.take(conn)
    }

    fn disconnected(&self, conn: u64) {
        self.pending.forget(conn);
    }
}
