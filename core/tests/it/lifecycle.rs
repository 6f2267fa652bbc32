//! Line lifecycle commands end to end: core → HTTP adapter → provider simulator over real
//! sockets, with storage on SQLite and on a throwaway PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lineup_core::CoreError;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::ids::LineId;
use lineup_core::lines::line::LineState;
use lineup_core::lines::line::activation::Revealer;
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::connection::{ProviderCredentials, ProviderStatus};
use lineup_core::provider::{PollPolicy, ProviderError, SubscriptionState, UsageQuery};
use lineup_core::store::{self, Store};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World, add_employee, add_tenant, lineup_for};
use serde_json::json;

/// What `lines.activation_code` holds, read past every core type.
async fn stored_activation_code(store: &Store, line: LineId) -> Option<String> {
    let sql = "SELECT activation_code FROM lines WHERE id = $1";
    let mut tx = store.system().await.unwrap();
    let stored = match &mut tx {
        store::Tx::Sqlite(t) => sqlx::query_scalar(sql).bind(line).fetch_one(&mut **t).await,
        store::Tx::Postgres(t) => sqlx::query_scalar(sql).bind(line).fetch_one(&mut **t).await,
    };
    stored.unwrap()
}

/// Put `text` in the column as a version before sealing would have.
async fn store_in_clear(store: &Store, line: LineId, text: &str) {
    let sql = "UPDATE lines SET activation_code = $2 WHERE id = $1";
    let mut tx = store.system().await.unwrap();
    let updated = match &mut tx {
        store::Tx::Sqlite(t) => sqlx::query(sql)
            .bind(line)
            .bind(text)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected()),
        store::Tx::Postgres(t) => sqlx::query(sql)
            .bind(line)
            .bind(text)
            .execute(&mut **t)
            .await
            .map(|r| r.rows_affected()),
    };
    assert_eq!(updated.unwrap(), 1);
    tx.commit().await.unwrap();
}

both_backends!(
    issuing_a_line_stores_its_activation_code_sealed_and_audit_trail,
    |store| async move {
        let w = World::new(store).await;
        let line = w.ready_line(&w.ada, "req-1").await;
        assert!(line.iccid.is_some() && line.provider_subscription_id.is_some());
        assert_eq!(w.lineup.line(w.tenant, line.id).await.unwrap(), line);
        assert_eq!(
            w.audit_actions("line", &line.id.to_string()).await,
            [
                "line.requested",
                "line.provisioning_started",
                "line.provisioned"
            ]
        );
        assert_eq!(w.stats().await["subscriptions"]["total"], 1);

        let code = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await
            .unwrap();
        assert!(code.lpa_string().starts_with("LPA:1$"));
        // The column and every audit payload hold no part of it that would install the eSIM.
        let stored = stored_activation_code(&w.store, line.id).await.unwrap();
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        assert!(!stored.contains(&code.matching_id), "{stored}");
        for event in w.lineup.line_history(w.tenant, line.id).await.unwrap() {
            let payloads = format!("{:?} {:?}", event.before, event.after);
            assert!(
                !payloads.contains(&code.matching_id),
                "{}: {payloads}",
                event.action
            );
            assert!(
                !payloads.contains("sealed:v1:"),
                "{}: {payloads}",
                event.action
            );
        }
        // The reveal itself is audited: who, and whose line.
        let history = w.lineup.line_history(w.tenant, line.id).await.unwrap();
        let revealed = history
            .iter()
            .find(|e| e.action == "line.activation_code_revealed")
            .expect("the reveal is audited");
        assert_eq!(revealed.actor, format!("employee:{}", w.ada.id));
        assert_eq!(
            revealed.after.as_ref().unwrap()["employee_id"],
            json!(w.ada.id)
        );
    }
);

