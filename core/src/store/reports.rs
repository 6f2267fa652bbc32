//! Spend reports: the monthly and tenant-daily usage rollups and the read-only queries behind dashboards and
//! exports. Filters are pushed into SQL so a large tenant's rows never leave the database.

use std::collections::BTreeMap;

use time::{Date, OffsetDateTime};

use super::query::{Arg, Sql, fetch_all, sqlite_rows_as_json};
use super::{StoreResult, Tx, bulk};
use crate::ids::{CostCentreId, EmployeeId, LineId, PlanId, TeamId, TenantId};
use crate::store::usage::DailyUsage;

/// Keeps `usage_monthly` in step with `usage_daily`: adds each batch's day increments to
/// their line's month, one statement per batch.
async fn add_monthly(tx: &mut Tx, tenant: TenantId, rows: &[DailyUsage]) -> StoreResult<()> {
    let mut months: BTreeMap<(LineId, Date), MonthDelta> = BTreeMap::new();
    for row in rows {
        let month = row.day.replace_day(1).expect("day 1 exists");
        let total = months.entry((row.line_id, month)).or_default();
        total.data_bytes += row.data_bytes;
        total.roaming_bytes += row.roaming_bytes;
        total.cost_minor += row.cost_minor;
        if row.data_bytes > 0 || row.sms > 0 || row.voice_seconds > 0 {
            total.last_active_day = total.last_active_day.max(Some(row.day));
        }
    }
    if months.is_empty() {
        return Ok(());
    }
    const ON_CONFLICT: &str = " ON CONFLICT (tenant_id, line_id, month) DO UPDATE SET
             data_bytes = usage_monthly.data_bytes + excluded.data_bytes,
             roaming_bytes = usage_monthly.roaming_bytes + excluded.roaming_bytes,
             cost_minor = usage_monthly.cost_minor + excluded.cost_minor,
             last_active_day = CASE
                 WHEN excluded.last_active_day IS NULL THEN usage_monthly.last_active_day
                 WHEN usage_monthly.last_active_day IS NULL
                     OR excluded.last_active_day > usage_monthly.last_active_day
                 THEN excluded.last_active_day
                 ELSE usage_monthly.last_active_day END";
    const COLUMNS: bulk::Columns<6> = bulk::Columns {
        table: "usage_monthly",
        names: [
            "line_id",
            "month",
            "data_bytes",
            "roaming_bytes",
            "cost_minor",
            "last_active_day",
        ],
    };
    let months: Vec<_> = months.into_iter().collect();
    bulk::insert(
        tx,
        tenant,
        &COLUMNS,
        ON_CONFLICT,
        &months,
        |((line, month), delta)| {
            [
                line.0.into(),
                (*month).into(),
                delta.data_bytes.into(),
                delta.roaming_bytes.into(),
                delta.cost_minor.into(),
                delta.last_active_day.into(),
            ]
        },
    )
    .await?;
    super::chargeback_months::usage_changed(tx, tenant).await
}

/// Keeps both rollups of `usage_daily` in step with a batch of its day increments: each
/// line's months (`usage_monthly`) and the tenant's days (`usage_tenant_daily`).
pub async fn add_rollups(tx: &mut Tx, tenant: TenantId, rows: &[DailyUsage]) -> StoreResult<()> {
    add_monthly(tx, tenant, rows).await?;
    add_tenant_days(tx, tenant, rows).await
}

/// Keeps `usage_tenant_daily` in step with `usage_daily`: adds each batch's day increments
/// to the tenant's day, one statement per batch.
async fn add_tenant_days(tx: &mut Tx, tenant: TenantId, rows: &[DailyUsage]) -> StoreResult<()> {
    let mut days: BTreeMap<Date, (i64, i64)> = BTreeMap::new();
    for row in rows {
        let total = days.entry(row.day).or_default();
        total.0 += row.data_bytes;
        total.1 += row.cost_minor;
    }
    if days.is_empty() {
        return Ok(());
    }
    const ON_CONFLICT: &str = " ON CONFLICT (tenant_id, day) DO UPDATE SET
             data_bytes = usage_tenant_daily.data_bytes + excluded.data_bytes,
             cost_minor = usage_tenant_daily.cost_minor + excluded.cost_minor";
    const COLUMNS: bulk::Columns<3> = bulk::Columns {
        table: "usage_tenant_daily",
        names: ["day", "data_bytes", "cost_minor"],
    };
    let days: Vec<_> = days.into_iter().collect();
    bulk::insert(
        tx,
        tenant,
        &COLUMNS,
        ON_CONFLICT,
        &days,
        |(day, (data, cost))| [(*day).into(), (*data).into(), (*cost).into()],
    )
    .await?;
    Ok(())
}

