//! Benchmark: every view of the spend dashboard and the chargeback export for a large tenant
//! (by default 10,000 employees with a line each and 13 months of daily usage, ~4 million
//! `usage_daily` rows), on PostgreSQL and on SQLite, served by the real portal on a loopback
//! socket to a signed-in owner.
//!
//! `cargo run --release --example dashboard_bench -- [REQUESTS] [EMPLOYEES] [MONTHS]
//! [--backend postgres|sqlite|both]` (defaults 200, 10000, 13, both). Prints one table: per
//! view and backend the round trip's p50 / p95 and the handler's own p95 (its `Server-Timing`
//! header).

// A benchmark may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::ids::TenantId;
use lineup_core::money::Currency;
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::period::Month;
use lineup_core::provider::PollPolicy;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::store::{self, Store};
use lineup_portal::{Portal, PortalConfig, portal_router};
use lineup_simulator::{Credentials, SimConfig};
use lineup_testkit::portal::Browser;

const PASSWORD: &str = "a long benchmark password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Sqlite => "SQLite",
        }
    }
}

struct Args {
    requests: usize,
    employees: i64,
    months: i64,
    backends: Vec<Backend>,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let mut numbers = Vec::new();
        let mut backends = vec![Backend::Postgres, Backend::Sqlite];
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--backend" {
                backends = match args.next().as_deref() {
                    Some("postgres") => vec![Backend::Postgres],
                    Some("sqlite") => vec![Backend::Sqlite],
                    Some("both") => vec![Backend::Postgres, Backend::Sqlite],
                    other => anyhow::bail!(
                        "--backend takes postgres, sqlite or both, not {}",
                        other.unwrap_or("nothing")
                    ),
                };
            } else {
                numbers.push(arg);
            }
        }
        if numbers.len() > 3 {
            anyhow::bail!("expected at most REQUESTS EMPLOYEES MONTHS, got {numbers:?}");
        }
        let mut numbers = numbers.into_iter();
        Ok(Self {
            requests: numbers.next().map_or(Ok(200), |a| a.parse())?,
            employees: numbers.next().map_or(Ok(10_000), |a| a.parse())?,
            months: numbers.next().map_or(Ok(13), |a| a.parse())?,
            backends,
        })
    }
}

/// One page the benchmark times.
struct View {
    name: String,
    path: String,
    /// What happens just before it is timed.
    before: Before,
}

/// What a view's timing starts from.
#[derive(Clone, Copy, PartialEq)]
enum Before {
    Nothing,
    /// Usage noted as changed, as while a sync runs, until its end rebuilds chargeback's
    /// rollup: the export adds the lines up itself.
    UsageChanged,
    /// [`MOVES`] people moved to another cost centre through core, each in its own
    /// transaction, as an admin or an identity provider moves them.
    Moves,
}

/// How many people the "after moves" view moves first.
const MOVES: i64 = 100;

