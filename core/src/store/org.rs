//! Teams and cost centres.

use super::{StoreResult, Tx, bulk, on_tx};
use crate::ids::{CostCentreId, TeamId, TenantId};
use crate::organisation::org_unit::{CostCentre, Team};

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: TeamId,
    tenant_id: TenantId,
    name: String,
    created_at: time::OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct CostCentreRow {
    id: CostCentreId,
    tenant_id: TenantId,
    code: String,
    name: String,
    created_at: time::OffsetDateTime,
}

pub async fn insert_team(tx: &mut Tx, tenant: TenantId, team: &Team) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("INSERT INTO teams (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(team.id)
            .bind(tenant)
            .bind(&team.name)
            .bind(team.created_at)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Insert the team unless one with its exact name exists (waiting for a concurrent writer of
/// that name); whether it was inserted.
pub async fn insert_team_if_new(tx: &mut Tx, tenant: TenantId, team: &Team) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO teams (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(team.id)
        .bind(tenant)
        .bind(&team.name)
        .bind(team.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Insert the cost centre unless one with its exact code exists, as [`insert_team_if_new`].
pub async fn insert_cost_centre_if_new(
    tx: &mut Tx,
    tenant: TenantId,
    centre: &CostCentre,
) -> StoreResult<bool> {
    let inserted = on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cost_centres (id, tenant_id, code, name, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, code) DO NOTHING",
        )
        .bind(centre.id)
        .bind(tenant)
        .bind(&centre.code)
        .bind(&centre.name)
        .bind(centre.created_at)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn list_teams(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<Team>> {
    let rows: Vec<TeamRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, name, created_at FROM teams WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| Team {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            created_at: r.created_at,
        })
        .collect())
}

/// Whether `team` is one of `tenant`'s teams.
pub async fn team_exists(tx: &mut Tx, tenant: TenantId, team: TeamId) -> StoreResult<bool> {
    let found: Option<i32> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT 1 FROM teams WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(team)
            .fetch_optional(conn)
            .await?
    });
    Ok(found.is_some())
}

pub async fn insert_cost_centre(
    tx: &mut Tx,
    tenant: TenantId,
    centre: &CostCentre,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cost_centres (id, tenant_id, code, name, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(centre.id)
        .bind(tenant)
        .bind(&centre.code)
        .bind(&centre.name)
        .bind(centre.created_at)
        .execute(conn)
        .await?;
    });
    Ok(())
}

pub async fn list_cost_centres(tx: &mut Tx, tenant: TenantId) -> StoreResult<Vec<CostCentre>> {
    let rows: Vec<CostCentreRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, code, name, created_at FROM cost_centres
             WHERE tenant_id = $1 ORDER BY code",
        )
        .bind(tenant)
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| CostCentre {
            id: r.id,
            tenant_id: r.tenant_id,
            code: r.code,
            name: r.name,
            created_at: r.created_at,
        })
        .collect())
}

/// Many teams in a handful of statements (an import may create hundreds).
/// Whether `centre` is one of `tenant`'s cost centres.
pub async fn cost_centre_exists(
    tx: &mut Tx,
    tenant: TenantId,
    centre: CostCentreId,
) -> StoreResult<bool> {
    let found: Option<i32> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT 1 FROM cost_centres WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(centre)
            .fetch_optional(conn)
            .await?
    });
    Ok(found.is_some())
}

pub async fn insert_teams(tx: &mut Tx, tenant: TenantId, teams: &[Team]) -> StoreResult<()> {
    const COLUMNS: bulk::Columns<3> = bulk::Columns {
        table: "teams",
        names: ["id", "name", "created_at"],
    };
    bulk::insert(tx, tenant, &COLUMNS, "", teams, |team| {
        [
            team.id.0.into(),
            (&team.name).into(),
            team.created_at.into(),
        ]
    })
    .await?;
    Ok(())
}

pub async fn insert_cost_centres(
    tx: &mut Tx,
    tenant: TenantId,
    centres: &[CostCentre],
) -> StoreResult<()> {
    const COLUMNS: bulk::Columns<4> = bulk::Columns {
        table: "cost_centres",
        names: ["id", "code", "name", "created_at"],
    };
    bulk::insert(tx, tenant, &COLUMNS, "", centres, |centre| {
        [
            centre.id.0.into(),
            (&centre.code).into(),
            (&centre.name).into(),
            centre.created_at.into(),
        ]
    })
    .await?;
    Ok(())
}

/// The tenant's team of that name, ignoring case (as an import matches them).
pub async fn find_team_named(
    tx: &mut Tx,
    tenant: TenantId,
    name: &str,
) -> StoreResult<Option<Team>> {
    let row: Option<TeamRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, name, created_at FROM teams
             WHERE tenant_id = $1 AND LOWER(name) = LOWER($2)",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(conn)
        .await?
    });
    Ok(row.map(|r| Team {
        id: r.id,
        tenant_id: r.tenant_id,
        name: r.name,
        created_at: r.created_at,
    }))
}

/// The tenant's cost centre with that code, ignoring case (as an import matches them).
pub async fn find_cost_centre_coded(
    tx: &mut Tx,
    tenant: TenantId,
    code: &str,
) -> StoreResult<Option<CostCentre>> {
    let row: Option<CostCentreRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, code, name, created_at FROM cost_centres
             WHERE tenant_id = $1 AND LOWER(code) = LOWER($2)",
        )
        .bind(tenant)
        .bind(code)
        .fetch_optional(conn)
        .await?
    });
    Ok(row.map(|r| CostCentre {
        id: r.id,
        tenant_id: r.tenant_id,
        code: r.code,
        name: r.name,
        created_at: r.created_at,
    }))
}

pub async fn rename_team(
    tx: &mut Tx,
    tenant: TenantId,
    team: TeamId,
    name: &str,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE teams SET name = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(team)
            .bind(name)
            .execute(conn)
            .await?;
    });
    Ok(())
}
