//! A tenant: one customer company, addressed by its slug (its subdomain).

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
}

/// Per-tenant settings; every field has a default so older rows keep loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    pub approvals_channel: Option<String>,
    pub finance_channel: Option<String>,
    pub offboarding_action: OffboardingAction,
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
    pub roaming_violation_action: crate::policy::CapAction,
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
            cap_raise_finance_threshold_minor: 5_000,
            cap_raise_auto_approve_max_minor: 0,
            cap_raise_max_minor: 50_000,
            new_line_auto_approve_max_price_minor: None,
            approval_remind_after_hours: 24,
            approval_escalate_after_hours: 48,
            approval_expire_after_hours: 120,
            usage_sync_cron: "0 0 * * * *".to_owned(),
            roaming_violation_action: crate::policy::CapAction::Alert,
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
    fn slugs_are_dns_labels() {
        assert_eq!(Slug::parse("Acme-EU").unwrap().as_str(), "acme-eu");
        assert_eq!(Slug::parse("a"), Err(SlugError::Length(1)));
        assert_eq!(Slug::parse("-acme"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("ac me"), Err(SlugError::Characters));
        assert_eq!(Slug::parse("www"), Err(SlugError::Reserved("www".into())));
    }
}

pub mod commands {
    use super::*;
    use crate::app::{Lineup, record, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::email::Email;
    use crate::error::{CoreError, CoreResult};
    use crate::ids::UserId;
    use crate::store::{self, now, users::UserRow};
    use crate::user::Role;

    #[derive(Debug, Clone)]
    pub struct NewTenant {
        pub slug: Slug,
        pub name: String,
        pub currency: Currency,
    }

    impl Lineup {
        #[tracing::instrument(skip_all)]
        pub async fn create_tenant(&self, actor: &Actor, new: NewTenant) -> CoreResult<Tenant> {
            if new.name.trim().is_empty() {
                return Err(CoreError::invalid("name", "must not be empty"));
            }
            let tenant = Tenant {
                id: TenantId::new(),
                slug: new.slug,
                name: new.name.trim().to_owned(),
                currency: new.currency,
                settings: TenantSettings::default(),
                created_at: now(),
            };
            let mut tx = self.store().system().await?;
            match store::tenants::insert(&mut tx, &tenant).await {
                Err(e) if e.is_unique_violation() => {
                    return Err(CoreError::invalid(
                        "slug",
                        format!("{} is already taken", tenant.slug),
                    ));
                }
                other => other?,
            }
            // An operator created it: it may use the server-wide provider account.
            store::provider_connections::set_uses_server_provider(&mut tx, tenant.id, true).await?;
            let event = AuditEvent::new(
                tenant.id,
                actor,
                "tenant.created",
                ("tenant", tenant.id.to_string()),
                None,
                to_json(&tenant),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(tenant)
        }

        /// A new organisation and its first owner, together or not at all. The owner's
        /// account cannot sign in until they open the link emailed to the address
        /// (`verify_link` turns the new tenant's slug and the token into its URL). When the
        /// address already has an account, nothing is created and its owner is emailed a
        /// notice instead; the caller answers the same either way ("check your email"), and
        /// the password is hashed on both paths, so neither answer nor timing tells which.
        pub async fn sign_up(
            &self,
            new: NewTenant,
            email: &Email,
            owner_name: &str,
            password: &str,
            verify_link: &(dyn Fn(&str, &str) -> String + Sync),
        ) -> CoreResult<()> {
            if new.name.trim().is_empty() {
                return Err(CoreError::invalid("organisation", "must not be empty"));
            }
            if owner_name.trim().is_empty() {
                return Err(CoreError::invalid("name", "must not be empty"));
            }
            let slug_taken =
                || CoreError::invalid("slug", format!("{} is already taken", new.slug));
            {
                let mut tx = self.store().system().await?;
                if store::tenants::find_by_slug(&mut tx, &new.slug)
                    .await?
                    .is_some()
                {
                    return Err(slug_taken());
                }
            }
            let secrets = self.secrets()?.clone();
            let password_hash = self.hash_password(password).await?;
            let mut tx = self.store().system().await?;
            if let Some(existing) = store::users::find_by_email(&mut tx, email.as_str()).await? {
                crate::user::tell_of_sign_up_attempt(&mut tx, &secrets, &existing, &new.name)
                    .await?;
                tx.commit().await?;
                return Ok(());
            }
            let tenant = Tenant {
                id: TenantId::new(),
                slug: new.slug.clone(),
                name: new.name.trim().to_owned(),
                currency: new.currency,
                settings: TenantSettings::default(),
                created_at: now(),
            };
            match store::tenants::insert(&mut tx, &tenant).await {
                Err(e) if e.is_unique_violation() => return Err(slug_taken()),
                other => other?,
            }
            let user = UserRow {
                id: UserId::new(),
                email: email.to_string(),
                name: owner_name.trim().to_owned(),
                password_hash: Some(password_hash),
                created_at: now(),
                email_verified_at: None,
            };
            store::users::insert(&mut tx, &user).await?;
            store::users::add_membership(&mut tx, tenant.id, user.id, Role::Owner.as_str()).await?;
            let url = |token: &str| verify_link(tenant.slug.as_str(), token);
            crate::user::send_verification(&mut tx, &secrets, tenant.id, &user, &tenant.name, &url)
                .await?;
            let actor = Actor::User(user.id);
            for event in [
                AuditEvent::new(
                    tenant.id,
                    &actor,
                    "tenant.created",
                    ("tenant", tenant.id.to_string()),
                    None,
                    to_json(&tenant),
                ),
                AuditEvent::new(
                    tenant.id,
                    &actor,
                    "membership.created",
                    ("user", user.id.to_string()),
                    None,
                    Some(serde_json::json!({ "email": email, "role": Role::Owner })),
                ),
                AuditEvent::new(
                    tenant.id,
                    &actor,
                    "user.verification_sent",
                    ("user", user.id.to_string()),
                    None,
                    Some(serde_json::json!({ "email": email })),
                ),
            ] {
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub async fn tenant(&self, tenant: TenantId) -> CoreResult<Tenant> {
            let mut tx = self.tenant_tx(tenant).await?;
            let found = store::tenants::get(&mut tx, tenant).await?;
            found.ok_or_else(|| CoreError::not_found("tenant", tenant))
        }

        /// Resolving a host name to its tenant necessarily looks across tenants.
        pub async fn tenant_by_slug(&self, slug: &Slug) -> CoreResult<Option<Tenant>> {
            let mut tx = self.store().system().await?;
            Ok(store::tenants::find_by_slug(&mut tx, slug).await?)
        }

        /// The tenant whose verified custom domain is `domain`.
        pub async fn tenant_by_domain(&self, domain: &str) -> CoreResult<Option<Tenant>> {
            let mut tx = self.store().system().await?;
            Ok(store::tenants::find_by_verified_domain(&mut tx, domain).await?)
        }
    }
}

pub mod settings_commands {
    use super::*;
    use crate::app::{Lineup, record, required, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::{CoreError, CoreResult};
    use crate::store;

    impl Lineup {
        #[tracing::instrument(skip_all, fields(tenant = %tenant))]
        pub async fn update_settings(
            &self,
            tenant: TenantId,
            actor: &Actor,
            settings: TenantSettings,
        ) -> CoreResult<Tenant> {
            settings.validate()?;
            let mut tx = self.tenant_tx(tenant).await?;
            let before = required(
                store::tenants::get(&mut tx, tenant).await?,
                "tenant",
                tenant,
            )?;
            store::tenants::update_settings(&mut tx, tenant, &settings).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "tenant.settings_updated",
                ("tenant", tenant.to_string()),
                to_json(&before.settings),
                to_json(&settings),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(Tenant { settings, ..before })
        }

        /// Rename the organisation or change its currency. The currency is fixed once lines
        /// exist: their prices and spend are in it.
        #[tracing::instrument(skip_all, fields(tenant = %tenant))]
        pub async fn update_profile(
            &self,
            tenant: TenantId,
            actor: &Actor,
            name: &str,
            currency: Currency,
        ) -> CoreResult<Tenant> {
            let name = name.trim();
            if name.is_empty() {
                return Err(CoreError::invalid("name", "must not be empty"));
            }
            let mut tx = self.tenant_tx(tenant).await?;
            let before = required(
                store::tenants::get(&mut tx, tenant).await?,
                "tenant",
                tenant,
            )?;
            if currency != before.currency && !store::lines::list(&mut tx, tenant).await?.is_empty()
            {
                return Err(CoreError::invalid(
                    "currency",
                    format!(
                        "stays {} because lines already exist; their prices and spend are in it",
                        before.currency
                    ),
                ));
            }
            store::tenants::update_profile(&mut tx, tenant, name, &currency).await?;
            let after = Tenant {
                name: name.to_owned(),
                currency,
                ..before.clone()
            };
            let event = AuditEvent::new(
                tenant,
                actor,
                "tenant.profile_updated",
                ("tenant", tenant.to_string()),
                Some(serde_json::json!({ "name": before.name, "currency": before.currency })),
                Some(serde_json::json!({ "name": after.name, "currency": after.currency })),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(after)
        }
    }
}
