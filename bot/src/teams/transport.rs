//! [`TeamsTransport`]: the shared flows' [`ChatTransport`] on Teams.
//!
//! The Bot Connector service URL of a workspace (Azure AD tenant) is
//! `Workspace.settings["service_url"]`, learned from inbound activities. Direct messages go to
//! the 1:1 conversation with the user, created on first use (Teams hands back the existing one)
//! and remembered in memory; every message is one Adaptive Card attachment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde_json::Value;
use tracing::debug;

use super::client::{BotConnector, ConnectorError};
use super::render;
use crate::chat::{ChatTransport, MessageRef, TransportError};

/// `Workspace.settings` key of the Bot Connector service URL.
pub const SERVICE_URL_SETTING: &str = "service_url";
/// Conversations remembered per kind before the memory starts over.
const MAX_REMEMBERED: usize = 100_000;

/// The Bot Connector's answers by what retrying can do: 401 (the app's credentials no longer
/// work for this tenant), 403 (the bot was removed or the user blocked it) and 404 (the
/// conversation is gone) are gone; 429, 5xx, no token yet and the network are worth another
/// try (the connector has already retried each a few times).
impl From<ConnectorError> for TransportError {
    fn from(e: ConnectorError) -> Self {
        let reason = e.to_string();
        match e {
            ConnectorError::Status {
                status: 401 | 403 | 404,
                ..
            } => TransportError::Gone { reason },
            ConnectorError::Status { status, .. } if status == 429 || status >= 500 => {
                TransportError::RetryLater {
                    after: None,
                    reason,
                }
            }
            ConnectorError::Token(_) | ConnectorError::Transport(_) => TransportError::RetryLater {
                after: None,
                reason,
            },
            ConnectorError::Status { .. }
            | ConnectorError::ServiceUrl(_)
            | ConnectorError::Decode(_) => TransportError::Refused { reason },
        }
    }
}

/// The service URL stored for a workspace; until the first activity teaches it, sending waits.
pub fn service_url(ws: &Workspace) -> Result<String, TransportError> {
    ws.settings
        .get(SERVICE_URL_SETTING)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            TransportError::retry_later(format!(
                "no Teams service URL known for tenant {} yet (Lineup learns it from the first activity)",
                ws.workspace_id
            ))
        })
}

type Key = (String, String);

/// Conversations we know per (Azure AD tenant, Teams user id): the user's 1:1 chat with the
/// bot, and any conversation we saw them in (enough to look them up). Shared by the router,
/// which learns them from inbound activities, and the transport.
#[derive(Default)]
pub struct KnownConversations {
    direct: Mutex<HashMap<Key, String>>,
    seen_in: Mutex<HashMap<Key, String>>,
}

fn put(map: &Mutex<HashMap<Key, String>>, tenant: &str, user: &str, conversation: &str) {
    let mut m = map.lock().expect("conversation memory lock");
    if m.len() >= MAX_REMEMBERED {
        m.clear();
    }
    m.insert(
        (tenant.to_string(), user.to_string()),
        conversation.to_string(),
    );
}

impl KnownConversations {
    pub fn remember_direct(&self, tenant: &str, user: &str, conversation: &str) {
        put(&self.direct, tenant, user, conversation);
        put(&self.seen_in, tenant, user, conversation);
    }

    pub fn remember_seen(&self, tenant: &str, user: &str, conversation: &str) {
        put(&self.seen_in, tenant, user, conversation);
    }

    pub fn direct(&self, tenant: &str, user: &str) -> Option<String> {
        let key = (tenant.to_string(), user.to_string());
        self.direct
            .lock()
            .expect("conversation memory lock")
            .get(&key)
            .cloned()
    }

    /// A conversation `user` is a member of: their 1:1 chat first.
    pub fn any(&self, tenant: &str, user: &str) -> Option<String> {
        let key = (tenant.to_string(), user.to_string());
        self.direct(tenant, user).or_else(|| {
            self.seen_in
                .lock()
                .expect("conversation memory lock")
                .get(&key)
                .cloned()
        })
    }
}

