//! Tenant commands and queries: create a tenant, sign up a new organisation with its owner,
//! find a tenant by slug or domain, and change its profile and settings.

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::user::Role;
use crate::ids::UserId;
use crate::person_name::PersonName;
use crate::store::{self, now, users::UserRow};

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
        let owner_name =
            PersonName::parse(owner_name).map_err(|e| CoreError::invalid("name", e))?;
        let slug_taken = || CoreError::invalid("slug", format!("{} is already taken", new.slug));
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
            crate::identity::user::tell_of_sign_up_attempt(&mut tx, &secrets, &existing, &new.name)
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
            name: owner_name.into(),
            password_hash: Some(password_hash),
            created_at: now(),
            email_verified_at: None,
        };
        store::users::insert(&mut tx, &user).await?;
        store::users::add_membership(&mut tx, tenant.id, user.id, Role::Owner.as_str()).await?;
        let url = |token: &str| verify_link(tenant.slug.as_str(), token);
        crate::identity::user::send_verification(
            &mut tx,
            &secrets,
            tenant.id,
            &user,
            &tenant.name,
            &url,
        )
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
        let mut tx = self.tenant_read_tx(tenant).await?;
        let found = store::tenants::get(&mut tx, tenant).await?;
        found.ok_or_else(|| CoreError::not_found("tenant", tenant))
    }

    /// Resolving a host name to its tenant necessarily looks across tenants.
    pub async fn tenant_by_slug(&self, slug: &Slug) -> CoreResult<Option<Tenant>> {
        let mut tx = self.store().system_read().await?;
        Ok(store::tenants::find_by_slug(&mut tx, slug).await?)
    }

    /// The tenant whose verified custom domain is `domain`.
    pub async fn tenant_by_domain(&self, domain: &str) -> CoreResult<Option<Tenant>> {
        let mut tx = self.store().system_read().await?;
        Ok(store::tenants::find_by_verified_domain(&mut tx, domain).await?)
    }
}

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
        if currency != before.currency && !store::lines::list(&mut tx, tenant).await?.is_empty() {
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
