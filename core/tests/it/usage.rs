//! Usage from the provider into daily rollups: every record counts once, whatever the order,
//! however often it arrives, and however many times an interrupted sync is run again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lineup_core::Lineup;
use lineup_core::lines::line::Line;
use lineup_core::money::Bytes;
use lineup_core::organisation::employee::Visibility;
use lineup_core::period::Period;
use lineup_core::provider::{
    Capabilities, ConnectivityProvider, Effective, IdempotencyKey, Operation, Page, PlanRef,
    ProviderError, ProviderEvent, ProviderPlan, ProvisionRequest, Roaming, SimProfile,
    SubscriptionSnapshot, UsageQuery, UsageRecord, WebhookError,
};
use lineup_core::spend::reports::{Granularity, GroupBy, ReportFilter};
use lineup_core::spend::usage::{SpendFilter, SpendGrouping};
use lineup_core::store::now;
use lineup_testkit::both_backends;
use lineup_testkit::world::{World, quick_poll};
use serde_json::json;
use time::{Date, Duration, OffsetDateTime};

async fn use_data(w: &World, line: &Line, megabytes: i64, country: &str) {
    let sub = line.provider_subscription_id.as_deref().unwrap();
    w.sim(
        reqwest::Method::POST,
        &format!("/_sim/subscriptions/{sub}/usage"),
        Some(json!({"data_bytes": Bytes::mb(megabytes).0, "country": country})),
    )
    .await;
}

async fn total_bytes(w: &World, line: &Line) -> (i64, i64) {
    let days = w.lineup.daily_usage(w.tenant, line.id).await.unwrap();
    (
        days.iter().map(|d| d.data_bytes).sum(),
        days.iter().map(|d| d.roaming_bytes).sum(),
    )
}

fn window() -> (time::Date, time::Date) {
    let today = now().date();
    (today - Duration::days(2), today + Duration::days(1))
}

both_backends!(
    synced_usage_lands_in_daily_rollups_once,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "usage-line").await;
        use_data(&w, &line, 100, "US").await;
        use_data(&w, &line, 50, "FR").await;
        let (from, to) = window();
        let first = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!(first.recorded, 2, "{first:?}");
        assert_eq!(
            total_bytes(&w, &line).await,
            (Bytes::mb(150).0, Bytes::mb(50).0),
            "FR is roaming for a US account"
        );

        // The same window again (a retried cron tick, an overlapping sync) counts nothing twice.
        let again = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((again.recorded, again.duplicates), (0, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(150).0);

        // New usage after that is picked up on the next sync.
        use_data(&w, &line, 25, "US").await;
        let third = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((third.recorded, third.duplicates), (1, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(175).0);
    }
);

both_backends!(
    duplicates_and_out_of_order_records_never_double_count,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "ooo-line").await;
        let sub = line.provider_subscription_id.clone().unwrap();
        let at = now();
        let record = |key: &str, minutes_ago: i64, mb: i64| UsageRecord {
            dedupe_key: key.into(),
            subscription_id: sub.clone(),
            started_at: at - Duration::minutes(minutes_ago),
            ended_at: at - Duration::minutes(minutes_ago - 1),
            data_bytes: Bytes::mb(mb).0,
            sms: 0,
            voice_seconds: 0,
            country: Some("US".into()),
            roaming: Roaming::None,
            in_bundle: Some(true),
            observed_at: at,
        };
        let (early, late) = (record("uitem_A", 120, 10), record("uitem_B", 60, 20));
        let report = w
            .lineup
            .record_usage(w.tenant, &[late.clone(), early.clone(), late.clone()])
            .await
            .unwrap();
        assert_eq!((report.recorded, report.duplicates), (2, 1));
        let redelivered = w
            .lineup
            .record_usage(w.tenant, &[early, late])
            .await
            .unwrap();
        assert_eq!((redelivered.recorded, redelivered.duplicates), (0, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(30).0);

        let mut stranger = record("uitem_C", 30, 5);
        stranger.subscription_id = "sub_SOMEONE_ELSE".into();
        let report = w.lineup.record_usage(w.tenant, &[stranger]).await.unwrap();
        assert_eq!(report.unknown_lines, 1);
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(30).0);
    }
);

