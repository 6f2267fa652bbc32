//! Portal sessions. Looked up by the hash of the cookie's token, always within the tenant
//! the request's host names, so a session can never be replayed against another tenant.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, TenantId, UserId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A live session joined with who holds it and their role in the tenant.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionHolder {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: String,
    pub employee_id: Option<EmployeeId>,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

pub async fn insert(tx: &mut Tx, tenant: TenantId, row: &SessionRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO sessions (token_hash, tenant_id, user_id, csrf_token, created_at,
                 expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.token_hash)
        .bind(tenant)
        .bind(row.user_id)
        .bind(&row.csrf_token)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The session's holder while it is unexpired and they are still a member of the tenant.
pub async fn holder(
    tx: &mut Tx,
    tenant: TenantId,
    token_hash: &str,
    now: OffsetDateTime,
) -> StoreResult<Option<SessionHolder>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT u.id AS user_id, u.email, u.name, m.role, m.employee_id, s.csrf_token,
                    s.expires_at
             FROM sessions s
             JOIN users u ON u.id = s.user_id
             JOIN memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
             WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > $3",
        )
        .bind(tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(conn)
        .await?
    }))
}

pub async fn delete(tx: &mut Tx, tenant: TenantId, token_hash: &str) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND token_hash = $2")
            .bind(tenant)
            .bind(token_hash)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Ends every session of a user in the tenant (password reset, removal).
pub async fn delete_for_user(tx: &mut Tx, tenant: TenantId, user: UserId) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .execute(conn)
            .await?
            .rows_affected()
    }))
}

/// Sessions past their expiry: they no longer sign anyone in, but their rows would stay
/// forever (and a stolen database would hold every token hash ever issued).
pub async fn delete_expired(
    tx: &mut Tx,
    tenant: TenantId,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND expires_at <= $2")
            .bind(tenant)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
    }))
}
