//! The copilot panel: chat with copilotd, with the mode (Default / Ask /
//! Planning), the trust level (Manual / Supervised / Autonomous = Autopilot),
//! the organization and host scope, the plan view of Planning mode, and the
//! Autopilot task a person starts and ends here.
//!
//! Owns: the conversation as shown (the person's messages, the answer as it
//! streams, every tool call with its class, the gate's decision and its
//! result, the turn's usage), one turn at a time as a [`Watch`] on copilotd,
//! and the Autopilot task's grant (`GrantAutopilot` / `EndAutopilot`: a
//! person's act, which the ui role may do).
//!
//! Must never: decide an approval (a call that needs one points the person
//! to the approval card, which decides through the broker), start Autopilot
//! without the person choosing Autonomous and sending, show anything but
//! what copilotd sent (it is redacted there), or keep a conversation after
//! sign-out (`clear`).

use gatehouse_ipc::os::now_ms;
use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse_ipc::broker::{AutopilotBound, BrokerRequest, BrokerResponse, KeyScope};
use gatehouse_ipc::copilotd::{
    AutopilotTask, ChatSettings, CopilotEvent, CopilotRequest, CopilotResponse, Copilotd,
    GateDecision, Mode, Trust, call_target,
};
use gatehouse_ipc::sessiond::HostRef;
use gatehouse_records::model::Kind;
use gatehouse_records::runbook::{PlanStep, Transcript};
use gatehouse_records::store::{Filter, Store};
use iced::futures::StreamExt as _;
use iced::futures::stream::BoxStream;
use iced::keyboard::{Key, Modifiers};
use iced::widget::{button, checkbox, column, container, row, scrollable, text, text_input};
use iced::{Element, Fill, Theme};

use crate::app::Effect;
use crate::daemons::{self, DaemonError, Daemons, broker_call, daemon_connect, daemon_error};

/// The message field (Enter sends).
pub const INPUT_ID: &str = "copilot-input";
/// Autopilot's step bound field.
pub const MAX_STEPS_ID: &str = "copilot-max-steps";
/// Autopilot's time bound field (minutes).
pub const MINUTES_ID: &str = "copilot-minutes";
/// Where a call waiting for a person is decided.
pub const WAITING: &str = "waiting for your approval: see the Approvals tab (Ctrl+4)";
/// The panel's shortcuts, as shown on it.
pub const SHORTCUTS: &str = "Enter Send · Alt+M Mode · Alt+T Trust · Alt+N New conversation";

/// The default step bound per message (as `gatehouse copilot chat`).
const DEFAULT_MAX_STEPS: u32 = 12;
/// The default Autopilot time bound, in minutes (as the cli).
const DEFAULT_MINUTES: u64 = 15;
/// How long a turn may go without an event (a person deciding an approval).
const TURN_IDLE: Duration = Duration::from_secs(3600);
/// Lines of a tool result shown.
const RESULT_LINES: usize = 12;

/// An organization as the broker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
}

/// One call of the turn as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEntry {
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    pub class: String,
    pub reasons: Vec<String>,
    pub decision: GateDecision,
    /// What the tool returned to the model, once it did.
    pub result: Option<String>,
}

impl ToolEntry {
    /// Waiting for a person's decision (asked, no result yet).
    pub fn waiting(&self) -> bool {
        matches!(self.decision, GateDecision::AskPerson { .. }) && self.result.is_none()
    }

    /// It did not run (rejected, expired, refused, a suggestion).
    pub fn not_run(&self) -> bool {
        matches!(
            self.decision,
            GateDecision::Suggest | GateDecision::Refuse { .. }
        ) || self
            .result
            .as_deref()
            .is_some_and(|r| r.starts_with("Not run"))
    }
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    You(String),
    /// The model's answer; streamed pieces are appended.
    Answer(String),
    Tool(ToolEntry),
    /// The calls of a Planning/Ask turn shown as suggestions, numbered.
    Plan(Vec<PlanStep>),
    /// Something the panel says (Autopilot on/off, a new conversation).
    Note(String),
    /// The turn's usage and the conversation's.
    Usage(String),
    Error(String),
}

/// An Autopilot task a person started here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autopilot {
    pub task: AutopilotTask,
    pub max_steps: u32,
    /// Calls the broker approved under it so far.
    pub used: u32,
    pub hosts: Vec<String>,
}

impl Autopilot {
    /// `AUTOPILOT ON — 3 steps / 14 min left` at `now_ms`.
    pub fn banner(&self, now_ms: u64) -> String {
        let left_ms = self.task.expires_ms.saturating_sub(now_ms);
        format!(
            "AUTOPILOT ON — {} steps / {} min left",
            self.max_steps.saturating_sub(self.used),
            left_ms.div_ceil(60_000)
        )
    }
}

