#![allow(dead_code)]
//! Slack driven as Slack drives us: signed requests into the real routes, the real core and
//! provider simulator behind them, and a fake Slack Web API recording every call we make.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::flows::ChatFlows;
use lineup_bot::slack::{
    SlackApp, SlackClient, SlackConfig, SlackState, SlackTransport, slack_router,
};
use lineup_core::audit::Actor;
use lineup_core::ids::RequestId;
use lineup_core::lines::request::Request;
use lineup_core::lines::request::cards;
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::employee::Employee;
use lineup_testkit::fake_slack::{Call, FakeSlack, sign_slack_request};
use lineup_testkit::world::{World, add_employee, add_tenant};

use super::ChatHarness;
use serde_json::{Value, json};

pub const SECRET: &str = "flow-signing-secret";
pub const TEAM: &str = "T0ACME";
pub const TOKEN: &str = "xoxb-acme";
pub const WAIT: Duration = Duration::from_secs(15);

pub struct Slack {
    pub world: Arc<World>,
    pub flows: Arc<ChatFlows>,
    pub fake: FakeSlack,
    pub base: String,
    pub http: reqwest::Client,
}

/// Slack user ids of the world's people.
pub const ADA: &str = "U0ADA";
pub const ALAN: &str = "U0ALAN";
pub const MARIA: &str = "U0MARIA";
pub const OLIVIA: &str = "U0OLIVIA";
pub const FIONA: &str = "U0FIONA";

pub async fn slack(store: lineup_testkit::TestStore) -> Slack {
    let world = Arc::new(World::new(store).await);
    let fake = FakeSlack::start().await;
    for (user, email) in [
        (ADA, "ada@example.com"),
        (ALAN, "alan@example.com"),
        (MARIA, "maria@example.com"),
        (OLIVIA, "olivia@example.com"),
        (FIONA, "fiona@example.com"),
    ] {
        fake.add_user(user, email);
    }
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Slack,
            TEAM,
            Some("U0BOT"),
            TOKEN,
        )
        .await
        .unwrap();
    let (flows, base) = start_replica(&world, &fake).await;
    Slack {
        world,
        flows,
        fake,
        base,
        http: reqwest::Client::new(),
    }
}

