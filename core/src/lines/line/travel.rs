//! Travel eSIMs: a second line an approver chose instead of roaming on the home line, which
//! ends with the trip. The sweep ends each one the day after its trip: at the provider where
//! it can terminate a line, otherwise (a travel package runs out by itself) in Lineup only.

use serde::{Deserialize, Serialize};
use time::Date;

use super::{Line, LineEvent};
use crate::app::{Lineup, record, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::CoreResult;
use crate::ids::{EmployeeId, LineId, RequestId, TenantId};
use crate::provider::vendor::VendorKind;
use crate::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TravelEsimState {
    Active,
    Ended,
}

impl TravelEsimState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Ended]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A travel eSIM line and the trip it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TravelEsim {
    pub line_id: LineId,
    pub tenant_id: TenantId,
    pub employee_id: EmployeeId,
    pub request_id: RequestId,
    pub country: String,
    /// The trip's last day; the line ends the day after.
    pub ends_on: Date,
    pub state: TravelEsimState,
}

impl Lineup {
    /// End the travel eSIMs whose trip is over by `today`, across tenants, auditing each.
    /// Returns the lines ended.
    pub async fn sweep_travel_esims(&self, today: Date) -> CoreResult<Vec<Line>> {
        let mut tx = self.store().system_read().await?;
        let due = store::travel_esims::due(&mut tx, today).await?;
        drop(tx);
        let mut ended = Vec::new();
        for travel in due {
            let tenant = travel.tenant_id;
            let actor = Actor::System;
            let mut tx = self.tenant_tx(tenant).await?;
            let line = self.load_line(&mut tx, tenant, travel.line_id).await?;
            drop(tx);
            let terminates =
                VendorKind::parse(&line.provider).is_none_or(|kind| kind.capabilities().terminate);
            let line = if !line.state.is_live() {
                line
            } else if terminates {
                let key = format!("travel-end:{}", line.id);
                self.terminate_line(tenant, &actor, line.id, Some(key))
                    .await?
            } else {
                let mut tx = self.tenant_tx(tenant).await?;
                let line = self
                    .transition(&mut tx, &actor, &line, LineEvent::Terminate, |_| {})
                    .await?;
                tx.commit().await?;
                line
            };
            let mut tx = self.tenant_tx(tenant).await?;
            if store::travel_esims::end(&mut tx, tenant, line.id).await? {
                let mut after = travel.clone();
                after.state = TravelEsimState::Ended;
                let event = AuditEvent::new(
                    tenant,
                    &actor,
                    "line.travel_esim_ended",
                    ("line", line.id.to_string()),
                    to_json(&travel),
                    to_json(&after),
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
            ended.push(line);
        }
        Ok(ended)
    }

    /// The employee's travel eSIMs, newest trip first.
    pub async fn travel_esims_of(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<Vec<TravelEsim>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::travel_esims::list_for_employee(&mut tx, tenant, employee).await?)
    }
}
