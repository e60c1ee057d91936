//! The app: State, Message, update, view (the Elm shape, kept flat).
//!
//! Owns: which screen is shown (signed out, hosts, approvals), the broker
//! link state (connected / reconnecting), the sign-out confirmation, the
//! command palette, the keyboard shortcuts, the window's frame (sidebar,
//! status bar), and routing daemon replies and broker events to the
//! screens. `update` returns [`Effect`]s as data; `main.rs` runs them as
//! iced tasks, tests run them with [`crate::daemons::run`] directly.
//!
//! Must never: hold an org key or a keychain payload (nothing here asks for
//! one), keep data of a signed-out session (sign-out clears every screen),
//! or panic on a daemon's answer: errors are shown where they happened.

use std::time::Instant;

use gatehouse_ipc::broker::{BrokerError, BrokerEvent, BrokerStatus};
use iced::keyboard::{self, Key, Modifiers, key::Named};
use iced::widget::{button, column, container, row, rule, text};
use iced::{Color, Element, Fill};

use crate::approval::{self, Approvals};
use crate::audit_log::{self, AuditLog};
use crate::copilot::{self, Copilot};
use crate::daemons::{Call, DaemonError, Daemons, Feed, Reply, Watch};
use crate::diagrams::{self, Diagrams};
use crate::hosts::{self, Hosts};
use crate::notify::Announcer;
use crate::palette::{self, Palette};
use crate::procedures::{self, Procedures};
use crate::recordings::{self, Recordings};
use crate::security::{self, Security};
use crate::settings_screen::{self, SettingsScreen};
use crate::signin::{self, SignIn};
use crate::terminal::{self, Terminals};
use crate::workarea::{Split, Workarea};

/// The broker connection, as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Up,
    /// The broker is unavailable; the event stream keeps retrying.
    Reconnecting(String),
}

/// Where the account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    Unknown,
    NoAccount,
    SignedOut,
    SignedIn,
}

/// The screens of a signed-in session, in the tab bar's order (Ctrl+1…9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Hosts,
    Terminals,
    Copilot,
    Approvals,
    Procedures,
    Recordings,
    Audit,
    Diagrams,
    Security,
    /// Not numbered: Ctrl+, (as in VS Code).
    Settings,
}

impl Tab {
    pub const ALL: [Tab; 10] = [
        Tab::Hosts,
        Tab::Terminals,
        Tab::Copilot,
        Tab::Approvals,
        Tab::Procedures,
        Tab::Recordings,
        Tab::Audit,
        Tab::Diagrams,
        Tab::Security,
        Tab::Settings,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Hosts => "Hosts",
            Tab::Terminals => "Terminals",
            Tab::Copilot => "Copilot",
            Tab::Approvals => "Approvals",
            Tab::Procedures => "Procedures",
            Tab::Recordings => "Recordings",
            Tab::Audit => "Audit",
            Tab::Diagrams => "Diagrams",
            Tab::Security => "Security",
            Tab::Settings => "Settings",
        }
    }

    /// The screen's shortcut: Ctrl+1…9 in [`Tab::ALL`]'s order, Ctrl+, for Settings.
    pub fn keys(self) -> String {
        if self == Tab::Settings {
            return "Ctrl+,".into();
        }
        let n = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) + 1;
        format!("Ctrl+{n}")
    }

    /// The tab bar's button text, with its shortcut (`Hosts (Ctrl+1)`).
    pub fn button_text(self) -> String {
        format!("{} ({})", self.label(), self.keys())
    }
}

