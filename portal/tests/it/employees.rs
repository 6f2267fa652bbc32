//! People pages over HTTP: the directory (search, filters, paging, a manager's tree), the
//! employee page, editing, offboarding through the provider simulator, and the CSV import.

use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::error::CoreError;
use lineup_core::lines::line::LineState;
use lineup_core::organisation::employee::{EmployeeStatus, NewEmployee};
use lineup_core::organisation::tenant::OffboardingAction;
use lineup_core::store;
use lineup_testkit::portal::{
    BASE_DOMAIN, Browser, EMPLOYEE_CSV_WITH_EVERY_DEFECT, PASSWORD, PortalWorld, UploadToken,
};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;
use serde_json::json;

const ADMIN: &str = "admin@example.com";
const VIEWER: &str = "viewer@example.com";

async fn audit_count(w: &PortalWorld) -> i64 {
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    store::audit::count(&mut tx, w.tenant).await.unwrap()
}

async fn people(w: &PortalWorld) -> usize {
    w.lineup.employees(w.tenant).await.unwrap().len()
}

/// 120 more people: P000–P119, half in Sales (CC-1), half in Support (CC-2).
async fn seed_people(w: &PortalWorld) {
    let mut csv = String::from("Work Email,First Name,Last Name,Department,Cost Center\n");
    for i in 0..120 {
        let (team, centre) = if i % 2 == 0 {
            ("Sales", "CC-1")
        } else {
            ("Support", "CC-2")
        };
        csv.push_str(&format!(
            "person{i:03}@example.com,Person,P{i:03},{team},{centre}\n"
        ));
    }
    let upload = w
        .lineup
        .upload_employee_csv(w.tenant, &Actor::System, "seed.csv", csv.into_bytes())
        .await
        .unwrap();
    let preview = w
        .lineup
        .preview_import(w.tenant, upload.id, None)
        .await
        .unwrap();
    w.lineup
        .commit_import(w.tenant, &Actor::System, upload.id, preview.mapping)
        .await
        .unwrap();
}

