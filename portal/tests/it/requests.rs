//! Deciding requests in the portal: the same core decision as chat (exactly once, by an
//! authorised approver only), the context to decide, fulfilment after approval, the hand-off
//! to the chat side, and tenant isolation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lineup_core::identity::user::Role;
use lineup_core::ids::{RequestId, TenantId};
use lineup_core::lines::request::commands::SubmitRequest;
use lineup_core::lines::request::{Request, RequestDetails, RequestState};
use lineup_core::organisation::employee::Employee;
use lineup_portal::{Portal, PortalConfig, RequestEvents, portal_router};
use lineup_testkit::portal::{BASE_DOMAIN, Browser, PASSWORD, PortalWorld};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

async fn ask_for_a_line(w: &PortalWorld, tenant: TenantId, who: &Employee, plan: usize) -> Request {
    let plans = w.lineup.plans(tenant).await.unwrap();
    let cmd = SubmitRequest {
        requester: who.id,
        details: RequestDetails::NewLine {
            plan_id: plans[plan].id,
            wanted_date: None,
        },
        reason: "field work next week".into(),
        dedupe_key: format!("ask-{}", who.id),
    };
    let submitted = w.lineup.submit_request(tenant, cmd).await.unwrap();
    assert_eq!(submitted.request.state, RequestState::Pending);
    submitted.request
}

async fn state_of(w: &PortalWorld, tenant: TenantId, id: RequestId) -> RequestState {
    w.lineup.request(tenant, id).await.unwrap().state
}

