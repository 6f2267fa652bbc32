//! Sending to Slack: Block Kit through the Web API, images by file upload, replies in threads.

use async_trait::async_trait;
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde_json::Value;

use super::{SlackApiError, SlackClient, render};
use crate::chat::{ChatTransport, MessageRef, TransportError};

/// `ok: false` codes saying the token, the user or the channel is gone for good.
const GONE_CODES: &[&str] = &[
    "account_inactive",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "team_access_not_granted",
    "user_not_found",
    "user_disabled",
    "channel_not_found",
    "is_archived",
    "not_in_channel",
    "message_not_found",
];
/// `ok: false` codes of a Slack that is busy or failing, worth trying again.
const RETRY_CODES: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

impl From<SlackApiError> for TransportError {
    fn from(e: SlackApiError) -> Self {
        let reason = e.to_string();
        match &e {
            SlackApiError::Api { code, .. } if GONE_CODES.contains(&code.as_str()) => {
                TransportError::Gone { reason }
            }
            SlackApiError::Api { code, .. } if RETRY_CODES.contains(&code.as_str()) => {
                TransportError::RetryLater {
                    after: None,
                    reason,
                }
            }
            SlackApiError::Api { .. } => TransportError::Refused { reason },
            SlackApiError::RateLimited { retry_after, .. } => TransportError::RetryLater {
                after: *retry_after,
                reason,
            },
            SlackApiError::Http { status, .. } if *status == 429 || *status >= 500 => {
                TransportError::RetryLater {
                    after: None,
                    reason,
                }
            }
            SlackApiError::Http { .. } => TransportError::Refused { reason },
            SlackApiError::Transport { .. } => TransportError::RetryLater {
                after: None,
                reason,
            },
        }
    }
}

#[derive(Clone)]
pub struct SlackTransport {
    client: SlackClient,
}

impl SlackTransport {
    pub fn new(client: SlackClient) -> Self {
        Self { client }
    }

    async fn post(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
        thread: Option<&str>,
    ) -> Result<MessageRef, TransportError> {
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        let ts = self
            .client
            .post_message(&ws.bot_token, channel, text, &blocks(&payload), thread)
            .await?;
        if let Some(image) = &message.image {
            // Slack shows images from uploads; the QR goes right under its message.
            let title = message.title.as_deref().unwrap_or("image");
            self.client
                .upload_png(
                    &ws.bot_token,
                    channel,
                    &image.png,
                    &image.filename,
                    title,
                    Some(&ts),
                )
                .await
                .map_err(|e| {
                    TransportError::from(e).context(format!("uploading {}", image.filename))
                })?;
        }
        Ok(MessageRef {
            channel: channel.to_owned(),
            id: ts,
        })
    }
}

#[async_trait]
impl ChatTransport for SlackTransport {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn send_direct(
        &self,
        ws: &Workspace,
        user_id: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let channel = self.client.open_dm(&ws.bot_token, user_id).await?;
        self.post(ws, &channel, message, None).await
    }

    async fn send_channel(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        self.post(ws, channel, message, None).await
    }

    async fn update(
        &self,
        ws: &Workspace,
        at: &MessageRef,
        message: &Message,
    ) -> Result<(), TransportError> {
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        self.client
            .update_message(&ws.bot_token, &at.channel, &at.id, text, &blocks(&payload))
            .await
            .map_err(TransportError::from)
    }

    async fn reply(
        &self,
        ws: &Workspace,
        to: &MessageRef,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        self.post(ws, &to.channel, message, Some(&to.id)).await
    }

    fn finds_users_by_email(&self) -> bool {
        true
    }

    async fn find_user_by_email(
        &self,
        ws: &Workspace,
        email: &str,
    ) -> Result<Option<String>, TransportError> {
        self.client
            .lookup_user_by_email(&ws.bot_token, email)
            .await
            .map_err(TransportError::from)
    }

    async fn user_email(
        &self,
        ws: &Workspace,
        user_id: &str,
    ) -> Result<Option<String>, TransportError> {
        self.client
            .user_email(&ws.bot_token, user_id)
            .await
            .map_err(TransportError::from)
    }
}

fn blocks(payload: &Value) -> Vec<Value> {
    payload["blocks"].as_array().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn api(code: &str) -> SlackApiError {
        SlackApiError::Api {
            method: "chat.postMessage".into(),
            code: code.into(),
        }
    }

    #[test]
    fn slack_answers_are_sorted_by_what_retrying_can_do() {
        for code in [
            "token_revoked",
            "account_inactive",
            "invalid_auth",
            "channel_not_found",
            "user_not_found",
            "is_archived",
        ] {
            let e = TransportError::from(api(code));
            assert!(
                matches!(&e, TransportError::Gone { reason } if reason.contains(code)),
                "{code}: {e:?}"
            );
        }
        assert!(TransportError::from(api("ratelimited")).is_retryable());
        assert!(TransportError::from(api("internal_error")).is_retryable());
        assert!(matches!(
            TransportError::from(api("missing_scope")),
            TransportError::Refused { .. }
        ));
        let limited = SlackApiError::RateLimited {
            method: "chat.postMessage".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert!(matches!(
            TransportError::from(limited),
            TransportError::RetryLater { after: Some(after), .. } if after == Duration::from_secs(30)
        ));
        let status = |status| SlackApiError::Http {
            method: "chat.update".into(),
            status,
        };
        assert!(TransportError::from(status(503)).is_retryable());
        assert!(!TransportError::from(status(400)).is_retryable());
        let network = SlackApiError::Transport {
            method: "chat.update".into(),
            message: "connection reset".into(),
        };
        assert!(TransportError::from(network).is_retryable());
    }
}
