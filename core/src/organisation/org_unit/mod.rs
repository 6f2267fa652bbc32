//! Teams and cost centres: how a company groups people and charges back spend.

pub mod commands;

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids::{CostCentreId, TeamId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostCentre {
    pub id: CostCentreId,
    pub tenant_id: TenantId,
    pub code: String,
    pub name: String,
    pub created_at: OffsetDateTime,
}
