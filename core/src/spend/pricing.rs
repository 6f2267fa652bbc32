//! Pricing: what a line's usage costs under its plan, as pure functions shared by ingest,
//! guardrails, the what-if replay and the optimisation report.
//!
//! The rules:
//! - A billing period is a calendar month in UTC (`YYYY-MM`); a record belongs to the period
//!   its `started_at` falls in, however late it arrives.
//! - The plan's monthly price covers its bundle. Bundle data is home usage plus roaming in a
//!   country the plan covers. Bundle data beyond the plan's allowance in the period costs the
//!   plan's overage price per GB, computed on the period's total: the order in which records
//!   arrive never changes what a period costs.
//! - Roaming outside the plan's coverage costs the plan's rate for the country's zone per GB,
//!   priced record by record (so each record carries its own cost) and rounded up to the
//!   minor unit. It does not use up the bundle.
//! - A GB is 2^30 bytes, the unit plan allowances are sold in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::lines::plan::Plan;
use crate::money::Bytes;

pub const BYTES_PER_GB: i64 = Bytes::GB;

/// Overage price for plans whose provider publishes none: 10.00 per GB.
pub const DEFAULT_OVERAGE_PER_GB_MINOR: i64 = 1_000;

/// Where a country roams, for pricing. Countries not listed are `RestOfWorld`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoamingZone {
    Europe,
    NorthAmerica,
    AsiaPacific,
    RestOfWorld,
}

const EUROPE: &[&str] = &[
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "HU",
    "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];
const NORTH_AMERICA: &[&str] = &["CA", "MX", "US"];
const ASIA_PACIFIC: &[&str] = &[
    "AU", "CN", "HK", "ID", "IN", "JP", "KR", "MY", "NZ", "PH", "SG", "TH", "TW", "VN",
];

impl RoamingZone {
    pub const ALL: [RoamingZone; 4] = [
        Self::Europe,
        Self::NorthAmerica,
        Self::AsiaPacific,
        Self::RestOfWorld,
    ];

    pub fn of(country: Option<&str>) -> Self {
        let Some(country) = country else {
            return Self::RestOfWorld;
        };
        let country = country.to_ascii_uppercase();
        let listed = |list: &[&str]| list.contains(&country.as_str());
        if listed(EUROPE) {
            Self::Europe
        } else if listed(NORTH_AMERICA) {
            Self::NorthAmerica
        } else if listed(ASIA_PACIFIC) {
            Self::AsiaPacific
        } else {
            Self::RestOfWorld
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Europe => "europe",
            Self::NorthAmerica => "north_america",
            Self::AsiaPacific => "asia_pacific",
            Self::RestOfWorld => "rest_of_world",
        }
    }
}

/// A plan's roaming prices per GB by zone. A zone without a price uses `rest_of_world`'s.
pub type ZoneRates = BTreeMap<RoamingZone, i64>;

/// Roaming prices for plans whose provider publishes none, per GB.
pub fn default_zone_rates() -> ZoneRates {
    ZoneRates::from([
        (RoamingZone::Europe, 500),
        (RoamingZone::NorthAmerica, 500),
        (RoamingZone::AsiaPacific, 900),
        (RoamingZone::RestOfWorld, 1_500),
    ])
}

/// What pricing needs of a plan, in the plan's currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPricing {
    pub price_minor: i64,
    /// `None` is unlimited.
    pub allowance_bytes: Option<i64>,
    pub overage_per_gb_minor: i64,
    pub roaming_per_gb_minor: ZoneRates,
    /// Countries where roaming is part of the bundle.
    pub coverage: Vec<String>,
}

impl PlanPricing {
    pub fn of(plan: &Plan) -> Self {
        Self {
            price_minor: plan.price.map_or(0, |m| m.minor),
            allowance_bytes: plan.data.map(|b| b.0),
            overage_per_gb_minor: plan.overage_per_gb.map_or(0, |m| m.minor),
            roaming_per_gb_minor: plan.roaming_per_gb_minor.clone(),
            coverage: plan.coverage.clone(),
        }
    }

