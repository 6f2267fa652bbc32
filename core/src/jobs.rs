//! Background jobs: scheduled per-tenant work (the usage sync on each tenant's cron, the daily
//! plan sync, the hourly provider reconciliation) placed on the durable queue so that, with several replicas on one database,
//! each tick runs once. Tenants without a usable provider account get neither.

use std::str::FromStr;

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
/// Match the provider's subscriptions to the tenant's lines, once an hour (see
/// `lines::line::reconcile`).
pub const PROVIDER_RECONCILE: &str = "provider_reconcile";
/// How long a claimed job may run before another worker may take it over.
const LEASE: Duration = Duration::minutes(10);
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

impl Lineup {
    /// Queue each tenant's usage sync for its latest cron tick. Every replica may call this:
    /// the tick's dedupe key lets exactly one job exist per tenant and tick.
    pub async fn schedule_due_jobs(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let mut tx = self.store().system().await?;
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
                    tracing::warn!(%tenant, reason, "usage_sync_cron is invalid; skipping");
                    continue;
                }
            };
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
        let mut tx = self.store().system().await?;
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

    /// Claim and run one due job as `worker`; `false` when nothing was due.
    pub async fn run_next_job(&self, worker: &str, now: OffsetDateTime) -> CoreResult<bool> {
        let mut tx = self.store().system().await?;
        let Some(job) = store::jobs::claim(&mut tx, worker, now, now + LEASE).await? else {
            return Ok(false);
        };
        tx.commit().await?;
        let outcome = self.run_job(&job, now).await;
        let mut tx = self.store().system().await?;
        match outcome {
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
        Ok(true)
    }

    async fn run_job(&self, job: &JobRow, now: OffsetDateTime) -> CoreResult<()> {
        let tenant: TenantId = job.tenant_id.ok_or_else(|| {
            CoreError::invalid("job", format!("{} job {} has no tenant", job.kind, job.id))
        })?;
        match job.kind.as_str() {
            USAGE_SYNC => {
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
            PLAN_SYNC => {
                let plans = self.sync_plans(tenant, &Actor::System).await?;
                tracing::info!(%tenant, plans = plans.len(), "plans synced");
                Ok(())
            }
            PROVIDER_RECONCILE => self.reconcile_subscriptions(tenant).await.map(|_| ()),
            other => Err(CoreError::invalid(
                "job",
                format!("unknown job kind {other:?}"),
            )),
        }
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