/// Something `update` asks the outside world to do.
#[derive(Debug, Clone)]
pub enum Effect {
    Call(Call),
    /// Start a long-lived call; its replies arrive as `Message::Reply`.
    Watch(Watch),
    /// Focus the text field with this id.
    Focus(&'static str),
    /// Hand this message to `update` next (one screen asking another:
    /// a host's "Connect" opens a terminal tab).
    Then(Box<Message>),
}

#[derive(Debug)]
pub struct State {
    pub daemons: Daemons,
    pub now: Instant,
    pub link: Link,
    pub session: Session,
    pub tab: Tab,
    pub signin: SignIn,
    pub hosts: Hosts,
    pub approvals: Approvals,
    pub terminals: Terminals,
    pub copilot: Copilot,
    pub procedures: Procedures,
    pub recordings: Recordings,
    pub audit: AuditLog,
    pub diagrams: Diagrams,
    pub security: Security,
    pub settings: SettingsScreen,
    /// Split view and the copilot beside the terminal.
    pub workarea: Workarea,
    /// The organization the switcher selected (its id; None: all). Screens
    /// read it: the hosts list shows, and new hosts go to, this one.
    pub org: Option<String>,
    pub status: Option<Box<BrokerStatus>>,
    /// The dark theme is on (Ctrl+Shift+L toggles; saved in the settings).
    pub dark: bool,
    /// The window has keyboard focus (the shell reports it; an approval
    /// card's guard counts only while it is true). Starts false: nothing is
    /// assumed seen before the window system says the window has focus.
    pub focused: bool,
    /// The command palette (Ctrl+Shift+P).
    pub palette: Palette,
    /// The sign-out confirmation is open.
    pub confirm_sign_out: bool,
    pub sign_out_busy: bool,
    pub sign_out_error: Option<String>,
    /// Desktop notifications of requests that arrive while the window has
    /// no focus.
    pub announcer: Announcer,
}

#[derive(Debug, Clone)]
pub enum Message {
    SignIn(signin::Message),
    Hosts(hosts::Message),
    Approval(approval::Message),
    Terminal(terminal::Message),
    Copilot(copilot::Message),
    Procedures(procedures::Message),
    Recordings(recordings::Message),
    Audit(audit_log::Message),
    Diagrams(diagrams::Message),
    Security(security::Message),
    Settings(settings_screen::Message),
    /// A host in the sidebar's tree: select shows its detail on the Hosts
    /// screen; connect opens a terminal.
    SideHost(hosts::Message),
    /// A procedure in the sidebar: its screen, with it selected.
    SideProcedure(String),
    /// A recording in the sidebar: its screen, playing it.
    SideRecording(String),
    /// Split the work area in two terminals side by side, or unsplit
    /// (Ctrl+Shift+D).
    ToggleSplit,
    /// Give the pane showing this tab the keys (a click on it).
    FocusPane(u64),
    /// The other pane takes the keys (Ctrl+Shift+O).
    OtherPane,
    /// Show or hide the copilot beside the active terminal (Ctrl+Shift+I).
    ToggleCopilotBeside,
    Tab(Tab),
    ToggleTheme,
    /// The organization switcher.
    Org(hosts::OrgPick),
    AskSignOut,
    CancelSignOut,
    ConfirmSignOut,
    Reply(Reply),
    Feed(Feed),
    Tick(Instant),
    /// The window drew a frame (its redraw began at this instant): the
    /// approval guard starts only once a card has been drawn.
    Frame(Instant),
    Key(keyboard::Event),
    /// The window gained (true) or lost (false) keyboard focus.
    WindowFocused(bool),
    /// Open the command palette (Ctrl+Shift+P).
    OpenPalette,
    Palette(palette::Message),
    /// Search: the audit log's filter on the Audit screen, the hosts search
    /// elsewhere (Ctrl+F).
    Find,
}

/// The pending-approvals count in the status bar when something waits.
pub const AMBER: Color = Color::from_rgb8(0xF5, 0xA5, 0x24);

/// The status bar's sync state until sync exists.
pub const SYNC_STATE: &str = "sync: off";

impl State {
    /// The initial state and its first effects (ask the broker where we are).
    pub fn new(daemons: Daemons, now: Instant) -> (State, Vec<Effect>) {
        (
            State {
                daemons,
                now,
                link: Link::Connecting,
                session: Session::Unknown,
                tab: Tab::Approvals,
                signin: SignIn::default(),
                hosts: Hosts::default(),
                approvals: Approvals::default(),
                terminals: Terminals::default(),
                copilot: Copilot::default(),
                procedures: Procedures::default(),
                recordings: Recordings::default(),
                audit: AuditLog::default(),
                diagrams: Diagrams::default(),
                security: Security::default(),
                settings: SettingsScreen::default(),
                workarea: Workarea::default(),
                org: None,
                status: None,
                dark: false,
                focused: false,
                palette: Palette::default(),
                confirm_sign_out: false,
                sign_out_busy: false,
                sign_out_error: None,
                announcer: Announcer::default(),
            },
            vec![Effect::Call(Call::Status)],
        )
    }

    pub fn update(&mut self, msg: Message) -> Vec<Effect> {
        let before = self.terminals.current().map(|t| t.id);
        let mut out = self.handle(msg);
        self.workarea.fix(&self.terminals, before);
        if self.workarea.copilot_beside {
            out.extend(self.bind_copilot());
        }
        // After every change: is the approvals screen in front of the
        // person? The card's guard counts only while it is.
        self.approvals.set_seen(self.approvals_seen(), self.now);
        out
    }

    /// Whether the approvals screen is what the person sees: signed in, on
    /// the Approvals tab, nothing drawn over it (sign-out confirmation,
    /// command palette), in the focused window.
    pub fn approvals_seen(&self) -> bool {
        self.session == Session::SignedIn
            && self.tab == Tab::Approvals
            && !self.confirm_sign_out
            && !self.palette.is_open()
            && self.focused
    }

