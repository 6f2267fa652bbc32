//! The Discord interactions endpoint over a real socket: Ed25519 signatures, PING, replays,
//! every `/esim` subcommand, buttons, the request and deny modals, unknown guilds and the
//! deferred path for a slow answer (its follow-up lands in the fake Discord).

use std::sync::Arc;
use std::time::Duration;

use lineup_bot::chat::{Answer, FormAnswer, RequestForm, Speaker};
use lineup_bot::dedupe::TtlDedupe;
use lineup_bot::discord::routes::{ALREADY_HANDLED_TEXT, UNKNOWN_GUILD_TEXT};
use lineup_bot::discord::{DiscordConfig, DiscordState, discord_router};
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::chat_message::Message;
use lineup_testkit::fake_discord::{
    APPLICATION_ID, FakeDiscord, sign_discord_request, test_public_key_hex, test_signing_key,
};
use serde_json::{Value, json};

use crate::harness::recorder::{DISCORD_GUILD, Got, Recorder};

const GUILD: &str = DISCORD_GUILD;
const OTHER_GUILD: &str = "1400000000000000009";
const ANN: &str = "1500000000000000001";

struct App {
    url: String,
    conv: Arc<Recorder>,
    fake: FakeDiscord,
    http: reqwest::Client,
}

async fn start(budget: Duration) -> App {
    let fake = FakeDiscord::start().await;
    let conv = Recorder::new();
    conv.answer_with(Answer::Nothing);
    conv.form_answer_with(FormAnswer::Done(None));
    let config = DiscordConfig::new(APPLICATION_ID, test_public_key_hex(), "bot-token")
        .with_api_base_url(fake.api_base_url());
    let state = DiscordState::new(config, conv.clone(), Arc::new(TtlDedupe::new(10_000)))
        .unwrap()
        .with_ack_budget(budget);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, discord_router(state)).await.unwrap();
    });
    App {
        url: format!("http://{addr}/discord/interactions"),
        conv,
        fake,
        http: reqwest::Client::new(),
    }
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

enum Sig {
    Good,
    Bad,
    Missing,
    Stale,
}

