//! Procedures (runbooks): the list (plaintext fields), the selected
//! procedure's body as markdown, a form for its parameters, **Run** through
//! the copilot (gated like chat: a step that needs approval waits for the
//! approval card), and the run history with each run's outcome.
//!
//! Owns: the rows listed from the store, the one opened body (opened through
//! the broker as `gatehouse procedure show` does, because the person asked
//! to see it by selecting it; dropped when another is selected and at
//! sign-out), the parameter values typed, the running procedure's
//! conversation, and storing the run as a procedure-run record (sealed by
//! the field table, as `gatehouse copilot run` stores it).
//!
//! Must never: open any record but the selected procedure (the history
//! lists runs from their plaintext fields only), run a step itself (steps
//! go to copilotd, which gates each one), or keep a body after sign-out.

use std::collections::BTreeMap;

use gatehouse_ipc::broker::KeyScope;
use gatehouse_ipc::copilotd::{ChatSettings, Mode, Trust};
use gatehouse_ipc::display::utc;
use gatehouse_records::model::{Kind, Parameter, ProcedureRun, Record};
use gatehouse_records::runbook;
use gatehouse_records::store::{Filter, Store, Summary, now_ms};
use gatehouse_records::{BrokerSealer, Meta};
use iced::widget::{button, column, container, markdown, row, scrollable, text, text_input};
use iced::{Element, Fill, FillPortion};
use zeroize::Zeroizing;

use crate::app::Effect;
use crate::copilot::{Target, Thread, TurnReply};
use crate::daemons::{self, DaemonError, Daemons};

/// The id of a parameter's field (`procedure-param-NAME`).
pub fn param_id(name: &str) -> String {
    format!("procedure-param-{name}")
}

/// Most tool calls of one procedure run (as `gatehouse copilot run`).
const MAX_STEPS: u32 = 12;

/// A procedure as listed: plaintext fields only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureRow {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub scope: KeyScope,
    /// `acme` or `private`.
    pub scope_label: String,
    pub parameters: Vec<Parameter>,
    pub read_only: bool,
}

/// A past run as listed: plaintext fields only (what it did is sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub started_ms: u64,
    pub who: String,
    pub outcome: String,
}

/// The opened body of the selected procedure.
#[derive(Debug)]
pub struct Body {
    pub id: String,
    text: Zeroizing<String>,
    items: Vec<markdown::Item>,
}

impl Body {
    /// The body as parsed for the markdown view.
    pub fn items(&self) -> &[markdown::Item] {
        &self.items
    }
}

/// The run in progress: what its record needs when the turn ends.
#[derive(Debug, Clone)]
struct Running {
    procedure_id: String,
    scope: KeyScope,
    started_ms: u64,
    values: Vec<gatehouse_records::model::RunArgument>,
    task: String,
}

#[derive(Debug, Default)]
pub struct Procedures {
    pub rows: Vec<ProcedureRow>,
    pub loaded: bool,
    pub error: Option<String>,
    pub selected: Option<String>,
    pub body: Option<Body>,
    pub open_error: Option<String>,
    /// Parameter values typed for the selected procedure.
    pub values: BTreeMap<String, String>,
    /// Why Run was refused (a missing parameter…), shown at the form.
    pub form_error: Option<String>,
    pub runs: Vec<RunRow>,
    pub runs_error: Option<String>,
    /// The running (or last) run's conversation.
    pub run: Thread,
    running: Option<Running>,
    /// What happened to the last run's record.
    pub stored: Option<Result<String, String>>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Refresh,
    Select(String),
    Param(String, String),
    Run,
    /// A link in the body (not followed: the body is the procedure's text).
    Link(String),
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    List,
    /// Opens the body of procedure `id` (the broker verifies and opens it).
    Open {
        id: String,
    },
    History {
        procedure_id: String,
    },
    StoreRun {
        scope: KeyScope,
        run: Box<ProcedureRun>,
    },
}

#[derive(Debug, Clone)]
pub enum Reply {
    Listed(Result<Vec<ProcedureRow>, DaemonError>),
    Opened {
        id: String,
        result: Result<Zeroizing<String>, DaemonError>,
    },
    History {
        procedure_id: String,
        result: Result<Vec<RunRow>, DaemonError>,
    },
    Stored {
        procedure_id: String,
        result: Result<String, DaemonError>,
    },
    /// The running procedure's turn.
    Turn(TurnReply),
}

