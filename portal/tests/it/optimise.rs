//! The savings page: idle lines and plans of the wrong size from core's optimisation
//! report, with each monthly saving and the totals; managers see only their reports' lines.

use std::time::Duration;

use lineup_core::lines::line::Line;
use lineup_core::money::Bytes;
use lineup_core::spend::pricing::period_start;
use lineup_core::store::{Store, now};
use lineup_testkit::portal::{PortalWorld, usage_record};
use lineup_testkit::sqlite_store;
use lineup_testkit::world::ADMIN;

/// Lines issued months ago: the report only calls lines older than 30 days unused.
async fn issued_days_ago(w: &PortalWorld, line: &Line, days: i64) {
    let Store::Sqlite(pool) = &*w.store else {
        panic!("these tests run on SQLite");
    };
    sqlx::query("UPDATE lines SET created_at = $1 WHERE id = $2")
        .bind(now() - time::Duration::days(days))
        .bind(line.id)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savings_list_idle_lines_and_wrong_plan_sizes_with_totals() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let us_5gb = w.plans.iter().find(|p| p.name == "US 5GB").unwrap().clone();
    let issue = lineup_core::lines::line::commands::IssueLine {
        plan_id: us_5gb.id,
        ..w.issue(&w.ada, "ada-us")
    };
    let ada = w.lineup.issue_line(w.tenant, &ADMIN, issue).await.unwrap();
    let olivia = w.active_line(&w.olivia, "olivia-idle").await;
    issued_days_ago(&w, &ada, 120).await;
    issued_days_ago(&w, &olivia, 120).await;

    // Ada used 10, 10 and 9 GB in the last three complete months on her 5 GB plan (20.00 +
    // 10.00 per GB over): 70.00, 70.00, 60.00 = 66.66 a month; Global 10GB at 45.00 flat
    // would have saved 21.66. She used 1 GB today too, so she is not idle. Olivia's line was
    // never used: cancelling saves its 25.00. Total 46.66.
    let at = now();
    let mut records = vec![usage_record(
        &ada,
        "today",
        Duration::from_secs(60),
        Bytes::GB,
        "US",
    )];
    let mut month = period_start(at.date());
    for (n, gb) in [9, 10, 10].into_iter().enumerate() {
        month = period_start(month - time::Duration::days(1));
        let mid_month = month.replace_day(15).unwrap().midnight().assume_utc();
        let ago = (at - mid_month).unsigned_abs();
        records.push(usage_record(
            &ada,
            &format!("m{n}"),
            ago,
            gb * Bytes::GB,
            "US",
        ));
    }
    w.lineup.record_usage(w.tenant, &records).await.unwrap();

    let fiona = w.signed_in(&w.fiona.email.to_string()).await;
    let page = fiona.get("/optimise").await;
    page.assert_ok()
        .assert_contains(&format!(
            "<a href=\"/lines/{}\">olivia@example.com · Europe 10GB</a>",
            olivia.id
        ))
        .assert_contains("cancel: no usage for 30 days (Europe 10GB)")
        .assert_contains(&format!(
            "<a href=\"/lines/{}\">ada@example.com · US 5GB</a>",
            ada.id
        ))
        .assert_contains("US 5GB → Global 10GB (regular overage)")
        .assert_contains("<td class=\"num\">25.00 USD</td>")
        .assert_contains("<td class=\"num\">21.66 USD</td>")
        .assert_contains("<p class=\"big\">46.66 USD</p>");

    // Maria manages Ada (and Alan), not Olivia: her page shows Ada's change and its total.
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    let page = maria.get("/optimise").await;
    page.assert_ok()
        .assert_contains("Only your reports' lines are shown")
        .assert_contains("US 5GB → Global 10GB")
        .assert_contains("<p class=\"big\">21.66 USD</p>");
    assert!(!page.body.contains("olivia@example.com"));
}
