//! Cost-centre moves: when an employee's cost centre changed, effective from which day, so
//! spend stays with the cost centre it was spent under.

use time::{Date, OffsetDateTime};

use super::{StoreResult, Tx, on_tx};
use crate::ids::{CostCentreId, EmployeeId, TenantId};

/// One change of an employee's cost centre.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct CostCentreMove {
    pub employee_id: EmployeeId,
    pub from_cost_centre_id: Option<CostCentreId>,
    pub to_cost_centre_id: Option<CostCentreId>,
    pub effective_on: Date,
}

pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    change: &CostCentreMove,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cost_centre_moves (id, tenant_id, employee_id, from_cost_centre_id,
                 to_cost_centre_id, effective_on, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(tenant)
        .bind(change.employee_id)
        .bind(change.from_cost_centre_id)
        .bind(change.to_cost_centre_id)
        .bind(change.effective_on)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The tenant's moves effective after `day`, in the order they took effect (a move on the
/// same day after another comes after it).
pub async fn list_after(
    tx: &mut Tx,
    tenant: TenantId,
    day: Date,
) -> StoreResult<Vec<CostCentreMove>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT employee_id, from_cost_centre_id, to_cost_centre_id, effective_on
             FROM cost_centre_moves WHERE tenant_id = $1 AND effective_on > $2
             ORDER BY effective_on, created_at, id",
        )
        .bind(tenant)
        .bind(day)
        .fetch_all(conn)
        .await?
    }))
}