#[derive(Debug)]
pub struct Copilot {
    pub mode: Mode,
    pub trust: Trust,
    pub orgs: Vec<Org>,
    pub org: Option<Org>,
    /// The hosts of the chosen organization (names, from the store).
    pub org_hosts: Vec<String>,
    /// The host scope (empty: every host of the organization).
    pub scope: BTreeSet<String>,
    pub input: String,
    pub max_steps: String,
    pub minutes: String,
    pub thread: Thread,
    /// The message (and its step bound) waiting for the Autopilot grant.
    queued: Option<(String, u32)>,
    pub autopilot: Option<Autopilot>,
    /// Why the orgs or hosts could not be loaded, or the input is refused.
    pub error: Option<String>,
}

impl Default for Copilot {
    fn default() -> Self {
        Copilot {
            mode: Mode::Default,
            trust: Trust::Supervised,
            orgs: Vec::new(),
            org: None,
            org_hosts: Vec::new(),
            scope: BTreeSet::new(),
            input: String::new(),
            max_steps: DEFAULT_MAX_STEPS.to_string(),
            minutes: DEFAULT_MINUTES.to_string(),
            thread: Thread::default(),
            queued: None,
            autopilot: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    Input(String),
    Send,
    Mode(Mode),
    Trust(Trust),
    /// Alt+M / Alt+T.
    NextMode,
    NextTrust,
    Org(Org),
    ToggleHost(String),
    MaxSteps(String),
    Minutes(String),
    EndAutopilot,
    NewConversation,
    Refresh,
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    LoadOrgs,
    /// The host names of an organization (the store's plaintext).
    LoadHosts {
        org_id: String,
    },
    GrantAutopilot(AutopilotBound),
    EndAutopilot {
        grant: u64,
    },
    /// Forgets a conversation in copilotd (its history is purged).
    Forget {
        conversation: u64,
    },
}

#[derive(Debug, Clone)]
pub enum Reply {
    Orgs(Result<Vec<Org>, DaemonError>),
    Hosts {
        org_id: String,
        result: Result<Vec<String>, DaemonError>,
    },
    Granted(Result<AutopilotTask, DaemonError>),
    Ended(Result<(), DaemonError>),
    Forgot,
    Turn(TurnReply),
}

/// What a running turn reports.
#[derive(Debug, Clone)]
pub enum TurnReply {
    /// The turn started in conversation `conversation`.
    Started(u64),
    Event(CopilotEvent),
    /// The turn could not start or was cut off.
    Failed(String),
}

/// Which screen a turn reports to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Panel,
    /// A procedure run on the Procedures screen.
    Procedures,
}

/// Long-lived streams this screen asks for (see [`crate::daemons::Watch`]).
#[derive(Debug, Clone)]
pub enum Watch {
    /// One turn: the message to copilotd, then its events until `TurnEnded`.
    Turn {
        conversation: Option<u64>,
        message: String,
        settings: ChatSettings,
        to: Target,
    },
}

fn out(to: &Target, r: TurnReply) -> daemons::Reply {
    match to {
        Target::Panel => daemons::Reply::Copilot(Reply::Turn(r)),
        Target::Procedures => daemons::Reply::Procedures(crate::procedures::Reply::Turn(r)),
    }
}

/// Runs one [`Watch`] as a stream of replies.
pub fn watch(d: Daemons, w: Watch) -> BoxStream<'static, daemons::Reply> {
    match w {
        Watch::Turn {
            conversation,
            message,
            settings,
            to,
        } => iced::stream::channel(
            32,
            async move |mut tx: iced::futures::channel::mpsc::Sender<daemons::Reply>| {
                use iced::futures::SinkExt;
                let mut replies = turn(&d, conversation, message, settings).await;
                while let Some(r) = replies.next().await {
                    if tx.send(out(&to, r)).await.is_err() {
                        return;
                    }
                }
            },
        )
        .boxed(),
    }
}

/// Starts the turn: its replies are the start (or why it failed), then
/// each event until the turn ends or is cut off.
async fn turn(
    d: &Daemons,
    conversation: Option<u64>,
    message: String,
    settings: ChatSettings,
) -> TurnReplies {
    let mut client = match daemon_connect::<Copilotd>(d).await {
        Ok(c) => c,
        Err(e) => {
            return TurnReplies::failed(format!("{e} (start the daemons with `gatehouse up`)"));
        }
    };
    client.set_timeout(TURN_IDLE);
    let started = client
        .call(CopilotRequest::Chat {
            conversation,
            message,
            settings,
        })
        .await;
    match started {
        Ok(CopilotResponse::Started { conversation }) => TurnReplies {
            first: Some(TurnReply::Started(conversation)),
            client: Some(client),
        },
        Ok(other) => TurnReplies::failed(format!("copilotd: unexpected answer {other:?}")),
        Err(e) => TurnReplies::failed(daemon_error::<Copilotd>(e).to_string()),
    }
}

