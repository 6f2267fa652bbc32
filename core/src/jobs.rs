//! Background jobs: the worker's periodic steps and scheduled per-tenant work (the usage sync
//! on each tenant's cron, the daily plan sync, the hourly provider reconciliation), placed on
//! the durable queue so that, with several replicas on one database, each step and tick runs
//! once. Tenants without a usable provider account get no syncs. Kinds whose work lives
//! outside core (chat delivery, email) run through [`ForeignJobs`].

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::app::Lineup;
use crate::audit::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::{JobId, TenantId};
use crate::store::{self, jobs::JobRow};

pub const USAGE_SYNC: &str = "usage_sync";
/// Refresh the tenant's plan catalogue from its provider account, once a day.
pub const PLAN_SYNC: &str = "plan_sync";
/// Core's periodic steps (see [`Lineup::schedule_steps`]).
pub const RESUME_IN_FLIGHT: &str = "resume_in_flight";
/// Queue the tenants' usage syncs due on their crons, today's plan syncs and this hour's
/// provider reconciliations.
pub const SCHEDULE_TENANT_JOBS: &str = "schedule_tenant_jobs";
pub const FREE_STALE_DOMAINS: &str = "free_stale_domains";
pub const DELETE_EXPIRED_SESSIONS: &str = "delete_expired_sessions";
/// Forget inbound chat ids (event ids, signatures) past their replay window.
pub const PRUNE_INBOUND_SEEN: &str = "prune_inbound_seen";
/// Order joiners' lines that are due (see `organisation::joiner`).
pub const ORDER_JOINER_LINES: &str = "order_joiner_lines";
/// Rebuild the chargeback rollups that usage or moves left out of date.
pub const REFRESH_CHARGEBACK_ROLLUPS: &str = "refresh_chargeback_rollups";
/// Roll up usage pages a sync stored but stopped before rolling up (see `spend::usage`).
pub const ROLL_UP_STAGED_USAGE: &str = "roll_up_staged_usage";
/// Delete periodic steps' rows a day after they finished.
pub const PRUNE_FINISHED_STEPS: &str = "prune_finished_steps";
/// How often the worker's periodic steps run, across all replicas together.
pub const TICK: Duration = Duration::seconds(30);
/// Match the provider's subscriptions to the tenant's lines, once an hour (see
/// `lines::line::reconcile`).
pub const PROVIDER_RECONCILE: &str = "provider_reconcile";
/// How long a claimed job may run before another worker may take it over.
const LEASE: Duration = Duration::minutes(10);
/// A step's lease is short: it is one pass over what is due, and the next tick runs it anyway.
const STEP_LEASE: Duration = Duration::minutes(2);
/// Dedupe keys of periodic steps start with this: `tick:<kind>:<unix time / TICK>`.
const STEP_KEY: &str = "tick:";
/// Finished steps are kept this long (for the operator to look at), then pruned.
const STEP_RETENTION: Duration = Duration::days(1);
/// At most this many rows go per prune: ~10 steps a tick make ~29,000 a day, 2,880 ticks.
const PRUNE_BATCH: i64 = 5_000;
const MAX_ATTEMPTS: i32 = 5;
/// Usage arrives late: each sync re-reads the last days (duplicates are free).
const USAGE_LOOKBACK_DAYS: i64 = 3;

/// The latest time at or before `now` that `cron` names (UTC), looking back up to a day.
pub fn latest_tick(cron: &str, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, String> {
    let schedule = cron::Schedule::from_str(cron)
        .map_err(|e| format!("{cron:?} is not a cron expression: {e}"))?;
    let start = chrono::DateTime::from_timestamp(now.unix_timestamp() - 86_400, 0)
        .ok_or("time out of range")?;
    let latest = schedule
        .after(&start)
        .take_while(|t| t.timestamp() <= now.unix_timestamp())
        .last();
    Ok(latest.and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()))
}

/// Runs the job kinds whose work lives outside core (chat delivery, email): implemented by
/// whoever composes core with the chat platforms and the mailer.
#[async_trait::async_trait]
pub trait ForeignJobs: Send + Sync {
    /// Run one job of `kind` at `now`; `None` when `kind` is not one of this runner's.
    async fn run(&self, kind: &str, now: OffsetDateTime) -> Option<CoreResult<()>>;
}

