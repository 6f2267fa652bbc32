//! Employee notice commands: deliver queued notices through the chat adapters, and list an
//! employee's notices.

use time::{Duration, OffsetDateTime};

use super::*;
use crate::app::{Lineup, record, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::messaging::chat_message::Message;
use crate::store;

impl Lineup {
    /// Sends every due notice, one at a time, each claimed under a lease first so two workers
    /// never send the same one. Returns how many were sent.
    pub async fn deliver_employee_notices(
        &self,
        sender: &dyn NoticeSender,
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        let mut sent = 0;
        loop {
            let mut tx = self.store().system().await?;
            let Some(row) = store::notices::claim(&mut tx, now, now + SENDING_LEASE).await? else {
                break;
            };
            tx.commit().await?;
            let notice = EmployeeNotice {
                id: row.id,
                tenant_id: row.tenant_id,
                employee_id: row.employee_id,
                message: row.message.0,
                attempts: row.attempts,
            };
            let outcome = sender.send_notice(&notice).await;
            let mut tx = self.tenant_tx(notice.tenant_id).await?;
            let audit = match outcome {
                Ok(()) => {
                    store::notices::mark_sent(&mut tx, notice.tenant_id, notice.id, store::now())
                        .await?;
                    sent += 1;
                    Some(("employee.notified", None))
                }
                Err(error)
                    if notice.attempts < MAX_ATTEMPTS
                        && !matches!(error, NoticeError::Permanent(_)) =>
                {
                    // 1, 2, 4 … minutes, then capped at about four hours; never sooner than
                    // the platform asked.
                    let backoff = Duration::minutes(1 << (notice.attempts - 1).clamp(0, 8));
                    let wait = match &error {
                        NoticeError::RetryAfter { after, .. } => {
                            backoff.max(Duration::try_from(*after).unwrap_or(Duration::MAX))
                        }
                        _ => backoff,
                    };
                    let quiet = matches!(error, NoticeError::Unreachable(_));
                    let reason = error.into_reason();
                    if quiet {
                        tracing::debug!(notice = %notice.id, attempt = notice.attempts, %reason, "an employee cannot be reached yet; will retry");
                    } else {
                        tracing::warn!(notice = %notice.id, attempt = notice.attempts, %reason, "a notice to an employee failed; will retry");
                    }
                    store::notices::retry_at(
                        &mut tx,
                        notice.tenant_id,
                        notice.id,
                        now + wait,
                        &reason,
                    )
                    .await?;
                    None
                }
                Err(error) => {
                    let reason = error.into_reason();
                    tracing::warn!(notice = %notice.id, %reason, "a notice to an employee was given up");
                    store::notices::give_up(&mut tx, notice.tenant_id, notice.id, &reason).await?;
                    Some(("employee.notice_failed", Some(reason)))
                }
            };
            if let Some((action, error)) = audit {
                let event = AuditEvent::new(
                    notice.tenant_id,
                    &Actor::System,
                    action,
                    ("employee", notice.employee_id.to_string()),
                    None,
                    to_json(&serde_json::json!({
                        "notice": notice.id, "title": notice.message.title, "error": error,
                    })),
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
        }
        Ok(sent)
    }

    /// A tenant's notices as (dedupe key, state, message), oldest first: for support and tests.
    pub async fn employee_notices(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Vec<(String, String, Message)>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::notices::list(&mut tx, tenant)
            .await?
            .into_iter()
            .map(|n| (n.dedupe_key, n.state, n.message.0))
            .collect())
    }
}
