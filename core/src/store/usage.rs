//! Usage: records (each stored once by its key), daily rollups per line, and spend per line
//! and billing period with the views finance reads (per line, employee, team, cost centre,
//! tenant and month).
//!
//! Writes are batched through `bulk`: `UNNEST`ed arrays on PostgreSQL, multi-row `VALUES`
//! on SQLite.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Sqlite};
use time::{Date, OffsetDateTime};

use super::bulk::{self, Value};
use super::bulk::{Placeholders, sqlite_chunk};
use super::{StoreResult, Tx, on_tx};
use crate::ids::{CostCentreId, EmployeeId, LineId, TeamId, TenantId};
use crate::spend::policy::CapScope;
use crate::spend::usage::{SpendFilter, SpendGrouping};

/// ` AND line_id IN (?, ?, …)` for SQLite, which has no arrays.
fn push_line_list(query: &mut QueryBuilder<'_, Sqlite>, lines: &[LineId]) {
    query.push(" AND line_id IN (");
    let mut list = query.separated(", ");
    for line in lines {
        list.push_bind(*line);
    }
    query.push(")");
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyUsage {
    pub line_id: LineId,
    pub day: Date,
    pub data_bytes: i64,
    pub roaming_bytes: i64,
    pub sms: i64,
    pub voice_seconds: i64,
    pub cost_minor: i64,
}

/// A (line, day)'s data after a batch was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DayTotal {
    pub line_id: LineId,
    pub day: Date,
    pub data_bytes: i64,
}

/// Adds to each (line, day)'s totals, and to their rollups (`reports::add_rollups`). Each
/// (line, day) may appear once per call.
pub async fn add_daily_batch(
    tx: &mut Tx,
    tenant: TenantId,
    days: &[DailyUsage],
) -> StoreResult<()> {
    add_days(tx, tenant, days, i64::MAX).await?;
    super::reports::add_rollups(tx, tenant, days).await
}

/// Adds to each (line, day)'s totals and returns the days whose new data total is above
/// `report_above` bytes (the rest are not worth sending back). Each (line, day) may appear
/// once per call. Rollups are the caller's to keep in step (`reports::add_rollups`).
pub async fn add_days(
    tx: &mut Tx,
    tenant: TenantId,
    days: &[DailyUsage],
    report_above: i64,
) -> StoreResult<Vec<DayTotal>> {
    const ON_CONFLICT: &str = " ON CONFLICT (tenant_id, line_id, day) DO UPDATE SET
             data_bytes = usage_daily.data_bytes + excluded.data_bytes,
             roaming_bytes = usage_daily.roaming_bytes + excluded.roaming_bytes,
             sms = usage_daily.sms + excluded.sms,
             voice_seconds = usage_daily.voice_seconds + excluded.voice_seconds,
             cost_minor = usage_daily.cost_minor + excluded.cost_minor
         RETURNING line_id, day, data_bytes";
    if days.is_empty() {
        return Ok(Vec::new());
    }
    const COLUMNS: bulk::Columns<7> = bulk::Columns {
        table: "usage_daily",
        names: [
            "line_id",
            "day",
            "data_bytes",
            "roaming_bytes",
            "sms",
            "voice_seconds",
            "cost_minor",
        ],
    };
    let totals: Vec<DayTotal> =
        bulk::insert_returning(tx, tenant, &COLUMNS, ON_CONFLICT, days, |d| {
            [
                d.line_id.0.into(),
                d.day.into(),
                d.data_bytes.into(),
                d.roaming_bytes.into(),
                d.sms.into(),
                d.voice_seconds.into(),
                d.cost_minor.into(),
            ]
        })
        .await?;
    Ok(totals
        .into_iter()
        .filter(|d| d.data_bytes > report_above)
        .collect())
}

pub async fn daily_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Vec<DailyUsage>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT line_id, day, data_bytes, roaming_bytes, sms, voice_seconds, cost_minor
             FROM usage_daily WHERE tenant_id = $1 AND line_id = $2 ORDER BY day",
        )
        .bind(tenant)
        .bind(line)
        .fetch_all(conn)
        .await?
    }))
}

