//! Joiner policies and joiners: who gets a line when they join, and where each joiner's
//! line is.

use time::{Date, OffsetDateTime};

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{CostCentreId, EmployeeId, JoinerPolicyId, LineId, PlanId, TeamId, TenantId};
use crate::organisation::joiner::{Joiner, JoinerPolicy, JoinerRule, JoinerState};

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: JoinerPolicyId,
    tenant_id: TenantId,
    team_id: Option<TeamId>,
    cost_centre_id: Option<CostCentreId>,
    plan_id: PlanId,
    created_at: OffsetDateTime,
}

impl From<PolicyRow> for JoinerPolicy {
    fn from(r: PolicyRow) -> Self {
        let rule = match (r.team_id, r.cost_centre_id) {
            (Some(team), _) => JoinerRule::Team(team),
            (None, Some(centre)) => JoinerRule::CostCentre(centre),
            (None, None) => JoinerRule::Everyone,
        };
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            rule,
            plan_id: r.plan_id,
            created_at: r.created_at,
        }
    }
}

pub async fn insert_policy(
    tx: &mut Tx,
    tenant: TenantId,
    policy: &JoinerPolicy,
) -> StoreResult<()> {
    let (team, centre) = match policy.rule {
        JoinerRule::Everyone => (None, None),
        JoinerRule::Team(team) => (Some(team), None),
        JoinerRule::CostCentre(centre) => (None, Some(centre)),
    };
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO joiner_policies (id, tenant_id, team_id, cost_centre_id, plan_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(policy.id)
        .bind(tenant)
        .bind(team)
        .bind(centre)
        .bind(policy.plan_id)
        .bind(policy.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn delete_policy(tx: &mut Tx, tenant: TenantId, id: JoinerPolicyId) -> StoreResult<bool> {
    let deleted = on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM joiner_policies WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(deleted == 1)
}

/// The tenant's joiner policies, oldest first.
pub async fn list_policies(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<JoinerPolicy>> {
    let rows: Vec<PolicyRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, team_id, cost_centre_id, plan_id, created_at
             FROM joiner_policies WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows.into_iter().map(JoinerPolicy::from).collect())
}

#[derive(sqlx::FromRow)]
struct JoinerRow {
    tenant_id: TenantId,
    employee_id: EmployeeId,
    start_date: Option<Date>,
    state: String,
    policy_id: Option<JoinerPolicyId>,
    line_id: Option<LineId>,
    ordered_at: Option<OffsetDateTime>,
    delivered_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
}

impl TryFrom<JoinerRow> for Joiner {
    type Error = StoreError;
    fn try_from(r: JoinerRow) -> StoreResult<Self> {
        Ok(Self {
            tenant_id: r.tenant_id,
            employee_id: r.employee_id,
            start_date: r.start_date,
            state: JoinerState::parse(&r.state).ok_or_else(|| StoreError::Corrupt {
                what: "joiner state",
                reason: format!("{:?} is not a state", r.state),
            })?,
            policy_id: r.policy_id,
            line_id: r.line_id,
            ordered_at: r.ordered_at,
            delivered_at: r.delivered_at,
            last_error: r.last_error,
            created_at: r.created_at,
        })
    }
}

const JOINER_COLUMNS: &str = "tenant_id, employee_id, start_date, state, policy_id, line_id,
     ordered_at, delivered_at, last_error, created_at";

/// Records the joiner unless they are known; whether this call recorded them.
pub async fn insert_if_new(tx: &mut Tx, tenant: TenantId, joiner: &Joiner) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO joiners (tenant_id, employee_id, start_date, state, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, employee_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(joiner.employee_id)
        .bind(joiner.start_date)
        .bind(joiner.state.as_str())
        .bind(joiner.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn get(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Option<Joiner>> {
    let sql =
        format!("SELECT {JOINER_COLUMNS} FROM joiners WHERE tenant_id = $1 AND employee_id = $2");
    let row: Option<JoinerRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .fetch_optional(conn)
            .await?
    });
    row.map(Joiner::try_from).transpose()
}

/// The tenant's joiners in `state`, by start date (none first).
pub async fn list_in_state(
    tx: &mut Tx,
    tenant: TenantId,
    state: JoinerState,
) -> StoreResult<Vec<Joiner>> {
    let sql = format!(
        "SELECT {JOINER_COLUMNS} FROM joiners WHERE tenant_id = $1 AND state = $2
         ORDER BY start_date, created_at"
    );
    let rows: Vec<JoinerRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(state.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Joiner::try_from).collect()
}

/// Every joiner of the tenant, newest first.
pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Joiner>> {
    let sql = format!(
        "SELECT {JOINER_COLUMNS} FROM joiners WHERE tenant_id = $1 ORDER BY created_at DESC"
    );
    let rows: Vec<JoinerRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Joiner::try_from).collect()
}

/// Writes the joiner's state, policy, line, times, error and start date.
pub async fn update(tx: &mut Tx, tenant: TenantId, joiner: &Joiner) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE joiners SET start_date = $3, state = $4, policy_id = $5, line_id = $6,
                 ordered_at = $7, delivered_at = $8, last_error = $9
             WHERE tenant_id = $1 AND employee_id = $2",
        )
        .bind(tenant)
        .bind(joiner.employee_id)
        .bind(joiner.start_date)
        .bind(joiner.state.as_str())
        .bind(joiner.policy_id)
        .bind(joiner.line_id)
        .bind(joiner.ordered_at)
        .bind(joiner.delivered_at)
        .bind(&joiner.last_error)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Whether the tenant has any joiner policy.
pub async fn any_policy(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    let found: Option<i32> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT 1 FROM joiner_policies WHERE tenant_id = $1 LIMIT 1")
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    Ok(found.is_some())
}

/// Every tenant with a joiner in `state` (a system transaction: it looks across tenants).
pub async fn tenants_in_state(tx: &mut Tx, state: JoinerState) -> StoreResult<Vec<TenantId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM joiners WHERE state = $1")
            .bind(state.as_str())
            .fetch_all(conn)
            .await?
    }))
}
