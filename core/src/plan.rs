//! Plans: the provider's catalogue as this tenant buys it, with prices.

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{PlanId, TenantId};
use crate::money::{Bytes, Money};
use crate::provider::{PlanRef, Validity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub tenant_id: TenantId,
    pub provider: String,
    pub offering_id: String,
    pub template_id: Option<String>,
    pub name: String,
    /// `None` is unlimited.
    pub data: Option<Bytes>,
    pub validity: Validity,
    pub coverage: Vec<String>,
    pub price: Option<Money>,
    pub overage_per_gb: Option<Money>,
    pub throttle_after_cap_kbps: Option<u32>,
    pub active: bool,
    pub created_at: OffsetDateTime,
}

impl Plan {
    pub fn provider_ref(&self) -> PlanRef {
        PlanRef {
            offering_id: self.offering_id.clone(),
            template_id: self.template_id.clone(),
        }
    }
}

pub mod commands {
    use super::*;
    use crate::app::{Lineup, record, to_json};
    use crate::audit::{Actor, AuditEvent};
    use crate::error::CoreResult;
    use crate::provider::PlanKind;
    use crate::store::{self, now};

    impl Lineup {
        /// Bring the provider's base plans into this tenant's catalogue (insert or refresh).
        pub async fn sync_plans(&self, tenant: TenantId, actor: &Actor) -> CoreResult<Vec<Plan>> {
            let offered = self.provider().list_plans().await?;
            let mut tx = self.tenant_tx(tenant).await?;
            for offer in offered.into_iter().filter(|p| p.kind == PlanKind::Base) {
                let plan = Plan {
                    id: PlanId::new(),
                    tenant_id: tenant,
                    provider: self.provider().name().to_owned(),
                    offering_id: offer.offering_id,
                    template_id: offer.template_id,
                    name: offer.name,
                    data: offer.data_bytes.map(Bytes),
                    validity: offer.validity,
                    coverage: offer.coverage,
                    price: offer.price,
                    overage_per_gb: None,
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
            let plans = store::plans::list(&mut tx, tenant).await?;
            tx.commit().await?;
            Ok(plans)
        }

        pub async fn plans(&self, tenant: TenantId) -> CoreResult<Vec<Plan>> {
            let mut tx = self.tenant_tx(tenant).await?;
            Ok(store::plans::list(&mut tx, tenant).await?)
        }
    }
}
