//! No orphans at the provider: an accepted order survives rate limits and dropped connections
//! while it is polled, and the reconciliation sweep matches the provider's subscriptions to
//! lines (adopting ours, raising the unknown ones to the admins).

use std::sync::Arc;
use std::time::Duration;

use lineup_core::lines::line::LineState;
use lineup_core::lines::line::activation::Revealer;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use lineup_core::provider::{ConnectivityProvider, PollPolicy, SubscriptionState};
use lineup_core::secret::SecretBox;
use lineup_core::spend::alert::{AlertFilter, AlertKind, AlertState};
use lineup_core::store::now;
use lineup_core::{CoreError, Lineup};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World, lineup_for, quick_poll};
use serde_json::json;

both_backends!(
    rate_limits_and_dropped_connections_while_polling_never_fail_an_accepted_order,
    |store| async move {
        let w = World::new(store).await;
        // Longer than the adapter sleeps through (5 s in tests): it reports the 429 at once.
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "GET", "path_prefix": "/enterprise/orders/"},
                "action": {"status": 429, "retry_after_s": 6},
                "times": 1
            })),
        )
        .await;
        // More drops in a row than the adapter's 20 attempts: it gives up on one poll.
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "GET", "path_prefix": "/enterprise/orders/"},
                "action": {"drop_connection": true},
                "times": 25
            })),
        )
        .await;
        let started = std::time::Instant::now();
        let line = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-polled"))
            .await
            .unwrap();
        assert_eq!(line.state, LineState::Ready);
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(6),
            "Retry-After was not honoured"
        );
        let history = w.audit_actions("line", &line.id.to_string()).await;
        assert_eq!(
            history,
            [
                "line.requested",
                "line.provisioning_started",
                "line.provisioned"
            ]
        );
        let stats = w.stats().await;
        assert_eq!(stats["orders"]["by_type"]["activate_subscription"], 1);
        assert_eq!(stats["subscriptions"]["total"], 1);
        assert_eq!(stats["faults_injected"], 26);
    }
);

both_backends!(
    an_order_whose_every_answer_was_lost_stays_provisioning_and_the_sweep_finishes_it_once,
    |store| async move {
        let w = World::new(store).await;
        // The provider takes the order, then every answer to placing it is lost (more than the
        // adapter's attempts, each replaying the same key): the line may well exist there.
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "POST", "path_prefix": "/enterprise/orders"},
                "action": {"drop_connection": true},
                "phase": "after",
                "times": 25
            })),
        )
        .await;
        let error = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-unanswered"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, CoreError::ProviderTimeout(_)),
            "told {error:?}"
        );
        let line = w
            .lineup
            .line_issued_with(w.tenant, "req-unanswered")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            line.state,
            LineState::Provisioning,
            "not failed: the order may exist"
        );

        // The in-flight sweep places it again under the same key; the provider answers with
        // the order it already has.
        let mut settled = line.clone();
        for _ in 0..100 {
            w.lineup.resume_in_flight().await.unwrap();
            settled = w.lineup.line(w.tenant, line.id).await.unwrap();
            if settled.state != LineState::Provisioning {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(settled.state, LineState::Ready);
        let stats = w.stats().await;
        assert_eq!(stats["orders"]["by_type"]["activate_subscription"], 1);
        assert_eq!(stats["subscriptions"]["total"], 1);
        assert_eq!(
            w.audit_actions("line", &line.id.to_string()).await,
            [
                "line.requested",
                "line.provisioning_started",
                "line.provisioned"
            ]
        );
    }
);

