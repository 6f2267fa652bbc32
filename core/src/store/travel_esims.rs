//! Travel eSIMs: which lines end with a trip, and when.

use time::Date;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, LineId, RequestId, TenantId};
use crate::lines::line::travel::{TravelEsim, TravelEsimState};

#[derive(sqlx::FromRow)]
struct TravelRow {
    tenant_id: TenantId,
    line_id: LineId,
    employee_id: EmployeeId,
    request_id: RequestId,
    country: String,
    ends_on: Date,
    state: String,
}

impl TryFrom<TravelRow> for TravelEsim {
    type Error = StoreError;
    fn try_from(r: TravelRow) -> StoreResult<Self> {
        Ok(TravelEsim {
            state: TravelEsimState::parse(&r.state)
                .ok_or_else(|| StoreError::corrupt("travel eSIM state", &r.state))?,
            line_id: r.line_id,
            tenant_id: r.tenant_id,
            employee_id: r.employee_id,
            request_id: r.request_id,
            country: r.country,
            ends_on: r.ends_on,
        })
    }
}

const COLUMNS: &str = "tenant_id, line_id, employee_id, request_id, country, ends_on, state";

/// Inserts unless the line is already a travel eSIM; returns whether it inserted.
pub async fn insert_if_new(tx: &mut Tx, tenant: TenantId, t: &TravelEsim) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO travel_esims (tenant_id, line_id, employee_id, request_id, country,
                 ends_on, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, line_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(t.line_id)
        .bind(t.employee_id)
        .bind(t.request_id)
        .bind(&t.country)
        .bind(t.ends_on)
        .bind(t.state.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Active travel eSIMs whose trip ended before `today`, across tenants.
pub async fn due(tx: &mut Tx, today: Date) -> StoreResult<Vec<TravelEsim>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM travel_esims WHERE state = 'active' AND ends_on < $1
         ORDER BY ends_on"
    );
    let rows: Vec<TravelRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(today).fetch_all(conn).await?
    });
    rows.into_iter().map(TravelEsim::try_from).collect()
}

/// Marks the line's travel eSIM ended; false when it already was.
pub async fn end(tx: &mut Tx, tenant: TenantId, line: LineId) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE travel_esims SET state = 'ended'
             WHERE tenant_id = $1 AND line_id = $2 AND state = 'active'",
        )
        .bind(tenant)
        .bind(line)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

pub async fn list_for_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Vec<TravelEsim>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM travel_esims WHERE tenant_id = $1 AND employee_id = $2
         ORDER BY ends_on DESC"
    );
    let rows: Vec<TravelRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(TravelEsim::try_from).collect()
}
