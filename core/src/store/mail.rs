//! The email outbox. Claiming works like the job queue: one due message under a lease, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL and the single writer lock on SQLite.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreResult, Tx, on_tx};
use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct QueuedEmailRow {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub recipient: String,
    pub subject: String,
    pub body_sealed: Vec<u8>,
    pub attempts: i32,
}

pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    row: &QueuedEmailRow,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO outbound_emails (id, tenant_id, recipient, subject, body_sealed, state,
                 attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)",
        )
        .bind(row.id)
        .bind(tenant)
        .bind(&row.recipient)
        .bind(&row.subject)
        .bind(&row.body_sealed)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Take the next due message (queued and due, or left `sending` by a worker whose lease
/// ran out), counting the attempt.
pub async fn claim(
    tx: &mut Tx,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> StoreResult<Option<QueuedEmailRow>> {
    let sql = super::outbox_claim_sql(
        tx,
        "outbound_emails",
        "id, tenant_id, recipient, subject, body_sealed, attempts",
    );
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(conn)
            .await?
    }))
}

/// Delivered: never sent again, and the sealed body (a live link) is erased.
pub async fn mark_sent(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE outbound_emails SET state = 'sent', sent_at = $2, body_sealed = $3,
                 locked_until = NULL, last_error = NULL
             WHERE tenant_id = $4 AND id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(Vec::<u8>::new())
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
    let sql = super::outbox_retry_sql("outbound_emails");
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
    let sql = super::outbox_give_up_sql("outbound_emails");
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

pub async fn count_undelivered(tx: &mut Tx, tenant: TenantId) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbound_emails
             WHERE tenant_id = $1 AND state IN ('queued', 'sending')",
        )
        .bind(tenant)
        .fetch_one(conn)
        .await?
    }))
}

/// Each message's state, for tests and support: (recipient, state, attempts).
pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<(String, String, i32)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT recipient, state, attempts FROM outbound_emails
             WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    }))
}
