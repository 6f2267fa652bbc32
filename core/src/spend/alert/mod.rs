//! Alerts to finance and employees: budget thresholds, caps reached, roaming outside policy,
//! usage anomalies and subscriptions at the provider that no line accounts for. One alert per
//! condition and period; finance acts on it with buttons (suspend the line, raise the cap,
//! terminate the subscription, snooze) that carry the alert's id.

pub mod commands;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{AlertId, EmployeeId, LineId, TenantId};
use crate::messaging::chat_message::{Action, ActionStyle, Message};
use crate::money::Currency;
use crate::organisation::tenant::Tenant;

pub const SUSPEND_LINE: &str = "alert.suspend_line";
pub const RAISE_CAP: &str = "alert.raise_cap";
pub const SNOOZE: &str = "alert.snooze";
/// Terminate an unknown subscription at the provider; only owners and admins may press it.
pub const TERMINATE_SUBSCRIPTION: &str = "alert.terminate_subscription";

/// How long the Snooze button silences an alert.
pub const SNOOZE_BUTTON_DAYS: i64 = 7;
/// Longest snooze; beyond that the alert should be resolved or the policy changed.
pub const MAX_SNOOZE_DAYS: i64 = 90;
/// The Raise cap button cannot ask for an amount: it raises this period's cap by this share
/// of the cap the alert was raised against (at least one unit of the currency). The portal's
/// alerts page raises by any amount.
pub const RAISE_BUTTON_PERCENT: i64 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A scope's spend passed one of its cap's thresholds.
    BudgetThreshold,
    /// A scope's spend reached its cap; the cap's action was applied.
    BudgetCapReached,
    /// Roaming in a country outside the roaming presets with no grant covering the day.
    RoamingViolation,
    /// A day's data far above the line's own trailing baseline.
    UsageSpike,
    /// Roaming in a country the line has not roamed in before.
    NewRoamingCountry,
    /// A live line with no usage for a long time: paid for, not used.
    UnusedLine,
    /// A subscription at the provider that no line accounts for and that carries no
    /// reference of ours: someone pays for it, nobody knows whose it is.
    UnknownSubscription,
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        Self::BudgetThreshold,
        Self::BudgetCapReached,
        Self::RoamingViolation,
        Self::UsageSpike,
        Self::NewRoamingCountry,
        Self::UnusedLine,
        Self::UnknownSubscription,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BudgetThreshold => "budget_threshold",
            Self::BudgetCapReached => "budget_cap_reached",
            Self::RoamingViolation => "roaming_violation",
            Self::UsageSpike => "usage_spike",
            Self::NewRoamingCountry => "new_roaming_country",
            Self::UnusedLine => "unused_line",
            Self::UnknownSubscription => "unknown_subscription",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::BudgetThreshold => "Budget threshold passed",
            Self::BudgetCapReached => "Budget cap reached",
            Self::RoamingViolation => "Roaming outside policy",
            Self::UsageSpike => "Unusual data usage",
            Self::NewRoamingCountry => "Roaming in a new country",
            Self::UnusedLine => "Unused line",
            Self::UnknownSubscription => "Unknown subscription at the provider",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Snoozed,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Acknowledged,
            Self::Snoozed,
            Self::Resolved,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: AlertId,
    pub tenant_id: TenantId,
    pub kind: AlertKind,
    pub line_id: Option<LineId>,
    /// Whose line or budget it is: they are told too.
    pub employee_id: Option<EmployeeId>,
    /// What it is about: `tenant`, `team:<id>`, `line:<id>`…
    pub scope: String,
    /// The billing period (`YYYY-MM`) it belongs to; it alerts once per period.
    pub period: String,
    pub dedupe_key: String,
    pub message: String,
    pub details: Value,
    pub state: AlertState,
    pub snoozed_until: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Alert {
    /// A new open alert; `dedupe_key` names the condition and period it stands for.
    pub fn raise(
        tenant: TenantId,
        kind: AlertKind,
        period: &str,
        dedupe_key: String,
        scope: String,
        message: String,
        details: Value,
    ) -> Self {
        let at = crate::store::now();
        Self {
            id: AlertId::new(),
            tenant_id: tenant,
            kind,
            line_id: None,
            employee_id: None,
            scope,
            period: period.to_owned(),
            dedupe_key,
            message,
            details,
            state: AlertState::Open,
            snoozed_until: None,
            delivered_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    pub fn on_line(mut self, line: LineId, employee: EmployeeId) -> Self {
        self.line_id = Some(line);
        self.employee_id = Some(employee);
        self
    }

    pub fn for_employee(mut self, employee: Option<EmployeeId>) -> Self {
        self.employee_id = employee;
        self
    }

    /// About one line or one employee's budget: Suspend line has lines to act on.
    pub fn has_lines(&self) -> bool {
        self.line_id.is_some() || self.scope.starts_with("employee:")
    }
}

/// What the Raise cap button adds to the alerted cap for its period, in minor units:
/// [`RAISE_BUTTON_PERCENT`] of the cap (rounded up), at least one unit of the currency.
/// `None` when the alert is not about a budget cap.
pub fn button_raise_minor(alert: &Alert, currency: Currency) -> Option<i64> {
    alert.details.get("cap_scope")?;
    let limit = alert.details.get("limit_minor").and_then(Value::as_i64)?;
    let one_unit = 10_i64.pow(currency.minor_exponent());
    let share = (limit.max(0) * RAISE_BUTTON_PERCENT + 99) / 100;
    Some(share.max(one_unit))
}

/// The provider's subscription id an unknown-subscription alert is about.
pub fn unknown_subscription(alert: &Alert) -> Option<&str> {
    if alert.kind != AlertKind::UnknownSubscription {
        return None;
    }
    alert.details.get("subscription_id")?.as_str()
}

/// A time as people read it in alerts: `2026-11-24 13:05 UTC`.
pub fn minute_utc(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.to_string())
}

/// How answers to alert actions name a line: "Ada Tester's line (ICCID 8988…)".
pub fn line_label(line: &crate::lines::line::Line, owner_name: &str) -> String {
    let which = line
        .iccid
        .as_ref()
        .map_or_else(|| format!("line {}", line.id), |i| format!("ICCID {i}"));
    format!("{owner_name}'s line ({which})")
}

/// Which alerts to list; `None` is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub kind: Option<AlertKind>,
    pub period: Option<String>,
}

