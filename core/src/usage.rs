//! Usage: records pulled from the provider, each counted once, priced, rolled up per line and
//! day and per line and billing period, then checked against the guardrails — one
//! transaction per batch, so a sync killed mid-way and run again ends with the same totals.
//!
//! Late and out-of-order records: a record counts in the day and period it *started* in, and a
//! period's overage is priced from the period's bundle total after every batch (see
//! `pricing`), so arrival order never changes what a period costs.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::{Date, OffsetDateTime, UtcOffset};

use crate::app::{Lineup, required};
use crate::error::CoreResult;
use crate::guardrail::Owner;
use crate::ids::{LineId, PlanId, TenantId};
use crate::pricing::{Charge, PlanPricing, billing_period};
use crate::provider::{Roaming, UsageQuery, UsageRecord};
use crate::store::lines::LineOwner;
use crate::store::usage::{
    DailyUsage, DayTotal, SpendDelta, SpendFilter, SpendGrouping, SpendRow, UsageRow,
};
use crate::store::{self, Tx};
use crate::tenant::Tenant;

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

/// The tenant's lines, owners and plan prices: what pricing and guardrails need, loaded once
/// per batch inside its transaction.
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
        let mut tx = self.tenant_tx(tenant).await?;
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let provider = self.provider().name();
        let mut report = UsageReport::default();
        let mut seen = HashSet::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let Some(line_id) = ctx.by_subscription.get(&record.subscription_id).copied() else {
                report.unknown_lines += 1;
                continue;
            };
            let dedupe_key = format!("{provider}:{}", record.dedupe_key);
            if !seen.insert(dedupe_key.clone()) {
                report.duplicates += 1;
                continue;
            }
            let mut row = UsageRow {
                dedupe_key,
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
            row.cost_minor = ctx.charge(&row).cost_minor();
            rows.push(row);
        }
        let stored: HashSet<String> = store::usage::insert_records(&mut tx, tenant, &rows)
            .await?
            .into_iter()
            .collect();
        report.duplicates += rows.len() - stored.len();
        report.recorded = stored.len();
        rows.retain(|r| stored.contains(&r.dedupe_key));
        let days = roll_up(&mut tx, tenant, &ctx, &rows).await?;
        let found = self
            .evaluate_guardrails(&mut tx, tenant, &ctx, &rows, &days, now)
            .await?;
        report.alerts = found.alerts;
        tx.commit().await?;
        if found.actions > 0 {
            self.apply_guardrail_actions(tenant).await?;
        }
        Ok(report)
    }

    /// Pull usage between two days (inclusive) from the provider, a page per transaction. An
    /// interrupted sync is simply run again: pages already stored count as duplicates.
    pub async fn sync_usage(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
    ) -> CoreResult<UsageReport> {
        self.sync_usage_at(tenant, from, to, store::now()).await
    }

    pub async fn sync_usage_at(
        &self,
        tenant: TenantId,
        from: Date,
        to: Date,
        now: OffsetDateTime,
    ) -> CoreResult<UsageReport> {
        let mut report = UsageReport::default();
        let mut query = UsageQuery {
            from,
            to,
            subscription_id: None,
            cursor: None,
        };
        for _ in 0..MAX_PAGES {
            let page = self.provider().usage(&query).await?;
            report += self.record_usage_at(tenant, &page.items, now).await?;
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        Ok(report)
    }

    /// Per-day usage of one line, oldest first.
    pub async fn daily_usage(&self, tenant: TenantId, line: LineId) -> CoreResult<Vec<DailyUsage>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::usage::daily_for_line(&mut tx, tenant, line).await?)
    }

    /// Spend per billing period, added up per line, employee, team, cost centre or tenant.
    pub async fn spend(
        &self,
        tenant: TenantId,
        grouping: SpendGrouping,
        filter: &SpendFilter,
    ) -> CoreResult<Vec<SpendRow>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::usage::spend_by(&mut tx, tenant, grouping, filter).await?)
    }
}

/// Adds new records to their lines' days and periods, then prices each touched period's
/// overage from its new bundle total. Returns the touched days' new totals.
async fn roll_up(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
) -> CoreResult<Vec<DayTotal>> {
    let mut days: BTreeMap<(LineId, Date), DailyUsage> = BTreeMap::new();
    let mut periods: BTreeMap<(LineId, String), SpendDelta> = BTreeMap::new();
    for row in rows {
        let day = utc_day(row.started_at);
        let daily = days.entry((row.line_id, day)).or_insert(DailyUsage {
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

        let Some(line) = ctx.lines.get(&row.line_id) else {
            continue;
        };
        let price = ctx.pricing_of(row.line_id).map_or(0, |p| p.price_minor);
        let period = billing_period(day);
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
    let days: Vec<DailyUsage> = days.into_values().collect();
    let day_totals = store::usage::add_daily_batch(tx, tenant, &days).await?;
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
    Ok(day_totals)
}
