//! Outgoing email (invite and password-reset links): queued in a durable outbox in the same
//! transaction as the change that needs it, then delivered by a [`Mailer`]: SMTP when
//! configured, `.eml` files for the zero-setup demo. A failed delivery is retried with
//! back-off by the worker; a delivered message is never sent again.

pub mod commands;
mod file;
mod smtp;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::secret::SecretBox;
use crate::store::{self, Tx, mail::QueuedEmailRow};

pub use file::FileMailer;
pub use smtp::{SmtpMailer, SmtpSettings};

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
