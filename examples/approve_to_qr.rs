//! Approve → QR: how long after a manager clicks Approve in Slack the requester has the eSIM's
//! QR code in their DM, split into the provider's own order time and the rest.
//!
//! The product in-process as `lineup serve` composes it (the Slack routes, SlackApp, core on
//! SQLite, the provider webhook endpoint) against the provider simulator at its default
//! order time (0.5–3 s) and a fake Slack Web API that records when each call arrived. One
//! approval at a time: a correctly signed Approve click on a new line request of a new
//! employee, then the wait until the fake records the QR's `files.completeUploadExternal` in
//! that employee's DM. The order's own time is the simulator's (`created_at` → `completed_at`
//! of the order record); everything else — the click, placing the order, noticing it settled,
//! fetching the profile, the messages — is "the rest". With `--latency-ms 0` the simulator
//! answers at once, so the rest is Lineup's own share; at its default 20–200 ms a request,
//! the rest also holds the provider's API round trips.
//!
//!     cargo run --release --example approve_to_qr                      # polling, 50 approvals
//!     cargo run --release --example approve_to_qr -- --webhook         # the simulator posts order webhooks
//!     cargo run --release --example approve_to_qr -- --latency-ms 0    # no provider API latency

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pct, slack_approve_click};

use std::time::{Duration, Instant};

use clap::Parser;
use lineup_bot::slack::verify::sign;
use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::lines::request::RequestDetails;
use lineup_core::lines::request::commands::SubmitRequest;
use lineup_core::messaging::chat::Platform;
use lineup_core::provider::PollPolicy;
use lineup_simulator::{MillisRange, SimConfig, TOKEN_PATH};
use lineup_testkit::fake_slack::FakeSlack;
use lineup_testkit::world::{WEBHOOK_SECRET, World, add_employee};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const TEAM: &str = "T0ACME";
const SIGNING_SECRET: &str = "approve-to-qr";

#[derive(Parser)]
struct Args {
    /// Approvals, one after another.
    #[arg(long, default_value_t = 50)]
    approvals: usize,
    /// Register an order webhook at the simulator pointing at the server.
    #[arg(long)]
    webhook: bool,
    /// The simulator's latency per API request, "MIN-MAX" or one number of milliseconds
    /// (default: the simulator's own default).
    #[arg(long)]
    latency_ms: Option<String>,
}

/// One approval's times.
struct Approval {
    total: Duration,
    order: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = SimConfig::default();
    if let Some(latency) = &args.latency_ms {
        config.latency_ms = millis_range(latency)?;
    }
    println!(
        "{} approvals one at a time; simulator latency {}–{} ms a request, orders {}–{} ms; {}",
        args.approvals,
        config.latency_ms.min,
        config.latency_ms.max,
        config.order_delay_ms.min,
        config.order_delay_ms.max,
        if args.webhook {
            "order webhooks on"
        } else {
            "polling only"
        }
    );
    let world = World::with_simulator(
        lineup_testkit::sqlite_store().await,
        PollPolicy::default(),
        config,
        args.webhook.then_some(WEBHOOK_SECRET),
    )
    .await;
    let fake = FakeSlack::start().await;
    fake.add_user("U0MARIA", "maria@example.com");
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Slack,
            TEAM,
            Some("U0BOT"),
            "xoxb-bench",
        )
        .await?;
    let base = serve(&world.lineup, &fake).await?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let token = simulator_token(&http, &world).await?;
    if args.webhook {
        let created = http
            .post(format!("{}/enterprise/webhooks", world.sim.base_url()))
            .bearer_auth(&token)
            .json(&json!({
                "url": format!("{base}/provider/webhooks"),
                "events": ["order.completed", "order.canceled"],
                "secret": WEBHOOK_SECRET,
            }))
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "registering the webhook: {}",
            created.text().await?
        );
    }

    let mut approvals = Vec::with_capacity(args.approvals);
    for i in 0..args.approvals {
        approvals.push(approve_one(&world, &fake, &http, &base, &token, i).await?);
    }
    // A late webhook or poll must not send anything twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let qr_messages = fake.calls_to("files.completeUploadExternal");
    for i in 0..args.approvals {
        let dm = fake.dm_channel(&slack_user(i));
        let sent = qr_messages
            .iter()
            .filter(|c| c.body["channel_id"] == dm.as_str())
            .count();
        anyhow::ensure!(sent == 1, "requester {i} got {sent} QR messages");
    }

    let column = |f: &dyn Fn(&Approval) -> Duration| {
        let mut times: Vec<Duration> = approvals.iter().map(f).collect();
        times.sort();
        times
    };
    let total = column(&|a| a.total);
    let order = column(&|a| a.order);
    let rest = column(&|a| a.total.saturating_sub(a.order));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{:<38} {:>8} {:>8} {:>8}", "ms", "p50", "p95", "max");
    for (name, times) in [
        ("approve → QR in the DM", &total),
        ("provider's order time", &order),
        ("the rest (Lineup + provider API calls)", &rest),
    ] {
        println!(
            "{name:<38} {:>8.0} {:>8.0} {:>8.0}",
            ms(pct(times, 0.50)),
            ms(pct(times, 0.95)),
            ms(times.last().copied().unwrap_or_default())
        );
    }
    println!("every requester got exactly one QR message");
    Ok(())
}

