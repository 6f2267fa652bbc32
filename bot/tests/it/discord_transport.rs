//! The Discord transport and client against the fake Discord API: DMs with the QR image,
//! channel messages, edits, replies, command registration, and the limits of everything
//! rendered.

use lineup_bot::chat::{ChatTransport, MessageRef, TransportError};
use lineup_bot::discord::{DiscordClient, DiscordConfig, DiscordTransport, register_commands};
use lineup_bot::discord::{limits, render};
use lineup_core::messaging::chat::Workspace;
use lineup_core::messaging::chat_message::{Action, ActionStyle, Image, Message};
use lineup_testkit::fake_discord::{APPLICATION_ID, FakeDiscord, test_public_key_hex};
use serde_json::{Value, json};

const GUILD: &str = "1400000000000000001";

fn workspace() -> Workspace {
    Workspace {
        tenant: lineup_core::ids::TenantId::new(),
        workspace_id: GUILD.into(),
        bot_user_id: None,
        bot_token: "ws-token".into(),
        settings: json!({}),
    }
}

async fn setup() -> (FakeDiscord, DiscordTransport) {
    let fake = FakeDiscord::start().await;
    let config = DiscordConfig::new(APPLICATION_ID, test_public_key_hex(), "bot-token")
        .with_api_base_url(fake.api_base_url());
    (
        fake,
        DiscordTransport::new(DiscordClient::new(config).unwrap()),
    )
}

fn card() -> Message {
    let mut m = Message::text("*Ann* asks for *EU 10 GB*")
        .field("Budget left", "€40")
        .field("Usage (30 d)", "2.1 GB");
    m.title = Some("New line request".into());
    m.context = Some("Request r-1".into());
    m.actions = vec![
        Action {
            id: "request.approve".into(),
            label: "Approve".into(),
            style: ActionStyle::Primary,
            value: "r-1".into(),
            confirm: None,
        },
        Action {
            id: "request.deny".into(),
            label: "Deny".into(),
            style: ActionStyle::Danger,
            value: "r-1".into(),
            confirm: None,
        },
    ];
    m
}