/// No foreign kinds: only core's own jobs run.
pub struct CoreJobsOnly;

#[async_trait::async_trait]
impl ForeignJobs for CoreJobsOnly {
    async fn run(&self, _kind: &str, _now: OffsetDateTime) -> Option<CoreResult<()>> {
        None
    }
}

/// A job a worker claimed and ran, and how it went (also recorded on the job's row).
#[derive(Debug)]
pub struct RanJob {
    pub kind: String,
    pub tenant_id: Option<TenantId>,
    pub outcome: CoreResult<()>,
}

/// The tenants whose invalid `usage_sync_cron` has been logged, with the reason: a lasting
/// mistake is logged once, not on every tick.
#[derive(Debug, Default)]
pub(crate) struct InvalidCrons(Mutex<HashMap<TenantId, String>>);

impl InvalidCrons {
    fn failed(&self, tenant: TenantId, reason: String) {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.get(&tenant) != Some(&reason) {
            tracing::warn!(%tenant, reason, "usage_sync_cron is invalid; usage is not synced");
            known.insert(tenant, reason);
        }
    }

    fn cleared(&self, tenant: TenantId) {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.remove(&tenant).is_some() {
            tracing::info!(%tenant, "usage_sync_cron is valid again");
        }
    }
}

/// The start of the tick bucket holding `now`, and the bucket's number.
fn tick_bucket(now: OffsetDateTime) -> (OffsetDateTime, i64) {
    let seconds = TICK.whole_seconds();
    let bucket = now.unix_timestamp().div_euclid(seconds);
    let start = OffsetDateTime::from_unix_timestamp(bucket * seconds).unwrap_or(now);
    (start, bucket)
}

