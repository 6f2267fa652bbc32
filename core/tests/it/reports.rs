//! Spend reports on both backends, against the hand-added history in `testkit::spend`.

use lineup_core::audit::AuditFilter;
use lineup_core::money::{Bytes, Currency, Money};
use lineup_core::organisation::employee::Visibility;
use lineup_core::period::Period;
use lineup_core::spend::reports::{
    Dashboard, Granularity, GroupBy, GroupSpend, ReportFilter, ReportScope,
};
use lineup_core::store;
use lineup_testkit::both_backends;
use lineup_testkit::spend::{SpendFixture, add_usage, seed_spend};
use lineup_testkit::world::{ADMIN, World, add_employee, add_tenant, cost_centre_edit};

/// `(label, spend)` of each group, in order.
fn spend_of(groups: &[GroupSpend]) -> Vec<(&str, Money)> {
    groups.iter().map(|g| (g.label.as_str(), g.spend)).collect()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

fn three_months(f: &SpendFixture) -> ReportFilter {
    ReportFilter {
        period: Period::new(f.before, f.current).unwrap(),
        team: None,
        cost_centre: None,
    }
}

async fn dashboard(
    w: &World,
    f: &SpendFixture,
    visibility: Visibility,
    filter: &ReportFilter,
    group_by: GroupBy,
) -> Dashboard {
    let scope: ReportScope = w
        .lineup
        .report_scope(w.tenant, visibility, filter)
        .await
        .unwrap();
    w.lineup
        .dashboard(
            w.tenant,
            &scope,
            filter,
            group_by,
            Granularity::Month,
            f.today,
        )
        .await
        .unwrap()
}

async fn everyone(w: &World, filter: &ReportFilter) -> ReportScope {
    w.lineup
        .report_scope(w.tenant, Visibility::Everyone, filter)
        .await
        .unwrap()
}

/// Marks `w`'s chargeback rollup as never built, so chargeback sums the lines again.
async fn forget_chargeback_rollup(w: &World) {
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    execute(
        &mut tx,
        "UPDATE report_versions SET chargeback_built = NULL WHERE tenant_id = $1",
        w.tenant,
        &[],
    )
    .await;
    tx.commit().await.unwrap();
}

/// Moves `who` to `cost_centre` (or none) through the portal's edit.
async fn move_to_cost_centre(
    w: &World,
    who: lineup_core::ids::EmployeeId,
    cost_centre: Option<lineup_core::ids::CostCentreId>,
) {
    let edit = cost_centre_edit(&w.lineup, w.tenant, who, cost_centre).await;
    w.lineup
        .update_employee(w.tenant, &ADMIN, who, edit)
        .await
        .unwrap();
}

/// Chargeback's rows as comparable tuples: cost centre, month, lines, data, fees, usage,
/// total.
async fn chargeback_rows(
    w: &World,
    filter: &ReportFilter,
) -> Vec<(
    Option<String>,
    lineup_core::period::Month,
    usize,
    Bytes,
    i64,
    i64,
    i64,
)> {
    let scope = everyone(w, filter).await;
    let rows = w.lineup.chargeback(w.tenant, &scope, filter).await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.cost_centre.as_ref().map(|c| c.code.clone()),
                r.month,
                r.lines,
                r.data,
                r.plan_fees.minor,
                r.usage.minor,
                r.total.minor,
            )
        })
        .collect()
}

async fn world_with_globex(store: lineup_testkit::TestStore) -> (World, SpendFixture) {
    let w = World::new(store).await;
    let globex = add_tenant(&w.lineup, "globex").await;
    let gina = add_employee(&w.lineup, globex, "gina", None).await;
    let f = seed_spend(&w, Some((globex, &gina))).await;
    (w, f)
}

