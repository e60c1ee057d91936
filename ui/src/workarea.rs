//! The work area's layout around the terminal tabs: split view (two
//! terminals side by side, each pane its own tab and session, the focused
//! pane the one keys go to) and the copilot pane beside the terminal it
//! works on (bound to that terminal's host and organization).
//!
//! Owns: which tabs the two panes show, whether the copilot pane is open,
//! and drawing the panes (each with the terminal's own widget,
//! `TermGrid::view`). Must never: send keys anywhere but the focused pane's
//! session (the active tab: [`crate::terminal::Terminals::key`] decides),
//! or widen the copilot's scope beyond the host of the terminal it sits
//! beside.

use iced::widget::{button, column, container, row, rule, text};
use iced::{Element, Fill, FillPortion};

use crate::app::Message;
use crate::terminal::{self, TabState, TermTab, Terminals};

/// The two panes of split view: tab ids, left and right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub left: u64,
    pub right: u64,
}

#[derive(Debug, Default)]
pub struct Workarea {
    pub split: Option<Split>,
    /// The copilot pane is shown beside the active terminal.
    pub copilot_beside: bool,
    /// The tab the copilot pane was last bound to.
    pub bound: Option<u64>,
}

impl Workarea {
    /// After any change: a tab chosen in the tab bar replaces the pane that
    /// had the focus (`before`: the active tab before the change); a split
    /// whose tab closed is dropped (the other pane fills the area).
    pub fn fix(&mut self, terms: &Terminals, before: Option<u64>) {
        let Some(mut s) = self.split else { return };
        if let Some(now) = terms.current().map(|t| t.id)
            && now != s.left
            && now != s.right
        {
            if before == Some(s.right) {
                s.right = now;
            } else {
                s.left = now;
            }
        }
        self.split =
            (terms.tab(s.left).is_some() && terms.tab(s.right).is_some() && s.left != s.right)
                .then_some(s);
    }

    /// The pane that does not have the focus (the active tab has it).
    pub fn other_pane(&self, terms: &Terminals) -> Option<u64> {
        let s = self.split?;
        let active = terms.current()?.id;
        Some(if active == s.left { s.right } else { s.left })
    }

    /// Sign-out: nothing of the layout stays.
    pub fn clear(&mut self) {
        *self = Workarea::default();
    }
}

/// A tab's one-line header (its title, ● REC, where the keys go) and its
/// terminal.
fn pane<'a>(t: &'a TermTab, focused: bool, split: bool) -> Element<'a, Message> {
    let id = t.id;
    let mut head = row![text(t.title()).size(12).font(crate::MONO)]
        .spacing(8)
        .align_y(iced::Center);
    if t.recording.is_some() && t.state == TabState::Live {
        head = head.push(text("● REC").size(12).style(text::danger));
    }
    if let TabState::Failed(why) = &t.state {
        head = head.push(text(why.as_str()).size(12).style(text::danger));
    }
    if split && focused {
        // The pane the keys go to (a click on the other moves them).
        head = head.push(iced::widget::space::horizontal());
        head = head.push(text("●").size(12).style(text::success));
    }
    // A tab waiting for the account passphrase shows its prompt, not a grid.
    let screen: Element<'a, Message> = match &t.presence {
        Some(prompt) => prompt
            .view("Open shell")
            .map(move |m| Message::Terminal(terminal::Message::Presence(id, m))),
        None => t
            .grid
            .view(move |e| Message::Terminal(terminal::Message::Grid(id, e))),
    };
    let body = column![
        button(head)
            .style(if focused && split {
                button::secondary
            } else {
                button::text
            })
            .padding([2, 6])
            .width(Fill)
            .on_press(Message::FocusPane(id)),
        screen,
    ]
    .spacing(2)
    .height(Fill);
    iced::widget::mouse_area(body)
        .on_press(Message::FocusPane(id))
        .into()
}

/// The tab bar of the work area when it is split or has the copilot beside.
fn tab_bar(terms: &Terminals) -> Element<'_, Message> {
    let mut bar = row![].spacing(4).align_y(iced::Center);
    for (i, t) in terms.tabs.iter().enumerate() {
        let b = button(text(t.label()).size(13).font(crate::MONO))
            .on_press(Message::Terminal(terminal::Message::Select(t.id)));
        bar = bar.push(if i == terms.active {
            b.style(button::secondary)
        } else {
            b.style(button::text)
        });
    }
    bar.wrap().into()
}

/// The Terminals screen: the terminal tabs' own view when neither split nor
/// copilot is on; otherwise the panes, and the copilot beside them.
pub fn view<'a>(
    w: &'a Workarea,
    terms: &'a Terminals,
    copilot: &'a crate::copilot::Copilot,
) -> Element<'a, Message> {
    let layout_bar = row![
        iced::widget::space::horizontal(),
        toggle(
            if w.split.is_some() {
                "Unsplit (Ctrl+Shift+D)"
            } else {
                "Split (Ctrl+Shift+D)"
            },
            w.split.is_some(),
            Message::ToggleSplit,
        ),
        toggle(
            if w.copilot_beside {
                "Hide copilot (Ctrl+Shift+I)"
            } else {
                "Copilot beside (Ctrl+Shift+I)"
            },
            w.copilot_beside,
            Message::ToggleCopilotBeside,
        ),
    ]
    .spacing(6);
    let terminals: Element<'a, Message> = match (w.split, terms.current()) {
        (None, _) if !w.copilot_beside => terms.view().map(Message::Terminal),
        (Some(s), Some(active)) => match (terms.tab(s.left), terms.tab(s.right)) {
            (Some(l), Some(r)) => column![
                tab_bar(terms),
                row![
                    container(pane(l, active.id == l.id, true)).width(FillPortion(1)),
                    rule::vertical(1),
                    container(pane(r, active.id == r.id, true)).width(FillPortion(1)),
                ]
                .spacing(4)
                .height(Fill),
            ]
            .spacing(4)
            .into(),
            _ => terms.view().map(Message::Terminal),
        },
        (_, Some(active)) => column![tab_bar(terms), pane(active, true, false)]
            .spacing(4)
            .into(),
        (_, None) => terms.view().map(Message::Terminal),
    };
    let area: Element<'a, Message> = if w.copilot_beside {
        let bound = match terms.current() {
            Some(t) => format!("Copilot on {} (this terminal's host)", t.name),
            None => "Copilot (no terminal open: open one to bind it)".to_string(),
        };
        row![
            container(terminals).width(FillPortion(3)),
            rule::vertical(1),
            container(
                column![text(bound).size(13), copilot.view().map(Message::Copilot)].spacing(4)
            )
            .width(FillPortion(2)),
        ]
        .spacing(6)
        .height(Fill)
        .into()
    } else {
        terminals
    };
    column![layout_bar, area].spacing(4).height(Fill).into()
}

fn toggle(label: &str, on: bool, m: Message) -> Element<'_, Message> {
    button(text(label).size(12))
        .padding([2, 8])
        .style(if on {
            button::primary
        } else {
            button::secondary
        })
        .on_press(m)
        .into()
}
