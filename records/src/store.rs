//! The local records store: SQLite (WAL, fsync on commit), schema migrations
//! with a version table, transactional writes, audit rows.
//!
//! Owns: the schema, writing records (validate → seal → MAC → one
//! transaction), reading them back (verify the MAC → open sealed fields in one
//! batch), listing and filtering, and the audit trail (who, what, when —
//! metadata only). Must never: store a sealed field other than as the
//! broker's ciphertext, keep a decrypted value anywhere but in the returned
//! [`Opened`] (memory only), or take a [`Sealer`] in a listing function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{
    BrokerError, FieldAddress, KeyScope, MacItem, OpenItem, SealItem, VerifyItem,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::RecordError;
use crate::fields::{self, MacInput};
use crate::model::{Kind, Meta, Record, Secret, parse_scope, scope_str};
use crate::sealer::{Sealer, SealerError};
use crate::validate;

/// Schema migrations; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: records, sealed fields, audit, org display names
    "CREATE TABLE records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        scope TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        name TEXT,
        folder TEXT NOT NULL,
        plain TEXT NOT NULL,
        mac BLOB NOT NULL,
        PRIMARY KEY (kind, id)
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX records_unique_name ON records(kind, scope, folder, name);
     CREATE INDEX records_by_scope ON records(kind, scope);
     CREATE TABLE sealed_fields (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        field TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        PRIMARY KEY (kind, id, field)
     ) WITHOUT ROWID;
     CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        revision INTEGER NOT NULL
     );
     CREATE TABLE org_names (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL
     );",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file name of the store in a profile's data directory.
pub const FILE_NAME: &str = "records.sqlite";

pub use gatehouse_ipc::os::now_ms;

/// A new random record id (16 hex digits).
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    // getrandom only fails without any OS entropy source; fall back to time + counter.
    if getrandom::fill(&mut b).is_err() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b = (now_ms().wrapping_mul(1_000_003) ^ n.rotate_left(40)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A record as stored: plaintext fields, ciphertexts, MAC. Nothing opened.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub meta: Meta,
    pub plain: BTreeMap<String, Value>,
    pub sealed: BTreeMap<String, Vec<u8>>,
    pub mac: Vec<u8>,
}

/// A listed record: meta and plaintext fields only.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub meta: Meta,
    pub fields: BTreeMap<String, Value>,
}