both_backends!(
    an_interrupted_sync_run_again_ends_with_the_same_totals,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "resume-line").await;
        for mb in [5, 7, 11, 13] {
            use_data(&w, &line, mb, "US").await;
        }
        // The sync died after storing the first page (two of four records).
        let (from, to) = window();
        let all = w
            .lineup
            .shared_provider()
            .usage(&UsageQuery {
                from,
                to,
                subscription_id: None,
                cursor: None,
            })
            .await
            .unwrap();
        assert_eq!(all.items.len(), 4);
        w.lineup
            .record_usage(w.tenant, &all.items[..2])
            .await
            .unwrap();
        // Run again from the start.
        let report = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((report.recorded, report.duplicates), (2, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(36).0);
    }
);

/// The simulator's provider, except that usage comes from fixed pages and, while `failing`,
/// page `fail_on` (1-based) answers with an outage: a sync killed mid-way.
struct PagedUsage {
    inner: Arc<dyn ConnectivityProvider>,
    pages: Vec<Vec<UsageRecord>>,
    fail_on: usize,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl ConnectivityProvider for PagedUsage {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        self.inner.list_plans().await
    }
    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.inner.provision_line(request, key).await
    }
    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        self.inner.poll_operation(operation_id).await
    }
    async fn get_subscription(&self, id: &str) -> Result<SubscriptionSnapshot, ProviderError> {
        self.inner.get_subscription(id).await
    }
    async fn get_sim_profile(&self, id: &str) -> Result<SimProfile, ProviderError> {
        self.inner.get_sim_profile(id).await
    }
    async fn suspend(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.suspend(id, key).await
    }
    async fn resume(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.resume(id, key).await
    }
    async fn terminate(&self, id: &str, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        self.inner.terminate(id, key).await
    }
    async fn change_plan(
        &self,
        id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.inner.change_plan(id, plan, effective, key).await
    }
    async fn set_speed_limit(
        &self,
        id: &str,
        max_kbps: Option<u32>,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.inner.set_speed_limit(id, max_kbps, key).await
    }
    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        let page: usize = query.cursor.as_deref().map_or(0, |c| c.parse().unwrap());
        if page + 1 == self.fail_on && self.failing.load(Ordering::SeqCst) {
            return Err(ProviderError::Transient {
                detail: "connection reset".into(),
            });
        }
        Ok(Page {
            items: self.pages[page].clone(),
            next_cursor: (page + 1 < self.pages.len()).then(|| (page + 1).to_string()),
        })
    }
    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        self.inner.parse_webhook(signature_header, body, now)
    }
}

fn gb_record(line: &Line, key: &str, at: OffsetDateTime, gb: i64) -> UsageRecord {
    UsageRecord {
        dedupe_key: key.into(),
        subscription_id: line.provider_subscription_id.clone().unwrap(),
        started_at: at,
        ended_at: at + Duration::minutes(1),
        data_bytes: Bytes::gb(gb).0,
        sms: 1,
        voice_seconds: 60,
        country: Some("US".into()),
        roaming: Roaming::None,
        in_bundle: None,
        observed_at: at,
    }
}

async fn period_spend(w: &World, line: &Line, period: &str) -> (i64, i64, i64) {
    let rows = w
        .lineup
        .spend(
            w.tenant,
            SpendGrouping::Line,
            &SpendFilter {
                from_period: Some(period.into()),
                to_period: Some(period.into()),
                ..SpendFilter::default()
            },
        )
        .await
        .unwrap();
    let row = rows.iter().find(|r| r.key == Some(line.id.0)).unwrap();
    (row.bundle_bytes, row.overage_minor, row.total_minor)
}

