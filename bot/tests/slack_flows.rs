//! Slack end to end: signed requests into the real routes, the real core and provider
//! simulator behind them, and a fake Slack Web API recording every call we make.

use std::sync::Arc;
use std::time::Duration;

use lineup_bot::flows::ChatFlows;
use lineup_bot::slack::{InstallState, SlackApp, SlackClient, SlackConfig, SlackTransport};
use lineup_bot::{SlackState, slack_router};
use lineup_core::audit::Actor;
use lineup_core::chat::Platform;
use lineup_core::request::{RequestState, cards};
use lineup_testkit::both_backends;
use lineup_testkit::fake_slack::{Call, FakeSlack, sign_slack_request};
use lineup_testkit::world::{World, add_employee, add_tenant};
use serde_json::{Value, json};

const SECRET: &str = "flow-signing-secret";
const TEAM: &str = "T0ACME";
const TOKEN: &str = "xoxb-acme";
const WAIT: Duration = Duration::from_secs(15);

struct Slack {
    world: Arc<World>,
    flows: Arc<ChatFlows>,
    fake: FakeSlack,
    base: String,
    http: reqwest::Client,
}

/// Slack user ids of the world's people.
const ADA: &str = "U0ADA";
const ALAN: &str = "U0ALAN";
const MARIA: &str = "U0MARIA";
const OLIVIA: &str = "U0OLIVIA";
const FIONA: &str = "U0FIONA";

