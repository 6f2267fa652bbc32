//! Chargeback's rollup: usage per (cost centre now, month) for the whole tenant, rebuilt when
//! what it sums changed and read only while it is still good (see migration 0031). Usage
//! batches count as changes here ([`usage_changed`]). Lines changing hands and employees
//! changing cost centre are the database triggers' job: while the rollup is current they
//! move the lines' months between cost centres' rows and keep it current (migration 0034).

use time::Date;

use super::query::{Arg, Sql, bind_args, fetch_all};
use super::reports::{CostCentreUsage, Scope, cost_centre_months};
use super::{StoreResult, Tx, on_tx};
use crate::ids::TenantId;

/// Usage was added to or repriced in `tenant`'s months: the rollup is out of date.
pub async fn usage_changed(tx: &mut Tx, tenant: TenantId) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO report_versions (tenant_id, version) VALUES ($1, 1)
             ON CONFLICT (tenant_id) DO UPDATE SET version = report_versions.version + 1",
        )
        .bind(tenant)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// Whether the rollup holds what chargeback would sum now; `false` when it was never built.
pub async fn is_current(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    let current: Option<bool> = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT chargeback_built IS NOT NULL AND chargeback_built = version
             FROM report_versions WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(conn)
        .await?
    });
    Ok(current.unwrap_or(false))
}

/// Tenants whose rollup is out of date (across tenants: the worker's refresh).
pub async fn out_of_date(tx: &mut Tx) -> StoreResult<Vec<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT tenant_id FROM report_versions
             WHERE chargeback_built IS NULL OR chargeback_built <> version
             ORDER BY tenant_id",
        )
        .fetch_all(conn)
        .await?
    }))
}

/// The rollup's months `from..=to` (first days), if it is current; `None` otherwise.
pub async fn months_if_current(
    tx: &mut Tx,
    tenant: TenantId,
    from: Date,
    to: Date,
) -> StoreResult<Option<Vec<CostCentreUsage>>> {
    if !is_current(tx, tenant).await? {
        return Ok(None);
    }
    let mut sql = Sql::new(tenant);
    let (from, to) = (sql.arg(Arg::Date(from)), sql.arg(Arg::Date(to)));
    // A move adds into rows (see migration 0034): rows without a cost centre may be several
    // for a month, and a row whose lines all left counts none.
    sql.push(&format!(
        "SELECT cost_centre_id, month, CAST(SUM(cost_minor) AS BIGINT) AS cost_minor,
             CAST(SUM(data_bytes) AS BIGINT) AS data_bytes
         FROM chargeback_months
         WHERE tenant_id = $1 AND month >= {from} AND month <= {to}
         GROUP BY cost_centre_id, month
         HAVING SUM(line_months) > 0"
    ));
    Ok(Some(fetch_all!(tx, CostCentreUsage, sql)))
}

/// Sums every month again from the lines and records which version it holds. The caller
/// holds the tenant's rollup lock (`usage::lock_rollups`), so no batch adds usage meanwhile;
/// the version is read first, so a move committed while the sums run leaves it out of date
/// rather than wrongly current. Returns whether anything needed building.
pub async fn rebuild(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    let version: Option<i64> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT version FROM report_versions WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    let Some(version) = version else {
        return Ok(false);
    };
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM chargeback_months WHERE tenant_id = $1")
            .bind(tenant)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    let mut sql = cost_centre_months(tx, tenant, &Scope::default(), None);
    sql.push(
        " INSERT INTO chargeback_months (tenant_id, cost_centre_id, month, cost_minor,
             data_bytes, line_months)
         SELECT $1, cost_centre_id, month, cost_minor, data_bytes, line_months FROM sums",
    );
    on_tx!(tx, |conn| {
        bind_args!(sqlx::query(&sql.text), &sql.args)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE report_versions SET chargeback_built = $2 WHERE tenant_id = $1")
            .bind(tenant)
            .bind(version)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(true)
}
