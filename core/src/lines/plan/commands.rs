//! Plan commands and queries: sync the catalogue from the provider, set the tenant's prices,
//! and list its plans.

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::ProviderConnectionId;
use crate::provider::PlanKind;
use crate::store::{self, now};

impl Lineup {
    /// Bring the base plans of each of the tenant's provider connections (or of the
    /// server-wide account, without one) into its catalogue, keyed by connection (insert or
    /// refresh); plans no connection offers any more stop being offered. A connection that
    /// cannot be reached keeps its plans as they were; the sync fails only when none answers.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sync_plans(&self, tenant: TenantId, actor: &Actor) -> CoreResult<Vec<Plan>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let connections = store::provider_connections::list(&mut tx, tenant).await?;
        drop(tx);
        let catalogues: Vec<Option<ProviderConnectionId>> = if connections.is_empty() {
            vec![None]
        } else {
            connections.iter().map(|c| Some(c.id)).collect()
        };
        let mut fetched = Vec::new();
        let mut unreachable = Vec::new();
        let mut first_error = None;
        for catalogue in catalogues {
            let outcome = async {
                let provider = self.provider_of_connection(tenant, catalogue).await?;
                let offered = provider.list_plans().await?;
                Ok::<_, CoreError>((provider.name(), offered))
            }
            .await;
            match outcome {
                Ok((vendor, offered)) => fetched.push((catalogue, vendor, offered)),
                Err(e) if catalogue.is_some() => {
                    tracing::warn!(%tenant, connection = ?catalogue, error = %e, "a provider's plans could not be synced");
                    unreachable.push(catalogue);
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if fetched.is_empty()
            && let Some(error) = first_error
        {
            return Err(error);
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let mut kept = Vec::new();
        for (catalogue, vendor, offered) in fetched {
            for offer in offered.into_iter().filter(|p| p.kind == PlanKind::Base) {
                kept.push((catalogue, offer.offering_id.clone()));
                let plan = Plan {
                    id: PlanId::new(),
                    tenant_id: tenant,
                    provider: vendor.to_owned(),
                    provider_connection_id: catalogue,
                    offering_id: offer.offering_id,
                    template_id: offer.template_id,
                    name: offer.name,
                    data: offer.data_bytes.map(Bytes),
                    validity: offer.validity,
                    coverage: offer.coverage,
                    price: offer.price,
                    // The vendor publishes no overage or roaming prices: the default rate
                    // card applies until an admin sets the tenant's own (kept on re-sync).
                    overage_per_gb: offer.price.map(|p| {
                        Money::new(
                            crate::spend::pricing::DEFAULT_OVERAGE_PER_GB_MINOR,
                            p.currency,
                        )
                    }),
                    roaming_per_gb_minor: crate::spend::pricing::default_zone_rates(),
                    throttle_after_cap_kbps: offer.throttle_after_cap_kbps,
                    active: true,
                    created_at: now(),
                };
                let id = store::plans::upsert(&mut tx, tenant, &plan).await?;
                let event = AuditEvent::new(
                    tenant,
                    actor,
                    "plan.synced",
                    ("plan", id.to_string()),
                    None,
                    to_json(&plan),
                );
                record(&mut tx, &event).await?;
            }
        }
        let gone = store::plans::list(&mut tx, tenant)
            .await?
            .into_iter()
            .filter(|p| p.active && !unreachable.contains(&p.provider_connection_id))
            .filter(|p| !kept.contains(&(p.provider_connection_id, p.offering_id.clone())));
        for plan in gone {
            store::plans::retire(&mut tx, tenant, plan.id).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "plan.retired",
                ("plan", plan.id.to_string()),
                to_json(&plan),
                None,
            );
            record(&mut tx, &event).await?;
        }
        let plans = store::plans::list(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(plans)
    }

    /// Set what this tenant pays beyond a plan's bundle: overage and roaming per GB.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, plan_id = %plan_id))]
    pub async fn set_plan_prices(
        &self,
        tenant: TenantId,
        actor: &Actor,
        plan_id: PlanId,
        overage_per_gb_minor: i64,
        roaming_per_gb_minor: ZoneRates,
    ) -> CoreResult<Plan> {
        if overage_per_gb_minor < 0 {
            return Err(CoreError::invalid("overage_per_gb", "must not be negative"));
        }
        if let Some((zone, _)) = roaming_per_gb_minor.iter().find(|(_, rate)| **rate < 0) {
            return Err(CoreError::invalid(
                "roaming_per_gb",
                format!("the {} price must not be negative", zone.as_str()),
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let before = required(
            store::plans::get(&mut tx, tenant, plan_id).await?,
            "plan",
            plan_id,
        )?;
        store::plans::set_prices(
            &mut tx,
            tenant,
            plan_id,
            overage_per_gb_minor,
            &roaming_per_gb_minor,
        )
        .await?;
        let after = required(
            store::plans::get(&mut tx, tenant, plan_id).await?,
            "plan",
            plan_id,
        )?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "plan.prices_set",
            ("plan", plan_id.to_string()),
            to_json(&before),
            to_json(&after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn plans(&self, tenant: TenantId) -> CoreResult<Vec<Plan>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::plans::list(&mut tx, tenant).await?)
    }
}
