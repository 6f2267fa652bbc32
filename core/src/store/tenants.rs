//! Tenants and their custom domains. Looking a tenant up by slug or domain crosses tenants,
//! so those take a system transaction.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::TenantId;
use crate::money::Currency;
use crate::organisation::tenant::{Slug, Tenant, TenantSettings};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: TenantId,
    slug: String,
    name: String,
    currency: String,
    settings: Json<TenantSettings>,
    created_at: OffsetDateTime,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(row: TenantRow) -> StoreResult<Tenant> {
        Ok(Tenant {
            id: row.id,
            slug: Slug::parse(&row.slug).map_err(|e| StoreError::corrupt("tenant slug", e))?,
            name: row.name,
            currency: Currency::parse(&row.currency)
                .map_err(|e| StoreError::corrupt("tenant currency", e))?,
            settings: row.settings.0,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str = "id, slug, name, currency, settings, created_at";

pub async fn insert(tx: &mut Tx, tenant: &Tenant) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, currency, settings, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant.id)
        .bind(tenant.slug.as_str())
        .bind(&tenant.name)
        .bind(tenant.currency.as_str())
        .bind(Json(&tenant.settings))
        .bind(tenant.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: TenantId) -> StoreResult<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
    let row: Option<TenantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    row.map(Tenant::try_from).transpose()
}

pub async fn find_by_slug(tx: &mut Tx, slug: &Slug) -> StoreResult<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1");
    let row: Option<TenantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(slug.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Tenant::try_from).transpose()
}

pub async fn update_settings(
    tx: &mut Tx,
    tenant: TenantId,
    settings: &TenantSettings,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE tenants SET settings = $2 WHERE id = $1")
            .bind(tenant)
            .bind(Json(settings))
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// The tenant that registered and verified `domain` (a custom portal host name).
pub async fn find_by_verified_domain(tx: &mut Tx, domain: &str) -> StoreResult<Option<Tenant>> {
    let sql = format!(
        "SELECT {} FROM tenants t JOIN tenant_domains d ON d.tenant_id = t.id
         WHERE d.domain = $1 AND d.verified_at IS NOT NULL",
        COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row: Option<TenantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(domain)
            .fetch_optional(conn)
            .await?
    });
    row.map(Tenant::try_from).transpose()
}

pub async fn update_profile(
    tx: &mut Tx,
    tenant: TenantId,
    name: &str,
    currency: &Currency,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE tenants SET name = $2, currency = $3 WHERE id = $1")
            .bind(tenant)
            .bind(name)
            .bind(currency.as_str())
            .execute(conn)
            .await?;
    });
    Ok(())
}
