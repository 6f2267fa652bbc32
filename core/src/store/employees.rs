//! Employees.

use time::OffsetDateTime;

use super::query::{Arg, Sql, fetch_all};
use super::{StoreError, StoreResult, Tx, bulk, on_tx};
use crate::email_address::Email;
use crate::ids::{CostCentreId, EmployeeId, TeamId, TenantId};
use crate::organisation::employee::{DirectoryFilter, Employee, EmployeeStatus};

#[derive(sqlx::FromRow)]
pub(super) struct EmployeeRow {
    id: EmployeeId,
    tenant_id: TenantId,
    email: String,
    given_name: String,
    family_name: String,
    team_id: Option<TeamId>,
    cost_centre_id: Option<CostCentreId>,
    manager_id: Option<EmployeeId>,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<EmployeeRow> for Employee {
    type Error = StoreError;
    fn try_from(r: EmployeeRow) -> StoreResult<Employee> {
        Ok(Employee {
            id: r.id,
            tenant_id: r.tenant_id,
            email: Email::parse(&r.email).map_err(|e| StoreError::corrupt("employee email", e))?,
            given_name: r.given_name,
            family_name: r.family_name,
            team_id: r.team_id,
            cost_centre_id: r.cost_centre_id,
            manager_id: r.manager_id,
            status: EmployeeStatus::parse(&r.status)
                .ok_or_else(|| StoreError::corrupt("employee status", &r.status))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, email, given_name, family_name, team_id, cost_centre_id, \
                       manager_id, status, created_at, updated_at";

pub async fn insert(tx: &mut Tx, tenant: TenantId, e: &Employee) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO employees (id, tenant_id, email, given_name, family_name, team_id,
                 cost_centre_id, manager_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(e.id)
        .bind(tenant)
        .bind(e.email.as_str())
        .bind(&e.given_name)
        .bind(&e.family_name)
        .bind(e.team_id)
        .bind(e.cost_centre_id)
        .bind(e.manager_id)
        .bind(e.status.as_str())
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn get(tx: &mut Tx, tenant: TenantId, id: EmployeeId) -> StoreResult<Option<Employee>> {
    let sql = format!("SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 AND id = $2");
    let row: Option<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    row.map(Employee::try_from).transpose()
}

/// How an employee stands when they act: whether they are still active, and their roles in
/// the tenant (none when they are no portal member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub employee_id: EmployeeId,
    pub status: EmployeeStatus,
    pub roles: Vec<String>,
}

/// A standing's row: one per role (a `NULL` role when the employee has none).
#[derive(sqlx::FromRow)]
struct StandingRow {
    employee_id: EmployeeId,
    status: String,
    role: Option<String>,
}

const STANDING_COLUMNS: &str = "e.id AS employee_id, e.status, m.role";
const STANDING_ROLES: &str =
    "LEFT JOIN memberships m ON m.tenant_id = e.tenant_id AND m.employee_id = e.id";

fn standing_of(rows: Vec<StandingRow>) -> StoreResult<Option<Standing>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let status = EmployeeStatus::parse(&first.status)
        .ok_or_else(|| StoreError::corrupt("employee status", &first.status))?;
    Ok(Some(Standing {
        employee_id: first.employee_id,
        status,
        roles: rows.into_iter().filter_map(|r| r.role).collect(),
    }))
}

/// `employee`'s standing, in one statement.
pub async fn standing(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
) -> StoreResult<Option<Standing>> {
    let sql = format!(
        "SELECT {STANDING_COLUMNS} FROM employees e {STANDING_ROLES}
         WHERE e.tenant_id = $1 AND e.id = $2"
    );
    let rows: Vec<StandingRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(employee)
            .fetch_all(conn)
            .await?
    });
    standing_of(rows)
}

/// The standing of the employee a chat user is linked to (none while unlinked), in one
/// statement: a chat click's first question.
pub async fn standing_of_chat_user(
    tx: &mut Tx,
    tenant: TenantId,
    platform: &str,
    external_id: &str,
) -> StoreResult<Option<Standing>> {
    let sql = format!(
        "SELECT {STANDING_COLUMNS} FROM chat_identities ci
         JOIN employees e ON e.tenant_id = ci.tenant_id AND e.id = ci.employee_id
         {STANDING_ROLES}
         WHERE ci.tenant_id = $1 AND ci.platform = $2 AND ci.external_id = $3"
    );
    let rows: Vec<StandingRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(platform)
            .bind(external_id)
            .fetch_all(conn)
            .await?
    });
    standing_of(rows)
}

/// A person named on a page, a card or a report.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Person {
    pub id: EmployeeId,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
}