/// What one batch adds to a line's month.
#[derive(Default)]
struct MonthDelta {
    data_bytes: i64,
    roaming_bytes: i64,
    cost_minor: i64,
    /// The latest day with data, texts or calls, if any.
    last_active_day: Option<Date>,
}

/// Records each (line, month)'s overage as priced on the period total (`line_spend`), so
/// month views include it; one statement per batch.
pub async fn set_monthly_overage(
    tx: &mut Tx,
    tenant: TenantId,
    overages: &[(LineId, Date, i64)],
) -> StoreResult<()> {
    if overages.is_empty() {
        return Ok(());
    }
    const COLUMNS: bulk::Columns<3> = bulk::Columns {
        table: "usage_monthly",
        names: ["line_id", "month", "overage_minor"],
    };
    bulk::update(
        tx,
        tenant,
        &COLUMNS,
        2,
        overages,
        |(line, month, overage)| [line.0.into(), (*month).into(), (*overage).into()],
    )
    .await?;
    super::chargeback_months::usage_changed(tx, tenant).await
}

/// A month's usage charges: roaming priced per record plus the period's overage.
const MONTH_COST: &str = "(u.cost_minor + u.overage_minor)";

/// Which lines a report covers: optionally one team, one cost centre, one manager's
/// reporting tree (by the line's current employee).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub manager: Option<EmployeeId>,
    pub team: Option<TeamId>,
    pub cost_centre: Option<CostCentreId>,
}

/// What the dashboard and chargeback need of a line to bill, group and count it. No names:
/// a report shows a few dozen people at most, and [`people`] reads theirs alone instead of
/// decoding ten thousand.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct BilledLine {
    pub line_id: LineId,
    pub employee_id: EmployeeId,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub plan_id: PlanId,
    pub price_minor: Option<i64>,
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A line with the names the lines export shows: its employee's and its plan's.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportLine {
    #[sqlx(flatten)]
    pub billed: BilledLine,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub plan_name: String,
    pub iccid: Option<String>,
}

/// One line's usage charges and data over the report's months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LineUsage {
    pub line_id: LineId,
    /// Within the period.
    pub period_cost: i64,
    pub period_data: i64,
    /// In the period's last month and the month before it (month-over-month).
    pub last_cost: i64,
    pub previous_cost: i64,
    /// In the calendar month containing today (budget caps).
    pub current_cost: i64,
    /// 1 when the line had data, texts or calls on or after the window's `active_since`.
    pub recently_active: i64,
}

/// Months a [`usage_by_line`] query looks at; each is the first day of a month.
#[derive(Debug, Clone, Copy)]
pub struct MonthWindow {
    pub from: Date,
    pub to: Date,
    pub previous: Date,
    pub current: Date,
    /// A day (not a month): activity on or after it counts as recent.
    pub active_since: Date,
}

/// One line's usage charges and data over a report's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct LinePeriodUsage {
    pub line_id: LineId,
    pub cost: i64,
    pub data: i64,
}

/// One line's usage in the few months a report singles out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct LineRecentUsage {
    pub line_id: LineId,
    /// In the period's last month and the month before it (month-over-month).
    pub last_cost: i64,
    pub previous_cost: i64,
    /// In the calendar month containing today (budget caps).
    pub current_cost: i64,
    /// 1 when the line had data, texts or calls on or after the window's `active_since`.
    pub recently_active: i64,
}

/// The months [`recent_usage_by_line`] singles out; each is the first day of a month.
#[derive(Debug, Clone, Copy)]
pub struct RecentMonths {
    /// The period's last month and the month before it.
    pub last: Date,
    pub previous: Date,
    /// The calendar month containing today.
    pub current: Date,
    /// A day (not a month), at most a month before today: activity on or after it counts
    /// as recent.
    pub active_since: Date,
}

