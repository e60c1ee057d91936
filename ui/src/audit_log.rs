//! The audit log: one filterable table over the logs `gatehouse audit log`
//! and `gatehouse records audit` show — record changes (the store's audit
//! table), the session log (everything sessiond ran or refused) and the
//! broker's credential log (every release, use or refusal of a credential).
//!
//! Owns: reading the three logs with their own readers
//! (`Store::audit`, `gatehouse_ipc::audit::sessions::read`,
//! `gatehouse_ipc::audit::read`), turning their rows into one shape (time,
//! source, actor, action, target, result), newest first, and the filter
//! (words, `source:…`, `is:refused`, or the buttons).
//!
//! Must never: open a sealed command text (the session log's commands stay
//! sealed here: no `OpenFields`), write to a log, or hide a damaged line
//! (its number is shown above the table).

use std::collections::HashMap;

use gatehouse_ipc::Layout;
use gatehouse_ipc::audit::CredentialRow;
use gatehouse_ipc::broker::Requester;
use gatehouse_ipc::display::utc;
use gatehouse_records::store::{Filter, Store};
use iced::widget::{button, checkbox, column, container, row, scrollable, text, text_input};
use iced::{Element, Fill, FillPortion};

use crate::app::Effect;
use crate::daemons::{self, Daemons};

/// The id of the filter field (Ctrl+F on this tab focuses it).
pub const FILTER_ID: &str = "audit-filter";
/// How many record-change rows are read (newest first).
pub const RECORD_ROWS: usize = 5000;

/// Which log a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Records,
    Sessions,
    Credentials,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Records, Source::Sessions, Source::Credentials];

    pub fn label(self) -> &'static str {
        match self {
            Source::Records => "records",
            Source::Sessions => "sessions",
            Source::Credentials => "credentials",
        }
    }
}

/// One row of any log, as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub time_ms: u64,
    pub source: Source,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub refused: bool,
}

/// The three logs, read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Newest first.
    pub rows: Vec<LogRow>,
    /// Damaged lines and unreadable logs (the rest still shown).
    pub warnings: Vec<String>,
}

#[derive(Debug, Default)]
pub struct AuditLog {
    pub loading: bool,
    pub loaded: Option<Loaded>,
    pub filter: String,
    /// The source buttons (None = every source).
    pub source: Option<Source>,
    pub refused_only: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Refresh,
    Filter(String),
    Source(Option<Source>),
    RefusedOnly(bool),
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    Load,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Loaded(Loaded),
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    match c {
        Call::Load => Reply::Loaded(
            daemons::on_files(&d, load)
                .await
                .unwrap_or_else(|e| Loaded {
                    rows: vec![],
                    warnings: vec![e],
                }),
        ),
    }
}

fn who(r: &Requester) -> String {
    format!("{} pid {}", r.role, r.pid)
}

/// An organization's name, or `id` itself when the name cache has none.
fn org_name<'a>(orgs: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    orgs.get(id).map_or(id, String::as_str)
}

