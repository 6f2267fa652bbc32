//! Reconciliation: the provider's subscriptions matched against a tenant's lines, so nothing
//! is paid for at the provider that Lineup does not know about.
//!
//! A subscription a line already holds is left alone. One that carries our reference (the
//! line id sent with its order) is adopted by that line when the line lost track of its
//! order (`failed`, or still `requested`/`provisioning`): the activation code is fetched and
//! sealed as the normal path does, and the line becomes `ready`. Any other live subscription
//! raises one alert (per subscription, across runs) for the admins to terminate or keep.

use serde_json::json;

use super::activation::SealedActivationCode;
use super::{Line, LineEvent, LineState};
use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{LineId, ProviderConnectionId, TenantId};
use crate::provider::{ConnectivityProvider, ListedSubscription, ProviderError, SubscriptionState};
use crate::spend::alert::{Alert, AlertKind};
use crate::spend::pricing::billing_period;
use crate::store::operations::{OperationKind, OperationState};
use crate::store::{self, now};

/// Stops a provider whose cursor never ends from looping forever.
const MAX_PAGES: usize = 1000;

/// What one reconciliation run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Subscriptions the provider listed.
    pub listed: usize,
    /// Lines that took up their subscription.
    pub adopted: Vec<LineId>,
    /// New alerts about subscriptions no line accounts for (already alerted ones not counted).
    pub alerts_raised: usize,
    /// Subscriptions with our reference whose order is still running: the next run looks again.
    pub still_pending: usize,
}