both_backends!(
    reconciliation_adopts_our_orphaned_subscription_and_alerts_once_on_an_unknown_one,
    |store| async move {
        // No patience: the line fails at the first lost answer, as it does once the patience
        // (15 minutes by default) has run out.
        let impatient = PollPolicy {
            placement_patience: Duration::ZERO,
            ..quick_poll()
        };
        let w = World::with_poll(store, impatient).await;
        // The order is placed, then every answer about it is lost: Lineup marks the line
        // failed although the provider goes on to activate its subscription.
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "POST", "path_prefix": "/enterprise/orders"},
                "action": {"status": 500},
                "phase": "after",
                "times": 25
            })),
        )
        .await;
        w.lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-orphan"))
            .await
            .unwrap_err();
        let line = w
            .lineup
            .line_issued_with(w.tenant, "req-orphan")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line.state, LineState::Failed);
        let stranger = w.order_behind_lineups_back("someone@example.com").await;
        let provider = w.provider();
        let mut ours = None;
        for _ in 0..200 {
            let listed = provider.list_subscriptions(None).await.unwrap().items;
            ours = listed
                .into_iter()
                .find(|s| s.reference.as_deref() == Some(line.id.to_string().as_str()))
                .filter(|s| s.state == SubscriptionState::Active);
            if ours.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ours = ours.expect("the simulator activates the orphaned order");

        // The hourly job, queued once per tenant and hour.
        let at = now();
        assert_eq!(w.lineup.schedule_reconciliations(at).await.unwrap(), 1);
        assert_eq!(w.lineup.schedule_reconciliations(at).await.unwrap(), 0);
        assert!(w.lineup.run_next_job("worker", at).await.unwrap());
        let adopted = w.lineup.line(w.tenant, line.id).await.unwrap();
        assert_eq!(adopted.state, LineState::Ready);
        assert_eq!(adopted.provider_subscription_id, Some(ours.id.clone()));
        assert!(adopted.iccid.is_some() && adopted.activation_code.is_some());
        assert_eq!(adopted.failure_reason, None);
        let code = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await
            .unwrap();
        assert!(code.lpa_string().starts_with("LPA:1$"));
        let history = w.audit_actions("line", &line.id.to_string()).await;
        assert_eq!(
            &history[history.len() - 2..],
            ["line.adopted", "line.activation_code_revealed"]
        );
        assert!(history.contains(&"line.failed".to_owned()), "{history:?}");

        let unknown = || async {
            w.lineup
                .alerts(
                    w.tenant,
                    &AlertFilter {
                        kind: Some(AlertKind::UnknownSubscription),
                        ..AlertFilter::default()
                    },
                )
                .await
                .unwrap()
        };
        let alerts = unknown().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].details["subscription_id"], stranger.as_str());
        // A second run finds nothing new: the line holds its subscription, the alert exists.
        let again = w.lineup.reconcile_subscriptions(w.tenant).await.unwrap();
        assert_eq!(
            (again.listed, again.adopted.len(), again.alerts_raised),
            (2, 0, 0)
        );
        assert_eq!(unknown().await.len(), 1);
        // Lineup ordered once; the other order was placed behind its back.
        assert_eq!(
            w.stats().await["orders"]["by_type"]["activate_subscription"],
            2
        );

        // Terminate from the alert: the provider ends it and the alert is resolved; a second
        // press changes nothing and the next run raises nothing for it.
        let alert = &alerts[0];
        let resolved = w
            .lineup
            .terminate_subscription_from_alert(w.tenant, &ADMIN, alert.id)
            .await
            .unwrap();
        assert_eq!(resolved.state, AlertState::Resolved);
        let at_provider = provider.get_subscription(&stranger).await.unwrap();
        assert_eq!(at_provider.state, SubscriptionState::Terminated);
        w.lineup
            .terminate_subscription_from_alert(w.tenant, &ADMIN, alert.id)
            .await
            .unwrap();
        assert_eq!(
            w.stats().await["orders"]["by_type"]["terminate_subscription"],
            1
        );
        let after = w.lineup.reconcile_subscriptions(w.tenant).await.unwrap();
        assert_eq!(after.alerts_raised, 0);
        assert!(
            w.audit_actions("alert", &alert.id.to_string())
                .await
                .contains(&"alert.subscription_terminated".to_owned())
        );
        // Terminate is only for unknown-subscription alerts.
        let err = w
            .lineup
            .terminate_subscription_from_alert(w.tenant, &ADMIN, lineup_core::ids::AlertId::new())
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::NotFound { .. }), "{err}");
    }
);

