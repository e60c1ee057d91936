//! Terminal tabs: interactive SSH shells through sessiond, drawn with
//! [`crate::term_grid::TermGrid`].
//!
//! Owns: the open tabs (host, login user, whether sessiond records the
//! session, how it ended), opening a shell (the broker's shell ticket
//! first, with the account passphrase typed into the tab's prompt when the
//! host's organization asks for presence; then `OpenShell` as a
//! [`Watch`] whose replies are the shell's output), sending keystrokes,
//! pastes, terminal answers and window sizes (`Input`/`Resize` on a second
//! connection of this process, in order), closing (`Close`), the tab
//! shortcuts, and the search bar over a tab's scrollback (Ctrl+Shift+F: what
//! is typed while it is open goes to the search, not to the shell). Every failure (no such host, host key not pinned, credential
//! refused, sessiond not running) is shown in the tab it happened in.
//!
//! Must never: hold a device credential (sessiond gets it from the broker),
//! keep a passphrase once its ticket request is made, open a shell the
//! broker asked presence for without the passphrase, pin a host key (the person does that knowingly with the CLI), or keep a
//! tab's screen or keystrokes after sign-out: `clear()` drops every tab, and
//! dropping a tab ends its watch, which closes the session.

use std::time::Duration;

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{BrokerError, BrokerRequest, BrokerResponse};
use gatehouse_ipc::client::Client;
use gatehouse_ipc::sessiond::{HostRef, SessionEvent, Sessiond, SessiondRequest, SessiondResponse};
use iced::futures::stream::BoxStream;
use iced::futures::{SinkExt, StreamExt};
use iced::keyboard::{self, Key, Modifiers, key::Named};
use iced::widget::{button, column, container, row, text, text_input};
use iced::{Element, Fill};

use crate::app::Effect;
use crate::daemons::{self, DaemonError, Daemons, daemon_connect, daemon_error};
use crate::term_grid::{GridEvent, TermGrid, key_bytes, paste_bytes};

/// The "open a host" field.
pub const HOST_ID: &str = "terminal-host";
/// Not a focusable widget: focusing it takes the focus off the host field,
/// so typing goes to the terminal.
pub const GRID_ID: &str = "terminal-grid";
/// The terminal type sessiond asks the device for.
pub const TERM: &str = "xterm-256color";

/// The way keystrokes reach a running shell: a queue the shell's watch
/// sends in order on its control connection. Dropping every copy ends the
/// watch and closes the session.
#[derive(Clone)]
pub struct Control(tokio::sync::mpsc::UnboundedSender<ControlMsg>);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

#[derive(Debug)]
enum ControlMsg {
    Input(SecretBytes),
    Resize(u16, u16),
}

/// Where a tab is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabState {
    Opening,
    Live,
    /// The session ended (exit status or reason).
    Ended(String),
    /// It never started (why, readable).
    Failed(String),
}

#[derive(Debug)]
pub struct TermTab {
    pub id: u64,
    /// What was asked for (record id or name).
    pub host: String,
    /// The host's name (once known).
    pub name: String,
    pub user: Option<String>,
    /// The recording's id when sessiond records this session.
    pub recording: Option<String>,
    pub host_key: Option<String>,
    pub session: Option<u64>,
    pub state: TabState,
    pub grid: TermGrid,
    /// The search bar's text while it is open (Ctrl+Shift+F).
    pub search: Option<String>,
    /// The last failure sending keystrokes or a size.
    pub notice: Option<String>,
    /// While opening: the passphrase prompt (the broker asked presence for
    /// a shell to this host: its org's policy says `connect_needs_presence`).
    pub presence: Option<crate::presence::Prompt>,
    control: Option<Control>,
}

impl TermTab {
    /// The tab's label: host, user, ● REC, and how it ended.
    pub fn label(&self) -> String {
        let mut s = self.title();
        if self.recording.is_some() {
            s.push_str(" ● REC");
        }
        s
    }

    /// The label without the recording indicator (drawn apart, in red).
    pub fn title(&self) -> String {
        let mut s = self.name.clone();
        if let Some(u) = &self.user {
            s.push_str(&format!(" · {u}"));
        }
        match &self.state {
            TabState::Opening => s.push_str(" (connecting…)"),
            TabState::Live => {}
            TabState::Ended(_) => s.push_str(" (ended)"),
            TabState::Failed(_) => s.push_str(" (failed)"),
        }
        s
    }

    fn send(&mut self, c: ControlMsg) {
        if self.state != TabState::Live {
            return;
        }
        if let Some(ctl) = &self.control
            && ctl.0.send(c).is_err()
        {
            self.notice = Some("the session's connection to sessiond is gone".into());
        }
    }

