//! Usage: records pulled from the provider, each counted once, priced, rolled up per line and
//! day and per line and billing period, then checked against the guardrails. A sync stores
//! each page of records in its own transaction and rolls several pages up together in
//! another (`UsagePipeline`); a page stays marked staged until its rollup commits, so a sync
//! killed mid-way loses nothing (the worker rolls up what it left) and, run again, counts
//! nothing twice.
//!
//! Late and out-of-order records: a record counts in the day and period it *started* in, and a
//! period's overage is priced from the period's bundle total after every batch (see
//! `pricing`), so arrival order never changes what a period costs.

pub mod commands;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::app::{Lineup, required};
use crate::error::CoreResult;
use crate::ids::{CostCentreId, LineId, PlanId, StagedUsageId, TeamId, TenantId};
use crate::organisation::tenant::Tenant;
use crate::provider::{Roaming, UsageRecord};
use crate::spend::guardrail::Owner;
use crate::spend::pricing::{Charge, PlanPricing, billing_period};
use crate::store::lines::LineOwner;
use crate::store::usage::{DailyUsage, SpendDelta, UsageRow};
use crate::store::{self, Tx};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// New records, now counted in the rollups.
    pub recorded: usize,
    /// Records seen before (a re-delivery, an overlapping or resumed sync): not counted again.
    pub duplicates: usize,
    /// Records for subscriptions that are not this tenant's lines.
    pub unknown_lines: usize,
    /// Alerts the new usage raised.
    pub alerts: usize,
}

impl std::ops::AddAssign for UsageReport {
    fn add_assign(&mut self, other: Self) {
        self.recorded += other.recorded;
        self.duplicates += other.duplicates;
        self.unknown_lines += other.unknown_lines;
        self.alerts += other.alerts;
    }
}

/// Most pages a sync follows, so a provider that keeps returning `next` cannot loop forever.
const MAX_PAGES: usize = 10_000;

/// Records a sync stores per transaction: it gathers the provider's pages up to this many. The
/// per-(line, month) work is paid per rollup (`ROLL_UP_AT`), not per page, so pages can be
/// small: each holds the write lock briefly (SQLite) and stores while the previous pages roll
/// up (PostgreSQL).
pub const INGEST_BATCH: usize = 10_000;

/// The tenant's lines, owners and plan prices: what pricing and guardrails need, read once
/// per sync (`UsagePipeline`) and again after a batch's guardrail actions changed lines.
pub(crate) struct UsageContext {
    pub tenant: Tenant,
    pub lines: HashMap<LineId, LineOwner>,
    pub by_subscription: HashMap<String, LineId>,
    pub pricing: HashMap<PlanId, PlanPricing>,
}

impl UsageContext {
    pub async fn load(tx: &mut Tx, tenant: TenantId) -> CoreResult<Self> {
        let tenant_row = required(store::tenants::get(tx, tenant).await?, "tenant", tenant)?;
        let lines: HashMap<LineId, LineOwner> = store::lines::list_with_owners(tx, tenant)
            .await?
            .into_iter()
            .map(|l| (l.line_id, l))
            .collect();
        let by_subscription = lines
            .values()
            .filter_map(|l| Some((l.provider_subscription_id.clone()?, l.line_id)))
            .collect();
        let pricing = store::plans::list(tx, tenant)
            .await?
            .iter()
            .map(|p| (p.id, PlanPricing::of(p)))
            .collect();
        Ok(Self {
            tenant: tenant_row,
            lines,
            by_subscription,
            pricing,
        })
    }