both_backends!(
    spend_is_plan_fees_of_billed_months_plus_usage_charges,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let d = dashboard(
            &w,
            &f,
            Visibility::Everyone,
            &three_months(&f),
            GroupBy::Team,
        )
        .await;
        assert_eq!(d.totals.spend, usd(14_200));
        assert_eq!(d.totals.plan_fees, usd(13_500));
        assert_eq!(d.totals.usage, usd(700));
        assert_eq!(
            d.totals.data,
            Bytes(Bytes::gb(3).0 + Bytes::mb(512).0 + Bytes::mb(100).0)
        );
        // plus, fresh and idle are live; the failed line never was, the ended one was billed.
        assert_eq!(d.totals.live_lines, 3);
        assert_eq!(d.totals.billed_lines, 4);
        let months: Vec<_> = d
            .series
            .iter()
            .map(|p| (p.label.clone(), p.spend))
            .collect();
        assert_eq!(
            months,
            [
                (f.before.to_string(), usd(4_850)),
                (f.previous.to_string(), usd(4_700)),
                (f.current.to_string(), usd(4_650)),
            ]
        );
        let groups = spend_of(&d.groups);
        assert_eq!(
            groups,
            [
                ("Sales", usd(11_150)),
                ("Engineering", usd(2_050)),
                ("No team", usd(1_000)),
            ]
        );
        // Month over month, current against previous: biggest move first.
        let changes: Vec<_> = d
            .changes
            .iter()
            .map(|g| (g.label.as_str(), g.change(), g.change_percent()))
            .collect();
        assert_eq!(
            changes,
            [
                ("Engineering", usd(-1_000), Some(-100)),
                ("No team", usd(1_000), None),
                ("Sales", usd(-50), Some(-1)),
            ]
        );
        let top = spend_of(&d.top_spenders);
        assert_eq!(
            top,
            [
                ("Bea Tester", usd(8_150)),
                ("=Dora Tester", usd(3_000)),
                ("Carl Tester", usd(2_050)),
                ("Ada Tester", usd(1_000)),
            ]
        );
        assert_eq!(d.near_cap.len(), 1, "{:?}", d.near_cap);
        assert_eq!(d.near_cap[0].employee_id, f.bea.id);
        assert_eq!(
            (d.near_cap[0].spent, d.near_cap[0].cap),
            (usd(150), usd(180))
        );
        assert_eq!(d.near_cap[0].percent, 83);
        let unused: Vec<_> = d.unused.iter().map(|u| u.line_id).collect();
        assert_eq!(unused, [f.idle_line], "the fresh line is too new to count");
        assert_eq!(
            (d.unused[0].employee.as_str(), d.unused[0].plan.as_str()),
            ("=Dora Tester", "Basic")
        );
        assert_eq!(d.unused_monthly_cost, usd(1_000));

        // A period in the past: month over month is its own last two months, while caps and
        // unused lines are still about this month.
        let past = ReportFilter {
            period: Period::new(f.before, f.previous).unwrap(),
            team: None,
            cost_centre: None,
        };
        let d = dashboard(&w, &f, Visibility::Everyone, &past, GroupBy::Team).await;
        let changes: Vec<_> = d
            .changes
            .iter()
            .map(|g| (g.label.as_str(), g.change()))
            .collect();
        assert_eq!(changes, [("Sales", usd(-100)), ("Engineering", usd(-50))]);
        assert_eq!(d.near_cap.len(), 1, "{:?}", d.near_cap);
        assert_eq!(d.near_cap[0].percent, 83);
        let unused: Vec<_> = d.unused.iter().map(|u| u.line_id).collect();
        assert_eq!(unused, [f.idle_line]);

        let by_centre = dashboard(
            &w,
            &f,
            Visibility::Everyone,
            &three_months(&f),
            GroupBy::CostCentre,
        )
        .await;
        let groups = spend_of(&by_centre.groups);
        assert_eq!(
            groups,
            [
                ("CC-100 +Field sales", usd(11_150)),
                ("CC-200 R&D", usd(2_050)),
                ("No cost centre", usd(1_000)),
            ]
        );
    }
);