/// The finance channel's message for an alert, with its action buttons.
pub fn finance_message(alert: &Alert, tenant: &Tenant) -> Message {
    let button = |id: &str, label: &str, style| Action {
        id: id.into(),
        label: label.into(),
        style,
        value: alert.id.to_string(),
        confirm: None,
    };
    let mut actions = Vec::new();
    if alert.has_lines() {
        actions.push(Action {
            confirm: Some("Suspend this line now? The employee loses service.".into()),
            ..button(SUSPEND_LINE, "Suspend line", ActionStyle::Danger)
        });
    }
    if let Some(subscription) = unknown_subscription(alert) {
        actions.push(Action {
            confirm: Some(format!(
                "Terminate subscription {subscription} at the provider? Whoever uses it loses \
                 service, and it cannot be undone."
            )),
            ..button(
                TERMINATE_SUBSCRIPTION,
                "Terminate subscription",
                ActionStyle::Danger,
            )
        });
    }
    if let Some(raise) = button_raise_minor(alert, tenant.currency) {
        let label = format!("Raise cap +{}", tenant.money(raise));
        actions.push(button(RAISE_CAP, &label, ActionStyle::Primary));
    }
    actions.push(button(
        SNOOZE,
        &format!("Snooze {SNOOZE_BUTTON_DAYS} days"),
        ActionStyle::Default,
    ));
    let mut message = Message {
        title: Some(alert.kind.title().into()),
        text: alert.message.clone(),
        actions,
        context: Some(format!("{} · alert {}", tenant.name, alert.id)),
        ..Message::default()
    }
    .field("Period", alert.period.clone());
    let money = |key: &str| alert.details.get(key).and_then(Value::as_i64);
    if let (Some(spent), Some(limit)) = (money("spent_minor"), money("limit_minor")) {
        message = message
            .field("Spent", tenant.money(spent).to_string())
            .field("Cap", tenant.money(limit).to_string());
    }
    message
}

/// What the employee is told about an alert on their line or budget.
pub fn employee_message(alert: &Alert) -> Message {
    Message {
        title: Some(alert.kind.title().into()),
        text: alert.message.clone(),
        context: Some("Ask for a cap raise or roaming with /esim if you need more.".into()),
        ..Message::default()
    }
}

/// A harmless alert an admin sends to check that finance's channel receives alerts with
/// their buttons. The buttons carry no subject, so clicking them changes nothing.
pub fn test_alert(tenant: &Tenant) -> Message {
    let button = |id: &str, label: &str, style| Action {
        id: id.into(),
        label: label.into(),
        style,
        value: "test".into(),
        confirm: None,
    };
    Message {
        title: Some("Test alert".into()),
        text: format!(
            "This is a test from Lineup for *{}*. Budget and usage alerts will arrive here with \
             buttons like these.",
            tenant.name
        ),
        actions: vec![
            button(SUSPEND_LINE, "Suspend line", ActionStyle::Danger),
            button(RAISE_CAP, "Raise cap", ActionStyle::Primary),
            button(SNOOZE, "Snooze 7 days", ActionStyle::Default),
        ],
        context: Some("No line was affected.".into()),
        ..Message::default()
    }
    .field("Organisation", tenant.name.clone())
    .field("Currency", tenant.currency.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn budget_alert(limit_minor: i64) -> Alert {
        Alert::raise(
            TenantId::new(),
            AlertKind::BudgetThreshold,
            "2026-11",
            "budget:tenant:2026-11:80".into(),
            "tenant".into(),
            "The tenant budget passed 80%".into(),
            json!({ "cap_scope": {"kind": "tenant"}, "limit_minor": limit_minor }),
        )
    }

    #[test]
    fn the_raise_button_adds_a_quarter_of_the_cap_and_at_least_one_unit() {
        // 25 % of 50.00 is 12.50; of 10.01 it is 2.5025, rounded up to 2.51.
        assert_eq!(
            button_raise_minor(&budget_alert(5_000), Currency::USD),
            Some(1_250)
        );
        assert_eq!(
            button_raise_minor(&budget_alert(1_001), Currency::USD),
            Some(251)
        );
        // 25 % of 2.00 is 0.50: the button still adds a whole dollar (or yen).
        assert_eq!(
            button_raise_minor(&budget_alert(200), Currency::USD),
            Some(100)
        );
        let yen = Currency::parse("JPY").unwrap();
        assert_eq!(button_raise_minor(&budget_alert(2), yen), Some(1));
        // Not about a cap: no button.
        let mut roaming = budget_alert(5_000);
        roaming.details = json!({ "country": "JP" });
        assert_eq!(button_raise_minor(&roaming, Currency::USD), None);
    }
}