async fn slack(store: lineup_testkit::TestStore) -> Slack {
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
    let app = SlackApp::new(
        flows.clone(),
        client.clone(),
        InstallState::new(b"state-key".to_vec()),
        "https://lineup.example.com/settings".into(),
    );
    let router = slack_router(SlackState::with_client(config, app.clone(), client));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Slack {
        world,
        flows,
        fake,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Slack {
    async fn post(&self, path: &str, body: String, form: bool) -> reqwest::Response {
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

    async fn command(&self, team: &str, user: &str, text: &str) -> Value {
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
    async fn click(&self, team: &str, user: &str, action_id: &str, value: &str) -> String {
        let id = format!("click-{}", uuid::Uuid::new_v4().simple());
        let response_url = self.fake.response_url(&id);
        let payload = json!({
            "type": "block_actions",
            "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "username": user, "team_id": team},
            "api_app_id": "A0LINEUP",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0X"},
            "channel": {"id": "D0X", "name": "directmessage"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "card", "blocks": []},
            "trigger_id": format!("trigger-{}", uuid::Uuid::new_v4().simple()),
            "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": "actions", "type": "button",
                         "text": {"type": "plain_text", "text": "x"}, "value": value,
                         "action_ts": format!("{}.{}", now(), rand_suffix())}],
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let response = self.post("/slack/interactions", body, true).await;
        assert_eq!(response.status(), 200);
        id
    }

    /// What the clicker was told (waits for it).
    async fn told(&self, click: &str) -> String {
        wait_until(|| self.fake.responses(click).first().map(|r| r.to_string())).await
    }

    /// Click and wait for what the clicker is told.
    async fn click_told(&self, team: &str, user: &str, action_id: &str, value: &str) -> String {
        let click = self.click(team, user, action_id, value).await;
        self.told(&click).await
    }

    async fn submit_view(&self, team: &str, user: &str, view: &Value, values: Value) -> Value {
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
    async fn request_line(&self) -> lineup_core::request::Request {
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
    async fn cards_in(&self, channel: &str, n: usize) -> Vec<Call> {
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
    async fn card_refs_saved(&self, request: lineup_core::ids::RequestId, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stored = self
                .world
                .lineup
                .request(self.world.tenant, request)
                .await
                .unwrap();
            if stored.chat_refs["slack"]["cards"]
                .as_array()
                .is_some_and(|c| c.len() >= n)
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

    fn assert_within_limits(&self) {
        assert!(
            self.fake.violations().is_empty(),
            "Block Kit limits broken: {:?}",
            self.fake.violations()
        );
    }
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}

async fn wait_until<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ephemeral_text(reply: &Value) -> String {
    reply.to_string()
}

both_backends!(
    request_approve_and_receive_the_qr_code,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        assert_eq!(request.state, RequestState::Pending);
        let maria_dm = s.fake.dm_channel(MARIA);
        let card = s.cards_in(&maria_dm, 1).await.remove(0);
        let card_text = card.body["blocks"].to_string();
        assert!(
            card_text.contains("on-call phone") && card_text.contains("Ada"),
            "the card says who and why: {card_text}"
        );

        s.click(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;

        // The card is updated in place, and the eSIM reaches Ada with its QR code.
        let ada_dm = s.fake.dm_channel(ADA);
        let upload = wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        assert_eq!(&upload.bytes[..8], b"\x89PNG\r\n\x1a\n");
        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .any(|u| u.body["channel"] == maria_dm.as_str()
                    && u.body["blocks"].to_string().contains("Approved by Maria")),
            "{updates:?}"
        );
        assert!(
            updates
                .iter()
                .all(|u| !u.body["blocks"].to_string().contains(cards::APPROVE)),
            "no stale buttons"
        );
        let delivery = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["blocks"].to_string().contains("LPA:1$")
            })
            .expect("the DM carries the LPA string");
        let text = delivery.body["blocks"].to_string();
        assert!(
            text.contains("SM-DP+")
                && text.contains("Matching ID")
                && text.contains("iPhone")
                && text.contains("Android")
        );
        let thread: Vec<String> = s
            .fake
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body["channel"] == maria_dm.as_str() && c.body.get("thread_ts").is_some())
            .map(|c| c.body["text"].to_string())
            .collect();
        assert!(
            thread.iter().any(|t| t.contains("Provisioning"))
                && thread.iter().any(|t| t.contains("Ready")),
            "{thread:?}"
        );
        let stored = s
            .world
            .lineup
            .request(s.world.tenant, request.id)
            .await
            .unwrap();
        assert_eq!(stored.state, RequestState::Fulfilled);
        assert_eq!(s.world.stats().await["subscriptions"]["total"], 1);
        s.assert_within_limits();
    }
);

both_backends!(
    deny_asks_for_a_reason_and_tells_the_requester,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        s.cards_in(&s.fake.dm_channel(MARIA), 1).await;
        s.click(TEAM, MARIA, cards::DENY, &request.id.to_string())
            .await;
        let modal = s
            .fake
            .wait_for("views.open", 2, WAIT)
            .await
            .pop()
            .unwrap()
            .body["view"]
            .clone();
        let empty = s
            .submit_view(
                TEAM,
                MARIA,
                &modal,
                json!({"deny_reason": {"deny_reason": {"type": "plain_text_input", "value": ""}}}),
            )
            .await;
        assert_eq!(
            empty["response_action"], "errors",
            "a denial needs a reason: {empty}"
        );
        s.submit_view(TEAM, MARIA, &modal, json!({"deny_reason": {"deny_reason": {"type": "plain_text_input", "value": "use the team phone"}}})).await;
        let ada_dm = s.fake.dm_channel(ADA);
        wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["blocks"].to_string().contains("use the team phone")
            })
        })
        .await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Denied
        );
        assert_eq!(s.world.stats().await["subscriptions"]["total"], 0);
        s.assert_within_limits();
    }
);

both_backends!(
    only_the_approver_decides_and_never_their_own_request,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        let id = request.id.to_string();
        let peer = s.click_told(TEAM, ALAN, cards::APPROVE, &id).await;
        assert!(
            peer.contains("only the request's approver can decide it"),
            "{peer}"
        );
        let own = s.click_told(TEAM, ADA, cards::APPROVE, &id).await;
        assert!(own.contains("you cannot decide your own request"), "{own}");
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Pending
        );
        s.assert_within_limits();
    }
);

