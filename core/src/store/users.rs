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
    /// When the person showed they read this address; unverified accounts cannot sign in.
    pub email_verified_at: Option<OffsetDateTime>,
}

pub async fn insert(tx: &mut Tx, user: &UserRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at, email_verified_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .bind(user.email_verified_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn find_by_email(tx: &mut Tx, email: &str) -> StoreResult<Option<UserRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, email, name, password_hash, created_at, email_verified_at
             FROM users WHERE email = $1",
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

/// Active employees linked to portal members holding one of `roles` (finance, admins).
pub async fn employees_with_roles(
    tx: &mut Tx,
    tenant: TenantId,
    roles: &[&str],
) -> StoreResult<Vec<crate::ids::EmployeeId>> {
    let mut ids = Vec::new();
    for role in roles {
        let found: Vec<crate::ids::EmployeeId> = on_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT m.employee_id FROM memberships m
                 JOIN employees e ON e.id = m.employee_id AND e.tenant_id = m.tenant_id
                 WHERE m.tenant_id = $1 AND m.role = $2 AND e.status = 'active'
                 ORDER BY m.created_at",
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

/// A member of a tenant: the user, their role and the employee record they are, if linked.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: String,
    pub employee_id: Option<crate::ids::EmployeeId>,
    pub employee_name: Option<String>,
    pub employee_email: Option<String>,
    pub created_at: OffsetDateTime,
}

const MEMBER_SELECT: &str = "SELECT u.id AS user_id, u.email, u.name, m.role, m.employee_id,
            CASE WHEN e.id IS NULL THEN NULL ELSE e.given_name || ' ' || e.family_name END
                AS employee_name,
            e.email AS employee_email, m.created_at
     FROM memberships m
     JOIN users u ON u.id = m.user_id
     LEFT JOIN employees e ON e.id = m.employee_id AND e.tenant_id = m.tenant_id
     WHERE m.tenant_id = $1";

pub async fn members(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<MemberRow>> {
    let sql = format!("{MEMBER_SELECT} ORDER BY u.name, u.email");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    }))
}

pub async fn member(tx: &mut Tx, tenant: TenantId, user: UserId) -> StoreResult<Option<MemberRow>> {
    let sql = format!("{MEMBER_SELECT} AND m.user_id = $2");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(user)
            .fetch_optional(conn)
            .await?
    }))
}

pub async fn member_by_email(
    tx: &mut Tx,
    tenant: TenantId,
    email: &str,
) -> StoreResult<Option<MemberRow>> {
    let sql = format!("{MEMBER_SELECT} AND u.email = $2");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(email)
            .fetch_optional(conn)
            .await?
    }))
}

/// The memberships a person holds in `tenant`: linked to their employee record, or held by
/// the user with their email.
pub async fn memberships_of_person(
    tx: &mut Tx,
    tenant: TenantId,
    employee: crate::ids::EmployeeId,
    email: &str,
) -> StoreResult<Vec<MemberRow>> {
    let sql = format!("{MEMBER_SELECT} AND (m.employee_id = $2 OR u.email = $3) ORDER BY u.email");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .bind(email)
            .fetch_all(conn)
            .await?
    }))
}

pub async fn update_membership(
    tx: &mut Tx,
    tenant: TenantId,
    user: UserId,
    role: &str,
    employee: Option<crate::ids::EmployeeId>,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE memberships SET role = $3, employee_id = $4
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .bind(role)
        .bind(employee)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn remove_membership(tx: &mut Tx, tenant: TenantId, user: UserId) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .execute(conn)
            .await?;
    });
    Ok(())
}

pub async fn count_with_role(tx: &mut Tx, tenant: TenantId, role: &str) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = $2")
            .bind(tenant)
            .bind(role)
            .fetch_one(conn)
            .await?
    }))
}

pub async fn set_password(tx: &mut Tx, user: UserId, password_hash: &str) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user)
            .bind(password_hash)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// The tenants a user belongs to (a password is one per person, across tenants).
pub async fn tenants_of(tx: &mut Tx, user: UserId) -> StoreResult<Vec<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT tenant_id FROM memberships WHERE user_id = $1")
            .bind(user)
            .fetch_all(conn)
            .await?
    }))
}

/// The name of a member of `tenant`.
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

pub async fn mark_email_verified(tx: &mut Tx, user: UserId, at: OffsetDateTime) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET email_verified_at = $2 WHERE id = $1 AND email_verified_at IS NULL",
        )
        .bind(user)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The owner of the mailbox claims an account someone else made with their address and never
/// verified: their name and password replace the maker's, and the address counts as verified.
pub async fn claim_unverified(
    tx: &mut Tx,
    user: UserId,
    name: &str,
    password_hash: &str,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET name = $2, password_hash = $3, email_verified_at = $4
             WHERE id = $1 AND email_verified_at IS NULL",
        )
        .bind(user)
        .bind(name)
        .bind(password_hash)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
            == 1
    }))
}
