//! What-if replay: run a proposed policy (caps, thresholds, actions, roaming presets) over the
//! usage already recorded and compare spend, overage, suspended days and alerts with the
//! current policy replayed over the same usage — through the same pricing and guardrail
//! functions that ingest uses.
//!
//! How the replay works:
//! - Usage is replayed day by day from the start of the billing period the window begins in,
//!   so caps see the period's spend so far; only days inside the window count towards
//!   suspended days and alerts (the days before warm the period up).
//! - Guardrails are evaluated after each day's usage; a suspension takes effect the next
//!   day, and usage on suspended days is dropped (a suspended line records none). Rollover to
//!   a new period lifts every suspension, as the real sweep does.
//! - Budget and roaming-policy alerts are compared; usage anomalies do not depend on policy
//!   and are left out. Cap raises granted during the period are not replayed.
//! - Spend is the sum of the period totals (plan price + overage + roaming) of every period
//!   the replay touches.

pub mod commands;
pub mod trips;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use time::{Date, Duration};

use crate::ids::LineId;
use crate::spend::guardrail::{
    Owner, RoamingVerdict, budget_alert_key, check_cap, grant_covers, line_action_for,
    roaming_verdict, spend_per_scope,
};
use crate::spend::policy::{BudgetCap, CapAction, RoamingGrant, RoamingRule};
use crate::spend::pricing::{
    Charge, PeriodSpend, PlanPricing, billing_period, period_spend, period_start,
};

/// The longest window a replay covers.
pub const MAX_REPLAY_DAYS: i64 = 366;

/// A policy to try, as read from a JSON file (see the README's "What-if replay").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    #[serde(default)]
    pub caps: Vec<BudgetCap>,
    /// Country (ISO alpha-2) → rule; countries not listed are outside the presets.
    #[serde(default)]
    pub roaming: BTreeMap<String, RoamingRule>,
    #[serde(default)]
    pub roaming_violation_action: CapAction,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicySetError {
    #[error("the policy file is not valid JSON for a policy set: {0}")]
    Json(String),
    #[error("caps[{index}]: {reason}")]
    Cap { index: usize, reason: String },
    #[error("roaming: {0:?} is not a two-letter country code")]
    Country(String),
}

impl PolicySet {
    pub fn from_json(text: &str) -> Result<Self, PolicySetError> {
        let set: PolicySet =
            serde_json::from_str(text).map_err(|e| PolicySetError::Json(e.to_string()))?;
        set.validated()
    }

    /// The set with amounts, thresholds and country codes checked, countries upper-cased.
    pub fn validated(mut self) -> Result<Self, PolicySetError> {
        for (index, cap) in self.caps.iter().enumerate() {
            if cap.amount_minor < 0 {
                return Err(PolicySetError::Cap {
                    index,
                    reason: "amount_minor must not be negative".into(),
                });
            }
            if let Some(bad) = cap.thresholds.iter().find(|t| **t == 0 || **t > 100) {
                return Err(PolicySetError::Cap {
                    index,
                    reason: format!("threshold {bad}% is not between 1 and 100"),
                });
            }
        }
        let mut roaming = BTreeMap::new();
        for (country, rule) in std::mem::take(&mut self.roaming) {
            let code = country.trim().to_ascii_uppercase();
            if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(PolicySetError::Country(country));
            }
            roaming.insert(code, rule);
        }
        self.roaming = roaming;
        Ok(self)
    }
}

/// A line as the replay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayLine {
    pub line_id: LineId,
    pub label: String,
    pub owner: Owner,
    pub pricing: PlanPricing,
}

/// All data a line used on a day, roaming included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayDay {
    pub line_id: LineId,
    pub day: Date,
    pub data_bytes: i64,
}

/// Roaming data on a day in a country (part of that day's `ReplayDay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRoaming {
    pub line_id: LineId,
    pub day: Date,
    pub country: String,
    pub data_bytes: i64,
}

/// Recorded usage to replay; `from..=to` is the window compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageHistory {
    pub from: Date,
    pub to: Date,
    pub lines: Vec<ReplayLine>,
    pub days: Vec<ReplayDay>,
    pub roaming: Vec<ReplayRoaming>,
    pub grants: Vec<RoamingGrant>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineOutcome {
    pub spend: PeriodSpend,
    pub suspended_days: i64,
    /// Roaming alerts on this line (budget alerts are about scopes; see `alerts`).
    pub alerts: usize,
}