    pub fn roaming_rate(&self, zone: RoamingZone) -> i64 {
        self.roaming_per_gb_minor
            .get(&zone)
            .or_else(|| self.roaming_per_gb_minor.get(&RoamingZone::RestOfWorld))
            .copied()
            .unwrap_or(0)
    }

    /// Whether usage in `country` while roaming is billed outside the bundle.
    pub fn bills_roaming_in(&self, country: Option<&str>) -> bool {
        match country {
            Some(c) => !self.coverage.iter().any(|k| k.eq_ignore_ascii_case(c)),
            None => true,
        }
    }

    /// How one record is charged.
    pub fn charge(&self, roaming: bool, country: Option<&str>, data_bytes: i64) -> Charge {
        if roaming && self.bills_roaming_in(country) {
            let zone = RoamingZone::of(country);
            Charge::Roaming {
                zone,
                cost_minor: per_gb(data_bytes, self.roaming_rate(zone)),
            }
        } else {
            Charge::Bundle
        }
    }

    /// Overage for a period in which `bundle_bytes` of bundle data were used.
    pub fn overage_minor(&self, bundle_bytes: i64) -> i64 {
        match self.allowance_bytes {
            Some(allowance) => per_gb((bundle_bytes - allowance).max(0), self.overage_per_gb_minor),
            None => 0,
        }
    }
}

/// How a record is charged: inside the bundle, or at its zone's roaming price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Bundle,
    Roaming { zone: RoamingZone, cost_minor: i64 },
}

impl Charge {
    pub fn cost_minor(self) -> i64 {
        match self {
            Self::Bundle => 0,
            Self::Roaming { cost_minor, .. } => cost_minor,
        }
    }
}

/// `bytes` at `per_gb_minor` per GB, rounded up to the minor unit.
pub fn per_gb(bytes: i64, per_gb_minor: i64) -> i64 {
    if bytes <= 0 || per_gb_minor <= 0 {
        return 0;
    }
    let numerator = i128::from(bytes) * i128::from(per_gb_minor);
    let gb = i128::from(BYTES_PER_GB);
    let cost = (numerator + gb - 1) / gb;
    i64::try_from(cost).unwrap_or(i64::MAX)
}

/// A line's spend in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PeriodSpend {
    pub plan_minor: i64,
    pub overage_minor: i64,
    pub roaming_minor: i64,
}

impl PeriodSpend {
    pub fn total_minor(&self) -> i64 {
        self.plan_minor + self.overage_minor + self.roaming_minor
    }
}

impl std::ops::AddAssign for PeriodSpend {
    fn add_assign(&mut self, other: Self) {
        self.plan_minor += other.plan_minor;
        self.overage_minor += other.overage_minor;
        self.roaming_minor += other.roaming_minor;
    }
}

/// A line's period from its totals: the plan's price, overage on the bundle, and roaming.
pub fn period_spend(pricing: &PlanPricing, bundle_bytes: i64, roaming_minor: i64) -> PeriodSpend {
    PeriodSpend {
        plan_minor: pricing.price_minor,
        overage_minor: pricing.overage_minor(bundle_bytes),
        roaming_minor,
    }
}

/// Billing periods are calendar months, written `YYYY-MM`.
pub fn billing_period(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), u8::from(day.month()))
}

/// The first day of `day`'s billing period.
pub fn period_start(day: Date) -> Date {
    day.replace_day(1).expect("day 1 exists in every month")
}