    fn input(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.send(ControlMsg::Input(SecretBytes::new(bytes)));
        }
    }
}

#[derive(Debug)]
pub struct Terminals {
    pub tabs: Vec<TermTab>,
    /// Index of the shown tab.
    pub active: usize,
    /// The host field.
    pub host_field: String,
    /// The grid size the terminal area fits (columns, rows).
    pub size: (u16, u16),
    /// Tab ids are never reused, not even after sign-out: a late reply
    /// of a dropped tab finds no tab.
    next_id: u64,
    /// The cells' font size (the settings' font size), for every tab.
    font_size: f32,
}

impl Default for Terminals {
    fn default() -> Self {
        Terminals {
            tabs: Vec::new(),
            active: 0,
            host_field: String::new(),
            size: (120, 36),
            next_id: 1,
            font_size: crate::term_grid::FONT_SIZE,
        }
    }
}

impl Terminals {
    /// Every tab, open and future, draws its cells at `size` pixels.
    pub fn set_font_size(&mut self, size: f32) {
        self.font_size = size;
        for t in &mut self.tabs {
            t.grid.set_font_size(size);
        }
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Open a shell to this host (its record id or name) in a new tab.
    /// Other screens ask for it with `Effect::Then` (a host's Connect, a
    /// diagram node).
    Open {
        host: String,
    },
    HostField(String),
    /// Open the host typed in the field.
    OpenTyped,
    /// Focus the host field (Ctrl+Shift+T).
    FocusHost,
    Select(u64),
    Next,
    Previous,
    Close(u64),
    CloseActive,
    Grid(u64, GridEvent),
    /// Open the shown tab's search bar (Ctrl+Shift+F).
    SearchOpen,
    /// The search bar's text changed.
    SearchText(String),
    /// Select the next older (true) or newer match (Enter, Shift+Enter).
    SearchStep(bool),
    /// Close the search bar (Esc).
    SearchClose,
    /// The passphrase prompt of tab `.0` (opening a shell the broker asked
    /// presence for).
    Presence(u64, crate::presence::Message),
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
/// None: keystrokes go through the shell's [`Control`] so they stay in order.
#[derive(Debug, Clone)]
pub enum Call {}

#[derive(Debug, Clone)]
pub enum Reply {
    Started {
        tab: u64,
        session: u64,
        name: String,
        user: String,
        recording: Option<String>,
        host_key: String,
        control: Control,
    },
    Failed {
        tab: u64,
        error: String,
    },
    /// The broker wants the account passphrase before it gives the shell
    /// ticket (`why`, its words); `refused`: why it refused the one sent.
    PresenceRequired {
        tab: u64,
        why: String,
        refused: Option<String>,
    },
    Output {
        tab: u64,
        data: Vec<u8>,
    },
    Ended {
        tab: u64,
        status: Option<u32>,
        reason: Option<String>,
    },
    /// Sending keystrokes or a size failed (the session may go on).
    Notice {
        tab: u64,
        error: String,
    },
}

/// Long-lived streams this screen asks for (see [`crate::daemons::Watch`]).
#[derive(Debug, Clone)]
pub enum Watch {
    /// Opens a shell to `host` for tab `tab` and streams its output;
    /// `presence` is the passphrase typed into the tab's prompt (moved into
    /// the ticket request, dropped with it).
    Shell {
        tab: u64,
        host: String,
        cols: u16,
        rows: u16,
        presence: Option<SecretBytes>,
    },
}

/// Runs one [`Watch`] as a stream of replies.
pub fn watch(d: Daemons, w: Watch) -> BoxStream<'static, daemons::Reply> {
    match w {
        Watch::Shell {
            tab,
            host,
            cols,
            rows,
            presence,
        } => iced::stream::channel(
            64,
            async move |out: iced::futures::channel::mpsc::Sender<daemons::Reply>| {
                shell(d, tab, host, cols, rows, presence, out).await;
            },
        )
        .boxed(),
    }
}

/// Runs one [`Call`].
pub async fn run(_d: Daemons, c: Call) -> Reply {
    match c {}
}

type Out = iced::futures::channel::mpsc::Sender<daemons::Reply>;

async fn say(out: &mut Out, r: Reply) -> bool {
    out.send(daemons::Reply::Terminal(r)).await.is_ok()
}

/// The host's name for the tab label (`host` may be a record id).
async fn display_name(d: &Daemons, host: &str) -> String {
    let layout = d.layout().clone();
    let rows = tokio::task::spawn_blocking(move || daemons::load_hosts(&layout))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    rows.iter()
        .find(|r| r.id == host)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| host.to_string())
}

