//! Lines. State changes are compare-and-set on the current state, so two writers racing on
//! one line cannot both apply a transition.

use time::OffsetDateTime;

use super::{StoreError, StoreResult, Tx, on_tx};
use crate::ids::{
    CostCentreId, EmployeeId, LineId, PlanId, ProviderConnectionId, TeamId, TenantId,
};
use crate::lines::iccid::Iccid;
use crate::lines::line::activation::SealedActivationCode;
use crate::lines::line::{Line, LineSearch, LineState};

#[derive(sqlx::FromRow)]
struct LineRow {
    id: LineId,
    tenant_id: TenantId,
    employee_id: EmployeeId,
    plan_id: PlanId,
    state: String,
    provider: String,
    provider_subscription_id: Option<String>,
    iccid: Option<String>,
    activation_code: Option<String>,
    failure_reason: Option<String>,
    issue_key: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    provider_connection_id: Option<ProviderConnectionId>,
}

impl TryFrom<LineRow> for Line {
    type Error = StoreError;
    fn try_from(r: LineRow) -> StoreResult<Line> {
        Ok(Line {
            id: r.id,
            tenant_id: r.tenant_id,
            employee_id: r.employee_id,
            plan_id: r.plan_id,
            state: r
                .state
                .parse()
                .map_err(|e| StoreError::corrupt("line state", e))?,
            provider: r.provider,
            provider_connection_id: r.provider_connection_id,
            provider_subscription_id: r.provider_subscription_id,
            iccid: r
                .iccid
                .map(|i| Iccid::parse(&i))
                .transpose()
                .map_err(|e| StoreError::corrupt("line iccid", e))?,
            activation_code: r.activation_code.map(SealedActivationCode::from_stored),
            failure_reason: r.failure_reason,
            issue_key: r.issue_key,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, employee_id, plan_id, state, provider, \
     provider_subscription_id, iccid, activation_code, failure_reason, issue_key, created_at, \
     updated_at, provider_connection_id";

/// Inserts the line unless one with the same issue key exists; returns whether it inserted.
pub async fn insert_if_new(tx: &mut Tx, tenant: TenantId, line: &Line) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO lines (id, tenant_id, employee_id, plan_id, state, provider,
                 provider_subscription_id, iccid, activation_code, failure_reason, issue_key,
                 created_at, updated_at, provider_connection_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (tenant_id, issue_key) DO NOTHING",
        )
        .bind(line.id)
        .bind(tenant)
        .bind(line.employee_id)
        .bind(line.plan_id)
        .bind(line.state.as_str())
        .bind(&line.provider)
        .bind(&line.provider_subscription_id)
        .bind(line.iccid.as_ref().map(Iccid::as_str))
        .bind(
            line.activation_code
                .as_ref()
                .map(SealedActivationCode::as_stored),
        )
        .bind(&line.failure_reason)
        .bind(&line.issue_key)
        .bind(line.created_at)
        .bind(line.updated_at)
        .bind(line.provider_connection_id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Dates a line's issue back to `at`: the demo seed's history of lines issued months ago.
pub async fn backdate(
    tx: &mut Tx,
    tenant: TenantId,
    id: LineId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE lines SET created_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: LineId) -> StoreResult<Option<Line>> {
    let sql = format!("SELECT {COLUMNS} FROM lines WHERE tenant_id = $1 AND id = $2");
    let row: Option<LineRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Line::try_from).transpose()
}

pub async fn find_by_issue_key(
    tx: &mut Tx,
    tenant: TenantId,
    issue_key: &str,
) -> StoreResult<Option<Line>> {
    let sql = format!("SELECT {COLUMNS} FROM lines WHERE tenant_id = $1 AND issue_key = $2");
    let row: Option<LineRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(issue_key)
            .fetch_optional(conn)
            .await?
    });
    row.map(Line::try_from).transpose()
}

pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Line>> {
    let sql = format!("SELECT {COLUMNS} FROM lines WHERE tenant_id = $1 ORDER BY created_at, id");
    let rows: Vec<LineRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Line::try_from).collect()
}

pub async fn list_for_employee(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Vec<Line>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM lines WHERE tenant_id = $1 AND employee_id = $2 ORDER BY created_at"
    );
    let rows: Vec<LineRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Line::try_from).collect()
}

