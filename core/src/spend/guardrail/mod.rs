//! Guardrails: budget caps at every scope with their thresholds and actions, roaming outside
//! the presets, and usage anomalies. The rules are pure functions here, shared by usage ingest
//! and the what-if replay; the commands below apply them to stored usage.
//!
//! A cap at a scope limits the summed spend (plan prices + overage + roaming) of every line
//! charged to that scope in a billing period: the tenant, a cost centre, a team, or one
//! employee. Each threshold alerts once per period; reaching the cap applies its action to
//! the scope's active lines in the same sync (or at once, when a cap is saved below what is
//! already spent), and the action is undone when the period rolls over or the cap is raised
//! or removed (only guardrail actions: a line an admin suspended stays suspended).

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::ids::{AlertId, CostCentreId, EmployeeId, GuardrailActionId, LineId, TeamId, TenantId};
use crate::spend::policy::{
    BudgetCap, CapAction, CapScope, DEFAULT_THRESHOLDS, RoamingGrant, RoamingRule,
};

/// A day is a spike when its data is more than this many times the line's trailing median…
pub const SPIKE_FACTOR: i64 = 3;
/// …and above this floor, so light users' 20 MB → 80 MB days do not page finance.
pub const SPIKE_FLOOR_BYTES: i64 = 500 * crate::money::Bytes::MB;
/// The trailing window the median is taken over (days before the day, missing days are 0).
pub const BASELINE_DAYS: i64 = 14;
/// Lines with fewer recorded days than this in the window have no baseline yet.
pub const MIN_BASELINE_DAYS: usize = 7;
/// A line with no usage for this many days is a candidate for cancelling.
pub const UNUSED_AFTER_DAYS: i64 = 30;
/// How far back a roaming country counts as already visited by the line.
pub const KNOWN_COUNTRY_DAYS: i64 = 90;

/// Who a line's spend counts toward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub employee: EmployeeId,
    pub team: Option<TeamId>,
    pub cost_centre: Option<CostCentreId>,
}

impl Owner {
    /// Every cap scope this owner's spend counts toward.
    pub fn scopes(&self) -> Vec<CapScope> {
        let mut scopes = vec![CapScope::Tenant, CapScope::Employee(self.employee)];
        scopes.extend(self.team.map(CapScope::Team));
        scopes.extend(self.cost_centre.map(CapScope::CostCentre));
        scopes
    }

    pub fn is_in(&self, scope: CapScope) -> bool {
        match scope {
            CapScope::Tenant => true,
            CapScope::Employee(e) => self.employee == e,
            CapScope::Team(t) => self.team == Some(t),
            CapScope::CostCentre(c) => self.cost_centre == Some(c),
        }
    }
}

/// Adds lines' spend up per scope.
pub fn spend_per_scope(lines: impl IntoIterator<Item = (Owner, i64)>) -> HashMap<CapScope, i64> {
    let mut per_scope = HashMap::new();
    for (owner, spent) in lines {
        for scope in owner.scopes() {
            *per_scope.entry(scope).or_insert(0) += spent;
        }
    }
    per_scope
}

/// Where a scope stands against its cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapCheck {
    pub scope: CapScope,
    pub limit_minor: i64,
    pub spent_minor: i64,
    /// Every threshold at or below the spend, lowest first (100 is the cap itself).
    pub thresholds_reached: Vec<u8>,
    pub cap_reached: bool,
}

/// The cap's thresholds, always including the cap itself (100 %).
pub fn thresholds_of(cap: &BudgetCap) -> Vec<u8> {
    let mut thresholds = if cap.thresholds.is_empty() {
        DEFAULT_THRESHOLDS.to_vec()
    } else {
        cap.thresholds.clone()
    };
    thresholds.push(100);
    thresholds.sort_unstable();
    thresholds.dedup();
    thresholds
}

/// Checks a scope's spend against its cap plus this period's raises.
pub fn check_cap(cap: &BudgetCap, raised_minor: i64, spent_minor: i64) -> CapCheck {
    let limit_minor = cap.amount_minor + raised_minor;
    let reached = |percent: u8| {
        spent_minor > 0
            && i128::from(spent_minor) * 100 >= i128::from(limit_minor) * i128::from(percent)
    };
    CapCheck {
        scope: cap.scope,
        limit_minor,
        spent_minor,
        thresholds_reached: thresholds_of(cap)
            .into_iter()
            .filter(|t| reached(*t))
            .collect(),
        cap_reached: reached(100),
    }
}

