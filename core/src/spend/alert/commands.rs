//! Alert commands and queries: list alerts and the lines behind them, act on one
//! (acknowledge, resolve, snooze, suspend its line, raise its cap, terminate its unknown
//! subscription), and hand undelivered ones to the chat adapters.

use serde_json::json;
use time::Duration;

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::lines::line::{Line, LineState};
use crate::provider::{
    IdempotencyKey, Operation, OperationStatus, ProviderError, SubscriptionState,
};
use crate::spend::policy::CapScope;
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
    pub async fn alerts(&self, tenant: TenantId, filter: &AlertFilter) -> CoreResult<Vec<Alert>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::alerts::list(&mut tx, tenant, filter).await?)
    }

    pub async fn alert(&self, tenant: TenantId, id: AlertId) -> CoreResult<Alert> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        load(&mut tx, tenant, id).await
    }

    /// The lines the alert's Suspend line acts on, as they are now.
    pub async fn alert_lines(&self, tenant: TenantId, id: AlertId) -> CoreResult<Vec<Line>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
        let roles = store::users::roles_of_employee(&mut tx, tenant, employee).await?;
        Ok(roles
            .iter()
            .any(|r| matches!(r.as_str(), "finance" | "admin" | "owner")))
    }

    /// Terminate needs more than finance: it ends a subscription someone may be using, so
    /// the clicking employee must be an owner or admin (the portal's ManageLines).
    pub async fn may_terminate_from_alerts(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<bool> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let roles = store::users::roles_of_employee(&mut tx, tenant, employee).await?;
        Ok(roles
            .iter()
            .any(|r| matches!(r.as_str(), "admin" | "owner")))
    }

    /// Terminate the unknown subscription an alert is about, at the provider, and resolve the
    /// alert. The idempotency key is the alert's, so a double click or a retry after a lost
    /// answer terminates once; a subscription already terminated counts as done. Callers
    /// check the role ([`Self::may_terminate_from_alerts`], the portal's ManageLines).
    #[tracing::instrument(skip_all, fields(tenant = %tenant, alert = %id))]
    pub async fn terminate_subscription_from_alert(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: AlertId,
    ) -> CoreResult<Alert> {
        let alert = self.alert(tenant, id).await?;
        let subscription = unknown_subscription(&alert)
            .ok_or_else(|| {
                CoreError::invalid(
                    "alert",
                    format!(
                        "alert {id} ({}) is not about an unknown subscription",
                        alert.kind.as_str()
                    ),
                )
            })?
            .to_owned();
        let provider = self.provider_for(tenant).await?;
        let key = IdempotencyKey(format!("alert-terminate:{id}"));
        let settled = match provider.terminate(&subscription, &key).await {
            Ok(placed) => Some(
                self.wait_for_order(provider.as_ref(), placed, self.poll_policy())
                    .await?,
            ),
            // Refused because it is already terminated (by us earlier, or by someone else).
            Err(ProviderError::InvalidState { .. })
                if provider.get_subscription(&subscription).await?.state
                    == SubscriptionState::Terminated =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(Operation {
            status: OperationStatus::Failed { code, message },
            ..
        }) = settled
        {
            return Err(CoreError::OperationFailed {
                operation: "terminate",
                reason: format!("{code}: {message}"),
            });
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "alert.subscription_terminated",
            subject(&alert),
            None,
            Some(json!({ "subscription_id": subscription })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.resolve_alert(tenant, actor, id).await
    }

    /// Who last did `action` (e.g. `alert.cap_raised`) on the alert, and when: what a
    /// second click is told.
    pub async fn last_alert_action(
        &self,
        tenant: TenantId,
        id: AlertId,
        action: &str,
    ) -> CoreResult<Option<AlertActionBy>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.store().system_read().await?;
        let tenants = store::jobs::list_tenants(&mut tx).await?;
        drop(tx);
        let mut out = Vec::new();
        for tenant in tenants {
            let mut tx = self.tenant_read_tx(tenant).await?;
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
