//! The hosts screen's store and broker work, run on a blocking thread: the
//! same path as `gatehouse host add/edit/rm/show` (`host_edit` builds the
//! record, `Store::check` validates it, `Store::create/update/remove` with a
//! `BrokerSealer` write it).
//!
//! Owns: turning a record error into the form field it belongs to.
//! Must never: write anything when a check fails (checks run before the
//! broker is even connected), open a sealed field except the one a person
//! asked to reveal (`Store::open_field` through `RevealFields`) or the whole record an edit
//! re-seals (as the CLI's edit does), or keep an opened value.

use std::collections::BTreeMap;

use gatehouse_ipc::broker::KeyScope;
use gatehouse_ipc::paths::local_user as actor;
use gatehouse_ipc::{Layout, SecretBytes};
use gatehouse_records::host_edit::{self, HostChanges};
use gatehouse_records::model::{Kind, Record, Secret};
use gatehouse_records::{BrokerSealer, RecordError, Store};
use serde_json::Value;

/// Where a save goes.
#[derive(Debug, Clone)]
pub enum Target {
    New {
        scope: KeyScope,
    },
    /// The host as the form read it (a newer revision is a conflict).
    Edit {
        id: String,
        revision: u64,
    },
}

/// A host add or edit, as the form submits it. `changes` may hold a typed
/// password ([`Secret`]: zeroized when this is dropped, once sealed).
#[derive(Debug, Clone)]
pub struct Save {
    pub target: Target,
    pub name: String,
    pub changes: HostChanges,
}

/// Why a save failed: the form field it belongs to (if any) and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveError {
    pub field: Option<String>,
    pub message: String,
}

impl From<RecordError> for SaveError {
    fn from(e: RecordError) -> SaveError {
        let field = match &e {
            RecordError::Invalid { field, .. } | RecordError::NoSuchKeychainEntry { field, .. } => {
                Some(field.clone())
            }
            RecordError::Duplicate { .. } => Some("name".into()),
            _ => None,
        };
        SaveError {
            field,
            message: e.to_string(),
        }
    }
}

fn plain_error(message: String) -> SaveError {
    SaveError {
        field: None,
        message,
    }
}

fn connect(layout: &Layout) -> Result<BrokerSealer, RecordError> {
    Ok(BrokerSealer::connect(layout)?)
}

/// Adds or changes a host; returns its id and revision once committed.
pub fn save(layout: &Layout, s: Save) -> Result<(String, u64), SaveError> {
    let mut store = Store::open_in(layout)?;
    match s.target {
        Target::New { scope } => {
            let (h, _) = host_edit::new_host(&s.name, s.changes)?;
            let mut rec = Record::Host(h);
            // Checked before the broker is asked anything: nothing written on error.
            store.check(&scope, None, &mut rec)?;
            let meta = store.create(&mut connect(layout)?, &actor(), scope, rec)?;
            Ok((meta.id, meta.revision))
        }
        Target::Edit { id, revision } => {
            let stored = store.get(Kind::Host, &id)?;
            if stored.meta.revision != revision {
                return Err(plain_error(format!(
                    "{} changed since this form was opened (revision {revision}, now {}): close and edit again",
                    s.name, stored.meta.revision
                )));
            }
            let mut sealer = connect(layout)?;
            let opened = Store::open_record(&mut sealer, &stored)?;
            let Record::Host(mut h) = opened.record else {
                return Err(plain_error(format!("{id} is not a host")));
            };
            let mut changes = s.changes;
            changes.name = Some(s.name);
            host_edit::apply(&mut h, changes)?;
            let mut rec = Record::Host(h);
            store.check(&opened.meta.scope, Some(&id), &mut rec)?;
            let meta = store.update(&mut sealer, &actor(), &opened.meta, rec)?;
            Ok((meta.id, meta.revision))
        }
    }
}

/// Removes a host (the revision the person saw: a newer one is not removed).
pub fn delete(layout: &Layout, id: &str, revision: u64) -> Result<(), String> {
    let mut store = Store::open_in(layout).map_err(|e| e.to_string())?;
    let stored = store.get(Kind::Host, id).map_err(|e| e.to_string())?;
    if stored.meta.revision != revision {
        return Err(format!(
            "the host changed since it was shown (revision {revision}, now {}): not removed",
            stored.meta.revision
        ));
    }
    store
        .remove(&actor(), &stored.meta)
        .map_err(|e| e.to_string())
}

/// A host's detail from the store alone: plaintext fields and the names of
/// its sealed fields. Nothing is opened.
#[derive(Debug, Clone)]
pub struct Detail {
    pub id: String,
    pub scope: KeyScope,
    pub owner: String,
    pub revision: u64,
    pub updated_ms: u64,
    pub plain: BTreeMap<String, Value>,
    /// Sealed fields present (shown masked).
    pub sealed: Vec<String>,
}

impl Detail {
    /// A plaintext field as text ("" when absent).
    pub fn text(&self, field: &str) -> String {
        match self.plain.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }
}

pub fn detail(layout: &Layout, id: &str) -> Result<Detail, String> {
    let store = Store::open_in(layout).map_err(|e| e.to_string())?;
    let s = store.get(Kind::Host, id).map_err(|e| e.to_string())?;
    Ok(Detail {
        id: s.meta.id.clone(),
        scope: s.meta.scope.clone(),
        owner: s.meta.owner.clone(),
        revision: s.meta.revision,
        updated_ms: s.meta.updated_ms,
        sealed: s.sealed.keys().cloned().collect(),
        plain: s.plain,
    })
}

/// Why a reveal gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevealFailed {
    /// The broker wants the account passphrase first (its reason): the
    /// detail asks for it and tries again.
    PresenceRequired(String),
    /// Anything else, as a person reads it (a wrong passphrase, the
    /// throttle, a tampered record, the broker away).
    Refused(String),
}

impl From<RecordError> for RevealFailed {
    fn from(e: RecordError) -> RevealFailed {
        match e {
            RecordError::Sealer(gatehouse_records::SealerError::Remote(
                gatehouse_ipc::broker::BrokerError::PresenceRequired { why },
            )) => RevealFailed::PresenceRequired(why),
            other => RevealFailed::Refused(other.to_string()),
        }
    }
}

/// Opens exactly one sealed field of a MAC-verified host to show it
/// (`RevealFields`, with `presence` when the person typed the passphrase;
/// the broker writes its credential-log row before answering, refused or
/// not). `presence` is dropped (zeroized) with the request.
pub fn reveal(
    layout: &Layout,
    id: &str,
    field: &str,
    presence: Option<SecretBytes>,
) -> Result<Secret, RevealFailed> {
    let store = Store::open_in(layout)?;
    let stored = store.get(Kind::Host, id)?;
    let mut sealer = connect(layout)?;
    sealer.reveal(presence);
    Ok(Store::open_field(&mut sealer, &stored, field)?)
}

/// Runs `f` on a blocking thread (store and broker calls are synchronous).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("the hosts task failed: {e}")))
}
