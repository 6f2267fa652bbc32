//! The optimisation query: lines to cancel and lines to resize, priced over recent months.

use std::collections::{BTreeMap, HashSet};

use time::{Date, Duration};

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::spend::pricing::{billing_period, period_start};
use crate::spend::usage::{SpendFilter, SpendGrouping};
use crate::store;

impl Lineup {
    pub async fn optimisation_report(
        &self,
        tenant: TenantId,
        today: Date,
    ) -> CoreResult<OptimisationReport> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let owners = store::lines::list_with_owners(&mut tx, tenant).await?;
        let plans = store::plans::list(&mut tx, tenant).await?;
        let employees = store::employees::list(&mut tx, tenant).await?;
        let since = today - Duration::days(UNUSED_AFTER_DAYS);
        let idle: HashSet<LineId> = store::usage::lines_without_usage_since(
            &mut tx,
            tenant,
            since,
            since.midnight().assume_utc(),
        )
        .await?
        .into_iter()
        .collect();
        // The complete months before this one.
        let mut first = period_start(today);
        for _ in 0..LOOKBACK_MONTHS {
            first = period_start(first - Duration::days(1));
        }
        let last = period_start(today) - Duration::days(1);
        let filter = SpendFilter {
            from_period: Some(billing_period(first)),
            to_period: Some(billing_period(last)),
            ..SpendFilter::default()
        };
        let spend = store::usage::spend_by(&mut tx, tenant, SpendGrouping::Line, &filter).await?;
        drop(tx);

        let mut months: BTreeMap<uuid::Uuid, Vec<i64>> = BTreeMap::new();
        for row in spend {
            if let Some(line) = row.key {
                months.entry(line).or_default().push(row.bundle_bytes);
            }
        }
        let mut savings = Vec::new();
        for line in owners.iter().filter(|l| l.state.is_live()) {
            let Some(plan) = plans.iter().find(|p| p.id == line.plan_id) else {
                continue;
            };
            let who = employees
                .iter()
                .find(|e| e.id == line.employee_id)
                .map_or_else(|| line.employee_id.to_string(), |e| e.email.to_string());
            let label = format!("{who} · {}", plan.name);
            if idle.contains(&line.line_id) {
                savings.push(Saving {
                    line_id: line.line_id,
                    employee_id: line.employee_id,
                    label,
                    change: Change::Cancel {
                        plan: plan.name.clone(),
                        idle_days: UNUSED_AFTER_DAYS,
                    },
                    monthly_saving_minor: plan.price.map_or(0, |p| p.minor),
                });
                continue;
            }
            let used = months.get(&line.line_id.0).cloned().unwrap_or_default();
            if let Some((better, why, saving)) = right_size(plan, &used, &plans) {
                savings.push(Saving {
                    line_id: line.line_id,
                    employee_id: line.employee_id,
                    label,
                    change: Change::ChangePlan {
                        from: plan.name.clone(),
                        to: better.name.clone(),
                        why,
                    },
                    monthly_saving_minor: saving,
                });
            }
        }
        savings.sort_by(|a, b| {
            b.monthly_saving_minor
                .cmp(&a.monthly_saving_minor)
                .then_with(|| a.label.cmp(&b.label))
        });
        Ok(OptimisationReport {
            total_monthly_saving_minor: savings.iter().map(|s| s.monthly_saving_minor).sum(),
            savings,
        })
    }
}