impl Person {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// The names and addresses of `ids` (those still in the directory), in one statement for
/// up to 500 of them.
pub async fn people(tx: &mut Tx, tenant: TenantId, ids: &[EmployeeId]) -> StoreResult<Vec<Person>> {
    // Numbered placeholders are found by name on SQLite: a few hundred a statement keeps
    // that cheap when many people tie for the last places shown.
    const PER_STATEMENT: usize = 500;
    let mut people = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PER_STATEMENT) {
        let mut sql = Sql::new(tenant);
        let list: Vec<String> = chunk.iter().map(|id| sql.arg(Arg::Uuid(id.0))).collect();
        sql.push(&format!(
            "SELECT id, given_name, family_name, email FROM employees
             WHERE tenant_id = $1 AND id IN ({})",
            list.join(", ")
        ));
        people.extend(fetch_all!(tx, Person, sql));
    }
    Ok(people)
}

pub async fn find_by_email(
    tx: &mut Tx,
    tenant: TenantId,
    email: &Email,
) -> StoreResult<Option<Employee>> {
    let sql = format!("SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 AND email = $2");
    let row: Option<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(email.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Employee::try_from).transpose()
}

pub async fn list(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Employee>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM employees WHERE tenant_id = $1 ORDER BY family_name, given_name"
    );
    let rows: Vec<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    rows.into_iter().map(Employee::try_from).collect()
}

/// Every row of the table, whatever the tenant: only meaningful in a tenant-scoped
/// transaction on PostgreSQL, where row-level security must still hide other tenants.
/// Exists so tests can prove that second wall holds.
pub async fn count_visible(tx: &mut Tx) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM employees")
            .fetch_one(conn)
            .await?
    }))
}

pub async fn update_name(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
    given_name: &str,
    family_name: &str,
) -> StoreResult<bool> {
    let done = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE employees SET given_name = $3, family_name = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(given_name)
        .bind(family_name)
        .bind(super::now())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// `manager` and everyone below them in the reporting chain. The `UNION` (not `UNION ALL`)
/// stops at rows already seen, so a cycle in the data cannot loop.
pub async fn reporting_tree(
    tx: &mut Tx,
    tenant: TenantId,
    manager: EmployeeId,
) -> StoreResult<Vec<EmployeeId>> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM employees WHERE tenant_id = $1 AND id = $2
                 UNION
                 SELECT e.id FROM employees e JOIN tree t ON e.manager_id = t.id
                 WHERE e.tenant_id = $1
             )
             SELECT id FROM tree",
        )
        .bind(tenant)
        .bind(manager)
        .fetch_all(conn)
        .await?
    }))
}

/// Create or update many employees at once, matched by email: a handful of statements
/// whatever the count. Rows whose manager is also in `employees` must come after that
/// manager, as each batch's manager references are checked when it is written.
pub async fn upsert_many(tx: &mut Tx, tenant: TenantId, employees: &[Employee]) -> StoreResult<()> {
    const COLUMNS: bulk::Columns<10> = bulk::Columns {
        table: "employees",
        names: [
            "id",
            "email",
            "given_name",
            "family_name",
            "team_id",
            "cost_centre_id",
            "manager_id",
            "status",
            "created_at",
            "updated_at",
        ],
    };
    const ON_CONFLICT: &str = " ON CONFLICT (tenant_id, email) DO UPDATE SET
         given_name = excluded.given_name, family_name = excluded.family_name,
         team_id = excluded.team_id, cost_centre_id = excluded.cost_centre_id,
         manager_id = excluded.manager_id, updated_at = excluded.updated_at";
    bulk::insert(tx, tenant, &COLUMNS, ON_CONFLICT, employees, |e| {
        [
            e.id.0.into(),
            e.email.as_str().into(),
            (&e.given_name).into(),
            (&e.family_name).into(),
            e.team_id.map(|id| id.0).into(),
            e.cost_centre_id.map(|id| id.0).into(),
            e.manager_id.map(|id| id.0).into(),
            e.status.as_str().into(),
            e.created_at.into(),
            e.updated_at.into(),
        ]
    })
    .await?;
    Ok(())
}

/// One employee as the directory lists them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryRow {
    pub id: EmployeeId,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub status: String,
    pub team: Option<String>,
    pub cost_centre: Option<String>,
    pub manager_given_name: Option<String>,
    pub manager_family_name: Option<String>,
    pub live_lines: i64,
}

const LIVE_LINES: &str = "(SELECT COUNT(*) FROM lines l WHERE l.tenant_id = e.tenant_id
     AND l.employee_id = e.id AND l.state IN ('ready', 'active', 'suspended'))";

enum Bind {
    Text(String),
    Id(uuid::Uuid),
}