impl std::ops::AddAssign for LineOutcome {
    fn add_assign(&mut self, other: Self) {
        self.spend += other.spend;
        self.suspended_days += other.suspended_days;
        self.alerts += other.alerts;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    pub lines: BTreeMap<LineId, LineOutcome>,
    /// Every alert raised inside the window, by its dedupe key.
    pub alerts: BTreeSet<String>,
}

impl ReplayOutcome {
    pub fn total(&self) -> LineOutcome {
        let mut total = LineOutcome::default();
        for line in self.lines.values() {
            total += *line;
        }
        total.alerts = self.alerts.len();
        total
    }
}

/// One line's period so far in the replay.
#[derive(Debug, Clone, Copy, Default)]
struct Running {
    bundle_bytes: i64,
    roaming_minor: i64,
    suspended_from: Option<Date>,
}

pub fn replay(history: &UsageHistory, policy: &PolicySet) -> ReplayOutcome {
    let mut usage: BTreeMap<Date, Vec<ReplayDay>> = BTreeMap::new();
    for day in &history.days {
        usage.entry(day.day).or_default().push(*day);
    }
    let mut roaming: HashMap<(LineId, Date), Vec<&ReplayRoaming>> = HashMap::new();
    for r in &history.roaming {
        roaming.entry((r.line_id, r.day)).or_default().push(r);
    }
    let lines: BTreeMap<LineId, &ReplayLine> =
        history.lines.iter().map(|l| (l.line_id, l)).collect();
    let mut outcome = ReplayOutcome {
        lines: lines
            .keys()
            .map(|id| (*id, LineOutcome::default()))
            .collect(),
        alerts: BTreeSet::new(),
    };
    // Alerts already raised this period (inside the window or before it).
    let mut raised: BTreeSet<String> = BTreeSet::new();
    let mut running: BTreeMap<LineId, Running> = BTreeMap::new();
    let mut period = String::new();
    let roaming_action = line_action_for(policy.roaming_violation_action);

    let mut day = period_start(history.from);
    while day <= history.to {
        if billing_period(day) != period {
            close_period(&mut outcome, &lines, &running);
            running = lines.keys().map(|id| (*id, Running::default())).collect();
            period = billing_period(day);
        }
        let in_window = day >= history.from;
        let suspended = |r: &Running| r.suspended_from.is_some_and(|from| from <= day);
        if in_window {
            for (id, r) in &running {
                if suspended(r) {
                    outcome.lines.entry(*id).or_default().suspended_days += 1;
                }
            }
        }
        for used in usage.get(&day).into_iter().flatten() {
            let (Some(line), Some(state)) =
                (lines.get(&used.line_id), running.get_mut(&used.line_id))
            else {
                continue;
            };
            if suspended(state) {
                continue;
            }
            let mut billed_roaming = 0;
            for r in roaming.get(&(used.line_id, day)).into_iter().flatten() {
                if let Charge::Roaming { cost_minor, .. } =
                    line.pricing.charge(true, Some(&r.country), r.data_bytes)
                {
                    billed_roaming += r.data_bytes;
                    state.roaming_minor += cost_minor;
                }
                let granted = grant_covers(&history.grants, used.line_id, &r.country, day);
                let rule = policy.roaming.get(&r.country.to_ascii_uppercase()).copied();
                if let RoamingVerdict::Violation { .. } = roaming_verdict(rule, granted) {
                    let key = format!("roaming:{}:{}:{period}", used.line_id, r.country);
                    if raised.insert(key.clone()) && in_window {
                        outcome.alerts.insert(key);
                        outcome.lines.entry(used.line_id).or_default().alerts += 1;
                    }
                    if roaming_action.is_some() && state.suspended_from.is_none() {
                        state.suspended_from = Some(day + Duration::days(1));
                    }
                }
            }
            state.bundle_bytes += used.data_bytes - billed_roaming;
        }
        let spent = spend_per_scope(running.iter().filter_map(|(id, r)| {
            let line = lines.get(id)?;
            let total = period_spend(&line.pricing, r.bundle_bytes, r.roaming_minor).total_minor();
            Some((line.owner, total))
        }));
        for cap in &policy.caps {
            let check = check_cap(cap, 0, spent.get(&cap.scope).copied().unwrap_or(0));
            for threshold in &check.thresholds_reached {
                let key = budget_alert_key(cap.scope, &period, *threshold);
                if raised.insert(key.clone()) && in_window {
                    outcome.alerts.insert(key);
                }
            }
            if check.cap_reached && line_action_for(cap.action).is_some() {
                for (id, state) in running.iter_mut() {
                    let in_scope = lines.get(id).is_some_and(|l| l.owner.is_in(cap.scope));
                    if in_scope && state.suspended_from.is_none() {
                        state.suspended_from = Some(day + Duration::days(1));
                    }
                }
            }
        }
        day += Duration::days(1);
    }
    close_period(&mut outcome, &lines, &running);
    outcome
}

fn close_period(
    outcome: &mut ReplayOutcome,
    lines: &BTreeMap<LineId, &ReplayLine>,
    running: &BTreeMap<LineId, Running>,
) {
    for (id, r) in running {
        if let Some(line) = lines.get(id) {
            outcome.lines.entry(*id).or_default().spend +=
                period_spend(&line.pricing, r.bundle_bytes, r.roaming_minor);
        }
    }
}

/// One line under both policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineComparison {
    pub line_id: LineId,
    pub label: String,
    pub now: LineOutcome,
    pub proposed: LineOutcome,
}

