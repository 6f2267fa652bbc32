//! The chat flows, written once for every platform: what `/esim`, the buttons and the forms
//! do (`conversation.rs`), and how outcomes reach people (`delivery.rs`). Platforms differ only
//! in their [`ChatTransport`] and in how they parse and render.

mod alerts;
mod conversation;
mod delivery;
mod leavers;
mod notices;
mod people;

use std::collections::HashMap;
use std::sync::Arc;

use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::{CoreError, Lineup};

use crate::chat::ChatTransport;

/// Core plus one transport per connected platform.
#[derive(Clone)]
pub struct ChatFlows {
    lineup: Lineup,
    transports: Arc<HashMap<&'static str, Arc<dyn ChatTransport>>>,
}

impl ChatFlows {
    pub fn new(lineup: Lineup, transports: Vec<Arc<dyn ChatTransport>>) -> Arc<Self> {
        let transports = transports
            .into_iter()
            .map(|t| (t.platform().as_str(), t))
            .collect();
        Arc::new(Self {
            lineup,
            transports: Arc::new(transports),
        })
    }

    pub fn lineup(&self) -> &Lineup {
        &self.lineup
    }

    fn transport(&self, platform: Platform) -> Option<&Arc<dyn ChatTransport>> {
        self.transports.get(platform.as_str())
    }

    async fn workspace(&self, platform: Platform, workspace_id: &str) -> Option<Workspace> {
        match self.lineup.workspace(platform, workspace_id).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::error!(platform = platform.as_str(), workspace_id, error = %e, "looking up a chat workspace failed");
                None
            }
        }
    }
}

/// Platforms by their stored name.
pub(crate) fn platform_named(name: &str) -> Option<Platform> {
    Platform::ALL.into_iter().find(|p| p.as_str() == name)
}

pub(crate) fn log_failure(what: &str, error: &CoreError) {
    tracing::error!(error = %error, "{what} failed");
}
