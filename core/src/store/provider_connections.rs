//! Tenants' own provider connections, several per tenant (secrets arrive here sealed), and which tenants may use
//! the server-wide provider account. Finding a connection by its id (a webhook arriving)
//! crosses tenants, so that takes a system transaction.

use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{ProviderConnectionId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: ProviderConnectionId,
    pub tenant_id: TenantId,
    /// The vendor kind, which picks the adapter (e.g. "1global").
    pub provider: String,
    pub client_id: String,
    /// `sealed:v1:…`
    pub client_secret: String,
    pub account_id: String,
    /// `sealed:v1:…`
    pub webhook_secret: String,
    pub version: i64,
    pub checked_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// What people see as the carrier, unique within the tenant.
    pub label: String,
    /// Lowest first: the primary connection, then the order alternatives are tried in.
    pub position: i32,
}

const COLUMNS: &str = "id, tenant_id, provider, client_id, client_secret, account_id, \
     webhook_secret, version, checked_at, created_at, label, position";

/// The tenant's connections, primary first.
pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<ConnectionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1
         ORDER BY position, created_at, id"
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    }))
}

/// The tenant's primary connection (lowest position), if it has any.
pub async fn get(tx: &mut Tx, tenant: TenantId) -> StoreResult<Option<ConnectionRow>> {
    Ok(list(tx, tenant).await?.into_iter().next())
}

/// One of the tenant's connections.
pub async fn get_by_id(
    tx: &mut Tx,
    tenant: TenantId,
    id: ProviderConnectionId,
) -> StoreResult<Option<ConnectionRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM provider_connections WHERE tenant_id = $1 AND id = $2");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    }))
}

/// The connection a webhook URL names, whichever tenant owns it (system transaction).
pub async fn find(tx: &mut Tx, id: ProviderConnectionId) -> StoreResult<Option<ConnectionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM provider_connections WHERE id = $1");
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?
    }))
}

/// Store a connection: a new one (version 1), or a replacement of the row with the same id
/// (next version, same label and position). Returns the stored row.
pub async fn upsert(
    tx: &mut Tx,
    tenant: TenantId,
    row: &ConnectionRow,
) -> StoreResult<ConnectionRow> {
    let sql = format!(
        "INSERT INTO provider_connections ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET provider = excluded.provider,
             client_id = excluded.client_id, client_secret = excluded.client_secret,
             account_id = excluded.account_id, webhook_secret = excluded.webhook_secret,
             version = provider_connections.version + 1, checked_at = excluded.checked_at
         RETURNING {COLUMNS}"
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(row.id)
            .bind(tenant)
            .bind(&row.provider)
            .bind(&row.client_id)
            .bind(&row.client_secret)
            .bind(&row.account_id)
            .bind(&row.webhook_secret)
            .bind(row.checked_at)
            .bind(row.created_at)
            .bind(&row.label)
            .bind(row.position)
            .fetch_one(conn)
            .await?
    }))
}

pub async fn delete(tx: &mut Tx, tenant: TenantId, id: ProviderConnectionId) -> StoreResult<bool> {
    let deleted = on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM provider_connections WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(deleted > 0)
}

/// Whether the tenant may fall back on the server-wide provider account.
pub async fn uses_server_provider(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    let allowed: Option<bool> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT uses_server_provider FROM tenants WHERE id = $1")
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    Ok(allowed.unwrap_or(false))
}

pub async fn set_uses_server_provider(
    tx: &mut Tx,
    tenant: TenantId,
    allowed: bool,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE tenants SET uses_server_provider = $2 WHERE id = $1")
            .bind(tenant)
            .bind(allowed)
            .execute(conn)
            .await?;
    });
    Ok(())
}
