//! SCIM tokens, and what SCIM keeps about employees and teams beyond their own records
//! (the provider's ids, employee numbers, versions, deletions).

use time::OffsetDateTime;

use super::employees::EmployeeRow;
use super::{StoreResult, Tx, on_tx};
use crate::ids::{EmployeeId, ScimTokenId, TeamId, TenantId, UserId};
use crate::organisation::employee::Employee;
use crate::organisation::org_unit::Team;
use crate::organisation::scim::{ScimCall, ScimToken, ScimUser};

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: ScimTokenId,
    tenant_id: TenantId,
    name: String,
    created_by: UserId,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl From<TokenRow> for ScimToken {
    fn from(r: TokenRow) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const TOKEN_COLUMNS: &str = "id, tenant_id, name, created_by, created_at, last_used_at, revoked_at";

pub async fn insert_token(
    tx: &mut Tx,
    tenant: TenantId,
    token: &ScimToken,
    token_hash: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO scim_tokens (id, tenant_id, name, token_hash, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id)
        .bind(tenant)
        .bind(&token.name)
        .bind(token_hash)
        .bind(token.created_by)
        .bind(token.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Every token of the tenant, revoked ones too, newest first.
pub async fn list_tokens(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<ScimToken>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE tenant_id = $1 ORDER BY created_at DESC"
    );
    let rows: Vec<TokenRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?
    });
    Ok(rows.into_iter().map(ScimToken::from).collect())
}

pub async fn get_token(
    tx: &mut Tx,
    tenant: TenantId,
    id: ScimTokenId,
) -> StoreResult<Option<ScimToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE tenant_id = $1 AND id = $2");
    let row: Option<TokenRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    Ok(row.map(ScimToken::from))
}

/// The tenant's unrevoked token with this hash.
pub async fn find_live_token(
    tx: &mut Tx,
    tenant: TenantId,
    token_hash: &str,
) -> StoreResult<Option<ScimToken>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM scim_tokens
         WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL"
    );
    let row: Option<TokenRow> = on_tx!(tx, |conn| {
        sqlx::query_as(&sql)
            .bind(tenant)
            .bind(token_hash)
            .fetch_optional(conn)
            .await?
    });
    Ok(row.map(ScimToken::from))
}

