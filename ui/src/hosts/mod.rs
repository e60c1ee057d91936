//! The hosts screen: the list (folder tree, tags, vendor badges, search and
//! filters over plaintext fields), a host's detail with an explicit,
//! audited Reveal of one sealed field, the add/edit form with each error
//! shown at its field, and delete with confirmation.
//!
//! Owns: the loaded rows and their precomputed lowercase haystacks, the
//! filters, the selection, the organizations the switcher offers, the
//! detail ([`detail`]), the form ([`form`]) and the store/broker work behind
//! them ([`ops`], the same path as `gatehouse host …`).
//!
//! Must never: open a sealed field to list, search, filter or draw a mask
//! (the store's plaintext is enough); open anything but the one field a
//! person asked to reveal (or, for an edit, the record it re-seals, as the
//! CLI does); keep a revealed value once its detail closes or the session
//! ends; write anything when a check fails.

pub mod detail;
pub mod form;
pub mod ops;
pub mod seen;

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, KeyScope, OrgInfo};
use gatehouse_records::model::Secret;
use iced::keyboard::{Key, Modifiers, key::Named};
use iced::widget::{
    Column, Row, button, column, container, pick_list, row, scrollable, space, text, text_input,
};
use iced::{Color, Element, Fill};

use crate::app::Effect;
use crate::daemons::{self, Daemons, HostRow};
use detail::Shown;
use form::Form;
use ops::{Save, SaveError};

/// The id of the search field (Ctrl+F focuses it).
pub const SEARCH_ID: &str = "host-search";
/// The sidebar's host search (the same search text as the screen's).
pub const SIDEBAR_SEARCH_ID: &str = "sidebar-host-search";
/// At most this many host lines are drawn in the sidebar.
pub const SIDEBAR_MAX_DRAWN: usize = 200;

/// At most this many host lines are drawn; the count says how many match.
pub const MAX_DRAWN: usize = 300;

const ALL_VENDORS: &str = "All vendors";
const ALL_TAGS: &str = "All tags";
const ALL_FOLDERS: &str = "All folders";

/// The column the host list is sorted by (within each folder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Name,
    Address,
    Vendor,
    /// The newest session that reached the host.
    LastConnected,
    /// The last connection attempt's result.
    Reachability,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "Name",
            SortKey::Address => "Address",
            SortKey::Vendor => "Vendor",
            SortKey::LastConnected => "Last connected",
            SortKey::Reachability => "Reachability",
        }
    }
}

#[derive(Debug, Default)]
pub struct Hosts {
    /// Sorted by folder (component by component), then name.
    pub rows: Vec<HostRow>,
    /// Per row: its plaintext fields, lowercased, one per line.
    hay: Vec<String>,
    /// The vendor, tag and folder filters' options (built on load).
    options: (Vec<String>, Vec<String>, Vec<String>),
    pub search: String,
    pub vendor: Option<String>,
    pub tag: Option<String>,
    pub folder: Option<String>,
    /// Collapsed folder paths.
    pub collapsed: BTreeSet<String>,
    /// The column hosts are sorted by within their folder, and whether the
    /// order is reversed (a header clicked twice).
    pub sort: SortKey,
    pub descending: bool,
    /// The selected host's id.
    pub selected: Option<String>,
    /// Why the store could not be read, shown above the list.
    pub error: Option<String>,
    pub loaded: bool,
    /// The organizations (from the broker's `OrgList`).
    pub orgs: Vec<OrgInfo>,
    pub orgs_error: Option<String>,
    /// The open detail (and its revealed value, if any).
    pub shown: Option<Shown>,
    pub detail_error: Option<String>,
    pub form: Option<Form>,
    /// "Delete this host?" is open for the shown host.
    pub confirm_delete: bool,
    pub delete_error: Option<String>,
    /// What the last save or delete did.
    pub notice: Option<String>,
    /// Per host (record id or name): what the session log saw.
    pub seen: std::collections::HashMap<String, seen::Seen>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Search(String),
    Refresh,
    FilterVendor(String),
    FilterTag(String),
    FilterFolder(String),
    ToggleFolder(String),
    /// A column header was clicked: sort by it (again: reverse the order).
    SortBy(SortKey),
    Select(String),
    Up,
    Down,
    Connect(String),
    ConnectSelected,
    New,
    Edit,
    Form(form::Message),
    AskDelete,
    ConfirmDelete,
    CancelDelete,
    Reveal(String),
    /// The passphrase prompt a Reveal opened (the broker asked for presence).
    RevealPresence(crate::presence::Message),
    Hide,
    CloseDetail,
}

/// One-shot calls of the hosts screen (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    Orgs,
    /// Last connected and reachability, from the session log.
    Seen,
    Detail(String),
    Save(Box<Save>),
    Delete {
        id: String,
        revision: u64,
    },
    /// Reveal `field` of host `id`, with the passphrase typed into the
    /// prompt when the broker asked for it.
    Reveal {
        id: String,
        field: String,
        presence: Option<gatehouse_ipc::SecretBytes>,
    },
}

