//! Open-loop load on the Slack interactivity endpoint: correctly signed, unique `block_actions`
//! payloads at a fixed rate over keep-alive connections; prints latency percentiles (measured
//! from each request's scheduled send time, so a stalled server is not hidden) and throughput.
//!
//! Against a running server (`lineup serve`, whose signing secret you pass):
//!     cargo run --release --example slack_ack_load -- --url http://127.0.0.1:8080 --secret S
//! Self-contained (the real `slack_router` in-process, over a conversation that answers at once):
//!     cargo run --release --example slack_ack_load -- --self-host
//! Self-contained with the whole product behind the router (core on SQLite, the provider
//! simulator, a fake Slack Web API; every click is a manager approving a real pending request,
//! so the first one decides and the rest are double clicks told who decided):
//!     cargo run --release --example slack_ack_load -- --full-stack
//! The same with core on a throwaway PostgreSQL started from this machine's binaries:
//!     cargo run --release --example slack_ack_load -- --full-stack --postgres
//! Options: --rate 500 --seconds 20 --team T0LOAD; with --url also --user U… --value REQUEST_ID
//! (a real pending request the user may decide) and --response-url (default: a sink in this
//! process, so replies never go to Slack).

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cpu_time, pct, slack_approve_click};

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use lineup_bot::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use lineup_bot::dedupe::TtlDedupe;
use lineup_bot::slack::verify::sign;
use lineup_bot::slack::{
    Installation, SlackConfig, SlackState, SlackWorkspaces, WorkspaceEvent, slack_router,
};
use lineup_core::messaging::chat::{Platform, Workspace};

#[derive(Parser)]
struct Args {
    /// Base URL of the server (the path /slack/interactions is appended).
    #[arg(long)]
    url: Option<String>,
    /// The Slack signing secret the server verifies with.
    #[arg(long, env = "SLACK_SIGNING_SECRET", default_value = "load-test-secret")]
    secret: String,
    /// Start the real Slack router in this process over a conversation that answers at once.
    #[arg(long)]
    self_host: bool,
    /// Start the real router over the real SlackApp, core and simulator in this process.
    #[arg(long)]
    full_stack: bool,
    /// With --full-stack: core on a throwaway PostgreSQL instead of SQLite.
    #[arg(long, requires = "full_stack")]
    postgres: bool,
    /// Requests per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Team id put in the payloads.
    #[arg(long, default_value = "T0LOAD")]
    team: String,
    /// With --url: the clicker's Slack user id (linked to an employee of the team's tenant).
    #[arg(long, default_value = "U0LOAD")]
    user: String,
    /// With --url: the request id every click approves (a real request: the first click
    /// decides it, the rest are told who did). Unset: a new unknown id per click.
    #[arg(long)]
    value: Option<String>,
    /// With --url: where the server posts its replies. Unset: a sink in this process that
    /// answers 200 and counts them, so no reply leaves the machine.
    #[arg(long)]
    response_url: Option<String>,
}

struct Instant200;

#[async_trait]
impl Conversation for Instant200 {
    async fn workspace_known(&self, _: Platform, _: &str) -> bool {
        true
    }
    async fn command(&self, _: Speaker, _: &str, _: &str) -> Answer {
        Answer::Nothing
    }
    async fn click(&self, _: Speaker, _: &str, _: &str) -> Answer {
        Answer::Nothing
    }
    async fn submit_request_form(&self, _: Speaker, _: RequestForm, _: &str) -> FormAnswer {
        FormAnswer::Done(None)
    }
    async fn submit_deny_reason(&self, _: Speaker, _: &str, _: &str) -> FormAnswer {
        FormAnswer::Done(None)
    }
}

