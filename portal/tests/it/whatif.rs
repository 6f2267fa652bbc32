//! The what-if page: a proposed policy (from the form or as the CLI's JSON) replayed over
//! usage recorded through core, with the same numbers core's what_if gives and a total worked
//! out by hand; bad input names its field; nothing is saved.

use std::time::Duration;

use lineup_core::money::Bytes;
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope};
use lineup_core::spend::whatif::{PolicySet, WhatIfReport};
use lineup_core::store::now;
use lineup_testkit::both_backends;
use lineup_testkit::portal::{Browser, PortalWorld, usage_record};
use reqwest::StatusCode;

/// Ada (Europe 10GB: 25.00 a month, 10.00 per GB over) uses 12 GB yesterday and 3 GB today;
/// Alan uses 1 GB today. Returns Ada's line id.
async fn usage(w: &PortalWorld) -> String {
    let ada = w.active_line(&w.ada, "ada-line").await;
    let alan = w.active_line(&w.alan, "alan-line").await;
    let at = now();
    let since_midnight = at - at.date().midnight().assume_utc();
    let today = Duration::from_secs(60).min(since_midnight.unsigned_abs());
    let yesterday_noon = since_midnight.unsigned_abs() + Duration::from_secs(12 * 3600);
    let records = [
        usage_record(&ada, "ada-1", yesterday_noon, 12 * Bytes::GB, "US"),
        usage_record(&ada, "ada-2", today, 3 * Bytes::GB, "US"),
        usage_record(&alan, "alan-1", today, Bytes::GB, "US"),
    ];
    w.lineup.record_usage(w.tenant, &records).await.unwrap();
    ada.id.to_string()
}

/// A 40.00 cap on Ada that suspends, alerting at 50 %.
fn ada_cap(w: &PortalWorld) -> PolicySet {
    PolicySet {
        caps: vec![BudgetCap {
            scope: CapScope::Employee(w.ada.id),
            amount_minor: 4_000,
            thresholds: vec![50],
            action: CapAction::Suspend,
        }],
        ..PolicySet::default()
    }
}

fn form_fields<'a>(days: &'a str, amount: &'a str, blocked: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("days", days),
        ("source", "form"),
        ("cap_scope", "employee"),
        ("cap_email", "ada@example.com"),
        ("cap_amount", amount),
        ("cap_thresholds", "50"),
        ("cap_action", "suspend"),
        ("cap_scope", ""),
        ("cap_email", ""),
        ("cap_amount", ""),
        ("cap_thresholds", ""),
        ("cap_action", "alert"),
        ("roaming_allowed", ""),
        ("roaming_needs_approval", ""),
        ("roaming_blocked", blocked),
        ("roaming_violation_action", "alert"),
        ("policy_json", ""),
    ]
}

/// The page shows core's totals, formatted as money.
fn assert_shows(page: &lineup_testkit::portal::Response, report: &WhatIfReport) {
    let money = |minor: i64| {
        lineup_core::money::Money::new(minor, lineup_core::money::Currency::USD).to_string()
    };
    let (now, proposed) = (report.current.total(), report.proposed.total());
    for minor in [
        now.spend.total_minor(),
        proposed.spend.total_minor(),
        now.spend.overage_minor,
        proposed.spend.overage_minor,
    ] {
        page.assert_contains(&format!("<td class=\"num\">{}</td>", money(minor)));
    }
    page.assert_contains(&format!(
        "<th>Days suspended</th><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        now.suspended_days, proposed.suspended_days
    ));
    page.assert_contains(&format!(
        "<th>Alerts</th><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        now.alerts, proposed.alerts
    ));
}

async fn run(browser: &Browser, fields: &[(&str, &str)]) -> lineup_testkit::portal::Response {
    browser.get("/whatif").await.assert_ok();
    browser.post("/whatif", fields).await
}