both_backends!(
    double_clicks_and_two_approvers_at_once_give_one_decision,
    |store| async move {
        let s = Arc::new(slack(store).await);
        let request = s.request_line().await;
        let id = request.id.to_string();
        let mut clicks = tokio::task::JoinSet::new();
        for user in [MARIA, MARIA, OLIVIA, MARIA] {
            let (s, id) = (s.clone(), id.clone());
            clicks.spawn(async move { s.click(TEAM, user, cards::APPROVE, &id).await });
        }
        let mut click_ids = Vec::new();
        while let Some(click) = clicks.join_next().await {
            click_ids.push(click.unwrap());
        }
        let already = wait_until(|| {
            let told: Vec<String> = click_ids
                .iter()
                .filter_map(|c| s.fake.responses(c).first().map(|r| r.to_string()))
                .collect();
            (told.len() == 3).then_some(told)
        })
        .await;
        assert!(
            already
                .iter()
                .all(|t| t.contains("Already decided") && t.contains("Approved by")),
            "the losers are told who decided: {already:?}"
        );
        let ada_dm = s.fake.dm_channel(ADA);
        wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        let actions = s.world.audit_actions("request", &id).await;
        assert_eq!(
            actions.iter().filter(|a| *a == "request.approved").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(
            s.world.stats().await["subscriptions"]["total"],
            1,
            "one line, however many clicks"
        );
    }
);

both_backends!(
    a_waiting_request_escalates_then_expires,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        s.flows
            .run_sweeps(request.routed_at + time::Duration::hours(49))
            .await
            .unwrap();
        let olivia_dm = s.fake.dm_channel(OLIVIA);
        s.cards_in(&olivia_dm, 1).await;
        s.card_refs_saved(request.id, 2).await;
        let moved = s.fake.calls_to("chat.update");
        assert!(
            moved.iter().any(|u| u.body["channel"] == maria_dm.as_str()
                && u.body["text"].to_string().contains("Escalated")),
            "{moved:?}"
        );
        let late = s
            .click_told(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;
        assert!(late.contains("only the request's approver"), "{late}");

        s.flows.run_sweeps(request.expires_at).await.unwrap();
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Expired
        );
        let ada_dm = s.fake.dm_channel(ADA);
        wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["text"].to_string().contains("expired")
            })
        })
        .await;
        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .any(|u| u.body["channel"] == olivia_dm.as_str()
                    && u.body["blocks"].to_string().contains("Expired")),
            "{updates:?}"
        );
        s.assert_within_limits();
    }
);

both_backends!(
    cap_raises_roaming_usage_and_help_from_the_command_line,
    |store| async move {
        let s = slack(store).await;
        let help = s.command(TEAM, ADA, "help").await;
        assert!(ephemeral_text(&help).contains("/esim roaming"), "{help}");
        let bad = s.command(TEAM, ADA, "cap lots because").await;
        assert!(
            ephemeral_text(&bad).contains("`lots` is not an amount"),
            "{bad}"
        );
        let cap = s.command(TEAM, ADA, "cap 90 conference week").await;
        assert!(
            ephemeral_text(&cap).contains("finance"),
            "above the threshold goes to finance: {cap}"
        );
        s.cards_in(&s.fake.dm_channel(FIONA), 1).await;
        let usage = s.command(TEAM, ADA, "usage").await;
        assert!(ephemeral_text(&usage).contains("Days left"), "{usage}");
        let no_line = s
            .command(TEAM, ADA, "roaming FR 2030-01-01 2030-01-05 client visit")
            .await;
        assert!(
            ephemeral_text(&no_line).contains("no working line"),
            "{no_line}"
        );
        let status = s.command(TEAM, ADA, "status").await;
        assert!(ephemeral_text(&status).contains("pending"), "{status}");
        s.assert_within_limits();
    }
);

