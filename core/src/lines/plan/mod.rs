//! Plans: the provider's catalogue as this tenant buys it, with prices.

pub mod commands;

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{PlanId, ProviderConnectionId, TenantId};
use crate::money::{Bytes, Money};
use crate::provider::{PlanRef, Validity};
use crate::spend::pricing::ZoneRates;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: PlanId,
    pub tenant_id: TenantId,
    pub provider: String,
    /// The connection whose catalogue the plan is in (`None`: the server-wide account's).
    pub provider_connection_id: Option<ProviderConnectionId>,
    pub offering_id: String,
    pub template_id: Option<String>,
    pub name: String,
    /// `None` is unlimited.
    pub data: Option<Bytes>,
    pub validity: Validity,
    pub coverage: Vec<String>,
    pub price: Option<Money>,
    pub overage_per_gb: Option<Money>,
    /// Roaming outside the plan's coverage, per GB by zone.
    pub roaming_per_gb_minor: ZoneRates,
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
