//! The server's storage: ONE trait, [`Store`], with two backends that pass
//! the same test suite — an SQLite file ([`sqlite`], the default) and
//! PostgreSQL ([`postgres`], several server processes on one database).
//!
//! Owns: what the server keeps (accounts' public cards, single-use device
//! challenges, hashed session tokens, each org's membership log and the
//! member roles derived from it, record envelopes with their per-space
//! sequence numbers, wrapped key grants) and the atomicity rules:
//! * a log append succeeds only if its seq is the next one (two concurrent
//!   appends of the same seq: one wins, the other gets [`StoreError::Conflict`]);
//! * a push is one transaction; each record is compare-and-swapped on its
//!   revision; accepted records get the space's next sequence numbers, which
//!   the database allocates (no in-process counter);
//! * a challenge is taken once.
//!
//! Must never: open, parse or log a ciphertext; keep state in the process
//! that another instance on the same database would need (change
//! notification goes through the database: LISTEN/NOTIFY or polling).

mod pg_batch;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or sequence rule lost a race, or the id exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed; nothing was applied.
    #[error("database: {0}")]
    Db(String),
    /// The writer is not (or no longer) a member of the org.
    #[error("{0}")]
    NotMember(String),
    /// The writer's role may not write records (a viewer).
    #[error("{0}")]
    ReadOnlyRole(String),
}

/// Who pushes to a space. The store checks an org member's role in the
/// push's own transaction, so a removal that commits first is never missed.
#[derive(Debug, Clone, Copy)]
pub enum Writer<'a> {
    /// The account that owns the private space (checked by the caller).
    SpaceOwner,
    /// `account` writing to `org`'s space: must hold a writing role there.
    OrgMember { org: &'a str, account: &'a str },
}

/// The refusal for `account` writing to `org` given its stored role row
/// (`None`: no row; `Some("removed")`, `Some("viewer")`, …), if any.
pub(crate) fn writer_refusal(org: &str, account: &str, role: Option<&str>) -> Option<StoreError> {
    match role.map(role_from_str) {
        None => Some(StoreError::NotMember(format!(
            "{account} is not a member of {org}"
        ))),
        Some(None) => Some(StoreError::NotMember(format!(
            "{account} was removed from {org}"
        ))),
        Some(Some(r)) if !r.writes() => Some(StoreError::ReadOnlyRole(format!(
            "{account} is a {r} of {org} and may not write records"
        ))),
        Some(Some(_)) => None,
    }
}

/// An account as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub account: String,
    /// `postcard(SignedCard)` as registered.
    pub card: Vec<u8>,
    pub identity: [u8; 32],
    pub created_ms: u64,
}

/// A device challenge, single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: String,
    pub account: String,
    pub device: String,
    pub nonce: Vec<u8>,
    pub time_ms: u64,
}

/// A session; only the SHA-256 of its token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: [u8; 32],
    pub account: String,
    pub device: String,
    pub expires_ms: u64,
}

/// One membership-log entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub seq: u64,
    pub hash: [u8; 32],
    /// `postcard(SignedEntry)`.
    pub entry: Vec<u8>,
}

/// A member's role as the log says after its last entry (derived; the log
/// is the truth). `role` is `None` for a removed member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub account: String,
    pub role: Option<gatehouse_syncproto::Role>,
}

/// One record revision to store: its routing fields and the envelope's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    pub kind: String,
    pub id: String,
    pub revision: u64,
    pub base_revision: u64,
    /// The whole `RecordEnvelope` as JSON, returned byte for byte on pull.
    pub envelope: String,
}

/// What happened to one record of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Accepted {
        seq: u64,
    },
    Conflict {
        current_revision: u64,
        current_seq: u64,
    },
}

/// One stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub generation: u32,
    pub recipient: String,
    pub granter: String,
    pub log_seq: u64,
    /// `postcard(SignedGrant)`.
    pub grant: Vec<u8>,
}

/// An account's key bundle as stored: the client's public derivation
/// parameters, a slow hash of its verifier, and the sealed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRow {
    pub account: String,
    /// `gatehouse_syncproto::KdfParams` as JSON.
    pub kdf: String,
    /// The server's own random salt for hashing the verifier.
    pub verifier_salt: Vec<u8>,
    /// Argon2id(verifier, verifier_salt): the verifier itself is not stored.
    pub verifier_hash: Vec<u8>,
    pub bundle: Vec<u8>,
    pub updated_ms: u64,
}

/// A share-relay channel (issue 14) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRow {
    pub channel: String,
    pub org: String,
    /// The sharer: the only account that may replace the list.
    pub creator: String,
    pub epoch: u64,
    /// The accounts of the current list (besides the creator).
    pub participants: Vec<String>,
    /// `postcard(SignedShareList)` as put.
    pub list: Vec<u8>,
}

