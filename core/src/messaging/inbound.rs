//! Inbound chat requests already handled: platform event ids, request signatures and
//! activity ids, remembered in the database so a redelivery or replay reaching any replica is
//! acknowledged without being handled again.

use std::collections::HashSet;
use std::sync::Mutex;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::app::Lineup;
use crate::error::{CoreError, CoreResult};
use crate::store::{self, Store, StoreError, now};

/// Expired ids deleted per call of [`Lineup::prune_inbound_seen`], so one sweep after a long
/// stop holds no lock for long; the next tick takes the rest.
pub const PRUNE_BATCH: i64 = 10_000;

/// Most claims written by one statement (two parameters each, far below either backend's
/// limit).
const MOST_CLAIMS_AT_ONCE: usize = 500;

impl Lineup {
    /// True the first time `key` (scope and id, e.g. `slack_event:Ev123`) is offered within
    /// `remember_for`, false while it is remembered. Atomic across replicas: of two offering
    /// the same key at once, exactly one gets true.
    pub async fn first_time_inbound(
        &self,
        key: &str,
        remember_for: time::Duration,
    ) -> CoreResult<bool> {
        if key.trim().is_empty() {
            return Err(CoreError::invalid("inbound id", "must not be empty"));
        }
        if !remember_for.is_positive() {
            return Err(CoreError::invalid(
                "inbound id",
                format!("must be remembered for some time, not {remember_for}"),
            ));
        }
        let expires_at = now() + remember_for;
        self.inbound_claims()
            .claim(self.store(), key, expires_at)
            .await
    }

    /// Delete up to [`PRUNE_BATCH`] inbound ids expired by `now` (the worker's sweep); returns
    /// how many went.
    pub async fn prune_inbound_seen(&self, now: OffsetDateTime) -> CoreResult<u64> {
        let mut tx = self.store().system().await?;
        let pruned = store::seen_ids::prune(&mut tx, now, PRUNE_BATCH).await?;
        tx.commit().await?;
        Ok(pruned)
    }
}

/// Claims of inbound ids written together: every chat request claims its id first, so under
/// load each claim was a write of its own, and on SQLite writers that met slept in its busy
/// handler (a quarter of the clicks at 2,500/s, issue 14). Here one statement at a time is
/// in flight per process; the claims that arrive meanwhile wait and go together in the next
/// (group commit). A claim is answered only once its statement has committed.
#[derive(Default)]
pub(crate) struct InboundClaims {
    waiting: Mutex<Vec<Waiting>>,
    /// Held by whoever is writing a batch; the rest wait for it or for their answer.
    writing: tokio::sync::Mutex<()>,
}

struct Waiting {
    key: String,
    expires_at: OffsetDateTime,
    answer: oneshot::Sender<Result<bool, String>>,
}

impl InboundClaims {
    async fn claim(
        &self,
        store: &Store,
        key: &str,
        expires_at: OffsetDateTime,
    ) -> CoreResult<bool> {
        let (answer, mut answered) = oneshot::channel();
        self.waiting
            .lock()
            .expect("inbound claims lock")
            .push(Waiting {
                key: key.to_owned(),
                expires_at,
                answer,
            });
        loop {
            let writing = tokio::select! {
                biased;
                answer = &mut answered => return settle(answer),
                writing = self.writing.lock() => writing,
            };
            if let Ok(answer) = answered.try_recv() {
                return settle(Ok(answer));
            }
            let batch = self.take_batch();
            if batch.is_empty() {
                // Ours was taken by a writer still running (its caller gave up waiting, the
                // write goes on): wait for it.
                drop(writing);
                return settle(answered.await);
            }
            // The write runs on its own task, so a caller that stops waiting (a dropped
            // request) never leaves claims taken from the queue unanswered.
            let _ = tokio::spawn(write_batch(store.clone(), batch)).await;
            drop(writing);
        }
    }

    fn take_batch(&self) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().expect("inbound claims lock");
        let take = waiting.len().min(MOST_CLAIMS_AT_ONCE);
        waiting.drain(..take).collect()
    }
}

fn settle(answer: Result<Result<bool, String>, oneshot::error::RecvError>) -> CoreResult<bool> {
    match answer {
        Ok(Ok(first)) => Ok(first),
        Ok(Err(reason)) => Err(CoreError::Store(StoreError::Shared(reason))),
        Err(_) => Err(CoreError::Store(StoreError::Shared(
            "the claim's write stopped before answering".to_owned(),
        ))),
    }
}

/// One statement for the batch; a key offered twice in it is first only once. The keys go
/// in sorted order, so two replicas' batches that share keys take their locks in the same
/// order and one waits for the other instead of deadlocking (PostgreSQL).
async fn write_batch(store: Store, batch: Vec<Waiting>) {
    let written = {
        let mut distinct = HashSet::new();
        let mut claims: Vec<(&str, OffsetDateTime)> = batch
            .iter()
            .filter(|w| distinct.insert(w.key.as_str()))
            .map(|w| (w.key.as_str(), w.expires_at))
            .collect();
        claims.sort_unstable_by_key(|(key, _)| *key);
        store::seen_ids::claim_many(&store, &claims, now())
            .await
            .map_err(|e| e.to_string())
    };
    let mut answered_first = HashSet::new();
    for waiting in batch {
        let answer = match &written {
            Ok(claimed) => {
                Ok(claimed.contains(&waiting.key) && answered_first.insert(waiting.key.clone()))
            }
            Err(reason) => Err(reason.clone()),
        };
        let _ = waiting.answer.send(answer);
    }
}
