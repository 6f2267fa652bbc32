//! Outgoing email commands: deliver due emails through the mailer, and count undelivered ones.

use time::{Duration, OffsetDateTime};

use super::*;
use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::store;

impl Lineup {
    /// Deliver every message that is due, one at a time. Each is claimed under a lease first,
    /// so two workers never send the same message; a sent message is marked sent and its body
    /// erased.
    pub async fn deliver_due_emails(
        &self,
        mailer: &dyn Mailer,
        now: OffsetDateTime,
    ) -> CoreResult<DeliveryReport> {
        let mut report = DeliveryReport::default();
        loop {
            let mut tx = self.store().system().await?;
            let Some(row) = store::mail::claim(&mut tx, now, now + SENDING_LEASE).await? else {
                break;
            };
            tx.commit().await?;
            let outcome = match self
                .secrets()?
                .open(&row.body_sealed, &seal_context(row.id))
            {
                Ok(body) => {
                    let email = OutgoingEmail {
                        id: row.id,
                        to: row.recipient.clone(),
                        subject: row.subject.clone(),
                        body,
                    };
                    mailer.send(&email).await
                }
                Err(e) => Err(MailError::Permanent(e.to_string())),
            };
            let mut tx = self.store().system().await?;
            match outcome {
                Ok(()) => {
                    store::mail::mark_sent(&mut tx, row.tenant_id, row.id, store::now()).await?;
                    report.sent += 1;
                }
                Err(MailError::Temporary(reason)) if row.attempts < MAX_ATTEMPTS => {
                    // 1, 2, 4 … minutes, then capped at a few hours.
                    let wait = Duration::minutes(1 << (row.attempts - 1).clamp(0, 8));
                    tracing::warn!(email = %row.id, attempt = row.attempts, %reason, "email delivery failed; will retry");
                    store::mail::retry_at(&mut tx, row.tenant_id, row.id, now + wait, &reason)
                        .await?;
                    report.retrying += 1;
                }
                Err(e) => {
                    tracing::error!(email = %row.id, error = %e, "email delivery failed for good");
                    store::mail::give_up(&mut tx, row.tenant_id, row.id, &e.to_string()).await?;
                    report.failed += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(report)
    }

    /// Messages still waiting for delivery (queued or being sent), for a health view.
    pub async fn undelivered_emails(&self, tenant: TenantId) -> CoreResult<i64> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::mail::count_undelivered(&mut tx, tenant).await?)
    }
}