/// One relayed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRow {
    pub seq: u64,
    pub sender: String,
    pub epoch: u64,
    pub body: Vec<u8>,
    pub at_ms: u64,
}

/// The answer to "may this verifier be tried now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleTry {
    /// Go ahead: the account is held for [`BUNDLE_TRY_HOLD_MS`] (no other
    /// instance or request may try meanwhile); `failures` so far in this window.
    Claimed { failures: u32 },
    /// Not now: another try is running, or [`BUNDLE_MAX_WRONG`] wrong ones
    /// were made in this window.
    Wait { retry_after_ms: u64, failures: u32 },
    /// The account has no bundle.
    NoBundle,
}

/// How long one verifier try holds its account (longer than the slow hash).
pub const BUNDLE_TRY_HOLD_MS: u64 = 2_000;
pub use gatehouse_syncproto::limits::{BUNDLE_MAX_WRONG, BUNDLE_WINDOW_MS};

/// Claims one try, atomically, in SQL both backends speak (`$1` account,
/// `$2` now, `$3` hold, `$4` window, `$5` most wrong tries): a try starts
/// only when no other is running and the window has room (an expired
/// window starts over).
pub(crate) const CLAIM_BUNDLE_TRY: &str = "UPDATE bundles
  SET busy_until_ms = CAST($2 AS BIGINT) + CAST($3 AS BIGINT),
    failures = CASE WHEN window_start_ms + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT)
      THEN 0 ELSE failures END,
    window_start_ms = CASE WHEN window_start_ms + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT)
      THEN CAST($2 AS BIGINT) ELSE window_start_ms END
  WHERE account = $1 AND busy_until_ms <= CAST($2 AS BIGINT)
    AND (failures < CAST($5 AS BIGINT)
      OR window_start_ms + CAST($4 AS BIGINT) <= CAST($2 AS BIGINT))
  RETURNING failures";

/// Why a claim was refused, from the row's `busy_until_ms`, `failures`,
/// `window_start_ms`.
pub(crate) fn bundle_wait(
    now: u64,
    busy_until: u64,
    failures: u32,
    window_start: u64,
) -> BundleTry {
    let until = if failures >= BUNDLE_MAX_WRONG && window_start + BUNDLE_WINDOW_MS > now {
        (window_start + BUNDLE_WINDOW_MS).max(busy_until)
    } else {
        busy_until
    };
    BundleTry::Wait {
        retry_after_ms: until.saturating_sub(now).max(1),
        failures,
    }
}

