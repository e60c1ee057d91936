//! The sign-in / unlock screen and the signed-out state.
//!
//! Owns: the passphrase field (until it is submitted), the "remember this
//! device" choice, and showing why a sign-in failed (wrong passphrase,
//! retry delay, broker unavailable) next to the field.
//!
//! Must never: keep the passphrase after submitting it (it is moved into the
//! request and our copy is zeroized), show it, log it, or send it anywhere
//! but the broker's `SignIn`.

use gatehouse_ipc::SecretBytes;
use iced::widget::{button, checkbox, column, container, text, text_input};
use iced::{Element, Fill};
use zeroize::Zeroize;

use crate::daemons::Call;

/// The id of the passphrase field (tests and focus use it).
pub const PASSPHRASE_ID: &str = "passphrase";

#[derive(Debug, Default)]
pub struct SignIn {
    passphrase: String,
    pub remember_device: bool,
    /// Why the last attempt failed, shown under the field.
    pub error: Option<String>,
    /// A sign-in request is on its way.
    pub busy: bool,
    /// Shown after a sign-out: what was purged.
    pub signed_out_note: Option<String>,
}

impl Drop for SignIn {
    fn drop(&mut self) {
        self.passphrase.zeroize();
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    Passphrase(String),
    Remember(bool),
    Submit,
}

impl SignIn {
    pub fn update(&mut self, msg: Message) -> Option<Call> {
        match msg {
            Message::Passphrase(mut p) => {
                self.passphrase.zeroize();
                self.passphrase = std::mem::take(&mut p);
                None
            }
            Message::Remember(r) => {
                self.remember_device = r;
                None
            }
            Message::Submit => {
                if self.busy {
                    return None;
                }
                if self.passphrase.is_empty() {
                    self.error = Some("enter your passphrase".into());
                    return None;
                }
                self.busy = true;
                self.error = None;
                let passphrase = SecretBytes::copy_from(self.passphrase.as_bytes());
                self.passphrase.zeroize();
                Some(Call::SignIn {
                    passphrase,
                    remember_device: self.remember_device,
                })
            }
        }
    }

    /// The answer to our `SignIn`.
    pub fn finished(&mut self, result: Result<(), String>) {
        self.busy = false;
        match result {
            Ok(()) => {
                self.error = None;
                self.signed_out_note = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut input = text_input("Passphrase", &self.passphrase)
            .id(PASSPHRASE_ID)
            .secure(true)
            .padding(8);
        if !self.busy {
            input = input
                .on_input(Message::Passphrase)
                .on_submit(Message::Submit);
        }
        let mut col = column![
            text("Gatehouse").size(28),
            text("Signed out. Unlock with your passphrase.").size(16),
        ]
        .spacing(12)
        .max_width(420);
        if let Some(note) = &self.signed_out_note {
            col = col.push(text(note.clone()).size(14));
        }
        col = col
            .push(input)
            .push(
                checkbox(self.remember_device)
                    .label("Remember this device")
                    .on_toggle(Message::Remember),
            )
            .push(
                button(text(if self.busy {
                    "Signing in…"
                } else {
                    "Sign in (Enter)"
                }))
                .on_press_maybe((!self.busy).then_some(Message::Submit)),
            );
        if let Some(e) = &self.error {
            col = col.push(text(format!("Sign-in failed: {e}")).style(text::danger));
        }
        container(col).center(Fill).into()
    }
}
