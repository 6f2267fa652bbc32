//! What the load generators share: percentiles, the CPU time they used, a Slack click and the
//! Slack routes.

use std::time::Duration;

use serde_json::json;

/// The allocator the `lineup` binary ships with (`src/main.rs`): a load generator that runs
/// the product in-process measures it as it runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `p` quantile (0–1) of latencies sorted ascending; zero when there are none.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The store a full-stack run puts core on: a throwaway PostgreSQL started from this machine's
/// binaries (on the same cores, as a one-box deployment runs it) or a SQLite file.
#[allow(dead_code)] // not every load generator runs the whole product
pub async fn store(postgres: bool) -> lineup_testkit::TestStore {
    if postgres {
        lineup_testkit::postgres_store().await
    } else {
        lineup_testkit::sqlite_store().await
    }
}

/// User plus system CPU time this process has used.
#[allow(dead_code)] // not every load generator reports CPU
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name; 100 ticks a second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A `block_actions` form body: `user` clicks Approve on request `value`, answers going to
/// `response_url`; `seq` makes the trigger and action timestamp unique.
#[allow(dead_code)] // the Slack load generators only
pub fn slack_approve_click(
    team: &str,
    seq: u64,
    user: &str,
    value: &str,
    response_url: &str,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let p = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "load", "name": "load", "team_id": team},
        "api_app_id": "A0LINEUP",
        "token": "unused",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0LOAD", "is_ephemeral": false},
        "trigger_id": format!("{seq}.1.load"),
        "team": {"id": team, "domain": "load"},
        "channel": {"id": "D0LOAD", "name": "directmessage"},
        "message": {"type": "message", "user": "U0BOT", "ts": "1700000000.000100", "text": "card",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "card"}}]},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{"action_id": "request.approve", "block_id": "b", "type": "button",
            "text": {"type": "plain_text", "text": "Approve"}, "value": value,
            "action_ts": format!("{}.{:06}", now.as_secs(), seq % 1_000_000)}],
    });
    serde_urlencoded::to_string([("payload", p.to_string())]).expect("form encoding")
}

/// The Slack routes as `lineup serve` mounts them, their Web API calls going to `fake`.
#[allow(dead_code)] // the Slack load generators only
pub fn slack_routes(
    lineup: &lineup_core::Lineup,
    fake: &lineup_testkit::fake_slack::FakeSlack,
    signing_secret: &str,
) -> anyhow::Result<axum::Router> {
    use lineup_bot::slack::{
        SlackApp, SlackClient, SlackConfig, SlackState, SlackTransport, slack_router,
    };
    let config = SlackConfig::new(
        signing_secret,
        "load",
        "load",
        "http://127.0.0.1/slack/oauth/callback",
    )
    .with_api_base_url(fake.api_url());
    let client = SlackClient::from_config(&config)?;
    let flows = lineup_bot::flows::ChatFlows::new(
        lineup.clone(),
        vec![std::sync::Arc::new(SlackTransport::new(client.clone()))],
    );
    let app = SlackApp::new(flows.clone(), "/".into());
    Ok(slack_router(SlackState::with_client(
        config,
        flows,
        app,
        client,
        std::sync::Arc::new(lineup.clone()),
    )))
}
