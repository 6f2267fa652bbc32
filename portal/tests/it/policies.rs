//! Policies in the portal: budget caps and roaming presets, each change previewed with the
//! lines it reaches before it is saved, every change audited, bad input named, and only
//! members allowed to manage policies can change them.

use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::ids::TeamId;
use lineup_core::organisation::employee::{Employee, NewEmployee};
use lineup_core::spend::policy::{CapAction, CapScope, RoamingRule};
use lineup_testkit::portal::{Browser, PortalWorld};
use lineup_testkit::world::ADMIN;
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

async fn teammate(w: &PortalWorld, name: &str, team: TeamId) -> Employee {
    let new = NewEmployee {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        given_name: name.into(),
        family_name: "Field".into(),
        team_id: Some(team),
        cost_centre_id: None,
        manager_id: Some(w.maria.id),
    };
    w.lineup.add_employee(w.tenant, &ADMIN, new).await.unwrap()
}

async fn finance(w: &PortalWorld) -> Browser {
    let browser = w.signed_in(&w.email_for(Role::Finance)).await;
    browser.get("/policies").await.assert_ok();
    browser
}

both_backends!(
    a_cap_preview_counts_the_live_lines_it_governs_and_saving_is_audited,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let team = w.lineup.add_team(w.tenant, &ADMIN, "Field").await.unwrap();
        let bob = teammate(&w, "bob", team.id).await;
        teammate(&w, "carla", team.id).await;
        w.ready_line(&bob, "bob-1").await;
        let second = w.ready_line(&bob, "bob-2").await;
        w.ready_line(&w.ada, "ada-1").await;
        let gone = w.ready_line(&w.alan, "alan-1").await;
        w.lineup
            .terminate_line(w.tenant, &ADMIN, gone.id, None)
            .await
            .unwrap();
        let browser = finance(&w).await;
        let team_scope = format!("team:{}", team.id);

        let preview = browser
            .post(
                "/policies/caps/preview",
                &[
                    ("scope", &team_scope),
                    ("amount", "40"),
                    ("thresholds", "50, 90"),
                    ("action", "throttle"),
                ],
            )
            .await;
        preview
            .assert_ok()
            .assert_contains("This applies to <strong>2 live lines of 1 employee</strong> (2 active employees in scope)")
            .assert_contains("Team Field: 40.00 USD a month");
        assert!(
            w.lineup.budget_caps(w.tenant).await.unwrap().is_empty(),
            "a preview saves nothing"
        );

        // The whole organisation: Ada's and Bob's lines; Alan's terminated line does not count.
        let org = browser
            .post(
                "/policies/caps/preview",
                &[("scope", "tenant"), ("amount", "25"), ("action", "alert")],
            )
            .await;
        org.assert_contains("3 live lines of 2 employees</strong> (7 active employees in scope)");

        let saved = browser
            .post(
                "/policies/caps",
                &[
                    ("scope", &team_scope),
                    ("amount", "40.00"),
                    ("thresholds", "50, 90"),
                    ("action", "throttle"),
                ],
            )
            .await;
        assert_eq!(saved.redirected_to(), "/policies");
        let caps = w.lineup.budget_caps(w.tenant).await.unwrap();
        assert_eq!(caps.len(), 1);
        assert_eq!(caps[0].scope, CapScope::Team(team.id));
        assert_eq!(caps[0].amount_minor, 4000);
        assert_eq!(caps[0].thresholds, [50, 90]);
        assert_eq!(caps[0].action, CapAction::Throttle);
        let subject = format!("team:{}", team.id);
        assert_eq!(
            w.audit_actions("budget_cap", &subject).await,
            ["policy.budget_cap_set"]
        );
        browser
            .get("/policies")
            .await
            .assert_contains("Team Field")
            .assert_contains("40.00 USD")
            .assert_contains("50%, 90%")
            .assert_contains("slow data down");

        // With the team capped, the organisation's cap still adds up Bob's and Carla's lines:
        // every cap covering a line counts it.
        let org = browser
            .post(
                "/policies/caps/preview",
                &[("scope", "tenant"), ("amount", "25"), ("action", "alert")],
            )
            .await;
        org.assert_contains("3 live lines of 2 employees</strong> (7 active employees in scope)");
        // Saving the organisation's cap twice keeps one cap.
        for amount in ["25", "30"] {
            browser
                .post(
                    "/policies/caps",
                    &[("scope", "tenant"), ("amount", amount), ("action", "alert")],
                )
                .await
                .redirected_to();
        }
        let caps = w.lineup.budget_caps(w.tenant).await.unwrap();
        let org_caps: Vec<_> = caps
            .iter()
            .filter(|c| c.scope == CapScope::Tenant)
            .collect();
        assert_eq!(org_caps.len(), 1);
        assert_eq!(org_caps[0].amount_minor, 3000);
        assert_eq!(
            org_caps[0].thresholds,
            [50, 80, 100],
            "the default thresholds"
        );

        // One employee, by email.
        let ada = browser
            .post(
                "/policies/caps/preview",
                &[
                    ("scope", "employee"),
                    ("employee_email", "ADA@example.com"),
                    ("amount", "10"),
                    ("action", "suspend"),
                ],
            )
            .await;
        ada.assert_contains("1 live line of 1 employee</strong> (1 active employee in scope)");

        // Removing the team's cap: previewed, then removed and audited.
        w.lineup
            .terminate_line(w.tenant, &ADMIN, second.id, None)
            .await
            .unwrap();
        let removal = browser
            .post(
                "/policies/caps/preview",
                &[("scope", &team_scope), ("intent", "delete")],
            )
            .await;
        removal
            .assert_contains("Remove this cap?")
            .assert_contains("1 live line of 1 employee</strong>");
        let removed = browser
            .post("/policies/caps/delete", &[("scope", &team_scope)])
            .await;
        assert_eq!(removed.redirected_to(), "/policies");
        assert_eq!(w.lineup.budget_caps(w.tenant).await.unwrap().len(), 1);
        assert_eq!(
            w.audit_actions("budget_cap", &subject).await,
            ["policy.budget_cap_set", "policy.budget_cap_deleted"]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roaming_presets_are_previewed_saved_listed_and_removed() {
    let w = PortalWorld::new(sqlite_store().await).await;
    w.ready_line(&w.ada, "ada-1").await;
    w.ready_line(&w.alan, "alan-1").await;
    let browser = finance(&w).await;
    let preview = browser
        .post(
            "/policies/roaming/preview",
            &[("country", "fr"), ("rule", "blocked")],
        )
        .await;
    preview
        .assert_ok()
        .assert_contains("Roaming in FR: blocked?")
        .assert_contains("2 live lines of 2 employees</strong> (5 active employees in scope)");
    assert!(w.lineup.roaming_rules(w.tenant).await.unwrap().is_empty());
    let saved = browser
        .post(
            "/policies/roaming",
            &[("country", "FR"), ("rule", "blocked")],
        )
        .await;
    assert_eq!(saved.redirected_to(), "/policies");
    assert_eq!(
        w.lineup.roaming_rules(w.tenant).await.unwrap(),
        [("FR".to_owned(), RoamingRule::Blocked)]
    );
    browser
        .get("/policies")
        .await
        .assert_contains("<td>FR</td><td>blocked</td>");
    assert_eq!(
        w.audit_actions("roaming_preset", "FR").await,
        ["policy.roaming_rule_set"]
    );

    let removal = browser
        .post(
            "/policies/roaming/preview",
            &[("country", "FR"), ("intent", "delete")],
        )
        .await;
    removal.assert_contains("Remove the preset for FR?");
    browser
        .post("/policies/roaming/delete", &[("country", "FR")])
        .await
        .redirected_to();
    assert!(w.lineup.roaming_rules(w.tenant).await.unwrap().is_empty());
    assert_eq!(
        w.audit_actions("roaming_preset", "FR").await,
        ["policy.roaming_rule_set", "policy.roaming_rule_deleted"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_countries_amounts_and_thresholds_are_named_and_nothing_is_saved() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = finance(&w).await;
    for (country, path) in [
        ("XX", "/policies/roaming/preview"),
        ("UK", "/policies/roaming"),
        ("FRA", "/policies/roaming/preview"),
    ] {
        let answer = browser
            .post(path, &[("country", country), ("rule", "allowed")])
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{country}");
        answer
            .assert_contains(&format!(
                "country: &#34;{country}&#34; is not an ISO 3166 two-letter country code"
            ))
            .assert_contains(&format!("value=\"{country}\""));
    }
    let bad_rule = browser
        .post(
            "/policies/roaming",
            &[("country", "JP"), ("rule", "sometimes")],
        )
        .await;
    assert_eq!(bad_rule.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad_rule.assert_contains("rule: choose allowed");

    for (fields, named) in [
        (
            vec![("scope", "tenant"), ("amount", "lots"), ("action", "alert")],
            "amount: &#34;lots&#34; is not an amount in USD",
        ),
        (
            vec![("scope", "tenant"), ("amount", "-5"), ("action", "alert")],
            "amount: &#34;-5&#34; is not an amount in USD",
        ),
        (
            vec![
                ("scope", "tenant"),
                ("amount", "12.345"),
                ("action", "alert"),
            ],
            "amount: &#34;12.345&#34;",
        ),
        (
            vec![
                ("scope", "tenant"),
                ("amount", "40"),
                ("thresholds", "50, 150"),
                ("action", "alert"),
            ],
            "thresholds: &#34;150&#34; is not a percentage",
        ),
        (
            vec![("scope", "tenant"), ("amount", "40"), ("action", "explode")],
            "action: choose alert, throttle or suspend",
        ),
        (
            vec![
                ("scope", "employee"),
                ("employee_email", "nobody@example.com"),
                ("amount", "40"),
                ("action", "alert"),
            ],
            "employee_email: &#34;nobody@example.com&#34; is not an employee",
        ),
        (
            vec![
                ("scope", "team:not-a-team"),
                ("amount", "40"),
                ("action", "alert"),
            ],
            "scope: choose who the cap is for",
        ),
    ] {
        for path in ["/policies/caps/preview", "/policies/caps"] {
            let answer = browser.post(path, &fields).await;
            assert_eq!(
                answer.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {fields:?}"
            );
            answer.assert_contains(named);
        }
    }
    // A team of another organisation (or none at all) is not a scope here.
    let stranger = format!("team:{}", TeamId::new());
    let answer = browser
        .post(
            "/policies/caps",
            &[("scope", &stranger), ("amount", "40"), ("action", "alert")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("scope: that team, cost centre or employee is not in this organisation");
    assert!(w.lineup.budget_caps(w.tenant).await.unwrap().is_empty());
    assert!(w.lineup.roaming_rules(w.tenant).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_and_managers_see_policies_but_cannot_change_them() {
    let w = PortalWorld::new(sqlite_store().await).await;
    w.lineup
        .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Allowed)
        .await
        .unwrap();
    for role in [Role::Viewer, Role::Manager] {
        let browser = w.signed_in(&w.email_for(role)).await;
        let page = browser.get("/policies").await;
        page.assert_ok()
            .assert_contains("<td>JP</td><td>allowed</td>");
        assert!(
            !page.body.contains("/policies/caps/preview"),
            "{role:?} gets no forms"
        );
        for (path, fields) in [
            (
                "/policies/caps",
                vec![("scope", "tenant"), ("amount", "1"), ("action", "suspend")],
            ),
            (
                "/policies/roaming",
                vec![("country", "JP"), ("rule", "blocked")],
            ),
            ("/policies/roaming/delete", vec![("country", "JP")]),
        ] {
            let answer = browser.post(path, &fields).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{role:?} {path}");
        }
    }
    assert!(w.lineup.budget_caps(w.tenant).await.unwrap().is_empty());
    assert_eq!(
        w.lineup.roaming_rules(w.tenant).await.unwrap(),
        [("JP".to_owned(), RoamingRule::Allowed)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_policies_never_show() {
    let w = PortalWorld::new(sqlite_store().await).await;
    w.lineup
        .set_roaming_rule(w.globex, &ADMIN, "BR", RoamingRule::Blocked)
        .await
        .unwrap();
    let browser = finance(&w).await;
    let page = browser.get("/policies").await;
    assert!(!page.body.contains("BR"));
    // Naming globex's employee as a cap scope is as good as naming nobody.
    let answer = browser
        .post(
            "/policies/caps/preview",
            &[
                ("scope", &format!("employee:{}", w.gina.id)),
                ("amount", "5"),
                ("action", "alert"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("not in this organisation");
}

both_backends!(
    a_cap_preview_says_what_saving_does_at_once_and_saving_does_it,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let ada = w.active_line(&w.ada, "ada-spent").await;
        // 11 GB on Europe 10GB this month: 25.00 + 10.00 over = 35.00.
        let usage = lineup_testkit::portal::usage_record(
            &ada,
            "ada-11gb",
            std::time::Duration::from_secs(1),
            11 * lineup_core::money::Bytes::GB,
            "US",
        );
        w.lineup.record_usage(w.tenant, &[usage]).await.unwrap();
        let browser = finance(&w).await;
        let cap = [
            ("scope", "employee"),
            ("employee_email", "ada@example.com"),
            ("amount", "30"),
            ("thresholds", "50"),
            ("action", "suspend"),
        ];
        browser
            .post("/policies/caps/preview", &cap)
            .await
            .assert_ok()
            .assert_contains("1 live line of 1 employee</strong>")
            .assert_contains("it raises 2 alerts and suspends 1 line.");
        let line = w.lineup.line(w.tenant, ada.id).await.unwrap();
        assert_eq!(
            line.state,
            lineup_core::lines::line::LineState::Active,
            "a preview does nothing"
        );

        let saved = browser.post("/policies/caps", &cap).await;
        assert_eq!(saved.redirected_to(), "/policies");
        let line = w.lineup.line(w.tenant, ada.id).await.unwrap();
        assert_eq!(line.state, lineup_core::lines::line::LineState::Suspended);
        browser
            .get("/policies")
            .await
            .assert_contains("it raises 2 alerts and suspends 1 line");

        // Raised above the spend: previewed as giving the line back, and it does.
        let mut raised = cap;
        raised[2] = ("amount", "40");
        browser
            .post("/policies/caps/preview", &raised)
            .await
            .assert_contains("it gives back 1 line.");
        browser
            .post("/policies/caps", &raised)
            .await
            .redirected_to();
        let line = w.lineup.line(w.tenant, ada.id).await.unwrap();
        assert_eq!(line.state, lineup_core::lines::line::LineState::Active);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_policy_is_one_click_while_there_are_no_caps() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = finance(&w).await;
    browser
        .get("/policies")
        .await
        .assert_contains("Use the starter policy")
        .assert_contains("a cap of 50.00 USD a month, alerting at 80%");
    let applied = browser.post("/policies/starter", &[]).await;
    assert_eq!(applied.redirected_to(), "/policies");
    let caps = w.lineup.budget_caps(w.tenant).await.unwrap();
    assert!(!caps.is_empty());
    assert!(w.lineup.has_policy(w.tenant).await.unwrap());
    let page = browser.get("/policies").await;
    page.assert_contains("Starter policy applied");
    assert!(
        !page.body.contains("Use the starter policy"),
        "offered only while there are no caps"
    );

    // Posted again (a second tab): refused with the reason, nothing new.
    browser.post("/policies/starter", &[]).await.redirected_to();
    browser
        .get("/policies")
        .await
        .assert_contains("Not applied: this organisation already has budget caps");
    assert_eq!(
        w.lineup.budget_caps(w.tenant).await.unwrap().len(),
        caps.len()
    );

    // Viewers cannot apply it.
    let viewer = w.signed_in(&w.email_for(Role::Viewer)).await;
    let refused = viewer.post("/policies/starter", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.lineup.budget_caps(w.tenant).await.unwrap().len(),
        caps.len()
    );
}
