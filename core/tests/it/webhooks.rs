//! Provider webhooks: refused unless signed, and safe to deliver twice.

use std::time::Duration;

use lineup_core::CoreError;
use lineup_core::ids::LineId;
use lineup_core::lines::line::LineState;
use lineup_core::lines::webhook::WebhookOutcome;
use lineup_core::provider::{PollPolicy, WebhookError};
use lineup_core::store::{self, now};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, WEBHOOK_SECRET, World, lineup_for, quick_poll};
use serde_json::{Value, json};

fn signed(event: &Value) -> (String, Vec<u8>) {
    let body = event.to_string();
    let header = lineup_simulator::signature_header(WEBHOOK_SECRET, now().unix_timestamp(), &body);
    (header, body.into_bytes())
}

/// The provider order behind the line's first operation, once it has one.
async fn order_of(w: &World, line: LineId) -> Option<String> {
    let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
    let ops = store::operations::list_for_line(&mut tx, w.tenant, line)
        .await
        .unwrap();
    ops.first().and_then(|op| op.provider_order_id.clone())
}

/// Complete `order` in the simulator and deliver its signed `order.completed` webhook as `event`.
async fn complete_and_deliver(
    w: &World,
    order: &str,
    event: &str,
) -> (WebhookOutcome, String, Vec<u8>) {
    w.sim(
        reqwest::Method::POST,
        &format!("/_sim/orders/{order}/complete"),
        Some(json!({})),
    )
    .await;
    let (signature, body) = signed(
        &json!({"id": event, "type": "order.completed", "data": {"id": order, "status": "completed"}}),
    );
    let outcome = w
        .lineup
        .accept_provider_webhook(Some(&signature), &body, now())
        .await
        .unwrap();
    (outcome, signature, body)
}

both_backends!(
    unsigned_or_forged_webhooks_are_refused,
    |store| async move {
        let w = World::new(store).await;
        let event = json!({"id": "evt_1", "type": "usage.threshold_reached", "data": {"subscription_id": "sub_X", "threshold_pct": 80}});
        let body = event.to_string().into_bytes();
        let forged = lineup_simulator::signature_header(
            "not-the-secret",
            now().unix_timestamp(),
            &event.to_string(),
        );
        for signature in [None, Some(forged.as_str())] {
            let err = w
                .lineup
                .accept_provider_webhook(signature, &body, now())
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    CoreError::Webhook(WebhookError::MissingSignature | WebhookError::BadSignature)
                ),
                "{err}"
            );
        }
    }
);

both_backends!(
    a_completed_order_finishes_its_line_once,
    |store| async move {
        let slow = PollPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        let w = World::with_poll(store, slow).await;
        w.hold_orders().await;
        assert!(
            w.lineup
                .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "hooked"))
                .await
                .is_err()
        );
        let line = w.lineup.lines(w.tenant).await.unwrap().remove(0);
        assert_eq!(line.state, LineState::Provisioning);
        let order = order_of(&w, line.id).await.unwrap();
        let (first, signature, body) = complete_and_deliver(&w, &order, "evt_2").await;
        assert_eq!(first.operations_finished, 1);
        let ready = w.lineup.line(w.tenant, line.id).await.unwrap();
        assert_eq!(ready.state, LineState::Ready);
        assert!(ready.activation_code.is_some());
        // At-least-once: the same delivery again changes nothing.
        let again = w
            .lineup
            .accept_provider_webhook(Some(&signature), &body, now())
            .await
            .unwrap();
        assert_eq!(again.operations_finished, 0);
        let actions = w.audit_actions("line", &line.id.to_string()).await;
        assert_eq!(
            actions.iter().filter(|a| *a == "line.provisioned").count(),
            1,
            "{actions:?}"
        );
    }
);

both_backends!(
    usage_and_install_events_sync_and_activate,
    |store| async move {
        let w = World::new(store).await;
        let line = w.ready_line(&w.ada, "events-line").await;
        let sub = line.provider_subscription_id.clone().unwrap();
        let iccid = line.iccid.clone().unwrap().to_string();

        let (signature, body) = signed(
            &json!({"id": "evt_3", "type": "usage.threshold_reached", "data": {"subscription_id": sub, "threshold_pct": 80}}),
        );
        let at = now();
        assert_eq!(
            w.lineup
                .accept_provider_webhook(Some(&signature), &body, at)
                .await
                .unwrap()
                .syncs_queued,
            1
        );
        assert_eq!(
            w.lineup
                .accept_provider_webhook(Some(&signature), &body, at)
                .await
                .unwrap()
                .syncs_queued,
            0,
            "one sync per tenant and minute"
        );
        assert!(w.lineup.run_next_job("worker", at).await.unwrap());

        let (signature, body) = signed(
            &json!({"id": "evt_4", "type": "sim_profile.download_progress",
        "data": {"iccid": iccid, "step": "BPP_INSTALLATION", "status": "SUCCESS"}}),
        );
        // The simulator installs profiles shortly after release; wait until it reports installed.
        let mut activated = 0;
        for _ in 0..100 {
            activated = w
                .lineup
                .accept_provider_webhook(Some(&signature), &body, now())
                .await
                .unwrap()
                .lines_activated;
            if activated == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(activated, 1);
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Active
        );
    }
);