/// The storage of one server database. Every method is atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A random id made once per database (every instance on it says the same).
    async fn server_id(&self) -> Result<String, StoreError>;

    /// Registers an account; [`StoreError::Conflict`] if the name is taken.
    async fn create_account(&self, row: &AccountRow) -> Result<(), StoreError>;
    async fn account(&self, account: &str) -> Result<Option<AccountRow>, StoreError>;

    async fn put_challenge(&self, row: &ChallengeRow) -> Result<(), StoreError>;
    /// Removes and returns the challenge (a second take finds nothing).
    async fn take_challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError>;

    async fn put_session(&self, row: &SessionRow) -> Result<(), StoreError>;
    async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError>;

    /// Appends entry `entry.seq` to `org`'s log and replaces the org's member
    /// rows with `members`, in one transaction. Conflict if that seq exists
    /// or (seq > 0) the previous one does not.
    async fn append_log(
        &self,
        org: &str,
        entry: &LogRow,
        members: &[MemberRow],
    ) -> Result<(), StoreError>;
    /// Entries with seq > `after` (all of them for `None`), in order.
    async fn log(&self, org: &str, after: Option<u64>) -> Result<Vec<LogRow>, StoreError>;
    /// The member row of `account` in `org` (active or removed).
    async fn member(&self, org: &str, account: &str) -> Result<Option<MemberRow>, StoreError>;

    /// Checks `writer` and compare-and-swaps each record in order, in one
    /// transaction.
    async fn push(
        &self,
        space: &str,
        writer: Writer<'_>,
        writes: &[RecordWrite],
    ) -> Result<(Vec<CasOutcome>, u64), StoreError>;
    /// Envelopes with seq > `after`, in seq order, at most `limit`; and the head.
    async fn pull(
        &self,
        space: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, String)>, u64), StoreError>;
    /// The space's sequence now (0 if nothing was ever written).
    async fn head(&self, space: &str) -> Result<u64, StoreError>;

    /// Stores grants (one per generation and recipient: a second replaces the first).
    async fn put_grants(&self, org: &str, grants: &[GrantRow]) -> Result<(), StoreError>;
    async fn grants_for(&self, org: &str, recipient: &str) -> Result<Vec<GrantRow>, StoreError>;

    /// Stores (or replaces) an account's key bundle; wrong-try counters start over.
    async fn put_bundle(&self, row: &BundleRow) -> Result<(), StoreError>;
    async fn bundle(&self, account: &str) -> Result<Option<BundleRow>, StoreError>;
    /// Claims one verifier try for `account` at `now_ms` (see [`BundleTry`]).
    async fn claim_bundle_try(&self, account: &str, now_ms: u64) -> Result<BundleTry, StoreError>;
    /// Ends a claimed try: a right verifier clears the wrong-try count, a
    /// wrong one adds to it. Returns the wrong tries in this window.
    async fn end_bundle_try(&self, account: &str, right: bool) -> Result<u32, StoreError>;

    /// Creates a relay channel or replaces its list, atomically: a channel
    /// that exists may be replaced only by its creator and only with a
    /// higher epoch ([`StoreError::Conflict`] otherwise).
    async fn put_relay(&self, row: &RelayRow) -> Result<(), StoreError>;
    /// The channel and its frame head.
    async fn relay(&self, channel: &str) -> Result<Option<(RelayRow, u64)>, StoreError>;
    /// Appends a frame from `sender` for `epoch` if, in the same
    /// transaction, the channel's epoch is `epoch` and `sender` is its
    /// creator or a participant; `None` otherwise. Keeps the last
    /// [`gatehouse_syncproto::limits::RELAY_KEEP_FRAMES`] frames.
    async fn append_frame(
        &self,
        channel: &str,
        sender: &str,
        epoch: u64,
        body: &[u8],
        at_ms: u64,
    ) -> Result<Option<u64>, StoreError>;
    /// Frames with seq > `after`, in order, at most `limit`; and the head.
    async fn frames(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<FrameRow>, u64), StoreError>;

    /// A feed that ticks when something may have changed in some space or
    /// relay channel (a push or frame by this or, through the database,
    /// another instance), and the
    /// longest a waiter may sleep on it before re-reading the head (what the
    /// feed cannot see). Waiters subscribe BEFORE reading the head; a
    /// spurious tick is harmless.
    fn change_feed(&self) -> (watch::Receiver<u64>, Duration);
}

/// Opens a store from `--db`: `sqlite:PATH` or `postgres://…` / `postgresql://…`.
pub async fn open(db: &str) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = db.strip_prefix("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(path)?))
    } else if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(db).await?))
    } else {
        anyhow::bail!("--db must be sqlite:PATH or postgres://…, not {db:?}")
    }
}

/// The refusal for replacing channel `existing` with a list by `creator` at
/// `epoch`, if any (both backends, inside their transaction).
pub(crate) fn relay_refusal(existing: &RelayRow, creator: &str, epoch: u64) -> Option<StoreError> {
    if existing.creator != creator {
        return Some(StoreError::Conflict(format!(
            "relay channel {} belongs to another sharer",
            existing.channel
        )));
    }
    (epoch <= existing.epoch).then(|| {
        StoreError::Conflict(format!(
            "relay channel {} is at epoch {}: a new list needs a higher one, not {epoch}",
            existing.channel, existing.epoch
        ))
    })
}

/// A random token: `n` bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> Result<String, StoreError> {
    use base64::Engine;
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| StoreError::Db(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

pub(crate) fn role_to_str(r: Option<gatehouse_syncproto::Role>) -> &'static str {
    r.map(|r| r.as_str()).unwrap_or("removed")
}

pub(crate) fn role_from_str(s: &str) -> Option<gatehouse_syncproto::Role> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_waits_until_it_ends_and_a_running_try_until_it_ends() {
        let now = 10_000_000;
        // Another try is running: wait for it.
        assert_eq!(
            bundle_wait(now, now + 1500, 2, now - 1000),
            BundleTry::Wait {
                retry_after_ms: 1500,
                failures: 2
            }
        );
        // The window is full: wait for its end, not for the (finished) try.
        let start = now - 60_000;
        assert_eq!(
            bundle_wait(now, 0, BUNDLE_MAX_WRONG, start),
            BundleTry::Wait {
                retry_after_ms: BUNDLE_WINDOW_MS - 60_000,
                failures: BUNDLE_MAX_WRONG
            }
        );
        // Never "retry after 0 ms" (a client would spin).
        assert!(matches!(
            bundle_wait(now, now, 0, now),
            BundleTry::Wait {
                retry_after_ms: 1,
                ..
            }
        ));
    }
}
