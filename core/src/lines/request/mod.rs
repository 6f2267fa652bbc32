//! Requests: what an employee asks for (a line, a cap raise, roaming for a trip), how policy
//! routes it, and the one decision that settles it.

pub mod cards;
pub mod commands;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::ids::{EmployeeId, LineId, PlanId, RequestId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestDetails {
    NewLine {
        plan_id: PlanId,
        wanted_date: Option<Date>,
    },
    /// Raise the requester's monthly budget cap for the current billing period.
    CapRaise { amount_minor: i64 },
    /// Roaming in `country` between the two dates (inclusive) on the requester's line.
    Roaming {
        line_id: LineId,
        country: String,
        from: Date,
        to: Date,
    },
}

impl RequestDetails {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NewLine { .. } => "new_line",
            Self::CapRaise { .. } => "cap_raise",
            Self::Roaming { .. } => "roaming",
        }
    }

    pub fn line_id(&self) -> Option<LineId> {
        match self {
            Self::Roaming { line_id, .. } => Some(*line_id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    Fulfilled,
    Failed,
}

impl RequestState {
    pub const ALL: [RequestState; 7] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Cancelled,
        Self::Fulfilled,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Fulfilled => "fulfilled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// Who must decide a routed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Settled by policy without a person.
    Auto,
    /// The requester's manager (and, after escalation, the manager's manager).
    Manager,
    /// Members with the finance role (cap raises above the tenant's threshold).
    Finance,
    /// Owners and admins (nobody else fits, e.g. no manager).
    Admins,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manager => "manager",
            Self::Finance => "finance",
            Self::Admins => "admins",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Auto, Self::Manager, Self::Finance, Self::Admins]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub id: RequestId,
    pub tenant_id: TenantId,
    pub requester: EmployeeId,
    pub details: RequestDetails,
    pub reason: String,
    pub state: RequestState,
    pub route: Route,
    /// The person the request currently waits on, when routed to one person.
    pub approver: Option<EmployeeId>,
    pub escalations: i32,
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub decision_note: Option<String>,
    pub failure_reason: Option<String>,
    /// Where chat adapters posted messages about this request, so they can update them.
    pub chat_refs: serde_json::Value,
    pub dedupe_key: String,
    pub created_at: OffsetDateTime,
    pub routed_at: OffsetDateTime,
    pub reminded_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

/// Who decides a request: an employee (in chat, or a portal member linked to their employee
/// record), or a portal owner or admin who has no employee record. Authority is checked in
/// core either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    Employee(EmployeeId),
    /// A portal member by user id; only the owner and admin roles may decide this way.
    Member(crate::ids::UserId),
}

impl Decider {
    pub fn actor(self) -> crate::audit::Actor {
        match self {
            Self::Employee(id) => crate::audit::Actor::Employee(id),
            Self::Member(id) => crate::audit::Actor::User(id),
        }
    }
}