both_backends!(
    forty_lines_through_a_failing_provider_and_a_killed_worker_end_forty_ready_once_each,
    |store| async move {
        let w = World::new(store).await;
        // The issue's measurement: 30 % of calls fail (half after the state changed; 500, 503
        // and 429 alike), and some connections drop.
        w.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(json!({
                "error_rate": 0.3,
                "error_after_processing": 0.5,
                "drop_connection_rate": 0.05,
                "retry_after_s": 1
            })),
        )
        .await;
        // A worker that gives up quickly, so failures reach the line lifecycle.
        let mut config = OneGlobalConfig::new(
            w.sim.base_url(),
            "lineup-demo",
            "lineup-demo-secret",
            w.sim.account_id(),
        );
        config.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(2),
        };
        let secrets = SecretBox::from_hex(&SecretBox::generate_hex_key()).unwrap();
        let fragile = Lineup::new(
            w.lineup.store().clone(),
            Arc::new(OneGlobalProvider::new(config).unwrap()),
            quick_poll(),
        )
        .with_secrets(secrets);
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let (lineup, tenant) = (fragile.clone(), w.tenant);
                let who = if i % 2 == 0 { &w.ada } else { &w.alan };
                let issue = w.issue(who, &format!("storm-{i}"));
                tokio::spawn(async move { lineup.issue_line(tenant, &ADMIN, issue).await })
            })
            .collect();
        // Killed mid-way: whatever was in flight stops where it was.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }

        // Restarted on the same database, the provider still failing as often.
        let restarted = lineup_for(w.lineup.store(), &w.sim, quick_poll());
        let at_kill = restarted.lines(w.tenant).await.unwrap();
        let unfinished = at_kill
            .iter()
            .filter(|l| l.state != LineState::Ready)
            .count()
            + 40
            - at_kill.len();
        eprintln!(
            "at the kill: {} lines stored, {unfinished} not ready ({} failed)",
            at_kill.len(),
            at_kill
                .iter()
                .filter(|l| l.state == LineState::Failed)
                .count()
        );
        assert!(unfinished > 0, "the kill came after every line was done");
        // A request killed before Lineup stored it is asked again by its caller, with its key.
        for i in 0..40 {
            let key = format!("storm-{i}");
            if restarted
                .line_issued_with(w.tenant, &key)
                .await
                .unwrap()
                .is_none()
            {
                let who = if i % 2 == 0 { &w.ada } else { &w.alan };
                let _ = restarted
                    .issue_line(w.tenant, &ADMIN, w.issue(who, &key))
                    .await;
            }
        }
        let mut lines = Vec::new();
        let mut adopted = 0;
        for round in 0..60 {
            if let Err(e) = restarted.resume_in_flight().await {
                tracing::warn!(error = %e, "resume sweep failed");
            }
            match restarted.reconcile_subscriptions(w.tenant).await {
                Ok(report) => adopted += report.adopted.len(),
                Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
            }
            lines = restarted.lines(w.tenant).await.unwrap();
            if lines.len() == 40 && lines.iter().all(|l| l.state == LineState::Ready) {
                eprintln!("all ready after {round} sweeps; {adopted} adopted by reconciliation");
                break;
            }
            // What an admin does with a failed line: Retry, which replays the order's key.
            if round >= 2 {
                for line in lines.iter().filter(|l| l.state == LineState::Failed) {
                    let _ = restarted.retry_line(w.tenant, &ADMIN, line.id).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        w.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(json!({"error_rate": 0.0, "drop_connection_rate": 0.0})),
        )
        .await;
        assert_eq!(lines.len(), 40);
        let states: Vec<_> = lines.iter().map(|l| l.state).collect();
        assert!(states.iter().all(|s| *s == LineState::Ready), "{states:?}");
        let subscriptions: std::collections::BTreeSet<_> = lines
            .iter()
            .map(|l| l.provider_subscription_id.clone().unwrap())
            .collect();
        assert_eq!(subscriptions.len(), 40);
        let stats = w.stats().await;
        assert_eq!(stats["subscriptions"]["total"], 40, "{stats}");
        assert_eq!(stats["orders"]["by_type"]["activate_subscription"], 40);
        assert!(
            stats["faults_injected"].as_u64().unwrap() > 0,
            "the provider never failed"
        );
        let alerts = restarted
            .alerts(
                w.tenant,
                &AlertFilter {
                    kind: Some(AlertKind::UnknownSubscription),
                    ..AlertFilter::default()
                },
            )
            .await
            .unwrap();
        assert!(alerts.is_empty(), "{alerts:?}");
    }
);

both_backends!(
    resuming_after_a_restart_keeps_an_accepted_order_pending_through_429s_and_drops,
    |store| async move {
        let give_up_soon = PollPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        let w = World::with_poll(store, give_up_soon).await;
        w.hold_orders().await;
        let err = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-resumed"))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::ProviderTimeout(_)), "{err}");
        let waiting = w.lineup.lines(w.tenant).await.unwrap().remove(0);
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let order = lineup_core::store::operations::list_for_line(&mut tx, w.tenant, waiting.id)
            .await
            .unwrap()[0]
            .provider_order_id
            .clone()
            .unwrap();
        drop(tx);
        w.sim(
            reqwest::Method::POST,
            &format!("/_sim/orders/{order}/complete"),
            Some(json!({})),
        )
        .await;
        let restarted = lineup_for(w.lineup.store(), &w.sim, PollPolicy::default());
        for fault in [
            json!({"status": 429, "retry_after_s": 6}),
            json!({"drop_connection": true}),
        ] {
            w.sim(
                reqwest::Method::POST,
                "/_sim/faults",
                Some(json!({
                    "match": {"method": "GET", "path_prefix": "/enterprise/orders/"},
                    "action": fault,
                    "times": if fault["status"] == 429 { 1 } else { 25 }
                })),
            )
            .await;
            assert_eq!(restarted.resume_in_flight().await.unwrap(), 1);
            let line = restarted.line(w.tenant, waiting.id).await.unwrap();
            assert_eq!(line.state, LineState::Provisioning, "after {fault}");
        }
        assert_eq!(restarted.resume_in_flight().await.unwrap(), 1);
        let line = restarted.line(w.tenant, waiting.id).await.unwrap();
        assert_eq!(line.state, LineState::Ready);
        assert!(
            !w.audit_actions("line", &line.id.to_string())
                .await
                .contains(&"line.failed".to_owned())
        );
        assert_eq!(w.stats().await["orders"]["total"], 1);
    }
);
