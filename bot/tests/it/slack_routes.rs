//! The Slack endpoints over a real socket: signatures, replays, retries, unknown workspaces,
//! the 3-second rule, what reaches the `Conversation` and how its answers come out, and the
//! OAuth install.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::slack_router::*;
use lineup_bot::chat::{Answer, FormAnswer, RequestForm, Speaker};
use lineup_bot::slack::inbound::{Interaction, parse_interaction, parse_slash_command};
use lineup_bot::slack::{WorkspaceEvent, render};
use lineup_core::ids::TenantId;
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::chat_message::{Action, ActionStyle, Message};
use lineup_testkit::fake_slack::{OAuthGrant, sign_slack_request};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

fn slack_speaker(user: &str) -> Speaker {
    Speaker {
        platform: Platform::Slack,
        workspace_id: TEAM.into(),
        user_id: user.into(),
        email: None,
    }
}

#[tokio::test]
async fn good_signature_reaches_the_conversation_and_the_answer_is_the_ack() {
    let app = start(Recorder::new()).await;
    let body = command_body(TEAM, "status", &app.fake.response_url("c1"));
    let r = app.post("/slack/commands", &body, true).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert_eq!(answer["blocks"][0]["text"]["text"], "You said: status");
    let cmd = parse_slash_command(body.as_bytes()).unwrap();
    assert_eq!(
        app.conv.got(),
        vec![Got::Command {
            speaker: slack_speaker("U0ANN"),
            text: "status".into(),
            dedupe: cmd.trigger_id.clone(),
        }],
        "the command's trigger id is its dedupe key"
    );
    assert_eq!(cmd.team_id, TEAM);
    assert_eq!(cmd.user_name, "ann");
    assert_eq!(cmd.channel_id, "D0ANN");
    assert_eq!(cmd.command, "/esim");
    assert_eq!(cmd.response_url, app.fake.response_url("c1"));
}

#[tokio::test]
async fn bad_missing_and_stale_signatures_are_refused() {
    let app = start(Recorder::new()).await;
    let body = command_body(TEAM, "status", &app.fake.response_url("c1"));
    let ts = now().to_string();
    let good = sign_slack_request(SECRET, &ts, body.as_bytes());
    let wrong_secret = sign_slack_request("not-the-secret", &ts, body.as_bytes());
    let cases: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("wrong secret", Some(ts.clone()), Some(wrong_secret)),
        ("garbage", Some(ts.clone()), Some("v0=deadbeef".into())),
        (
            "no v0",
            Some(ts.clone()),
            Some(good.trim_start_matches("v0=").to_string()),
        ),
        ("missing signature", Some(ts.clone()), None),
        ("missing timestamp", None, Some(good.clone())),
        (
            "other timestamp",
            Some((now() - 1).to_string()),
            Some(good.clone()),
        ),
    ];
    for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
        for (what, ts, sig) in &cases {
            let r = app
                .post_raw(path, &body, ts.as_deref(), sig.as_deref(), true, &[])
                .await;
            assert_eq!(r.status(), 401, "{path}: {what}");
        }
        // Stale both ways, correctly signed.
        for ts in [now() - 301, now() + 301] {
            let r = app.post_at(path, &body, ts, true).await;
            assert_eq!(r.status(), 401, "{path}: stale {ts}");
        }
        // Tampered body.
        let r = app
            .post_raw(
                path,
                &body.replace("status", "usage"),
                Some(&ts_now()),
                Some(&sign_now(&body)),
                true,
                &[],
            )
            .await;
        assert_eq!(r.status(), 401, "{path}: tampered");
    }
    assert!(app.conv.got().is_empty(), "handler must never be called");
}

fn ts_now() -> String {
    now().to_string()
}
fn sign_now(body: &str) -> String {
    sign_slack_request(SECRET, &ts_now(), body.as_bytes())
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = start(Recorder::new()).await;
    let body = "x".repeat(65 * 1024);
    let r = app.post("/slack/commands", &body, true).await;
    assert_eq!(r.status(), 413);
    assert!(app.conv.got().is_empty());
}