/// Lines still waiting on the provider, across tenants: resumed after a restart.
pub async fn list_in_flight(tx: &mut Tx) -> StoreResult<Vec<Line>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM lines WHERE state IN ('requested', 'provisioning') ORDER BY created_at"
    );
    let rows: Vec<LineRow> = on_tx!(tx, |conn| sqlx::query_as(&sql).fetch_all(conn).await?);
    rows.into_iter().map(Line::try_from).collect()
}

/// Writes every mutable field of `line` if the stored state is still `expected`.
/// Returns false (and writes nothing) when another writer moved the line first.
pub async fn update_if_state(
    tx: &mut Tx,
    tenant: TenantId,
    line: &Line,
    expected: LineState,
) -> StoreResult<bool> {
    let updated = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE lines SET employee_id = $3, plan_id = $4, state = $5,
                 provider_subscription_id = $6, iccid = $7, activation_code = $8,
                 failure_reason = $9, updated_at = $10, provider_connection_id = $12,
                 provider = $13
             WHERE tenant_id = $1 AND id = $2 AND state = $11",
        )
        .bind(tenant)
        .bind(line.id)
        .bind(line.employee_id)
        .bind(line.plan_id)
        .bind(line.state.as_str())
        .bind(&line.provider_subscription_id)
        .bind(line.iccid.as_ref().map(Iccid::as_str))
        .bind(
            line.activation_code
                .as_ref()
                .map(SealedActivationCode::as_stored),
        )
        .bind(&line.failure_reason)
        .bind(line.updated_at)
        .bind(expected.as_str())
        .bind(line.provider_connection_id)
        .bind(&line.provider)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Activation codes still stored in clear (written before codes were sealed), across
/// tenants: the start-up step seals them.
pub async fn unsealed_activation_codes(
    tx: &mut Tx,
) -> StoreResult<Vec<(TenantId, LineId, String)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT tenant_id, id, activation_code FROM lines
             WHERE activation_code IS NOT NULL AND activation_code NOT LIKE 'sealed:v1:%'
             ORDER BY created_at, id",
        )
        .fetch_all(conn)
        .await?
    }))
}

pub async fn set_activation_code(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
    code: &SealedActivationCode,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE lines SET activation_code = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(line)
            .bind(code.as_stored())
            .execute(conn)
            .await?;
    });
    Ok(())
}

pub async fn count_by_state(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<(String, i64)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT state, COUNT(*) FROM lines WHERE tenant_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    }))
}

/// The line holding a provider subscription or SIM, whatever its tenant (webhooks).
/// The line a vendor reference names; `tenant` narrows it to one tenant's (a webhook of that
/// tenant's own provider connection), `None` searches every tenant.
pub async fn find_by_provider_ref(
    tx: &mut Tx,
    tenant: Option<TenantId>,
    provider: &str,
    subscription_id: Option<&str>,
    iccid: Option<&str>,
) -> StoreResult<Option<Line>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM lines
         WHERE provider = $1 AND (provider_subscription_id = $2 OR iccid = $3)
           AND ($4 IS NULL OR tenant_id = $4)"
    );
    let row: Option<LineRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(provider)
            .bind(subscription_id)
            .bind(iccid)
            .bind(tenant)
            .fetch_optional(conn)
            .await?
    });
    row.map(Line::try_from).transpose()
}

/// A line with who it is charged to: what usage ingest, spend and guardrails need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOwner {
    pub line_id: LineId,
    pub provider_subscription_id: Option<String>,
    pub state: LineState,
    pub plan_id: PlanId,
    pub employee_id: EmployeeId,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct LineOwnerRow {
    line_id: LineId,
    provider_subscription_id: Option<String>,
    state: String,
    plan_id: PlanId,
    employee_id: EmployeeId,
    team_id: Option<TeamId>,
    cost_centre_id: Option<CostCentreId>,
    created_at: OffsetDateTime,
}