/// Every line's days between two dates (inclusive), by line then day.
pub async fn daily_between(
    tx: &mut Tx,
    tenant: TenantId,
    from: Date,
    to: Date,
) -> StoreResult<Vec<DailyUsage>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT line_id, day, data_bytes, roaming_bytes, sms, voice_seconds, cost_minor
             FROM usage_daily WHERE tenant_id = $1 AND day >= $2 AND day <= $3
             ORDER BY line_id, day",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await?
    }))
}

/// One usage record as stored; `dedupe_key` makes a record count once however often it comes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub dedupe_key: String,
    pub line_id: LineId,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub data_bytes: i64,
    pub sms: i64,
    pub voice_seconds: i64,
    pub country: Option<String>,
    pub roaming: bool,
    pub cost_minor: i64,
    pub observed_at: OffsetDateTime,
}

/// Which of a batch's records `insert_records` stored: those whose keys it had never seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    All,
    Only(HashSet<String>),
}

/// Stores the records whose keys were never seen. Keys must be unique within `rows`.
///
/// First tries a plain insert of the whole batch (the usual case: a sync moving forward brings
/// only new records) and, if any key was stored before, undoes it and inserts with
/// `ON CONFLICT DO NOTHING … RETURNING`, which checks every key and costs about half as much
/// again (on SQLite each returned key also crosses from its worker thread one by one).
pub async fn insert_records(
    tx: &mut Tx,
    tenant: TenantId,
    rows: &[UsageRow],
) -> StoreResult<Stored> {
    if rows.is_empty() {
        return Ok(Stored::All);
    }
    if insert_all_new_records(tx, tenant, rows).await? {
        return Ok(Stored::All);
    }
    let stored: Vec<(String,)> = bulk::insert_returning(
        tx,
        tenant,
        &RECORD_COLUMNS,
        " ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING dedupe_key",
        rows,
        record_values,
    )
    .await?;
    let stored: HashSet<String> = stored.into_iter().map(|(key,)| key).collect();
    Ok(if stored.len() == rows.len() {
        Stored::All
    } else {
        Stored::Only(stored)
    })
}

/// Inserts the batch as new records, or nothing (and returns false) when any of their keys
/// was stored before.
async fn insert_all_new_records(
    tx: &mut Tx,
    tenant: TenantId,
    rows: &[UsageRow],
) -> StoreResult<bool> {
    run_statement(tx, "SAVEPOINT new_records").await?;
    match bulk::insert(tx, tenant, &RECORD_COLUMNS, "", rows, record_values).await {
        Ok(_) => {
            run_statement(tx, "RELEASE SAVEPOINT new_records").await?;
            Ok(true)
        }
        Err(e) if e.is_unique_violation() => {
            run_statement(tx, "ROLLBACK TO SAVEPOINT new_records").await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

async fn run_statement(tx: &mut Tx, sql: &str) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(sql).execute(conn).await?;
    });
    Ok(())
}

const RECORD_COLUMNS: bulk::Columns<11> = bulk::Columns {
    table: "usage_records",
    names: [
        "dedupe_key",
        "line_id",
        "started_at",
        "ended_at",
        "data_bytes",
        "sms",
        "voice_seconds",
        "country",
        "roaming",
        "cost_minor",
        "observed_at",
    ],
};

fn record_values(r: &UsageRow) -> [Value<'_>; 11] {
    [
        (&r.dedupe_key).into(),
        r.line_id.0.into(),
        r.started_at.into(),
        r.ended_at.into(),
        r.data_bytes.into(),
        r.sms.into(),
        r.voice_seconds.into(),
        r.country.as_deref().into(),
        r.roaming.into(),
        r.cost_minor.into(),
        r.observed_at.into(),
    ]
}

