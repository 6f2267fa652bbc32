//! Requests. Deciding is a compare-and-set on `pending`, so exactly one decision wins.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, LineId, RequestId, TenantId};
use crate::lines::request::{ChatRefs, Request, RequestDetails, RequestState, Route};

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: RequestId,
    tenant_id: TenantId,
    employee_id: EmployeeId,
    details: Json<RequestDetails>,
    reason: String,
    state: String,
    route: String,
    approver_id: Option<EmployeeId>,
    escalations: i32,
    decided_by: Option<String>,
    decided_at: Option<OffsetDateTime>,
    decision_note: Option<String>,
    failure_reason: Option<String>,
    chat_refs: Json<ChatRefs>,
    dedupe_key: String,
    created_at: OffsetDateTime,
    routed_at: Option<OffsetDateTime>,
    reminded_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
}

impl TryFrom<RequestRow> for Request {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> StoreResult<Request> {
        Ok(Request {
            id: r.id,
            tenant_id: r.tenant_id,
            requester: r.employee_id,
            details: r.details.0,
            reason: r.reason,
            state: RequestState::parse(&r.state)
                .ok_or_else(|| StoreError::corrupt("request state", &r.state))?,
            route: Route::parse(&r.route)
                .ok_or_else(|| StoreError::corrupt("request route", &r.route))?,
            approver: r.approver_id,
            escalations: r.escalations,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            decision_note: r.decision_note,
            failure_reason: r.failure_reason,
            chat_refs: r.chat_refs.0,
            dedupe_key: r.dedupe_key,
            routed_at: r.routed_at.unwrap_or(r.created_at),
            created_at: r.created_at,
            reminded_at: r.reminded_at,
            expires_at: r.expires_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, employee_id, details, reason, state, route, approver_id, \
     escalations, decided_by, decided_at, decision_note, failure_reason, chat_refs, dedupe_key, \
     created_at, routed_at, reminded_at, expires_at";

/// Inserts unless a request with the same dedupe key exists; returns whether it inserted.
pub async fn insert_if_new(tx: &mut Tx, tenant: TenantId, r: &Request) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO requests (id, tenant_id, kind, employee_id, line_id, details, reason,
                 state, route, approver_id, escalations, decided_by, decided_at, decision_note,
                 failure_reason, chat_refs, dedupe_key, created_at, routed_at, reminded_at,
                 expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21)
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        )
        .bind(r.id)
        .bind(tenant)
        .bind(r.details.kind())
        .bind(r.requester)
        .bind(r.details.line_id())
        .bind(Json(&r.details))
        .bind(&r.reason)
        .bind(r.state.as_str())
        .bind(r.route.as_str())
        .bind(r.approver)
        .bind(r.escalations)
        .bind(&r.decided_by)
        .bind(r.decided_at)
        .bind(&r.decision_note)
        .bind(&r.failure_reason)
        .bind(Json(&r.chat_refs))
        .bind(&r.dedupe_key)
        .bind(r.created_at)
        .bind(r.routed_at)
        .bind(r.reminded_at)
        .bind(r.expires_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: RequestId) -> StoreResult<Option<Request>> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND id = $2");
    let row: Option<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Request::try_from).transpose()
}

pub async fn find_by_dedupe_key(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
) -> StoreResult<Option<Request>> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND dedupe_key = $2");
    let row: Option<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(key)
            .fetch_optional(conn)
            .await?
    });
    row.map(Request::try_from).transpose()
}

pub async fn list_for_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND employee_id = $2
         ORDER BY created_at DESC"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// Pending requests across tenants, for the reminder/escalation/expiry sweep.
pub async fn list_pending(tx: &mut Tx) -> StoreResult<Vec<Request>> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE state = 'pending' ORDER BY created_at");
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| sqlx::query_as(&sql).fetch_all(conn).await?);
    rows.into_iter().map(Request::try_from).collect()
}

/// Approved requests, of every tenant, decided before `cutoff` and not yet carried out: what
/// a replica that died (or stopped) between the decision and the fulfilment left behind.
pub async fn list_approved_before(
    tx: &mut Tx,
    cutoff: OffsetDateTime,
) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE state = 'approved' AND decided_at < $1
         ORDER BY decided_at LIMIT 200"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(cutoff).fetch_all(conn).await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// Moves the request out of `expected` into `next` with the decision fields (and its details,