both_backends!(
    only_owners_admins_and_the_holder_get_a_code_and_never_once_installed,
    |store| async move {
        let w = World::new(store).await;
        let line = w.ready_line(&w.ada, "reveal-1").await;
        let audited = || async {
            w.audit_actions("line", &line.id.to_string())
                .await
                .iter()
                .filter(|a| *a == "line.activation_code_revealed")
                .count()
        };
        let mut members = Vec::new();
        for role in Role::ALL {
            let email = Email::parse(&format!("{}@example.org", role.as_str())).unwrap();
            let user = w
                .lineup
                .add_user(
                    w.tenant,
                    &ADMIN,
                    &email,
                    role.as_str(),
                    "a long test password",
                    role,
                    None,
                )
                .await
                .unwrap();
            members.push((role, user));
        }
        for (role, user) in members.iter().copied() {
            let revealed = w
                .lineup
                .reveal_activation_code(w.tenant, Revealer::Member(user), line.id)
                .await;
            match role {
                Role::Owner | Role::Admin => assert!(revealed.is_ok(), "{role:?}: {revealed:?}"),
                _ => assert!(
                    matches!(revealed, Err(CoreError::NotAuthorised(_))),
                    "{role:?}: {revealed:?}"
                ),
            }
        }
        assert_eq!(
            audited().await,
            2,
            "one audit event per reveal, none for a refusal"
        );
        // Another employee is not the holder.
        let refused = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.alan.id), line.id)
            .await;
        assert!(
            matches!(refused, Err(CoreError::NotAuthorised(_))),
            "{refused:?}"
        );

        // Once the profile is on a device, nobody gets the code, the owner included.
        let active = w.active_line(&w.alan, "reveal-2").await;
        let owner = members[0].1;
        for revealer in [Revealer::Member(owner), Revealer::Holder(w.alan.id)] {
            let refused = w
                .lineup
                .reveal_activation_code(w.tenant, revealer, active.id)
                .await;
            match refused {
                Err(CoreError::Conflict(why)) => assert!(why.contains("installed"), "{why}"),
                other => panic!("{revealer:?}: {other:?}"),
            }
        }
        assert!(
            !w.audit_actions("line", &active.id.to_string())
                .await
                .contains(&"line.activation_code_revealed".to_owned())
        );
    }
);

both_backends!(
    codes_stored_in_clear_before_sealing_are_sealed_at_start_up,
    |store| async move {
        let w = World::new(store).await;
        let line = w.ready_line(&w.ada, "legacy-1").await;
        let code = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await
            .unwrap();
        store_in_clear(&w.store, line.id, &code.to_string()).await;
        let unsealed = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await;
        assert!(
            matches!(unsealed, Err(CoreError::Conflict(_))),
            "{unsealed:?}"
        );

        assert_eq!(w.lineup.seal_stored_activation_codes().await.unwrap(), 1);
        let stored = stored_activation_code(&w.store, line.id).await.unwrap();
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        assert!(!stored.contains(&code.matching_id), "{stored}");
        let revealed = w
            .lineup
            .reveal_activation_code(w.tenant, Revealer::Holder(w.ada.id), line.id)
            .await
            .unwrap();
        assert_eq!(revealed, code);
        assert!(
            w.audit_actions("line", &line.id.to_string())
                .await
                .contains(&"line.activation_code_sealed".to_owned())
        );
        // Running it again changes nothing.
        assert_eq!(w.lineup.seal_stored_activation_codes().await.unwrap(), 0);
        assert_eq!(
            stored_activation_code(&w.store, line.id).await.unwrap(),
            stored
        );
    }
);

both_backends!(
    the_same_issue_twice_or_at_once_gives_one_line_and_one_order,
    |store| async move {
        let w = Arc::new(World::new(store).await);
        let first = w.ready_line(&w.ada, "req-dup").await;
        let again = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-dup"))
            .await
            .unwrap();
        assert_eq!(again.id, first.id);

        let mut racing = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let w = w.clone();
            racing.spawn(async move {
                w.lineup
                    .issue_line(w.tenant, &ADMIN, w.issue(&w.alan, "req-race"))
                    .await
                    .unwrap()
            });
        }
        let mut ids = Vec::new();
        while let Some(line) = racing.join_next().await {
            let line = line.unwrap();
            ids.push(line.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "five concurrent issues must yield one line");
        assert_eq!(w.lineup.lines(w.tenant).await.unwrap().len(), 2);
        let stats = w.stats().await;
        assert_eq!(stats["subscriptions"]["total"], 2);
        assert_eq!(stats["orders"]["total"], 2);
    }
);

