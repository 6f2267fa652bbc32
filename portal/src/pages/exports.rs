//! CSV exports of the dashboard's filters: usage per line per day or month, chargeback by
//! cost centre, and lines. Managers get their reporting tree only.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use lineup_core::money::{Bytes, Currency};
use lineup_core::spend::reports::{self, Granularity, ReportScope, UsageCursor};

use super::dashboard::{SpendFilters, scoped, today, with_server_timing};
use crate::Portal;
use crate::error::PortalError;
use crate::spreadsheet::{CsvChunk, download, paged_body, text};
use crate::view::Page;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/exports/usage.csv", get(usage))
        .route("/exports/chargeback.csv", get(chargeback))
        .route("/exports/lines.csv", get(lines))
}

/// Usage rows fetched per page of a streamed export.
const USAGE_PAGE: i64 = 5_000;

/// Gigabytes (binary, as carriers bill) with three decimals.
pub fn gigabytes(bytes: i64) -> String {
    format!("{:.3}", bytes as f64 / Bytes::GB as f64)
}

async fn usage(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let (filters, scope) = scoped(&portal, &page, raw.as_deref()).await?;
    // Weeks are sums of days: the daily rows let a spreadsheet make them.
    let daily = filters.granularity != Granularity::Month;
    let filename = format!(
        "lineup-usage-{}-{}.csv",
        if daily { "daily" } else { "monthly" },
        filters.period_slug()
    );
    let header = CsvChunk::new()
        .plain([
            if daily { "date" } else { "month" },
            "line_id",
            "employee",
            "email",
            "team",
            "cost_centre",
            "data_bytes",
            "data_gb",
            "roaming_bytes",
            "usage_charges",
            "currency",
        ])
        .take();
    let export = Arc::new(UsageExport {
        portal,
        tenant: page.tenant_id(),
        currency: page.tenant.currency,
        filters,
        scope,
        daily,
    });
    let body = paged_body(header, move |cursor| {
        let export = export.clone();
        async move { export.page(cursor).await }
    });
    Ok(download(&filename, body))
}

struct UsageExport {
    portal: Portal,
    tenant: lineup_core::ids::TenantId,
    currency: Currency,
    filters: SpendFilters,
    scope: ReportScope,
    daily: bool,
}

impl UsageExport {
    async fn page(
        &self,
        cursor: Option<UsageCursor>,
    ) -> Result<(axum::body::Bytes, Option<UsageCursor>), PortalError> {
        let rows = self
            .portal
            .lineup
            .usage_export_page(
                self.tenant,
                &self.scope,
                &self.filters.report,
                self.daily,
                cursor,
                USAGE_PAGE,
            )
            .await?;
        let mut chunk = CsvChunk::new();
        for row in &rows {
            let date = if self.daily {
                row.start.to_string()
            } else {
                lineup_core::period::Month::containing(row.start).to_string()
            };
            let centre = self.scope.directory.cost_centre(row.cost_centre_id);
            chunk.plain([
                date,
                row.line_id.to_string(),
                text(format!("{} {}", row.given_name, row.family_name)),
                text(&row.email),
                text(self.scope.directory.team_name(row.team_id)),
                text(centre.map_or("", |c| c.code.as_str())),
                row.data_bytes.to_string(),
                gigabytes(row.data_bytes),
                row.roaming_bytes.to_string(),
                self.currency.format_amount(row.cost_minor),
                self.currency.to_string(),
            ]);
        }
        let next = (rows.len() as i64 == USAGE_PAGE)
            .then(|| rows.last().map(|r| (r.line_id, r.start)))
            .flatten();
        Ok((chunk.take(), next))
    }
}

async fn chargeback(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let started = std::time::Instant::now();
    let (filters, scope) = scoped(&portal, &page, raw.as_deref()).await?;
    let rows = portal
        .lineup
        .chargeback(page.tenant_id(), &scope, &filters.report)
        .await?;
    let currency = page.tenant.currency;
    let mut csv = CsvChunk::new();
    csv.plain([
        "cost_centre_code",
        "cost_centre_name",
        "month",
        "lines",
        "data_gb",
        "plan_fees",
        "usage_charges",
        "total",
        "currency",
    ]);
    for row in &rows {
        let (code, name) = row
            .cost_centre
            .as_ref()
            .map_or(("", "No cost centre"), |c| {
                (c.code.as_str(), c.name.as_str())
            });
        csv.plain([
            text(code),
            text(name),
            row.month.to_string(),
            row.lines.to_string(),
            gigabytes(row.data.0),
            currency.format_amount(row.plan_fees.minor),
            currency.format_amount(row.usage.minor),
            currency.format_amount(row.total.minor),
            currency.to_string(),
        ]);
    }
    let filename = format!("lineup-chargeback-{}.csv", filters.period_slug());
    let response = download(&filename, Body::from(csv.take()));
    Ok(with_server_timing(response, started, "chargeback export"))
}

async fn lines(
    State(portal): State<Portal>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, PortalError> {
    let (_, scope) = scoped(&portal, &page, raw.as_deref()).await?;
    let directory = &scope.directory;
    let lines = portal.lineup.report_lines(page.tenant_id(), &scope).await?;
    let currency = page.tenant.currency;
    let mut csv = CsvChunk::new();
    csv.plain([
        "line_id",
        "employee",
        "email",
        "team",
        "cost_centre",
        "plan",
        "monthly_price",
        "currency",
        "state",
        "iccid",
        "created_at",
        "updated_at",
    ]);
    for line in &lines {
        let billed = &line.billed;
        let centre = directory.cost_centre(billed.cost_centre_id);
        csv.plain([
            billed.line_id.to_string(),
            text(reports::employee_name(line)),
            text(&line.email),
            text(directory.team_name(billed.team_id)),
            text(centre.map_or("", |c| c.code.as_str())),
            text(&line.plan_name),
            billed
                .price_minor
                .map(|p| currency.format_amount(p))
                .unwrap_or_default(),
            currency.to_string(),
            billed.state.clone(),
            line.iccid.clone().unwrap_or_default(),
            rfc3339(billed.created_at),
            rfc3339(billed.updated_at),
        ]);
    }
    let filename = format!("lineup-lines-{}.csv", today());
    Ok(download(&filename, Body::from(csv.take())))
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
