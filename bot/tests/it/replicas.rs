//! Two servers behind a round-robin load balancer on one PostgreSQL database: what one
//! learns or handles, the other knows. Each replica has its own router state, flows and
//! transports; only the database (reached through the world's `Lineup`) is shared.

use std::time::Duration;

use lineup_bot::chat::ChatTransport;
use lineup_core::lines::request::cards;
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::chat_message::Message;
use lineup_testkit::fake_slack::sign_slack_request;
use lineup_testkit::fake_teams::message_activity;
use serde_json::json;

use crate::harness::slack::{self, ADA, SECRET, TEAM, now, rand_suffix};
use crate::harness::slack_router::event_body;
use crate::harness::teams::{self, AAD_TENANT, user_of};

/// Long enough for a handler the route spawned to have run.
const SETTLE: Duration = Duration::from_millis(500);

async fn post_slack(base: &str, path: &str, body: &str, ts: &str, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_event_redelivered_to_the_other_replica_is_handled_once() {
    let one = slack::slack(lineup_testkit::postgres_store().await).await;
    let (_, two) = slack::start_replica(&one.world, &one.fake).await;
    let lineup = &one.world.lineup;
    let body = event_body(TEAM, "Ev0REPLICA", json!({"type": "app_uninstalled"}));
    let ts = now().to_string();
    let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
    assert_eq!(
        post_slack(&one.base, "/slack/events", &body, &ts, &signature).await,
        200
    );
    let deadline = tokio::time::Instant::now() + slack::WAIT;
    while lineup
        .workspace(Platform::Slack, TEAM)
        .await
        .unwrap()
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline, "never uninstalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The admin reinstalls; then Slack retries the old event on the other replica (a new
    // signature, as Slack signs each delivery): acknowledged, and the new install stays.
    lineup
        .install_workspace(
            one.world.tenant,
            &lineup_core::audit::Actor::System,
            Platform::Slack,
            TEAM,
            Some("U0BOT"),
            slack::TOKEN,
        )
        .await
        .unwrap();
    let ts = (now() + 1).to_string();
    let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
    assert_eq!(
        post_slack(&two, "/slack/events", &body, &ts, &signature).await,
        200
    );
    tokio::time::sleep(SETTLE).await;
    assert!(
        lineup
            .workspace(Platform::Slack, TEAM)
            .await
            .unwrap()
            .is_some(),
        "the redelivered event was handled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_click_replayed_byte_for_byte_to_the_other_replica_is_acknowledged_only() {
    let one = slack::slack(lineup_testkit::postgres_store().await).await;
    let (_, two) = slack::start_replica(&one.world, &one.fake).await;
    let id = format!("replica-{}", rand_suffix());
    let body = one.click_body(TEAM, ADA, cards::APPROVE, "not-a-request", &id);
    let ts = now().to_string();
    let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
    assert_eq!(
        post_slack(&one.base, "/slack/interactions", &body, &ts, &signature).await,
        200
    );
    one.told(&id).await;
    assert_eq!(
        post_slack(&two, "/slack/interactions", &body, &ts, &signature).await,
        200,
        "a replay is acknowledged"
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!(one.fake.responses(&id).len(), 1, "handled once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_chat_learnt_by_one_replica_carries_the_other_replicas_direct_message() {
    let one = teams::teams(lineup_testkit::postgres_store().await).await;
    let two = teams::start_replica(&one.world, &one.fake).await;
    let ada = &one.world.ada;
    let ctx = one.ctx(ada);
    one.post(&message_activity(&ctx, "esim help")).await;

    let ws = one
        .world
        .lineup
        .workspace(Platform::Teams, AAD_TENANT)
        .await
        .unwrap()
        .unwrap();
    let sent = two
        .transport
        .send_direct(&ws, &user_of(ada), &Message::text("Your line is ready."))
        .await
        .unwrap();
    assert_eq!(
        sent.channel, ctx.conversation_id,
        "the chat replica one learnt"
    );
    assert!(
        one.fake.calls_to("create_conversation").is_empty(),
        "no new chat was opened"
    );
}

/// When the database cannot say whether a request was handled, Slack is asked to retry
/// rather than the request being dropped or handled twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_event_that_cannot_be_checked_gets_a_503_so_slack_retries() {
    let one = slack::slack(lineup_testkit::sqlite_store().await).await;
    one.world.lineup.store().close().await;
    let body = event_body(TEAM, "Ev0UNCHECKED", json!({"type": "app_uninstalled"}));
    let ts = now().to_string();
    let signature = sign_slack_request(SECRET, &ts, body.as_bytes());
    assert_eq!(
        post_slack(&one.base, "/slack/events", &body, &ts, &signature).await,
        503
    );
    let click = one.click_body(TEAM, ADA, cards::APPROVE, "x", "unchecked");
    let ts = now().to_string();
    let signature = sign_slack_request(SECRET, &ts, click.as_bytes());
    assert_eq!(
        post_slack(&one.base, "/slack/interactions", &click, &ts, &signature).await,
        503
    );
}
