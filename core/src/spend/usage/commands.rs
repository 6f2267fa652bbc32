//! Usage commands and queries: record and sync usage (pages stored in transactions of their
//! own, then priced totals rolled up and checked against the guardrails several pages at a
//! time; see the module notes), a line's daily usage, and spend views.

use std::collections::HashSet;

use time::{Date, OffsetDateTime};

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::{LineId, StagedUsageId, TenantId};
use crate::provider::{UsageQuery, UsageRecord};
use crate::spend::guardrail;
use crate::spend::guardrail::commands::Recorded;
use crate::store::usage::{DailyUsage, SpendRow, Stored, UsageRow};
use crate::store::{self, Tx};

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

    /// `record_usage` as of `now`: which billing period is current for guardrail actions. The
    /// records are stored and rolled up in one transaction.
    pub async fn record_usage_at(
        &self,
        tenant: TenantId,
        records: &[UsageRecord],
        now: OffsetDateTime,
    ) -> CoreResult<UsageReport> {
        let sync = self.usage_context(tenant).await?;
        let mut tx = self.tenant_tx(tenant).await?;
        let page = self
            .store_page(&mut tx, tenant, &sync, records, now)
            .await?;
        store::usage::lock_rollups(&mut tx, tenant).await?;
        let rolled = self
            .roll_up(&mut tx, tenant, &sync.usage, &page.rows, now)
            .await?;
        self.commit_and_act(tx, tenant, page.actions + rolled.actions)
            .await?;
        let mut report = page.report;
        report.alerts += rolled.alerts;
        Ok(report)
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

    /// Stores a page of records in its own transaction, marked as staged: counted in no
    /// rollup yet. `roll_up_pages` counts it later with other pages; if the sync stops first,
    /// the worker does (`roll_up_staged_usage`).
    pub(crate) async fn stage_page(
        &self,
        tenant: TenantId,
        sync: &SyncContext,
        records: &[UsageRecord],
        now: OffsetDateTime,
    ) -> CoreResult<StagedPage> {
        let mut tx = self.tenant_tx(tenant).await?;
        let page = self.store_page(&mut tx, tenant, sync, records, now).await?;
        let id = StagedUsageId::new();
        if !page.rows.is_empty() {
            let keys: Vec<&str> = page.rows.iter().map(|r| r.dedupe_key.as_str()).collect();
            store::staged_usage::stage(&mut tx, tenant, id, &keys, store::now()).await?;
        }
        self.commit_and_act(tx, tenant, page.actions).await?;
        Ok(StagedPage { id, page })
    }

    /// Rolls up staged pages in one transaction: those no other rollup (the worker's, after a
    /// stall) claimed first. Returns the alerts raised and whether guardrail actions changed
    /// lines.
    pub(crate) async fn roll_up_pages(
        &self,
        tenant: TenantId,
        ctx: &UsageContext,
        pages: Vec<StagedPage>,
        now: OffsetDateTime,
    ) -> CoreResult<(usize, bool)> {
        let staged: Vec<StagedUsageId> = pages
            .iter()
            .filter(|p| !p.page.rows.is_empty())
            .map(|p| p.id)
            .collect();
        if staged.is_empty() {
            return Ok((0, false));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        store::usage::lock_rollups(&mut tx, tenant).await?;
        let claimed: HashSet<StagedUsageId> = store::staged_usage::claim(&mut tx, tenant, &staged)
            .await?
            .into_iter()
            .collect();
        let claimed_pages: Vec<StagedPage> = pages
            .into_iter()
            .filter(|p| claimed.contains(&p.id))
            .collect();
        // Sized up front: grown row by row, 100,000 rows were copied over and over into
        // fresh memory, a few per cent of ingest (issue 14).
        let mut rows: Vec<UsageRow> =
            Vec::with_capacity(claimed_pages.iter().map(|p| p.page.rows.len()).sum());
        for page in claimed_pages {
            rows.extend(page.page.rows);
        }
        let rolled = self.roll_up(&mut tx, tenant, ctx, &rows, now).await?;
        self.commit_and_act(tx, tenant, rolled.actions).await?;
        Ok((rolled.alerts, rolled.actions > 0))
    }

    /// Rolls up `tenant`'s pages staged before `staged_before`, with guardrails as of `now`:
    /// pages left behind by a sync that stopped (or stalled) between storing a page and rolling
    /// it up. Returns how many records were counted.
    pub async fn roll_up_staged_usage(
        &self,
        tenant: TenantId,
        staged_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        let mut tx = self.tenant_tx(tenant).await?;
        store::usage::lock_rollups(&mut tx, tenant).await?;
        let keys = store::staged_usage::claim_staged_before(&mut tx, tenant, staged_before).await?;
        if keys.is_empty() {
            return Ok(0);
        }
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let rows = store::usage::records_with_keys(&mut tx, tenant, &keys).await?;
        let rolled = self.roll_up(&mut tx, tenant, &ctx, &rows, now).await?;
        self.commit_and_act(tx, tenant, rolled.actions).await?;
        self.refresh_chargeback_rollup(tenant).await?;
        Ok(rows.len())
    }

    /// The worker's step: every tenant's pages staged more than `STAGED_GRACE` ago rolled up
    /// (`roll_up_staged_usage`). Returns how many records were counted.
    pub async fn roll_up_all_staged_usage(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let staged_before = now - STAGED_GRACE;
        let tenants = {
            let mut tx = self.store().system_read().await?;
            store::staged_usage::tenants_staged_before(&mut tx, staged_before).await?
        };
        let mut counted = 0;
        for tenant in tenants {
            counted += self
                .roll_up_staged_usage(tenant, staged_before, now)
                .await?;
        }
        Ok(counted)
    }

    /// How many pages of `tenant`'s usage are stored but not yet rolled up (for operators and
    /// tests: a number that stays above zero means rollups are failing).
    pub async fn staged_usage_pages(&self, tenant: TenantId) -> CoreResult<usize> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::staged_usage::count(&mut tx, tenant).await?)
    }

    /// Commits a usage transaction, then carries out the line actions its guardrails planned
    /// (they call the provider, so never inside the transaction).
    async fn commit_and_act(&self, tx: Tx, tenant: TenantId, planned: usize) -> CoreResult<()> {
        tx.commit().await?;
        if planned > 0 {
            self.apply_guardrail_actions(tenant).await?;
        }
        Ok(())
    }

    /// Stores the records never seen before (priced, each key once) and judges their roaming,
    /// in `tx`.
    async fn store_page(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        sync: &SyncContext,
        records: &[UsageRecord],
        now: OffsetDateTime,
    ) -> CoreResult<StoredPage> {
        let ctx = &sync.usage;
        let mut report = UsageReport::default();
        let mut rows = ctx.new_rows(sync.provider, records, &mut report);
        let offered = rows.len();
        if let Stored::Only(stored) = store::usage::insert_records(tx, tenant, &rows).await? {
            rows.retain(|r| stored.contains(&r.dedupe_key));
        }
        report.duplicates += offered - rows.len();
        report.recorded = rows.len();
        let roaming = self
            .check_roaming_and_record(tx, tenant, ctx, &rows, now)
            .await?;
        report.alerts = roaming.alerts;
        Ok(StoredPage {
            rows,
            report,
            actions: roaming.actions,
        })
    }

    /// Adds stored `rows` to the rollups — (line, day), the months, the tenant's days, the
    /// billing periods — and checks spikes and caps against the new totals, in `tx`, which
    /// holds the tenant's rollup lock (so each rollup checks its caps against spend that
    /// includes every earlier one).
    async fn roll_up(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ctx: &UsageContext,
        rows: &[UsageRow],
        now: OffsetDateTime,
    ) -> CoreResult<Recorded> {
        if rows.is_empty() {
            return Ok(Recorded::default());
        }
        let days = daily_usage_of(rows);
        let spike_days =
            store::usage::add_days(tx, tenant, &days, guardrail::SPIKE_FLOOR_BYTES).await?;
        let spikes = self.check_spikes(tx, tenant, ctx, &spike_days).await?;
        store::reports::add_rollups(tx, tenant, &days).await?;
        add_periods(tx, tenant, ctx, rows).await?;
        self.check_budgets_and_record(tx, tenant, ctx, rows, spikes, now)
            .await
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