impl Lineup {
    /// Queue one job per periodic step of `kinds` for the tick holding `now`. Every replica
    /// calls this every tick: the dedupe key (step and tick) lets one job exist per step and
    /// tick. A step gets one attempt; the next tick runs it again.
    pub async fn schedule_steps(&self, kinds: &[&str], now: OffsetDateTime) -> CoreResult<usize> {
        let (start, bucket) = tick_bucket(now);
        let mut tx = self.store().system().await?;
        let mut queued = 0;
        for kind in kinds {
            let job = JobRow {
                id: JobId::new(),
                tenant_id: None,
                kind: (*kind).to_owned(),
                payload: sqlx::types::Json(json!({ "tick": start.unix_timestamp() })),
                dedupe_key: Some(format!("{STEP_KEY}{kind}:{bucket}")),
                state: "queued".into(),
                run_at: start,
                attempts: 0,
                max_attempts: 1,
                last_error: None,
            };
            if store::jobs::enqueue(&mut tx, &job).await? {
                queued += 1;
            }
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Put back the jobs `worker` holds (it is stopping), so another worker takes them at
    /// once; the interrupted attempt is not counted.
    pub async fn release_jobs(&self, worker: &str) -> CoreResult<u64> {
        let mut tx = self.store().system().await?;
        let released = store::jobs::release(&mut tx, worker).await?;
        tx.commit().await?;
        Ok(released)
    }

    /// Queue each tenant's usage sync for its latest cron tick. Every replica may call this:
    /// the tick's dedupe key lets exactly one job exist per tenant and tick.
    pub async fn schedule_due_jobs(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let mut tx = self.store().system_read().await?;
        let tenants = store::jobs::list_tenants(&mut tx).await?;
        drop(tx);
        let mut queued = 0;
        for tenant in tenants {
            if !self.provider_status(tenant).await?.is_connected() {
                continue;
            }
            let settings = self.tenant(tenant).await?.settings;
            let tick = match latest_tick(&settings.usage_sync_cron, now) {
                Ok(Some(tick)) => tick,
                Ok(None) => continue,
                Err(reason) => {
                    self.invalid_crons().failed(tenant, reason);
                    continue;
                }
            };
            self.invalid_crons().cleared(tenant);
            let job = JobRow {
                id: JobId::new(),
                tenant_id: Some(tenant),
                kind: USAGE_SYNC.into(),
                payload: sqlx::types::Json(json!({ "tick": tick.unix_timestamp() })),
                dedupe_key: Some(format!("{USAGE_SYNC}:{tenant}:{}", tick.unix_timestamp())),
                state: "queued".into(),
                run_at: tick,
                attempts: 0,
                max_attempts: MAX_ATTEMPTS,
                last_error: None,
            };
            let mut tx = self.store().system().await?;
            if store::jobs::enqueue(&mut tx, &job).await? {
                queued += 1;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Queue each connected tenant's plan sync for today (one per tenant and UTC day,
    /// whichever replica asks first).
    pub async fn schedule_plan_syncs(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let day = now.date().to_string();
        self.enqueue_per_connected_tenant(PLAN_SYNC, json!({ "day": day }), &day, now)
            .await
    }

    /// Queue each connected tenant's provider reconciliation for this hour (one per tenant
    /// and UTC hour, whichever replica asks first).
    pub async fn schedule_reconciliations(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let hour = format!("{}T{:02}", now.date(), now.hour());
        self.enqueue_per_connected_tenant(PROVIDER_RECONCILE, json!({ "hour": hour }), &hour, now)
            .await
    }

    /// Queue a `kind` job due `now` for every tenant with a usable provider account, once
    /// per tenant and `bucket` (its dedupe key).
    async fn enqueue_per_connected_tenant(
        &self,
        kind: &str,
        payload: serde_json::Value,
        bucket: &str,
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        let mut tx = self.store().system_read().await?;
        let tenants = store::jobs::list_tenants(&mut tx).await?;
        drop(tx);
        let mut queued = 0;
        for tenant in tenants {
            if !self.provider_status(tenant).await?.is_connected() {
                continue;
            }
            let job = JobRow {
                id: JobId::new(),
                tenant_id: Some(tenant),
                kind: kind.into(),
                payload: sqlx::types::Json(payload.clone()),
                dedupe_key: Some(format!("{kind}:{tenant}:{bucket}")),
                state: "queued".into(),
                run_at: now,
                attempts: 0,
                max_attempts: MAX_ATTEMPTS,
                last_error: None,
            };
            let mut tx = self.store().system().await?;
            if store::jobs::enqueue(&mut tx, &job).await? {
                queued += 1;
            }
            tx.commit().await?;
        }
        Ok(queued)
    }

    /// Claim and run one due job of core's own kinds as `worker`; `false` when nothing was due.
    pub async fn run_next_job(&self, worker: &str, now: OffsetDateTime) -> CoreResult<bool> {
        Ok(self
            .run_next_job_with(worker, now, &CoreJobsOnly)
            .await?
            .is_some())
    }

    /// Claim and run one due job as `worker`, handing kinds core does not own to `foreign`;
    /// `None` when nothing was due.
    pub async fn run_next_job_with(
        &self,
        worker: &str,
        now: OffsetDateTime,
        foreign: &dyn ForeignJobs,
    ) -> CoreResult<Option<RanJob>> {
        let mut tx = self.store().system().await?;
        let lease = |job: &JobRow| {
            let is_step = job
                .dedupe_key
                .as_deref()
                .is_some_and(|key| key.starts_with(STEP_KEY));
            now + if is_step { STEP_LEASE } else { LEASE }
        };
        let Some(job) = store::jobs::claim(&mut tx, worker, now, lease).await? else {
            return Ok(None);
        };
        tx.commit().await?;
        let outcome = self.run_job(&job, now, foreign).await;
        let mut tx = self.store().system().await?;
        match &outcome {
            Ok(()) => store::jobs::finish(&mut tx, job.id, "done", None, None).await?,
            Err(e) if job.attempts < job.max_attempts => {
                // Exponential back-off: 1, 2, 4, 8… minutes.
                let retry_at = now + Duration::minutes(1 << (job.attempts - 1).clamp(0, 10));
                store::jobs::finish(
                    &mut tx,
                    job.id,
                    "queued",
                    Some(retry_at),
                    Some(&e.to_string()),
                )
                .await?;
            }
            Err(e) => {
                store::jobs::finish(&mut tx, job.id, "failed", None, Some(&e.to_string())).await?
            }
        }
        tx.commit().await?;
        Ok(Some(RanJob {
            kind: job.kind,
            tenant_id: job.tenant_id,
            outcome,
        }))
    }

    async fn run_job(
        &self,
        job: &JobRow,
        now: OffsetDateTime,
        foreign: &dyn ForeignJobs,
    ) -> CoreResult<()> {
        let tenant = || {
            job.tenant_id.ok_or_else(|| {
                CoreError::invalid("job", format!("{} job {} has no tenant", job.kind, job.id))
            })
        };
        match job.kind.as_str() {
            USAGE_SYNC => self.run_usage_sync(tenant()?, now).await,
            PLAN_SYNC => {
                let tenant = tenant()?;
                let plans = self.sync_plans(tenant, &Actor::System).await?;
                tracing::info!(%tenant, plans = plans.len(), "plans synced");
                Ok(())
            }
            RESUME_IN_FLIGHT => {
                let resumed = self.resume_in_flight().await?;
                if resumed > 0 {
                    tracing::info!(
                        operations = resumed,
                        "resumed in-flight provider operations"
                    );
                }
                Ok(())
            }
            SCHEDULE_TENANT_JOBS => {
                self.schedule_due_jobs(now).await?;
                self.schedule_plan_syncs(now).await?;
                self.schedule_reconciliations(now).await?;
                Ok(())
            }
            FREE_STALE_DOMAINS => {
                let freed = self.prune_stale_domain_claims(now).await?;
                if freed > 0 {
                    tracing::info!(domains = freed, "freed custom domains left unverified");
                }
                Ok(())
            }
            DELETE_EXPIRED_SESSIONS => {
                self.delete_expired_sessions(now).await?;
                Ok(())
            }
            PROVIDER_RECONCILE => self.reconcile_subscriptions(tenant()?).await.map(|_| ()),
            ORDER_JOINER_LINES => {
                let ordered = self.order_joiner_lines(now).await?;
                if ordered > 0 {
                    tracing::info!(lines = ordered, "ordered joiners' lines");
                }
                Ok(())
            }
            REFRESH_CHARGEBACK_ROLLUPS => {
                let rebuilt = self.refresh_chargeback_rollups().await?;
                if rebuilt > 0 {
                    tracing::info!(tenants = rebuilt, "rebuilt chargeback rollups");
                }
                Ok(())
            }
            ROLL_UP_STAGED_USAGE => {
                let counted = self.roll_up_all_staged_usage(now).await?;
                if counted > 0 {
                    tracing::info!(records = counted, "rolled up usage a sync left staged");
                }
                Ok(())
            }
            PRUNE_INBOUND_SEEN => {
                self.prune_inbound_seen(now).await?;
                Ok(())
            }
            PRUNE_FINISHED_STEPS => {
                let mut tx = self.store().system().await?;
                store::jobs::prune_finished(&mut tx, STEP_KEY, now - STEP_RETENTION, PRUNE_BATCH)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
            other => foreign.run(other, now).await.unwrap_or_else(|| {
                Err(CoreError::invalid(
                    "job",
                    format!("unknown job kind {other:?}"),
                ))
            }),
        }
    }

    async fn run_usage_sync(&self, tenant: TenantId, now: OffsetDateTime) -> CoreResult<()> {
        let today = now.date();
        // Rollover first: a new period's usage is checked against a clean slate.
        let rollover = self.rollover_guardrails(tenant, now).await?;
        let report = self
            .sync_usage_at(
                tenant,
                today - Duration::days(USAGE_LOOKBACK_DAYS),
                today,
                now,
            )
            .await?;
        self.apply_guardrail_actions(tenant).await?;
        tracing::info!(
            %tenant,
            recorded = report.recorded,
            duplicates = report.duplicates,
            alerts = report.alerts,
            resumed = rollover.resumed,
            "usage synced"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn finds_the_latest_tick_at_or_before_now() {
        let now = datetime!(2026-11-24 10:17:30 UTC);
        assert_eq!(
            latest_tick("0 0 * * * *", now),
            Ok(Some(datetime!(2026-11-24 10:00:00 UTC)))
        );
        assert_eq!(
            latest_tick("0 */15 * * * *", now),
            Ok(Some(datetime!(2026-11-24 10:15:00 UTC)))
        );
        assert!(
            latest_tick("every hour", now)
                .unwrap_err()
                .contains("not a cron expression")
        );
    }
}
