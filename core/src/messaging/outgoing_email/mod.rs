//! Outgoing email (invite and password-reset links): queued in a durable outbox in the same
//! transaction as the change that needs it, then delivered by a [`Mailer`]: SMTP when
//! configured, `.eml` files for the zero-setup demo. A failed delivery is retried with
//! back-off by the worker; a delivered message is never sent again.

pub mod commands;
mod file;
mod smtp;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::secret::SecretBox;
use crate::store::{self, Tx, mail::QueuedEmailRow};

pub use file::FileMailer;
pub use smtp::{SmtpMailer, SmtpSettings, Starttls};

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

/// `MAIL_FROM` must be a plain address (`lineup@example.com`): it is both the envelope sender
/// and the `From` header.
pub fn check_sender(from: &str) -> Result<(), String> {
    from.parse::<lettre::Address>()
        .map(drop)
        .map_err(|e| format!("{from:?} is not an address like lineup@example.com ({e})"))
}

/// The message as SMTP sends it and the outbox files keep it: plain text in UTF-8, sent as
/// 8bit (or, for a line too long even for that, in an encoding lettre picks), with a
/// `Message-ID` made from `email.id`.
pub(crate) fn message(
    email: &OutgoingEmail,
    from: &str,
    date: OffsetDateTime,
) -> Result<Message, MailError> {
    let address = |what: &str, text: &str| {
        text.parse::<lettre::Address>()
            .map_err(|e| MailError::Permanent(format!("{what} {text:?} is not an address: {e}")))
    };
    let from = address("the sender", from)?;
    let to = address("the recipient", &email.to)?;
    // lettre would pick quoted-printable for any line over 76 characters, and a link is often
    // longer: 8bit (lines up to 998 octets, RFC 5322) keeps the text and its links as written.
    let text = email.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let fits_8bit = text
        .split("\r\n")
        .all(|line| line.len() <= 998 && !line.contains(['\r', '\0']));
    let body = if fits_8bit {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(email.body.clone())
    };
    Message::builder()
        .from(Mailbox::new(None, from.clone()))
        .to(Mailbox::new(None, to))
        .subject(&email.subject)
        .date(date.into())
        .message_id(Some(format!("<{}@{}>", email.id, from.domain())))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        // A single text part as the message's own body: no MIME part wrapped around it.
        .body(body)
        .map_err(|e| MailError::Permanent(format!("cannot build the message: {e}")))
}
