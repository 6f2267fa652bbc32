//! Employees: the people lines are issued to, their team, cost centre and manager.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::email::Email;
use crate::ids::{CostCentreId, EmployeeId, TeamId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmployeeStatus {
    Active,
    Offboarded,
}

impl EmployeeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Offboarded => "offboarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "offboarded" => Some(Self::Offboarded),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Employee {
    pub id: EmployeeId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub manager_id: Option<EmployeeId>,
    pub status: EmployeeStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Employee {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// Whose records a portal user may see: everyone, or a manager's own reporting tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Everyone,
    /// This employee and everyone reporting to them, directly or not.
    ReportsOf(EmployeeId),
    Nobody,
}

/// The employees a [`Visibility`] lets through; `None` means all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible(Option<std::collections::HashSet<EmployeeId>>);

impl Visible {
    pub fn everyone() -> Self {
        Self(None)
    }

    pub fn contains(&self, employee: EmployeeId) -> bool {
        self.0.as_ref().is_none_or(|ids| ids.contains(&employee))
    }

    /// The allowed ids, or `None` when everyone is visible.
    pub fn ids(&self) -> Option<&std::collections::HashSet<EmployeeId>> {
        self.0.as_ref()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmployee {
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    pub manager_id: Option<EmployeeId>,
}

pub mod commands {
    use super::*;
    use crate::app::{Lineup, record, required, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::{CoreError, CoreResult};
    use crate::store::{self, now};

    impl Lineup {
        pub async fn add_employee(
            &self,
            tenant: TenantId,
            actor: &Actor,
            new: NewEmployee,
        ) -> CoreResult<Employee> {
            for (field, value) in [
                ("given_name", &new.given_name),
                ("family_name", &new.family_name),
            ] {
                if value.trim().is_empty() {
                    return Err(CoreError::invalid(field, "must not be empty"));
                }
            }
            let mut tx = self.tenant_tx(tenant).await?;
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
                given_name: new.given_name.trim().to_owned(),
                family_name: new.family_name.trim().to_owned(),
                team_id: new.team_id,
                cost_centre_id: new.cost_centre_id,
                manager_id: new.manager_id,
                status: EmployeeStatus::Active,
                created_at: at,
                updated_at: at,
            };
            match store::employees::insert(&mut tx, tenant, &employee).await {
                Err(e) if e.is_unique_violation() => {
                    return Err(CoreError::invalid(
                        "email",
                        format!("{} is already an employee", employee.email),
                    ));
                }
                Err(crate::store::StoreError::Database(sqlx::Error::Database(e)))
                    if e.is_foreign_key_violation() =>
                {
                    return Err(CoreError::invalid(
                        "team_id",
                        "team or cost centre does not exist in this organisation",
                    ));
                }
                other => other?,
            }
            let event = AuditEvent::new(
                tenant,
                actor,
                "employee.created",
                ("employee", employee.id.to_string()),
                None,
                to_json(&employee),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(employee)
        }

        pub async fn employee(&self, tenant: TenantId, id: EmployeeId) -> CoreResult<Employee> {
            let mut tx = self.tenant_tx(tenant).await?;
            required(
                store::employees::get(&mut tx, tenant, id).await?,
                "employee",
                id,
            )
        }

        pub async fn employees(&self, tenant: TenantId) -> CoreResult<Vec<Employee>> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(store::employees::list(&mut tx, tenant).await?)
        }

        /// Resolve a visibility to the set of employees it lets through.
        pub async fn visible(
            &self,
            tenant: TenantId,
            visibility: Visibility,
        ) -> CoreResult<Visible> {
            match visibility {
                Visibility::Everyone => Ok(Visible::everyone()),
                Visibility::Nobody => Ok(Visible(Some(Default::default()))),
                Visibility::ReportsOf(manager) => {
                    let mut tx = self.tenant_tx(tenant).await?;
                    let tree = store::employees::reporting_tree(&mut tx, tenant, manager).await?;
                    Ok(Visible(Some(tree.into_iter().collect())))
                }
            }
        }
    }
}