both_backends!(
    filters_and_a_managers_tree_narrow_every_figure,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        // Maria sees herself, Ada, Alan and Bea: the Plus line and the fresh one.
        let d = dashboard(
            &w,
            &f,
            Visibility::ReportsOf(w.maria.id),
            &three_months(&f),
            GroupBy::Employee,
        )
        .await;
        assert_eq!(d.totals.spend, usd(8_150 + 1_000));
        let people: Vec<_> = d.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(
            people,
            [
                "Bea Tester <bea@example.com>",
                "Ada Tester <ada@example.com>"
            ]
        );
        assert!(d.unused.is_empty(), "Dora is not in Maria's tree");

        let nobody = dashboard(&w, &f, Visibility::Nobody, &three_months(&f), GroupBy::Team).await;
        assert_eq!(nobody.totals.spend, usd(0));
        assert!(nobody.series.is_empty() && nobody.groups.is_empty());

        let only_rnd = ReportFilter {
            cost_centre: Some(f.rnd.id),
            ..three_months(&f)
        };
        let d = dashboard(&w, &f, Visibility::Everyone, &only_rnd, GroupBy::Team).await;
        assert_eq!(d.totals.spend, usd(2_050));
        let one_month = ReportFilter {
            period: Period::new(f.previous, f.previous).unwrap(),
            team: Some(f.sales.id),
            cost_centre: None,
        };
        let d = dashboard(&w, &f, Visibility::Everyone, &one_month, GroupBy::Team).await;
        assert_eq!(d.totals.spend, usd(2_500 + 200 + 1_000));

        // Another organisation's team is not found, not an empty report.
        let guessed = ReportFilter {
            team: f.globex_team.as_ref().map(|t| t.id),
            ..three_months(&f)
        };
        let err = w
            .lineup
            .report_scope(w.tenant, Visibility::Everyone, &guessed)
            .await
            .unwrap_err();
        assert!(
            matches!(err, lineup_core::CoreError::NotFound { .. }),
            "{err}"
        );
    }
);

both_backends!(
    chargeback_splits_fees_and_usage_by_cost_centre_and_month,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let got = chargeback_rows(&w, &three_months(&f)).await;
        let cc = |c: &str| Some(c.to_owned());
        assert_eq!(
            got,
            [
                (cc("CC-100"), f.before, 2, Bytes::gb(1), 3_500, 300, 3_800),
                (cc("CC-100"), f.previous, 2, Bytes::gb(2), 3_500, 200, 3_700),
                (
                    cc("CC-100"),
                    f.current,
                    2,
                    Bytes::mb(512),
                    3_500,
                    150,
                    3_650
                ),
                (cc("CC-200"), f.before, 1, Bytes::mb(100), 1_000, 50, 1_050),
                (cc("CC-200"), f.previous, 1, Bytes(0), 1_000, 0, 1_000),
                (None, f.current, 1, Bytes(0), 1_000, 0, 1_000),
            ]
        );
        assert_eq!(got.iter().map(|r| r.6).sum::<i64>(), 14_200);
    }
);

both_backends!(
    the_monthly_rollup_follows_the_daily_rows_and_exports_page_through_them,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let filter = three_months(&f);
        let scope = everyone(&w, &filter).await;
        for daily in [true, false] {
            let mut rows = Vec::new();
            let mut cursor = None;
            loop {
                let page = w
                    .lineup
                    .usage_export_page(w.tenant, &scope, &filter, daily, cursor, 2)
                    .await
                    .unwrap();
                cursor = page.last().map(|r| (r.line_id, r.start));
                let done = page.len() < 2;
                rows.extend(page);
                if done {
                    break;
                }
            }
            assert_eq!(
                rows.len(),
                4,
                "daily={daily}: every row once, globex's none"
            );
            assert_eq!(rows.iter().map(|r| r.cost_minor).sum::<i64>(), 700);
            let mut sorted = rows.clone();
            sorted.sort_by_key(|r| (r.line_id, r.start));
            assert_eq!(rows, sorted, "ordered by line then date");
        }
        // A second delivery for the same day adds to both the day and its month.
        lineup_testkit::spend::add_usage(
            &w.lineup,
            w.tenant,
            f.plus_line,
            f.current.first_day(),
            25,
            10,
        )
        .await;
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let days = store::usage::daily_for_line(&mut tx, w.tenant, f.plus_line)
            .await
            .unwrap();
        drop(tx);
        let month = w
            .lineup
            .usage_export_page(w.tenant, &scope, &filter, false, None, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.line_id == f.plus_line && r.start == f.current.first_day())
            .unwrap();
        let day = days
            .iter()
            .find(|d| d.day == f.current.first_day())
            .unwrap();
        assert_eq!((day.cost_minor, month.cost_minor), (175, 175));
        assert_eq!(month.data_bytes, Bytes::mb(512).0 + 10);
    }
);