    /// The records as rows to store, priced: those of this tenant's lines, each key once
    /// (`report` counts the rest).
    fn new_rows(
        &self,
        provider: &str,
        records: &[UsageRecord],
        report: &mut UsageReport,
    ) -> Vec<UsageRow> {
        let mut seen: HashSet<&str> = HashSet::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let Some(line_id) = self.by_subscription.get(&record.subscription_id).copied() else {
                report.unknown_lines += 1;
                continue;
            };
            if !seen.insert(&record.dedupe_key) {
                report.duplicates += 1;
                continue;
            }
            let mut row = UsageRow {
                dedupe_key: format!("{provider}:{}", record.dedupe_key),
                line_id,
                started_at: record.started_at,
                ended_at: record.ended_at,
                data_bytes: record.data_bytes,
                sms: record.sms,
                voice_seconds: record.voice_seconds,
                country: record.country.clone(),
                roaming: record.roaming == Roaming::International,
                cost_minor: 0,
                observed_at: record.observed_at,
            };
            row.cost_minor = self.charge(&row).cost_minor();
            rows.push(row);
        }
        rows
    }

    pub fn owner(&self, line: LineId) -> Option<Owner> {
        self.lines.get(&line).map(owner_of)
    }

    pub fn pricing_of(&self, line: LineId) -> Option<&PlanPricing> {
        self.pricing.get(&self.lines.get(&line)?.plan_id)
    }

    pub fn charge(&self, row: &UsageRow) -> Charge {
        match self.pricing_of(row.line_id) {
            Some(p) => p.charge(row.roaming, row.country.as_deref(), row.data_bytes),
            None => Charge::Bundle,
        }
    }
}

/// What a sync reads once for all its batches: the provider the records come from (their
/// keys are stored as `provider:key`) and the tenant's lines, owners and plan prices.
pub(crate) struct SyncContext {
    pub provider: &'static str,
    pub usage: UsageContext,
}

pub(crate) fn owner_of(line: &LineOwner) -> Owner {
    Owner {
        employee: line.employee_id,
        team: line.team_id,
        cost_centre: line.cost_centre_id,
    }
}

pub(crate) fn utc_day(at: OffsetDateTime) -> Date {
    at.to_offset(UtcOffset::UTC).date()
}

/// A page of records stored by `store_page`, not yet (or, in `record_usage_at`'s one
/// transaction, about to be) rolled up.
pub(crate) struct StoredPage {
    /// The records stored now: keys seen before are not among them.
    pub rows: Vec<UsageRow>,
    pub report: UsageReport,
    /// Line actions the page's roaming planned.
    pub actions: usize,
}

/// A page stored in its own transaction and marked staged (`store::staged_usage`) until
/// the rollup that counts it.
pub(crate) struct StagedPage {
    pub id: StagedUsageId,
    pub page: StoredPage,
}

/// A staged page older than this is taken as left behind: the worker rolls it up. A sync's own
/// pages normally wait seconds for its next rollup; a page the worker takes first (from a
/// sync stalled on a slow provider, say) is skipped by the sync's rollup, so nothing counts
/// twice either way.
pub const STAGED_GRACE: Duration = Duration::minutes(1);

/// Records a pipeline stores before it rolls them up together: the rollup's per-(line, month)
/// work (months, periods, caps) costs about the same for 10,000 records as for 100,000.
pub const ROLL_UP_AT: usize = 100_000;

/// Most records stored and waiting while a rollup runs before the pipeline waits for it,
/// which bounds a sync's memory.
const MAX_STAGED: usize = 200_000;

/// Pages a pipeline stores at once on PostgreSQL.
const STORING_DEPTH: usize = 2;

type RollUp = tokio::task::JoinHandle<CoreResult<(usize, bool)>>;

/// Records a stream of pages for one tenant: each page is stored (with its roaming judged) in
/// its own transaction, and the stored pages are rolled up — days, months, periods, spikes and
/// caps — several at a time in another (`Lineup::roll_up_pages`). On PostgreSQL pages are
/// stored while the previous ones roll up, so the database works on more than one core;
/// SQLite writes one transaction at a time, so there each step waits for the one before.
///
/// Pages share one `SyncContext`, read before the first: lines, owners and plans are the
/// sync's, as they were when it started, like one large batch's. Guardrail actions that
/// changed lines have it read again for the pages after them; spend, alerts, caps and
/// presets are read by every transaction itself.
pub struct UsagePipeline {
    lineup: Lineup,
    tenant: TenantId,
    now: OffsetDateTime,
    overlap: bool,
    context: Option<Arc<SyncContext>>,
    storing: VecDeque<tokio::task::JoinHandle<CoreResult<StagedPage>>>,
    staged: Vec<StagedPage>,
    staged_rows: usize,
    rolling: Option<RollUp>,
    roll_up_at: usize,
    report: UsageReport,
}

