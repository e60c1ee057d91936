//! Procedures (runbooks): list, markdown view, parameters, run, history.
//!
//! Not built yet: a placeholder wired into the app (tab, messages, calls).

use iced::Element;
use iced::widget::{container, text};

use crate::app::Effect;
use crate::daemons::Daemons;

#[derive(Debug, Default)]
pub struct Procedures {}

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

impl Procedures {
    /// What the screen loads when the session starts.
    pub fn load(&self) -> Vec<Effect> {
        vec![]
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {}
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {}
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = Procedures::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        container(text("Not built yet.")).padding(12).into()
    }
}
