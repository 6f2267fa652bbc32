//! Custom domain commands and queries: list, add, verify over DNS and remove a tenant's
//! domains, and prune claims never verified.

use time::OffsetDateTime;

use super::*;
use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::identity::session::random_token;
use crate::ids::TenantId;
use crate::store::{self, domains::DomainRow, now};

impl Lineup {
    pub async fn custom_domains(&self, tenant: TenantId) -> CoreResult<Vec<CustomDomain>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let rows = store::domains::list(&mut tx, tenant).await?;
        Ok(rows.into_iter().map(CustomDomain::from).collect())
    }

    /// Register `domain` for `tenant`, unverified, with a fresh challenge. `portal_domain`
    /// is Lineup's own base domain: names under it are tenants' subdomains, never custom.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, domain = domain))]
    pub async fn add_custom_domain(
        &self,
        tenant: TenantId,
        actor: &Actor,
        domain: &str,
        portal_domain: &str,
    ) -> CoreResult<CustomDomain> {
        let domain = parse_domain(domain)?;
        if domain == portal_domain || domain.ends_with(&format!(".{portal_domain}")) {
            return Err(CoreError::invalid(
                "domain",
                format!("{domain} is part of Lineup's own domain; your portal already lives there"),
            ));
        }
        self.expire_stale_domain_claims(Some(&domain), now())
            .await?;
        let mut tx = self.tenant_tx(tenant).await?;
        if store::domains::get(&mut tx, tenant, &domain)
            .await?
            .is_some()
        {
            return Err(CoreError::invalid(
                "domain",
                format!("{domain} is already added"),
            ));
        }
        let row = DomainRow {
            domain: domain.clone(),
            verification_token: random_token()[..32].to_owned(),
            verified_at: None,
            created_at: now(),
        };
        match store::domains::insert(&mut tx, tenant, &row).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::Conflict(format!(
                    "{domain} is already claimed by another organisation"
                )));
            }
            other => other?,
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "domain.added",
            ("domain", domain.clone()),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Look for the challenge record and mark the domain verified when it is there. The
    /// error says what was found instead, so the admin can fix their DNS.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, domain = domain))]
    pub async fn verify_custom_domain(
        &self,
        tenant: TenantId,
        actor: &Actor,
        domain: &str,
        resolver: &dyn TxtResolver,
    ) -> CoreResult<CustomDomain> {
        let domain = parse_domain(domain).map_err(|_| CoreError::not_found("domain", domain))?;
        let current: CustomDomain = {
            let mut tx = self.tenant_tx(tenant).await?;
            let row = store::domains::get(&mut tx, tenant, &domain).await?;
            required(row, "domain", &domain)?.into()
        };
        if current.verified_at.is_some() {
            return Ok(current);
        }
        // No transaction is held while DNS answers.
        let found = resolver.txt(&current.record_name).await.map_err(|e| {
            CoreError::invalid(
                "domain",
                format!("looking up {} failed: {e}", current.record_name),
            )
        })?;
        if !found.iter().any(|v| v.trim() == current.record_value) {
            let seen = if found.is_empty() {
                "no TXT record there yet".to_owned()
            } else {
                format!("only {found:?}")
            };
            return Err(CoreError::invalid(
                "domain",
                format!(
                    "{} should hold {}; DNS shows {seen}. New records can take a while to appear",
                    current.record_name, current.record_value
                ),
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let at = now();
        store::domains::mark_verified(&mut tx, tenant, &domain, at).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "domain.verified",
            ("domain", domain.clone()),
            None,
            Some(serde_json::json!({ "record": current.record_name })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(CustomDomain {
            verified_at: Some(at),
            ..current
        })
    }

    /// Remove every claim left unverified for longer than [`CLAIM_LIFETIME`] (the worker's
    /// sweep). Returns how many were removed.
    pub async fn prune_stale_domain_claims(&self, now: OffsetDateTime) -> CoreResult<usize> {
        self.expire_stale_domain_claims(None, now).await
    }

    /// Remove stale claims (of `domain` only, when given), each with an audit event in the
    /// tenant that loses it.
    async fn expire_stale_domain_claims(
        &self,
        domain: Option<&str>,
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        let claimed_before = now - CLAIM_LIFETIME;
        let mut tx = self.store().system().await?;
        let mut expired = 0;
        for claim in store::domains::stale_claims(&mut tx, claimed_before, domain).await? {
            let tenant = claim.tenant_id;
            if !store::domains::delete_stale(&mut tx, tenant, &claim.domain, claimed_before).await?
            {
                continue;
            }
            let event = AuditEvent::new(
                tenant,
                &Actor::System,
                "domain.expired",
                ("domain", claim.domain.clone()),
                Some(serde_json::json!({ "created_at": claim.created_at, "verified_at": null })),
                Some(serde_json::json!({
                    "reason": format!("not verified within {} days", CLAIM_LIFETIME.whole_days())
                })),
            );
            record(&mut tx, &event).await?;
            expired += 1;
        }
        tx.commit().await?;
        Ok(expired)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, domain = domain))]

    pub async fn remove_custom_domain(
        &self,
        tenant: TenantId,
        actor: &Actor,
        domain: &str,
    ) -> CoreResult<()> {
        let domain = parse_domain(domain).map_err(|_| CoreError::not_found("domain", domain))?;
        let mut tx = self.tenant_tx(tenant).await?;
        let row = required(
            store::domains::get(&mut tx, tenant, &domain).await?,
            "domain",
            &domain,
        )?;
        store::domains::delete(&mut tx, tenant, &domain).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "domain.removed",
            ("domain", domain.clone()),
            Some(serde_json::json!({ "verified_at": row.verified_at })),
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}
