//! Requests: what an employee asks for (a line, a cap raise, roaming for a trip), how policy
//! routes it, and the one decision that settles it.

pub mod cards;
pub mod commands;
pub mod roaming_quote;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::ids::{EmployeeId, LineId, PlanId, RequestId, TenantId};
use crate::messaging::chat::Platform;

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
        /// Both ways to pay for the trip, priced when the request was filed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quote: Option<roaming_quote::RoamingQuote>,
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

    /// A roaming request's quote, if it has one.
    pub fn roaming_quote(&self) -> Option<&roaming_quote::RoamingQuote> {
        match self {
            Self::Roaming { quote, .. } => quote.as_ref(),
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

/// Where a posted chat message lives, to update it or reply under it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// Slack channel, Discord channel, Teams conversation id.
    pub channel: String,
    /// Slack ts, Discord message id, Teams activity id.
    pub id: String,
}

/// One platform's messages about a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRefs {
    /// Every posted copy of the request's approval card.
    #[serde(default)]
    pub cards: Vec<MessageRef>,
}

/// Where chat adapters posted about a request, stored as
/// `{"origin": "slack", "slack": {"cards": [{"channel": …, "id": …}]}, …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRefs {
    /// The platform the request was made on, by its stored name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Each platform's messages, by the platform's stored name.
    #[serde(flatten)]
    pub platforms: BTreeMap<String, PlatformRefs>,
}

impl ChatRefs {
    /// The platform the request was made on.
    pub fn origin(&self) -> Option<Platform> {
        self.origin.as_deref().and_then(Platform::parse)
    }

    /// `platform`'s messages, made empty when it has none yet.
    pub fn on(&mut self, platform: Platform) -> &mut PlatformRefs {
        self.platforms
            .entry(platform.as_str().to_owned())
            .or_default()
    }

    /// Every posted copy of the card, on every platform Lineup knows.
    pub fn cards(&self) -> impl Iterator<Item = (Platform, &MessageRef)> {
        self.platforms.iter().flat_map(|(name, refs)| {
            Platform::parse(name)
                .into_iter()
                .flat_map(|platform| refs.cards.iter().map(move |card| (platform, card)))
        })
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
    pub chat_refs: ChatRefs,
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
    /// Approve a roaming request as a travel eSIM (the quote's package) instead of roaming
    /// on the home line.
    ApproveTravelEsim,
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

#[cfg(test)]
mod chat_refs_tests {
    use super::*;

    #[test]
    fn chat_refs_stored_before_the_type_still_read_and_write_back_the_same() {
        let stored = serde_json::json!({
            "origin": "slack",
            "slack": {"cards": [{"channel": "D0MARIA", "id": "1700000000.000100"}]},
            "teams": {"cards": []},
            "discord": {},
        });
        let refs: ChatRefs = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(refs.origin(), Some(Platform::Slack));
        let cards: Vec<_> = refs.cards().collect();
        assert_eq!(
            cards,
            vec![(
                Platform::Slack,
                &MessageRef {
                    channel: "D0MARIA".into(),
                    id: "1700000000.000100".into()
                }
            )]
        );
        let mut written = stored;
        written["discord"] = serde_json::json!({"cards": []});
        assert_eq!(serde_json::to_value(&refs).unwrap(), written);
        // A request nothing was posted about yet.
        let empty: ChatRefs = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ChatRefs::default());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }
}
