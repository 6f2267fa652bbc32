//! Inbound chat requests already handled: platform event ids, request signatures and
//! activity ids, remembered in the database so a redelivery or replay reaching any replica is
//! acknowledged without being handled again.

use time::OffsetDateTime;

use crate::app::Lineup;
use crate::error::{CoreError, CoreResult};
use crate::store::{self, now};

/// Expired ids deleted per call of [`Lineup::prune_inbound_seen`], so one sweep after a long
/// stop holds no lock for long; the next tick takes the rest.
pub const PRUNE_BATCH: i64 = 10_000;

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
        let now = now();
        Ok(store::seen_ids::first_time(self.store(), key, now, now + remember_for).await?)
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