/// Holds this tenant's usage rollups until the transaction ends, so batches that stored their
/// records side by side add them up and check caps one after another. (SQLite transactions
/// already write one at a time.)
pub async fn lock_rollups(tx: &mut Tx, tenant: TenantId) -> StoreResult<()> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('usage_rollups:' || $1, 0))")
            .bind(tenant.0.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Roaming records between two instants, oldest first: the what-if replay prices them again.
pub async fn roaming_records_between(
    tx: &mut Tx,
    tenant: TenantId,
    from: OffsetDateTime,
    until: OffsetDateTime,
) -> StoreResult<Vec<UsageRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT dedupe_key, line_id, started_at, ended_at, data_bytes, sms, voice_seconds,
                 country, roaming, cost_minor, observed_at
             FROM usage_records
             WHERE tenant_id = $1 AND roaming AND started_at >= $2 AND started_at < $3
             ORDER BY started_at, dedupe_key",
        )
        .bind(tenant)
        .bind(from)
        .bind(until)
        .fetch_all(conn)
        .await?
    }))
}

/// The stored records with these keys (a staged page's, rolled up after a crash).
pub async fn records_with_keys(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[String],
) -> StoreResult<Vec<UsageRow>> {
    const COLUMNS: &str = "SELECT dedupe_key, line_id, started_at, ended_at, data_bytes, sms,
                               voice_seconds, country, roaming, cost_minor, observed_at
                           FROM usage_records WHERE tenant_id = $1";
    Ok(match tx {
        Tx::Postgres(tx) => {
            sqlx::query_as(&format!("{COLUMNS} AND dedupe_key = ANY($2)"))
                .bind(tenant)
                .bind(keys)
                .fetch_all(&mut **tx)
                .await?
        }
        Tx::Sqlite(tx) => {
            sqlx::query_as(&format!(
                "{COLUMNS} AND dedupe_key IN (SELECT value FROM json_each($2))"
            ))
            .bind(tenant)
            .bind(serde_json::to_string(keys).expect("strings serialise"))
            .fetch_all(&mut **tx)
            .await?
        }
    })
}

/// How many roaming records each (line, country) has since `since`: a count equal to what
/// the current batch just added means the country is new for the line.
pub async fn roaming_record_counts(
    tx: &mut Tx,
    tenant: TenantId,
    lines: &[LineId],
    since: OffsetDateTime,
) -> StoreResult<Vec<(LineId, String, i64)>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    match tx {
        Tx::Postgres(tx) => Ok(sqlx::query_as(
            "SELECT line_id, country, COUNT(*) FROM usage_records
             WHERE tenant_id = $1 AND roaming AND country IS NOT NULL AND started_at >= $2
               AND line_id = ANY($3)
             GROUP BY line_id, country",
        )
        .bind(tenant)
        .bind(since)
        .bind(lines.iter().map(|l| l.0).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?),
        Tx::Sqlite(tx) => {
            let mut counts = Vec::new();
            for chunk in lines.chunks(sqlite_chunk(1, Placeholders::Anonymous)) {
                let mut query = QueryBuilder::<Sqlite>::new(
                    "SELECT line_id, country, COUNT(*) FROM usage_records WHERE tenant_id = ",
                );
                query.push_bind(tenant);
                query.push(" AND roaming AND country IS NOT NULL AND started_at >= ");
                query.push_bind(since);
                push_line_list(&mut query, chunk);
                query.push(" GROUP BY line_id, country");
                counts.extend(
                    query
                        .build_query_as::<(LineId, String, i64)>()
                        .fetch_all(&mut **tx)
                        .await?,
                );
            }
            Ok(counts)
        }
    }
}

/// Recent days of the given lines from `from` on, for baselines.
pub async fn daily_for_lines_since(
    tx: &mut Tx,
    tenant: TenantId,
    lines: &[LineId],
    from: Date,
) -> StoreResult<Vec<DailyUsage>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    const COLUMNS: &str = "line_id, day, data_bytes, roaming_bytes, sms, voice_seconds, cost_minor";
    match tx {
        Tx::Postgres(tx) => Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM usage_daily
             WHERE tenant_id = $1 AND day >= $2 AND line_id = ANY($3) ORDER BY line_id, day"
        ))
        .bind(tenant)
        .bind(from)
        .bind(lines.iter().map(|l| l.0).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?),
        Tx::Sqlite(tx) => {
            let mut days = Vec::new();
            for chunk in lines.chunks(sqlite_chunk(1, Placeholders::Anonymous)) {
                let mut query = QueryBuilder::<Sqlite>::new(format!(
                    "SELECT {COLUMNS} FROM usage_daily WHERE tenant_id = "
                ));
                query.push_bind(tenant);
                query.push(" AND day >= ");
                query.push_bind(from);
                push_line_list(&mut query, chunk);
                query.push(" ORDER BY line_id, day");
                days.extend(
                    query
                        .build_query_as::<DailyUsage>()
                        .fetch_all(&mut **tx)
                        .await?,
                );
            }
            Ok(days)
        }
    }
}

