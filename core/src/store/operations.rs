//! Provider operations: one row per provider write, holding the idempotency key that every
//! retry of that write reuses. The row exists before the call is made.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{LineId, OperationId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Provision,
    Suspend,
    Resume,
    Terminate,
    ChangePlan,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Terminate => "terminate",
            Self::ChangePlan => "change_plan",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Provision,
            Self::Suspend,
            Self::Resume,
            Self::Terminate,
            Self::ChangePlan,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationState {
    Pending,
    Succeeded,
    Failed,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOperation {
    pub id: OperationId,
    pub tenant_id: TenantId,
    pub line_id: LineId,
    pub kind: OperationKind,
    pub idempotency_key: String,
    /// The caller's key for the whole command (a chat action id, a portal form token).
    pub command_key: Option<String>,
    pub payload: serde_json::Value,
    pub provider_order_id: Option<String>,
    pub state: OperationState,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct OperationRow {
    id: OperationId,
    tenant_id: TenantId,
    line_id: LineId,
    kind: String,
    idempotency_key: String,
    command_key: Option<String>,
    payload: Json<serde_json::Value>,
    provider_order_id: Option<String>,
    status: String,
    error: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<OperationRow> for ProviderOperation {
    type Error = StoreError;
    fn try_from(r: OperationRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            tenant_id: r.tenant_id,
            line_id: r.line_id,
            kind: OperationKind::parse(&r.kind)
                .ok_or_else(|| StoreError::corrupt("operation kind", &r.kind))?,
            idempotency_key: r.idempotency_key,
            command_key: r.command_key,
            payload: r.payload.0,
            provider_order_id: r.provider_order_id,
            state: OperationState::parse(&r.status)
                .ok_or_else(|| StoreError::corrupt("operation status", &r.status))?,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, line_id, kind, idempotency_key, command_key, payload, \
     provider_order_id, status, error, created_at, updated_at";

/// Fails with a unique violation when the line already has an operation pending or the
/// command key was used before.
pub async fn insert(tx: &mut Tx, tenant: TenantId, op: &ProviderOperation) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO provider_operations (id, tenant_id, line_id, kind, idempotency_key,
                 command_key, payload, provider_order_id, status, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(op.id)
        .bind(tenant)
        .bind(op.line_id)
        .bind(op.kind.as_str())
        .bind(&op.idempotency_key)
        .bind(&op.command_key)
        .bind(Json(&op.payload))
        .bind(&op.provider_order_id)
        .bind(op.state.as_str())
        .bind(&op.error)
        .bind(op.created_at)
        .bind(op.updated_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn find_by_command_key(
    tx: &mut Tx,
    tenant: TenantId,
    command_key: &str,
) -> StoreResult<Option<ProviderOperation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_operations WHERE tenant_id = $1 AND command_key = $2"
    );
    let row: Option<OperationRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(command_key)
            .fetch_optional(conn)
            .await?
    });
    row.map(ProviderOperation::try_from).transpose()
}

pub async fn pending_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Option<ProviderOperation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_operations
         WHERE tenant_id = $1 AND line_id = $2 AND status = 'pending'"
    );
    let row: Option<OperationRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(line)
            .fetch_optional(conn)
            .await?
    });
    row.map(ProviderOperation::try_from).transpose()
}

pub async fn list_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Vec<ProviderOperation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_operations WHERE tenant_id = $1 AND line_id = $2
         ORDER BY created_at, id"
    );
    let rows: Vec<OperationRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(line)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(ProviderOperation::try_from).collect()
}

/// Pending operations across tenants, for the restart sweep.
pub async fn list_pending(tx: &mut Tx) -> StoreResult<Vec<ProviderOperation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_operations WHERE status = 'pending' ORDER BY created_at"
    );
    let rows: Vec<OperationRow> = on_tx!(tx, |conn| sqlx::query_as(&sql).fetch_all(conn).await?);
    rows.into_iter().map(ProviderOperation::try_from).collect()
}

pub async fn record_order(
    tx: &mut Tx,
    tenant: TenantId,
    id: OperationId,
    order_id: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE provider_operations SET provider_order_id = $3, updated_at = $4
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(order_id)
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Settles a pending operation; false if it was already settled by someone else.
pub async fn settle(
    tx: &mut Tx,
    tenant: TenantId,
    id: OperationId,
    state: OperationState,
    error: Option<&str>,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE provider_operations SET status = $3, error = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(tenant)
        .bind(id)
        .bind(state.as_str())
        .bind(error)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

pub async fn set_payload(
    tx: &mut Tx,
    tenant: TenantId,
    id: OperationId,
    payload: &serde_json::Value,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE provider_operations SET payload = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(Json(payload))
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// The pending operation behind a provider order, whatever its tenant (webhooks).
/// The pending operation waiting on a vendor order; `tenant` narrows it to one tenant's
/// (a webhook of that tenant's own provider connection), `None` searches every tenant.
pub async fn find_pending_by_order(
    tx: &mut Tx,
    tenant: Option<TenantId>,
    order_id: &str,
) -> StoreResult<Option<ProviderOperation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM provider_operations
         WHERE provider_order_id = $1 AND status = 'pending'
           AND ($2 IS NULL OR tenant_id = $2)"
    );
    let row: Option<OperationRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(order_id)
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    row.map(ProviderOperation::try_from).transpose()
}