/// Every granularity × grouping over 1, 6 and 13 months, the filters on a few of them, and
/// the chargeback export; team and cost-centre filters pick the seed's first team and centre.
fn views(today: time::Date, months: i64) -> Vec<View> {
    let current = Month::containing(today);
    let months_back = |n: i64| (1..n).fold(current, |m, _| m.previous());
    let longest = months.max(1);
    let periods = [1, 6, longest];
    let team = format!("team={}", seed_id(TEAM, 0));
    let centre = format!("cost_centre={}", seed_id(COST_CENTRE, 0));
    let mut views = Vec::new();
    let mut add = |granularity: &str, group: &str, months: i64, filter: Option<(&str, &str)>| {
        let mut query = format!(
            "granularity={granularity}&group={group}&from={}&to={current}",
            months_back(months)
        );
        let mut name = format!("{granularity} by {group}, {months} mo");
        if let Some((label, filter)) = filter {
            query.push('&');
            query.push_str(filter);
            name.push_str(&format!(", {label} filter"));
        }
        views.push(View {
            name,
            path: format!("/dashboard?{query}"),
            before: Before::Nothing,
        });
    };
    for granularity in ["month", "week", "day"] {
        for group in ["employee", "team", "cost_centre"] {
            for months in periods {
                add(granularity, group, months, None);
            }
        }
    }
    for granularity in ["month", "week", "day"] {
        add(granularity, "employee", longest, Some(("team", &team)));
        add(granularity, "team", longest, Some(("cost centre", &centre)));
    }
    views.insert(
        0,
        View {
            name: "default (/dashboard: month by employee, 6 mo)".into(),
            path: "/dashboard".into(),
            before: Before::Nothing,
        },
    );
    views.push(View {
        name: "chargeback CSV, 6 mo".into(),
        path: "/exports/chargeback.csv".into(),
        before: Before::Nothing,
    });
    let whole = format!(
        "/exports/chargeback.csv?from={}&to={current}",
        months_back(longest)
    );
    views.push(View {
        name: format!("chargeback CSV, {longest} mo"),
        path: whole.clone(),
        before: Before::Nothing,
    });
    views.push(View {
        name: format!("chargeback CSV, {longest} mo, rollup out of date"),
        path: whole.clone(),
        before: Before::UsageChanged,
    });
    views.push(View {
        name: format!("chargeback CSV, {longest} mo, after {MOVES} cost-centre moves"),
        path: whole,
        before: Before::Moves,
    });
    views
}

/// p50 and p95 of the round trip and p95 of the handler's own time, in ms.
#[derive(Clone, Copy)]
struct Timing {
    round_trip_p50: f64,
    round_trip_p95: f64,
    handler_p95: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let today = time::OffsetDateTime::now_utc().date();
    let views = views(today, args.months);
    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse()?,
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await?;
    let mut results: Vec<(Backend, Vec<Timing>)> = Vec::new();
    for &backend in &args.backends {
        let timings = run(backend, &args, &sim, &views).await?;
        results.push((backend, timings));
    }
    println!();
    print!("| view |");
    for (backend, _) in &results {
        print!(" {0} p50 | {0} p95 | handler p95 |", backend.name());
    }
    println!();
    print!("|---|");
    for _ in &results {
        print!("---:|---:|---:|");
    }
    println!();
    for (i, view) in views.iter().enumerate() {
        print!("| {} |", view.name);
        for (_, timings) in &results {
            let t = timings[i];
            print!(
                " {:.1} | {:.1} | {} |",
                t.round_trip_p50,
                t.round_trip_p95,
                t.handler_p95
                    .map_or("–".to_owned(), |ms| format!("{ms:.1}"))
            );
        }
        println!();
    }
    Ok(())
}