pub async fn touch_token(
    tx: &mut Tx,
    tenant: TenantId,
    id: ScimTokenId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE scim_tokens SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Revoke the token unless it already is; whether this call revoked it.
pub async fn revoke_token(
    tx: &mut Tx,
    tenant: TenantId,
    id: ScimTokenId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let done = on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE scim_tokens SET revoked_at = $3
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Which users a list returns.
#[derive(Debug, Clone)]
pub enum UserMatch {
    Email(String),
    /// The userName SCIM serves (the given one, else the email), ignoring case.
    UserName(String),
    ExternalId(String),
    Id(EmployeeId),
}

#[derive(sqlx::FromRow)]
struct ScimUserRow {
    #[sqlx(flatten)]
    employee: EmployeeRow,
    user_name: Option<String>,
    external_id: Option<String>,
    employee_number: Option<String>,
    scim_version: i64,
    department: Option<String>,
    cost_centre: Option<String>,
    start_date: Option<time::Date>,
}

impl TryFrom<ScimUserRow> for ScimUser {
    type Error = super::StoreError;
    fn try_from(r: ScimUserRow) -> StoreResult<Self> {
        let employee = Employee::try_from(r.employee)?;
        Ok(ScimUser {
            version: version(employee.updated_at, r.scim_version),
            employee,
            user_name: r.user_name,
            external_id: r.external_id,
            employee_number: r.employee_number,
            department: r.department,
            cost_centre: r.cost_centre,
            start_date: r.start_date,
        })
    }
}

/// A version that changes with the record's own changes and with SCIM's.
fn version(updated_at: OffsetDateTime, scim_version: i64) -> String {
    format!(
        "{}-{scim_version}",
        updated_at.unix_timestamp_nanos() / 1000
    )
}

const USERS_FROM: &str = "FROM employees e
     LEFT JOIN scim_users s ON s.tenant_id = e.tenant_id AND s.employee_id = e.id
     LEFT JOIN teams t ON t.tenant_id = e.tenant_id AND t.id = e.team_id
     LEFT JOIN cost_centres c ON c.tenant_id = e.tenant_id AND c.id = e.cost_centre_id
     LEFT JOIN joiners j ON j.tenant_id = e.tenant_id AND j.employee_id = e.id
     WHERE e.tenant_id = $1 AND s.deleted_at IS NULL";

const USER_COLUMNS: &str = "e.id, e.tenant_id, e.email, e.given_name, e.family_name, e.team_id,
     e.cost_centre_id, e.manager_id, e.status, e.created_at, e.updated_at, s.user_name, s.external_id,
     s.employee_number, COALESCE(s.version, 0) AS scim_version, t.name AS department,
     c.code AS cost_centre, j.start_date";

fn user_condition(matching: Option<&UserMatch>) -> &'static str {
    match matching {
        None => "",
        Some(UserMatch::Email(_)) => " AND e.email = $2",
        Some(UserMatch::UserName(_)) => " AND LOWER(COALESCE(s.user_name, e.email)) = LOWER($2)",
        Some(UserMatch::ExternalId(_)) => " AND s.external_id = $2",
        Some(UserMatch::Id(_)) => " AND e.id = $2",
    }
}

/// One page of the users SCIM serves (oldest first), and how many match in all.
pub async fn list_users(
    tx: &mut Tx,
    tenant: TenantId,
    matching: Option<&UserMatch>,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<ScimUser>, i64)> {
    let condition = user_condition(matching);
    let next = if matching.is_some() { 3 } else { 2 };
    let sql = format!(
        "SELECT {USER_COLUMNS} {USERS_FROM}{condition} ORDER BY e.created_at, e.id
         LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let count_sql = format!("SELECT COUNT(*) {USERS_FROM}{condition}");
    let (rows, total): (Vec<ScimUserRow>, i64) = on_tx!(tx, |conn| {
        let mut query = sqlx::query_as(&sql).bind(tenant);
        let mut count = sqlx::query_scalar(&count_sql).bind(tenant);
        match matching {
            None => {}
            Some(UserMatch::Email(v) | UserMatch::UserName(v) | UserMatch::ExternalId(v)) => {
                query = query.bind(v.as_str());
                count = count.bind(v.as_str());
            }
            Some(UserMatch::Id(id)) => {
                query = query.bind(*id);
                count = count.bind(*id);
            }
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
        (rows, count.fetch_one(&mut *conn).await?)
    });
    let users = rows
        .into_iter()
        .map(ScimUser::try_from)
        .collect::<StoreResult<_>>()?;
    Ok((users, total))
}

/// The user SCIM serves under this id: not one the provider deleted.
pub async fn get_user(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
) -> StoreResult<Option<ScimUser>> {
    let (mut users, _) = list_users(tx, tenant, Some(&UserMatch::Id(id)), 0, 1).await?;
    Ok(users.pop())
}

/// Store the user's SCIM data, counting one more SCIM change.
pub async fn save_user(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
    user_name: Option<&str>,
    external_id: Option<&str>,
    employee_number: Option<&str>,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO scim_users
                 (tenant_id, employee_id, user_name, external_id, employee_number, version)
             VALUES ($1, $2, $5, $3, $4, 1)
             ON CONFLICT (tenant_id, employee_id) DO UPDATE SET
                 user_name = excluded.user_name,
                 external_id = excluded.external_id,
                 employee_number = excluded.employee_number,
                 version = scim_users.version + 1",
        )
        .bind(tenant)
        .bind(id)
        .bind(external_id)
        .bind(employee_number)
        .bind(user_name)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The provider deleted the user: SCIM no longer serves them.
pub async fn mark_user_deleted(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmployeeId,
    at: OffsetDateTime,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO scim_users (tenant_id, employee_id, version, deleted_at)
             VALUES ($1, $2, 1, $3)
             ON CONFLICT (tenant_id, employee_id) DO UPDATE SET
                 deleted_at = excluded.deleted_at, version = scim_users.version + 1",
        )
        .bind(tenant)
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Which groups a list returns.
#[derive(Debug, Clone)]
pub enum GroupMatch {
    /// Ignoring case, as team names are matched on import.
    Name(String),
    ExternalId(String),
    Id(TeamId),
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: TeamId,
    tenant_id: TenantId,
    name: String,
    created_at: OffsetDateTime,
    external_id: Option<String>,
    scim_version: i64,
}

/// A team as SCIM sees it: the team, its external id and version (members apart).
pub struct StoredGroup {
    pub team: Team,
    pub external_id: Option<String>,
    pub version: String,
}

const GROUPS_FROM: &str = "FROM teams t
     LEFT JOIN scim_groups g ON g.tenant_id = t.tenant_id AND g.team_id = t.id
     WHERE t.tenant_id = $1 AND g.deleted_at IS NULL";

/// One page of the groups SCIM serves (by name), and how many match in all.
pub async fn list_groups(
    tx: &mut Tx,
    tenant: TenantId,
    matching: Option<&GroupMatch>,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<StoredGroup>, i64)> {
    let condition = match matching {
        None => "",
        Some(GroupMatch::Name(_)) => " AND LOWER(t.name) = LOWER($2)",
        Some(GroupMatch::ExternalId(_)) => " AND g.external_id = $2",
        Some(GroupMatch::Id(_)) => " AND t.id = $2",
    };
    let next = if matching.is_some() { 3 } else { 2 };
    let sql = format!(
        "SELECT t.id, t.tenant_id, t.name, t.created_at, g.external_id,
             COALESCE(g.version, 0) AS scim_version
         {GROUPS_FROM}{condition} ORDER BY t.name, t.id LIMIT ${next} OFFSET ${}",
        next + 1
    );
    let count_sql = format!("SELECT COUNT(*) {GROUPS_FROM}{condition}");
    let (rows, total): (Vec<GroupRow>, i64) = on_tx!(tx, |conn| {
        let mut query = sqlx::query_as(&sql).bind(tenant);
        let mut count = sqlx::query_scalar(&count_sql).bind(tenant);
        match matching {
            None => {}
            Some(GroupMatch::Name(v) | GroupMatch::ExternalId(v)) => {
                query = query.bind(v.as_str());
                count = count.bind(v.as_str());
            }
            Some(GroupMatch::Id(id)) => {
                query = query.bind(*id);
                count = count.bind(*id);
            }
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
        (rows, count.fetch_one(&mut *conn).await?)
    });
    let groups = rows
        .into_iter()
        .map(|r| StoredGroup {
            version: r.scim_version.to_string(),
            team: Team {
                id: r.id,
                tenant_id: r.tenant_id,
                name: r.name,
                created_at: r.created_at,
            },
            external_id: r.external_id,
        })
        .collect();
    Ok((groups, total))
}

/// The team's members SCIM serves (not users the provider deleted): id and full name.
pub async fn group_members(
    tx: &mut Tx,
    tenant: TenantId,
    team: TeamId,
) -> StoreResult<Vec<(EmployeeId, String)>> {
    let rows: Vec<(EmployeeId, String, String)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT e.id, e.given_name, e.family_name FROM employees e
             LEFT JOIN scim_users s ON s.tenant_id = e.tenant_id AND s.employee_id = e.id
             WHERE e.tenant_id = $1 AND e.team_id = $2 AND s.deleted_at IS NULL
             ORDER BY e.created_at, e.id",
        )
        .bind(tenant)
        .bind(team)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, given, family)| (id, format!("{given} {family}")))
        .collect())
}

