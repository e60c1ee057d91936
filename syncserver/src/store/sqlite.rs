//! The SQLite backend: one database file (WAL, `synchronous=FULL`), the
//! embedded default (`--db sqlite:PATH`).
//!
//! Owns: the SQLite schema and its queries. One connection per process,
//! used from the blocking pool; pushes run in `BEGIN IMMEDIATE` transactions
//! so several processes on one file still allocate sequences one at a time.
//! Change notification: a push by this process wakes waiters at once;
//! waiters also re-check every [`POLL`] (another process may have written).
//! Must never: hold the connection lock across an await.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::watch;

use super::{
    AccountRow, BUNDLE_MAX_WRONG, BUNDLE_TRY_HOLD_MS, BUNDLE_WINDOW_MS, BundleRow, BundleTry,
    CLAIM_BUNDLE_TRY, CasOutcome, ChallengeRow, GrantRow, LogRow, MemberRow, RecordWrite,
    SessionRow, Store, StoreError, Writer, bundle_wait, random_token, role_from_str, role_to_str,
    writer_refusal,
};
use super::{FrameRow, RelayRow, relay_refusal};
use gatehouse_syncproto::limits::RELAY_KEEP_FRAMES;

/// How often a waiter re-reads the head when no local push woke it.
pub const POLL: Duration = Duration::from_millis(100);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, card BLOB NOT NULL,
    identity BLOB NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (id TEXT PRIMARY KEY, account TEXT NOT NULL,
    device TEXT NOT NULL, nonce BLOB NOT NULL, time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token_hash BLOB PRIMARY KEY, account TEXT NOT NULL,
    device TEXT NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_entries (org TEXT NOT NULL, seq INTEGER NOT NULL,
    hash BLOB NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (org, seq));
CREATE TABLE IF NOT EXISTS members (org TEXT NOT NULL, account TEXT NOT NULL,
    role TEXT NOT NULL, PRIMARY KEY (org, account));
CREATE TABLE IF NOT EXISTS spaces (space TEXT PRIMARY KEY, head INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (space TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    revision INTEGER NOT NULL, seq INTEGER NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (space, kind, id));
CREATE UNIQUE INDEX IF NOT EXISTS records_by_seq ON records (space, seq);
CREATE TABLE IF NOT EXISTS grants (org TEXT NOT NULL, generation INTEGER NOT NULL,
    recipient TEXT NOT NULL, granter TEXT NOT NULL, log_seq INTEGER NOT NULL,
    grant_blob BLOB NOT NULL, PRIMARY KEY (org, generation, recipient));
CREATE TABLE IF NOT EXISTS bundles (account TEXT PRIMARY KEY, kdf TEXT NOT NULL,
    verifier_salt BLOB NOT NULL, verifier_hash BLOB NOT NULL, bundle BLOB NOT NULL,
    updated_ms INTEGER NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
    window_start_ms INTEGER NOT NULL DEFAULT 0, busy_until_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS relays (channel TEXT PRIMARY KEY, org TEXT NOT NULL,
    creator TEXT NOT NULL, epoch INTEGER NOT NULL, participants TEXT NOT NULL,
    list BLOB NOT NULL, head INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS relay_frames (channel TEXT NOT NULL, seq INTEGER NOT NULL,
    sender TEXT NOT NULL, epoch INTEGER NOT NULL, body BLOB NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, seq));
";

/// Reads a relay row (`SELECT channel, org, creator, epoch, participants, list, head`).
fn relay_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RelayRow, u64)> {
    let participants: String = r.get(4)?;
    Ok((
        RelayRow {
            channel: r.get(0)?,
            org: r.get(1)?,
            creator: r.get(2)?,
            epoch: r.get::<_, i64>(3)? as u64,
            participants: participants
                .split('\n')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            list: r.get(5)?,
        },
        r.get::<_, i64>(6)? as u64,
    ))
}

const SELECT_RELAY: &str =
    "SELECT channel, org, creator, epoch, participants, list, head FROM relays WHERE channel = ?1";

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Bumped after every local push (wakes local waiters).
    pushed: watch::Sender<u64>,
}

fn db(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, ref m)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(m.clone().unwrap_or_else(|| "constraint".into()))
        }
        e => StoreError::Db(e.to_string()),
    }
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Db("stored hash is not 32 bytes".into()))
}

