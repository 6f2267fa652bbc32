//! [`ChatTransport`] on Discord: DMs (`POST /users/@me/channels` then a message, the QR code
//! as `files[0]` shown in the embed), channel messages, edits and replies (`message_reference`;
//! Discord channels have no threads under a bot message). Discord has no email lookup:
//! `find_user_by_email` and `user_email` answer `Ok(None)`; people are matched by their stored
//! Discord user id.
//!
//! Every button carries the guild (`@<guild>|<action>|<value>`), so a click in a DM — which
//! Discord sends without a guild — still reaches the right tenant.

use async_trait::async_trait;
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde_json::json;

use super::client::{DiscordClient, DiscordError, File};
use super::render;
use crate::chat::{ChatTransport, MessageRef, TransportError};

/// Discord's answers by what retrying can do: 401 (the bot token was reset or the bot
/// removed), 403 (no access: the user left the server or closed their DMs) and 404 (the
/// channel or message was deleted) are gone; 429 and 5xx are worth another try.
impl From<DiscordError> for TransportError {
    fn from(e: DiscordError) -> Self {
        let reason = e.to_string();
        match e {
            DiscordError::Api {
                status: 401 | 403 | 404,
                ..
            } => TransportError::Gone { reason },
            DiscordError::Api { status, .. } if status == 429 || status >= 500 => {
                TransportError::RetryLater {
                    after: None,
                    reason,
                }
            }
            DiscordError::Transport(_) => TransportError::RetryLater {
                after: None,
                reason,
            },
            DiscordError::Api { .. }
            | DiscordError::Config(_)
            | DiscordError::BadId { .. }
            | DiscordError::Limits(_) => TransportError::Refused { reason },
        }
    }
}

#[derive(Clone)]
pub struct DiscordTransport {
    client: DiscordClient,
}

impl DiscordTransport {
    pub fn new(client: DiscordClient) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &DiscordClient {
        &self.client
    }
}

fn file_of(m: &Message) -> Option<File> {
    m.image.as_ref().map(|i| File {
        bytes: i.png.clone(),
        filename: i.filename.clone(),
    })
}

/// The message body the transport sends for `m` in workspace `ws`.
pub fn body_for(ws: &Workspace, m: &Message) -> serde_json::Value {
    render::message_payload(m, Some(&ws.workspace_id))
}

#[async_trait]
impl ChatTransport for DiscordTransport {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    async fn send_direct(
        &self,
        ws: &Workspace,
        user_id: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let channel = self
            .client
            .create_dm(&ws.bot_token, user_id)
            .await
            .map_err(|e| TransportError::from(e).context(format!("opening a DM with {user_id}")))?;
        self.send_channel(ws, &channel, message).await
    }

    async fn send_channel(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let id = self
            .client
            .create_message(
                &ws.bot_token,
                channel,
                &body_for(ws, message),
                file_of(message).as_ref(),
            )
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("posting to channel {channel}"))
            })?;
        Ok(MessageRef {
            channel: channel.to_string(),
            id,
        })
    }

    async fn update(
        &self,
        ws: &Workspace,
        at: &MessageRef,
        message: &Message,
    ) -> Result<(), TransportError> {
        // `components` is always present (possibly empty), so a decided card loses its buttons.
        self.client
            .edit_message(
                &ws.bot_token,
                &at.channel,
                &at.id,
                &body_for(ws, message),
                file_of(message).as_ref(),
            )
            .await
            .map_err(|e| {
                TransportError::from(e)
                    .context(format!("editing message {} in {}", at.id, at.channel))
            })
    }

    async fn reply(
        &self,
        ws: &Workspace,
        to: &MessageRef,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let mut body = body_for(ws, message);
        body["message_reference"] = json!({
            "message_id": to.id,
            "channel_id": to.channel,
            "fail_if_not_exists": false,
        });
        let id = self
            .client
            .create_message(&ws.bot_token, &to.channel, &body, file_of(message).as_ref())
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("replying to {} in {}", to.id, to.channel))
            })?;
        Ok(MessageRef {
            channel: to.channel.clone(),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> TransportError {
        DiscordError::Api {
            status,
            message: "Unknown Channel".into(),
        }
        .into()
    }

    #[test]
    fn discord_answers_are_sorted_by_what_retrying_can_do() {
        for gone in [401, 403, 404] {
            assert!(
                matches!(status(gone), TransportError::Gone { .. }),
                "{gone}"
            );
        }
        for later in [429, 500, 502] {
            assert!(status(later).is_retryable(), "{later}");
        }
        assert!(matches!(status(400), TransportError::Refused { .. }));
        assert!(TransportError::from(DiscordError::Transport("reset".into())).is_retryable());
        assert!(matches!(
            TransportError::from(DiscordError::Limits(vec!["custom_id".into()])),
            TransportError::Refused { .. }
        ));
    }
}