both_backends!(
    the_directory_searches_filters_sorts_and_pages,
    |store| async move {
        let w = PortalWorld::new(store).await;
        seed_people(&w).await;
        w.active_line(&w.ada, "ada-line").await;
        let viewer = w.signed_in(VIEWER).await;

        let first = viewer.get("/employees").await;
        first.assert_ok().assert_contains("Showing 1–50 of 125");
        first.assert_contains("P000").assert_contains("P049");
        assert!(!first.body.contains("P050"));
        assert!(
            !first.body.contains("Import from CSV"),
            "viewers are not offered the import"
        );
        first.assert_contains("href=\"/employees?page=2\"");
        let last = viewer.get("/employees?page=3").await;
        last.assert_ok()
            .assert_contains("Showing 101–125 of 125")
            .assert_contains("ada@example.com");
        assert!(!last.body.contains("rel=\"next\""));
        let descending = viewer.get("/employees?sort=-name").await;
        let ada_at = descending.body.find("ada@example.com").unwrap();
        let p119_at = descending.body.find("P119").unwrap();
        assert!(ada_at < p119_at, "Tester sorts before P… when descending");

        viewer
            .get("/employees?q=p007")
            .await
            .assert_contains("Showing 1–1 of 1")
            .assert_contains("person007@example.com");
        viewer
            .get("/employees?q=ADA%40")
            .await
            .assert_contains("Showing 1–1 of 1");
        viewer
            .get("/employees?q=100%25")
            .await
            .assert_contains("No one matches");

        let teams = w.lineup.teams(w.tenant).await.unwrap();
        let sales = teams.iter().find(|t| t.name == "Sales").unwrap();
        let in_sales = viewer
            .get(&format!("/employees?team={}&q=person", sales.id))
            .await;
        in_sales.assert_contains("Showing 1–50 of 60");
        assert!(
            !in_sales.body.contains("person001@"),
            "odd numbers are in Support"
        );
        let centres = w.lineup.cost_centres(w.tenant).await.unwrap();
        viewer
            .get(&format!("/employees?cost_centre={}&page=2", centres[1].id))
            .await
            .assert_contains("Showing 51–60 of 60");

        let with_line = viewer.get("/employees?line=yes").await;
        with_line
            .assert_contains("Showing 1–1 of 1")
            .assert_contains("ada@example.com");
        viewer
            .get("/employees?line=no")
            .await
            .assert_contains("of 124");
        viewer
            .get("/employees?status=offboarded")
            .await
            .assert_contains("No one matches");
        viewer
            .get("/employees?status=active&line=yes&q=ada")
            .await
            .assert_contains("Showing 1–1 of 1");

        // A manager's search stays inside her tree.
        let maria = w.signed_in(&w.maria.email.to_string()).await;
        maria
            .get("/employees?q=tester&line=yes")
            .await
            .assert_contains("Showing 1–1 of 1")
            .assert_contains("ada@example.com");
        maria
            .get("/employees?q=person")
            .await
            .assert_contains("No one matches");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_only_their_tree_and_a_viewer_cannot_change_anyone() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    let directory = maria.get("/employees").await;
    directory
        .assert_ok()
        .assert_contains("Showing 1–3 of 3")
        .assert_contains("ada@example.com")
        .assert_contains("alan@example.com");
    assert!(!directory.body.contains("olivia@example.com"));
    maria
        .get(&format!("/employees/{}", w.ada.id))
        .await
        .assert_ok()
        .assert_contains("Maria Tester");
    assert_eq!(
        maria
            .get(&format!("/employees/{}", w.olivia.id))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "outside her tree is as if it did not exist"
    );
    maria
        .get("/employees?q=olivia")
        .await
        .assert_contains("No one matches");

    let viewer = w.signed_in(VIEWER).await;
    let ada = format!("/employees/{}", w.ada.id);
    viewer
        .get(&ada)
        .await
        .assert_ok()
        .assert_contains("Ada Tester");
    assert!(!viewer.get(&ada).await.body.contains("Offboard"));
    for path in [
        "/employees/import".to_owned(),
        format!("{ada}/edit"),
        format!("{ada}/offboard"),
    ] {
        assert_eq!(
            viewer.get(&path).await.status,
            StatusCode::FORBIDDEN,
            "GET {path}"
        );
    }
    let posts = [
        (format!("{ada}/edit"), vec![("given_name", "Hacked")]),
        (format!("{ada}/offboard"), vec![("confirm", "yes")]),
    ];
    for (path, fields) in posts {
        assert_eq!(
            viewer.post(&path, &fields).await.status,
            StatusCode::FORBIDDEN,
            "POST {path}"
        );
    }
    let upload = viewer
        .upload(
            "/employees/import",
            "file",
            "x.csv",
            b"Email\nx@example.com\n",
            &[],
        )
        .await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    let ada_now = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
    assert_eq!(ada_now, w.ada, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_another_tenants_employee_or_upload_gives_404() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let gina = format!("/employees/{}", w.gina.id);
    for path in [
        gina.clone(),
        format!("{gina}/edit"),
        format!("{gina}/offboard"),
    ] {
        let answer = owner.get(&path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(!answer.body.contains("gina"), "{path} leaked globex data");
    }
    let edit = [
        ("email", "gina@example.com"),
        ("given_name", "Pwned"),
        ("family_name", "Tester"),
    ];
    assert_eq!(
        owner.post(&format!("{gina}/edit"), &edit).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        owner
            .post(&format!("{gina}/offboard"), &[("confirm", "yes")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let gina_now = w.lineup.employee(w.globex, w.gina.id).await.unwrap();
    assert_eq!(gina_now.status, EmployeeStatus::Active);
    assert_eq!(gina_now.given_name, "Gina");
    owner
        .get("/employees?q=gina")
        .await
        .assert_contains("No one matches");

    // An acme upload is invisible from globex.
    owner.get("/employees/import").await.assert_ok();
    let uploaded = owner
        .upload("/employees/import", "file", "a.csv", CLEAN.as_bytes(), &[])
        .await;
    let preview = uploaded.location().unwrap().to_owned();
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    globex.sign_in("owner@globex.example", PASSWORD).await;
    assert_eq!(globex.get(&preview).await.status, StatusCode::NOT_FOUND);
    let commit = globex
        .post(&format!("{preview}/commit"), &[("map_email", "0")])
        .await;
    assert_eq!(commit.status, StatusCode::NOT_FOUND);
    assert_eq!(people(&w).await, 5, "nothing was imported into acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_names_the_bad_field_refuses_a_reporting_loop_and_is_audited() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in(ADMIN).await;
    let maria = format!("/employees/{}", w.maria.id);
    admin
        .get(&format!("{maria}/edit"))
        .await
        .assert_ok()
        .assert_contains("olivia@example.com");
    let audit_before = audit_count(&w).await;

    let answer = admin.post(&format!("{maria}/edit"), &[]).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );

    let mut fields = vec![
        ("email", "maria@example.com"),
        ("given_name", "Maria"),
        ("family_name", "Tester"),
        ("team", ""),
        ("cost_centre", ""),
        ("manager_email", "ada@example.com"),
    ];
    let answer = admin.post(&format!("{maria}/edit"), &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains(
        "ada@example.com reports to maria@example.com (ada@example.com → maria@example.com)",
    );
    answer.assert_contains("would loop");
    answer.assert_contains("value=\"ada@example.com\""); // what was typed is kept

    fields[0] = ("email", "not an email");
    fields[5] = ("manager_email", "olivia@example.com");
    let answer = admin.post(&format!("{maria}/edit"), &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("email: email &#34;not an email&#34;");
    assert_eq!(
        audit_count(&w).await,
        audit_before,
        "refused edits write nothing"
    );

    let team = w
        .lineup
        .add_team(w.tenant, &Actor::System, "Platform")
        .await
        .unwrap();
    let team_id = team.id.to_string();
    fields[0] = ("email", "Maria.Tester@Example.com");
    fields[2] = ("family_name", "Lopez");
    fields[3] = ("team", &team_id);
    fields[5] = ("manager_email", "");
    let answer = admin.post(&format!("{maria}/edit"), &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let page = admin.get(&maria).await;
    page.assert_contains("Saved Maria Lopez")
        .assert_contains("Platform")
        .assert_contains("maria.tester@example.com")
        .assert_contains("nobody (top of the organisation)");
    let events = w.audit_actions("employee", &w.maria.id.to_string()).await;
    assert_eq!(events.last().unwrap(), "employee.updated");

    // Ada's page shows her chain up to the top.
    admin
        .get(&format!("/employees/{}", w.ada.id))
        .await
        .assert_contains("Maria Lopez");
}

both_backends!(
    an_edit_naming_another_tenants_team_or_cost_centre_is_refused_and_changes_nothing,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let admin = w.signed_in(ADMIN).await;
        let globex_team = w
            .lineup
            .add_team(w.globex, &Actor::System, "Globex Sales")
            .await
            .unwrap()
            .id
            .to_string();
        let globex_centre = w
            .lineup
            .add_cost_centre(w.globex, &Actor::System, "GX-1", "Globex Ops")
            .await
            .unwrap()
            .id
            .to_string();
        let maria_before = w.lineup.employee(w.tenant, w.maria.id).await.unwrap();
        let audit_before = audit_count(&w).await;

        for (field, id, refusal) in [
            (
                "team",
                &globex_team,
                format!("team: team {globex_team} was not found in this organisation"),
            ),
            (
                "cost_centre",
                &globex_centre,
                format!(
                    "cost_centre: cost centre {globex_centre} was not found in this organisation"
                ),
            ),
        ] {
            let mut fields = vec![
                ("email", "maria@example.com"),
                ("given_name", "Maria"),
                ("family_name", "Tester"),
                ("team", ""),
                ("cost_centre", ""),
                ("manager_email", "olivia@example.com"),
            ];
            fields.retain(|(name, _)| *name != field);
            fields.push((field, id));
            let answer = admin
                .post(&format!("/employees/{}/edit", w.maria.id), &fields)
                .await;
            assert_eq!(
                answer.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field}: {}",
                answer.body
            );
            answer.assert_contains(&refusal);
            assert!(!answer.body.contains("Globex"), "globex's names leaked");
        }
        // Adding someone is held to the same rule.
        let added = w
            .lineup
            .add_employee(
                w.tenant,
                &Actor::System,
                NewEmployee {
                    email: Email::parse("newcomer@example.com").unwrap(),
                    given_name: "New".into(),
                    family_name: "Comer".into(),
                    team_id: Some(globex_team.parse().unwrap()),
                    cost_centre_id: None,
                    manager_id: None,
                },
            )
            .await;
        assert!(
            matches!(&added, Err(CoreError::Invalid { field: "team", .. })),
            "{added:?}"
        );
        assert_eq!(
            w.lineup.employee(w.tenant, w.maria.id).await.unwrap(),
            maria_before
        );
        assert_eq!(people(&w).await, 5, "nobody was added");
        assert_eq!(
            audit_count(&w).await,
            audit_before,
            "refused edits write nothing"
        );
    }
);

both_backends!(
    offboarding_suspends_each_line_reports_a_provider_failure_and_is_idempotent,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let first = w.active_line(&w.ada, "ada-1").await;
        let second = w.active_line(&w.ada, "ada-2").await;
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"order_type": "suspend_subscription"},
                "action": {"cancel_with": "SUSPEND_REFUSED"},
                "times": 1
            })),
        )
        .await;
        let admin = w.signed_in(ADMIN).await;
        let offboard = format!("/employees/{}/offboard", w.ada.id);
        let page = admin.get(&offboard).await;
        page.assert_ok()
            .assert_contains("<strong>suspended</strong>");
        assert_eq!(page.body.matches("will be suspended").count(), 2);

        let unconfirmed = admin.post(&offboard, &[]).await;
        assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
        unconfirmed.assert_contains("tick the box");
        let ada = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
        assert_eq!(
            ada.status,
            EmployeeStatus::Active,
            "an empty post changes nothing"
        );

        let result = admin.post(&offboard, &[("confirm", "yes")]).await;
        result
            .assert_ok()
            .assert_contains("is incomplete")
            .assert_contains("FAILED")
            .assert_contains("SUSPEND_REFUSED")
            .assert_contains("now suspended");
        let ada = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
        assert_eq!(ada.status, EmployeeStatus::Offboarded);
        let state = |id| {
            let lineup = w.lineup.clone();
            let tenant = w.tenant;
            async move { lineup.line(tenant, id).await.unwrap().state }
        };
        assert_eq!(state(first.id).await, LineState::Active, "the refused line");
        assert_eq!(
            state(second.id).await,
            LineState::Suspended,
            "the rest proceed"
        );
        let actions = w.audit_actions("employee", &w.ada.id.to_string()).await;
        assert!(
            actions.contains(&"employee.offboarded".to_owned()),
            "{actions:?}"
        );
        assert!(actions.contains(&"employee.offboarding_lines".to_owned()));
        assert!(
            w.audit_actions("line", &first.id.to_string())
                .await
                .contains(&"line.suspend_failed".to_owned())
        );
        admin
            .get(&format!("/employees/{}", w.ada.id))
            .await
            .assert_contains("Finish offboarding");

        // Offboarding again retries only the line that failed.
        let retry = admin.post(&offboard, &[("confirm", "yes")]).await;
        retry.assert_ok().assert_contains("is offboarded");
        assert_eq!(state(first.id).await, LineState::Suspended);
        let suspends = |stats: serde_json::Value| {
            stats["orders"]["by_type"]["suspend_subscription"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(suspends(w.stats().await), 3, "refused, second line, retry");

        // And once more: nothing left to do, nothing written, no order placed.
        let audit_before = audit_count(&w).await;
        let orders_before = w.stats().await["orders"]["total"].clone();
        let again = admin.post(&offboard, &[("confirm", "yes")]).await;
        again.assert_ok().assert_contains("already offboarded");
        assert_eq!(audit_count(&w).await, audit_before);
        assert_eq!(w.stats().await["orders"]["total"], orders_before);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_terminates_when_the_tenant_says_so_and_a_double_click_acts_once() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
    settings.offboarding_action = OffboardingAction::Terminate;
    w.lineup
        .update_settings(w.tenant, &Actor::System, settings)
        .await
        .unwrap();
    let line = w.active_line(&w.alan, "alan-1").await;
    let admin = w.signed_in(ADMIN).await;
    let offboard = format!("/employees/{}/offboard", w.alan.id);
    admin
        .get(&offboard)
        .await
        .assert_contains("will be terminated");
    let (a, b) = tokio::join!(
        admin.post(&offboard, &[("confirm", "yes")]),
        admin.post(&offboard, &[("confirm", "yes")])
    );
    for answer in [&a, &b] {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    assert_eq!(
        w.lineup.line(w.tenant, line.id).await.unwrap().state,
        LineState::Terminated
    );
    let stats = w.stats().await;
    assert_eq!(
        stats["orders"]["by_type"]["terminate_subscription"], 1,
        "two clicks, one provider order: {stats}"
    );
    let offboarded = w
        .audit_actions("employee", &w.alan.id.to_string())
        .await
        .into_iter()
        .filter(|a| a == "employee.offboarded")
        .count();
    assert_eq!(offboarded, 1);
}

both_backends!(
    grace_offboarding_suspends_and_lists_the_leaver_with_their_deadline_under_provisioning,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let admin = w.signed_in(ADMIN).await;
        let mut fields = vec![
            ("name", "acme"),
            ("currency", "USD"),
            ("approvals_channel", ""),
            ("finance_channel", ""),
            ("offboarding_action", "grace"),
            ("offboarding_grace_days", "10"),
            ("offboarding_reminder_after_days", "10"),
            ("offboarding_grace_default", "keep_suspended"),
            ("cap_raise_finance_threshold", "50.00"),
            ("cap_raise_auto_approve_max", "0"),
            ("cap_raise_max", "500"),
            ("new_line_auto_approve_max_price", ""),
            ("approval_remind_after_hours", "24"),
            ("approval_escalate_after_hours", "48"),
            ("approval_expire_after_hours", "120"),
            ("usage_sync_cron", "0 0 * * * *"),
            ("roaming_violation_action", "alert"),
        ];
        let refused = admin.post("/settings", &fields).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        refused.assert_contains("offboarding_reminder_after_days");
        fields[6] = ("offboarding_reminder_after_days", "3");
        let saved = admin.post("/settings", &fields).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        assert_eq!(settings.offboarding_action, OffboardingAction::Grace);
        assert_eq!(settings.offboarding_grace_days, 10);
        assert_eq!(settings.offboarding_reminder_after_days, 3);

        let line = w.active_line(&w.alan, "alan-1").await;
        let offboard = format!("/employees/{}/offboard", w.alan.id);
        admin
            .get(&offboard)
            .await
            .assert_contains("their manager chooses");
        admin
            .post(&offboard, &[("confirm", "yes")])
            .await
            .assert_ok();
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Suspended
        );
        let case = &w.lineup.pending_offboarding_cases(w.tenant).await.unwrap()[0];
        let page = admin.get("/settings/provisioning").await;
        page.assert_ok()
            .assert_contains("People pending offboarding")
            .assert_contains(&w.alan.full_name())
            .assert_contains(&w.maria.full_name())
            .assert_contains(&lineup_core::spend::alert::minute_utc(case.deadline_at))
            .assert_contains("waiting");
    }
);

/// Commit a previewed upload with this mapping; panics unless it is imported.
async fn commit(browser: &Browser, preview_path: &str, columns: [&str; 6]) {
    let answer = browser
        .post(&format!("{preview_path}/commit"), &mapping(columns))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

/// The preview's mapping form: the file column chosen for each of our fields, in order.
fn mapping(columns: [&str; 6]) -> Vec<(&'static str, &str)> {
    [
        "map_email",
        "map_given_name",
        "map_family_name",
        "map_team",
        "map_cost_centre",
        "map_manager_email",
    ]
    .into_iter()
    .zip(columns)
    .collect()
}

const CLEAN: &str = "Email,First Name,Last Name,Team,Cost Center,Manager Email\r\n\
    carol@example.com,Carol,Chief,Leadership,CC-100,\r\n\
    dave@example.com,Dave,Doer,Engineering,CC-200,carol@example.com\r\n\
    ada@example.com,Ada,Tester,Engineering,CC-200,maria@example.com\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_defective_csv_is_reported_row_by_row_over_http_and_nothing_is_written() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in(ADMIN).await;
    admin.get("/employees/import").await.assert_ok();
    let (people_before, audit_before) = (people(&w).await, audit_count(&w).await);
    let uploaded = admin
        .upload(
            "/employees/import",
            "file",
            "hris.csv",
            EMPLOYEE_CSV_WITH_EVERY_DEFECT.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    let preview_path = uploaded.location().unwrap().to_owned();
    let preview = admin.get(&preview_path).await;
    preview.assert_ok().assert_contains("Problems to fix");
    for (row, column, reason) in [
        (
            "whole file",
            "Last name",
            "no column is mapped to Last name",
        ),
        ("3", "Work Email", "not-an-email"),
        ("5", "Work Email", "already on row 4"),
        (
            "6",
            "Supervisor Email",
            "ghost@example.com is not in this file",
        ),
        (
            "7",
            "Supervisor Email",
            "loop1@example.com → loop2@example.com → loop1@example.com",
        ),
        ("8", "Supervisor Email", "the reporting line loops"),
        (
            "10",
            "Supervisor Email",
            "maria@example.com → ada@example.com → maria@example.com",
        ),
    ] {
        preview.assert_contains(&format!(
            "<tr><td class=\"num\">{row}</td><td>{column}</td><td>"
        ));
        preview.assert_contains(reason);
    }
    assert!(
        !preview.body.contains("<td class=\"num\">9</td><td>"),
        "the quoted row is fine"
    );
    assert!(
        !preview.body.contains("/commit\""),
        "no import button while problems remain"
    );

    // Forcing the commit anyway is refused and writes nothing.
    let commit = admin
        .post(
            &format!("{preview_path}/commit"),
            &mapping(["0", "1", "1", "2", "3", "4"]),
        )
        .await;
    assert_eq!(commit.status, StatusCode::UNPROCESSABLE_ENTITY);
    commit.assert_contains("Nothing was imported");
    assert_eq!(people(&w).await, people_before);
    assert_eq!(audit_count(&w).await, audit_before);
    assert!(w.lineup.teams(w.tenant).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_csv_previews_then_commits_and_the_mapping_can_be_changed() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in(ADMIN).await;
    admin.get("/employees/import").await.assert_ok();
    let uploaded = admin
        .upload(
            "/employees/import",
            "file",
            "clean.csv",
            CLEAN.as_bytes(),
            &[],
        )
        .await;
    let preview_path = uploaded.location().unwrap().to_owned();
    let preview = admin.get(&preview_path).await;
    preview
        .assert_ok()
        .assert_contains("Teams: Leadership, Engineering")
        .assert_contains("Cost centres: CC-100, CC-200")
        .assert_contains("Import 2 new and 1 updated people")
        .assert_contains("Team: <span class=\"muted\">none</span> → Engineering");
    assert_eq!(people(&w).await, 5, "the preview is a dry run");
    commit(&admin, &preview_path, ["0", "1", "2", "3", "4", "5"]).await;
    admin
        .get("/employees")
        .await
        .assert_contains("Imported 3 rows: 2 created, 1 updated, 0 unchanged; 2 teams and 2 cost centres created")
        .assert_contains("carol@example.com");
    assert_eq!(people(&w).await, 7);

    // A file with headers nobody recognises: map them by hand in the preview.
    let german = "Mail;Vorname;Nachname\n";
    let german = format!(
        "{}erika@example.com,Erika,Mustermann\n",
        german.replace(';', ",")
    );
    let uploaded = admin
        .upload(
            "/employees/import",
            "file",
            "export.csv",
            german.as_bytes(),
            &[],
        )
        .await;
    let preview_path = uploaded.location().unwrap().to_owned();
    admin
        .get(&preview_path)
        .await
        .assert_contains("no column is mapped to Work email");
    let mapped = format!(
        "{preview_path}?map_email=0&map_given_name=1&map_family_name=2&map_team=&map_cost_centre=&map_manager_email="
    );
    let remapped = admin.get(&mapped).await;
    remapped
        .assert_ok()
        .assert_contains("Import 1 new and 0 updated people")
        .assert_contains("<option value=\"0\" selected>Mail</option>");
    commit(&admin, &preview_path, ["0", "1", "2", "", "", ""]).await;
    assert_eq!(people(&w).await, 8);
    // A second commit of the same upload is refused.
    let twice = admin
        .post(&format!("{preview_path}/commit"), &[("map_email", "0")])
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_latin1_uploads_are_refused_with_what_to_do() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in(ADMIN).await;
    admin.get("/employees/import").await.assert_ok();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    let answer = admin
        .upload("/employees/import", "file", "photo.png", png, &[])
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer
        .assert_contains("this looks like a PNG image, not a CSV file")
        .assert_contains("CSV UTF-8");
    let latin1 = b"Work Email,First Name,Last Name\r\njose@example.com,Jos\xe9,Garc\xeda\r\n";
    let answer = admin
        .upload("/employees/import", "file", "export.csv", latin1, &[])
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer
        .assert_contains("the file is not UTF-8 text: row 2 has the byte 0xE9")
        .assert_contains("CSV UTF-8");
    // Files past the web framework's default 2 MB limit are accepted…
    let mut big = String::from("Work Email,First Name,Last Name\n");
    while big.len() < 3_000_000 {
        big.push_str(&format!(
            "person{}@example.com,Person,Number{}\n",
            big.len(),
            big.len()
        ));
    }
    let answer = admin
        .upload("/employees/import", "file", "big.csv", big.as_bytes(), &[])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    // …up to 20 MB.
    let huge = vec![b'a'; 21 * 1024 * 1024];
    let answer = admin
        .upload("/employees/import", "file", "huge.csv", &huge, &[])
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("larger than 20 MB");
    let empty_form = admin.post("/employees/import", &[]).await;
    assert_eq!(empty_form.status, StatusCode::UNPROCESSABLE_ENTITY);
    empty_form.assert_contains("choose a CSV file");
    assert_eq!(people(&w).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employees_page_numbers_out_of_range_are_refused_clearly() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = w.signed_in(ADMIN).await;
    for page in [
        "9223372036854775807",
        "184467440737095517",
        "1000001",
        "0",
        "-3",
        "two",
    ] {
        let answer = browser.get(&format!("/employees?page={page}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "page={page}"
        );
        answer.assert_contains("is not a page number from 1 to 1000000");
    }
    // The highest page accepted is simply empty.
    browser.get("/employees?page=1000000").await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_form_sends_its_csrf_token_in_the_body_never_in_the_url() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in(ADMIN).await;
    let form = admin.get("/employees/import").await;
    form.assert_ok()
        .assert_contains("action=\"/employees/import\" enctype")
        .assert_contains("name=\"_csrf\"");
    assert!(!form.body.contains("?_csrf="), "no token in the form's URL");
    let csv = b"Work Email,First Name,Last Name\ngrace@example.com,Grace,Hopper\n";
    let upload = |token| admin.upload_with(token, "/employees/import", "file", "a.csv", csv, &[]);

    // In the URL: refused.
    let answer = upload(UploadToken::Query).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // As the form sends it (a field before the file), and in the header: accepted.
    for token in [UploadToken::FirstField, UploadToken::Header] {
        let answer = upload(token).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{token:?}: {}",
            answer.body
        );
        assert!(answer.redirected_to().starts_with("/employees/import/"));
    }
    // A big file behind the token still arrives whole.
    let mut big = String::from("Work Email,First Name,Last Name\n");
    while big.len() < 3_000_000 {
        big.push_str(&format!("p{}@example.com,P,N{}\n", big.len(), big.len()));
    }
    let answer = admin
        .upload_with(
            UploadToken::FirstField,
            "/employees/import",
            "file",
            "big.csv",
            big.as_bytes(),
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

both_backends!(
    an_offboarded_member_is_signed_out_at_once,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let maria = w.signed_in(&w.maria.email.to_string()).await;
        maria.get("/requests").await.assert_ok();
        let admin = w.signed_in(ADMIN).await;
        let result = admin
            .post(
                &format!("/employees/{}/offboard", w.maria.id),
                &[("confirm", "yes")],
            )
            .await;
        result.assert_ok();

        let answer = maria.get("/requests").await;
        assert!(
            answer.redirected_to().contains("/login"),
            "the leaver's cookie no longer opens the portal"
        );
        let again = w.browser(&format!("acme.{BASE_DOMAIN}"));
        again.get("/login").await.assert_ok();
        let refused = again
            .post(
                "/login",
                &[("email", w.maria.email.as_str()), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "nor can they sign in"
        );
        let user = w.user_id(w.maria.email.as_str()).await;
        let actions = w.audit_in(w.tenant, "user", &user.to_string()).await;
        assert!(
            actions.contains(&"membership.removed".to_owned()),
            "{actions:?}"
        );

        // The only owner cannot be offboarded: nobody would be left to run the organisation.
        let refused = admin
            .post(
                &format!("/employees/{}/offboard", w.olivia.id),
                &[("confirm", "yes")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
        refused.assert_contains("is the last owner of this organisation");
        let olivia = w.lineup.employee(w.tenant, w.olivia.id).await.unwrap();
        assert_eq!(olivia.status, EmployeeStatus::Active);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_links_chat_ids_finds_the_rest_in_slack_and_the_page_shows_the_platforms() {
    use lineup_bot::flows::ChatFlows;
    use lineup_bot::slack::{SlackClient, SlackConfig, SlackTransport};
    use lineup_core::messaging::chat::Platform;
    use lineup_testkit::fake_slack::FakeSlack;
    use std::sync::Arc;

    let w = PortalWorld::new(sqlite_store().await).await;
    let fake = FakeSlack::start().await;
    fake.add_user("U0CAROL", "carol@example.com");
    fake.add_user("U0ALAN", "alan@example.com");
    w.lineup
        .install_workspace(
            w.tenant,
            &Actor::System,
            Platform::Slack,
            "T0ACME",
            Some("U0BOT"),
            "xoxb-acme",
        )
        .await
        .unwrap();
    let config = SlackConfig::new("secret", "1.2", "client-secret", "https://x/cb")
        .with_api_base_url(fake.api_url());
    let client = SlackClient::from_config(&config).unwrap();
    let flows = ChatFlows::new(
        w.lineup.clone(),
        vec![Arc::new(SlackTransport::new(client))],
    );
    let addr = w
        .serve_another(|portal| portal.with_chat_directory(flows.clone()))
        .await;
    let admin = Browser::new(&format!("acme.{BASE_DOMAIN}"), addr);
    admin.sign_in(ADMIN, PASSWORD).await;
    let import = |csv: &'static str, columns: &'static [(&'static str, &'static str)]| {
        let admin = &admin;
        async move {
            admin.get("/employees/import").await.assert_ok();
            let uploaded = admin
                .upload(
                    "/employees/import",
                    "file",
                    "people.csv",
                    csv.as_bytes(),
                    &[],
                )
                .await;
            let preview_path = uploaded.location().unwrap().to_owned();
            let preview = admin.get(&preview_path).await;
            let answer = admin.post(&format!("{preview_path}/commit"), columns).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
            (preview, admin.get("/employees").await)
        }
    };

    // Slack is down during the first import: the people are saved all the same.
    fake.fail_next("users.lookupByEmail", "fatal_error");
    let (preview, people_page) = import(
        "Work Email,First Name,Last Name,Discord user ID\n\
         carol@example.com,Carol,Chief,803511102246789120\n\
         dave@example.com,Dave,Doer,\n",
        &[
            ("map_email", "0"),
            ("map_given_name", "1"),
            ("map_family_name", "2"),
            ("map_discord_id", "3"),
        ],
    )
    .await;
    preview
        .assert_contains("Discord ID")
        .assert_contains("803511102246789120");
    people_page
        .assert_contains("Imported 2 rows: 2 created")
        .assert_contains("1 chat IDs linked")
        .assert_contains("Slack could not be searched by email")
        .assert_contains("fatal_error")
        .assert_contains("looked up by email again at the next import");
    let carol = w
        .lineup
        .employees(w.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.email.as_str() == "carol@example.com")
        .expect("carol was imported");

    // The next import finds everyone Slack knows by email.
    let (_, people_page) = import(
        "Work Email,First Name,Last Name\nerin@example.com,Erin,Engineer\n",
        &[
            ("map_email", "0"),
            ("map_given_name", "1"),
            ("map_family_name", "2"),
        ],
    )
    .await;
    people_page
        .assert_contains("Imported 1 rows: 1 created")
        .assert_contains("Slack: 2 of 8 people not yet linked were found by email and linked.");
    let looked_up: Vec<_> = fake
        .calls_to("users.lookupByEmail")
        .iter()
        .map(|c| c.body["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        looked_up.contains(&"carol@example.com".to_owned()),
        "{looked_up:?}"
    );
    assert!(
        looked_up.contains(&"erin@example.com".to_owned()),
        "{looked_up:?}"
    );
    assert_eq!(
        w.lineup
            .chat_user_of(w.tenant, w.alan.id, Platform::Slack)
            .await
            .unwrap()
            .as_deref(),
        Some("U0ALAN")
    );

    let directory = admin.get("/employees?q=carol").await;
    directory.assert_contains(
        "<td><span class=\"state\">Slack</span> <span class=\"state\">Discord</span> </td>",
    );
    let dave_row = admin.get("/employees?q=dave").await;
    dave_row.assert_contains("dave@example.com");
    assert!(
        !dave_row.body.contains("class=\"state\">Slack"),
        "Dave is in no chat"
    );

    let page = admin.get(&format!("/employees/{}", carol.id)).await;
    page.assert_ok()
        .assert_contains("Reachable in chat")
        .assert_contains("<th>Slack</th><td><code>U0CAROL</code>")
        .assert_contains("<th>Discord</th><td><code>803511102246789120</code>")
        .assert_contains(
            "<th>Teams</th><td><span class=\"muted\">not linked: Teams is not connected",
        );
    admin
        .get(&format!("/employees/{}", w.ada.id))
        .await
        .assert_contains("not linked: not found in Slack by their email yet")
        .assert_contains("not linked: no Discord server is connected");
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    globex.sign_in("owner@globex.example", PASSWORD).await;
    globex
        .get(&format!("/employees/{}", w.gina.id))
        .await
        .assert_contains("not linked: no Slack workspace is connected");
}