both_backends!(
    suspend_resume_change_plan_transfer_and_terminate,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "req-life").await;
        let t = w.tenant;
        let suspended = w
            .lineup
            .suspend_line(t, &ADMIN, line.id, None)
            .await
            .unwrap();
        assert_eq!(suspended.state, LineState::Suspended);
        let resumed = w
            .lineup
            .resume_line(t, &ADMIN, line.id, None)
            .await
            .unwrap();
        assert_eq!(resumed.state, LineState::Active);
        let bigger = w.plans.iter().find(|p| p.id != line.plan_id).unwrap();
        let changed = w
            .lineup
            .change_plan(t, &ADMIN, line.id, bigger.id, None)
            .await
            .unwrap();
        assert_eq!(changed.plan_id, bigger.id);
        let moved = w
            .lineup
            .transfer_line(t, &ADMIN, line.id, w.maria.id)
            .await
            .unwrap();
        assert_eq!(moved.employee_id, w.maria.id);
        let ended = w
            .lineup
            .terminate_line(t, &ADMIN, line.id, None)
            .await
            .unwrap();
        assert_eq!(ended.state, LineState::Terminated);

        let sub = line.provider_subscription_id.clone().unwrap();
        let remote = w
            .lineup
            .shared_provider()
            .get_subscription(&sub)
            .await
            .unwrap();
        assert_eq!(remote.state, SubscriptionState::Terminated);
        assert_eq!(
            w.audit_actions("line", &line.id.to_string()).await,
            [
                "line.requested",
                "line.provisioning_started",
                "line.provisioned",
                "line.activated",
                "line.suspended",
                "line.resumed",
                "line.plan_changed",
                "line.transferred",
                "line.terminated",
            ]
        );
    }
);

both_backends!(
    illegal_transitions_are_refused_before_any_provider_call,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "req-illegal").await;
        let t = w.tenant;
        let orders_before = w.stats().await["orders"]["total"].clone();
        let err = w
            .lineup
            .resume_line(t, &ADMIN, line.id, None)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "an active line cannot be resumed");
        w.lineup
            .terminate_line(t, &ADMIN, line.id, None)
            .await
            .unwrap();
        for attempt in [
            w.lineup.suspend_line(t, &ADMIN, line.id, None).await,
            w.lineup.resume_line(t, &ADMIN, line.id, None).await,
            w.lineup.terminate_line(t, &ADMIN, line.id, None).await,
        ] {
            assert!(
                matches!(attempt, Err(CoreError::IllegalTransition(_))),
                "{attempt:?}"
            );
        }
        let err = w
            .lineup
            .transfer_line(t, &ADMIN, line.id, w.alan.id)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("terminated line cannot be transferred"),
            "{err}"
        );
        let orders_after = w.stats().await["orders"]["total"].clone();
        assert_eq!(
            orders_after.as_u64().unwrap(),
            orders_before.as_u64().unwrap() + 1,
            "only the terminate reached the provider"
        );
    }
);

both_backends!(
    a_provider_failure_marks_the_line_failed_and_a_retry_recovers,
    |store| async move {
        let w = World::new(store).await;
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"order_type": "activate_subscription"},
                "action": {"cancel_with": "PROVISIONING_FAILED"},
                "times": 1
            })),
        )
        .await;
        let err = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-fail"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("PROVISIONING_FAILED"), "{err}");
        let failed = w.lineup.lines(w.tenant).await.unwrap().remove(0);
        assert_eq!(failed.state, LineState::Failed);
        assert!(
            failed
                .failure_reason
                .as_deref()
                .unwrap()
                .contains("PROVISIONING_FAILED")
        );
        assert!(failed.activation_code.is_none() && failed.iccid.is_none());

        let retried = w
            .lineup
            .retry_line(w.tenant, &ADMIN, failed.id)
            .await
            .unwrap();
        assert_eq!(retried.state, LineState::Ready);
        assert!(retried.failure_reason.is_none());
        assert!(
            w.audit_actions("line", &failed.id.to_string())
                .await
                .contains(&"line.failed".to_owned())
        );
    }
);

