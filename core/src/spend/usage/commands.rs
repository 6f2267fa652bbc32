//! Usage commands and queries: record and sync usage (each batch priced, rolled up and
//! checked against the guardrails in one transaction), a line's daily usage, and spend views.

use time::{Date, OffsetDateTime};

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::{LineId, TenantId};
use crate::provider::{UsageQuery, UsageRecord};
use crate::spend::guardrail;
use crate::store;
use crate::store::usage::{DailyUsage, SpendRow, Stored};

impl Lineup {
    /// Record provider usage for `tenant` in one transaction (see the module notes).
    /// Re-running a batch changes nothing.
    pub async fn record_usage(
        &self,
        tenant: TenantId,
        records: &[UsageRecord],
    ) -> CoreResult<UsageReport> {
        self.record_usage_at(tenant, records, store::now()).await
    }

    /// `record_usage` as of `now`: which billing period is current for guardrail actions.
    pub async fn record_usage_at(
        &self,
        tenant: TenantId,
        records: &[UsageRecord],
        now: OffsetDateTime,
    ) -> CoreResult<UsageReport> {
        let ctx = self.usage_context(tenant).await?;
        Ok(self.record_batch(tenant, &ctx, records, now).await?.0)
    }

    /// What every batch of a sync reads the same: the records' provider and the tenant's
    /// lines, owners and plan prices (`UsagePipeline` keeps it for the whole sync).
    pub(crate) async fn usage_context(&self, tenant: TenantId) -> CoreResult<SyncContext> {
        let provider = self.provider_for(tenant).await?.name();
        let mut tx = self.tenant_read_tx(tenant).await?;
        let usage = UsageContext::load(&mut tx, tenant).await?;
        drop(tx);
        Ok(SyncContext { provider, usage })
    }

    /// Records one batch in its own transaction, with a context read before it; also says
    /// whether guardrail actions changed lines (the context's line states are then out of
    /// date).
    pub(crate) async fn record_batch(
        &self,
        tenant: TenantId,
        sync: &SyncContext,
        records: &[UsageRecord],
        now: OffsetDateTime,
    ) -> CoreResult<(UsageReport, bool)> {
        let ctx = &sync.usage;
        let mut tx = self.tenant_tx(tenant).await?;
        let mut report = UsageReport::default();
        let mut rows = ctx.new_rows(sync.provider, records, &mut report);
        let offered = rows.len();
        if let Stored::Only(stored) = store::usage::insert_records(&mut tx, tenant, &rows).await? {
            rows.retain(|r| stored.contains(&r.dedupe_key));
        }
        report.duplicates += offered - rows.len();
        report.recorded = rows.len();
        let days = daily_usage_of(&rows);
        let spike_days =
            store::usage::add_days(&mut tx, tenant, &days, guardrail::SPIKE_FLOOR_BYTES).await?;
        let usage_findings = self
            .check_usage(&mut tx, tenant, ctx, &rows, &spike_days, now)
            .await?;
        // Everything above may overlap another batch of this tenant's (a (line, day) row two
        // batches share is simply locked by the first). Months, the tenant's days and
        // periods, which nearly every batch shares, take turns, and each batch checks its caps against spend that
        // includes every earlier batch.
        store::usage::lock_rollups(&mut tx, tenant).await?;
        store::reports::add_rollups(&mut tx, tenant, &days).await?;
        add_periods(&mut tx, tenant, ctx, &rows).await?;
        let found = self
            .check_budgets_and_record(&mut tx, tenant, ctx, &rows, usage_findings, now)
            .await?;
        report.alerts = found.alerts;
        tx.commit().await?;
        if found.actions > 0 {
            self.apply_guardrail_actions(tenant).await?;
        }
        Ok((report, found.actions > 0))
    }

    /// Pull usage between two days (inclusive) from the provider, in transactions of about
    /// `INGEST_BATCH` records. An interrupted sync is simply run again: records already
    /// stored count as duplicates.
    pub async fn sync_usage(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
    ) -> CoreResult<UsageReport> {
        self.sync_usage_at(tenant, from, to, store::now()).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, from = %from, to = %to))]
    pub async fn sync_usage_at(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
        now: OffsetDateTime,
    ) -> CoreResult<UsageReport> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let connections = store::provider_connections::list(&mut tx, tenant).await?;
        drop(tx);
        // Each of the tenant's providers reports the usage of the lines ordered through it.
        let mut providers = Vec::new();
        if connections.is_empty() {
            providers.push(self.provider_for(tenant).await?);
        }
        for connection in &connections {
            providers.push(
                self.provider_of_connection(tenant, Some(connection.id))
                    .await?,
            );
        }
        let mut pipeline = UsagePipeline::new(self, tenant, now);
        let mut batch = Vec::new();
        let mut fetched = Ok(());
        for provider in providers {
            let mut query = UsageQuery {
                from,
                to,
                subscription_id: None,
                cursor: None,
            };
            for _ in 0..MAX_PAGES {
                let page = match provider.usage(&query).await {
                    Ok(page) => page,
                    Err(e) => {
                        fetched = Err(e);
                        break;
                    }
                };
                batch.extend(page.items);
                if batch.len() >= INGEST_BATCH {
                    pipeline.push(std::mem::take(&mut batch)).await?;
                }
                match page.next_cursor {
                    Some(cursor) => query.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        // Pages fetched before a provider failure are recorded all the same: the rerun finds
        // them stored and skips them.
        pipeline.push(batch).await?;
        let report = pipeline.finish().await?;
        fetched?;
        Ok(report)
    }

    /// Per-day usage of one line, oldest first.
    pub async fn daily_usage(&self, tenant: TenantId, line: LineId) -> CoreResult<Vec<DailyUsage>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::usage::daily_for_line(&mut tx, tenant, line).await?)
    }

    /// Spend per billing period, added up per line, employee, team, cost centre or tenant.
    pub async fn spend(
        &self,
        tenant: TenantId,
        grouping: SpendGrouping,
        filter: &SpendFilter,
    ) -> CoreResult<Vec<SpendRow>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::usage::spend_by(&mut tx, tenant, grouping, filter).await?)
    }
}
