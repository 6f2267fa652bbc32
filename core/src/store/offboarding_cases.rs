//! Offboarding cases (a leaver's line in its grace period). Deciding is a compare-and-set on
//! `open`, announcing and reminding are claimed the same way, so each happens once.

use sqlx::types::Json;
use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, LineId, OffboardingCaseId, TenantId};
use crate::lines::request::ChatRefs;
use crate::organisation::offboarding::grace::{CaseState, GraceChoice, OffboardingCase};
use crate::provider::PortingAuthorisation;

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: OffboardingCaseId,
    tenant_id: TenantId,
    employee_id: EmployeeId,
    line_id: LineId,
    state: String,
    asked_id: Option<EmployeeId>,
    deadline_at: OffsetDateTime,
    remind_at: OffsetDateTime,
    announced_at: Option<OffsetDateTime>,
    reminded_at: Option<OffsetDateTime>,
    choice: Option<String>,
    successor_id: Option<EmployeeId>,
    chosen_by: Option<String>,
    chosen_at: Option<OffsetDateTime>,
    by_default: bool,
    porting: Option<Json<PortingAuthorisation>>,
    failure_reason: Option<String>,
    chat_refs: Json<ChatRefs>,
    created_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
}

impl TryFrom<CaseRow> for OffboardingCase {
    type Error = StoreError;
    fn try_from(r: CaseRow) -> StoreResult<OffboardingCase> {
        let choice = match r.choice.as_deref() {
            Some(text) => Some(
                GraceChoice::parse(text)
                    .ok_or_else(|| StoreError::corrupt("offboarding case choice", text))?,
            ),
            None => None,
        };
        Ok(OffboardingCase {
            id: r.id,
            tenant_id: r.tenant_id,
            employee_id: r.employee_id,
            line_id: r.line_id,
            state: CaseState::parse(&r.state)
                .ok_or_else(|| StoreError::corrupt("offboarding case state", &r.state))?,
            asked_id: r.asked_id,
            deadline_at: r.deadline_at,
            remind_at: r.remind_at,
            announced_at: r.announced_at,
            reminded_at: r.reminded_at,
            choice,
            successor_id: r.successor_id,
            chosen_by: r.chosen_by,
            chosen_at: r.chosen_at,
            by_default: r.by_default,
            porting: r.porting.map(|p| p.0),
            failure_reason: r.failure_reason,
            chat_refs: r.chat_refs.0,
            created_at: r.created_at,
            completed_at: r.completed_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, employee_id, line_id, state, asked_id, deadline_at, \
     remind_at, announced_at, reminded_at, choice, successor_id, chosen_by, chosen_at, \
     by_default, porting, failure_reason, chat_refs, created_at, completed_at";

/// Opens the case unless this leaver's line has one; returns whether it opened it.
pub async fn insert_if_new(tx: &mut Tx, case: &OffboardingCase) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO offboarding_cases (id, tenant_id, employee_id, line_id, state, asked_id,
                 deadline_at, remind_at, chat_refs, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (tenant_id, employee_id, line_id) DO NOTHING",
        )
        .bind(case.id)
        .bind(case.tenant_id)
        .bind(case.employee_id)
        .bind(case.line_id)
        .bind(case.state.as_str())
        .bind(case.asked_id)
        .bind(case.deadline_at)
        .bind(case.remind_at)
        .bind(Json(&case.chat_refs))
        .bind(case.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn get(
    tx: &mut Tx,
    tenant: TenantId,
    id: OffboardingCaseId,
) -> StoreResult<Option<OffboardingCase>> {
    let row: Option<CaseRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM offboarding_cases WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?
    });
    row.map(OffboardingCase::try_from).transpose()
}

/// The tenant's cases in these states, soonest deadline first.
pub async fn list_in_states(
    tx: &mut Tx,
    tenant: TenantId,
    states: &[CaseState],
) -> StoreResult<Vec<OffboardingCase>> {
    let wanted = states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<CaseRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM offboarding_cases WHERE tenant_id = $1 AND state IN ({wanted})
             ORDER BY deadline_at, id"
        ))
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(OffboardingCase::try_from).collect()
}

/// Every tenant's cases the sweep has work on: open ones (to announce, remind, or default
/// at their deadline) and decided ones not yet carried out. On a system transaction.
pub async fn list_unsettled(tx: &mut Tx) -> StoreResult<Vec<OffboardingCase>> {
    let rows: Vec<CaseRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM offboarding_cases WHERE state IN ('open', 'decided')
             ORDER BY deadline_at, id"
        ))
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(OffboardingCase::try_from).collect()
}

/// The winning decision: sets the choice on a case that is still open. False when another
/// decision got there first.
pub async fn decide(tx: &mut Tx, decided: &OffboardingCase) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE offboarding_cases SET state = 'decided', choice = $3, successor_id = $4,
                 chosen_by = $5, chosen_at = $6, by_default = $7
             WHERE tenant_id = $1 AND id = $2 AND state = 'open'",
        )
        .bind(decided.tenant_id)
        .bind(decided.id)
        .bind(decided.choice.map(GraceChoice::as_str))
        .bind(decided.successor_id)
        .bind(&decided.chosen_by)
        .bind(decided.chosen_at)
        .bind(decided.by_default)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Records how carrying out a decided case ended. False when it was no longer `decided`.
pub async fn settle(tx: &mut Tx, settled: &OffboardingCase) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE offboarding_cases SET state = $3, porting = $4, failure_reason = $5,
                 completed_at = $6
             WHERE tenant_id = $1 AND id = $2 AND state = 'decided'",
        )
        .bind(settled.tenant_id)
        .bind(settled.id)
        .bind(settled.state.as_str())
        .bind(settled.porting.as_ref().map(Json))
        .bind(&settled.failure_reason)
        .bind(settled.completed_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Claims the case's announcement (its first card); false when it was claimed before.
pub async fn claim_announcement(
    tx: &mut Tx,
    tenant: TenantId,
    id: OffboardingCaseId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE offboarding_cases SET announced_at = $3
             WHERE tenant_id = $1 AND id = $2 AND announced_at IS NULL",
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

/// Claims the case's one reminder; false when it was reminded before or is no longer open.
pub async fn claim_reminder(
    tx: &mut Tx,
    tenant: TenantId,
    id: OffboardingCaseId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE offboarding_cases SET reminded_at = $3
             WHERE tenant_id = $1 AND id = $2 AND reminded_at IS NULL AND state = 'open'",
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

pub async fn set_chat_refs(
    tx: &mut Tx,
    tenant: TenantId,
    id: OffboardingCaseId,
    refs: &ChatRefs,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE offboarding_cases SET chat_refs = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(Json(refs))
            .execute(conn)
            .await?;
    });
    Ok(())
}