#[derive(Debug, Clone)]
pub enum Reply {
    Orgs(Result<Vec<OrgInfo>, String>),
    Seen(Result<std::collections::HashMap<String, seen::Seen>, String>),
    Detail(Result<ops::Detail, String>),
    Saved(Result<(String, u64), SaveError>),
    Deleted {
        id: String,
        result: Result<(), String>,
    },
    Revealed {
        id: String,
        field: String,
        result: Result<Secret, ops::RevealFailed>,
    },
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    let layout = d.layout().clone();
    match c {
        Call::Orgs => Reply::Orgs(
            match daemons::broker_call(&d, BrokerRequest::OrgList).await {
                Ok(BrokerResponse::Orgs(o)) => Ok(o),
                Ok(r) => Err(format!("unexpected answer: {r:?}")),
                Err(e) => Err(e.to_string()),
            },
        ),
        Call::Seen => Reply::Seen(ops::blocking(move || seen::load(&layout)).await),
        Call::Detail(id) => Reply::Detail(ops::blocking(move || ops::detail(&layout, &id)).await),
        Call::Save(s) => Reply::Saved(
            tokio::task::spawn_blocking(move || ops::save(&layout, *s))
                .await
                .unwrap_or_else(|e| {
                    Err(SaveError {
                        field: None,
                        message: format!("the save task failed: {e}"),
                    })
                }),
        ),
        Call::Delete { id, revision } => {
            let i = id.clone();
            Reply::Deleted {
                id,
                result: ops::blocking(move || ops::delete(&layout, &i, revision)).await,
            }
        }
        Call::Reveal {
            id,
            field,
            presence,
        } => {
            let (i, f) = (id.clone(), field.clone());
            // The passphrase moves into the request and is dropped (zeroized) with it.
            let result =
                tokio::task::spawn_blocking(move || ops::reveal(&layout, &i, &f, presence))
                    .await
                    .unwrap_or_else(|e| {
                        Err(ops::RevealFailed::Refused(format!(
                            "the hosts task failed: {e}"
                        )))
                    });
            Reply::Revealed { id, field, result }
        }
    }
}

fn call(c: Call) -> Effect {
    Effect::Call(crate::daemons::Call::Hosts(c))
}

/// An entry of the organization switcher ("All" or one organization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPick {
    /// The org id; None: all organizations.
    pub id: Option<String>,
    pub name: String,
}

impl std::fmt::Display for OrgPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Hosts {
    pub fn update(&mut self, msg: Message, org: Option<&str>) -> Vec<Effect> {
        match msg {
            Message::Search(s) => self.search = s,
            Message::SortBy(k) => {
                self.descending = self.sort == k && !self.descending;
                self.sort = k;
            }
            Message::Refresh => {
                return vec![
                    Effect::Call(crate::daemons::Call::LoadHosts),
                    call(Call::Orgs),
                    call(Call::Seen),
                ];
            }
            Message::FilterVendor(v) => self.vendor = (v != ALL_VENDORS).then_some(v),
            Message::FilterTag(v) => self.tag = (v != ALL_TAGS).then_some(v),
            Message::FilterFolder(v) => self.folder = (v != ALL_FOLDERS).then_some(v),
            Message::ToggleFolder(f) => {
                if !self.collapsed.remove(&f) {
                    self.collapsed.insert(f);
                }
            }
            Message::Select(id) => return self.select(id),
            Message::Up | Message::Down => {
                let visible = self.visible(org);
                if visible.is_empty() {
                    return vec![];
                }
                let at = self
                    .selected
                    .as_ref()
                    .and_then(|s| visible.iter().position(|i| &self.rows[*i].id == s));
                let next = match (at, matches!(msg, Message::Down)) {
                    (None, true) => 0,
                    (None, false) => visible.len() - 1,
                    (Some(i), true) => (i + 1).min(visible.len() - 1),
                    (Some(i), false) => i.saturating_sub(1),
                };
                let id = self.rows[visible[next]].id.clone();
                return self.select(id);
            }
            Message::Connect(id) => return connect(id),
            Message::ConnectSelected => {
                if let Some(id) = self.selected.clone() {
                    return connect(id);
                }
            }
            Message::New => {
                self.close_detail_values();
                self.form = Some(Form::new(&self.orgs, org));
                return vec![Effect::Focus(form::NAME_ID)];
            }
            Message::Edit => {
                if let Some(s) = self.shown.as_mut() {
                    s.hide();
                    self.form = Some(Form::edit(&s.detail));
                    return vec![Effect::Focus(form::NAME_ID)];
                }
            }
            Message::Form(form::Message::Cancel) => self.form = None,
            Message::Form(m) => {
                if let Some(save) = self.form.as_mut().and_then(|f| f.update(m)) {
                    self.notice = None;
                    return vec![call(Call::Save(Box::new(save)))];
                }
            }
            Message::AskDelete => {
                if self.shown.is_some() && self.form.is_none() {
                    self.confirm_delete = true;
                    self.delete_error = None;
                }
            }
            Message::CancelDelete => self.confirm_delete = false,
            Message::ConfirmDelete => {
                if let (true, Some(s)) = (self.confirm_delete, &self.shown) {
                    return vec![call(Call::Delete {
                        id: s.detail.id.clone(),
                        revision: s.detail.revision,
                    })];
                }
            }
            Message::Reveal(field) => {
                if let Some(s) = self.shown.as_mut()
                    && !s.revealing
                    && s.detail.sealed.contains(&field)
                {
                    s.revealing = true;
                    s.reveal_error = None;
                    s.presence = None;
                    return vec![call(Call::Reveal {
                        id: s.detail.id.clone(),
                        field,
                        presence: None,
                    })];
                }
            }
            Message::RevealPresence(m) => {
                let Some(s) = self.shown.as_mut() else {
                    return vec![];
                };
                let Some((field, prompt)) = s.presence.as_mut() else {
                    return vec![];
                };
                match prompt.update(m) {
                    crate::presence::Outcome::None => {}
                    crate::presence::Outcome::Cancelled => {
                        s.presence = None;
                        s.revealing = false;
                    }
                    crate::presence::Outcome::Send(presence) => {
                        s.revealing = true;
                        return vec![call(Call::Reveal {
                            id: s.detail.id.clone(),
                            field: field.clone(),
                            presence: Some(presence),
                        })];
                    }
                }
            }
            Message::Hide => {
                if let Some(s) = self.shown.as_mut() {
                    s.hide();
                }
            }
            Message::CloseDetail => {
                self.shown = None;
                self.confirm_delete = false;
            }
        }
        vec![]
    }

