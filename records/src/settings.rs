//! Settings: one private record per account holding a person's preferences
//! (appearance, the AI tier each conversation starts with and which provider
//! model each tier means per organization, the copilot's default mode and
//! trust, and what sign-out clears besides the decrypted cache).
//!
//! Owns: the [`Settings`] record shape, the settable keys ([`Key`]) with the
//! text that explains each one (the CLI prints it; the app shows it), parsing
//! and checking a value for a key, and finding/writing the one settings
//! record in a [`Store`]. Must never: store a secret (every field is plain,
//! covered by the record MAC), live in an organization's scope (settings are
//! the person's own), or perform a sign-out itself (the CLI and the app do,
//! reading [`SignOutClears`] with [`sign_out_clears`] before it and calling
//! [`clear_after_sign_out`] after it).

use serde::{Deserialize, Serialize};

use gatehouse_ipc::broker::KeyScope;
use gatehouse_ipc::copilotd::{Mode, Trust};

use crate::RecordError;
use crate::model::{Kind, Meta, Record};
use crate::sealer::Sealer;
use crate::store::{Store, StoredRecord};

/// The one settings record's name (settings are a singleton per account).
pub const NAME: &str = "settings";

/// Colour theme of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

/// How capable (and costly) a model a conversation uses when it does not pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Fast,
    #[default]
    Balanced,
    Best,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Fast, Tier::Balanced, Tier::Best];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Fast => "fast",
            Tier::Balanced => "balanced",
            Tier::Best => "best",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which provider model a tier means in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierModel {
    /// Organization id.
    pub org: String,
    pub tier: Tier,
    /// The provider's model name (e.g. `gpt-4o-mini`).
    pub model: String,
}

/// What sign-out clears besides the decrypted cache (always cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOutClears {
    /// The local records store (records.sqlite): sealed fields stay sealed
    /// either way; this removes the plaintext names, addresses and folders too.
    #[serde(default)]
    pub local_records: bool,
    /// Session recordings (sealed at rest) under the profile.
    #[serde(default)]
    pub recordings: bool,
    /// The app's terminal scrollback (on by default: the app drops every
    /// tab at sign-out; off: ended tabs stay readable).
    #[serde(default = "yes")]
    pub scrollback: bool,
    /// The app's copilot conversation (on by default).
    #[serde(default = "yes")]
    pub conversations: bool,
    /// The remembered device (unlock material in the OS keychain).
    #[serde(default = "yes")]
    pub remembered_device: bool,
}

fn yes() -> bool {
    true
}

impl Default for SignOutClears {
    fn default() -> SignOutClears {
        SignOutClears {
            local_records: false,
            recordings: false,
            scrollback: true,
            conversations: true,
            remembered_device: true,
        }
    }
}

/// A person's settings (record kind `settings`, private scope only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Always [`NAME`].
    pub name: String,
    /// Always the root folder.
    #[serde(default)]
    pub folder: String,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default = "default_font_size")]
    pub font_size: u16,
    #[serde(default)]
    pub default_tier: Tier,
    /// Tier → model per organization; at most one entry per (org, tier).
    #[serde(default)]
    pub tier_models: Vec<TierModel>,
    #[serde(default)]
    pub copilot_mode: Mode,
    #[serde(default)]
    pub copilot_trust: Trust,
    #[serde(default)]
    pub sign_out_clears: SignOutClears,
}

/// Smallest and largest font size (points) the app draws.
pub const FONT_SIZES: std::ops::RangeInclusive<u16> = 8..=32;

fn default_font_size() -> u16 {
    14
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            name: NAME.into(),
            folder: String::new(),
            theme: Theme::default(),
            font_size: default_font_size(),
            default_tier: Tier::default(),
            tier_models: Vec::new(),
            copilot_mode: Mode::default(),
            copilot_trust: Trust::default(),
            sign_out_clears: SignOutClears::default(),
        }
    }
}

