//! Open-loop load on the Discord and Microsoft Teams endpoints, the counterpart of
//! `slack_ack_load --full-stack`: the whole product in this process (core on SQLite, the
//! provider simulator, the platform's fake API) and every click a manager approving a real
//! request, so the first click decides it and the rest are double clicks told who decided.
//! Each request is signed as the platform signs it: Discord's Ed25519 over timestamp and body
//! (a fresh signature per interaction), Teams' Bot Framework RS256 JWT against the fake's
//! published keys (one token for the run, as the Bot Connector reuses its token for an hour;
//! the server verifies it on every activity). Latency is measured from each request's
//! scheduled send time, so a stalled server is not hidden.
//!
//!     cargo run --release --example chat_ack_load -- --platform discord --rate 500 --seconds 20
//!     cargo run --release --example chat_ack_load -- --platform teams --rate 500 --seconds 20
//! `--postgres` puts core on a throwaway PostgreSQL instead of SQLite.

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cpu_time, pct};

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use lineup_bot::flows::ChatFlows;
use lineup_core::audit::Actor;
use lineup_core::lines::request::RequestDetails;
use lineup_core::lines::request::commands::SubmitRequest;
use lineup_core::messaging::chat::Platform;
use lineup_testkit::world::World;
use serde_json::{Value, json};

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Discord,
    Teams,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    platform: Which,
    /// Requests per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Core on a throwaway PostgreSQL instead of SQLite.
    #[arg(long)]
    postgres: bool,
}

