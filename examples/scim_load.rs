//! Benchmark: an identity provider's first full push over SCIM. Starts the portal itself on a
//! loopback socket (on SQLite, or `--backend postgres` on a throwaway PostgreSQL), creates a
//! token the way an admin does (signed in, Settings → Provisioning), then POSTs USERS users
//! one request each, CONCURRENCY at a time, in a realistic org tree: every user but the first
//! has a manager (8 reports each), created before them, and a department and cost centre.
//!
//! `cargo run --release --example scim_load -- [USERS] [CONCURRENCY] [--backend
//! sqlite|postgres]` (defaults 10000, 50, sqlite). Prints throughput and p50/p95/p99.

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::money::Currency;
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::PollPolicy;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::store::Store;
use lineup_portal::{Portal, PortalConfig, portal_router};
use lineup_simulator::{Credentials, SimConfig};
use lineup_testkit::portal::Browser;
use serde_json::json;
use tokio::sync::Semaphore;

const PASSWORD: &str = "a long benchmark password";
/// Reports per manager in the generated org tree.
const FAN_OUT: usize = 8;
const TEAMS: usize = 40;
const COST_CENTRES: usize = 12;

struct Args {
    users: usize,
    concurrency: usize,
    postgres: bool,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let (mut numbers, mut postgres) = (Vec::new(), false);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--backend" {
                postgres = match args.next().as_deref() {
                    Some("postgres") => true,
                    Some("sqlite") => false,
                    other => anyhow::bail!(
                        "--backend takes postgres or sqlite, not {}",
                        other.unwrap_or("nothing")
                    ),
                };
            } else {
                numbers.push(arg.parse::<usize>()?);
            }
        }
        if numbers.len() > 2 {
            anyhow::bail!("expected at most USERS CONCURRENCY, got {numbers:?}");
        }
        Ok(Self {
            users: numbers.first().copied().unwrap_or(10_000),
            concurrency: numbers.get(1).copied().unwrap_or(50).max(1),
            postgres,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse()?,
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let url = if args.postgres {
        lineup_testkit::fresh_postgres_url().await
    } else {
        format!("sqlite://{}", dir.path().join("lineup.db").display())
    };
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let config = OneGlobalConfig::new(
        sim.base_url(),
        "lineup-demo",
        "lineup-demo-secret",
        sim.account_id(),
    );
    let lineup = Lineup::new(
        store.clone(),
        Arc::new(OneGlobalProvider::new(config)?),
        PollPolicy::default(),
    );
    let new = NewTenant {
        slug: Slug::parse("bench")?,
        name: "Bench".into(),
        currency: Currency::USD,
    };
    let tenant = lineup.create_tenant(&Actor::System, new).await?.id;
    let owner = Email::parse("owner@bench.example")?;
    lineup
        .add_user(
            tenant,
            &Actor::System,
            &owner,
            "Bench Owner",
            PASSWORD,
            Role::Owner,
            None,
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let portal = Portal::new(
        lineup.clone(),
        PortalConfig::new(format!("http://lineup.test:{}", addr.port()).parse()?),
    );
    let server = tokio::spawn(async move { axum::serve(listener, portal_router(portal)).await });

    // The token, made as an admin makes it.
    let host = "bench.lineup.test";
    let browser = Browser::new(host, addr);
    browser.sign_in(owner.as_str(), PASSWORD).await;
    browser.get("/settings/provisioning").await.assert_ok();
    let page = browser
        .post("/settings/provisioning/tokens", &[("name", "load")])
        .await;
    let secret = page
        .body
        .split("shown only this once: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .ok_or_else(|| anyhow::anyhow!("no token on Settings → Provisioning"))?
        .to_owned();

    let http = reqwest::Client::builder()
        .resolve(host, addr)
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let endpoint = format!("http://{host}:{}/scim/v2/Users", addr.port());
    let backend = if args.postgres {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}: pushing {} users, {} at a time",
        args.users, args.concurrency
    );

    // Breadth first: a level's managers all exist before it is pushed.
    let mut ids: Vec<Option<String>> = vec![None; args.users];
    let mut latencies = Vec::with_capacity(args.users);
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut level = 0..1.min(args.users);
    while !level.is_empty() {
        let mut pushes = tokio::task::JoinSet::new();
        for i in level.clone() {
            let manager = (i > 0).then(|| ids[(i - 1) / FAN_OUT].clone().unwrap());
            let body = user(i, manager);
            let (http, endpoint, secret, limit) = (
                http.clone(),
                endpoint.clone(),
                secret.clone(),
                limit.clone(),
            );
            pushes.spawn(async move {
                let _slot = limit.acquire().await.unwrap();
                let sent = Instant::now();
                let answer = http
                    .post(&endpoint)
                    .bearer_auth(&secret)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                let took = sent.elapsed();
                let status = answer.status();
                let created: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(status, reqwest::StatusCode::CREATED, "user {i}: {created}");
                (i, created["id"].as_str().unwrap().to_owned(), took)
            });
        }
        while let Some(done) = pushes.join_next().await {
            let (i, id, took) = done?;
            ids[i] = Some(id);
            latencies.push(took);
        }
        let next_start = level.end;
        let next_end = (level.end * FAN_OUT + 1).min(args.users);
        level = next_start..next_end;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "{backend}: {} users in {:.1} s: {:.0} users/s; POST p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.95),
        at(0.99)
    );
    let employees = lineup.employees(tenant).await?;
    anyhow::ensure!(
        employees.len() == args.users,
        "{} employees after pushing {} users",
        employees.len(),
        args.users
    );
    server.abort();
    store.close().await;
    Ok(())
}

/// User `i` of the org tree: in one of the teams and cost centres, reporting to `manager`.
fn user(i: usize, manager: Option<String>) -> serde_json::Value {
    let email = format!("person{i}@bench.example");
    let mut enterprise = json!({
        "employeeNumber": format!("E{i:05}"),
        "department": format!("Team {}", i % TEAMS),
        "costCenter": format!("CC-{}", i % COST_CENTRES),
    });
    if let Some(manager) = manager {
        enterprise["manager"] = json!({ "value": manager });
    }
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": email,
        "externalId": format!("idp-{i}"),
        "name": { "givenName": format!("Person{i}"), "familyName": "Bench" },
        "emails": [{ "value": email, "type": "work", "primary": true }],
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": enterprise,
    })
}