    fn handle(&mut self, msg: Message) -> Vec<Effect> {
        match msg {
            Message::Tick(t) => {
                self.now = t;
                self.recordings.tick(t);
                vec![]
            }
            Message::Frame(at) => {
                self.now = self.now.max(at);
                // After `update` has settled what is seen (set_seen runs
                // after every message): this frame drew the state as it was
                // before this message.
                self.approvals.frame(at);
                vec![]
            }
            Message::SignIn(m) => self
                .signin
                .update(m)
                .map(Effect::Call)
                .into_iter()
                .collect(),
            Message::Hosts(m) => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.hosts.update(m, self.org.as_deref())
            }
            Message::Org(pick) => {
                self.org = pick.id;
                // The copilot follows the switcher when it names one organization.
                let org = self.org.as_deref();
                match self
                    .copilot
                    .orgs
                    .iter()
                    .find(|o| Some(o.id.as_str()) == org)
                {
                    Some(o) => {
                        let o = o.clone();
                        self.copilot.update(copilot::Message::Org(o))
                    }
                    None => vec![],
                }
            }
            Message::Approval(m) => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                // Approve acts only on the approvals screen, on the card shown.
                if matches!(
                    m,
                    approval::Message::Approve | approval::Message::ConfirmDangerous
                ) && !self.approvals_seen()
                {
                    return vec![];
                }
                self.approvals
                    .update(m, self.now)
                    .map(Effect::Call)
                    .into_iter()
                    .collect()
            }
            Message::Terminal(m) => self.terminals.update(m),
            Message::Copilot(m) => self.copilot.update(m),
            Message::Procedures(m) => self.procedures.update(m),
            Message::Recordings(m) => self.recordings.update(m),
            Message::Audit(m) => self.audit.update(m),
            Message::Diagrams(m) => self.diagrams.update(m),
            Message::Security(m) => self.security.update(m),
            Message::Settings(m) => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.settings.update(m)
            }
            Message::Tab(t) => {
                self.tab = t;
                self.tab_shown()
            }
            Message::ToggleSplit => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.tab = Tab::Terminals;
                if self.workarea.split.take().is_some() {
                    return vec![];
                }
                let Some(cur) = self.terminals.current() else {
                    // Nothing to split yet: open a host first.
                    return self.update(Message::Terminal(terminal::Message::FocusHost));
                };
                let (left, host) = (cur.id, cur.host.clone());
                // Another open tab goes to the right pane; else a second
                // session to the same host (its own shell).
                if let Some(other) = self.terminals.tabs.iter().find(|t| t.id != left) {
                    self.workarea.split = Some(Split {
                        left,
                        right: other.id,
                    });
                    return vec![];
                }
                let out = self.terminals.update(terminal::Message::Open { host });
                if let Some(new) = self.terminals.current().filter(|t| t.id != left) {
                    self.workarea.split = Some(Split {
                        left,
                        right: new.id,
                    });
                }
                out
            }
            Message::SideHost(m) => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                if !matches!(m, hosts::Message::Connect(_)) {
                    self.tab = Tab::Hosts;
                }
                self.hosts.update(m, self.org.as_deref())
            }
            Message::SideProcedure(id) => {
                self.tab = Tab::Procedures;
                self.procedures.update(procedures::Message::Select(id))
            }
            Message::SideRecording(id) => {
                self.tab = Tab::Recordings;
                self.recordings.update(recordings::Message::Open(id))
            }
            Message::FocusPane(id) => self.terminals.update(terminal::Message::Select(id)),
            Message::OtherPane => match self.workarea.other_pane(&self.terminals) {
                Some(id) => self.terminals.update(terminal::Message::Select(id)),
                None => vec![],
            },
            Message::ToggleCopilotBeside => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.tab = Tab::Terminals;
                self.workarea.copilot_beside = !self.workarea.copilot_beside;
                self.workarea.bound = None;
                vec![]
            }
            Message::ToggleTheme => {
                self.dark = !self.dark;
                // Signed in: the choice is saved in the settings record.
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.settings.update(settings_screen::Message::Set {
                    key: gatehouse_records::settings::Key::Theme,
                    org: None,
                    value: if self.dark { "dark" } else { "light" }.into(),
                })
            }
            Message::AskSignOut => {
                if self.session == Session::SignedIn {
                    self.confirm_sign_out = true;
                    self.sign_out_error = None;
                    // The list of what is purged uses the broker's counts.
                    return vec![Effect::Call(Call::Status)];
                }
                vec![]
            }
            Message::CancelSignOut => {
                self.confirm_sign_out = false;
                vec![]
            }
            Message::ConfirmSignOut => {
                if !self.confirm_sign_out || self.sign_out_busy {
                    return vec![];
                }
                self.sign_out_busy = true;
                vec![Effect::Call(Call::SignOut)]
            }
            Message::Reply(r) => self.reply(r),
            Message::Feed(f) => self.feed(f),
            Message::Key(k) => self.key(k),
            Message::WindowFocused(f) => {
                self.focused = f;
                vec![]
            }
            Message::OpenPalette => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                self.palette.open();
                vec![Effect::Focus(palette::FILTER_ID)]
            }
            Message::Palette(m) => match self.palette.update(m) {
                Some(run) => self.update(run),
                None => vec![],
            },
            Message::Find => {
                if self.session != Session::SignedIn {
                    return vec![];
                }
                // The audit log has its own filter; elsewhere Ctrl+F searches hosts.
                if self.tab == Tab::Audit {
                    return vec![Effect::Focus(audit_log::FILTER_ID)];
                }
                self.tab = Tab::Hosts;
                vec![Effect::Focus(hosts::SEARCH_ID)]
            }
        }
    }

    fn reply(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Status(Ok(s)) => {
                self.link = Link::Up;
                let before = self.session;
                self.session = if !s.account_initialized {
                    Session::NoAccount
                } else if s.signed_in {
                    Session::SignedIn
                } else {
                    Session::SignedOut
                };
                self.status = Some(s);
                if self.session == Session::SignedIn && before != Session::SignedIn {
                    return self.load_signed_in();
                }
                if self.session != Session::SignedIn && before == Session::SignedIn {
                    self.forget();
                }
                vec![]
            }
            Reply::Status(Err(e)) => {
                self.failed(&e);
                vec![]
            }
            Reply::SignedIn(Ok(())) => {
                self.signin.finished(Ok(()));
                self.session = Session::SignedIn;
                self.link = Link::Up;
                let mut out = vec![Effect::Call(Call::Status)];
                out.extend(self.load_signed_in());
                out
            }
            Reply::SignedIn(Err(e)) => {
                self.failed(&e);
                self.signin.finished(Err(e.to_string()));
                vec![]
            }
            Reply::SignedOut(Ok((p, cleared))) => {
                self.sign_out_busy = false;
                self.confirm_sign_out = false;
                self.session = Session::SignedOut;
                self.forget();
                let also = if cleared.is_empty() {
                    String::new()
                } else {
                    format!(" Also cleared: {}.", cleared.join("; "))
                };
                self.signin.signed_out_note = Some(format!(
                    "Signed out: {} keys and {} cached secrets zeroized, device unlock {}, {} daemons told to drop their caches ({} µs).{also}",
                    p.keys_zeroized,
                    p.cached_secrets_zeroized,
                    if p.unlock_material_deleted {
                        "material deleted"
                    } else {
                        "material kept (none stored)"
                    },
                    p.daemons_notified,
                    p.micros
                ));
                vec![Effect::Call(Call::Status)]
            }
            Reply::SignedOut(Err(e)) => {
                self.sign_out_busy = false;
                self.failed(&e);
                self.sign_out_error = Some(e.to_string());
                vec![]
            }
            Reply::Approvals(r) => {
                if let Err(e) = &r {
                    self.failed(e);
                }
                let mut out = vec![];
                if self.session == Session::SignedIn {
                    if let Ok(list) = &r {
                        out = self
                            .announcer
                            .listed(list, &self.hosts.orgs)
                            .into_iter()
                            .map(|n| Effect::Call(Call::Notify(n)))
                            .collect();
                    }
                    self.approvals
                        .listed(r.map_err(|e| e.to_string()), self.now);
                }
                out
            }
            Reply::Notified(r) => {
                if let Err(e) = r {
                    self.announcer.failed(e);
                }
                vec![]
            }
            Reply::Approval(r) => {
                if let Err(e) = &r {
                    self.failed(e);
                }
                if self.session == Session::SignedIn {
                    self.approvals
                        .shown(r.map(|b| *b).map_err(|e| e.to_string()), self.now);
                    self.tab = Tab::Approvals;
                }
                vec![]
            }
            Reply::Decided { id, result } => {
                if let Err(e) = &result {
                    self.failed(e);
                }
                self.approvals
                    .decided(id, result.map_err(|e| e.to_string()))
                    .into_iter()
                    .map(Effect::Call)
                    .collect()
            }
            Reply::Hosts(r) => {
                if self.session == Session::SignedIn {
                    self.hosts.loaded(r.map_err(|e| e.to_string()));
                }
                vec![]
            }
            // A screen's own replies; a reply that arrives after sign-out is
            // dropped (its screen was cleared).
            _ if self.session != Session::SignedIn => vec![],
            Reply::Host(r) => self.hosts.replied(r),
            Reply::Terminal(r) => self.terminals.replied(r),
            Reply::Copilot(r) => self.copilot.replied(r),
            Reply::Procedures(r) => self.procedures.replied(r),
            Reply::Recordings(r) => self.recordings.replied(r),
            Reply::Audit(r) => self.audit.replied(r),
            Reply::Diagrams(r) => self.diagrams.replied(r),
            Reply::Security(r) => self.security.replied(r),
            Reply::Settings(r) => {
                if let Some(s) = self.settings.replied(r) {
                    self.apply_settings(&s);
                }
                vec![]
            }
        }
    }

    /// Notes a failure that says something about the broker link or session.
    fn failed(&mut self, e: &DaemonError) {
        match e {
            DaemonError::Unavailable(why) => self.link = Link::Reconnecting(why.clone()),
            DaemonError::Broker(BrokerError::SignedOut) if self.session == Session::SignedIn => {
                self.session = Session::SignedOut;
                self.forget();
            }
            _ => {}
        }
    }

    fn load_signed_in(&mut self) -> Vec<Effect> {
        let mut out = vec![
            Effect::Call(Call::ListApprovals),
            Effect::Call(Call::LoadHosts),
            Effect::Call(Call::Hosts(hosts::Call::Orgs)),
            Effect::Call(Call::Hosts(hosts::Call::Seen)),
        ];
        out.extend(self.copilot.load());
        out.extend(self.procedures.load());
        out.extend(self.settings.load());
        // The sidebar lists the recordings.
        out.extend(self.recordings.shown());
        out.extend(self.tab_shown());
        out
    }

    /// The copilot beside the terminal works on that terminal's host: when
    /// the active tab changes, its organization and host become the
    /// copilot's (a new binding starts from that host alone).
    fn bind_copilot(&mut self) -> Vec<Effect> {
        let Some(t) = self.terminals.current() else {
            return vec![];
        };
        if self.workarea.bound == Some(t.id) || t.state == terminal::TabState::Opening {
            return vec![];
        }
        self.workarea.bound = Some(t.id);
        let name = t.name.clone();
        let org = self
            .hosts
            .rows
            .iter()
            .find(|r| r.id == t.host || r.name == t.name || r.name == t.host)
            .and_then(|r| match &r.scope {
                gatehouse_ipc::broker::KeyScope::Org(id) => Some(id.clone()),
                gatehouse_ipc::broker::KeyScope::Private => None,
            });
        let mut out = vec![];
        if let Some(o) = org.and_then(|id| self.copilot.orgs.iter().find(|o| o.id == id).cloned()) {
            out = self.copilot.update(copilot::Message::Org(o));
        }
        self.copilot.scope = std::iter::once(name).collect();
        out
    }

    /// The person's settings came (loaded or saved): the theme follows
    /// them, and so does a copilot panel that has no conversation yet.
    fn apply_settings(&mut self, s: &gatehouse_records::settings::Settings) {
        self.dark = s.theme == gatehouse_records::settings::Theme::Dark;
        self.terminals.set_font_size(f32::from(s.font_size));
        if self.copilot.thread.entries.is_empty() && self.copilot.autopilot.is_none() {
            self.copilot.mode = s.copilot_mode;
            self.copilot.trust = s.copilot_trust;
        }
    }

    /// The current tab is on screen: screens that load on first view do.
    fn tab_shown(&mut self) -> Vec<Effect> {
        match self.tab {
            Tab::Security => self.security.shown(),
            Tab::Audit => self.audit.shown(),
            Tab::Recordings => self.recordings.shown(),
            Tab::Diagrams => self.diagrams.shown(),
            Tab::Settings => self.settings.load(),
            _ => vec![],
        }
    }

    /// Drops everything a signed-in session showed, except what the
    /// person's settings keep: terminal scrollback (`sign-out.scrollback`
    /// off: the tabs stay, their sessions closed) and the copilot's
    /// conversation (`sign-out.conversations` off).
    fn forget(&mut self) {
        let clears = self.settings.current.sign_out_clears;
        self.approvals.clear();
        // Dropping the hosts screen drops (and zeroizes) a revealed value
        // and a typed password.
        self.hosts = Hosts::default();
        self.org = None;
        if clears.scrollback {
            self.terminals.clear();
        } else {
            self.terminals.end_all("closed by sign-out");
        }
        let thread = std::mem::take(&mut self.copilot.thread);
        self.copilot.clear();
        if !clears.conversations {
            self.copilot.thread = thread;
        }
        self.settings.clear();
        self.workarea.clear();
        self.procedures.clear();
        self.recordings.clear();
        self.audit.clear();
        self.diagrams.clear();
        self.security.clear();
        self.palette = Palette::default();
        self.announcer.clear();
        self.confirm_sign_out = false;
    }

    fn feed(&mut self, f: Feed) -> Vec<Effect> {
        match f {
            Feed::Connected => {
                self.link = Link::Up;
                let mut out = vec![Effect::Call(Call::Status)];
                if self.session == Session::SignedIn {
                    out.push(Effect::Call(Call::ListApprovals));
                }
                out
            }
            Feed::Lost(why) => {
                self.link = Link::Reconnecting(why);
                vec![]
            }
            Feed::Event(BrokerEvent::ApprovalPending { id }) => {
                if self.session == Session::SignedIn {
                    self.announcer.arrived(id, self.focused);
                    vec![Effect::Call(Call::ListApprovals)]
                } else {
                    vec![]
                }
            }
            Feed::Event(BrokerEvent::ApprovalDecided { .. }) => {
                if self.session == Session::SignedIn {
                    vec![Effect::Call(Call::ListApprovals)]
                } else {
                    vec![]
                }
            }
            Feed::Event(BrokerEvent::SignedOut) => {
                self.session = Session::SignedOut;
                self.forget();
                vec![Effect::Call(Call::Status)]
            }
            Feed::Event(BrokerEvent::SignedIn) => vec![Effect::Call(Call::Status)],
        }
    }

    fn key(&mut self, e: keyboard::Event) -> Vec<Effect> {
        let keyboard::Event::KeyPressed {
            ref key, modifiers, ..
        } = e
        else {
            return vec![];
        };
        if self.confirm_sign_out {
            return match key {
                Key::Named(Named::Escape) => self.update(Message::CancelSignOut),
                Key::Named(Named::Enter) => self.update(Message::ConfirmSignOut),
                _ => vec![],
            };
        }
        // The palette is over the screen: only Esc (close) reaches it here
        // (what is typed goes to its filter field).
        if self.palette.is_open() {
            return match key {
                Key::Named(Named::Escape) => self.update(Message::Palette(palette::Message::Close)),
                _ => vec![],
            };
        }
        // The terminal screen takes what is typed (Esc, Ctrl+F, Alt+… too),
        // except the app's Ctrl+1…9 and Ctrl+Shift+letters.
        if self.tab == Tab::Terminals
            && self.session == Session::SignedIn
            && let Some(effects) = self.terminals.key(&e)
        {
            return effects;
        }
        let key = key.clone();
        if self.session == Session::SignedIn
            && self.tab == Tab::Hosts
            && let Some(m) = self.hosts.key(&key, modifiers)
        {
            return self.update(Message::Hosts(m));
        }
        // Screens without text fields take plain keys of their own.
        if self.session == Session::SignedIn && !modifiers.control() && !modifiers.alt() {
            let own = match self.tab {
                Tab::Diagrams => diagrams::key(&key, modifiers).map(Message::Diagrams),
                Tab::Recordings => recordings::key(&self.recordings, &key).map(Message::Recordings),
                Tab::Security => security::key(&key).map(Message::Security),
                _ => None,
            };
            if let Some(m) = own {
                return self.update(m);
            }
        }
        match shortcut(&key, modifiers) {
            // The card's keys (Alt+A/Y/R/E, Esc) act only where the card is.
            Some(Message::Approval(_)) if self.tab != Tab::Approvals => vec![],
            Some(m) => self.update(m),
            None if self.tab == Tab::Copilot && self.session == Session::SignedIn => {
                self.copilot.key(&key, modifiers)
            }
            None => vec![],
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let body: Element<'_, Message> = match self.session {
            Session::SignedIn => self.signed_in_view(),
            Session::NoAccount => container(text(
                "No account in this profile yet: create one with `gatehouse account init`.",
            ))
            .center(Fill)
            .into(),
            Session::Unknown if self.link != Link::Up => container(text("Waiting for the broker…"))
                .center(Fill)
                .into(),
            Session::Unknown | Session::SignedOut => {
                container(self.signin.view().map(Message::SignIn))
                    .padding(12)
                    .height(Fill)
                    .into()
            }
        };
        column![body, rule::horizontal(1), self.status_bar()].into()
    }

    /// The colour of good news on the current theme (readable on both).
    fn good(&self) -> Color {
        if self.dark {
            Color::from_rgb8(0x86, 0xEF, 0xAC)
        } else {
            Color::from_rgb8(0x15, 0x80, 0x3D)
        }
    }

    /// The bottom line: organization, sync state, sign-in state, the broker link and
    /// its hardening, and the pending approvals (a count, amber when
    /// something waits).
    fn status_bar(&self) -> Element<'_, Message> {
        let sep = || text("·").size(13).style(text::secondary);
        let org = match self.org.as_deref() {
            None => "All organizations".to_string(),
            Some(id) => self
                .hosts
                .orgs
                .iter()
                .find(|o| o.id == id)
                .map(|o| o.name.clone())
                .unwrap_or_else(|| id.to_string()),
        };
        let session = match self.session {
            Session::SignedIn => "Signed in",
            Session::SignedOut => "Signed out",
            Session::NoAccount => "No account",
            Session::Unknown => "Sign-in state unknown",
        };
        let link: Element<'_, Message> = match &self.link {
            Link::Up => text("broker connected").size(13).color(self.good()).into(),
            Link::Connecting => text("connecting to the broker…").size(13).into(),
            Link::Reconnecting(why) => text(format!("Broker unavailable, reconnecting… ({why})"))
                .size(13)
                .style(text::danger)
                .into(),
        };
        let mut bar = row![
            text(org).size(13),
            sep(),
            // Sync does not exist yet: the place it will report in.
            text(SYNC_STATE).size(13).style(text::secondary),
            sep(),
            text(session).size(13),
            sep(),
            link
        ]
        .spacing(8)
        .align_y(iced::Center);
        if let Some(s) = &self.status {
            let (summary, ok) = hardening_summary(&s.hardening);
            bar = bar.push(sep());
            bar = bar.push(if ok {
                text(summary).size(13).style(text::secondary)
            } else {
                text(summary).size(13).style(text::danger)
            });
        }
        bar = bar.push(iced::widget::space::horizontal());
        if self.session == Session::SignedIn {
            let n = self.approvals.pending.len();
            let label = match n {
                0 => "No pending approvals".to_string(),
                1 => "1 pending approval".to_string(),
                n => format!("{n} pending approvals"),
            };
            let b = button(text(label).size(13)).padding([2, 10]);
            bar = bar.push(if n > 0 {
                b.style(|_, _| button::Style {
                    background: Some(AMBER.into()),
                    text_color: Color::BLACK,
                    border: iced::border::rounded(4),
                    ..button::Style::default()
                })
                .on_press(Message::Tab(Tab::Approvals))
            } else {
                b.style(button::text)
            });
        }
        container(bar).padding([4, 12]).width(Fill).into()
    }

    /// The left sidebar: the organization switcher, the screens (the one
    /// shown highlighted, the approvals count beside its name), the hosts
    /// as a folder tree with search, vendor badges and open-session marks,
    /// the procedures and the recordings, and the palette, theme and
    /// sign-out buttons at the bottom.
    fn sidebar(&self) -> Element<'_, Message> {
        let pending = self.approvals.pending.len();
        let mut nav = column![
            row![
                text("Gatehouse").size(18),
                text("Organization:").size(11).style(text::secondary),
                iced::widget::pick_list(
                    self.hosts.org_choices(),
                    Some(self.hosts.org_pick(self.org.as_deref())),
                    Message::Org
                )
                .text_size(12)
                .padding([2, 6])
                .width(Fill),
            ]
            .spacing(8)
            .align_y(iced::Center),
        ]
        .spacing(1);
        for t in Tab::ALL {
            let mut label = row![text(t.button_text()).size(13).width(Fill)].spacing(4);
            if t == Tab::Approvals && pending > 0 {
                label = label.push(text(pending.to_string()).size(13).color(AMBER));
            }
            let b = button(label.align_y(iced::Center))
                .padding([2, 8])
                .width(Fill)
                .on_press(Message::Tab(t));
            nav = nav.push(if self.tab == t {
                b.style(button::primary)
            } else {
                b.style(button::text)
            });
        }
        let heading = |s: &'static str| text(s).size(12).style(text::secondary);
        let hosts = self
            .hosts
            .sidebar_view(self.org.as_deref(), &self.terminals.open_hosts())
            .map(Message::SideHost);
        let mut procs = column![].spacing(1);
        for p in self.procedures.rows.iter().take(50) {
            procs = procs.push(
                button(text(p.name.as_str()).size(12))
                    .padding([1, 6])
                    .style(button::text)
                    .width(Fill)
                    .on_press(Message::SideProcedure(p.id.clone())),
            );
        }
        if self.procedures.rows.is_empty() {
            procs = procs.push(text("none yet").size(12).style(text::secondary));
        }
        let mut recs = column![].spacing(1);
        let listed = self
            .recordings
            .listing
            .as_ref()
            .map(|l| l.rows.as_slice())
            .unwrap_or_default();
        for r in listed.iter().take(50) {
            recs = recs.push(
                button(
                    text(format!(
                        "{} · {}",
                        r.host,
                        gatehouse_ipc::display::utc(r.started_ms)
                    ))
                    .size(12),
                )
                .padding([1, 6])
                .style(button::text)
                .width(Fill)
                .on_press(Message::SideRecording(r.id.clone())),
            );
        }
        if listed.is_empty() {
            recs = recs.push(text("none yet").size(12).style(text::secondary));
        }
        let small = |label: &'static str, m: Message| {
            button(text(label).size(12))
                .padding([2, 6])
                .style(button::secondary)
                .on_press(m)
        };
        let bottom = column![
            row![
                small("Palette (Ctrl+Shift+P)", Message::OpenPalette),
                small(
                    if self.dark { "Light" } else { "Dark" },
                    Message::ToggleTheme
                ),
            ]
            .spacing(4),
            button(text("Sign out (Ctrl+Shift+Q)").size(12))
                .padding([2, 6])
                .style(button::secondary)
                .width(Fill)
                .on_press(Message::AskSignOut),
        ]
        .spacing(4);
        let col = column![
            nav,
            rule::horizontal(1),
            heading("HOSTS"),
            iced::widget::scrollable(hosts).height(iced::FillPortion(3)),
            heading("PROCEDURES"),
            iced::widget::scrollable(procs).height(iced::FillPortion(1)),
            heading("RECORDINGS"),
            iced::widget::scrollable(recs).height(iced::FillPortion(1)),
            bottom,
        ]
        .spacing(4);
        container(col)
            .padding(8)
            .width(SIDEBAR_WIDTH)
            .height(Fill)
            .into()
    }

    fn signed_in_view(&self) -> Element<'_, Message> {
        let screen: Element<'_, Message> = if self.confirm_sign_out {
            self.sign_out_view()
        } else if self.palette.is_open() {
            self.palette.view().map(Message::Palette)
        } else {
            match self.tab {
                Tab::Hosts => self
                    .hosts
                    .view_marked(self.org.as_deref(), &self.terminals.open_hosts())
                    .map(Message::Hosts),
                Tab::Approvals => self
                    .approvals
                    .view(self.now, &self.hosts.orgs)
                    .map(Message::Approval),
                Tab::Terminals => {
                    crate::workarea::view(&self.workarea, &self.terminals, &self.copilot)
                }
                Tab::Copilot => self.copilot.view().map(Message::Copilot),
                Tab::Procedures => self.procedures.view().map(Message::Procedures),
                Tab::Recordings => self.recordings.view().map(Message::Recordings),
                Tab::Audit => self.audit.view().map(Message::Audit),
                Tab::Diagrams => self.diagrams.view().map(Message::Diagrams),
                Tab::Security => self.security.view().map(Message::Security),
                Tab::Settings => self.settings.view(&self.hosts.orgs).map(Message::Settings),
            }
        };
        row![
            self.sidebar(),
            rule::vertical(1),
            container(screen).padding(12).width(Fill).height(Fill),
        ]
        .height(Fill)
        .into()
    }

    /// What sign-out purges, before it does.
    fn sign_out_view(&self) -> Element<'_, Message> {
        let (orgs, cached, remembered) = self
            .status
            .as_ref()
            .map(|s| (s.orgs, s.cached_secrets, s.remembered_device))
            .unwrap_or((0, 0, false));
        let mut col = column![
            text("Sign out?").size(22),
            text("Signing out purges:"),
            text(format!(
                "• the account key and {orgs} organization key(s), zeroized in the broker"
            )),
            text(format!(
                "• {cached} cached secret(s) (keychain payloads released for connections)"
            )),
            text(if remembered {
                "• this device's remembered unlock material (you will type your passphrase again)"
            } else {
                "• any remembered-device unlock material (none stored now)"
            }),
            text("• sessiond and copilotd drop decrypted caches and close sessions holding credentials"),
            text("• this window's hosts list and pending approval cards"),
            row![
                button(text("Sign out and purge (Enter)"))
                    .style(button::danger)
                    .on_press_maybe((!self.sign_out_busy).then_some(Message::ConfirmSignOut)),
                button(text("Cancel (Esc)"))
                    .style(button::secondary)
                    .on_press(Message::CancelSignOut),
            ]
            .spacing(10),
        ]
        .spacing(8);
        if let Some(e) = &self.sign_out_error {
            col = col.push(text(format!("Sign-out failed: {e}")).style(text::danger));
        }
        container(col)
            .padding(14)
            .width(Fill)
            .style(container::rounded_box)
            .into()
    }

    pub fn theme(&self) -> iced::Theme {
        if self.dark {
            iced::Theme::Dark
        } else {
            iced::Theme::Light
        }
    }

    /// Whether something on screen changes with time alone (a guard delay
    /// running out, a playback, Autopilot's minutes left): only then does the shell's clock tick, so an idle
    /// window is not redrawn ten times a second.
    pub fn needs_clock(&self) -> bool {
        self.recordings.needs_clock()
            || self.copilot.autopilot.is_some()
            || self
                .approvals
                .card
                .as_ref()
                .is_some_and(|c| c.guard_running(self.now))
    }
}