#[async_trait]
impl SlackWorkspaces for Instant200 {
    async fn workspace(&self, _: &str) -> Option<Workspace> {
        None
    }
    async fn uninstalled(&self, _: WorkspaceEvent) {}
    async fn installed(
        &self,
        _: lineup_core::ids::TenantId,
        _: Option<lineup_core::ids::UserId>,
        _: Installation,
    ) -> Result<String, String> {
        Err("not in a load test".into())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // RUST_LOG=sqlx=debug shows every statement the clicks run, with its time.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut click = Click {
        user: args.user.clone(),
        value: args.value.clone(),
        response_url: args
            .response_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:9/unused".into()),
    };
    let mut sink = None;
    // Keeps the full stack (simulator, fake Slack, database) alive for the run.
    let mut _stack = None;
    let base = match (&args.url, args.self_host) {
        _ if args.full_stack => {
            let (base, stack, team, full_click) = full_stack(&args.secret, args.postgres).await?;
            _stack = Some(stack);
            click = full_click;
            anyhow::ensure!(
                args.team == "T0LOAD" || args.team == team,
                "--team is chosen by --full-stack"
            );
            base
        }
        (_, true) => {
            let config = SlackConfig::new(
                &args.secret,
                "load",
                "load",
                "http://127.0.0.1/slack/oauth/callback",
            )
            .with_api_base_url("http://127.0.0.1:9/api/");
            let instant = Arc::new(Instant200);
            let app = slack_router(SlackState::new(
                config,
                instant.clone(),
                instant,
                Arc::new(TtlDedupe::new(1_000_000)),
            )?);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}")
        }
        (Some(url), false) => {
            if args.response_url.is_none() {
                let (url, replies) = reply_sink().await?;
                println!("replies go to the sink at {url}");
                click.response_url = url;
                sink = Some(replies);
            }
            url.trim_end_matches('/').to_string()
        }
        (None, false) => anyhow::bail!("give --url URL or --self-host"),
    };
    let url = format!("{base}/slack/interactions");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let total = u64::from(args.rate) * u64::from(args.seconds);
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    println!(
        "{total} signed block_actions to {url} at {}/s for {} s",
        args.rate, args.seconds
    );

    let cpu_before = cpu_time();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Duration, String>>();
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let team = Arc::new(if args.full_stack {
        FULL_STACK_TEAM.to_owned()
    } else {
        args.team.clone()
    });
    let click = Arc::new(click);
    let secret = Arc::new(args.secret.clone());
    for seq in 0..total {
        let scheduled = start + period * seq as u32;
        tokio::time::sleep_until(scheduled).await;
        let (client, url, tx, team, secret, click) = (
            client.clone(),
            url.clone(),
            tx.clone(),
            team.clone(),
            secret.clone(),
            click.clone(),
        );
        tokio::spawn(async move {
            let value = click.value.clone().unwrap_or_else(|| format!("req-{seq}"));
            let body = slack_approve_click(&team, seq, &click.user, &value, &click.response_url);
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let sig = sign(&secret, &ts, body.as_bytes());
            let r = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts)
                .header("x-slack-signature", sig)
                .body(body)
                .send()
                .await;
            let took = scheduled.elapsed();
            let _ = tx.send(match r {
                Ok(r) if r.status().is_success() => Ok(took),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            });
        });
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    let mut last = Instant::now();
    while let Some(r) = rx.recv().await {
        match r {
            Ok(d) => latencies.push(d),
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
    // Wait for the replies still on their way, then count CPU over the whole run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_time().saturating_sub(cpu_before);
    let what = if args.url.is_some() {
        "the load generator and reply sink"
    } else {
        "server and load generator together"
    };
    println!(
        "CPU {:.2} s ({what}): {:.3} ms per request",
        cpu.as_secs_f64(),
        ms(cpu) / total.max(1) as f64
    );
    if let Some(replies) = sink {
        println!(
            "replies received at the sink: {}",
            replies.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    Ok(())
}

/// A local `response_url` target: answers 200 and counts what it received.
async fn reply_sink() -> anyhow::Result<(String, Arc<std::sync::atomic::AtomicU64>)> {
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = count.clone();
    let app = axum::Router::new().route(
        "/reply",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/reply"), count))
}

/// Who clicks what, and where the answer goes.
struct Click {
    user: String,
    value: Option<String>,
    response_url: String,
}

const FULL_STACK_TEAM: &str = "T0ACME";

/// The product as `lineup serve` composes it, in-process: SQLite, the provider simulator,
/// the real SlackApp, and a fake Slack Web API for its outgoing calls. Maria (the approver)
/// clicks Approve on Ada's pending request.
async fn full_stack(
    secret: &str,
    postgres: bool,
) -> anyhow::Result<(String, Box<dyn std::any::Any + Send>, String, Click)> {
    use lineup_core::audit::Actor;
    use lineup_core::lines::request::RequestDetails;
    use lineup_core::lines::request::commands::SubmitRequest;
    use lineup_testkit::fake_slack::FakeSlack;
    use lineup_testkit::world::World;

    let world = World::new(common::store(postgres).await).await;
    let fake = FakeSlack::start().await;
    fake.add_user("U0MARIA", "maria@example.com");
    fake.add_user("U0ADA", "ada@example.com");
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Slack,
            FULL_STACK_TEAM,
            Some("U0BOT"),
            "xoxb-load",
        )
        .await?;
    let request = world
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
        .await?
        .request;
    let router = common::slack_routes(&world.lineup, &fake, secret)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    let click = Click {
        user: "U0MARIA".into(),
        value: Some(request.id.to_string()),
        response_url: fake.response_url("load"),
    };
    Ok((
        format!("http://{addr}"),
        Box::new((world, fake)),
        FULL_STACK_TEAM.to_owned(),
        click,
    ))
}