both_backends!(
    strangers_and_other_workspaces_see_nothing,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        // A second tenant with its own workspace, and someone there who shares Ada's email.
        let globex = add_tenant(&s.world.lineup, "globex").await;
        let mallory = add_employee(&s.world.lineup, globex, "mallory", None).await;
        s.world
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
        s.fake.add_user("U0MALLORY", mallory.email.as_str());
        let stolen = s
            .click_told(
                "T0GLOBEX",
                "U0MALLORY",
                cards::APPROVE,
                &request.id.to_string(),
            )
            .await;
        assert!(stolen.contains("was not found"), "{stolen}");
        let status = s.command("T0GLOBEX", "U0MALLORY", "status").await;
        assert!(
            !ephemeral_text(&status).contains("on-call phone"),
            "{status}"
        );
        let unknown = s.command(TEAM, "U0NOBODY", "status").await;
        assert!(
            ephemeral_text(&unknown).contains("couldn't find you"),
            "{unknown}"
        );
        let foreign = s.command("T0UNKNOWN", ADA, "status").await;
        assert!(
            ephemeral_text(&foreign).contains("isn't connected"),
            "{foreign}"
        );
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Pending
        );
        s.assert_within_limits();
    }
);

both_backends!(
    a_test_alert_reaches_the_finance_channel_with_its_buttons,
    |store| async move {
        let s = slack(store).await;
        let tenant = s.world.lineup.tenant(s.world.tenant).await.unwrap();
        let ws = s
            .world
            .lineup
            .workspace(Platform::Slack, TEAM)
            .await
            .unwrap()
            .unwrap();
        let alert = lineup_core::alert::test_alert(&tenant);
        let err = s
            .flows
            .post_finance_alert(&ws, Platform::Slack, &alert)
            .await
            .unwrap_err();
        assert!(err.contains("no finance channel"), "{err}");

        let mut settings = tenant.settings.clone();
        settings.finance_channel = Some("C0FINANCE".into());
        s.world
            .lineup
            .update_settings(s.world.tenant, &Actor::System, settings)
            .await
            .unwrap();
        s.flows
            .post_finance_alert(&ws, Platform::Slack, &alert)
            .await
            .unwrap();
        let posted = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| c.body["channel"] == "C0FINANCE")
            .unwrap();
        let blocks = posted.body["blocks"].to_string();
        for action in [
            lineup_core::alert::SUSPEND_LINE,
            lineup_core::alert::RAISE_CAP,
            lineup_core::alert::SNOOZE,
        ] {
            assert!(blocks.contains(action), "{blocks}");
        }
        assert_eq!(posted.token.as_deref(), Some(TOKEN));
        let told = s
            .click_told(TEAM, FIONA, lineup_core::alert::SNOOZE, "test")
            .await;
        assert!(told.contains("test alert"), "{told}");
        s.assert_within_limits();
    }
);

both_backends!(
    a_provider_failure_is_reported_to_both_sides_and_can_be_retried,
    |store| async move {
        let s = slack(store).await;
        s.world
            .sim(
                reqwest::Method::POST,
                "/_sim/faults",
                Some(json!({
                    "match": {"order_type": "activate_subscription"},
                    "action": {"cancel_with": "PROVISIONING_FAILED"},
                    "times": 1
                })),
            )
            .await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        s.click(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;
        let ada_dm = s.fake.dm_channel(ADA);
        let failure_to = |channel: String| {
            let fake = &s.fake;
            move || {
                fake.calls_to("chat.postMessage").into_iter().find(|c| {
                    c.body["channel"] == channel.as_str()
                        && c.body["blocks"].to_string().contains("PROVISIONING_FAILED")
                        && c.body["blocks"].to_string().contains(cards::RETRY)
                })
            }
        };
        wait_until(failure_to(ada_dm.clone())).await;
        wait_until(failure_to(maria_dm.clone())).await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Failed
        );

        s.click(TEAM, MARIA, cards::RETRY, &request.id.to_string())
            .await;
        wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Fulfilled
        );
        // The canceled order's subscription was abandoned by the provider; the retry made
        // the one working line.
        let stats = s.world.stats().await;
        assert_eq!(stats["subscriptions"]["active"], 1, "{stats}");
        assert_eq!(stats["subscriptions"]["pending"], 0, "{stats}");
        s.assert_within_limits();
    }
);
