//! Per-tenant single sign-on: the OIDC client settings (secret sealed), and sign-in attempts
//! in flight (state, nonce and PKCE verifier), each taken once.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SsoConfigRow {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_encrypted: Vec<u8>,
    pub enabled: bool,
    pub updated_at: OffsetDateTime,
}

pub async fn get(tx: &mut Tx, tenant: TenantId) -> StoreResult<Option<SsoConfigRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT issuer, client_id, client_secret_encrypted, enabled, updated_at
             FROM sso_configs WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(conn)
        .await?
    }))
}

pub async fn upsert(tx: &mut Tx, tenant: TenantId, row: &SsoConfigRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO sso_configs (tenant_id, issuer, client_id, client_secret_encrypted,
                 enabled, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id) DO UPDATE SET issuer = $2, client_id = $3,
                 client_secret_encrypted = $4, enabled = $5, updated_at = $6",
        )
        .bind(tenant)
        .bind(&row.issuer)
        .bind(&row.client_id)
        .bind(&row.client_secret_encrypted)
        .bind(row.enabled)
        .bind(row.updated_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SsoLoginRow {
    pub state_hash: String,
    pub browser_hash: String,
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    pub next_path: String,
    pub expires_at: OffsetDateTime,
}

pub async fn insert_login(tx: &mut Tx, tenant: TenantId, row: &SsoLoginRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, tenant_id, browser_hash, nonce, code_verifier,
                 redirect_uri, next_path, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.state_hash)
        .bind(tenant)
        .bind(&row.browser_hash)
        .bind(&row.nonce)
        .bind(&row.code_verifier)
        .bind(&row.redirect_uri)
        .bind(&row.next_path)
        .bind(row.expires_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Remove and return the attempt for `state_hash`: whoever takes it first is the only one.
pub async fn take_login(
    tx: &mut Tx,
    tenant: TenantId,
    state_hash: &str,
) -> StoreResult<Option<SsoLoginRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "DELETE FROM sso_logins WHERE tenant_id = $1 AND state_hash = $2
             RETURNING state_hash, browser_hash, nonce, code_verifier, redirect_uri, next_path,
                 expires_at",
        )
        .bind(tenant)
        .bind(state_hash)
        .fetch_optional(conn)
        .await?
    }))
}

/// Attempts nobody finished.
pub async fn delete_expired_logins(
    tx: &mut Tx,
    tenant: TenantId,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM sso_logins WHERE tenant_id = $1 AND expires_at <= $2")
            .bind(tenant)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
    }))
}
