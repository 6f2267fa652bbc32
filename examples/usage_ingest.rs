//! Benchmark: usage ingest — dedupe, pricing, daily and period rollups, guardrail evaluation —
//! for RECORDS usage records over LINES lines, in pages of BATCH records (each stored in a
//! transaction of its own, rolled up ROLL_UP_AT records at a time: the way a sync records
//! them, `UsagePipeline`), on a throwaway PostgreSQL and then on SQLite. On PostgreSQL the
//! same rows are also `COPY`ed into an unindexed table: the ceiling ingest is compared with.
//!
//! `cargo run --release --example usage_ingest -- [RECORDS] [LINES] [BATCH] [ROLL_UP_AT]
//! [BACKENDS]` (defaults 1000000, 10000, `INGEST_BATCH`, the page a sync stores, `ROLL_UP_AT`
//! and `both`; `sqlite` or `postgres` runs one).

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::ids::{CostCentreId, EmployeeId, LineId, PlanId, TeamId, TenantId};
use lineup_core::lines::line::{Line, LineState};
use lineup_core::lines::plan::Plan;
use lineup_core::money::{Bytes, Currency, Money};
use lineup_core::organisation::employee::{Employee, EmployeeStatus};
use lineup_core::organisation::org_unit::{CostCentre, Team};
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::provider::{PollPolicy, Roaming, UsageRecord, Validity};
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, RoamingRule};
use lineup_core::spend::pricing::default_zone_rates;
use lineup_core::spend::usage::{INGEST_BATCH, ROLL_UP_AT, UsagePipeline};
use lineup_core::store::{self, Store, Tx};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::macros::datetime;

/// The allocator the `lineup` binary ships with (`src/main.rs`), so ingest is measured as it
/// runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEAMS: usize = 100;
const COST_CENTRES: usize = 10;
const ROAMING_COUNTRIES: [&str; 6] = ["FR", "DE", "JP", "BR", "MX", "GB"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let lines: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(INGEST_BATCH), |a| a.parse())?;
    let roll_up_at: usize = args.next().map_or(Ok(ROLL_UP_AT), |a| a.parse())?;
    let backends = args.next().unwrap_or_else(|| "both".into());
    anyhow::ensure!(
        ["both", "sqlite", "postgres"].contains(&backends.as_str()),
        "BACKENDS is both, sqlite or postgres, not {backends:?}"
    );
    println!(
        "{records} usage records over {lines} lines, {batch} records per transaction, \
         rolled up {roll_up_at} at a time"
    );
    let ingest = |backend, store| run(backend, store, records, lines, batch, roll_up_at);

    if backends != "sqlite" {
        let pg_url = lineup_testkit::fresh_postgres_url().await;
        let pg = Store::connect(&pg_url).await?;
        pg.migrate().await?;
        let (pg_rate, rows) = ingest("PostgreSQL", pg.clone()).await?;
        let copy_rate = copy_ceiling(&pg_url, &rows).await?;
        println!(
            "PostgreSQL: ingest {pg_rate:>9.0} records/s, COPY into an unindexed table \
             {copy_rate:>9.0} rows/s, ratio {:.2}",
            pg_rate / copy_rate
        );
    }
    if backends == "postgres" {
        return Ok(());
    }

    let dir = tempfile::tempdir()?;
    let lite = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    lite.migrate().await?;
    let (lite_rate, _) = ingest("SQLite", lite).await?;
    println!("SQLite:     ingest {lite_rate:>9.0} records/s");
    Ok(())
}

/// Seeds a tenant with `lines` active lines and caps at every scope, then ingests the
/// records; returns records per second and the records' stored rows for the COPY ceiling.
async fn run(
    backend: &str,
    store: Store,
    records: usize,
    lines: usize,
    batch: usize,
    roll_up_at: usize,
) -> anyhow::Result<(f64, Vec<CopyRow>)> {
    // Ingest never calls the provider; the adapter only names the records' source.
    let config = OneGlobalConfig::new("http://127.0.0.1:9", "bench", "bench", "acc_bench");
    let lineup = Lineup::new(
        store.clone(),
        Arc::new(OneGlobalProvider::new(config)?),
        PollPolicy::default(),
    );
    let tenant = lineup
        .create_tenant(
            &Actor::System,
            NewTenant {
                slug: Slug::parse(&format!("bench-{}", backend.to_ascii_lowercase()))?,
                name: "Bench".into(),
                currency: Currency::USD,
            },
        )
        .await?
        .id;
    let seeded = seed(&store, &lineup, tenant, lines).await?;
    let usage = generate(&seeded, records);

    let batches: Vec<Vec<UsageRecord>> = usage.chunks(batch).map(<[_]>::to_vec).collect();
    // A profiler can attach from here: what follows is the timed ingest.
    println!("{backend}: seeded, ingesting");
    let started = Instant::now();
    let mut pipeline = UsagePipeline::new(&lineup, tenant, datetime!(2026-11-28 23:00 UTC))
        .rolling_up_at(roll_up_at);
    for records in batches {
        pipeline.push(records).await?;
    }
    let report = pipeline.finish().await?;
    let elapsed = started.elapsed();
    let (recorded, alerts) = (report.recorded, report.alerts);
    anyhow::ensure!(recorded == records, "recorded {recorded} of {records}");
    let rate = records as f64 / elapsed.as_secs_f64();
    println!(
        "{backend}: {records} records in {:.2} s ({rate:.0} records/s), {alerts} alerts",
        elapsed.as_secs_f64()
    );
    let rows = usage
        .iter()
        .zip(seeded.line_of_record(&usage))
        .map(|(r, line)| CopyRow {
            dedupe_key: format!("1global:{}", r.dedupe_key),
            line,
            record: r.clone(),
        })
        .collect();
    Ok((rate, rows))
}

