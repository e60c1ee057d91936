//! The host add/edit form: typed values, the error of each field shown
//! under it, and the [`Save`] it submits.
//!
//! Owns: the typed password (a zeroized buffer, dropped once the host is
//! saved or the form is closed), turning the typed strings into
//! [`HostChanges`] (the CLI's own host builder then applies them).
//! Must never: show the typed password (the field is secure), pre-fill a
//! sealed value (an edit leaves sealed fields as they are unless retyped),
//! or decide validity itself: the records crate's checks name the field.

use std::collections::BTreeMap;

use gatehouse_ipc::broker::{KeyScope, OrgInfo};
use gatehouse_records::host_edit::{HostChanges, SecretInput};
use gatehouse_records::model::Vendor;
use iced::widget::{Column, button, checkbox, column, pick_list, row, text, text_input};
use iced::{Element, Fill};
use zeroize::Zeroizing;

use super::ops::{Detail, Save, SaveError, Target};

/// Text field ids (tests type into them; Ctrl+N focuses the name).
pub const NAME_ID: &str = "host-form-name";
pub const FOLDER_ID: &str = "host-form-folder";
pub const ADDRESS_ID: &str = "host-form-address";
pub const PORT_ID: &str = "host-form-port";
pub const TAGS_ID: &str = "host-form-tags";
pub const SSH_USER_ID: &str = "host-form-ssh-user";
pub const PASSWORD_ID: &str = "host-form-password";
pub const KEY_PATH_ID: &str = "host-form-key-path";
pub const HOST_KEY_ID: &str = "host-form-host-key";
pub const HTTP_PORT_ID: &str = "host-form-http-port";

/// The organization a new host goes to, as the form's pick list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeChoice {
    pub scope: KeyScope,
    pub label: String,
}

impl std::fmt::Display for ScopeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

#[derive(Debug, Default)]
pub struct Form {
    /// `Some((id, revision))` when editing.
    pub editing: Option<(String, u64)>,
    pub scope: Option<ScopeChoice>,
    /// Where a new host can go.
    pub scopes: Vec<ScopeChoice>,
    pub name: String,
    pub folder: String,
    pub address: String,
    pub port: String,
    pub vendor: String,
    pub tags: String,
    pub ssh_user: String,
    /// A literal to seal, or `keychain:NAME`. Zeroized on every change and drop.
    password: Zeroizing<String>,
    pub clear_password: bool,
    pub key_path: String,
    pub host_key: String,
    pub http_port: String,
    pub http_plain: bool,
    /// Sealed fields the host has (an edit shows that they stay).
    pub sealed: Vec<String>,
    /// The error of each field, by field name (`address`, `ssh.username`, …).
    pub errors: BTreeMap<String, String>,
    /// An error that belongs to no field (broker unavailable, conflict).
    pub error: Option<String>,
    pub busy: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Scope(ScopeChoice),
    Name(String),
    Folder(String),
    Address(String),
    Port(String),
    Vendor(String),
    Tags(String),
    SshUser(String),
    Password(String),
    ClearPassword(bool),
    KeyPath(String),
    HostKey(String),
    HttpPort(String),
    HttpPlain(bool),
    Submit,
    Cancel,
}

/// The scopes a new host can go to: each organization, then private.
pub fn scope_choices(orgs: &[OrgInfo]) -> Vec<ScopeChoice> {
    orgs.iter()
        .map(|o| ScopeChoice {
            scope: KeyScope::Org(o.id.clone()),
            label: format!("org {}", o.name),
        })
        .chain(std::iter::once(ScopeChoice {
            scope: KeyScope::Private,
            label: "private".into(),
        }))
        .collect()
}

impl Form {
    /// An empty form for a new host in `org` (an org id; None: the first org).
    pub fn new(orgs: &[OrgInfo], org: Option<&str>) -> Form {
        let choices = scope_choices(orgs);
        let scope = choices
            .iter()
            .find(|c| matches!(&c.scope, KeyScope::Org(id) if Some(id.as_str()) == org))
            .or(choices.first())
            .cloned();
        Form {
            scope,
            scopes: choices,
            vendor: Vendor::Other.as_str().into(),
            port: "22".into(),
            ..Form::default()
        }
    }

