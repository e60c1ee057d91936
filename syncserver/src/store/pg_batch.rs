//! Group commit for PostgreSQL pushes. Pushes to one space serialize on the
//! space's row lock, held until the commit's WAL flush: one push per flush
//! caps a busy org at about one write per fsync. So pushes to a space that
//! arrive while one is committing wait in a queue, and the next transaction
//! takes them all: each push still gets its own compare-and-swap outcomes,
//! its own role check and its own all-or-nothing application (a refused push
//! stores nothing; a database error fails the whole batch, and nothing of it
//! was applied). One `pg_notify` follows each batch.
//!
//! The batch runs in a task of its own, so a client that goes away mid-push
//! never leaves a space without a leader.
//! Must never: let one push's refusal or conflict change another push's
//! outcome, or acknowledge a push before its transaction committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tokio::sync::oneshot;

use super::postgres::{CHANNEL, db, pool_err, push_one};
use super::{CasOutcome, RecordWrite, StoreError, Writer};

type PushResult = Result<(Vec<CasOutcome>, u64), StoreError>;

/// One push waiting for its batch.
struct Pending {
    /// `(org, account)` for an org member's push; `None` for a private space.
    member: Option<(String, String)>,
    writes: Vec<RecordWrite>,
    reply: oneshot::Sender<PushResult>,
}

#[derive(Default)]
struct SpaceQueue {
    pending: Vec<Pending>,
    /// A task is committing batches for this space.
    leading: bool,
}

/// The queues of one server process.
#[derive(Clone)]
pub struct Batcher {
    pool: Pool,
    queues: Arc<Mutex<HashMap<String, SpaceQueue>>>,
}

impl Batcher {
    pub fn new(pool: Pool) -> Batcher {
        Batcher {
            pool,
            queues: Arc::default(),
        }
    }

    /// Queues the push and waits for the batch that commits it.
    pub async fn push(
        &self,
        space: &str,
        writer: Writer<'_>,
        writes: &[RecordWrite],
    ) -> PushResult {
        let (reply, answer) = oneshot::channel();
        let member = match writer {
            Writer::SpaceOwner => None,
            Writer::OrgMember { org, account } => Some((org.to_string(), account.to_string())),
        };
        let lead = {
            let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let sq = q.entry(space.to_string()).or_default();
            sq.pending.push(Pending {
                member,
                writes: writes.to_vec(),
                reply,
            });
            !std::mem::replace(&mut sq.leading, true)
        };
        if lead {
            tokio::spawn(self.clone().lead(space.to_string()));
        }
        answer
            .await
            .map_err(|_| StoreError::Db("the push's batch task ended without an answer".into()))?
    }

    /// Commits batches for `space` until its queue is empty.
    async fn lead(self, space: String) {
        loop {
            let batch = {
                let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                let Some(sq) = q.get_mut(&space) else { return };
                if sq.pending.is_empty() {
                    q.remove(&space);
                    return;
                }
                std::mem::take(&mut sq.pending)
            };
            let (results, any_accepted) = match self.commit(&space, &batch).await {
                Ok(r) => r,
                Err(e) => (batch.iter().map(|_| Err(e.clone())).collect(), false),
            };
            if any_accepted {
                // After the commit, in its own (WAL-free) transaction: a
                // NOTIFY inside would hold PostgreSQL's notify lock across
                // the WAL flush and serialize every push of every space.
                if let Ok(c) = self.pool.get().await {
                    let _ = c
                        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &space])
                        .await;
                }
            }
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
    }

    /// One transaction for the whole batch (one statement for a batch of
    /// one single-record push). Per push: its refusal or its outcomes.
    async fn commit(
        &self,
        space: &str,
        batch: &[Pending],
    ) -> Result<(Vec<PushResult>, bool), StoreError> {
        let mut c = self.pool.get().await.map_err(pool_err)?;
        let call = c
            .prepare_cached(
                "SELECT o_role, o_accepted, o_seq, o_cur_rev, o_cur_seq, o_head
                 FROM gh_push_one($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await
            .map_err(db)?;
        if batch.len() == 1 && batch[0].writes.len() == 1 {
            let client: &tokio_postgres::Client = &c;
            return run_batch(client, &call, space, batch).await;
        }
        let tx = c.transaction().await.map_err(db)?;
        let t: &tokio_postgres::Transaction = &tx;
        let r = run_batch(t, &call, space, batch).await?;
        tx.commit().await.map_err(db)?;
        Ok(r)
    }
}

/// Every push of the batch on `q` (a transaction, or the connection for a
/// lone one-record push), its statements pipelined (sent together, run in
/// order): per push its refusal or its outcomes, and whether anything was
/// accepted.
async fn run_batch(
    q: &impl tokio_postgres::GenericClient,
    call: &tokio_postgres::Statement,
    space: &str,
    batch: &[Pending],
) -> Result<(Vec<PushResult>, bool), StoreError> {
    let writers: Vec<Writer<'_>> = batch
        .iter()
        .map(|p| match &p.member {
            None => Writer::SpaceOwner,
            Some((org, account)) => Writer::OrgMember { org, account },
        })
        .collect();
    let steps =
        futures_util::future::try_join_all(batch.iter().zip(&writers).flat_map(|(p, writer)| {
            p.writes
                .iter()
                .map(move |w| push_one(q, call, space, *writer, w))
        }))
        .await?;
    let mut steps = steps.into_iter();
    let mut results = Vec::with_capacity(batch.len());
    let mut any_accepted = false;
    for p in batch {
        let mine: Vec<_> = steps.by_ref().take(p.writes.len()).collect();
        // The role is read under a share lock held to the end of the
        // transaction, so it is the same for every record of a push: a
        // refused push stored none of them.
        if let Some(Err(refusal)) = mine.iter().find(|s| s.is_err()) {
            results.push(Err(refusal.clone()));
            continue;
        }
        let mut out = Vec::with_capacity(mine.len());
        let mut head = 0;
        for (o, h) in mine.into_iter().flatten() {
            any_accepted |= matches!(o, CasOutcome::Accepted { .. });
            out.push(o);
            head = h;
        }
        results.push(Ok((out, head)));
    }
    Ok((results, any_accepted))
}
