//! The spend dashboard over real HTTP: hand-computed figures, the SVG charts, the lists,
//! managers' trees, filters and tenant isolation.

use crate::helpers::spend_world;
use lineup_testkit::spend::SpendFixture;
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

fn three_months(f: &SpendFixture) -> String {
    format!("/dashboard?from={}&to={}", f.before, f.current)
}

/// The text of the table with this id, tags stripped to `|`-separated cells.
fn table(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let start = at + body[at..].find('>').unwrap() + 1;
    let end = start + body[start..].find("</table>").unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for c in body[start..end].chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push('|');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("|")
}

both_backends!(
    the_owner_sees_spend_added_up_by_hand_and_nothing_of_globex,
    |store| async move {
        let (w, f) = spend_world(store).await;
        let owner = w.signed_in(&w.olivia.email.to_string()).await;
        let page = owner.get(&format!("{}&group=team", three_months(&f))).await;
        page.assert_ok();
        page.assert_contains("<p class=\"big\" id=\"total-spend\">142.00 USD</p>")
            .assert_contains("135.00 USD plan fees + 7.00 USD usage charges")
            .assert_contains("<p class=\"big\" id=\"total-lines\">3</p>");
        assert_eq!(
            table(&page.body, "groups"),
            "Team|Spend|Data|Lines|Sales|111.50 USD|3.50 GB|2|Engineering|20.50 USD|100.0 MB|1|No team|10.00 USD|0 B|1"
        );
        assert_eq!(
            table(&page.body, "changes"),
            format!(
                "Team|{p}|{c}|Change|%|Engineering|10.00 USD|0.00 USD|-10.00 USD|▼ -100 %|No team|0.00 USD|10.00 USD|+10.00 USD|▲ new|Sales|37.00 USD|36.50 USD|-0.50 USD|▼ -1 %",
                p = f.previous,
                c = f.current
            )
        );
        assert_eq!(
            table(&page.body, "top-spenders"),
            "Employee|Spend|Data|Bea Tester|81.50 USD|3.50 GB|=Dora Tester|30.00 USD|0 B|Carl Tester|20.50 USD|100.0 MB|Ada Tester|10.00 USD|0 B"
        );
        assert_eq!(
            table(&page.body, "near-cap"),
            "Employee|Live lines|Usage charges|Cap|Used|Bea Tester|1|1.50 USD|1.80 USD|83 %"
        );
        assert_eq!(
            table(&page.body, "unused"),
            "Employee|Plan|State|Monthly price|=Dora Tester|Basic|suspended|10.00 USD"
        );
        page.assert_contains("their plans cost <strong>10.00 USD</strong> a month");

        // Two charts, each a whole SVG with a title, a tooltip per bar and axis labels.
        assert_eq!(page.body.matches("<svg").count(), 2);
        assert_eq!(page.body.matches("</svg>").count(), 2);
        assert_eq!(
            page.body.matches("<rect").count(),
            page.body.matches("</rect>").count()
        );
        page.assert_contains("<title>Spend over time</title>")
            .assert_contains(&format!(
                "<title>{}: 48.50 USD · 1.10 GB of data</title>",
                f.before
            ))
            .assert_contains(&format!(
                "<title>{}: 46.50 USD · 512.0 MB of data</title>",
                f.current
            ))
            .assert_contains("<title>Spend by team</title>")
            .assert_contains(">0.00 USD</text>");
        assert!(page.headers.get("server-timing").is_some());

        for leak in ["Globex", "gina", "99.00", "77.77"] {
            assert!(
                !page.body.contains(leak),
                "{leak} leaked into acme's dashboard"
            );
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_only_their_reporting_tree() {
    let (w, f) = spend_world(sqlite_store().await).await;
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    let page = maria.get(&three_months(&f)).await;
    page.assert_ok()
        .assert_contains("<p class=\"big\" id=\"total-spend\">91.50 USD</p>");
    assert_eq!(
        table(&page.body, "groups"),
        "Employee|Spend|Data|Lines|Bea Tester &#60;bea@example.com&#62;|81.50 USD|3.50 GB|1|Ada Tester &#60;ada@example.com&#62;|10.00 USD|0 B|1"
    );
    for outside in ["Carl", "Dora", "Fiona"] {
        assert!(
            !page.body.contains(outside),
            "{outside} is not Maria's report"
        );
    }
    // Managers may export their own tree: the links are there.
    page.assert_contains("/exports/chargeback.csv?");
    let viewer = w.signed_in("viewer@example.com").await;
    let page = viewer.get("/dashboard").await;
    page.assert_ok();
    assert!(!page.body.contains("/exports/"), "viewers cannot export");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_the_page_and_bad_ones_are_named() {
    let (w, f) = spend_world(sqlite_store().await).await;
    let fiona = w.signed_in(&w.fiona.email.to_string()).await;
    let page = fiona
        .get(&format!(
            "/dashboard?from={p}&to={p}&cost_centre={}&group=cost_centre",
            f.field.id,
            p = f.previous
        ))
        .await;
    page.assert_ok()
        .assert_contains("<p class=\"big\" id=\"total-spend\">37.00 USD</p>")
        .assert_contains(&format!(
            "<option value=\"{}\" selected>CC-100 +Field sales</option>",
            f.field.id
        ));
    // Day and week views say what they leave out.
    for granularity in ["day", "week"] {
        let page = fiona
            .get(&format!("{}&granularity={granularity}", three_months(&f)))
            .await;
        page.assert_ok()
            .assert_contains("show usage charges only; plan fees are charged per month")
            .assert_contains("<title>Spend over time</title>");
    }
    let page = fiona
        .get(&format!(
            "/dashboard?granularity=day&from={c}&to={c}",
            c = f.current
        ))
        .await;
    page.assert_contains(&format!(
        "<title>{}: 1.50 USD · 512.0 MB of data</title>",
        f.current.first_day()
    ));

    for (query, field) in [
        (
            "from=2026-13",
            "from: &#34;2026-13&#34; is not a month like 2026-01",
        ),
        (
            "group=planet",
            "group: &#34;planet&#34; is not one of employee, team, cost_centre",
        ),
        ("from=2026-06&to=2026-01", "from: 2026-06 is after 2026-01"),
        (
            "team=not-an-id",
            "team: &#34;not-an-id&#34; is not one of the choices",
        ),
    ] {
        let page = fiona.get(&format!("/dashboard?{query}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        page.assert_contains(field);
    }
    // Another organisation's team id is not found, and shows nothing of it.
    let globex_team = f.globex_team.as_ref().unwrap();
    let page = fiona
        .get(&format!("/dashboard?team={}", globex_team.id))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Globex Secret Team"));
}
