//! Finance's buttons on alert messages: suspend the line, raise the cap, snooze, terminate an
//! unknown subscription. Only finance, admin and owner members may press them (Terminate only
//! admins and owners); each answers the clicker privately with what happened, and a second
//! click says who did it first.

use lineup_core::CoreError;
use lineup_core::audit::Actor;
use lineup_core::ids::{AlertId, TenantId};
use lineup_core::messaging::chat::Workspace;
use lineup_core::spend::alert::{self, Alert, AlertState};

use super::ChatFlows;
use super::conversation::{failure, private};
use crate::chat::{Answer, Speaker};

impl ChatFlows {
    pub(super) async fn act_on_alert(
        &self,
        ws: Workspace,
        speaker: &Speaker,
        action_id: &str,
        value: &str,
    ) -> Answer {
        if value == "test" {
            return private("That was a test alert: nothing to do. Real alerts act on their line.");
        }
        let Ok(id) = value.parse::<AlertId>() else {
            return private("That button is out of date.");
        };
        let t = ws.tenant;
        let alert = match self.lineup.alert(t, id).await {
            Ok(alert) => alert,
            Err(CoreError::NotFound { .. }) => {
                return private("That alert no longer exists in Lineup.");
            }
            Err(e) => return failure(&e),
        };
        let me = match self.employee(&ws, speaker).await {
            Ok(me) => me,
            Err(answer) => return answer,
        };
        match self.lineup.may_act_on_alerts(t, me).await {
            Ok(true) => {}
            Ok(false) => {
                return private(
                    "Only finance, admin or owner members of your Lineup organisation can act on \
                     alerts, and your portal account is not one of them. Ask your finance team.",
                );
            }
            Err(e) => return failure(&e),
        }
        let actor = Actor::Employee(me);
        let answer = match action_id {
            alert::SUSPEND_LINE => {
                self.lineup
                    .suspend_line_from_alert_told(t, &actor, alert.id)
                    .await
            }
            alert::RAISE_CAP => self.raise_from_alert(t, &actor, &alert).await,
            alert::SNOOZE => self.snooze_from_alert(t, &actor, &alert).await,
            alert::TERMINATE_SUBSCRIPTION => self.terminate_from_alert(t, me, &alert).await,
            other => Ok(format!("I don't know the action `{other}`.")),
        };
        answer.map(private).unwrap_or_else(|e| failure(&e))
    }

    async fn terminate_from_alert(
        &self,
        t: TenantId,
        me: lineup_core::ids::EmployeeId,
        alert: &Alert,
    ) -> Result<String, CoreError> {
        if !self.lineup.may_terminate_from_alerts(t, me).await? {
            return Ok(
                "Only admin or owner members can terminate a subscription at the \
                       provider. Ask an admin, or open the alert in the portal."
                    .into(),
            );
        }
        let Some(subscription) = alert::unknown_subscription(alert).map(str::to_owned) else {
            return Ok("This alert is not about an unknown subscription.".into());
        };
        if let Some(by) = self
            .lineup
            .last_alert_action(t, alert.id, "alert.subscription_terminated")
            .await?
        {
            return Ok(format!(
                "Subscription {subscription} was already terminated from this alert by {by}."
            ));
        }
        self.lineup
            .terminate_subscription_from_alert(t, &Actor::Employee(me), alert.id)
            .await?;
        Ok(format!(
            "Terminated subscription {subscription} at the provider and resolved the alert."
        ))
    }

    async fn raise_from_alert(
        &self,
        t: TenantId,
        actor: &Actor,
        alert: &Alert,
    ) -> Result<String, CoreError> {
        let tenant = self.lineup.tenant(t).await?;
        let Some(amount) = alert::button_raise_minor(alert, tenant.currency) else {
            return Ok("This alert is not about a budget cap, so there is no cap to raise.".into());
        };
        if let Some(by) = self
            .lineup
            .last_alert_action(t, alert.id, "alert.cap_raised")
            .await?
        {
            return Ok(format!(
                "The cap was already raised from this alert by {}; a button raises once. \
                 Raise it further from the portal's Alerts page.",
                by
            ));
        }
        self.lineup
            .raise_cap_from_alert(t, actor, alert.id, amount)
            .await?;
        Ok(format!(
            "Raised the cap by {} for {} ({}% of the cap). Lines it had suspended are resumed if \
             the spend is now under the cap.",
            tenant.money(amount),
            alert.period,
            alert::RAISE_BUTTON_PERCENT
        ))
    }

    async fn snooze_from_alert(
        &self,
        t: TenantId,
        actor: &Actor,
        alert: &Alert,
    ) -> Result<String, CoreError> {
        if alert.state == AlertState::Snoozed {
            let by = self
                .lineup
                .last_alert_action(t, alert.id, "alert.snoozed")
                .await?
                .map(|by| format!(" by {by}"))
                .unwrap_or_default();
            return Ok(format!(
                "Already snoozed{by}, until {}.",
                alert
                    .snoozed_until
                    .map(alert::minute_utc)
                    .unwrap_or_default()
            ));
        }
        let snoozed = self
            .lineup
            .snooze_alert(t, actor, alert.id, alert::SNOOZE_BUTTON_DAYS)
            .await?;
        Ok(format!(
            "Snoozed for {} days, until {}.",
            alert::SNOOZE_BUTTON_DAYS,
            snoozed
                .snoozed_until
                .map(alert::minute_utc)
                .unwrap_or_default()
        ))
    }
}