impl LineComparison {
    pub fn spend_delta_minor(&self) -> i64 {
        self.proposed.spend.total_minor() - self.now.spend.total_minor()
    }
}

/// How much overage changes, in whole percent of today's (rounded towards zero); `None`
/// when there is no overage today to compare with.
pub fn percent_change(now: i64, proposed: i64) -> Option<i64> {
    (now != 0).then(|| (proposed - now) * 100 / now)
}

/// The proposed policy against the current one, over the same recorded usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatIfReport {
    pub from: Date,
    pub to: Date,
    pub labels: BTreeMap<LineId, String>,
    pub current: ReplayOutcome,
    pub proposed: ReplayOutcome,
    /// The window's trips priced on the home line and as the cheapest travel eSIM.
    pub trips: Vec<trips::TripPricing>,
}

impl WhatIfReport {
    /// Every line the policy changes or that spent anything, in line order.
    pub fn lines(&self) -> Vec<LineComparison> {
        self.labels
            .iter()
            .map(|(line, label)| LineComparison {
                line_id: *line,
                label: label.clone(),
                now: self.current.lines.get(line).copied().unwrap_or_default(),
                proposed: self.proposed.lines.get(line).copied().unwrap_or_default(),
            })
            .filter(|c| c.now != c.proposed || c.now.spend.total_minor() > 0)
            .collect()
    }