/// Live lines with no usage since `since`, created before it: candidates for cancelling.
pub async fn lines_without_usage_since(
    tx: &mut Tx,
    tenant: TenantId,
    since: Date,
    created_before: OffsetDateTime,
) -> StoreResult<Vec<LineId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT l.id FROM lines l
             WHERE l.tenant_id = $1 AND l.state IN ('ready', 'active') AND l.created_at < $3
               AND NOT EXISTS (SELECT 1 FROM usage_daily u
                   WHERE u.tenant_id = l.tenant_id AND u.line_id = l.id AND u.day >= $2
                     AND (u.data_bytes > 0 OR u.sms > 0 OR u.voice_seconds > 0))
             ORDER BY l.created_at, l.id",
        )
        .bind(tenant)
        .bind(since)
        .bind(created_before)
        .fetch_all(conn)
        .await?
    }))
}

/// What a batch of usage adds to a line's period. The owner columns and the plan price are
/// taken when the period's row is first created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendDelta {
    pub line_id: LineId,
    pub period: String,
    pub employee_id: EmployeeId,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub plan_price_minor: i64,
    pub bundle_bytes: i64,
    pub roaming_bytes: i64,
    pub roaming_minor: i64,
}

/// A line's period after the batch: its bundle total, from which overage is priced, and the
/// overage stored so far.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PeriodBundle {
    pub line_id: LineId,
    pub period: String,
    pub bundle_bytes: i64,
    pub overage_minor: i64,
}

/// Adds each delta to its (line, period) row, creating it on first use, and returns the new
/// bundle totals. Each (line, period) may appear once per call.
pub async fn add_line_spend(
    tx: &mut Tx,
    tenant: TenantId,
    deltas: &[SpendDelta],
) -> StoreResult<Vec<PeriodBundle>> {
    const ON_CONFLICT: &str = " ON CONFLICT (tenant_id, line_id, period) DO UPDATE SET
             bundle_bytes = line_spend.bundle_bytes + excluded.bundle_bytes,
             roaming_bytes = line_spend.roaming_bytes + excluded.roaming_bytes,
             roaming_minor = line_spend.roaming_minor + excluded.roaming_minor,
             updated_at = excluded.updated_at
         RETURNING line_id, period, bundle_bytes, overage_minor";
    if deltas.is_empty() {
        return Ok(Vec::new());
    }
    let now = super::now();
    bulk::insert_returning(tx, tenant, &SPEND_COLUMNS, ON_CONFLICT, deltas, |d| {
        [
            d.line_id.0.into(),
            d.period.as_str().into(),
            d.employee_id.0.into(),
            d.team_id.map(|id| id.0).into(),
            d.cost_centre_id.map(|id| id.0).into(),
            d.plan_price_minor.into(),
            d.bundle_bytes.into(),
            d.roaming_bytes.into(),
            0_i64.into(),
            d.roaming_minor.into(),
            now.into(),
        ]
    })
    .await
}

const SPEND_COLUMNS: bulk::Columns<11> = bulk::Columns {
    table: "line_spend",
    names: [
        "line_id",
        "period",
        "employee_id",
        "team_id",
        "cost_centre_id",
        "plan_price_minor",
        "bundle_bytes",
        "roaming_bytes",
        "overage_minor",
        "roaming_minor",
        "updated_at",
    ],
};

/// Sets each (line, period)'s overage, priced by the caller from the period's bundle total.
pub async fn set_overage(
    tx: &mut Tx,
    tenant: TenantId,
    overages: &[(LineId, String, i64)],
) -> StoreResult<()> {
    if overages.is_empty() {
        return Ok(());
    }
    let monthly: Vec<_> = overages
        .iter()
        .filter_map(|(line, period, overage)| {
            let month = crate::period::Month::parse(period)?;
            Some((*line, month.first_day(), *overage))
        })
        .collect();
    super::reports::set_monthly_overage(tx, tenant, &monthly).await?;
    const COLUMNS: bulk::Columns<3> = bulk::Columns {
        table: "line_spend",
        names: ["line_id", "period", "overage_minor"],
    };
    bulk::update(
        tx,
        tenant,
        &COLUMNS,
        2,
        overages,
        |(line, period, overage)| [line.0.into(), period.as_str().into(), (*overage).into()],
    )
    .await
}

