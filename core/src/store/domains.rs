//! Tenants' custom domains. A domain is unique across tenants (the table's constraint), so a
//! second tenant's claim fails even where it cannot see the first, until the first expires
//! unverified.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DomainRow {
    pub domain: String,
    pub verification_token: String,
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "domain, verification_token, verified_at, created_at";

pub async fn insert(tx: &mut Tx, tenant: TenantId, row: &DomainRow) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO tenant_domains (tenant_id, domain, verification_token, verified_at,
                 created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(&row.domain)
        .bind(&row.verification_token)
        .bind(row.verified_at)
        .bind(row.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<DomainRow>> {
    let sql = format!("SELECT {COLUMNS} FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    }))
}

pub async fn get(tx: &mut Tx, tenant: TenantId, domain: &str) -> StoreResult<Option<DomainRow>> {
    let sql = format!("SELECT {COLUMNS} FROM tenant_domains WHERE tenant_id = $1 AND domain = $2");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(domain)
            .fetch_optional(conn)
            .await?
    }))
}

pub async fn mark_verified(
    tx: &mut Tx,
    tenant: TenantId,
    domain: &str,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE tenant_domains SET verified_at = $3 WHERE tenant_id = $1 AND domain = $2",
        )
        .bind(tenant)
        .bind(domain)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn delete(tx: &mut Tx, tenant: TenantId, domain: &str) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2")
            .bind(tenant)
            .bind(domain)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// An unverified claim, whichever tenant holds it (system transactions only: it looks across
/// tenants, the way a second tenant's claim has to).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaleClaim {
    pub tenant_id: TenantId,
    pub domain: String,
    pub created_at: OffsetDateTime,
}

/// Claims still unverified that were made before `claimed_before`; only `domain`'s when given.
pub async fn stale_claims(
    tx: &mut Tx,
    claimed_before: OffsetDateTime,
    domain: Option<&str>,
) -> StoreResult<Vec<StaleClaim>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT tenant_id, domain, created_at FROM tenant_domains
             WHERE verified_at IS NULL AND created_at < $1 AND ($2 IS NULL OR domain = $2)
             ORDER BY created_at",
        )
        .bind(claimed_before)
        .bind(domain)
        .fetch_all(conn)
        .await?
    }))
}

/// Removes the claim if it is still unverified and older than `claimed_before` (it may have
/// been verified since it was found). True when it was removed.
pub async fn delete_stale(
    tx: &mut Tx,
    tenant: TenantId,
    domain: &str,
    claimed_before: OffsetDateTime,
) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM tenant_domains
             WHERE tenant_id = $1 AND domain = $2 AND verified_at IS NULL AND created_at < $3",
        )
        .bind(tenant)
        .bind(domain)
        .bind(claimed_before)
        .execute(conn)
        .await?
        .rows_affected()
            == 1
    }))
}