/// A turn's replies, read one by one as they arrive.
struct TurnReplies {
    first: Option<TurnReply>,
    client: Option<gatehouse_ipc::client::Client<Copilotd>>,
}

impl TurnReplies {
    fn failed(why: String) -> TurnReplies {
        TurnReplies {
            first: Some(TurnReply::Failed(why)),
            client: None,
        }
    }

    async fn next(&mut self) -> Option<TurnReply> {
        if let Some(r) = self.first.take() {
            return Some(r);
        }
        let client = self.client.as_mut()?;
        loop {
            match client.next_event(TURN_IDLE).await {
                Ok(Some(e)) => {
                    if matches!(e, CopilotEvent::TurnEnded { .. }) {
                        self.client = None;
                    }
                    return Some(TurnReply::Event(e));
                }
                Ok(None) => continue,
                Err(e) => {
                    self.client = None;
                    return Some(TurnReply::Failed(format!(
                        "copilotd: the turn was cut off: {e}"
                    )));
                }
            }
        }
    }
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    match c {
        Call::LoadOrgs => Reply::Orgs(match broker_call(&d, BrokerRequest::OrgList).await {
            Ok(BrokerResponse::Orgs(v)) => Ok(v
                .into_iter()
                .map(|o| Org {
                    id: o.id,
                    name: o.name,
                })
                .collect()),
            Ok(r) => Err(DaemonError::Unexpected(format!("{r:?}"))),
            Err(e) => Err(e),
        }),
        Call::LoadHosts { org_id } => {
            let layout = d.layout().clone();
            let id = org_id.clone();
            let result = tokio::task::spawn_blocking(move || org_hosts(&layout, &id))
                .await
                .unwrap_or_else(|e| Err(DaemonError::Store(e.to_string())));
            Reply::Hosts { org_id, result }
        }
        Call::GrantAutopilot(bound) => Reply::Granted(
            match broker_call(&d, BrokerRequest::GrantAutopilot { bound }).await {
                Ok(BrokerResponse::AutopilotGranted { grant, expires_ms }) => {
                    Ok(AutopilotTask { grant, expires_ms })
                }
                Ok(r) => Err(DaemonError::Unexpected(format!("{r:?}"))),
                Err(e) => Err(e),
            },
        ),
        Call::EndAutopilot { grant } => Reply::Ended(
            broker_call(&d, BrokerRequest::EndAutopilot { grant })
                .await
                .map(|_| ()),
        ),
        Call::Forget { conversation } => {
            // Best effort: copilotd purges conversations at sign-out anyway.
            let _ =
                daemons::daemon_call::<Copilotd>(&d, CopilotRequest::Forget { conversation }).await;
            Reply::Forgot
        }
    }
}

/// The names of an organization's hosts (plaintext, from the store).
fn org_hosts(layout: &gatehouse_ipc::Layout, org_id: &str) -> Result<Vec<String>, DaemonError> {
    let store = Store::open_in(layout).map_err(|e| DaemonError::Store(e.to_string()))?;
    let rows = store
        .list(&Filter {
            scope: Some(KeyScope::Org(org_id.to_string())),
            ..Filter::kind(Kind::Host)
        })
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    let mut names: Vec<String> = rows.iter().map(|s| s.name().to_string()).collect();
    names.sort();
    Ok(names)
}

/// `s` as a whole number in `range`, or the sentence saying what `what` must be.
fn number_in(s: &str, range: std::ops::RangeInclusive<u64>, what: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{what} must be a number from {} to {}.",
            range.start(),
            range.end()
        )),
    }
}

fn next_mode(m: Mode) -> Mode {
    match m {
        Mode::Default => Mode::Ask,
        Mode::Ask => Mode::Planning,
        Mode::Planning => Mode::Default,
    }
}

fn next_trust(t: Trust) -> Trust {
    match t {
        Trust::Manual => Trust::Supervised,
        Trust::Supervised => Trust::Autonomous,
        Trust::Autonomous => Trust::Manual,
    }
}

pub fn mode_label(m: Mode) -> &'static str {
    match m {
        Mode::Default => "Default",
        Mode::Ask => "Ask",
        Mode::Planning => "Planning",
    }
}

pub fn trust_label(t: Trust) -> &'static str {
    match t {
        Trust::Manual => "Manual",
        Trust::Supervised => "Supervised",
        Trust::Autonomous => "Autonomous (Autopilot)",
    }
}

/// The color of a class: read-only green, moderate amber, dangerous red,
/// anything else (unknown) blue.
pub fn class_style(class: &str) -> fn(&Theme) -> text::Style {
    match class {
        "read-only" => text::success,
        "moderate" => text::warning,
        "dangerous" => text::danger,
        "-" => text::secondary,
        _ => text::primary,
    }
}