both_backends!(
    late_and_out_of_order_records_price_their_period_the_same,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ordered").await;
        let alan = w.active_line(&w.alan, "shuffled").await;
        let nov = |day: u8| {
            time::macros::datetime!(2026-11-01 09:00 UTC)
                .replace_day(day)
                .unwrap()
        };
        let now = nov(28);
        // Europe 10GB: 25.00 a month, 10 GB, 10.00 per GB over.
        let amounts = [(3, 4), (10, 5), (20, 3)];
        let ordered: Vec<UsageRecord> = amounts
            .iter()
            .map(|(day, gb)| gb_record(&ada, &format!("a{day}"), nov(*day), *gb))
            .collect();
        w.lineup
            .record_usage_at(w.tenant, &ordered, now)
            .await
            .unwrap();
        // Alan's same usage arrives newest first, one record per sync, with a re-delivery.
        for (day, gb) in amounts.iter().rev() {
            let record = gb_record(&alan, &format!("b{day}"), nov(*day), *gb);
            let batch = [record.clone(), record];
            w.lineup
                .record_usage_at(w.tenant, &batch, now)
                .await
                .unwrap();
        }
        // 12 GB in November: 2 GB over → 20.00; 25.00 + 20.00 = 45.00 either way.
        let expected = (Bytes::gb(12).0, 2_000, 4_500);
        assert_eq!(period_spend(&w, &ada, "2026-11").await, expected);
        assert_eq!(period_spend(&w, &alan, "2026-11").await, expected);

        // A record from October arrives late: it prices October, not November.
        let late = [gb_record(
            &ada,
            "late",
            time::macros::datetime!(2026-10-30 23:59 UTC),
            11,
        )];
        w.lineup
            .record_usage_at(w.tenant, &late, now)
            .await
            .unwrap();
        assert_eq!(
            period_spend(&w, &ada, "2026-10").await,
            (Bytes::gb(11).0, 1_000, 3_500)
        );
        assert_eq!(period_spend(&w, &ada, "2026-11").await, expected);
        let months = w
            .lineup
            .spend(w.tenant, SpendGrouping::Tenant, &SpendFilter::default())
            .await
            .unwrap();
        let totals: Vec<(&str, i64)> = months
            .iter()
            .map(|m| (m.period.as_str(), m.total_minor))
            .collect();
        assert_eq!(totals, vec![("2026-10", 3_500), ("2026-11", 9_000)]);
    }
);

both_backends!(
    a_sync_that_dies_on_page_three_and_runs_again_ends_with_the_same_totals,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "paged").await;
        let at = time::macros::datetime!(2026-11-10 08:00 UTC);
        let pages: Vec<Vec<UsageRecord>> = (0..5)
            .map(|p| {
                (0..2)
                    .map(|i| gb_record(&line, &format!("p{p}-{i}"), at + Duration::hours(p), 1))
                    .collect()
            })
            .collect();
        let provider = Arc::new(PagedUsage {
            inner: w.lineup.shared_provider(),
            pages,
            fail_on: 3,
            failing: AtomicBool::new(true),
        });
        let paged = Lineup::new(w.lineup.store().clone(), provider.clone(), quick_poll());
        let (from, to) = (at.date(), at.date());
        let killed = paged.sync_usage_at(w.tenant, from, to, at).await;
        assert!(killed.is_err(), "{killed:?}");
        assert_eq!(
            total_bytes(&w, &line).await.0,
            Bytes::gb(4).0,
            "pages 1 and 2 stored"
        );

        provider.failing.store(false, Ordering::SeqCst);
        let rerun = paged.sync_usage_at(w.tenant, from, to, at).await.unwrap();
        assert_eq!((rerun.recorded, rerun.duplicates), (6, 4));
        let days = w.lineup.daily_usage(w.tenant, line.id).await.unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!(
            (days[0].data_bytes, days[0].sms, days[0].voice_seconds),
            (Bytes::gb(10).0, 10, 600)
        );
        // 10 GB is exactly the allowance: no overage.
        assert_eq!(
            period_spend(&w, &line, "2026-11").await,
            (Bytes::gb(10).0, 0, 2_500)
        );
    }
);

