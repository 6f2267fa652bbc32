//! Outgoing email (invite and password-reset links): queued in a durable outbox in the same
//! transaction as the change that needs it, then delivered by a [`Mailer`]: SMTP when
//! configured, `.eml` files for the zero-setup demo. A failed delivery is retried with
//! back-off by the worker; a delivered message is never sent again.

mod file;
mod smtp;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub use file::FileMailer;
pub use smtp::{SmtpMailer, SmtpSettings};

use crate::app::Lineup;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::secret::SecretBox;
use crate::store::{self, Tx, mail::QueuedEmailRow};

/// One message to deliver. `id` is stable across retries (it makes the `Message-ID`), so a
/// receiving server can tell a retry from a new message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth trying again later (connection refused, 4xx reply, timeout).
    #[error("{0}")]
    Temporary(String),
    /// Retrying cannot help (the server refused the recipient or our credentials: 5xx).
    #[error("{0}")]
    Permanent(String),
}

#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// Attempts before a message is given up on (the last waits about a day).
const MAX_ATTEMPTS: i32 = 8;
/// How long one delivery may hold a message before another worker may retry it.
const SENDING_LEASE: Duration = Duration::minutes(5);

/// The body holds a live single-use link, so it is sealed at rest like other secrets and
/// erased once delivered.
fn seal_context(id: Uuid) -> String {
    format!("email:{id}")
}

/// Queue a message inside the caller's transaction: it exists exactly when the change that
/// needed it commits.
pub(crate) async fn queue(
    tx: &mut Tx,
    secrets: &SecretBox,
    tenant: TenantId,
    to: &str,
    subject: &str,
    body: &str,
) -> CoreResult<Uuid> {
    let id = Uuid::now_v7();
    let at = store::now();
    let row = QueuedEmailRow {
        id,
        tenant_id: tenant,
        recipient: to.to_owned(),
        subject: subject.to_owned(),
        body_sealed: secrets.seal(body, &seal_context(id)),
        attempts: 0,
    };
    store::mail::insert(tx, tenant, &row, at).await?;
    Ok(id)
}

/// What one delivery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

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
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::mail::count_undelivered(&mut tx, tenant).await?)
    }
}

/// The message in RFC 5322 form (plain text, UTF-8), as SMTP sends it and the outbox files
/// keep it. Header values come from our own code, but are still stripped of line breaks.
pub fn to_rfc5322(email: &OutgoingEmail, from: &str, date: OffsetDateTime) -> String {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let date = date
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let domain = from.rsplit_once('@').map_or("lineup.invalid", |(_, d)| d);
    let body = email.body.replace("\r\n", "\n").replace('\n', "\r\n");
    format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{}@{}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        clean(from),
        clean(&email.to),
        clean(&email.subject),
        email.id,
        clean(domain),
    )
}