/// A shell sessiond opened: its event connection, the control connection,
/// and what `Started` said.
struct Opened {
    events: Client<Sessiond>,
    control: Client<Sessiond>,
    session: u64,
    user: String,
    recording: Option<String>,
    host_key: String,
}

/// Why the broker gave no shell ticket.
enum NoTicket {
    /// It wants the account passphrase (its reason).
    PresenceRequired(String),
    /// Anything else (a wrong passphrase, the throttle, signed out, …).
    Refused(String),
}

/// The broker's shell ticket for `host` (`BrokerRequest::ShellTicket`, as
/// `gatehouse connect` asks it): `None` when its org asks no presence, or
/// when the host is not in the store (sessiond then says what is wrong).
/// `presence` is dropped (zeroized) with the request.
async fn shell_ticket(
    d: &Daemons,
    host: &str,
    presence: Option<SecretBytes>,
) -> Result<Option<SecretBytes>, NoTicket> {
    let layout = d.layout().clone();
    let key = host.to_string();
    let record = tokio::task::spawn_blocking(move || {
        let store = gatehouse_records::Store::open_in(&layout).ok()?;
        let stored = store
            .resolve(gatehouse_records::model::Kind::Host, None, &key)
            .ok()?;
        Some((stored.meta.scope, stored.meta.id))
    })
    .await
    .ok()
    .flatten();
    let Some((scope, record_id)) = record else {
        return Ok(None);
    };
    let req = BrokerRequest::ShellTicket {
        scope,
        record_id,
        presence,
    };
    match daemons::broker_call(d, req).await {
        Ok(BrokerResponse::ShellTicket(t)) => Ok(t),
        Ok(other) => Err(NoTicket::Refused(format!("the broker answered {other:?}"))),
        Err(DaemonError::Broker(BrokerError::PresenceRequired { why })) => {
            Err(NoTicket::PresenceRequired(why))
        }
        Err(e) => Err(NoTicket::Refused(e.to_string())),
    }
}

/// Opens a shell to `host` with the broker's `ticket`; the error as a
/// person reads it.
async fn open_shell(
    d: &Daemons,
    host: &str,
    cols: u16,
    rows: u16,
    ticket: Option<SecretBytes>,
) -> Result<Opened, String> {
    let mut events = daemon_connect::<Sessiond>(d)
        .await
        .map_err(|e| e.to_string())?;
    // Keystrokes and sizes go over a second connection of this process
    // (sessiond accepts them from the process that opened the session).
    let control = daemon_connect::<Sessiond>(d)
        .await
        .map_err(|e| e.to_string())?;
    let started = events
        .call(SessiondRequest::OpenShell {
            host: HostRef {
                host: host.to_string(),
                org: None,
            },
            cols,
            rows,
            term: TERM.into(),
            presence_ticket: ticket,
        })
        .await
        .map_err(|e| daemon_error::<Sessiond>(e).to_string())?;
    match started {
        SessiondResponse::Started {
            session,
            recording,
            host_key,
            user,
            ..
        } => Ok(Opened {
            events,
            control,
            session,
            user,
            recording,
            host_key,
        }),
        other => Err(format!("sessiond answered {other:?}")),
    }
}