/// The first day of the billing period after `day`'s.
pub fn next_period_start(day: Date) -> Date {
    let (year, month) = match day.month() {
        time::Month::December => (day.year() + 1, time::Month::January),
        month => (day.year(), month.next()),
    };
    Date::from_calendar_date(year, month, 1).expect("the first of a month exists")
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// US 5GB: 20.00 a month, 10.00 per GB over, Europe 5.00/GB, rest of world 15.00/GB (no
    /// Asia-Pacific price, so Japan is rest of world); covers the US only.
    pub fn us_5gb() -> PlanPricing {
        PlanPricing {
            price_minor: 2_000,
            allowance_bytes: Some(5 * BYTES_PER_GB),
            overage_per_gb_minor: 1_000,
            roaming_per_gb_minor: ZoneRates::from([
                (RoamingZone::Europe, 500),
                (RoamingZone::RestOfWorld, 1_500),
            ]),
            coverage: vec!["US".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::us_5gb;
    use super::*;
    use time::macros::date;

    const GB: i64 = BYTES_PER_GB;
    const MB: i64 = Bytes::MB;

    #[test]
    fn bundle_data_within_the_allowance_costs_only_the_plan_price() {
        let plan = us_5gb();
        assert_eq!(plan.charge(false, Some("US"), 3 * GB), Charge::Bundle);
        assert_eq!(
            period_spend(&plan, 5 * GB, 0),
            PeriodSpend {
                plan_minor: 2_000,
                overage_minor: 0,
                roaming_minor: 0
            }
        );
    }

    #[test]
    fn overage_is_charged_on_the_period_total_beyond_the_allowance() {
        let plan = us_5gb();
        // 6.5 GB used: 1.5 GB over at 10.00/GB = 15.00.
        assert_eq!(plan.overage_minor(6 * GB + GB / 2), 1_500);
        // 1 byte over rounds up to one cent.
        assert_eq!(plan.overage_minor(5 * GB + 1), 1);
        // 100 MB over: 100/1024 * 1000 = 97.66 → 98 cents.
        assert_eq!(plan.overage_minor(5 * GB + 100 * MB), 98);
        assert_eq!(
            period_spend(&plan, 7 * GB, 250).total_minor(),
            2_000 + 2_000 + 250
        );
    }

    #[test]
    fn unlimited_plans_never_charge_overage() {
        let plan = PlanPricing {
            allowance_bytes: None,
            ..us_5gb()
        };
        assert_eq!(plan.overage_minor(900 * GB), 0);
    }

    #[test]
    fn roaming_outside_coverage_costs_the_zone_rate_and_inside_is_bundle() {
        let plan = us_5gb();
        // 200 MB in France at 5.00/GB: 200/1024 * 500 = 97.66 → 98.
        assert_eq!(
            plan.charge(true, Some("FR"), 200 * MB),
            Charge::Roaming {
                zone: RoamingZone::Europe,
                cost_minor: 98
            }
        );
        // Japan has no Asia-Pacific price on this plan: the rest-of-world price, 2 GB → 30.00.
        assert_eq!(plan.charge(true, Some("JP"), 2 * GB).cost_minor(), 3_000);
        // An unknown country is rest of world.
        assert_eq!(plan.charge(true, None, GB).cost_minor(), 1_500);
        // Roaming where the plan covers it is part of the bundle.
        let global = PlanPricing {
            coverage: vec!["US".into(), "FR".into()],
            ..us_5gb()
        };
        assert_eq!(global.charge(true, Some("fr"), GB), Charge::Bundle);
    }

    #[test]
    fn countries_fall_into_zones() {
        assert_eq!(RoamingZone::of(Some("de")), RoamingZone::Europe);
        assert_eq!(RoamingZone::of(Some("CA")), RoamingZone::NorthAmerica);
        assert_eq!(RoamingZone::of(Some("SG")), RoamingZone::AsiaPacific);
        assert_eq!(RoamingZone::of(Some("BR")), RoamingZone::RestOfWorld);
    }

    #[test]
    fn per_gb_rounds_up_and_ignores_nothing_used() {
        assert_eq!(per_gb(0, 1_000), 0);
        assert_eq!(per_gb(GB, 0), 0);
        assert_eq!(per_gb(GB, 1_000), 1_000);
        assert_eq!(per_gb(GB + 1, 1_000), 1_001);
    }

    #[test]
    fn periods_are_calendar_months() {
        assert_eq!(billing_period(date!(2026 - 02 - 28)), "2026-02");
        assert_eq!(period_start(date!(2026 - 02 - 28)), date!(2026 - 02 - 01));
        assert_eq!(
            next_period_start(date!(2026 - 12 - 31)),
            date!(2027 - 01 - 01)
        );
        assert_eq!(
            next_period_start(date!(2026 - 01 - 15)),
            date!(2026 - 02 - 01)
        );
    }
}
