//! Finding the organisation's people in its chat workspaces by email, so approvers and
//! requesters are reachable before they ever message Lineup. Only Slack lets a bot look people
//! up by email; Discord never shares emails and Teams would need Microsoft Graph.

use lineup_core::ids::{EmployeeId, TenantId};
use lineup_core::messaging::chat::{ChatDirectory, EmailMatch, Platform};

use super::ChatFlows;

/// Found accounts are linked in batches this size, so a long run that stops keeps its finds.
const LINK_BATCH: usize = 50;

#[async_trait::async_trait]
impl ChatDirectory for ChatFlows {
    async fn link_people_by_email(&self, tenant: TenantId) -> Vec<EmailMatch> {
        let mut outcomes = Vec::new();
        for platform in Platform::ALL {
            if let Some(outcome) = self.link_on(tenant, platform).await {
                tracing::info!(
                    %tenant,
                    platform = platform.as_str(),
                    unlinked = outcome.unlinked,
                    linked = outcome.linked,
                    failure = outcome.failure.as_deref(),
                    "looked people up in chat by email"
                );
                outcomes.push(outcome);
            }
        }
        outcomes
    }
}

impl ChatFlows {
    /// `None` when the platform cannot look people up or the tenant has no workspace on it.
    async fn link_on(&self, tenant: TenantId, platform: Platform) -> Option<EmailMatch> {
        let transport = self
            .transport(platform)
            .filter(|t| t.finds_users_by_email())?;
        let mut outcome = EmailMatch {
            platform,
            unlinked: 0,
            linked: 0,
            failure: None,
        };
        let ws = match self.lineup.workspace_of_tenant(tenant, platform).await {
            Ok(ws) => ws?,
            Err(e) => {
                outcome.failure = Some(e.to_string());
                return Some(outcome);
            }
        };
        let people = match self.lineup.employees_unlinked_on(tenant, platform).await {
            Ok(people) => people,
            Err(e) => {
                outcome.failure = Some(e.to_string());
                return Some(outcome);
            }
        };
        outcome.unlinked = people.len();
        let mut found: Vec<(EmployeeId, String)> = Vec::new();
        for person in &people {
            // The client waits out Slack's rate limits (Retry-After) before giving up.
            match transport
                .find_user_by_email(&ws, person.email.as_str())
                .await
            {
                Ok(Some(user)) => found.push((person.id, user)),
                Ok(None) => {}
                Err(e) => {
                    outcome.failure = Some(e.to_string());
                    break;
                }
            }
            if found.len() >= LINK_BATCH {
                self.link_found(tenant, platform, &mut found, &mut outcome)
                    .await;
            }
        }
        self.link_found(tenant, platform, &mut found, &mut outcome)
            .await;
        Some(outcome)
    }

    async fn link_found(
        &self,
        tenant: TenantId,
        platform: Platform,
        found: &mut Vec<(EmployeeId, String)>,
        outcome: &mut EmailMatch,
    ) {
        if found.is_empty() {
            return;
        }
        match self
            .lineup
            .link_chat_users_found_by_email(tenant, platform, found)
            .await
        {
            Ok(n) => outcome.linked += n,
            Err(e) => {
                outcome.failure.get_or_insert_with(|| e.to_string());
            }
        }
        found.clear();
    }
}