impl UsagePipeline {
    pub fn new(lineup: &Lineup, tenant: TenantId, now: OffsetDateTime) -> Self {
        Self {
            lineup: lineup.clone(),
            tenant,
            now,
            overlap: lineup.store().backend() == store::Backend::Postgres,
            context: None,
            storing: VecDeque::new(),
            staged: Vec::new(),
            staged_rows: 0,
            rolling: None,
            roll_up_at: ROLL_UP_AT,
            report: UsageReport::default(),
        }
    }

    /// Rolls up once at least `records` are stored (`ROLL_UP_AT` unless told).
    pub fn rolling_up_at(mut self, records: usize) -> Self {
        self.roll_up_at = records.max(1);
        self
    }

    /// Stores `records` as a page, and starts a rollup when enough pages wait for one.
    pub async fn push(&mut self, records: Vec<UsageRecord>) -> CoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let context = self.context().await?;
        let (lineup, tenant, now) = (self.lineup.clone(), self.tenant, self.now);
        if !self.overlap {
            let page = lineup.stage_page(tenant, &context, &records, now).await?;
            self.add_staged(page);
            if self.staged_rows >= self.roll_up_at {
                self.start_rollup().await?;
                self.wait_for_rollup().await?;
            }
            return Ok(());
        }
        self.storing.push_back(tokio::spawn(async move {
            lineup.stage_page(tenant, &context, &records, now).await
        }));
        while self.storing.len() >= STORING_DEPTH {
            let oldest = self.storing.pop_front().expect("a page is being stored");
            let page = joined(oldest).await?;
            self.add_staged(page);
        }
        if self.rolling.as_ref().is_some_and(|r| r.is_finished()) {
            self.wait_for_rollup().await?;
        }
        // A rollup starts when enough pages wait and none is running, or when so many wait
        // that the pipeline must wait for the running one first.
        if self.staged_rows >= self.roll_up_at
            && (self.rolling.is_none() || self.staged_rows >= MAX_STAGED.max(self.roll_up_at))
        {
            self.start_rollup().await?;
        }
        Ok(())
    }

    /// The sync's context, read again if guardrail actions changed lines since.
    async fn context(&mut self) -> CoreResult<Arc<SyncContext>> {
        if let Some(context) = &self.context {
            return Ok(Arc::clone(context));
        }
        let context = Arc::new(self.lineup.usage_context(self.tenant).await?);
        self.context = Some(Arc::clone(&context));
        Ok(context)
    }

    fn add_staged(&mut self, staged: StagedPage) {
        self.report += staged.page.report;
        if staged.page.actions > 0 {
            self.context = None;
        }
        self.staged_rows += staged.page.rows.len();
        self.staged.push(staged);
    }

    /// Starts rolling up every staged page, once the rollup running (if any) has finished.
    async fn start_rollup(&mut self) -> CoreResult<()> {
        self.wait_for_rollup().await?;
        if self.staged.is_empty() {
            return Ok(());
        }
        let context = self.context().await?;
        let pages = std::mem::take(&mut self.staged);
        self.staged_rows = 0;
        let (lineup, tenant, now) = (self.lineup.clone(), self.tenant, self.now);
        self.rolling = Some(tokio::spawn(async move {
            lineup
                .roll_up_pages(tenant, &context.usage, pages, now)
                .await
        }));
        Ok(())
    }

    /// Waits for the running rollup (if any) and adds its alerts; lines its guardrails acted
    /// on are read again for the next page.
    async fn wait_for_rollup(&mut self) -> CoreResult<()> {
        if let Some(rolling) = self.rolling.take() {
            let (alerts, lines_changed) = joined(rolling).await?;
            self.report.alerts += alerts;
            if lines_changed {
                self.context = None;
            }
        }
        Ok(())
    }

    /// Stores and rolls up what is left; the report covers every page.
    pub async fn finish(mut self) -> CoreResult<UsageReport> {
        while let Some(page) = self.storing.pop_front() {
            let page = joined(page).await?;
            self.add_staged(page);
        }
        self.start_rollup().await?;
        self.wait_for_rollup().await?;
        // The export finance runs after a sync reads the rollup, not every line's months. The
        // usage is committed either way: a failed rebuild is the worker's to retry, not the
        // sync's failure.
        if self.report.recorded > 0
            && let Err(e) = self.lineup.refresh_chargeback_rollup(self.tenant).await
        {
            tracing::warn!(tenant = %self.tenant, error = %e, "chargeback rollup not rebuilt");
        }
        Ok(self.report)
    }
}