both_backends!(
    the_optimisation_report_finds_idle_lines_and_plans_of_the_wrong_size,
    |store| async move {
        let w = World::new(store).await;
        let us_5gb = w.plans.iter().find(|p| p.name == "US 5GB").unwrap().clone();
        let europe = w
            .plans
            .iter()
            .find(|p| p.name == "Europe 10GB")
            .unwrap()
            .clone();
        let issue = lineup_core::lines::line::commands::IssueLine {
            plan_id: us_5gb.id,
            ..w.issue(&w.ada, "ada-us")
        };
        w.lineup
            .issue_line(w.tenant, &lineup_testkit::world::ADMIN, issue)
            .await
            .unwrap();
        let ada = w
            .lineup
            .lines(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.plan_id == us_5gb.id)
            .unwrap();
        let alan = w.active_line(&w.alan, "alan-idle").await;
        assert_eq!(alan.plan_id, europe.id);

        // A hundred days on, Ada used 10, 10 and 9 GB in the last three complete months on
        // her 5 GB plan at 20.00 + 10.00 per GB over: 70.00, 70.00, 60.00 = 66.66 a month.
        // Global 10GB (45.00, covers the US) would have cost 45.00 flat: 21.66 less a month
        // (6666 − 4500 = 2166). Unlimited US at 60.00 saves less. Alan's line has never been
        // used: cancelling saves its 25.00. Total 46.66 a month.
        let today = now().date() + Duration::days(100);
        let mut month = lineup_core::spend::pricing::period_start(today);
        // Used today too (in the current month, outside the three compared), so not idle.
        let mut records = vec![gb_record(&ada, "today", today.midnight().assume_utc(), 1)];
        for (n, gb) in [9, 10, 10].into_iter().enumerate() {
            month = lineup_core::spend::pricing::period_start(month - Duration::days(1));
            let at = month.replace_day(15).unwrap().midnight().assume_utc();
            records.push(gb_record(&ada, &format!("month{n}"), at, gb));
        }
        w.lineup
            .record_usage_at(w.tenant, &records, today.midnight().assume_utc())
            .await
            .unwrap();
        let report = w.lineup.optimisation_report(w.tenant, today).await.unwrap();
        let found: Vec<(&str, i64)> = report
            .savings
            .iter()
            .map(|s| (s.label.as_str(), s.monthly_saving_minor))
            .collect();
        assert_eq!(
            found,
            vec![
                ("alan@example.com · Europe 10GB", 2_500),
                ("ada@example.com · US 5GB", 2_166)
            ]
        );
        assert_eq!(report.total_monthly_saving_minor, 4_666, "{report:?}");
    }
);

both_backends!(
    whole_tenant_day_and_week_charts_read_a_rollup_ingest_keeps_equal_to_the_daily_rows,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada").await;
        let alan = w.active_line(&w.alan, "alan").await;
        let today = now().date();
        let at = |days_ago: i64, hour: u8| {
            (today - Duration::days(days_ago))
                .with_hms(hour, 0, 0)
                .unwrap()
                .assume_utc()
        };
        // Two batches sharing days and lines; the second re-delivers one of the first's.
        let first = vec![
            gb_record(&ada, "a1", at(3, 9), 1),
            gb_record(&alan, "b1", at(3, 10), 2),
            gb_record(&ada, "a2", at(1, 9), 3),
        ];
        let second = vec![
            gb_record(&alan, "b2", at(1, 11), 4),
            gb_record(&ada, "a3", at(0, 0), 1),
            first[0].clone(),
        ];
        for batch in [first, second] {
            w.lineup
                .record_usage_at(w.tenant, &batch, now())
                .await
                .unwrap();
        }
        let mut expected: BTreeMap<Date, (i64, i64)> = BTreeMap::new();
        for line in [&ada, &alan] {
            for day in w.lineup.daily_usage(w.tenant, line.id).await.unwrap() {
                let sums = expected.entry(day.day).or_default();
                sums.0 += day.cost_minor;
                sums.1 += day.data_bytes;
            }
        }
        assert_eq!(expected.values().map(|s| s.1).sum::<i64>(), Bytes::gb(11).0);
        let filter = ReportFilter {
            period: Period::last_months(today, 2),
            team: None,
            cost_centre: None,
        };
        let scope = w
            .lineup
            .report_scope(w.tenant, Visibility::Everyone, &filter)
            .await
            .unwrap();
        let chart = |granularity| {
            let (lineup, scope) = (&w.lineup, &scope);
            async move {
                lineup
                    .dashboard(w.tenant, scope, &filter, GroupBy::Team, granularity, today)
                    .await
                    .unwrap()
                    .series
            }
        };
        let days: BTreeMap<Date, (i64, i64)> = chart(Granularity::Day)
            .await
            .into_iter()
            .filter(|p| p.data.0 != 0 || p.spend.minor != 0)
            .map(|p| (p.start, (p.spend.minor, p.data.0)))
            .collect();
        assert_eq!(days, expected);
        let weeks = chart(Granularity::Week).await;
        let week_of = |day: Date| {
            weeks
                .iter()
                .rev()
                .find(|p| p.start <= day)
                .map(|p| p.start)
                .unwrap()
        };
        let mut expected_weeks: BTreeMap<Date, i64> = BTreeMap::new();
        for (day, (_, data)) in &expected {
            *expected_weeks.entry(week_of(*day)).or_default() += data;
        }
        let charted_weeks: BTreeMap<Date, i64> = weeks
            .iter()
            .filter(|p| p.data.0 != 0)
            .map(|p| (p.start, p.data.0))
            .collect();
        assert_eq!(charted_weeks, expected_weeks);
    }
);

