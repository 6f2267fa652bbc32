//! The seam every chat platform plugs into. Inbound, an adapter verifies and parses its
//! platform's payloads into [`Conversation`] calls and renders the [`Answer`]. Outbound, it
//! implements [`ChatTransport`] so the shared flows (approval cards, updates, DMs, the eSIM
//! delivery, reminders) run unchanged on Slack, Teams and Discord.

use std::time::Duration;

use async_trait::async_trait;
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;

/// Who is talking to us, as the platform says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    pub platform: Platform,
    /// Slack team id, Discord guild id, Azure AD tenant id.
    pub workspace_id: String,
    /// The platform's user id.
    pub user_id: String,
    /// The email the platform vouches for, when it gives one with the request.
    pub email: Option<String>,
}

/// The filled-in "request a line" form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestForm {
    pub plan_id: String,
    pub reason: String,
    /// `YYYY-MM-DD`, or empty.
    pub wanted_date: String,
}

/// What the person who typed or clicked should see next.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Nothing to show (the flows post or update messages themselves).
    Nothing,
    /// A message only this person sees (ephemeral where the platform has that).
    Private(Message),
    /// Open the "request a line" form with these plans (id, label).
    OpenRequestForm { plans: Vec<(String, String)> },
    /// Open the "why do you deny?" form for this request.
    OpenDenyForm { request_id: String },
}

/// The outcome of a submitted form.
#[derive(Debug, Clone, PartialEq)]
pub enum FormAnswer {
    /// Close the form; optionally tell the person something.
    Done(Option<Message>),
    /// Keep the form open and show `message` at `field` (`plan`, `reason`, `wanted_date`,
    /// `deny_reason`).
    FieldError {
        field: &'static str,
        message: String,
    },
}

/// The platform-neutral handler of everything people do in chat; implemented once over core.
#[async_trait]
pub trait Conversation: Send + Sync + 'static {
    /// Is this workspace connected to a tenant? Anything else is refused.
    async fn workspace_known(&self, platform: Platform, workspace_id: &str) -> bool;
    /// `/esim <text>`.
    async fn command(&self, speaker: Speaker, text: &str, dedupe_key: &str) -> Answer;
    /// A button: its action id (e.g. `request.approve`) and value (e.g. a request id).
    async fn click(&self, speaker: Speaker, action_id: &str, value: &str) -> Answer;
    async fn submit_request_form(
        &self,
        speaker: Speaker,
        form: RequestForm,
        dedupe_key: &str,
    ) -> FormAnswer;
    async fn submit_deny_reason(
        &self,
        speaker: Speaker,
        request_id: &str,
        reason: &str,
    ) -> FormAnswer;
}

/// Where a posted message lives, to update it or reply under it later (stored with the
/// request, so it is core's type).
pub use lineup_core::lines::request::MessageRef;

/// Why a platform did not take a message, sorted by what retrying can do about it. Delivery
/// problems are logged (and, for queued notices, stored), never shown to the person who clicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Worth trying again: rate limited (`after` is the platform's `Retry-After`), a server
    /// error, the network.
    #[error("{reason}")]
    RetryLater {
        after: Option<Duration>,
        reason: String,
    },
    /// Whoever we write to or as is gone: the token was revoked or the app uninstalled, the
    /// user was deactivated or left, the channel was deleted or archived.
    #[error("{reason}")]
    Gone { reason: String },
    /// The platform refused this request itself (a missing scope, a payload it will not
    /// take): the same request will be refused again.
    #[error("{reason}")]
    Refused { reason: String },
}

impl TransportError {
    pub fn retry_later(reason: impl Into<String>) -> Self {
        Self::RetryLater {
            after: None,
            reason: reason.into(),
        }
    }

    pub fn gone(reason: impl Into<String>) -> Self {
        Self::Gone {
            reason: reason.into(),
        }
    }

    pub fn refused(reason: impl Into<String>) -> Self {
        Self::Refused {
            reason: reason.into(),
        }
    }

    /// Whether sending the same message again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetryLater { .. })
    }

    /// The same error, its reason prefixed with what we were doing (`"{what}: {reason}"`).
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            Self::RetryLater { after, reason } => Self::RetryLater {
                after,
                reason: format!("{what}: {reason}"),
            },
            Self::Gone { reason } => Self::Gone {
                reason: format!("{what}: {reason}"),
            },
            Self::Refused { reason } => Self::Refused {
                reason: format!("{what}: {reason}"),
            },
        }
    }
}

/// Sending to one chat platform.
#[async_trait]
pub trait ChatTransport: Send + Sync + 'static {
    fn platform(&self) -> Platform;
    /// A direct message to a platform user; the message's image (the QR code) goes with it.
    async fn send_direct(
        &self,
        ws: &Workspace,
        user_id: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError>;
    /// A message to a channel of the workspace (approvals, finance).
    async fn send_channel(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError>;
    /// Replace a message we posted (a card after a decision: no stale buttons).
    async fn update(
        &self,
        ws: &Workspace,
        at: &MessageRef,
        message: &Message,
    ) -> Result<(), TransportError>;
    /// A reply under a message we posted (the card's thread), or next to it where the
    /// platform has no threads.
    async fn reply(
        &self,
        ws: &Workspace,
        to: &MessageRef,
        message: &Message,
    ) -> Result<MessageRef, TransportError>;
    /// Whether [`Self::find_user_by_email`] can find anyone (Slack's `users.lookupByEmail`).
    fn finds_users_by_email(&self) -> bool {
        false
    }
    /// The platform user with this email, where the platform can look people up (Slack);
    /// platforms that cannot (Discord; Teams without Microsoft Graph) keep this default.
    async fn find_user_by_email(
        &self,
        _ws: &Workspace,
        _email: &str,
    ) -> Result<Option<String>, TransportError> {
        Ok(None)
    }
    /// The email of a platform user, where the platform tells (never on Discord).
    async fn user_email(
        &self,
        _ws: &Workspace,
        _user_id: &str,
    ) -> Result<Option<String>, TransportError> {
        Ok(None)
    }
}
