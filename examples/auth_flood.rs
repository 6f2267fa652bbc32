//! A flood of unique-email sign-ins and sign-ups against the composed server (portal and
//! Slack endpoints on one port, core on SQLite), while signed `/slack/commands` arrive at a
//! steady rate: prints the slash commands' latency percentiles and this process's resident
//! memory (VmRSS) before, at its peak and after, and how many attempts the limiter keeps.
//!
//!     cargo run --release --example auth_flood                 # 60 s
//!     cargo run --release --example auth_flood -- --seconds 20 --flooders 64 --rate 50
//!
//! By default every flood request claims its own client address through X-Forwarded-For
//! from a trusted proxy (LINEUP_TRUSTED_PROXY), as a botnet would: the per-address limits
//! never bite and every sign-in costs a full Argon2 check. `--one-address` floods from one
//! client instead, which the per-address limits refuse after a few tries.

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use common::pct;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use lineup_bot::slack::verify::sign;
use lineup_portal::{Portal, PortalConfig, portal_router};

#[derive(Parser)]
struct Args {
    /// How long the flood lasts.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent flooding clients, each sending as fast as answers come.
    #[arg(long, default_value_t = 32)]
    flooders: u32,
    /// Slash commands per second during the flood.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Flood from one client address instead of a new one per request.
    #[arg(long)]
    one_address: bool,
}