both_backends!(
    the_audit_log_filters_and_pages_newest_first,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let all = AuditFilter::default();
        let first = w.lineup.audit_log(w.tenant, &all, None, 5).await.unwrap();
        assert_eq!(first.events.len(), 5);
        let second = w
            .lineup
            .audit_log(w.tenant, &all, first.older, 5)
            .await
            .unwrap();
        let ids: Vec<_> = first
            .events
            .iter()
            .chain(&second.events)
            .map(|e| e.id)
            .collect();
        let mut newest_first = ids.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        newest_first.dedup();
        assert_eq!(ids, newest_first, "no event twice, newest first");
        assert!(
            first.events.iter().all(|e| e.tenant_id == w.tenant),
            "only acme's events"
        );

        let teams = AuditFilter {
            action_prefix: Some("team.".into()),
            ..AuditFilter::default()
        };
        let page = w
            .lineup
            .audit_log(w.tenant, &teams, None, 50)
            .await
            .unwrap();
        let names: Vec<_> = page
            .events
            .iter()
            .map(|e| {
                e.after.as_ref().unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["Engineering", "Sales"],
            "globex's team is not listed"
        );
        assert_eq!(page.older, None);
        // `_` in a prefix is a character, not a wildcard.
        let literal = AuditFilter {
            action_prefix: Some("team_".into()),
            ..AuditFilter::default()
        };
        let page = w
            .lineup
            .audit_log(w.tenant, &literal, None, 50)
            .await
            .unwrap();
        assert!(page.events.is_empty());

        let bea = AuditFilter {
            subject_type: Some("employee".into()),
            subject_id: Some(f.bea.id.to_string()),
            actor: Some("system".into()),
            from: Some(f.today),
            until: Some(f.today),
            ..AuditFilter::default()
        };
        let page = w.lineup.audit_log(w.tenant, &bea, None, 50).await.unwrap();
        let actions: Vec<_> = page.events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["employee.created"]);
        let tomorrow = AuditFilter {
            from: f.today.next_day(),
            ..bea.clone()
        };
        let page = w
            .lineup
            .audit_log(w.tenant, &tomorrow, None, 50)
            .await
            .unwrap();
        assert!(page.events.is_empty());
        let someone_else = AuditFilter {
            actor: Some("provider".into()),
            ..bea
        };
        let page = w
            .lineup
            .audit_log(w.tenant, &someone_else, None, 50)
            .await
            .unwrap();
        assert!(page.events.is_empty());
    }
);

both_backends!(
    overage_priced_by_ingest_is_in_the_month_views_and_chargeback,
    |store| async move {
        use lineup_core::period::Month;
        use lineup_core::provider::{Roaming, UsageRecord};
        let w = World::new(store).await;
        let plan = &w.plans[0];
        let allowance = plan.data.expect("the test plan has a bundle").0;
        w.lineup
            .set_plan_prices(
                w.tenant,
                &lineup_testkit::world::ADMIN,
                plan.id,
                1_000,
                Default::default(),
            )
            .await
            .unwrap();
        let line = w.active_line(&w.ada, "overage-line").await;
        // The whole bundle and two more GB, at home, this month: 2 × 10.00 of overage.
        let now = store::now();
        let record = |key: &str, bytes: i64| UsageRecord {
            dedupe_key: key.into(),
            subscription_id: line.provider_subscription_id.clone().unwrap(),
            started_at: now - time::Duration::minutes(10),
            ended_at: now - time::Duration::minutes(5),
            data_bytes: bytes,
            sms: 0,
            voice_seconds: 0,
            country: Some("US".into()),
            roaming: Roaming::None,
            in_bundle: None,
            observed_at: now,
        };
        let records = [record("bundle", allowance), record("beyond", 2 * Bytes::GB)];
        w.lineup.record_usage(w.tenant, &records).await.unwrap();

        let month = Month::containing((now - time::Duration::minutes(10)).date());
        let filter = ReportFilter {
            period: Period::new(month, month).unwrap(),
            team: None,
            cost_centre: None,
        };
        let scope = everyone(&w, &filter).await;
        let rows = w
            .lineup
            .chargeback(w.tenant, &scope, &filter)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].usage.minor, 2_000, "the month's overage is charged");
        let fee = plan.price.unwrap().minor;
        assert_eq!(rows[0].total.minor, fee + 2_000);
        // The whole tenant's month chart adds its days up and the month's overage to them.
        let today = now.date();
        let chart = w
            .lineup
            .dashboard(
                w.tenant,
                &scope,
                &filter,
                GroupBy::Team,
                Granularity::Month,
                today,
            )
            .await
            .unwrap()
            .series;
        assert_eq!(chart.len(), 1, "{chart:?}");
        assert_eq!(chart[0].spend.minor, fee + 2_000, "{chart:?}");
        assert_eq!(chart[0].data.0, allowance + 2 * Bytes::GB, "{chart:?}");
    }
);

