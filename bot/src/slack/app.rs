//! Installing and uninstalling the Slack app, over core: the Slack-only part of the chat flows
//! ([`SlackWorkspaces`]). What people do in Slack reaches the flows as [`crate::chat::Conversation`]
//! calls like on every other platform.

use std::sync::Arc;

use async_trait::async_trait;
use lineup_core::audit::Actor;
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::{ChatDirectory, Platform, Workspace, WorkspaceGrant};

use super::Installation;
use super::inbound::WorkspaceEvent;
use super::routes::SlackWorkspaces;
use crate::flows::ChatFlows;
use crate::install_state::AfterInstall;

pub struct SlackApp {
    flows: Arc<ChatFlows>,
    /// Where the browser goes after installing (the portal's Settings → Chat page).
    after_install: AfterInstall,
}

impl SlackApp {
    pub fn new(flows: Arc<ChatFlows>, after_install: AfterInstall) -> Arc<Self> {
        Arc::new(Self {
            flows,
            after_install,
        })
    }
}

#[async_trait]
impl SlackWorkspaces for SlackApp {
    async fn workspace(&self, team_id: &str) -> Option<Workspace> {
        match self
            .flows
            .lineup()
            .workspace(Platform::Slack, team_id)
            .await
        {
            Ok(ws) => ws,
            Err(e) => {
                tracing::error!(team_id, error = %e, "looking up a Slack workspace failed");
                None
            }
        }
    }

    async fn uninstalled(&self, event: WorkspaceEvent) {
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