    /// A form filled with a host's plaintext fields (sealed ones stay unless retyped).
    pub fn edit(d: &Detail) -> Form {
        Form {
            editing: Some((d.id.clone(), d.revision)),
            name: d.text("name"),
            folder: d.text("folder"),
            address: d.text("address"),
            port: d.text("port"),
            vendor: d.text("vendor"),
            tags: d.text("tags"),
            ssh_user: d.text("ssh.username"),
            host_key: d.text("ssh.host_key_fingerprint"),
            http_port: d.text("http.port"),
            http_plain: d.plain.get("http.tls").and_then(|v| v.as_bool()) == Some(false),
            sealed: d.sealed.clone(),
            ..Form::default()
        }
    }

    /// Whether a password is typed (tests check it is gone after saving).
    pub fn has_password(&self) -> bool {
        !self.password.is_empty()
    }

    /// Applies an edit; `Submit` returns the save to run.
    pub fn update(&mut self, m: Message) -> Option<Save> {
        match m {
            Message::Scope(s) => self.scope = Some(s),
            Message::Name(v) => self.name = v,
            Message::Folder(v) => self.folder = v,
            Message::Address(v) => self.address = v,
            Message::Port(v) => self.port = v,
            Message::Vendor(v) => self.vendor = v,
            Message::Tags(v) => self.tags = v,
            Message::SshUser(v) => self.ssh_user = v,
            Message::Password(v) => self.password = Zeroizing::new(v),
            Message::ClearPassword(b) => self.clear_password = b,
            Message::KeyPath(v) => self.key_path = v,
            Message::HostKey(v) => self.host_key = v,
            Message::HttpPort(v) => self.http_port = v,
            Message::HttpPlain(b) => self.http_plain = b,
            Message::Cancel => {}
            Message::Submit => return self.submit(),
        }
        None
    }

    fn submit(&mut self) -> Option<Save> {
        if self.busy {
            return None;
        }
        let target = match (&self.editing, &self.scope) {
            (Some((id, revision)), _) => Target::Edit {
                id: id.clone(),
                revision: *revision,
            },
            (None, Some(s)) => Target::New {
                scope: s.scope.clone(),
            },
            (None, None) => {
                self.error = Some("choose the organization the host belongs to".into());
                return None;
            }
        };
        self.errors.clear();
        self.error = None;
        self.busy = true;
        let some = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        let tags = self
            .tags
            .split([',', ' '])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        Some(Save {
            target,
            name: self.name.trim().to_string(),
            changes: HostChanges {
                address: Some(self.address.trim().to_string()),
                port: some(&self.port),
                folder: Some(self.folder.trim().to_string()),
                tags: Some(tags),
                vendor: some(&self.vendor),
                ssh_user: some(&self.ssh_user),
                password: (!self.password.is_empty()).then(|| SecretInput::parse(&self.password)),
                clear_password: self.clear_password,
                ssh_key: some(&self.key_path),
                host_key: some(&self.host_key),
                http_port: some(&self.http_port),
                http_plain: self.http_plain,
                ..HostChanges::default()
            },
        })
    }