#[tokio::test]
async fn discord_send_direct_opens_a_dm_and_posts_embed_buttons_and_the_png() {
    let (fake, t) = setup().await;
    let mut m = card();
    m.image = Some(Image {
        png: b"\x89PNG\r\n\x1a\nfake".to_vec(),
        alt: "eSIM QR code".into(),
        filename: "esim-qr.png".into(),
    });
    let at = t
        .send_direct(&workspace(), "1500000000000000001", &m)
        .await
        .unwrap();
    let calls = fake.calls();
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/users/@me/channels");
    assert_eq!(calls[0].body["recipient_id"], "1500000000000000001");
    assert_eq!(calls[0].auth.as_deref(), Some("Bot ws-token"));
    let post = &calls[1];
    assert_eq!(post.path, format!("/channels/{}/messages", at.channel));
    assert_eq!(post.attachments.len(), 1);
    assert_eq!(post.attachments[0].field, "files[0]");
    assert_eq!(post.attachments[0].filename, "esim-qr.png");
    assert_eq!(post.attachments[0].bytes, m.image.as_ref().unwrap().png);
    assert_eq!(post.body["attachments"][0]["filename"], "esim-qr.png");
    let embed = &post.body["embeds"][0];
    assert_eq!(embed["title"], "New line request");
    assert_eq!(embed["description"], "**Ann** asks for **EU 10 GB**");
    assert_eq!(
        embed["fields"][0],
        json!({"name": "Budget left", "value": "€40", "inline": true})
    );
    assert_eq!(embed["footer"]["text"], "Request r-1");
    assert_eq!(embed["image"]["url"], "attachment://esim-qr.png");
    let buttons = &post.body["components"][0]["components"];
    assert_eq!(buttons[0]["style"], 1);
    assert_eq!(
        buttons[0]["custom_id"],
        format!("@{GUILD}|request.approve|r-1")
    );
    assert_eq!(buttons[1]["style"], 4);
    assert!(fake.message(&at.id).is_some());
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn discord_update_edits_and_reply_references_the_original() {
    let (fake, t) = setup().await;
    let ws = workspace();
    let at = t
        .send_channel(&ws, "1600000000000000001", &card())
        .await
        .unwrap();
    let mut decided = Message::text("*Approved* by Bob");
    decided.title = Some("New line request".into());
    t.update(&ws, &at, &decided).await.unwrap();
    let edit = &fake.calls_to(
        "PATCH",
        &format!("/channels/{}/messages/{}", at.channel, at.id),
    )[0];
    assert_eq!(edit.body["components"], json!([]), "no stale buttons");
    assert_eq!(edit.body["embeds"][0]["description"], "**Approved** by Bob");
    assert_eq!(
        fake.message(&at.id).unwrap()["embeds"][0]["description"],
        "**Approved** by Bob"
    );

    let r = t
        .reply(&ws, &at, &Message::text("Line is being provisioned."))
        .await
        .unwrap();
    assert_eq!(r.channel, at.channel);
    assert_ne!(r.id, at.id);
    let post = fake
        .calls_to("POST", &format!("/channels/{}/messages", at.channel))
        .pop()
        .unwrap();
    assert_eq!(post.body["message_reference"]["message_id"], at.id);

    // Editing a message that does not exist is an error, not a silent success.
    let missing = MessageRef {
        channel: at.channel.clone(),
        id: "1999999999999999999".into(),
    };
    let gone = t.update(&ws, &missing, &decided).await.unwrap_err();
    assert!(
        matches!(&gone, TransportError::Gone { reason } if reason.contains("404")),
        "a deleted message is gone, not worth retrying: {gone:?}"
    );
    assert_eq!(t.find_user_by_email(&ws, "ann@example.com").await, Ok(None));
    assert_eq!(t.user_email(&ws, "1500000000000000001").await, Ok(None));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn discord_a_message_breaking_a_limit_is_not_sent() {
    let (fake, t) = setup().await;
    let mut m = card();
    m.actions[0].value = "v".repeat(120);
    let err = t
        .send_channel(&workspace(), "1600000000000000001", &m)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::Refused { reason } if reason.contains("custom_id")),
        "{err:?}"
    );
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn discord_commands_register_from_the_manifest() {
    let (fake, t) = setup().await;
    let names = register_commands(t.client(), Some(GUILD)).await.unwrap();
    assert_eq!(names, vec!["esim".to_string()]);
    let put = &fake.calls_to(
        "PUT",
        &format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands"),
    )[0];
    let manifest: Value = serde_json::from_str(lineup_bot::discord::COMMANDS_JSON).unwrap();
    assert_eq!(put.body, manifest);
    let subs: Vec<&str> = manifest[0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        subs,
        ["help", "request", "status", "usage", "cap", "roaming"]
    );
    assert_eq!(
        manifest[0]["options"][4]["options"][0]["type"], 10,
        "amount is a number"
    );
    register_commands(t.client(), None).await.unwrap();
    assert_eq!(
        fake.calls_to("PUT", &format!("/applications/{APPLICATION_ID}/commands"))
            .len(),
        1
    );
}

#[test]
fn discord_everything_rendered_passes_the_limits_even_when_oversized() {
    let mut huge = Message::text("x".repeat(9000));
    huge.title = Some("t".repeat(400));
    huge.context = Some("c".repeat(3000));
    for i in 0..40 {
        huge = huge.field("l".repeat(300), format!("{i}{}", "v".repeat(2000)));
    }
    huge.actions = (0..30)
        .map(|i| Action {
            id: format!("a.{i}"),
            label: "L".repeat(100),
            style: ActionStyle::Default,
            value: format!("{i}"),
            confirm: None,
        })
        .collect();
    for m in [card(), huge, Message::text("")] {
        let p = render::message_payload(&m, Some(GUILD));
        if !m.text.is_empty() || !m.fields.is_empty() {
            limits::check_message(&p).unwrap();
        }
        limits::check_response(&render::respond_message(render::ephemeral_message(&card())))
            .unwrap();
    }
    let plans: Vec<(String, String)> = (0..40)
        .map(|i| (format!("plan-{i}"), "P".repeat(150)))
        .collect();
    limits::check_message(&render::plan_select(&plans)).unwrap();
    limits::check_message(&render::plan_select(&[])).unwrap();
    limits::check_modal(&render::request_modal("plan-1", Some(&"EU ".repeat(40)))).unwrap();
    limits::check_modal(&render::request_modal("plan-1", None)).unwrap();
    limits::check_modal(&render::deny_modal("r-1")).unwrap();
    limits::check_message(&render::open_deny_prompt("r-1")).unwrap();
    limits::check_message(&render::confirm_prompt(
        &"q".repeat(3000),
        &"l".repeat(90),
        "a|b",
    ))
    .unwrap();
    limits::check_message(&render::field_error("reason", "Too short.")).unwrap();
}
