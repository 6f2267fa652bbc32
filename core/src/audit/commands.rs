//! Audit queries: the log filtered and paged, who can appear as an actor, and a person's
//! name for a stored actor.

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::store;

impl Lineup {
    /// Up to `limit` events matching `filter`, newest first, older than `before`.
    pub async fn audit_log(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        before: Option<AuditEventId>,
        limit: i64,
    ) -> CoreResult<AuditPage> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let mut events = store::audit::search(&mut tx, tenant, filter, before, limit + 1).await?;
        let older = (events.len() as i64 > limit).then(|| {
            events.truncate(limit as usize);
            events.last().map(|e| e.id)
        });
        Ok(AuditPage {
            events,
            older: older.flatten(),
        })
    }

    /// Who can appear as an actor: the tenant's portal users (`user:<id>`, with name and
    /// email), then the system and the provider.
    pub async fn audit_actors(&self, tenant: TenantId) -> CoreResult<Vec<(String, String)>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let mut actors = store::audit::user_actors(&mut tx, tenant).await?;
        actors.push(("system".into(), "Lineup (system)".into()));
        actors.push(("provider".into(), "Mobile provider".into()));
        Ok(actors)
    }
}

impl Lineup {
    /// A person's name for a stored actor (`employee:<id>`, `user:<id>`); other actors
    /// (`system`, `provider`, `policy`) as they are.
    pub async fn actor_name(&self, tenant: TenantId, actor: &str) -> CoreResult<String> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        actor_name_in(&mut tx, tenant, actor).await
    }
}

/// [`Lineup::actor_name`] inside a transaction the caller already holds.
pub(crate) async fn actor_name_in(
    tx: &mut store::Tx,
    tenant: TenantId,
    actor: &str,
) -> CoreResult<String> {
    let people = match actor_employee(actor) {
        Some(id) => store::employees::people(tx, tenant, &[id]).await?,
        None => Vec::new(),
    };
    actor_name_among(tx, tenant, actor, &people).await
}

/// The employee a stored actor is, if it is one.
pub(crate) fn actor_employee(actor: &str) -> Option<EmployeeId> {
    actor.strip_prefix("employee:").and_then(|i| i.parse().ok())
}

/// [`actor_name_in`] where the actor, if an employee still in the directory, is among
/// `people` already read.
pub(crate) async fn actor_name_among(
    tx: &mut store::Tx,
    tenant: TenantId,
    actor: &str,
    people: &[store::employees::Person],
) -> CoreResult<String> {
    if let Some(id) = actor_employee(actor) {
        let person = people.iter().find(|p| p.id == id);
        return Ok(person.map_or_else(|| "a former employee".into(), |p| p.full_name()));
    }
    if let Some(id) = actor.strip_prefix("user:").and_then(|i| i.parse().ok()) {
        let name = store::users::member_name(tx, tenant, id).await?;
        return Ok(name.unwrap_or_else(|| "a former portal member".into()));
    }
    Ok(actor.to_owned())
}