/// The sidebar's width in logical pixels.
pub const SIDEBAR_WIDTH: f32 = 250.0;

/// One line on the broker's hardening, and whether every layer applied.
pub fn hardening_summary(h: &gatehouse_ipc::broker::Hardening) -> (String, bool) {
    if !h.degraded.is_empty() {
        return (
            format!("Broker hardening DEGRADED: {}", h.degraded.join(", ")),
            false,
        );
    }
    let seccomp = match h.seccomp_mode {
        2 => "seccomp filter",
        1 => "seccomp strict",
        _ => "no seccomp",
    };
    let ok = !h.dumpable && h.no_new_privs && h.seccomp_mode != 0;
    (
        format!(
            "Broker: {seccomp}, Landlock {}, {}",
            h.landlock,
            if h.dumpable {
                "DUMPABLE"
            } else {
                "not dumpable"
            }
        ),
        ok,
    )
}

/// The message a key press stands for (if any).
fn shortcut(key: &Key, m: Modifiers) -> Option<Message> {
    use approval::Message as A;
    match key {
        Key::Named(Named::Escape) => Some(Message::Approval(A::Cancel)),
        Key::Character(c) => {
            let c = c.as_str();
            if m.alt() && !m.control() {
                return match c {
                    "a" => Some(Message::Approval(A::Approve)),
                    "y" => Some(Message::Approval(A::ConfirmDangerous)),
                    "r" => Some(Message::Approval(A::StartReject)),
                    "e" => Some(Message::Approval(A::StartEdit)),
                    _ => None,
                };
            }
            if m.command() {
                if let Some(t) = c
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| Tab::ALL[..9].get(n.checked_sub(1)?))
                {
                    return Some(Message::Tab(*t));
                }
                return match c {
                    "," => Some(Message::Tab(Tab::Settings)),
                    "q" | "Q" if m.shift() => Some(Message::AskSignOut),
                    "l" | "L" if m.shift() => Some(Message::ToggleTheme),
                    "d" | "D" if m.shift() => Some(Message::ToggleSplit),
                    "o" | "O" if m.shift() => Some(Message::OtherPane),
                    "i" | "I" if m.shift() => Some(Message::ToggleCopilotBeside),
                    "t" | "T" if m.shift() => Some(Message::Terminal(terminal::Message::FocusHost)),
                    "p" | "P" if m.shift() => Some(Message::OpenPalette),
                    "f" if !m.shift() => Some(Message::Find),
                    _ => None,
                };
            }
            None
        }
        _ => None,
    }
}
