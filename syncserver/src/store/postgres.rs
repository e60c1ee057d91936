//! The PostgreSQL backend (`--db postgres://…`): several server processes
//! on one database serve the same orgs.
//!
//! Owns: the PostgreSQL schema and queries, the connection pool
//! (deadpool-postgres over tokio-postgres) and one LISTEN connection per
//! process. Sequences are allocated in the database: each record goes
//! through `gh_push_one` (a PL/pgSQL function in the schema), which locks
//! its space's row until the transaction ends, so pushes to one space commit
//! one after the other and a puller never sees seq N+1 before N; a
//! one-record push is a single statement (one round trip). After the commit
//! the push sends `NOTIFY gatehouse_sync`, which wakes the long-polls of
//! every instance.
//! Must never: keep a sequence or a cache in the process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::pg_batch::Batcher;

use super::{
    AccountRow, CasOutcome, ChallengeRow, GrantRow, LogRow, MemberRow, RecordWrite, SessionRow,
    Store, StoreError, Writer, random_token, role_from_str, role_to_str, writer_refusal,
};
use super::{
    BUNDLE_MAX_WRONG, BUNDLE_TRY_HOLD_MS, BUNDLE_WINDOW_MS, BundleRow, BundleTry, CLAIM_BUNDLE_TRY,
    bundle_wait,
};
use super::{FrameRow, RelayRow, relay_refusal};
use gatehouse_syncproto::limits::RELAY_KEEP_FRAMES;