const SECRET: &str = "flood-signing-secret";
const TEAM: &str = "T0ACME";
const BASE: &str = "lineup.test";

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The value of `name="_csrf"` in a page.
fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A client with its form cookie and token for `host`'s page `path`.
async fn form_client(
    host: &str,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(reqwest::Client, String, String)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, addr)
        .timeout(Duration::from_secs(30))
        .build()?;
    let origin = format!("http://{host}:{}", addr.port());
    let page = client.get(format!("{origin}{path}")).send().await?;
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lineup_form="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no form cookie on {path}"))?;
    let csrf = csrf_in(&page.text().await?).ok_or_else(|| anyhow::anyhow!("no _csrf"))?;
    Ok((client, format!("{origin}|{cookie}"), csrf))
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (addr, _stack) = start_server().await?;
    // The flooding clients are made (and their form pages fetched) before the first reading,
    // so what grows after it is the server's doing, not the load generator's set-up.
    let mut clients = Vec::new();
    for n in 0..args.flooders {
        let (host, path) = if n % 2 == 1 {
            (BASE.to_owned(), "/signup")
        } else {
            (format!("acme.{BASE}"), "/login")
        };
        clients.push((form_client(&host, addr, path).await?, path));
    }
    let before = resident_mib();
    println!(
        "server on {addr}; flooding {} s with {} clients ({}), {} slash commands/s",
        args.seconds,
        args.flooders,
        if args.one_address {
            "one client address"
        } else {
            "a new client address per request"
        },
        args.rate
    );
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let tally = Arc::new(Tally::default());
    let sequence = Arc::new(AtomicU64::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for ((client, origin_cookie, csrf), path) in clients {
        let signs_up = path == "/signup";
        let (origin, cookie) = origin_cookie.split_once('|').expect("joined above");
        let (origin, cookie) = (origin.to_owned(), cookie.to_owned());
        let (tally, sequence, one_address) = (tally.clone(), sequence.clone(), args.one_address);
        flood.spawn(async move {
            while Instant::now() < deadline {
                let i = sequence.fetch_add(1, Ordering::Relaxed);
                let email = format!("flood-{i}@example.com");
                let slug = format!("flood{i}");
                let fields: Vec<(&str, &str)> = if signs_up {
                    vec![
                        ("organisation", "Flood"),
                        ("slug", &slug),
                        ("currency", "EUR"),
                        ("name", "Flood"),
                        ("email", &email),
                        ("password", "a flood password"),
                        ("_csrf", &csrf),
                    ]
                } else {
                    vec![
                        ("email", &email),
                        ("password", "a flood password"),
                        ("_csrf", &csrf),
                    ]
                };
                let mut request = client
                    .post(format!("{origin}{path}"))
                    .header("cookie", &cookie)
                    .form(&fields);
                if !one_address {
                    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                    request = request.header("x-forwarded-for", ip);
                }
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match request.send().await {
                    Ok(r) if r.status() == 429 => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status().is_server_error() => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => drop(r.bytes().await),
                    Err(_) => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }

    // Meanwhile: signed slash commands at a steady rate, timed from their scheduled send.
    let slack = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("http://{addr}/slack/commands");
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Duration, String>>();
    let start = tokio::time::Instant::now();
    let peak = Arc::new(std::sync::Mutex::new(before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut p = peak.lock().unwrap();
                *p = p.max(resident_mib());
            }
        })
    };
    let mut seq = 0u32;
    while Instant::now() < deadline {
        let scheduled = start + period * seq;
        seq += 1;
        tokio::time::sleep_until(scheduled).await;
        let (slack, url, tx) = (slack.clone(), url.clone(), tx.clone());
        tokio::spawn(async move {
            let body = serde_urlencoded::to_string([
                ("team_id", TEAM),
                ("channel_id", "C0GENERAL"),
                ("user_id", "U0ADA"),
                ("user_name", "ada"),
                ("command", "/esim"),
                ("text", "help"),
                ("response_url", "http://127.0.0.1:9/response"),
                ("trigger_id", &format!("flood-{seq}")),
            ])
            .expect("form encoding");
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let signature = sign(SECRET, &ts, body.as_bytes());
            let answer = slack
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts)
                .header("x-slack-signature", signature)
                .body(body)
                .send()
                .await;
            let took = scheduled.elapsed();
            let _ = tx.send(match answer {
                Ok(r) if r.status().is_success() => Ok(took),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            });
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    while let Some(r) = rx.recv().await {
        match r {
            Ok(d) => latencies.push(d),
            Err(e) => *errors.entry(e).or_default() += 1,
        }
    }
    flood.join_all().await;
    sampler.abort();
    let peak = peak.lock().unwrap().max(resident_mib());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_mib();

    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let sent = tally.sent.load(Ordering::Relaxed);
    println!(
        "flood: {sent} requests ({:.0}/s), {} refused with 429, {} failed",
        sent as f64 / args.seconds as f64,
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    println!(
        "/slack/commands: {} ok, {} errors; latency ms p50 {:.2}  p99 {:.2}  max {:.2}",
        latencies.len(),
        errors.values().sum::<u64>(),
        ms(pct(&latencies, 0.50)),
        ms(pct(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    for (e, n) in errors {
        println!("  {n} × {e}");
    }
    println!(
        "resident memory MiB: before {before:.1}  peak {peak:.1}  after {after:.1}  (peak − before {:.1})",
        peak - before
    );
    let mut tx = _stack.0.lineup.store().system().await?;
    let kept = lineup_core::store::auth_attempts::count(&mut tx).await?;
    drop(tx);
    println!("attempts kept by the limiter: {kept}");
    Ok(())
}

/// The test company on SQLite with its Slack workspace installed, and one router serving the
/// portal (by host name) and the Slack endpoints, with client addresses wired.
async fn start_server() -> anyhow::Result<(
    SocketAddr,
    (
        lineup_testkit::world::World,
        lineup_testkit::fake_slack::FakeSlack,
    ),
)> {
    use lineup_core::audit::Actor;
    use lineup_core::messaging::chat::Platform;
    use lineup_testkit::fake_slack::FakeSlack;
    use lineup_testkit::world::World;

    let world = World::new(lineup_testkit::sqlite_store().await).await;
    let fake = FakeSlack::start().await;
    fake.add_user("U0ADA", "ada@example.com");
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Slack,
            TEAM,
            Some("U0BOT"),
            "xoxb-flood",
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let portal_config = PortalConfig {
        trusted_proxy: Some(addr.ip()),
        ..PortalConfig::new(format!("http://{BASE}:{}", addr.port()).parse()?)
    };
    let portal = Portal::new(world.lineup.clone(), portal_config);
    let router = common::slack_routes(&world.lineup, &fake, SECRET)?
        .fallback_service(portal_router(portal))
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((addr, (world, fake)))
}