    /// Selects a host and loads its detail (dropping the previous one and
    /// any value it revealed).
    fn select(&mut self, id: String) -> Vec<Effect> {
        if self.shown.as_ref().is_some_and(|s| s.detail.id != id) {
            self.shown = None;
        }
        self.confirm_delete = false;
        self.detail_error = None;
        self.selected = Some(id.clone());
        vec![call(Call::Detail(id))]
    }

    /// Drops a revealed value (the form or another screen takes the place
    /// of the detail).
    fn close_detail_values(&mut self) {
        if let Some(s) = self.shown.as_mut() {
            s.hide();
        }
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Orgs(Ok(o)) => {
                self.orgs = o;
                self.orgs_error = None;
                if let Some(f) = self.form.as_mut()
                    && f.editing.is_none()
                {
                    f.scopes = form::scope_choices(&self.orgs);
                    if f.scope.is_none() {
                        f.scope = f.scopes.first().cloned();
                    }
                }
            }
            Reply::Orgs(Err(e)) => self.orgs_error = Some(e),
            Reply::Seen(Ok(s)) => self.seen = s,
            // The columns stay empty; the audit screen says what is wrong with the log.
            Reply::Seen(Err(_)) => self.seen.clear(),
            Reply::Detail(Ok(d)) => {
                if self.selected.as_ref() == Some(&d.id) {
                    self.shown = Some(Shown::new(d));
                }
            }
            Reply::Detail(Err(e)) => self.detail_error = Some(e),
            Reply::Saved(Ok((id, revision))) => {
                // The form (and the typed password in it) is dropped: zeroized.
                let name = self.form.take().map(|f| f.name).unwrap_or_default();
                self.notice = Some(format!("Saved host {name} (revision {revision})"));
                self.shown = None;
                self.selected = Some(id.clone());
                return vec![
                    Effect::Call(crate::daemons::Call::LoadHosts),
                    call(Call::Detail(id)),
                ];
            }
            Reply::Saved(Err(e)) => {
                if let Some(f) = self.form.as_mut() {
                    f.failed(e);
                }
            }
            Reply::Deleted { id, result: Ok(()) } => {
                self.confirm_delete = false;
                if self.shown.as_ref().is_some_and(|s| s.detail.id == id) {
                    let name = self
                        .shown
                        .take()
                        .map(|s| s.detail.text("name"))
                        .unwrap_or_default();
                    self.notice = Some(format!("Deleted host {name}"));
                }
                if self.selected.as_ref() == Some(&id) {
                    self.selected = None;
                }
                return vec![Effect::Call(crate::daemons::Call::LoadHosts)];
            }
            Reply::Deleted { result: Err(e), .. } => self.delete_error = Some(e),
            Reply::Revealed { id, field, result } => {
                // A reveal for a detail that is no longer shown is dropped here.
                if let Some(s) = self.shown.as_mut().filter(|s| s.detail.id == id) {
                    match result {
                        Ok(v) => s.set_revealed(field, v),
                        // The broker wants the passphrase: ask for it (the
                        // prompt stays, with the refusal, after a wrong one).
                        Err(ops::RevealFailed::PresenceRequired(why)) => {
                            s.revealing = false;
                            s.presence = Some((field, crate::presence::Prompt::new(why)));
                            return vec![Effect::Focus(crate::presence::PROMPT_ID)];
                        }
                        Err(ops::RevealFailed::Refused(e)) => {
                            s.revealing = false;
                            match s.presence.as_mut() {
                                Some((_, prompt)) => prompt.refused(e),
                                None => s.reveal_error = Some(e),
                            }
                        }
                    }
                }
            }
        }
        vec![]
    }

    /// The list, from the store (sorted for the folder tree, haystacks built once).
    pub fn loaded(&mut self, result: Result<Vec<HostRow>, String>) {
        self.loaded = true;
        match result {
            Ok(mut rows) => {
                rows.sort_by(|a, b| {
                    a.folder
                        .split('/')
                        .cmp(b.folder.split('/'))
                        .then_with(|| a.name.cmp(&b.name))
                });
                self.hay = rows.iter().map(haystack).collect();
                self.options = filter_options(&rows);
                self.rows = rows;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Whether a revealed value is held (tests: dropped at close and sign-out).
    pub fn holds_revealed(&self) -> bool {
        self.shown.as_ref().is_some_and(Shown::is_revealed)
    }

    /// The indices of the rows the filters and search match, in tree order
    /// (folders together, hosts within a folder by the sort column):
    /// every search word (case-insensitive) must appear in some plaintext
    /// field; vendor, tag, folder (and subfolders) and organization exactly.
    pub fn visible(&self, org: Option<&str>) -> Vec<usize> {
        let matching = self.matching(org);
        if self.sort == SortKey::Name && !self.descending {
            // The rows' own order (set on load).
            return matching;
        }
        let mut keyed: Vec<(usize, String)> = matching
            .into_iter()
            .map(|i| {
                let r = &self.rows[i];
                let k = match self.sort {
                    SortKey::Name => r.name.clone(),
                    SortKey::Address => sortable_address(&r.address, &r.port),
                    SortKey::Vendor => r.vendor.to_lowercase(),
                    // Never connected sorts first (ascending), oldest next.
                    SortKey::LastConnected => self
                        .seen_of(r)
                        .and_then(|s| s.last_connected)
                        .map_or(String::new(), |t| format!("{t:020}")),
                    // Reachable, then unreachable, then unknown; newest first within.
                    SortKey::Reachability => match self.seen_of(r).and_then(|s| s.reach.as_ref()) {
                        Some(x) => format!(
                            "{}{:020}",
                            if x.reachable { 0 } else { 1 },
                            u64::MAX - x.at_ms
                        ),
                        None => "2".into(),
                    },
                };
                (i, k)
            })
            .collect();
        // Folders stay together (in tree order); within one, by the key.
        keyed.sort_by(|(a, ka), (b, kb)| {
            let (ra, rb) = (&self.rows[*a], &self.rows[*b]);
            ra.folder
                .split('/')
                .cmp(rb.folder.split('/'))
                .then_with(|| {
                    let o = ka.cmp(kb).then_with(|| ra.name.cmp(&rb.name));
                    if self.descending { o.reverse() } else { o }
                })
        });
        keyed.into_iter().map(|(i, _)| i).collect()
    }

    /// What the session log saw of host `r` (by record id, else by name).
    pub fn seen_of(&self, r: &HostRow) -> Option<&seen::Seen> {
        self.seen.get(&r.id).or_else(|| self.seen.get(&r.name))
    }

    /// The rows the filters and search match, in folder-then-name order.
    fn matching(&self, org: Option<&str>) -> Vec<usize> {
        let words: Vec<String> = self
            .search
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let folder_prefix = self.folder.as_ref().map(|f| format!("{f}/"));
        (0..self.rows.len())
            .filter(|&i| {
                let r = &self.rows[i];
                org.is_none_or(|o| matches!(&r.scope, KeyScope::Org(id) if id == o))
                    && self.vendor.as_ref().is_none_or(|v| &r.vendor == v)
                    && self.tag.as_ref().is_none_or(|t| r.tags.contains(t))
                    && self.folder.as_ref().is_none_or(|f| {
                        &r.folder == f
                            || folder_prefix
                                .as_ref()
                                .is_some_and(|p| r.folder.starts_with(p.as_str()))
                    })
                    && words.iter().all(|w| self.hay[i].contains(w.as_str()))
            })
            .collect()
    }

    /// The organization switcher's entries: All, then each organization.
    pub fn org_choices(&self) -> Vec<OrgPick> {
        std::iter::once(OrgPick {
            id: None,
            name: "All".into(),
        })
        .chain(self.orgs.iter().map(|o| OrgPick {
            id: Some(o.id.clone()),
            name: o.name.clone(),
        }))
        .collect()
    }

    /// The switcher's current entry for `org`.
    pub fn org_pick(&self, org: Option<&str>) -> OrgPick {
        self.org_choices()
            .into_iter()
            .find(|p| p.id.as_deref() == org)
            .unwrap_or(OrgPick {
                id: org.map(str::to_string),
                name: org.unwrap_or("All").to_string(),
            })
    }

    /// The message a key press stands for on this screen (the keys are
    /// listed in the command palette); keys typed into a text field never get here.
    pub fn key(&self, key: &Key, m: Modifiers) -> Option<Message> {
        if self.form.is_some() {
            return matches!(key, Key::Named(Named::Escape))
                .then_some(Message::Form(form::Message::Cancel));
        }
        if self.confirm_delete {
            return match key {
                Key::Named(Named::Enter) => Some(Message::ConfirmDelete),
                Key::Named(Named::Escape) => Some(Message::CancelDelete),
                _ => None,
            };
        }
        // A Reveal's passphrase prompt is open: only its keys.
        if self.shown.as_ref().is_some_and(|s| s.presence.is_some()) {
            use crate::presence::Message as P;
            return match key {
                Key::Named(Named::Enter) => Some(Message::RevealPresence(P::Submit)),
                Key::Named(Named::Escape) => Some(Message::RevealPresence(P::Cancel)),
                _ => None,
            };
        }
        match key {
            Key::Named(Named::ArrowUp) => Some(Message::Up),
            Key::Named(Named::ArrowDown) => Some(Message::Down),
            Key::Named(Named::Enter) => Some(Message::ConnectSelected),
            Key::Named(Named::Delete) => Some(Message::AskDelete),
            Key::Named(Named::Escape) if self.shown.is_some() => Some(Message::CloseDetail),
            Key::Character(c) if m.command() && c.as_str().eq_ignore_ascii_case("n") => {
                Some(Message::New)
            }
            Key::Character(c) if m.is_empty() && c.as_str().eq_ignore_ascii_case("e") => {
                self.shown.as_ref().map(|_| Message::Edit)
            }
            Key::Character(c) if m.is_empty() && c.as_str().eq_ignore_ascii_case("v") => self
                .shown
                .as_ref()
                .and_then(Shown::default_reveal)
                .map(Message::Reveal),
            _ => None,
        }
    }

    pub fn view(&self, org: Option<&str>) -> Element<'_, Message> {
        self.view_marked(org, &BTreeSet::new())
    }

    /// The screen, hosts named in `open` (by record id or name) marked ● as
    /// having an open terminal session.
    pub fn view_marked(&self, org: Option<&str>, open: &BTreeSet<String>) -> Element<'_, Message> {
        if let Some(f) = &self.form {
            return scrollable(container(f.view().map(Message::Form)).padding(4))
                .height(Fill)
                .into();
        }
        let visible = self.visible(org);
        let (vendors, tags, folders) = &self.options;
        let top = row![
            text_input(
                "Search hosts: name, address, vendor, tag, folder (Ctrl+F)",
                &self.search
            )
            .id(SEARCH_ID)
            .on_input(Message::Search)
            .padding(6)
            .width(iced::FillPortion(3)),
            pick_list(
                vendors.as_slice(),
                Some(self.vendor.clone().unwrap_or(ALL_VENDORS.into())),
                Message::FilterVendor
            )
            .text_size(13),
            pick_list(
                tags.as_slice(),
                Some(self.tag.clone().unwrap_or(ALL_TAGS.into())),
                Message::FilterTag
            )
            .text_size(13),
            pick_list(
                folders.as_slice(),
                Some(self.folder.clone().unwrap_or(ALL_FOLDERS.into())),
                Message::FilterFolder
            )
            .text_size(13),
            button(text("New host (Ctrl+N)").size(13)).on_press(Message::New),
            button(text("Refresh").size(13))
                .style(button::secondary)
                .on_press(Message::Refresh),
        ]
        .spacing(6)
        .align_y(iced::Center);
        let total = match org {
            None => self.rows.len(),
            Some(o) => self
                .rows
                .iter()
                .filter(|r| matches!(&r.scope, KeyScope::Org(id) if id == o))
                .count(),
        };
        let mut col = column![
            top,
            text(format!("{} of {} hosts", visible.len(), total)).size(13),
        ]
        .spacing(6);
        for e in [&self.error, &self.orgs_error, &self.detail_error]
            .into_iter()
            .flatten()
        {
            col = col.push(text(e.clone()).style(text::danger));
        }
        if let Some(n) = &self.notice {
            col = col.push(text(n.clone()).style(text::success));
        }
        let list = column![
            self.headers(),
            scrollable(container(self.tree(&visible, open)).width(Fill)).height(Fill),
        ]
        .spacing(2);
        let body: Element<'_, Message> = match &self.shown {
            Some(s) => {
                let mut side = column![].spacing(8);
                if self.confirm_delete {
                    side = side.push(self.confirm_delete_view(s));
                }
                side = side.push(s.view(detail::scope_label(&s.detail.scope, &self.orgs)));
                row![
                    container(list).width(iced::FillPortion(3)),
                    scrollable(side).width(iced::FillPortion(2)).height(Fill),
                ]
                .spacing(10)
                .into()
            }
            None => list.into(),
        };
        // The keys are listed in the command palette (Ctrl+Shift+P).
        col.push(body).into()
    }

    fn confirm_delete_view<'a>(&'a self, s: &'a Shown) -> Element<'a, Message> {
        let mut col = column![
            text(format!("Delete host {}?", s.detail.text("name"))).size(18),
            text("The record and its sealed fields are removed from the store (audited)."),
            row![
                button(text("Delete (Enter)"))
                    .style(button::danger)
                    .on_press(Message::ConfirmDelete),
                button(text("Keep it (Esc)"))
                    .style(button::secondary)
                    .on_press(Message::CancelDelete),
            ]
            .spacing(8),
        ]
        .spacing(6);
        if let Some(e) = &self.delete_error {
            col = col.push(text(format!("Delete failed: {e}")).style(text::danger));
        }
        container(col)
            .padding(10)
            .width(Fill)
            .style(container::bordered_box)
            .into()
    }

    /// The visible rows as a folder tree (collapsible folders, hosts under
    /// their folder), at most [`MAX_DRAWN`] host lines.
    fn tree(&self, visible: &[usize], sessions: &BTreeSet<String>) -> Element<'_, Message> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for &i in visible {
            let parts: Vec<&str> = self.rows[i].folder.split('/').collect();
            for n in 1..=parts.len() {
                if !parts[0].is_empty() {
                    *counts.entry(parts[..n].join("/")).or_default() += 1;
                }
            }
        }
        let mut col: Column<'_, Message> = column![].spacing(2);
        let mut open: Vec<&str> = Vec::new();
        let mut drawn = 0;
        for &i in visible {
            let r = &self.rows[i];
            let parts: Vec<&str> = r.folder.split('/').filter(|p| !p.is_empty()).collect();
            let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            open.truncate(common);
            let mut hidden = (0..common).any(|d| self.collapsed.contains(&parts[..=d].join("/")));
            for d in common..parts.len() {
                open.push(parts[d]);
                let path = parts[..=d].join("/");
                if !hidden {
                    let collapsed = self.collapsed.contains(&path);
                    col = col.push(folder_line(
                        d,
                        parts[d],
                        &path,
                        collapsed,
                        counts.get(&path).copied().unwrap_or(0),
                    ));
                    hidden = collapsed;
                }
            }
            if hidden {
                continue;
            }
            if drawn == MAX_DRAWN {
                col = col.push(
                    text(format!(
                        "… {} more: refine the search or a filter",
                        visible.len() - drawn
                    ))
                    .size(13),
                );
                break;
            }
            drawn += 1;
            let marked = sessions.contains(&r.id) || sessions.contains(&r.name);
            col = col.push(self.host_line(r, parts.len(), marked));
        }
        if self.loaded && self.rows.is_empty() {
            col = col.push(text(
                "No hosts yet: add one with New host (Ctrl+N) or `gatehouse host add`.",
            ));
        }
        col.into()
    }

    /// The sidebar's host tree: the same rows, search and collapsed folders
    /// as the screen, drawn compact (vendor badge, name, ● for an open
    /// session). A click selects a host (its detail opens), a double click
    /// connects.
    pub fn sidebar_view(
        &self,
        org: Option<&str>,
        sessions: &BTreeSet<String>,
    ) -> Element<'_, Message> {
        let visible = self.visible(org);
        let mut col: Column<'_, Message> = column![
            text_input("Search hosts", &self.search)
                .id(SIDEBAR_SEARCH_ID)
                .on_input(Message::Search)
                .size(13)
                .padding(4),
        ]
        .spacing(1);
        let mut open: Vec<&str> = Vec::new();
        let mut drawn = 0;
        for &i in &visible {
            let r = &self.rows[i];
            let parts: Vec<&str> = r.folder.split('/').filter(|p| !p.is_empty()).collect();
            let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            open.truncate(common);
            let mut hidden = (0..common).any(|d| self.collapsed.contains(&parts[..=d].join("/")));
            for d in common..parts.len() {
                open.push(parts[d]);
                let path = parts[..=d].join("/");
                if !hidden {
                    let collapsed = self.collapsed.contains(&path);
                    let arrow = if collapsed { "▸" } else { "▾" };
                    col = col.push(row![
                        space::horizontal().width(indent(d) / 2.0),
                        button(text(format!("{arrow} {}", parts[d])).size(13))
                            .padding([1, 2])
                            .style(button::text)
                            .on_press(Message::ToggleFolder(path.clone())),
                    ]);
                    hidden = collapsed;
                }
            }
            if hidden {
                continue;
            }
            if drawn == SIDEBAR_MAX_DRAWN {
                col = col.push(
                    text(format!("… {} more", visible.len() - drawn))
                        .size(12)
                        .style(text::secondary),
                );
                break;
            }
            drawn += 1;
            let marked = sessions.contains(&r.id) || sessions.contains(&r.name);
            let selected = self.selected.as_ref() == Some(&r.id);
            let (mark, color) = vendor_mark(&r.vendor);
            let mut line = row![
                space::horizontal().width(indent(parts.len()) / 2.0),
                container(text(mark).size(9).font(crate::MONO))
                    .width(28)
                    .center_x(28)
                    .style(move |_: &iced::Theme| container::Style {
                        background: Some(color.into()),
                        text_color: Some(Color::WHITE),
                        border: iced::Border {
                            radius: 3.0.into(),
                            ..iced::Border::default()
                        },
                        ..container::Style::default()
                    }),
                text(r.name.as_str()).size(13),
            ]
            .spacing(5)
            .align_y(iced::Center);
            if marked {
                line = line.push(text("●").size(11).color(Color::from_rgb8(0x22, 0xC5, 0x5E)));
            }
            let b = container(line).padding([1, 2]).width(Fill);
            let b = if selected {
                b.style(container::primary)
            } else {
                b
            };
            col = col.push(
                iced::widget::mouse_area(b)
                    .on_press(Message::Select(r.id.clone()))
                    .on_double_click(Message::Connect(r.id.clone())),
            );
        }
        col.into()
    }

    /// The list's column headers; clicking one sorts by it (twice: reversed),
    /// the current one marked ▲ / ▼.
    fn headers(&self) -> Element<'_, Message> {
        let header = |k: SortKey, portion: u16| -> Element<'_, Message> {
            let mark = match (self.sort == k, self.descending) {
                (false, _) => "",
                (true, false) => " ▲",
                (true, true) => " ▼",
            };
            button(text(format!("{}{mark}", k.label())).size(13))
                .padding([2, 6])
                .style(button::text)
                .width(iced::FillPortion(portion))
                .on_press(Message::SortBy(k))
                .into()
        };
        // Beside an open detail the list keeps name, address and reachability.
        if self.shown.is_some() {
            return row![
                space::horizontal().width(VENDOR_BADGE_WIDTH),
                header(SortKey::Name, 4),
                header(SortKey::Address, 3),
                header(SortKey::Reachability, 2),
            ]
            .spacing(6)
            .align_y(iced::Center)
            .into();
        }
        row![
            space::horizontal().width(VENDOR_BADGE_WIDTH),
            header(SortKey::Name, 3),
            header(SortKey::Address, 3),
            header(SortKey::Vendor, 2),
            header(SortKey::LastConnected, 3),
            header(SortKey::Reachability, 3),
            text("Tags")
                .size(13)
                .style(text::secondary)
                .width(iced::FillPortion(3)),
        ]
        .spacing(6)
        .align_y(iced::Center)
        .into()
    }

    fn host_line<'a>(&'a self, r: &'a HostRow, depth: usize, open: bool) -> Element<'a, Message> {
        let selected = self.selected.as_ref() == Some(&r.id);
        let address = if r.port.is_empty() || r.port == "22" {
            r.address.clone()
        } else {
            format!("{}:{}", r.address, r.port)
        };
        let mut tags = Row::new().spacing(4);
        for t in &r.tags {
            tags = tags.push(chip(t));
        }
        let seen = self.seen_of(r);
        let last_connected = text(
            seen.and_then(|s| s.last_connected)
                .map_or("—".to_string(), short_time),
        )
        .size(12)
        .width(iced::FillPortion(3));
        let reach: Element<'a, Message> = match seen.and_then(|s| s.reach.as_ref()) {
            None => text("unknown")
                .size(12)
                .style(text::secondary)
                .width(iced::FillPortion(3))
                .into(),
            Some(x) if x.reachable => text(format!("✓ reachable {}", short_time(x.at_ms)))
                .size(12)
                .style(text::success)
                .width(iced::FillPortion(3))
                .into(),
            Some(x) => text(format!("✗ unreachable {}", short_time(x.at_ms)))
                .size(12)
                .style(text::danger)
                .width(iced::FillPortion(3))
                .into(),
        };
        let label = if open {
            row![
                text(r.name.as_str()).size(14),
                text("●").size(12).color(Color::from_rgb8(0x22, 0xC5, 0x5E)),
            ]
        } else {
            row![text(r.name.as_str()).size(14)]
        };
        let name = button(label.spacing(6).align_y(iced::Center))
            .padding([2, 6])
            .style(if selected {
                button::primary
            } else {
                button::text
            })
            .on_press(Message::Select(r.id.clone()));
        if self.shown.is_some() {
            let mark: Element<'a, Message> = match seen.and_then(|s| s.reach.as_ref()) {
                None => text("—").size(12).style(text::secondary).into(),
                Some(x) if x.reachable => text("✓").size(13).style(text::success).into(),
                Some(_) => text("✗").size(13).style(text::danger).into(),
            };
            return row![
                space::horizontal().width(indent(depth)),
                vendor_badge(&r.vendor),
                container(name).width(iced::FillPortion(4)),
                text(address)
                    .font(crate::MONO)
                    .size(13)
                    .width(iced::FillPortion(3)),
                container(mark).width(iced::FillPortion(2)),
            ]
            .spacing(6)
            .align_y(iced::Center)
            .into();
        }
        row![
            space::horizontal().width(indent(depth)),
            vendor_badge(&r.vendor),
            container(name).width(iced::FillPortion(3)),
            text(address)
                .font(crate::MONO)
                .size(13)
                .width(iced::FillPortion(3)),
            text(r.vendor.as_str())
                .size(12)
                .style(text::secondary)
                .width(iced::FillPortion(2)),
            last_connected,
            reach,
            container(tags).width(iced::FillPortion(3)),
        ]
        .spacing(6)
        .align_y(iced::Center)
        .into()
    }
}

