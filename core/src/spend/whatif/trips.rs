//! Trips in a replay priced both ways: what each trip's roaming cost on the home line, what
//! the cheapest travel eSIM that covers it would have cost, and what choosing the cheaper of
//! the two would have saved — the same choice the roaming quote offers an approver.
//!
//! A trip is a run of consecutive days with roaming in one country on one line; a trip that
//! touches the window counts whole.

use time::{Date, Duration};

use super::{ReplayLine, UsageHistory};
use crate::ids::LineId;
use crate::lines::plan::Plan;
use crate::lines::request::roaming_quote::{
    RoamingOption, TravelOffer, cheaper_option, cheapest_package, trip_days,
};
use crate::money::{Bytes, Currency};

/// One trip, priced both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripPricing {
    pub line_id: LineId,
    pub country: String,
    pub from: Date,
    pub to: Date,
    pub data: Bytes,
    /// What the roaming cost on the home line, in the tenant's minor units.
    pub home_minor: i64,
    pub travel: Option<TravelOffer>,
    pub cheaper: RoamingOption,
}

impl TripPricing {
    pub fn days(&self) -> i64 {
        (self.to - self.from).whole_days() + 1
    }

    /// What the trip would have cost with the cheaper choice.
    pub fn cheaper_minor(&self) -> i64 {
        match (&self.travel, self.cheaper) {
            (Some(travel), RoamingOption::TravelEsim) => travel.price.minor,
            _ => self.home_minor,
        }
    }

    pub fn saving_minor(&self) -> i64 {
        self.home_minor - self.cheaper_minor()
    }
}

/// Every trip of the history that touches its window, by line and start day.
pub fn price_trips(
    history: &UsageHistory,
    offers: &[Plan],
    currency: Currency,
) -> Vec<TripPricing> {
    let mut days: Vec<(LineId, &str, Date, i64)> = history
        .roaming
        .iter()
        .map(|r| (r.line_id, r.country.as_str(), r.day, r.data_bytes))
        .collect();
    days.sort();
    let mut trips: Vec<(LineId, String, Date, Date, i64)> = Vec::new();
    for (line, country, day, bytes) in days {
        match trips.last_mut() {
            Some(trip)
                if trip.0 == line && trip.1 == country && day <= trip.3 + Duration::days(1) =>
            {
                trip.3 = trip.3.max(day);
                trip.4 += bytes;
            }
            _ => trips.push((line, country.to_owned(), day, day, bytes)),
        }
    }
    trips
        .into_iter()
        .filter(|(_, _, from, to, _)| *to >= history.from && *from <= history.to)
        .filter_map(|(line_id, country, from, to, bytes)| {
            let line: &ReplayLine = history.lines.iter().find(|l| l.line_id == line_id)?;
            let home_minor = history
                .roaming
                .iter()
                .filter(|r| r.line_id == line_id && r.country == country)
                .filter(|r| r.day >= from && r.day <= to)
                .map(|r| {
                    line.pricing
                        .charge(true, Some(&r.country), r.data_bytes)
                        .cost_minor()
                })
                .sum();
            let days = trip_days(from, to);
            let travel = cheapest_package(offers, &country, days, Bytes(bytes), currency);
            let cheaper = cheaper_option(home_minor, travel.as_ref());
            Some(TripPricing {
                line_id,
                country,
                from,
                to,
                data: Bytes(bytes),
                home_minor,
                travel,
                cheaper,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EmployeeId, PlanId, ProviderConnectionId, TenantId};
    use crate::money::Money;
    use crate::provider::Validity;
    use crate::spend::guardrail::Owner;
    use crate::spend::pricing::fixtures::us_5gb;
    use crate::spend::whatif::ReplayRoaming;
    use time::macros::date;

    const GB: i64 = Bytes::GB;

    fn package(name: &str, country: &str, days: u16, gb: i64, price: i64) -> Plan {
        Plan {
            id: PlanId::new(),
            tenant_id: TenantId::new(),
            provider: "airalo".into(),
            provider_connection_id: Some(ProviderConnectionId::new()),
            offering_id: name.into(),
            template_id: None,
            name: name.into(),
            data: Some(Bytes(gb * GB)),
            validity: Validity::Days(days),
            coverage: vec![country.into()],
            price: Some(Money::new(price, Currency::USD)),
            overage_per_gb: None,
            roaming_per_gb_minor: Default::default(),
            throttle_after_cap_kbps: None,
            active: true,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn each_trip_is_priced_both_ways_and_the_cheaper_choice_named() {
        // Ben: Japan 10–14 November, 1 GB a day (5 GB at 15.00 = 75.00 on the home line; a
        // 10 GB / 15-day package is 26.00). Germany on the 20th, 0.5 GB at 5.00 per GB = 2.50,
        // where the only package (3 GB for 15 days at 11.00) costs more. A Japan day in
        // October is outside the window and is not a trip of this report.
        let line_id = LineId::new();
        let day = |m: time::Month, d: u8| Date::from_calendar_date(2026, m, d).unwrap();
        let mut roaming: Vec<ReplayRoaming> = (10..=14)
            .map(|d| ReplayRoaming {
                line_id,
                day: day(time::Month::November, d),
                country: "JP".into(),
                data_bytes: GB,
            })
            .collect();
        roaming.push(ReplayRoaming {
            line_id,
            day: date!(2026 - 11 - 20),
            country: "DE".into(),
            data_bytes: GB / 2,
        });
        roaming.push(ReplayRoaming {
            line_id,
            day: date!(2026 - 10 - 02),
            country: "JP".into(),
            data_bytes: GB,
        });
        let history = UsageHistory {
            from: date!(2026 - 11 - 01),
            to: date!(2026 - 11 - 30),
            lines: vec![ReplayLine {
                line_id,
                label: "ben".into(),
                owner: Owner {
                    employee: EmployeeId::new(),
                    team: None,
                    cost_centre: None,
                },
                pricing: us_5gb(),
            }],
            days: vec![],
            roaming,
            grants: vec![],
        };
        let offers = [
            package("1 GB - 7 Days", "JP", 7, 1, 450),
            package("10 GB - 15 Days", "JP", 15, 10, 2_600),
            package("3 GB - 15 Days", "DE", 15, 3, 1_100),
        ];
        let trips = price_trips(&history, &offers, Currency::USD);
        let summary: Vec<_> = trips
            .iter()
            .map(|t| {
                (
                    t.country.as_str(),
                    t.days(),
                    t.home_minor,
                    t.travel.as_ref().map(|o| o.price.minor),
                    t.cheaper,
                    t.saving_minor(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("DE", 1, 250, Some(1_100), RoamingOption::HomeLine, 0),
                (
                    "JP",
                    5,
                    7_500,
                    Some(2_600),
                    RoamingOption::TravelEsim,
                    4_900
                ),
            ]
        );
    }
}