impl App {
    async fn send(&self, body: &Value, sig: Sig) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let ts = match sig {
            Sig::Stale => (now().parse::<i64>().unwrap() - 301).to_string(),
            _ => now(),
        };
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        match sig {
            Sig::Missing => {}
            Sig::Bad => {
                let mut tampered = raw.clone();
                tampered.push(b' ');
                req = req
                    .header(
                        "x-signature-ed25519",
                        sign_discord_request(&test_signing_key(), &ts, &tampered),
                    )
                    .header("x-signature-timestamp", &ts);
            }
            Sig::Good | Sig::Stale => {
                req = req
                    .header(
                        "x-signature-ed25519",
                        sign_discord_request(&test_signing_key(), &ts, &raw),
                    )
                    .header("x-signature-timestamp", &ts);
            }
        }
        req.body(raw).send().await.unwrap()
    }

    async fn ok(&self, body: &Value) -> Value {
        let r = self.send(body, Sig::Good).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn member(user: &str) -> Value {
    json!({"user": {"id": user, "username": "ann", "discriminator": "0", "global_name": "Ann", "avatar": null},
           "roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
           "flags": 0, "pending": false, "permissions": "2248473465835073", "nick": null, "avatar": null})
}

/// A guild interaction shaped as Discord sends it.
fn interaction(
    kind: u64,
    id: &str,
    guild: Option<&str>,
    data: Value,
    message: Option<Value>,
) -> Value {
    let mut v = json!({
        "app_permissions": "2248473465835073",
        "attachment_size_limit": 10485760,
        "application_id": APPLICATION_ID,
        "channel_id": "1600000000000000001",
        "data": data,
        "entitlements": [],
        "id": id,
        "locale": "en-US",
        "token": format!("tok-{id}"),
        "type": kind,
        "version": 1,
    });
    match guild {
        Some(g) => {
            v["guild_id"] = json!(g);
            v["guild_locale"] = json!("en-US");
            v["member"] = member(ANN);
            v["context"] = json!(0);
            v["authorizing_integration_owners"] = json!({"0": g});
        }
        None => {
            v["user"] = member(ANN)["user"].clone();
            v["context"] = json!(1);
            v["authorizing_integration_owners"] = json!({"0": GUILD});
        }
    }
    if let Some(m) = message {
        v["message"] = m;
    }
    v
}

fn command(id: &str, guild: &str, sub: &str, options: Value) -> Value {
    interaction(
        2,
        id,
        Some(guild),
        json!({"id": "1700000000000000001", "name": "esim", "type": 1,
        "options": [{"name": sub, "type": 1, "options": options}]}),
        None,
    )
}

fn bot_message(components: Value) -> Value {
    json!({"id": "1800000000000000001", "channel_id": "1600000000000000001", "type": 0, "content": "",
        "author": {"id": "1100000000000000002", "username": "Lineup", "discriminator": "0", "avatar": null, "bot": true},
        "timestamp": "2026-01-01T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
        "pinned": false, "flags": 0, "components": components})
}

fn click(id: &str, guild: Option<&str>, custom_id: &str) -> Value {
    let button = json!([{"type": 1, "components": [{"type": 2, "style": 4, "label": "Terminate", "custom_id": custom_id}]}]);
    interaction(
        3,
        id,
        guild,
        json!({"component_type": 2, "custom_id": custom_id}),
        Some(bot_message(button)),
    )
}

fn modal(id: &str, custom_id: &str, fields: &[(&str, &str)]) -> Value {
    let rows: Vec<Value> = fields
        .iter()
        .map(|(k, v)| json!({"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}))
        .collect();
    interaction(
        5,
        id,
        Some(GUILD),
        json!({"custom_id": custom_id, "components": rows}),
        Some(bot_message(json!([]))),
    )
}

fn speaker(guild: &str) -> Speaker {
    Speaker {
        platform: Platform::Discord,
        workspace_id: guild.into(),
        user_id: ANN.into(),
        email: None,
    }
}

const BUDGET: Duration = Duration::from_millis(2500);

#[tokio::test]
async fn discord_ping_is_answered_with_pong() {
    let app = start(BUDGET).await;
    let body = app.ok(&json!({"type": 1, "id": "1", "application_id": APPLICATION_ID, "token": "t", "version": 1})).await;
    assert_eq!(body, json!({"type": 1}));
}

#[tokio::test]
async fn discord_bad_missing_or_stale_signatures_are_refused_before_the_handler() {
    let app = start(BUDGET).await;
    let body = command("1900000000000000001", GUILD, "status", json!([]));
    for sig in [Sig::Bad, Sig::Missing, Sig::Stale] {
        let r = app.send(&body, sig).await;
        assert_eq!(r.status(), 401);
    }
    let ping =
        json!({"type": 1, "id": "1", "application_id": APPLICATION_ID, "token": "t", "version": 1});
    assert_eq!(app.send(&ping, Sig::Bad).await.status(), 401);
    assert!(app.conv.got().is_empty());
}

#[tokio::test]
async fn discord_fixtures_are_real_discord_shapes() {
    // The same payloads parse with serenity's strict models.
    for v in [
        command(
            "1900000000000000002",
            GUILD,
            "cap",
            json!([{"name": "amount", "type": 10, "value": 25}]),
        ),
        click("1900000000000000003", Some(GUILD), "request.approve|r-1"),
        click("1900000000000000004", None, "@1|request.approve|r-1"),
        modal("1900000000000000005", "~deny|r-1", &[("deny_reason", "no")]),
    ] {
        serde_json::from_value::<serenity::all::Interaction>(v.clone())
            .unwrap_or_else(|e| panic!("serenity rejects {v}: {e}"));
    }
}

#[tokio::test]
async fn discord_a_replayed_interaction_is_acknowledged_but_not_handled_twice() {
    let app = start(BUDGET).await;
    let body = command("1900000000000000010", GUILD, "status", json!([]));
    let raw = serde_json::to_vec(&body).unwrap();
    let ts = now();
    let sig = sign_discord_request(&test_signing_key(), &ts, &raw);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = app
            .http
            .post(&app.url)
            .header("x-signature-ed25519", &sig)
            .header("x-signature-timestamp", &ts)
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(app.conv.got().len(), 1);
    assert_eq!(answers[1]["data"]["content"], ALREADY_HANDLED_TEXT);
}

#[tokio::test]
async fn discord_a_replay_with_the_signature_re_cased_is_still_a_replay() {
    let app = start(BUDGET).await;
    let body = command("1900000000000000011", GUILD, "status", json!([]));
    let raw = serde_json::to_vec(&body).unwrap();
    let ts = now();
    let sig = sign_discord_request(&test_signing_key(), &ts, &raw);
    let mut answers = Vec::new();
    for signature in [sig.to_ascii_lowercase(), sig.to_ascii_uppercase()] {
        let r = app
            .http
            .post(&app.url)
            .header("x-signature-ed25519", &signature)
            .header("x-signature-timestamp", &ts)
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{signature}");
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(app.conv.got().len(), 1, "handled once");
    assert_eq!(answers[1]["data"]["content"], ALREADY_HANDLED_TEXT);
}

#[tokio::test]
async fn discord_every_subcommand_reaches_the_conversation_as_text() {
    let app = start(BUDGET).await;
    app.conv.answer_with(Answer::Private(Message::text("*Hi*")));
    let cases = [
        ("help", json!([]), "help"),
        ("request", json!([]), "request"),
        ("status", json!([]), "status"),
        ("usage", json!([]), "usage"),
        (
            "cap",
            json!([{"name": "amount", "type": 10, "value": 25}, {"name": "reason", "type": 3, "value": "conference week"}]),
            "cap 25 conference week",
        ),
        (
            "roaming",
            json!([{"name": "country", "type": 3, "value": "FR"}, {"name": "from", "type": 3, "value": "2026-12-01"},
            {"name": "to", "type": 3, "value": "2026-12-05"}, {"name": "reason", "type": 3, "value": "client visit"}]),
            "roaming FR 2026-12-01 2026-12-05 client visit",
        ),
    ];
    for (i, (sub, options, _)) in cases.iter().enumerate() {
        let body = app
            .ok(&command(
                &format!("19000000000000001{i:02}"),
                GUILD,
                sub,
                options.clone(),
            ))
            .await;
        assert_eq!(body["type"], 4);
        assert_eq!(body["data"]["flags"], 64);
        assert_eq!(body["data"]["embeds"][0]["description"], "**Hi**");
    }
    let calls = app.conv.got();
    assert_eq!(calls.len(), cases.len());
    for (i, (call, (_, _, text))) in calls.iter().zip(cases.iter()).enumerate() {
        assert_eq!(
            call,
            &Got::Command {
                speaker: speaker(GUILD),
                text: text.to_string(),
                dedupe: format!("discord:19000000000000001{i:02}"),
            }
        );
    }
    assert!(app.fake.violations().is_empty());
}

#[tokio::test]
async fn discord_clicks_reach_the_conversation_with_action_and_value() {
    let app = start(BUDGET).await;
    let body = app
        .ok(&click(
            "1900000000000000200",
            Some(GUILD),
            &format!("@{GUILD}|request.approve|r-1"),
        ))
        .await;
    assert_eq!(body, json!({"type": 6}));
    // In a DM Discord sends no guild: the button carries it.
    app.conv.answer_with(Answer::OpenDenyForm {
        request_id: "r-2".into(),
    });
    let body = app
        .ok(&click(
            "1900000000000000201",
            None,
            &format!("@{GUILD}|request.deny|r-2"),
        ))
        .await;
    assert_eq!(body["type"], 9);
    assert_eq!(body["data"]["custom_id"], "~deny|r-2");
    assert_eq!(
        body["data"]["components"][0]["components"][0]["custom_id"],
        "deny_reason"
    );
    assert_eq!(
        app.conv.got(),
        vec![
            Got::Click {
                speaker: speaker(GUILD),
                action_id: "request.approve".into(),
                value: "r-1".into()
            },
            Got::Click {
                speaker: speaker(GUILD),
                action_id: "request.deny".into(),
                value: "r-2".into()
            },
        ]
    );
    // A button stamped for another guild is refused.
    let body = app
        .ok(&click(
            "1900000000000000202",
            Some(GUILD),
            &format!("@{OTHER_GUILD}|request.approve|r-1"),
        ))
        .await;
    assert_eq!(body["data"]["flags"], 64);
    assert_eq!(app.conv.got().len(), 2);
}

#[tokio::test]
async fn discord_a_confirm_button_asks_first_and_the_yes_button_acts() {
    let app = start(BUDGET).await;
    let id = format!("?@{GUILD}|line.terminate|l-1");
    let body = app
        .ok(&click("1900000000000000300", Some(GUILD), &id))
        .await;
    assert_eq!(body["type"], 4);
    let yes = &body["data"]["components"][0]["components"][0];
    assert_eq!(yes["custom_id"], format!("@{GUILD}|line.terminate|l-1"));
    assert!(app.conv.got().is_empty());
    app.ok(&click(
        "1900000000000000301",
        Some(GUILD),
        yes["custom_id"].as_str().unwrap(),
    ))
    .await;
    assert_eq!(
        app.conv.got(),
        vec![Got::Click {
            speaker: speaker(GUILD),
            action_id: "line.terminate".into(),
            value: "l-1".into()
        }]
    );
}

#[tokio::test]
async fn discord_request_form_is_a_plan_select_then_a_modal() {
    let app = start(BUDGET).await;
    app.conv.answer_with(Answer::OpenRequestForm {
        plans: vec![
            ("plan-eu".into(), "EU 10 GB · €12/month".into()),
            ("plan-us".into(), "US 5 GB".into()),
        ],
    });
    let body = app
        .ok(&command("1900000000000000400", GUILD, "request", json!([])))
        .await;
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    let select = &body["data"]["components"][0]["components"][0];
    assert_eq!(select["type"], 3);
    assert_eq!(select["custom_id"], "~plan");
    assert_eq!(select["options"][0]["value"], "plan-eu");

    let pick = interaction(
        3,
        "1900000000000000401",
        Some(GUILD),
        json!({"component_type": 3, "custom_id": "~plan", "values": ["plan-eu"]}),
        Some(bot_message(body["data"]["components"].clone())),
    );
    let modal_resp = app.ok(&pick).await;
    assert_eq!(modal_resp["type"], 9);
    assert_eq!(modal_resp["data"]["custom_id"], "~request|plan-eu");
    assert_eq!(
        app.conv.got().len(),
        1,
        "choosing a plan does not reach the conversation"
    );

    app.conv
        .form_answer_with(FormAnswer::Done(Some(Message::text(
            "Request sent to your manager.",
        ))));
    let done = app
        .ok(&modal(
            "1900000000000000402",
            "~request|plan-eu",
            &[("reason", " field work "), ("wanted_date", "2026-12-01")],
        ))
        .await;
    assert_eq!(done["type"], 7, "the plan select is replaced");
    assert_eq!(done["data"]["components"], json!([]));
    assert_eq!(
        app.conv.got()[1],
        Got::RequestForm {
            speaker: speaker(GUILD),
            form: RequestForm {
                plan_id: "plan-eu".into(),
                reason: "field work".into(),
                wanted_date: "2026-12-01".into()
            },
            dedupe: "discord:1900000000000000402".into(),
        }
    );
}

#[tokio::test]
async fn discord_deny_modal_reaches_the_conversation_and_field_errors_name_the_field() {
    let app = start(BUDGET).await;
    app.conv.form_answer_with(FormAnswer::FieldError {
        field: "deny_reason",
        message: "Say why.".into(),
    });
    let body = app
        .ok(&modal(
            "1900000000000000500",
            "~deny|r-7",
            &[("deny_reason", "   ")],
        ))
        .await;
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    let text = body["data"]["content"].as_str().unwrap();
    assert!(
        text.contains("Deny reason") && text.contains("Say why."),
        "{text}"
    );
    app.conv.form_answer_with(FormAnswer::Done(None));
    let body = app
        .ok(&modal(
            "1900000000000000501",
            "~deny|r-7",
            &[("deny_reason", "over budget")],
        ))
        .await;
    assert_eq!(body, json!({"type": 6}));
    assert_eq!(
        app.conv.got(),
        vec![
            Got::DenyReason {
                speaker: speaker(GUILD),
                request_id: "r-7".into(),
                reason: "".into()
            },
            Got::DenyReason {
                speaker: speaker(GUILD),
                request_id: "r-7".into(),
                reason: "over budget".into()
            },
        ]
    );
}

#[tokio::test]
async fn discord_an_unknown_guild_is_refused() {
    let app = start(BUDGET).await;
    let body = app
        .ok(&command(
            "1900000000000000600",
            OTHER_GUILD,
            "status",
            json!([]),
        ))
        .await;
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    assert_eq!(body["data"]["content"], UNKNOWN_GUILD_TEXT);
    let body = app
        .ok(&click(
            "1900000000000000601",
            None,
            &format!("@{OTHER_GUILD}|request.approve|r-1"),
        ))
        .await;
    assert_eq!(body["data"]["content"], UNKNOWN_GUILD_TEXT);
    assert!(app.conv.got().is_empty());
}

#[tokio::test]
async fn discord_a_slow_answer_is_deferred_then_edits_the_original_response() {
    let app = start(Duration::from_millis(200)).await;
    app.conv.set_delay(Duration::from_millis(700));
    app.conv
        .answer_with(Answer::Private(Message::text("Your usage: *3 GB*")));
    let body = app
        .ok(&command("1900000000000000700", GUILD, "usage", json!([])))
        .await;
    assert_eq!(body, json!({"type": 5, "data": {"flags": 64}}));
    let path = format!("/webhooks/{APPLICATION_ID}/tok-1900000000000000700/messages/@original");
    let calls = app
        .fake
        .wait_for(Duration::from_secs(5), |c| c.iter().any(|c| c.path == path))
        .await;
    let edit = calls
        .iter()
        .find(|c| c.path == path)
        .expect("the follow-up edits @original");
    assert_eq!(edit.method, "PATCH");
    assert_eq!(
        edit.body["embeds"][0]["description"],
        "Your usage: **3 GB**"
    );

    // A slow click is acked with type 6; its answer comes as an ephemeral follow-up.
    let body = app
        .ok(&click(
            "1900000000000000701",
            Some(GUILD),
            "request.approve|r-1",
        ))
        .await;
    assert_eq!(body, json!({"type": 6}));
    let path = format!("/webhooks/{APPLICATION_ID}/tok-1900000000000000701");
    let calls = app
        .fake
        .wait_for(Duration::from_secs(5), |c| c.iter().any(|c| c.path == path))
        .await;
    let follow = calls.iter().find(|c| c.path == path).expect("a follow-up");
    assert_eq!(follow.method, "POST");
    assert_eq!(follow.body["flags"], 64);
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}