/// A batch's outcome; a batch that panicked panics here too.
async fn joined<T>(batch: tokio::task::JoinHandle<CoreResult<T>>) -> CoreResult<T> {
    batch
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// What the records add to each (line, day), in one fixed order (newest day first), so two
/// writers of the same rows take their locks in the same order and never deadlock.
fn daily_usage_of(rows: &[UsageRow]) -> Vec<DailyUsage> {
    let mut days: BTreeMap<(Reverse<Date>, LineId), DailyUsage> = BTreeMap::new();
    for row in rows {
        let day = utc_day(row.started_at);
        let daily = days
            .entry((Reverse(day), row.line_id))
            .or_insert(DailyUsage {
                line_id: row.line_id,
                day,
                data_bytes: 0,
                roaming_bytes: 0,
                sms: 0,
                voice_seconds: 0,
                cost_minor: 0,
            });
        daily.data_bytes += row.data_bytes;
        daily.roaming_bytes += if row.roaming { row.data_bytes } else { 0 };
        daily.sms += row.sms;
        daily.voice_seconds += row.voice_seconds;
        daily.cost_minor += row.cost_minor;
    }
    days.into_values().collect()
}

/// Adds new records to their lines' billing periods, then prices each touched period's
/// overage from its new bundle total.
async fn add_periods(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
) -> CoreResult<()> {
    let mut periods: BTreeMap<(LineId, String), SpendDelta> = BTreeMap::new();
    for row in rows {
        let Some(line) = ctx.lines.get(&row.line_id) else {
            continue;
        };
        let price = ctx.pricing_of(row.line_id).map_or(0, |p| p.price_minor);
        let period = billing_period(utc_day(row.started_at));
        let delta = periods
            .entry((row.line_id, period.clone()))
            .or_insert(SpendDelta {
                line_id: row.line_id,
                period,
                employee_id: line.employee_id,
                team_id: line.team_id,
                cost_centre_id: line.cost_centre_id,
                plan_price_minor: price,
                bundle_bytes: 0,
                roaming_bytes: 0,
                roaming_minor: 0,
            });
        match ctx.charge(row) {
            Charge::Bundle => delta.bundle_bytes += row.data_bytes,
            Charge::Roaming { cost_minor, .. } => {
                delta.roaming_bytes += row.data_bytes;
                delta.roaming_minor += cost_minor;
            }
        }
    }
    let deltas: Vec<SpendDelta> = periods.into_values().collect();
    let totals = store::usage::add_line_spend(tx, tenant, &deltas).await?;
    let changed: Vec<(LineId, String, i64)> = totals
        .into_iter()
        .filter_map(|t| {
            let overage = ctx
                .pricing_of(t.line_id)
                .map_or(0, |p| p.overage_minor(t.bundle_bytes));
            (overage != t.overage_minor).then_some((t.line_id, t.period, overage))
        })
        .collect();
    store::usage::set_overage(tx, tenant, &changed).await?;
    Ok(())
}

/// What the spend views add up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGrouping {
    Line,
    Employee,
    Team,
    CostCentre,
    Tenant,
}

/// Which periods and part of the organisation a spend view covers; `None` is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendFilter {
    /// First and last period (`YYYY-MM`), inclusive.
    pub from_period: Option<String>,
    pub to_period: Option<String>,
    pub team: Option<TeamId>,
    pub cost_centre: Option<CostCentreId>,
}
