//! Security status: each process's hardening; runs `audit isolation`.
//!
//! Not built yet: a placeholder wired into the app (tab, messages, calls).

use iced::Element;
use iced::widget::{container, text};

use crate::app::Effect;
use crate::daemons::Daemons;

#[derive(Debug, Default)]
pub struct Security {}

#[derive(Debug, Clone)]
pub enum Message {}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {}

#[derive(Debug, Clone)]
pub enum Reply {}

/// Runs one [`Call`].
pub async fn run(_d: Daemons, c: Call) -> Reply {
    match c {}
}

impl Security {
    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {}
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {}
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = Security::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        container(text("Not built yet.")).padding(12).into()
    }
}