both_backends!(a_retried_command_key_places_one_order, |store| async move {
    let w = World::new(store).await;
    let line = w.active_line(&w.ada, "req-key").await;
    let before = w.stats().await["orders"]["total"].as_u64().unwrap();
    let key = Some("slack-action-123".to_owned());
    let first = w
        .lineup
        .suspend_line(w.tenant, &ADMIN, line.id, key.clone())
        .await
        .unwrap();
    let second = w
        .lineup
        .suspend_line(w.tenant, &ADMIN, line.id, key)
        .await
        .unwrap();
    assert_eq!(first.state, LineState::Suspended);
    assert_eq!(second.state, LineState::Suspended);
    assert_eq!(
        w.stats().await["orders"]["total"].as_u64().unwrap(),
        before + 1
    );
});

both_backends!(
    a_retry_that_joins_a_keyed_command_in_flight_reports_it_and_changes_the_line_once,
    |store| async move {
        // Two workers carrying out one offboarding decision: the second finds the first's
        // operation pending, drives it too, and both see the provider finish.
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "req-race").await;
        w.hold_orders().await;
        let key = Some("offboarding-case:race:terminate:terminate".to_owned());
        let terminate = || {
            let (lineup, tenant, id, key) = (w.lineup.clone(), w.tenant, line.id, key.clone());
            tokio::spawn(async move { lineup.terminate_line(tenant, &ADMIN, id, key).await })
        };
        let first = terminate();
        let order = loop {
            let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
            let ops = store::operations::list_for_line(&mut tx, w.tenant, line.id)
                .await
                .unwrap();
            drop(tx);
            let terminate = ops.iter().filter(|op| op.kind.as_str() == "terminate");
            if let Some(order) = terminate
                .filter_map(|op| op.provider_order_id.clone())
                .next()
            {
                break order;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let second = terminate();
        // Long enough for the second to be polling the same order.
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.sim(
            reqwest::Method::POST,
            &format!("/_sim/orders/{order}/complete"),
            Some(json!({})),
        )
        .await;
        for outcome in [first.await.unwrap(), second.await.unwrap()] {
            let reported = outcome.expect("both callers report the terminated line");
            assert_eq!(reported.state, LineState::Terminated);
        }
        let actions = w.audit_actions("line", &line.id.to_string()).await;
        assert_eq!(
            actions.iter().filter(|a| *a == "line.terminated").count(),
            1,
            "{actions:?}"
        );
        assert_eq!(
            w.stats().await["orders"]["by_type"]["terminate_subscription"],
            1
        );
    }
);

both_backends!(
    another_tenant_cannot_touch_this_tenants_lines,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "req-iso").await;
        let other = add_tenant(&w.lineup, "globex").await;
        let outsider = Actor::System;
        for attempt in [
            w.lineup.suspend_line(other, &outsider, line.id, None).await,
            w.lineup
                .terminate_line(other, &outsider, line.id, None)
                .await,
            w.lineup.line(other, line.id).await,
        ] {
            assert!(
                matches!(attempt, Err(CoreError::NotFound { what: "line", .. })),
                "{attempt:?}"
            );
        }
        let stolen = IssueLine {
            employee_id: w.ada.id,
            plan_id: w.plans[0].id,
            issue_key: "x".into(),
        };
        let err = w
            .lineup
            .issue_line(other, &outsider, stolen)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::NotFound {
                    what: "employee",
                    ..
                }
            ),
            "{err}"
        );
        assert!(w.lineup.lines(other).await.unwrap().is_empty());
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Active
        );
    }
);