both_backends!(
    people_tied_at_the_last_places_shown_are_listed_by_name,
    |store| async move {
        // 30 people on the same plan with no usage all spend the same: the dashboard shows
        // 25 of them and the top ten, and which ones is decided by name, not by chance.
        let w = World::new(store).await;
        let today = time::OffsetDateTime::now_utc();
        let mut names = Vec::new();
        for n in (0..30).rev() {
            let who = add_employee(&w.lineup, w.tenant, &format!("tie{n:02}"), None).await;
            lineup_testkit::spend::add_line(
                &w.lineup,
                w.tenant,
                who.id,
                w.plans[0].id,
                lineup_core::lines::line::LineState::Active,
                today,
                today,
            )
            .await;
            names.push(format!("Tie{n:02} Tester"));
        }
        names.sort();
        let month = lineup_core::period::Month::containing(today.date());
        let filter = ReportFilter {
            period: Period::new(month, month).unwrap(),
            team: None,
            cost_centre: None,
        };
        let scope = everyone(&w, &filter).await;
        let d = w
            .lineup
            .dashboard(
                w.tenant,
                &scope,
                &filter,
                GroupBy::Employee,
                Granularity::Month,
                today.date(),
            )
            .await
            .unwrap();
        assert_eq!(d.group_count, 30);
        let shown: Vec<&str> = d.groups.iter().map(|g| g.label.as_str()).collect();
        let expected: Vec<String> = names[..25]
            .iter()
            .map(|n| format!("{n} <{}@example.com>", n[..5].to_lowercase()))
            .collect();
        assert_eq!(shown, expected);
        let top: Vec<&str> = d.top_spenders.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(top, names[..10]);
    }
);

both_backends!(
    chargeback_reads_its_rollup_only_while_it_matches_the_lines,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let filter = three_months(&f);
        let (lineup, tenant) = (&w.lineup, w.tenant);
        let current = async || lineup.chargeback_rollup_is_current(tenant).await.unwrap();
        // New usage leaves the rollup out of date; chargeback then sums the lines (what it
        // must show), and once rebuilt the rollup shows exactly that.
        let rebuilt_matches = async |what: &str| {
            assert!(!current().await, "{what}: the rollup is out of date");
            let summed = chargeback_rows(&w, &filter).await;
            assert!(lineup.refresh_chargeback_rollup(tenant).await.unwrap());
            assert!(current().await, "{what}: rebuilt");
            assert_eq!(chargeback_rows(&w, &filter).await, summed, "{what}");
            summed
        };
        // A cost-centre move or a transfer keeps it current (the database moves the sums):
        // what chargeback shows from it must be what summing the lines shows, and what a
        // rebuild shows.
        let kept_current_matches = async |what: &str| {
            assert!(current().await, "{what}: the rollup stays current");
            let shown = chargeback_rows(&w, &filter).await;
            forget_chargeback_rollup(&w).await;
            assert!(!current().await);
            assert_eq!(chargeback_rows(&w, &filter).await, shown, "{what}: summed");
            assert!(lineup.refresh_chargeback_rollup(tenant).await.unwrap());
            assert_eq!(chargeback_rows(&w, &filter).await, shown, "{what}: rebuilt");
            shown
        };

        let seeded = rebuilt_matches("seeded usage").await;
        assert!(
            !lineup.refresh_chargeback_rollup(tenant).await.unwrap(),
            "nothing changed: nothing to rebuild"
        );
        assert_eq!(
            seeded.iter().map(|r| r.5).sum::<i64>(),
            700,
            "globex's usage is not acme's"
        );

        // Bea moves from CC-100 to CC-200 with her line and its usage.
        move_to_cost_centre(&w, f.bea.id, Some(f.rnd.id)).await;
        // From today: what she spent before stays with CC-100, so the export shows the same,
        // but from sums per cost centre that changed (hers now count under CC-200, moved back).
        let moved = kept_current_matches("a cost centre move").await;
        assert_eq!(moved, seeded);

        // Her line changes hands to Carl, in CC-200: its usage is charged to his cost centre.
        lineup
            .transfer_line(tenant, &ADMIN, f.plus_line, f.carl.id)
            .await
            .unwrap();
        let transferred = kept_current_matches("a transfer").await;
        assert_ne!(transferred, moved, "the transfer changed the sums");

        // Carl, who holds every line in CC-200, leaves every cost centre: CC-200's rows in
        // the rollup are left counting no line, and chargeback skips them.
        move_to_cost_centre(&w, f.carl.id, None).await;
        assert!(current().await);
        let mut tx = w.store.tenant(tenant).await.unwrap();
        let rolled_up = store::chargeback_months::months_if_current(
            &mut tx,
            tenant,
            f.before.first_day(),
            f.current.first_day(),
        )
        .await
        .unwrap()
        .expect("current");
        drop(tx);
        assert!(!rolled_up.is_empty());
        assert!(
            rolled_up.iter().all(|m| m.cost_centre_id != Some(f.rnd.id)),
            "no line is in CC-200 now: {rolled_up:?}"
        );
        kept_current_matches("a move to no cost centre").await;
        move_to_cost_centre(&w, f.bea.id, None).await;
        kept_current_matches("a move of someone without lines").await;
        move_to_cost_centre(&w, f.carl.id, Some(f.rnd.id)).await;
        let back = kept_current_matches("a move back").await;
        assert!(!back.is_empty());

        // More usage.
        add_usage(lineup, tenant, f.plus_line, f.today, 25, Bytes::mb(1).0).await;
        let more = rebuilt_matches("new usage").await;
        assert_eq!(
            more.iter().map(|r| r.5).sum::<i64>(),
            back.iter().map(|r| r.5).sum::<i64>() + 25
        );

        // The worker's step rebuilds what is out of date in every tenant: here only globex's,
        // never rebuilt, since acme's is current.
        assert_eq!(lineup.refresh_chargeback_rollups().await.unwrap(), 1);
        assert_eq!(lineup.refresh_chargeback_rollups().await.unwrap(), 0);
        assert_eq!(chargeback_rows(&w, &filter).await, more);
    }
);

