//! Usage: records pulled from the provider, each counted once, priced, rolled up per line and
//! day and per line and billing period, then checked against the guardrails — one
//! transaction per batch, so a sync killed mid-way and run again ends with the same totals.
//!
//! Late and out-of-order records: a record counts in the day and period it *started* in, and a
//! period's overage is priced from the period's bundle total after every batch (see
//! `pricing`), so arrival order never changes what a period costs.

pub mod commands;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use time::{Date, OffsetDateTime, UtcOffset};

use crate::app::{Lineup, required};
use crate::error::CoreResult;
use crate::ids::{CostCentreId, LineId, PlanId, TeamId, TenantId};
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

/// Records per ingest transaction: a sync gathers pages up to this many. Large enough that the
/// per-batch work (loading the tenant's lines, summing spend per cap) is paid rarely and each
/// (line, day) row is updated once for many records; small enough that a batch commits in
/// well under a second.
pub const INGEST_BATCH: usize = 100_000;

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

/// Batches a pipeline keeps in flight: one rolling up, one waiting for its turn with its records
/// stored, one storing its records.
const PIPELINE_DEPTH: usize = 3;

/// Records a stream of batches for one tenant, each in its own transaction (`record_usage_at`).
/// On PostgreSQL later batches store their records while an earlier one rolls up and checks
/// its caps (rollups take turns, see `store::usage::lock_rollups`), so the database works on
/// more than one core; SQLite writes one transaction at a time, so there batches simply follow
/// each other.
///
/// The batches share one `SyncContext`, read before the first: lines, owners and plans are
/// the sync's, as they were when it started, like one large batch's. A batch whose guardrail
/// actions changed lines has it read again for the batches after it; spend, alerts, caps and
/// presets are read by every batch in its own transaction.
pub struct UsagePipeline {
    lineup: Lineup,
    tenant: TenantId,
    now: OffsetDateTime,
    overlap: bool,
    context: Option<Arc<SyncContext>>,
    in_flight: VecDeque<tokio::task::JoinHandle<CoreResult<(UsageReport, bool)>>>,
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
            in_flight: VecDeque::new(),
            report: UsageReport::default(),
        }
    }

    /// Starts recording `records`; returns once fewer than `PIPELINE_DEPTH` batches are in
    /// flight, waiting for the oldest if need be.
    pub async fn push(&mut self, records: Vec<UsageRecord>) -> CoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let context = match &self.context {
            Some(context) => Arc::clone(context),
            None => {
                let context = Arc::new(self.lineup.usage_context(self.tenant).await?);
                self.context = Some(Arc::clone(&context));
                context
            }
        };
        if !self.overlap {
            let batch = self
                .lineup
                .record_batch(self.tenant, &context, &records, self.now)
                .await?;
            self.count(batch);
            return Ok(());
        }
        let (lineup, tenant, now) = (self.lineup.clone(), self.tenant, self.now);
        self.in_flight.push_back(tokio::spawn(async move {
            lineup.record_batch(tenant, &context, &records, now).await
        }));
        while self.in_flight.len() >= PIPELINE_DEPTH {
            let oldest = self.in_flight.pop_front().expect("a batch is in flight");
            let batch = joined(oldest).await?;
            self.count(batch);
        }
        Ok(())
    }

    /// Adds a batch's report; lines its guardrails acted on are read again for the next.
    fn count(&mut self, (report, lines_changed): (UsageReport, bool)) {
        self.report += report;
        if lines_changed {
            self.context = None;
        }
    }

    /// Waits for the last batch; the report covers every batch.
    pub async fn finish(mut self) -> CoreResult<UsageReport> {
        while let Some(batch) = self.in_flight.pop_front() {
            let batch = joined(batch).await?;
            self.count(batch);
        }
        // The export finance runs after a sync reads the rollup, not every line's months.
        if self.report.recorded > 0 {
            self.lineup.refresh_chargeback_rollup(self.tenant).await?;
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

/// What the records add to each (line, day), newest day first: a batch shares its oldest day
/// with the batch before it, so in that order a batch waits for the other's row locks only
/// at the end of its upsert, having written its other days meanwhile. (Every batch takes the
/// rows in the same order, so two never deadlock.)
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
