//! The Teams router on a real socket with the [`Recorder`] behind it, a recording service-URL
//! store and the fake Microsoft endpoints.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::dedupe::TtlDedupe;
use lineup_bot::teams::{
    InProcessConversations, ServiceUrlStore, TeamsConfig, TeamsState, teams_router,
};
use lineup_testkit::fake_teams::{ActivityCtx, FakeTeams, TokenClaims, sign_activity_token};
use serde_json::Value;

pub use super::recorder::{Got, Recorder};

pub const APP_ID: &str = "00000000-aaaa-bbbb-cccc-000000000001";
pub const APP_PASSWORD: &str = "test-app-password";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const USER: &str = "29:1ann-teams-id";
pub const CHANNEL: &str = "19:approvals@thread.tacv2";
pub const WAIT: Duration = Duration::from_secs(5);

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
    let mut state = TeamsState::new(
        config(&fake),
        conv.clone(),
        urls.clone(),
        Arc::new(TtlDedupe::new(10_000)),
        Arc::new(InProcessConversations::default()),
    );
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