/// A time in the host list: `2026-12-06 02:14` (UTC, to the minute).
fn short_time(ms: u64) -> String {
    let full = gatehouse_ipc::display::utc(ms);
    full.get(..16).unwrap_or(&full).to_string()
}

/// An address as it sorts: IPv4 numerically (10.0.0.9 before 10.0.0.10),
/// anything else as text after every IPv4; the port breaks ties.
fn sortable_address(address: &str, port: &str) -> String {
    let port = port.parse::<u32>().unwrap_or(22);
    match address.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => format!("0{:010}:{port:05}", u32::from(ip)),
        Err(_) => format!("1{}:{port:05}", address.to_lowercase()),
    }
}

/// The options of the vendor, tag and folder filters (from the rows).
fn filter_options(rows: &[HostRow]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut v = BTreeSet::new();
    let mut t = BTreeSet::new();
    let mut f = BTreeSet::new();
    for r in rows {
        v.insert(r.vendor.clone());
        t.extend(r.tags.iter().cloned());
        let parts: Vec<&str> = r.folder.split('/').filter(|p| !p.is_empty()).collect();
        for i in 1..=parts.len() {
            f.insert(parts[..i].join("/"));
        }
    }
    let with = |all: &str, s: BTreeSet<String>| {
        std::iter::once(all.to_string())
            .chain(s)
            .collect::<Vec<_>>()
    };
    (
        with(ALL_VENDORS, v),
        with(ALL_TAGS, t),
        with(ALL_FOLDERS, f),
    )
}

