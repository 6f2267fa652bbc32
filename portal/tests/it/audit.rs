//! The audit log page and its download over real HTTP: filters, paging, compact changes,
//! and only this organisation's events.

use lineup_core::audit::Actor;
use lineup_testkit::portal::PortalWorld;
use lineup_testkit::spend::seed_spend;
use lineup_testkit::sqlite_store;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_the_log_and_changes_show_compactly() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let f = seed_spend(&w, Some((w.globex, &w.gina))).await;
    let admin = w.signed_in("admin@example.com").await;
    let page = admin.get("/audit?action=team.").await;
    page.assert_ok()
        .assert_contains("<code>team.created</code>")
        .assert_contains("<ins>Engineering</ins>")
        .assert_contains(&format!("team {}", f.sales.id));
    assert_eq!(page.body.matches("<code>team.created</code>").count(), 2);
    assert!(!page.body.contains("Globex Secret Team"));
    assert!(!page.body.contains("employee.created"));

    let page = admin
        .get(&format!(
            "/audit?subject_type=employee&subject_id={}&actor=system&from={d}&to={d}",
            f.bea.id,
            d = f.today
        ))
        .await;
    page.assert_ok()
        .assert_contains("<code>employee.created</code>")
        .assert_contains("Lineup (system)")
        .assert_contains("<strong>given_name</strong>: <ins>Bea</ins>");
    assert_eq!(page.body.matches("<code>").count(), 1);

    // Sign-ins are the signed-in user's own events, named.
    let page = admin.get("/audit?action=session.").await;
    page.assert_contains("admin &#60;admin@example.com&#62;");

    let page = admin.get("/audit?from=yesterday").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.assert_contains("from: &#34;yesterday&#34; is not a date like 2026-01-31");
    let page = admin.get("/audit?before=nonsense").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_go_back_in_time_without_repeats_and_the_csv_has_every_event() {
    let w = PortalWorld::new(sqlite_store().await).await;
    for n in 0..60 {
        w.lineup
            .add_team(w.tenant, &Actor::System, &format!("Team {n:02}"))
            .await
            .unwrap();
    }
    w.lineup
        .add_team(
            w.tenant,
            &Actor::System,
            "=HYPERLINK(\"http://evil.example\")",
        )
        .await
        .unwrap();
    w.lineup
        .add_team(w.globex, &Actor::System, "Globex Team")
        .await
        .unwrap();
    let finance = w.signed_in(&w.fiona.email.to_string()).await;
    let first = finance.get("/audit?action=team.").await;
    first.assert_ok();
    assert_eq!(first.body.matches("<code>team.created</code>").count(), 50);
    first.assert_contains("<ins>=HYPERLINK(&#34;http://evil.example&#34;)</ins>");
    let older = first
        .body
        .split("href=\"")
        .find(|s| s.starts_with("/audit?action=team.&amp;before="))
        .and_then(|s| s.split('"').next())
        .expect("a link to older events")
        .replace("&amp;", "&");
    let second = finance.get(&older).await;
    second.assert_ok().assert_contains("← Newest");
    assert_eq!(second.body.matches("<code>team.created</code>").count(), 11);
    assert!(!second.body.contains("rel=\"next\""), "the last page");
    for n in 0..60 {
        let name = format!("<ins>Team {n:02}</ins>");
        let seen = first.body.matches(&name).count() + second.body.matches(&name).count();
        assert_eq!(seen, 1, "{name}");
    }

    let answer = finance.get("/audit/export.csv?action=team.").await;
    answer.assert_ok();
    assert_eq!(answer.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        answer.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"lineup-audit-")
    );
    let lines: Vec<&str> = answer.body.lines().collect();
    assert_eq!(
        lines[0],
        "at,actor,actor_name,action,subject_type,subject_id,before,after"
    );
    assert_eq!(lines.len(), 62, "a header and 61 events");
    assert!(lines[1].contains(",system,Lineup (system),team.created,team,"));
    assert!(!answer.body.contains("Globex"));
    // The manager role has no audit log, and so no download.
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    assert_eq!(
        maria.get("/audit/export.csv").await.status,
        StatusCode::FORBIDDEN
    );
}
