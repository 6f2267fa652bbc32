//! Alerts: one row per condition and period (its dedupe key), with its state and whether it
//! has been delivered to finance yet (the outbox).

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, bulk, on_tx};
use crate::ids::{AlertId, EmployeeId, LineId, TenantId};
use crate::spend::alert::{Alert, AlertFilter, AlertKind, AlertState};

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: AlertId,
    tenant_id: TenantId,
    kind: String,
    line_id: Option<LineId>,
    employee_id: Option<EmployeeId>,
    scope: String,
    period: String,
    dedupe_key: String,
    message: String,
    details: Json<serde_json::Value>,
    state: String,
    snoozed_until: Option<OffsetDateTime>,
    delivered_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: Option<OffsetDateTime>,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> StoreResult<Alert> {
        Ok(Alert {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: AlertKind::parse(&r.kind)
                .ok_or_else(|| StoreError::corrupt("alert kind", &r.kind))?,
            line_id: r.line_id,
            employee_id: r.employee_id,
            scope: r.scope,
            period: r.period,
            dedupe_key: r.dedupe_key,
            message: r.message,
            details: r.details.0,
            state: AlertState::parse(&r.state)
                .ok_or_else(|| StoreError::corrupt("alert state", &r.state))?,
            snoozed_until: r.snoozed_until,
            delivered_at: r.delivered_at,
            created_at: r.created_at,
            updated_at: r.updated_at.unwrap_or(r.created_at),
        })
    }
}

const COLUMNS: &str = "id, tenant_id, kind, line_id, employee_id, scope, period, dedupe_key, \
     message, details, state, snoozed_until, delivered_at, created_at, updated_at";

/// Stores the alert unless one with its dedupe key exists; returns whether it inserted.
pub async fn insert_if_new(tx: &mut Tx, tenant: TenantId, alert: &Alert) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO alerts (id, tenant_id, kind, line_id, employee_id, scope, period,
                 dedupe_key, message, details, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        )
        .bind(alert.id)
        .bind(tenant)
        .bind(alert.kind.as_str())
        .bind(alert.line_id)
        .bind(alert.employee_id)
        .bind(&alert.scope)
        .bind(&alert.period)
        .bind(&alert.dedupe_key)
        .bind(&alert.message)
        .bind(Json(&alert.details))
        .bind(alert.state.as_str())
        .bind(alert.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Stores each alert whose dedupe key is new; returns the ids of those stored. Keys must be
/// unique within `alerts`.
pub async fn insert_many_if_new(
    tx: &mut Tx,
    tenant: TenantId,
    alerts: &[Alert],
) -> StoreResult<Vec<AlertId>> {
    const COLUMNS: bulk::Columns<12> = bulk::Columns {
        table: "alerts",
        names: [
            "id",
            "kind",
            "line_id",
            "employee_id",
            "scope",
            "period",
            "dedupe_key",
            "message",
            "details",
            "state",
            "created_at",
            "updated_at",
        ],
    };
    let stored: Vec<(AlertId,)> = bulk::insert_returning(
        tx,
        tenant,
        &COLUMNS,
        " ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id",
        alerts,
        |alert| {
            [
                alert.id.0.into(),
                alert.kind.as_str().into(),
                alert.line_id.map(|id| id.0).into(),
                alert.employee_id.map(|id| id.0).into(),
                (&alert.scope).into(),
                (&alert.period).into(),
                (&alert.dedupe_key).into(),
                (&alert.message).into(),
                bulk::Value::Json(Some(alert.details.to_string())),
                alert.state.as_str().into(),
                alert.created_at.into(),
                alert.created_at.into(),
            ]
        },
    )
    .await?;
    Ok(stored.into_iter().map(|(id,)| id).collect())
}

/// The dedupe keys of the budget alerts already raised in `period`.
pub async fn budget_keys_for_period(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
) -> StoreResult<Vec<String>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT dedupe_key FROM alerts WHERE tenant_id = $1 AND period = $2
               AND kind IN ('budget_threshold', 'budget_cap_reached')",
        )
        .bind(tenant)
        .bind(period)
        .fetch_all(conn)
        .await?
    }))
}

/// The ids of alerts already raised under these keys.
pub async fn ids_by_dedupe_keys(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[String],
) -> StoreResult<Vec<(String, AlertId)>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(1_000) {
        let rows: Vec<(String, AlertId)> = on_tx!(tx, |conn| {
            let mut query =
                sqlx::QueryBuilder::new("SELECT dedupe_key, id FROM alerts WHERE tenant_id = ");
            query.push_bind(tenant);
            query.push(" AND dedupe_key IN (");
            let mut list = query.separated(", ");
            for key in chunk {
                list.push_bind(key);
            }
            query.push(")");
            query.build_query_as().fetch_all(conn).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: AlertId) -> StoreResult<Option<Alert>> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant_id = $1 AND id = $2");
    let row: Option<AlertRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Alert::try_from).transpose()
}

pub async fn find_by_dedupe_key(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
) -> StoreResult<Option<Alert>> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE tenant_id = $1 AND dedupe_key = $2");
    let row: Option<AlertRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(key)
            .fetch_optional(conn)
            .await?
    });
    row.map(Alert::try_from).transpose()
}

/// Newest first.
pub async fn list(tx: &mut Tx, tenant: TenantId, filter: &AlertFilter) -> StoreResult<Vec<Alert>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts
         WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR kind = $3)
           AND ($4 IS NULL OR period = $4)
         ORDER BY created_at DESC, id DESC"
    );
    let rows: Vec<AlertRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(filter.state.map(AlertState::as_str))
            .bind(filter.kind.map(AlertKind::as_str))
            .bind(&filter.period)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Alert::try_from).collect()
}

pub async fn set_state(
    tx: &mut Tx,
    tenant: TenantId,
    id: AlertId,
    state: AlertState,
    snoozed_until: Option<OffsetDateTime>,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE alerts SET state = $3, snoozed_until = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(state.as_str())
        .bind(snoozed_until)
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Alerts not yet delivered to finance, oldest first.
pub async fn undelivered(tx: &mut Tx, tenant: TenantId, limit: i64) -> StoreResult<Vec<Alert>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE tenant_id = $1 AND delivered_at IS NULL
         ORDER BY created_at, id LIMIT $2"
    );
    let rows: Vec<AlertRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(limit)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Alert::try_from).collect()
}

/// Returns whether this call marked it (false: it was already delivered).
pub async fn mark_delivered(
    tx: &mut Tx,
    tenant: TenantId,
    id: AlertId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE alerts SET delivered_at = $3
             WHERE tenant_id = $1 AND id = $2 AND delivered_at IS NULL",
        )
        .bind(tenant)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}
