//! One sync of this account's private space: pull what the server has after
//! the cursor, check it, apply it in one transaction; then push local
//! changes with the revision they were based on (compare-and-swap).
//!
//! Checks on everything pulled, before anything is applied: no record's
//! revision moves backwards; the broker verifies each record's MAC as it
//! would be stored (a plaintext changed or a ciphertext moved between
//! records fails); the writer is this account and its signature (public key
//! from the account's own card) covers exactly this envelope (scope, kind,
//! id, revisions, tombstone, content hash). One failure refuses the
//! whole pull: the local store is untouched and the reason is reported.
//! The write signature is checked here, in syncd, with public keys only (no
//! key needed, and the broker stays off untrusted bytes); the MAC needs the
//! scope key, so the broker checks it.
//!
//! Must never: apply part of a pull, apply a record the checks refuse, or
//! push a record the broker did not sign.

use std::collections::BTreeMap;

use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse, KeyScope, VerifyItem};
use gatehouse_ipc::sync_record;
use gatehouse_ipc::syncd::{SyncEvent, SyncReport, SyncdError};
use gatehouse_membership::envelope::content_hash;
use gatehouse_membership::{Scope, SignedCard, SignedWrite, WriteBody, sign};
use gatehouse_records::store::verify_item;
use gatehouse_records::{Filter, Kind, Meta, StoredRecord};
use gatehouse_syncclient::SyncClient;
use gatehouse_syncproto::{
    AccountId, Bytes, KindName, PushResult, RecordEnvelope, RecordId, SealedField, SpaceId,
};

use crate::config::SyncState;
use crate::service::{SyncService, broker_error, client_error};

/// Most envelopes per push (the server's limit).
const PUSH_BATCH: usize = gatehouse_syncproto::limits::MAX_PUSH_RECORDS;

fn key(kind: &str, id: &str) -> String {
    format!("private {kind}/{id}")
}

fn hex(b: &[u8]) -> String {
    sign::hex(b)
}

fn hostile(why: impl Into<String>) -> SyncdError {
    SyncdError::Hostile(why.into())
}

fn local(e: impl std::fmt::Display) -> SyncdError {
    SyncdError::Local(e.to_string())
}

/// The stored form of a pulled envelope (not yet verified).
fn to_stored(env: &RecordEnvelope) -> Result<StoredRecord, SyncdError> {
    let what = format!("{}/{}", env.kind, env.id);
    let kind: Kind = env
        .kind
        .as_str()
        .parse()
        .map_err(|e| hostile(format!("{what}: {e}")))?;
    let p = sync_record::read_plain(&env.plain).map_err(|e| hostile(format!("{what}: {e}")))?;
    Ok(StoredRecord {
        meta: Meta {
            kind,
            id: env.id.as_str().to_string(),
            scope: KeyScope::Private,
            owner: p.owner,
            created_ms: p.created_ms,
            updated_ms: p.updated_ms,
            revision: p.revision,
        },
        plain: p.fields,
        sealed: env
            .sealed
            .iter()
            .map(|f| (f.field.clone(), f.ciphertext.0.clone()))
            .collect(),
        mac: env.mac.0.clone(),
    })
}

/// Checks a pulled envelope's write signature against the account's card.
fn check_write(env: &RecordEnvelope, account: &str, card: &SignedCard) -> Result<(), SyncdError> {
    let what = format!("{}/{}", env.kind, env.id);
    if env.writer.as_str() != account {
        return Err(hostile(format!(
            "{what} was written by {:?}, not this account: refused",
            env.writer.as_str()
        )));
    }
    let w = SignedWrite::from_bytes(&env.write.0)
        .map_err(|e| hostile(format!("{what}: the write signature: {e}")))?;
    if !w.verify(&card.card.identity) {
        return Err(hostile(format!(
            "{what}: the write is not signed by this account's identity key"
        )));
    }
    let b = &w.body;
    let content = content_hash(
        &env.plain,
        env.sealed
            .iter()
            .map(|f| (f.field.as_str(), f.ciphertext.as_slice())),
    );
    let matches = b.scope == Scope::Private(account.into())
        && b.kind == env.kind.as_str()
        && b.id == env.id.as_str()
        && b.revision == env.revision
        && b.base_revision == env.base_revision
        && b.deleted == env.deleted
        && b.writer == account
        && b.content == content;
    if !matches {
        return Err(hostile(format!(
            "{what}: the signed write does not describe the record served (changed after signing)"
        )));
    }
    Ok(())
}