both_backends!(
    a_completed_order_wakes_the_wait_on_it_in_this_process,
    |store| async move {
        // Without the webhook this wait would next ask about the order in 30 s.
        let patient = PollPolicy {
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            ..PollPolicy::default()
        };
        let w = World::with_poll(store, patient).await;
        w.hold_orders().await;
        let issuing = tokio::spawn({
            let (lineup, tenant, issue) = (w.lineup.clone(), w.tenant, w.issue(&w.ada, "woken"));
            async move { lineup.issue_line(tenant, &ADMIN, issue).await }
        });
        let order = loop {
            let lines = w.lineup.lines(w.tenant).await.unwrap();
            if let Some(line) = lines.first()
                && let Some(order) = order_of(&w, line.id).await
            {
                break order;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (outcome, _, _) = complete_and_deliver(&w, &order, "evt_3").await;
        assert_eq!(outcome.operations_finished, 1);
        let line = tokio::time::timeout(Duration::from_secs(10), issuing)
            .await
            .expect("the webhook woke the wait")
            .unwrap()
            .unwrap();
        assert_eq!(line.state, LineState::Ready);
        assert!(line.activation_code.is_some());
        let actions = w.audit_actions("line", &line.id.to_string()).await;
        assert_eq!(
            actions.iter().filter(|a| *a == "line.provisioned").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(w.lineup.lines(w.tenant).await.unwrap().len(), 1);
    }
);

/// Sessions of this test's database waiting on a row lock.
async fn lock_waiters(w: &World) -> i64 {
    let mut tx = w.lineup.store().system().await.unwrap();
    let store::Tx::Postgres(t) = &mut tx else {
        unreachable!("a PostgreSQL test")
    };
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut **t)
    .await
    .unwrap()
}

/// The webhook reaches another replica while the approval that placed the order still waits
/// on it here: both finish the same order at once (held together by a lock on the line's
/// row). Exactly one makes the line Ready; both report it Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_on_another_replica_and_the_waiting_approval_both_report_the_line_ready() {
    let w = World::new(lineup_testkit::postgres_store().await).await;
    w.hold_orders().await;
    let issuing = {
        let (lineup, tenant) = (w.lineup.clone(), w.tenant);
        let issue = w.issue(&w.ada, "two-finishers");
        tokio::spawn(async move { lineup.issue_line(tenant, &ADMIN, issue).await })
    };
    let (line, order) = loop {
        if let Some(line) = w.lineup.lines(w.tenant).await.unwrap().pop()
            && let Some(order) = order_of(&w, line.id).await
        {
            break (line, order);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut holder = w.lineup.store().system().await.unwrap();
    let store::Tx::Postgres(t) = &mut holder else {
        unreachable!("a PostgreSQL test")
    };
    sqlx::query("SELECT id FROM lines WHERE id = $1 FOR UPDATE")
        .bind(line.id)
        .execute(&mut **t)
        .await
        .unwrap();
    w.sim(
        reqwest::Method::POST,
        &format!("/_sim/orders/{order}/complete"),
        Some(json!({})),
    )
    .await;
    let other_replica = lineup_for(w.lineup.store(), &w.sim, quick_poll());
    let (signature, body) = signed(
        &json!({"id": "evt_both", "type": "order.completed", "data": {"id": order, "status": "completed"}}),
    );
    let hooked = tokio::spawn(async move {
        other_replica
            .accept_provider_webhook(Some(&signature), &body, now())
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while lock_waiters(&w).await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both finishers should be waiting on the held line within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.commit().await.unwrap();

    let issued = issuing
        .await
        .unwrap()
        .expect("the approval reports its line");
    assert_eq!(issued.state, LineState::Ready);
    assert!(issued.activation_code.is_some());
    let outcome = hooked.await.unwrap().expect("the webhook is acknowledged");
    assert_eq!(outcome.operations_finished, 1);
    let actions = w.audit_actions("line", &line.id.to_string()).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "line.provisioned").count(),
        1,
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| a == "line.failed"), "{actions:?}");
    assert_eq!(
        w.stats().await["orders"]["by_type"]["activate_subscription"],
        1
    );
}
