//! CSV exports over real HTTP: headers, rows, the page's filters, formula neutralisation,
//! managers' trees and tenant isolation.

use crate::helpers::spend_world;
use lineup_testkit::portal::Response;
use lineup_testkit::spend::SpendFixture;
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

fn period(f: &SpendFixture) -> String {
    format!("from={}&to={}", f.before, f.current)
}

#[track_caller]
fn csv(answer: &Response, filename: &str) -> Vec<String> {
    answer.assert_ok();
    assert_eq!(
        answer.headers["content-type"], "text/csv; charset=utf-8",
        "{filename}"
    );
    assert_eq!(
        answer.headers["content-disposition"],
        format!("attachment; filename=\"{filename}\"").as_str()
    );
    answer.body.lines().map(str::to_owned).collect()
}

both_backends!(
    chargeback_has_a_row_per_cost_centre_and_month_with_safe_cells,
    |store| async move {
        let (w, f) = spend_world(store).await;
        let finance = w.signed_in(&w.fiona.email.to_string()).await;
        let answer = finance
            .get(&format!("/exports/chargeback.csv?{}", period(&f)))
            .await;
        let rows = csv(
            &answer,
            &format!("lineup-chargeback-{}_{}.csv", f.before, f.current),
        );
        let (b, p, c) = (f.before, f.previous, f.current);
        assert_eq!(
            rows,
            [
                "cost_centre_code,cost_centre_name,month,lines,data_gb,plan_fees,usage_charges,total,currency".to_owned(),
                format!("CC-100,'+Field sales,{b},2,1.000,35.00,3.00,38.00,USD"),
                format!("CC-100,'+Field sales,{p},2,2.000,35.00,2.00,37.00,USD"),
                format!("CC-100,'+Field sales,{c},2,0.500,35.00,1.50,36.50,USD"),
                format!("CC-200,R&D,{b},1,0.098,10.00,0.50,10.50,USD"),
                format!("CC-200,R&D,{p},1,0.000,10.00,0.00,10.00,USD"),
                format!(",No cost centre,{c},1,0.000,10.00,0.00,10.00,USD"),
            ]
        );
        assert!(!answer.body.contains("Globex") && !answer.body.contains("99.00"));

        // The page's filters apply: one cost centre, one month.
        let answer = finance
            .get(&format!(
                "/exports/chargeback.csv?from={p}&to={p}&cost_centre={}",
                f.rnd.id
            ))
            .await;
        let rows = csv(&answer, &format!("lineup-chargeback-{p}_{p}.csv"));
        assert_eq!(
            rows[1..],
            [format!("CC-200,R&D,{p},1,0.000,10.00,0.00,10.00,USD")]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_comes_per_line_per_month_or_day_within_the_filters() {
    let (w, f) = spend_world(sqlite_store().await).await;
    let admin = w.signed_in("admin@example.com").await;
    let answer = admin
        .get(&format!(
            "/exports/usage.csv?{}&granularity=month",
            period(&f)
        ))
        .await;
    let rows = csv(
        &answer,
        &format!("lineup-usage-monthly-{}_{}.csv", f.before, f.current),
    );
    assert_eq!(
        rows[0],
        "month,line_id,employee,email,team,cost_centre,data_bytes,data_gb,roaming_bytes,usage_charges,currency"
    );
    let plus = f.plus_line.to_string();
    let bea = |month, bytes: i64, gb, cost| {
        format!("{month},{plus},Bea Tester,bea@example.com,Sales,CC-100,{bytes},{gb},0,{cost},USD")
    };
    let ended = format!(
        "{},{},Carl Tester,carl@example.com,Engineering,CC-200,104857600,0.098,0,0.50,USD",
        f.before, f.ended_line
    );
    let mut expected = vec![
        bea(f.before, 1 << 30, "1.000", "3.00"),
        bea(f.previous, 2 << 30, "2.000", "2.00"),
        bea(f.current, 512 << 20, "0.500", "1.50"),
        ended.clone(),
    ];
    if f.ended_line < f.plus_line {
        expected.rotate_right(1);
    }
    assert_eq!(rows[1..], expected);

    // Daily rows, for Engineering only.
    let answer = admin
        .get(&format!(
            "/exports/usage.csv?{}&granularity=day&team={}",
            period(&f),
            f.engineering.id
        ))
        .await;
    let rows = csv(
        &answer,
        &format!("lineup-usage-daily-{}_{}.csv", f.before, f.current),
    );
    let day = f.before.first_day().replace_day(5).unwrap();
    assert_eq!(rows[0].split(',').next(), Some("date"));
    assert_eq!(
        rows[1..],
        [ended.replacen(&f.before.to_string(), &day.to_string(), 1)]
    );
    assert!(!answer.body.contains("gina"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_export_neutralises_formulas_and_keeps_to_a_managers_tree() {
    let (w, f) = spend_world(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let today = f.today;
    let rows = csv(
        &owner
            .get(&format!("/exports/lines.csv?{}", period(&f)))
            .await,
        &format!("lineup-lines-{today}.csv"),
    );
    assert_eq!(
        rows[0],
        "line_id,employee,email,team,cost_centre,plan,monthly_price,currency,state,iccid,created_at,updated_at"
    );
    assert_eq!(rows.len(), 6, "five acme lines, no globex line: {rows:?}");
    let dora = rows
        .iter()
        .find(|r| r.starts_with(&f.idle_line.to_string()))
        .unwrap();
    assert!(
        dora.contains(",'=Dora Tester,dora@example.com,Sales,CC-100,Basic,10.00,USD,suspended,"),
        "{dora}"
    );

    let maria = w.signed_in(&w.maria.email.to_string()).await;
    let answer = maria.get("/exports/lines.csv").await;
    let rows = csv(&answer, &format!("lineup-lines-{today}.csv"));
    let employees: Vec<_> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(employees, ["Ada Tester", "Bea Tester"]);
    let answer = maria
        .get(&format!("/exports/chargeback.csv?{}", period(&f)))
        .await;
    assert!(
        !answer.body.contains("CC-200"),
        "Carl is not Maria's report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_links_carry_the_filters_and_guessed_ids_are_not_found() {
    let (w, f) = spend_world(sqlite_store().await).await;
    let finance = w.signed_in(&w.fiona.email.to_string()).await;
    let page = finance
        .get(&format!(
            "/dashboard?{}&group=cost_centre&cost_centre={}",
            period(&f),
            f.field.id
        ))
        .await;
    let query = format!(
        "from={}&#38;to={}&#38;group=cost_centre&#38;granularity=month&#38;cost_centre={}",
        f.before, f.current, f.field.id
    );
    for export in ["usage", "chargeback", "lines"] {
        page.assert_contains(&format!("href=\"/exports/{export}.csv?{query}\""));
    }
    let globex_team = f.globex_team.as_ref().unwrap().id;
    for export in ["usage", "chargeback", "lines"] {
        let answer = finance
            .get(&format!("/exports/{export}.csv?team={globex_team}"))
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{export}");
    }
    let answer = finance.get("/exports/usage.csv?to=June").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("to: &#34;June&#34; is not a month like 2026-01");
}
