//! Slack's side of the chat flows: Slack inbound events become [`Conversation`] calls, and
//! their answers become ephemeral replies, modals and DMs. Installing and uninstalling the app
//! is Slack-specific and lives here too.

use std::sync::Arc;

use async_trait::async_trait;
use lineup_core::audit::Actor;
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::{ChatDirectory, Platform, WorkspaceGrant};
use lineup_core::messaging::chat_message::Message;

use super::handler::{Installation, Reply, SlackHandler, ViewReply};
use super::inbound::{BlockAction, SlashCommand, ViewSubmission, WorkspaceEvent};
use super::{SlackClient, render};
use crate::chat::{Answer, ChatTransport, Conversation, FormAnswer, RequestForm, Speaker};
use crate::flows::ChatFlows;
use crate::install_state::AfterInstall;
use crate::slack::transport::SlackTransport;

pub struct SlackApp {
    flows: Arc<ChatFlows>,
    client: SlackClient,
    transport: SlackTransport,
    /// Where the browser goes after installing (the portal's Settings → Chat page).
    after_install: AfterInstall,
}

impl SlackApp {
    pub fn new(
        flows: Arc<ChatFlows>,
        client: SlackClient,
        after_install: AfterInstall,
    ) -> Arc<Self> {
        let transport = SlackTransport::new(client.clone());
        Arc::new(Self {
            flows,
            client,
            transport,
            after_install,
        })
    }

    fn speaker(team_id: &str, user_id: &str) -> Speaker {
        Speaker {
            platform: Platform::Slack,
            workspace_id: team_id.to_owned(),
            user_id: user_id.to_owned(),
            email: None,
        }
    }

    /// Show an answer: ephemeral text, or a modal opened with the click's trigger.
    async fn show(&self, team_id: &str, trigger_id: &str, answer: Answer) -> Reply {
        let view = match answer {
            Answer::Nothing => return Reply::None,
            Answer::Private(message) => return Reply::Ephemeral(message),
            Answer::OpenRequestForm { plans } => render::request_modal(&plans, ""),
            Answer::OpenDenyForm { request_id } => render::deny_reason_modal(&request_id),
        };
        let Ok(Some(ws)) = self
            .flows
            .lineup()
            .workspace(Platform::Slack, team_id)
            .await
        else {
            return Reply::None;
        };
        match self
            .client
            .open_view(&ws.bot_token, trigger_id, &view)
            .await
        {
            Ok(_) => Reply::None,
            Err(e) => Reply::text(format!("I couldn't open the form: {e}")),
        }
    }

    /// Modals close without room for a message: what the person should know goes by DM.
    async fn close_with(&self, speaker: &Speaker, answer: FormAnswer) -> ViewReply {
        match answer {
            FormAnswer::Done(None) => ViewReply::Close,
            FormAnswer::Done(Some(message)) => {
                self.dm_later(speaker, message);
                ViewReply::Close
            }
            FormAnswer::FieldError { field, message } => ViewReply::Errors(
                [(block_for(field).to_owned(), message)]
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn dm_later(&self, speaker: &Speaker, message: Message) {
        let (lineup, transport, speaker) = (
            self.flows.lineup().clone(),
            self.transport.clone(),
            speaker.clone(),
        );
        tokio::spawn(async move {
            let Ok(Some(ws)) = lineup
                .workspace(Platform::Slack, &speaker.workspace_id)
                .await
            else {
                return;
            };
            if let Err(e) = transport.send_direct(&ws, &speaker.user_id, &message).await {
                tracing::warn!(error = %e, "sending a DM after a form failed");
            }
        });
    }
}

#[async_trait]
impl SlackHandler for SlackApp {
    async fn workspace_known(&self, team_id: &str) -> bool {
        self.flows.workspace_known(Platform::Slack, team_id).await
    }

    async fn slash_command(&self, cmd: SlashCommand) -> Reply {
        let speaker = Self::speaker(&cmd.team_id, &cmd.user_id);
        let answer = self
            .flows
            .command(speaker, &cmd.text, &cmd.trigger_id)
            .await;
        self.show(&cmd.team_id, &cmd.trigger_id, answer).await
    }

    async fn block_action(&self, action: BlockAction) -> Reply {
        let speaker = Self::speaker(&action.team_id, &action.user_id);
        let answer = self
            .flows
            .click(speaker, &action.action_id, &action.value)
            .await;
        self.show(&action.team_id, &action.trigger_id, answer).await
    }

    async fn view_submission(&self, view: ViewSubmission) -> ViewReply {
        let speaker = Self::speaker(&view.team_id, &view.user_id);
        let value = |key: &str| view.values.get(key).cloned().unwrap_or_default();
        let answer = match view.callback_id.as_str() {
            render::REQUEST_CALLBACK_ID => {
                let form = RequestForm {
                    plan_id: value(render::REQUEST_PLAN_KEY),
                    reason: value(render::REQUEST_REASON_KEY),
                    wanted_date: value(render::REQUEST_DATE_KEY),
                };
                self.flows
                    .submit_request_form(speaker.clone(), form, &format!("view:{}", view.view_id))
                    .await
            }
            render::DENY_CALLBACK_ID => {
                let reason = value(render::DENY_REASON_KEY);
                self.flows
                    .submit_deny_reason(speaker.clone(), &view.private_metadata, &reason)
                    .await
            }
            _ => FormAnswer::Done(None),
        };
        self.close_with(&speaker, answer).await
    }

    async fn workspace_event(&self, event: WorkspaceEvent) {
        let (WorkspaceEvent::AppUninstalled { team_id }
        | WorkspaceEvent::TokensRevoked { team_id }) = event;
        if let Err(e) = self
            .flows
            .lineup()
            .uninstall_workspace(Platform::Slack, &team_id)
            .await
        {
            tracing::error!(team_id, error = %e, "forgetting an uninstalled Slack workspace failed");
        }
    }

    async fn installed(
        &self,
        tenant: TenantId,
        installer: Option<UserId>,
        install: Installation,
    ) -> Result<String, String> {
        let lineup = self.flows.lineup();
        let actor = installer.map_or(Actor::System, Actor::User);
        let grant = WorkspaceGrant {
            workspace_id: install.team_id,
            name: Some(install.team_name).filter(|n| !n.is_empty()),
            bot_user_id: Some(install.bot_user_id),
            bot_token: install.bot_token,
        };
        lineup
            .connect_workspace(tenant, &actor, Platform::Slack, &grant)
            .await
            .map_err(|e| e.to_string())?;
        // People become reachable at once, without waiting to be messaged one by one.
        let flows = self.flows.clone();
        tokio::spawn(async move { flows.link_people_by_email(tenant).await });
        let tenant = lineup.tenant(tenant).await.map_err(|e| e.to_string())?;
        Ok(self.after_install.url(&tenant, Platform::Slack))
    }
}

/// The modal block that shows an error about `field`.
fn block_for(field: &str) -> &'static str {
    match field {
        "reason" => "reason",
        "wanted_date" => "wanted_date",
        "deny_reason" => "deny_reason",
        _ => "plan",
    }
}
