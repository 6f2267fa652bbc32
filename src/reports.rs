//! `lineup whatif` and `lineup optimise`: core's replay and optimisation reports as tables.

use std::path::Path;

use anyhow::Context;
use lineup_core::organisation::tenant::{Slug, Tenant};
use lineup_core::spend::optimise::OptimisationReport;
use lineup_core::spend::whatif::{LineOutcome, PolicySet, WhatIfReport};

use crate::config::Config;
use crate::server;

async fn lineup_and_tenant(
    config: &Config,
    slug: &str,
) -> anyhow::Result<(server::Runtime, Tenant)> {
    let runtime = server::start_for_command(config).await?;
    let slug = Slug::parse(slug).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let tenant = runtime
        .lineup
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--tenant: no tenant {slug}"))?;
    Ok((runtime, tenant))
}

pub async fn whatif(config: &Config, slug: &str, days: i64, policy: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(policy)
        .with_context(|| format!("--policy: cannot read {}", policy.display()))?;
    let proposed =
        PolicySet::from_json(&text).with_context(|| format!("--policy {}", policy.display()))?;
    let (runtime, tenant) = lineup_and_tenant(config, slug).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let report = runtime
        .lineup
        .what_if(tenant.id, days, &proposed, today)
        .await?;
    print!("{}", whatif_table(&tenant, &report));
    Ok(())
}

fn whatif_table(tenant: &Tenant, report: &WhatIfReport) -> String {
    let money = |minor: i64| tenant.money(minor).to_string();
    let delta = |minor: i64| tenant.money(minor).signed();
    let width = report
        .labels
        .values()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let row = |label: &str, now: &LineOutcome, proposed: &LineOutcome| {
        format!(
            "{label:<width$} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9} {:>10} {:>9}\n",
            money(now.spend.total_minor()),
            money(proposed.spend.total_minor()),
            delta(proposed.spend.total_minor() - now.spend.total_minor()),
            money(now.spend.overage_minor),
            money(proposed.spend.overage_minor),
            now.suspended_days,
            proposed.suspended_days,
            now.alerts,
            proposed.alerts,
        )
    };
    let mut out = format!(
        "What-if for {} over {} … {}: the proposed policy against the current one\n\n",
        tenant.slug, report.from, report.to
    );
    out += &format!(
        "{:<width$} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9} {:>10} {:>9}\n",
        "line",
        "spend now",
        "spend if",
        "Δ spend",
        "overage now",
        "overage if",
        "susp now",
        "susp if",
        "alerts now",
        "alerts if"
    );
    for line in report.lines() {
        out += &row(&line.label, &line.now, &line.proposed);
    }
    out += &row("TOTAL", &report.current.total(), &report.proposed.total());
    out += "\nSpend covers every billing period the window touches; suspended days and \
            alerts count inside the window.\n";
    out += &trips_table(tenant, report);
    out
}

/// The window's trips priced on the home line and as the cheapest travel eSIM.
fn trips_table(tenant: &Tenant, report: &WhatIfReport) -> String {
    let money = |minor: i64| tenant.money(minor).to_string();
    if report.trips.is_empty() {
        return "\nNo trips abroad in the window.\n".into();
    }
    let mut out = format!(
        "\nTrips abroad, priced both ways\n{:<40} {:>4} {:>5} {:>10} {:>12} {:>12} {:>12}\n",
        "line · country · dates", "days", "data", "home line", "travel eSIM", "cheaper", "saving"
    );
    let (mut actual, mut cheaper) = (0, 0);
    for trip in &report.trips {
        let label = report
            .labels
            .get(&trip.line_id)
            .map_or("a line", String::as_str);
        let travel = trip
            .travel
            .as_ref()
            .map_or_else(|| "none".to_owned(), |t| t.price.to_string());
        out += &format!(
            "{:<40} {:>4} {:>5} {:>10} {:>12} {:>12} {:>12}\n",
            format!("{label} · {} · {}…{}", trip.country, trip.from, trip.to),
            trip.days(),
            trip.data.to_string(),
            money(trip.home_minor),
            travel,
            money(trip.cheaper_minor()),
            money(trip.saving_minor()),
        );
        actual += trip.home_minor;
        cheaper += trip.cheaper_minor();
    }
    out += &format!(
        "Trips cost {} on the home lines; with the cheaper choice each time, {} (saving {}).\n",
        money(actual),
        money(cheaper),
        money(actual - cheaper)
    );
    out
}

pub async fn optimise(config: &Config, slug: &str) -> anyhow::Result<()> {
    let (runtime, tenant) = lineup_and_tenant(config, slug).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let report = runtime.lineup.optimisation_report(tenant.id, today).await?;
    print!("{}", optimise_table(&tenant, &report));
    Ok(())
}

fn optimise_table(tenant: &Tenant, report: &OptimisationReport) -> String {
    let mut out = format!("Savings for {} (per month)\n\n", tenant.slug);
    if report.savings.is_empty() {
        out += "Every line is used and on a plan that fits.\n";
        return out;
    }
    let width = report
        .savings
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    out += &format!("{:<width$} {:<52} {:>12}\n", "line", "change", "saving");
    for saving in &report.savings {
        let change = saving.change.describe();
        out += &format!(
            "{:<width$} {:<52} {:>12}\n",
            saving.label,
            change,
            tenant.money(saving.monthly_saving_minor).to_string()
        );
    }
    out += &format!(
        "{:<width$} {:<52} {:>12}\n",
        "TOTAL",
        "",
        tenant.money(report.total_monthly_saving_minor).to_string()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lineup_core::ids::{LineId, PlanId, TenantId};
    use lineup_core::lines::request::roaming_quote::{RoamingOption, TravelOffer};
    use lineup_core::money::{Bytes, Currency, Money};
    use lineup_core::spend::whatif::trips::TripPricing;
    use time::macros::date;

    #[test]
    fn the_report_prices_each_trip_both_ways_and_totals_the_cheaper_choice() {
        let tenant = Tenant {
            id: TenantId::new(),
            slug: Slug::parse("acme").unwrap(),
            name: "Acme".into(),
            currency: Currency::USD,
            settings: Default::default(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let line = LineId::new();
        let trip = |country: &str, home_minor, travel: Option<i64>, cheaper| TripPricing {
            line_id: line,
            country: country.into(),
            from: date!(2026 - 11 - 10),
            to: date!(2026 - 11 - 14),
            data: Bytes(5 * Bytes::GB),
            home_minor,
            travel: travel.map(|minor| TravelOffer {
                plan_id: PlanId::new(),
                package: "a package".into(),
                data: None,
                days: 15,
                price: Money::new(minor, Currency::USD),
            }),
            cheaper,
        };
        let report = WhatIfReport {
            from: date!(2026 - 11 - 01),
            to: date!(2026 - 11 - 30),
            labels: [(line, "ada@example.com · Europe 10GB".to_owned())].into(),
            current: Default::default(),
            proposed: Default::default(),
            trips: vec![
                trip("JP", 4_500, Some(2_600), RoamingOption::TravelEsim),
                trip("DE", 250, None, RoamingOption::HomeLine),
            ],
        };
        let text = whatif_table(&tenant, &report);
        assert!(
            text.contains("ada@example.com · Europe 10GB · JP"),
            "{text}"
        );
        assert!(
            text.contains("26.00 USD") && text.contains("19.00 USD"),
            "{text}"
        );
        assert!(
            text.contains(
                "Trips cost 47.50 USD on the home lines; with the cheaper choice each time, \
                 28.50 USD (saving 19.00 USD)."
            ),
            "{text}"
        );
    }
}