/// A month of usage for three lines, in the order a provider pages it: mostly at home, every
/// 40th record roaming in France (allowed), every 97th in Japan (not in the presets).
fn month_of_usage(lines: &[&Line], records: usize) -> Vec<UsageRecord> {
    let start = time::macros::datetime!(2026-11-01 00:00 UTC);
    let span = 27 * 86_400;
    (0..records)
        .map(|n| {
            let line = lines[n % lines.len()];
            let offset = i64::try_from(span * n / records).unwrap();
            let started_at = start + Duration::seconds(offset);
            let country = match n {
                n if n % 97 == 0 => "JP",
                n if n % 40 == 0 => "FR",
                _ => "US",
            };
            UsageRecord {
                dedupe_key: format!("uitem_{n:08}"),
                subscription_id: line.provider_subscription_id.clone().unwrap(),
                started_at,
                ended_at: started_at + Duration::minutes(5),
                data_bytes: 500_000 + i64::try_from(n % 7).unwrap() * 300_000,
                sms: i64::try_from(n % 2).unwrap(),
                voice_seconds: i64::try_from(n % 90).unwrap(),
                country: Some(country.into()),
                roaming: if country == "US" {
                    Roaming::None
                } else {
                    Roaming::International
                },
                in_bundle: None,
                observed_at: started_at + Duration::hours(1),
            }
        })
        .collect()
}

/// Every usage rollup of the tenant and its alerts, as text with each line named by its
/// issue key (line ids differ between stores), sorted.
async fn rollups(w: &World) -> Vec<String> {
    use lineup_core::store::Tx;
    const LINE: &str =
        "(SELECT issue_key FROM lines l WHERE l.tenant_id = u.tenant_id AND l.id = u.line_id)";
    let queries = [
        format!(
            "SELECT 'daily ' || {LINE} || ' ' || CAST(day AS TEXT) || ' ' || data_bytes || ' ' ||
                 roaming_bytes || ' ' || sms || ' ' || voice_seconds || ' ' || cost_minor
             FROM usage_daily u WHERE tenant_id = $1"
        ),
        format!(
            "SELECT 'monthly ' || {LINE} || ' ' || CAST(month AS TEXT) || ' ' || data_bytes || ' ' ||
                 roaming_bytes || ' ' || cost_minor || ' ' || overage_minor || ' ' ||
                 COALESCE(CAST(last_active_day AS TEXT), '-')
             FROM usage_monthly u WHERE tenant_id = $1"
        ),
        "SELECT 'tenant_daily ' || CAST(day AS TEXT) || ' ' || data_bytes || ' ' || cost_minor
         FROM usage_tenant_daily WHERE tenant_id = $1"
            .to_owned(),
        format!(
            "SELECT 'spend ' || {LINE} || ' ' || period || ' ' || plan_price_minor || ' ' ||
                 bundle_bytes || ' ' || roaming_bytes || ' ' || overage_minor || ' ' ||
                 roaming_minor
             FROM line_spend u WHERE tenant_id = $1"
        ),
        "SELECT 'records ' || COUNT(*) || ' ' || SUM(data_bytes) || ' ' || SUM(cost_minor)
         FROM usage_records WHERE tenant_id = $1"
            .to_owned(),
        "SELECT 'alerts ' || kind || ' ' || period || ' ' || COUNT(*)
         FROM alerts WHERE tenant_id = $1 GROUP BY kind, period"
            .to_owned(),
    ];
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    let mut rows = Vec::new();
    for sql in &queries {
        let found: Vec<String> = match &mut tx {
            Tx::Sqlite(t) => {
                sqlx::query_scalar(sql)
                    .bind(w.tenant)
                    .fetch_all(&mut **t)
                    .await
            }
            Tx::Postgres(t) => {
                sqlx::query_scalar(sql)
                    .bind(w.tenant)
                    .fetch_all(&mut **t)
                    .await
            }
        }
        .unwrap();
        rows.extend(found);
    }
    rows.sort();
    rows
}

