//! The alerts page: finance lists and filters real alerts raised by usage ingest and acts
//! on them (acknowledge, snooze, raise cap, suspend, resolve) through core, audited as the
//! portal user; bad input names its field and changes nothing; other tenants' alerts are
//! never listed and guessing their ids finds nothing.

use std::time::Duration;

use lineup_core::identity::user::Role;
use lineup_core::lines::line::{Line, LineState};
use lineup_core::money::Bytes;
use lineup_core::spend::alert::{Alert, AlertFilter, AlertKind, AlertState};
use lineup_core::spend::policy::{CapAction, CapScope};
use lineup_core::store;
use lineup_testkit::both_backends;
use lineup_testkit::portal::{BASE_DOMAIN, PASSWORD, PortalWorld, cap_employee, usage_record};
use lineup_testkit::sqlite_store;
use reqwest::StatusCode;

const HOUR: Duration = Duration::from_secs(3600);

/// Ada's 50.00 budget: 1 GB passes 50 %, 11 GB more (12 GB on her 10 GB, 25.00 plan: 45.00)
/// passes 80 %. Returns her line and the two alerts, newest first.
async fn ada_over_budget(w: &PortalWorld) -> (Line, Vec<Alert>) {
    let line = w.active_line(&w.ada, "ada-line").await;
    cap_employee(w, &w.ada, 5_000, vec![50, 80], CapAction::Alert).await;
    for (key, ago, gb) in [("u1", 2 * HOUR, 1), ("u2", HOUR, 11)] {
        let record = usage_record(&line, key, ago, gb * Bytes::GB, "US");
        let report = w.lineup.record_usage(w.tenant, &[record]).await.unwrap();
        assert_eq!(report.alerts, 1);
    }
    let alerts = w
        .lineup
        .alerts(w.tenant, &AlertFilter::default())
        .await
        .unwrap();
    assert_eq!(alerts.len(), 2);
    (line, alerts)
}

async fn user_actor(w: &PortalWorld, email: &str) -> String {
    let mut tx = w.store.system().await.unwrap();
    let user = store::users::find_by_email(&mut tx, email)
        .await
        .unwrap()
        .unwrap();
    format!("user:{}", user.id)
}

