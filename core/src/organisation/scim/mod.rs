//! SCIM provisioning: the identity provider's view of the tenant's employees (SCIM Users)
//! and teams (SCIM Groups), the bearer tokens it calls with, and the filters it looks
//! people up by. The wire format (JSON, PATCH) is the portal's; this holds the meaning.

pub mod commands;
pub mod filter;

use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::Actor;
use crate::email_address::Email;
use crate::ids::{EmployeeId, ScimTokenId, TenantId, UserId};
use crate::organisation::employee::Employee;
use crate::organisation::org_unit::Team;
use crate::person_name::PersonName;

/// A bearer token an identity provider calls SCIM with. Only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScimToken {
    pub id: ScimTokenId,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A token just created: `secret` is shown to the admin once and never again.
#[derive(Debug, Clone)]
pub struct IssuedScimToken {
    pub token: ScimToken,
    pub secret: String,
}

/// The identity provider behind one SCIM request, known by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimClient {
    pub tenant: TenantId,
    pub token: ScimTokenId,
    pub name: String,
}

impl ScimClient {
    /// Every change a SCIM call makes is audited as `scim:<token name>`.
    pub fn actor(&self) -> Actor {
        Actor::Scim(self.name.clone())
    }
}

/// One call an identity provider made, as Settings → Provisioning lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimCall {
    pub at: OffsetDateTime,
    /// The token's name; `None` when the call was refused before a token was known.
    pub token_name: Option<String>,
    pub method: String,
    /// The path under the SCIM base URL, without the query.
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// What went wrong, shortened, when the call failed.
    pub error: Option<String>,
}

/// A failed call's error is kept at most this long in the calls log.
pub const CALL_ERROR_CHARS: usize = 200;

/// An employee as SCIM serves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUser {
    pub employee: Employee,
    /// The provider's userName when it is not the employee's email.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub employee_number: Option<String>,
    /// Their team's name: the enterprise `department`.
    pub department: Option<String>,
    /// Their cost centre's code: the enterprise `costCenter`.
    pub cost_centre: Option<String>,
    /// When they start, as a joiner (the Lineup extension's `startDate`).
    pub start_date: Option<time::Date>,
    /// Changes whenever the employee or their SCIM data does (the ETag).
    pub version: String,
}

impl ScimUser {
    /// The userName SCIM serves: the one the provider gave, else the email.
    pub fn user_name(&self) -> &str {
        self.user_name
            .as_deref()
            .unwrap_or(self.employee.email.as_str())
    }
}

/// How a write treats one optional attribute: SCIM clients send only what they manage, so
/// an attribute left out keeps its value and only an explicit null (or PATCH remove)
/// clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Update<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Update<T> {
    /// The value after this update of `current`.
    pub fn applied_to(&self, current: Option<T>) -> Option<T> {
        match self {
            Self::Keep => current,
            Self::Clear => None,
            Self::Set(value) => Some(value.clone()),
        }
    }
}

/// What a SCIM create or replace says about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub email: Email,
    /// The userName when it is not `email` (some providers send a login name).
    pub user_name: Option<String>,
    pub given_name: PersonName,
    pub family_name: PersonName,
    /// `None` keeps the current state (a new user starts active).
    pub active: Option<bool>,
    pub external_id: Update<String>,
    pub employee_number: Update<String>,
    /// A team name, found ignoring case or created.
    pub department: Update<String>,
    /// A cost centre code, found ignoring case or created.
    pub cost_centre: Update<String>,
    /// The manager's SCIM id (their employee id).
    pub manager: Update<String>,
    /// When a joiner starts (see `organisation::joiner`).
    pub start_date: Update<time::Date>,
}

/// A team as SCIM serves it, with its members (id and display name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroup {
    pub team: Team,
    pub external_id: Option<String>,
    pub members: Vec<(EmployeeId, String)>,
    pub version: String,
}

/// What a SCIM create or replace says about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub display_name: String,
    pub external_id: Update<String>,
    /// `None` keeps the members; `Some` sets exactly these (by SCIM id).
    pub members: Option<Vec<String>>,
}

/// One page of a list: the resources from the 1-based `start_index`, and how many match.
#[derive(Debug, Clone)]
pub struct ScimPage<T> {
    pub resources: Vec<T>,
    pub total: i64,
    pub start_index: i64,
}

/// How much of a list one call may ask for.
pub const MAX_PAGE: i64 = 1000;
