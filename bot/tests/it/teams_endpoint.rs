//! The Teams messaging endpoint over real sockets: JWT checks, replays, parsing into the
//! `Conversation`, answers, forms and unknown tenants.

use std::time::Duration;

use crate::harness::teams_router::*;
use lineup_bot::chat::{Answer, FormAnswer, RequestForm};
use lineup_bot::teams::limits::check_card;
use lineup_bot::teams::render::{DENY_VERB, REQUEST_VERB};
use lineup_bot::teams::routes::UNKNOWN_TENANT_TEXT;
use lineup_core::messaging::chat_message::{Action, ActionStyle, Message};
use lineup_testkit::fake_teams::{
    ActivityCtx, TokenClaims, bot_added_activity, invoke_action_activity, message_activity,
    sign_activity_token, submit_activity, unix_now,
};
use serde_json::{Value, json};

#[tokio::test]
async fn mention_command_reaches_command_with_email_and_answers_privately() {
    let app = start(Recorder::new()).await;
    let activity = message_activity(&app.channel(), "<at>Lineup</at> esim cap 25 trip");
    let r = app.post(&activity).await;
    assert_eq!(r.status(), 200);
    let got = app.conv.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let Got::Command {
        speaker,
        text,
        dedupe,
    } = &got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!(text, "cap 25 trip");
    assert_eq!(speaker.workspace_id, TENANT);
    assert_eq!(speaker.user_id, USER);
    assert_eq!(speaker.email.as_deref(), Some("ann@acme.example"));
    assert!(dedupe.contains(activity["id"].as_str().unwrap()));
    // The member lookup went to the conversation the message came from.
    let lookups = app.fake.calls_to("get_member");
    assert_eq!(lookups[0].conversation.as_deref(), Some(CHANNEL));
    assert_eq!(lookups[0].target.as_deref(), Some(USER));
    // Typed in a channel: the private answer goes to the 1:1 chat, never to the channel.
    let created = app.fake.calls_to("create_conversation");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].body["members"][0]["id"], USER);
    let sends = app.fake.calls_to("send");
    assert_eq!(sends.len(), 1);
    assert_ne!(sends[0].conversation.as_deref(), Some(CHANNEL));
    let card = sends[0].card().expect("a card");
    assert_eq!(card["body"][0]["text"], "You said: cap 25 trip");
    // The service URL was learned for the tenant.
    assert_eq!(
        app.urls.0.lock().unwrap().clone(),
        vec![(TENANT.to_string(), app.fake.service_url())]
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}

