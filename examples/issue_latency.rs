//! Benchmark: time from "issue line" to a stored activation code, through the real HTTP
//! adapter against the provider simulator at its default latency (20–200 ms per request,
//! orders settling after 0.5–3 s), with storage on SQLite.
//!
//! `cargo run --release --example issue_latency -- [LINES] [CONCURRENCY]` (defaults 50 and 1).

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::lines::line::LineState;
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::money::Currency;
use lineup_core::organisation::employee::NewEmployee;
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::PollPolicy;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::secret::SecretBox;
use lineup_core::store::Store;
use lineup_simulator::{Credentials, SimConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(1), |a| a.parse())?;

    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse()?,
        SimConfig::default(),
        Credentials::default(),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    store.migrate().await?;
    let config = OneGlobalConfig::new(
        sim.base_url(),
        "lineup-demo",
        "lineup-demo-secret",
        sim.account_id(),
    );
    let lineup = Lineup::new(
        store,
        Arc::new(OneGlobalProvider::new(config)?),
        PollPolicy::default(),
    )
    .with_secrets(SecretBox::from_hex(&SecretBox::generate_hex_key())?);

    let actor = Actor::System;
    let new = NewTenant {
        slug: Slug::parse("bench")?,
        name: "Bench".into(),
        currency: Currency::USD,
    };
    let tenant = lineup.create_tenant(&actor, new).await?.id;
    let plan = lineup.sync_plans(tenant, &actor).await?[0].id;
    let mut employees = Vec::new();
    for i in 0..lines {
        let new = NewEmployee {
            email: Email::parse(&format!("person{i}@bench.example"))?,
            given_name: "Person".into(),
            family_name: format!("{i}"),
            team_id: None,
            cost_centre_id: None,
            manager_id: None,
        };
        employees.push(lineup.add_employee(tenant, &actor, new).await?.id);
    }

    println!("issuing {lines} lines, {concurrency} at a time, simulator at default latency");
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut calls = tokio::task::JoinSet::new();
    for employee in employees {
        let (lineup, semaphore) = (lineup.clone(), semaphore.clone());
        calls.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("open semaphore");
            let issue = IssueLine {
                employee_id: employee,
                plan_id: plan,
                issue_key: format!("bench-{employee}"),
            };
            let t0 = Instant::now();
            let line = lineup.issue_line(tenant, &Actor::System, issue).await?;
            anyhow::ensure!(
                line.state == LineState::Ready && line.activation_code.is_some(),
                "line not ready"
            );
            Ok(t0.elapsed())
        });
    }
    let mut timings: Vec<Duration> = Vec::new();
    while let Some(outcome) = calls.join_next().await {
        timings.push(outcome??);
    }
    let wall = started.elapsed();
    timings.sort();
    let pct = |p: f64| timings[((timings.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "issue → activation code: p50 {:.2} s, p90 {:.2} s, max {:.2} s, min {:.2} s; {lines} lines in {:.1} s",
        pct(0.5).as_secs_f64(),
        pct(0.9).as_secs_f64(),
        pct(1.0).as_secs_f64(),
        pct(0.0).as_secs_f64(),
        wall.as_secs_f64()
    );
    sim.shutdown().await;
    Ok(())
}
