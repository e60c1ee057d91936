//! A host's detail: its protocol fields from the store's plaintext, sealed
//! fields masked, and the one value a person explicitly revealed.
//!
//! Owns: the revealed value while this detail is shown (a zeroizing
//! [`Secret`], dropped with the detail: on close, on another host, at
//! sign-out), and the passphrase prompt of a Reveal the broker asked
//! presence for ([`crate::presence::Prompt`], dropped the same way).
//! Must never: open anything to draw the mask (which fields are sealed is
//! store metadata), keep a revealed value once the detail closes, or
//! reveal more than the one field asked for.

use gatehouse_ipc::broker::KeyScope;
use gatehouse_records::model::Secret;
use iced::widget::{Column, button, column, container, row, text};
use iced::{Element, Fill};

use super::Message;
use super::ops::Detail;

/// How a sealed value is drawn until revealed.
pub const MASK: &str = "••••";

/// The shortcut that reveals the SSH password (or the first sealed field).
pub const REVEAL_KEY: &str = "V";

#[derive(Debug)]
pub struct Shown {
    pub detail: Detail,
    /// The one revealed field and its value.
    revealed: Option<(String, Secret)>,
    pub revealing: bool,
    pub reveal_error: Option<String>,
    /// The field whose Reveal the broker asked presence for, and the
    /// prompt that asks the person for the passphrase.
    pub presence: Option<(String, crate::presence::Prompt)>,
}

impl Shown {
    pub fn new(detail: Detail) -> Shown {
        Shown {
            detail,
            revealed: None,
            revealing: false,
            reveal_error: None,
            presence: None,
        }
    }

    /// The field the reveal shortcut opens: the SSH password if sealed here,
    /// else the first sealed field.
    pub fn default_reveal(&self) -> Option<String> {
        let s = &self.detail.sealed;
        s.iter()
            .find(|f| *f == "ssh.password")
            .or(s.first())
            .cloned()
    }

    /// The revealed value of `field`, if it is the one shown.
    pub fn revealed(&self, field: &str) -> Option<&str> {
        self.revealed
            .as_ref()
            .filter(|(f, _)| f == field)
            .map(|(_, v)| v.expose())
    }

    pub fn is_revealed(&self) -> bool {
        self.revealed.is_some()
    }

    pub fn set_revealed(&mut self, field: String, value: Secret) {
        self.revealing = false;
        self.reveal_error = None;
        self.presence = None;
        self.revealed = Some((field, value));
    }

    /// Drops the revealed value (its buffer is zeroized) and an open
    /// passphrase prompt.
    pub fn hide(&mut self) {
        self.revealed = None;
        self.presence = None;
    }

