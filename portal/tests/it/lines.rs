//! Lines in the portal, end to end against the provider simulator: issuing (once, however
//! often the form is sent), revealing the activation code (owners and admins only, audited,
//! never once installed), lifecycle actions behind confirmations, provider failures and
//! retry, managers' view, and tenant isolation.

use lineup_core::identity::user::Role;
use lineup_core::lines::activation_code::ActivationCode;
use lineup_core::lines::line::LineState;
use lineup_core::lines::line::activation::Revealer;
use lineup_portal::SiteKind;
use lineup_testkit::fake_smtp::FakeSmtp;
use lineup_testkit::portal::{BASE_DOMAIN, Browser, PortalWorld, fail_next_order, input_value};
use lineup_testkit::world::ADMIN;
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;
use serde_json::json;

async fn admin(w: &PortalWorld) -> Browser {
    w.signed_in(&w.email_for(Role::Admin)).await
}

/// Open the issue form and send it for `who`; returns the form's fields so a test can send
/// them again.
async fn issue_form(browser: &Browser, w: &PortalWorld, who: &str) -> Vec<(String, String)> {
    let form = browser.get("/lines/new").await;
    form.assert_ok().assert_contains("Issue an eSIM");
    let key = input_value(&form.body, "issue_key").expect("the form carries a one-time key");
    let employee = [&w.ada, &w.alan, &w.maria, &w.fiona, &w.olivia]
        .into_iter()
        .find(|e| e.given_name.to_lowercase() == who)
        .unwrap();
    vec![
        ("employee_id".into(), employee.id.to_string()),
        ("plan_id".into(), w.plans[0].id.to_string()),
        ("issue_key".into(), key),
    ]
}

async fn post(
    browser: &Browser,
    path: &str,
    fields: &[(String, String)],
) -> lineup_testkit::portal::Response {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(path, &fields).await
}

/// Issue for `who` through the form and follow the redirect: the line's path and page.
async fn issue_and_follow(
    browser: &Browser,
    w: &PortalWorld,
    who: &str,
) -> (String, lineup_testkit::portal::Response) {
    let fields = issue_form(browser, w, who).await;
    let answer = post(browser, "/lines", &fields).await;
    let location = answer.redirected_to().to_owned();
    let page = browser.get(&location).await;
    (location, page)
}

