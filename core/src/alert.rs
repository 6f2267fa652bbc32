//! Alerts to finance and employees: budget thresholds, caps reached, roaming outside policy
//! and usage anomalies. One alert per condition and period; finance acts on it with buttons
//! (suspend the line, raise the cap, snooze) that carry the alert's id.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{AlertId, EmployeeId, LineId, TenantId};
use crate::money::Currency;
use crate::notify::{Action, ActionStyle, Message};
use crate::tenant::Tenant;

pub const SUSPEND_LINE: &str = "alert.suspend_line";
pub const RAISE_CAP: &str = "alert.raise_cap";
pub const SNOOZE: &str = "alert.snooze";

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
}

impl AlertKind {
    pub const ALL: [AlertKind; 6] = [
        Self::BudgetThreshold,
        Self::BudgetCapReached,
        Self::RoamingViolation,
        Self::UsageSpike,
        Self::NewRoamingCountry,
        Self::UnusedLine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BudgetThreshold => "budget_threshold",
            Self::BudgetCapReached => "budget_cap_reached",
            Self::RoamingViolation => "roaming_violation",
            Self::UsageSpike => "usage_spike",
            Self::NewRoamingCountry => "new_roaming_country",
            Self::UnusedLine => "unused_line",
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

/// A time as people read it in alerts: `2026-11-24 13:05 UTC`.
pub fn minute_utc(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.to_string())
}

/// How answers to alert actions name a line: "Ada Tester's line (ICCID 8988…)".
pub fn line_label(line: &crate::line::Line, owner_name: &str) -> String {
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

pub mod commands {
    use serde_json::json;
    use time::Duration;

    use super::*;
    use crate::app::{Lineup, record, required, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::{CoreError, CoreResult};
    use crate::line::{Line, LineState};
    use crate::policy::CapScope;
    use crate::store::{self, Tx, now};

    /// An alert ready to post: the finance message and, when someone owns it, theirs.
    #[derive(Debug, Clone)]
    pub struct AlertDelivery {
        pub alert: Alert,
        pub finance: Message,
        pub employee: Option<(EmployeeId, Message)>,
    }

    /// Who did something to an alert, for people.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlertActionBy {
        pub name: String,
        pub at: OffsetDateTime,
    }

    impl std::fmt::Display for AlertActionBy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} at {}", self.name, minute_utc(self.at))
        }
    }

    fn subject(alert: &Alert) -> (&'static str, String) {
        ("alert", alert.id.to_string())
    }

    impl Lineup {
        pub async fn alerts(
            &self,
            tenant: TenantId,
            filter: &AlertFilter,
        ) -> CoreResult<Vec<Alert>> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(store::alerts::list(&mut tx, tenant, filter).await?)
        }

        pub async fn alert(&self, tenant: TenantId, id: AlertId) -> CoreResult<Alert> {
            let mut tx = self.tenant_tx(tenant).await?;
            load(&mut tx, tenant, id).await
        }

        /// The lines the alert's Suspend line acts on, as they are now.
        pub async fn alert_lines(&self, tenant: TenantId, id: AlertId) -> CoreResult<Vec<Line>> {
            let mut tx = self.tenant_tx(tenant).await?;
            let alert = load(&mut tx, tenant, id).await?;
            lines_of(&mut tx, tenant, &alert).await
        }

        /// Chat buttons on finance alerts act for finance: the clicking employee must hold
        /// the finance, admin or owner role in the tenant (the same roles as the portal's
        /// ActOnAlerts permission).
        pub async fn may_act_on_alerts(
            &self,
            tenant: TenantId,
            employee: EmployeeId,
        ) -> CoreResult<bool> {
            let mut tx = self.tenant_tx(tenant).await?;
            let roles = store::users::roles_of_employee(&mut tx, tenant, employee).await?;
            Ok(roles
                .iter()
                .any(|r| matches!(r.as_str(), "finance" | "admin" | "owner")))
        }

        /// Who last did `action` (e.g. `alert.cap_raised`) on the alert, and when: what a
        /// second click is told.
        pub async fn last_alert_action(
            &self,
            tenant: TenantId,
            id: AlertId,
            action: &str,
        ) -> CoreResult<Option<AlertActionBy>> {
            let mut tx = self.tenant_tx(tenant).await?;
            let events =
                store::audit::list_for_subject(&mut tx, tenant, "alert", &id.to_string()).await?;
            let Some(event) = events.into_iter().rev().find(|e| e.action == action) else {
                return Ok(None);
            };
            let name = match event.actor.split_once(':') {
                Some(("employee", id)) => match id.parse() {
                    Ok(employee) => store::employees::get(&mut tx, tenant, employee)
                        .await?
                        .map(|e| e.full_name()),
                    Err(_) => None,
                },
                Some(("user", id)) => match id.parse() {
                    Ok(user) => store::users::member_name(&mut tx, tenant, user).await?,
                    Err(_) => None,
                },
                _ => Some("Lineup".to_owned()),
            };
            Ok(Some(AlertActionBy {
                name: name.unwrap_or_else(|| "someone no longer in the directory".into()),
                at: event.at,
            }))
        }

        #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]

        pub async fn acknowledge_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
        ) -> CoreResult<Alert> {
            self.move_alert(
                tenant,
                actor,
                id,
                AlertState::Acknowledged,
                None,
                "alert.acknowledged",
            )
            .await
        }

        #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]

        pub async fn resolve_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
        ) -> CoreResult<Alert> {
            self.move_alert(
                tenant,
                actor,
                id,
                AlertState::Resolved,
                None,
                "alert.resolved",
            )
            .await
        }

        /// Silence an alert for `days`. Snoozing again with the same length changes nothing.
        #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]
        pub async fn snooze_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
            days: i64,
        ) -> CoreResult<Alert> {
            if !(1..=MAX_SNOOZE_DAYS).contains(&days) {
                return Err(CoreError::invalid(
                    "days",
                    format!("a snooze lasts 1 to {MAX_SNOOZE_DAYS} days, not {days}"),
                ));
            }
            self.move_alert(
                tenant,
                actor,
                id,
                AlertState::Snoozed,
                Some(Duration::days(days)),
                "alert.snoozed",
            )
            .await
        }

        async fn move_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
            to: AlertState,
            snooze: Option<Duration>,
            action: &str,
        ) -> CoreResult<Alert> {
            let mut tx = self.tenant_tx(tenant).await?;
            let before = load(&mut tx, tenant, id).await?;
            if before.state == to {
                // A double click, or a second finance member pressing the same button.
                return Ok(before);
            }
            if before.state == AlertState::Resolved {
                return Err(CoreError::Conflict(format!(
                    "alert {id} is already resolved; it cannot be {}",
                    to.as_str()
                )));
            }
            let until = snooze.map(|d| now() + d);
            store::alerts::set_state(&mut tx, tenant, id, to, until).await?;
            let after = load(&mut tx, tenant, id).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                action,
                subject(&after),
                Some(json!({ "state": before.state.as_str() })),
                Some(json!({ "state": to.as_str(), "snoozed_until": until })),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(after)
        }

        /// The finance button: suspend the alert's line (or the employee's live lines for an
        /// employee-budget alert). A second click finds the line already suspended.
        #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]
        pub async fn suspend_line_from_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
        ) -> CoreResult<Vec<Line>> {
            let mut tx = self.tenant_tx(tenant).await?;
            let alert = load(&mut tx, tenant, id).await?;
            let lines = lines_of(&mut tx, tenant, &alert).await?;
            drop(tx);
            let mut suspended = Vec::new();
            for line in lines {
                let line = match line.state {
                    LineState::Active => {
                        self.suspend_line(
                            tenant,
                            actor,
                            line.id,
                            Some(format!("alert-suspend:{id}:{}", line.id)),
                        )
                        .await?
                    }
                    _ => line,
                };
                suspended.push(line);
            }
            let mut tx = self.tenant_tx(tenant).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "alert.suspend_line",
                subject(&alert),
                None,
                Some(json!({ "lines": suspended.iter().map(|l| l.id).collect::<Vec<_>>() })),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(suspended)
        }

        /// Suspend line, told to the person who pressed it: which lines it suspended, and
        /// for lines it left alone their state and who pressed Suspend on this alert before.
        pub async fn suspend_line_from_alert_told(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
        ) -> CoreResult<String> {
            let before = self.alert_lines(tenant, id).await?;
            let earlier = self
                .last_alert_action(tenant, id, "alert.suspend_line")
                .await?;
            let after = self.suspend_line_from_alert(tenant, actor, id).await?;
            let was_active = |line: &Line| {
                before
                    .iter()
                    .any(|b| b.id == line.id && b.state == LineState::Active)
            };
            let mut tx = self.tenant_tx(tenant).await?;
            let mut suspended = Vec::new();
            let mut unchanged = Vec::new();
            for line in &after {
                let owner = store::employees::get(&mut tx, tenant, line.employee_id)
                    .await?
                    .map_or_else(|| "someone".to_owned(), |e| e.full_name());
                let label = line_label(line, &owner);
                if was_active(line) && line.state == LineState::Suspended {
                    suspended.push(label);
                } else {
                    unchanged.push(format!("{label} is {}", line.state.as_str()));
                }
            }
            let mut told = Vec::new();
            if !suspended.is_empty() {
                told.push(format!("Suspended {}.", suspended.join(", ")));
            }
            if !unchanged.is_empty() {
                let by = earlier
                    .filter(|_| suspended.is_empty())
                    .map(|by| format!(" (Suspend was pressed on this alert by {by})"))
                    .unwrap_or_default();
                told.push(format!("Nothing to do for {}{by}.", unchanged.join(", ")));
            }
            if told.is_empty() {
                told.push("There is no line to suspend.".into());
            }
            Ok(told.join(" "))
        }

        /// The finance button: raise the alerted scope's cap for the alert's period. One
        /// raise per alert, so a double click raises once; guardrail suspensions of the scope
        /// are lifted when its spend is now under the raised cap.
        #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]
        pub async fn raise_cap_from_alert(
            &self,
            tenant: TenantId,
            actor: &Actor,
            id: AlertId,
            amount_minor: i64,
        ) -> CoreResult<Alert> {
            if amount_minor <= 0 {
                return Err(CoreError::invalid("amount", "must be more than zero"));
            }
            let mut tx = self.tenant_tx(tenant).await?;
            let alert = load(&mut tx, tenant, id).await?;
            let scope: CapScope = alert
                .details
                .get("cap_scope")
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok())
                .ok_or_else(|| {
                    CoreError::invalid(
                        "alert",
                        format!(
                            "alert {id} ({}) is not about a budget cap",
                            alert.kind.as_str()
                        ),
                    )
                })?;
            if store::guardrails::insert_period_raise(
                &mut tx,
                tenant,
                scope,
                &alert.period,
                amount_minor,
                id,
            )
            .await?
            {
                let event = AuditEvent::new(
                    tenant,
                    actor,
                    "alert.cap_raised",
                    subject(&alert),
                    None,
                    to_json(&json!({
                        "scope": scope, "period": alert.period, "amount_minor": amount_minor
                    })),
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
            self.lift_guardrails_under_cap(tenant, actor, &alert.period)
                .await?;
            self.alert(tenant, id).await
        }

        /// Alerts not yet posted to finance, across tenants, with their messages.
        pub async fn alerts_to_deliver(&self, limit: i64) -> CoreResult<Vec<AlertDelivery>> {
            let mut tx = self.store().system().await?;
            let tenants = store::jobs::list_tenants(&mut tx).await?;
            drop(tx);
            let mut out = Vec::new();
            for tenant in tenants {
                let mut tx = self.tenant_tx(tenant).await?;
                let pending = store::alerts::undelivered(&mut tx, tenant, limit).await?;
                if pending.is_empty() {
                    continue;
                }
                let tenant_row = required(
                    store::tenants::get(&mut tx, tenant).await?,
                    "tenant",
                    tenant,
                )?;
                for alert in pending {
                    out.push(AlertDelivery {
                        finance: finance_message(&alert, &tenant_row),
                        employee: alert.employee_id.map(|e| (e, employee_message(&alert))),
                        alert,
                    });
                }
            }
            Ok(out)
        }

        pub async fn mark_alert_delivered(&self, tenant: TenantId, id: AlertId) -> CoreResult<()> {
            let mut tx = self.tenant_tx(tenant).await?;
            if store::alerts::mark_delivered(&mut tx, tenant, id, now()).await? {
                let alert = load(&mut tx, tenant, id).await?;
                let event = AuditEvent::new(
                    tenant,
                    &Actor::System,
                    "alert.delivered",
                    subject(&alert),
                    None,
                    None,
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
            Ok(())
        }
    }

    /// The lines Suspend line acts on: the alert's line, or the live lines of the employee
    /// whose budget it is about.
    async fn lines_of(tx: &mut Tx, tenant: TenantId, alert: &Alert) -> CoreResult<Vec<Line>> {
        match (alert.line_id, alert.scope.strip_prefix("employee:")) {
            (Some(line), _) => Ok(vec![required(
                store::lines::get(tx, tenant, line).await?,
                "line",
                line,
            )?]),
            (None, Some(employee)) => {
                let employee = employee
                    .parse()
                    .map_err(|e| CoreError::invalid("alert", format!("bad scope: {e}")))?;
                Ok(store::lines::list_for_employee(tx, tenant, employee).await?)
            }
            (None, None) => Err(CoreError::invalid(
                "alert",
                format!(
                    "alert {} is about {}, not one person's line: suspend lines from the portal",
                    alert.id, alert.scope
                ),
            )),
        }
    }

    async fn load(tx: &mut Tx, tenant: TenantId, id: AlertId) -> CoreResult<Alert> {
        required(store::alerts::get(tx, tenant, id).await?, "alert", id)
    }
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
