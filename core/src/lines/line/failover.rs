//! Where a new line is ordered, and moving an order that could not be placed to the next
//! provider its routing rule allows.
//!
//! An order fails over only while nothing was ordered: the provider answered 5xx or could
//! not be reached for every one of the adapter's attempts, and no order id was ever recorded
//! for it. The line keeps its id and issue key (so a repeated request still finds it), its
//! new connection and equivalent plan are written with a `line.failed_over` audit event, and
//! a fresh order operation with its own idempotency key is placed at the new provider. Lines
//! that exist never move: their calls go to their own connection (see `commands`).

use serde_json::json;

use super::Line;
use super::commands::{DEFINITIVE, new_operation};
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ProviderConnectionId, TeamId, TenantId};
use crate::lines::plan::Plan;
use crate::lines::request::commands::plan_label;
use crate::organisation::employee::Employee;
use crate::provider::ProviderError;
use crate::provider::routing::{OrderFacts, candidates, equivalent_plan};
use crate::store::operations::{OperationKind, OperationState, ProviderOperation};
use crate::store::{self, Tx};

impl Lineup {
    /// The connection (and its plan, `wanted` or its equivalent there) a new order goes to,
    /// skipping `tried` connections: the first candidate of the tenant's routing whose
    /// circuit admits an order. `None` when the tenant has no connection of its own (the
    /// server-wide account takes the plan as it is) or no untried candidate is healthy.
    /// When every candidate's circuit is open a first order still goes to the first one:
    /// it waits and retries there, as a tenant with a single provider does.
    pub(super) async fn route_new_order(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        wanted: &Plan,
        team: Option<TeamId>,
        tried: &[ProviderConnectionId],
    ) -> CoreResult<Option<(Option<ProviderConnectionId>, Plan)>> {
        let connections = store::provider_connections::list(tx, tenant).await?;
        if connections.is_empty() {
            return Ok(None);
        }
        let ids: Vec<ProviderConnectionId> = connections.iter().map(|c| c.id).collect();
        let rules = store::provider_routes::list(tx, tenant).await?;
        let plans = store::plans::list(tx, tenant).await?;
        let order = OrderFacts { plan: wanted, team };
        let options: Vec<(ProviderConnectionId, Plan)> = candidates(&rules, &ids, &order)
            .into_iter()
            .filter(|id| !tried.contains(id))
            .filter_map(|id| {
                let plan = if wanted.provider_connection_id == Some(id) {
                    Some(wanted)
                } else {
                    equivalent_plan(
                        wanted,
                        plans
                            .iter()
                            .filter(|p| p.provider_connection_id == Some(id)),
                    )
                };
                plan.map(|p| (id, p.clone()))
            })
            .collect();
        if options.is_empty() && tried.is_empty() {
            return Err(CoreError::invalid(
                "plan_id",
                format!(
                    "no connected provider that may take this order offers {} or an equivalent plan",
                    plan_label(wanted)
                ),
            ));
        }
        let healthy = options.iter().position(|(id, _)| {
            self.circuits()
                .existing(*id)
                .is_none_or(|circuit| circuit.admits_new_order())
        });
        let chosen = match (healthy, tried.is_empty()) {
            (Some(index), _) => Some(index),
            (None, true) => Some(0),
            (None, false) => None,
        };
        Ok(chosen.map(|index| {
            let (id, plan) = options[index].clone();
            (Some(id), plan)
        }))
    }

    /// Move a line whose order could not be placed (`error`, no order id) to the next
    /// provider its routing allows. `None`: there is none, and the failure stands.
    pub(super) async fn fail_over(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line: &Line,
        op: &ProviderOperation,
        employee: &Employee,
        error: &ProviderError,
    ) -> CoreResult<Option<(Line, ProviderOperation)>> {
        let mut tried: Vec<ProviderConnectionId> = op
            .payload
            .get("tried")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let Some(from) = line.provider_connection_id else {
            return Ok(None);
        };
        tried.push(from);
        let mut tx = self.tenant_tx(tenant).await?;
        let plan = required(
            store::plans::get(&mut tx, tenant, line.plan_id).await?,
            "plan",
            line.plan_id,
        )?;
        let routed = self
            .route_new_order(&mut tx, tenant, &plan, employee.team_id, &tried)
            .await?;
        drop(tx);
        let Some((to, plan)) = routed else {
            return Ok(None);
        };
        let provider = self.provider_of_connection(tenant, to).await?;
        let mut tx = self.tenant_tx(tenant).await?;
        let current = self.load_line(&mut tx, tenant, line.id).await?;
        if current.provider_connection_id != line.provider_connection_id
            || current.state != line.state
        {
            // Another caller moved it first; it drives the line from here.
            return Ok(None);
        }
        let reason = format!("{error}; the order moves to another provider");
        let mut payload = op.payload.clone();
        payload[DEFINITIVE] = json!(true);
        payload["failed_over_to"] = json!(to);
        store::operations::set_payload(&mut tx, tenant, op.id, &payload).await?;
        store::operations::settle(
            &mut tx,
            tenant,
            op.id,
            OperationState::Failed,
            Some(&reason),
        )
        .await?;
        let moved = self
            .rewrite(&mut tx, actor, &current, "line.failed_over", |l| {
                l.provider_connection_id = to;
                l.provider = provider.name().to_owned();
                l.plan_id = plan.id;
            })
            .await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "order.failed_over",
            ("line", line.id.to_string()),
            to_json(&json!({ "connection": from, "error": error.to_string() })),
            to_json(&json!({ "connection": to, "plan_id": plan.id })),
        );
        record(&mut tx, &event).await?;
        let next = new_operation(
            tenant,
            line.id,
            OperationKind::Provision,
            None,
            json!({ "tried": tried }),
        );
        store::operations::insert(&mut tx, tenant, &next).await?;
        tx.commit().await?;
        tracing::info!(%tenant, line = %line.id, from = %from, to = ?to, "a new line's order failed over");
        Ok(Some((moved, next)))
    }
}