async fn wait_for(w: &PortalWorld, id: RequestId, wanted: RequestState) {
    for _ in 0..400 {
        if state_of(w, w.tenant, id).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("request never became {wanted:?}");
}

both_backends!(
    a_manager_approves_once_the_line_is_issued_and_a_second_approver_is_told_who_decided,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let request = ask_for_a_line(&w, w.tenant, &w.ada, 0).await;
        let maria = w.signed_in(&w.maria.email.to_string()).await;
        let page = maria.get("/requests").await;
        page.assert_ok()
            .assert_contains("Ada Tester asks for a new eSIM line")
            .assert_contains("field work next week")
            .assert_contains("new lines need your manager&#39;s approval")
            .assert_contains("Data, last 30 days")
            .assert_contains("Spent this month");

        let approved = maria
            .post(&format!("/requests/{}/approve", request.id), &[])
            .await;
        assert_eq!(approved.redirected_to(), "/requests");
        maria
            .get("/requests")
            .await
            .assert_contains("Approved: a new eSIM line");

        // Without a chat side, the portal issues the approved line itself.
        wait_for(&w, request.id, RequestState::Fulfilled).await;
        let lines = w.lineup.lines(w.tenant).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].employee_id, w.ada.id);

        // The owner clicks a stale button: nothing changes, and they learn who decided.
        let owner = w.signed_in(&w.olivia.email.to_string()).await;
        let late = owner
            .post(&format!("/requests/{}/approve", request.id), &[])
            .await;
        assert_eq!(late.redirected_to(), "/requests");
        let page = owner.get("/requests").await;
        page.assert_contains("Already decided: Approved by Maria Tester at")
            .assert_contains("Recent decisions");
        let approvals = w
            .audit_actions("request", &request.id.to_string())
            .await
            .into_iter()
            .filter(|a| a == "request.approved")
            .count();
        assert_eq!(approvals, 1);
        assert_eq!(w.stats().await["orders"]["total"], 1);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denying_needs_a_reason_and_is_recorded_with_it() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let request = ask_for_a_line(&w, w.tenant, &w.alan, 0).await;
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    maria.get("/requests").await.assert_ok();
    let path = format!("/requests/{}/deny", request.id);
    let refused = maria.post(&path, &[("reason", "  ")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_contains("reason: say why you deny the request");
    assert_eq!(
        state_of(&w, w.tenant, request.id).await,
        RequestState::Pending
    );

    let denied = maria.post(&path, &[("reason", "use the team phone")]).await;
    assert_eq!(denied.redirected_to(), "/requests");
    let stored = w.lineup.request(w.tenant, request.id).await.unwrap();
    assert_eq!(stored.state, RequestState::Denied);
    assert_eq!(stored.decision_note.as_deref(), Some("use the team phone"));
    let page = maria.get("/requests").await;
    page.assert_contains("Denied: a new eSIM line")
        .assert_contains("Denied by Maria Tester")
        .assert_contains("use the team phone")
        .assert_contains("Nothing is waiting for your decision");
    assert!(w.lineup.lines(w.tenant).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_cannot_decide_another_teams_request() {
    let w = PortalWorld::new(sqlite_store().await).await;
    // Fiona reports to Olivia, not to Maria.
    let request = ask_for_a_line(&w, w.tenant, &w.fiona, 0).await;
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    let page = maria.get("/requests").await;
    assert!(!page.body.contains("Fiona"), "not listed for Maria");
    let refused = maria
        .post(&format!("/requests/{}/approve", request.id), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("only the request&#39;s approver can decide it");
    assert_eq!(
        state_of(&w, w.tenant, request.id).await,
        RequestState::Pending
    );
    // Olivia, Fiona's manager, sees and may decide it.
    let olivia = w.signed_in(&w.olivia.email.to_string()).await;
    olivia
        .get("/requests")
        .await
        .assert_contains("Fiona Tester asks for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_without_an_employee_record_decides_as_an_admin() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let request = ask_for_a_line(&w, w.tenant, &w.alan, 0).await;
    let admin = w.signed_in(&w.email_for(Role::Admin)).await;
    admin
        .get("/requests")
        .await
        .assert_contains("Alan Tester asks for");
    let denied = admin
        .post(
            &format!("/requests/{}/deny", request.id),
            &[("reason", "budget freeze")],
        )
        .await;
    assert_eq!(denied.redirected_to(), "/requests");
    let stored = w.lineup.request(w.tenant, request.id).await.unwrap();
    assert_eq!(stored.state, RequestState::Denied);
    assert!(stored.decided_by.unwrap().starts_with("user:"));
    admin
        .get("/requests")
        .await
        .assert_contains("Denied by admin at");

    // A finance member is linked to an employee and decides by the chat rules: a new line
    // routed to a manager is not theirs to decide.
    let other = ask_for_a_line(&w, w.tenant, &w.ada, 0).await;
    let fiona = w.signed_in(&w.email_for(Role::Finance)).await;
    assert!(
        !fiona
            .get("/requests")
            .await
            .body
            .contains("Ada Tester asks")
    );
    let refused = fiona
        .post(&format!("/requests/{}/approve", other.id), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Viewers have no requests page at all.
    let viewer = w.signed_in(&w.email_for(Role::Viewer)).await;
    assert_eq!(viewer.get("/requests").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_globex_request_is_not_found_from_acme() {
    let w = PortalWorld::new(sqlite_store().await).await;
    w.lineup
        .sync_plans(w.globex, &lineup_testkit::world::ADMIN)
        .await
        .unwrap();
    let request = ask_for_a_line(&w, w.globex, &w.gina, 0).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    assert!(!owner.get("/requests").await.body.contains("Gina"));
    for action in ["approve", "deny"] {
        let answer = owner
            .post(
                &format!("/requests/{}/{action}", request.id),
                &[("reason", "guess")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(
        state_of(&w, w.globex, request.id).await,
        RequestState::Pending
    );
}

/// Stands in for the chat side: records what it is told.
#[derive(Default)]
struct Recorder(Mutex<Vec<(TenantId, RequestId)>>);

#[async_trait::async_trait]
impl RequestEvents for Recorder {
    async fn decided(&self, tenant: TenantId, request: RequestId) {
        self.0.lock().unwrap().push((tenant, request));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_chat_side_configured_the_decision_is_handed_to_it_once() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let recorder = Arc::new(Recorder::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{BASE_DOMAIN}:{}", addr.port());
    let portal = Portal::new(w.lineup.clone(), PortalConfig::new(base.parse().unwrap()))
        .with_request_events(recorder.clone());
    tokio::spawn(async move { axum::serve(listener, portal_router(portal)).await.unwrap() });
    let maria = Browser::new(&format!("acme.{BASE_DOMAIN}"), addr);
    maria.sign_in(&w.maria.email.to_string(), PASSWORD).await;

    let request = ask_for_a_line(&w, w.tenant, &w.ada, 0).await;
    maria.get("/requests").await.assert_ok();
    let path = format!("/requests/{}/approve", request.id);
    maria.post(&path, &[]).await.redirected_to();
    maria.post(&path, &[]).await.redirected_to();
    for _ in 0..200 {
        if !recorder.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*recorder.0.lock().unwrap(), vec![(w.tenant, request.id)]);
    // The chat side fulfils; the portal did not issue a line behind its back.
    assert_eq!(
        state_of(&w, w.tenant, request.id).await,
        RequestState::Approved
    );
    assert!(w.lineup.lines(w.tenant).await.unwrap().is_empty());
}

both_backends!(
    a_priced_trip_shows_both_options_and_can_be_approved_as_a_travel_esim,
    |store| async move {
        use lineup_core::lines::line::commands::IssueLine;
        use lineup_core::lines::request::roaming_quote::{RoamingOption, UsageBasis};
        use lineup_core::provider::Validity;
        use lineup_testkit::world::ADMIN;

        let w = PortalWorld::new(store).await;
        let (airalo, plans) = w.connect_own_account_and_airalo().await;
        let home_plan = plans
            .iter()
            .find(|p| p.active && p.provider == "1global" && p.validity == Validity::Monthly)
            .unwrap();
        let home = w
            .lineup
            .issue_line(
                w.tenant,
                &ADMIN,
                IssueLine {
                    employee_id: w.ada.id,
                    plan_id: home_plan.id,
                    issue_key: "home".into(),
                },
            )
            .await
            .unwrap();
        let from = time::OffsetDateTime::now_utc().date() + time::Duration::days(3);
        let request = w
            .lineup
            .submit_request(
                w.tenant,
                SubmitRequest {
                    requester: w.ada.id,
                    details: RequestDetails::Roaming {
                        line_id: home.id,
                        country: "JP".into(),
                        from,
                        to: from + time::Duration::days(9),
                        quote: None,
                    },
                    reason: "Tokyo office week".into(),
                    dedupe_key: "trip".into(),
                },
            )
            .await
            .unwrap()
            .request;
        // Ada never roamed: the home plan's daily average stands in.
        let quote = request.details.roaming_quote().unwrap().clone();
        assert!(matches!(quote.basis, UsageBasis::PlanAverage { .. }));
        let travel = quote
            .travel
            .clone()
            .expect("Airalo sells a 10-day Japan package");

        let maria = w.signed_in(&w.maria.email.to_string()).await;
        let travel_button = format!("Approve travel eSIM ({}, {})", travel.package, travel.price);
        maria
            .get("/requests")
            .await
            .assert_ok()
            .assert_contains("Roaming on the home line")
            .assert_contains(&quote.home.to_string())
            .assert_contains("Recommended")
            .assert_contains("Approve roaming on the home line")
            .assert_contains(&travel_button);
        let answer = maria
            .post(
                &format!("/requests/{}/approve-travel-esim", request.id),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        wait_for(&w, request.id, RequestState::Fulfilled).await;
        let decided = w.lineup.request(w.tenant, request.id).await.unwrap();
        assert_eq!(
            decided.details.roaming_quote().unwrap().chosen,
            Some(RoamingOption::TravelEsim)
        );
        let lines = w.lineup.lines(w.tenant).await.unwrap();
        let travel_line = lines
            .iter()
            .find(|l| l.id != home.id && l.employee_id == w.ada.id)
            .expect("the travel eSIM line");
        assert_eq!(travel_line.provider_connection_id, Some(airalo.id));
        assert_eq!(travel_line.plan_id, travel.plan_id);
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let grants = lineup_core::store::policy::grants_for_line(&mut tx, w.tenant, home.id)
            .await
            .unwrap();
        assert!(grants.is_empty(), "{grants:?}");
    }
);
