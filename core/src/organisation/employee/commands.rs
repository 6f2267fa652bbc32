//! Employee commands and queries: add and edit employees, and the directory and profiles
//! narrowed to what a viewer may see.

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::person_name::PersonName;
use crate::store::employees::DirectoryRow;
use crate::store::{self, Tx, now};

impl Lineup {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn add_employee(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewEmployee,
    ) -> CoreResult<Employee> {
        let (given_name, family_name) = names(&new.given_name, &new.family_name)?;
        let mut tx = self.tenant_tx(tenant).await?;
        check_team_and_cost_centre(&mut tx, tenant, new.team_id, new.cost_centre_id).await?;
        if let Some(manager) = new.manager_id {
            required(
                store::employees::get(&mut tx, tenant, manager).await?,
                "manager",
                manager,
            )?;
        }
        let at = now();
        let employee = Employee {
            id: EmployeeId::new(),
            tenant_id: tenant,
            email: new.email,
            given_name: given_name.into(),
            family_name: family_name.into(),
            team_id: new.team_id,
            cost_centre_id: new.cost_centre_id,
            manager_id: new.manager_id,
            status: EmployeeStatus::Active,
            created_at: at,
            updated_at: at,
        };
        written(
            store::employees::insert(&mut tx, tenant, &employee).await,
            &employee.email,
        )?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "employee.created",
            ("employee", employee.id.to_string()),
            None,
            to_json(&employee),
        );
        record(&mut tx, &event).await?;
        crate::organisation::joiner::commands::enrol(&mut tx, tenant, actor, employee.id, None)
            .await?;
        tx.commit().await?;
        Ok(employee)
    }

    pub async fn employee(&self, tenant: TenantId, id: EmployeeId) -> CoreResult<Employee> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        required(
            store::employees::get(&mut tx, tenant, id).await?,
            "employee",
            id,
        )
    }

    pub async fn employees(&self, tenant: TenantId) -> CoreResult<Vec<Employee>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::employees::list(&mut tx, tenant).await?)
    }

    /// One page of the directory as `visibility` allows, and how many match in all.
    pub async fn employee_directory(
        &self,
        tenant: TenantId,
        visibility: Visibility,
        mut filter: DirectoryFilter,
    ) -> CoreResult<(Vec<DirectoryRow>, i64)> {
        match visibility {
            Visibility::Nobody => return Ok((Vec::new(), 0)),
            Visibility::ReportsOf(manager) => filter.within = Some(manager),
            Visibility::Everyone => {}
        }
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::employees::directory(&mut tx, tenant, &filter).await?)
    }

    /// An employee's page, or not found when `visibility` does not reach them.
    pub async fn employee_profile(
        &self,
        tenant: TenantId,
        visibility: Visibility,
        id: EmployeeId,
    ) -> CoreResult<EmployeeProfile> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let employee = required(
            store::employees::get(&mut tx, tenant, id).await?,
            "employee",
            id,
        )?;
        let managers = store::employees::manager_chain(&mut tx, tenant, id).await?;
        let visible = match visibility {
            Visibility::Everyone => true,
            Visibility::Nobody => false,
            Visibility::ReportsOf(me) => me == id || managers.iter().any(|m| m.id == me),
        };
        if !visible {
            return Err(CoreError::not_found("employee", id));
        }
        let teams = store::org::list_teams(&mut tx, tenant).await?;
        let centres = store::org::list_cost_centres(&mut tx, tenant).await?;
        let plans = store::plans::list(&mut tx, tenant).await?;
        let lines = store::lines::list_for_employee(&mut tx, tenant, id)
            .await?
            .into_iter()
            .map(|line| {
                let plan = plans.iter().find(|p| p.id == line.plan_id).cloned();
                (line, plan)
            })
            .collect();
        let connected = store::chat::connected_platforms(&mut tx, tenant).await?;
        let mut chat = Vec::new();
        for platform in crate::messaging::chat::Platform::ALL {
            chat.push(crate::messaging::chat::ChatReach {
                platform,
                user_id: store::chat::identity_for_employee(&mut tx, tenant, id, platform.as_str())
                    .await?,
                connected: connected.contains(&platform),
            });
        }
        Ok(EmployeeProfile {
            team: teams.into_iter().find(|t| Some(t.id) == employee.team_id),
            cost_centre: centres
                .into_iter()
                .find(|c| Some(c.id) == employee.cost_centre_id),
            employee,
            managers,
            lines,
            chat,
        })
    }

    /// Change an employee's details. A manager that would make the reporting line loop
    /// is refused, naming the chain.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, employee = %id))]
    pub async fn update_employee(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: EmployeeId,
        edit: EmployeeEdit,
    ) -> CoreResult<Employee> {
        let (given_name, family_name) = names(&edit.given_name, &edit.family_name)?;
        let mut tx = self.tenant_tx(tenant).await?;
        let before = required(
            store::employees::get(&mut tx, tenant, id).await?,
            "employee",
            id,
        )?;
        check_team_and_cost_centre(&mut tx, tenant, edit.team_id, edit.cost_centre_id).await?;
        let manager_id = match &edit.manager {
            Some(email) => Some(check_manager(&mut tx, tenant, &before, email).await?),
            None => None,
        };
        let after = Employee {
            email: edit.email,
            given_name: given_name.into(),
            family_name: family_name.into(),
            team_id: edit.team_id,
            cost_centre_id: edit.cost_centre_id,
            manager_id,
            updated_at: now(),
            ..before.clone()
        };
        let unchanged = Employee {
            updated_at: before.updated_at,
            ..after.clone()
        } == before;
        if unchanged {
            return Ok(before);
        }
        written(
            store::employees::update(&mut tx, tenant, &after).await,
            &after.email,
        )?;
        crate::organisation::mover::employee_moved(
            &mut tx,
            actor,
            &before,
            &after,
            after.updated_at,
        )
        .await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "employee.updated",
            ("employee", id.to_string()),
            to_json(&before),
            to_json(&after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Resolve a visibility to the set of employees it lets through.
    pub async fn visible(&self, tenant: TenantId, visibility: Visibility) -> CoreResult<Visible> {
        match visibility {
            Visibility::Everyone => Ok(Visible::everyone()),
            Visibility::Nobody => Ok(Visible(Some(Default::default()))),
            Visibility::ReportsOf(manager) => {
                let mut tx = self.tenant_read_tx(tenant).await?;
                let tree = store::employees::reporting_tree(&mut tx, tenant, manager).await?;
                Ok(Visible(Some(tree.into_iter().collect())))
            }
        }
    }
}

/// An employee's given and family names, each checked the one way names are.
fn names(given: &str, family: &str) -> CoreResult<(PersonName, PersonName)> {
    let parse = |field, value| PersonName::parse(value).map_err(|e| CoreError::invalid(field, e));
    Ok((parse("given_name", given)?, parse("family_name", family)?))
}

/// A write refused by the database, in words: the email taken, or a team, cost centre or
/// manager that is not this organisation's (checked first, so only a concurrent change
/// gets this far).
fn written<T>(result: store::StoreResult<T>, email: &Email) -> CoreResult<T> {
    match result {
        Err(e) if e.is_unique_violation() => Err(CoreError::invalid(
            "email",
            format!("{email} is already an employee"),
        )),
        Err(e) if e.is_foreign_key_violation() => Err(CoreError::invalid(
            "team",
            "the team, cost centre or manager is not in this organisation",
        )),
        other => Ok(other?),
    }
}

/// The team and cost centre must be this organisation's. The database refuses another
/// tenant's too; this says which field is wrong.
async fn check_team_and_cost_centre(
    tx: &mut Tx,
    tenant: TenantId,
    team: Option<TeamId>,
    cost_centre: Option<CostCentreId>,
) -> CoreResult<()> {
    if let Some(team) = team
        && !store::org::team_exists(tx, tenant, team).await?
    {
        return Err(CoreError::invalid(
            "team",
            format!("team {team} was not found in this organisation"),
        ));
    }
    if let Some(centre) = cost_centre
        && !store::org::cost_centre_exists(tx, tenant, centre).await?
    {
        return Err(CoreError::invalid(
            "cost_centre",
            format!("cost centre {centre} was not found in this organisation"),
        ));
    }
    Ok(())
}

/// `manager` must be another employee of the tenant who does not (even indirectly)
/// report to `employee`; gives their id.
async fn check_manager(
    tx: &mut Tx,
    tenant: TenantId,
    employee: &Employee,
    manager: &Email,
) -> CoreResult<EmployeeId> {
    let Some(boss) = store::employees::find_by_email(tx, tenant, manager).await? else {
        return Err(CoreError::invalid(
            "manager",
            format!("{manager} is not an employee of this organisation"),
        ));
    };
    check_reporting_line(tx, tenant, employee, &boss).await?;
    Ok(boss.id)
}

/// `boss` may manage `employee`: they are someone else, who does not (even indirectly)
/// report to `employee`. A loop is refused naming the chain.
pub(crate) async fn check_reporting_line(
    tx: &mut Tx,
    tenant: TenantId,
    employee: &Employee,
    boss: &Employee,
) -> CoreResult<()> {
    if boss.id == employee.id {
        return Err(CoreError::invalid(
            "manager",
            "someone cannot be their own manager",
        ));
    }
    let chain = store::employees::manager_chain(tx, tenant, boss.id).await?;
    if let Some(at) = chain.iter().position(|m| m.id == employee.id) {
        let path = std::iter::once(boss)
            .chain(&chain[..=at])
            .map(|e| e.email.as_str())
            .collect::<Vec<_>>()
            .join(" → ");
        return Err(CoreError::invalid(
            "manager",
            format!(
                "{} reports to {} ({path}), so {} cannot also report to {}: \
                 the reporting line would loop",
                boss.email, employee.email, employee.email, boss.email
            ),
        ));
    }
    Ok(())
}
