//! Single-use links (invites, password resets): only the SHA-256 of the token is stored, and
//! a token is found only within the tenant whose host it was opened on.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserTokenRow {
    pub token_hash: String,
    pub purpose: String,
    pub email: String,
    /// For invites: the role to grant and the employee record to link.
    pub role: Option<String>,
    pub employee_id: Option<crate::ids::EmployeeId>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

const COLUMNS: &str =
    "token_hash, purpose, email, role, employee_id, created_by, created_at, expires_at, used_at";

pub async fn insert(tx: &mut Tx, tenant: TenantId, row: &UserTokenRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(&format!(
            "INSERT INTO user_tokens (tenant_id, {COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(tenant)
        .bind(&row.token_hash)
        .bind(&row.purpose)
        .bind(&row.email)
        .bind(&row.role)
        .bind(row.employee_id)
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.used_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn find(
    tx: &mut Tx,
    tenant: TenantId,
    token_hash: &str,
    purpose: &str,
) -> StoreResult<Option<UserTokenRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM user_tokens
             WHERE tenant_id = $1 AND token_hash = $2 AND purpose = $3"
        ))
        .bind(tenant)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(conn)
        .await?
    }))
}

/// Use a token once: true only for the one caller that marks it used while it is live.
pub async fn mark_used(
    tx: &mut Tx,
    tenant: TenantId,
    token_hash: &str,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE user_tokens SET used_at = $3
             WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(tenant)
        .bind(token_hash)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected()
            == 1
    }))
}

/// Withdraw the unused links of one purpose for an address (a newer one replaces them).
pub async fn withdraw_pending(
    tx: &mut Tx,
    tenant: TenantId,
    email: &str,
    purpose: &str,
) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM user_tokens
             WHERE tenant_id = $1 AND email = $2 AND purpose = $3 AND used_at IS NULL",
        )
        .bind(tenant)
        .bind(email)
        .bind(purpose)
        .execute(conn)
        .await?
        .rows_affected()
    }))
}

/// Live invites, newest first, for the members page.
pub async fn pending_invites(
    tx: &mut Tx,
    tenant: TenantId,
    now: OffsetDateTime,
) -> StoreResult<Vec<UserTokenRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM user_tokens
             WHERE tenant_id = $1 AND purpose = 'invite' AND used_at IS NULL
                   AND expires_at > $2
             ORDER BY created_at DESC"
        ))
        .bind(tenant)
        .bind(now)
        .fetch_all(conn)
        .await?
    }))
}
