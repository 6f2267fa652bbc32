//! The seam between the Slack adapter and the application: the route layer verifies, parses,
//! dedupes and times requests, then calls this trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat_message::Message;
use serde_json::Value;

use super::inbound::{BlockAction, SlashCommand, ViewSubmission, WorkspaceEvent};

/// What the user who typed the command or clicked the button sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Nothing (the handler posts or updates messages itself through the client).
    None,
    /// A message only the user sees: the ack body of a command, or posted to the action's
    /// `response_url`.
    Ephemeral(Message),
    /// Same, with hand-made Block Kit (`text` is the notification fallback).
    EphemeralBlocks { text: String, blocks: Vec<Value> },
    /// For a button on a message: replace that message in place through its `response_url`
    /// (for a command, same as `Ephemeral`).
    ReplaceOriginal(Message),
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Ephemeral(Message::text(text))
    }
}

/// The answer to a modal submission, sent as the HTTP response (`response_action`).
#[derive(Debug, Clone, PartialEq)]
pub enum ViewReply {
    /// Close the modal.
    Close,
    /// Keep the modal open and show these messages under the inputs (`block_id` → message).
    Errors(BTreeMap<String, String>),
    /// Replace the modal with this view JSON.
    Update(Value),
}

/// What `oauth.v2.access` gave us for a new install.
#[derive(Clone, PartialEq, Eq)]
pub struct Installation {
    pub team_id: String,
    pub team_name: String,
    pub bot_token: String,
    pub bot_user_id: String,
    pub authed_user_id: String,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("team_id", &self.team_id)
            .field("team_name", &self.team_name)
            .field("bot_token", &"<redacted>")
            .field("bot_user_id", &self.bot_user_id)
            .field("authed_user_id", &self.authed_user_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Implemented by the application (over core). Only verified, first-seen requests from known
/// workspaces reach it. `slash_command`, `block_action` and `view_submission` get a 2.5 s budget:
/// an answer in time is the HTTP ack; a late one is posted to `response_url` (commands and
/// actions) or dropped with a warning (modal submissions, which have no `response_url`: keep
/// them fast and do slow work in a spawned task).
#[async_trait]
pub trait SlackHandler: Send + Sync + 'static {
    /// Whether this Slack team is installed for a tenant. Anything from an unknown workspace is
    /// refused (commands get a polite ephemeral text) and never passed on.
    async fn workspace_known(&self, team_id: &str) -> bool;

    async fn slash_command(&self, cmd: SlashCommand) -> Reply;

    async fn block_action(&self, action: BlockAction) -> Reply;

    async fn view_submission(&self, view: ViewSubmission) -> ViewReply;

    /// `app_uninstalled` / `tokens_revoked`: forget or disable the workspace's token.
    async fn workspace_event(&self, event: WorkspaceEvent);

    /// A finished OAuth install for `tenant`, started by `installer` (the portal admin, when
    /// known), whose signed state and browser cookie the route has already checked.
    /// `Ok(url)` redirects the browser there, `Err(text)` shows the text on a plain error page.
    async fn installed(
        &self,
        tenant: TenantId,
        installer: Option<UserId>,
        install: Installation,
    ) -> Result<String, String>;
}