impl SyncService {
    async fn broker_call(&self, req: BrokerRequest) -> Result<BrokerResponse, SyncdError> {
        self.broker.call(req).await.map_err(broker_error)
    }

    /// This account's own card (the broker's public keys).
    async fn own_card(&self, account: &str) -> Result<SignedCard, SyncdError> {
        match self
            .broker_call(BrokerRequest::SyncCard {
                account: account.into(),
            })
            .await?
        {
            BrokerResponse::Card(c) => sign::decode_exact("card", &c).map_err(broker_error),
            other => Err(broker_error(format!("unexpected answer {other:?}"))),
        }
    }

    /// Signs in again if the session is gone, then syncs once. One sync at
    /// a time; the state lock is not held while the server is asked, so
    /// `Status` answers during a long pull.
    pub(crate) async fn sync_now(&self) -> Result<SyncReport, SyncdError> {
        let _one = self.sync_lock.lock().await;
        let (server, session, mut state) = {
            let inner = self.inner.lock().await;
            let server = inner.server.clone().ok_or(SyncdError::NotConfigured)?;
            (server, inner.session.clone(), inner.state.clone())
        };
        let (Some(account), Some(device)) = (state.account.clone(), state.device.clone()) else {
            return Err(SyncdError::NotConnected);
        };
        let mut signed_in = None;
        let result = async {
            let session = match session {
                Some(s) => s,
                None => {
                    let client = Self::open_server(&server).await?;
                    let s = self.sign_in(&client, &account, &device).await?;
                    signed_in = Some(s.clone());
                    s
                }
            };
            self.sync_private(&session, &account, &mut state).await
        }
        .await;
        let mut inner = self.inner.lock().await;
        if signed_in.is_some() {
            inner.session = signed_in;
        }
        match &result {
            Ok(report) => {
                inner.offline = None;
                state.last_sync_ms = Some(gatehouse_ipc::os::now_ms());
                inner.pending = 0;
                self.save_state(&state)?;
                inner.state = state;
                self.notify(report);
            }
            Err(e) => {
                // Keep what was applied and pushed before the failure.
                inner.state = state;
                let _ = self.save_state(&inner.state);
                inner.pending = self.pending(&inner.state).unwrap_or(inner.pending);
                match e {
                    SyncdError::Offline(why) => inner.offline = Some(why.clone()),
                    // An expired or revoked session: sign in at the next try.
                    SyncdError::Server(why) if why.contains("Unauthorized") => inner.session = None,
                    _ => {}
                }
            }
        }
        result
    }

    /// Every local private record, as stored.
    fn local_private(&self) -> Result<Vec<StoredRecord>, SyncdError> {
        let store = self
            .store
            .lock()
            .map_err(|_| local("store lock poisoned"))?;
        let all = store.load(&Filter::default()).map_err(local)?;
        Ok(all
            .into_iter()
            .filter(|r| r.meta.scope == KeyScope::Private)
            .collect())
    }

    /// Local private records that differ from what was last synced.
    fn changed(&self, state: &SyncState) -> Result<Vec<StoredRecord>, SyncdError> {
        Ok(self
            .local_private()?
            .into_iter()
            .filter(|r| {
                state
                    .synced_macs
                    .get(&key(r.meta.kind.as_str(), &r.meta.id))
                    != Some(&hex(&r.mac))
            })
            .collect())
    }

    pub(crate) fn pending(&self, state: &SyncState) -> Result<u64, SyncdError> {
        Ok(self.changed(state)?.len() as u64)
    }

