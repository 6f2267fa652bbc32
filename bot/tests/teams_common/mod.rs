//! Shared set-up of the Teams tests: a recording `Conversation`, a recording service-URL store,
//! the fake Microsoft endpoints and the Teams router on real sockets.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use lineup_bot::teams::{ServiceUrlStore, TeamsConfig, TeamsState, teams_router};
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::chat_message::Message;
use lineup_testkit::fake_teams::{ActivityCtx, FakeTeams, TokenClaims, sign_activity_token};
use serde_json::Value;

pub const APP_ID: &str = "00000000-aaaa-bbbb-cccc-000000000001";
pub const APP_PASSWORD: &str = "test-app-password";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const USER: &str = "29:1ann-teams-id";
pub const CHANNEL: &str = "19:approvals@thread.tacv2";
pub const WAIT: Duration = Duration::from_secs(5);

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
    pub known: HashSet<String>,
    pub got: Mutex<Vec<Got>>,
    pub answer: Mutex<Option<Answer>>,
    pub form_answer: Mutex<Option<FormAnswer>>,
    pub delay: Duration,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            known: [TENANT.to_string()].into(),
            ..Default::default()
        })
    }
    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            known: [TENANT.to_string()].into(),
            delay,
            ..Default::default()
        })
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
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
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
        platform == Platform::Teams && self.known.contains(workspace_id)
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
        _dedupe_key: &str,
    ) -> FormAnswer {
        self.push(Got::RequestForm { speaker, form }).await;
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

/// Records the service URLs the router stores.
#[derive(Default)]
pub struct Urls(pub Mutex<Vec<(String, String)>>);

#[async_trait]
impl ServiceUrlStore for Urls {
    async fn remember_service_url(
        &self,
        aad_tenant_id: &str,
        service_url: &str,
    ) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push((aad_tenant_id.to_string(), service_url.to_string()));
        Ok(())
    }
}

pub fn config(fake: &FakeTeams) -> TeamsConfig {
    let mut c = TeamsConfig::new(APP_ID, APP_PASSWORD);
    c.openid_metadata_url = fake.openid_metadata_url();
    c.token_url = fake.token_url();
    c
}

pub struct App {
    pub fake: FakeTeams,
    pub conv: Arc<Recorder>,
    pub urls: Arc<Urls>,
    pub state: TeamsState,
    pub base: String,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(conv: Arc<Recorder>) -> App {
    start_with(conv, None).await
}

pub async fn start_with(conv: Arc<Recorder>, budget: Option<Duration>) -> App {
    let fake = FakeTeams::start(APP_ID, APP_PASSWORD).await;
    fake.add_member(
        USER,
        "Ann Example",
        Some("ann@acme.example"),
        Some("ann@acme.example"),
    );
    let urls = Arc::new(Urls::default());
    let mut state = TeamsState::new(config(&fake), conv.clone(), urls.clone());
    if let Some(b) = budget {
        state = state.with_budget(b);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = teams_router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    App {
        fake,
        conv,
        urls,
        state,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        task,
    }
}

impl App {
    pub fn personal(&self) -> ActivityCtx {
        ActivityCtx::personal(&self.fake.service_url(), TENANT, APP_ID, USER)
    }
    pub fn channel(&self) -> ActivityCtx {
        self.personal().in_channel(CHANNEL)
    }
    pub fn good_token(&self) -> String {
        sign_activity_token(&TokenClaims::new(APP_ID, &self.fake.service_url()))
    }
    /// Posts an activity with `Authorization: <auth>` (or none).
    pub async fn post_auth(&self, activity: &Value, auth: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/teams/messages", self.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(activity).unwrap());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().await.unwrap()
    }
    /// Posts an activity with a good token.
    pub async fn post(&self, activity: &Value) -> reqwest::Response {
        let auth = format!("Bearer {}", self.good_token());
        self.post_auth(activity, Some(&auth)).await
    }
}

pub async fn eventually<F: Fn() -> bool>(f: F, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
