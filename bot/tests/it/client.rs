//! `SlackClient` calls land in the fake Slack with the right method, token and body.

use std::time::{Duration, Instant};

use lineup_bot::slack::client::RetryPolicy;
use lineup_bot::slack::{SlackApiError, SlackClient, render};
use lineup_core::messaging::chat_message::Message;
use lineup_testkit::fake_slack::FakeSlack;
use serde_json::json;

const TOKEN: &str = "xoxb-acme-token";

async fn setup() -> (FakeSlack, SlackClient) {
    let fake = FakeSlack::start().await;
    let client = SlackClient::new(&fake.api_url(), "123.456", "secret").unwrap();
    (fake, client)
}

#[tokio::test]
async fn messages_dms_views_and_users() {
    let (fake, client) = setup().await;
    let msg = Message::text("Your line is ready").field("Plan", "EU 10 GB");
    let blocks = render::message_blocks(&msg);

    let dm = client.open_dm(TOKEN, "U0ANN").await.unwrap();
    assert!(dm.starts_with('D'));
    assert_eq!(
        client.open_dm(TOKEN, "U0ANN").await.unwrap(),
        dm,
        "one DM per user"
    );
    assert_ne!(client.open_dm(TOKEN, "U0BOB").await.unwrap(), dm);

    let ts1 = client
        .post_message(TOKEN, &dm, "Your line is ready", &blocks, None)
        .await
        .unwrap();
    let ts2 = client
        .post_message(TOKEN, &dm, "Thread reply", &[], Some(&ts1))
        .await
        .unwrap();
    assert!(ts2 > ts1, "{ts1} < {ts2}");
    client
        .update_message(TOKEN, &dm, &ts1, "Updated", &blocks)
        .await
        .unwrap();
    let eph = client
        .post_ephemeral(TOKEN, "C0APPROVALS", "U0ANN", "psst", &blocks)
        .await
        .unwrap();
    assert!(!eph.is_empty());

    let posts = fake.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].token.as_deref(), Some(TOKEN));
    assert_eq!(posts[0].body["channel"], dm);
    assert_eq!(posts[0].body["blocks"], json!(blocks));
    assert!(posts[0].body.get("thread_ts").is_none());
    assert_eq!(posts[1].body["thread_ts"], ts1);
    let upd = &fake.calls_to("chat.update")[0];
    assert_eq!(
        (upd.body["channel"].as_str(), upd.body["ts"].as_str()),
        (Some(dm.as_str()), Some(ts1.as_str()))
    );
    assert_eq!(fake.calls_to("chat.postEphemeral")[0].body["user"], "U0ANN");
    assert_eq!(
        fake.calls_to("conversations.open")[0].body["users"],
        json!(["U0ANN"])
    );

    let modal = render::request_modal(&[("p1".into(), "EU 10 GB".into())], "meta");
    let view_id = client
        .open_view(TOKEN, "123.456.abc", &modal)
        .await
        .unwrap();
    assert!(view_id.starts_with('V'));
    let open = &fake.calls_to("views.open")[0];
    assert_eq!(open.body["trigger_id"], "123.456.abc");
    assert_eq!(open.body["view"], modal);

    fake.add_user("U0ANN", "ann@acme.example");
    assert_eq!(
        client
            .lookup_user_by_email(TOKEN, "ann@acme.example")
            .await
            .unwrap()
            .as_deref(),
        Some("U0ANN")
    );
    assert_eq!(
        client
            .lookup_user_by_email(TOKEN, "nobody@acme.example")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        client.user_email(TOKEN, "U0ANN").await.unwrap().as_deref(),
        Some("ann@acme.example")
    );
    assert_eq!(
        client
            .user_email(TOKEN, "U0GHOST")
            .await
            .unwrap_err()
            .code(),
        Some("user_not_found")
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn png_upload_goes_through_the_upload_url_flow() {
    let (fake, client) = setup().await;
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    let file_id = client
        .upload_png(
            TOKEN,
            "D0ANN",
            &png,
            "esim.png",
            "Your eSIM QR code",
            Some("1700000000.000100"),
        )
        .await
        .unwrap();
    let ups = fake.uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].file_id, file_id);
    assert_eq!(ups[0].filename, "esim.png");
    assert_eq!(ups[0].bytes, png);
    assert!(ups[0].completed);
    assert_eq!(ups[0].channel.as_deref(), Some("D0ANN"));
    assert_eq!(ups[0].title.as_deref(), Some("Your eSIM QR code"));
    assert_eq!(ups[0].thread_ts.as_deref(), Some("1700000000.000100"));
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal"
        ]
    );
    assert_eq!(
        fake.calls_to("files.getUploadURLExternal")[0].body["length"],
        "7"
    );
}

#[tokio::test]
async fn slack_errors_are_typed_and_429_is_retried_within_a_bound() {
    let (fake, client) = setup().await;
    fake.fail_next("chat.postMessage", "channel_not_found");
    let err = client
        .post_message(TOKEN, "C0NOPE", "hi", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("channel_not_found"));
    assert!(matches!(err, SlackApiError::Api { ref method, .. } if method == "chat.postMessage"));

    fake.revoke_token("xoxb-revoked");
    let err = client
        .post_message("xoxb-revoked", "C0", "hi", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_auth"));

    // One 429 with Retry-After: 1 → waits about a second, then succeeds.
    fake.rate_limit_next("chat.postMessage", 1);
    let started = Instant::now();
    client
        .post_message(TOKEN, "C0", "hi", &[], None)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));

    // The wait is capped and the retries are bounded.
    let client = client.with_retry(RetryPolicy {
        max_retries: 1,
        max_wait: Duration::from_millis(50),
    });
    fake.rate_limit_next("chat.postMessage", 60);
    fake.rate_limit_next("chat.postMessage", 60);
    let started = Instant::now();
    let err = client
        .post_message(TOKEN, "C0", "hi", &[], None)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(err, SlackApiError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(60))
    );
}

#[tokio::test]
async fn respond_posts_to_the_response_url() {
    let (fake, client) = setup().await;
    let body = json!({"response_type": "ephemeral", "text": "Done"});
    client
        .respond(&fake.response_url("r9"), &body)
        .await
        .unwrap();
    assert_eq!(fake.responses("r9"), vec![body]);
    assert!(fake.calls_to("response_url")[0].token.is_none());
}
