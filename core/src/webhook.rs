//! Provider webhooks: verified by the adapter, then acted on. Delivery is at-least-once, so
//! everything here is safe to repeat: a settled order is finished once (compare-and-set on the
//! line), a usage hint queues at most one sync per tenant and minute, an installed profile
//! activates a ready line once.

use time::OffsetDateTime;

use crate::app::Lineup;
use crate::audit::Actor;
use crate::error::{CoreError, CoreResult};
use crate::ids::JobId;
use crate::jobs::USAGE_SYNC;
use crate::line::LineState;
use crate::provider::{PollPolicy, ProfileState, ProviderEvent};
use crate::store::{self, jobs::JobRow};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub events: usize,
    pub operations_finished: usize,
    pub syncs_queued: usize,
    pub lines_activated: usize,
}

impl Lineup {
    /// Verify and act on one webhook delivery. A bad signature is `CoreError::Webhook`.
    pub async fn accept_provider_webhook(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> CoreResult<WebhookOutcome> {
        let events = self
            .provider()
            .parse_webhook(signature, body, now)
            .map_err(CoreError::Webhook)?;
        let mut outcome = WebhookOutcome {
            events: events.len(),
            ..WebhookOutcome::default()
        };
        for event in events {
            match event {
                ProviderEvent::OperationSettled { operation_id, .. } => {
                    if self.finish_settled_order(&operation_id).await? {
                        outcome.operations_finished += 1;
                    }
                }
                ProviderEvent::UsageThresholdReached {
                    subscription_id, ..
                }
                | ProviderEvent::AllowanceExhausted { subscription_id } => {
                    if self.queue_usage_sync_for(&subscription_id, now).await? {
                        outcome.syncs_queued += 1;
                    }
                }
                ProviderEvent::ProfileStateChanged {
                    iccid,
                    state: ProfileState::Installed | ProfileState::Enabled,
                } => {
                    if self.activate_installed(&iccid).await? {
                        outcome.lines_activated += 1;
                    }
                }
                ProviderEvent::ProfileStateChanged { .. }
                | ProviderEvent::SubscriptionStateChanged { .. } => {}
            }
        }
        Ok(outcome)
    }

    /// An order we are waiting on settled: finish its operation now instead of at the next poll.
    async fn finish_settled_order(&self, order_id: &str) -> CoreResult<bool> {
        let mut tx = self.store().system().await?;
        let Some(op) = store::operations::find_pending_by_order(&mut tx, order_id).await? else {
            return Ok(false);
        };
        drop(tx);
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
        subscription_id: &str,
        now: OffsetDateTime,
    ) -> CoreResult<bool> {
        let mut tx = self.store().system().await?;
        let provider = self.provider().name();
        let Some(line) =
            store::lines::find_by_provider_ref(&mut tx, provider, Some(subscription_id), None)
                .await?
        else {
            return Ok(false);
        };
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
    async fn activate_installed(&self, iccid: &str) -> CoreResult<bool> {
        let mut tx = self.store().system().await?;
        let provider = self.provider().name();
        let Some(line) =
            store::lines::find_by_provider_ref(&mut tx, provider, None, Some(iccid)).await?
        else {
            return Ok(false);
        };
        drop(tx);
        if line.state != LineState::Ready {
            return Ok(false);
        }
        let refreshed = self.refresh_activation(line.tenant_id, line.id).await?;
        Ok(refreshed.state == LineState::Active)
    }
}