/// Usage summed over one bucket of time (a day or the first day of a month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageTotal {
    pub start: Date,
    pub cost_minor: i64,
    pub data_bytes: i64,
}

/// Usage of one cost centre (or none) in one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct CostCentreUsage {
    pub cost_centre_id: Option<CostCentreId>,
    pub month: Date,
    pub cost_minor: i64,
    pub data_bytes: i64,
}

/// One row of the usage export: a line's day or month.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageExportRow {
    pub line_id: LineId,
    pub start: Date,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub data_bytes: i64,
    pub roaming_bytes: i64,
    pub cost_minor: i64,
}

/// `WITH RECURSIVE tree …` when the scope is a manager's tree (the CTE from
/// `employees::reporting_tree`); starts every query so later text can rely on it.
fn with_tree(sql: &mut Sql, scope: &Scope) {
    sql.push("WITH RECURSIVE tree(id) AS (");
    match scope.manager {
        Some(manager) => {
            let m = sql.arg(Arg::Uuid(manager.0));
            sql.push(&format!(
                "SELECT id FROM employees WHERE tenant_id = $1 AND id = {m}
                 UNION
                 SELECT e.id FROM employees e JOIN tree t ON e.manager_id = t.id
                 WHERE e.tenant_id = $1"
            ));
        }
        None => sql.push("SELECT id FROM employees WHERE 1 = 0"),
    }
    sql.push(")\n");
}

/// Conditions on `e` (the line's employee) for the scope's filters.
fn scope_conditions(sql: &mut Sql, scope: &Scope) {
    if let Some(team) = scope.team {
        let t = sql.arg(Arg::Uuid(team.0));
        sql.push(&format!(" AND e.team_id = {t}"));
    }
    if let Some(centre) = scope.cost_centre {
        let c = sql.arg(Arg::Uuid(centre.0));
        sql.push(&format!(" AND e.cost_centre_id = {c}"));
    }
    if scope.manager.is_some() {
        sql.push(" AND e.id IN (SELECT id FROM tree)");
    }
}

const LINES_OF_EMPLOYEES: &str = "lines l
     JOIN employees e ON e.tenant_id = l.tenant_id AND e.id = l.employee_id";
/// Joins a usage row `u` to its line `l` and the line's employee `e`.
const USAGE_LINE_EMPLOYEE: &str = "JOIN lines l ON l.tenant_id = u.tenant_id AND l.id = u.line_id
     JOIN employees e ON e.tenant_id = l.tenant_id AND e.id = l.employee_id";

/// The scope's lines `l` with their employee `e` and plan `p`, selecting [`BilledLine`]'s
/// columns and then `more`.
fn lines_in_scope(tenant: TenantId, scope: &Scope, more: &str) -> Sql {
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    sql.push(&format!(
        "SELECT l.id AS line_id, l.employee_id, e.team_id, e.cost_centre_id, l.plan_id,
             p.price_minor, l.state, l.created_at, l.updated_at{more}
         FROM {LINES_OF_EMPLOYEES}
         JOIN plans p ON p.tenant_id = l.tenant_id AND p.id = l.plan_id
         WHERE l.tenant_id = $1"
    ));
    scope_conditions(&mut sql, scope);
    sql
}

/// Every line in scope with its employee's and plan's names, in no particular order.
pub async fn lines(tx: &mut Tx, tenant: TenantId, scope: &Scope) -> StoreResult<Vec<ReportLine>> {
    const NAMES: &str = ", e.given_name, e.family_name, e.email, p.name AS plan_name, l.iccid";
    Ok(fetch_all!(
        tx,
        ReportLine,
        lines_in_scope(tenant, scope, NAMES)
    ))
}

/// Every line in scope, without names (see [`BilledLine`]).
pub async fn billed_lines(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
) -> StoreResult<Vec<BilledLine>> {
    let sql = lines_in_scope(tenant, scope, "");
    if let Tx::Sqlite(conn) = tx {
        const COLUMNS: &str = "hex(line_id), hex(employee_id), nullif(hex(team_id), ''),
             nullif(hex(cost_centre_id), ''), hex(plan_id), price_minor, state, created_at,
             updated_at";
        return sqlite_rows_as_json(conn, &sql, COLUMNS).await;
    }
    Ok(fetch_all!(tx, BilledLine, sql))
}