impl Summary {
    pub fn name(&self) -> &str {
        self.fields
            .get("name")
            .or_else(|| self.fields.get("title"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn folder(&self) -> &str {
        self.fields
            .get("folder")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn str_field(&self, f: &str) -> Option<&str> {
        self.fields.get(f).and_then(Value::as_str)
    }
}

/// A verified, opened record. Its secrets live only here, in memory.
#[derive(Debug, Clone)]
pub struct Opened {
    pub meta: Meta,
    pub record: Record,
    /// Names of the fields that were sealed.
    pub sealed_fields: Vec<String>,
}

/// List filters; all over plaintext fields.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub scope: Option<KeyScope>,
    /// This folder and its subfolders.
    pub folder: Option<String>,
    pub tag: Option<String>,
    pub vendor: Option<String>,
    /// Case-insensitive substring of any plaintext field or the id.
    pub text: Option<String>,
}

impl Filter {
    pub fn kind(kind: Kind) -> Filter {
        Filter {
            kind: Some(kind),
            ..Filter::default()
        }
    }

    fn matches(&self, s: &Summary) -> Result<bool, RecordError> {
        if let Some(f) = &self.folder {
            let f = validate::normalize_folder(f)?;
            let folder = s.folder();
            if !(f.is_empty() || folder == f || folder.starts_with(&format!("{f}/"))) {
                return Ok(false);
            }
        }
        if let Some(t) = &self.tag {
            let has = s
                .fields
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(t)));
            if !has {
                return Ok(false);
            }
        }
        if let Some(v) = &self.vendor
            && s.str_field("vendor") != Some(v.as_str())
        {
            return Ok(false);
        }
        if let Some(t) = &self.text {
            let t = t.to_lowercase();
            if !s.meta.id.contains(&t) && !s.fields.values().any(|v| value_contains(v, &t)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn value_contains(v: &Value, needle_lower: &str) -> bool {
    match v {
        Value::String(s) => s.to_lowercase().contains(needle_lower),
        Value::Number(n) => n.to_string().contains(needle_lower),
        Value::Array(a) => a.iter().any(|x| value_contains(x, needle_lower)),
        Value::Object(m) => m.values().any(|x| value_contains(x, needle_lower)),
        _ => false,
    }
}

/// What to write, after validation and before sealing.
struct Prepared {
    meta: Meta,
    plain: BTreeMap<String, Value>,
    sealed: BTreeMap<String, Value>,
    name: Option<String>,
    folder: String,
}

/// Ready to write: sealed and MACed.
struct Ready {
    p: Prepared,
    sealed: BTreeMap<String, Vec<u8>>,
    mac: Vec<u8>,
}

/// How a prepared record goes into the table.
#[derive(Clone, Copy)]
enum WriteMode {
    Insert,
    /// Replace the row at this revision.
    Update {
        expected_revision: u64,
    },
    /// Insert or replace regardless (bundle import, after its own checks).
    Replace,
}

/// Where sealed field `field` of a record lives (its binding included).
pub fn field_address(meta: &Meta, field: &str, plain: &BTreeMap<String, Value>) -> FieldAddress {
    FieldAddress {
        scope: meta.scope.clone(),
        record_kind: meta.kind.as_str().to_string(),
        record_id: meta.id.clone(),
        field: field.to_string(),
        binding: fields::binding(meta.kind, field, plain),
    }
}

fn mac_item(
    meta: &Meta,
    plain: &BTreeMap<String, Value>,
    sealed: &BTreeMap<String, Vec<u8>>,
) -> MacItem {
    MacItem {
        scope: meta.scope.clone(),
        record_kind: meta.kind.as_str().to_string(),
        record_id: meta.id.clone(),
        content: fields::mac_content(&MacInput {
            owner: &meta.owner,
            created_ms: meta.created_ms,
            updated_ms: meta.updated_ms,
            revision: meta.revision,
            plain,
            sealed,
        }),
    }
}

/// What the broker needs to check a stored record's MAC (and, for a host,
/// to release one of its credentials).
pub fn verify_item(s: &StoredRecord) -> gatehouse_ipc::broker::VerifyItem {
    gatehouse_ipc::broker::VerifyItem {
        item: mac_item(&s.meta, &s.plain, &s.sealed),
        mac: s.mac.clone(),
    }
}

/// Kinds whose secret fields may hold `keychain:NAME` references (credentials).
fn holds_credentials(kind: Kind) -> bool {
    matches!(kind, Kind::Host | Kind::Connector | Kind::McpServer)
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating and migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, RecordError> {
        let db = |source| RecordError::Db {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        // Owner-only, like the directory it lives in (SQLite gives the WAL
        // and shared-memory files the same mode).
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        // FULL: a commit is on disk before we acknowledge it.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
        };
        s.migrate()?;
        Ok(s)
    }

    /// Opens the store of a profile (`<root>/records.sqlite`).
    pub fn open_in(layout: &gatehouse_ipc::Layout) -> Result<Store, RecordError> {
        gatehouse_ipc::paths::make_private_dir(&layout.root).map_err(|e| RecordError::Corrupt {
            what: format!("data directory: {e}"),
        })?;
        Store::open(&layout.root.join(FILE_NAME))
    }

    /// The database file and its WAL companions (`-wal`, `-shm`): what a
    /// sandbox must let a reader of this store reach.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let with = |suffix: &str| {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        vec![self.path.clone(), with("-wal"), with("-shm")]
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self, source: rusqlite::Error) -> RecordError {
        db_err(&self.path, source)
    }

    fn migrate(&mut self) -> Result<(), RecordError> {
        let path = self.path.display().to_string();
        let db = |source| RecordError::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            [],
        )
        .map_err(db)?;
        let found: Option<i64> = tx
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        let found = match found {
            Some(v) => v,
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])
                    .map_err(db)?;
                0
            }
        };
        if found > SCHEMA_VERSION {
            return Err(RecordError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql).map_err(db)?;
            tx.execute("UPDATE schema_version SET version = ?1", [i as i64 + 1])
                .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    pub fn schema_version(&self) -> Result<i64, RecordError> {
        self.conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .map_err(|e| self.db(e))
    }

    // ---------------------------------------------------------------- writing

    /// Validates `record` for (re)writing under `scope` as record `id` (None:
    /// new): field checks, folder normalization, name unique in its folder.
    /// No broker call, nothing written.
    pub fn check(
        &self,
        scope: &KeyScope,
        id: Option<&str>,
        record: &mut Record,
    ) -> Result<(), RecordError> {
        validate::check(record)?;
        let kind = record.kind();
        if kind == Kind::Settings && *scope != KeyScope::Private {
            return Err(RecordError::Invalid {
                field: "scope".into(),
                reason: format!("settings are private (your own), not {scope}"),
            });
        }
        if let (true, Some(name)) = (kind.has_unique_name(), record.name()) {
            let taken: Option<String> = self
                .conn
                .prepare_cached(
                    // Names are unique ignoring ASCII case (`R1` and `r1` in one
                    // folder would be one device to a person).
                    "SELECT id FROM records WHERE kind = ?1 AND scope = ?2 AND folder = ?3 AND name = ?4 COLLATE NOCASE",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![kind.as_str(), scope_str(scope), record.folder(), name],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(|e| self.db(e))?;
            if let Some(other) = taken
                && Some(other.as_str()) != id
            {
                return Err(RecordError::Duplicate {
                    kind,
                    name: name.to_string(),
                    folder: record.folder().to_string(),
                    scope: scope.to_string(),
                });
            }
        }
        Ok(())
    }

    fn prepare(&self, meta: Meta, record: &Record) -> Result<Prepared, RecordError> {
        let split = fields::flatten(meta.kind, record.to_value()?)?;
        Ok(Prepared {
            name: record
                .kind()
                .has_unique_name()
                .then(|| record.name().map(str::to_string))
                .flatten(),
            folder: record.folder().to_string(),
            meta,
            plain: split.plain,
            sealed: split.sealed,
        })
    }

    /// Checks every `keychain:NAME` reference against the keychain (one broker call, if any).
    fn check_references(sealer: &mut dyn Sealer, items: &[Prepared]) -> Result<(), RecordError> {
        let mut refs = Vec::new();
        for p in items.iter().filter(|p| holds_credentials(p.meta.kind)) {
            for (f, v) in &p.sealed {
                validate::keychain_refs(f, v, &mut refs);
            }
        }
        if refs.is_empty() {
            return Ok(());
        }
        let names = sealer.keychain_names()?;
        for (field, name) in refs {
            if !names.contains(&name) {
                return Err(RecordError::NoSuchKeychainEntry { field, name });
            }
        }
        Ok(())
    }

    /// Seals every sealed field of every item in one batch, then MACs every
    /// record in one batch.
    fn seal_and_mac(
        sealer: &mut dyn Sealer,
        items: Vec<Prepared>,
    ) -> Result<Vec<Ready>, RecordError> {
        Self::check_references(sealer, &items)?;
        let mut seal_items = Vec::new();
        for p in &items {
            for (f, v) in &p.sealed {
                seal_items.push(SealItem {
                    address: field_address(&p.meta, f, &p.plain),
                    plaintext: SecretBytes::new(fields::canonical_json(v)),
                });
            }
        }
        let mut sealed = sealer.seal(seal_items)?.into_iter();
        let mut ready = Vec::with_capacity(items.len());
        for p in items {
            let mut ct = BTreeMap::new();
            for f in p.sealed.keys() {
                let c = sealed.next().ok_or_else(|| {
                    SealerError::Unexpected("fewer ciphertexts than fields".into())
                })?;
                ct.insert(f.clone(), c);
            }
            ready.push(Ready {
                p,
                sealed: ct,
                mac: Vec::new(),
            });
        }
        let macs = sealer.mac(
            ready
                .iter()
                .map(|r| mac_item(&r.p.meta, &r.p.plain, &r.sealed))
                .collect(),
        )?;
        if macs.len() != ready.len() {
            return Err(SealerError::Unexpected("MAC count differs".into()).into());
        }
        for (r, m) in ready.iter_mut().zip(macs) {
            r.mac = m;
        }
        // The plaintexts of sealed fields are no longer needed.
        for r in &mut ready {
            r.p.sealed.clear();
        }
        Ok(ready)
    }

    fn write_one(
        tx: &rusqlite::Transaction<'_>,
        r: &Ready,
        mode: WriteMode,
        actor: &str,
        action: &str,
    ) -> Result<(), rusqlite::Error> {
        let m = &r.p.meta;
        let plain = serde_json::to_string(&r.p.plain).unwrap_or_default();
        let scope = scope_str(&m.scope);
        match mode {
            WriteMode::Insert => {
                tx.prepare_cached(
                    "INSERT INTO records (kind, id, scope, owner, created_ms, updated_ms, revision, name, folder, plain, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(
                    params![m.kind.as_str(), m.id, scope, m.owner, m.created_ms as i64, m.updated_ms as i64,
                            m.revision as i64, r.p.name, r.p.folder, plain, r.mac],
                )?;
            }
            WriteMode::Update { expected_revision } => {
                let n = tx.prepare_cached(
                    "UPDATE records SET scope = ?3, owner = ?4, created_ms = ?5, updated_ms = ?6, revision = ?7,
                         name = ?8, folder = ?9, plain = ?10, mac = ?11
                     WHERE kind = ?1 AND id = ?2 AND revision = ?12",
                )?
                .execute(
                    params![m.kind.as_str(), m.id, scope, m.owner, m.created_ms as i64, m.updated_ms as i64,
                            m.revision as i64, r.p.name, r.p.folder, plain, r.mac, expected_revision as i64],
                )?;
                if n != 1 {
                    return Err(rusqlite::Error::QueryReturnedNoRows);
                }
            }
            WriteMode::Replace => {
                // An upsert on the id only: a clash on the name index is an error, never a silent delete.
                tx.prepare_cached(
                    "INSERT INTO records (kind, id, scope, owner, created_ms, updated_ms, revision, name, folder, plain, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (kind, id) DO UPDATE SET scope = excluded.scope, owner = excluded.owner,
                         created_ms = excluded.created_ms, updated_ms = excluded.updated_ms,
                         revision = excluded.revision, name = excluded.name, folder = excluded.folder,
                         plain = excluded.plain, mac = excluded.mac",
                )?
                .execute(
                    params![m.kind.as_str(), m.id, scope, m.owner, m.created_ms as i64, m.updated_ms as i64,
                            m.revision as i64, r.p.name, r.p.folder, plain, r.mac],
                )?;
            }
        }
        tx.prepare_cached("DELETE FROM sealed_fields WHERE kind = ?1 AND id = ?2")?
            .execute(params![m.kind.as_str(), m.id])?;
        for (f, c) in &r.sealed {
            tx.prepare_cached(
                "INSERT INTO sealed_fields (kind, id, field, ciphertext) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![m.kind.as_str(), m.id, f, c])?;
        }
        Self::audit_row(tx, actor, action, m)
    }

    fn audit_row(
        tx: &rusqlite::Transaction<'_>,
        actor: &str,
        action: &str,
        m: &Meta,
    ) -> Result<(), rusqlite::Error> {
        tx.prepare_cached(
            "INSERT INTO audit (at_ms, actor, action, kind, record_id, scope, revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(
            params![now_ms() as i64, actor, action, m.kind.as_str(), m.id, scope_str(&m.scope), m.revision as i64],
        )?;
        Ok(())
    }

    /// Creates one record; returns its meta once committed.
    pub fn create(
        &mut self,
        sealer: &mut dyn Sealer,
        actor: &str,
        scope: KeyScope,
        record: Record,
    ) -> Result<Meta, RecordError> {
        let mut metas =
            self.create_many(sealer, actor, vec![(scope, record)], 1, &mut |_, _| {})?;
        Ok(metas.remove(0))
    }

    /// Creates many records: all are checked first (nothing is written if
    /// any fails), sealed in one batch and MACed in one batch, then written in
    /// transactions of `commit_every` records; `on_commit` is called for each
    /// record after the transaction holding it has committed (that is the
    /// acknowledgement: a crash after it loses nothing).
    pub fn create_many(
        &mut self,
        sealer: &mut dyn Sealer,
        actor: &str,
        items: Vec<(KeyScope, Record)>,
        commit_every: usize,
        on_commit: &mut dyn FnMut(&Meta, &Record),
    ) -> Result<Vec<Meta>, RecordError> {
        let now = now_ms();
        let mut prepared = Vec::with_capacity(items.len());
        let mut records = Vec::with_capacity(items.len());
        let mut names = std::collections::HashSet::new();
        for (scope, mut record) in items {
            self.check(&scope, None, &mut record)?;
            if let (true, Some(n)) = (record.kind().has_unique_name(), record.name()) {
                let key = (
                    record.kind(),
                    scope_str(&scope),
                    record.folder().to_string(),
                    n.to_string(),
                );
                if !names.insert(key) {
                    return Err(RecordError::Duplicate {
                        kind: record.kind(),
                        name: n.to_string(),
                        folder: record.folder().to_string(),
                        scope: scope.to_string(),
                    });
                }
            }
            let meta = Meta {
                kind: record.kind(),
                id: new_id(),
                scope,
                owner: actor.to_string(),
                created_ms: now,
                updated_ms: now,
                revision: 1,
            };
            prepared.push(self.prepare(meta, &record)?);
            records.push(record);
        }
        let ready = Self::seal_and_mac(sealer, prepared)?;
        self.write_batches(
            ready,
            records,
            commit_every,
            actor,
            "create",
            WriteMode::Insert,
            on_commit,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn write_batches(
        &mut self,
        ready: Vec<Ready>,
        records: Vec<Record>,
        commit_every: usize,
        actor: &str,
        action: &str,
        mode: WriteMode,
        on_commit: &mut dyn FnMut(&Meta, &Record),
    ) -> Result<Vec<Meta>, RecordError> {
        let mut out = Vec::with_capacity(ready.len());
        let mut pairs = ready.into_iter().zip(records).peekable();
        while pairs.peek().is_some() {
            let batch: Vec<(Ready, Record)> = pairs.by_ref().take(commit_every.max(1)).collect();
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| db_err(&path, e))?;
            for (r, _) in &batch {
                if let Err(e) = Self::write_one(&tx, r, mode, actor, action) {
                    drop(tx);
                    return Err(write_error(&path, e, r));
                }
            }
            tx.commit().map_err(|e| db_err(&path, e))?;
            for (r, rec) in batch {
                on_commit(&r.p.meta, &rec);
                out.push(r.p.meta);
            }
        }
        Ok(out)
    }

    /// Rewrites an opened record with changes: re-checked, re-sealed (the
    /// binding may have changed), re-MACed, revision + 1, in one transaction.
    /// Fails with [`RecordError::Conflict`] if it changed since `current` was read.
    pub fn update(
        &mut self,
        sealer: &mut dyn Sealer,
        actor: &str,
        current: &Meta,
        mut record: Record,
    ) -> Result<Meta, RecordError> {
        if record.kind() != current.kind {
            return Err(RecordError::Invalid {
                field: "kind".into(),
                reason: format!("cannot turn a {} into a {}", current.kind, record.kind()),
            });
        }
        self.check(&current.scope, Some(&current.id), &mut record)?;
        let meta = Meta {
            updated_ms: now_ms().max(current.updated_ms),
            revision: current.revision + 1,
            ..current.clone()
        };
        let p = self.prepare(meta, &record)?;
        let ready = Self::seal_and_mac(sealer, vec![p])?;
        let found = self.get(current.kind, &current.id)?.meta.revision;
        if found != current.revision {
            return Err(RecordError::Conflict {
                kind: current.kind,
                id: current.id.clone(),
                expected: current.revision,
                found,
            });
        }
        let mut metas = self
            .write_batches(
                ready,
                vec![record],
                1,
                actor,
                "update",
                WriteMode::Update {
                    expected_revision: current.revision,
                },
                &mut |_, _| {},
            )
            .map_err(|e| match e {
                RecordError::Db {
                    source: rusqlite::Error::QueryReturnedNoRows,
                    ..
                } => RecordError::Conflict {
                    kind: current.kind,
                    id: current.id.clone(),
                    expected: current.revision,
                    found: current.revision + 1,
                },
                e => e,
            })?;
        Ok(metas.remove(0))
    }

    /// Writes records with their own meta (an org bundle being imported), in
    /// one transaction. The caller decided which to write.
    pub fn write_imported(
        &mut self,
        sealer: &mut dyn Sealer,
        actor: &str,
        items: Vec<(Meta, Record)>,
    ) -> Result<(), RecordError> {
        let mut prepared = Vec::new();
        let mut records = Vec::new();
        for (meta, mut record) in items {
            if record.kind() != meta.kind {
                return Err(RecordError::Corrupt {
                    what: format!("record {}/{} holds a {}", meta.kind, meta.id, record.kind()),
                });
            }
            self.check(&meta.scope, Some(&meta.id), &mut record)?;
            prepared.push(self.prepare(meta, &record)?);
            records.push(record);
        }
        let ready = Self::seal_and_mac(sealer, prepared)?;
        let n = ready.len();
        self.write_batches(
            ready,
            records,
            n.max(1),
            actor,
            "import",
            WriteMode::Replace,
            &mut |_, _| {},
        )?;
        Ok(())
    }

    /// Deletes a record (and its sealed fields), with an audit row.
    pub fn remove(&mut self, actor: &str, meta: &Meta) -> Result<(), RecordError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, e))?;
        let res = (|| {
            tx.execute(
                "DELETE FROM sealed_fields WHERE kind = ?1 AND id = ?2",
                params![meta.kind.as_str(), meta.id],
            )?;
            let n = tx.execute(
                "DELETE FROM records WHERE kind = ?1 AND id = ?2",
                params![meta.kind.as_str(), meta.id],
            )?;
            Self::audit_row(&tx, actor, "delete", meta)?;
            Ok::<usize, rusqlite::Error>(n)
        })();
        match res {
            Ok(0) => Err(RecordError::NotFound {
                kind: meta.kind,
                key: meta.id.clone(),
            }),
            Ok(_) => tx.commit().map_err(|e| db_err(&path, e)),
            Err(e) => Err(db_err(&path, e)),
        }
    }

    /// Applies records pulled from a sync server exactly as stored
    /// elsewhere (plaintext fields, ciphertexts, MAC: the caller had the
    /// broker verify each MAC) and removes tombstoned ones, in one
    /// transaction: all or nothing. `actor` is written to the audit rows.
    pub fn apply_synced(
        &mut self,
        actor: &str,
        upserts: &[StoredRecord],
        deletes: &[(Kind, String)],
    ) -> Result<(), RecordError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, e))?;
        let res = (|| {
            for r in upserts {
                let m = &r.meta;
                let name = m
                    .kind
                    .has_unique_name()
                    .then(|| r.plain.get("name").and_then(Value::as_str))
                    .flatten();
                let folder = r.plain.get("folder").and_then(Value::as_str).unwrap_or("");
                let plain = serde_json::to_string(&r.plain).unwrap_or_default();
                tx.prepare_cached(
                    "INSERT INTO records (kind, id, scope, owner, created_ms, updated_ms, revision, name, folder, plain, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (kind, id) DO UPDATE SET scope = excluded.scope, owner = excluded.owner,
                         created_ms = excluded.created_ms, updated_ms = excluded.updated_ms,
                         revision = excluded.revision, name = excluded.name, folder = excluded.folder,
                         plain = excluded.plain, mac = excluded.mac",
                )?
                .execute(params![
                    m.kind.as_str(),
                    m.id,
                    scope_str(&m.scope),
                    m.owner,
                    m.created_ms as i64,
                    m.updated_ms as i64,
                    m.revision as i64,
                    name,
                    folder,
                    plain,
                    r.mac
                ])?;
                tx.prepare_cached("DELETE FROM sealed_fields WHERE kind = ?1 AND id = ?2")?
                    .execute(params![m.kind.as_str(), m.id])?;
                for (f, c) in &r.sealed {
                    tx.prepare_cached(
                        "INSERT INTO sealed_fields (kind, id, field, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![m.kind.as_str(), m.id, f, c])?;
                }
                Self::audit_row(&tx, actor, "sync", m)?;
            }
            for (kind, id) in deletes {
                tx.execute(
                    "DELETE FROM sealed_fields WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                )?;
                tx.execute(
                    "DELETE FROM records WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                )?;
            }
            Ok::<(), rusqlite::Error>(())
        })();
        match res {
            Ok(()) => tx.commit().map_err(|e| db_err(&path, e)),
            Err(e) => Err(db_err(&path, e)),
        }
    }

    // ---------------------------------------------------------------- reading

    fn row_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Meta, String, Vec<u8>)> {
        let kind: String = r.get(0)?;
        let scope: String = r.get(2)?;
        let conv = |e: RecordError| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        };
        Ok((
            Meta {
                kind: kind.parse().map_err(conv)?,
                id: r.get(1)?,
                scope: parse_scope(&scope).map_err(conv)?,
                owner: r.get(3)?,
                created_ms: r.get::<_, i64>(4)? as u64,
                updated_ms: r.get::<_, i64>(5)? as u64,
                revision: r.get::<_, i64>(6)? as u64,
            },
            r.get(7)?,
            r.get(8)?,
        ))
    }

