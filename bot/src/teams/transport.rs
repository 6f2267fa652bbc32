//! [`TeamsTransport`]: the shared flows' [`ChatTransport`] on Teams.
//!
//! The Bot Connector service URL of a workspace (Azure AD tenant) is
//! `Workspace.settings["service_url"]`, learned from inbound activities. Direct messages go to
//! the 1:1 conversation with the user, created on first use (Teams hands back the existing one)
//! and remembered in [`KnownConversations`] (the database, for every replica); every message
//! is one Adaptive Card attachment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lineup_core::messaging::chat::{ConversationKind, Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde_json::Value;
use tracing::{debug, warn};

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

/// Conversations we know per (Azure AD tenant, Teams user id): the user's 1:1 chat with the
/// bot, and the last conversation we saw them in (enough to look them up). Written by the
/// router, which learns them from inbound activities, read by the transport: a replica must
/// find what another learnt, so the server keeps them in the database ([`lineup_core::Lineup`]).
#[async_trait]
pub trait KnownConversations: Send + Sync + 'static {
    async fn remember(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
        conversation: &str,
    ) -> Result<(), String>;

    async fn find(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
    ) -> Result<Option<String>, String>;

    /// A conversation `user` is a member of: their 1:1 chat first.
    async fn any(&self, tenant: &str, user: &str) -> Result<Option<String>, String> {
        match self.find(tenant, user, ConversationKind::Direct).await? {
            Some(direct) => Ok(Some(direct)),
            None => self.find(tenant, user, ConversationKind::Seen).await,
        }
    }
}

#[async_trait]
impl KnownConversations for lineup_core::Lineup {
    async fn remember(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
        conversation: &str,
    ) -> Result<(), String> {
        self.remember_chat_conversation(Platform::Teams, tenant, user, kind, conversation)
            .await
            .map(|_kept| ())
            .map_err(|e| e.to_string())
    }

    async fn find(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
    ) -> Result<Option<String>, String> {
        self.chat_conversation(Platform::Teams, tenant, user, kind)
            .await
            .map_err(|e| e.to_string())
    }
}

type Key = (String, String, ConversationKind);

/// [`KnownConversations`] in this process only, for route tests without a store: at most
/// [`MAX_REMEMBERED`] before the memory starts over.
#[derive(Default)]
pub struct InProcessConversations {
    known: Mutex<HashMap<Key, String>>,
}

#[async_trait]
impl KnownConversations for InProcessConversations {
    async fn remember(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
        conversation: &str,
    ) -> Result<(), String> {
        let mut known = self.known.lock().expect("conversation memory lock");
        if known.len() >= MAX_REMEMBERED {
            known.clear();
        }
        known.insert(
            (tenant.to_string(), user.to_string(), kind),
            conversation.to_string(),
        );
        Ok(())
    }

    async fn find(
        &self,
        tenant: &str,
        user: &str,
        kind: ConversationKind,
    ) -> Result<Option<String>, String> {
        let key = (tenant.to_string(), user.to_string(), kind);
        Ok(self
            .known
            .lock()
            .expect("conversation memory lock")
            .get(&key)
            .cloned())
    }
}

/// Sends the shared flows' messages to Teams.
#[derive(Clone)]
pub struct TeamsTransport {
    connector: BotConnector,
    bot_id: String,
    known: Arc<dyn KnownConversations>,
}

impl TeamsTransport {
    /// `bot_id` is `28:<app id>` ([`super::TeamsConfig::bot_id`]). Pass the router's
    /// [`KnownConversations`] (`TeamsState::known_conversations`) to share what it learns.
    pub fn new(
        connector: BotConnector,
        bot_id: String,
        known: Arc<dyn KnownConversations>,
    ) -> Self {
        Self {
            connector,
            bot_id,
            known,
        }
    }

    pub fn known_conversations(&self) -> &Arc<dyn KnownConversations> {
        &self.known
    }

    /// The 1:1 conversation with `user_id`, created when not known yet.
    pub async fn direct_conversation(
        &self,
        ws: &Workspace,
        user_id: &str,
    ) -> Result<String, TransportError> {
        match self
            .known
            .find(&ws.workspace_id, user_id, ConversationKind::Direct)
            .await
        {
            Ok(Some(c)) => return Ok(c),
            Ok(None) => {}
            // Asking Teams again is safe: it hands back the existing chat.
            Err(e) => warn!(user_id, error = %e, "reading a known Teams chat failed"),
        }
        let url = service_url(ws)?;
        let conversation = self
            .connector
            .create_conversation(&url, &self.bot_id, &ws.workspace_id, user_id)
            .await
            .map_err(|e| {
                TransportError::from(e).context(format!("opening a Teams chat with {user_id}"))
            })?;
        if let Err(e) = self
            .known
            .remember(
                &ws.workspace_id,
                user_id,
                ConversationKind::Direct,
                &conversation,
            )
            .await
        {
            warn!(user_id, error = %e, "remembering a Teams chat failed");
        }
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
        let known = self
            .known
            .any(&ws.workspace_id, user_id)
            .await
            .map_err(|e| {
                TransportError::retry_later(format!("reading known Teams conversations: {e}"))
            })?;
        let Some(conversation) = known else {
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
