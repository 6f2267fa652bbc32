//! The one recording [`Conversation`] (and [`SlackWorkspaces`]) behind the routers of the
//! Slack, Teams and Discord endpoint tests: what reached the application, answered as the test
//! says.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use lineup_bot::slack::{Installation, SlackWorkspaces, WorkspaceEvent};
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;

use super::{slack_router, teams_router};

/// The Discord guild the recorder knows.
pub const DISCORD_GUILD: &str = "1400000000000000001";

#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Command {
        speaker: Speaker,
        text: String,
        dedupe: String,
    },
    Click {
        speaker: Speaker,
        action_id: String,
        value: String,
    },
    RequestForm {
        speaker: Speaker,
        form: RequestForm,
        dedupe: String,
    },
    DenyReason {
        speaker: Speaker,
        request_id: String,
        reason: String,
    },
}

/// Records every call; answers with what the test set, else a short private text.
#[derive(Default)]
pub struct Recorder {
    pub known: HashSet<(Platform, String)>,
    pub got: Mutex<Vec<Got>>,
    pub answer: Mutex<Option<Answer>>,
    pub form_answer: Mutex<Option<FormAnswer>>,
    delay: Mutex<Duration>,
    installed: Mutex<Vec<(TenantId, Installation)>>,
    uninstalled: Mutex<Vec<WorkspaceEvent>>,
}

impl Recorder {
    /// Knows the test Slack team, Teams tenant and Discord guild.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::knowing_the_test_workspaces(Duration::ZERO))
    }
    /// The same, each answer coming `delay` late.
    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self::knowing_the_test_workspaces(delay))
    }
    fn knowing_the_test_workspaces(delay: Duration) -> Self {
        Self {
            known: [
                (Platform::Slack, slack_router::TEAM.to_string()),
                (Platform::Teams, teams_router::TENANT.to_string()),
                (Platform::Discord, DISCORD_GUILD.to_string()),
            ]
            .into(),
            delay: Mutex::new(delay),
            ..Default::default()
        }
    }
    /// From now on, each answer comes `delay` late.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
    pub fn installed(&self) -> Vec<(TenantId, Installation)> {
        self.installed.lock().unwrap().clone()
    }
    pub fn uninstalled(&self) -> Vec<WorkspaceEvent> {
        self.uninstalled.lock().unwrap().clone()
    }
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    pub fn answer_with(&self, a: Answer) {
        *self.answer.lock().unwrap() = Some(a);
    }
    pub fn form_answer_with(&self, a: FormAnswer) {
        *self.form_answer.lock().unwrap() = Some(a);
    }
    async fn push(&self, g: Got) {
        self.got.lock().unwrap().push(g);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    fn answer_or(&self, text: String) -> Answer {
        self.answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Answer::Private(Message::text(text)))
    }
    fn form_or(&self) -> FormAnswer {
        self.form_answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(FormAnswer::Done(Some(Message::text("Request *sent*"))))
    }
}

#[async_trait]
impl Conversation for Recorder {
    async fn workspace_known(&self, platform: Platform, workspace_id: &str) -> bool {
        self.known.contains(&(platform, workspace_id.to_string()))
    }
    async fn command(&self, speaker: Speaker, text: &str, dedupe_key: &str) -> Answer {
        self.push(Got::Command {
            speaker,
            text: text.to_string(),
            dedupe: dedupe_key.to_string(),
        })
        .await;
        self.answer_or(format!("You said: {text}"))
    }
    async fn click(&self, speaker: Speaker, action_id: &str, value: &str) -> Answer {
        self.push(Got::Click {
            speaker,
            action_id: action_id.to_string(),
            value: value.to_string(),
        })
        .await;
        self.answer_or(format!("Clicked {action_id}"))
    }
    async fn submit_request_form(
        &self,
        speaker: Speaker,
        form: RequestForm,
        dedupe_key: &str,
    ) -> FormAnswer {
        self.push(Got::RequestForm {
            speaker,
            form,
            dedupe: dedupe_key.to_string(),
        })
        .await;
        self.form_or()
    }
    async fn submit_deny_reason(
        &self,
        speaker: Speaker,
        request_id: &str,
        reason: &str,
    ) -> FormAnswer {
        self.push(Got::DenyReason {
            speaker,
            request_id: request_id.to_string(),
            reason: reason.to_string(),
        })
        .await;
        self.form_or()
    }
}

/// Slack installs as the real app would see them; every known team has the test bot token.
#[async_trait]
impl SlackWorkspaces for Recorder {
    async fn workspace(&self, team_id: &str) -> Option<Workspace> {
        self.known
            .contains(&(Platform::Slack, team_id.to_string()))
            .then(|| Workspace {
                tenant: TenantId::new(),
                workspace_id: team_id.to_string(),
                bot_user_id: Some("U0BOT".into()),
                bot_token: slack_router::BOT_TOKEN.into(),
                settings: serde_json::json!({}),
            })
    }
    async fn uninstalled(&self, event: WorkspaceEvent) {
        self.uninstalled.lock().unwrap().push(event);
    }
    async fn installed(
        &self,
        tenant: TenantId,
        _installer: Option<UserId>,
        install: Installation,
    ) -> Result<String, String> {
        self.installed.lock().unwrap().push((tenant, install));
        Ok(format!(
            "https://lineup.example.com/settings/slack?installed={tenant}"
        ))
    }
}