/// A world with three active lines, a tenant cap that alerts part-way through the month and
/// France allowed for roaming; its records.
async fn ingest_world(
    store: lineup_testkit::TestStore,
    records: usize,
) -> (World, Vec<UsageRecord>) {
    use lineup_core::audit::Actor;
    use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, RoamingRule};
    let w = World::new(store).await;
    let ada = w.active_line(&w.ada, "ada").await;
    let alan = w.active_line(&w.alan, "alan").await;
    let maria = w.active_line(&w.maria, "maria").await;
    let cap = BudgetCap {
        scope: CapScope::Tenant,
        amount_minor: 20_000,
        thresholds: vec![50, 80],
        action: CapAction::Alert,
    };
    w.lineup
        .set_budget_cap(w.tenant, &Actor::System, cap)
        .await
        .unwrap();
    w.lineup
        .set_roaming_rule(w.tenant, &Actor::System, "FR", RoamingRule::Allowed)
        .await
        .unwrap();
    let usage = month_of_usage(&[&ada, &alan, &maria], records);
    (w, usage)
}

const INGEST_NOW: OffsetDateTime = time::macros::datetime!(2026-11-28 23:00 UTC);

/// A sync's ingest: pages of `page` records, rolled up two pages at a time (so on PostgreSQL
/// rollups run while later pages are stored).
async fn ingest(
    w: &World,
    usage: &[UsageRecord],
    page: usize,
) -> lineup_core::spend::usage::UsageReport {
    use lineup_core::spend::usage::UsagePipeline;
    let mut pipeline = UsagePipeline::new(&w.lineup, w.tenant, INGEST_NOW).rolling_up_at(2 * page);
    for records in usage.chunks(page) {
        pipeline.push(records.to_vec()).await.unwrap();
    }
    pipeline.finish().await.unwrap()
}

/// The same records recorded in one transaction, stored and rolled up together: what any
/// staging of them must end with.
async fn record_in_one_transaction(w: &World, usage: &[UsageRecord]) {
    let report = w
        .lineup
        .record_usage_at(w.tenant, usage, INGEST_NOW)
        .await
        .unwrap();
    assert_eq!(
        (report.recorded, report.duplicates),
        (usage.len(), 0),
        "{report:?}"
    );
}

/// A world to ingest `records` into, its records, and the rollups of the same records (in a
/// second world on the same backend) recorded in one transaction: what any staging of them
/// must end with.
async fn world_and_expected_rollups(
    store: lineup_testkit::TestStore,
    records: usize,
) -> (World, Vec<UsageRecord>, Vec<String>) {
    let other = match store.backend() {
        lineup_core::store::Backend::Postgres => lineup_testkit::postgres_store().await,
        lineup_core::store::Backend::Sqlite => lineup_testkit::sqlite_store().await,
    };
    let (w, usage) = ingest_world(store, records).await;
    let (whole, whole_usage) = ingest_world(other, records).await;
    record_in_one_transaction(&whole, &whole_usage).await;
    (w, usage, rollups(&whole).await)
}