    /// The lines the policy changes, biggest spend change first.
    pub fn changed_lines(&self) -> Vec<LineComparison> {
        let mut changed: Vec<LineComparison> = self
            .lines()
            .into_iter()
            .filter(|c| c.now != c.proposed)
            .collect();
        changed.sort_by(|a, b| {
            b.spend_delta_minor()
                .abs()
                .cmp(&a.spend_delta_minor().abs())
                .then_with(|| b.proposed.suspended_days.cmp(&a.proposed.suspended_days))
                .then_with(|| a.label.cmp(&b.label))
        });
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{EmployeeId, TeamId};
    use crate::spend::policy::CapScope;
    use crate::spend::pricing::fixtures::us_5gb;
    use time::macros::date;

    const GB: i64 = crate::spend::pricing::BYTES_PER_GB;

    /// Ana uses 1 GB every day from 1 to 20 November. Ben uses 2 GB at home on the 5th and
    /// 1 GB in Japan on the 12th. Both are in one team. The window is 6–20 November, so 1–5
    /// November warm the period up.
    fn history() -> (UsageHistory, EmployeeId, LineId, LineId) {
        let (ana, ben) = (EmployeeId::new(), EmployeeId::new());
        let team = Some(TeamId::new());
        let (ana_line, ben_line) = (LineId::new(), LineId::new());
        let line = |line_id, employee, label: &str| ReplayLine {
            line_id,
            label: label.into(),
            owner: Owner {
                employee,
                team,
                cost_centre: None,
            },
            pricing: us_5gb(),
        };
        let nov = |d: u8| date!(2026 - 11 - 01).replace_day(d).unwrap();
        let mut days: Vec<ReplayDay> = (1..=20)
            .map(|d| ReplayDay {
                line_id: ana_line,
                day: nov(d),
                data_bytes: GB,
            })
            .collect();
        days.push(ReplayDay {
            line_id: ben_line,
            day: nov(5),
            data_bytes: 2 * GB,
        });
        days.push(ReplayDay {
            line_id: ben_line,
            day: nov(12),
            data_bytes: GB,
        });
        let history = UsageHistory {
            from: nov(6),
            to: nov(20),
            lines: vec![line(ana_line, ana, "ana"), line(ben_line, ben, "ben")],
            days,
            roaming: vec![ReplayRoaming {
                line_id: ben_line,
                day: nov(12),
                country: "JP".into(),
                data_bytes: GB,
            }],
            grants: vec![],
        };
        (history, ana, ana_line, ben_line)
    }

    /// Spend, overage, suspended days and alerts over all lines.
    fn totals(outcome: &ReplayOutcome) -> (i64, i64, i64, usize) {
        let total = outcome.total();
        (
            total.spend.total_minor(),
            total.spend.overage_minor,
            total.suspended_days,
            total.alerts,
        )
    }

    #[test]
    fn the_current_policy_replays_what_happened() {
        // No caps, no roaming presets, violations alert only.
        // Ana: 20 GB at home, 15 GB over → 150.00 overage; 20.00 + 150.00 = 170.00.
        // Ben: 2 GB at home (inside the bundle) + 1 GB in Japan at 15.00 → 20.00 + 15.00.
        // One alert: Ben roaming in Japan, outside the (empty) presets, on the 12th.
        let (history, _, ana_line, ben_line) = history();
        let outcome = replay(&history, &PolicySet::default());
        let ana = outcome.lines[&ana_line];
        assert_eq!(
            (
                ana.spend.plan_minor,
                ana.spend.overage_minor,
                ana.spend.total_minor()
            ),
            (2_000, 15_000, 17_000)
        );
        let ben = outcome.lines[&ben_line];
        assert_eq!(
            (ben.spend.roaming_minor, ben.spend.total_minor()),
            (1_500, 3_500)
        );
        assert_eq!(ben.alerts, 1);
        assert_eq!(totals(&outcome), (20_500, 15_000, 0, 1));
    }

    #[test]
    fn a_proposed_cap_and_preset_give_the_hand_computed_differences() {
        // Proposed: Ana's cap 40.00 with thresholds 50/80 that suspends; Japan allowed.
        // Ana's spend after day n is 20.00 + max(0, n − 5) × 10.00:
        //   day 1: 20.00 = 50 % (before the window: raised, not counted);
        //   day 6: 30.00 = 75 %; day 7: 40.00 → 80 % and 100 % (both in the window);
        //   suspended from day 8: days 8–20 are 13 suspended days, her usage then is dropped.
        // Ana: 7 GB → 2 GB over → 20.00 overage, spend 40.00.
        // Ben: unchanged 35.00 (Japan is allowed now, but still priced), no alert.
        // Totals: spend 75.00 (−130.00), overage 20.00, 13 suspended days, 2 alerts (+1).
        let (history, ana, ana_line, ben_line) = history();
        let policy = PolicySet::from_json(&format!(
            r#"{{"caps": [{{"scope": {{"kind": "employee", "id": "{}"}}, "amount_minor": 4000,
                 "thresholds": [50, 80], "action": "suspend"}}],
                "roaming": {{"jp": "allowed"}}}}"#,
            ana.0
        ))
        .unwrap();
        assert_eq!(policy.caps[0].scope, CapScope::Employee(ana));
        let outcome = replay(&history, &policy);
        let ana_outcome = outcome.lines[&ana_line];
        assert_eq!(
            (
                ana_outcome.spend.overage_minor,
                ana_outcome.spend.total_minor(),
                ana_outcome.suspended_days
            ),
            (2_000, 4_000, 13)
        );
        let ben = outcome.lines[&ben_line];
        assert_eq!((ben.spend.total_minor(), ben.alerts), (3_500, 0));
        assert_eq!(totals(&outcome), (7_500, 2_000, 13, 2));
    }

    #[test]
    fn a_bad_policy_file_says_what_is_wrong() {
        assert!(matches!(
            PolicySet::from_json(
                r#"{"caps": [{"scope": {"kind": "tenant"}, "amount_minor": -1, "action": "alert"}]}"#
            ),
            Err(PolicySetError::Cap { index: 0, .. })
        ));
        assert_eq!(
            PolicySet::from_json(r#"{"roaming": {"Japan": "allowed"}}"#),
            Err(PolicySetError::Country("Japan".into()))
        );
        assert!(matches!(
            PolicySet::from_json(r#"{"cap": []}"#),
            Err(PolicySetError::Json(_))
        ));
    }
}