async fn alert_audit(w: &PortalWorld, alert: &Alert) -> Vec<(String, String)> {
    let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
    store::audit::list_for_subject(&mut tx, w.tenant, "alert", &alert.id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect()
}

both_backends!(
    finance_filters_alerts_and_acts_on_them_through_core,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (line, alerts) = ada_over_budget(&w).await;
        let (newest, oldest) = (&alerts[0], &alerts[1]);
        assert!(newest.message.contains("passed 80%"), "{}", newest.message);
        let fiona = w.signed_in(&w.fiona.email.to_string()).await;

        let page = fiona.get("/alerts").await;
        page.assert_ok()
            .assert_contains("Budget threshold passed")
            .assert_contains("Ada Tester")
            .assert_contains(&newest.period);
        let (at_80, at_50) = (
            page.body.find("passed 80%").unwrap(),
            page.body.find("passed 50%").unwrap(),
        );
        assert!(at_80 < at_50, "newest first");

        let filtered = fiona
            .get(&format!(
                "/alerts?state=open&kind=budget_threshold&period={}",
                newest.period
            ))
            .await;
        filtered.assert_ok().assert_contains("passed 50%");
        fiona
            .get("/alerts?state=resolved")
            .await
            .assert_ok()
            .assert_contains("No alerts match");
        fiona
            .get("/alerts?kind=usage_spike")
            .await
            .assert_contains("No alerts match");
        let bad = fiona.get("/alerts?period=November").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad.assert_contains("period: &#34;November&#34; is not a month like 2026-11");

        // Acknowledge: through core, audited as Fiona's portal account.
        let path = |action: &str| format!("/alerts/{}/{action}", oldest.id);
        fiona
            .get(&format!("/alerts/{}", oldest.id))
            .await
            .assert_ok();
        let answer = fiona.post(&path("acknowledge"), &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        fiona
            .get(answer.location().unwrap())
            .await
            .assert_contains("Alert acknowledged");
        let w = &w;
        let state = |id| async move { w.lineup.alert(w.tenant, id).await.unwrap() };
        assert_eq!(state(oldest.id).await.state, AlertState::Acknowledged);
        let fiona_user = user_actor(w, w.fiona.email.as_str()).await;
        assert!(
            alert_audit(w, oldest)
                .await
                .contains(&("alert.acknowledged".into(), fiona_user.clone()))
        );

        // Snooze: a bad number of days is named, kept, and changes nothing.
        let answer = fiona.post(&path("snooze"), &[("days", "a week")]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer
            .assert_contains("days: &#34;a week&#34; is not a whole number of days")
            .assert_contains("value=\"a week\"");
        let answer = fiona.post(&path("snooze"), &[("days", "365")]).await;
        answer.assert_contains("days: a snooze lasts 1 to 90 days, not 365");
        assert_eq!(state(oldest.id).await.state, AlertState::Acknowledged);
        let answer = fiona.post(&path("snooze"), &[("days", "3")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let snoozed = state(oldest.id).await;
        assert_eq!(snoozed.state, AlertState::Snoozed);
        let left = snoozed.snoozed_until.unwrap() - store::now();
        assert!(left > time_days(2) && left <= time_days(3), "{left}");

        // Raise cap: any amount in the tenant currency, named errors, once per alert.
        let page = fiona.get(&format!("/alerts/{}", oldest.id)).await;
        page.assert_contains("the chat button raises by 12.50");
        let answer = fiona.post(&path("raise-cap"), &[("amount", "lots")]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer.assert_contains("amount: &#34;lots&#34; is not an amount in USD");
        let answer = fiona.post(&path("raise-cap"), &[("amount", "0")]).await;
        answer.assert_contains("amount: must be more than zero");
        let raises = || async {
            let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
            store::guardrails::period_raises(&mut tx, w.tenant, &oldest.period)
                .await
                .unwrap()
        };
        assert!(raises().await.is_empty(), "refused input raised nothing");
        let answer = fiona.post(&path("raise-cap"), &[("amount", "20")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        fiona
            .get(answer.location().unwrap())
            .await
            .assert_contains("Raised the cap of Employee Ada Tester by 20.00 USD");
        assert_eq!(raises().await, vec![(CapScope::Employee(w.ada.id), 2_000)]);
        let again = fiona.post(&path("raise-cap"), &[("amount", "5")]).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        again.assert_contains("already raised from this alert by Fiona Tester");
        assert_eq!(raises().await, vec![(CapScope::Employee(w.ada.id), 2_000)]);

        // Suspend: only when confirmed.
        let answer = fiona.post(&path("suspend"), &[]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer.assert_contains("confirm: tick the box");
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Active
        );
        let answer = fiona.post(&path("suspend"), &[("confirm", "yes")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        fiona
            .get(answer.location().unwrap())
            .await
            .assert_contains("Suspended Ada Tester&#39;s line (ICCID");
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Suspended
        );

        // Resolve from the filtered list: back to that list. After it nothing else applies.
        let list = "/alerts?state=open&kind=&period=";
        let answer = fiona.post(&path("resolve"), &[("back", list)]).await;
        assert_eq!(answer.location(), Some(list));
        assert_eq!(state(oldest.id).await.state, AlertState::Resolved);
        let answer = fiona.post(&path("acknowledge"), &[]).await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        answer.assert_contains("already resolved");
        let actions: Vec<String> = alert_audit(w, oldest)
            .await
            .into_iter()
            .filter(|(_, actor)| *actor == fiona_user)
            .map(|(action, _)| action)
            .collect();
        assert_eq!(
            actions,
            [
                "alert.acknowledged",
                "alert.snoozed",
                "alert.cap_raised",
                "alert.suspend_line",
                "alert.resolved"
            ]
        );
        // The other alert was left alone; acting on it never sends anyone off the site.
        assert_eq!(state(newest.id).await.state, AlertState::Open);
        let answer = fiona
            .post(
                &format!("/alerts/{}/acknowledge", newest.id),
                &[("back", "//evil.example/alerts?x")],
            )
            .await;
        assert_eq!(
            answer.location(),
            Some(format!("/alerts/{}", newest.id).as_str())
        );
    }
);

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_alerts_are_never_listed_and_guessing_their_ids_finds_nothing() {
    let w = PortalWorld::new(sqlite_store().await).await;
    ada_over_budget(&w).await;
    let secret = Alert::raise(
        w.globex,
        AlertKind::RoamingViolation,
        "2026-11",
        "roaming:globex-secret".into(),
        format!("employee:{}", w.gina.id),
        "Globex secret: Gina roamed in Narnia".into(),
        serde_json::json!({}),
    )
    .for_employee(Some(w.gina.id));
    let mut tx = w.lineup.store().tenant(w.globex).await.unwrap();
    assert!(
        store::alerts::insert_if_new(&mut tx, w.globex, &secret)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let fiona = w.signed_in(&w.fiona.email.to_string()).await;
    let list = fiona.get("/alerts").await;
    list.assert_ok().assert_contains("passed 50%");
    assert!(!list.body.contains("Globex secret"));
    let guessed = format!("/alerts/{}", secret.id);
    assert_eq!(fiona.get(&guessed).await.status, StatusCode::NOT_FOUND);
    for (action, fields) in [
        ("acknowledge", vec![]),
        ("resolve", vec![]),
        ("snooze", vec![("days", "3")]),
        ("suspend", vec![("confirm", "yes")]),
        ("raise-cap", vec![("amount", "10")]),
    ] {
        let answer = fiona.post(&format!("{guessed}/{action}"), &fields).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{action}");
        assert!(!answer.body.contains("Globex secret"));
    }
    let untouched = w.lineup.alert(w.globex, secret.id).await.unwrap();
    assert_eq!(untouched.state, AlertState::Open);

    // Globex's owner sees their own alert, and none of acme's.
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    globex.sign_in("owner@globex.example", PASSWORD).await;
    let list = globex.get("/alerts").await;
    list.assert_ok().assert_contains("Globex secret");
    assert!(!list.body.contains("passed 50%"));
}

both_backends!(
    only_owners_and_admins_terminate_an_unknown_subscription_from_its_alert,
    |store| async move {
        use lineup_core::provider::{ConnectivityProvider, SubscriptionState};
        let w = PortalWorld::new(store).await;
        let stranger = w.order_behind_lineups_back("someone@example.com").await;
        let report = w.lineup.reconcile_subscriptions(w.tenant).await.unwrap();
        assert_eq!(report.alerts_raised, 1);
        let alert = w
            .lineup
            .alerts(
                w.tenant,
                &AlertFilter {
                    kind: Some(AlertKind::UnknownSubscription),
                    ..AlertFilter::default()
                },
            )
            .await
            .unwrap()
            .remove(0);
        let path = format!("/alerts/{}/terminate", alert.id);
        let state_at_provider = || async {
            w.provider()
                .get_subscription(&stranger)
                .await
                .unwrap()
                .state
        };

        let fiona = w.signed_in(&w.fiona.email.to_string()).await;
        fiona
            .get(&format!("/alerts/{}", alert.id))
            .await
            .assert_ok()
            .assert_contains("Unknown subscription at the provider");
        assert!(
            !fiona
                .get(&format!("/alerts/{}", alert.id))
                .await
                .body
                .contains("Terminate subscription")
        );
        for role in [Role::Finance, Role::Manager] {
            let browser = w.signed_in(&w.email_for(role)).await;
            let refused = browser.post(&path, &[("confirm", "yes")]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{role:?}");
        }
        assert_eq!(state_at_provider().await, SubscriptionState::Active);

        let admin = w.signed_in(&w.email_for(Role::Admin)).await;
        admin
            .get(&format!("/alerts/{}", alert.id))
            .await
            .assert_contains("Terminate subscription");
        let unconfirmed = admin.post(&path, &[]).await;
        assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(state_at_provider().await, SubscriptionState::Active);
        let done = admin.post(&path, &[("confirm", "yes")]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(state_at_provider().await, SubscriptionState::Terminated);
        let audit = alert_audit(&w, &alert).await;
        let admin_actor = user_actor(&w, "admin@example.com").await;
        assert!(
            audit.contains(&("alert.subscription_terminated".to_owned(), admin_actor)),
            "{audit:?}"
        );
    }
);