/// Store the group's SCIM data, counting one more SCIM change.
pub async fn save_group(
    tx: &mut Tx,
    tenant: TenantId,
    team: TeamId,
    external_id: Option<&str>,
    deleted_at: Option<OffsetDateTime>,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO scim_groups (tenant_id, team_id, external_id, version, deleted_at)
             VALUES ($1, $2, $3, 1, $4)
             ON CONFLICT (tenant_id, team_id) DO UPDATE SET
                 external_id = excluded.external_id, deleted_at = excluded.deleted_at,
                 version = scim_groups.version + 1",
        )
        .bind(tenant)
        .bind(team)
        .bind(external_id)
        .bind(deleted_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Calls kept per tenant in the SCIM calls log.
pub const CALLS_KEPT: i64 = 100;

#[derive(sqlx::FromRow)]
struct CallRow {
    at: OffsetDateTime,
    token_name: Option<String>,
    method: String,
    path: String,
    status: i32,
    error: Option<String>,
}

impl From<CallRow> for ScimCall {
    fn from(r: CallRow) -> Self {
        Self {
            at: r.at,
            token_name: r.token_name,
            method: r.method,
            path: r.path,
            status: u16::try_from(r.status).unwrap_or_default(),
            error: r.error,
        }
    }
}

/// Log one call, then forget the tenant's calls older than the newest [`CALLS_KEPT`].
pub async fn record_call(tx: &mut Tx, tenant: TenantId, call: &ScimCall) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO scim_calls (id, tenant_id, at, token_name, method, path, status, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(tenant)
        .bind(call.at)
        .bind(&call.token_name)
        .bind(&call.method)
        .bind(&call.path)
        .bind(i32::from(call.status))
        .bind(&call.error)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM scim_calls WHERE tenant_id = $1 AND at < (
                 SELECT at FROM scim_calls WHERE tenant_id = $1
                 ORDER BY at DESC LIMIT 1 OFFSET $2)",
        )
        .bind(tenant)
        .bind(CALLS_KEPT - 1)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// The tenant's logged calls, newest first.
pub async fn list_calls(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<ScimCall>> {
    let rows: Vec<CallRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT at, token_name, method, path, status, error FROM scim_calls
             WHERE tenant_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(CALLS_KEPT)
        .fetch_all(conn)
        .await?
    });
    Ok(rows.into_iter().map(ScimCall::from).collect())
}