/// The action reaching a cap (or roaming against policy) takes on each line, if any.
pub fn line_action_for(action: CapAction) -> Option<GuardrailActionKind> {
    match action {
        CapAction::Suspend => Some(GuardrailActionKind::Suspend),
        CapAction::Throttle => Some(GuardrailActionKind::Throttle),
        CapAction::Alert => None,
    }
}

/// The speed a throttled line gets when its plan names none (what 1GLOBAL-style plans use
/// after their cap).
pub const DEFAULT_THROTTLE_KBPS: u32 = 128;

/// Whether roaming in a country is within policy for a line on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoamingVerdict {
    Allowed,
    /// Outside the presets (needs approval, blocked, or not listed) and no grant covers it.
    Violation {
        rule: Option<RoamingRule>,
    },
}

pub fn roaming_verdict(rule: Option<RoamingRule>, granted: bool) -> RoamingVerdict {
    if rule == Some(RoamingRule::Allowed) || granted {
        RoamingVerdict::Allowed
    } else {
        RoamingVerdict::Violation { rule }
    }
}

/// Whether a grant that was not revoked covers roaming on `line` in `country` on `day`; an
/// ended grant still covers its days, since usage arrives late.
pub fn grant_covers(grants: &[RoamingGrant], line: LineId, country: &str, day: Date) -> bool {
    grants.iter().any(|g| {
        g.line_id == line
            && g.country.eq_ignore_ascii_case(country)
            && g.starts_on <= day
            && day <= g.ends_on
            && g.state != "revoked"
    })
}

/// Whether `day_bytes` is a spike against the trailing days' data (oldest first, one value
/// per recorded day; days with no record are zero). `None` when there is no baseline yet.
pub fn is_usage_spike(trailing_recorded: &[i64], day_bytes: i64) -> Option<bool> {
    if trailing_recorded.len() < MIN_BASELINE_DAYS {
        return None;
    }
    let window = usize::try_from(BASELINE_DAYS).expect("a small constant");
    let mut days: Vec<i64> = trailing_recorded
        .iter()
        .rev()
        .take(window)
        .copied()
        .collect();
    days.resize(window.max(days.len()), 0);
    days.sort_unstable();
    let median = (days[(days.len() - 1) / 2] + days[days.len() / 2]) / 2;
    Some(day_bytes > SPIKE_FLOOR_BYTES && day_bytes > SPIKE_FACTOR * median)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailActionKind {
    Suspend,
    Throttle,
}

impl GuardrailActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Throttle => "throttle",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Suspend, Self::Throttle]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// pending (decided in the sync's transaction) → applied (the provider did it) → reverted
/// (at rollover or after a raise); or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    Pending,
    Applied,
    Failed,
    Reverted,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Reverted => "reverted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Applied, Self::Failed, Self::Reverted]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardrailAction {
    pub id: GuardrailActionId,
    pub tenant_id: TenantId,
    pub line_id: LineId,
    pub period: String,
    pub kind: GuardrailActionKind,
    pub alert_id: Option<AlertId>,
    pub state: ActionState,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What a policy change does at once to the spend and roaming already recorded this period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PolicyEffect {
    /// Alerts raised now (thresholds already passed, roaming the change puts outside policy).
    pub alerts: usize,
    /// Active lines slowed down or suspended now.
    pub throttled: usize,
    pub suspended: usize,
    /// Lines a cap had slowed or suspended this period that the change gives back.
    pub released: usize,
}

impl PolicyEffect {
    pub fn is_nothing(&self) -> bool {
        *self == Self::default()
    }
}

/// The dedupe key of a budget alert: one per scope, period and threshold.
pub fn budget_alert_key(scope: CapScope, period: &str, threshold: u8) -> String {
    format!("budget:{}:{period}:{threshold}", scope_label(scope))
}

pub fn scope_label(scope: CapScope) -> String {
    match scope.parts() {
        (kind, Some(id)) => format!("{kind}:{id}"),
        (kind, None) => kind.to_owned(),
    }
}

