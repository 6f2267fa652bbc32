//! Installations this process read a moment ago. A burst of clicks from one workspace would
//! otherwise read its installation (a transaction, and on SQLite the write lock) twice a
//! click: once when the route checks the workspace is served, once when the flow runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Platform, Workspace};

/// How long a read installation is trusted. A change made on another replica (an uninstall,
/// a new token) reaches this one at most this late; changes made here are seen at once.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// More workspaces than this read within [`FRESH_FOR`] start the memory over.
const MOST_KEPT: usize = 10_000;

#[derive(Default)]
pub(crate) struct RecentWorkspaces {
    read: Mutex<HashMap<(Platform, String), (Instant, Workspace)>>,
}

impl RecentWorkspaces {
    pub(crate) fn get(&self, platform: Platform, workspace_id: &str) -> Option<Workspace> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let (at, workspace) = read.get(&(platform, workspace_id.to_owned()))?;
        (at.elapsed() < FRESH_FOR).then(|| workspace.clone())
    }

    pub(crate) fn remember(&self, platform: Platform, workspace: &Workspace) {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if read.len() >= MOST_KEPT {
            read.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
            if read.len() >= MOST_KEPT {
                read.clear();
            }
        }
        read.insert(
            (platform, workspace.workspace_id.clone()),
            (Instant::now(), workspace.clone()),
        );
    }

    /// After this process changed any installation.
    pub(crate) fn forget_all(&self) {
        self.read.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn workspace(id: &str) -> Workspace {
        Workspace {
            tenant: TenantId::new(),
            workspace_id: id.to_owned(),
            bot_user_id: None,
            bot_token: "xoxb".into(),
            settings: serde_json::json!({}),
        }
    }

    #[test]
    fn a_workspace_is_remembered_per_platform_until_forgotten() {
        let recent = RecentWorkspaces::default();
        assert!(recent.get(Platform::Slack, "T1").is_none());
        recent.remember(Platform::Slack, &workspace("T1"));
        assert_eq!(
            recent.get(Platform::Slack, "T1").map(|w| w.workspace_id),
            Some("T1".to_owned())
        );
        assert!(recent.get(Platform::Discord, "T1").is_none());
        recent.forget_all();
        assert!(recent.get(Platform::Slack, "T1").is_none());
    }
}