fn connect(id: String) -> Vec<Effect> {
    vec![Effect::Then(Box::new(crate::app::Message::Terminal(
        crate::terminal::Message::Open { host: id },
    )))]
}

fn indent(depth: usize) -> f32 {
    (depth as f32) * 16.0
}

fn haystack(r: &HostRow) -> String {
    let mut h = String::new();
    for f in [&r.name, &r.address, &r.port, &r.vendor, &r.folder]
        .into_iter()
        .chain(&r.tags)
    {
        h.push_str(&f.to_lowercase());
        h.push('\n');
    }
    h
}

fn folder_line<'a>(
    depth: usize,
    name: &str,
    path: &str,
    collapsed: bool,
    count: usize,
) -> Element<'a, Message> {
    let arrow = if collapsed { "▸" } else { "▾" };
    row![
        space::horizontal().width(indent(depth)),
        button(text(format!("{arrow} {name}/  ({count})")).size(14))
            .padding([2, 4])
            .style(button::text)
            .on_press(Message::ToggleFolder(path.to_string())),
    ]
    .into()
}

/// A tag, drawn as a chip.
fn chip<'a>(t: &str) -> Element<'a, Message> {
    container(text(t.to_string()).size(12))
        .padding([1, 6])
        .style(|theme: &iced::Theme| {
            let p = theme.extended_palette();
            container::Style {
                background: Some(p.background.weak.color.into()),
                text_color: Some(p.background.weak.text),
                border: iced::Border {
                    radius: 8.0.into(),
                    width: 1.0,
                    color: p.background.strong.color,
                },
                ..container::Style::default()
            }
        })
        .into()
}

