//! No orphans at the provider: an accepted order survives rate limits and dropped connections
//! while it is polled, and the reconciliation sweep matches the provider's subscriptions to
//! lines (adopting ours, raising the unknown ones to the admins).

use lineup_core::lines::line::LineState;
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World};
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
