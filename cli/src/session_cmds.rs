//! Session commands: `gatehouse exec` and `gatehouse connect`, through sessiond.
//!
//! Owns the person's side of a session: filing an approval request and
//! waiting for it (`exec --request`), asking before pinning an unknown host
//! key, and the terminal of an interactive shell (raw mode, resize, exit
//! code). Must never: hold a device credential (sessiond gets it from the
//! broker), or pin a host key without a person's yes or an explicit
//! `--accept-host-key` naming that exact key.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use gatehouse_ipc::broker::{ApprovalToken, BrokerRequest, BrokerResponse, KeyScope};
use gatehouse_ipc::client::{CallError, Client, DEFAULT_TIMEOUT};
use gatehouse_ipc::sessiond::{
    HostRef, Prepared, SessionEvent, Sessiond, SessiondError, SessiondRequest, SessiondResponse,
};
use gatehouse_ipc::{Layout, SecretBytes};

use crate::commands::{BrokerConn, wait_for_decision};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Host id, NAME or FOLDER/NAME.
    pub host: String,
    /// Organization name or id of the host (`private` for your private hosts).
    #[arg(long)]
    pub org: Option<String>,
    /// File an approval request for the command and wait for a person's
    /// decision (`gatehouse approvals approve ID` in another terminal, or the
    /// app's approval card); then run exactly what was approved.
    #[arg(long)]
    pub request: bool,
    /// The expected side effect, shown on the approval request.
    #[arg(long, default_value = "")]
    pub effect: String,
    /// How long to wait for a decision.
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
    /// Do not record this command's output.
    #[arg(long)]
    pub no_record: bool,
    /// Pin this host key (e.g. "ssh-ed25519 SHA256:…") if the host has none
    /// pinned and presents exactly this one (for scripts; a terminal asks).
    #[arg(long)]
    pub accept_host_key: Option<String>,
    /// Read the command from FILE (`-`: standard input) instead of after
    /// `--`: one device line per line, e.g. `configure terminal`, then
    /// `hostname R9`, then `end`. Each line is classified, the whole is one
    /// approval, and the lines run in order on one shell, stopping at the
    /// first line the device refuses.
    #[arg(long, value_name = "FILE")]
    pub script: Option<std::path::PathBuf>,
    /// The exact command, after `--` (a multi-line change: see --script).
    #[arg(
        last = true,
        required_unless_present = "script",
        conflicts_with = "script"
    )]
    pub command: Vec<String>,
}

/// The command text of `exec`: the words after `--`, or the lines of --script.
fn command_text(args: &ExecArgs) -> anyhow::Result<String> {
    let Some(path) = &args.script else {
        return Ok(args.command.join(" "));
    };
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the command lines from standard input")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the command lines from {}", path.display()))?;
    }
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        bail!("{} holds no command line", path.display());
    }
    Ok(lines.join("\n"))
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Host id, NAME or FOLDER/NAME.
    pub host: String,
    /// Organization name or id of the host.
    #[arg(long)]
    pub org: Option<String>,
    /// Pin this host key if the host has none pinned and presents exactly it.
    #[arg(long)]
    pub accept_host_key: Option<String>,
    /// When the host's organization asks for proof of presence before an
    /// interactive shell (org policy `connect_needs_presence`), read the
    /// account passphrase as the first line of stdin (the rest is typed
    /// into the shell) instead of from the terminal.
    #[arg(long)]
    pub passphrase_stdin: bool,
}