/// The NOTIFY channel.
pub const CHANNEL: &str = "gatehouse_sync";
const LISTEN_SQL: &str = "LISTEN gatehouse_sync";
/// Connections per process.
pub const POOL_SIZE: usize = 24;
/// Longest a waiter sleeps without a notification (covers a lost LISTEN connection).
pub const FALLBACK_POLL: Duration = Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (account TEXT PRIMARY KEY, card BYTEA NOT NULL,
    identity BYTEA NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS challenges (id TEXT PRIMARY KEY, account TEXT NOT NULL,
    device TEXT NOT NULL, nonce BYTEA NOT NULL, time_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token_hash BYTEA PRIMARY KEY, account TEXT NOT NULL,
    device TEXT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS log_entries (org TEXT NOT NULL, seq BIGINT NOT NULL,
    hash BYTEA NOT NULL, entry BYTEA NOT NULL, PRIMARY KEY (org, seq));
CREATE TABLE IF NOT EXISTS members (org TEXT NOT NULL, account TEXT NOT NULL,
    role TEXT NOT NULL, PRIMARY KEY (org, account));
CREATE TABLE IF NOT EXISTS spaces (space TEXT PRIMARY KEY, head BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS records (space TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
    revision BIGINT NOT NULL, seq BIGINT NOT NULL, envelope TEXT NOT NULL,
    PRIMARY KEY (space, kind, id));
CREATE UNIQUE INDEX IF NOT EXISTS records_by_seq ON records (space, seq);
CREATE TABLE IF NOT EXISTS grants (org TEXT NOT NULL, generation BIGINT NOT NULL,
    recipient TEXT NOT NULL, granter TEXT NOT NULL, log_seq BIGINT NOT NULL,
    grant_blob BYTEA NOT NULL, PRIMARY KEY (org, generation, recipient));
CREATE TABLE IF NOT EXISTS bundles (account TEXT PRIMARY KEY, kdf TEXT NOT NULL,
    verifier_salt BYTEA NOT NULL, verifier_hash BYTEA NOT NULL, bundle BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL, failures BIGINT NOT NULL DEFAULT 0,
    window_start_ms BIGINT NOT NULL DEFAULT 0, busy_until_ms BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS relays (channel TEXT PRIMARY KEY, org TEXT NOT NULL,
    creator TEXT NOT NULL, epoch BIGINT NOT NULL, participants TEXT NOT NULL,
    list BYTEA NOT NULL, head BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS relay_frames (channel TEXT NOT NULL, seq BIGINT NOT NULL,
    sender TEXT NOT NULL, epoch BIGINT NOT NULL, body BYTEA NOT NULL, at_ms BIGINT NOT NULL,
    PRIMARY KEY (channel, seq));
-- One record's compare-and-swap: for an org space, reads the writer's role
-- row (share-locked, so a log append that changes it waits for this push)
-- and stops there if it is not a writing role; then locks the space's row
-- (created if needed) until the transaction ends, checks the stored
-- revision, and on success stores the envelope under the space's next
-- sequence number.
DROP FUNCTION IF EXISTS gh_push_one(TEXT, TEXT, TEXT, BIGINT, BIGINT, TEXT);
CREATE OR REPLACE FUNCTION gh_push_one(p_space TEXT, p_org TEXT, p_writer TEXT,
    p_kind TEXT, p_id TEXT, p_base BIGINT, p_rev BIGINT, p_env TEXT)
RETURNS TABLE (o_role TEXT, o_accepted BOOLEAN, o_seq BIGINT, o_cur_rev BIGINT,
    o_cur_seq BIGINT, o_head BIGINT)
LANGUAGE plpgsql AS $$
DECLARE h BIGINT; r BIGINT; s BIGINT; rl TEXT;
BEGIN
    IF p_org IS NOT NULL THEN
        SELECT m.role INTO rl FROM members m
            WHERE m.org = p_org AND m.account = p_writer FOR SHARE;
        IF rl IS NULL OR rl NOT IN ('owner', 'admin', 'member') THEN
            RETURN QUERY SELECT COALESCE(rl, ''), FALSE, 0::BIGINT, 0::BIGINT, 0::BIGINT, 0::BIGINT;
            RETURN;
        END IF;
    END IF;
    INSERT INTO spaces AS sp (space, head) VALUES (p_space, 0)
        ON CONFLICT (space) DO UPDATE SET head = sp.head RETURNING sp.head INTO h;
    SELECT rec.revision, rec.seq INTO r, s FROM records rec
        WHERE rec.space = p_space AND rec.kind = p_kind AND rec.id = p_id;
    IF COALESCE(r, 0) <> p_base THEN
        RETURN QUERY SELECT rl, FALSE, 0::BIGINT, COALESCE(r, 0), COALESCE(s, 0), h;
        RETURN;
    END IF;
    h := h + 1;
    INSERT INTO records AS rec (space, kind, id, revision, seq, envelope)
        VALUES (p_space, p_kind, p_id, p_rev, h, p_env)
        ON CONFLICT (space, kind, id) DO UPDATE SET revision = EXCLUDED.revision,
            seq = EXCLUDED.seq, envelope = EXCLUDED.envelope;
    UPDATE spaces SET head = h WHERE space = p_space;
    RETURN QUERY SELECT rl, TRUE, h, p_rev, h, h;
END
$$;
";

pub struct PgStore {
    pool: Pool,
    /// Group commit of pushes per space (`pg_batch.rs`).
    batcher: Batcher,
    /// Bumped on every notification received by this process's LISTEN connection.
    notified: watch::Sender<u64>,
    _listener: Arc<tokio::task::JoinHandle<()>>,
}

pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            StoreError::Conflict(e.to_string())
        }
        _ => StoreError::Db(e.to_string()),
    }
}

pub(super) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Db(format!("connection pool: {e}"))
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Db("stored hash is not 32 bytes".into()))
}

/// Reads a relay row (`SELECT channel, org, creator, epoch, participants, list, head`).
fn relay_row(r: &tokio_postgres::Row) -> (RelayRow, u64) {
    let participants: String = r.get(4);
    (
        RelayRow {
            channel: r.get(0),
            org: r.get(1),
            creator: r.get(2),
            epoch: r.get::<_, i64>(3) as u64,
            participants: participants
                .split('\n')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            list: r.get(5),
        },
        r.get::<_, i64>(6) as u64,
    )
}

const SELECT_RELAY: &str =
    "SELECT channel, org, creator, epoch, participants, list, head FROM relays WHERE channel = $1";