/// `FROM usage_<table> u` joined to the scope's lines when the scope filters anything.
fn usage_from(sql: &mut Sql, table: &str, scope: &Scope) {
    if *scope == Scope::default() {
        sql.push(&format!(" FROM usage_{table} u WHERE u.tenant_id = $1"));
    } else {
        sql.push(&format!(
            " FROM usage_{table} u {USAGE_LINE_EMPLOYEE}
             WHERE u.tenant_id = $1"
        ));
        scope_conditions(sql, scope);
    }
}

/// Usage per line over the window's months, for lines with any usage in them, in one pass:
/// what PostgreSQL does fastest (its hash aggregate takes the `CASE`s in its stride; SQLite
/// reads [`period_usage_by_line`] and [`recent_usage_by_line`] side by side instead).
pub async fn usage_by_line(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    window: MonthWindow,
) -> StoreResult<Vec<LineUsage>> {
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    let from = sql.arg(Arg::Date(window.from));
    let to = sql.arg(Arg::Date(window.to));
    let previous = sql.arg(Arg::Date(window.previous));
    let current = sql.arg(Arg::Date(window.current));
    let since = sql.arg(Arg::Date(window.active_since));
    let since_month = window.active_since.replace_day(1).expect("day 1 exists");
    let earliest = sql.arg(Arg::Date(
        window
            .from
            .min(window.previous)
            .min(window.current)
            .min(since_month),
    ));
    let latest = sql.arg(Arg::Date(window.to.max(window.current)));
    let in_period = format!("u.month >= {from} AND u.month <= {to}");
    let recent = recent_columns(&to, &previous, &current, &since);
    sql.push(&format!(
        "SELECT u.line_id,
             CAST(SUM(CASE WHEN {in_period} THEN {MONTH_COST} ELSE 0 END) AS BIGINT) AS period_cost,
             CAST(SUM(CASE WHEN {in_period} THEN u.data_bytes ELSE 0 END) AS BIGINT) AS period_data,
             {recent}"
    ));
    usage_from(&mut sql, "monthly", scope);
    sql.push(&format!(
        " AND u.month >= {earliest} AND u.month <= {latest} GROUP BY u.line_id"
    ));
    Ok(fetch_all!(tx, LineUsage, sql))
}

/// `FROM` the scope's lines `l`, each joined to its months `u` from `from` to `to` (the
/// placeholders of first days of months), ready for `GROUP BY l.id`. SQLite's planner would
/// rather read the months by the month index and sort a period's rows by line, which for 13
/// months costs twice this: walking the lines in order and seeking each one's months, which
/// also costs the same however much history the tenant has.
fn months_of_lines(sql: &mut Sql, tx: &Tx, scope: &Scope, from: &str, to: &str) {
    let lines = if *scope == Scope::default() {
        "lines l"
    } else {
        LINES_OF_EMPLOYEES
    };
    let then = usage_after_lines(tx);
    sql.push(&format!(
        " FROM {lines}
         {then} usage_monthly u ON u.tenant_id = l.tenant_id AND u.line_id = l.id
             AND u.month >= {from} AND u.month <= {to}
         WHERE l.tenant_id = $1"
    ));
    scope_conditions(sql, scope);
    sql.push(" GROUP BY l.id");
}

/// Each line's usage from month `from` to month `to` (first days of months), for lines with
/// any. Plain sums and nothing else: on a large tenant this reads every line's month of the
/// period (130,000 rows for 10,000 lines over 13 months), where each `CASE` per row would
/// cost as much again.
pub async fn period_usage_by_line(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    from: Date,
    to: Date,
) -> StoreResult<Vec<LinePeriodUsage>> {
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    let from = sql.arg(Arg::Date(from));
    let to = sql.arg(Arg::Date(to));
    sql.push(&format!(
        "SELECT l.id AS line_id, CAST(SUM({MONTH_COST}) AS BIGINT) AS cost,
             CAST(SUM(u.data_bytes) AS BIGINT) AS data"
    ));
    months_of_lines(&mut sql, tx, scope, &from, &to);
    match tx {
        Tx::Sqlite(conn) => sqlite_rows_as_json(conn, &sql, "hex(line_id), cost, data").await,
        Tx::Postgres(_) => Ok(fetch_all!(tx, LinePeriodUsage, sql)),
    }
}