fn store_err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Store(e.to_string())
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(store_err(e)))
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    let layout = d.layout().clone();
    match c {
        Call::List => Reply::Listed(blocking(move || list(&layout)).await),
        Call::Open { id } => {
            let key = id.clone();
            Reply::Opened {
                id,
                result: blocking(move || open(&layout, &key)).await,
            }
        }
        Call::History { procedure_id } => {
            let key = procedure_id.clone();
            Reply::History {
                procedure_id,
                result: blocking(move || history(&layout, &key)).await,
            }
        }
        Call::StoreRun { scope, run } => {
            let procedure_id = run.procedure_id.clone();
            Reply::Stored {
                procedure_id,
                result: blocking(move || {
                    let mut store = Store::open_in(&layout).map_err(store_err)?;
                    let mut sealer = BrokerSealer::connect(&layout).map_err(store_err)?;
                    let who = gatehouse_ipc::paths::local_user();
                    runbook::store_run(&mut store, &mut sealer, &who, scope, *run)
                        .map(|m: Meta| m.id)
                        .map_err(store_err)
                })
                .await,
            }
        }
    }
}

fn list(layout: &gatehouse_ipc::Layout) -> Result<Vec<ProcedureRow>, DaemonError> {
    let store = Store::open_in(layout).map_err(store_err)?;
    let orgs: BTreeMap<String, String> =
        store.org_names().map_err(store_err)?.into_iter().collect();
    let rows = store
        .list(&Filter::kind(Kind::Procedure))
        .map_err(store_err)?;
    let mut out: Vec<ProcedureRow> = rows
        .iter()
        .map(|s: &Summary| ProcedureRow {
            id: s.meta.id.clone(),
            name: s.name().to_string(),
            folder: s.folder().to_string(),
            scope: s.meta.scope.clone(),
            scope_label: match &s.meta.scope {
                KeyScope::Org(id) => orgs.get(id).cloned().unwrap_or_else(|| id.clone()),
                KeyScope::Private => "private".into(),
            },
            parameters: s
                .fields
                .get("parameters")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            read_only: s
                .fields
                .get("read_only")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
        .collect();
    out.sort_by(|a, b| (&a.folder, &a.name).cmp(&(&b.folder, &b.name)));
    Ok(out)
}

/// Verifies and opens procedure `id` through the broker (its MAC checked,
/// its body opened: the same as `gatehouse procedure show`).
fn open(layout: &gatehouse_ipc::Layout, id: &str) -> Result<Zeroizing<String>, DaemonError> {
    let store = Store::open_in(layout).map_err(store_err)?;
    let stored = store.get(Kind::Procedure, id).map_err(store_err)?;
    let mut sealer = BrokerSealer::connect(layout).map_err(store_err)?;
    let opened = Store::open_record(&mut sealer, &stored).map_err(store_err)?;
    match opened.record {
        Record::Procedure(p) => Ok(Zeroizing::new(p.body.expose().to_string())),
        _ => Err(DaemonError::Unexpected(format!("{id} is not a procedure"))),
    }
}

/// The runs of procedure `id`, newest first (plaintext fields only).
fn history(layout: &gatehouse_ipc::Layout, id: &str) -> Result<Vec<RunRow>, DaemonError> {
    let store = Store::open_in(layout).map_err(store_err)?;
    let rows = store
        .list(&Filter::kind(Kind::ProcedureRun))
        .map_err(store_err)?;
    let mut out: Vec<RunRow> = rows
        .iter()
        .filter(|s| s.str_field("procedure_id") == Some(id))
        .map(|s| RunRow {
            id: s.meta.id.clone(),
            started_ms: s
                .fields
                .get("started_ms")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            who: s.str_field("who").unwrap_or("").to_string(),
            outcome: s.str_field("outcome").unwrap_or("?").to_string(),
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
    Ok(out)
}

fn call(c: Call) -> Effect {
    Effect::Call(daemons::Call::Procedures(c))
}

impl Procedures {
    /// What the screen loads when the session starts: the list.
    pub fn load(&self) -> Vec<Effect> {
        vec![call(Call::List)]
    }

    fn row(&self, id: &str) -> Option<&ProcedureRow> {
        self.rows.iter().find(|r| r.id == id)
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Refresh => {
                let mut out = vec![call(Call::List)];
                if let Some(id) = &self.selected {
                    out.push(call(Call::History {
                        procedure_id: id.clone(),
                    }));
                }
                out
            }
            Message::Select(id) => {
                if self.selected.as_ref() == Some(&id) {
                    return vec![];
                }
                // One body open at a time: the last one is dropped here.
                self.body = None;
                self.open_error = None;
                self.form_error = None;
                self.values.clear();
                self.runs.clear();
                self.runs_error = None;
                if !self.run.busy {
                    self.run = Thread::default();
                    self.stored = None;
                }
                self.selected = Some(id.clone());
                vec![
                    call(Call::Open { id: id.clone() }),
                    call(Call::History { procedure_id: id }),
                ]
            }
            Message::Param(name, value) => {
                self.values.insert(name, value);
                vec![]
            }
            Message::Run => self.start_run(),
            Message::Link(_) => vec![],
        }
    }

    fn start_run(&mut self) -> Vec<Effect> {
        if self.run.busy {
            return vec![];
        }
        let Some(row) = self
            .selected
            .as_deref()
            .and_then(|id| self.row(id))
            .cloned()
        else {
            return vec![];
        };
        let Some(body) = self.body.as_ref().filter(|b| b.id == row.id) else {
            self.form_error = Some("The procedure's body is not open yet.".into());
            return vec![];
        };
        let given: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.trim().to_string()))
            .collect();
        let values = match runbook::bind_arguments(&row.name, &row.parameters, &given) {
            Ok(v) => v,
            Err(e) => {
                self.form_error = Some(e.to_string());
                return vec![];
            }
        };
        self.form_error = None;
        self.stored = None;
        let task = runbook::task(&row.name, &values, &body.text);
        let settings = ChatSettings {
            mode: Mode::Default,
            trust: Trust::Supervised,
            hosts: Vec::new(),
            org: Some(match &row.scope {
                KeyScope::Org(id) => id.clone(),
                KeyScope::Private => "private".into(),
            }),
            max_steps: MAX_STEPS,
            autopilot: None,
        };
        self.running = Some(Running {
            procedure_id: row.id.clone(),
            scope: row.scope.clone(),
            started_ms: now_ms(),
            values,
            task: task.clone(),
        });
        // Each run is its own conversation.
        self.run = Thread::default();
        vec![self.run.start(task, settings, Target::Procedures)]
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Listed(Ok(rows)) => {
                self.loaded = true;
                self.error = None;
                self.rows = rows;
                vec![]
            }
            Reply::Listed(Err(e)) => {
                self.loaded = true;
                self.error = Some(format!("Procedures: {e}"));
                vec![]
            }
            Reply::Opened { id, result } => {
                if self.selected.as_ref() != Some(&id) {
                    return vec![];
                }
                match result {
                    Ok(text) => {
                        let items = markdown::parse(&text).collect();
                        self.body = Some(Body { id, text, items });
                    }
                    Err(e) => self.open_error = Some(format!("Cannot open the procedure: {e}")),
                }
                vec![]
            }
            Reply::History {
                procedure_id,
                result,
            } => {
                if self.selected.as_ref() == Some(&procedure_id) {
                    match result {
                        Ok(r) => {
                            self.runs = r;
                            self.runs_error = None;
                        }
                        Err(e) => self.runs_error = Some(format!("Run history: {e}")),
                    }
                }
                vec![]
            }
            Reply::Stored {
                procedure_id,
                result,
            } => {
                self.stored = Some(result.map_err(|e| e.to_string()));
                vec![call(Call::History { procedure_id })]
            }
            Reply::Turn(t) => {
                let failed = matches!(t, TurnReply::Failed(_));
                let started = self.run.conversation.is_some();
                self.run.replied(t);
                if self.run.busy {
                    return vec![];
                }
                // The turn is over (or never started): store what it did.
                let Some(r) = self.running.take() else {
                    return vec![];
                };
                if failed && !started {
                    return vec![];
                }
                let transcript = std::mem::take(&mut self.run.turn);
                let run = transcript.into_run(
                    &r.procedure_id,
                    r.started_ms,
                    format!("copilot for {} (app)", gatehouse_ipc::paths::local_user()),
                    r.values,
                    r.task,
                );
                vec![call(Call::StoreRun {
                    scope: r.scope,
                    run: Box::new(run),
                })]
            }
        }
    }

    /// Forgets everything shown (sign-out): the opened body is zeroized.
    pub fn clear(&mut self) {
        *self = Procedures::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut list = column![
            row![
                text(format!("{} procedures", self.rows.len())).size(13),
                iced::widget::space::horizontal(),
                button(text("Refresh").size(13))
                    .style(button::text)
                    .on_press(Message::Refresh),
            ]
            .align_y(iced::Center)
        ]
        .spacing(4);
        if let Some(e) = &self.error {
            list = list.push(text(e.clone()).style(text::danger));
        }
        if self.loaded && self.rows.is_empty() {
            list = list.push(
                text("No procedures yet: add one with `gatehouse procedure add`.")
                    .style(text::secondary),
            );
        }
        for r in &self.rows {
            let label = format!(
                "{}{} · {}",
                if r.folder.is_empty() {
                    String::new()
                } else {
                    format!("{}/", r.folder)
                },
                r.name,
                r.scope_label
            );
            let b = button(text(label).size(13)).width(Fill);
            list = list.push(if self.selected.as_ref() == Some(&r.id) {
                b
            } else {
                b.style(button::secondary)
                    .on_press(Message::Select(r.id.clone()))
            });
        }
        let left = scrollable(list).width(FillPortion(1)).height(Fill);
        row![left, self.detail()].spacing(12).into()
    }

    fn detail(&self) -> Element<'_, Message> {
        let Some(r) = self.selected.as_deref().and_then(|id| self.row(id)) else {
            return container(
                text("Select a procedure to see its steps and run it.").style(text::secondary),
            )
            .width(FillPortion(3))
            .into();
        };
        let mut col = column![
            row![
                text(r.name.clone()).size(20),
                text(if r.read_only {
                    "read-only procedure"
                } else {
                    ""
                })
                .size(13)
                .style(text::success),
            ]
            .spacing(12)
            .align_y(iced::Center)
        ]
        .spacing(8);
        // The body (markdown).
        let body: Element<'_, Message> = match (&self.body, &self.open_error) {
            (Some(b), _) => markdown::view(&b.items, iced::Theme::Light).map(Message::Link),
            (None, Some(e)) => text(e.clone()).style(text::danger).into(),
            (None, None) => text("Opening…").style(text::secondary).into(),
        };
        col = col.push(
            container(scrollable(container(body).padding(6).width(Fill)).height(170))
                .width(Fill)
                .style(container::bordered_box),
        );
        // The parameters form.
        let mut form = column![].spacing(4);
        for p in &r.parameters {
            let placeholder = match &p.default {
                Some(d) => format!("{} (default {d})", p.description),
                None => p.description.clone(),
            };
            let name = p.name.clone();
            form = form.push(
                row![
                    text(p.name.clone()).font(crate::MONO).width(140),
                    text_input(
                        &placeholder,
                        self.values.get(&p.name).map_or("", String::as_str)
                    )
                    .id(param_id(&p.name))
                    .on_input(move |v| Message::Param(name.clone(), v))
                    .on_submit(Message::Run)
                    .size(13)
                    .padding(4),
                ]
                .spacing(8)
                .align_y(iced::Center),
            );
        }
        let can_run = !self.run.busy && self.body.as_ref().is_some_and(|b| b.id == r.id);
        form = form.push(
            row![
                button(text(if self.run.busy { "Running…" } else { "Run" }))
                    .on_press_maybe(can_run.then_some(Message::Run)),
                text("Each step is gated like chat: read-only runs, anything else waits on the approval card (Ctrl+4).")
                    .size(12)
                    .style(text::secondary),
            ]
            .spacing(10)
            .align_y(iced::Center),
        );
        if let Some(e) = &self.form_error {
            form = form.push(text(e.clone()).style(text::danger));
        }
        col = col.push(form);
        match &self.stored {
            Some(Ok(id)) => {
                col = col.push(
                    text(format!("Run stored (id {id}, sealed)."))
                        .size(13)
                        .style(text::success),
                )
            }
            Some(Err(e)) => {
                col = col.push(text(format!("The run was not stored: {e}")).style(text::danger))
            }
            None => {}
        }
        // The run's conversation, then the history.
        col = col.push(
            container(self.run.view("Runs show here as they go."))
                .height(FillPortion(3))
                .width(Fill),
        );
        let mut hist = column![text("Run history").size(14)].spacing(2);
        if let Some(e) = &self.runs_error {
            hist = hist.push(text(e.clone()).style(text::danger));
        }
        if self.runs.is_empty() {
            hist = hist.push(text("No runs yet.").size(13).style(text::secondary));
        }
        for run in &self.runs {
            let style = match run.outcome.as_str() {
                "succeeded" => text::success,
                "failed" => text::danger,
                _ => text::warning,
            };
            hist = hist.push(
                row![
                    text(format!("{} UTC", utc(run.started_ms)))
                        .size(13)
                        .width(200),
                    text(run.outcome.clone()).size(13).style(style).width(90),
                    text(run.who.clone()).size(13),
                ]
                .spacing(8),
            );
        }
        col.push(scrollable(hist).height(FillPortion(1)))
            .width(FillPortion(3))
            .into()
    }
}
