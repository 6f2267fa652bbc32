//! Organisation settings: name, currency, chat channels, offboarding, approval limits and
//! timings, usage sync schedule.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use lineup_core::money::Currency;
use lineup_core::organisation::tenant::{GraceDefault, OffboardingAction, TenantSettings};
use lineup_core::spend::policy::CapAction;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::{Form, non_empty};
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new().route("/settings", get(show).post(save))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    form: SettingsForm,
    error: Option<String>,
}

/// The form as typed: amounts in major units, so a failed save shows exactly what was sent.
#[derive(Deserialize, Default, Clone)]
struct SettingsForm {
    name: String,
    currency: String,
    approvals_channel: Option<String>,
    finance_channel: Option<String>,
    offboarding_action: String,
    /// Absent from forms older than the grace workflow: the defaults then.
    offboarding_grace_days: Option<String>,
    offboarding_reminder_after_days: Option<String>,
    offboarding_grace_default: Option<String>,
    cap_raise_finance_threshold: String,
    cap_raise_auto_approve_max: String,
    cap_raise_max: String,
    new_line_auto_approve_max_price: Option<String>,
    approval_remind_after_hours: String,
    approval_escalate_after_hours: String,
    approval_expire_after_hours: String,
    usage_sync_cron: String,
    roaming_violation_action: String,
}

impl SettingsForm {
    fn from_tenant(tenant: &lineup_core::organisation::tenant::Tenant) -> Self {
        let s = &tenant.settings;
        let amount = |minor| tenant.currency.format_amount(minor);
        Self {
            name: tenant.name.clone(),
            currency: tenant.currency.to_string(),
            approvals_channel: s.approvals_channel.clone(),
            finance_channel: s.finance_channel.clone(),
            offboarding_action: match s.offboarding_action {
                OffboardingAction::Suspend => "suspend".into(),
                OffboardingAction::Terminate => "terminate".into(),
                OffboardingAction::Grace => "grace".into(),
            },
            offboarding_grace_days: Some(s.offboarding_grace_days.to_string()),
            offboarding_reminder_after_days: Some(s.offboarding_reminder_after_days.to_string()),
            offboarding_grace_default: Some(
                match s.offboarding_grace_default {
                    GraceDefault::Terminate => "terminate",
                    GraceDefault::KeepSuspended => "keep_suspended",
                }
                .into(),
            ),
            cap_raise_finance_threshold: amount(s.cap_raise_finance_threshold_minor),
            cap_raise_auto_approve_max: amount(s.cap_raise_auto_approve_max_minor),
            cap_raise_max: amount(s.cap_raise_max_minor),
            new_line_auto_approve_max_price: s.new_line_auto_approve_max_price_minor.map(amount),
            approval_remind_after_hours: s.approval_remind_after_hours.to_string(),
            approval_escalate_after_hours: s.approval_escalate_after_hours.to_string(),
            approval_expire_after_hours: s.approval_expire_after_hours.to_string(),
            usage_sync_cron: s.usage_sync_cron.clone(),
            roaming_violation_action: s.roaming_violation_action.as_str().to_owned(),
        }
    }

