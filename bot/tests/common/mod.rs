//! Test handler that records what reaches it, a running router, and Slack-shaped payloads.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::slack::{
    BlockAction, InstallState, Installation, Reply, SlackConfig, SlackHandler, SlashCommand,
    ViewReply, ViewSubmission, WorkspaceEvent,
};
use lineup_bot::{SlackState, slack_router};
use lineup_core::ids::TenantId;
use lineup_core::messaging::chat_message::Message;
use lineup_testkit::fake_slack::{FakeSlack, sign_slack_request};
use serde_json::{Value, json};

pub const SECRET: &str = "test-signing-secret";
pub const TEAM: &str = "T0ACME";

#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Command(SlashCommand),
    Action(BlockAction),
    View(ViewSubmission),
    Event(WorkspaceEvent),
    Installed(TenantId, Installation),
}

#[derive(Default)]
pub struct Recorder {
    pub known: HashSet<String>,
    pub delay: Duration,
    pub got: Mutex<Vec<Got>>,
    pub view_reply: Mutex<Option<ViewReply>>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            known: [TEAM.to_string()].into(),
            ..Default::default()
        })
    }
    pub fn slow(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            known: [TEAM.to_string()].into(),
            delay,
            ..Default::default()
        })
    }
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    fn push(&self, g: Got) {
        self.got.lock().unwrap().push(g);
    }
}

#[async_trait]
impl SlackHandler for Recorder {
    async fn workspace_known(&self, team_id: &str) -> bool {
        self.known.contains(team_id)
    }
    async fn slash_command(&self, cmd: SlashCommand) -> Reply {
        tokio::time::sleep(self.delay).await;
        let text = format!("You said: {}", cmd.text);
        self.push(Got::Command(cmd));
        Reply::Ephemeral(Message::text(text))
    }
    async fn block_action(&self, action: BlockAction) -> Reply {
        tokio::time::sleep(self.delay).await;
        let value = action.value.clone();
        self.push(Got::Action(action));
        Reply::ReplaceOriginal(Message::text(format!("Approved {value}")))
    }
    async fn view_submission(&self, view: ViewSubmission) -> ViewReply {
        self.push(Got::View(view));
        self.view_reply
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(ViewReply::Close)
    }
    async fn workspace_event(&self, ev: WorkspaceEvent) {
        self.push(Got::Event(ev));
    }
    async fn installed(
        &self,
        tenant: TenantId,
        _installer: Option<lineup_core::ids::UserId>,
        install: Installation,
    ) -> Result<String, String> {
        self.push(Got::Installed(tenant, install));
        Ok(format!(
            "https://lineup.example.com/settings/slack?installed={tenant}"
        ))
    }
}

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub fake: FakeSlack,
    pub handler: Arc<Recorder>,
    /// Mints install states as the server does.
    pub states: InstallState,
}

pub fn config(fake: &FakeSlack) -> SlackConfig {
    SlackConfig::new(
        SECRET,
        "123.456",
        "client-secret",
        "https://lineup.example.com/slack/oauth/callback",
    )
    .with_api_base_url(fake.api_url())
}

pub async fn start(handler: Arc<Recorder>) -> App {
    let fake = FakeSlack::start().await;
    let state = SlackState::new(config(&fake), handler.clone()).unwrap();
    let states = state.install_state().clone();
    let app = slack_router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    App {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        fake,
        handler,
        states,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl App {
    /// POSTs `body` signed like Slack at `ts`.
    pub async fn post_at(&self, path: &str, body: &str, ts: i64, form: bool) -> reqwest::Response {
        let ts = ts.to_string();
        let sig = sign_slack_request(SECRET, &ts, body.as_bytes());
        self.post_raw(path, body, Some(&ts), Some(&sig), form, &[])
            .await
    }

    pub async fn post(&self, path: &str, body: &str, form: bool) -> reqwest::Response {
        self.post_at(path, body, now(), form).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: &str,
        ts: Option<&str>,
        sig: Option<&str>,
        form: bool,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                if form {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                },
            )
            .body(body.to_string());
        if let Some(ts) = ts {
            req = req.header("x-slack-request-timestamp", ts);
        }
        if let Some(sig) = sig {
            req = req.header("x-slack-signature", sig);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

/// A slash command form body, like Slack's.
pub fn command_body(team: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", team),
        ("team_domain", "acme"),
        ("channel_id", "D0ANN"),
        ("channel_name", "directmessage"),
        ("user_id", "U0ANN"),
        ("user_name", "ann"),
        ("command", "/esim"),
        ("text", text),
        ("api_app_id", "A0LINEUP"),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ])
    .unwrap()
}

/// A `block_actions` payload for a click on `request.approve` in a message showing `blocks`.
pub fn block_action_payload(team: &str, value: &str, response_url: &str, blocks: Value) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": "U0BOSS", "username": "boss", "name": "boss", "team_id": team},
        "api_app_id": "A0LINEUP",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0BOSS", "is_ephemeral": false},
        "trigger_id": "12466734323.1395872398.3f7fe3d9e34b3f2e",
        "team": {"id": team, "domain": "acme"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "D0BOSS", "name": "directmessage"},
        "message": {
            "type": "message", "user": "U0BOT", "ts": "1700000000.000100", "bot_id": "B0BOT",
            "text": "Ann asks for a line", "blocks": blocks, "thread_ts": "1699999999.000100",
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{
            "action_id": "request.approve", "block_id": "xY1", "type": "button", "style": "primary",
            "text": {"type": "plain_text", "text": "Approve", "emoji": true},
            "value": value, "action_ts": format!("{}.123456", now()),
        }],
    })
}

pub fn form_payload(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

pub fn view_submission_payload(team: &str, view: &Value) -> Value {
    let mut v = view.clone();
    v["id"] = json!("V0MODAL");
    v["team_id"] = json!(team);
    v["hash"] = json!("1700000000.abcd");
    v["previous_view_id"] = Value::Null;
    v["root_view_id"] = json!("V0MODAL");
    v["app_id"] = json!("A0LINEUP");
    v["external_id"] = json!("");
    v["bot_id"] = json!("B0BOT");
    v["clear_on_close"] = json!(false);
    v["notify_on_close"] = json!(false);
    v["state"] = json!({"values": {
        "plan": {"plan": {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": "EU 10 GB", "emoji": true}, "value": "plan-eu"}}},
        "reason": {"reason": {"type": "plain_text_input", "value": "Field work in Spain"}},
        "wanted_date": {"wanted_date": {"type": "datepicker", "selected_date": "2026-12-01"}},
    }});
    json!({
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": "U0ANN", "username": "ann", "name": "ann", "team_id": team},
        "api_app_id": "A0LINEUP",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "trigger_id": "1337.42.abc",
        "view": v,
        "response_urls": [],
        "is_enterprise_install": false,
        "enterprise": null,
    })
}

pub fn event_body(team: &str, event_id: &str, event: Value) -> String {
    json!({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": team,
        "api_app_id": "A0LINEUP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now(),
        "authorizations": [{"enterprise_id": null, "team_id": team, "user_id": "U0BOT", "is_bot": true, "is_enterprise_install": false}],
        "is_ext_shared_channel": false,
    })
    .to_string()
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

pub fn _unused(_: BTreeMap<String, String>) {}