impl Copilot {
    /// What the panel loads when the session starts: the organizations.
    pub fn load(&self) -> Vec<Effect> {
        vec![Effect::Call(daemons::Call::Copilot(Call::LoadOrgs))]
    }

    /// A shortcut of this panel (Alt+M, Alt+T, Alt+N), when it is shown.
    pub fn key(&mut self, key: &Key, m: Modifiers) -> Vec<Effect> {
        let Key::Character(c) = key else {
            return vec![];
        };
        if !m.alt() || m.control() {
            return vec![];
        }
        match c.as_str() {
            "m" => self.update(Message::NextMode),
            "t" => self.update(Message::NextTrust),
            "n" => self.update(Message::NewConversation),
            _ => vec![],
        }
    }

    fn call(c: Call) -> Vec<Effect> {
        vec![Effect::Call(daemons::Call::Copilot(c))]
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Input(s) => {
                self.input = s;
                vec![]
            }
            Message::Send => self.send(),
            Message::Mode(mode) => {
                self.mode = mode;
                vec![]
            }
            Message::NextMode => {
                self.mode = next_mode(self.mode);
                vec![]
            }
            Message::Trust(t) => self.set_trust(t),
            Message::NextTrust => self.set_trust(next_trust(self.trust)),
            Message::Org(o) => {
                if self.org.as_ref() == Some(&o) {
                    return vec![];
                }
                let mut out = self.end_autopilot();
                self.scope.clear();
                self.org_hosts.clear();
                let org_id = o.id.clone();
                self.org = Some(o);
                out.extend(Self::call(Call::LoadHosts { org_id }));
                out
            }
            Message::ToggleHost(h) => {
                if !self.scope.remove(&h) {
                    self.scope.insert(h);
                }
                vec![]
            }
            Message::MaxSteps(s) => {
                self.max_steps = s;
                vec![]
            }
            Message::Minutes(s) => {
                self.minutes = s;
                vec![]
            }
            Message::EndAutopilot => {
                let out = self.end_autopilot();
                self.trust = Trust::Supervised;
                out
            }
            Message::NewConversation => {
                if self.thread.busy {
                    return vec![];
                }
                self.thread.entries.clear();
                self.error = None;
                match self.thread.conversation.take() {
                    Some(conversation) => Self::call(Call::Forget { conversation }),
                    None => vec![],
                }
            }
            Message::Refresh => {
                let mut out = Self::call(Call::LoadOrgs);
                if let Some(o) = &self.org {
                    out.extend(Self::call(Call::LoadHosts {
                        org_id: o.id.clone(),
                    }));
                }
                out
            }
        }
    }

    fn set_trust(&mut self, t: Trust) -> Vec<Effect> {
        self.trust = t;
        if t != Trust::Autonomous {
            return self.end_autopilot();
        }
        vec![]
    }

    /// Ends the running Autopilot task (if any) in the broker.
    fn end_autopilot(&mut self) -> Vec<Effect> {
        match self.autopilot.take() {
            Some(a) => {
                self.thread.entries.push(Entry::Note(format!(
                    "Autopilot ended (task {}).",
                    a.task.grant
                )));
                Self::call(Call::EndAutopilot {
                    grant: a.task.grant,
                })
            }
            None => vec![],
        }
    }

    fn settings(&self, max_steps: u32) -> ChatSettings {
        let org = self.org.as_ref().map(|o| o.name.clone());
        ChatSettings {
            mode: self.mode,
            trust: self.trust,
            hosts: self
                .scope
                .iter()
                .map(|h| HostRef {
                    host: h.clone(),
                    org: org.clone(),
                })
                .collect(),
            org,
            max_steps,
            autopilot: self.autopilot.as_ref().map(|a| a.task),
        }
    }

    fn send(&mut self) -> Vec<Effect> {
        let message = self.input.trim().to_string();
        if message.is_empty() || self.thread.busy || self.queued.is_some() {
            return vec![];
        }
        let max_steps = match number_in(&self.max_steps, 1..=100, "Max steps") {
            Ok(n) => n as u32,
            Err(e) => {
                self.error = Some(e);
                return vec![];
            }
        };
        self.error = None;
        if self.trust == Trust::Autonomous && self.autopilot.is_none() {
            // A person starts the task: bounded in hosts, steps and time.
            let Some(org) = &self.org else {
                self.error = Some(
                    "Autopilot works under one organization's policy: choose the organization."
                        .into(),
                );
                return vec![];
            };
            if self.scope.is_empty() {
                self.error =
                    Some("Autopilot is bounded in hosts: tick each host it may change.".into());
                return vec![];
            }
            let minutes = match number_in(&self.minutes, 1..=480, "Minutes") {
                Ok(n) => n,
                Err(e) => {
                    self.error = Some(e);
                    return vec![];
                }
            };
            self.input.clear();
            self.queued = Some((message, max_steps));
            return Self::call(Call::GrantAutopilot(AutopilotBound {
                org: org.id.clone(),
                hosts: self.scope.iter().cloned().collect(),
                max_steps,
                seconds: minutes * 60,
            }));
        }
        self.input.clear();
        self.start_turn(message, max_steps)
    }

    fn start_turn(&mut self, message: String, max_steps: u32) -> Vec<Effect> {
        let settings = self.settings(max_steps);
        vec![self.thread.start(message, settings, Target::Panel)]
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Orgs(Ok(orgs)) => {
                self.orgs = orgs;
                // One organization: it is the one.
                if self.org.is_none()
                    && let [only] = self.orgs.as_slice()
                {
                    return self.update(Message::Org(only.clone()));
                }
                vec![]
            }
            Reply::Orgs(Err(e)) => {
                self.error = Some(format!("Organizations: {e}"));
                vec![]
            }
            Reply::Hosts { org_id, result } => {
                if self.org.as_ref().map(|o| &o.id) != Some(&org_id) {
                    return vec![];
                }
                match result {
                    Ok(h) => {
                        self.scope.retain(|s| h.contains(s));
                        self.org_hosts = h;
                    }
                    Err(e) => self.error = Some(format!("Hosts: {e}")),
                }
                vec![]
            }
            Reply::Granted(Ok(task)) => {
                let Some((message, max_steps)) = self.queued.take() else {
                    return Self::call(Call::EndAutopilot { grant: task.grant });
                };
                let hosts: Vec<String> = self.scope.iter().cloned().collect();
                self.thread.entries.push(Entry::Note(format!(
                    "Autopilot started (task {}): hosts {}; at most {max_steps} steps. What the organization's policy permits runs without asking; dangerous commands and everything else still ask.",
                    task.grant,
                    hosts.join(", ")
                )));
                self.autopilot = Some(Autopilot {
                    task,
                    max_steps,
                    used: 0,
                    hosts,
                });
                self.start_turn(message, max_steps)
            }
            Reply::Granted(Err(e)) => {
                if let Some((m, _)) = self.queued.take() {
                    self.input = m;
                }
                self.error = Some(format!("Autopilot not started: {e}"));
                vec![]
            }
            Reply::Ended(Ok(())) | Reply::Forgot => vec![],
            Reply::Ended(Err(e)) => {
                self.thread
                    .entries
                    .push(Entry::Error(format!("Ending Autopilot failed: {e}")));
                vec![]
            }
            Reply::Turn(t) => {
                if let (
                    TurnReply::Event(CopilotEvent::ToolCall {
                        decision: GateDecision::AutoApproved { .. },
                        ..
                    }),
                    Some(a),
                ) = (&t, self.autopilot.as_mut())
                {
                    a.used += 1;
                }
                self.thread.replied(t);
                vec![]
            }
        }
    }

    /// Forgets everything shown (sign-out; the broker ends Autopilot tasks
    /// and copilotd purges conversations at sign-out itself).
    pub fn clear(&mut self) {
        *self = Copilot::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut col = column![self.controls()].spacing(8);
        if let Some(a) = &self.autopilot {
            col = col.push(
                container(
                    row![
                        text(a.banner(now_ms())).size(16).style(text::danger),
                        text(format!("hosts: {}", a.hosts.join(", "))).size(13),
                        iced::widget::space::horizontal(),
                        button(text("End Autopilot"))
                            .style(button::danger)
                            .on_press(Message::EndAutopilot),
                    ]
                    .spacing(12)
                    .align_y(iced::Center),
                )
                .padding(8)
                .width(Fill)
                .style(container::bordered_box),
            );
        }
        if let Some(e) = &self.error {
            col = col.push(text(e.clone()).style(text::danger));
        }
        col = col.push(self.thread.view(
            "Ask the copilot about your devices. Read-only commands run at once under Supervised; anything else asks you first on the approval card.",
        ));
        let send = button(text("Send (Enter)")).on_press_maybe(
            (!self.thread.busy && !self.input.trim().is_empty()).then_some(Message::Send),
        );
        col.push(
            row![
                text_input("Message the copilot…", &self.input)
                    .id(INPUT_ID)
                    .on_input(Message::Input)
                    .on_submit(Message::Send)
                    .padding(6),
                send,
                button(text("New (Alt+N)"))
                    .style(button::secondary)
                    .on_press_maybe((!self.thread.busy).then_some(Message::NewConversation)),
            ]
            .spacing(8),
        )
        .push(text(SHORTCUTS).size(12).style(text::secondary))
        .into()
    }

    fn controls(&self) -> Element<'_, Message> {
        let seg = |label: &'static str, on: bool, m: Message| {
            let b = button(text(label).size(13));
            if on {
                b
            } else {
                b.style(button::secondary).on_press(m)
            }
        };
        let mut modes = row![text("Mode (Alt+M):").size(13)]
            .spacing(4)
            .align_y(iced::Center);
        for m in [Mode::Default, Mode::Ask, Mode::Planning] {
            modes = modes.push(seg(mode_label(m), self.mode == m, Message::Mode(m)));
        }
        let mut trusts = row![text("Trust (Alt+T):").size(13)]
            .spacing(4)
            .align_y(iced::Center);
        for t in [Trust::Manual, Trust::Supervised, Trust::Autonomous] {
            trusts = trusts.push(seg(trust_label(t), self.trust == t, Message::Trust(t)));
        }
        let mut orgs = row![text("Organization:").size(13)]
            .spacing(4)
            .align_y(iced::Center);
        if self.orgs.is_empty() {
            orgs = orgs.push(text("(none loaded)").size(13).style(text::secondary));
        }
        for o in &self.orgs {
            let on = self.org.as_ref() == Some(o);
            let b = button(text(o.name.clone()).size(13));
            orgs = orgs.push(if on {
                b
            } else {
                b.style(button::secondary).on_press(Message::Org(o.clone()))
            });
        }
        orgs = orgs.push(
            button(text("Refresh").size(13))
                .style(button::text)
                .on_press(Message::Refresh),
        );
        let mut hosts = row![
            text(if self.scope.is_empty() {
                "Hosts: all of the organization ·"
            } else {
                "Hosts:"
            })
            .size(13)
        ]
        .spacing(10)
        .align_y(iced::Center);
        for h in &self.org_hosts {
            let name = h.clone();
            hosts = hosts.push(
                checkbox(self.scope.contains(h))
                    .label(h.clone())
                    .text_size(13)
                    .on_toggle(move |_| Message::ToggleHost(name.clone())),
            );
        }
        let mut col = column![
            row![modes, trusts].spacing(24).wrap(),
            orgs.wrap(),
            hosts.wrap()
        ]
        .spacing(6);
        if self.trust == Trust::Autonomous && self.autopilot.is_none() {
            col = col.push(
                row![
                    text("Autopilot starts when you send, bounded by the ticked hosts and:")
                        .size(13),
                    text_input("steps", &self.max_steps)
                        .id(MAX_STEPS_ID)
                        .on_input(Message::MaxSteps)
                        .width(60)
                        .size(13),
                    text("steps,").size(13),
                    text_input("min", &self.minutes)
                        .id(MINUTES_ID)
                        .on_input(Message::Minutes)
                        .width(60)
                        .size(13),
                    text("minutes").size(13),
                ]
                .spacing(6)
                .align_y(iced::Center),
            );
        }
        col.into()
    }
}

