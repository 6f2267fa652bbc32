//! The Slack router on a real socket with the [`Recorder`] behind it, the fake Slack Web API,
//! and Slack-shaped payloads.
#![allow(dead_code)]

use std::sync::Arc;

use lineup_bot::dedupe::TtlDedupe;
use lineup_bot::slack::{InstallState, SlackConfig, SlackState, slack_router};
use lineup_testkit::fake_slack::{FakeSlack, sign_slack_request};
use serde_json::{Value, json};

pub use super::recorder::{Got, Recorder};
pub use super::{eventually, now};

pub const SECRET: &str = "test-signing-secret";
pub const TEAM: &str = "T0ACME";
pub const BOT_TOKEN: &str = "xoxb-acme";

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub fake: FakeSlack,
    pub conv: Arc<Recorder>,
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

pub async fn start(conv: Arc<Recorder>) -> App {
    let fake = FakeSlack::start().await;
    let state = SlackState::new(
        config(&fake),
        conv.clone(),
        conv.clone(),
        Arc::new(TtlDedupe::new(10_000)),
    )
    .unwrap();
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
        conv,
        states,
    }
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
