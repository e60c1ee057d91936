//! The command palette (Ctrl+Shift+P): every action of the app with its
//! shortcut, filtered as you type; Enter or a click runs the first (or the
//! clicked) action that can run from here. It replaces the shortcut
//! footers the screens used to carry.
//!
//! Owns: the list of actions ([`entries`]), the filter text and whether the
//! palette is open. Must never: run an action a screen scopes to itself
//! (Approve, Reject… act only on the card in front of the person: the
//! palette lists them, with where they work, and does not run them), or
//! keep its filter text after it closes.

use iced::widget::{button, column, container, row, scrollable, text, text_input};
use iced::{Element, Fill};

use crate::app::{Message as App, Tab};
use crate::{copilot, terminal};

/// The palette's filter field.
pub const FILTER_ID: &str = "palette-filter";

/// One action as the palette lists it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub label: String,
    /// The shortcut, as it is typed.
    pub keys: &'static str,
    /// What running it from the palette does; `None`: it acts only where
    /// `label` says (its screen), so the palette lists it without running it.
    pub run: Option<App>,
}

fn entry(label: impl Into<String>, keys: &'static str, run: Option<App>) -> Entry {
    Entry {
        label: label.into(),
        keys,
        run,
    }
}

const TAB_KEYS: [&str; 10] = [
    "Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+4", "Ctrl+5", "Ctrl+6", "Ctrl+7", "Ctrl+8", "Ctrl+9",
    "Ctrl+,",
];

/// Every action of the app, in the order the palette lists them.
pub fn entries() -> Vec<Entry> {
    let mut all: Vec<Entry> = Tab::ALL
        .iter()
        .zip(TAB_KEYS)
        .map(|(t, k)| entry(format!("Go to {}", t.label()), k, Some(App::Tab(*t))))
        .collect();
    all.extend([
        entry("Command palette", "Ctrl+Shift+P", None),
        entry("Search hosts", "Ctrl+F", Some(App::Find)),
        entry(
            "Toggle dark / light theme (saved in Settings)",
            "Ctrl+Shift+L",
            Some(App::ToggleTheme),
        ),
        entry(
            "Sign out (asks first)",
            "Ctrl+Shift+Q",
            Some(App::AskSignOut),
        ),
        entry(
            "Terminals: open a host",
            "Ctrl+Shift+T",
            Some(App::Terminal(terminal::Message::FocusHost)),
        ),
        entry(
            "Terminals: previous / next tab",
            "Ctrl+Shift+PgUp / PgDn, Ctrl+Tab",
            None,
        ),
        entry("Terminals: close tab", "Ctrl+Shift+W", None),
        entry(
            "Terminals: split view (two terminals side by side) / unsplit",
            "Ctrl+Shift+D",
            Some(App::ToggleSplit),
        ),
        entry(
            "Terminals: focus the other pane (or click it)",
            "Ctrl+Shift+O",
            Some(App::OtherPane),
        ),
        entry(
            "Terminals: copilot beside the terminal (bound to its host)",
            "Ctrl+Shift+I",
            Some(App::ToggleCopilotBeside),
        ),
        entry(
            "Terminals: search the scrollback",
            "Ctrl+Shift+F",
            Some(App::Terminal(terminal::Message::SearchOpen)),
        ),
        entry("Terminals: scroll back", "Shift+PgUp / PgDn, wheel", None),
        entry(
            "Terminals: select, copy, paste",
            "Drag, Ctrl+Shift+C, Ctrl+Shift+V",
            None,
        ),
        entry(
            "Approvals: approve the card (after the guard)",
            "Alt+A",
            None,
        ),
        entry("Approvals: confirm a dangerous action", "Alt+Y", None),
        entry("Approvals: reject with a reason", "Alt+R", None),
        entry("Approvals: edit the command", "Alt+E", None),
        entry("Back / close (card, form, palette)", "Esc", None),
        entry("Hosts: move the selection", "↑ / ↓", None),
        entry("Hosts: connect to the selected host", "Enter", None),
        entry("Hosts: new host", "Ctrl+N", None),
        entry("Hosts: edit / delete the shown host", "E / Del", None),
        entry("Hosts: reveal the password (audited)", "V", None),
        entry(
            "Copilot: next mode",
            "Alt+M",
            Some(App::Copilot(copilot::Message::NextMode)),
        ),
        entry(
            "Copilot: next trust level",
            "Alt+T",
            Some(App::Copilot(copilot::Message::NextTrust)),
        ),
        entry(
            "Copilot: new conversation",
            "Alt+N",
            Some(App::Copilot(copilot::Message::NewConversation)),
        ),
        entry("Copilot: send", "Enter", None),
        entry("Recordings: select, open, refresh", "↑ / ↓, Enter, R", None),
        entry(
            "Recordings: play / pause, seek, start / end",
            "Space, ← / →, Home / End",
            None,
        ),
        entry(
            "Recordings: previous / next marker, speed",
            "[ / ], - / +",
            None,
        ),
        entry(
            "Diagrams: move between nodes, open",
            "Tab, arrows, Enter",
            None,
        ),
        entry(
            "Diagrams: previous / next diagram, refresh",
            "PgUp / PgDn, R",
            None,
        ),
        entry("Security: refresh, run the isolation audit", "R, I", None),
    ]);
    all
}