/// GET the confirmation page of `action`, then POST it; returns both answers.
async fn confirm_and_do(
    browser: &Browser,
    line: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> (
    lineup_testkit::portal::Response,
    lineup_testkit::portal::Response,
) {
    let page = browser.get(&format!("/lines/{line}/{action}")).await;
    page.assert_ok();
    let key = input_value(&page.body, "command_key").expect("a one-time command key");
    let mut fields = vec![("command_key", key.as_str())];
    fields.extend_from_slice(extra);
    let done = browser
        .post(&format!("/lines/{line}/{action}"), &fields)
        .await;
    (page, done)
}

both_backends!(
    issuing_from_the_portal_offers_the_code_behind_a_reveal_and_a_double_submit_makes_one_line,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let browser = admin(&w).await;
        let fields = issue_form(&browser, &w, "ada").await;
        let first = post(&browser, "/lines", &fields).await;
        let location = first.redirected_to().to_owned();
        assert!(location.starts_with("/lines/"), "{location}");
        // The browser retries, or the admin clicks twice: the same line, no second order.
        let again = post(&browser, "/lines", &fields).await;
        assert_eq!(again.redirected_to(), location);

        let lines = w.lineup.lines(w.tenant).await.unwrap();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.state, LineState::Ready);
        let stats = w.stats().await;
        assert_eq!(stats["subscriptions"]["total"], 1, "{stats}");
        assert_eq!(stats["orders"]["total"], 1, "{stats}");

        let page = browser.get(&location).await;
        page.assert_ok()
            .assert_contains(&line.iccid.as_ref().unwrap().to_string())
            .assert_contains("The eSIM is ready")
            .assert_contains(&format!("action=\"{location}/reveal\""))
            .assert_contains("Reveal activation code");
        assert!(
            !page.body.contains("LPA:1$"),
            "the code waits for an explicit reveal"
        );
        assert!(
            !page.body.contains("http-equiv=\"refresh\""),
            "a ready line does not refresh"
        );
        let revealed = browser.post(&format!("{location}/reveal"), &[]).await;
        let code = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await
            .unwrap();
        revealed
            .assert_ok()
            .assert_contains("data:image/png;base64,")
            .assert_contains(&code.lpa_string())
            .assert_contains(&code.smdp_address)
            .assert_contains(&code.matching_id)
            .assert_contains("iPhone")
            .assert_contains("Android");
        // Its history comes from the audit log.
        page.assert_contains("Requested")
            .assert_contains("Provisioned");

        let listing = browser.get("/lines").await;
        listing
            .assert_ok()
            .assert_contains("Ada Tester")
            .assert_contains(&w.plans[0].name)
            .assert_contains("1 line");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_an_employee_or_key_is_named_and_issues_nothing() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = admin(&w).await;
    let mut fields = issue_form(&browser, &w, "ada").await;
    fields[0].1 = String::new();
    let answer = post(&browser, "/lines", &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("employee_id: choose the employee");
    fields[0].1 = w.ada.id.to_string();
    fields[2].1 = String::new();
    let answer = post(&browser, "/lines", &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("issue_key");
    assert!(w.lineup.lines(w.tenant).await.unwrap().is_empty());
    assert_eq!(w.stats().await["orders"]["total"], 0);
}

both_backends!(
    suspend_resume_transfer_and_terminate_each_confirm_first_and_are_audited,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let line = w.active_line(&w.ada, "line-actions").await;
        let id = line.id.to_string();
        let browser = admin(&w).await;
        let orders = || async { w.stats().await["orders"]["total"].as_u64().unwrap() };
        let before = orders().await;

        // The confirmation page changes nothing.
        let (page, done) = confirm_and_do(&browser, &id, "suspend", &[]).await;
        page.assert_contains("Data and calls stop");
        assert_eq!(done.redirected_to(), format!("/lines/{id}"));
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Suspended
        );
        assert_eq!(orders().await, before + 1);

        // Sending the same confirmation again does not place a second order.
        let key = input_value(&page.body, "command_key").unwrap();
        let again = browser
            .post(&format!("/lines/{id}/suspend"), &[("command_key", &key)])
            .await;
        assert_eq!(again.redirected_to(), format!("/lines/{id}"));
        assert_eq!(orders().await, before + 1);

        let (page, _) = confirm_and_do(&browser, &id, "resume", &[]).await;
        page.assert_contains("work again");
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Active
        );

        let alan = w.alan.id.to_string();
        let (page, done) = confirm_and_do(&browser, &id, "transfer", &[("target", &alan)]).await;
        page.assert_contains("Alan Tester");
        done.redirected_to();
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().employee_id,
            w.alan.id
        );

        let (page, done) = confirm_and_do(&browser, &id, "terminate", &[]).await;
        page.assert_contains("cannot be undone");
        done.redirected_to();
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Terminated
        );

        let actions = w.audit_actions("line", &id).await;
        for expected in [
            "line.suspended",
            "line.resumed",
            "line.transferred",
            "line.terminated",
        ] {
            assert!(
                actions.contains(&expected.to_owned()),
                "{expected} in {actions:?}"
            );
        }
        let page = browser.get(&format!("/lines/{id}")).await;
        page.assert_ok()
            .assert_contains("Suspended")
            .assert_contains("Transferred</td><td>to Alan Tester")
            .assert_contains("Terminated")
            .assert_contains("<td>admin</td>");
        // A terminated line offers nothing more, and asking anyway is refused with why.
        assert!(!page.body.contains(&format!("/lines/{id}/suspend")));
        let refused = browser.get(&format!("/lines/{id}/resume")).await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        refused.assert_contains("terminated line");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_plan_goes_through_the_provider() {
    let w = PortalWorld::new(sqlite_store().await).await;
    assert!(w.plans.len() > 1, "the simulator offers several plans");
    let line = w.active_line(&w.ada, "plan-change").await;
    let id = line.id.to_string();
    let browser = admin(&w).await;
    let target = w.plans[1].id.to_string();
    let (page, done) = confirm_and_do(&browser, &id, "change-plan", &[("target", &target)]).await;
    page.assert_contains(&w.plans[1].name);
    done.redirected_to();
    assert_eq!(
        w.lineup.line(w.tenant, line.id).await.unwrap().plan_id,
        w.plans[1].id
    );
    assert!(
        w.audit_actions("line", &id)
            .await
            .contains(&"line.plan_changed".to_owned())
    );
    browser
        .get(&format!("/lines/{id}"))
        .await
        .assert_contains(&format!("Plan changed</td><td>to {}", w.plans[1].name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failure_is_explained_and_a_retry_issues_the_esim() {
    let w = PortalWorld::new(sqlite_store().await).await;
    fail_next_order(&w, "activate_subscription", "PROVISIONING_FAILED").await;
    let browser = admin(&w).await;
    let (location, page) = issue_and_follow(&browser, &w, "ada").await;
    page.assert_ok()
        .assert_contains("The eSIM could not be issued")
        .assert_contains("PROVISIONING_FAILED")
        .assert_contains("Retry issuing");
    let id = location.trim_start_matches("/lines/").to_owned();

    let (confirm, done) = confirm_and_do(&browser, &id, "retry", &[]).await;
    confirm.assert_contains("no second subscription");
    assert_eq!(done.redirected_to(), location);
    let page = browser.get(&location).await;
    page.assert_contains("Reveal activation code");
    let lines = w.lineup.lines(w.tenant).await.unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].state, LineState::Ready);

    // A suspend the provider refuses says so, and leaves the line as it was.
    fail_next_order(&w, "suspend_subscription", "SUSPEND_REJECTED").await;
    let active = w.active_line(&w.alan, "to-suspend").await;
    let (_, failed) = confirm_and_do(&browser, &active.id.to_string(), "suspend", &[]).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    failed
        .assert_contains("The provider did not answer as expected")
        .assert_contains("SUSPEND_REJECTED");
    assert_eq!(
        w.lineup.line(w.tenant, active.id).await.unwrap().state,
        LineState::Active
    );
}

both_backends!(
    the_directory_filters_and_pages_in_sql_and_managers_see_only_their_tree,
    |store| async move {
        let w = PortalWorld::new(store).await;
        w.ready_line(&w.ada, "ada-1").await;
        w.ready_line(&w.alan, "alan-1").await;
        let fiona_line = w.ready_line(&w.fiona, "fiona-1").await;

        let owner = w.signed_in(&w.olivia.email.to_string()).await;
        let all = owner.get("/lines").await;
        all.assert_ok().assert_contains("3 lines");
        let alan = owner.get("/lines?q=ALAN").await;
        alan.assert_contains("Alan Tester")
            .assert_contains("1 line");
        assert!(!alan.body.contains("Ada Tester"));
        let by_email = owner.get("/lines?q=fiona%40example").await;
        by_email
            .assert_contains("Fiona Tester")
            .assert_contains("1 line");
        let none = owner.get("/lines?state=suspended").await;
        none.assert_contains("0 lines");
        let plan = owner
            .get(&format!("/lines?state=ready&plan={}", w.plans[0].id))
            .await;
        plan.assert_contains("3 lines");
        let bad = owner.get("/lines?state=sleeping").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.assert_contains("state");

        // Maria manages Ada and Alan: she sees their lines, not Fiona's.
        let maria = w.signed_in(&w.maria.email.to_string()).await;
        let mine = maria.get("/lines").await;
        mine.assert_contains("2 lines")
            .assert_contains("Ada Tester");
        assert!(!mine.body.contains("Fiona"));
        let hidden = maria.get(&format!("/lines/{}", fiona_line.id)).await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        // And she cannot act on lines at all.
        let refused = maria.get("/lines/new").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_page_of_lines_pages() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let mut people = Vec::new();
    for i in 0..55 {
        people.push(
            lineup_testkit::world::add_employee(&w.lineup, w.tenant, &format!("p{i:02}"), None)
                .await,
        );
    }
    let mut issuing = tokio::task::JoinSet::new();
    for person in people {
        let lineup = w.lineup.clone();
        let (tenant, plan) = (w.tenant, w.plans[0].id);
        issuing.spawn(async move {
            let cmd = lineup_core::lines::line::commands::IssueLine {
                employee_id: person.id,
                plan_id: plan,
                issue_key: format!("bulk-{}", person.id),
            };
            lineup.issue_line(tenant, &ADMIN, cmd).await.unwrap();
        });
    }
    while issuing.join_next().await.is_some() {}
    let browser = admin(&w).await;
    let first = browser.get("/lines").await;
    first
        .assert_contains("55 lines")
        .assert_contains("page 1 of 2");
    assert_eq!(first.body.matches("<tr>").count(), 1 + 50);
    let second = browser.get("/lines?page=2").await;
    second.assert_contains("page 2 of 2");
    assert_eq!(second.body.matches("<tr>").count(), 1 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_globex_line_is_not_found_from_acme_and_never_listed() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let gina_line = w
        .lineup
        .issue_line(
            w.globex,
            &ADMIN,
            lineup_core::lines::line::commands::IssueLine {
                employee_id: w.gina.id,
                plan_id: w.lineup.sync_plans(w.globex, &ADMIN).await.unwrap()[0].id,
                issue_key: "gina-1".into(),
            },
        )
        .await
        .unwrap();
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let id = gina_line.id.to_string();
    for path in [
        format!("/lines/{id}"),
        format!("/lines/{id}/suspend"),
        format!("/lines/{id}/terminate"),
    ] {
        let answer = owner.get(&path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!answer.body.contains("Gina"), "{path}");
    }
    let answer = owner
        .post(
            &format!("/lines/{id}/terminate"),
            &[("command_key", "0123456789abcdef0123")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.lineup.line(w.globex, gina_line.id).await.unwrap().state,
        LineState::Ready
    );
    let listing = owner.get("/lines?q=gina").await;
    listing.assert_contains("0 lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_lines_but_no_actions() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let line = w.ready_line(&w.ada, "viewer-1").await;
    let viewer = w.signed_in(&w.email_for(Role::Viewer)).await;
    let page = viewer.get(&format!("/lines/{}", line.id)).await;
    page.assert_ok().assert_contains("Ada Tester");
    assert!(!page.body.contains("/terminate"));
    let refused = viewer
        .post(
            &format!("/lines/{}/terminate", line.id),
            &[("command_key", "0123456789abcdef0123")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.lineup.line(w.tenant, line.id).await.unwrap().state,
        LineState::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_shows_a_provisioning_page_that_refreshes_itself() {
    let w = PortalWorld::new(sqlite_store().await).await;
    w.sim(
        reqwest::Method::PUT,
        "/_sim/config",
        Some(json!({"order_delay_ms": {"min": 60_000, "max": 60_000}})),
    )
    .await;
    let browser = admin(&w).await;
    let (_, page) = issue_and_follow(&browser, &w, "ada").await;
    page.assert_ok()
        .assert_contains("<meta http-equiv=\"refresh\" content=\"3\">")
        .assert_contains("The provider is issuing this eSIM")
        .assert_contains("provisioning");
    assert!(!page.body.contains("data:image/png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_page_numbers_out_of_range_are_refused_clearly() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = w.signed_in(&w.email_for(Role::Admin)).await;
    for page in [
        "9223372036854775807",
        "184467440737095517",
        "1000001",
        "0",
        "-3",
        "two",
    ] {
        let answer = browser.get(&format!("/lines?page={page}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "page={page}"
        );
        answer.assert_contains("is not a page number from 1 to 1000000");
    }
    // The highest page accepted is simply empty.
    browser.get("/lines?page=1000000").await.assert_ok();
}

/// Everything an activation code could be copied from: the LPA string and its matching id.
fn secrets_of(code: &ActivationCode) -> [String; 2] {
    [code.lpa_string(), code.matching_id.clone()]
}

both_backends!(
    every_role_walks_every_page_and_only_owners_and_admins_ever_get_a_code,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let ready = w.ready_line(&w.ada, "walk-ready").await;
        // Alan's code is read while his line is ready, then the profile is installed.
        let alans = w.ready_line(&w.alan, "walk-active").await;
        let holder = |who: &lineup_core::organisation::employee::Employee, id| {
            w.lineup
                .reveal_activation_code(w.tenant, Revealer::Holder(who.id), id)
        };
        let ready_code = holder(&w.ada, ready.id).await.unwrap();
        let active_code = holder(&w.alan, alans.id).await.unwrap();
        let active = w.active_line(&w.alan, "walk-active").await;
        assert_eq!(active.id, alans.id);
        let mut codes = secrets_of(&ready_code).to_vec();
        codes.extend(secrets_of(&active_code));
        let ready_page = format!("/lines/{}", ready.id);
        let active_page = format!("/lines/{}", active.id);
        let reveals = || async {
            w.lineup
                .line_history(w.tenant, ready.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == "line.activation_code_revealed")
                .collect::<Vec<_>>()
        };
        // Every GET the portal serves to a tenant, read from the one route table, so a page
        // added later is walked too; each placeholder becomes every value worth trying.
        let line_ids = [ready.id.to_string(), active.id.to_string()];
        let employee_ids = [w.ada.id.to_string(), w.alan.id.to_string()];
        let line_actions = [
            "change-plan",
            "suspend",
            "resume",
            "transfer",
            "terminate",
            "retry",
            "reveal",
        ];
        let made_up = [uuid::Uuid::new_v4().to_string()];
        let mut pages = Vec::new();
        for route in lineup_portal::ROUTES
            .iter()
            .filter(|r| r.site == SiteKind::Tenant && r.method == "GET")
        {
            let mut paths = vec![route.path.to_owned()];
            for (placeholder, values) in [
                (
                    "{id}",
                    if route.path.starts_with("/lines/") {
                        &line_ids[..]
                    } else if route.path.starts_with("/employees/") {
                        &employee_ids[..]
                    } else {
                        &made_up[..]
                    },
                ),
                ("{action}", &line_actions.map(str::to_owned)[..]),
                ("{token}", &made_up[..]),
                ("{upload}", &made_up[..]),
            ] {
                paths = paths
                    .iter()
                    .flat_map(|path| {
                        if path.contains(placeholder) {
                            values
                                .iter()
                                .map(|v| path.replace(placeholder, v))
                                .collect()
                        } else {
                            vec![path.clone()]
                        }
                    })
                    .collect();
            }
            assert!(
                paths.iter().all(|p| !p.contains('{')),
                "a placeholder in {} has no value to walk with",
                route.path
            );
            pages.extend(paths);
        }
        assert!(pages.len() > 30, "{pages:?}");
        let mut revealers = Vec::new();
        for role in Role::ALL {
            let browser = w.signed_in(&w.email_for(role)).await;
            let may_reveal = matches!(role, Role::Owner | Role::Admin);
            let mut shown = 0;
            for path in &pages {
                let answer = browser.get(path).await;
                for secret in &codes {
                    assert!(!answer.body.contains(secret), "{role:?} GET {path}");
                }
                shown += usize::from(answer.status == StatusCode::OK);
            }
            // The walk reads real pages, not a wall of 404s (made-up ids and actions a line is
            // not in the state for are the rest).
            if role == Role::Owner {
                assert!(
                    shown * 3 >= pages.len() * 2,
                    "{shown} of {} pages",
                    pages.len()
                );
            }

            let page = browser.get(&ready_page).await;
            page.assert_ok();
            assert_eq!(
                page.body.contains("Reveal activation code"),
                may_reveal,
                "{role:?}"
            );
            if !may_reveal {
                page.assert_contains("Only owners and admins can see the activation code");
            }
            let before = reveals().await.len();
            let revealed = browser.post(&format!("{ready_page}/reveal"), &[]).await;
            if may_reveal {
                revealed
                    .assert_ok()
                    .assert_contains(&ready_code.lpa_string())
                    .assert_contains("data:image/png;base64,");
                assert_eq!(revealed.headers["cache-control"], "no-store", "{role:?}");
                let after = reveals().await;
                assert_eq!(
                    after.len(),
                    before + 1,
                    "{role:?}: one audit event per reveal"
                );
                let event = after.last().unwrap();
                assert!(event.actor.starts_with("user:"), "{}", event.actor);
                assert_eq!(
                    event.after.as_ref().unwrap()["employee_id"],
                    json!(w.ada.id)
                );
                revealers.push(event.actor.clone());
            } else {
                assert_eq!(revealed.status, StatusCode::FORBIDDEN, "{role:?}");
                assert_eq!(reveals().await.len(), before, "{role:?}");
            }
            for secret in secrets_of(&ready_code) {
                assert_eq!(revealed.body.contains(&secret), may_reveal, "{role:?}");
            }

            // Installed on a device: nothing to reveal for anyone, and the page says why.
            let page = browser.get(&active_page).await;
            page.assert_ok()
                .assert_contains("installed on a device")
                .assert_contains("SIM swap");
            assert!(!page.body.contains("Reveal activation code"), "{role:?}");
            let refused = browser.post(&format!("{active_page}/reveal"), &[]).await;
            let expected = if may_reveal {
                StatusCode::CONFLICT
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(refused.status, expected, "{role:?}: {}", refused.body);
            for secret in &codes {
                assert!(!refused.body.contains(secret), "{role:?}");
            }
        }
        // The owner's and the admin's reveals, each under their own name.
        assert_eq!(revealers.len(), 2);
        assert_ne!(revealers[0], revealers[1]);
        // The history on the page shows the reveals, without the code.
        let owner = w.signed_in(&w.email_for(Role::Owner)).await;
        owner
            .get(&ready_page)
            .await
            .assert_contains("Activation code revealed");
    }
);

const INITECH: [(&str, &str); 6] = [
    ("organisation", "Initech"),
    ("slug", "initech"),
    ("currency", "usd"),
    ("name", "Bill Lumbergh"),
    ("email", "bill@initech.example"),
    ("password", "yeah if you could sign in"),
];

/// Initech signs up on the bare domain, confirms its email and signs in: a company an
/// operator never set up, so it may not use the server's provider account.
async fn signed_up_initech(w: &PortalWorld) -> (Browser, lineup_core::ids::TenantId) {
    let smtp = FakeSmtp::start().await;
    let root = w.browser(BASE_DOMAIN);
    root.get("/signup").await.assert_ok();
    root.post("/signup", &INITECH)
        .await
        .assert_contains("Check your email");
    w.deliver_mail(&smtp).await;
    let link = smtp.wait_for("bill@initech.example").await.link().unwrap();
    let initech = w.browser(&format!("initech.{BASE_DOMAIN}"));
    initech.open_link(&link).await;
    initech
        .sign_in("bill@initech.example", "yeah if you could sign in")
        .await;
    let tenant = w
        .lineup
        .tenant_by_slug(&lineup_core::organisation::tenant::Slug::parse("initech").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    (initech, tenant)
}

async fn stored_connection(
    w: &PortalWorld,
    tenant: lineup_core::ids::TenantId,
) -> Option<lineup_core::store::provider_connections::ConnectionRow> {
    let mut tx = w.store.tenant(tenant).await.unwrap();
    lineup_core::store::provider_connections::get(&mut tx, tenant)
        .await
        .unwrap()
}

async fn audit_count(w: &PortalWorld, tenant: lineup_core::ids::TenantId) -> i64 {
    let mut tx = w.store.tenant(tenant).await.unwrap();
    lineup_core::store::audit::count(&mut tx, tenant)
        .await
        .unwrap()
}

both_backends!(
    a_signed_up_company_connects_its_own_provider_before_it_can_issue_lines,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (initech, tenant) = signed_up_initech(&w).await;

        // No provider yet: Issue a line says what to do instead of offering an empty list.
        let form = initech.get("/lines/new").await;
        form.assert_ok()
            .assert_contains("Connect your provider account first")
            .assert_contains("href=\"/settings/provider\"");
        assert!(
            !form.body.contains("name=\"plan_id\""),
            "no empty plan list"
        );
        initech
            .get("/settings/provider")
            .await
            .assert_ok()
            .assert_contains("Connect your provider account")
            .assert_contains("API credentials");

        // Wrong secret, or an account these credentials do not have: the reason, nothing kept.
        let trial = w.sim.trial_account();
        let audited = audit_count(&w, tenant).await;
        for (secret, account, reason) in [
            (
                "not-the-secret",
                trial.account_id.as_str(),
                "the provider refused these credentials (client id or secret is wrong)",
            ),
            (
                trial.client_secret.as_str(),
                "acc_nope",
                "the provider has no account acc_nope for these credentials",
            ),
        ] {
            let refused = initech
                .post(
                    "/settings/provider",
                    &[
                        ("client_id", trial.client_id.as_str()),
                        ("client_secret", secret),
                        ("account_id", account),
                    ],
                )
                .await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                refused.body
            );
            refused.assert_contains(reason);
            assert!(!refused.body.contains(secret), "the secret is not echoed");
        }
        assert!(
            stored_connection(&w, tenant).await.is_none(),
            "nothing stored"
        );
        assert_eq!(audit_count(&w, tenant).await, audited, "nothing audited");
        assert!(w.lineup.plans(tenant).await.unwrap().is_empty());

        // The right ones: stored sealed, audited without the secret, plans synced at once.
        let connected = initech
            .post(
                "/settings/provider",
                &[
                    ("client_id", trial.client_id.as_str()),
                    ("client_secret", trial.client_secret.as_str()),
                    ("account_id", trial.account_id.as_str()),
                ],
            )
            .await;
        assert_eq!(connected.redirected_to(), "/settings/provider");
        let row = stored_connection(&w, tenant).await.expect("stored");
        assert!(
            row.client_secret.starts_with("sealed:v1:"),
            "{}",
            row.client_secret
        );
        assert!(!row.client_secret.contains(&trial.client_secret));
        assert_eq!(row.account_id, trial.account_id);
        let events = w
            .audit_in(tenant, "provider_connection", &row.id.to_string())
            .await;
        assert_eq!(events, ["provider.connected"]);
        let mut tx = w.store.tenant(tenant).await.unwrap();
        let logged = lineup_core::store::audit::list_for_subject(
            &mut tx,
            tenant,
            "provider_connection",
            &row.id.to_string(),
        )
        .await
        .unwrap();
        drop(tx);
        assert!(
            !serde_json::to_string(&logged[0].after)
                .unwrap()
                .contains(&trial.client_secret)
        );

        let plans = w.lineup.plans(tenant).await.unwrap();
        assert!(!plans.is_empty());
        let page = initech.get("/settings/provider").await;
        page.assert_ok()
            .assert_contains(&trial.account_id)
            .assert_contains(&format!("/provider/webhooks/{}", row.id));
        for plan in &plans {
            page.assert_contains(&plan.name);
            if let Some(price) = plan.price {
                page.assert_contains(&price.to_string());
            }
        }
        assert!(!page.body.contains(&trial.client_secret));
        let form = initech.get("/lines/new").await;
        form.assert_ok().assert_contains("name=\"plan_id\"");
        form.assert_contains(&plans[0].name);

        // Replacing keeps the webhook URL and secret; disconnecting brings the step back.
        let replaced = initech
            .post(
                "/settings/provider",
                &[
                    ("client_id", trial.client_id.as_str()),
                    ("client_secret", trial.client_secret.as_str()),
                    ("account_id", trial.account_id.as_str()),
                ],
            )
            .await;
        assert_eq!(replaced.redirected_to(), "/settings/provider");
        let again = stored_connection(&w, tenant).await.unwrap();
        assert_eq!((again.id, again.version), (row.id, row.version + 1));
        assert_eq!(again.webhook_secret, row.webhook_secret);
        initech.get("/settings/provider").await.assert_ok();
        let gone = initech.post("/settings/provider/disconnect", &[]).await;
        assert_eq!(gone.redirected_to(), "/settings/provider");
        assert!(stored_connection(&w, tenant).await.is_none());
        assert_eq!(
            w.audit_in(tenant, "provider_connection", &row.id.to_string())
                .await,
            [
                "provider.connected",
                "provider.replaced",
                "provider.disconnected"
            ]
        );
        initech
            .get("/lines/new")
            .await
            .assert_ok()
            .assert_contains("Connect your provider account first");

        // Another organisation's admins see their own provider page, never this one.
        let acme = admin(&w).await;
        let theirs = acme.get("/settings/provider").await;
        assert!(!theirs.body.contains(&trial.account_id));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_company_without_plans_is_offered_a_sync_instead_of_an_empty_list() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    for plan in &w.plans {
        lineup_core::store::plans::retire(&mut tx, w.tenant, plan.id)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let browser = admin(&w).await;
    let form = browser.get("/lines/new").await;
    form.assert_ok()
        .assert_contains("no plans are synced yet")
        .assert_contains("action=\"/settings/provider/sync\"");
    assert!(!form.body.contains("name=\"plan_id\""));
    let synced = browser.post("/settings/provider/sync", &[]).await;
    assert_eq!(synced.redirected_to(), "/settings/provider");
    browser
        .get("/lines/new")
        .await
        .assert_ok()
        .assert_contains("name=\"plan_id\"");
}

both_backends!(
    the_overview_walks_a_new_company_through_its_first_day_and_then_steps_aside,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (initech, tenant) = signed_up_initech(&w).await;
        let steps = [
            "Connect your mobile provider",
            "Import your people",
            "Connect Slack, Teams or Discord",
            "Set a policy",
            "Issue the first line",
        ];
        let overview = initech.get("/").await;
        overview.assert_ok().assert_contains("Getting started");
        for (step, href) in steps.iter().zip([
            "/settings/provider",
            "/employees/import",
            "/settings/chat",
            "/policies",
            "/lines/new",
        ]) {
            overview.assert_contains(&format!("<a href=\"{href}\">{step}</a>"));
        }
        assert!(!overview.body.contains("aria-label=\"done\""));

        // Each step ticks itself from the state it needs, in any order.
        let trial = w.sim.trial_account();
        initech
            .post(
                "/settings/provider",
                &[
                    ("client_id", trial.client_id.as_str()),
                    ("client_secret", trial.client_secret.as_str()),
                    ("account_id", trial.account_id.as_str()),
                ],
            )
            .await;
        let overview = initech.get("/").await;
        overview.assert_contains("<s>Connect your mobile provider</s>");
        overview.assert_contains("<a href=\"/employees/import\">Import your people</a> <span class=\"muted\">· next</span>");

        let person = lineup_testkit::world::add_employee(&w.lineup, tenant, "peter", None).await;
        initech.post("/policies/starter", &[]).await;
        w.lineup
            .install_workspace(
                tenant,
                &ADMIN,
                lineup_core::messaging::chat::Platform::Slack,
                "TINITECH",
                Some("UBOT"),
                "xoxb-initech",
            )
            .await
            .unwrap();
        let overview = initech.get("/").await;
        for step in &steps[..4] {
            overview.assert_contains(&format!("<s>{step}</s>"));
        }
        overview.assert_contains("<a href=\"/lines/new\">Issue the first line</a>");

        let form = initech.get("/lines/new").await;
        let plan = w.lineup.plans(tenant).await.unwrap()[0].id.to_string();
        let key = input_value(&form.body, "issue_key").expect("issue key");
        initech
            .post(
                "/lines",
                &[
                    ("employee_id", person.id.to_string().as_str()),
                    ("plan_id", plan.as_str()),
                    ("issue_key", key.as_str()),
                ],
            )
            .await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let overview = initech.get("/").await;
            overview.assert_ok();
            if !overview.body.contains("Getting started") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the checklist should go once the line is issued: {}",
                overview.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }

        // Only people who can act on it see it: acme's viewer never does, its admin does.
        let viewer = w.signed_in("viewer@example.com").await;
        let page = viewer.get("/").await;
        page.assert_ok();
        assert!(!page.body.contains("Getting started"));
        w.signed_in("admin@example.com")
            .await
            .get("/")
            .await
            .assert_contains("Getting started");
    }
);
