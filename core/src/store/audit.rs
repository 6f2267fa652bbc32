//! Audit events: insert and read only.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreResult, Tx, on_tx};
use crate::audit::AuditEvent;
use crate::ids::{AuditEventId, TenantId};

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: AuditEventId,
    tenant_id: TenantId,
    actor: String,
    action: String,
    subject_type: String,
    subject_id: String,
    before: Option<Json<serde_json::Value>>,
    after: Option<Json<serde_json::Value>>,
    at: OffsetDateTime,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            id: r.id,
            tenant_id: r.tenant_id,
            actor: r.actor,
            action: r.action,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            before: r.before.map(|j| j.0),
            after: r.after.map(|j| j.0),
            at: r.at,
        }
    }
}

pub async fn insert(tx: &mut Tx, tenant: TenantId, event: &AuditEvent) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, actor, action, subject_type, subject_id,
                 before, after, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(event.id)
        .bind(tenant)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.subject_type)
        .bind(&event.subject_id)
        .bind(event.before.as_ref().map(Json))
        .bind(event.after.as_ref().map(Json))
        .bind(event.at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Rows per statement when inserting many: well under both backends' parameter limits.
const BATCH_ROWS: usize = 1_000;

/// Inserts many events, a statement per `BATCH_ROWS`.
pub async fn insert_many(tx: &mut Tx, tenant: TenantId, events: &[AuditEvent]) -> StoreResult<()> {
    for chunk in events.chunks(BATCH_ROWS) {
        on_tx!(tx, |conn| {
            let mut query = sqlx::QueryBuilder::new(
                "INSERT INTO audit_events (id, tenant_id, actor, action, subject_type, subject_id,
                     before, after, at) ",
            );
            query.push_values(chunk, |mut row, event| {
                row.push_bind(event.id)
                    .push_bind(tenant)
                    .push_bind(&event.actor)
                    .push_bind(&event.action)
                    .push_bind(&event.subject_type)
                    .push_bind(&event.subject_id)
                    .push_bind(event.before.as_ref().map(Json))
                    .push_bind(event.after.as_ref().map(Json))
                    .push_bind(event.at);
            });
            query.build().execute(conn).await?;
        });
    }
    Ok(())
}

pub async fn list_for_subject(
    tx: &mut Tx,
    tenant: TenantId,
    subject_type: &str,
    subject_id: &str,
) -> StoreResult<Vec<AuditEvent>> {
    let rows: Vec<AuditRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, actor, action, subject_type, subject_id, before, after, at
             FROM audit_events WHERE tenant_id = $1 AND subject_type = $2 AND subject_id = $3
             ORDER BY at, id",
        )
        .bind(tenant)
        .bind(subject_type)
        .bind(subject_id)
        .fetch_all(conn)
        .await?
    });
    Ok(rows.into_iter().map(AuditEvent::from).collect())
}