    pub fn view<'a>(&'a self, scope_label: String) -> Element<'a, Message> {
        let d = &self.detail;
        let line = |label: &'a str, value: String, mono: bool| -> Element<'a, Message> {
            let mut t = text(value);
            if mono {
                t = t.font(crate::MONO);
            }
            row![text(label).width(130).style(text::secondary), t]
                .spacing(8)
                .into()
        };
        let port = d.text("port");
        let mut col: Column<'a, Message> = column![
            text(d.text("name")).size(20),
            line("Address", format!("{}:{port}", d.text("address")), true),
            line("Vendor", d.text("vendor"), false),
            line(
                "Folder",
                match d.text("folder") {
                    f if f.is_empty() => "/".into(),
                    f => f,
                },
                false
            ),
            line("Tags", d.text("tags"), false),
            line("Scope", scope_label, false),
            line(
                "Revision",
                format!("{} (owner {})", d.revision, d.owner),
                false
            ),
        ]
        .spacing(4);
        if !d.text("ssh.username").is_empty() {
            col = col.push(text("SSH").size(15));
            col = col.push(line("User", d.text("ssh.username"), true));
            let hk = d.text("ssh.host_key_fingerprint");
            col = col.push(line(
                "Host key",
                if hk.is_empty() {
                    "not pinned yet".into()
                } else {
                    hk
                },
                true,
            ));
        }
        if !d.text("http.port").is_empty() {
            col = col.push(text("HTTP API").size(15));
            col = col.push(line(
                "Port",
                format!(
                    "{} ({})",
                    d.text("http.port"),
                    if d.text("http.tls") == "false" {
                        "plain HTTP"
                    } else {
                        "HTTPS"
                    }
                ),
                false,
            ));
        }
        if !d.text("onvif.username").is_empty() {
            col = col.push(text("ONVIF").size(15));
            col = col.push(line(
                "User",
                format!(
                    "{} (port {})",
                    d.text("onvif.username"),
                    d.text("onvif.port")
                ),
                true,
            ));
        }
        if !d.sealed.is_empty() {
            col = col.push(text("Sealed (opened only on Reveal, which is audited)").size(15));
        }
        let default = self.default_reveal();
        for f in &d.sealed {
            let name = field_label(f);
            let shortcut = if Some(f) == default.as_ref() {
                format!(" ({REVEAL_KEY})")
            } else {
                String::new()
            };
            let value: Element<'a, Message> = match self.revealed(f) {
                Some(v) => column![
                    text(shown(v)).font(crate::MONO),
                    button(text(format!("Hide {name}")).size(13))
                        .style(button::secondary)
                        .on_press(Message::Hide),
                ]
                .spacing(4)
                .into(),
                None => column![
                    text(MASK).font(crate::MONO),
                    button(text(format!("Reveal {name}{shortcut}")).size(13))
                        .style(button::secondary)
                        .on_press_maybe((!self.revealing).then(|| Message::Reveal(f.clone()))),
                ]
                .spacing(4)
                .into(),
            };
            col = col.push(row![text(name).width(130).style(text::secondary), value].spacing(8));
        }
        if let Some((_, prompt)) = &self.presence {
            col = col.push(prompt.view("Reveal").map(Message::RevealPresence));
        }
        if let Some(e) = &self.reveal_error {
            col = col.push(crate::presence::refusal("Reveal", e));
        }
        col = col.push(
            row![
                button(text("Connect (Enter)")).on_press(Message::Connect(d.id.clone())),
                button(text("Edit (E)"))
                    .style(button::secondary)
                    .on_press(Message::Edit),
                button(text("Delete (Del)"))
                    .style(button::danger)
                    .on_press(Message::AskDelete),
                button(text("Close (Esc)"))
                    .style(button::secondary)
                    .on_press(Message::CloseDetail),
            ]
            .spacing(6)
            .wrap(),
        );
        container(col)
            .padding(10)
            .width(Fill)
            .style(container::rounded_box)
            .into()
    }
}

/// A revealed value as shown: a keychain reference says what it is (its
/// payload stays in the OS keychain); a literal is drawn from the zeroizing
/// buffer itself (borrowed, not copied).
fn shown(v: &str) -> std::borrow::Cow<'_, str> {
    match gatehouse_records::model::keychain_ref(v) {
        Some(name) => format!("keychain:{name} (reference; payload stays in the keychain)").into(),
        None => v.into(),
    }
}

/// A sealed field as a person reads it (`ssh.password` → "SSH password").
pub fn field_label(field: &str) -> &str {
    match field {
        "ssh.password" => "SSH password",
        "ssh.private_key_path" => "SSH key",
        "ssh.key_passphrase" => "Key passphrase",
        "http.token" => "HTTP token",
        "onvif.password" => "ONVIF password",
        other => other,
    }
}

/// "org acme", "private", or the org id when its name is unknown.
pub fn scope_label(scope: &KeyScope, orgs: &[gatehouse_ipc::broker::OrgInfo]) -> String {
    match scope {
        KeyScope::Private => "private".into(),
        KeyScope::Org(id) => orgs
            .iter()
            .find(|o| &o.id == id)
            .map(|o| format!("org {}", o.name))
            .unwrap_or_else(|| format!("org {id}")),
    }
}