struct Seeded {
    lines: Vec<(LineId, String)>,
}

impl Seeded {
    fn line_of_record(&self, usage: &[UsageRecord]) -> Vec<LineId> {
        let by_sub: std::collections::HashMap<&str, LineId> = self
            .lines
            .iter()
            .map(|(id, sub)| (sub.as_str(), *id))
            .collect();
        usage
            .iter()
            .map(|r| by_sub[r.subscription_id.as_str()])
            .collect()
    }
}

async fn seed(
    store: &Store,
    lineup: &Lineup,
    tenant: TenantId,
    lines: usize,
) -> anyhow::Result<Seeded> {
    let at = store::now();
    let mut tx: Tx = store.tenant(tenant).await?;
    let plan = Plan {
        id: PlanId::new(),
        tenant_id: tenant,
        provider: "1global".into(),
        provider_connection_id: None,
        offering_id: "prdoff_bench".into(),
        template_id: None,
        name: "US 5GB".into(),
        data: Some(Bytes::gb(5)),
        validity: Validity::Monthly,
        coverage: vec!["US".into()],
        price: Some(Money::new(2_000, Currency::USD)),
        overage_per_gb: Some(Money::new(1_000, Currency::USD)),
        roaming_per_gb_minor: default_zone_rates(),
        throttle_after_cap_kbps: None,
        active: true,
        created_at: at,
    };
    let plan_id = store::plans::upsert(&mut tx, tenant, &plan).await?;
    let teams: Vec<TeamId> = (0..TEAMS).map(|_| TeamId::new()).collect();
    for (n, id) in teams.iter().enumerate() {
        let team = Team {
            id: *id,
            tenant_id: tenant,
            name: format!("Team {n}"),
            created_at: at,
        };
        store::org::insert_team(&mut tx, tenant, &team).await?;
    }
    let centres: Vec<CostCentreId> = (0..COST_CENTRES).map(|_| CostCentreId::new()).collect();
    for (n, id) in centres.iter().enumerate() {
        let centre = CostCentre {
            id: *id,
            tenant_id: tenant,
            code: format!("CC{n}"),
            name: format!("Cost centre {n}"),
            created_at: at,
        };
        store::org::insert_cost_centre(&mut tx, tenant, &centre).await?;
    }
    let mut seeded = Seeded { lines: Vec::new() };
    let mut employees = Vec::new();
    for n in 0..lines {
        let employee = Employee {
            id: EmployeeId::new(),
            tenant_id: tenant,
            email: Email::parse(&format!("person{n}@bench.example"))?,
            given_name: "Person".into(),
            family_name: n.to_string(),
            team_id: Some(teams[n % TEAMS]),
            cost_centre_id: Some(centres[n % COST_CENTRES]),
            manager_id: None,
            status: EmployeeStatus::Active,
            created_at: at,
            updated_at: at,
        };
        store::employees::insert(&mut tx, tenant, &employee).await?;
        let subscription = format!("sub_BENCH{n:08}");
        let line = Line {
            id: LineId::new(),
            tenant_id: tenant,
            employee_id: employee.id,
            plan_id,
            state: LineState::Active,
            provider: "1global".into(),
            provider_connection_id: None,
            provider_subscription_id: Some(subscription.clone()),
            iccid: None,
            activation_code: None,
            failure_reason: None,
            issue_key: format!("bench-{n}"),
            created_at: at,
            updated_at: at,
        };
        store::lines::insert_if_new(&mut tx, tenant, &line).await?;
        seeded.lines.push((line.id, subscription));
        employees.push(employee.id);
    }
    tx.commit().await?;
    // Caps at every scope, high enough that they alert (at 50 %) without suspending, so
    // the run measures ingest and evaluation, not provider calls.
    let mut caps = vec![BudgetCap {
        scope: CapScope::Tenant,
        amount_minor: 40_000_000,
        thresholds: vec![50, 80],
        action: CapAction::Alert,
    }];
    caps.extend(teams.iter().map(|t| BudgetCap {
        scope: CapScope::Team(*t),
        amount_minor: 400_000,
        thresholds: vec![50, 80],
        action: CapAction::Alert,
    }));
    caps.extend(centres.iter().map(|c| BudgetCap {
        scope: CapScope::CostCentre(*c),
        amount_minor: 4_000_000,
        thresholds: vec![50, 80],
        action: CapAction::Alert,
    }));
    caps.extend(employees.iter().step_by(10).map(|e| BudgetCap {
        scope: CapScope::Employee(*e),
        amount_minor: 10_000,
        thresholds: vec![50, 80],
        action: CapAction::Alert,
    }));
    for cap in caps {
        lineup.set_budget_cap(tenant, &Actor::System, cap).await?;
    }
    // Europe and Mexico are fine, Germany needs approval, Japan and Brazil are not listed:
    // travellers there raise roaming alerts.
    for (country, rule) in [
        ("FR", RoamingRule::Allowed),
        ("GB", RoamingRule::Allowed),
        ("MX", RoamingRule::Allowed),
        ("DE", RoamingRule::NeedsApproval),
    ] {
        lineup
            .set_roaming_rule(tenant, &Actor::System, country, rule)
            .await?;
    }
    Ok(seeded)
}

