//! A tenant: one customer company, addressed by its slug (its subdomain).

pub mod commands;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::TenantId;
use crate::money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug must be 2 to 63 characters, got {0}")]
    Length(usize),
    #[error("slug may hold only a-z, 0-9 and '-', and may not start or end with '-'")]
    Characters,
    #[error("slug {0:?} is reserved")]
    Reserved(String),
}

const RESERVED_SLUGS: [&str; 8] = [
    "www", "api", "app", "admin", "portal", "slack", "mail", "status",
];

impl Slug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let slug = input.trim().to_ascii_lowercase();
        if !(2..=63).contains(&slug.len()) {
            return Err(SlugError::Length(slug.len()));
        }
        let allowed = slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !allowed || slug.starts_with('-') || slug.ends_with('-') {
            return Err(SlugError::Characters);
        }
        if RESERVED_SLUGS.contains(&slug.as_str()) {
            return Err(SlugError::Reserved(slug));
        }
        Ok(Self(slug))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = SlugError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OffboardingAction {
    #[default]
    Suspend,
    Terminate,
    /// Suspend now; the leaver's manager chooses what becomes of each line within the grace
    /// period, and the tenant's `offboarding_grace_default` happens at its end.
    Grace,
}

/// What happens to a leaver's line at the end of its grace period when nobody chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GraceDefault {
    #[default]
    Terminate,
    /// Left suspended, for an admin to decide.
    KeepSuspended,
}

/// The longest grace period a tenant may set: a quarter.
pub const MAX_GRACE_DAYS: i64 = 90;

/// Per-tenant settings; every field has a default so older rows keep loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    pub approvals_channel: Option<String>,
    pub finance_channel: Option<String>,
    pub offboarding_action: OffboardingAction,
    /// Under the `grace` offboarding action: days the manager has to choose, when they are
    /// reminded, and what happens when nobody chose.
    pub offboarding_grace_days: i64,
    pub offboarding_reminder_after_days: i64,
    pub offboarding_grace_default: GraceDefault,
    /// Cap raises above this go to finance instead of the manager.
    pub cap_raise_finance_threshold_minor: i64,
    /// Cap raises up to this are approved by policy (0: none are).
    pub cap_raise_auto_approve_max_minor: i64,
    /// Cap raises above this are refused by policy.
    pub cap_raise_max_minor: i64,
    /// New lines on plans up to this monthly price are approved by policy (None: never).
    pub new_line_auto_approve_max_price_minor: Option<i64>,
    /// Pending approvals: remind the approver, escalate one level up, then expire.
    pub approval_remind_after_hours: i64,
    pub approval_escalate_after_hours: i64,
    pub approval_expire_after_hours: i64,
    /// When usage is pulled from the provider (cron, UTC).
    pub usage_sync_cron: String,
    /// What roaming outside the roaming presets (and without a grant) does: alert or suspend.
    pub roaming_violation_action: crate::spend::policy::CapAction,
}

impl TenantSettings {
    /// Checks every rule a save must meet, naming the first field that breaks one.
    pub fn validate(&self) -> Result<(), crate::error::CoreError> {
        use crate::error::CoreError;
        let hours = [
            (
                "approval_remind_after_hours",
                self.approval_remind_after_hours,
            ),
            (
                "approval_escalate_after_hours",
                self.approval_escalate_after_hours,
            ),
            (
                "approval_expire_after_hours",
                self.approval_expire_after_hours,
            ),
        ];
        if let Some((field, _)) = hours.iter().find(|(_, h)| *h <= 0) {
            return Err(CoreError::invalid(field, "must be at least one hour"));
        }
        if !(1..=MAX_GRACE_DAYS).contains(&self.offboarding_grace_days) {
            return Err(CoreError::invalid(
                "offboarding_grace_days",
                format!("must be 1 to {MAX_GRACE_DAYS} days"),
            ));
        }
        if !(1..self.offboarding_grace_days).contains(&self.offboarding_reminder_after_days) {
            return Err(CoreError::invalid(
                "offboarding_reminder_after_days",
                "must be at least one day and fewer days than the grace period",
            ));
        }
        if self.cap_raise_max_minor < self.cap_raise_auto_approve_max_minor {
            return Err(CoreError::invalid(
                "cap_raise_max",
                "is below the auto-approve limit",
            ));
        }
        crate::jobs::latest_tick(&self.usage_sync_cron, crate::store::now())
            .map_err(|e| CoreError::invalid("usage_sync_cron", e))?;
        Ok(())
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            approvals_channel: None,
            finance_channel: None,
            offboarding_action: OffboardingAction::Suspend,
            offboarding_grace_days: 14,
            offboarding_reminder_after_days: 7,
            offboarding_grace_default: GraceDefault::Terminate,
            cap_raise_finance_threshold_minor: 5_000,
            cap_raise_auto_approve_max_minor: 0,
            cap_raise_max_minor: 50_000,
            new_line_auto_approve_max_price_minor: None,
            approval_remind_after_hours: 24,
            approval_escalate_after_hours: 48,
            approval_expire_after_hours: 120,
            usage_sync_cron: "0 0 * * * *".to_owned(),
            roaming_violation_action: crate::spend::policy::CapAction::Alert,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub currency: Currency,
    pub settings: TenantSettings,
    pub created_at: OffsetDateTime,
}

impl Tenant {
    pub fn money(&self, minor: i64) -> Money {
        Money::new(minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_and_its_reminder_are_checked() {
        let grace = |days, remind| TenantSettings {
            offboarding_grace_days: days,
            offboarding_reminder_after_days: remind,
            ..TenantSettings::default()
        };
        assert!(grace(14, 7).validate().is_ok());
        assert!(grace(2, 1).validate().is_ok());
        let field = |s: TenantSettings| match s.validate() {
            Err(crate::error::CoreError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(grace(0, 1)), "offboarding_grace_days");
        assert_eq!(field(grace(91, 7)), "offboarding_grace_days");
        assert_eq!(field(grace(14, 14)), "offboarding_reminder_after_days");
        assert_eq!(field(grace(14, 0)), "offboarding_reminder_after_days");
    }

    #[test]
    fn slugs_are_dns_labels() {
        assert_eq!(Slug::parse("Acme-EU").unwrap().as_str(), "acme-eu");
        assert_eq!(Slug::parse("a"), Err(SlugError::Length(1)));
        assert_eq!(Slug::parse("-acme"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("ac me"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("www"), Err(SlugError::Reserved("www".into())));
    }
}
