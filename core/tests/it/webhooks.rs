//! Provider webhooks: refused unless signed, and safe to deliver twice.

use std::time::Duration;

use lineup_core::CoreError;
use lineup_core::ids::LineId;
use lineup_core::lines::line::LineState;
use lineup_core::lines::webhook::WebhookOutcome;
use lineup_core::provider::{PollPolicy, WebhookError};
use lineup_core::store::{self, now};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, WEBHOOK_SECRET, World};
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