/// A shell's life: open it, forward its output, send what the tab queues
/// (in order, on a second connection), close it when the tab is dropped.
async fn shell(
    d: Daemons,
    tab: u64,
    host: String,
    cols: u16,
    rows: u16,
    presence: Option<SecretBytes>,
    mut out: Out,
) {
    let name = display_name(&d, &host).await;
    let sent = presence.is_some();
    let ticket = match shell_ticket(&d, &host, presence).await {
        Ok(t) => t,
        Err(NoTicket::PresenceRequired(why)) => {
            say(
                &mut out,
                Reply::PresenceRequired {
                    tab,
                    why,
                    refused: None,
                },
            )
            .await;
            return;
        }
        // A passphrase was sent and refused: the prompt says why, asks again.
        Err(NoTicket::Refused(error)) if sent => {
            say(
                &mut out,
                Reply::PresenceRequired {
                    tab,
                    why: String::new(),
                    refused: Some(error),
                },
            )
            .await;
            return;
        }
        Err(NoTicket::Refused(error)) => {
            say(&mut out, Reply::Failed { tab, error }).await;
            return;
        }
    };
    let Opened {
        mut events,
        mut control,
        session,
        user,
        recording,
        host_key,
    } = match open_shell(&d, &host, cols, rows, ticket).await {
        Ok(o) => o,
        Err(error) => {
            say(&mut out, Reply::Failed { tab, error }).await;
            return;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Reply::Started {
        tab,
        session,
        name,
        user,
        recording,
        host_key,
        control: Control(tx),
    };
    if !say(&mut out, started).await {
        let _ = control.call(SessiondRequest::Close { session }).await;
        return;
    }
    events.set_timeout(Duration::from_secs(24 * 3600));
    let mut reader_out = out.clone();
    let reader = async move {
        loop {
            match events.next_event(Duration::from_secs(3600)).await {
                Ok(Some(SessionEvent::Output { data, .. } | SessionEvent::Stderr { data, .. })) => {
                    if !say(&mut reader_out, Reply::Output { tab, data }).await {
                        return None;
                    }
                }
                Ok(Some(SessionEvent::Exited { status, reason, .. })) => {
                    return Some((status, reason));
                }
                Ok(None) => {}
                Err(e) => return Some((None, Some(format!("connection to sessiond lost: {e}")))),
            }
        }
    };
    let mut writer_out = out.clone();
    let writer = async move {
        while let Some(c) = rx.recv().await {
            let req = match c {
                ControlMsg::Input(data) => SessiondRequest::Input { session, data },
                ControlMsg::Resize(cols, rows) => SessiondRequest::Resize {
                    session,
                    cols,
                    rows,
                },
            };
            if let Err(e) = control.call(req).await {
                let error = daemon_error::<Sessiond>(e).to_string();
                if !say(&mut writer_out, Reply::Notice { tab, error }).await {
                    break;
                }
            }
        }
        // The tab is gone (closed, or sign-out): close the session.
        let _ = control.call(SessiondRequest::Close { session }).await;
    };
    // The writer runs on its own task: it ends (closing the session) when
    // the tab drops its Control; it is stopped when the session ended.
    let writer = tokio::spawn(writer);
    let ended = reader.await;
    writer.abort();
    if let Some((status, reason)) = ended {
        say(
            &mut out,
            Reply::Ended {
                tab,
                status,
                reason,
            },
        )
        .await;
    }
}

/// How a session's end reads.
fn ended(status: Option<u32>, reason: Option<String>) -> String {
    match (status, reason) {
        (_, Some(r)) => format!("session ended: {r}"),
        (Some(s), None) => format!("session ended: exit status {s}"),
        (None, None) => "session ended".into(),
    }
}

impl Terminals {
    fn tab_mut(&mut self, id: u64) -> Option<&mut TermTab> {
        self.tabs.iter_mut().find(|t| t.id == id)
    }

    /// The shown tab.
    pub fn current(&self) -> Option<&TermTab> {
        self.tabs.get(self.active)
    }

    fn current_mut(&mut self) -> Option<&mut TermTab> {
        self.tabs.get_mut(self.active)
    }

    /// The tab with this id.
    /// The hosts (as asked for, and by name) with a session opening or
    /// live: the hosts list marks them.
    pub fn open_hosts(&self) -> std::collections::BTreeSet<String> {
        self.tabs
            .iter()
            .filter(|t| matches!(t.state, TabState::Opening | TabState::Live))
            .flat_map(|t| [t.host.clone(), t.name.clone()])
            .filter(|h| !h.is_empty())
            .collect()
    }

    pub fn tab(&self, id: u64) -> Option<&TermTab> {
        self.tabs.iter().find(|t| t.id == id)
    }

    fn open(&mut self, host: String) -> Vec<Effect> {
        let host = host.trim().to_string();
        if host.is_empty() {
            return vec![Effect::Focus(HOST_ID)];
        }
        let id = self.next_id;
        self.next_id += 1;
        let (cols, rows) = self.size;
        self.tabs.push(TermTab {
            id,
            host: host.clone(),
            name: host.clone(),
            user: None,
            recording: None,
            host_key: None,
            session: None,
            state: TabState::Opening,
            grid: {
                let mut g = TermGrid::new(cols, rows);
                g.set_font_size(self.font_size);
                g
            },
            search: None,
            notice: None,
            presence: None,
            control: None,
        });
        self.active = self.tabs.len() - 1;
        vec![
            show_screen(),
            Effect::Watch(daemons::Watch::Terminal(Watch::Shell {
                tab: id,
                host,
                cols,
                rows,
                presence: None,
            })),
            Effect::Focus(GRID_ID),
        ]
    }

    /// A message of tab `id`'s passphrase prompt: Enter asks the broker
    /// again with the passphrase; Escape gives up (nothing is opened).
    fn presence(&mut self, id: u64, m: crate::presence::Message) -> Vec<Effect> {
        let (cols, rows) = self.size;
        let Some(t) = self.tab_mut(id) else {
            return vec![];
        };
        let Some(prompt) = t.presence.as_mut() else {
            return vec![];
        };
        match prompt.update(m) {
            crate::presence::Outcome::None => vec![],
            crate::presence::Outcome::Cancelled => {
                t.presence = None;
                t.state = TabState::Failed(
                    "the account passphrase was not given (its organization asks for proof of presence)"
                        .into(),
                );
                vec![]
            }
            crate::presence::Outcome::Send(presence) => {
                vec![Effect::Watch(daemons::Watch::Terminal(Watch::Shell {
                    tab: id,
                    host: t.host.clone(),
                    cols,
                    rows,
                    presence: Some(presence),
                }))]
            }
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(i) = self.tabs.iter().position(|t| t.id == id) {
            // Dropping the tab drops its Control: the watch closes the session.
            self.tabs.remove(i);
            if self.active > i || self.active >= self.tabs.len() {
                self.active = self.active.saturating_sub(1);
            }
        }
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Open { host } => return self.open(host),
            Message::HostField(s) => self.host_field = s,
            Message::OpenTyped => {
                let host = std::mem::take(&mut self.host_field);
                return self.open(host);
            }
            Message::FocusHost => return vec![show_screen(), Effect::Focus(HOST_ID)],
            Message::Select(id) => {
                if let Some(i) = self.tabs.iter().position(|t| t.id == id) {
                    self.active = i;
                }
                return vec![Effect::Focus(GRID_ID)];
            }
            Message::Next => {
                if !self.tabs.is_empty() {
                    self.active = (self.active + 1) % self.tabs.len();
                }
            }
            Message::Previous => {
                if !self.tabs.is_empty() {
                    self.active = (self.active + self.tabs.len() - 1) % self.tabs.len();
                }
            }
            Message::Close(id) => self.close(id),
            Message::CloseActive => {
                if let Some(id) = self.current().map(|t| t.id) {
                    self.close(id);
                }
            }
            Message::Grid(id, e) => self.grid_event(id, e),
            Message::SearchOpen => {
                if let Some(t) = self.current_mut() {
                    t.search.get_or_insert_with(String::new);
                }
                return vec![show_screen(), Effect::Focus(GRID_ID)];
            }
            Message::SearchText(q) => {
                if let Some(t) = self.current_mut()
                    && t.search.is_some()
                {
                    t.grid.search_for(&q);
                    t.search = Some(q);
                }
            }
            Message::SearchStep(older) => {
                if let Some(t) = self.current_mut() {
                    t.grid.search_step(older);
                }
            }
            Message::SearchClose => {
                if let Some(t) = self.current_mut() {
                    t.search = None;
                    t.grid.search_clear();
                }
            }
            Message::Presence(id, m) => return self.presence(id, m),
        }
        vec![]
    }

    /// A key while the shown tab's search bar is open: it edits the search
    /// (Enter / Shift+Enter step through the matches, Esc closes); nothing
    /// reaches the shell. `None`: the app's shortcuts.
    fn search_key(&mut self, key: &Key, m: Modifiers, text: Option<&str>) -> Option<Vec<Effect>> {
        let query = self.current()?.search.clone()?;
        let msg = match key {
            Key::Named(Named::Escape) => Message::SearchClose,
            Key::Named(Named::Enter) => Message::SearchStep(!m.shift()),
            Key::Named(Named::Backspace) => {
                let mut q = query;
                q.pop();
                Message::SearchText(q)
            }
            _ if m.control() || m.alt() => {
                // Ctrl+Shift+F again: already open. The app's own
                // shortcuts (Ctrl+1…9, Ctrl+Shift+letters) go on.
                if let Key::Character(c) = key
                    && (c.parse::<u8>().is_ok() || m.shift())
                    && !c.eq_ignore_ascii_case("f")
                {
                    return None;
                }
                return Some(vec![]);
            }
            _ => match text.filter(|t| !t.is_empty() && !t.chars().any(char::is_control)) {
                Some(t) => Message::SearchText(query + t),
                None => return Some(vec![]),
            },
        };
        Some(self.update(msg))
    }

    fn grid_event(&mut self, id: u64, e: GridEvent) {
        if let GridEvent::Resize { cols, rows } = e {
            self.size = (cols, rows);
        }
        let Some(t) = self.tab_mut(id) else {
            return;
        };
        match e {
            GridEvent::Scroll(n) => t.grid.scroll(n),
            GridEvent::Page(up) => t.grid.page(up),
            GridEvent::SelectStart { line, col } => t.grid.select_start(line, col),
            GridEvent::SelectTo { line, col } => t.grid.select_to(line, col),
            GridEvent::Paste(s) if t.search.is_some() => {
                // A paste while searching goes to the search (its first line).
                let mut q = t.search.clone().unwrap_or_default();
                q.push_str(s.lines().next().unwrap_or(""));
                t.grid.search_for(&q);
                t.search = Some(q);
            }
            GridEvent::Paste(s) => {
                let bytes = paste_bytes(&s, t.grid.bracketed_paste());
                t.grid.scroll_to_bottom();
                t.input(bytes);
            }
            GridEvent::Resize { cols, rows } => {
                t.grid.resize(cols, rows);
                t.send(ControlMsg::Resize(cols, rows));
            }
        }
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Started {
                tab,
                session,
                name,
                user,
                recording,
                host_key,
                control,
            } => {
                let size = self.size;
                if let Some(t) = self.tab_mut(tab) {
                    t.presence = None;
                    t.session = Some(session);
                    t.name = name;
                    t.user = Some(user);
                    t.recording = recording;
                    t.host_key = Some(host_key);
                    t.control = Some(control);
                    t.state = TabState::Live;
                    // The area may have changed while it opened.
                    if t.grid.size() != size {
                        t.grid.resize(size.0, size.1);
                        t.send(ControlMsg::Resize(size.0, size.1));
                    }
                }
            }
            Reply::Failed { tab, error } => {
                if let Some(t) = self.tab_mut(tab) {
                    t.presence = None;
                    t.state = TabState::Failed(error);
                }
            }
            Reply::PresenceRequired { tab, why, refused } => {
                if let Some(t) = self.tab_mut(tab) {
                    match (t.presence.as_mut(), refused) {
                        (Some(prompt), Some(e)) => prompt.refused(e),
                        (_, refused) => {
                            let mut prompt = crate::presence::Prompt::new(why);
                            prompt.error = refused;
                            t.presence = Some(prompt);
                        }
                    }
                    return vec![Effect::Focus(crate::presence::PROMPT_ID)];
                }
            }
            Reply::Output { tab, data } => {
                if let Some(t) = self.tab_mut(tab) {
                    t.grid.feed(&data);
                    let answers = t.grid.take_answers();
                    t.input(answers);
                }
            }
            Reply::Ended {
                tab,
                status,
                reason,
            } => {
                if let Some(t) = self.tab_mut(tab) {
                    t.state = TabState::Ended(ended(status, reason));
                    t.control = None;
                }
            }
            Reply::Notice { tab, error } => {
                if let Some(t) = self.tab_mut(tab) {
                    t.notice = Some(error);
                }
            }
        }
        vec![]
    }

    /// A key pressed while the Terminals screen is shown (and no field took
    /// it). `None`: not this screen's (the app's shortcuts: Ctrl+1…9,
    /// Ctrl+Shift+letters); otherwise what it did.
    pub fn key(&mut self, e: &keyboard::Event) -> Option<Vec<Effect>> {
        let keyboard::Event::KeyPressed {
            key,
            modifiers,
            text,
            ..
        } = e
        else {
            return None;
        };
        let m = *modifiers;
        // The shown tab asks for the passphrase: Enter sends, Escape gives up;
        // the app's shortcuts go on, nothing else reaches anything.
        if let Some(id) = self
            .current()
            .filter(|t| t.presence.is_some())
            .map(|t| t.id)
        {
            use crate::presence::Message as P;
            return match key {
                Key::Named(Named::Enter) => Some(self.update(Message::Presence(id, P::Submit))),
                Key::Named(Named::Escape) => Some(self.update(Message::Presence(id, P::Cancel))),
                _ => shortcut(key, m).map(|msg| self.update(msg)),
            };
        }
        if let Some(msg) = shortcut(key, m) {
            return Some(self.update(msg));
        }
        if let Some(effects) = self.search_key(key, m, text.as_deref()) {
            return Some(effects);
        }
        if self.current().is_some_and(|t| t.search.is_some()) {
            return None;
        }
        // The app's shortcuts: Ctrl+1…9, and every Ctrl+Shift+letter this
        // screen does not use (Ctrl+Shift+Q sign out, Ctrl+Shift+L theme,
        // Ctrl+Shift+D split…; a shell reads Ctrl+Shift+D as Ctrl+D, which
        // would log it out).
        if m.command()
            && let Key::Character(c) = key
            && (c.parse::<u8>().is_ok() || m.shift())
        {
            return None;
        }
        let t = self.current_mut()?;
        if t.state != TabState::Live {
            return None;
        }
        let bytes = key_bytes(key, m, text.as_deref(), t.grid.app_cursor())?;
        t.grid.scroll_to_bottom();
        t.grid.clear_selection();
        t.input(bytes);
        Some(vec![])
    }

    /// Sign-out that keeps the scrollback (the person's `sign-out.scrollback`
    /// is off): every session closes (its control dropped) and its tab
    /// stays, ended with `why`, its screen readable; nothing more is sent.
    pub fn end_all(&mut self, why: &str) {
        for t in &mut self.tabs {
            t.control = None;
            if matches!(t.state, TabState::Opening | TabState::Live) {
                t.state = TabState::Ended(format!("session ended: {why}"));
            }
        }
    }

    /// Forgets everything shown (sign-out): every tab, its screen and its
    /// session (dropping a tab's control closes the session).
    pub fn clear(&mut self) {
        let next_id = self.next_id;
        *self = Terminals {
            next_id,
            ..Terminals::default()
        };
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut bar = row![].spacing(6).align_y(iced::Center);
        for (i, t) in self.tabs.iter().enumerate() {
            let mut label = row![text(t.title()).size(13).font(crate::MONO)]
                .spacing(6)
                .align_y(iced::Center);
            if t.recording.is_some() {
                label = label.push(text("● REC").size(13).style(text::danger));
            }
            let b = button(label).on_press(Message::Select(t.id));
            let b = if i == self.active {
                b.style(button::secondary)
            } else {
                b.style(button::text)
            };
            bar = bar.push(b).push(
                button(text("×").size(13))
                    .style(button::text)
                    .on_press(Message::Close(t.id)),
            );
        }
        let bar = bar.wrap();
        let open = row![
            text_input("Host name or id", &self.host_field)
                .id(HOST_ID)
                .on_input(Message::HostField)
                .on_submit(Message::OpenTyped)
                .width(280),
            button(text("Open (Enter)").size(13)).on_press(Message::OpenTyped),
        ]
        .spacing(6)
        .align_y(iced::Center);
        let body: Element<'_, Message> = match self.current() {
            None => container(text(
                "No terminal open. Type a host and press Enter, or use Connect on the Hosts screen.",
            ))
            .padding(12)
            .into(),
            Some(t) => {
                let mut status = column![].spacing(2);
                match &t.state {
                    TabState::Opening if t.presence.is_some() => {
                        status = status.push(
                            text(format!(
                                "Not connected to {}: waiting for the account passphrase",
                                t.name
                            ))
                            .size(13),
                        );
                    }
                    TabState::Opening => {
                        status = status.push(text(format!("Connecting to {}…", t.name)).size(13));
                    }
                    TabState::Live => {
                        let rec = match &t.recording {
                            Some(r) => text(format!("● REC: sessiond records this session ({r})"))
                                .size(12)
                                .style(text::danger),
                            None => text("not recorded").size(12),
                        };
                        status = status.push(
                            row![
                                text(format!(
                                    "{} as {} · host key {}",
                                    t.name,
                                    t.user.as_deref().unwrap_or("?"),
                                    t.host_key.as_deref().unwrap_or("")
                                ))
                                .size(12),
                                rec
                            ]
                            .spacing(12),
                        );
                    }
                    TabState::Ended(why) => {
                        status = status.push(text(why.clone()).size(13).style(text::secondary));
                    }
                    TabState::Failed(why) => {
                        status = status.push(
                            text(format!("Could not open a shell to {}: {why}", t.host))
                                .size(13)
                                .style(text::danger),
                        );
                    }
                }
                if let Some(n) = &t.notice {
                    status = status.push(text(n.clone()).size(12).style(text::danger));
                }
                let id = t.id;
                if let Some(prompt) = &t.presence {
                    let prompt = prompt
                        .view("Open shell")
                        .map(move |m| Message::Presence(id, m));
                    return column![
                        row![bar, iced::widget::space::horizontal(), open]
                            .spacing(8)
                            .align_y(iced::Center),
                        status,
                        prompt,
                    ]
                    .spacing(6)
                    .height(Fill)
                    .into();
                }
                let mut body = column![status].spacing(4).height(Fill);
                if let Some(q) = &t.search {
                    body = body.push(search_bar(q, t.grid.search_status()));
                }
                body.push(t.grid.view(move |e| Message::Grid(id, e))).into()
            }
        };
        column![
            row![bar, iced::widget::space::horizontal(), open]
                .spacing(8)
                .align_y(iced::Center),
            body,
        ]
        .spacing(6)
        .height(Fill)
        .into()
    }
}