/// A conversation as shown, turn by turn: the copilot panel's, and a
/// procedure run's on the Procedures screen.
#[derive(Debug, Default)]
pub struct Thread {
    pub conversation: Option<u64>,
    pub entries: Vec<Entry>,
    /// A turn is running.
    pub busy: bool,
    /// The running (or last) turn's events.
    pub turn: Transcript,
}

impl Thread {
    /// Starts a turn with `message`: shown at once, its replies come back
    /// to `to`.
    pub fn start(&mut self, message: String, settings: ChatSettings, to: Target) -> Effect {
        self.entries.push(Entry::You(message.clone()));
        self.busy = true;
        self.turn = Transcript::default();
        Effect::Watch(daemons::Watch::Copilot(Watch::Turn {
            conversation: self.conversation,
            message,
            settings,
            to,
        }))
    }

    /// Notes a reply of the running turn.
    pub fn replied(&mut self, r: TurnReply) {
        match r {
            TurnReply::Started(c) => self.conversation = Some(c),
            TurnReply::Event(e) => self.event(e),
            TurnReply::Failed(why) => {
                self.busy = false;
                self.entries.push(Entry::Error(why));
            }
        }
    }

    fn event(&mut self, e: CopilotEvent) {
        self.turn.record(&e);
        match e {
            CopilotEvent::Text { delta, .. } => match self.entries.last_mut() {
                Some(Entry::Answer(a)) => a.push_str(&delta),
                _ => self.entries.push(Entry::Answer(delta)),
            },
            CopilotEvent::ToolCall {
                call_id,
                tool,
                arguments,
                class,
                reasons,
                decision,
                ..
            } => self.entries.push(Entry::Tool(ToolEntry {
                call_id,
                tool,
                arguments,
                class,
                reasons,
                decision,
                result: None,
            })),
            CopilotEvent::ToolResult {
                call_id, result, ..
            } => {
                let entry = self.entries.iter_mut().rev().find_map(|e| match e {
                    Entry::Tool(t) if t.call_id == call_id && t.result.is_none() => Some(t),
                    _ => None,
                });
                if let Some(t) = entry {
                    t.result = Some(result);
                }
            }
            CopilotEvent::TurnEnded {
                usage,
                total,
                reason,
                ..
            } => {
                self.busy = false;
                if !self.turn.plan.is_empty() {
                    self.entries.push(Entry::Plan(self.turn.plan.clone()));
                }
                if let Some(r) = reason {
                    self.entries
                        .push(Entry::Error(format!("The turn stopped: {r}")));
                }
                self.entries
                    .push(Entry::Usage(format!("{usage}; conversation: {total}")));
            }
        }
    }