both_backends!(
    fifty_lines_under_provider_faults_make_exactly_fifty_subscriptions,
    |store| async move {
        let w = Arc::new(World::new(store).await);
        let mut people = Vec::new();
        for i in 0..50 {
            people.push(add_employee(&w.lineup, w.tenant, &format!("person{i}"), None).await);
        }
        // Prime the token before faults start, then turn on 30 % errors and 10 % dropped connections.
        w.lineup.shared_provider().list_plans().await.unwrap();
        w.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(json!({
                "error_rate": 0.3,
                "error_statuses": {"500": 1, "503": 1, "429": 1},
                "error_after_processing": 0.5,
                "drop_connection_rate": 0.1,
                "retry_after_s": 0
            })),
        )
        .await;
        let mut calls = tokio::task::JoinSet::new();
        for person in people {
            let w = w.clone();
            calls.spawn(async move {
                let cmd = IssueLine {
                    employee_id: person.id,
                    plan_id: w.plans[0].id,
                    issue_key: format!("bulk-{}", person.id),
                };
                w.lineup.issue_line(w.tenant, &ADMIN, cmd).await
            });
        }
        let mut ready = 0;
        while let Some(outcome) = calls.join_next().await {
            let line = outcome.unwrap().expect("every issue eventually succeeds");
            assert_eq!(line.state, LineState::Ready);
            ready += 1;
        }
        assert_eq!(ready, 50);
        w.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(json!({"error_rate": 0.0, "drop_connection_rate": 0.0})),
        )
        .await;
        let stats = w.stats().await;
        assert_eq!(stats["subscriptions"]["total"], 50, "{stats}");
        assert_eq!(stats["orders"]["total"], 50, "{stats}");
        assert!(
            stats["faults_injected"].as_u64().unwrap() > 0,
            "faults must actually have happened: {stats}"
        );
    }
);

both_backends!(
    an_order_still_running_at_restart_is_finished_without_a_second_order,
    |store| async move {
        let quick_give_up = PollPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        let w = World::with_poll(store, quick_give_up).await;
        w.hold_orders().await;
        let err = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(&w.ada, "req-slow"))
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::ProviderTimeout(_)), "{err}");
        let waiting = w.lineup.lines(w.tenant).await.unwrap().remove(0);
        assert_eq!(
            waiting.state,
            LineState::Provisioning,
            "a slow provider is not a failed line"
        );

        // The provider finishes while we are down; a fresh process resumes with the stored key.
        let orders = w.sim(reqwest::Method::GET, "/_sim/stats", None).await;
        assert_eq!(orders["orders"]["total"], 1);
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let ops = store::operations::list_for_line(&mut tx, w.tenant, waiting.id)
            .await
            .unwrap();
        drop(tx);
        let order = ops[0]
            .provider_order_id
            .clone()
            .expect("the order id was recorded before polling");
        w.sim(
            reqwest::Method::POST,
            &format!("/_sim/orders/{order}/complete"),
            Some(json!({})),
        )
        .await;
        let restarted = lineup_for(w.lineup.store(), &w.sim, PollPolicy::default());
        assert_eq!(restarted.resume_in_flight().await.unwrap(), 1);
        let line = restarted.line(w.tenant, waiting.id).await.unwrap();
        assert_eq!(line.state, LineState::Ready);
        assert!(line.activation_code.is_some());
        assert_eq!(
            w.stats().await["orders"]["total"],
            1,
            "the restart replayed, not re-ordered"
        );
    }
);

fn credentials_of(account: &lineup_simulator::AccountCredentials) -> ProviderCredentials {
    ProviderCredentials {
        client_id: account.client_id.clone(),
        client_secret: account.client_secret.clone(),
        account_id: account.account_id.clone(),
    }
}