#[derive(Debug, Default)]
pub struct Palette {
    /// The filter text; `None` while the palette is closed.
    pub query: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Query(String),
    /// Run the first runnable match (Enter).
    RunFirst,
    /// Run this entry (its index in [`entries`]).
    Run(usize),
    Close,
}

impl Palette {
    pub fn is_open(&self) -> bool {
        self.query.is_some()
    }

    pub fn open(&mut self) {
        self.query = Some(String::new());
    }

    /// The entries matching the filter (every word, case-insensitively, in
    /// the label or the keys), with their index in [`entries`].
    pub fn matches(&self) -> Vec<(usize, Entry)> {
        let q = self.query.as_deref().unwrap_or("").to_lowercase();
        entries()
            .into_iter()
            .enumerate()
            .filter(|(_, e)| {
                let hay = format!("{} {}", e.label, e.keys).to_lowercase();
                q.split_whitespace().all(|w| hay.contains(w))
            })
            .collect()
    }

    /// Handles `m`; returns the app message to run, if any (the palette
    /// closes before it runs).
    pub fn update(&mut self, m: Message) -> Option<App> {
        match m {
            Message::Query(q) => {
                if self.query.is_some() {
                    self.query = Some(q);
                }
                None
            }
            Message::Close => {
                self.query = None;
                None
            }
            Message::RunFirst => {
                let run = self.matches().into_iter().find_map(|(_, e)| e.run);
                if run.is_some() {
                    self.query = None;
                }
                run
            }
            Message::Run(i) => {
                let run = entries().into_iter().nth(i).and_then(|e| e.run);
                if run.is_some() {
                    self.query = None;
                }
                run
            }
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let query = self.query.as_deref().unwrap_or("");
        let mut list = column![].spacing(2);
        for (i, e) in self.matches() {
            let line = row![
                text(e.label.clone()).width(Fill),
                text(e.keys)
                    .font(crate::MONO)
                    .size(13)
                    .style(text::secondary),
            ]
            .spacing(12);
            list = list.push(match e.run {
                Some(_) => button(line)
                    .style(button::text)
                    .width(Fill)
                    .on_press(Message::Run(i)),
                None => button(line).style(button::text).width(Fill),
            });
        }
        container(
            column![
                row![
                    text_input("Type an action…", query)
                        .id(FILTER_ID)
                        .on_input(Message::Query)
                        .on_submit(Message::RunFirst)
                        .padding(8),
                    button(text("Close (Esc)"))
                        .style(button::secondary)
                        .on_press(Message::Close),
                ]
                .spacing(8),
                text("Greyed actions work only on their screen (named first); the others run from here.")
                    .size(12)
                    .style(text::secondary),
                scrollable(list).height(Fill),
            ]
            .spacing(8),
        )
        .padding(14)
        .width(Fill)
        .height(Fill)
        .style(container::rounded_box)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_every_word_and_runs_only_runnable_entries() {
        let mut p = Palette::default();
        p.open();
        p.update(Message::Query("approvals go".into()));
        let m = p.matches();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(matches!(
            p.update(Message::RunFirst),
            Some(App::Tab(Tab::Approvals))
        ));
        assert!(!p.is_open(), "running closes the palette");

        // Approve is listed with its key but never runs from here.
        p.open();
        p.update(Message::Query("alt+a".into()));
        assert!(p.matches().iter().any(|(_, e)| e.keys == "Alt+A"));
        assert!(p.update(Message::RunFirst).is_none());
        assert!(p.is_open());
    }

    #[test]
    fn every_tab_and_global_shortcut_is_listed() {
        let all = entries();
        for k in TAB_KEYS
            .iter()
            .chain(&["Ctrl+Shift+L", "Ctrl+Shift+Q", "Ctrl+Shift+P"])
        {
            assert!(all.iter().any(|e| e.keys == *k), "{k} missing");
        }
    }
}
