//! Optimisation report: lines to cancel (unused) and lines on the wrong plan size, with what
//! each change saves a month, priced with the same functions as usage.
//!
//! - Unused: a live line with no data, SMS or voice for `UNUSED_AFTER_DAYS`, older than that;
//!   cancelling saves its plan's monthly price.
//! - Wrong size, judged on the last `LOOKBACK_MONTHS` complete billing periods of bundle data:
//!   every month under `UNDERUSED_PERCENT` of the allowance → the cheapest plan that would
//!   have cost less; overage in at least `REGULAR_OVERAGE_MONTHS` of them → the same search
//!   (a bigger plan that is cheaper than price + overage). A candidate must cover every
//!   country the current plan covers and be offered in the same currency. The saving is the
//!   difference of the months' average cost (price + overage).

pub mod commands;

use serde::Serialize;

use crate::ids::LineId;
use crate::lines::plan::Plan;
use crate::spend::guardrail::UNUSED_AFTER_DAYS;
use crate::spend::pricing::PlanPricing;

pub const LOOKBACK_MONTHS: usize = 3;
pub const UNDERUSED_PERCENT: i64 = 50;
pub const REGULAR_OVERAGE_MONTHS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanFit {
    /// Every month well under the allowance.
    Underused,
    /// Overage most months.
    RegularOverage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    Cancel {
        plan: String,
        idle_days: i64,
    },
    ChangePlan {
        from: String,
        to: String,
        why: PlanFit,
    },
}