impl SqliteStore {
    pub fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let id = random_token(16)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (k, v) VALUES ('server_id', ?1)",
            [id],
        )
        .map_err(db)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            pushed: watch::channel(0).0,
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Db(format!("storage task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_bundle(&self, row: &BundleRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO bundles (account, kdf, verifier_salt, verifier_hash, bundle, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (account) DO UPDATE SET kdf = excluded.kdf,
                   verifier_salt = excluded.verifier_salt, verifier_hash = excluded.verifier_hash,
                   bundle = excluded.bundle, updated_ms = excluded.updated_ms,
                   failures = 0, window_start_ms = 0, busy_until_ms = 0",
                params![
                    row.account,
                    row.kdf,
                    row.verifier_salt,
                    row.verifier_hash,
                    row.bundle,
                    row.updated_ms as i64
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn bundle(&self, account: &str) -> Result<Option<BundleRow>, StoreError> {
        let account = account.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT kdf, verifier_salt, verifier_hash, bundle, updated_ms FROM bundles WHERE account = ?1",
                [&account],
                |r| {
                    Ok(BundleRow {
                        account: account.clone(),
                        kdf: r.get(0)?,
                        verifier_salt: r.get(1)?,
                        verifier_hash: r.get(2)?,
                        bundle: r.get(3)?,
                        updated_ms: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn claim_bundle_try(&self, account: &str, now_ms: u64) -> Result<BundleTry, StoreError> {
        let account = account.to_string();
        self.with(move |c| {
            let now = now_ms as i64;
            let claimed: Option<i64> = c
                .query_row(
                    &CLAIM_BUNDLE_TRY.replace('$', "?"),
                    params![
                        account,
                        now,
                        BUNDLE_TRY_HOLD_MS as i64,
                        BUNDLE_WINDOW_MS as i64,
                        BUNDLE_MAX_WRONG as i64
                    ],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(f) = claimed {
                return Ok(BundleTry::Claimed { failures: f as u32 });
            }
            let row: Option<(i64, i64, i64)> = c
                .query_row(
                    "SELECT busy_until_ms, failures, window_start_ms FROM bundles WHERE account = ?1",
                    [&account],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db)?;
            Ok(match row {
                None => BundleTry::NoBundle,
                Some((busy, f, start)) => bundle_wait(now_ms, busy as u64, f as u32, start as u64),
            })
        })
        .await
    }

    async fn end_bundle_try(&self, account: &str, right: bool) -> Result<u32, StoreError> {
        let account = account.to_string();
        self.with(move |c| {
            let sql = if right {
                "UPDATE bundles SET failures = 0, busy_until_ms = 0 WHERE account = ?1 RETURNING failures"
            } else {
                "UPDATE bundles SET failures = failures + 1, busy_until_ms = 0 WHERE account = ?1 RETURNING failures"
            };
            let f: i64 = c.query_row(sql, [&account], |r| r.get(0)).map_err(db)?;
            Ok(f as u32)
        })
        .await
    }

    async fn server_id(&self) -> Result<String, StoreError> {
        self.with(|c| {
            c.query_row("SELECT v FROM meta WHERE k = 'server_id'", [], |r| r.get(0))
                .map_err(db)
        })
        .await
    }

    async fn create_account(&self, row: &AccountRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO accounts (account, card, identity, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![row.account, row.card, row.identity.to_vec(), row.created_ms as i64],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn account(&self, account: &str) -> Result<Option<AccountRow>, StoreError> {
        let account = account.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT card, identity, created_ms FROM accounts WHERE account = ?1",
                    [&account],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(db)?;
            row.map(|(card, identity, created)| {
                Ok(AccountRow {
                    account: account.clone(),
                    card,
                    identity: hash32(identity)?,
                    created_ms: created as u64,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_challenge(&self, row: &ChallengeRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO challenges (id, account, device, nonce, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.id, row.account, row.device, row.nonce, row.time_ms as i64],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn take_challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(
                "DELETE FROM challenges WHERE id = ?1 RETURNING account, device, nonce, time_ms",
                [&id],
                |r| {
                    Ok(ChallengeRow {
                        id: id.clone(),
                        account: r.get(0)?,
                        device: r.get(1)?,
                        nonce: r.get(2)?,
                        time_ms: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn put_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, account, device, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![row.token_hash.to_vec(), row.account, row.device, row.expires_ms as i64],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        let th = *token_hash;
        self.with(move |c| {
            c.query_row(
                "SELECT account, device, expires_ms FROM sessions WHERE token_hash = ?1",
                [th.to_vec()],
                |r| {
                    Ok(SessionRow {
                        token_hash: th,
                        account: r.get(0)?,
                        device: r.get(1)?,
                        expires_ms: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn append_log(
        &self,
        org: &str,
        entry: &LogRow,
        members: &[MemberRow],
    ) -> Result<(), StoreError> {
        let (org, entry, members) = (org.to_string(), entry.clone(), members.to_vec());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let head: Option<i64> = tx
                .query_row(
                    "SELECT MAX(seq) FROM log_entries WHERE org = ?1",
                    [&org],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let want = head.map(|h| h as u64 + 1).unwrap_or(0);
            if entry.seq != want {
                return Err(StoreError::Conflict(format!(
                    "the log's next seq is {want}, not {}",
                    entry.seq
                )));
            }
            tx.execute(
                "INSERT INTO log_entries (org, seq, hash, entry) VALUES (?1, ?2, ?3, ?4)",
                params![org, entry.seq as i64, entry.hash.to_vec(), entry.entry],
            )
            .map_err(db)?;
            tx.execute("DELETE FROM members WHERE org = ?1", [&org])
                .map_err(db)?;
            for m in &members {
                tx.execute(
                    "INSERT INTO members (org, account, role) VALUES (?1, ?2, ?3)",
                    params![org, m.account, role_to_str(m.role)],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn log(&self, org: &str, after: Option<u64>) -> Result<Vec<LogRow>, StoreError> {
        let org = org.to_string();
        let after = after.map(|a| a as i64).unwrap_or(-1);
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT seq, hash, entry FROM log_entries WHERE org = ?1 AND seq > ?2 ORDER BY seq",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![org, after], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(db)?;
            rows.map(|r| {
                let (seq, hash, entry) = r.map_err(db)?;
                Ok(LogRow {
                    seq: seq as u64,
                    hash: hash32(hash)?,
                    entry,
                })
            })
            .collect()
        })
        .await
    }

    async fn member(&self, org: &str, account: &str) -> Result<Option<MemberRow>, StoreError> {
        let (org, account) = (org.to_string(), account.to_string());
        self.with(move |c| {
            c.query_row(
                "SELECT role FROM members WHERE org = ?1 AND account = ?2",
                [&org, &account],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db)
            .map(|r| {
                r.map(|role| MemberRow {
                    account: account.clone(),
                    role: role_from_str(&role),
                })
            })
        })
        .await
    }

    async fn push(
        &self,
        space: &str,
        writer: Writer<'_>,
        writes: &[RecordWrite],
    ) -> Result<(Vec<CasOutcome>, u64), StoreError> {
        let (space, writes) = (space.to_string(), writes.to_vec());
        let writer = match writer {
            Writer::SpaceOwner => None,
            Writer::OrgMember { org, account } => Some((org.to_string(), account.to_string())),
        };
        let out = self
            .with(move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                if let Some((org, account)) = &writer {
                    let role: Option<String> = tx
                        .query_row(
                            "SELECT role FROM members WHERE org = ?1 AND account = ?2",
                            [org, account],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(db)?;
                    if let Some(e) = writer_refusal(org, account, role.as_deref()) {
                        return Err(e);
                    }
                }
                tx.execute(
                    "INSERT OR IGNORE INTO spaces (space, head) VALUES (?1, 0)",
                    [&space],
                )
                .map_err(db)?;
                let mut head: i64 = tx
                    .query_row("SELECT head FROM spaces WHERE space = ?1", [&space], |r| {
                        r.get(0)
                    })
                    .map_err(db)?;
                let mut out = Vec::with_capacity(writes.len());
                for w in &writes {
                    let cur: Option<(i64, i64)> = tx
                        .query_row(
                            "SELECT revision, seq FROM records WHERE space = ?1 AND kind = ?2 AND id = ?3",
                            [&space, &w.kind, &w.id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()
                        .map_err(db)?;
                    let (rev, cur_seq) = cur.map(|(r, s)| (r as u64, s as u64)).unwrap_or((0, 0));
                    if rev != w.base_revision {
                        out.push(CasOutcome::Conflict {
                            current_revision: rev,
                            current_seq: cur_seq,
                        });
                        continue;
                    }
                    head += 1;
                    tx.execute(
                        "INSERT INTO records (space, kind, id, revision, seq, envelope) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (space, kind, id) DO UPDATE SET revision = excluded.revision,
                           seq = excluded.seq, envelope = excluded.envelope",
                        params![space, w.kind, w.id, w.revision as i64, head, w.envelope],
                    )
                    .map_err(db)?;
                    out.push(CasOutcome::Accepted { seq: head as u64 });
                }
                tx.execute(
                    "UPDATE spaces SET head = ?2 WHERE space = ?1",
                    params![space, head],
                )
                .map_err(db)?;
                tx.commit().map_err(db)?;
                Ok((out, head as u64))
            })
            .await?;
        self.pushed.send_modify(|n| *n += 1);
        Ok(out)
    }

    async fn pull(
        &self,
        space: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, u64), StoreError> {
        let space = space.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(db)?;
            let head: i64 = tx
                .query_row("SELECT head FROM spaces WHERE space = ?1", [&space], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?
                .unwrap_or(0);
            let mut out = Vec::new();
            {
                let mut st = tx
                    .prepare_cached(
                        "SELECT seq, envelope FROM records WHERE space = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    )
                    .map_err(db)?;
                let rows = st
                    .query_map(params![space, after as i64, limit as i64], |r| {
                        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
                    })
                    .map_err(db)?;
                for r in rows {
                    out.push(r.map_err(db)?);
                }
            }
            tx.commit().map_err(db)?;
            Ok((out, head as u64))
        })
        .await
    }

    async fn head(&self, space: &str) -> Result<u64, StoreError> {
        let space = space.to_string();
        self.with(move |c| {
            c.query_row("SELECT head FROM spaces WHERE space = ?1", [&space], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(db)
            .map(|h| h.unwrap_or(0) as u64)
        })
        .await
    }

    async fn put_grants(&self, org: &str, grants: &[GrantRow]) -> Result<(), StoreError> {
        let (org, grants) = (org.to_string(), grants.to_vec());
        self.with(move |c| {
            let tx = c.transaction().map_err(db)?;
            for g in &grants {
                tx.execute(
                    "INSERT INTO grants (org, generation, recipient, granter, log_seq, grant_blob)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (org, generation, recipient) DO UPDATE SET granter = excluded.granter,
                       log_seq = excluded.log_seq, grant_blob = excluded.grant_blob",
                    params![org, g.generation, g.recipient, g.granter, g.log_seq as i64, g.grant],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn grants_for(&self, org: &str, recipient: &str) -> Result<Vec<GrantRow>, StoreError> {
        let (org, recipient) = (org.to_string(), recipient.to_string());
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT generation, granter, log_seq, grant_blob FROM grants
                     WHERE org = ?1 AND recipient = ?2 ORDER BY generation",
                )
                .map_err(db)?;
            let rows = st
                .query_map([&org, &recipient], |r| {
                    Ok(GrantRow {
                        generation: r.get(0)?,
                        recipient: recipient.clone(),
                        granter: r.get(1)?,
                        log_seq: r.get::<_, i64>(2)? as u64,
                        grant: r.get(3)?,
                    })
                })
                .map_err(db)?;
            rows.map(|r| r.map_err(db)).collect()
        })
        .await
    }

    async fn put_relay(&self, row: &RelayRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let existing = tx
                .query_row(SELECT_RELAY, [&row.channel], relay_row)
                .optional()
                .map_err(db)?;
            if let Some(e) = existing.and_then(|(e, _)| relay_refusal(&e, &row.creator, row.epoch))
            {
                return Err(e);
            }
            tx.execute(
                "INSERT INTO relays (channel, org, creator, epoch, participants, list)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (channel) DO UPDATE SET epoch = excluded.epoch,
                   participants = excluded.participants, list = excluded.list",
                params![
                    row.channel,
                    row.org,
                    row.creator,
                    row.epoch as i64,
                    row.participants.join("\n"),
                    row.list
                ],
            )
            .map_err(db)?;
            tx.commit().map_err(db)
        })
        .await?;
        self.pushed.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn relay(&self, channel: &str) -> Result<Option<(RelayRow, u64)>, StoreError> {
        let channel = channel.to_string();
        self.with(move |c| {
            c.query_row(SELECT_RELAY, [&channel], relay_row)
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn append_frame(
        &self,
        channel: &str,
        sender: &str,
        epoch: u64,
        body: &[u8],
        at_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let (channel, sender, body) = (channel.to_string(), sender.to_string(), body.to_vec());
        let seq = self
            .with(move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(db)?;
                let Some((relay, head)) = tx
                    .query_row(SELECT_RELAY, [&channel], relay_row)
                    .optional()
                    .map_err(db)?
                else {
                    return Ok(None);
                };
                let member = relay.creator == sender || relay.participants.contains(&sender);
                if relay.epoch != epoch || !member {
                    return Ok(None);
                }
                let seq = head + 1;
                tx.execute(
                    "INSERT INTO relay_frames (channel, seq, sender, epoch, body, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        channel,
                        seq as i64,
                        sender,
                        epoch as i64,
                        body,
                        at_ms as i64
                    ],
                )
                .map_err(db)?;
                tx.execute(
                    "UPDATE relays SET head = ?2 WHERE channel = ?1",
                    params![channel, seq as i64],
                )
                .map_err(db)?;
                tx.execute(
                    "DELETE FROM relay_frames WHERE channel = ?1 AND seq <= ?2",
                    params![channel, seq as i64 - RELAY_KEEP_FRAMES as i64],
                )
                .map_err(db)?;
                tx.commit().map_err(db)?;
                Ok(Some(seq))
            })
            .await?;
        if seq.is_some() {
            self.pushed.send_modify(|n| *n += 1);
        }
        Ok(seq)
    }

    async fn frames(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<FrameRow>, u64), StoreError> {
        let channel = channel.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(db)?;
            let head: i64 = tx
                .query_row(
                    "SELECT head FROM relays WHERE channel = ?1",
                    [&channel],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?
                .unwrap_or(0);
            let mut out = Vec::new();
            {
                let mut st = tx
                    .prepare_cached(
                        "SELECT seq, sender, epoch, body, at_ms FROM relay_frames
                         WHERE channel = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    )
                    .map_err(db)?;
                let rows = st
                    .query_map(params![channel, after as i64, limit as i64], |r| {
                        Ok(FrameRow {
                            seq: r.get::<_, i64>(0)? as u64,
                            sender: r.get(1)?,
                            epoch: r.get::<_, i64>(2)? as u64,
                            body: r.get(3)?,
                            at_ms: r.get::<_, i64>(4)? as u64,
                        })
                    })
                    .map_err(db)?;
                for r in rows {
                    out.push(r.map_err(db)?);
                }
            }
            tx.commit().map_err(db)?;
            Ok((out, head as u64))
        })
        .await
    }

    fn change_feed(&self) -> (watch::Receiver<u64>, Duration) {
        (self.pushed.subscribe(), POLL)
    }
}