/// Each line's usage in the months `months` singles out, for lines with any. The months
/// between them are read too (one range per line is cheaper than a list) and count for
/// nothing: none is one of them, and their days all precede `active_since`.
pub async fn recent_usage_by_line(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    months: RecentMonths,
) -> StoreResult<Vec<LineRecentUsage>> {
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    // Days on or after `active_since` lie in its month or later ones, up to today's.
    let since_month = months.active_since.replace_day(1).expect("day 1 exists");
    let earliest = sql.arg(Arg::Date(months.previous.min(since_month)));
    let latest = sql.arg(Arg::Date(months.last.max(months.current)));
    let last = sql.arg(Arg::Date(months.last));
    let previous = sql.arg(Arg::Date(months.previous));
    let current = sql.arg(Arg::Date(months.current));
    let since = sql.arg(Arg::Date(months.active_since));
    let recent = recent_columns(&last, &previous, &current, &since);
    sql.push(&format!("SELECT l.id AS line_id, {recent}"));
    months_of_lines(&mut sql, tx, scope, &earliest, &latest);
    match tx {
        Tx::Sqlite(conn) => {
            const COLUMNS: &str =
                "hex(line_id), last_cost, previous_cost, current_cost, recently_active";
            sqlite_rows_as_json(conn, &sql, COLUMNS).await
        }
        Tx::Postgres(_) => Ok(fetch_all!(tx, LineRecentUsage, sql)),
    }
}

/// The columns of [`LineRecentUsage`] after `line_id`, given the placeholders of its months
/// and of the first day that counts as recent.
fn recent_columns(last: &str, previous: &str, current: &str, since: &str) -> String {
    format!(
        "CAST(SUM(CASE WHEN u.month = {last} THEN {MONTH_COST} ELSE 0 END) AS BIGINT) AS last_cost,
         CAST(SUM(CASE WHEN u.month = {previous} THEN {MONTH_COST} ELSE 0 END) AS BIGINT)
             AS previous_cost,
         CAST(SUM(CASE WHEN u.month = {current} THEN {MONTH_COST} ELSE 0 END) AS BIGINT)
             AS current_cost,
         CAST(MAX(CASE WHEN u.last_active_day >= {since} THEN 1 ELSE 0 END) AS BIGINT)
             AS recently_active"
    )
}

/// Usage per month (`daily = false`, reading the monthly rollup) or per day between two
/// dates (inclusive), summed over the scope's lines.
pub async fn usage_over_time(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    from: Date,
    to: Date,
    daily: bool,
) -> StoreResult<Vec<UsageTotal>> {
    let whole_tenant = *scope == Scope::default();
    if !daily && whole_tenant {
        return tenant_months(tx, tenant, from, to).await;
    }
    // Overage is priced on a period's total, so it belongs to the month, not to any day.
    // The whole tenant's days come from their rollup, one row a day instead of one a line.
    let (table, column, cost) = match (daily, whole_tenant) {
        (true, true) => ("tenant_daily", "day", "u.cost_minor"),
        (true, false) => ("daily", "day", "u.cost_minor"),
        (false, _) => ("monthly", "month", MONTH_COST),
    };
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    let from = sql.arg(Arg::Date(from));
    let to = sql.arg(Arg::Date(to));
    sql.push(&format!(
        "SELECT u.{column} AS start, CAST(SUM({cost}) AS BIGINT) AS cost_minor,
             CAST(SUM(u.data_bytes) AS BIGINT) AS data_bytes"
    ));
    usage_from(&mut sql, table, scope);
    sql.push(&format!(
        " AND u.{column} >= {from} AND u.{column} <= {to} GROUP BY u.{column} ORDER BY u.{column}"
    ));
    Ok(fetch_all!(tx, UsageTotal, sql))
}