/// The broker's ticket for an interactive shell to `host` (see
/// `BrokerRequest::ShellTicket`): asks for the account passphrase when the
/// broker says the host's organization wants proof of presence. `None` when
/// the broker asks nothing, or the host is not in the local store (sessiond
/// then says so).
fn shell_ticket(
    layout: &Layout,
    b: &mut BrokerConn,
    host: &HostRef,
    passphrase_stdin: bool,
) -> anyhow::Result<Option<SecretBytes>> {
    let store = gatehouse_records::Store::open_in(layout)?;
    let scope = match host.org.as_deref() {
        None => None,
        Some("private") => Some(KeyScope::Private),
        Some(org) => Some(KeyScope::Org(crate::commands::org_id(b, org)?)),
    };
    let Ok(stored) = store.resolve(gatehouse_records::Kind::Host, scope.as_ref(), &host.host)
    else {
        return Ok(None);
    };
    let answer = crate::commands::with_presence(passphrase_stdin, |presence| {
        b.ask(BrokerRequest::ShellTicket {
            scope: stored.meta.scope.clone(),
            record_id: stored.meta.id.clone(),
            presence,
        })
    })?;
    match answer {
        BrokerResponse::ShellTicket(t) => Ok(t),
        other => bail!("unexpected broker response {other:?}"),
    }
}

/// A connection to sessiond with its own small runtime.
pub struct SessiondConn {
    rt: tokio::runtime::Runtime,
    client: Client<Sessiond>,
}

impl SessiondConn {
    pub fn connect(layout: &Layout) -> anyhow::Result<SessiondConn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = rt
            .block_on(Client::<Sessiond>::connect(
                &layout.runtime,
                DEFAULT_TIMEOUT,
            ))
            .context("sessiond is not running (start it with `gatehouse up`)")?;
        Ok(SessiondConn { rt, client })
    }

    pub fn call(
        &mut self,
        req: SessiondRequest,
    ) -> Result<SessiondResponse, CallError<SessiondError>> {
        self.rt.block_on(self.client.call(req))
    }

    /// The next event, waiting up to `wait`.
    pub fn next_event(&mut self, wait: Duration) -> anyhow::Result<Option<SessionEvent>> {
        Ok(self.rt.block_on(self.client.next_event(wait))?)
    }
}