/// November's usage, in the order a provider pages it (by time). One line in twenty is
/// travelling: its records roam in that traveller's country, about 5 % of all records.
fn generate(seeded: &Seeded, records: usize) -> Vec<UsageRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let start = datetime!(2026-11-01 00:00 UTC);
    let span = 27 * 86_400;
    (0..records)
        .map(|n| {
            let line = rng.gen_range(0..seeded.lines.len());
            let (_, subscription) = &seeded.lines[line];
            let offset = i64::try_from(span * n / records).expect("a month of seconds");
            let started_at = start + time::Duration::seconds(offset);
            let country = if line % 20 == 0 {
                ROAMING_COUNTRIES[(line / 20) % ROAMING_COUNTRIES.len()]
            } else {
                "US"
            };
            UsageRecord {
                dedupe_key: format!("uitem_{n:010}"),
                subscription_id: subscription.clone(),
                started_at,
                ended_at: started_at + time::Duration::minutes(15),
                data_bytes: rng.gen_range(100_000..30_000_000),
                sms: rng.gen_range(0..2),
                voice_seconds: rng.gen_range(0..120),
                country: Some(country.into()),
                roaming: if country == "US" {
                    Roaming::None
                } else {
                    Roaming::International
                },
                in_bundle: None,
                observed_at: started_at + time::Duration::hours(1),
            }
        })
        .collect()
}

struct CopyRow {
    dedupe_key: String,
    line: LineId,
    record: UsageRecord,
}

/// `COPY` of the same rows into a table with usage_records' columns and no index, key or
/// constraint: how fast PostgreSQL can take the bytes at all.
async fn copy_ceiling(url: &str, rows: &[CopyRow]) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(
        "CREATE TABLE usage_copy (tenant_id uuid, dedupe_key text,
             line_id uuid, started_at timestamptz, ended_at timestamptz, data_bytes bigint,
             sms bigint, voice_seconds bigint, country text, roaming boolean,
             cost_minor bigint, observed_at timestamptz)",
    )
    .execute(&mut conn)
    .await?;
    let tenant = uuid::Uuid::now_v7();
    let format = time::format_description::well_known::Rfc3339;
    let mut text = String::with_capacity(rows.len() * 200);
    for row in rows {
        let r = &row.record;
        text.push_str(&format!(
            "{tenant}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t0\t{}\n",
            row.dedupe_key,
            row.line.0,
            r.started_at.format(&format)?,
            r.ended_at.format(&format)?,
            r.data_bytes,
            r.sms,
            r.voice_seconds,
            r.country.as_deref().unwrap_or("\\N"),
            r.roaming == Roaming::International,
            r.observed_at.format(&format)?,
        ));
    }
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY usage_copy (tenant_id, dedupe_key, line_id, started_at, ended_at, data_bytes,
                 sms, voice_seconds, country, roaming, cost_minor, observed_at) FROM STDIN",
        )
        .await?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(copied as usize == rows.len(), "copied {copied} rows");
    let rate = rows.len() as f64 / elapsed.as_secs_f64();
    println!(
        "PostgreSQL COPY: {} rows in {:.2} s ({rate:.0} rows/s)",
        rows.len(),
        elapsed.as_secs_f64()
    );
    Ok(rate)
}