impl Lineup {
    /// List the tenant's subscriptions at each of its providers and match them to the lines
    /// ordered through that provider. Providers that cannot list subscriptions are not
    /// reconciled (they add nothing to the result).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn reconcile_subscriptions(&self, tenant: TenantId) -> CoreResult<Reconciliation> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let connections = store::provider_connections::list(&mut tx, tenant).await?;
        drop(tx);
        let catalogues: Vec<Option<ProviderConnectionId>> = if connections.is_empty() {
            vec![None]
        } else {
            connections.iter().map(|c| Some(c.id)).collect()
        };
        let mut report = Reconciliation::default();
        for connection in catalogues {
            let one = self.reconcile_connection(tenant, connection).await?;
            report.listed += one.listed;
            report.adopted.extend(one.adopted);
            report.alerts_raised += one.alerts_raised;
            report.still_pending += one.still_pending;
        }
        Ok(report)
    }

    async fn reconcile_connection(
        &self,
        tenant: TenantId,
        connection: Option<ProviderConnectionId>,
    ) -> CoreResult<Reconciliation> {
        let provider = self.provider_of_connection(tenant, connection).await?;
        let mut subscriptions = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = match provider.list_subscriptions(cursor.as_deref()).await {
                Ok(page) => page,
                Err(ProviderError::Unsupported(what)) => {
                    tracing::info!(%tenant, what, "the provider cannot list subscriptions");
                    return Ok(Reconciliation::default());
                }
                Err(e) => return Err(e.into()),
            };
            subscriptions.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut tx = self.tenant_read_tx(tenant).await?;
        let lines: Vec<Line> = store::lines::list(&mut tx, tenant)
            .await?
            .into_iter()
            .filter(|l| connection.is_none() || l.provider_connection_id == connection)
            .collect();
        drop(tx);
        let mut report = Reconciliation {
            listed: subscriptions.len(),
            ..Reconciliation::default()
        };
        for subscription in subscriptions {
            if lines
                .iter()
                .any(|l| l.provider_subscription_id.as_deref() == Some(subscription.id.as_str()))
            {
                continue;
            }
            if subscription.state == SubscriptionState::Terminated {
                // Costs nothing and acts on nothing.
                continue;
            }
            let ours = subscription
                .reference
                .as_deref()
                .and_then(|r| r.parse::<LineId>().ok())
                .and_then(|id| lines.iter().find(|l| l.id == id));
            match ours {
                Some(line) if adoptable(line.state) => {
                    if subscription.state == SubscriptionState::Pending {
                        report.still_pending += 1;
                        continue;
                    }
                    if let Some(adopted) = self
                        .adopt(tenant, provider.as_ref(), line, &subscription)
                        .await?
                    {
                        report.adopted.push(adopted.id);
                    }
                }
                // No reference, another tenant's or a stale one, or a second subscription for
                // a line that already has one: the admins decide.
                _ => {
                    if self
                        .alert_unknown_subscription(tenant, &subscription, ours)
                        .await?
                    {
                        report.alerts_raised += 1;
                    }
                }
            }
        }
        tracing::info!(
            %tenant,
            listed = report.listed,
            adopted = report.adopted.len(),
            alerts = report.alerts_raised,
            "subscriptions reconciled"
        );
        Ok(report)
    }

    /// Give `line` the subscription its order created: fetch and seal the activation code,
    /// settle its pending provisioning, and mark it `ready`. `None` when the line moved on
    /// meanwhile (its own order finished first).
    async fn adopt(
        &self,
        tenant: TenantId,
        provider: &dyn ConnectivityProvider,
        line: &Line,
        subscription: &ListedSubscription,
    ) -> CoreResult<Option<Line>> {
        let secrets = self.secrets()?.clone();
        let profile = provider.get_sim_profile(&subscription.id).await?;
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(current) = store::lines::get(&mut tx, tenant, line.id).await? else {
            return Ok(None);
        };
        if !adoptable(current.state) {
            return Ok(None);
        }
        let adopted = match self
            .transition(&mut tx, &Actor::System, &current, LineEvent::Adopted, |l| {
                l.provider_subscription_id = Some(subscription.id.clone());
                l.iccid = Some(profile.iccid.clone());
                l.failure_reason = None;
                l.activation_code = Some(SealedActivationCode::seal(
                    &secrets,
                    l.id,
                    &profile.activation_code,
                ));
            })
            .await
        {
            Ok(adopted) => adopted,
            // Its own order settled between our read and this write.
            Err(CoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        for op in store::operations::list_for_line(&mut tx, tenant, line.id).await? {
            if op.kind == OperationKind::Provision && op.state == OperationState::Pending {
                store::operations::settle(&mut tx, tenant, op.id, OperationState::Succeeded, None)
                    .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(%tenant, line = %line.id, subscription = %subscription.id, "adopted a subscription");
        Ok(Some(adopted))
    }

    /// One alert per unknown subscription, whatever the period: `true` when it is new.
    async fn alert_unknown_subscription(
        &self,
        tenant: TenantId,
        subscription: &ListedSubscription,
        claimed_by: Option<&Line>,
    ) -> CoreResult<bool> {
        let message = match claimed_by {
            Some(line) => format!(
                "Subscription {} at the provider names line {} as its own, but that line is {}{}. \
                 Terminate it unless someone uses it.",
                subscription.id,
                line.id,
                line.state,
                line.provider_subscription_id
                    .as_deref()
                    .map(|s| format!(" with subscription {s}"))
                    .unwrap_or_default(),
            ),
            None => format!(
                "Subscription {} at the provider ({}) belongs to no line in Lineup and carries \
                 no reference of ours. Terminate it unless someone uses it.",
                subscription.id,
                state_word(subscription.state),
            ),
        };
        let alert = Alert::raise(
            tenant,
            AlertKind::UnknownSubscription,
            &billing_period(now().date()),
            format!("unknown_subscription:{}", subscription.id),
            format!("subscription:{}", subscription.id),
            message,
            json!({
                "subscription_id": subscription.id,
                "provider_state": state_word(subscription.state),
                "reference": subscription.reference,
                "created_at": subscription.created_at,
            }),
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let raised = store::alerts::insert_if_new(&mut tx, tenant, &alert).await?;
        if raised {
            let event = AuditEvent::new(
                tenant,
                &Actor::System,
                "alert.raised",
                ("alert", alert.id.to_string()),
                None,
                Some(json!({ "kind": alert.kind.as_str(), "subscription_id": subscription.id })),
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(raised)
    }
}

/// A line that lost track of its order and may take up the subscription it created.
fn adoptable(state: LineState) -> bool {
    state.on(LineEvent::Adopted).is_ok()
}

fn state_word(state: SubscriptionState) -> &'static str {
    match state {
        SubscriptionState::Pending => "pending",
        SubscriptionState::Active => "active",
        SubscriptionState::Suspended => "suspended",
        SubscriptionState::Terminated => "terminated",
    }
}