/// Asks the person whether to pin `presented` (or checks `--accept-host-key`).
fn accept_host_key(host: &str, presented: &str, flag: Option<&str>) -> anyhow::Result<bool> {
    if let Some(want) = flag {
        if want.trim() == presented {
            return Ok(true);
        }
        bail!(
            "host {host} presented {presented}, not the key given with --accept-host-key ({want})"
        );
    }
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprintln!("The authenticity of host {host:?} cannot be established yet.");
    eprintln!("It presented the key {presented}.");
    eprint!("Check it out of band. Pin this key and connect? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Runs `call` (exec or shell start); on an unknown host key, asks, pins and retries once.
fn start_with_trust(
    profile: Option<&str>,
    s: &mut SessiondConn,
    host: &HostRef,
    flag: Option<&str>,
    req: impl Fn() -> SessiondRequest,
) -> anyhow::Result<SessiondResponse> {
    match s.call(req()) {
        Err(CallError::Remote(SessiondError::HostKeyUnknown {
            host: name,
            presented,
        })) => {
            if !accept_host_key(&name, &presented, flag)? {
                return Err(SessiondError::HostKeyUnknown {
                    host: name,
                    presented,
                }
                .into());
            }
            crate::records_cmds::pin_host_key(
                profile,
                &host.host,
                host.org.as_deref(),
                &presented,
            )?;
            eprintln!("pinned {presented} for {name}");
            Ok(s.call(req())?)
        }
        other => Ok(other?),
    }
}

fn prepare(s: &mut SessiondConn, host: &HostRef, command: &str) -> anyhow::Result<Prepared> {
    match s.call(SessiondRequest::Prepare {
        host: host.clone(),
        command: command.to_string(),
    })? {
        SessiondResponse::Prepared(p) => Ok(*p),
        other => bail!("unexpected sessiond response {other:?}"),
    }
}

/// Files an approval request for `prepared` and waits for the decision.
fn request_approval(
    layout: &Layout,
    prepared: &Prepared,
    args: &ExecArgs,
) -> anyhow::Result<Result<ApprovalToken, ExitCode>> {
    let mut b = BrokerConn::connect_layout(layout)?;
    // Sessiond and the broker have identified this process: from here on,
    // through the wait for a person, no same-uid program may ptrace it or
    // read its memory (it will hold the approval token).
    gatehouse_sandbox::boundary::make_non_dumpable()?;
    let mut action = prepared.action.clone();
    action.expected_effect = args.effect.clone();
    let id = match b.ask(BrokerRequest::RequestApproval { action })? {
        BrokerResponse::ApprovalRequested { id, .. } => id,
        other => bail!("unexpected broker response {other:?}"),
    };
    eprintln!(
        "approval request {id} filed: {} on {} is {} ({}).",
        prepared.action.command,
        prepared.action.host,
        prepared.class,
        prepared.reasons.join("; ")
    );
    eprintln!(
        "waiting for a person: gatehouse approvals show {id} / approve {id} [--edit NEW] / reject {id}"
    );
    wait_for_decision(&mut b, id, Duration::from_secs(args.wait_secs))
}

pub fn exec(profile: Option<&str>, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let mut s = SessiondConn::connect(&layout)?;
    let host = HostRef {
        host: args.host.clone(),
        org: args.org.clone(),
    };
    let mut command = command_text(args)?;
    let mut token = None;
    if args.request {
        let prepared = prepare(&mut s, &host, &command)?;
        if let Some(reason) = &prepared.blocked {
            // sessiond refuses it too, and writes the audit row: every
            // refusal is audited
            let _ = s.call(SessiondRequest::Exec {
                host: host.clone(),
                command: command.clone(),
                approval: None,
                record: false,
            });
            bail!("blocked by organization policy: {reason}");
        }
        if prepared.needs_approval {
            match request_approval(&layout, &prepared, args)? {
                Ok(t) => {
                    if t.action.command != command {
                        eprintln!(
                            "the person edited the command; running the approved one: {}",
                            t.action.command
                        );
                        command = t.action.command.clone();
                    }
                    eprintln!(
                        "approved by {} pid {} (request {})",
                        t.approver.role, t.approver.pid, t.approval_id
                    );
                    token = Some(Box::new(t));
                }
                Err(code) => return Ok(code),
            }
        } else {
            eprintln!("{command:?} is {}: no approval needed", prepared.class);
        }
    }
    let req = || SessiondRequest::Exec {
        host: host.clone(),
        command: command.clone(),
        approval: token.clone(),
        record: !args.no_record,
    };
    let started = start_with_trust(profile, &mut s, &host, args.accept_host_key.as_deref(), req)?;
    let SessiondResponse::Started { recording, .. } = started else {
        bail!("unexpected sessiond response {started:?}");
    };
    // Every connection is made and identified: from here on no same-uid
    // program may ptrace or read this process while it waits.
    gatehouse_sandbox::boundary::make_non_dumpable()?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    loop {
        match s.next_event(Duration::from_secs(3600))? {
            Some(SessionEvent::Output { data, .. }) => out.write_all(&data)?,
            Some(SessionEvent::Stderr { data, .. }) => err.write_all(&data)?,
            Some(SessionEvent::Exited { status, reason, .. }) => {
                out.flush()?;
                if let Some(r) = reason {
                    eprintln!("gatehouse: session ended: {r}");
                }
                if let Some(id) = recording {
                    tracing_hint(&id);
                }
                return Ok(match status {
                    Some(code) => ExitCode::from(code.min(255) as u8),
                    None => ExitCode::from(255),
                });
            }
            None => {}
        }
    }
}

fn tracing_hint(recording: &str) {
    if std::env::var_os("GATEHOUSE_QUIET").is_none() && std::io::stderr().is_terminal() {
        eprintln!("recorded as {recording} (gatehouse recordings play {recording})");
    }
}

/// Puts the terminal in raw mode and restores it on drop.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSADRAIN, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                saved,
            );
        }
    }
}

