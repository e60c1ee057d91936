//! The Settings screen: appearance (theme, font size), the default AI tier
//! and the provider model each tier means per organization, the copilot's
//! default mode and trust, and what sign-out clears, each option with the
//! text that explains it ([`Key::explain`], the same text `gatehouse
//! settings list` prints).
//!
//! Owns: the settings as last loaded or saved, and turning a change on the
//! screen into one `Settings::set` + `settings::save` on the person's
//! settings record (the record the CLI's `gatehouse settings get|set`
//! reads and writes, MACed through the broker like every record).
//! Must never: write a value `Settings::set` refuses (nothing is saved
//! then, the error shows at the option), keep a change the store did not
//! take, or hold anything secret (settings have no sealed field).

use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::OrgInfo;
use gatehouse_ipc::paths::local_user as actor;
use gatehouse_records::settings::{self, FONT_SIZES, Key, Settings, Theme, Tier};
use gatehouse_records::{BrokerSealer, Store};
use iced::widget::{
    Column, button, checkbox, column, container, pick_list, row, scrollable, text, text_input,
};
use iced::{Element, Fill};

use crate::app::Effect;
use crate::daemons::{self, Daemons};

#[derive(Debug, Default)]
pub struct SettingsScreen {
    /// The verified settings (defaults until loaded).
    pub current: Settings,
    pub loaded: bool,
    /// The organization whose tier models are shown (its id).
    pub org: Option<String>,
    /// The tier model fields (fast, balanced, best) as typed.
    pub models: [String; 3],
    /// What the last change did, or why it was refused (and for which key).
    pub notice: Option<String>,
    pub error: Option<(Option<Key>, String)>,
    /// A save is under way (changes wait: one write at a time).
    pub busy: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Set `key` (of organization `org`, for a per-organization key) to `value`.
    Set {
        key: Key,
        org: Option<String>,
        value: String,
    },
    /// The organization whose tier models to show.
    Org(crate::hosts::OrgPick),
    ModelField(Tier, String),
    Refresh,
}

/// One-shot calls of this screen (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    Load,
    Set {
        key: Key,
        org: Option<String>,
        value: String,
    },
}

#[derive(Debug, Clone)]
pub enum Reply {
    Loaded(Result<Settings, String>),
    Saved {
        key: Key,
        result: Result<Settings, String>,
    },
}

/// Runs one call on a blocking thread: the store and the broker's MAC, as
/// `gatehouse settings get|set` does.
pub async fn run(d: Daemons, c: Call) -> daemons::Reply {
    let layout = d.layout().clone();
    let r = tokio::task::spawn_blocking(move || match c {
        Call::Load => Reply::Loaded(load(&layout)),
        Call::Set { key, org, value } => Reply::Saved {
            key,
            result: set(&layout, key, org.as_deref(), &value),
        },
    })
    .await
    .unwrap_or_else(|e| Reply::Loaded(Err(format!("settings task failed: {e}"))));
    daemons::Reply::Settings(r)
}