/// Opens each delta's period for its line at its plan's price (no usage yet); rows that exist
/// are left as they are. Returns how many it opened.
pub async fn open_periods(
    tx: &mut Tx,
    tenant: TenantId,
    opening: &[SpendDelta],
) -> StoreResult<u64> {
    let now = super::now();
    bulk::insert(
        tx,
        tenant,
        &SPEND_COLUMNS,
        " ON CONFLICT (tenant_id, line_id, period) DO NOTHING",
        opening,
        |d| {
            [
                d.line_id.0.into(),
                d.period.as_str().into(),
                d.employee_id.0.into(),
                d.team_id.map(|id| id.0).into(),
                d.cost_centre_id.map(|id| id.0).into(),
                d.plan_price_minor.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
                0_i64.into(),
                now.into(),
            ]
        },
    )
    .await
}

/// What each of `scopes` spent in one period (plan prices, overage and roaming over its
/// lines), added up in the database so only one number per scope comes back. Scopes with no
/// lines in the period are left out.
pub async fn spend_of_scopes(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
    scopes: &[CapScope],
) -> StoreResult<HashMap<CapScope, i64>> {
    const SPENT: &str = "CAST(SUM(plan_price_minor + overage_minor + roaming_minor) AS BIGINT)";
    let ids = |kind: &str| -> Vec<uuid::Uuid> {
        scopes
            .iter()
            .filter_map(|s| match s.parts() {
                (k, Some(id)) if k == kind => Some(id),
                _ => None,
            })
            .collect()
    };
    let tenant_capped = scopes.contains(&CapScope::Tenant);
    let rows: Vec<(String, Option<uuid::Uuid>, i64)> = match tx {
        Tx::Postgres(tx) => {
            sqlx::query_as(&format!(
                "SELECT 'employee', employee_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND employee_id = ANY($3)
                 GROUP BY employee_id
                 UNION ALL
                 SELECT 'team', team_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND team_id = ANY($4) GROUP BY team_id
                 UNION ALL
                 SELECT 'cost_centre', cost_centre_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND cost_centre_id = ANY($5)
                 GROUP BY cost_centre_id
                 UNION ALL
                 SELECT 'tenant', NULL, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND $6 HAVING COUNT(*) > 0"
            ))
            .bind(tenant)
            .bind(period)
            .bind(ids("employee"))
            .bind(ids("team"))
            .bind(ids("cost_centre"))
            .bind(tenant_capped)
            .fetch_all(&mut **tx)
            .await?
        }
        // No arrays to filter by: every group comes back, and the wanted ones are kept below.
        Tx::Sqlite(tx) => {
            sqlx::query_as(&format!(
                "SELECT 'employee', employee_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 GROUP BY employee_id
                 UNION ALL
                 SELECT 'team', team_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND team_id IS NOT NULL GROUP BY team_id
                 UNION ALL
                 SELECT 'cost_centre', cost_centre_id, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 AND cost_centre_id IS NOT NULL
                 GROUP BY cost_centre_id
                 UNION ALL
                 SELECT 'tenant', NULL, {SPENT} FROM line_spend
                 WHERE tenant_id = $1 AND period = $2 HAVING COUNT(*) > 0"
            ))
            .bind(tenant)
            .bind(period)
            .fetch_all(&mut **tx)
            .await?
        }
    };
    let wanted: HashSet<&CapScope> = scopes.iter().collect();
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, spent)| Some((CapScope::parse(&kind, id)?, spent)))
        .filter(|(scope, _)| wanted.contains(scope))
        .collect())
}