fn window_size() -> (u16, u16) {
    match terminal_size::terminal_size() {
        Some((terminal_size::Width(w), terminal_size::Height(h))) => (w, h),
        None => (80, 24),
    }
}

pub fn connect(profile: Option<&str>, args: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let layout = Layout::resolve(profile)?;
    let mut s = SessiondConn::connect(&layout)?;
    // Keystrokes and resizes go over a second connection of this process;
    // sessiond accepts them from the process that opened the session.
    let mut control = s.rt.block_on(Client::<Sessiond>::connect(
        &layout.runtime,
        DEFAULT_TIMEOUT,
    ))?;
    let mut b = BrokerConn::connect_layout(&layout)?;
    // Every connection is made and identified: from here on no same-uid
    // program may ptrace or read this process (it carries the passphrase,
    // the shell ticket and the keystrokes).
    gatehouse_sandbox::boundary::make_non_dumpable()?;
    let host = HostRef {
        host: args.host.clone(),
        org: args.org.clone(),
    };
    let ticket = shell_ticket(&layout, &mut b, &host, args.passphrase_stdin)?;
    drop(b);
    let (cols, rows) = window_size();
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
    let req = || SessiondRequest::OpenShell {
        host: host.clone(),
        cols,
        rows,
        term: term.clone(),
        presence_ticket: ticket.clone(),
    };
    let started = start_with_trust(profile, &mut s, &host, args.accept_host_key.as_deref(), req)?;
    let SessiondResponse::Started {
        session,
        recording,
        user,
        ..
    } = started
    else {
        bail!("unexpected sessiond response {started:?}");
    };
    eprintln!(
        "connected to {} as {user}; recorded as {}\r",
        args.host,
        recording.as_deref().unwrap_or("(not recorded)")
    );
    let SessiondConn { rt, client: events } = s;
    let raw = std::io::stdin().is_terminal().then(RawMode::enter);
    let result = rt.block_on(pump(events, &mut control, session));
    drop(raw);
    let (status, reason) = result?;
    if let Some(r) = reason {
        eprintln!("gatehouse: session ended: {r}");
    }
    Ok(match status {
        Some(code) => ExitCode::from(code.min(255) as u8),
        None => ExitCode::from(255),
    })
}

/// Moves bytes between the terminal and the session until it ends.
async fn pump(
    mut events: Client<Sessiond>,
    control: &mut Client<Sessiond>,
    session: u64,
) -> anyhow::Result<(Option<u32>, Option<String>)> {
    let (stdin_tx, mut stdin_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdin_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel::<SessionEvent>(64);
    let reader = tokio::spawn(async move {
        events.set_timeout(Duration::from_secs(24 * 3600));
        while let Ok(e) = events.next_event(Duration::from_secs(3600)).await {
            if let Some(e) = e
                && ev_tx.send(e).await.is_err()
            {
                break;
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut out = std::io::stdout();
    let mut stdin_open = true;
    let result = loop {
        tokio::select! {
            e = ev_rx.recv() => match e {
                Some(SessionEvent::Output { data, .. } | SessionEvent::Stderr { data, .. }) => {
                    out.write_all(&data)?;
                    out.flush()?;
                }
                Some(SessionEvent::Exited { status, reason, .. }) => break (status, reason),
                None => break (None, Some("sessiond went away".into())),
            },
            input = stdin_rx.recv(), if stdin_open => match input {
                Some(data) => {
                    control.call(SessiondRequest::Input { session, data: SecretBytes::new(data) }).await?;
                }
                None => stdin_open = false,
            },
            _ = winch.recv() => {
                let (cols, rows) = window_size();
                control.call(SessiondRequest::Resize { session, cols, rows }).await?;
            }
        }
    };
    reader.abort();
    Ok(result)
}
