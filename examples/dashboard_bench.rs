//! Benchmark: the spend dashboard and the chargeback export on PostgreSQL for a large tenant
//! (by default 10,000 employees with a line each and 13 months of daily usage, ~4 million
//! `usage_daily` rows), served by the real portal on a loopback socket to a signed-in owner.
//!
//! `cargo run --release --example dashboard_bench -- [REQUESTS] [EMPLOYEES] [MONTHS]`
//! (defaults 200, 10000, 13). Reports the round trip and the handler's own time (its
//! `Server-Timing` header) as p50 / p95 / max.

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

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

const PASSWORD: &str = "a long benchmark password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let employees: i64 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let months: i64 = args.next().map_or(Ok(13), |a| a.parse())?;

    let url = lineup_testkit::fresh_postgres_url().await;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse()?,
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await?;
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

    let started = Instant::now();
    let rows = seed(&url, tenant.0, employees, months).await?;
    println!(
        "seeded {employees} employees and lines, {rows} usage_daily rows over {months} months in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://lineup.test:{}", addr.port());
    let portal = Portal::new(lineup.clone(), PortalConfig::new(base.parse()?));
    let app = portal_router(portal);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let browser = Browser::new("bench.lineup.test", addr);
    browser.sign_in(owner.as_str(), PASSWORD).await;

    for (name, path) in [
        ("dashboard (default: 6 months by employee)", "/dashboard"),
        (
            "dashboard (13 months by cost centre)",
            "/dashboard?group=cost_centre&from=PERIOD_START",
        ),
        (
            "dashboard (weekly, by team)",
            "/dashboard?group=team&granularity=week",
        ),
        ("chargeback export (6 months)", "/exports/chargeback.csv"),
    ] {
        let start_month =
            time::OffsetDateTime::now_utc().date() - time::Duration::days(30 * (months - 1));
        let path = path.replace(
            "PERIOD_START",
            &format!(
                "{:04}-{:02}",
                start_month.year(),
                u8::from(start_month.month())
            ),
        );
        measure(&browser, name, &path, requests).await;
    }
    // Keep the database up to look at query plans by hand (psql on the printed URL).
    if let Some(secs) = std::env::var("LINEUP_BENCH_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("holding {url} for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    Ok(())
}

async fn measure(browser: &Browser, name: &str, path: &str, requests: usize) {
    for _ in 0..5 {
        browser.get(path).await.assert_ok();
    }
    let mut round_trips = Vec::with_capacity(requests);
    let mut handler = Vec::with_capacity(requests);
    for _ in 0..requests {
        let sent = Instant::now();
        let answer = browser.get(path).await;
        round_trips.push(sent.elapsed());
        answer.assert_ok();
        let server = answer
            .headers
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("app;dur="))
            .and_then(|ms| ms.parse::<f64>().ok());
        if let Some(ms) = server {
            handler.push(Duration::from_secs_f64(ms / 1e3));
        }
    }
    println!("{name}: {requests} requests of {path}");
    println!("  round trip  {}", summary(&mut round_trips));
    if !handler.is_empty() {
        println!("  handler     {}", summary(&mut handler));
    }
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms",
        ms(at(0.50)),
        ms(at(0.95)),
        ms(samples[samples.len() - 1])
    )
}

/// Teams, cost centres, employees (100 managers, everyone else reporting to one), plans,
/// one line each (a few suspended, some terminated part-way, some idle lately) and daily
/// usage, generated inside PostgreSQL; then the monthly rollup as the migration builds it.
async fn seed(url: &str, tenant: uuid::Uuid, employees: i64, months: i64) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('app.system', 'on', true)")
        .execute(&mut *tx)
        .await?;
    let days = months * 365 / 12;
    let statements = [
        "INSERT INTO teams (id, tenant_id, name, created_at)
         SELECT md5('team' || i)::uuid, $1, 'Team ' || i, now() FROM generate_series(0, 49) i",
        "INSERT INTO cost_centres (id, tenant_id, code, name, created_at)
         SELECT md5('cc' || i)::uuid, $1, 'CC-' || (100 + i), 'Cost centre ' || i, now()
         FROM generate_series(0, 19) i",
        "INSERT INTO employees (id, tenant_id, email, given_name, family_name, team_id,
             cost_centre_id, manager_id, status, created_at, updated_at)
         SELECT md5('emp' || i)::uuid, $1, 'person' || i || '@bench.example', 'Person', 'No. ' || i,
             md5('team' || (i % 50))::uuid, md5('cc' || (i % 20))::uuid,
             CASE WHEN i < 100 THEN NULL ELSE md5('emp' || (i % 100))::uuid END,
             'active', now(), now()
         FROM generate_series(0, $2 - 1) i",
        "INSERT INTO plans (id, tenant_id, provider, offering_id, name, data_bytes, validity,
             coverage, price_minor, currency, active, created_at)
         SELECT md5('plan' || i)::uuid, $1, 'bench', 'bench-' || i, 'Plan ' || i,
             (5 + 5 * i) * 1073741824::bigint, '{\"days\": 30}', '[\"US\"]', 1500 + 1000 * i,
             'USD', true, now()
         FROM generate_series(0, 2) i",
        "INSERT INTO lines (id, tenant_id, employee_id, plan_id, state, provider, issue_key,
             created_at, updated_at)
         SELECT md5('line' || i)::uuid, $1, md5('emp' || i)::uuid, md5('plan' || (i % 3))::uuid,
             CASE WHEN i % 97 = 0 THEN 'terminated' WHEN i % 50 = 0 THEN 'suspended'
                  ELSE 'active' END,
             'bench', 'bench-' || i,
             now() - make_interval(days => ($3 + 5 - (i % 30))::int),
             CASE WHEN i % 97 = 0 THEN now() - make_interval(days => (i % 200)::int) ELSE now() END
         FROM generate_series(0, $2 - 1) i",
        // Every line every day, except the last 45 days of every 40th (idle lines).
        "INSERT INTO usage_daily (tenant_id, line_id, day, data_bytes, roaming_bytes, sms,
             voice_seconds, cost_minor)
         SELECT $1, md5('line' || i)::uuid, d::date,
             (random() * 300000000)::bigint,
             CASE WHEN random() < 0.02 THEN (random() * 50000000)::bigint ELSE 0 END,
             (random() * 5)::bigint, (random() * 600)::bigint,
             CASE WHEN random() < 0.1 THEN (random() * 400)::bigint ELSE 0 END
         FROM generate_series(0, $2 - 1) i,
              generate_series(current_date - $3, current_date, interval '1 day') d
         WHERE i % 40 <> 0 OR d < current_date - 45",
        "INSERT INTO usage_monthly (tenant_id, line_id, month, data_bytes, roaming_bytes,
             cost_minor, last_active_day)
         SELECT tenant_id, line_id, date_trunc('month', day)::date, SUM(data_bytes),
             SUM(roaming_bytes), SUM(cost_minor),
             MAX(CASE WHEN data_bytes > 0 OR sms > 0 OR voice_seconds > 0 THEN day END)
         FROM usage_daily GROUP BY tenant_id, line_id, date_trunc('month', day)::date",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(tenant)
            .bind(employees)
            .bind(days as i32)
            .execute(&mut *tx)
            .await?;
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_daily")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    // As autovacuum would: fresh statistics, and a visibility map for index-only scans.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut conn).await?;
    Ok(rows)
}