    fn parse_plain(meta: &Meta, plain: &str) -> Result<BTreeMap<String, Value>, RecordError> {
        serde_json::from_str(plain).map_err(|e| RecordError::Corrupt {
            what: format!("record {}/{} plaintext fields: {e}", meta.kind, meta.id),
        })
    }

    const COLUMNS: &'static str =
        "kind, id, scope, owner, created_ms, updated_ms, revision, plain, mac";

    /// One record as stored (no broker call).
    pub fn get(&self, kind: Kind, id: &str) -> Result<StoredRecord, RecordError> {
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM records WHERE kind = ?1 AND id = ?2",
                    Self::COLUMNS
                ),
                params![kind.as_str(), id],
                Self::row_meta,
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some((meta, plain, mac)) = row else {
            return Err(RecordError::NotFound {
                kind,
                key: id.to_string(),
            });
        };
        let plain = Self::parse_plain(&meta, &plain)?;
        // The name/folder columns only index the (MACed) fields; finding a
        // record by name must not be redirectable by editing them.
        let (col_name, col_folder): (Option<String>, String) = self
            .conn
            .prepare_cached("SELECT name, folder FROM records WHERE kind = ?1 AND id = ?2")
            .and_then(|mut st| {
                st.query_row(params![kind.as_str(), id], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .map_err(|e| self.db(e))?;
        let field_str = |f: &str| plain.get(f).and_then(Value::as_str);
        let name = if kind.has_unique_name() {
            field_str("name").or_else(|| field_str("title"))
        } else {
            None
        };
        if col_name.as_deref() != name || col_folder != field_str("folder").unwrap_or("") {
            return Err(RecordError::IndexMismatch {
                kind,
                id: id.to_string(),
            });
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT field, ciphertext FROM sealed_fields WHERE kind = ?1 AND id = ?2",
            )
            .map_err(|e| self.db(e))?;
        let sealed = stmt
            .query_map(params![kind.as_str(), id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<BTreeMap<String, Vec<u8>>, _>>())
            .map_err(|e| self.db(e))?;
        Ok(StoredRecord {
            meta,
            plain,
            sealed,
            mac,
        })
    }

    /// Finds a record by id, `NAME` or `FOLDER/NAME`, optionally within a scope.
    pub fn resolve(
        &self,
        kind: Kind,
        scope: Option<&KeyScope>,
        key: &str,
    ) -> Result<StoredRecord, RecordError> {
        if let Ok(r) = self.get(kind, key) {
            if let Some(s) = scope
                && &r.meta.scope != s
            {
                return Err(RecordError::WrongScope {
                    kind,
                    id: r.meta.id,
                    expected: s.to_string(),
                    actual: r.meta.scope.to_string(),
                });
            }
            return Ok(r);
        }
        let (folder, name) = match key.rsplit_once('/') {
            Some((f, n)) => (Some(validate::normalize_folder(f)?), n),
            None => (None, key),
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, scope, folder FROM records WHERE kind = ?1 AND name = ?2")
            .map_err(|e| self.db(e))?;
        let rows: Vec<(String, String, String)> = stmt
            .query_map(params![kind.as_str(), name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db(e))?;
        let matching: Vec<&(String, String, String)> = rows
            .iter()
            .filter(|(_, _, f)| folder.as_ref().is_none_or(|want| want == f))
            .collect();
        let in_scope: Vec<&&(String, String, String)> = matching
            .iter()
            .filter(|(_, s, _)| scope.is_none_or(|want| scope_str(want) == *s))
            .collect();
        match (in_scope.as_slice(), matching.as_slice()) {
            ([one], _) => self.get(kind, &one.0),
            ([], [one]) => Err(RecordError::WrongScope {
                kind,
                id: one.0.clone(),
                expected: scope.map(|s| s.to_string()).unwrap_or_default(),
                actual: parse_scope(&one.1)?.to_string(),
            }),
            ([], _) => Err(RecordError::NotFound {
                kind,
                key: key.to_string(),
            }),
            (many, _) => Err(RecordError::Ambiguous {
                kind,
                key: key.to_string(),
                ids: many
                    .iter()
                    .map(|(id, s, f)| format!("{id} ({s}, folder {f:?})"))
                    .collect(),
            }),
        }
    }

    /// Lists records by plaintext fields only. Takes no sealer: listing never
    /// calls the broker and never sees a sealed value.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Summary>, RecordError> {
        let mut sql = format!("SELECT {} FROM records WHERE 1 = 1", Self::COLUMNS);
        let mut args: Vec<String> = Vec::new();
        if let Some(k) = filter.kind {
            args.push(k.as_str().to_string());
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
        if let Some(s) = &filter.scope {
            args.push(scope_str(s));
            sql.push_str(&format!(" AND scope = ?{}", args.len()));
        }
        sql.push_str(" ORDER BY kind, folder, name, id");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Self::row_meta)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for (meta, plain, _) in rows {
            let fields = Self::parse_plain(&meta, &plain)?;
            let s = Summary { meta, fields };
            if filter.matches(&s)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Stored records (with ciphertexts) matching `filter`, for opening in bulk.
    pub fn load(&self, filter: &Filter) -> Result<Vec<StoredRecord>, RecordError> {
        self.list(filter)?
            .into_iter()
            .map(|s| self.get(s.meta.kind, &s.meta.id))
            .collect()
    }

    /// Verifies and opens one record.
    pub fn open_record(
        sealer: &mut dyn Sealer,
        stored: &StoredRecord,
    ) -> Result<Opened, RecordError> {
        Self::open_many(sealer, std::slice::from_ref(stored))?
            .pop()
            .unwrap_or_else(|| {
                Err(RecordError::Corrupt {
                    what: "open result missing".into(),
                })
            })
    }

    /// Verifies the MACs of `stored` in one batch, then opens every sealed
    /// field of the verified ones in one batch. One result per record; the
    /// outer error is a failure of the whole batch (broker unreachable,
    /// signed out).
    pub fn open_many(
        sealer: &mut dyn Sealer,
        stored: &[StoredRecord],
    ) -> Result<Vec<Result<Opened, RecordError>>, RecordError> {
        let ok = Self::verify(sealer, stored)?;
        let good: Vec<&StoredRecord> = stored
            .iter()
            .zip(&ok)
            .filter(|(_, ok)| **ok)
            .map(|(s, _)| s)
            .collect();
        let mut opened = Self::open_fields(sealer, &good)?.into_iter();
        Ok(stored
            .iter()
            .zip(ok)
            .map(|(s, ok)| {
                if ok {
                    opened.next().unwrap_or_else(|| {
                        Err(RecordError::Corrupt {
                            what: "open result missing".into(),
                        })
                    })
                } else {
                    Err(Self::diagnose(sealer, s))
                }
            })
            .collect())
    }

    /// Verifies the record's MAC, then opens only its sealed `field` (one
    /// `OpenFields` item, audited by the broker): a person's explicit
    /// reveal. A record whose MAC fails is refused without opening anything.
    pub fn open_field(
        sealer: &mut dyn Sealer,
        stored: &StoredRecord,
        field: &str,
    ) -> Result<Secret, RecordError> {
        let Some(c) = stored.sealed.get(field) else {
            return Err(RecordError::NotFound {
                kind: stored.meta.kind,
                key: format!("{} field {field}", stored.meta.id),
            });
        };
        if !Self::verify(sealer, std::slice::from_ref(stored))?
            .first()
            .copied()
            .unwrap_or(false)
        {
            return Err(RecordError::Tampered {
                kind: stored.meta.kind,
                id: stored.meta.id.clone(),
                fields: Vec::new(),
            });
        }
        let plain = sealer
            .open(vec![OpenItem {
                address: field_address(&stored.meta, field, &stored.plain),
                sealed: c.clone(),
            }])?
            .pop()
            .ok_or_else(|| SealerError::Unexpected("no opened value".into()))?;
        // A string field is its JSON string; anything else is shown as JSON.
        Ok(match serde_json::from_slice::<String>(plain.expose()) {
            Ok(s) => Secret::new(s),
            Err(_) => Secret::new(String::from_utf8_lossy(plain.expose()).into_owned()),
        })
    }

    /// Checks MACs only (one batch); opens nothing.
    pub fn verify(
        sealer: &mut dyn Sealer,
        stored: &[StoredRecord],
    ) -> Result<Vec<bool>, RecordError> {
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let items = stored
            .iter()
            .map(|s| VerifyItem {
                item: mac_item(&s.meta, &s.plain, &s.sealed),
                mac: s.mac.clone(),
            })
            .collect();
        let ok = sealer.verify(items)?;
        if ok.len() != stored.len() {
            return Err(SealerError::Unexpected("verify count differs".into()).into());
        }
        Ok(ok)
    }

    /// A record whose MAC failed: which sealed fields no longer open, one by one.
    fn diagnose(sealer: &mut dyn Sealer, s: &StoredRecord) -> RecordError {
        let mut fields = Vec::new();
        for (f, c) in &s.sealed {
            let item = OpenItem {
                address: field_address(&s.meta, f, &s.plain),
                sealed: c.clone(),
            };
            if let Err(e) = sealer.open(vec![item]) {
                fields.push((f.clone(), open_reason(&e)));
            }
        }
        RecordError::Tampered {
            kind: s.meta.kind,
            id: s.meta.id.clone(),
            fields,
        }
    }

    fn open_fields(
        sealer: &mut dyn Sealer,
        good: &[&StoredRecord],
    ) -> Result<Vec<Result<Opened, RecordError>>, RecordError> {
        let mut items = Vec::new();
        let mut owners = Vec::new();
        for (i, s) in good.iter().enumerate() {
            for (f, c) in &s.sealed {
                items.push(OpenItem {
                    address: field_address(&s.meta, f, &s.plain),
                    sealed: c.clone(),
                });
                owners.push((i, f.clone()));
            }
        }
        let addresses: Vec<String> = items.iter().map(|i| i.address.to_string()).collect();
        let opened = if items.is_empty() {
            Ok(Vec::new())
        } else {
            sealer.open(items)
        };
        let opened = match opened {
            Ok(o) => o,
            Err(SealerError::Remote(BrokerError::OpenFailed { .. })) if good.len() > 1 => {
                // One bad field fails the batch: open record by record to say which.
                let mut out = Vec::with_capacity(good.len());
                for s in good {
                    out.extend(Self::open_fields(sealer, &[*s])?);
                }
                return Ok(out);
            }
            Err(e @ SealerError::Remote(BrokerError::OpenFailed { .. })) => {
                let s = good[0];
                let field = match &e {
                    SealerError::Remote(BrokerError::OpenFailed { address, .. }) => addresses
                        .iter()
                        .position(|a| a == address)
                        .map(|i| owners[i].1.clone()),
                    _ => None,
                };
                return Ok(vec![Err(RecordError::OpenFailed {
                    kind: s.meta.kind,
                    id: s.meta.id.clone(),
                    field: field.unwrap_or_else(|| "?".into()),
                    reason: open_reason(&e),
                })]);
            }
            Err(e) => return Err(e.into()),
        };
        let mut per: Vec<BTreeMap<String, Value>> = good.iter().map(|s| s.plain.clone()).collect();
        let mut errors: Vec<Option<RecordError>> = good.iter().map(|_| None).collect();
        for ((i, f), plain) in owners.into_iter().zip(opened) {
            match serde_json::from_slice::<Value>(plain.expose()) {
                Ok(v) => {
                    per[i].insert(f, v);
                }
                Err(e) => {
                    errors[i] = Some(RecordError::Corrupt {
                        what: format!(
                            "record {}/{} field {f}: {e}",
                            good[i].meta.kind, good[i].meta.id
                        ),
                    })
                }
            }
        }
        Ok(good
            .iter()
            .zip(per)
            .zip(errors)
            .map(|((s, fields), err)| {
                if let Some(e) = err {
                    return Err(e);
                }
                Ok(Opened {
                    meta: s.meta.clone(),
                    record: Record::from_value(s.meta.kind, fields::unflatten(fields))?,
                    sealed_fields: s.sealed.keys().cloned().collect(),
                })
            })
            .collect())
    }

    /// Remembers organization display names (plaintext metadata), so that
    /// listing can show and filter by them without asking the broker.
    pub fn remember_orgs(&mut self, orgs: &[(String, String)]) -> Result<(), RecordError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        for (id, name) in orgs {
            tx.execute(
                "INSERT INTO org_names (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                params![id, name],
            )
            .map_err(|e| db_err(&path, e))?;
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// Deletes every record, sealed field, audit row and organization name
    /// from this store (sign-out with `sign-out.local-records` on), with
    /// SQLite's secure delete (freed pages are zeroed), then folds the WAL
    /// back and shrinks the file so the plaintext names, addresses and
    /// folders leave the disk too. Returns how many records were deleted.
    pub fn clear_local(&mut self) -> Result<usize, RecordError> {
        let path = self.path.clone();
        let e = |source| db_err(&path, source);
        self.conn
            .pragma_update(None, "secure_delete", "ON")
            .map_err(e)?;
        let tx = self.conn.transaction().map_err(e)?;
        let n = tx.execute("DELETE FROM records", []).map_err(e)?;
        for table in ["sealed_fields", "audit", "org_names"] {
            tx.execute(&format!("DELETE FROM {table}"), []).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        // Best effort: another process (sessiond) reading the store can
        // hold the WAL open; the rows are gone either way.
        let _ = self
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
        Ok(n)
    }

    /// Organization (id, name) pairs seen so far.
    pub fn org_names(&self) -> Result<Vec<(String, String)>, RecordError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM org_names ORDER BY name")
            .map_err(|e| self.db(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db(e))
    }

    /// Audit rows, newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditRow>, RecordError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at_ms, actor, action, kind, record_id, scope, revision FROM audit ORDER BY seq DESC LIMIT ?1")
            .map_err(|e| self.db(e))?;
        stmt.query_map([limit as i64], |r| {
            Ok(AuditRow {
                seq: r.get(0)?,
                at_ms: r.get::<_, i64>(1)? as u64,
                actor: r.get(2)?,
                action: r.get(3)?,
                kind: r.get(4)?,
                record_id: r.get(5)?,
                scope: r.get(6)?,
                revision: r.get::<_, i64>(7)? as u64,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.db(e))
    }
}

/// One change: who, what, when. Metadata only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub kind: String,
    pub record_id: String,
    pub scope: String,
    pub revision: u64,
}

fn open_reason(e: &SealerError) -> String {
    match e {
        SealerError::Remote(BrokerError::OpenFailed { failure, .. }) => failure.to_string(),
        other => other.to_string(),
    }
}

fn db_err(path: &Path, source: rusqlite::Error) -> RecordError {
    RecordError::Db {
        path: path.display().to_string(),
        source,
    }
}

/// Maps a constraint violation on the name index to a duplicate error.
fn write_error(path: &Path, e: rusqlite::Error, r: &Ready) -> RecordError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return RecordError::Duplicate {
            kind: r.p.meta.kind,
            name: r.p.name.clone().unwrap_or_default(),
            folder: r.p.folder.clone(),
            scope: r.p.meta.scope.to_string(),
        };
    }
    db_err(path, e)
}