/// The search bar over a tab's terminal: what is searched for (typed
/// while the bar is open), which match is selected of how many, and the
/// keys.
fn search_bar<'a>(query: &str, (current, total): (Option<usize>, usize)) -> Element<'a, Message> {
    let field = container(text(format!("{query}▏")).size(13).font(crate::MONO))
        .padding([2, 6])
        .width(280)
        .style(container::bordered_box);
    let count = match (query.is_empty(), current, total) {
        (true, _, _) => text("type to search the screen and scrollback").size(12),
        (false, _, 0) => text("no match").size(12).style(text::danger),
        (false, Some(i), n) => text(format!("{i} of {n}")).size(12),
        (false, None, n) => text(format!("{n} matches")).size(12),
    };
    row![
        text("Find").size(13),
        field,
        count,
        iced::widget::space::horizontal(),
        button(text("Older (Enter)").size(12))
            .style(button::text)
            .on_press(Message::SearchStep(true)),
        button(text("Newer (Shift+Enter)").size(12))
            .style(button::text)
            .on_press(Message::SearchStep(false)),
        button(text("Close (Esc)").size(12))
            .style(button::text)
            .on_press(Message::SearchClose),
    ]
    .spacing(8)
    .align_y(iced::Center)
    .into()
}

/// Switches the app to the Terminals screen.
fn show_screen() -> Effect {
    Effect::Then(Box::new(crate::app::Message::Tab(
        crate::app::Tab::Terminals,
    )))
}

