//! Webhook commands: accept a provider's webhook (server-wide or a tenant's own connection)
//! and act on it.

use time::OffsetDateTime;

use super::*;
use crate::app::Lineup;
use crate::audit::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::{JobId, ProviderConnectionId, TenantId};
use crate::jobs::USAGE_SYNC;
use crate::lines::line::LineState;
use crate::provider::{PollPolicy, ProfileState, ProviderEvent};
use crate::store::provider_connections;
use crate::store::{self, jobs::JobRow};

impl Lineup {
    /// Verify and act on one delivery to the server-wide webhook URL. A bad signature is
    /// `CoreError::Webhook`.
    pub async fn accept_provider_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> CoreResult<WebhookOutcome> {
        let events = self
            .shared_provider()
            .parse_webhook(signature, body, now)
            .map_err(CoreError::Webhook)?;
        self.act_on_webhook(WebhookScope::ServerDefault, events, now)
            .await
    }

    /// Verify (with the connection's own secret) and act on one delivery to a tenant's
    /// connection URL. An unknown connection is `CoreError::NotFound`.
    pub async fn accept_connection_webhook(
        &self,
        connection: ProviderConnectionId,
        signature: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> CoreResult<WebhookOutcome> {
        let (tenant, provider) = self.connection_provider(connection).await?;
        let events = provider
            .parse_webhook(signature, body, now)
            .map_err(CoreError::Webhook)?;
        self.act_on_webhook(WebhookScope::Tenant(tenant), events, now)
            .await
    }

    async fn in_scope(&self, scope: WebhookScope, tenant: TenantId) -> CoreResult<bool> {
        match scope {
            WebhookScope::Tenant(owner) => Ok(owner == tenant),
            WebhookScope::ServerDefault => {
                let mut tx = self.tenant_read_tx(tenant).await?;
                let own = provider_connections::get(&mut tx, tenant).await?;
                Ok(own.is_none()
                    && provider_connections::uses_server_provider(&mut tx, tenant).await?)
            }
        }
    }

    async fn act_on_webhook(
        &self,
        scope: WebhookScope,
        events: Vec<ProviderEvent>,
        now: OffsetDateTime,
    ) -> CoreResult<WebhookOutcome> {
        let mut outcome = WebhookOutcome {
            events: events.len(),
            ..WebhookOutcome::default()
        };
        for event in events {
            match event {
                ProviderEvent::OperationSettled { operation_id, .. } => {
                    if self.finish_settled_order(scope, &operation_id).await? {
                        outcome.operations_finished += 1;
                    }
                }
                ProviderEvent::UsageThresholdReached {
                    subscription_id, ..
                }
                | ProviderEvent::AllowanceExhausted { subscription_id } => {
                    if self
                        .queue_usage_sync_for(scope, &subscription_id, now)
                        .await?
                    {
                        outcome.syncs_queued += 1;
                    }
                }
                ProviderEvent::ProfileStateChanged {
                    iccid,
                    state: ProfileState::Installed | ProfileState::Enabled,
                } => {
                    if self.activate_installed(scope, &iccid).await? {
                        outcome.lines_activated += 1;
                    }
                }
                ProviderEvent::ProfileStateChanged { .. }
                | ProviderEvent::SubscriptionStateChanged { .. } => {}
            }
        }
        Ok(outcome)
    }

    /// An order we are waiting on settled: finish its operation now instead of at the next
    /// poll. A wait on it in this process is woken and finishes it (and tells whoever asked);
    /// otherwise (the wait is on another replica, or gone with a restart) it is finished here
    /// from the database, and whoever waits elsewhere finds it done at their next poll.
    async fn finish_settled_order(&self, scope: WebhookScope, order_id: &str) -> CoreResult<bool> {
        if self.order_wakeups().wake(order_id) {
            return Ok(true);
        }
        let mut tx = self.store().system_read().await?;
        let Some(op) =
            store::operations::find_pending_by_order(&mut tx, scope.tenant(), order_id).await?
        else {
            return Ok(false);
        };
        drop(tx);
        if !self.in_scope(scope, op.tenant_id).await? {
            return Ok(false);
        }
        let check_once = PollPolicy {
            timeout: std::time::Duration::ZERO,
            ..self.poll_policy()
        };
        self.resume_operation(&Actor::Provider, op, check_once)
            .await?;
        Ok(true)
    }

    /// Usage moved on a line: sync its tenant soon (one job per tenant and minute).
    async fn queue_usage_sync_for(
        &self,
        scope: WebhookScope,
        subscription_id: &str,
        now: OffsetDateTime,
    ) -> CoreResult<bool> {
        let mut tx = self.store().system_read().await?;
        let provider = self.shared_provider().name();
        let Some(line) = store::lines::find_by_provider_ref(
            &mut tx,
            scope.tenant(),
            provider,
            Some(subscription_id),
            None,
        )
        .await?
        else {
            return Ok(false);
        };
        drop(tx);
        if !self.in_scope(scope, line.tenant_id).await? {
            return Ok(false);
        }
        let mut tx = self.store().system().await?;
        let minute = now.unix_timestamp() / 60;
        let job = JobRow {
            id: JobId::new(),
            tenant_id: Some(line.tenant_id),
            kind: USAGE_SYNC.into(),
            payload: sqlx::types::Json(serde_json::json!({ "pushed_by": subscription_id })),
            dedupe_key: Some(format!("{USAGE_SYNC}:{}:push:{minute}", line.tenant_id)),
            state: "queued".into(),
            run_at: now,
            attempts: 0,
            max_attempts: 5,
            last_error: None,
        };
        let queued = store::jobs::enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        Ok(queued)
    }

    /// The employee installed the profile: a ready line becomes active.
    async fn activate_installed(&self, scope: WebhookScope, iccid: &str) -> CoreResult<bool> {
        let mut tx = self.store().system_read().await?;
        let provider = self.shared_provider().name();
        let Some(line) = store::lines::find_by_provider_ref(
            &mut tx,
            scope.tenant(),
            provider,
            None,
            Some(iccid),
        )
        .await?
        else {
            return Ok(false);
        };
        drop(tx);
        if !self.in_scope(scope, line.tenant_id).await? {
            return Ok(false);
        }
        if line.state != LineState::Ready {
            return Ok(false);
        }
        let refreshed = self.refresh_activation(line.tenant_id, line.id).await?;
        Ok(refreshed.state == LineState::Active)
    }
}