/// The verified settings (defaults when none are stored yet).
pub fn load(layout: &Layout) -> Result<Settings, String> {
    let store = Store::open_in(layout).map_err(|e| e.to_string())?;
    let mut sealer = BrokerSealer::connect(layout).map_err(|e| e.to_string())?;
    settings::load(&store, &mut sealer)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

/// Sets one key and saves the record (as `gatehouse settings set`); the
/// settings as saved.
pub fn set(layout: &Layout, key: Key, org: Option<&str>, value: &str) -> Result<Settings, String> {
    let mut store = Store::open_in(layout).map_err(|e| e.to_string())?;
    let mut sealer = BrokerSealer::connect(layout).map_err(|e| e.to_string())?;
    let (mut s, meta) = settings::load(&store, &mut sealer).map_err(|e| e.to_string())?;
    s.set(key, org, value).map_err(|e| e.to_string())?;
    settings::save(&mut store, &mut sealer, &actor(), meta.as_ref(), s.clone())
        .map_err(|e| e.to_string())?;
    Ok(s)
}

fn call(c: Call) -> Effect {
    Effect::Call(daemons::Call::Settings(c))
}

impl SettingsScreen {
    /// Loads the settings (at sign-in, and when the screen is shown).
    pub fn load(&self) -> Vec<Effect> {
        vec![call(Call::Load)]
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Set { key, org, value } => {
                if self.busy {
                    self.error = Some((Some(key), "a change is still being saved".into()));
                    return vec![];
                }
                // Checked here first: a refused value is never sent.
                let mut probe = self.current.clone();
                if let Err(e) = probe.set(key, org.as_deref(), &value) {
                    self.error = Some((Some(key), e.to_string()));
                    return vec![];
                }
                self.busy = true;
                self.error = None;
                vec![call(Call::Set { key, org, value })]
            }
            Message::Org(pick) => {
                self.org = pick.id;
                self.fill_models();
                vec![]
            }
            Message::ModelField(t, v) => {
                self.models[tier_index(t)] = v;
                vec![]
            }
            Message::Refresh => self.load(),
        }
    }

    /// A reply of this screen; `Some(settings)` when they changed (the app
    /// applies theme and copilot defaults).
    pub fn replied(&mut self, r: Reply) -> Option<Settings> {
        match r {
            Reply::Loaded(Ok(s)) => {
                self.current = s.clone();
                self.loaded = true;
                self.fill_models();
                Some(s)
            }
            Reply::Loaded(Err(e)) => {
                self.error = Some((None, format!("cannot load the settings: {e}")));
                None
            }
            Reply::Saved { key, result } => {
                self.busy = false;
                match result {
                    Ok(s) => {
                        let org = self.org.clone();
                        let org = if key.per_org() { org.as_deref() } else { None };
                        let value = s.get(key, org).unwrap_or_default();
                        self.notice = Some(format!("Saved: {key} = {value}"));
                        self.current = s.clone();
                        self.loaded = true;
                        self.fill_models();
                        Some(s)
                    }
                    Err(e) => {
                        self.error = Some((Some(key), format!("not saved: {e}")));
                        None
                    }
                }
            }
        }
    }

    fn fill_models(&mut self) {
        for t in Tier::ALL {
            self.models[tier_index(t)] = self
                .org
                .as_deref()
                .and_then(|o| self.current.model_for(o, Some(t)))
                .unwrap_or("")
                .to_string();
        }
    }

    /// Sign-out: nothing of the person's settings stays on screen.
    pub fn clear(&mut self) {
        *self = SettingsScreen::default();
    }

    pub fn view<'a>(&'a self, orgs: &'a [OrgInfo]) -> Element<'a, Message> {
        let s = &self.current;
        let c = &s.sign_out_clears;
        let mut col: Column<'a, Message> = column![
            row![
                text("Settings").size(22),
                iced::widget::space::horizontal(),
                button(text("Reload").size(13))
                    .style(button::secondary)
                    .on_press(Message::Refresh),
            ]
            .align_y(iced::Center),
            text(
                "Saved in your private settings record (the one `gatehouse settings get|set` reads), as soon as you change an option."
            )
            .size(13)
            .style(text::secondary),
        ]
        .spacing(10);
        if let Some(n) = &self.notice {
            col = col.push(text(n.clone()).size(13).style(text::success));
        }
        if let Some((None, e)) = &self.error {
            col = col.push(text(e.clone()).style(text::danger));
        }

        col = col.push(section("Appearance"));
        col = col.push(self.option(
            Key::Theme,
            choices(
                Key::Theme,
                &["dark", "light"],
                match s.theme {
                    Theme::Dark => "dark",
                    Theme::Light => "light",
                },
            ),
        ));
        let sizes: Vec<u16> = FONT_SIZES.collect();
        col = col.push(
            self.option(
                Key::FontSize,
                row![
                    pick_list(sizes, Some(s.font_size), |n: u16| Message::Set {
                        key: Key::FontSize,
                        org: None,
                        value: n.to_string(),
                    })
                    .text_size(13),
                    text("points: the app's default text size, from its next start")
                        .size(12)
                        .style(text::secondary),
                ]
                .spacing(8)
                .align_y(iced::Center)
                .into(),
            ),
        );

        col = col.push(section("AI"));
        col = col.push(self.option(
            Key::DefaultTier,
            choices(
                Key::DefaultTier,
                &["fast", "balanced", "best"],
                s.default_tier.as_str(),
            ),
        ));
        let picks: Vec<crate::hosts::OrgPick> = orgs
            .iter()
            .map(|o| crate::hosts::OrgPick {
                id: Some(o.id.clone()),
                name: o.name.clone(),
            })
            .collect();
        let shown = picks
            .iter()
            .find(|p| p.id.is_some() && p.id == self.org)
            .cloned();
        let mut models = column![
            row![
                text("Organization:").size(13),
                pick_list(picks, shown, Message::Org)
                    .placeholder("pick one")
                    .text_size(13),
            ]
            .spacing(8)
            .align_y(iced::Center)
        ]
        .spacing(4);
        if let Some(org) = &self.org {
            for t in Tier::ALL {
                let key = Key::TierModel(t);
                let typed = self.models[tier_index(t)].trim().to_string();
                let value = if typed.is_empty() {
                    "none".to_string()
                } else {
                    typed
                };
                models = models.push(
                    row![
                        text(format!("{t}:")).size(13).width(80),
                        text_input(
                            "provider model, e.g. gpt-4o-mini",
                            &self.models[tier_index(t)]
                        )
                        .on_input(move |v| Message::ModelField(t, v))
                        .on_submit(Message::Set {
                            key,
                            org: Some(org.clone()),
                            value: value.clone(),
                        })
                        .size(13)
                        .width(280),
                        button(text("Save").size(13)).on_press(Message::Set {
                            key,
                            org: Some(org.clone()),
                            value,
                        }),
                    ]
                    .spacing(8)
                    .align_y(iced::Center),
                );
                if let Some((Some(k), e)) = &self.error
                    && *k == key
                {
                    models = models.push(text(e.clone()).size(12).style(text::danger));
                }
            }
        }
        col = col.push(explained(
            "Model per tier",
            Key::TierModel(Tier::Fast).explain(),
            models.into(),
        ));

        col = col.push(section("Copilot"));
        col = col.push(self.option(
            Key::CopilotMode,
            choices(
                Key::CopilotMode,
                &["default", "ask", "planning"],
                settings::mode_str(s.copilot_mode),
            ),
        ));
        col = col.push(self.option(
            Key::CopilotTrust,
            choices(
                Key::CopilotTrust,
                &["manual", "supervised", "autonomous"],
                settings::trust_str(s.copilot_trust),
            ),
        ));

        col = col.push(section("What sign-out clears"));
        for (key, on, fixed) in [
            (Key::ClearsDecryptedCache, true, true),
            (Key::ClearsLocalRecords, c.local_records, false),
            (Key::ClearsRecordings, c.recordings, false),
            (Key::ClearsScrollback, c.scrollback, false),
            (Key::ClearsConversations, c.conversations, false),
            (Key::ClearsRememberedDevice, c.remembered_device, true),
        ] {
            let mut b = checkbox(on).label(clears_label(key)).text_size(14);
            if !fixed {
                b = b.on_toggle(move |v| Message::Set {
                    key,
                    org: None,
                    value: v.to_string(),
                });
            }
            col = col.push(self.option(key, b.into()));
        }
        scrollable(container(col).padding([0, 8]).width(Fill))
            .height(Fill)
            .into()
    }

    /// One option: its name, its control, what it does, and its error.
    fn option<'a>(&'a self, key: Key, control: Element<'a, Message>) -> Element<'a, Message> {
        let mut col = column![explained(key.as_str(), key.explain(), control)];
        if let Some((Some(k), e)) = &self.error
            && *k == key
            && !key.per_org()
        {
            col = col.push(text(e.clone()).size(12).style(text::danger));
        }
        col.into()
    }
}

