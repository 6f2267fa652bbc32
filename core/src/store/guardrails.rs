//! Guardrail actions taken on lines (so rollover reverts exactly those) and per-period cap
//! raises made from finance alerts.

use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{AlertId, GuardrailActionId, LineId, TenantId};
use crate::spend::guardrail::{ActionState, GuardrailAction, GuardrailActionKind};
use crate::spend::policy::CapScope;

#[derive(sqlx::FromRow)]
struct ActionRow {
    id: GuardrailActionId,
    tenant_id: TenantId,
    line_id: LineId,
    period: String,
    action: String,
    alert_id: Option<AlertId>,
    state: String,
    error: Option<String>,
    created_at: OffsetDateTime,
}

impl TryFrom<ActionRow> for GuardrailAction {
    type Error = StoreError;
    fn try_from(r: ActionRow) -> StoreResult<GuardrailAction> {
        Ok(GuardrailAction {
            id: r.id,
            tenant_id: r.tenant_id,
            line_id: r.line_id,
            period: r.period,
            kind: GuardrailActionKind::parse(&r.action)
                .ok_or_else(|| StoreError::corrupt("guardrail action", &r.action))?,
            alert_id: r.alert_id,
            state: ActionState::parse(&r.state)
                .ok_or_else(|| StoreError::corrupt("guardrail action state", &r.state))?,
            error: r.error,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, line_id, period, action, alert_id, state, error, created_at";

/// One action per line, period and kind: a second insert is a no-op. Returns whether it
/// inserted.
pub async fn insert_action_if_new(
    tx: &mut Tx,
    tenant: TenantId,
    action: &GuardrailAction,
) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO guardrail_actions (id, tenant_id, line_id, period, action, alert_id,
                 state, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (tenant_id, line_id, period, action) DO NOTHING",
        )
        .bind(action.id)
        .bind(tenant)
        .bind(action.line_id)
        .bind(&action.period)
        .bind(action.kind.as_str())
        .bind(action.alert_id)
        .bind(action.state.as_str())
        .bind(&action.error)
        .bind(action.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Which (line, action) pairs already have an action in `period`, with its state.
pub async fn planned_in_period(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
) -> StoreResult<Vec<(LineId, String, String)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT line_id, action, state FROM guardrail_actions
             WHERE tenant_id = $1 AND period = $2",
        )
        .bind(tenant)
        .bind(period)
        .fetch_all(conn)
        .await?
    }))
}

/// Forgets a line's reverted action of `kind` in `period`, so the guardrail can act on the
/// line again (with a new action, hence a new idempotency key) when its cap is reached again.
/// The audit log keeps what the old one did.
pub async fn delete_reverted(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
    period: &str,
    kind: GuardrailActionKind,
) -> StoreResult<bool> {
    let deleted = on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM guardrail_actions
             WHERE tenant_id = $1 AND line_id = $2 AND period = $3 AND action = $4
               AND state = 'reverted'",
        )
        .bind(tenant)
        .bind(line)
        .bind(period)
        .bind(kind.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(deleted == 1)
}

/// Actions in `state`, optionally only those of periods before `before_period`.
pub async fn actions_in_state(
    tx: &mut Tx,
    tenant: TenantId,
    state: ActionState,
    before_period: Option<&str>,
) -> StoreResult<Vec<GuardrailAction>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM guardrail_actions
         WHERE tenant_id = $1 AND state = $2 AND ($3 IS NULL OR period < $3)
         ORDER BY created_at, id"
    );
    let rows: Vec<ActionRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(state.as_str())
            .bind(before_period)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(GuardrailAction::try_from).collect()
}

pub async fn actions_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Vec<GuardrailAction>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM guardrail_actions WHERE tenant_id = $1 AND line_id = $2
         ORDER BY created_at, id"
    );
    let rows: Vec<ActionRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(line)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(GuardrailAction::try_from).collect()
}

/// Compare-and-set on the current state; returns whether it changed.
pub async fn set_action_state(
    tx: &mut Tx,
    tenant: TenantId,
    id: GuardrailActionId,
    from: ActionState,
    to: ActionState,
    error: Option<&str>,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE guardrail_actions SET state = $4, error = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2 AND state = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(error)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// One raise per alert: a double click inserts nothing. Returns whether it inserted.
pub async fn insert_period_raise(
    tx: &mut Tx,
    tenant: TenantId,
    scope: CapScope,
    period: &str,
    amount_minor: i64,
    alert: AlertId,
) -> StoreResult<bool> {
    let (kind, id) = scope.parts();
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cap_period_raises (id, tenant_id, scope_kind, scope_id, period,
                 amount_minor, alert_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (alert_id) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(period)
        .bind(amount_minor)
        .bind(alert)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Raises per scope for one period.
pub async fn period_raises(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
) -> StoreResult<Vec<(CapScope, i64)>> {
    let rows: Vec<(String, Option<uuid::Uuid>, i64)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT scope_kind, scope_id, CAST(SUM(amount_minor) AS BIGINT)
             FROM cap_period_raises WHERE tenant_id = $1 AND period = $2
             GROUP BY scope_kind, scope_id",
        )
        .bind(tenant)
        .bind(period)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, amount)| Some((CapScope::parse(&kind, id)?, amount)))
        .collect())
}