impl PgStore {
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut cfg = deadpool_postgres::Config::new();
        cfg.url = Some(url.to_string());
        cfg.pool = Some(PoolConfig::new(POOL_SIZE));
        cfg.manager = Some(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| StoreError::Db(format!("bad postgres url: {e}")))?;
        {
            let mut c = pool.get().await.map_err(pool_err)?;
            let tx = c.transaction().await.map_err(db)?;
            // Two instances starting at once must not race on CREATE TABLE.
            tx.execute("SELECT pg_advisory_xact_lock(7151)", &[])
                .await
                .map_err(db)?;
            tx.batch_execute(SCHEMA).await.map_err(db)?;
            let id = random_token(16)?;
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('server_id', $1) ON CONFLICT DO NOTHING",
                &[&id],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
        }
        let notified = watch::channel(0u64).0;
        let listener = tokio::spawn(listen(url.to_string(), notified.clone()));
        Ok(PgStore {
            batcher: Batcher::new(pool.clone()),
            pool,
            notified,
            _listener: Arc::new(listener),
        })
    }

    async fn conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self._listener.abort();
    }
}

/// Keeps a LISTEN connection open (reconnecting after a failure) and bumps
/// `notified` on every notification.
async fn listen(url: String, notified: watch::Sender<u64>) {
    use futures_util::StreamExt;
    loop {
        if let Ok((client, mut conn)) = tokio_postgres::connect(&url, NoTls).await {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            let listen = client.batch_execute(LISTEN_SQL);
            // Drive the connection while LISTEN runs, then forever.
            let mut listen = std::pin::pin!(listen);
            let mut listening = false;
            loop {
                tokio::select! {
                    r = &mut listen, if !listening => {
                        if r.is_err() { break; }
                        listening = true;
                        // Anything pushed before LISTEN took effect: wake waiters to re-read.
                        notified.send_modify(|n| *n += 1);
                    }
                    m = messages.next() => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                            notified.send_modify(|n| *n += 1);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Compare-and-swaps one record through `gh_push_one`; returns the outcome and the head.
/// One record through `gh_push_one`: `Ok(Err(refusal))` when the writer may
/// not write (nothing was stored), else the outcome and the head.
pub(super) async fn push_one(
    q: &impl tokio_postgres::GenericClient,
    call: &tokio_postgres::Statement,
    space: &str,
    writer: Writer<'_>,
    w: &RecordWrite,
) -> Result<Result<(CasOutcome, u64), StoreError>, StoreError> {
    let (org, account) = match writer {
        Writer::SpaceOwner => (None, None),
        Writer::OrgMember { org, account } => (Some(org), Some(account)),
    };
    let r = q
        .query_one(
            call,
            &[
                &space,
                &org,
                &account,
                &w.kind,
                &w.id,
                &(w.base_revision as i64),
                &(w.revision as i64),
                &w.envelope,
            ],
        )
        .await
        .map_err(db)?;
    if let (Some(org), Some(account)) = (org, account) {
        let role: Option<String> = r.get(0);
        let role = role.filter(|r| !r.is_empty());
        if let Some(e) = writer_refusal(org, account, role.as_deref()) {
            return Ok(Err(e));
        }
    }
    let head = r.get::<_, i64>(5) as u64;
    let outcome = if r.get::<_, bool>(1) {
        CasOutcome::Accepted {
            seq: r.get::<_, i64>(2) as u64,
        }
    } else {
        CasOutcome::Conflict {
            current_revision: r.get::<_, i64>(3) as u64,
            current_seq: r.get::<_, i64>(4) as u64,
        }
    };
    Ok(Ok((outcome, head)))
}

#[async_trait]
impl Store for PgStore {
    async fn put_bundle(&self, row: &BundleRow) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO bundles (account, kdf, verifier_salt, verifier_hash, bundle, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account) DO UPDATE SET kdf = EXCLUDED.kdf,
               verifier_salt = EXCLUDED.verifier_salt, verifier_hash = EXCLUDED.verifier_hash,
               bundle = EXCLUDED.bundle, updated_ms = EXCLUDED.updated_ms,
               failures = 0, window_start_ms = 0, busy_until_ms = 0",
            &[
                &row.account,
                &row.kdf,
                &row.verifier_salt,
                &row.verifier_hash,
                &row.bundle,
                &(row.updated_ms as i64),
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn bundle(&self, account: &str) -> Result<Option<BundleRow>, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_opt(
                "SELECT kdf, verifier_salt, verifier_hash, bundle, updated_ms FROM bundles WHERE account = $1",
                &[&account],
            )
            .await
            .map_err(db)?;
        Ok(r.map(|r| BundleRow {
            account: account.to_string(),
            kdf: r.get(0),
            verifier_salt: r.get(1),
            verifier_hash: r.get(2),
            bundle: r.get(3),
            updated_ms: r.get::<_, i64>(4) as u64,
        }))
    }

    async fn claim_bundle_try(&self, account: &str, now_ms: u64) -> Result<BundleTry, StoreError> {
        let c = self.conn().await?;
        let now = now_ms as i64;
        let claimed = c
            .query_opt(
                CLAIM_BUNDLE_TRY,
                &[
                    &account,
                    &now,
                    &(BUNDLE_TRY_HOLD_MS as i64),
                    &(BUNDLE_WINDOW_MS as i64),
                    &(BUNDLE_MAX_WRONG as i64),
                ],
            )
            .await
            .map_err(db)?;
        if let Some(r) = claimed {
            return Ok(BundleTry::Claimed {
                failures: r.get::<_, i64>(0) as u32,
            });
        }
        let row = c
            .query_opt(
                "SELECT busy_until_ms, failures, window_start_ms FROM bundles WHERE account = $1",
                &[&account],
            )
            .await
            .map_err(db)?;
        Ok(match row {
            None => BundleTry::NoBundle,
            Some(r) => bundle_wait(
                now_ms,
                r.get::<_, i64>(0) as u64,
                r.get::<_, i64>(1) as u32,
                r.get::<_, i64>(2) as u64,
            ),
        })
    }

    async fn end_bundle_try(&self, account: &str, right: bool) -> Result<u32, StoreError> {
        let c = self.conn().await?;
        let sql = if right {
            "UPDATE bundles SET failures = 0, busy_until_ms = 0 WHERE account = $1 RETURNING failures"
        } else {
            "UPDATE bundles SET failures = failures + 1, busy_until_ms = 0 WHERE account = $1 RETURNING failures"
        };
        let r = c.query_one(sql, &[&account]).await.map_err(db)?;
        Ok(r.get::<_, i64>(0) as u32)
    }

    async fn server_id(&self) -> Result<String, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_one("SELECT v FROM meta WHERE k = 'server_id'", &[])
            .await
            .map_err(db)?;
        Ok(r.get(0))
    }

    async fn create_account(&self, row: &AccountRow) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO accounts (account, card, identity, created_ms) VALUES ($1, $2, $3, $4)",
            &[
                &row.account,
                &row.card,
                &row.identity.as_slice(),
                &(row.created_ms as i64),
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn account(&self, account: &str) -> Result<Option<AccountRow>, StoreError> {
        let c = self.conn().await?;
        let st = c
            .prepare_cached("SELECT card, identity, created_ms FROM accounts WHERE account = $1")
            .await
            .map_err(db)?;
        let r = c.query_opt(&st, &[&account]).await.map_err(db)?;
        r.map(|r| {
            Ok(AccountRow {
                account: account.to_string(),
                card: r.get(0),
                identity: hash32(r.get(1))?,
                created_ms: r.get::<_, i64>(2) as u64,
            })
        })
        .transpose()
    }

    async fn put_challenge(&self, row: &ChallengeRow) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO challenges (id, account, device, nonce, time_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&row.id, &row.account, &row.device, &row.nonce, &(row.time_ms as i64)],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn take_challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError> {
        let c = self.conn().await?;
        let r = c
            .query_opt(
                "DELETE FROM challenges WHERE id = $1 RETURNING account, device, nonce, time_ms",
                &[&id],
            )
            .await
            .map_err(db)?;
        Ok(r.map(|r| ChallengeRow {
            id: id.to_string(),
            account: r.get(0),
            device: r.get(1),
            nonce: r.get(2),
            time_ms: r.get::<_, i64>(3) as u64,
        }))
    }

    async fn put_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.execute(
            "INSERT INTO sessions (token_hash, account, device, expires_ms) VALUES ($1, $2, $3, $4)",
            &[
                &row.token_hash.as_slice(),
                &row.account,
                &row.device,
                &(row.expires_ms as i64),
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        let c = self.conn().await?;
        let st = c
            .prepare_cached(
                "SELECT account, device, expires_ms FROM sessions WHERE token_hash = $1",
            )
            .await
            .map_err(db)?;
        let r = c
            .query_opt(&st, &[&token_hash.as_slice()])
            .await
            .map_err(db)?;
        Ok(r.map(|r| SessionRow {
            token_hash: *token_hash,
            account: r.get(0),
            device: r.get(1),
            expires_ms: r.get::<_, i64>(2) as u64,
        }))
    }

    async fn append_log(
        &self,
        org: &str,
        entry: &LogRow,
        members: &[MemberRow],
    ) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // One appender per org at a time (the lock ends with the transaction).
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&org])
            .await
            .map_err(db)?;
        let head: Option<i64> = tx
            .query_one("SELECT MAX(seq) FROM log_entries WHERE org = $1", &[&org])
            .await
            .map_err(db)?
            .get(0);
        let want = head.map(|h| h as u64 + 1).unwrap_or(0);
        if entry.seq != want {
            return Err(StoreError::Conflict(format!(
                "the log's next seq is {want}, not {}",
                entry.seq
            )));
        }
        tx.execute(
            "INSERT INTO log_entries (org, seq, hash, entry) VALUES ($1, $2, $3, $4)",
            &[
                &org,
                &(entry.seq as i64),
                &entry.hash.as_slice(),
                &entry.entry,
            ],
        )
        .await
        .map_err(db)?;
        tx.execute("DELETE FROM members WHERE org = $1", &[&org])
            .await
            .map_err(db)?;
        for m in members {
            tx.execute(
                "INSERT INTO members (org, account, role) VALUES ($1, $2, $3)",
                &[&org, &m.account, &role_to_str(m.role)],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn log(&self, org: &str, after: Option<u64>) -> Result<Vec<LogRow>, StoreError> {
        let c = self.conn().await?;
        let after = after.map(|a| a as i64).unwrap_or(-1);
        let rows = c
            .query(
                "SELECT seq, hash, entry FROM log_entries WHERE org = $1 AND seq > $2 ORDER BY seq",
                &[&org, &after],
            )
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|r| {
                Ok(LogRow {
                    seq: r.get::<_, i64>(0) as u64,
                    hash: hash32(r.get(1))?,
                    entry: r.get(2),
                })
            })
            .collect()
    }

    async fn member(&self, org: &str, account: &str) -> Result<Option<MemberRow>, StoreError> {
        let c = self.conn().await?;
        let st = c
            .prepare_cached("SELECT role FROM members WHERE org = $1 AND account = $2")
            .await
            .map_err(db)?;
        let r = c.query_opt(&st, &[&org, &account]).await.map_err(db)?;
        Ok(r.map(|r| MemberRow {
            account: account.to_string(),
            role: role_from_str(r.get(0)),
        }))
    }

    async fn push(
        &self,
        space: &str,
        writer: Writer<'_>,
        writes: &[RecordWrite],
    ) -> Result<(Vec<CasOutcome>, u64), StoreError> {
        self.batcher.push(space, writer, writes).await
    }

    async fn pull(
        &self,
        space: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, u64), StoreError> {
        let mut c = self.conn().await?;
        // One snapshot for the head and the rows.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let head: i64 = tx
            .query_opt("SELECT head FROM spaces WHERE space = $1", &[&space])
            .await
            .map_err(db)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let rows = tx
            .query(
                "SELECT seq, envelope FROM records WHERE space = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&space, &(after as i64), &(limit as i64)],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((
            rows.into_iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, String>(1)))
                .collect(),
            head as u64,
        ))
    }

    async fn head(&self, space: &str) -> Result<u64, StoreError> {
        let c = self.conn().await?;
        Ok(
            c.query_opt("SELECT head FROM spaces WHERE space = $1", &[&space])
                .await
                .map_err(db)?
                .map(|r| r.get::<_, i64>(0) as u64)
                .unwrap_or(0),
        )
    }

    async fn put_grants(&self, org: &str, grants: &[GrantRow]) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        for g in grants {
            tx.execute(
                "INSERT INTO grants (org, generation, recipient, granter, log_seq, grant_blob)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (org, generation, recipient) DO UPDATE SET granter = excluded.granter,
                   log_seq = excluded.log_seq, grant_blob = excluded.grant_blob",
                &[
                    &org,
                    &(g.generation as i64),
                    &g.recipient,
                    &g.granter,
                    &(g.log_seq as i64),
                    &g.grant,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn grants_for(&self, org: &str, recipient: &str) -> Result<Vec<GrantRow>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT generation, granter, log_seq, grant_blob FROM grants
                 WHERE org = $1 AND recipient = $2 ORDER BY generation",
                &[&org, &recipient],
            )
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| GrantRow {
                generation: r.get::<_, i64>(0) as u32,
                recipient: recipient.to_string(),
                granter: r.get(1),
                log_seq: r.get::<_, i64>(2) as u64,
                grant: r.get(3),
            })
            .collect())
    }

    async fn put_relay(&self, row: &RelayRow) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Serializes puts on one channel (a first put has no row to lock).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('relay:' || $1))",
            &[&row.channel],
        )
        .await
        .map_err(db)?;
        let existing = tx
            .query_opt(SELECT_RELAY, &[&row.channel])
            .await
            .map_err(db)?
            .map(|r| relay_row(&r));
        if let Some(e) = existing.and_then(|(e, _)| relay_refusal(&e, &row.creator, row.epoch)) {
            return Err(e);
        }
        tx.execute(
            "INSERT INTO relays (channel, org, creator, epoch, participants, list)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (channel) DO UPDATE SET epoch = excluded.epoch,
               participants = excluded.participants, list = excluded.list",
            &[
                &row.channel,
                &row.org,
                &row.creator,
                &(row.epoch as i64),
                &row.participants.join("\n"),
                &row.list,
            ],
        )
        .await
        .map_err(db)?;
        tx.batch_execute("NOTIFY gatehouse_sync")
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn relay(&self, channel: &str) -> Result<Option<(RelayRow, u64)>, StoreError> {
        let c = self.conn().await?;
        Ok(c.query_opt(SELECT_RELAY, &[&channel])
            .await
            .map_err(db)?
            .map(|r| relay_row(&r)))
    }

    async fn append_frame(
        &self,
        channel: &str,
        sender: &str,
        epoch: u64,
        body: &[u8],
        at_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The row lock orders frames and waits for a list change in flight.
        let Some((relay, head)) = tx
            .query_opt(&format!("{SELECT_RELAY} FOR UPDATE"), &[&channel])
            .await
            .map_err(db)?
            .map(|r| relay_row(&r))
        else {
            return Ok(None);
        };
        let member = relay.creator == sender || relay.participants.iter().any(|p| p == sender);
        if relay.epoch != epoch || !member {
            return Ok(None);
        }
        let seq = head + 1;
        tx.execute(
            "INSERT INTO relay_frames (channel, seq, sender, epoch, body, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &channel,
                &(seq as i64),
                &sender,
                &(epoch as i64),
                &body,
                &(at_ms as i64),
            ],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "UPDATE relays SET head = $2 WHERE channel = $1",
            &[&channel, &(seq as i64)],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "DELETE FROM relay_frames WHERE channel = $1 AND seq <= $2",
            &[&channel, &(seq as i64 - RELAY_KEEP_FRAMES as i64)],
        )
        .await
        .map_err(db)?;
        tx.batch_execute("NOTIFY gatehouse_sync")
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(seq))
    }

    async fn frames(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<FrameRow>, u64), StoreError> {
        let mut c = self.conn().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let head: i64 = tx
            .query_opt("SELECT head FROM relays WHERE channel = $1", &[&channel])
            .await
            .map_err(db)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let rows = tx
            .query(
                "SELECT seq, sender, epoch, body, at_ms FROM relay_frames
                 WHERE channel = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&channel, &(after as i64), &(limit as i64)],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((
            rows.into_iter()
                .map(|r| FrameRow {
                    seq: r.get::<_, i64>(0) as u64,
                    sender: r.get(1),
                    epoch: r.get::<_, i64>(2) as u64,
                    body: r.get(3),
                    at_ms: r.get::<_, i64>(4) as u64,
                })
                .collect(),
            head as u64,
        ))
    }

    fn change_feed(&self) -> (watch::Receiver<u64>, Duration) {
        (self.notified.subscribe(), FALLBACK_POLL)
    }
}