/// A settable (or readable) setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Theme,
    FontSize,
    DefaultTier,
    /// The model a tier means in one organization (needs an org).
    TierModel(Tier),
    CopilotMode,
    CopilotTrust,
    ClearsDecryptedCache,
    ClearsLocalRecords,
    ClearsRecordings,
    ClearsScrollback,
    ClearsConversations,
    ClearsRememberedDevice,
}

impl Key {
    pub const ALL: [Key; 14] = [
        Key::Theme,
        Key::FontSize,
        Key::DefaultTier,
        Key::TierModel(Tier::Fast),
        Key::TierModel(Tier::Balanced),
        Key::TierModel(Tier::Best),
        Key::CopilotMode,
        Key::CopilotTrust,
        Key::ClearsDecryptedCache,
        Key::ClearsLocalRecords,
        Key::ClearsRecordings,
        Key::ClearsScrollback,
        Key::ClearsConversations,
        Key::ClearsRememberedDevice,
    ];

    /// The key's name as `gatehouse settings get|set` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Key::Theme => "theme",
            Key::FontSize => "font-size",
            Key::DefaultTier => "ai.default-tier",
            Key::TierModel(Tier::Fast) => "ai.model.fast",
            Key::TierModel(Tier::Balanced) => "ai.model.balanced",
            Key::TierModel(Tier::Best) => "ai.model.best",
            Key::CopilotMode => "copilot.mode",
            Key::CopilotTrust => "copilot.trust",
            Key::ClearsDecryptedCache => "sign-out.decrypted-cache",
            Key::ClearsLocalRecords => "sign-out.local-records",
            Key::ClearsRecordings => "sign-out.recordings",
            Key::ClearsScrollback => "sign-out.scrollback",
            Key::ClearsConversations => "sign-out.conversations",
            Key::ClearsRememberedDevice => "sign-out.remembered-device",
        }
    }

    /// What the setting does, for a person deciding (shown beside it).
    pub fn explain(self) -> &'static str {
        match self {
            Key::Theme => "Colours of the app: dark or light.",
            Key::FontSize => "Text size of the app and its terminals, in points (8–32).",
            Key::DefaultTier => {
                "The AI tier a conversation uses when it does not pick one: fast (cheap, quick), balanced, or best (most capable, slowest, costliest)."
            }
            Key::TierModel(_) => {
                "The provider model this tier means in an organization (set with --org; each organization has its own provider)."
            }
            Key::CopilotMode => {
                "How a new conversation starts: default (works the task), ask (read-only tools, anything else is a suggestion) or planning (evidence first, then a numbered plan)."
            }
            Key::CopilotTrust => {
                "How much runs without asking in a new conversation: manual (every tool call asks), supervised (read-only runs, everything else asks) or autonomous (Autopilot, bounded by a task a person starts)."
            }
            Key::ClearsDecryptedCache => {
                "Always on: sign-out zeroizes every key and every decrypted field the broker and the daemons hold."
            }
            Key::ClearsLocalRecords => {
                "Also delete this profile's records store (names, addresses and folders are plaintext there; secrets are sealed either way). Sync or an export brings them back."
            }
            Key::ClearsRecordings => {
                "Also delete this profile's session recordings (they are sealed at rest; this removes even the ciphertext)."
            }
            Key::ClearsScrollback => {
                "Clear the app's terminal tabs and their scrollback (on by default). Off: at sign-out every session still closes, but the ended tabs stay on screen with what the devices printed."
            }
            Key::ClearsConversations => {
                "Clear the app's copilot panel, its messages and tool results (on by default). Off: the panel keeps showing the last conversation; copilotd forgets every conversation at sign-out either way."
            }
            Key::ClearsRememberedDevice => {
                "Forget this device: the next start asks for the passphrase. Today the broker always forgets it at sign-out, so this cannot be turned off yet."
            }
        }
    }

    /// Whether the key is per organization (`--org`).
    pub fn per_org(self) -> bool {
        matches!(self, Key::TierModel(_))
    }

    pub fn parse(s: &str) -> Result<Key, RecordError> {
        Key::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| RecordError::Invalid {
                field: "setting".into(),
                reason: format!(
                    "unknown setting {s:?} (one of: {})",
                    Key::ALL.map(Key::as_str).join(", ")
                ),
            })
    }

    /// The values a key accepts, for error messages and help.
    pub fn accepts(self) -> String {
        match self {
            Key::Theme => "dark, light".into(),
            Key::FontSize => format!("a whole number {}–{}", FONT_SIZES.start(), FONT_SIZES.end()),
            Key::DefaultTier => Tier::ALL.map(Tier::as_str).join(", "),
            Key::TierModel(_) => "a provider model name, or `none` to remove it".into(),
            Key::CopilotMode => "default, ask, planning".into(),
            Key::CopilotTrust => "manual, supervised, autonomous".into(),
            Key::ClearsDecryptedCache => "true (always)".into(),
            Key::ClearsRememberedDevice => "true (always, today)".into(),
            _ => "true, false".into(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn bad_value(key: Key, value: &str) -> RecordError {
    RecordError::Invalid {
        field: key.as_str().into(),
        reason: format!(
            "{value:?} is not a valid value (accepts: {})",
            key.accepts()
        ),
    }
}

fn parse_bool(key: Key, v: &str) -> Result<bool, RecordError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(bad_value(key, v)),
    }
}

pub fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Default => "default",
        Mode::Ask => "ask",
        Mode::Planning => "planning",
    }
}