/// Stores `usage` in pages of `page` the way a sync does, but rolls none of them up (a sync
/// stopped before its rollup); returns the pipeline, to drop or finish.
async fn stage_without_rolling_up(
    w: &World,
    usage: &[UsageRecord],
    page: usize,
) -> lineup_core::spend::usage::UsagePipeline {
    use lineup_core::spend::usage::UsagePipeline;
    let mut pipeline =
        UsagePipeline::new(&w.lineup, w.tenant, INGEST_NOW).rolling_up_at(usize::MAX);
    for records in usage.chunks(page) {
        pipeline.push(records.to_vec()).await.unwrap();
    }
    let pages = usage.len().div_ceil(page);
    // On PostgreSQL the last pages are stored by tasks of their own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let staged = w.lineup.staged_usage_pages(w.tenant).await.unwrap();
        if staged == pages {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{staged} of {pages} pages staged after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    pipeline
}

both_backends!(
    staged_pages_end_with_the_rollups_of_one_transaction_and_again_change_nothing,
    |store| async move {
        const RECORDS: usize = 25_000;
        let (batched, usage, expected) = world_and_expected_rollups(store, RECORDS).await;

        let report = ingest(&batched, &usage, 5_000).await;
        assert_eq!(
            (report.recorded, report.duplicates),
            (RECORDS, 0),
            "{report:?}"
        );
        assert_eq!(
            batched
                .lineup
                .staged_usage_pages(batched.tenant)
                .await
                .unwrap(),
            0
        );

        let after = rollups(&batched).await;
        assert!(
            after
                .iter()
                .any(|r| r.starts_with("alerts budget_threshold")),
            "{after:?}"
        );
        assert!(
            after
                .iter()
                .any(|r| r.starts_with("alerts roaming_violation")),
            "{after:?}"
        );
        assert!(
            after
                .iter()
                .any(|r| r.starts_with("alerts new_roaming_country")),
            "{after:?}"
        );
        assert!(
            after
                .iter()
                .any(|r| r.starts_with("monthly ada 2026-11-01") && !r.contains(" 0 2026"))
        );
        assert_eq!(after, expected);

        // The same records again, in other batches: all duplicates, nothing changes.
        let again = ingest(&batched, &usage, 7_000).await;
        assert_eq!(
            (again.recorded, again.duplicates, again.alerts),
            (0, RECORDS, 0)
        );
        assert_eq!(rollups(&batched).await, after);
    }
);

both_backends!(
    a_sync_stopped_before_its_rollup_loses_nothing_and_counts_nothing_twice,
    |store| async move {
        const RECORDS: usize = 6_000;
        let (stopped, usage, expected) = world_and_expected_rollups(store, RECORDS).await;

        drop(stage_without_rolling_up(&stopped, &usage, 2_000).await);
        let stored_only = rollups(&stopped).await;
        assert!(
            stored_only.iter().any(|r| r.starts_with("records 6000 ")),
            "{stored_only:?}"
        );
        assert!(
            !stored_only.iter().any(|r| r.starts_with("monthly ")),
            "nothing rolled up yet: {stored_only:?}"
        );

        // Run again, the sync finds every record stored: nothing new, nothing to roll up.
        let again = ingest(&stopped, &usage, 2_000).await;
        assert_eq!((again.recorded, again.duplicates), (0, RECORDS));
        assert_eq!(
            stopped
                .lineup
                .staged_usage_pages(stopped.tenant)
                .await
                .unwrap(),
            3
        );
        // The worker leaves pages inside their grace alone, then rolls up the rest once.
        assert_eq!(
            stopped
                .lineup
                .roll_up_all_staged_usage(now())
                .await
                .unwrap(),
            0
        );
        let staged_before = now() + Duration::seconds(1);
        let counted = stopped
            .lineup
            .roll_up_staged_usage(stopped.tenant, staged_before, INGEST_NOW)
            .await
            .unwrap();
        assert_eq!(counted, RECORDS);
        assert_eq!(rollups(&stopped).await, expected);
        let counted = stopped
            .lineup
            .roll_up_staged_usage(stopped.tenant, staged_before, INGEST_NOW)
            .await
            .unwrap();
        assert_eq!(counted, 0);
        assert_eq!(rollups(&stopped).await, expected);
    }
);

both_backends!(
    pages_the_worker_rolled_up_first_are_skipped_by_the_sync,
    |store| async move {
        const RECORDS: usize = 6_000;
        let (stalled, usage, expected) = world_and_expected_rollups(store, RECORDS).await;

        // A sync stalls with its pages stored; the worker takes them as left behind.
        let pipeline = stage_without_rolling_up(&stalled, &usage, 2_000).await;
        let counted = stalled
            .lineup
            .roll_up_staged_usage(stalled.tenant, now() + Duration::seconds(1), INGEST_NOW)
            .await
            .unwrap();
        assert_eq!(counted, RECORDS);
        // The sync then finishes: its rollup finds its pages claimed and counts none again.
        let report = pipeline.finish().await.unwrap();
        assert_eq!((report.recorded, report.duplicates), (RECORDS, 0));
        assert_eq!(
            stalled
                .lineup
                .staged_usage_pages(stalled.tenant)
                .await
                .unwrap(),
            0
        );
        assert_eq!(rollups(&stalled).await, expected);
    }
);
