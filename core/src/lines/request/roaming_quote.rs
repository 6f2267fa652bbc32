//! The roaming quote: what a trip would cost on the home line's roaming rates against the
//! cheapest travel eSIM package that covers it, and which one to recommend. Made once when
//! the roaming request is filed and stored with it, so the card, the decision and the audit
//! trail all show the same numbers.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ids::{EmployeeId, LineId, PlanId, TenantId};
use crate::lines::plan::Plan;
use crate::money::{Bytes, Currency, Money};
use crate::provider::Validity;
use crate::spend::pricing::PlanPricing;
use crate::store::{self, Tx};

/// Days a monthly allowance is spread over when a plan's average daily use stands in for a
/// trip history.
const DAYS_PER_MONTH: i64 = 30;

/// The two ways to give someone data abroad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoamingOption {
    /// A roaming grant on the employee's own line, billed at the plan's roaming rate.
    HomeLine,
    /// A second, time-boxed line on a travel package; the home line stays without roaming.
    TravelEsim,
}

/// Where the expected usage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum UsageBasis {
    /// The employee's past roaming: `bytes` over `days` days with roaming use.
    PastTrips { days: i64, bytes: Bytes },
    /// No roaming history: the home plan's allowance spread over a month (for an unlimited
    /// plan, the line's own use of the last 30 days).
    PlanAverage { per_day: Bytes },
}

/// The cheapest travel package that covers the trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TravelOffer {
    pub plan_id: PlanId,
    /// "10 GB - 15 Days".
    pub package: String,
    /// `None` is unlimited.
    pub data: Option<Bytes>,
    pub days: u16,
    pub price: Money,
}

/// Both options priced for one trip, and the recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoamingQuote {
    pub trip_days: i64,
    pub basis: UsageBasis,
    pub expected: Bytes,
    /// The home line's roaming charges for the expected usage.
    pub home: Money,
    /// `None` when no connected provider sells a package that covers the trip (country,
    /// days, data) in the tenant's currency.
    pub travel: Option<TravelOffer>,
    pub recommended: RoamingOption,
    /// What the approver picked; set with the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<RoamingOption>,
}

impl RoamingQuote {
    /// Price a trip both ways. `offers` may hold any plans: only travel packages that cover
    /// `country` for `trip_days` days with at least `expected` data, priced in `currency`,
    /// are candidates.
    pub fn price(
        home_plan: &Plan,
        offers: &[Plan],
        country: &str,
        trip_days: i64,
        basis: UsageBasis,
        currency: Currency,
    ) -> Self {
        let expected = expected_usage(basis, trip_days);
        let home = Money::new(
            PlanPricing::of(home_plan)
                .charge(true, Some(country), expected.0)
                .cost_minor(),
            currency,
        );
        let travel = cheapest_package(offers, country, trip_days, expected, currency);
        let recommended = cheaper_option(home.minor, travel.as_ref());
        Self {
            trip_days,
            basis,
            expected,
            home,
            travel,
            recommended,
            chosen: None,
        }
    }

    /// What the recommended option saves against the other one; `None` without a travel
    /// offer to compare with.
    pub fn saving(&self) -> Option<Money> {
        let travel = self.travel.as_ref()?;
        Some(Money::new(
            (self.home.minor - travel.price.minor).abs(),
            self.home.currency,
        ))
    }

    /// What the trip costs with `option`; `None` for a travel eSIM nobody offers.
    pub fn cost_of(&self, option: RoamingOption) -> Option<Money> {
        match option {
            RoamingOption::HomeLine => Some(self.home),
            RoamingOption::TravelEsim => self.travel.as_ref().map(|t| t.price),
        }
    }
}

/// The travel eSIM when it costs less than `home_minor` on the home line, else the home line.
pub fn cheaper_option(home_minor: i64, travel: Option<&TravelOffer>) -> RoamingOption {
    match travel {
        Some(offer) if offer.price.minor < home_minor => RoamingOption::TravelEsim,
        _ => RoamingOption::HomeLine,
    }
}

/// Days of a trip from `from` to `to`, both included.
pub fn trip_days(from: Date, to: Date) -> i64 {
    (to - from).whole_days() + 1
}

fn expected_usage(basis: UsageBasis, trip_days: i64) -> Bytes {
    let per_day = match basis {
        UsageBasis::PastTrips { days, bytes } if days > 0 => bytes.0 / days,
        UsageBasis::PastTrips { .. } => 0,
        UsageBasis::PlanAverage { per_day } => per_day.0,
    };
    Bytes(per_day.saturating_mul(trip_days.max(0)))
}

/// The cheapest active travel package of a tenant connection that covers `country` for
/// `trip_days` days with at least `expected` data, priced in `currency`.
pub fn cheapest_package(
    offers: &[Plan],
    country: &str,
    trip_days: i64,
    expected: Bytes,
    currency: Currency,
) -> Option<TravelOffer> {
    offers
        .iter()
        .filter(|plan| plan.active && plan.provider_connection_id.is_some())
        .filter(|plan| {
            plan.coverage
                .iter()
                .any(|c| c.eq_ignore_ascii_case(country))
        })
        .filter(|plan| plan.data.is_none_or(|data| data >= expected))
        .filter_map(|plan| match (plan.validity, plan.price) {
            (Validity::Days(days), Some(price))
                if i64::from(days) >= trip_days && price.currency == currency =>
            {
                Some(TravelOffer {
                    plan_id: plan.id,
                    package: plan.name.clone(),
                    data: plan.data,
                    days,
                    price,
                })
            }
            _ => None,
        })
        .min_by_key(|offer| offer.price.minor)
}