fn tier_index(t: Tier) -> usize {
    match t {
        Tier::Fast => 0,
        Tier::Balanced => 1,
        Tier::Best => 2,
    }
}

fn clears_label(key: Key) -> &'static str {
    match key {
        Key::ClearsDecryptedCache => "Decrypted cache (always)",
        Key::ClearsLocalRecords => "Local records",
        Key::ClearsRecordings => "Recordings",
        Key::ClearsScrollback => "Terminal scrollback",
        Key::ClearsConversations => "Conversation history",
        Key::ClearsRememberedDevice => "The remembered device (always, today)",
        _ => "",
    }
}

fn section<'a>(title: &'a str) -> Element<'a, Message> {
    column![text(title).size(17), iced::widget::rule::horizontal(1)]
        .spacing(2)
        .into()
}

/// A control with its name above and its explanation below.
fn explained<'a>(
    name: &'a str,
    explain: &'a str,
    control: Element<'a, Message>,
) -> Element<'a, Message> {
    column![
        text(name).size(13).font(crate::MONO),
        control,
        text(explain).size(12).style(text::secondary),
    ]
    .spacing(3)
    .into()
}

/// A row of buttons, one per value, the current one highlighted.
fn choices<'a>(key: Key, values: &[&'static str], current: &str) -> Element<'a, Message> {
    let mut r = row![].spacing(4);
    for v in values {
        let b = button(text(*v).size(13))
            .padding([3, 10])
            .on_press(Message::Set {
                key,
                org: None,
                value: (*v).to_string(),
            });
        r = r.push(if *v == current {
            b.style(button::primary)
        } else {
            b.style(button::secondary)
        });
    }
    r.into()
}
