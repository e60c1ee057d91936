//! Terminal tabs: interactive SSH shells through sessiond, drawn with alacritty_terminal.
//!
//! Not built yet: a placeholder wired into the app (tab, messages, calls).

use iced::Element;
use iced::futures::stream::BoxStream;
use iced::widget::{container, text};

use crate::app::Effect;
use crate::daemons::Daemons;

#[derive(Debug, Default)]
pub struct Terminals {}

#[derive(Debug, Clone)]
pub enum Message {
    /// Open a shell to this host (its record id or name) in a new tab.
    /// Other screens ask for it with `Effect::Then` (a host's Connect, a
    /// diagram node).
    Open { host: String },
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {}

#[derive(Debug, Clone)]
pub enum Reply {}

/// Long-lived streams this screen asks for (see [`crate::daemons::Watch`]).
#[derive(Debug, Clone)]
pub enum Watch {}

/// Runs one [`Watch`] as a stream of replies.
pub fn watch(_d: Daemons, w: Watch) -> BoxStream<'static, crate::daemons::Reply> {
    match w {}
}

/// Runs one [`Call`].
pub async fn run(_d: Daemons, c: Call) -> Reply {
    match c {}
}

impl Terminals {
    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Open { host: _ } => vec![],
        }
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {}
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = Terminals::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        container(text("Not built yet.")).padding(12).into()
    }
}
