//! Joiners: the tenant's joiner policies (who gets a line on which plan when they join) and
//! each new employee's joiner line, ordered the day before their start date and sent to them
//! at 08:00 on it, with their manager told. A joiner without a start date gets it at once.
//!
//! Start dates arrive with the person: over SCIM as the Lineup extension's `startDate`
//! ([`START_DATE_SCHEMA`]; the enterprise extension has none), or in the CSV import's
//! `Start Date` column. Times are the server's local time zone (tenants have none of their
//! own yet).

pub mod commands;

use chrono::TimeZone;
use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::ids::{CostCentreId, EmployeeId, JoinerPolicyId, LineId, PlanId, TeamId, TenantId};

/// The SCIM schema extension that carries a user's start date.
pub const START_DATE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:lineup:2.0:User";

/// The hour (server local time) a joiner's eSIM is sent on their start date.
pub const DELIVERY_HOUR: u32 = 8;

/// Who a joiner policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum JoinerRule {
    Everyone,
    Team(TeamId),
    CostCentre(CostCentreId),
}

impl JoinerRule {
    /// How specific the rule is: the most specific policy matching a joiner wins.
    fn specificity(self) -> u8 {
        match self {
            Self::Team(_) => 2,
            Self::CostCentre(_) => 1,
            Self::Everyone => 0,
        }
    }

    fn matches(self, team: Option<TeamId>, cost_centre: Option<CostCentreId>) -> bool {
        match self {
            Self::Everyone => true,
            Self::Team(id) => team == Some(id),
            Self::CostCentre(id) => cost_centre == Some(id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinerPolicy {
    pub id: JoinerPolicyId,
    pub tenant_id: TenantId,
    pub rule: JoinerRule,
    pub plan_id: PlanId,
    pub created_at: OffsetDateTime,
}

/// The most specific of `policies` that applies to someone in this team and cost centre.
pub fn matching_policy(
    policies: &[JoinerPolicy],
    team: Option<TeamId>,
    cost_centre: Option<CostCentreId>,
) -> Option<&JoinerPolicy> {
    policies
        .iter()
        .filter(|p| p.rule.matches(team, cost_centre))
        .max_by_key(|p| p.rule.specificity())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinerState {
    /// The line is ordered the day before the start date.
    Waiting,
    /// The line is requested; its eSIM goes out on the morning of the start date.
    Ordered,
    Delivered,
    /// No policy matched them when their line was due.
    Skipped,
}

impl JoinerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Ordered => "ordered",
            Self::Delivered => "delivered",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Waiting, Self::Ordered, Self::Delivered, Self::Skipped]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Joiner {
    pub tenant_id: TenantId,
    pub employee_id: EmployeeId,
    pub start_date: Option<Date>,
    pub state: JoinerState,
    pub policy_id: Option<JoinerPolicyId>,
    pub line_id: Option<LineId>,
    pub ordered_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    /// Why the last attempt to order or send the line did not go through.
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Joiner {
    /// When the eSIM goes out: 08:00 local on the start date; at once without one.
    pub fn delivery_due(&self) -> Option<OffsetDateTime> {
        self.start_date.map(morning_of)
    }

    /// When the line is ordered: a day ahead of its delivery, so the provider has time.
    pub fn order_due(&self) -> Option<OffsetDateTime> {
        self.delivery_due().map(|at| at - time::Duration::days(1))
    }
}

/// The line a joiner gets is issued with this key: one line per joiner and policy, however
/// often the order is retried.
pub fn issue_key(employee: EmployeeId, policy: JoinerPolicyId) -> String {
    format!("joiner:{employee}:{policy}")
}

/// 08:00 on `day` in the server's local time zone (the earlier one when the clock is set
/// back across it, the later hour when it skips it).
pub fn morning_of(day: Date) -> OffsetDateTime {
    let naive = chrono::NaiveDate::from_ymd_opt(
        day.year(),
        u32::from(u8::from(day.month())),
        u32::from(day.day()),
    )
    .and_then(|d| d.and_hms_opt(DELIVERY_HOUR, 0, 0));
    let local = naive.and_then(|n| {
        chrono::Local
            .from_local_datetime(&n)
            .earliest()
            .or_else(|| {
                chrono::Local
                    .from_local_datetime(&(n + chrono::Duration::hours(1)))
                    .earliest()
            })
    });
    local
        .and_then(|at| OffsetDateTime::from_unix_timestamp(at.timestamp()).ok())
        .unwrap_or_else(|| day.with_hms(8, 0, 0).unwrap_or(day.midnight()).assume_utc())
}