pub fn trust_str(t: Trust) -> &'static str {
    match t {
        Trust::Manual => "manual",
        Trust::Supervised => "supervised",
        Trust::Autonomous => "autonomous",
    }
}

impl Settings {
    /// The model a conversation in `org` uses when it picks `tier` (or none:
    /// the default tier). `None`: no model is set for that tier there.
    pub fn model_for(&self, org: &str, tier: Option<Tier>) -> Option<&str> {
        let tier = tier.unwrap_or(self.default_tier);
        self.tier_models
            .iter()
            .find(|m| m.org == org && m.tier == tier)
            .map(|m| m.model.as_str())
    }

    /// The value of `key` as text (`org`: the organization id of a per-org key).
    pub fn get(&self, key: Key, org: Option<&str>) -> Result<String, RecordError> {
        let b = |x: bool| x.to_string();
        let c = &self.sign_out_clears;
        Ok(match key {
            Key::Theme => match self.theme {
                Theme::Dark => "dark".into(),
                Theme::Light => "light".into(),
            },
            Key::FontSize => self.font_size.to_string(),
            Key::DefaultTier => self.default_tier.to_string(),
            Key::TierModel(t) => {
                let org = need_org(key, org)?;
                self.model_for(org, Some(t)).unwrap_or("none").to_string()
            }
            Key::CopilotMode => mode_str(self.copilot_mode).into(),
            Key::CopilotTrust => trust_str(self.copilot_trust).into(),
            Key::ClearsDecryptedCache => b(true),
            Key::ClearsLocalRecords => b(c.local_records),
            Key::ClearsRecordings => b(c.recordings),
            Key::ClearsScrollback => b(c.scrollback),
            Key::ClearsConversations => b(c.conversations),
            Key::ClearsRememberedDevice => b(c.remembered_device),
        })
    }