/// Data an employee's lines used between two dates (inclusive), in bytes.
pub async fn employee_data_between(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    from: Date,
    to: Date,
) -> StoreResult<i64> {
    let total: Option<i64> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(SUM(u.data_bytes) AS BIGINT)
             FROM usage_daily u JOIN lines l ON l.id = u.line_id AND l.tenant_id = u.tenant_id
             WHERE u.tenant_id = $1 AND l.employee_id = $2 AND u.day >= $3 AND u.day <= $4",
        )
        .bind(tenant)
        .bind(employee)
        .bind(from)
        .bind(to)
        .fetch_one(conn)
        .await?
    });
    Ok(total.unwrap_or(0))
}

/// An employee's roaming history over all their lines: the days with roaming use, and the
/// roaming bytes of those days.
pub async fn roaming_history(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<(i64, i64)> {
    let (days, bytes): (i64, Option<i64>) = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT COUNT(DISTINCT u.day), CAST(SUM(u.roaming_bytes) AS BIGINT)
             FROM usage_daily u JOIN lines l ON l.id = u.line_id AND l.tenant_id = u.tenant_id
             WHERE u.tenant_id = $1 AND l.employee_id = $2 AND u.roaming_bytes > 0",
        )
        .bind(tenant)
        .bind(employee)
        .fetch_one(conn)
        .await?
    });
    Ok((days, bytes.unwrap_or(0)))
}

/// An employee's spend (plan prices, overage, roaming) over all their lines in one period.
pub async fn employee_period_spend(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    period: &str,
) -> StoreResult<i64> {
    let total: Option<i64> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(SUM(plan_price_minor + overage_minor + roaming_minor) AS BIGINT)
             FROM line_spend WHERE tenant_id = $1 AND employee_id = $2 AND period = $3",
        )
        .bind(tenant)
        .bind(employee)
        .bind(period)
        .fetch_one(conn)
        .await?
    });
    Ok(total.unwrap_or(0))
}

impl SpendGrouping {
    fn column(self) -> &'static str {
        match self {
            Self::Line => "line_id",
            Self::Employee => "employee_id",
            Self::Team => "team_id",
            Self::CostCentre => "cost_centre_id",
            Self::Tenant => "CAST(NULL AS uuid)",
        }
    }
}

/// One group's spend in one period. `key` is the group's id (`None` for the tenant, or for
/// lines whose owner has no team or cost centre).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SpendRow {
    pub period: String,
    pub key: Option<uuid::Uuid>,
    pub lines: i64,
    pub plan_minor: i64,
    pub overage_minor: i64,
    pub roaming_minor: i64,
    pub total_minor: i64,
    pub bundle_bytes: i64,
    pub roaming_bytes: i64,
}

/// Spend per period and group, oldest period first, then largest spend first.
pub async fn spend_by(
    tx: &mut Tx,
    tenant: TenantId,
    grouping: SpendGrouping,
    filter: &SpendFilter,
) -> StoreResult<Vec<SpendRow>> {
    let key = grouping.column();
    let group = match grouping {
        SpendGrouping::Tenant => "period".to_owned(),
        _ => format!("period, {key}"),
    };
    let sql = format!(
        "SELECT period, {key} AS key, COUNT(*) AS lines,
             CAST(SUM(plan_price_minor) AS BIGINT) AS plan_minor,
             CAST(SUM(overage_minor) AS BIGINT) AS overage_minor,
             CAST(SUM(roaming_minor) AS BIGINT) AS roaming_minor,
             CAST(SUM(plan_price_minor + overage_minor + roaming_minor) AS BIGINT) AS total_minor,
             CAST(SUM(bundle_bytes) AS BIGINT) AS bundle_bytes,
             CAST(SUM(roaming_bytes) AS BIGINT) AS roaming_bytes
         FROM line_spend
         WHERE tenant_id = $1
           AND ($2 IS NULL OR period >= $2) AND ($3 IS NULL OR period <= $3)
           AND ($4 IS NULL OR team_id = $4) AND ($5 IS NULL OR cost_centre_id = $5)
         GROUP BY {group}
         ORDER BY period, total_minor DESC, key"
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(&filter.from_period)
            .bind(&filter.to_period)
            .bind(filter.team)
            .bind(filter.cost_centre)
            .fetch_all(conn)
            .await?
    }))
}
