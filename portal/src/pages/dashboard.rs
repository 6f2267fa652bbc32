//! The spend dashboard: totals, spend over time, spend by group, month-over-month change,
//! top spenders, people near their cap and unused lines, for a period and filters that the
//! export links carry along.

use std::time::Instant;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;
use lineup_core::ids::{CostCentreId, TeamId};
use lineup_core::money::{Currency, Money};
use lineup_core::period::{Month, Period};
use lineup_core::spend::reports::{
    Dashboard, GROUPS_SHOWN, Granularity, GroupBy, GroupSpend, ReportFilter, ReportScope,
};
use serde::Deserialize;
use time::Date;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::chart::{self, Bar};
use crate::error::PortalError;
use crate::forms::non_empty;
use crate::view::{Chrome, Page};

pub fn routes() -> Router<Portal> {
    Router::new().route("/dashboard", get(show))
}

/// Months shown when the page is opened without a period.
const DEFAULT_MONTHS: usize = 6;

/// The filters as they arrive in the query string; empty means "not given".
#[derive(Debug, Deserialize, Default, Clone)]
pub struct SpendQuery {
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    granularity: Option<String>,
    team: Option<String>,
    cost_centre: Option<String>,
}

/// The filters, checked, with the choices that were made.
#[derive(Debug, Clone)]
pub struct SpendFilters {
    pub report: ReportFilter,
    pub group_by: GroupBy,
    pub granularity: Granularity,
}

impl SpendQuery {
    pub fn from_raw(raw: Option<&str>) -> Result<Self, PortalError> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| PortalError::invalid("filters", e.to_string()))
    }

    /// Every filter checked, naming the first that is wrong.
    pub fn parse(&self, today: Date) -> Result<SpendFilters, PortalError> {
        let month = |field: &'static str, value: &Option<String>| {
            non_empty(value)
                .map(|text| {
                    Month::parse(text).ok_or_else(|| {
                        PortalError::invalid(field, format!("{text:?} is not a month like 2026-01"))
                    })
                })
                .transpose()
        };
        let default = Period::last_months(today, DEFAULT_MONTHS);
        let to = month("to", &self.to)?.unwrap_or(default.to);
        let from = month("from", &self.from)?
            .unwrap_or_else(|| (1..DEFAULT_MONTHS).fold(to, |m, _| m.previous()));
        let period = Period::new(from, to)?;
        let group_by = non_empty(&self.group)
            .map(|g| {
                GroupBy::parse(g).ok_or_else(|| {
                    PortalError::invalid(
                        "group",
                        format!("{g:?} is not one of employee, team, cost_centre"),
                    )
                })
            })
            .transpose()?
            .unwrap_or_default();
        let granularity = non_empty(&self.granularity)
            .map(|g| {
                Granularity::parse(g).ok_or_else(|| {
                    PortalError::invalid(
                        "granularity",
                        format!("{g:?} is not one of day, week, month"),
                    )
                })
            })
            .transpose()?
            .unwrap_or_default();
        let id = |field: &'static str, value: &Option<String>| {
            non_empty(value)
                .map(|text| {
                    text.parse::<uuid::Uuid>().map_err(|_| {
                        PortalError::invalid(field, format!("{text:?} is not one of the choices"))
                    })
                })
                .transpose()
        };
        Ok(SpendFilters {
            report: ReportFilter {
                period,
                team: id("team", &self.team)?.map(TeamId),
                cost_centre: id("cost_centre", &self.cost_centre)?.map(CostCentreId),
            },
            group_by,
            granularity,
        })
    }
}

impl SpendFilters {
    /// The filters as a query string, for links that keep them (exports).
    pub fn query_string(&self) -> String {
        let period = self.report.period;
        let mut pairs = vec![
            ("from", period.from.to_string()),
            ("to", period.to.to_string()),
            ("group", self.group_by.as_str().to_owned()),
            ("granularity", self.granularity.as_str().to_owned()),
        ];
        if let Some(team) = self.report.team {
            pairs.push(("team", team.to_string()));
        }
        if let Some(centre) = self.report.cost_centre {
            pairs.push(("cost_centre", centre.to_string()));
        }
        serde_urlencoded::to_string(pairs).expect("text pairs encode")
    }

    /// `2026-01_2026-06`, for file names.
    pub fn period_slug(&self) -> String {
        format!("{}_{}", self.report.period.from, self.report.period.to)
    }
}

/// Check the filters and resolve what this user may see; a team or cost centre of another
/// organisation is "not found".
pub async fn scoped(
    portal: &Portal,
    page: &Page,
    raw: Option<&str>,
) -> Result<(SpendFilters, ReportScope), PortalError> {
    let filters = SpendQuery::from_raw(raw)?.parse(today())?;
    let scope = portal
        .lineup
        .report_scope(page.tenant_id(), page.signed.visibility(), &filters.report)
        .await?;
    Ok((filters, scope))
}

pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// One option of a filter's `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A group's month-over-month change, ready to show.
struct ChangeRow {
    label: String,
    previous: Money,
    last: Money,
    change: String,
    percent: String,
    direction: &'static str,
}

impl ChangeRow {
    fn of(group: &GroupSpend) -> Self {
        let change = group.change();
        let (arrow, direction) = match change.minor.signum() {
            1 => ("▲", "up"),
            -1 => ("▼", "down"),
            _ => ("▬", "flat"),
        };
        let sign = if change.minor > 0 { "+" } else { "" };
        Self {
            label: group.label.clone(),
            previous: group.previous_month,
            last: group.last_month,
            change: format!("{sign}{change}"),
            percent: match group.change_percent() {
                Some(p) => format!("{arrow} {sign}{p} %"),
                None => format!("{arrow} new"),
            },
            direction,
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    from: String,
    to: String,
    groups: Vec<Choice>,
    granularities: Vec<Choice>,
    teams: Vec<Choice>,
    cost_centres: Vec<Choice>,
    group_label: &'static str,
    query: String,
    can_export: bool,
    dashboard: Dashboard,
    time_chart: String,
    group_chart: String,
    changes: Vec<ChangeRow>,
    groups_shown: usize,
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let started = Instant::now();
    let (filters, scope) = scoped(&portal, &page, raw.as_deref()).await?;
    let directory = &scope.directory;
    let dashboard = portal
        .lineup
        .dashboard(
            page.tenant_id(),
            &scope,
            &filters.report,
            filters.group_by,
            filters.granularity,
            today(),
        )
        .await?;
    let currency = page.tenant.currency;
    let template = DashboardPage {
        chrome: page.chrome(),
        from: filters.report.period.from.to_string(),
        to: filters.report.period.to.to_string(),
        groups: choices(
            GroupBy::ALL.map(|g| (g.as_str().to_owned(), g.label().to_owned())),
            filters.group_by.as_str(),
        ),
        granularities: choices(
            Granularity::ALL.map(|g| (g.as_str().to_owned(), format!("By {}", g.as_str()))),
            filters.granularity.as_str(),
        ),
        teams: choices(
            directory
                .sorted_teams()
                .into_iter()
                .map(|t| (t.id.to_string(), t.name.clone())),
            &filters
                .report
                .team
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        cost_centres: choices(
            directory
                .sorted_cost_centres()
                .into_iter()
                .map(|c| (c.id.to_string(), format!("{} {}", c.code, c.name))),
            &filters
                .report
                .cost_centre
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
        group_label: filters.group_by.label(),
        query: filters.query_string(),
        can_export: allows(page.signed.session.role, Permission::Export),
        time_chart: time_chart(&dashboard, currency),
        group_chart: group_chart(&dashboard, filters.group_by, currency),
        changes: dashboard.changes.iter().map(ChangeRow::of).collect(),
        groups_shown: GROUPS_SHOWN,
        dashboard,
    };
    let response = page.render(&template)?;
    Ok(with_server_timing(response, started, "dashboard"))
}

/// Logs how long the handler took and tells the client in `Server-Timing` (benchmarks read
/// it to tell server time from the network).
pub fn with_server_timing(mut response: Response, started: Instant, what: &str) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::info!(elapsed_ms = ms, "{what} answered");
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

pub fn choices(options: impl IntoIterator<Item = (String, String)>, chosen: &str) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == chosen,
            value,
            label,
        })
        .collect()
}

fn time_chart(dashboard: &Dashboard, currency: Currency) -> String {
    let bars: Vec<Bar> = dashboard
        .series
        .iter()
        .map(|p| Bar {
            label: p.label.trim_start_matches("week of ").to_owned(),
            value: p.spend.minor,
            tooltip: format!("{}: {} · {} of data", p.label, p.spend, p.data),
        })
        .collect();
    chart::columns("Spend over time", &bars, |v| {
        Money::new(v, currency).to_string()
    })
}

fn group_chart(dashboard: &Dashboard, group_by: GroupBy, currency: Currency) -> String {
    let bars: Vec<Bar> = dashboard
        .groups
        .iter()
        .map(|g| Bar {
            label: g.label.clone(),
            value: g.spend.minor,
            tooltip: format!("{}: {} · {} lines · {}", g.label, g.spend, g.lines, g.data),
        })
        .collect();
    chart::bars(
        &format!("Spend by {}", group_by.label().to_lowercase()),
        &bars,
        |v| Money::new(v, currency).to_string(),
    )
}