    /// Sets `key` from text; on an error nothing changed.
    pub fn set(&mut self, key: Key, org: Option<&str>, value: &str) -> Result<(), RecordError> {
        let v = value.trim();
        if !key.per_org() && org.is_some() {
            return Err(RecordError::Invalid {
                field: key.as_str().into(),
                reason: "is not per organization (drop --org)".into(),
            });
        }
        match key {
            Key::Theme => {
                self.theme = match v {
                    "dark" => Theme::Dark,
                    "light" => Theme::Light,
                    _ => return Err(bad_value(key, value)),
                }
            }
            Key::FontSize => {
                let n: u16 = v.parse().map_err(|_| bad_value(key, value))?;
                if !FONT_SIZES.contains(&n) {
                    return Err(bad_value(key, value));
                }
                self.font_size = n;
            }
            Key::DefaultTier => {
                self.default_tier = Tier::ALL
                    .into_iter()
                    .find(|t| t.as_str() == v)
                    .ok_or_else(|| bad_value(key, value))?
            }
            Key::TierModel(tier) => {
                let org = need_org(key, org)?.to_string();
                self.tier_models
                    .retain(|m| !(m.org == org && m.tier == tier));
                if v != "none" {
                    check_model(key, v)?;
                    self.tier_models.push(TierModel {
                        org,
                        tier,
                        model: v.to_string(),
                    });
                    self.tier_models
                        .sort_by(|a, b| (&a.org, a.tier as u8).cmp(&(&b.org, b.tier as u8)));
                }
            }
            Key::CopilotMode => {
                self.copilot_mode = [Mode::Default, Mode::Ask, Mode::Planning]
                    .into_iter()
                    .find(|m| mode_str(*m) == v)
                    .ok_or_else(|| bad_value(key, value))?
            }
            Key::CopilotTrust => {
                self.copilot_trust = [Trust::Manual, Trust::Supervised, Trust::Autonomous]
                    .into_iter()
                    .find(|t| trust_str(*t) == v)
                    .ok_or_else(|| bad_value(key, value))?
            }
            Key::ClearsDecryptedCache | Key::ClearsRememberedDevice => {
                if !parse_bool(key, v)? {
                    return Err(RecordError::Invalid {
                        field: key.as_str().into(),
                        reason: if key == Key::ClearsDecryptedCache {
                            "sign-out always clears the decrypted cache; it cannot be turned off"
                                .into()
                        } else {
                            "the broker always forgets the remembered device at sign-out today; this cannot be turned off yet".into()
                        },
                    });
                }
            }
            Key::ClearsLocalRecords => self.sign_out_clears.local_records = parse_bool(key, v)?,
            Key::ClearsRecordings => self.sign_out_clears.recordings = parse_bool(key, v)?,
            Key::ClearsScrollback => self.sign_out_clears.scrollback = parse_bool(key, v)?,
            Key::ClearsConversations => self.sign_out_clears.conversations = parse_bool(key, v)?,
        }
        Ok(())
    }