/// Seeds a fresh database of `backend`, serves the portal on it and times every view.
async fn run(
    backend: Backend,
    args: &Args,
    sim: &lineup_simulator::RunningSimulator,
    views: &[View],
) -> anyhow::Result<Vec<Timing>> {
    let dir = tempfile::tempdir()?;
    let url = match backend {
        Backend::Postgres => lineup_testkit::fresh_postgres_url().await,
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("lineup.db").display()),
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

    let started = Instant::now();
    let rows = match backend {
        Backend::Postgres => seed_postgres(&url, tenant.0, args.employees, args.months).await?,
        Backend::Sqlite => seed_sqlite(&url, tenant.0, args.employees, args.months).await?,
    };
    println!(
        "{}: seeded {} employees and lines, {rows} usage_daily rows over {} months in {:.1} s",
        backend.name(),
        args.employees,
        args.months,
        started.elapsed().as_secs_f64()
    );

    // The seed writes usage as SQL; a sync would also have noted the change, and rebuilt
    // chargeback's rollup at its end.
    mark_usage_changed(&store, tenant).await?;
    let started = Instant::now();
    lineup.refresh_chargeback_rollup(tenant).await?;
    println!(
        "{}: chargeback rollup built in {:.0} ms (what a sync adds at its end)",
        backend.name(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://lineup.test:{}", addr.port());
    let portal = Portal::new(lineup.clone(), PortalConfig::new(base.parse()?));
    let app = portal_router(portal);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let browser = Browser::new("bench.lineup.test", addr);
    browser.sign_in(owner.as_str(), PASSWORD).await;

    let mut timings = Vec::with_capacity(views.len());
    for view in views {
        match view.before {
            Before::Nothing => {}
            Before::UsageChanged => mark_usage_changed(&store, tenant).await?,
            Before::Moves => {
                lineup.refresh_chargeback_rollup(tenant).await?;
                move_people(&lineup, tenant, backend).await?;
            }
        }
        let timing = measure(&browser, &view.path, args.requests).await;
        println!(
            "{}  {}: p50 {:.1} ms  p95 {:.1} ms  (handler p95 {})  {}",
            backend.name(),
            view.name,
            timing.round_trip_p50,
            timing.round_trip_p95,
            timing
                .handler_p95
                .map_or("–".to_owned(), |ms| format!("{ms:.1} ms")),
            view.path
        );
        timings.push(timing);
    }
    // Keep the database up to look at query plans by hand (psql or sqlite3 on the URL).
    if let Some(secs) = std::env::var("LINEUP_BENCH_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        println!("holding {url} for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    server.abort();
    store.close().await;
    Ok(timings)
}

/// Moves [`MOVES`] people, spread over the directory, to the next cost centre, one edit
/// each, and prints what a move took.
async fn move_people(lineup: &Lineup, tenant: TenantId, backend: Backend) -> anyhow::Result<()> {
    let mut took = Vec::with_capacity(MOVES as usize);
    for n in 0..MOVES {
        let id = lineup_core::ids::EmployeeId(seed_id(EMPLOYEE, n * 97));
        let to = lineup_core::ids::CostCentreId(seed_id(COST_CENTRE, (n * 97 + 1) % 20));
        let edit = lineup_testkit::world::cost_centre_edit(lineup, tenant, id, Some(to)).await;
        let started = Instant::now();
        lineup
            .update_employee(tenant, &Actor::System, id, edit)
            .await?;
        took.push(started.elapsed());
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{}: {MOVES} cost-centre moves, each p50 {:.1} ms  p95 {:.1} ms; rollup current after them: {}",
        backend.name(),
        ms(took[took.len() / 2]),
        ms(took[took.len() * 95 / 100]),
        lineup.chargeback_rollup_is_current(tenant).await?
    );
    Ok(())
}

async fn mark_usage_changed(store: &Store, tenant: TenantId) -> anyhow::Result<()> {
    let mut tx = store.tenant(tenant).await?;
    store::chargeback_months::usage_changed(&mut tx, tenant).await?;
    tx.commit().await?;
    Ok(())
}

async fn measure(browser: &Browser, path: &str, requests: usize) -> Timing {
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
    Timing {
        round_trip_p50: quantile_ms(&mut round_trips, 0.50),
        round_trip_p95: quantile_ms(&mut round_trips, 0.95),
        handler_p95: (!handler.is_empty()).then(|| quantile_ms(&mut handler, 0.95)),
    }
}

fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[at].as_secs_f64() * 1e3
}

/// What a seeded id is of; with its index it makes the id ([`seed_id`]), the same on
/// both backends so views can name the first team and cost centre.
const TEAM: u128 = 1;
const COST_CENTRE: u128 = 2;
const EMPLOYEE: u128 = 3;
const PLAN: u128 = 4;
const LINE: u128 = 5;

fn seed_id(kind: u128, index: i64) -> uuid::Uuid {
    uuid::Uuid::from_u128((kind << 64) | index as u128)
}

/// The tenant-daily rollup as its migration builds it, on either backend.
const TENANT_DAYS: &str = "INSERT INTO usage_tenant_daily (tenant_id, day, data_bytes, cost_minor)
     SELECT tenant_id, day, SUM(data_bytes), SUM(cost_minor) FROM usage_daily
     GROUP BY tenant_id, day";

/// Teams, cost centres, employees (100 managers, everyone else reporting to one), plans,
/// one line each (a few suspended, some terminated part-way, some idle lately) and daily
/// usage, generated inside PostgreSQL; then the rollups as their migrations build them.
async fn seed_postgres(
    url: &str,
    tenant: uuid::Uuid,
    employees: i64,
    months: i64,
) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('app.system', 'on', true)")
        .execute(&mut *tx)
        .await?;
    // The ids `seed_id` makes: kind in the third group, index in the last.
    sqlx::raw_sql(
        "CREATE FUNCTION pg_temp.bench_id(kind int, i bigint) RETURNS uuid LANGUAGE sql
         IMMUTABLE AS $$ SELECT ('00000000-0000-' || lpad(to_hex(kind), 4, '0') || '-0000-'
             || lpad(to_hex(i), 12, '0'))::uuid $$",
    )
    .execute(&mut *tx)
    .await?;
    let days = months * 365 / 12;
    let statements = [
        "INSERT INTO teams (id, tenant_id, name, created_at)
         SELECT pg_temp.bench_id(1, i), $1, 'Team ' || i, now() FROM generate_series(0, 49) i",
        "INSERT INTO cost_centres (id, tenant_id, code, name, created_at)
         SELECT pg_temp.bench_id(2, i), $1, 'CC-' || (100 + i), 'Cost centre ' || i, now()
         FROM generate_series(0, 19) i",
        "INSERT INTO employees (id, tenant_id, email, given_name, family_name, team_id,
             cost_centre_id, manager_id, status, created_at, updated_at)
         SELECT pg_temp.bench_id(3, i), $1, 'person' || i || '@bench.example', 'Person', 'No. ' || i,
             pg_temp.bench_id(1, i % 50), pg_temp.bench_id(2, i % 20),
             CASE WHEN i < 100 THEN NULL ELSE pg_temp.bench_id(3, i % 100) END,
             'active', now(), now()
         FROM generate_series(0, $2 - 1) i",
        "INSERT INTO plans (id, tenant_id, provider, offering_id, name, data_bytes, validity,
             coverage, price_minor, currency, active, created_at)
         SELECT pg_temp.bench_id(4, i), $1, 'bench', 'bench-' || i, 'Plan ' || i,
             (5 + 5 * i) * 1073741824::bigint, '{\"days\": 30}', '[\"US\"]', 1500 + 1000 * i,
             'USD', true, now()
         FROM generate_series(0, 2) i",
        "INSERT INTO lines (id, tenant_id, employee_id, plan_id, state, provider, issue_key,
             created_at, updated_at)
         SELECT pg_temp.bench_id(5, i), $1, pg_temp.bench_id(3, i), pg_temp.bench_id(4, i % 3),
             CASE WHEN i % 97 = 0 THEN 'terminated' WHEN i % 50 = 0 THEN 'suspended'
                  ELSE 'active' END,
             'bench', 'bench-' || i,
             now() - make_interval(days => ($3 + 5 - (i % 30))::int),
             CASE WHEN i % 97 = 0 THEN now() - make_interval(days => (i % 200)::int) ELSE now() END
         FROM generate_series(0, $2 - 1) i",
        // Every line every day, except the last 45 days of every 40th (idle lines).
        "INSERT INTO usage_daily (tenant_id, line_id, day, data_bytes, roaming_bytes, sms,
             voice_seconds, cost_minor)
         SELECT $1, pg_temp.bench_id(5, i), d::date,
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
        TENANT_DAYS,
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