/// The lines whose spend is in a scope and which are active now.
pub fn lines_in_scope<'a>(
    scope: CapScope,
    lines: impl IntoIterator<Item = (LineId, Owner)> + 'a,
) -> HashSet<LineId> {
    lines
        .into_iter()
        .filter(|(_, owner)| owner.is_in(scope))
        .map(|(line, _)| line)
        .collect()
}

pub mod commands;

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(amount_minor: i64, thresholds: Vec<u8>) -> BudgetCap {
        BudgetCap {
            scope: CapScope::Tenant,
            amount_minor,
            thresholds,
            action: CapAction::Suspend,
        }
    }

    #[test]
    fn thresholds_reached_include_the_cap_and_count_raises() {
        let c = cap(10_000, vec![50, 80]);
        assert_eq!(thresholds_of(&c), vec![50, 80, 100]);
        assert_eq!(check_cap(&c, 0, 4_999).thresholds_reached, Vec::<u8>::new());
        assert_eq!(check_cap(&c, 0, 5_000).thresholds_reached, vec![50]);
        let at_cap = check_cap(&c, 0, 10_000);
        assert_eq!(at_cap.thresholds_reached, vec![50, 80, 100]);
        assert!(at_cap.cap_reached);
        // A raise of 5,000 for the period: 10,000 is now 66 % of 15,000.
        let raised = check_cap(&c, 5_000, 10_000);
        assert_eq!((raised.limit_minor, raised.cap_reached), (15_000, false));
        assert_eq!(raised.thresholds_reached, vec![50]);
        assert_eq!(thresholds_of(&cap(1, vec![])), vec![50, 80, 100]);
    }

    #[test]
    fn nothing_spent_reaches_no_threshold_even_of_a_zero_cap() {
        assert!(!check_cap(&cap(0, vec![]), 0, 0).cap_reached);
        assert!(check_cap(&cap(0, vec![]), 0, 1).cap_reached);
    }

    #[test]
    fn spend_counts_toward_every_scope_of_its_owner() {
        let (ada, alan) = (EmployeeId::new(), EmployeeId::new());
        let team = TeamId::new();
        let owners = [
            (
                Owner {
                    employee: ada,
                    team: Some(team),
                    cost_centre: None,
                },
                300,
            ),
            (
                Owner {
                    employee: alan,
                    team: Some(team),
                    cost_centre: None,
                },
                200,
            ),
        ];
        let per_scope = spend_per_scope(owners);
        assert_eq!(per_scope[&CapScope::Tenant], 500);
        assert_eq!(per_scope[&CapScope::Team(team)], 500);
        assert_eq!(per_scope[&CapScope::Employee(ada)], 300);
    }

    #[test]
    fn roaming_is_allowed_by_preset_or_grant_only() {
        assert_eq!(
            roaming_verdict(Some(RoamingRule::Allowed), false),
            RoamingVerdict::Allowed
        );
        assert_eq!(
            roaming_verdict(Some(RoamingRule::Blocked), true),
            RoamingVerdict::Allowed
        );
        assert_eq!(
            roaming_verdict(None, false),
            RoamingVerdict::Violation { rule: None }
        );
    }

    #[test]
    fn a_spike_is_far_above_the_trailing_median_and_above_the_floor() {
        const MB: i64 = crate::money::Bytes::MB;
        let steady = [200 * MB; 14];
        assert_eq!(is_usage_spike(&steady, 700 * MB), Some(true));
        // 3 × 200 MB = 600 MB: not more than three times.
        assert_eq!(is_usage_spike(&steady, 600 * MB), Some(false));
        // Light user: 4× their median, but under the floor.
        assert_eq!(is_usage_spike(&[100 * MB; 14], 450 * MB), Some(false));
        // Seven recorded days of 100 MB among fourteen: the missing seven count as zero, so the
        // median is (0 + 100) / 2 = 50 MB, and 501 MB is over both the floor and 150 MB.
        assert_eq!(is_usage_spike(&[100 * MB; 7], 501 * MB), Some(true));
        assert_eq!(is_usage_spike(&[900 * MB; 6], 5_000 * MB), None);
    }
}
