//! Benchmark: importing a large HRIS CSV export of employees (target: 100,000 rows commit in
//! under 10 s on PostgreSQL). Generates a realistic file (teams, cost centres, a reporting
//! tree, quoted names, rows in name order so reports often come before their managers),
//! then measures, on a throwaway PostgreSQL and on a SQLite file:
//!
//! - parse + validate: reading the CSV and checking every row (the preview's work);
//! - first commit: every row new (creates, teams, cost centres, audit events);
//! - re-import: the same people with every row changed (updates matched by email).
//!
//! `cargo run --release --example employee_import -- [ROWS]` (default 100000).

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use lineup_core::audit::Actor;
use lineup_core::ids::TenantId;
use lineup_core::import::{self, Existing, Mapping};
use lineup_core::provider::PollPolicy;
use lineup_core::store::Store;
use lineup_simulator::{Credentials, SimConfig};
use lineup_testkit::world::{add_tenant, lineup_for};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const GIVEN: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Katherine",
    "Edsger",
    "Hedy",
    "Claude",
    "Annie",
    "Donald",
    "Sophie",
    "José",
];
const FAMILY: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Johnson",
    "Dijkstra",
    "Lamarr",
    "Shannon",
    "Easley",
    "Knuth",
    "Wilson",
    "Núñez",
];

/// An HRIS-style export: `rows` people in a reporting tree about eight wide, 40 departments,
/// 60 cost centres; `variant` changes every person's title-cased last name suffix so a
/// second file updates every row.
fn hris_csv(rows: usize, variant: u32) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut people: Vec<(String, String, String, usize, usize, Option<usize>)> = (0..rows)
        .map(|i| {
            let given = GIVEN[rng.gen_range(0..GIVEN.len())].to_owned();
            let mut family = format!("{} {variant}{i}", FAMILY[rng.gen_range(0..FAMILY.len())]);
            if i % 50 == 0 {
                family.push_str(", Jr.");
            }
            let email = format!("employee{i}@bench.example");
            let manager = (i > 0).then(|| (i - 1) / 8);
            (email, given, family, i % 40, i % 60, manager)
        })
        .collect();
    people.shuffle(&mut rng);
    let mut out = String::from(
        "\u{FEFF}Employee ID,First Name,Last Name,Work Email,Department,Cost Center,Supervisor Email\r\n",
    );
    for (email, given, family, team, centre, manager) in &people {
        let manager = manager.map_or(String::new(), |m| format!("employee{m}@bench.example"));
        let id = email
            .trim_start_matches("employee")
            .trim_end_matches("@bench.example");
        out.push_str(&format!(
            "E{id},{given},\"{family}\",{email},Department {team},CC-{centre:03},{manager}\r\n"
        ));
    }
    out.into_bytes()
}

async fn measure(label: &str, store: Store, rows: usize) -> anyhow::Result<()> {
    store.migrate().await?;
    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse()?,
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await?;
    let lineup = lineup_for(&store, &sim, PollPolicy::default());
    let tenant = add_tenant(&lineup, "bench").await;
    let actor = Actor::System;
    for (round, what) in [
        (0, "first import (all new)"),
        (1, "re-import (every row changed)"),
    ] {
        let file = hris_csv(rows, round);
        let upload = lineup
            .upload_employee_csv(tenant, &actor, "hris.csv", file)
            .await?;
        let started = Instant::now();
        let preview = lineup.preview_import(tenant, upload.id, None).await?;
        let previewed = started.elapsed();
        anyhow::ensure!(
            preview.plan.can_commit(),
            "the generated file has problems: {:?}",
            &preview.plan.problems[..preview.plan.problems.len().min(5)]
        );
        let started = Instant::now();
        let summary = lineup
            .commit_import(tenant, &actor, upload.id, preview.mapping)
            .await?;
        let committed = started.elapsed();
        println!(
            "{label:10} {what:32} preview {:6.2} s   commit {:6.2} s   ({} created, {} updated, {} unchanged)",
            previewed.as_secs_f64(),
            committed.as_secs_f64(),
            summary.created,
            summary.updated,
            summary.unchanged
        );
    }
    sim.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;

    let file = hris_csv(rows, 0);
    println!(
        "{rows} rows, {:.1} MB; 40 teams, 60 cost centres, a reporting tree 8 wide",
        file.len() as f64 / 1e6
    );
    let started = Instant::now();
    let csv = import::read_csv(&file)?;
    let read = started.elapsed();
    let mapping = Mapping::detect(&csv.headers);
    let empty = Existing {
        employees: Vec::new(),
        teams: Vec::new(),
        cost_centres: Vec::new(),
        chat_identities: Vec::new(),
    };
    let started = Instant::now();
    let plan = import::plan(
        TenantId::new(),
        &csv,
        &mapping,
        &empty,
        lineup_core::store::now(),
    );
    let checked = started.elapsed();
    anyhow::ensure!(plan.can_commit() && plan.changes.len() == rows);
    println!(
        "in memory  parse {:.2} s + validate {:.2} s",
        read.as_secs_f64(),
        checked.as_secs_f64()
    );

    let url = lineup_testkit::fresh_postgres_url().await;
    measure("PostgreSQL", Store::connect(&url).await?, rows).await?;

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("SQLite", Store::connect(&url).await?, rows).await?;
    Ok(())
}