/// The quote for a roaming request on `line_id`, from the employee's roaming history (or the
/// home plan's average) and the tenant's synced travel packages.
pub(crate) async fn quote_trip(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    line_id: LineId,
    country: &str,
    trip_days: i64,
    currency: Currency,
) -> store::StoreResult<Option<RoamingQuote>> {
    let Some(line) = store::lines::get(tx, tenant, line_id).await? else {
        return Ok(None);
    };
    let Some(home_plan) = store::plans::get(tx, tenant, line.plan_id).await? else {
        return Ok(None);
    };
    let (days, bytes) = store::usage::roaming_history(tx, tenant, employee).await?;
    let basis = if days > 0 {
        UsageBasis::PastTrips {
            days,
            bytes: Bytes(bytes),
        }
    } else {
        let per_day = match home_plan.data {
            Some(allowance) => allowance.0 / DAYS_PER_MONTH,
            None => {
                let today = store::now().date();
                store::usage::employee_data_between(
                    tx,
                    tenant,
                    employee,
                    today - time::Duration::days(DAYS_PER_MONTH),
                    today,
                )
                .await?
                    / DAYS_PER_MONTH
            }
        };
        UsageBasis::PlanAverage {
            per_day: Bytes(per_day),
        }
    };
    let offers = store::plans::list(tx, tenant).await?;
    Ok(Some(RoamingQuote::price(
        &home_plan, &offers, country, trip_days, basis, currency,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProviderConnectionId;
    use crate::spend::pricing::default_zone_rates;

    fn plan(name: &str, validity: Validity, data_gb: Option<i64>, price: i64) -> Plan {
        Plan {
            id: PlanId::new(),
            tenant_id: TenantId::new(),
            provider: "airalo".into(),
            provider_connection_id: Some(ProviderConnectionId::new()),
            offering_id: name.into(),
            template_id: None,
            name: name.into(),
            data: data_gb.map(|gb| Bytes(gb * Bytes::GB)),
            validity,
            coverage: vec!["JP".into()],
            price: Some(Money::new(price, Currency::USD)),
            overage_per_gb: None,
            roaming_per_gb_minor: default_zone_rates(),
            throttle_after_cap_kbps: None,
            active: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn home() -> Plan {
        let mut home = plan("US 5GB", Validity::Monthly, Some(5), 2_000);
        home.coverage = vec!["US".into()];
        home
    }

    #[test]
    fn past_trips_set_the_expected_use_and_the_cheapest_fitting_package_wins() {
        let offers = [
            plan("1 GB - 7 Days", Validity::Days(7), Some(1), 450),
            plan("3 GB - 10 Days", Validity::Days(10), Some(3), 1_100),
            plan("10 GB - 15 Days", Validity::Days(15), Some(10), 2_600),
            plan("20 GB - 30 Days", Validity::Days(30), Some(20), 4_000),
            home(),
        ];
        let basis = UsageBasis::PastTrips {
            days: 6,
            bytes: Bytes(3 * Bytes::GB),
        };
        let quote = RoamingQuote::price(&home(), &offers, "JP", 10, basis, Currency::USD);
        assert_eq!(quote.expected, Bytes(5 * Bytes::GB));
        // Asia-Pacific roaming at 9.00 per GB.
        assert_eq!(quote.home, Money::new(4_500, Currency::USD));
        let travel = quote.travel.clone().unwrap();
        assert_eq!(travel.package, "10 GB - 15 Days");
        assert_eq!(quote.recommended, RoamingOption::TravelEsim);
        assert_eq!(quote.saving(), Some(Money::new(1_900, Currency::USD)));
    }

    #[test]
    fn a_covered_country_or_no_package_keeps_the_home_line() {
        let offers = [plan("1 GB - 7 Days", Validity::Days(7), Some(1), 450)];
        let basis = UsageBasis::PlanAverage {
            per_day: Bytes(Bytes::GB),
        };
        let quote = RoamingQuote::price(&home(), &offers, "JP", 10, basis, Currency::USD);
        assert_eq!(quote.travel, None, "7 days do not cover a 10-day trip");
        assert_eq!(quote.recommended, RoamingOption::HomeLine);
        assert_eq!(quote.saving(), None);
        let at_home = RoamingQuote::price(&home(), &offers, "US", 3, basis, Currency::USD);
        assert_eq!(at_home.home.minor, 0, "the bundle covers its own country");
        let day_trip = RoamingQuote::price(&home(), &offers, "JP", 1, basis, Currency::USD);
        assert_eq!(day_trip.recommended, RoamingOption::TravelEsim);
        let in_euros = RoamingQuote::price(&home(), &offers, "JP", 1, basis, Currency::EUR);
        assert_eq!(
            in_euros.travel, None,
            "prices in another currency do not compare"
        );
    }
}