both_backends!(
    a_transfer_and_its_holders_move_at_the_same_time_count_the_line_once,
    |store| async move {
        let (w, f) = world_with_globex(store).await;
        let filter = three_months(&f);
        let (lineup, tenant) = (&w.lineup, w.tenant);
        assert!(lineup.refresh_chargeback_rollup(tenant).await.unwrap());

        // Bea's line goes to Carl in one transaction while, in another, Bea leaves her cost
        // centre. Each trigger alone would read the line as it was before the other.
        let mut transfer = w.store.tenant(tenant).await.unwrap();
        execute(
            &mut transfer,
            "UPDATE lines SET employee_id = $2 WHERE tenant_id = $1 AND id = $3",
            tenant,
            &[f.carl.id.0, f.plus_line.0],
        )
        .await;
        let store = w.store.store.clone();
        let bea = f.bea.id.0;
        let move_bea = tokio::spawn(async move {
            let mut tx = store.tenant(tenant).await.unwrap();
            execute(
                &mut tx,
                "UPDATE employees SET cost_centre_id = NULL WHERE tenant_id = $1 AND id = $2",
                tenant,
                &[bea],
            )
            .await;
            tx.commit().await.unwrap();
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        transfer.commit().await.unwrap();
        move_bea.await.unwrap();

        assert!(lineup.chargeback_rollup_is_current(tenant).await.unwrap());
        let shown = chargeback_rows(&w, &filter).await;
        forget_chargeback_rollup(&w).await;
        assert_eq!(
            chargeback_rows(&w, &filter).await,
            shown,
            "as the lines sum"
        );
    }
);

/// Runs `sql` in `tx` with the tenant as `$1` and `ids` as `$2`, `$3`…
async fn execute(
    tx: &mut store::Tx,
    sql: &str,
    tenant: lineup_core::ids::TenantId,
    ids: &[uuid::Uuid],
) {
    match tx {
        store::Tx::Sqlite(t) => {
            let mut query = sqlx::query(sql).bind(tenant);
            for id in ids {
                query = query.bind(*id);
            }
            query.execute(&mut **t).await.map(drop)
        }
        store::Tx::Postgres(t) => {
            let mut query = sqlx::query(sql).bind(tenant);
            for id in ids {
                query = query.bind(*id);
            }
            query.execute(&mut **t).await.map(drop)
        }
    }
    .unwrap();
}