/// One more server over the world's database and the same fake Slack, as a replica behind a
/// load balancer: its own router state and flows. Returns its flows and base URL.
pub async fn start_replica(world: &World, fake: &FakeSlack) -> (Arc<ChatFlows>, String) {
    let config = SlackConfig::new(
        SECRET,
        "123.456",
        "client-secret",
        "https://lineup.example.com/slack/oauth/callback",
    )
    .with_api_base_url(fake.api_url());
    let client = SlackClient::from_config(&config).unwrap();
    let flows = ChatFlows::new(
        world.lineup.clone(),
        vec![Arc::new(SlackTransport::new(client.clone()))],
    );
    let app = SlackApp::new(flows.clone(), "https://lineup.example.com/settings".into());
    let router = slack_router(SlackState::with_client(
        config,
        flows.clone(),
        app,
        client,
        Arc::new(world.lineup.clone()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (flows, format!("http://{addr}"))
}

pub use super::now;

impl Slack {
    pub async fn post(&self, path: &str, body: String, form: bool) -> reqwest::Response {
        let ts = now().to_string();
        let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
        let content_type = if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn command(&self, team: &str, user: &str, text: &str) -> Value {
        let trigger = format!("trigger-{}", uuid::Uuid::new_v4().simple());
        let body = serde_urlencoded::to_string([
            ("team_id", team),
            ("channel_id", "C0GENERAL"),
            ("user_id", user),
            ("user_name", user),
            ("command", "/esim"),
            ("text", text),
            ("response_url", &self.fake.response_url(&trigger)),
            ("trigger_id", &trigger),
        ])
        .unwrap();
        let response = self.post("/slack/commands", body, true).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap_or(Value::Null)
    }

    /// Click a button; what the clicker is told comes back through `response_url`.
    pub async fn click(&self, team: &str, user: &str, action_id: &str, value: &str) -> String {
        let id = format!("click-{}", uuid::Uuid::new_v4().simple());
        let body = self.click_body(team, user, action_id, value, &id);
        let response = self.post("/slack/interactions", body, true).await;
        assert_eq!(response.status(), 200);
        id
    }

    /// A `block_actions` payload whose answer goes to the fake's response_url `id`.
    pub fn click_body(
        &self,
        team: &str,
        user: &str,
        action_id: &str,
        value: &str,
        id: &str,
    ) -> String {
        let payload = json!({
            "type": "block_actions",
            "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "username": user, "team_id": team},
            "api_app_id": "A0LINEUP",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0X"},
            "channel": {"id": "D0X", "name": "directmessage"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "card", "blocks": []},
            "trigger_id": format!("trigger-{}", uuid::Uuid::new_v4().simple()),
            "response_url": self.fake.response_url(id),
            "actions": [{"action_id": action_id, "block_id": "actions", "type": "button",
                         "text": {"type": "plain_text", "text": "x"}, "value": value,
                         "action_ts": format!("{}.{}", now(), rand_suffix())}],
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    /// POST exactly these bytes with these signature headers.
    pub async fn post_signed(
        &self,
        path: &str,
        body: &str,
        ts: &str,
        signature: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// What the clicker was told (waits for it).
    pub async fn told(&self, click: &str) -> String {
        wait_until(|| self.fake.responses(click).first().map(|r| r.to_string())).await
    }

    /// Click and wait for what the clicker is told.
    pub async fn click_told(&self, team: &str, user: &str, action_id: &str, value: &str) -> String {
        let click = self.click(team, user, action_id, value).await;
        self.told(&click).await
    }

    pub async fn submit_view(&self, team: &str, user: &str, view: &Value, values: Value) -> Value {
        let payload = json!({
            "type": "view_submission",
            "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "username": user, "team_id": team},
            "api_app_id": "A0LINEUP",
            "trigger_id": "trigger-view",
            "view": {
                "id": format!("V{}", rand_suffix()), "team_id": team, "type": "modal",
                "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                "blocks": view["blocks"], "title": view["title"],
                "state": {"values": values}, "hash": "h", "app_id": "A0LINEUP", "bot_id": "B0BOT",
            },
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let response = self.post("/slack/interactions", body, true).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `/esim request` from Ada, then the modal filled in: the request it made.
    pub async fn request_line(&self) -> lineup_core::lines::request::Request {
        self.command(TEAM, ADA, "request").await;
        let view = self
            .fake
            .wait_for("views.open", 1, WAIT)
            .await
            .pop()
            .unwrap()
            .body["view"]
            .clone();
        let plan = self.world.plans[0].id.to_string();
        let values = json!({
            "plan": {"plan": {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "p"}, "value": plan}}},
            "reason": {"reason": {"type": "plain_text_input", "value": "on-call phone"}},
            "wanted_date": {"wanted_date": {"type": "datepicker", "selected_date": null}},
        });
        let reply = self.submit_view(TEAM, ADA, &view, values).await;
        assert!(
            reply.is_null() || reply.get("response_action").is_none(),
            "the modal closes: {reply}"
        );
        let requests = self
            .world
            .lineup
            .requests_of(self.world.tenant, self.world.ada.id)
            .await
            .unwrap();
        requests.into_iter().next().expect("the request was stored")
    }

    /// Approval cards (messages with an Approve button) posted to `channel`.
    pub async fn cards_in(&self, channel: &str, n: usize) -> Vec<Call> {
        wait_until(|| {
            let cards: Vec<Call> = self
                .fake
                .calls_to("chat.postMessage")
                .into_iter()
                .filter(|c| {
                    c.body["channel"] == channel
                        && c.body["blocks"].to_string().contains(cards::APPROVE)
                })
                .collect();
            (cards.len() >= n).then_some(cards)
        })
        .await
    }

    /// Wait until the request remembers where its `n` cards were posted (delivery runs after
    /// the ack, so a sweep right after a post could otherwise miss the newest card).
    pub async fn card_refs_saved(&self, request: lineup_core::ids::RequestId, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stored = self
                .world
                .lineup
                .request(self.world.tenant, request)
                .await
                .unwrap();
            if stored
                .chat_refs
                .platforms
                .get("slack")
                .is_some_and(|refs| refs.cards.len() >= n)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "card refs never saved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A second tenant with its own installed workspace and one person there (Mallory):
    /// her team and user id.
    pub async fn stranger_workspace(&self) -> (&'static str, &'static str) {
        let globex = add_tenant(&self.world.lineup, "globex").await;
        let mallory = add_employee(&self.world.lineup, globex, "mallory", None).await;
        self.world
            .lineup
            .install_workspace(
                globex,
                &Actor::System,
                Platform::Slack,
                "T0GLOBEX",
                Some("U0BOT2"),
                "xoxb-globex",
            )
            .await
            .unwrap();
        self.fake.add_user("U0MALLORY", mallory.email.as_str());
        ("T0GLOBEX", "U0MALLORY")
    }

    pub fn assert_within_limits(&self) {
        assert!(
            self.fake.violations().is_empty(),
            "Block Kit limits broken: {:?}",
            self.fake.violations()
        );
    }
}

pub fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}

pub async fn wait_until<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn ephemeral_text(reply: &Value) -> String {
    reply.to_string()
}

/// The Slack user id of one of the world's people (by the local part of their email).
pub fn user_of(person: &Employee) -> String {
    format!(
        "U0{}",
        person
            .email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_uppercase()
    )
}

/// Wait up to a moment for what a click told its clicker; `None` when nothing came.
async fn maybe_told(fake: &FakeSlack, click: &str, nth: usize) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    loop {
        if let Some(told) = fake.responses(click).get(nth) {
            return Some(told.to_string());
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[async_trait]
impl ChatHarness for Slack {
    fn world(&self) -> &World {
        &self.world
    }

    fn flows(&self) -> &ChatFlows {
        &self.flows
    }

    async fn request_line(&self) -> Request {
        Slack::request_line(self).await
    }

    async fn approval_cards_for(&self, who: &Employee, n: usize) {
        self.cards_in(&self.fake.dm_channel(&user_of(who)), n).await;
    }

    async fn click(&self, who: &Employee, action: &str, value: &str) -> Option<String> {
        let click = Slack::click(self, TEAM, &user_of(who), action, value).await;
        maybe_told(&self.fake, &click, 0).await
    }

    async fn replayed_click(
        &self,
        who: &Employee,
        action: &str,
        value: &str,
    ) -> (Option<String>, Option<String>) {
        let id = format!("replay-{}", rand_suffix());
        let body = self.click_body(TEAM, &user_of(who), action, value, &id);
        let ts = now().to_string();
        let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
        for _ in 0..2 {
            assert_eq!(
                self.post_signed("/slack/interactions", &body, &ts, &signature)
                    .await
                    .status(),
                200
            );
        }
        (
            maybe_told(&self.fake, &id, 0).await,
            maybe_told(&self.fake, &id, 1).await,
        )
    }

    async fn deny(&self, who: &Employee, request: RequestId, reason: &str) {
        let before = self.fake.calls_to("views.open").len();
        Slack::click(self, TEAM, &user_of(who), cards::DENY, &request.to_string()).await;
        let modal = self
            .fake
            .wait_for("views.open", before + 1, WAIT)
            .await
            .pop()
            .unwrap()
            .body["view"]
            .clone();
        let values =
            json!({"deny_reason": {"deny_reason": {"type": "plain_text_input", "value": reason}}});
        self.submit_view(TEAM, &user_of(who), &modal, values).await;
    }

    async fn direct_message_contains(&self, who: &Employee, text: &str) {
        let channel = self.fake.dm_channel(&user_of(who));
        wait_until(|| {
            self.fake
                .calls_to("chat.postMessage")
                .into_iter()
                .find(|c| {
                    c.body["channel"] == channel.as_str()
                        && (c.body["blocks"].to_string().contains(text)
                            || c.body["text"].to_string().contains(text))
                })
        })
        .await;
    }

    async fn qr_received(&self, who: &Employee) {
        let channel = self.fake.dm_channel(&user_of(who));
        wait_until(|| {
            self.fake.uploads().into_iter().find(|u| {
                u.completed
                    && u.channel.as_deref() == Some(channel.as_str())
                    && u.bytes.starts_with(b"\x89PNG")
            })
        })
        .await;
    }

    async fn forged_request_status(&self) -> u16 {
        let body = self.click_body(
            TEAM,
            &user_of(&self.world.maria),
            cards::APPROVE,
            "x",
            "forged",
        );
        let ts = now().to_string();
        let forged = sign_slack_request("not-the-secret", &ts, body.as_bytes());
        self.post_signed("/slack/interactions", &body, &ts, &forged)
            .await
            .status()
            .as_u16()
    }

    async fn stranger_clicks_approve(&self, request: RequestId) -> Option<String> {
        let (team, user) = self.stranger_workspace().await;
        let click = Slack::click(self, team, user, cards::APPROVE, &request.to_string()).await;
        maybe_told(&self.fake, &click, 0).await
    }

    fn violations(&self) -> Vec<String> {
        self.fake
            .violations()
            .into_iter()
            .map(|v| format!("{}: {:?}", v.method, v.problems))
            .collect()
    }
}
