//! The hosts list: every host record's plaintext fields (name, address,
//! vendor, tags, folder) with a search box that filters over them.
//!
//! Owns: the loaded rows, the search text and the filtering.
//!
//! Must never: open a sealed field or ask the broker anything to list or
//! search (the store's plaintext is enough), or show a credential.

use iced::widget::{column, container, row, scrollable, text, text_input};
use iced::{Element, Fill};

use crate::daemons::{Daemons, HostRow};

/// The id of the search field (Ctrl+F focuses it).
pub const SEARCH_ID: &str = "host-search";

#[derive(Debug, Default)]
pub struct Hosts {
    pub rows: Vec<HostRow>,
    pub search: String,
    /// Why the store could not be read, shown above the list.
    pub error: Option<String>,
    pub loaded: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Search(String),
    Refresh,
}

/// One-shot calls of the hosts screen beyond listing (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {}

#[derive(Debug, Clone)]
pub enum Reply {}

/// Runs one [`Call`].
pub async fn run(_d: Daemons, c: Call) -> Reply {
    match c {}
}

impl Hosts {
    /// True when the search text needs a reload from the store (never:
    /// filtering is local); returns whether a refresh was asked.
    pub fn update(&mut self, msg: Message) -> bool {
        match msg {
            Message::Search(s) => {
                self.search = s;
                false
            }
            Message::Refresh => true,
        }
    }

    pub fn replied(&mut self, r: Reply) -> Vec<crate::app::Effect> {
        match r {}
    }

    pub fn loaded(&mut self, result: Result<Vec<HostRow>, String>) {
        self.loaded = true;
        match result {
            Ok(rows) => {
                self.rows = rows;
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The rows the search matches: every word (case-insensitive) must
    /// appear in one of the plaintext fields.
    pub fn visible(&self) -> Vec<&HostRow> {
        let words: Vec<String> = self
            .search
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.rows
            .iter()
            .filter(|r| words.iter().all(|w| matches(r, w)))
            .collect()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let visible = self.visible();
        let mut col = column![
            row![
                text_input(
                    "Search hosts: name, address, vendor, tag, folder (Ctrl+F)",
                    &self.search
                )
                .id(SEARCH_ID)
                .on_input(Message::Search)
                .padding(6),
                iced::widget::button(text("Refresh")).on_press(Message::Refresh),
            ]
            .spacing(8),
            text(format!("{} of {} hosts", visible.len(), self.rows.len())).size(13),
        ]
        .spacing(8);
        if let Some(e) = &self.error {
            col = col.push(text(e.clone()).style(text::danger));
        }
        let header = host_line("NAME", "ADDRESS", "VENDOR", "TAGS", "FOLDER");
        let mut list = column![header].spacing(2);
        for r in visible {
            let address = if r.port.is_empty() {
                r.address.clone()
            } else {
                format!("{}:{}", r.address, r.port)
            };
            let folder = if r.folder.is_empty() {
                "/".to_string()
            } else {
                r.folder.clone()
            };
            list = list.push(host_line(
                &r.name,
                &address,
                &r.vendor,
                &r.tags.join(", "),
                &folder,
            ));
        }
        if self.loaded && self.rows.is_empty() {
            list = list.push(text("No hosts yet: add one with `gatehouse host add`."));
        }
        col.push(scrollable(container(list).width(Fill)).height(Fill))
            .into()
    }
}

fn host_line<'a>(
    name: &str,
    address: &str,
    vendor: &str,
    tags: &str,
    folder: &str,
) -> Element<'a, Message> {
    row![
        text(name.to_string()).width(iced::FillPortion(3)),
        text(address.to_string())
            .font(crate::MONO)
            .width(iced::FillPortion(3)),
        text(vendor.to_string()).width(iced::FillPortion(2)),
        text(tags.to_string()).width(iced::FillPortion(3)),
        text(folder.to_string()).width(iced::FillPortion(2)),
    ]
    .spacing(8)
    .into()
}

fn matches(r: &HostRow, word: &str) -> bool {
    [&r.name, &r.address, &r.vendor, &r.folder]
        .into_iter()
        .any(|f| f.to_lowercase().contains(word))
        || r.tags.iter().any(|t| t.to_lowercase().contains(word))
}