    /// Every field checked, naming the first one that is wrong.
    fn parse(&self) -> Result<(Currency, TenantSettings), PortalError> {
        let currency = Currency::parse(&self.currency)
            .map_err(|e| PortalError::invalid("currency", e.to_string()))?;
        let amount = |field: &str, text: &str| {
            currency.parse_amount(text).ok_or_else(|| {
                PortalError::invalid(
                    field,
                    format!("{text:?} is not an amount in {currency} (e.g. 25.00)"),
                )
            })
        };
        let hours = |field: &str, text: &str| {
            text.trim().parse::<i64>().map_err(|_| {
                PortalError::invalid(field, format!("{text:?} is not a whole number of hours"))
            })
        };
        let offboarding_action = match self.offboarding_action.as_str() {
            "suspend" => OffboardingAction::Suspend,
            "terminate" => OffboardingAction::Terminate,
            "grace" => OffboardingAction::Grace,
            other => {
                return Err(PortalError::invalid(
                    "offboarding_action",
                    format!("{other:?} is not suspend, terminate or grace"),
                ));
            }
        };
        let defaults = TenantSettings::default();
        let days = |field: &str, text: &Option<String>, default: i64| match non_empty(text) {
            None => Ok(default),
            Some(text) => text.trim().parse::<i64>().map_err(|_| {
                PortalError::invalid(field, format!("{text:?} is not a whole number of days"))
            }),
        };
        let offboarding_grace_days = days(
            "offboarding_grace_days",
            &self.offboarding_grace_days,
            defaults.offboarding_grace_days,
        )?;
        let offboarding_reminder_after_days = days(
            "offboarding_reminder_after_days",
            &self.offboarding_reminder_after_days,
            defaults.offboarding_reminder_after_days,
        )?;
        let offboarding_grace_default = match non_empty(&self.offboarding_grace_default) {
            None | Some("terminate") => GraceDefault::Terminate,
            Some("keep_suspended") => GraceDefault::KeepSuspended,
            Some(other) => {
                return Err(PortalError::invalid(
                    "offboarding_grace_default",
                    format!("{other:?} is not terminate or keep_suspended"),
                ));
            }
        };
        let cron = self.usage_sync_cron.trim();
        let roaming_violation_action = match CapAction::parse(&self.roaming_violation_action) {
            Some(action @ (CapAction::Alert | CapAction::Suspend)) => action,
            _ => {
                return Err(PortalError::invalid(
                    "roaming_violation_action",
                    format!(
                        "{:?} is not alert or suspend",
                        self.roaming_violation_action
                    ),
                ));
            }
        };
        let channel = |v: &Option<String>| non_empty(v).map(str::to_owned);
        let settings = TenantSettings {
            approvals_channel: channel(&self.approvals_channel),
            finance_channel: channel(&self.finance_channel),
            offboarding_action,
            offboarding_grace_days,
            offboarding_reminder_after_days,
            offboarding_grace_default,
            cap_raise_finance_threshold_minor: amount(
                "cap_raise_finance_threshold",
                &self.cap_raise_finance_threshold,
            )?,
            cap_raise_auto_approve_max_minor: amount(
                "cap_raise_auto_approve_max",
                &self.cap_raise_auto_approve_max,
            )?,
            cap_raise_max_minor: amount("cap_raise_max", &self.cap_raise_max)?,
            new_line_auto_approve_max_price_minor: non_empty(&self.new_line_auto_approve_max_price)
                .map(|v| amount("new_line_auto_approve_max_price", v))
                .transpose()?,
            approval_remind_after_hours: hours(
                "approval_remind_after_hours",
                &self.approval_remind_after_hours,
            )?,
            approval_escalate_after_hours: hours(
                "approval_escalate_after_hours",
                &self.approval_escalate_after_hours,
            )?,
            approval_expire_after_hours: hours(
                "approval_expire_after_hours",
                &self.approval_expire_after_hours,
            )?,
            usage_sync_cron: cron.to_owned(),
            roaming_violation_action,
        };
        settings.validate()?;
        Ok((currency, settings))
    }
}

async fn show(page: Page) -> Result<Response, PortalError> {
    let template = SettingsPage {
        chrome: page.chrome(),
        form: SettingsForm::from_tenant(&page.tenant),
        error: None,
    };
    page.render(&template)
}

async fn save(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PortalError> {
    match apply(&portal, &page, &form).await {
        Ok(()) => Ok(redirect_with_notice("/settings", "Settings saved")),
        Err(PortalError::Invalid { field, reason }) => {
            let template = SettingsPage {
                chrome: page.chrome(),
                form,
                error: Some(format!("{field}: {reason}")),
            };
            let mut response = page.render(&template)?;
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(e) => Err(e),
    }
}

/// Profile and settings are two audited commands; the settings are validated in full first
/// so a bad field changes nothing.
async fn apply(portal: &Portal, page: &Page, form: &SettingsForm) -> Result<(), PortalError> {
    let (currency, settings) = form.parse()?;
    let tenant = page.tenant_id();
    let actor = page.actor();
    if form.name.trim() != page.tenant.name || currency != page.tenant.currency {
        portal
            .lineup
            .update_profile(tenant, &actor, &form.name, currency)
            .await?;
    }
    if settings != page.tenant.settings {
        portal
            .lineup
            .update_settings(tenant, &actor, settings)
            .await?;
    }
    Ok(())
}
