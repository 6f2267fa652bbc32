//! Employees: the people lines are issued to, their team, cost centre and manager.

pub mod commands;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::email_address::Email;
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

/// What an edit may change; everything is given, as the edit form shows every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeEdit {
    pub email: Email,
    pub given_name: String,
    pub family_name: String,
    pub team_id: Option<TeamId>,
    pub cost_centre_id: Option<CostCentreId>,
    /// The manager's email, as people know them; `None` for nobody.
    pub manager: Option<Email>,
}

/// One employee with what their page shows.
#[derive(Debug, Clone)]
pub struct EmployeeProfile {
    pub employee: Employee,
    pub team: Option<crate::organisation::org_unit::Team>,
    pub cost_centre: Option<crate::organisation::org_unit::CostCentre>,
    /// Their manager first, then that manager's manager, up to the top.
    pub managers: Vec<Employee>,
    pub lines: Vec<(crate::lines::line::Line, Option<crate::lines::plan::Plan>)>,
    /// Every chat platform, in the order messages try them, and whether it reaches them.
    pub chat: Vec<crate::messaging::chat::ChatReach>,
}

/// Filters the directory applies in SQL, so a tenant of any size pages quickly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryFilter {
    /// Part of a name or email, any case.
    pub search: Option<String>,
    pub team: Option<TeamId>,
    pub cost_centre: Option<CostCentreId>,
    pub status: Option<EmployeeStatus>,
    /// Whether they hold a live (ready, active or suspended) line.
    pub has_line: Option<bool>,
    /// Only this manager and their reporting tree.
    pub within: Option<EmployeeId>,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}
