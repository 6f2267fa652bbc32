//! Audit events: insert and read only.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::bulk::{self, Value};
use super::{StoreResult, Tx, on_tx};
use crate::audit::{AuditEvent, AuditFilter};
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

/// Up to `limit` events matching `filter`, newest first, older than `before` when given.
/// Ids are time-ordered (UUIDv7), so they are the keyset: a page never skips or repeats an
/// event however many share a timestamp.
pub async fn search(
    tx: &mut Tx,
    tenant: TenantId,
    filter: &AuditFilter,
    before: Option<AuditEventId>,
    limit: i64,
) -> StoreResult<Vec<AuditEvent>> {
    use super::query::{Arg, Sql, fetch_all};
    let mut sql = Sql::new(tenant);
    sql.push(
        "SELECT id, tenant_id, actor, action, subject_type, subject_id, before, after, at
         FROM audit_events WHERE tenant_id = $1",
    );
    for (column, value) in [
        ("actor", &filter.actor),
        ("subject_type", &filter.subject_type),
        ("subject_id", &filter.subject_id),
    ] {
        if let Some(value) = value {
            let v = sql.arg(Arg::Text(value.clone()));
            sql.push(&format!(" AND {column} = {v}"));
        }
    }
    if let Some(prefix) = &filter.action_prefix {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let v = sql.arg(Arg::Text(format!("{escaped}%")));
        sql.push(&format!(" AND action LIKE {v} ESCAPE '\\'"));
    }
    let midnight = |day: time::Date| day.midnight().assume_utc();
    if let Some(from) = filter.from {
        let v = sql.instant(tx, midnight(from));
        sql.push(&format!(" AND at >= {v}"));
    }
    if let Some(until) = filter.until {
        let v = sql.instant(tx, midnight(until.next_day().unwrap_or(until)));
        sql.push(&format!(" AND at < {v}"));
    }
    if let Some(before) = before {
        let v = sql.arg(Arg::Uuid(before.0));
        sql.push(&format!(" AND id < {v}"));
    }
    let limit = sql.arg(Arg::Int(limit));
    sql.push(&format!(" ORDER BY id DESC LIMIT {limit}"));
    let rows: Vec<AuditRow> = fetch_all!(tx, AuditRow, sql);
    Ok(rows.into_iter().map(AuditEvent::from).collect())
}

/// The tenant's portal users as audit actors (`user:<id>`) with their name and email.
pub async fn user_actors(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<(String, String)>> {
    let rows: Vec<(uuid::Uuid, String, String)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT u.id, u.name, u.email FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.tenant_id = $1 ORDER BY u.name",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| (format!("user:{id}"), format!("{name} <{email}>")))
        .collect())
}

/// Many events in a handful of statements (an import writes one per employee).
pub async fn insert_many(tx: &mut Tx, tenant: TenantId, events: &[AuditEvent]) -> StoreResult<()> {
    const COLUMNS: bulk::Columns<8> = bulk::Columns {
        table: "audit_events",
        names: [
            "id",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "before",
            "after",
            "at",
        ],
    };
    let json = |v: &Option<serde_json::Value>| Value::Json(v.as_ref().map(|v| v.to_string()));
    bulk::insert(tx, tenant, &COLUMNS, "", events, |e| {
        [
            e.id.0.into(),
            e.actor.as_str().into(),
            e.action.as_str().into(),
            e.subject_type.as_str().into(),
            e.subject_id.as_str().into(),
            json(&e.before),
            json(&e.after),
            e.at.into(),
        ]
    })
    .await?;
    Ok(())
}

/// How many events the tenant's log holds.
pub async fn count(tx: &mut Tx, tenant: TenantId) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(conn)
            .await?
    }))
}
