//! Org bundles: every record of one organization serialized and sealed as ONE
//! field under the org key (`bundle/<bundle id>` field `records`), for
//! `gatehouse export` / `import`.
//!
//! Owns: the bundle file format and the import decisions (create, update to a
//! newer revision, skip). Must never: export a record that fails its MAC or
//! does not open, write a bundle's plaintext anywhere, or import a record
//! whose scope is not the bundle's org (the whole import is refused, nothing
//! written).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gatehouse_ipc::SecretBytes;
use gatehouse_ipc::broker::{FieldAddress, KeyScope, OpenItem, SealItem};
use serde::{Deserialize, Serialize};

use crate::RecordError;
use crate::model::{Kind, Meta, Record};
use crate::sealer::Sealer;
use crate::store::{Filter, Store, new_id, now_ms};

pub const FORMAT: &str = "gatehouse-bundle/v1";

/// The bundle file (JSON). Only `sealed` carries record content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleFile {
    pub format: String,
    pub org_id: String,
    pub bundle_id: String,
    pub created_ms: u64,
    pub count: usize,
    /// Base64 of the broker ciphertext of the records.
    pub sealed: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    meta: Meta,
    record: serde_json::Value,
}

fn address(org_id: &str, bundle_id: &str, created_ms: u64, count: usize) -> FieldAddress {
    FieldAddress {
        scope: KeyScope::Org(org_id.to_string()),
        record_kind: "bundle".into(),
        record_id: bundle_id.to_string(),
        field: "records".into(),
        binding: format!("{FORMAT}|{created_ms}|{count}").into_bytes(),
    }
}

/// Opens (verifies) every record of `org_id` and seals them as one bundle.
pub fn export_org(
    store: &Store,
    sealer: &mut dyn Sealer,
    org_id: &str,
) -> Result<BundleFile, RecordError> {
    let stored = store.load(&Filter {
        scope: Some(KeyScope::Org(org_id.to_string())),
        ..Filter::default()
    })?;
    let mut entries = Vec::with_capacity(stored.len());
    for r in Store::open_many(sealer, &stored)? {
        let o = r?;
        entries.push(Entry {
            meta: o.meta,
            record: o.record.to_value()?,
        });
    }
    let plaintext =
        SecretBytes::new(
            serde_json::to_vec(&entries).map_err(|e| RecordError::Corrupt {
                what: format!("bundle: {e}"),
            })?,
        );
    drop(entries);
    let (bundle_id, created_ms, count) = (new_id(), now_ms(), stored.len());
    let mut sealed = sealer.seal(vec![SealItem {
        address: address(org_id, &bundle_id, created_ms, count),
        plaintext,
    }])?;
    Ok(BundleFile {
        format: FORMAT.into(),
        org_id: org_id.into(),
        bundle_id,
        created_ms,
        count,
        sealed: B64.encode(sealed.pop().unwrap_or_default()),
    })
}

/// What an import did, per record: (kind, id, name).
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub created: Vec<(Kind, String, String)>,
    pub updated: Vec<(Kind, String, String)>,
    /// With the reason.
    pub skipped: Vec<(Kind, String, String, String)>,
}

/// Opens a bundle and writes its records (one transaction): new ones are
/// created, ones with a newer revision than ours replace ours, the rest are
/// skipped. `member_orgs`: the org ids this account holds.
pub fn import(
    store: &mut Store,
    sealer: &mut dyn Sealer,
    actor: &str,
    file: &BundleFile,
    member_orgs: &[String],
) -> Result<ImportReport, RecordError> {
    if file.format != FORMAT {
        return Err(RecordError::Invalid {
            field: "format".into(),
            reason: format!("{:?} is not a {FORMAT} bundle", file.format),
        });
    }
    if !member_orgs.contains(&file.org_id) {
        return Err(RecordError::Invalid {
            field: "org".into(),
            reason: format!(
                "the bundle belongs to organization {}, which this account is not a member of",
                file.org_id
            ),
        });
    }
    let sealed = B64
        .decode(file.sealed.trim())
        .map_err(|e| RecordError::Invalid {
            field: "sealed".into(),
            reason: format!("not base64: {e}"),
        })?;
    let plain = sealer
        .open(vec![OpenItem {
            address: address(&file.org_id, &file.bundle_id, file.created_ms, file.count),
            sealed,
        }])?
        .pop()
        .unwrap_or_default();
    let entries: Vec<Entry> =
        serde_json::from_slice(plain.expose()).map_err(|e| RecordError::Corrupt {
            what: format!("bundle content: {e}"),
        })?;
    drop(plain);
    let scope = KeyScope::Org(file.org_id.clone());
    let mut report = ImportReport::default();
    let mut write = Vec::new();
    for e in entries {
        let record = Record::from_value(e.meta.kind, e.record)?;
        let name = record.name().unwrap_or("").to_string();
        if e.meta.scope != scope {
            return Err(RecordError::WrongScope {
                kind: e.meta.kind,
                id: e.meta.id,
                expected: scope.to_string(),
                actual: e.meta.scope.to_string(),
            });
        }
        let entry = (e.meta.kind, e.meta.id.clone(), name);
        match store.get(e.meta.kind, &e.meta.id) {
            Ok(local) if local.meta.scope != scope => {
                return Err(RecordError::WrongScope {
                    kind: e.meta.kind,
                    id: e.meta.id,
                    expected: scope.to_string(),
                    actual: local.meta.scope.to_string(),
                });
            }
            Ok(local) if local.meta.revision >= e.meta.revision => {
                report.skipped.push((
                    entry.0,
                    entry.1,
                    entry.2,
                    format!(
                        "local revision {} is not older than the bundle's {}",
                        local.meta.revision, e.meta.revision
                    ),
                ));
            }
            Ok(_) => {
                report.updated.push(entry);
                write.push((e.meta, record));
            }
            Err(RecordError::NotFound { .. }) => {
                report.created.push(entry);
                write.push((e.meta, record));
            }
            Err(other) => return Err(other),
        }
    }
    if !write.is_empty() {
        store.write_imported(sealer, actor, write)?;
    }
    Ok(report)
}