pub async fn list_with_owners(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<LineOwner>> {
    let rows: Vec<LineOwnerRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT l.id AS line_id, l.provider_subscription_id, l.state, l.plan_id,
                 l.employee_id, e.team_id, e.cost_centre_id, l.created_at
             FROM lines l JOIN employees e ON e.id = l.employee_id AND e.tenant_id = l.tenant_id
             WHERE l.tenant_id = $1
             ORDER BY l.created_at, l.id",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|r| {
            Ok(LineOwner {
                line_id: r.line_id,
                provider_subscription_id: r.provider_subscription_id,
                state: r
                    .state
                    .parse()
                    .map_err(|e| StoreError::corrupt("line state", e))?,
                plan_id: r.plan_id,
                employee_id: r.employee_id,
                team_id: r.team_id,
                cost_centre_id: r.cost_centre_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// A line with the names the directory shows next to it.
#[derive(Debug, Clone)]
pub struct ListedLine {
    pub line: Line,
    pub employee_name: String,
    pub employee_email: String,
    pub plan_name: String,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    line: LineRow,
    given_name: String,
    family_name: String,
    email: String,
    plan_name: String,
}

/// The reporting tree (empty unless `$5` names a manager), then `{select}` over the lines
/// matching the filters. Only lines are scanned; names are joined for one page only.
const SEARCH: &str = "WITH RECURSIVE tree(id) AS (
         SELECT id FROM employees WHERE tenant_id = $1 AND id = $5
         UNION
         SELECT e.id FROM employees e JOIN tree t ON e.manager_id = t.id WHERE e.tenant_id = $1
     )
     {select} FROM lines l
     WHERE l.tenant_id = $1
       AND ($2 IS NULL OR l.state = $2)
       AND ($3 IS NULL OR l.plan_id = $3)
       AND ($4 IS NULL OR l.employee_id IN (
            SELECT e.id FROM employees e
            WHERE e.tenant_id = $1
              AND (LOWER(e.given_name || ' ' || e.family_name) LIKE $4 ESCAPE '\\'
                   OR LOWER(e.email) LIKE $4 ESCAPE '\\')))
       AND ($5 IS NULL OR l.employee_id IN (SELECT id FROM tree))";

/// The matching lines, newest first, and how many match in all.
pub async fn search(
    tx: &mut Tx,
    tenant: TenantId,
    search: &LineSearch,
) -> StoreResult<(Vec<ListedLine>, i64)> {
    let pattern = search.text.as_deref().map(|text| {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let state = search.state.map(LineState::as_str);
    let listed = "SELECT l.id, l.tenant_id, l.employee_id, l.plan_id, l.state, l.provider, \
         l.provider_subscription_id, l.iccid, l.activation_code, l.failure_reason, l.issue_key, \
         l.created_at, l.updated_at, l.provider_connection_id, e.given_name, e.family_name, e.email, p.name AS plan_name \
         FROM (SELECT l.*";
    let page_sql = format!(
        "{} ORDER BY l.created_at DESC, l.id DESC LIMIT $6 OFFSET $7) l
         JOIN employees e ON e.tenant_id = l.tenant_id AND e.id = l.employee_id
         JOIN plans p ON p.tenant_id = l.tenant_id AND p.id = l.plan_id
         ORDER BY l.created_at DESC, l.id DESC",
        SEARCH.replace("{select}", listed)
    );
    let count_sql = SEARCH.replace("{select}", "SELECT COUNT(*)");
    let (rows, total): (Vec<ListedRow>, i64) = on_tx!(tx, |conn| {
        let rows = sqlx::query_as(&page_sql)
            .bind(tenant)
            .bind(state)
            .bind(search.plan)
            .bind(&pattern)
            .bind(search.reports_of)
            .bind(search.limit)
            .bind(search.offset)
            .fetch_all(&mut *conn)
            .await?;
        let total = sqlx::query_scalar(&count_sql)
            .bind(tenant)
            .bind(state)
            .bind(search.plan)
            .bind(&pattern)
            .bind(search.reports_of)
            .fetch_one(&mut *conn)
            .await?;
        (rows, total)
    });
    let lines = rows
        .into_iter()
        .map(|r| {
            Ok(ListedLine {
                employee_name: format!("{} {}", r.given_name, r.family_name),
                employee_email: r.email,
                plan_name: r.plan_name,
                line: Line::try_from(r.line)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok((lines, total))
}

/// Live lines (ready, active, suspended) per employee, for policy previews.
pub async fn live_counts_by_employee(
    tx: &mut Tx,
    tenant: TenantId,
) -> StoreResult<Vec<(EmployeeId, i64)>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT employee_id, COUNT(*) FROM lines
             WHERE tenant_id = $1 AND state IN ('ready', 'active', 'suspended')
             GROUP BY employee_id",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    }))
}

/// Whether any line of the tenant has ever been issued (reached the provider's "ready").
pub async fn any_issued(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM lines WHERE tenant_id = $1
             AND state IN ('ready', 'active', 'suspended', 'terminated'))",
        )
        .bind(tenant)
        .fetch_one(conn)
        .await?
    }))
}