    /// The tool calls shown, in order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolEntry> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Tool(t) => Some(t),
            _ => None,
        })
    }

    /// The entries, scrolled to the newest (`empty`: said when there are none).
    pub fn view<'a, M: 'a>(&'a self, empty: &'a str) -> Element<'a, M> {
        let mut list = column![].spacing(6);
        if self.entries.is_empty() {
            list = list.push(text(empty).style(text::secondary));
        }
        for e in &self.entries {
            list = list.push(entry_view(e));
        }
        if self.busy {
            list = list.push(text("…").style(text::secondary));
        }
        scrollable(container(list).width(Fill).padding(4))
            .anchor_bottom()
            .height(Fill)
            .into()
    }
}

fn entry_view<'a, M: 'a>(e: &'a Entry) -> Element<'a, M> {
    match e {
        Entry::You(m) => row![
            text("You").width(80).style(text::secondary),
            text(m.clone()).width(Fill)
        ]
        .spacing(8)
        .into(),
        Entry::Answer(a) => row![
            text("Copilot").width(80).style(text::secondary),
            text(a.clone()).width(Fill)
        ]
        .spacing(8)
        .into(),
        Entry::Tool(t) => tool_view(t),
        Entry::Plan(steps) => {
            let mut col = column![
                text("Plan (not run; each step asks for approval when you tell the copilot to carry it out):")
                    .size(14)
            ]
            .spacing(3);
            for (i, s) in steps.iter().enumerate() {
                col = col.push(
                    row![
                        text(format!("{}.", i + 1)).width(30),
                        text(format!("[{}]", s.class))
                            .style(class_style(&s.class))
                            .width(110),
                        text(format!("{}: {}", s.host, s.command)).font(crate::MONO),
                    ]
                    .spacing(6),
                );
            }
            container(col)
                .padding(8)
                .width(Fill)
                .style(container::bordered_box)
                .into()
        }
        Entry::Note(n) => text(n.clone()).style(text::primary).into(),
        Entry::Usage(u) => text(format!("[{u}]"))
            .size(12)
            .style(text::secondary)
            .into(),
        Entry::Error(e) => text(e.clone()).style(text::danger).into(),
    }
}

fn tool_view<'a, M: 'a>(t: &'a ToolEntry) -> Element<'a, M> {
    let what = if t.tool == "run_command" {
        let (host, command) = call_target(&t.arguments);
        format!("{host}: {command}")
    } else {
        t.arguments.clone()
    };
    let mut col = column![
        row![
            text(format!("[{}]", t.class))
                .style(class_style(&t.class))
                .width(110),
            text(t.tool.clone()).width(130),
            text(what).font(crate::MONO).width(Fill),
        ]
        .spacing(6),
    ]
    .spacing(3);
    if !t.reasons.is_empty() {
        col = col.push(text(t.reasons.join("; ")).size(12).style(text::secondary));
    }
    let decision = t.decision.describe();
    col = col.push(match (&t.decision, &t.result) {
        (GateDecision::AutoApproved { .. }, _) => text(decision).style(text::danger),
        (GateDecision::Refuse { .. }, _) => text(decision).style(text::danger),
        _ => text(decision).style(text::secondary),
    });
    if t.waiting() {
        col = col.push(text(WAITING).style(text::warning));
    }
    if let Some(r) = &t.result {
        if r.starts_with("Not run") {
            col = col.push(text(r.clone()).style(text::danger));
        } else {
            let shown: Vec<&str> = r.lines().take(RESULT_LINES).collect();
            let more = r.lines().count() > RESULT_LINES;
            col = col.push(
                text(format!(
                    "{}{}",
                    shown.join("\n"),
                    if more { "\n…" } else { "" }
                ))
                .font(crate::MONO)
                .size(12),
            );
        }
    }
    container(col)
        .padding(6)
        .width(Fill)
        .style(container::rounded_box)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_ipc::copilotd::Usage;

    fn call(id: &str, command: &str, class: &str, decision: GateDecision) -> TurnReply {
        TurnReply::Event(CopilotEvent::ToolCall {
            conversation: 1,
            call_id: id.into(),
            tool: "run_command".into(),
            arguments: json_args(command),
            class: class.into(),
            reasons: vec![],
            decision,
        })
    }

    fn json_args(command: &str) -> String {
        serde_json::json!({"host": "r1", "command": command}).to_string()
    }

    fn ended(reason: Option<&str>) -> TurnReply {
        TurnReply::Event(CopilotEvent::TurnEnded {
            conversation: 1,
            usage: Usage {
                input_tokens: 10,
                output_tokens: 2,
                requests: 1,
                cost_micro_usd: None,
            },
            total: Usage::default(),
            reason: reason.map(str::to_string),
        })
    }

    #[test]
    fn a_turn_streams_marks_waiting_and_not_run_and_ends_with_the_plan() {
        let mut t = Thread {
            busy: true,
            ..Thread::default()
        };
        t.replied(TurnReply::Started(7));
        assert_eq!(t.conversation, Some(7));
        for piece in ["Look", "ing…"] {
            t.replied(TurnReply::Event(CopilotEvent::Text {
                conversation: 7,
                delta: piece.into(),
            }));
        }
        assert_eq!(t.entries, [Entry::Answer("Looking…".into())]);
        t.replied(call(
            "a",
            "/interface disable ether2",
            "moderate",
            GateDecision::AskPerson { approval_id: 3 },
        ));
        assert!(t.tools().next().is_some_and(ToolEntry::waiting));
        t.replied(TurnReply::Event(CopilotEvent::ToolResult {
            conversation: 7,
            call_id: "a".into(),
            result: "Not run: a person rejected this (no). Do not retry it.".into(),
        }));
        let a = t.tools().next().unwrap();
        assert!(!a.waiting() && a.not_run());
        t.replied(call(
            "b",
            "/system reboot",
            "dangerous",
            GateDecision::Suggest,
        ));
        assert!(t.tools().nth(1).is_some_and(ToolEntry::not_run));
        t.replied(ended(Some("step bound reached")));
        assert!(!t.busy);
        assert!(t.entries.contains(&Entry::Plan(vec![PlanStep {
            class: "dangerous".into(),
            host: "r1".into(),
            command: "/system reboot".into(),
        }])));
        assert!(
            t.entries
                .contains(&Entry::Error("The turn stopped: step bound reached".into()))
        );
        assert!(
            matches!(t.entries.last(), Some(Entry::Usage(u)) if u.starts_with("1 model request(s), 10 tokens in, 2 out"))
        );
    }

    #[test]
    fn autopilot_needs_an_org_and_hosts_and_counts_its_steps() {
        let mut c = Copilot {
            input: "go".into(),
            ..Copilot::default()
        };
        c.update(Message::Trust(Trust::Autonomous));
        assert!(c.update(Message::Send).is_empty());
        assert!(
            c.error
                .as_deref()
                .unwrap()
                .contains("choose the organization")
        );
        c.org = Some(Org {
            id: "o1".into(),
            name: "lab".into(),
        });
        assert!(c.update(Message::Send).is_empty());
        assert!(c.error.as_deref().unwrap().contains("tick each host"));
        c.update(Message::ToggleHost("r1".into()));
        c.minutes = "0".into();
        assert!(c.update(Message::Send).is_empty());
        assert_eq!(
            c.error.as_deref(),
            Some("Minutes must be a number from 1 to 480.")
        );
        c.minutes = "2".into();
        c.max_steps = "3".into();
        let grant = c.update(Message::Send);
        assert!(matches!(
            grant.as_slice(),
            [Effect::Call(daemons::Call::Copilot(Call::GrantAutopilot(b)))]
                if b.org == "o1" && b.hosts == ["r1"] && b.max_steps == 3 && b.seconds == 120
        ));
        let task = AutopilotTask {
            grant: 9,
            expires_ms: now_ms() + 120_000,
        };
        let turn = c.replied(Reply::Granted(Ok(task)));
        assert!(matches!(
            turn.as_slice(),
            [Effect::Watch(daemons::Watch::Copilot(Watch::Turn { settings, .. }))]
                if settings.autopilot == Some(task) && settings.trust == Trust::Autonomous
        ));
        c.replied(Reply::Turn(call(
            "x",
            "/ip address add address=10.0.0.1/24 interface=ether2",
            "moderate",
            GateDecision::AutoApproved {
                approval_id: 1,
                rule: "autopilot_moderate".into(),
            },
        )));
        let a = c.autopilot.as_ref().unwrap();
        assert_eq!(
            a.banner(task.expires_ms - 61_000),
            "AUTOPILOT ON — 2 steps / 2 min left"
        );
        assert_eq!(
            a.banner(task.expires_ms + 1),
            "AUTOPILOT ON — 2 steps / 0 min left"
        );
        // Leaving Autonomous ends the task in the broker.
        let end = c.update(Message::Trust(Trust::Supervised));
        assert!(matches!(
            end.as_slice(),
            [Effect::Call(daemons::Call::Copilot(Call::EndAutopilot {
                grant: 9
            }))]
        ));
        assert!(c.autopilot.is_none());
    }
}