/// The whole tenant's usage per month from `from` to `to` (first days of months): its days
/// (`usage_tenant_daily`, ~30 rows a month) added up per month, plus the months' overage
/// from the few line-months that have any (`usage_monthly_overage`), instead of summing
/// every line's month.
async fn tenant_months(
    tx: &mut Tx,
    tenant: TenantId,
    from: Date,
    to: Date,
) -> StoreResult<Vec<UsageTotal>> {
    let mut sql = Sql::new(tenant);
    let first = sql.arg(Arg::Date(from));
    let last = sql.arg(Arg::Date(crate::period::Month::containing(to).last_day()));
    sql.push(&format!(
        "SELECT day AS start, cost_minor, data_bytes FROM usage_tenant_daily
         WHERE tenant_id = $1 AND day >= {first} AND day <= {last}"
    ));
    let mut months: BTreeMap<Date, UsageTotal> = BTreeMap::new();
    for day in fetch_all!(tx, UsageTotal, sql) {
        let start = day.start.replace_day(1).expect("day 1 exists");
        let month = months.entry(start).or_insert(UsageTotal {
            start,
            cost_minor: 0,
            data_bytes: 0,
        });
        month.cost_minor += day.cost_minor;
        month.data_bytes += day.data_bytes;
    }
    let mut sql = Sql::new(tenant);
    let from = sql.arg(Arg::Date(from));
    let to = sql.arg(Arg::Date(to));
    sql.push(&format!(
        "SELECT month AS start, CAST(SUM(overage_minor) AS BIGINT) AS cost_minor,
             CAST(0 AS BIGINT) AS data_bytes
         FROM usage_monthly
         WHERE tenant_id = $1 AND overage_minor <> 0 AND month >= {from} AND month <= {to}
         GROUP BY month"
    ));
    for overage in fetch_all!(tx, UsageTotal, sql) {
        months
            .entry(overage.start)
            .or_insert(UsageTotal {
                start: overage.start,
                cost_minor: 0,
                data_bytes: 0,
            })
            .cost_minor += overage.cost_minor;
    }
    Ok(months.into_values().collect())
}

/// Usage per cost centre (of the line's current employee) per month, for chargeback (which
/// then moves the spend of people who changed cost centre to where it was spent).
pub async fn usage_by_cost_centre(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    from: Date,
    to: Date,
) -> StoreResult<Vec<CostCentreUsage>> {
    let mut sql = cost_centre_months(tx, tenant, scope, Some((from, to)));
    sql.push(" SELECT cost_centre_id, month, cost_minor, data_bytes FROM sums");
    Ok(fetch_all!(tx, CostCentreUsage, sql))
}

/// `WITH … sums(cost_centre_id, month, cost_minor, data_bytes)`: the scope's usage per cost
/// centre (of the line's employee now) and month, in `months` (first days, inclusive) or
/// in every month, for the caller to select from. Chargeback reads it, and its rollup
/// (`chargeback_months`) is built of it, so the two always agree.
pub(super) fn cost_centre_months(
    tx: &Tx,
    tenant: TenantId,
    scope: &Scope,
    months: Option<(Date, Date)>,
) -> Sql {
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    let in_months = match months {
        Some((from, to)) => {
            let from = sql.arg(Arg::Date(from));
            let to = sql.arg(Arg::Date(to));
            format!(" AND u.month >= {from} AND u.month <= {to}")
        }
        None => String::new(),
    };
    // Each line's months in a row (a primary-key range), not each month row looking up its
    // line and employee: on SQLite 10,000 lookups instead of 130,000 for a 13-month export.
    let then = usage_after_lines(tx);
    sql.push(&format!(
        ", sums AS (SELECT e.cost_centre_id, u.month,
             CAST(SUM({MONTH_COST}) AS BIGINT) AS cost_minor,
             CAST(SUM(u.data_bytes) AS BIGINT) AS data_bytes,
             COUNT(*) AS line_months
         FROM {LINES_OF_EMPLOYEES}
         {then} usage_monthly u ON u.tenant_id = l.tenant_id AND u.line_id = l.id
         WHERE l.tenant_id = $1{in_months}"
    ));
    scope_conditions(&mut sql, scope);
    sql.push(" GROUP BY e.cost_centre_id, u.month)");
    sql
}

/// The join that reads usage after the lines it belongs to. SQLite's planner would start
/// from the usage rows (the month range looks selective), and takes `CROSS JOIN` as the
/// documented way to keep the order written; PostgreSQL chooses well by itself.
fn usage_after_lines(tx: &Tx) -> &'static str {
    match tx {
        Tx::Sqlite(_) => "CROSS JOIN",
        Tx::Postgres(_) => "JOIN",
    }
}

