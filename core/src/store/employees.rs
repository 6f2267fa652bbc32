//! Employees.

use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::email::Email;
use crate::employee::{Employee, EmployeeStatus};
use crate::ids::{CostCentreId, EmployeeId, TeamId, TenantId};

#[derive(sqlx::FromRow)]
struct EmployeeRow {
    id: EmployeeId,
    tenant_id: TenantId,
    email: String,
    given_name: String,
    family_name: String,
    team_id: Option<TeamId>,
    cost_centre_id: Option<CostCentreId>,
    manager_id: Option<EmployeeId>,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<EmployeeRow> for Employee {
    type Error = StoreError;
    fn try_from(r: EmployeeRow) -> StoreResult<Employee> {
        Ok(Employee {
            id: r.id,
            tenant_id: r.tenant_id,
            email: Email::parse(&r.email).map_err(|e| StoreError::corrupt("employee email", e))?,
            given_name: r.given_name,
            family_name: r.family_name,
            team_id: r.team_id,
            cost_centre_id: r.cost_centre_id,
            manager_id: r.manager_id,
            status: EmployeeStatus::parse(&r.status)
                .ok_or_else(|| StoreError::corrupt("employee status", &r.status))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, email, given_name, family_name, team_id, cost_centre_id, \
                       manager_id, status, created_at, updated_at";

pub async fn insert(tx: &mut Tx, tenant: TenantId, e: &Employee) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO employees (id, tenant_id, email, given_name, family_name, team_id,
                 cost_centre_id, manager_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(e.id)
        .bind(tenant)
        .bind(e.email.as_str())
        .bind(&e.given_name)
        .bind(&e.family_name)
        .bind(e.team_id)
        .bind(e.cost_centre_id)
        .bind(e.manager_id)
        .bind(e.status.as_str())
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: EmployeeId) -> StoreResult<Option<Employee>> {
    let sql = format!("SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 AND id = $2");
    let row: Option<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Employee::try_from).transpose()
}

pub async fn find_by_email(
    tx: &mut Tx,
    tenant: TenantId,
    email: &Email,
) -> StoreResult<Option<Employee>> {
    let sql = format!("SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 AND email = $2");
    let row: Option<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(email.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Employee::try_from).transpose()
}

pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Employee>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 ORDER BY family_name, given_name"
    );
    let rows: Vec<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Employee::try_from).collect()
}

/// Every row of the table, whatever the tenant: only meaningful in a tenant-scoped
/// transaction on PostgreSQL, where row-level security must still hide other tenants.
/// Exists so tests can prove that second wall holds.
pub async fn count_visible(tx: &mut Tx) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM employees")
            .fetch_one(conn)
            .await?
    }))
}

pub async fn update_name(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
    given_name: &str,
    family_name: &str,
) -> StoreResult<bool> {
    let done = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE employees SET given_name = $3, family_name = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(given_name)
        .bind(family_name)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// `manager` and everyone below them in the reporting chain. The `UNION` (not `UNION ALL`)
/// stops at rows already seen, so a cycle in the data cannot loop.
pub async fn reporting_tree(
    tx: &mut Tx,
    tenant: TenantId,
    manager: EmployeeId,
) -> StoreResult<Vec<EmployeeId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM employees WHERE tenant_id = $1 AND id = $2
                 UNION
                 SELECT e.id FROM employees e JOIN tree t ON e.manager_id = t.id
                 WHERE e.tenant_id = $1
             )
             SELECT id FROM tree",
        )
        .bind(tenant)
        .bind(manager)
        .fetch_all(conn)
        .await?
    }))
}