/// The same organisation as [`seed_postgres`] on SQLite: people, plans and lines inserted
/// row by row in one transaction, daily usage generated inside SQLite from a temporary table
/// of the lines, then the rollups as their migrations build them.
async fn seed_sqlite(
    url: &str,
    tenant: uuid::Uuid,
    employees: i64,
    months: i64,
) -> anyhow::Result<i64> {
    use sqlx::Connection;
    use time::OffsetDateTime;
    let mut conn = sqlx::SqliteConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    let now = OffsetDateTime::now_utc();
    let days = months * 365 / 12;
    for i in 0..50 {
        sqlx::query("INSERT INTO teams (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(seed_id(TEAM, i))
            .bind(tenant)
            .bind(format!("Team {i}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    for i in 0..20 {
        sqlx::query(
            "INSERT INTO cost_centres (id, tenant_id, code, name, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(seed_id(COST_CENTRE, i))
        .bind(tenant)
        .bind(format!("CC-{}", 100 + i))
        .bind(format!("Cost centre {i}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for i in 0..3 {
        sqlx::query(
            "INSERT INTO plans (id, tenant_id, provider, offering_id, name, data_bytes, validity,
                 coverage, price_minor, currency, active, created_at)
             VALUES (?, ?, 'bench', ?, ?, ?, '{\"days\": 30}', '[\"US\"]', ?, 'USD', 1, ?)",
        )
        .bind(seed_id(PLAN, i))
        .bind(tenant)
        .bind(format!("bench-{i}"))
        .bind(format!("Plan {i}"))
        .bind((5 + 5 * i) * 1_073_741_824)
        .bind(1500 + 1000 * i)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("CREATE TEMP TABLE bench_lines (i INTEGER PRIMARY KEY, line_id BLOB NOT NULL)")
        .execute(&mut *tx)
        .await?;
    for i in 0..employees {
        sqlx::query(
            "INSERT INTO employees (id, tenant_id, email, given_name, family_name, team_id,
                 cost_centre_id, manager_id, status, created_at, updated_at)
             VALUES (?, ?, ?, 'Person', ?, ?, ?, ?, 'active', ?, ?)",
        )
        .bind(seed_id(EMPLOYEE, i))
        .bind(tenant)
        .bind(format!("person{i}@bench.example"))
        .bind(format!("No. {i}"))
        .bind(seed_id(TEAM, i % 50))
        .bind(seed_id(COST_CENTRE, i % 20))
        .bind((i >= 100).then(|| seed_id(EMPLOYEE, i % 100)))
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for i in 0..employees {
        let state = match i {
            i if i % 97 == 0 => "terminated",
            i if i % 50 == 0 => "suspended",
            _ => "active",
        };
        let updated = if i % 97 == 0 {
            now - time::Duration::days(i % 200)
        } else {
            now
        };
        sqlx::query(
            "INSERT INTO lines (id, tenant_id, employee_id, plan_id, state, provider, issue_key,
                 created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, 'bench', ?, ?, ?)",
        )
        .bind(seed_id(LINE, i))
        .bind(tenant)
        .bind(seed_id(EMPLOYEE, i))
        .bind(seed_id(PLAN, i % 3))
        .bind(state)
        .bind(format!("bench-{i}"))
        .bind(now - time::Duration::days(days + 5 - i % 30))
        .bind(updated)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bench_lines (i, line_id) VALUES (?, ?)")
            .bind(i)
            .bind(seed_id(LINE, i))
            .execute(&mut *tx)
            .await?;
    }
    // Every line every day, except the last 45 days of every 40th (idle lines).
    sqlx::query(
        "INSERT INTO usage_daily (tenant_id, line_id, day, data_bytes, roaming_bytes, sms,
             voice_seconds, cost_minor)
         WITH RECURSIVE back(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM back WHERE n < ?2)
         SELECT ?1, b.line_id, date('now', '-' || n || ' days'),
             abs(random()) % 300000000,
             CASE WHEN abs(random()) % 50 = 0 THEN abs(random()) % 50000000 ELSE 0 END,
             abs(random()) % 6, abs(random()) % 601,
             CASE WHEN abs(random()) % 10 = 0 THEN abs(random()) % 401 ELSE 0 END
         FROM bench_lines b, back
         WHERE b.i % 40 <> 0 OR n > 45",
    )
    .bind(tenant)
    .bind(days)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO usage_monthly (tenant_id, line_id, month, data_bytes, roaming_bytes,
             cost_minor, last_active_day)
         SELECT tenant_id, line_id, substr(day, 1, 7) || '-01', SUM(data_bytes),
             SUM(roaming_bytes), SUM(cost_minor),
             MAX(CASE WHEN data_bytes > 0 OR sms > 0 OR voice_seconds > 0 THEN day END)
         FROM usage_daily GROUP BY tenant_id, line_id, substr(day, 1, 7)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(TENANT_DAYS).execute(&mut *tx).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_daily")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("DROP TABLE bench_lines")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE").execute(&mut conn).await?;
    Ok(rows)
}