/// The offering ids of one simulator account's catalogue.
async fn offerings_of(w: &World, account_id: &str) -> BTreeSet<String> {
    let fixtures = w
        .sim(
            reqwest::Method::GET,
            &format!("/_sim/fixtures?account_id={account_id}"),
            None,
        )
        .await;
    fixtures["product_offerings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(
    two_tenants_on_two_accounts_of_one_simulator_never_see_each_others_data,
    |store| async move {
        let w = World::new(store).await;
        let account_a = w.sim.add_account("Alpha Co", None, None).unwrap();
        let account_b = w.sim.add_account("Beta Co", None, None).unwrap();
        let alpha = add_tenant(&w.lineup, "alpha").await;
        let beta = add_tenant(&w.lineup, "beta").await;
        let (connection_a, plans_a) = w
            .lineup
            .connect_provider(alpha, &ADMIN, credentials_of(&account_a))
            .await
            .unwrap();
        let (connection_b, plans_b) = w
            .lineup
            .connect_provider(beta, &ADMIN, credentials_of(&account_b))
            .await
            .unwrap();

        // Plans: each tenant's catalogue is its own account's, and nobody else's.
        let (offered_a, offered_b) = (
            offerings_of(&w, &account_a.account_id).await,
            offerings_of(&w, &account_b.account_id).await,
        );
        assert!(offered_a.is_disjoint(&offered_b));
        assert!(!plans_a.is_empty() && !plans_b.is_empty());
        assert!(plans_a.iter().all(|p| offered_a.contains(&p.offering_id)));
        assert!(plans_b.iter().all(|p| offered_b.contains(&p.offering_id)));
        assert!(
            w.plans
                .iter()
                .all(|p| !offered_a.contains(&p.offering_id)
                    && !offered_b.contains(&p.offering_id)),
            "the server-wide account's tenant keeps its own catalogue"
        );

        // Orders: each line is ordered in its tenant's account, and the other account's
        // client cannot even see it.
        let issue = |tenant, plan: &lineup_core::lines::plan::Plan, who: &str| {
            let lineup = w.lineup.clone();
            let (plan, who) = (plan.id, who.to_owned());
            async move {
                let employee = add_employee(&lineup, tenant, &who, None).await;
                let cmd = IssueLine {
                    employee_id: employee.id,
                    plan_id: plan,
                    issue_key: format!("iso-{who}"),
                };
                lineup.issue_line(tenant, &ADMIN, cmd).await.unwrap()
            }
        };
        let line_a = issue(alpha, &plans_a[0], "amy").await;
        let line_b = issue(beta, &plans_b[0], "bob").await;
        assert_eq!(line_a.state, LineState::Ready);
        assert_eq!(line_b.state, LineState::Ready);
        let (sub_a, sub_b) = (
            line_a.provider_subscription_id.clone().unwrap(),
            line_b.provider_subscription_id.clone().unwrap(),
        );
        let (provider_a, provider_b) = (
            w.lineup.provider_for(alpha).await.unwrap(),
            w.lineup.provider_for(beta).await.unwrap(),
        );
        provider_a.get_subscription(&sub_a).await.unwrap();
        provider_b.get_subscription(&sub_b).await.unwrap();
        for (provider, foreign) in [(&provider_a, &sub_b), (&provider_b, &sub_a)] {
            assert!(
                matches!(
                    provider.get_subscription(foreign).await,
                    Err(ProviderError::NotFound(_))
                ),
                "{foreign} belongs to the other account"
            );
        }
        let server_default = w.lineup.shared_provider();
        assert!(server_default.get_subscription(&sub_a).await.is_err());

        // Usage: each tenant's sync reads its own account's records only.
        for (sub, mb) in [(&sub_a, 3), (&sub_b, 5)] {
            w.sim(
                reqwest::Method::POST,
                &format!("/_sim/subscriptions/{sub}/usage"),
                Some(json!({"data_bytes": mb * 1_000_000, "country": "US"})),
            )
            .await;
        }
        let today = store::now().date();
        let window = UsageQuery {
            from: today - time::Duration::days(1),
            to: today,
            subscription_id: None,
            cursor: None,
        };
        let seen_a = provider_a.usage(&window).await.unwrap().items;
        assert!(!seen_a.is_empty());
        assert!(
            seen_a.iter().all(|r| r.subscription_id == sub_a),
            "{seen_a:?}"
        );
        for (tenant, line, bytes) in [(alpha, &line_a, 3_000_000), (beta, &line_b, 5_000_000)] {
            let report = w
                .lineup
                .sync_usage(tenant, window.from, window.to)
                .await
                .unwrap();
            assert_eq!(report.recorded, 1, "{tenant}: its own record only");
            let days = w.lineup.daily_usage(tenant, line.id).await.unwrap();
            assert_eq!(days.iter().map(|d| d.data_bytes).sum::<i64>(), bytes);
        }

        // Webhooks: an event about A's line, delivered to B's URL, changes nothing, whether
        // signed with A's secret (refused) or B's (no line of B's matches).
        let event = json!({"id": "evt_iso", "type": "usage.threshold_reached",
            "data": {"subscription_id": sub_a, "threshold_pct": 80}})
        .to_string();
        let sign = |secret: &str| {
            lineup_simulator::signature_header(secret, store::now().unix_timestamp(), &event)
        };
        let secret_of = |tenant| {
            let lineup = w.lineup.clone();
            async move {
                lineup
                    .provider_connection(tenant)
                    .await
                    .unwrap()
                    .unwrap()
                    .webhook_secret
            }
        };
        let (secret_a, secret_b) = (secret_of(alpha).await, secret_of(beta).await);
        assert_ne!(secret_a, secret_b);
        let jobs_before = queued_jobs(&w).await;
        let refused = w
            .lineup
            .accept_connection_webhook(
                connection_b.id,
                Some(&sign(&secret_a)),
                event.as_bytes(),
                store::now(),
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, CoreError::Webhook(_)), "{refused}");
        let ignored = w
            .lineup
            .accept_connection_webhook(
                connection_b.id,
                Some(&sign(&secret_b)),
                event.as_bytes(),
                store::now(),
            )
            .await
            .unwrap();
        assert_eq!((ignored.events, ignored.syncs_queued), (1, 0));
        let by_server_url = w
            .lineup
            .accept_provider_webhook(
                Some(&sign(lineup_testkit::world::WEBHOOK_SECRET)),
                event.as_bytes(),
                store::now(),
            )
            .await
            .unwrap();
        assert_eq!(
            by_server_url.syncs_queued, 0,
            "the server-wide URL does not act for a tenant with its own connection"
        );
        assert_eq!(queued_jobs(&w).await, jobs_before, "nothing was queued");
        // The same delivery to A's own URL is acted on.
        let acted = w
            .lineup
            .accept_connection_webhook(
                connection_a.id,
                Some(&sign(&secret_a)),
                event.as_bytes(),
                store::now(),
            )
            .await
            .unwrap();
        assert_eq!(acted.syncs_queued, 1);
    }
);

