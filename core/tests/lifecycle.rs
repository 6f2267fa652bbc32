//! Line lifecycle commands end to end: core → HTTP adapter → provider simulator over real
//! sockets, with storage on SQLite and on a throwaway PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use lineup_core::audit::Actor;
use lineup_core::email::Email;
use lineup_core::employee::{Employee, NewEmployee};
use lineup_core::ids::TenantId;
use lineup_core::line::lifecycle::IssueLine;
use lineup_core::line::{Line, LineState};
use lineup_core::money::Currency;
use lineup_core::plan::Plan;
use lineup_core::provider::PollPolicy;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use lineup_core::store::{self, Store};
use lineup_core::tenant::{Slug, commands::NewTenant};
use lineup_core::{CoreError, Lineup};
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use lineup_testkit::{TestStore, both_backends};
use serde_json::{Value, json};

struct World {
    lineup: Lineup,
    sim: RunningSimulator,
    http: reqwest::Client,
    tenant: TenantId,
    staff: Vec<Employee>,
    plans: Vec<Plan>,
    _store: TestStore,
}

const ADMIN: Actor = Actor::System;

async fn world(store: TestStore) -> World {
    world_with(
        store,
        PollPolicy {
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(20),
        },
    )
    .await
}

async fn world_with(store: TestStore, poll: PollPolicy) -> World {
    let sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await
    .unwrap();
    let lineup = lineup_for(&store, &sim, poll);
    let tenant = add_tenant(&lineup, "acme").await;
    let mut staff = Vec::new();
    for name in ["ada", "grace", "alan"] {
        staff.push(add_employee(&lineup, tenant, name).await);
    }
    let plans = lineup.sync_plans(tenant, &ADMIN).await.unwrap();
    World {
        lineup,
        sim,
        http: reqwest::Client::new(),
        tenant,
        staff,
        plans,
        _store: store,
    }
}

fn lineup_for(store: &Store, sim: &RunningSimulator, poll: PollPolicy) -> Lineup {
    let mut config = OneGlobalConfig::new(
        sim.base_url(),
        "lineup-demo",
        "lineup-demo-secret",
        sim.account_id(),
    );
    config.retry = RetryPolicy {
        max_attempts: 20,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    Lineup::new(
        store.clone(),
        Arc::new(OneGlobalProvider::new(config).unwrap()),
        poll,
    )
}

async fn add_tenant(lineup: &Lineup, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: Slug::parse(slug).unwrap(),
        name: slug.into(),
        currency: Currency::USD,
    };
    lineup.create_tenant(&ADMIN, new).await.unwrap().id
}

async fn add_employee(lineup: &Lineup, tenant: TenantId, name: &str) -> Employee {
    let new = NewEmployee {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        given_name: name.into(),
        family_name: "Tester".into(),
        team_id: None,
        cost_centre_id: None,
        manager_id: None,
    };
    lineup.add_employee(tenant, &ADMIN, new).await.unwrap()
}

impl World {
    fn issue(&self, who: usize, key: &str) -> IssueLine {
        IssueLine {
            employee_id: self.staff[who].id,
            plan_id: self.plans[0].id,
            issue_key: key.into(),
        }
    }

    async fn ready_line(&self, key: &str) -> Line {
        let line = self
            .lineup
            .issue_line(self.tenant, &ADMIN, self.issue(0, key))
            .await
            .unwrap();
        assert_eq!(line.state, LineState::Ready);
        line
    }

    async fn active_line(&self, key: &str) -> Line {
        let line = self.ready_line(key).await;
        for _ in 0..100 {
            let refreshed = self
                .lineup
                .refresh_activation(self.tenant, line.id)
                .await
                .unwrap();
            if refreshed.state == LineState::Active {
                return refreshed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the simulator never installed the profile");
    }

    async fn sim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn stats(&self) -> Value {
        self.sim(reqwest::Method::GET, "/_sim/stats", None).await
    }

    async fn audit_actions(&self, line: &Line) -> Vec<String> {
        let mut tx = self.lineup.store().tenant(self.tenant).await.unwrap();
        store::audit::list_for_subject(&mut tx, self.tenant, "line", &line.id.to_string())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

both_backends!(
    issuing_a_line_stores_its_activation_code_and_audit_trail,
    |store| async move {
        let w = world(store).await;
        let line = w.ready_line("req-1").await;
        let code = line.activation_code.clone().expect("an activation code");
        assert!(code.lpa_string().starts_with("LPA:1$"));
        assert!(line.iccid.is_some() && line.provider_subscription_id.is_some());
        assert_eq!(w.lineup.line(w.tenant, line.id).await.unwrap(), line);
        assert_eq!(
            w.audit_actions(&line).await,
            [
                "line.requested",
                "line.provisioning_started",
                "line.provisioned"
            ]
        );
        assert_eq!(w.stats().await["subscriptions"]["total"], 1);
    }
);

both_backends!(
    the_same_issue_twice_or_at_once_gives_one_line_and_one_order,
    |store| async move {
        let w = Arc::new(world(store).await);
        let first = w.ready_line("req-dup").await;
        let again = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(0, "req-dup"))
            .await
            .unwrap();
        assert_eq!(again.id, first.id);

        let mut racing = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let w = w.clone();
            racing.spawn(async move {
                w.lineup
                    .issue_line(w.tenant, &ADMIN, w.issue(1, "req-race"))
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
        let w = world(store).await;
        let line = w.active_line("req-life").await;
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
            .transfer_line(t, &ADMIN, line.id, w.staff[2].id)
            .await
            .unwrap();
        assert_eq!(moved.employee_id, w.staff[2].id);
        let ended = w
            .lineup
            .terminate_line(t, &ADMIN, line.id, None)
            .await
            .unwrap();
        assert_eq!(ended.state, LineState::Terminated);

        let sub = line.provider_subscription_id.clone().unwrap();
        let remote = w
            .sim(reqwest::Method::GET, &format!("/_sim/stats"), None)
            .await;
        assert_eq!(remote["subscriptions"]["terminated"], 1, "{remote}");
        assert!(!sub.is_empty());
        assert_eq!(
            w.audit_actions(&line).await,
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
        let w = world(store).await;
        let line = w.active_line("req-illegal").await;
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
            .transfer_line(t, &ADMIN, line.id, w.staff[1].id)
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
        let w = world(store).await;
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
            .issue_line(w.tenant, &ADMIN, w.issue(0, "req-fail"))
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
            w.audit_actions(&failed)
                .await
                .contains(&"line.failed".to_owned())
        );
    }
);

both_backends!(a_retried_command_key_places_one_order, |store| async move {
    let w = world(store).await;
    let line = w.active_line("req-key").await;
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
    another_tenant_cannot_touch_this_tenants_lines,
    |store| async move {
        let w = world(store).await;
        let line = w.active_line("req-iso").await;
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
            employee_id: w.staff[0].id,
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
        let w = Arc::new(world(store).await);
        let mut people = Vec::new();
        for i in 0..50 {
            people.push(add_employee(&w.lineup, w.tenant, &format!("person{i}")).await);
        }
        // Prime the token before faults start, then turn on 30 % errors and 10 % dropped connections.
        w.lineup.provider().list_plans().await.unwrap();
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
        };
        let w = world_with(store, quick_give_up).await;
        w.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(json!({"order_delay_ms": {"min": 3_600_000, "max": 3_600_000}})),
        )
        .await;
        let err = w
            .lineup
            .issue_line(w.tenant, &ADMIN, w.issue(0, "req-slow"))
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
