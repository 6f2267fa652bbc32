//! Sending to Slack: Block Kit through the Web API, images by file upload, replies in threads.

use async_trait::async_trait;
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde_json::Value;

use super::{SlackClient, render};
use crate::chat::{ChatTransport, MessageRef};

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
    ) -> Result<MessageRef, String> {
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        let ts = self
            .client
            .post_message(&ws.bot_token, channel, text, &blocks(&payload), thread)
            .await
            .map_err(|e| e.to_string())?;
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
                .map_err(|e| format!("uploading {}: {e}", image.filename))?;
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
    ) -> Result<MessageRef, String> {
        let channel = self
            .client
            .open_dm(&ws.bot_token, user_id)
            .await
            .map_err(|e| e.to_string())?;
        self.post(ws, &channel, message, None).await
    }

    async fn send_channel(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
    ) -> Result<MessageRef, String> {
        self.post(ws, channel, message, None).await
    }

    async fn update(
        &self,
        ws: &Workspace,
        at: &MessageRef,
        message: &Message,
    ) -> Result<(), String> {
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        self.client
            .update_message(&ws.bot_token, &at.channel, &at.id, text, &blocks(&payload))
            .await
            .map_err(|e| e.to_string())
    }

    async fn reply(
        &self,
        ws: &Workspace,
        to: &MessageRef,
        message: &Message,
    ) -> Result<MessageRef, String> {
        self.post(ws, &to.channel, message, Some(&to.id)).await
    }

    fn finds_users_by_email(&self) -> bool {
        true
    }

    async fn find_user_by_email(
        &self,
        ws: &Workspace,
        email: &str,
    ) -> Result<Option<String>, String> {
        self.client
            .lookup_user_by_email(&ws.bot_token, email)
            .await
            .map_err(|e| e.to_string())
    }

    async fn user_email(&self, ws: &Workspace, user_id: &str) -> Result<Option<String>, String> {
        self.client
            .user_email(&ws.bot_token, user_id)
            .await
            .map_err(|e| e.to_string())
    }
}

fn blocks(payload: &Value) -> Vec<Value> {
    payload["blocks"].as_array().cloned().unwrap_or_default()
}
