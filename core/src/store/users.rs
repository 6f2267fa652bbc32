//! Portal users and their role in each tenant.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{TenantId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
}

pub async fn insert(tx: &mut Tx, user: &UserRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn find_by_email(tx: &mut Tx, email: &str) -> StoreResult<Option<UserRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, email, name, password_hash, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(conn)
        .await?
    }))
}

pub async fn add_membership(
    tx: &mut Tx,
    tenant: TenantId,
    user: UserId,
    role: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant)
        .bind(user)
        .bind(role)
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn role_in(tx: &mut Tx, tenant: TenantId, user: UserId) -> StoreResult<Option<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .fetch_optional(conn)
            .await?
    }))
}

/// Employees linked to portal members holding one of `roles` (finance, admins).
pub async fn employees_with_roles(
    tx: &mut Tx,
    tenant: TenantId,
    roles: &[&str],
) -> StoreResult<Vec<crate::ids::EmployeeId>> {
    let mut ids = Vec::new();
    for role in roles {
        let found: Vec<crate::ids::EmployeeId> = on_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT employee_id FROM memberships
                 WHERE tenant_id = $1 AND role = $2 AND employee_id IS NOT NULL
                 ORDER BY created_at",
            )
            .bind(tenant)
            .bind(*role)
            .fetch_all(conn)
            .await?
        });
        ids.extend(found);
    }
    ids.dedup();
    Ok(ids)
}

pub async fn link_employee(
    tx: &mut Tx,
    tenant: TenantId,
    user: UserId,
    employee: crate::ids::EmployeeId,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE memberships SET employee_id = $3 WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .bind(employee)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn roles_of_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: crate::ids::EmployeeId,
) -> StoreResult<Vec<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND employee_id = $2")
            .bind(tenant)
            .bind(employee)
            .fetch_all(conn)
            .await?
    }))
}

/// The display name of a member of `tenant` (none for someone outside it).
pub async fn member_name(
    tx: &mut Tx,
    tenant: TenantId,
    user: UserId,
) -> StoreResult<Option<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT u.name FROM users u JOIN memberships m ON m.user_id = u.id
             WHERE m.tenant_id = $1 AND u.id = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(conn)
        .await?
    }))
}
