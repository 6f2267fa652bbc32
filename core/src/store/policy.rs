//! Budget caps, cap raises, roaming presets and roaming grants.

use time::Date;

use super::{StoreResult, Tx, on_tx};
use crate::ids::{CostCentreId, EmployeeId, LineId, RequestId, TeamId, TenantId};
use crate::spend::policy::{BudgetCap, CapAction, CapScope, RoamingGrant, RoamingRule};

#[derive(sqlx::FromRow)]
struct CapRow {
    scope_kind: String,
    scope_id: Option<uuid::Uuid>,
    amount_minor: i64,
    thresholds: sqlx::types::Json<Vec<u8>>,
    action: String,
}

impl CapRow {
    fn into_cap(self) -> Option<BudgetCap> {
        Some(BudgetCap {
            scope: CapScope::parse(&self.scope_kind, self.scope_id)?,
            amount_minor: self.amount_minor,
            thresholds: self.thresholds.0,
            action: CapAction::parse(&self.action)?,
        })
    }
}

/// Sets the cap of `cap.scope`, replacing any earlier one. The tenant-wide cap has no scope
/// id, and a NULL never conflicts in a unique index, so this updates first and inserts only
/// when nothing was there.
pub async fn upsert_cap(tx: &mut Tx, tenant: TenantId, cap: &BudgetCap) -> StoreResult<()> {
    let (kind, id) = cap.scope.parts();
    let now = super::now();
    on_tx!(tx, |conn| {
        let updated = sqlx::query(
            "UPDATE budget_caps SET amount_minor = $4, thresholds = $5, action = $6,
                 updated_at = $7
             WHERE tenant_id = $1 AND scope_kind = $2 AND (scope_kind = 'tenant' OR scope_id = $3)",
        )
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .bind(cap.amount_minor)
        .bind(sqlx::types::Json(&cap.thresholds))
        .bind(cap.action.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO budget_caps (id, tenant_id, scope_kind, scope_id, amount_minor,
                     thresholds, action, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(tenant)
            .bind(kind)
            .bind(id)
            .bind(cap.amount_minor)
            .bind(sqlx::types::Json(&cap.thresholds))
            .bind(cap.action.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    });
    Ok(())
}

/// Removes the cap of `scope`; returns whether there was one.
pub async fn delete_cap(tx: &mut Tx, tenant: TenantId, scope: CapScope) -> StoreResult<bool> {
    let (kind, id) = scope.parts();
    let deleted = on_tx!(tx, |conn| {
        sqlx::query(
            "DELETE FROM budget_caps
             WHERE tenant_id = $1 AND scope_kind = $2 AND (scope_kind = 'tenant' OR scope_id = $3)",
        )
        .bind(tenant)
        .bind(kind)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(deleted > 0)
}

pub async fn list_caps(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<BudgetCap>> {
    let rows: Vec<CapRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT scope_kind, scope_id, amount_minor, thresholds, action FROM budget_caps
             WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows.into_iter().filter_map(CapRow::into_cap).collect())
}

/// One raise per request: inserting it twice is a no-op. Returns whether it inserted.
pub async fn insert_cap_raise(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    period: &str,
    amount_minor: i64,
    request: RequestId,
) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cap_raises (id, tenant_id, employee_id, period, amount_minor, request_id,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(tenant)
        .bind(employee)
        .bind(period)
        .bind(amount_minor)
        .bind(request)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn set_roaming_rule(
    tx: &mut Tx,
    tenant: TenantId,
    country: &str,
    rule: RoamingRule,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO roaming_presets (tenant_id, country, rule, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, country) DO UPDATE SET rule = excluded.rule,
                 updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(country)
        .bind(rule.as_str())
        .bind(super::now())
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn roaming_rule(
    tx: &mut Tx,
    tenant: TenantId,
    country: &str,
) -> StoreResult<Option<RoamingRule>> {
    let rule: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT rule FROM roaming_presets WHERE tenant_id = $1 AND country = $2")
            .bind(tenant)
            .bind(country)
            .fetch_optional(conn)
            .await?
    });
    Ok(rule.and_then(|r| RoamingRule::parse(&r)))
}

/// Every country with a preset, A to Z.
pub async fn list_roaming_rules(
    tx: &mut Tx,
    tenant: TenantId,
) -> StoreResult<Vec<(String, RoamingRule)>> {
    let rows: Vec<(String, String)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT country, rule FROM roaming_presets WHERE tenant_id = $1 ORDER BY country",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .filter_map(|(country, rule)| Some((country, RoamingRule::parse(&rule)?)))
        .collect())
}

/// Removes a country's preset; returns whether there was one.
pub async fn delete_roaming_rule(
    tx: &mut Tx,
    tenant: TenantId,
    country: &str,
) -> StoreResult<bool> {
    let deleted = on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM roaming_presets WHERE tenant_id = $1 AND country = $2")
            .bind(tenant)
            .bind(country)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(deleted > 0)
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: uuid::Uuid,
    tenant_id: TenantId,
    line_id: LineId,
    country: String,
    starts_on: Date,
    ends_on: Date,
    request_id: Option<RequestId>,
    state: String,
}

impl From<GrantRow> for RoamingGrant {
    fn from(r: GrantRow) -> Self {
        RoamingGrant {
            id: r.id,
            tenant_id: r.tenant_id,
            line_id: r.line_id,
            country: r.country,
            starts_on: r.starts_on,
            ends_on: r.ends_on,
            request_id: r.request_id,
            state: r.state,
        }
    }
}

/// One grant per request: a second insert for the same request is a no-op.
pub async fn insert_grant(tx: &mut Tx, tenant: TenantId, g: &RoamingGrant) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO roaming_grants (id, tenant_id, line_id, country, starts_on, ends_on,
                 request_id, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(g.id)
        .bind(tenant)
        .bind(g.line_id)
        .bind(&g.country)
        .bind(g.starts_on)
        .bind(g.ends_on)
        .bind(g.request_id)
        .bind(&g.state)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

const GRANT_COLUMNS: &str =
    "id, tenant_id, line_id, country, starts_on, ends_on, request_id, state";

pub async fn grants_for_line(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
) -> StoreResult<Vec<RoamingGrant>> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM roaming_grants WHERE tenant_id = $1 AND line_id = $2
         ORDER BY starts_on"
    );
    let rows: Vec<GrantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(line)
            .fetch_all(conn)
            .await?
    });
    Ok(rows.into_iter().map(RoamingGrant::from).collect())
}

/// Grants whose state should change on `today`, across tenants: scheduled ones that start,
/// active ones that ended.
pub async fn grants_due(tx: &mut Tx, today: Date) -> StoreResult<Vec<RoamingGrant>> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM roaming_grants
         WHERE (state = 'scheduled' AND starts_on <= $1) OR (state = 'active' AND ends_on < $1)
         ORDER BY starts_on"
    );
    let rows: Vec<GrantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(today).fetch_all(conn).await?
    });
    Ok(rows.into_iter().map(RoamingGrant::from).collect())
}