async fn queued_jobs(w: &World) -> usize {
    let mut tx = w.lineup.store().system().await.unwrap();
    store::jobs::count_by_state(&mut tx, lineup_core::jobs::USAGE_SYNC)
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| *n as usize)
        .sum()
}

both_backends!(
    a_signed_up_company_has_no_provider_until_it_connects_one,
    |store| async move {
        let w = World::new(store).await;
        let new = NewTenant {
            slug: Slug::parse("initech").unwrap(),
            name: "Initech".into(),
            currency: lineup_core::money::Currency::USD,
        };
        let email = Email::parse("bill@initech.example").unwrap();
        w.lineup
            .sign_up(
                new,
                &email,
                "Bill",
                "a long test password",
                &|slug, token| format!("http://{slug}.lineup.test/verify-email/{token}"),
            )
            .await
            .unwrap();
        let initech = w
            .lineup
            .tenant_by_slug(&Slug::parse("initech").unwrap())
            .await
            .unwrap()
            .unwrap()
            .id;
        assert_eq!(
            w.lineup.provider_status(initech).await.unwrap(),
            ProviderStatus::NotConnected
        );
        assert!(matches!(
            w.lineup.sync_plans(initech, &ADMIN).await,
            Err(CoreError::ProviderNotConnected)
        ));
        let employee = add_employee(&w.lineup, initech, "milton", None).await;
        let refused = w
            .lineup
            .issue_line(
                initech,
                &ADMIN,
                IssueLine {
                    employee_id: employee.id,
                    plan_id: w.plans[0].id,
                    issue_key: "no-provider".into(),
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, CoreError::ProviderNotConnected),
            "{refused}"
        );
        assert!(refused.to_string().contains("Settings → Provider"));
        assert!(
            w.lineup.lines(initech).await.unwrap().is_empty(),
            "nothing written"
        );
        assert_eq!(
            w.lineup.schedule_plan_syncs(store::now()).await.unwrap(),
            1,
            "acme only"
        );

        // Connecting the trial account makes it a tenant like any other.
        let trial = w.sim.trial_account();
        let (_, plans) = w
            .lineup
            .connect_provider(initech, &ADMIN, credentials_of(&trial))
            .await
            .unwrap();
        assert!(matches!(
            w.lineup.provider_status(initech).await.unwrap(),
            ProviderStatus::Own { plans: n, .. } if n == plans.len()
        ));
    }
);