    async fn sync_private(
        &self,
        session: &SyncClient,
        account: &str,
        state: &mut SyncState,
    ) -> Result<SyncReport, SyncdError> {
        let space = SpaceId::Private(AccountId::new(account).map_err(local)?);
        let card = self.own_card(account).await?;
        let mut report = SyncReport::default();
        let cursor_key = space.to_string();
        // Synced records missing here (the local store was cleared at
        // sign-out, or a record was deleted: deletions do not sync yet)
        // are pulled again from the start; revisions seen stay, so a
        // rollback is still detected.
        let present: std::collections::BTreeSet<String> = self
            .local_private()?
            .iter()
            .map(|r| key(r.meta.kind.as_str(), &r.meta.id))
            .collect();
        let missing: Vec<String> = state
            .synced_macs
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        if !missing.is_empty() {
            for k in &missing {
                state.synced_macs.remove(k);
            }
            state.cursors.insert(cursor_key.clone(), 0);
        }
        let changed_before: BTreeMap<String, ()> = self
            .changed(state)?
            .iter()
            .map(|r| (key(r.meta.kind.as_str(), &r.meta.id), ()))
            .collect();

        // Pull: everything after the cursor, checked whole, applied in one
        // transaction.
        let mut after = state.cursors.get(&cursor_key).copied().unwrap_or(0);
        let start = after;
        let mut pulled = Vec::new();
        loop {
            let page = session
                .pull(&space, after, None)
                .await
                .map_err(client_error)?;
            if page.head_seq < after {
                return Err(hostile(format!(
                    "the server's sequence went back from {after} to {}",
                    page.head_seq
                )));
            }
            for r in &page.records {
                if r.seq <= after {
                    return Err(hostile(format!(
                        "the server served seq {} after asking for records after {after}",
                        r.seq
                    )));
                }
                after = r.seq;
            }
            if page.more && page.records.is_empty() {
                return Err(hostile(
                    "the server says there is more but sent no records (it would never end)",
                ));
            }
            pulled.extend(page.records.into_iter().map(|r| r.record));
            self.progress(SyncEvent::Pulling {
                position: after - start,
                total: page.head_seq.saturating_sub(start),
                records: pulled.len() as u64,
            });
            if !page.more {
                break;
            }
        }
        if !pulled.is_empty() {
            self.progress(SyncEvent::Applying {
                records: pulled.len() as u64,
            });
        }
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        let mut seen = Vec::new();
        let mut to_check = Vec::new();
        for env in &pulled {
            let k = key(env.kind.as_str(), env.id.as_str());
            if env.space != space {
                return Err(hostile(format!(
                    "{k} is from space {}, not {space}",
                    env.space
                )));
            }
            let known = state.revisions.get(&k).copied().unwrap_or(0);
            if env.revision < known {
                return Err(hostile(format!(
                    "{k} was rolled back: the server serves revision {} after this device saw revision {known}",
                    env.revision
                )));
            }
            if env.revision == known && present.contains(&k) {
                continue; // our own push, or already applied
            }
            if changed_before.contains_key(&k) {
                // Changed here and there: keep the local version (its push
                // will be refused), list the conflict.
                if !state.conflicts.contains(&k) {
                    state.conflicts.push(k.clone());
                }
                report.conflicts += 1;
                continue;
            }
            if env.deleted {
                let kind: Kind = env
                    .kind
                    .as_str()
                    .parse()
                    .map_err(|e| hostile(format!("{k}: {e}")))?;
                deletes.push((kind, env.id.as_str().to_string()));
            } else {
                upserts.push(to_stored(env)?);
            }
            seen.push((
                k,
                env.revision,
                env.deleted.then_some(()),
                env.mac.0.clone(),
            ));
            to_check.push(env);
        }
        if !upserts.is_empty() {
            let items: Vec<VerifyItem> = upserts.iter().map(verify_item).collect();
            let ok = match self
                .broker_call(BrokerRequest::VerifyRecords { items })
                .await?
            {
                BrokerResponse::Verified(v) => v,
                other => return Err(broker_error(format!("unexpected answer {other:?}"))),
            };
            if let Some(i) = ok.iter().position(|ok| !ok) {
                let r = &upserts[i].meta;
                return Err(hostile(format!(
                    "{}/{} fails its MAC: the server changed a plaintext field or moved a ciphertext between records",
                    r.kind, r.id
                )));
            }
        }
        // Then each write's signature: by this account, over exactly this
        // envelope (the MAC above does not cover the sync revision).
        for env in to_check {
            check_write(env, account, &card)?;
        }
        {
            let mut store = self
                .store
                .lock()
                .map_err(|_| local("store lock poisoned"))?;
            store
                .apply_synced("syncd", &upserts, &deletes)
                .map_err(local)?;
        }
        for (k, revision, deleted, mac) in seen {
            state.revisions.insert(k.clone(), revision);
            match deleted {
                Some(()) => {
                    state.synced_macs.remove(&k);
                }
                None => {
                    state.synced_macs.insert(k, hex(&mac));
                }
            }
        }
        report.pulled = (upserts.len() + deletes.len()) as u64;
        state.cursors.insert(cursor_key, after);

        // Push: local changes, each signed by the broker.
        let changed: Vec<StoredRecord> = self
            .changed(state)?
            .into_iter()
            .filter(|r| {
                !state
                    .conflicts
                    .contains(&key(r.meta.kind.as_str(), &r.meta.id))
            })
            .collect();
        for batch in changed.chunks(PUSH_BATCH) {
            let mut envelopes = Vec::with_capacity(batch.len());
            for r in batch {
                envelopes.push(self.envelope(r, account, &space, state).await?);
            }
            let resp = session
                .push(&space, envelopes.clone())
                .await
                .map_err(client_error)?;
            if resp.results.len() != envelopes.len() {
                return Err(hostile(format!(
                    "{} results for {} pushed records",
                    resp.results.len(),
                    envelopes.len()
                )));
            }
            for (env, result) in envelopes.iter().zip(resp.results) {
                let k = key(env.kind.as_str(), env.id.as_str());
                match result {
                    PushResult::Accepted { .. } => {
                        state.revisions.insert(k.clone(), env.revision);
                        state.synced_macs.insert(k, hex(&env.mac.0));
                        report.pushed += 1;
                    }
                    PushResult::Conflict { .. } => {
                        if !state.conflicts.contains(&k) {
                            state.conflicts.push(k);
                        }
                        report.conflicts += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// The envelope of a local record, signed by the broker.
    async fn envelope(
        &self,
        r: &StoredRecord,
        account: &str,
        space: &SpaceId,
        state: &SyncState,
    ) -> Result<RecordEnvelope, SyncdError> {
        let k = key(r.meta.kind.as_str(), &r.meta.id);
        let base = state.revisions.get(&k).copied().unwrap_or(0);
        let item = verify_item(r);
        let wire =
            sync_record::to_wire(&item.item.content).map_err(|e| local(format!("{k}: {e}")))?;
        let body = WriteBody {
            scope: Scope::Private(account.into()),
            kind: r.meta.kind.as_str().into(),
            id: r.meta.id.clone(),
            revision: base + 1,
            base_revision: base,
            deleted: false,
            content: content_hash(
                &wire.plain,
                wire.sealed.iter().map(|(n, c)| (n.as_str(), c.as_slice())),
            ),
            generation: 0,
            log_head: 0,
            writer: account.into(),
        };
        let signature = match self
            .broker_call(BrokerRequest::SyncSignWrite {
                record: Box::new(item),
                write: sign::encode(&body),
            })
            .await?
        {
            BrokerResponse::Signature(s) => s,
            other => return Err(broker_error(format!("unexpected answer {other:?}"))),
        };
        let write = SignedWrite { body, signature };
        Ok(RecordEnvelope {
            space: space.clone(),
            kind: KindName::new(r.meta.kind.as_str()).map_err(local)?,
            id: RecordId::new(r.meta.id.clone()).map_err(local)?,
            revision: base + 1,
            base_revision: base,
            deleted: false,
            plain: wire.plain,
            sealed: wire
                .sealed
                .into_iter()
                .map(|(field, ct)| SealedField {
                    field,
                    ciphertext: Bytes(ct),
                })
                .collect(),
            mac: Bytes(r.mac.clone()),
            writer: AccountId::new(account).map_err(local)?,
            write: Bytes(write.to_bytes()),
        })
    }

    /// The periodic sync: only once this device was connected.
    pub async fn sync_if_connected(&self) -> Result<(), SyncdError> {
        let connected = {
            let inner = self.inner.lock().await;
            inner.server.is_some() && inner.state.account.is_some()
        };
        if connected {
            self.sync_now().await?;
        }
        Ok(())
    }
}