/// The `WITH … WHERE …` part shared by the page and its count, and its parameters after $1.
fn directory_clauses(filter: &DirectoryFilter) -> (String, String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut next = |bind: Bind| {
        binds.push(bind);
        format!("${}", binds.len() + 1)
    };
    let mut with = String::new();
    let mut conditions = vec!["e.tenant_id = $1".to_owned()];
    if let Some(manager) = filter.within {
        let p = next(Bind::Id(manager.0));
        with = format!(
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM employees WHERE tenant_id = $1 AND id = {p}
                 UNION
                 SELECT c.id FROM employees c JOIN tree t ON c.manager_id = t.id
                 WHERE c.tenant_id = $1) "
        );
        conditions.push("e.id IN (SELECT id FROM tree)".to_owned());
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let escaped = search
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = next(Bind::Text(format!("%{escaped}%")));
        conditions.push(format!(
            "(lower(e.given_name || ' ' || e.family_name) LIKE {p} ESCAPE '\\'
              OR e.email LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(team) = filter.team {
        let p = next(Bind::Id(team.0));
        conditions.push(format!("e.team_id = {p}"));
    }
    if let Some(centre) = filter.cost_centre {
        let p = next(Bind::Id(centre.0));
        conditions.push(format!("e.cost_centre_id = {p}"));
    }
    if let Some(status) = filter.status {
        let p = next(Bind::Text(status.as_str().to_owned()));
        conditions.push(format!("e.status = {p}"));
    }
    match filter.has_line {
        Some(true) => conditions.push(format!("{LIVE_LINES} > 0")),
        Some(false) => conditions.push(format!("{LIVE_LINES} = 0")),
        None => {}
    }
    (with, conditions.join(" AND "), binds)
}

/// One page of the directory, sorted by name, and how many match in all.
pub async fn directory(
    tx: &mut Tx,
    tenant: TenantId,
    filter: &DirectoryFilter,
) -> StoreResult<(Vec<DirectoryRow>, i64)> {
    let (with, conditions, binds) = directory_clauses(filter);
    let order = if filter.descending { "DESC" } else { "ASC" };
    let page_sql = format!(
        "{with}SELECT e.id, e.email, e.given_name, e.family_name, e.status,
             t.name AS team, c.code AS cost_centre,
             m.given_name AS manager_given_name, m.family_name AS manager_family_name,
             {LIVE_LINES} AS live_lines
         FROM employees e
         LEFT JOIN teams t ON t.tenant_id = e.tenant_id AND t.id = e.team_id
         LEFT JOIN cost_centres c ON c.tenant_id = e.tenant_id AND c.id = e.cost_centre_id
         LEFT JOIN employees m ON m.tenant_id = e.tenant_id AND m.id = e.manager_id
         WHERE {conditions}
         ORDER BY lower(e.family_name) {order}, lower(e.given_name) {order}, e.email {order}
         LIMIT {} OFFSET {}",
        filter.limit.max(0),
        filter.offset.max(0)
    );
    let count_sql = format!("{with}SELECT COUNT(*) FROM employees e WHERE {conditions}");
    Ok(on_tx!(tx, |conn| {
        let mut page = sqlx::query_as::<_, DirectoryRow>(&page_sql).bind(tenant);
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql).bind(tenant);
        for bind in &binds {
            (page, count) = match bind {
                Bind::Text(text) => (page.bind(text.clone()), count.bind(text.clone())),
                Bind::Id(id) => (page.bind(*id), count.bind(*id)),
            };
        }
        let rows = page.fetch_all(&mut *conn).await?;
        let total = count.fetch_one(&mut *conn).await?;
        (rows, total)
    }))
}

/// `id`'s manager, their manager, and so on up to the top (at most 50 levels, so bad data
/// cannot loop).
pub async fn manager_chain(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
) -> StoreResult<Vec<Employee>> {
    let sql = format!(
        "WITH RECURSIVE chain(id, depth) AS (
             SELECT manager_id, 1 FROM employees WHERE tenant_id = $1 AND id = $2
             UNION ALL
             SELECT e.manager_id, c.depth + 1 FROM employees e JOIN chain c ON e.id = c.id
             WHERE e.tenant_id = $1 AND c.depth < 50
         )
         SELECT {} FROM chain JOIN employees e ON e.id = chain.id AND e.tenant_id = $1
         ORDER BY chain.depth",
        COLUMNS
            .split(", ")
            .map(|c| format!("e.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows: Vec<EmployeeRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Employee::try_from).collect()
}

/// Write every editable field of `e`.
pub async fn update(tx: &mut Tx, tenant: TenantId, e: &Employee) -> StoreResult<bool> {
    let done = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE employees SET email = $3, given_name = $4, family_name = $5, team_id = $6,
                 cost_centre_id = $7, manager_id = $8, status = $9, updated_at = $10
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(e.id)
        .bind(e.email.as_str())
        .bind(&e.given_name)
        .bind(&e.family_name)
        .bind(e.team_id)
        .bind(e.cost_centre_id)
        .bind(e.manager_id)
        .bind(e.status.as_str())
        .bind(e.updated_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

pub async fn direct_report_count(
    tx: &mut Tx,
    tenant: TenantId,
    manager: EmployeeId,
) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM employees
             WHERE tenant_id = $1 AND manager_id = $2 AND status = 'active'",
        )
        .bind(tenant)
        .bind(manager)
        .fetch_one(conn)
        .await?
    }))
}

/// Whether the tenant has anyone in its directory yet.
pub async fn any(tx: &mut Tx, tenant: TenantId) -> StoreResult<bool> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM employees WHERE tenant_id = $1)",
        )
        .bind(tenant)
        .fetch_one(conn)
        .await?
    }))
}
