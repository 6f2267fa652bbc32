//! Movers: what follows when an employee's manager or cost centre changes, whoever changes
//! it (SCIM, the CSV import, the portal's edit). Pending requests waiting on the old manager
//! move to the new one; the cost centre change is kept, effective from the day it is made,
//! so chargeback puts spend before it on the old cost centre and from it on the new one.
//! A team change moves no request: approvals are routed by manager, finance and admin
//! roles, never by team.

use time::{Date, OffsetDateTime};

use crate::audit::Actor;
use crate::error::CoreResult;
use crate::ids::{CostCentreId, EmployeeId};
use crate::lines::request::commands::reroute_to_new_manager;
use crate::organisation::employee::Employee;
use crate::store::moves::CostCentreMove;
use crate::store::{self, Tx};

/// Called in the transaction that changes the employee from `before` to `after`.
pub(crate) async fn employee_moved(
    tx: &mut Tx,
    actor: &Actor,
    before: &Employee,
    after: &Employee,
    at: OffsetDateTime,
) -> CoreResult<()> {
    let tenant = after.tenant_id;
    if before.manager_id != after.manager_id {
        reroute_to_new_manager(
            tx,
            tenant,
            actor,
            after.id,
            before.manager_id,
            after.manager_id,
            at,
        )
        .await?;
    }
    if before.cost_centre_id != after.cost_centre_id {
        let change = CostCentreMove {
            employee_id: after.id,
            from_cost_centre_id: before.cost_centre_id,
            to_cost_centre_id: after.cost_centre_id,
            effective_on: at.date(),
        };
        store::moves::insert(tx, tenant, &change, at).await?;
    }
    Ok(())
}

/// The cost centre an employee had on `day`: before the first of their `moves` (in the
/// order they took effect) effective after it, that move's `from`; else `current`.
pub fn cost_centre_on(
    moves: &[CostCentreMove],
    employee: EmployeeId,
    current: Option<CostCentreId>,
    day: Date,
) -> Option<CostCentreId> {
    moves
        .iter()
        .find(|m| m.employee_id == employee && m.effective_on > day)
        .map_or(current, |m| m.from_cost_centre_id)
}
