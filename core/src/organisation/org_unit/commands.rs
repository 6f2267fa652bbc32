//! Team and cost centre commands and queries: add and list them, and find-or-create them by
//! name or code inside another command's transaction (SCIM pushes).

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::store::{self, Tx, now};

impl Lineup {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn add_team(&self, tenant: TenantId, actor: &Actor, name: &str) -> CoreResult<Team> {
        let name = non_empty("name", name)?;
        let team = Team {
            id: TeamId::new(),
            tenant_id: tenant,
            name,
            created_at: now(),
        };
        let mut tx = self.tenant_tx(tenant).await?;
        match store::org::insert_team(&mut tx, tenant, &team).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::invalid(
                    "name",
                    format!("team {} already exists", team.name),
                ));
            }
            other => other?,
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "team.created",
            ("team", team.id.to_string()),
            None,
            to_json(&team),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(team)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn add_cost_centre(
        &self,
        tenant: TenantId,
        actor: &Actor,
        code: &str,
        name: &str,
    ) -> CoreResult<CostCentre> {
        let centre = CostCentre {
            id: CostCentreId::new(),
            tenant_id: tenant,
            code: non_empty("code", code)?,
            name: non_empty("name", name)?,
            created_at: now(),
        };
        let mut tx = self.tenant_tx(tenant).await?;
        match store::org::insert_cost_centre(&mut tx, tenant, &centre).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::invalid(
                    "code",
                    format!("cost centre {} already exists", centre.code),
                ));
            }
            other => other?,
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "cost_centre.created",
            ("cost_centre", centre.id.to_string()),
            None,
            to_json(&centre),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(centre)
    }

    pub async fn teams(&self, tenant: TenantId) -> CoreResult<Vec<Team>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::org::list_teams(&mut tx, tenant).await?)
    }

    pub async fn cost_centres(&self, tenant: TenantId) -> CoreResult<Vec<CostCentre>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::org::list_cost_centres(&mut tx, tenant).await?)
    }
}

fn non_empty(field: &'static str, value: &str) -> CoreResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    Ok(value.to_owned())
}

/// The team named `name` (ignoring case), created and audited when there is none. Two
/// callers creating the same team at once get the one that was written first.
pub(crate) async fn team_named(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    name: &str,
) -> CoreResult<TeamId> {
    if let Some(team) = store::org::find_team_named(tx, tenant, name).await? {
        return Ok(team.id);
    }
    let team = Team {
        id: TeamId::new(),
        tenant_id: tenant,
        name: name.to_owned(),
        created_at: now(),
    };
    if !store::org::insert_team_if_new(tx, tenant, &team).await? {
        let written = store::org::find_team_named(tx, tenant, name).await?;
        return Ok(required(written, "team", name)?.id);
    }
    let event = AuditEvent::new(
        tenant,
        actor,
        "team.created",
        ("team", team.id.to_string()),
        None,
        to_json(&team),
    );
    record(tx, &event).await?;
    Ok(team.id)
}

/// The cost centre coded `code` (ignoring case), created and audited when there is none,
/// the same way as [`team_named`].
pub(crate) async fn cost_centre_coded(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    code: &str,
) -> CoreResult<CostCentreId> {
    if let Some(centre) = store::org::find_cost_centre_coded(tx, tenant, code).await? {
        return Ok(centre.id);
    }
    let centre = CostCentre {
        id: CostCentreId::new(),
        tenant_id: tenant,
        code: code.to_owned(),
        name: code.to_owned(),
        created_at: now(),
    };
    if !store::org::insert_cost_centre_if_new(tx, tenant, &centre).await? {
        let written = store::org::find_cost_centre_coded(tx, tenant, code).await?;
        return Ok(required(written, "cost centre", code)?.id);
    }
    let event = AuditEvent::new(
        tenant,
        actor,
        "cost_centre.created",
        ("cost_centre", centre.id.to_string()),
        None,
        to_json(&centre),
    );
    record(tx, &event).await?;
    Ok(centre.id)
}