/// Reads the three logs of `layout` (the files and the store only: no daemon).
pub fn load(layout: &Layout) -> Loaded {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    // Organizations are shown by name (the store's name cache); an id the
    // cache does not know is shown as it is.
    let mut orgs: HashMap<String, String> = HashMap::new();
    match Store::open_in(layout) {
        Ok(store) => {
            orgs = store
                .org_names()
                .map(|v| v.into_iter().collect())
                .unwrap_or_default();
            let names: HashMap<String, String> = store
                .list(&Filter::default())
                .map(|v| {
                    v.iter()
                        .map(|s| (s.meta.id.clone(), s.name().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            match store.audit(RECORD_ROWS) {
                Ok(a) => rows.extend(a.into_iter().map(|r| LogRow {
                    time_ms: r.at_ms,
                    source: Source::Records,
                    actor: r.actor,
                    action: r.action,
                    target: format!(
                        "{} {}",
                        r.kind,
                        names.get(&r.record_id).unwrap_or(&r.record_id)
                    ),
                    result: format!(
                        "revision {} ({})",
                        r.revision,
                        match r.scope.strip_prefix("org:") {
                            Some(id) => format!("org {}", org_name(&orgs, id)),
                            None => r.scope.clone(),
                        }
                    ),
                    refused: false,
                })),
                Err(e) => warnings.push(format!("record changes: {e}")),
            }
        }
        Err(e) => warnings.push(format!("records store: {e}")),
    }
    match gatehouse_ipc::audit::sessions::read(&layout.root) {
        Ok((sessions, bad)) => {
            warnings.extend(bad.into_iter().map(|b| format!("session log {b}")));
            rows.extend(sessions.into_iter().map(|r| {
                let mut result = r.outcome.describe();
                if let Some(a) = &r.approver {
                    result.push_str(&format!(" (approved by {})", who(a)));
                }
                LogRow {
                    time_ms: r.time_ms,
                    source: Source::Sessions,
                    actor: who(&r.requester),
                    action: format!("{} {}", r.kind, r.class),
                    target: format!("{} ({})", r.host, org_name(&orgs, &r.org)),
                    result,
                    refused: matches!(
                        r.outcome,
                        gatehouse_ipc::audit::sessions::Outcome::Refused { .. }
                    ),
                }
            }));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warnings.push(format!("session log: {e}")),
    }
    let creds = gatehouse_ipc::audit::credentials_log(&layout.root);
    match gatehouse_ipc::audit::read::<CredentialRow>(&creds) {
        Ok((cred_rows, bad)) => {
            warnings.extend(bad.into_iter().map(|b| format!("credential log {b}")));
            rows.extend(cred_rows.into_iter().map(|r| LogRow {
                time_ms: r.time_ms,
                source: Source::Credentials,
                actor: who(&r.requester),
                action: r.operation.to_string(),
                target: format!("{} → {}", r.credential, r.destination),
                result: match &r.refused {
                    None => "released".into(),
                    Some(why) => format!("REFUSED: {why}"),
                },
                refused: r.refused.is_some(),
            }));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warnings.push(format!("credential log: {e}")),
    }
    // Newest first; a stable sort keeps each log's own order within a millisecond.
    rows.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
    Loaded { rows, warnings }
}

impl LogRow {
    fn matches(&self, word: &str) -> bool {
        [
            &self.actor,
            &self.action,
            &self.target,
            &self.result,
            &utc(self.time_ms),
        ]
        .into_iter()
        .any(|f| f.to_lowercase().contains(word))
            || self.source.label().contains(word)
    }
}

impl AuditLog {
    /// The tab was opened: load once.
    pub fn shown(&mut self) -> Vec<Effect> {
        if self.loaded.is_none() && !self.loading {
            self.update(Message::Refresh)
        } else {
            vec![]
        }
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Refresh => {
                self.loading = true;
                return vec![Effect::Call(daemons::Call::Audit(Call::Load))];
            }
            Message::Filter(f) => self.filter = f,
            Message::Source(s) => self.source = s,
            Message::RefusedOnly(b) => self.refused_only = b,
        }
        vec![]
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Loaded(l) => {
                self.loading = false;
                self.loaded = Some(l);
            }
        }
        vec![]
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = AuditLog::default();
    }

    /// The rows the filter lets through, newest first. The filter box takes
    /// words (each must appear in some column), `source:NAME` and
    /// `is:refused`; the buttons do the same.
    pub fn visible(&self) -> Vec<&LogRow> {
        let mut source = self.source;
        let mut refused = self.refused_only;
        let mut words = Vec::new();
        for w in self.filter.split_whitespace().map(str::to_lowercase) {
            if let Some(s) = w.strip_prefix("source:") {
                source = Source::ALL
                    .into_iter()
                    .find(|x| x.label().starts_with(s))
                    .or(source);
            } else if w == "is:refused" {
                refused = true;
            } else {
                words.push(w);
            }
        }
        let Some(l) = &self.loaded else {
            return vec![];
        };
        l.rows
            .iter()
            .filter(|r| source.is_none_or(|s| r.source == s))
            .filter(|r| !refused || r.refused)
            .filter(|r| words.iter().all(|w| r.matches(w)))
            .collect()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut sources = row![].spacing(4);
        let all = button(text("All sources").size(13));
        sources = sources.push(if self.source.is_none() {
            all
        } else {
            all.style(button::secondary).on_press(Message::Source(None))
        });
        for s in Source::ALL {
            let b = button(text(s.label()).size(13));
            sources = sources.push(if self.source == Some(s) {
                b
            } else {
                b.style(button::secondary)
                    .on_press(Message::Source(Some(s)))
            });
        }
        let visible = self.visible();
        let total = self.loaded.as_ref().map(|l| l.rows.len()).unwrap_or(0);
        let mut col = column![
            row![
                text_input(
                    "Filter: words, source:records|sessions|credentials, is:refused (Ctrl+F)",
                    &self.filter
                )
                .id(FILTER_ID)
                .on_input(Message::Filter)
                .padding(6),
                button(text(if self.loading {
                    "Loading…"
                } else {
                    "Refresh"
                }))
                .on_press_maybe((!self.loading).then_some(Message::Refresh)),
            ]
            .spacing(8),
            row![
                sources,
                checkbox(self.refused_only)
                    .label("Refused only")
                    .on_toggle(Message::RefusedOnly),
                iced::widget::space::horizontal(),
                text(format!("{} of {total} rows, newest first", visible.len())).size(13),
            ]
            .spacing(12)
            .align_y(iced::Center),
        ]
        .spacing(8);
        if let Some(l) = &self.loaded {
            for w in &l.warnings {
                col = col.push(text(w.clone()).size(13).style(text::danger));
            }
        }
        let mut list = column![line(
            "TIME (UTC)",
            "SOURCE",
            "ACTOR",
            "ACTION",
            "TARGET",
            "RESULT",
            false
        )]
        .spacing(2);
        for r in visible {
            list = list.push(line(
                &utc(r.time_ms),
                r.source.label(),
                &r.actor,
                &r.action,
                &r.target,
                &r.result,
                r.refused,
            ));
        }
        if self.loaded.is_some() && total == 0 {
            list = list.push(text("Nothing logged yet."));
        }
        col.push(scrollable(container(list).width(Fill)).height(Fill))
            .into()
    }
}

fn line<'a>(
    time: &str,
    source: &str,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
    refused: bool,
) -> Element<'a, Message> {
    let cell = |s: &str, w: u16| text(s.to_string()).size(13).width(FillPortion(w));
    row![
        cell(time, 3),
        cell(source, 2),
        cell(actor, 3),
        cell(action, 3),
        text(target.to_string())
            .size(13)
            .font(crate::MONO)
            .width(FillPortion(5)),
        cell(result, 4).style(if refused { text::danger } else { text::default }),
    ]
    .spacing(6)
    .into()
}
