//! The employee notice outbox: direct messages to employees, one per reason (dedupe key).
//! Claiming works like the email outbox: one due notice under a lease, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL and the single writer lock on SQLite.

use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, TenantId};
use crate::messaging::chat_message::Message;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoticeRow {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub employee_id: EmployeeId,
    pub dedupe_key: String,
    pub message: Json<Message>,
    pub state: String,
    pub attempts: i32,
}

const COLUMNS: &str = "id, tenant_id, employee_id, dedupe_key, message, state, attempts";

/// Queues the notice unless one with its key exists; returns whether it queued it.
pub async fn insert_if_new(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    dedupe_key: &str,
    message: &Message,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO employee_notices (id, tenant_id, employee_id, dedupe_key, message, state,
                 attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(employee)
        .bind(dedupe_key)
        .bind(Json(message))
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Take the next due notice (queued and due, or left `sending` by a worker whose lease ran
/// out), counting the attempt.
pub async fn claim(
    tx: &mut Tx,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> StoreResult<Option<NoticeRow>> {
    let sql = super::outbox_claim_sql(tx, "employee_notices", COLUMNS);
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(conn)
            .await?
    }))
}

pub async fn mark_sent(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE employee_notices SET state = 'sent', sent_at = $2, locked_until = NULL,
                 last_error = NULL
             WHERE tenant_id = $3 AND id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(tenant)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn retry_at(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    at: OffsetDateTime,
    error: &str,
) -> StoreResult<()> {
    let sql = super::outbox_retry_sql("employee_notices");
    on_tx!(tx, |conn| {
        sqlx::query(&sql)
            .bind(id)
            .bind(at)
            .bind(error)
            .bind(tenant)
            .execute(conn)
            .await?;
    });
    Ok(())
}

pub async fn give_up(tx: &mut Tx, tenant: TenantId, id: Uuid, error: &str) -> StoreResult<()> {
    let sql = super::outbox_give_up_sql("employee_notices");
    on_tx!(tx, |conn| {
        sqlx::query(&sql)
            .bind(id)
            .bind(error)
            .bind(tenant)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// One tenant's notices, oldest first.
pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<NoticeRow>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM employee_notices WHERE tenant_id = $1
             ORDER BY created_at, id"
        ))
        .bind(tenant)
        .fetch_all(conn)
        .await?
    }))
}