/// A vendor's badge: a short mark on the vendor's color.
pub fn vendor_mark(vendor: &str) -> (&'static str, Color) {
    let rgb = |r: u8, g: u8, b: u8| Color::from_rgb8(r, g, b);
    match vendor {
        "routeros" => ("RoS", rgb(0x29, 0x3a, 0x8c)),
        "ios" => ("IOS", rgb(0x04, 0x9f, 0xd9)),
        "iosxe" => ("XE", rgb(0x00, 0x70, 0xa8)),
        "nxos" => ("NX", rgb(0x00, 0x5c, 0x8a)),
        "junos" => ("JUN", rgb(0x2e, 0x7d, 0x32)),
        "eos" => ("EOS", rgb(0x1a, 0x23, 0x7e)),
        "linux" => ("LNX", rgb(0x33, 0x33, 0x33)),
        "onvif-camera" => ("CAM", rgb(0x8e, 0x24, 0xaa)),
        _ => ("?", rgb(0x75, 0x75, 0x75)),
    }
}

/// The width of a host line's vendor badge.
const VENDOR_BADGE_WIDTH: f32 = 40.0;

fn vendor_badge<'a>(vendor: &str) -> Element<'a, Message> {
    let (mark, color) = vendor_mark(vendor);
    container(text(mark).size(11).font(crate::MONO))
        .width(VENDOR_BADGE_WIDTH)
        .padding([1, 4])
        .center_x(VENDOR_BADGE_WIDTH)
        .style(move |_: &iced::Theme| container::Style {
            background: Some(color.into()),
            text_color: Some(Color::WHITE),
            border: iced::Border {
                radius: 4.0.into(),
                ..iced::Border::default()
            },
            ..container::Style::default()
        })
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_sort_within_folders_and_reverse_on_a_second_click() {
        let mut rows = generated_hosts(4);
        for (r, (folder, name, addr)) in rows.iter_mut().zip([
            ("dc1", "b", "10.0.0.10"),
            ("dc1", "a", "10.0.0.9"),
            ("dc2", "c", "10.0.0.1"),
            ("dc1", "z", "host.example"),
        ]) {
            r.folder = folder.into();
            r.name = name.into();
            r.address = addr.into();
            r.port = "22".into();
        }
        let mut h = Hosts::default();
        h.loaded(Ok(rows));
        let names = |h: &Hosts| -> Vec<String> {
            h.visible(None)
                .iter()
                .map(|&i| h.rows[i].name.clone())
                .collect()
        };
        assert_eq!(names(&h), ["a", "b", "z", "c"]);
        h.update(Message::SortBy(SortKey::Address), None);
        // 10.0.0.9 before 10.0.0.10; names after every IPv4; dc2 after dc1.
        assert_eq!(names(&h), ["a", "b", "z", "c"]);
        h.update(Message::SortBy(SortKey::Address), None);
        assert!(h.descending);
        assert_eq!(names(&h), ["z", "b", "a", "c"]);
        h.update(Message::SortBy(SortKey::Name), None);
        assert!(!h.descending, "a new column starts ascending");
        assert_eq!(names(&h), ["a", "b", "z", "c"]);
    }
    use crate::bench::generated_hosts;

    #[test]
    fn last_connected_and_reachability_columns_sort() {
        let mut rows = generated_hosts(4);
        for (r, name) in rows.iter_mut().zip(["a", "b", "c", "d"]) {
            r.folder = "dc".into();
            r.name = name.into();
        }
        let mut h = Hosts::default();
        h.loaded(Ok(rows));
        let reach = |ok: bool, at: u64| seen::Reach {
            reachable: ok,
            at_ms: at,
            why: None,
        };
        // a: connected at 30, reachable; b: connected at 10, last attempt
        // failed at 40; c: never seen; d: connected at 20 (by record id).
        h.seen.insert(
            "a".into(),
            seen::Seen {
                last_connected: Some(30),
                reach: Some(reach(true, 30)),
            },
        );
        h.seen.insert(
            "b".into(),
            seen::Seen {
                last_connected: Some(10),
                reach: Some(reach(false, 40)),
            },
        );
        let d_id = h.rows.iter().find(|r| r.name == "d").unwrap().id.clone();
        h.seen.insert(
            d_id,
            seen::Seen {
                last_connected: Some(20),
                reach: Some(reach(true, 20)),
            },
        );
        let names = |h: &Hosts| -> Vec<String> {
            h.visible(None)
                .iter()
                .map(|&i| h.rows[i].name.clone())
                .collect()
        };
        h.update(Message::SortBy(SortKey::LastConnected), None);
        assert_eq!(names(&h), ["c", "b", "d", "a"], "never, then oldest first");
        h.update(Message::SortBy(SortKey::LastConnected), None);
        assert_eq!(names(&h), ["a", "d", "b", "c"], "newest first");
        h.update(Message::SortBy(SortKey::Reachability), None);
        assert_eq!(
            names(&h),
            ["a", "d", "b", "c"],
            "reachable (newest first), unreachable, unknown"
        );
    }

    #[test]
    fn search_filters_and_org_over_plaintext() {
        let mut h = Hosts::default();
        h.loaded(Ok(generated_hosts(600)));
        assert_eq!(h.visible(None).len(), 600);
        assert_eq!(h.visible(Some("org1")).len(), 200);
        h.search = "CORE-04".into();
        let v = h.visible(None);
        assert!(!v.is_empty() && v.iter().all(|&i| h.rows[i].name.starts_with("core-04")));
        h.search = String::new();
        h.vendor = Some("junos".into());
        assert_eq!(h.visible(None).len(), 120);
        h.vendor = None;
        h.folder = Some("region1".into());
        let v = h.visible(None);
        assert!(!v.is_empty() && v.iter().all(|&i| h.rows[i].folder.starts_with("region1/")));
        h.folder = Some("region".into());
        assert!(
            h.visible(None).is_empty(),
            "a folder filter matches whole components"
        );
        h.folder = None;
        h.tag = Some("site03".into());
        let v = h.visible(None);
        assert!(!v.is_empty() && v.iter().all(|&i| h.rows[i].tags.contains(&"site03".into())));
    }

    #[test]
    fn tree_order_keeps_folders_together() {
        let mut rows = generated_hosts(3);
        rows[0].folder = "dc1/core".into();
        rows[1].folder = "dc1-x".into();
        rows[2].folder = "dc1".into();
        let mut h = Hosts::default();
        h.loaded(Ok(rows));
        let folders: Vec<&str> = h.rows.iter().map(|r| r.folder.as_str()).collect();
        assert_eq!(folders, ["dc1", "dc1/core", "dc1-x"]);
    }
}