pub async fn set_grant_state(
    tx: &mut Tx,
    tenant: TenantId,
    id: uuid::Uuid,
    from: &str,
    to: &str,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE roaming_grants SET state = $4 WHERE tenant_id = $1 AND id = $2 AND state = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(from)
        .bind(to)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Grants that were not revoked and overlap the days from `from` on: they cover roaming on
/// their days even when they have since ended (usage arrives late).
pub async fn grants_covering_since(
    tx: &mut Tx,
    tenant: TenantId,
    from: Date,
) -> StoreResult<Vec<RoamingGrant>> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM roaming_grants
         WHERE tenant_id = $1 AND state <> 'revoked' AND ends_on >= $2"
    );
    let rows: Vec<GrantRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(from)
            .fetch_all(conn)
            .await?
    });
    Ok(rows.into_iter().map(RoamingGrant::from).collect())
}

/// Each employee's approved cap raises for one billing period, with the employee's team and
/// cost centre: the budgets the raise makes room in.
pub async fn cap_raises_by_owner(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
) -> StoreResult<Vec<(EmployeeId, Option<TeamId>, Option<CostCentreId>, i64)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT r.employee_id, e.team_id, e.cost_centre_id,
                 CAST(SUM(r.amount_minor) AS BIGINT)
             FROM cap_raises r
             JOIN employees e ON e.tenant_id = r.tenant_id AND e.id = r.employee_id
             WHERE r.tenant_id = $1 AND r.period = $2
             GROUP BY r.employee_id, e.team_id, e.cost_centre_id",
        )
        .bind(tenant)
        .bind(period)
        .fetch_all(conn)
        .await?
    }))
}

/// Each employee's approved cap raises for one billing period.
pub async fn cap_raises_for_period(
    tx: &mut Tx,
    tenant: TenantId,
    period: &str,
) -> StoreResult<Vec<(EmployeeId, i64)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT employee_id, CAST(SUM(amount_minor) AS BIGINT) FROM cap_raises
             WHERE tenant_id = $1 AND period = $2 GROUP BY employee_id",
        )
        .bind(tenant)
        .bind(period)
        .fetch_all(conn)
        .await?
    }))
}
