//! The account passphrase typed into the app as proof of presence: the
//! dangerous approval's second confirmation, a host's Reveal and a terminal
//! tab to a host whose organization asks for presence (the broker answers
//! `PresenceRequired`; with the privilege boundary on it asks the app as it
//! asks the CLI, docs/threat-model.md).
//!
//! Owns: [`Typed`] (the zeroizing buffer of a passphrase being typed), the
//! masked passphrase field every presence prompt draws
//! ([`passphrase_input`]), the refusal line ([`refusal`]), and [`Prompt`]:
//! the prompt a Reveal or a terminal tab shows when the broker asks.
//!
//! Must never: draw, log or `Debug`-print a typed passphrase; keep it once
//! its request is made ([`Typed::take`] empties the buffer it copies from,
//! and the copy is zeroized when the request is dropped); send anything
//! without a person's Enter or click; or decide whether presence is needed
//! (the broker does: the app asks without, then with, as the CLI does).

use gatehouse_ipc::SecretBytes;
use iced::widget::{TextInput, button, column, container, row, text, text_input};
use iced::{Element, Fill};
use zeroize::Zeroizing;

/// The id of the passphrase field of a [`Prompt`] (focused when it opens).
pub const PROMPT_ID: &str = "presence-prompt-passphrase";

/// A passphrase being typed: zeroized when replaced or dropped; `Debug`
/// prints only its length.
#[derive(Default)]
pub struct Typed(Zeroizing<String>);

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Typed({} bytes)", self.0.len())
    }
}

impl Typed {
    /// What the field now holds (the previous buffer is zeroized).
    pub fn set(&mut self, typed: String) {
        self.0 = Zeroizing::new(typed);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The passphrase for one request (`None` if nothing was typed); the
    /// field is emptied (zeroized) at once.
    pub fn take(&mut self) -> Option<SecretBytes> {
        let sent = (!self.0.is_empty()).then(|| SecretBytes::copy_from(self.0.as_bytes()));
        *self = Typed::default();
        sent
    }
}

/// The masked "Account passphrase" field (the same in every prompt):
/// `on_submit` is Enter's message while it may be sent.
pub fn passphrase_input<'a, M: Clone + 'a>(
    id: &'static str,
    typed: &'a Typed,
    on_input: impl Fn(String) -> M + 'a,
    on_submit: Option<M>,
) -> TextInput<'a, M> {
    text_input("Account passphrase", &typed.0)
        .id(id)
        .secure(true)
        .on_input(on_input)
        .on_submit_maybe(on_submit)
        .width(220)
        .padding(6)
}

/// The broker's refusal (a wrong passphrase, the throttle, presence
/// missing), as every prompt shows it: "`what` failed: …" in red.
pub fn refusal<'a, M: 'a>(what: &str, error: &str) -> Element<'a, M> {
    text(format!("{what} failed: {error}"))
        .style(text::danger)
        .into()
}

/// The prompt shown when the broker answered `PresenceRequired` to a
/// Reveal or a terminal tab: why (the broker's words), the masked field,
/// Enter to send, Escape to give up.
#[derive(Debug)]
pub struct Prompt {
    /// The broker's reason ("revealing host/… ssh.password from the app").
    pub why: String,
    pub passphrase: Typed,
    /// The broker's refusal of the last passphrase sent.
    pub error: Option<String>,
    /// A passphrase is on its way.
    pub busy: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Passphrase(String),
    /// Enter, or the confirm button.
    Submit,
    /// Escape, or the cancel button.
    Cancel,
}

/// What a [`Message`] asks of the screen that shows the prompt.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to do yet.
    None,
    /// Retry the request with this passphrase (the field is empty again).
    Send(SecretBytes),
    /// The person gave up: drop the prompt, nothing is revealed or opened.
    Cancelled,
}

impl Prompt {
    pub fn new(why: String) -> Prompt {
        Prompt {
            why,
            passphrase: Typed::default(),
            error: None,
            busy: false,
        }
    }

    pub fn update(&mut self, msg: Message) -> Outcome {
        match msg {
            Message::Passphrase(p) => {
                self.passphrase.set(p);
                Outcome::None
            }
            Message::Submit => {
                if self.busy {
                    return Outcome::None;
                }
                match self.passphrase.take() {
                    Some(p) => {
                        self.busy = true;
                        self.error = None;
                        Outcome::Send(p)
                    }
                    None => Outcome::None,
                }
            }
            Message::Cancel => Outcome::Cancelled,
        }
    }

    /// The broker refused the passphrase sent: say why, ask again.
    pub fn refused(&mut self, error: String) {
        self.busy = false;
        self.error = Some(error);
    }

    /// The prompt; `action` names what the passphrase allows ("Reveal",
    /// "Open shell"): its button, and the refusal line's first word.
    pub fn view<'a>(&'a self, action: &str) -> Element<'a, Message> {
        let ok = !self.busy && !self.passphrase.is_empty();
        let mut col = column![
            text("Proof of presence").size(15),
            text(format!(
                "The broker asks for the account passphrase: {}.",
                self.why
            ))
            .size(13),
            row![
                passphrase_input(
                    PROMPT_ID,
                    &self.passphrase,
                    Message::Passphrase,
                    ok.then_some(Message::Submit)
                ),
                button(text(format!("{action} (Enter)")))
                    .style(button::danger)
                    .on_press_maybe(ok.then_some(Message::Submit)),
                button(text("Cancel (Esc)"))
                    .style(button::secondary)
                    .on_press(Message::Cancel),
            ]
            .spacing(8)
            .align_y(iced::Center)
            .wrap(),
        ]
        .spacing(6);
        if let Some(e) = &self.error {
            col = col.push(refusal(action, e));
        }
        container(col)
            .padding(10)
            .width(Fill)
            .style(container::bordered_box)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passphrase_goes_once_and_never_into_debug() {
        let mut p = Prompt::new("revealing host/h1 ssh.password from the app".into());
        // Nothing typed: Enter sends nothing.
        assert!(matches!(p.update(Message::Submit), Outcome::None));
        p.update(Message::Passphrase("correct horse".into()));
        assert!(!format!("{p:?}").contains("correct horse"));
        let Outcome::Send(sent) = p.update(Message::Submit) else {
            panic!("no passphrase sent");
        };
        assert_eq!(sent.expose(), b"correct horse");
        assert!(p.passphrase.is_empty(), "the field keeps the passphrase");
        // While it is on its way, a second Enter sends nothing.
        p.update(Message::Passphrase("again".into()));
        assert!(matches!(p.update(Message::Submit), Outcome::None));
        // Refused: the broker's words are shown and it may be sent again.
        p.refused("wrong passphrase".into());
        assert_eq!(p.error.as_deref(), Some("wrong passphrase"));
        assert!(matches!(p.update(Message::Submit), Outcome::Send(_)));
        assert!(matches!(p.update(Message::Cancel), Outcome::Cancelled));
    }
}