/// One employee's usage (of the lines they hold now) on one day or in one month.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmployeeUsage {
    pub employee_id: EmployeeId,
    /// Their cost centre now.
    pub cost_centre_id: Option<CostCentreId>,
    /// The day, or the month's first day.
    pub start: Date,
    /// The day's charges, or the month's with its overage.
    pub cost_minor: i64,
    /// The month's overage (0 for a day: overage is priced on the month).
    pub overage_minor: i64,
    pub data_bytes: i64,
}

/// The usage of `employees` in scope per day (`daily`) or month, from `from` to `to`
/// inclusive: what chargeback splits between the cost centres of people who moved.
pub async fn usage_of_employees(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    employees: &[EmployeeId],
    from: Date,
    to: Date,
    daily: bool,
) -> StoreResult<Vec<EmployeeUsage>> {
    if employees.is_empty() {
        return Ok(Vec::new());
    }
    let (table, column, cost, overage) = if daily {
        ("daily", "day", "u.cost_minor", "0")
    } else {
        ("monthly", "month", MONTH_COST, "u.overage_minor")
    };
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    let from = sql.arg(Arg::Date(from));
    let to = sql.arg(Arg::Date(to));
    let ids: Vec<String> = employees
        .iter()
        .map(|id| sql.arg(Arg::Uuid(id.0)))
        .collect();
    sql.push(&format!(
        "SELECT e.id AS employee_id, e.cost_centre_id, u.{column} AS start,
             CAST(SUM({cost}) AS BIGINT) AS cost_minor,
             CAST(SUM({overage}) AS BIGINT) AS overage_minor,
             CAST(SUM(u.data_bytes) AS BIGINT) AS data_bytes
         FROM usage_{table} u {USAGE_LINE_EMPLOYEE}
         WHERE u.tenant_id = $1 AND u.{column} >= {from} AND u.{column} <= {to}
             AND e.id IN ({})",
        ids.join(", ")
    ));
    scope_conditions(&mut sql, scope);
    sql.push(&format!(" GROUP BY e.id, e.cost_centre_id, u.{column}"));
    Ok(fetch_all!(tx, EmployeeUsage, sql))
}

/// Where a page of the usage export starts: after this line's day or month.
pub type UsageCursor = (LineId, Date);

/// Up to `limit` rows of usage per line per day (`daily`) or month, ordered by line then
/// date, after `cursor`. Keyset paging keeps each page one short transaction however large
/// the export.
#[allow(clippy::too_many_arguments)]
pub async fn usage_export_page(
    tx: &mut Tx,
    tenant: TenantId,
    scope: &Scope,
    from: Date,
    to: Date,
    daily: bool,
    cursor: Option<UsageCursor>,
    limit: i64,
) -> StoreResult<Vec<UsageExportRow>> {
    // Overage is priced on a period's total, so it belongs to the month, not to any day.
    let (table, column, cost) = if daily {
        ("daily", "day", "u.cost_minor")
    } else {
        ("monthly", "month", MONTH_COST)
    };
    let mut sql = Sql::new(tenant);
    with_tree(&mut sql, scope);
    sql.push(&format!(
        "SELECT u.line_id, u.{column} AS start, e.given_name, e.family_name, e.email, e.team_id,
             e.cost_centre_id, u.data_bytes, u.roaming_bytes, {cost} AS cost_minor
         FROM usage_{table} u {USAGE_LINE_EMPLOYEE}
         WHERE u.tenant_id = $1"
    ));
    let from = sql.arg(Arg::Date(from));
    let to = sql.arg(Arg::Date(to));
    sql.push(&format!(" AND u.{column} >= {from} AND u.{column} <= {to}"));
    if let Some((line, date)) = cursor {
        let line = sql.arg(Arg::Uuid(line.0));
        let date = sql.arg(Arg::Date(date));
        sql.push(&format!(
            " AND (u.line_id > {line} OR (u.line_id = {line} AND u.{column} > {date}))"
        ));
    }
    scope_conditions(&mut sql, scope);
    let limit = sql.arg(Arg::Int(limit));
    sql.push(&format!(" ORDER BY u.line_id, u.{column} LIMIT {limit}"));
    Ok(fetch_all!(tx, UsageExportRow, sql))
}
