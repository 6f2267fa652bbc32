//! Team and cost centre commands and queries: add and list them.

use super::*;
use crate::app::{Lineup, record, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::store::{self, now};

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
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::org::list_teams(&mut tx, tenant).await?)
    }

    pub async fn cost_centres(&self, tenant: TenantId) -> CoreResult<Vec<CostCentre>> {
        let mut tx = self.tenant_tx(tenant).await?;
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