    /// Checks a settings record as the store writes it.
    pub fn check(&self) -> Result<(), RecordError> {
        if self.name != NAME {
            return Err(RecordError::Invalid {
                field: "name".into(),
                reason: format!("the settings record is named {NAME:?}, not {:?}", self.name),
            });
        }
        if !self.folder.is_empty() {
            return Err(RecordError::Invalid {
                field: "folder".into(),
                reason: "the settings record lives in the root folder".into(),
            });
        }
        if !FONT_SIZES.contains(&self.font_size) {
            return Err(bad_value(Key::FontSize, &self.font_size.to_string()));
        }
        if !self.sign_out_clears.remembered_device {
            return Err(RecordError::Invalid {
                field: "sign_out_clears.remembered_device".into(),
                reason: "the broker always forgets the remembered device at sign-out today".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.tier_models {
            check_model(Key::TierModel(m.tier), &m.model)?;
            if m.org.is_empty() {
                return Err(RecordError::Invalid {
                    field: "tier_models".into(),
                    reason: "an entry has no organization".into(),
                });
            }
            if !seen.insert((m.org.clone(), m.tier)) {
                return Err(RecordError::Invalid {
                    field: "tier_models".into(),
                    reason: format!("two models for tier {} in org {}", m.tier, m.org),
                });
            }
        }
        Ok(())
    }
}

fn need_org(key: Key, org: Option<&str>) -> Result<&str, RecordError> {
    org.ok_or_else(|| RecordError::Invalid {
        field: key.as_str().into(),
        reason: "is per organization: name one with --org".into(),
    })
}

fn check_model(key: Key, m: &str) -> Result<(), RecordError> {
    if m.is_empty() || m.len() > 200 || m.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RecordError::Invalid {
            field: key.as_str().into(),
            reason: format!("{m:?} is not a model name (1–200 characters, no spaces)"),
        });
    }
    Ok(())
}

/// The stored settings record, if there is one (no broker call, nothing
/// verified: for drawing the app before sign-in only).
pub fn stored(store: &Store) -> Result<Option<StoredRecord>, RecordError> {
    match store.resolve(Kind::Settings, Some(&KeyScope::Private), NAME) {
        Ok(s) => Ok(Some(s)),
        Err(RecordError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Appearance before sign-in: the stored record's plaintext fields, not
/// verified (its MAC needs the broker). Never use this for sign-out options
/// or the copilot's trust; use [`load`].
pub fn unverified(store: &Store) -> Result<Settings, RecordError> {
    let Some(s) = stored(store)? else {
        return Ok(Settings::default());
    };
    let mut v = serde_json::Map::new();
    for (k, x) in s.plain {
        v.insert(k, x);
    }
    serde_json::from_value(serde_json::Value::Object(v)).map_err(|e| RecordError::Corrupt {
        what: format!("settings fields do not decode: {e}"),
    })
}

/// The verified settings (defaults when none are stored yet) and the meta of
/// the stored record, if any.
pub fn load(
    store: &Store,
    sealer: &mut dyn Sealer,
) -> Result<(Settings, Option<Meta>), RecordError> {
    let Some(s) = stored(store)? else {
        return Ok((Settings::default(), None));
    };
    let opened = Store::open_record(sealer, &s)?;
    match opened.record {
        Record::Settings(x) => Ok((x, Some(opened.meta))),
        other => Err(RecordError::Corrupt {
            what: format!("settings record holds a {}", other.kind()),
        }),
    }
}

/// Writes `settings` (creating the record the first time); `current` is the
/// meta [`load`] returned (a concurrent change is a `Conflict`).
pub fn save(
    store: &mut Store,
    sealer: &mut dyn Sealer,
    actor: &str,
    current: Option<&Meta>,
    settings: Settings,
) -> Result<Meta, RecordError> {
    match current {
        Some(m) => store.update(sealer, actor, m, Record::Settings(settings)),
        None => store.create(sealer, actor, KeyScope::Private, Record::Settings(settings)),
    }
}

/// The sign-out options, read before signing out: verified when the broker
/// can check the record's MAC, else the stored record's plaintext (a
/// tampered record could then clear less; a same-uid program can read these
/// files anyway, so the plaintext is used rather than clearing nothing).
pub fn sign_out_clears(layout: &gatehouse_ipc::Layout) -> SignOutClears {
    let Ok(store) = Store::open_in(layout) else {
        return SignOutClears::default();
    };
    let verified = crate::BrokerSealer::connect(layout)
        .ok()
        .and_then(|mut sealer| load(&store, &mut sealer).ok());
    match verified {
        Some((s, _)) => s.sign_out_clears,
        None => unverified(&store)
            .map(|s| s.sign_out_clears)
            .unwrap_or_default(),
    }
}

/// Clears what `clears` asks for of the profile's files after the broker
/// signed out (the local records store, the recordings under
/// `recordings_dir`); one line per thing cleared or not cleared (and why).
/// Scrollback and conversations are the app's to clear (it holds them).
pub fn clear_after_sign_out(
    layout: &gatehouse_ipc::Layout,
    recordings_dir: &std::path::Path,
    clears: &SignOutClears,
) -> Vec<String> {
    let mut done = Vec::new();
    if clears.local_records {
        match Store::open_in(layout).and_then(|mut s| s.clear_local()) {
            Ok(n) => done.push(format!(
                "local records: deleted {n} record(s) from this profile's store (sign-out.local-records)"
            )),
            Err(e) => done.push(format!("local records: NOT cleared: {e}")),
        }
    }
    if clears.recordings {
        match remove_dir_contents(recordings_dir) {
            Ok(n) => done.push(format!(
                "recordings: deleted {n} file(s) under {} (sign-out.recordings)",
                recordings_dir.display()
            )),
            Err(e) => done.push(format!(
                "recordings: NOT cleared ({}): {e}",
                recordings_dir.display()
            )),
        }
    }
    done
}

/// Deletes every file under `dir` (keeping `dir`); a missing `dir` is empty.
fn remove_dir_contents(dir: &std::path::Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            n += remove_dir_contents(&path)?;
            std::fs::remove_dir(&path)?;
        } else {
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}
