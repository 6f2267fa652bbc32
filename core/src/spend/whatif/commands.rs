//! What-if commands: the current policy as a policy set, and a proposed one replayed over
//! the recorded usage beside it.

use super::*;
use crate::app::{Lineup, required};
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::organisation::tenant::Tenant;
use crate::spend::usage::{owner_of, utc_day};
use crate::store;

async fn policy_in_force(tx: &mut store::Tx, tenant: &Tenant) -> CoreResult<PolicySet> {
    Ok(PolicySet {
        caps: store::policy::list_caps(tx, tenant.id).await?,
        roaming: store::policy::list_roaming_rules(tx, tenant.id)
            .await?
            .into_iter()
            .collect(),
        roaming_violation_action: tenant.settings.roaming_violation_action,
    })
}

impl Lineup {
    /// The tenant's policy today, in the form a what-if proposal takes.
    pub async fn current_policy(&self, tenant: TenantId) -> CoreResult<PolicySet> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let tenant_row = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?;
        policy_in_force(&mut tx, &tenant_row).await
    }

    /// Replay the last `days` days up to `today` under `proposed` and under the tenant's
    /// current policy.
    pub async fn what_if(
        &self,
        tenant: TenantId,
        days: i64,
        proposed: &PolicySet,
        today: Date,
    ) -> CoreResult<WhatIfReport> {
        if !(1..=MAX_REPLAY_DAYS).contains(&days) {
            return Err(crate::error::CoreError::invalid(
                "days",
                format!("replay 1 to {MAX_REPLAY_DAYS} days, not {days}"),
            ));
        }
        let (from, to) = (today - Duration::days(days - 1), today);
        let mut tx = self.tenant_read_tx(tenant).await?;
        let tenant_row = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?;
        let warmup = period_start(from);
        let daily = store::usage::daily_between(&mut tx, tenant, warmup, to).await?;
        let roaming_rows = store::usage::roaming_records_between(
            &mut tx,
            tenant,
            warmup.midnight().assume_utc(),
            (to + Duration::days(1)).midnight().assume_utc(),
        )
        .await?;
        let owners = store::lines::list_with_owners(&mut tx, tenant).await?;
        let plans = store::plans::list(&mut tx, tenant).await?;
        let employees = store::employees::list(&mut tx, tenant).await?;
        let current = policy_in_force(&mut tx, &tenant_row).await?;
        let grants = store::policy::grants_covering_since(&mut tx, tenant, warmup).await?;
        drop(tx);

        let used: BTreeSet<LineId> = daily.iter().map(|d| d.line_id).collect();
        let lines: Vec<ReplayLine> = owners
            .iter()
            .filter(|l| l.state.is_live() || used.contains(&l.line_id))
            .filter_map(|l| {
                let plan = plans.iter().find(|p| p.id == l.plan_id)?;
                let who = employees
                    .iter()
                    .find(|e| e.id == l.employee_id)
                    .map_or_else(|| l.employee_id.to_string(), |e| e.email.to_string());
                Some(ReplayLine {
                    line_id: l.line_id,
                    label: format!("{who} · {}", plan.name),
                    owner: owner_of(l),
                    pricing: PlanPricing::of(plan),
                })
            })
            .collect();
        let history = UsageHistory {
            from,
            to,
            days: daily
                .iter()
                .map(|d| ReplayDay {
                    line_id: d.line_id,
                    day: d.day,
                    data_bytes: d.data_bytes,
                })
                .collect(),
            roaming: roaming_rows
                .into_iter()
                .filter_map(|r| {
                    Some(ReplayRoaming {
                        line_id: r.line_id,
                        day: utc_day(r.started_at),
                        country: r.country?,
                        data_bytes: r.data_bytes,
                    })
                })
                .collect(),
            lines,
            grants,
        };
        Ok(WhatIfReport {
            from,
            to,
            labels: history
                .lines
                .iter()
                .map(|l| (l.line_id, l.label.clone()))
                .collect(),
            current: replay(&history, &current),
            proposed: replay(&history, proposed),
            trips: trips::price_trips(&history, &plans, tenant_row.currency),
        })
    }
}