both_backends!(
    the_replay_on_the_page_is_core_what_if_and_adds_up_by_hand,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let ada_line = usage(&w).await;
        let fiona = w.signed_in(&w.fiona.email.to_string()).await;
        let page = fiona.get("/whatif").await;
        page.assert_ok()
            .assert_contains("nothing is saved")
            .assert_contains("name=\"days\" value=\"30\"");

        let page = run(&fiona, &form_fields("2", "40", "")).await;
        page.assert_ok().assert_contains("Result for");
        let today = now().date();
        let report = w
            .lineup
            .what_if(w.tenant, 2, &ada_cap(&w), today)
            .await
            .unwrap();
        assert_shows(&page, &report);

        // By hand (when the window starts after the 1st): now, Ada 25.00 + 5 GB over = 75.00
        // and Alan 25.00, 100.00 with 50.00 overage. With the cap, Ada's 12 GB yesterday cost
        // 45.00 ≥ 40.00: suspended from today, her 3 GB today never happens: 45.00 + 25.00 =
        // 70.00, 20.00 overage (−60 %), one day suspended. One alert in the window, the cap:
        // her 25.00 plan price alone passed 50 % on the 1st, before the window.
        if today.day() > 2 {
            let (now, proposed) = (report.current.total(), report.proposed.total());
            assert_eq!(
                (
                    now.spend.total_minor(),
                    now.spend.overage_minor,
                    now.suspended_days,
                    now.alerts
                ),
                (10_000, 5_000, 0, 0)
            );
            assert_eq!(
                (
                    proposed.spend.total_minor(),
                    proposed.spend.overage_minor,
                    proposed.suspended_days,
                    proposed.alerts
                ),
                (7_000, 2_000, 1, 1)
            );
            page.assert_contains("-30.00 USD")
                .assert_contains("(-60 %)");
        }
        // Only Ada's line changes; it links to its page.
        page.assert_contains(&format!("<a href=\"/lines/{ada_line}\">ada@example.com"));
        assert!(
            !page.body.contains("alan@example.com · "),
            "Alan is unchanged"
        );
        page.assert_contains("Lines the policy changes (1)");

        // The same proposal as the CLI's JSON gives the same page numbers.
        let json = format!(
            r#"{{"caps": [{{"scope": {{"kind": "employee", "id": "{}"}}, "amount_minor": 4000, "thresholds": [50], "action": "suspend"}}]}}"#,
            w.ada.id
        );
        let page = run(
            &fiona,
            &[("days", "2"), ("source", "json"), ("policy_json", &json)],
        )
        .await;
        page.assert_ok();
        assert_shows(&page, &report);

        // A simulation: the policy in force is untouched.
        assert_eq!(
            w.lineup.current_policy(w.tenant).await.unwrap(),
            PolicySet::default()
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proposals_name_the_field_and_keep_what_was_typed() {
    let w = PortalWorld::new(lineup_testkit::sqlite_store().await).await;
    let admin = w.signed_in("admin@example.com").await;
    for (fields, says) in [
        (
            form_fields("400", "40", ""),
            "days: replay 1 to 366 days, not 400",
        ),
        (form_fields("", "40", ""), "days: say how many days"),
        (
            form_fields("30", "forty", ""),
            "cap 1 amount: &#34;forty&#34; is not an amount in USD",
        ),
        (
            form_fields("30", "40", "Japan"),
            "roaming_blocked: &#34;Japan&#34; is not a two-letter country code",
        ),
    ] {
        let answer = run(&admin, &fields).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{says}");
        answer.assert_contains(says);
    }
    let mut typed = form_fields("30", "forty", "");
    typed[3] = ("cap_email", "nobody@example.com");
    typed[4] = ("cap_amount", "40");
    let answer = run(&admin, &typed).await;
    answer
        .assert_contains("cap 1 employee: no employee has the email &#34;nobody@example.com&#34;")
        .assert_contains("value=\"nobody@example.com\"");
    let answer = run(
        &admin,
        &[
            ("days", "30"),
            ("source", "json"),
            ("policy_json", "{\"caps\": [}"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer
        .assert_contains("policy_json: the policy file is not valid JSON")
        .assert_contains("{&#34;caps&#34;: [}");
    let answer = run(
        &admin,
        &[
            ("days", "30"),
            ("source", "json"),
            ("policy_json", r#"{"caps": [{"scope": {"kind": "tenant"}, "amount_minor": 100, "thresholds": [120], "action": "alert"}]}"#),
        ],
    )
    .await;
    answer.assert_contains("caps[0]: threshold 120% is not between 1 and 100");
}