#[tokio::test]
async fn personal_command_gets_a_reply_under_the_message() {
    let app = start(Recorder::new()).await;
    for text in ["/esim status", "esim status", "status"] {
        let activity = message_activity(&app.personal(), text);
        assert_eq!(app.post(&activity).await.status(), 200);
        let replies = app.fake.calls_to("reply");
        let last = replies.last().unwrap();
        assert_eq!(last.target.as_deref(), activity["id"].as_str());
        assert_eq!(
            last.conversation.as_deref(),
            activity["conversation"]["id"].as_str()
        );
        assert_eq!(last.body["replyToId"], activity["id"]);
        assert!(last.token.as_deref().unwrap().starts_with("fake-bf-token-"));
    }
    let texts: Vec<String> = app
        .conv
        .got()
        .into_iter()
        .map(|g| match g {
            Got::Command { text, .. } => text,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["status", "status", "status"]);
    // Outbound token fetched once and reused; the email looked up once and cached.
    assert_eq!(app.fake.token_requests().len(), 1);
    assert_eq!(app.fake.calls_to("get_member").len(), 1);
}

#[tokio::test]
async fn bad_tokens_are_refused_and_never_reach_the_conversation() {
    let app = start(Recorder::new()).await;
    let url = app.fake.service_url();
    let good = || TokenClaims::new(APP_ID, &url);
    let now = unix_now();
    let mut cases: Vec<(&str, Option<String>)> = vec![("missing", None)];
    let mut add = |what: &'static str, c: TokenClaims| {
        cases.push((what, Some(format!("Bearer {}", sign_activity_token(&c)))));
    };
    add(
        "expired",
        TokenClaims {
            exp: now - 400,
            nbf: now - 4000,
            ..good()
        },
    );
    add(
        "not yet valid",
        TokenClaims {
            nbf: now + 600,
            ..good()
        },
    );
    add(
        "wrong audience",
        TokenClaims {
            aud: "someone-else".into(),
            ..good()
        },
    );
    add(
        "wrong issuer",
        TokenClaims {
            iss: "https://sts.windows.net/evil/".into(),
            ..good()
        },
    );
    add(
        "unknown kid",
        TokenClaims {
            kid: Some("other-key".into()),
            ..good()
        },
    );
    add(
        "no kid",
        TokenClaims {
            kid: None,
            ..good()
        },
    );
    add(
        "other key, same kid",
        TokenClaims {
            attacker_key: true,
            ..good()
        },
    );
    add(
        "other serviceUrl",
        TokenClaims {
            serviceurl: Some("https://evil.example/".into()),
            ..good()
        },
    );
    add(
        "no serviceurl",
        TokenClaims {
            serviceurl: None,
            ..good()
        },
    );
    // A good token with its payload changed (aud swapped after signing).
    let token = sign_activity_token(&good());
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(now + 999_999);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    cases.push(("tampered payload", Some(format!("Bearer {tampered}"))));
    cases.push(("garbage", Some("Bearer not.a.jwt".into())));
    cases.push(("basic scheme", Some(format!("Basic {token}"))));

    let activity = message_activity(&app.personal(), "esim status");
    for (what, auth) in &cases {
        let r = app.post_auth(&activity, auth.as_deref()).await;
        assert_eq!(r.status(), 401, "{what}");
    }
    // The activity's serviceUrl changed under a token minted for the real one.
    let mut moved = activity.clone();
    moved["serviceUrl"] = json!("https://evil.example/");
    let r = app
        .post_auth(&moved, Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(r.status(), 401, "mismatched serviceUrl");

    assert!(app.conv.got().is_empty());
    assert!(app.fake.calls().is_empty(), "{:?}", app.fake.calls());
    assert!(app.urls.0.lock().unwrap().is_empty());
    // Unknown kids refetch the key set at most once a minute.
    assert!(app.fake.key_fetches() <= 2, "{}", app.fake.key_fetches());

    // Inside the 5-minute leeway is fine; the good token still works afterwards.
    let late = TokenClaims {
        exp: now - 120,
        nbf: now - 3600,
        ..good()
    };
    let r = app
        .post_auth(
            &activity,
            Some(&format!("Bearer {}", sign_activity_token(&late))),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.conv.got().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_arriving_while_the_keys_are_fetched_wait_for_them() {
    // Just after start-up the key set is empty; everything arriving while the first fetch
    // is on its way must wait for it, not be refused as signed by an unknown key.
    let app = std::sync::Arc::new(start(Recorder::new()).await);
    app.fake.delay_keys(Duration::from_millis(300));
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (app, activity) = (
            app.clone(),
            message_activity(&app.personal(), &format!("esim status {i}")),
        );
        posts.spawn(async move { app.post(&activity).await.status().as_u16() });
    }
    let statuses = posts.join_all().await;
    assert_eq!(statuses, vec![200; 12]);
    assert_eq!(app.fake.key_fetches(), 1);
}

#[tokio::test]
async fn a_replayed_activity_is_acknowledged_but_not_handled_twice() {
    let app = start(Recorder::new()).await;
    let activity = message_activity(&app.personal(), "esim status");
    assert_eq!(app.post(&activity).await.status(), 200);
    assert_eq!(app.post(&activity).await.status(), 200);
    assert_eq!(app.conv.got().len(), 1);
    assert_eq!(app.fake.calls_to("reply").len(), 1);

    let click = invoke_action_activity(
        &app.personal(),
        "request.approve",
        json!({"action": "request.approve", "value": "req-1"}),
        "17000001",
    );
    assert_eq!(app.post(&click).await.status(), 200);
    let again = app.post(&click).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["statusCode"], 200);
    assert_eq!(app.conv.got().len(), 2);
}

#[tokio::test]
async fn action_execute_reaches_click_and_gets_an_invoke_response() {
    let app = start(Recorder::new()).await;
    let click = invoke_action_activity(
        &app.channel(),
        "request.approve",
        json!({"action": "request.approve", "value": "req-42"}),
        "17000001",
    );
    let r = app.post(&click).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["statusCode"], 200);
    // A plain private answer is a message response: the approval card stays as the flows left it.
    assert_eq!(body["type"], "application/vnd.microsoft.activity.message");
    assert_eq!(body["value"], "Clicked request.approve");
    assert_eq!(
        app.conv.got(),
        vec![Got::Click {
            speaker: lineup_bot::chat::Speaker {
                platform: lineup_core::messaging::chat::Platform::Teams,
                workspace_id: TENANT.into(),
                user_id: USER.into(),
                email: Some("ann@acme.example".into()),
            },
            action_id: "request.approve".into(),
            value: "req-42".into(),
        }]
    );
    assert!(app.fake.posts().is_empty(), "nothing posted in the channel");

    // Without data.action the verb names the action.
    let bare = invoke_action_activity(
        &app.personal(),
        "request.deny",
        json!({"value": "req-7"}),
        "1",
    );
    assert_eq!(app.post(&bare).await.status(), 200);
    assert!(
        matches!(&app.conv.got()[1], Got::Click { action_id, value, .. } if action_id == "request.deny" && value == "req-7")
    );

    // An answer with buttons is also sent privately as a card.
    app.conv.answer_with(Answer::Private(Message {
        actions: vec![Action {
            id: "x.go".into(),
            label: "Go".into(),
            style: ActionStyle::Primary,
            value: "1".into(),
            confirm: None,
        }],
        ..Message::text("Pick one")
    }));
    let third = invoke_action_activity(
        &app.channel(),
        "request.x",
        json!({"action": "request.x", "value": "v"}),
        "1",
    );
    let body: Value = app.post(&third).await.json().await.unwrap();
    assert_eq!(body["value"], "Pick one");
    let sends = app.fake.calls_to("send");
    assert_eq!(sends.len(), 1);
    assert_eq!(
        sends[0].card().unwrap()["body"][1]["actions"][0]["verb"],
        "x.go"
    );
    assert!(app.fake.violations().is_empty());
}