/// Sends the shared flows' messages to Teams.
#[derive(Clone)]
pub struct TeamsTransport {
    connector: BotConnector,
    bot_id: String,
    known: Arc<KnownConversations>,
}

impl TeamsTransport {
    /// `bot_id` is `28:<app id>` ([`super::TeamsConfig::bot_id`]). Pass the router's
    /// [`KnownConversations`] (`TeamsState::known_conversations`) to share what it learns.
    pub fn new(connector: BotConnector, bot_id: String, known: Arc<KnownConversations>) -> Self {
        Self {
            connector,
            bot_id,
            known,
        }
    }

    pub fn known_conversations(&self) -> &Arc<KnownConversations> {
        &self.known
    }

    /// The 1:1 conversation with `user_id`, created when not known yet.
    pub async fn direct_conversation(
        &self,
        ws: &Workspace,
        user_id: &str,
    ) -> Result<String, TransportError> {
        if let Some(c) = self.known.direct(&ws.workspace_id, user_id) {
            return Ok(c);
        }
        let url = service_url(ws)?;
        let conversation = self
            .connector
            .create_conversation(&url, &self.bot_id, &ws.workspace_id, user_id)
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("opening a Teams chat with {user_id}"))
            })?;
        self.known
            .remember_direct(&ws.workspace_id, user_id, &conversation);
        Ok(conversation)
    }
}

#[async_trait]
impl ChatTransport for TeamsTransport {
    fn platform(&self) -> Platform {
        Platform::Teams
    }

    async fn send_direct(
        &self,
        ws: &Workspace,
        user_id: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let url = service_url(ws)?;
        let conversation = self.direct_conversation(ws, user_id).await?;
        let id = self
            .connector
            .send_activity(&url, &conversation, &render::message_activity(message))
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("Teams direct message to {user_id}"))
            })?;
        Ok(MessageRef {
            channel: conversation,
            id,
        })
    }

    async fn send_channel(
        &self,
        ws: &Workspace,
        channel: &str,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let url = service_url(ws)?;
        let id = self
            .connector
            .send_activity(&url, channel, &render::message_activity(message))
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("Teams post to channel {channel}"))
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
        let url = service_url(ws)?;
        self.connector
            .update(
                &url,
                &at.channel,
                &at.id,
                &render::message_activity(message),
            )
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("updating Teams message {}", at.id))
            })
    }

    async fn reply(
        &self,
        ws: &Workspace,
        to: &MessageRef,
        message: &Message,
    ) -> Result<MessageRef, TransportError> {
        let url = service_url(ws)?;
        let id = self
            .connector
            .reply(
                &url,
                &to.channel,
                &to.id,
                &render::message_activity(message),
            )
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("replying to Teams message {}", to.id))
            })?;
        Ok(MessageRef {
            channel: to.channel.clone(),
            id,
        })
    }

    async fn user_email(
        &self,
        ws: &Workspace,
        user_id: &str,
    ) -> Result<Option<String>, TransportError> {
        let Some(conversation) = self.known.any(&ws.workspace_id, user_id) else {
            debug!(
                user_id,
                "no known Teams conversation to look the user up in"
            );
            return Ok(None);
        };
        let url = service_url(ws)?;
        self.connector
            .get_member(&url, &conversation, user_id)
            .await
            .map(|m| m.and_then(|m| m.best_email()))
            .map_err(|e| {
                TransportError::from(e).context(format!("looking up Teams user {user_id}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> TransportError {
        ConnectorError::Status {
            status,
            body: "{}".into(),
        }
        .into()
    }

    #[test]
    fn bot_connector_answers_are_sorted_by_what_retrying_can_do() {
        for gone in [401, 403, 404] {
            assert!(
                matches!(status(gone), TransportError::Gone { .. }),
                "{gone}"
            );
        }
        for later in [429, 500, 503] {
            assert!(status(later).is_retryable(), "{later}");
        }
        assert!(matches!(status(400), TransportError::Refused { .. }));
        assert!(TransportError::from(ConnectorError::Token("AAD is down".into())).is_retryable());
        assert!(!TransportError::from(ConnectorError::ServiceUrl("ftp://x".into())).is_retryable());
    }
}