/// This screen's own shortcuts (chosen not to collide with what a shell
/// reads: Ctrl+Shift combinations, Ctrl+Tab).
fn shortcut(key: &Key, m: Modifiers) -> Option<Message> {
    if !m.control() {
        return None;
    }
    match key {
        Key::Named(Named::Tab) => Some(if m.shift() {
            Message::Previous
        } else {
            Message::Next
        }),
        Key::Named(Named::PageUp) if m.shift() => Some(Message::Previous),
        Key::Named(Named::PageDown) if m.shift() => Some(Message::Next),
        Key::Character(c) if m.shift() => match c.to_ascii_lowercase().as_str() {
            "t" => Some(Message::FocusHost),
            "w" => Some(Message::CloseActive),
            "f" => Some(Message::SearchOpen),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The passphrase prompt of a tab on the screen state alone (the real
    //! window is driven in tests/tests/boundary.rs).
    use super::*;
    use crate::presence::Message as P;

    fn enter() -> keyboard::Event {
        keyboard::Event::KeyPressed {
            key: Key::Named(Named::Enter),
            modified_key: Key::Named(Named::Enter),
            physical_key: keyboard::key::Physical::Unidentified(
                keyboard::key::NativeCode::Unidentified,
            ),
            location: keyboard::Location::Standard,
            modifiers: Modifiers::empty(),
            text: None,
            repeat: false,
        }
    }

    #[test]
    fn a_tab_the_broker_asks_presence_for_opens_only_with_the_passphrase() {
        let mut t = Terminals::default();
        t.update(Message::Open { host: "sw1".into() });
        let id = t.tabs[0].id;
        let effects = t.replied(Reply::PresenceRequired {
            tab: id,
            why: "an interactive shell to a host of this organization".into(),
            refused: None,
        });
        assert!(
            matches!(effects.as_slice(), [Effect::Focus(f)] if *f == crate::presence::PROMPT_ID)
        );
        assert_eq!(t.tabs[0].state, TabState::Opening);
        // Enter with nothing typed: nothing is asked.
        assert_eq!(t.key(&enter()).map(|e| e.len()), Some(0));
        t.update(Message::Presence(id, P::Passphrase("typed-here".into())));
        assert!(!format!("{:?}", t.tabs[0]).contains("typed-here"));
        // Enter: the shell is asked for again, with the passphrase, once.
        let effects = t.key(&enter()).unwrap_or_default();
        let [
            Effect::Watch(daemons::Watch::Terminal(Watch::Shell {
                tab,
                presence: Some(p),
                ..
            })),
        ] = effects.as_slice()
        else {
            panic!("no shell with presence: {effects:?}");
        };
        assert_eq!((*tab, p.expose()), (id, &b"typed-here"[..]));
        assert!(t.key(&enter()).unwrap_or_default().is_empty());
        // A wrong one: the broker's refusal is shown in the prompt.
        t.replied(Reply::PresenceRequired {
            tab: id,
            why: String::new(),
            refused: Some("wrong passphrase".into()),
        });
        let prompt = t.tabs[0].presence.as_ref().expect("the prompt stays");
        assert_eq!(prompt.error.as_deref(), Some("wrong passphrase"));
        assert!(prompt.why.contains("interactive shell"), "the reason stays");
        // Escape: nothing opens, the tab says why.
        t.update(Message::Presence(id, P::Cancel));
        assert!(t.tabs[0].presence.is_none());
        assert!(
            matches!(&t.tabs[0].state, TabState::Failed(why) if why.contains("passphrase was not given"))
        );
    }
}