#[tokio::test]
async fn replayed_request_is_acked_but_handled_once() {
    let app = start(Recorder::new()).await;
    let body = command_body(TEAM, "usage", &app.fake.response_url("c1"));
    let ts = ts_now();
    let sig = sign_slack_request(SECRET, &ts, body.as_bytes());
    for _ in 0..3 {
        let r = app
            .post_raw("/slack/commands", &body, Some(&ts), Some(&sig), true, &[])
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(app.conv.got().len(), 1);

    // Same for an interaction.
    let payload = form_payload(&block_action_payload(
        TEAM,
        "req-1",
        &app.fake.response_url("a1"),
        json!([]),
    ));
    let sig = sign_slack_request(SECRET, &ts, payload.as_bytes());
    for _ in 0..2 {
        let r = app
            .post_raw(
                "/slack/interactions",
                &payload,
                Some(&ts),
                Some(&sig),
                true,
                &[],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    assert!(eventually(|| app.conv.got().len() == 2, WAIT).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.conv.got().len(), 2);
}

#[tokio::test]
async fn event_retry_is_not_handled_twice() {
    let app = start(Recorder::new()).await;
    let body = event_body(
        TEAM,
        "Ev0UNINSTALL",
        json!({"type": "app_uninstalled", "event_ts": "1700000000.000100"}),
    );
    let r = app.post("/slack/events", &body, false).await;
    assert_eq!(r.status(), 200);
    // Slack's retry: same event, fresh timestamp and signature, X-Slack-Retry-Num.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ts = ts_now();
    let sig = sign_slack_request(SECRET, &ts, body.as_bytes());
    let r = app
        .post_raw(
            "/slack/events",
            &body,
            Some(&ts),
            Some(&sig),
            false,
            &[
                ("x-slack-retry-num", "1"),
                ("x-slack-retry-reason", "http_timeout"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(eventually(|| !app.conv.uninstalled().is_empty(), WAIT).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.conv.uninstalled(),
        vec![WorkspaceEvent::AppUninstalled {
            team_id: TEAM.into()
        }]
    );

    // tokens_revoked is recognised too (slack-morphism has no model for it).
    let body = event_body(
        TEAM,
        "Ev0REVOKED",
        json!({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0BOT"]}, "event_ts": "1700000001.000100"}),
    );
    assert_eq!(app.post("/slack/events", &body, false).await.status(), 200);
    assert!(eventually(|| app.conv.uninstalled().len() == 2, WAIT).await);
    assert_eq!(
        app.conv.uninstalled()[1],
        WorkspaceEvent::TokensRevoked {
            team_id: TEAM.into()
        }
    );
}

#[tokio::test]
async fn url_verification_answers_the_challenge() {
    let app = start(Recorder::new()).await;
    let body = json!({"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let r = app.post("/slack/events", &body, false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[tokio::test]
async fn unknown_workspace_is_refused() {
    let app = start(Recorder::new()).await;
    let r = app
        .post(
            "/slack/commands",
            &command_body("T0STRANGER", "status", &app.fake.response_url("c1")),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().contains("isn't connected"));

    let payload = form_payload(&block_action_payload(
        "T0STRANGER",
        "req-1",
        &app.fake.response_url("a1"),
        json!([]),
    ));
    assert_eq!(
        app.post("/slack/interactions", &payload, true)
            .await
            .status(),
        200
    );
    let body = event_body(
        "T0STRANGER",
        "Ev0X",
        json!({"type": "app_uninstalled", "event_ts": "1.2"}),
    );
    assert_eq!(app.post("/slack/events", &body, false).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.conv.got().is_empty());
    assert!(app.conv.uninstalled().is_empty());
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn slow_command_is_acked_in_time_and_the_late_reply_reaches_response_url() {
    let app = start(Recorder::slow(Duration::from_millis(3500))).await;
    let started = Instant::now();
    let r = app
        .post(
            "/slack/commands",
            &command_body(TEAM, "usage", &app.fake.response_url("slow")),
            true,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(took < Duration::from_secs(3), "ack took {took:?}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert_eq!(v["text"], "Working on it…");
    let calls = app.fake.wait_for("response_url", 1, WAIT).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path_id.as_deref(), Some("slow"));
    assert_eq!(calls[0].body["response_type"], "ephemeral");
    assert_eq!(
        calls[0].body["blocks"][0]["text"]["text"],
        "You said: usage"
    );
    assert!(app.fake.violations().is_empty());
}

#[tokio::test]
async fn a_slow_block_action_is_acked_within_the_budget_and_the_answer_reaches_response_url() {
    let app = start(Recorder::slow(Duration::from_millis(3500))).await;
    let card = Message {
        title: Some("Ann asks for a line".into()),
        text: "EU 10 GB for field work".into(),
        actions: vec![Action {
            id: "request.approve".into(),
            label: "Approve".into(),
            style: ActionStyle::Primary,
            value: "req-42".into(),
            confirm: None,
        }],
        ..Message::default()
    };
    let payload = block_action_payload(
        TEAM,
        "req-42",
        &app.fake.response_url("a1"),
        json!(render::message_blocks(&card)),
    );
    let started = Instant::now();
    let r = app
        .post("/slack/interactions", &form_payload(&payload), true)
        .await;
    assert_eq!(r.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "ack took {took:?}");
    let calls = app.fake.wait_for("response_url", 1, WAIT).await;
    assert_eq!(calls[0].body["response_type"], "ephemeral");
    assert_eq!(
        calls[0].body["replace_original"], false,
        "the card stays for everyone else"
    );
    assert_eq!(
        calls[0].body["blocks"][0]["text"]["text"],
        "Clicked request.approve"
    );
    assert_eq!(
        app.conv.got(),
        vec![Got::Click {
            speaker: slack_speaker("U0BOSS"),
            action_id: "request.approve".into(),
            value: "req-42".into(),
        }]
    );
    let Interaction::BlockActions(actions) =
        parse_interaction(form_payload(&payload).as_bytes()).unwrap()
    else {
        panic!("a click")
    };
    let a = &actions[0];
    assert_eq!(a.channel_id, "D0BOSS");
    assert_eq!(a.message_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(a.thread_ts.as_deref(), Some("1699999999.000100"));
    assert_eq!(a.response_url, app.fake.response_url("a1"));
    assert!(!a.action_ts.is_empty());
    assert!(app.fake.violations().is_empty());
}

/// A replica that dies after acking a click it had not carried out would lose it: Slack does
/// not redeliver interactions. So the ack comes once the click is decided, and the answer only
/// reaches response_url after the ack.
#[tokio::test]
async fn a_block_action_is_acked_only_once_the_click_is_decided() {
    let decided_in = Duration::from_millis(400);
    let app = start(Recorder::slow(decided_in)).await;
    let card = Message {
        text: "EU 10 GB for field work".into(),
        actions: vec![Action {
            id: "request.approve".into(),
            label: "Approve".into(),
            style: ActionStyle::Primary,
            value: "req-7".into(),
            confirm: None,
        }],
        ..Message::default()
    };
    let payload = block_action_payload(
        TEAM,
        "req-7",
        &app.fake.response_url("a7"),
        json!(render::message_blocks(&card)),
    );
    let started = Instant::now();
    let r = app
        .post("/slack/interactions", &form_payload(&payload), true)
        .await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(
        took >= decided_in,
        "acked after {took:?}, before the click was decided ({decided_in:?})"
    );
    assert_eq!(app.conv.got().len(), 1);
    let calls = app.fake.wait_for("response_url", 1, WAIT).await;
    assert_eq!(
        calls[0].body["blocks"][0]["text"]["text"],
        "Clicked request.approve"
    );
}

#[tokio::test]
async fn view_submission_values_and_errors() {
    let conv = Recorder::new();
    conv.form_answer_with(FormAnswer::FieldError {
        field: "wanted_date",
        message: "Pick a date in the future".into(),
    });
    let app = start(conv).await;
    let modal = render::request_modal(&[("plan-eu".into(), "EU 10 GB".into())], "tenant=1");
    let payload = view_submission_payload(TEAM, &modal);
    let r = app
        .post("/slack/interactions", &form_payload(&payload), true)
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response_action"], "errors");
    assert_eq!(v["errors"]["wanted_date"], "Pick a date in the future");
    assert_eq!(
        app.conv.got(),
        vec![Got::RequestForm {
            speaker: slack_speaker("U0ANN"),
            form: RequestForm {
                plan_id: "plan-eu".into(),
                reason: "Field work in Spain".into(),
                wanted_date: "2026-12-01".into(),
            },
            dedupe: "view:V0MODAL".into(),
        }]
    );
    let Interaction::ViewSubmission(view) =
        parse_interaction(form_payload(&payload).as_bytes()).unwrap()
    else {
        panic!("a submission")
    };
    assert_eq!(view.callback_id, render::REQUEST_CALLBACK_ID);
    assert_eq!(view.private_metadata, "tenant=1");
}

#[tokio::test]
async fn a_form_answer_opens_a_modal_and_a_closed_form_says_the_rest_by_dm() {
    let conv = Recorder::new();
    conv.answer_with(Answer::OpenDenyForm {
        request_id: "req-9".into(),
    });
    conv.form_answer_with(FormAnswer::Done(Some(Message::text("Denied, Ann is told"))));
    let app = start(conv).await;
    let click = block_action_payload(TEAM, "req-9", &app.fake.response_url("a9"), json!([]));
    app.post("/slack/interactions", &form_payload(&click), true)
        .await;
    let opened = app.fake.wait_for("views.open", 1, WAIT).await;
    assert_eq!(opened[0].token.as_deref(), Some(BOT_TOKEN));
    assert_eq!(opened[0].body["trigger_id"], click["trigger_id"]);
    let modal = opened[0].body["view"].clone();
    assert_eq!(modal["callback_id"], render::DENY_CALLBACK_ID);

    let mut submit = view_submission_payload(TEAM, &modal);
    submit["view"]["state"] = json!({"values": {"deny_reason": {"deny_reason": {
        "type": "plain_text_input", "value": "No budget left"}}}});
    let r = app
        .post("/slack/interactions", &form_payload(&submit), true)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "", "the modal closes");
    assert!(app.conv.got().iter().any(|g| matches!(g,
        Got::DenyReason { request_id, reason, .. } if request_id == "req-9" && reason == "No budget left")));
    let dm = app.fake.wait_for("chat.postMessage", 1, WAIT).await;
    assert_eq!(dm[0].body["channel"], app.fake.dm_channel("U0ANN").as_str());
    assert!(
        dm[0].body["text"]
            .to_string()
            .contains("Denied, Ann is told")
    );
    assert!(app.fake.violations().is_empty());
}

#[tokio::test]
async fn a_replay_with_the_signature_re_cased_is_still_a_replay() {
    let app = start(Recorder::new()).await;
    let body = command_body(TEAM, "usage", &app.fake.response_url("c1"));
    let ts = ts_now();
    let sig = sign_slack_request(SECRET, &ts, body.as_bytes());
    let hex = sig.trim_start_matches("v0=");
    for signature in [
        sig.clone(),
        format!("v0={}", hex.to_ascii_uppercase()),
        format!(" {sig} "),
    ] {
        let r = app
            .post_raw(
                "/slack/commands",
                &body,
                Some(&ts),
                Some(&signature),
                true,
                &[],
            )
            .await;
        assert_eq!(r.status(), 200, "{signature}");
    }
    assert_eq!(app.conv.got().len(), 1, "handled once");
}

fn acme_grant(scopes: &[&str]) -> OAuthGrant {
    OAuthGrant {
        team_id: TEAM.into(),
        team_name: "Acme".into(),
        bot_token: "xoxb-acme".into(),
        bot_user_id: "U0BOT".into(),
        authed_user_id: "U0ADMIN".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// `GET /slack/install?state=…` as a browser follows an install link: the redirect to Slack
/// and the install cookie it sets (`name=value`, attributes separately).
async fn follow_install_link(app: &App, state: &str) -> (reqwest::Response, Option<String>) {
    let r = app
        .http
        .get(format!("{}/slack/install", app.base))
        .query(&[("state", state)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (r, cookie)
}

async fn callback(app: &App, code: &str, state: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .get(format!("{}/slack/oauth/callback", app.base))
        .query(&[("code", code), ("state", state)]);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn oauth_install_redirects_and_the_callback_exchanges_the_code() {
    let app = start(Recorder::new()).await;
    let tenant = TenantId::new();
    let state = app.states.issue(tenant, time::OffsetDateTime::now_utc());
    let (r, set_cookie) = follow_install_link(&app, &state).await;
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        loc.as_str().split('?').next().unwrap(),
        "https://slack.com/oauth/v2/authorize"
    );
    let q: BTreeMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "123.456");
    assert_eq!(q["state"], state);
    assert_eq!(
        q["redirect_uri"],
        "https://lineup.example.com/slack/oauth/callback"
    );
    assert!(q["scope"].split(',').any(|s| s == "users:read.email"));
    // The browser is marked: the cookie holds the nonce inside the signed state.
    let set_cookie = set_cookie.expect("the install link sets a cookie");
    let attributes: Vec<&str> = set_cookie.split("; ").collect();
    let cookie = attributes[0];
    assert!(cookie.starts_with("lineup_slack_install="), "{set_cookie}");
    let nonce = cookie.trim_start_matches("lineup_slack_install=");
    assert!(nonce.len() >= 32 && state.contains(nonce), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/slack"] {
        assert!(attributes.contains(&attribute), "{attribute}: {set_cookie}");
    }
    assert_eq!(
        app.http
            .get(format!("{}/slack/install", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    app.fake
        .require_client_credentials("123.456", "client-secret");
    app.fake
        .accept_oauth_code("code-1", acme_grant(&["commands", "chat:write"]));
    let r = callback(&app, "code-1", &state, Some(cookie)).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("https://lineup.example.com/settings/slack?installed={tenant}").as_str()
    );
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let installed = app.conv.installed();
    let (installed_for, install) = &installed[0];
    assert_eq!(*installed_for, tenant);
    assert_eq!(install.team_id, TEAM);
    assert_eq!(install.team_name, "Acme");
    assert_eq!(install.bot_token, "xoxb-acme");
    assert_eq!(install.bot_user_id, "U0BOT");
    assert_eq!(install.authed_user_id, "U0ADMIN");
    assert_eq!(install.scopes, vec!["commands", "chat:write"]);
    let call = &app.fake.calls_to("oauth.v2.access")[0];
    assert_eq!(call.body["code"], "code-1");
    assert_eq!(
        call.body["redirect_uri"],
        "https://lineup.example.com/slack/oauth/callback"
    );

    // The code is single-use: Slack refuses it, the page says so, the handler is not called.
    let r = callback(&app, "code-1", &state, Some(cookie)).await;
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("invalid_code"));
    // The user pressed Cancel in Slack.
    let r = app
        .http
        .get(format!(
            "{}/slack/oauth/callback?error=access_denied&state=st-123",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("cancelled"));
    assert_eq!(app.conv.installed().len(), 1);
}

#[tokio::test]
async fn a_bad_state_or_another_browsers_callback_never_reaches_slack() {
    let app = start(Recorder::new()).await;
    app.fake
        .accept_oauth_code("code-1", acme_grant(&["commands"]));
    let now = time::OffsetDateTime::now_utc();
    let tenant = TenantId::new();
    let state = app.states.issue(tenant, now);
    let (_, set_cookie) = follow_install_link(&app, &state).await;
    let set_cookie = set_cookie.unwrap();
    let cookie = set_cookie.split("; ").next().unwrap();
    let expired = app.states.issue(tenant, now - time::Duration::minutes(20));
    let forged = state.replacen(&tenant.to_string(), &TenantId::new().to_string(), 1);
    let (_, other_browser) = follow_install_link(&app, &app.states.issue(tenant, now)).await;
    let other_browser = other_browser.unwrap();
    let other_browser = other_browser.split("; ").next().unwrap();

    let cases: [(&str, &str, Option<&str>, &str); 6] = [
        (
            "forged state",
            &forged,
            Some(cookie),
            "not issued by Lineup",
        ),
        ("expired state", &expired, Some(cookie), "expired"),
        ("garbage state", "st-123", Some(cookie), "malformed"),
        ("no cookie", &state, None, "another browser"),
        (
            "another browser's cookie",
            &state,
            Some(other_browser),
            "another browser",
        ),
        (
            "empty cookie",
            &state,
            Some("lineup_slack_install="),
            "another browser",
        ),
    ];
    for (what, state, cookie, says) in cases {
        let r = callback(&app, "code-1", state, cookie).await;
        assert_eq!(r.status(), 400, "{what}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{what}: {text}");
    }
    let r = app
        .http
        .get(format!("{}/slack/oauth/callback?code=code-1", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no state");
    assert!(
        app.fake.calls_to("oauth.v2.access").is_empty(),
        "the code was never exchanged"
    );
    assert!(app.conv.installed().is_empty());

    // Install links that are bad are refused before Slack, and mark no browser.
    for bad in [forged.as_str(), expired.as_str()] {
        let (r, set_cookie) = follow_install_link(&app, bad).await;
        assert_eq!(r.status(), 400);
        assert!(set_cookie.is_none());
    }

    // The right browser with the right state: exchanged once.
    let r = callback(&app, "code-1", &state, Some(cookie)).await;
    assert_eq!(r.status(), 302);
    assert_eq!(app.fake.calls_to("oauth.v2.access").len(), 1);
}

#[test]
fn realistic_payloads_parse_with_slack_morphism_and_leniently_otherwise() {
    use lineup_bot::slack::inbound::{Interaction, parse_interaction};
    use slack_morphism::prelude::SlackInteractionEvent;
    let card = render::message_blocks(&Message::text("hi").field("a", "b"));
    let click = block_action_payload(
        TEAM,
        "req-7",
        "https://hooks.slack.com/actions/T/1/x",
        json!(card),
    );
    assert!(serde_json::from_value::<SlackInteractionEvent>(click.clone()).is_ok());
    let modal = render::deny_reason_modal("req-7");
    let submit = view_submission_payload(TEAM, &modal);
    serde_json::from_value::<SlackInteractionEvent>(submit).unwrap();

    // A block kind slack-morphism does not know: the click still comes through.
    let mut odd = click.clone();
    odd["message"]["blocks"] = json!([{"type": "some_future_block", "weird": true}]);
    odd["container"]["type"] = json!("some_future_container");
    assert!(serde_json::from_value::<SlackInteractionEvent>(odd.clone()).is_err());
    let Interaction::BlockActions(actions) =
        parse_interaction(form_payload(&odd).as_bytes()).unwrap()
    else {
        panic!()
    };
    assert_eq!(actions[0].value, "req-7");
    assert_eq!(actions[0].thread_ts.as_deref(), Some("1699999999.000100"));
    assert_eq!(actions[0].channel_id, "D0BOSS");
}