impl Change {
    /// The change in words, e.g. "US 5GB → Global 10GB (regular overage)".
    pub fn describe(&self) -> String {
        match self {
            Change::Cancel { plan, idle_days } => {
                format!("cancel: no usage for {idle_days} days ({plan})")
            }
            Change::ChangePlan { from, to, why } => {
                let why = match why {
                    PlanFit::Underused => "under half the allowance",
                    PlanFit::RegularOverage => "regular overage",
                };
                format!("{from} → {to} ({why})")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saving {
    pub line_id: LineId,
    /// Whose line it is (to show each manager only their reports' lines).
    pub employee_id: crate::ids::EmployeeId,
    pub label: String,
    pub change: Change,
    pub monthly_saving_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptimisationReport {
    pub savings: Vec<Saving>,
    pub total_monthly_saving_minor: i64,
}

/// Average monthly cost (price + overage) of `plan` for these months of bundle data.
fn average_cost(plan: &Plan, months: &[i64]) -> i64 {
    let pricing = PlanPricing::of(plan);
    let total: i64 = months
        .iter()
        .map(|bytes| pricing.price_minor + pricing.overage_minor(*bytes))
        .sum();
    total / i64::try_from(months.len().max(1)).unwrap_or(1)
}

/// How well `current` fits `months` (bundle bytes of complete months, any order), or `None`
/// when it fits or there are too few months to tell.
pub fn fit(current: &Plan, months: &[i64]) -> Option<PlanFit> {
    if months.len() < LOOKBACK_MONTHS {
        return None;
    }
    let allowance = current.data?.0;
    let pricing = PlanPricing::of(current);
    if months
        .iter()
        .all(|b| b * 100 < allowance * UNDERUSED_PERCENT)
    {
        Some(PlanFit::Underused)
    } else if months
        .iter()
        .filter(|b| pricing.overage_minor(**b) > 0)
        .count()
        >= REGULAR_OVERAGE_MONTHS
    {
        Some(PlanFit::RegularOverage)
    } else {
        None
    }
}

/// The catalogue plan that would have cost least for `months`, with the monthly saving
/// against `current`, when `current` is the wrong size and a cheaper plan exists.
pub fn right_size<'a>(
    current: &Plan,
    months: &[i64],
    catalogue: &'a [Plan],
) -> Option<(&'a Plan, PlanFit, i64)> {
    let why = fit(current, months)?;
    let current_cost = average_cost(current, months);
    let currency = current.price.map(|p| p.currency);
    catalogue
        .iter()
        .filter(|p| p.active && p.id != current.id && p.price.map(|m| m.currency) == currency)
        .filter(|p| current.coverage.iter().all(|c| p.coverage.contains(c)))
        .filter(|p| match why {
            PlanFit::Underused => {
                p.data.map_or(i64::MAX, |b| b.0) < current.data.map_or(i64::MAX, |b| b.0)
            }
            PlanFit::RegularOverage => {
                p.data.map_or(i64::MAX, |b| b.0) > current.data.map_or(i64::MAX, |b| b.0)
            }
        })
        .map(|p| (p, current_cost - average_cost(p, months)))
        .filter(|(_, saving)| *saving > 0)
        .max_by_key(|(p, saving)| (*saving, std::cmp::Reverse(p.name.clone())))
        .map(|(p, saving)| (p, why, saving))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PlanId, TenantId};
    use crate::money::{Bytes, Currency, Money};
    use crate::provider::Validity;

    const GB: i64 = Bytes::GB;

    fn plan(name: &str, gb: Option<i64>, price: i64) -> Plan {
        Plan {
            id: PlanId::new(),
            tenant_id: TenantId::new(),
            provider: "test".into(),
            provider_connection_id: None,
            offering_id: name.into(),
            template_id: None,
            name: name.into(),
            data: gb.map(|g| Bytes(g * GB)),
            validity: Validity::Monthly,
            coverage: vec!["US".into()],
            price: Some(Money::new(price, Currency::USD)),
            overage_per_gb: Some(Money::new(1_000, Currency::USD)),
            roaming_per_gb_minor: Default::default(),
            throttle_after_cap_kbps: None,
            active: true,
            created_at: crate::store::now(),
        }
    }

    fn catalogue() -> Vec<Plan> {
        vec![
            plan("US 1GB", Some(1), 1_000),
            plan("US 5GB", Some(5), 2_000),
            plan("US 20GB", Some(20), 3_500),
            plan("Unlimited US", None, 6_000),
        ]
    }

    #[test]
    fn an_underused_plan_moves_to_the_cheapest_smaller_plan_that_costs_less() {
        let plans = catalogue();
        // 1, 2 and 0.5 GB on a 5 GB plan at 20.00: every month under 50 %.
        // US 1GB would have cost 10.00, 10.00 + 10.00 overage (1 GB over), 10.00: 40.00 / 3
        // = 13.33 a month on average; saving 20.00 − 13.33 = 6.67 (2000 − 1333 = 667).
        let months = [GB, 2 * GB, GB / 2];
        let (better, why, saving) = right_size(&plans[1], &months, &plans).unwrap();
        assert_eq!(
            (better.name.as_str(), why, saving),
            ("US 1GB", PlanFit::Underused, 667)
        );
        // At 2.5 GB one month it is no longer consistently under half: no change.
        assert_eq!(right_size(&plans[1], &[GB, 5 * GB / 2, GB], &plans), None);
    }

    #[test]
    fn regular_overage_moves_to_a_bigger_plan_cheaper_than_price_plus_overage() {
        let plans = catalogue();
        // 8, 9 and 4 GB on the 5 GB plan: 20 + 30, 20 + 40, 20 → 130.00/3 = 43.33 a month.
        // US 20GB costs 35.00 flat: saving 43.33 − 35.00 = 8.33 (4333 − 3500 = 833).
        // Unlimited at 60.00 costs more and is not suggested.
        let months = [8 * GB, 9 * GB, 4 * GB];
        let (better, why, saving) = right_size(&plans[1], &months, &plans).unwrap();
        assert_eq!(
            (better.name.as_str(), why, saving),
            ("US 20GB", PlanFit::RegularOverage, 833)
        );
        // Overage in only one month of three is not regular.
        assert_eq!(fit(&plans[1], &[8 * GB, 3 * GB, 4 * GB]), None);
        // Fewer than three complete months: too early to tell.
        assert_eq!(fit(&plans[1], &[8 * GB, 9 * GB]), None);
    }
}