    /// The answer to a save that failed: the error goes under its field.
    pub fn failed(&mut self, e: SaveError) {
        self.busy = false;
        match e.field {
            Some(f) => {
                self.errors.insert(f, e.message);
            }
            None => self.error = Some(e.message),
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let title = match &self.editing {
            Some(_) => format!("Edit host {}", self.name),
            None => "New host".to_string(),
        };
        let mut col: Column<'_, Message> = column![text(title).size(20)].spacing(6);
        if self.editing.is_none() {
            col = col.push(
                row![
                    text("Organization").width(150),
                    pick_list(self.scopes.as_slice(), self.scope.clone(), Message::Scope)
                        .width(Fill),
                ]
                .spacing(8)
                .align_y(iced::Center),
            );
        }
        col = col
            .push(self.field("Name", "name", NAME_ID, &self.name, Message::Name))
            .push(self.field("Folder", "folder", FOLDER_ID, &self.folder, Message::Folder))
            .push(self.field(
                "Address",
                "address",
                ADDRESS_ID,
                &self.address,
                Message::Address,
            ))
            .push(self.field("SSH port", "port", PORT_ID, &self.port, Message::Port))
            .push(
                self.labelled(
                    "Vendor",
                    "vendor",
                    pick_list(
                        Vendor::ALL.map(|v| v.as_str().to_string()).to_vec(),
                        Some(self.vendor.clone()),
                        Message::Vendor,
                    )
                    .width(Fill)
                    .into(),
                ),
            )
            .push(self.field("Tags", "tags", TAGS_ID, &self.tags, Message::Tags))
            .push(self.field(
                "SSH user",
                "ssh.username",
                SSH_USER_ID,
                &self.ssh_user,
                Message::SshUser,
            ));
        let password_hint = if self.sealed.iter().any(|f| f == "ssh.password") {
            "(sealed; type to replace) literal or keychain:NAME"
        } else {
            "literal (sealed) or keychain:NAME"
        };
        col = col.push(
            self.labelled(
                "SSH password",
                "ssh.password",
                text_input(password_hint, &self.password)
                    .id(PASSWORD_ID)
                    .secure(true)
                    .on_input(Message::Password)
                    .on_submit(Message::Submit)
                    .padding(4)
                    .into(),
            ),
        );
        if self.editing.is_some() && self.sealed.iter().any(|f| f == "ssh.password") {
            col = col.push(
                checkbox(self.clear_password)
                    .label("Remove the stored SSH password")
                    .on_toggle(Message::ClearPassword),
            );
        }
        col = col
            .push(self.field(
                "SSH key path",
                "ssh.private_key_path",
                KEY_PATH_ID,
                &self.key_path,
                Message::KeyPath,
            ))
            .push(self.field(
                "Host key fingerprint",
                "ssh.host_key_fingerprint",
                HOST_KEY_ID,
                &self.host_key,
                Message::HostKey,
            ))
            .push(self.field(
                "HTTP API port",
                "http.port",
                HTTP_PORT_ID,
                &self.http_port,
                Message::HttpPort,
            ))
            .push(
                checkbox(self.http_plain)
                    .label("Plain HTTP (no TLS)")
                    .on_toggle(Message::HttpPlain),
            );
        if let Some(e) = &self.error {
            col = col.push(text(e.clone()).style(text::danger));
        }
        col.push(
            row![
                button(text(if self.busy {
                    "Saving…"
                } else {
                    "Save (Enter)"
                }))
                .on_press_maybe((!self.busy).then_some(Message::Submit)),
                button(text("Cancel (Esc)"))
                    .style(button::secondary)
                    .on_press(Message::Cancel),
            ]
            .spacing(8),
        )
        .into()
    }

    /// A labelled text field with its error under it.
    fn field<'a>(
        &'a self,
        label: &'a str,
        field: &'a str,
        id: &'static str,
        value: &'a str,
        on: fn(String) -> Message,
    ) -> Element<'a, Message> {
        self.labelled(
            label,
            field,
            text_input(
                if field == "tags" {
                    "comma separated"
                } else {
                    ""
                },
                value,
            )
            .id(id)
            .on_input(on)
            .on_submit(Message::Submit)
            .padding(4)
            .into(),
        )
    }

    fn labelled<'a>(
        &'a self,
        label: &'a str,
        field: &str,
        input: Element<'a, Message>,
    ) -> Element<'a, Message> {
        let line = row![text(label).width(150), input]
            .spacing(8)
            .align_y(iced::Center);
        match self.errors.get(field) {
            Some(e) => column![
                line,
                row![
                    iced::widget::space::horizontal().width(158),
                    text(e.clone()).size(13).style(text::danger)
                ]
            ]
            .spacing(2)
            .into(),
            None => line.into(),
        }
    }
}
