//! `TeamsTransport` against the fake Bot Connector: 1:1 conversations, cards with the QR,
//! updates, replies, the outbound token, retries and member lookups.

use std::sync::Arc;

use crate::harness::teams_router::*;
use lineup_bot::chat::{ChatTransport, MessageRef, TransportError};
use lineup_core::ids::TenantId;
use lineup_core::messaging::chat::{ConversationKind, Workspace};
use lineup_core::messaging::chat_message::{Image, Message};
use lineup_testkit::fake_teams::message_activity;
use serde_json::json;

fn workspace(service_url: &str) -> Workspace {
    Workspace {
        tenant: TenantId::new(),
        workspace_id: TENANT.into(),
        bot_user_id: None,
        bot_token: String::new(),
        settings: json!({"service_url": service_url}),
    }
}

fn qr_message() -> Message {
    Message {
        title: Some("Your eSIM is ready".into()),
        image: Some(Image {
            png: vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13],
            alt: "eSIM QR code".into(),
            filename: "esim.png".into(),
        }),
        ..Message::text("Scan this with *Settings → Mobile data*")
    }
    .field("Line", "+44 7700 900123")
}

#[tokio::test]
async fn send_direct_opens_the_chat_once_and_posts_an_adaptive_card_with_the_qr() {
    let app = start(Recorder::new()).await;
    let t = app.state.transport();
    let ws = workspace(&app.fake.service_url());
    let first = t.send_direct(&ws, USER, &qr_message()).await.unwrap();
    let second = t
        .send_direct(&ws, USER, &Message::text("again"))
        .await
        .unwrap();
    assert_eq!(first.channel, second.channel);
    assert_ne!(first.id, second.id);

    let created = app.fake.calls_to("create_conversation");
    assert_eq!(created.len(), 1, "the 1:1 chat is reused");
    let body = &created[0].body;
    assert_eq!(body["bot"]["id"], format!("28:{APP_ID}"));
    assert_eq!(body["members"], json!([{"id": USER}]));
    assert_eq!(body["tenantId"], TENANT);
    assert_eq!(body["channelData"]["tenant"]["id"], TENANT);

    let sends = app.fake.calls_to("send");
    assert_eq!(sends.len(), 2);
    assert_eq!(
        sends[0].conversation.as_deref(),
        Some(first.channel.as_str())
    );
    let attachment = &sends[0].body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["version"], "1.5");
    let items = card["body"].as_array().unwrap();
    assert_eq!(items[0]["text"], "Your eSIM is ready");
    assert_eq!(
        items[1]["text"],
        "Scan this with **Settings → Mobile data**"
    );
    assert_eq!(items[2]["facts"][0]["title"], "Line");
    let image = items.iter().find(|i| i["type"] == "Image").unwrap();
    assert_eq!(image["url"], "data:image/png;base64,iVBORw0KGgoAAAAN");
    assert_eq!(image["altText"], "eSIM QR code");
    assert!(
        app.fake.violations().is_empty(),
        "{:?}",
        app.fake.violations()
    );
}

#[tokio::test]
async fn update_puts_reply_posts_under_and_channel_posts() {
    let app = start(Recorder::new()).await;
    let t = app.state.transport();
    let ws = workspace(&app.fake.service_url());
    let posted = t
        .send_channel(&ws, CHANNEL, &Message::text("Approve?"))
        .await
        .unwrap();
    assert_eq!(posted.channel, CHANNEL);
    t.update(&ws, &posted, &Message::text("Approved by Bob"))
        .await
        .unwrap();
    let reply = t
        .reply(&ws, &posted, &Message::text("Ann was told"))
        .await
        .unwrap();
    assert_eq!(reply.channel, CHANNEL);

    let updates = app.fake.calls_to("update");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].method, "PUT");
    assert_eq!(updates[0].conversation.as_deref(), Some(CHANNEL));
    assert_eq!(updates[0].target.as_deref(), Some(posted.id.as_str()));
    assert_eq!(
        updates[0].card().unwrap()["body"][0]["text"],
        "Approved by Bob"
    );
    let replies = app.fake.calls_to("reply");
    assert_eq!(replies[0].target.as_deref(), Some(posted.id.as_str()));
    assert_eq!(replies[0].body["replyToId"], posted.id);

    // One token for everything.
    assert_eq!(app.fake.token_requests().len(), 1);
    let req = &app.fake.token_requests()[0];
    assert_eq!(req["grant_type"], "client_credentials");
    assert_eq!(req["client_id"], APP_ID);
    assert_eq!(req["scope"], "https://api.botframework.com/.default");
    let tokens: std::collections::HashSet<_> =
        app.fake.calls().into_iter().map(|c| c.token).collect();
    assert_eq!(tokens.len(), 1);
    assert!(app.fake.violations().is_empty());
}

#[tokio::test]
async fn busy_connector_is_retried_and_a_short_lived_token_is_renewed() {
    let app = start(Recorder::new()).await;
    let t = app.state.transport();
    let ws = workspace(&app.fake.service_url());
    app.fake.fail_next("send", 429, Some(1));
    app.fake.fail_next("send", 503, None);
    let started = std::time::Instant::now();
    t.send_channel(&ws, CHANNEL, &Message::text("hi"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(app.fake.calls_to("send").len(), 3);

    app.fake.fail_next("update", 400, None);
    let at = MessageRef {
        channel: CHANNEL.into(),
        id: "1".into(),
    };
    let err = t.update(&ws, &at, &Message::text("x")).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Refused { reason } if reason.contains("400")),
        "{err:?}"
    );
    assert_eq!(app.fake.calls_to("update").len(), 1, "4xx is not retried");
}

#[tokio::test]
async fn emails_come_from_the_member_lookup_and_lookup_by_email_is_not_available() {
    let app = start(Recorder::new()).await;
    let t = app.state.transport();
    let ws = workspace(&app.fake.service_url());
    assert_eq!(
        t.find_user_by_email(&ws, "ann@acme.example").await.unwrap(),
        None
    );
    // No conversation with the user known yet.
    assert_eq!(t.user_email(&ws, USER).await.unwrap(), None);
    // Once they wrote to the bot, their chat is known.
    app.post(&message_activity(&app.personal(), "esim status"))
        .await;
    assert_eq!(
        t.user_email(&ws, USER).await.unwrap().as_deref(),
        Some("ann@acme.example")
    );
    app.fake
        .add_member("29:1bob", "Bob", None, Some("bob@acme.example"));
    t.send_direct(&ws, "29:1bob", &Message::text("hi"))
        .await
        .unwrap();
    assert_eq!(
        t.user_email(&ws, "29:1bob").await.unwrap().as_deref(),
        Some("bob@acme.example")
    );
    let known = app.state.known_conversations();
    t.send_direct(&ws, "29:1nobody", &Message::text("hi"))
        .await
        .unwrap();
    assert!(
        known
            .find(TENANT, "29:1nobody", ConversationKind::Direct)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(t.user_email(&ws, "29:1nobody").await.unwrap(), None);

    let no_url = Workspace {
        settings: json!({}),
        ..ws.clone()
    };
    let waiting = t
        .send_direct(&no_url, USER, &Message::text("x"))
        .await
        .unwrap_err();
    assert!(
        waiting.is_retryable() && waiting.to_string().contains("service URL"),
        "the first activity teaches the URL: {waiting:?}"
    );
    let _ = Arc::strong_count(&known);
}