/// The Slack routes and the provider webhook endpoint on one loopback port.
async fn serve(lineup: &Lineup, fake: &FakeSlack) -> anyhow::Result<String> {
    let slack = common::slack_routes(lineup, fake, SIGNING_SECRET)?;
    // What `lineup serve` mounts at /provider/webhooks.
    let webhooks = axum::Router::new()
        .route(
            "/provider/webhooks",
            axum::routing::post(
                |axum::extract::State(lineup): axum::extract::State<Lineup>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let header = lineup.shared_provider().webhook_signature_header();
                    let signature = headers.get(header).and_then(|v| v.to_str().ok());
                    match lineup
                        .accept_provider_webhook(signature, &body, OffsetDateTime::now_utc())
                        .await
                    {
                        Ok(_) => axum::http::StatusCode::OK,
                        Err(e) => {
                            eprintln!("webhook refused: {e}");
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        }
                    }
                },
            ),
        )
        .with_state(lineup.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, slack.merge(webhooks)).await });
    Ok(format!("http://{addr}"))
}

fn slack_user(i: usize) -> String {
    format!("U0E{i:04}")
}

/// A new employee asks for a line; Maria approves it in Slack; wait for the QR in their DM.
async fn approve_one(
    world: &World,
    fake: &FakeSlack,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    i: usize,
) -> anyhow::Result<Approval> {
    let name = format!("joiner{i}");
    let employee = add_employee(&world.lineup, world.tenant, &name, Some(world.maria.id)).await;
    let user = slack_user(i);
    fake.add_user(&user, &format!("{name}@example.com"));
    let request = world
        .lineup
        .submit_request(
            world.tenant,
            SubmitRequest {
                requester: employee.id,
                details: RequestDetails::NewLine {
                    plan_id: world.plans[0].id,
                    wanted_date: None,
                },
                reason: "a new joiner".into(),
                dedupe_key: format!("bench-{i}"),
            },
        )
        .await?
        .request;
    let dm = fake.dm_channel(&user);
    let body = slack_approve_click(
        TEAM,
        i as u64,
        "U0MARIA",
        &request.id.to_string(),
        &fake.response_url(&format!("approval-{i}")),
    );
    let ts = OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = sign(SIGNING_SECRET, &ts, body.as_bytes());
    let clicked = Instant::now();
    let answered = http
        .post(format!("{base}/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        answered.status().is_success(),
        "click: {}",
        answered.status()
    );
    let deadline = clicked + Duration::from_secs(60);
    let delivered = loop {
        let qr = fake
            .calls_to("files.completeUploadExternal")
            .into_iter()
            .find(|c| c.body["channel_id"] == dm.as_str());
        if let Some(call) = qr {
            break call.at;
        }
        anyhow::ensure!(Instant::now() < deadline, "no QR for approval {i} in 60 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let line = world
        .lineup
        .lines(world.tenant)
        .await?
        .into_iter()
        .find(|l| l.employee_id == employee.id)
        .ok_or_else(|| anyhow::anyhow!("no line for approval {i}"))?;
    let subscription = line
        .provider_subscription_id
        .ok_or_else(|| anyhow::anyhow!("line of approval {i} has no subscription"))?;
    Ok(Approval {
        total: delivered.duration_since(clicked),
        order: order_time(http, world, token, &subscription).await?,
    })
}

/// The provider's own time for the order that made `subscription`: from its record at the
/// simulator, created → completed.
async fn order_time(
    http: &reqwest::Client,
    world: &World,
    token: &str,
    subscription: &str,
) -> anyhow::Result<Duration> {
    let listed: Value = http
        .get(format!("{}/enterprise/orders", world.sim.base_url()))
        .query(&[("subscription_id", subscription)])
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let order = listed["_embedded"]["orders"]
        .as_array()
        .and_then(|orders| orders.first())
        .ok_or_else(|| anyhow::anyhow!("no order for {subscription}: {listed}"))?;
    let at = |field: &str| -> anyhow::Result<OffsetDateTime> {
        let text = order[field]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("order has no {field}: {order}"))?;
        Ok(OffsetDateTime::parse(text, &Rfc3339)?)
    };
    Ok((at("completed_at")? - at("created_at")?).try_into()?)
}

async fn simulator_token(http: &reqwest::Client, world: &World) -> anyhow::Result<String> {
    let answer: Value = http
        .post(format!("{}{TOKEN_PATH}", world.sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "lineup-demo-secret"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access token in {answer}"))
}

fn millis_range(text: &str) -> anyhow::Result<MillisRange> {
    let (min, max) = text.split_once('-').unwrap_or((text, text));
    Ok(MillisRange {
        min: min.trim().parse()?,
        max: max.trim().parse()?,
    })
}