/// How to send one click: the URL, and a signed request for click number `seq`.
trait Clicker: Send + Sync {
    fn url(&self) -> &str;
    fn request(&self, client: &reqwest::Client, seq: u64) -> reqwest::RequestBuilder;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

async fn submitted_request(world: &World) -> String {
    world
        .lineup
        .submit_request(
            world.tenant,
            SubmitRequest {
                requester: world.ada.id,
                details: RequestDetails::NewLine {
                    plan_id: world.plans[0].id,
                    wanted_date: None,
                },
                reason: "load test".into(),
                dedupe_key: "load".into(),
            },
        )
        .await
        .unwrap()
        .request
        .id
        .to_string()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

const GUILD: &str = "1400000000000000001";
const MARIA_DISCORD: &str = "1500000000000000101";

struct DiscordClicks {
    url: String,
    /// Discord's signature over timestamp and body.
    sign: fn(&str, &[u8]) -> String,
    request_id: String,
}

impl Clicker for DiscordClicks {
    fn url(&self) -> &str {
        &self.url
    }
    fn request(&self, client: &reqwest::Client, seq: u64) -> reqwest::RequestBuilder {
        let id = format!("19{:017}", seq);
        let body = json!({
            "application_id": lineup_testkit::fake_discord::APPLICATION_ID,
            "channel_id": "1600000000000000001", "id": id, "token": format!("tok-{id}"),
            "type": 3, "version": 1, "guild_id": GUILD, "locale": "en-US",
            "data": {"component_type": 2, "custom_id": format!("request.approve|{}", self.request_id)},
            "member": {"user": {"id": MARIA_DISCORD, "username": "maria", "discriminator": "0",
                "global_name": "Maria", "avatar": null}, "roles": [], "permissions": "2248473465835073"},
            "message": {"id": "1800000000000000001", "channel_id": "1600000000000000001", "type": 0,
                "content": "", "author": {"id": lineup_testkit::fake_discord::BOT_USER_ID,
                "username": "Lineup", "discriminator": "0", "avatar": null, "bot": true},
                "timestamp": "2026-01-01T00:00:00.000000+00:00", "components": []},
        })
        .to_string();
        let ts = unix_now().to_string();
        let signature = (self.sign)(&ts, body.as_bytes());
        client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", ts)
            .body(body)
    }
}

async fn discord(world: &World) -> (Box<dyn Clicker>, Box<dyn std::any::Any + Send>) {
    use lineup_bot::discord::{
        DiscordClient, DiscordConfig, DiscordState, DiscordTransport, discord_router,
    };
    use lineup_testkit::fake_discord::{
        FakeDiscord, sign_discord_request, test_public_key_hex, test_signing_key,
    };
    let fake = FakeDiscord::start().await;
    let config = DiscordConfig::new(
        lineup_testkit::fake_discord::APPLICATION_ID,
        test_public_key_hex(),
        "bot-token",
    )
    .with_api_base_url(fake.api_base_url());
    let client = DiscordClient::new(config).unwrap();
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Discord,
            GUILD,
            None,
            "",
        )
        .await
        .unwrap();
    world
        .lineup
        .link_chat_user(
            world.tenant,
            world.maria.id,
            Platform::Discord,
            MARIA_DISCORD,
        )
        .await
        .unwrap();
    let flows = ChatFlows::new(
        world.lineup.clone(),
        vec![Arc::new(DiscordTransport::new(client.clone()))],
    );
    let router = discord_router(
        DiscordState::with_client(client, flows, Arc::new(world.lineup.clone())).unwrap(),
    );
    let base = serve(router).await;
    let clicks = DiscordClicks {
        url: format!("{base}/discord/interactions"),
        sign: |ts, body| sign_discord_request(&test_signing_key(), ts, body),
        request_id: submitted_request(world).await,
    };
    (Box::new(clicks), Box::new(fake))
}

const APP_ID: &str = "00000000-aaaa-bbbb-cccc-000000000001";
const AAD_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const MARIA_TEAMS: &str = "29:1maria";

struct TeamsClicks {
    url: String,
    token: String,
    ctx: lineup_testkit::fake_teams::ActivityCtx,
    request_id: String,
}

impl Clicker for TeamsClicks {
    fn url(&self) -> &str {
        &self.url
    }
    fn request(&self, client: &reqwest::Client, _seq: u64) -> reqwest::RequestBuilder {
        let activity = lineup_testkit::fake_teams::invoke_action_activity(
            &self.ctx,
            "request.approve",
            json!({"action": "request.approve", "value": self.request_id}),
            "1700000000001",
        );
        client
            .post(&self.url)
            .header("authorization", format!("Bearer {}", self.token))
            .json(&activity)
    }
}

async fn teams(world: &World) -> (Box<dyn Clicker>, Box<dyn std::any::Any + Send>) {
    use lineup_bot::teams::{TeamsConfig, TeamsOutbound, TeamsState, teams_router};
    use lineup_testkit::fake_teams::{ActivityCtx, FakeTeams, TokenClaims, sign_activity_token};
    let fake = FakeTeams::start(APP_ID, "test-app-password").await;
    fake.add_member(
        MARIA_TEAMS,
        &world.maria.full_name(),
        Some(world.maria.email.as_str()),
        Some(world.maria.email.as_str()),
    );
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Teams,
            AAD_TENANT,
            None,
            "",
        )
        .await
        .unwrap();
    world
        .lineup
        .set_workspace_setting(
            Platform::Teams,
            AAD_TENANT,
            "service_url",
            json!(fake.service_url()),
        )
        .await
        .unwrap();
    world
        .lineup
        .link_chat_user(world.tenant, world.maria.id, Platform::Teams, MARIA_TEAMS)
        .await
        .unwrap();
    let mut config = TeamsConfig::new(APP_ID, "test-app-password");
    config.openid_metadata_url = fake.openid_metadata_url();
    config.token_url = fake.token_url();
    let outbound = TeamsOutbound::new(&config, Arc::new(world.lineup.clone()));
    let flows = ChatFlows::new(world.lineup.clone(), vec![Arc::new(outbound.transport())]);
    let state = TeamsState::with_outbound(
        config,
        flows,
        Arc::new(world.lineup.clone()),
        outbound,
        Arc::new(world.lineup.clone()),
    );
    let base = serve(teams_router(state)).await;
    let clicks = TeamsClicks {
        url: format!("{base}/teams/messages"),
        token: sign_activity_token(&TokenClaims::new(APP_ID, &fake.service_url())),
        ctx: ActivityCtx::personal(&fake.service_url(), AAD_TENANT, APP_ID, MARIA_TEAMS),
        request_id: submitted_request(world).await,
    };
    (Box::new(clicks), Box::new(fake))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's warnings (a refused activity, a failed lookup) say why a request failed.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let world = World::new(common::store(args.postgres).await).await;
    let (clicker, _fake) = match args.platform {
        Which::Discord => discord(&world).await,
        Which::Teams => teams(&world).await,
    };
    let clicker: Arc<dyn Clicker> = Arc::from(clicker);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let total = u64::from(args.rate) * u64::from(args.seconds);
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    println!(
        "{total} signed clicks to {} at {}/s for {} s",
        clicker.url(),
        args.rate,
        args.seconds
    );
    let cpu_before = cpu_time();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<(Duration, Value), String>>();
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    for seq in 0..total {
        let scheduled = start + period * seq as u32;
        tokio::time::sleep_until(scheduled).await;
        let (client, clicker, tx) = (client.clone(), clicker.clone(), tx.clone());
        tokio::spawn(async move {
            let r = clicker.request(&client, seq + 1).send().await;
            let outcome = match r {
                Ok(r) if r.status().is_success() => {
                    let took = scheduled.elapsed();
                    Ok((took, r.json::<Value>().await.unwrap_or(Value::Null)))
                }
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(outcome);
        });
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    let mut last = Instant::now();
    let mut sample = None;
    while let Some(r) = rx.recv().await {
        match r {
            Ok((d, body)) => {
                latencies.push(d);
                sample.get_or_insert(body);
            }
            Err(e) => *errors.entry(e).or_default() += 1,
        }
        last = Instant::now();
    }
    let elapsed = last.duration_since(start.into_std());
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "ok {} errors {} in {:.2} s → {:.0} req/s",
        latencies.len(),
        errors.values().sum::<u64>(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        ms(pct(&latencies, 0.50)),
        ms(pct(&latencies, 0.90)),
        ms(pct(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    for (e, n) in errors {
        println!("  {n} × {e}");
    }
    let cpu = cpu_time().saturating_sub(cpu_before);
    println!(
        "CPU {:.2} s (server and load generator together): {:.3} ms per request",
        cpu.as_secs_f64(),
        ms(cpu) / total.max(1) as f64
    );
    if let Some(body) = sample {
        println!("first answer: {body}");
    }
    Ok(())
}