/// where a decision records a choice, like a roaming quote's option); false when
/// someone else moved it first.
pub async fn settle(
    tx: &mut Tx,
    tenant: TenantId,
    r: &Request,
    expected: RequestState,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE requests SET state = $3, decided_by = $4, decided_at = $5,
                 decision_note = $6, failure_reason = $7, route = $8, details = $10
             WHERE tenant_id = $1 AND id = $2 AND state = $9",
        )
        .bind(tenant)
        .bind(r.id)
        .bind(r.state.as_str())
        .bind(&r.decided_by)
        .bind(r.decided_at)
        .bind(&r.decision_note)
        .bind(&r.failure_reason)
        .bind(r.route.as_str())
        .bind(expected.as_str())
        .bind(Json(&r.details))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Re-route a pending request (escalation) or note a reminder.
pub async fn update_routing(tx: &mut Tx, tenant: TenantId, r: &Request) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE requests SET route = $3, approver_id = $4, escalations = $5,
                 routed_at = $6, reminded_at = $7
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        )
        .bind(tenant)
        .bind(r.id)
        .bind(r.route.as_str())
        .bind(r.approver)
        .bind(r.escalations)
        .bind(r.routed_at)
        .bind(r.reminded_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

pub async fn set_chat_refs(
    tx: &mut Tx,
    tenant: TenantId,
    id: RequestId,
    refs: &ChatRefs,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE requests SET chat_refs = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(Json(refs))
            .execute(conn)
            .await?;
    });
    Ok(())
}

pub async fn pending_for_line(tx: &mut Tx, tenant: TenantId, line: LineId) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM requests WHERE tenant_id = $1 AND line_id = $2 AND state = 'pending'",
        )
        .bind(tenant)
        .bind(line)
        .fetch_one(conn)
        .await?
    }))
}

/// One tenant's pending requests, oldest first.
pub async fn list_pending_in(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND state = 'pending'
         ORDER BY created_at"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// Requests waiting on `approver` by name (routed to them as manager), oldest first.
pub async fn list_pending_for_approver(
    tx: &mut Tx,
    tenant: TenantId,
    approver: EmployeeId,
) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests
         WHERE tenant_id = $1 AND approver_id = $2 AND state = 'pending'
         ORDER BY created_at"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(approver)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// The most recently decided requests (by a person, policy or expiry), newest first.
pub async fn list_recently_decided(
    tx: &mut Tx,
    tenant: TenantId,
    limit: i64,
) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE tenant_id = $1 AND decided_at IS NOT NULL
         ORDER BY decided_at DESC LIMIT $2"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(limit)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// The requester's pending requests, oldest first.
pub async fn list_pending_of(
    tx: &mut Tx,
    tenant: TenantId,
    requester: EmployeeId,
) -> StoreResult<Vec<Request>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests
         WHERE tenant_id = $1 AND employee_id = $2 AND state = 'pending'
         ORDER BY created_at"
    );
    let rows: Vec<RequestRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(requester)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Request::try_from).collect()
}

/// Note that the request moved away from `from_approver`, for chat to be told (once).
pub async fn note_reroute(
    tx: &mut Tx,
    tenant: TenantId,
    request: RequestId,
    from_approver: Option<EmployeeId>,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO request_reroutes (tenant_id, request_id, from_approver, at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, request_id) DO UPDATE SET at = excluded.at",
        )
        .bind(tenant)
        .bind(request)
        .bind(from_approver)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Take every noted reroute (of every tenant, a system transaction): the caller tells chat.
pub async fn take_reroutes(tx: &mut Tx) -> StoreResult<Vec<(TenantId, RequestId)>> {
    Ok(on_tx!(tx, |conn| {
        let taken: Vec<(TenantId, RequestId)> =
            sqlx::query_as("SELECT tenant_id, request_id FROM request_reroutes ORDER BY at")
                .fetch_all(&mut *conn)
                .await?;
        for (tenant, request) in &taken {
            sqlx::query("DELETE FROM request_reroutes WHERE tenant_id = $1 AND request_id = $2")
                .bind(tenant)
                .bind(request)
                .execute(&mut *conn)
                .await?;
        }
        taken
    }))
}