#[tokio::test]
async fn forms_open_and_submissions_reach_the_form_methods() {
    let app = start(Recorder::new()).await;
    app.conv.answer_with(Answer::OpenRequestForm {
        plans: vec![
            ("p-eu".into(), "Europe 10 GB".into()),
            ("p-us".into(), "US 5 GB".into()),
        ],
    });
    let r = app
        .post(&message_activity(&app.personal(), "esim request"))
        .await;
    assert_eq!(r.status(), 200);
    let form = app.fake.calls_to("reply")[0].card().unwrap().clone();
    assert!(check_card(&form).is_ok());
    let inputs: Vec<&str> = form["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(inputs, ["plan", "reason", "wanted_date"]);
    let submit = form["body"].as_array().unwrap().last().unwrap()["actions"][0].clone();
    assert_eq!(submit["verb"], REQUEST_VERB);

    // Teams merges the inputs into the action's data.
    let mut data = submit["data"].clone();
    data["plan"] = json!("p-eu");
    data["reason"] = json!("  field work ");
    data["wanted_date"] = json!("2024-06-01");
    let r = app
        .post(&invoke_action_activity(
            &app.personal(),
            REQUEST_VERB,
            data.clone(),
            "1",
        ))
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(body["value"]["body"][0]["text"], "Request **sent**");
    let Got::RequestForm { form: got, .. } = app.conv.got()[1].clone() else {
        panic!()
    };
    assert_eq!(
        got,
        RequestForm {
            plan_id: "p-eu".into(),
            reason: "field work".into(),
            wanted_date: "2024-06-01".into()
        }
    );

    // A field error shows the form again, filled in, with the error under the field.
    app.conv.form_answer_with(FormAnswer::FieldError {
        field: "reason",
        message: "Too short".into(),
    });
    let body: Value = app
        .post(&invoke_action_activity(
            &app.personal(),
            REQUEST_VERB,
            data.clone(),
            "1",
        ))
        .await
        .json()
        .await
        .unwrap();
    let card = &body["value"];
    assert!(check_card(card).is_ok(), "{:?}", check_card(card));
    let items = card["body"].as_array().unwrap();
    let reason_at = items.iter().position(|e| e["id"] == "reason").unwrap();
    assert_eq!(items[reason_at]["value"], "field work");
    assert_eq!(
        items[reason_at + 1]["text"],
        "**Why do you need it?**: Too short"
    );
    assert_eq!(items[reason_at + 1]["color"], "Attention");
    assert_eq!(
        items.iter().find(|e| e["id"] == "plan").unwrap()["choices"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The deny form: opened by a click, sent privately, submitted with its request id.
    app.conv.form_answer_with(FormAnswer::Done(None));
    app.conv.answer_with(Answer::OpenDenyForm {
        request_id: "req-9".into(),
    });
    let body: Value = app
        .post(&invoke_action_activity(
            &app.channel(),
            "request.deny",
            json!({"action": "request.deny", "value": "req-9"}),
            "1",
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "application/vnd.microsoft.activity.message");
    let deny_form = app
        .fake
        .calls_to("send")
        .last()
        .unwrap()
        .card()
        .unwrap()
        .clone();
    let mut data =
        deny_form["body"].as_array().unwrap().last().unwrap()["actions"][0]["data"].clone();
    assert_eq!(data["action"], DENY_VERB);
    data["deny_reason"] = json!("No budget left");
    let body: Value = app
        .post(&invoke_action_activity(
            &app.personal(),
            DENY_VERB,
            data.clone(),
            "1",
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"]["body"][0]["text"], "Done.");
    assert!(matches!(app.conv.got().last().unwrap(),
        Got::DenyReason { request_id, reason, .. } if request_id == "req-9" && reason == "No budget left"));

    // Action.Submit (older clients): the data arrives as a message's value.
    let r = app
        .post(&submit_activity(&app.personal(), data, "17000005"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.conv
            .got()
            .iter()
            .filter(|g| matches!(g, Got::DenyReason { .. }))
            .count(),
        2
    );
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}

#[tokio::test]
async fn unknown_tenants_are_refused_and_bot_added_teaches_the_service_url() {
    let app = start(Recorder::new()).await;
    let stranger = ActivityCtx::personal(&app.fake.service_url(), OTHER_TENANT, APP_ID, USER);
    let r = app.post(&message_activity(&stranger, "esim status")).await;
    assert_eq!(r.status(), 200);
    let replies = app.fake.calls_to("reply");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].body["text"], UNKNOWN_TENANT_TEXT);
    let click = invoke_action_activity(
        &stranger,
        "request.approve",
        json!({"action": "request.approve", "value": "r"}),
        "1",
    );
    let body: Value = app.post(&click).await.json().await.unwrap();
    assert_eq!(body["value"], UNKNOWN_TENANT_TEXT);
    assert!(app.conv.got().is_empty());
    assert!(app.urls.0.lock().unwrap().is_empty());

    let r = app.post(&bot_added_activity(&app.channel())).await;
    assert_eq!(r.status(), 200);
    assert!(app.conv.got().is_empty());
    assert_eq!(app.urls.0.lock().unwrap().len(), 1);
    // Stored once, not on every activity.
    app.post(&message_activity(&app.personal(), "esim status"))
        .await;
    assert_eq!(app.urls.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_and_unreadable_bodies() {
    let app = start(Recorder::new()).await;
    let mut big = message_activity(&app.personal(), "esim status");
    big["text"] = json!("x".repeat(300 * 1024));
    assert_eq!(app.post(&big).await.status(), 413);
    let r = app
        .http
        .post(format!("{}/teams/messages", app.base))
        .header("authorization", format!("Bearer {}", app.good_token()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .post(format!("{}/teams/messages", app.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(app.conv.got().is_empty());
}

#[tokio::test]
async fn a_slow_answer_comes_later() {
    let app = start_with(
        Recorder::slow(Duration::from_millis(600)),
        Some(Duration::from_millis(100)),
    )
    .await;
    let click = invoke_action_activity(
        &app.personal(),
        "request.approve",
        json!({"action": "request.approve", "value": "r"}),
        "1",
    );
    let body: Value = app.post(&click).await.json().await.unwrap();
    assert_eq!(body["value"], "Working on it…");
    let replies = app.fake.wait_for("reply", 1, WAIT).await;
    assert_eq!(
        replies[0].card().unwrap()["body"][0]["text"],
        "Clicked request.approve"
    );
}
