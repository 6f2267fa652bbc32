//! Several providers per tenant: routing rules, the circuit breaker and failover of new
//! orders, and lines that stay with their provider — on both backends, against two real
//! simulators (the alternative's vendor kind is all that names it, so it can be any vendor's
//! simulator).

use std::time::Duration;

use lineup_core::CoreError;
use lineup_core::Lineup;
use lineup_core::ids::TenantId;
use lineup_core::lines::line::{Line, LineState};
use lineup_core::lines::plan::Plan;
use lineup_core::lines::request::commands::{Fulfilment, SubmitRequest};
use lineup_core::lines::request::{Decision, RequestDetails};
use lineup_core::organisation::employee::Employee;
use lineup_core::provider::circuit::{CircuitHealth, CircuitPolicy};
use lineup_core::provider::connection::{
    NewConnection, ProviderConnection, ProviderConnector, ProviderCredentials, VendorApi,
};
use lineup_core::provider::routing::{NewRouteRule, RoutePlanKind};
use lineup_core::store;
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World, add_employee, add_tenant};
use serde_json::{Value, json};

/// The alternative's vendor kind. Switching the test to another vendor's simulator means
/// registering that vendor's kind and adapter here instead.
const STANDBY_VENDOR: &str = "1global-standby";
const COOL_DOWN: Duration = Duration::from_millis(1500);
const FAILURES_TO_OPEN: u32 = 3;

/// A tenant with two connections: 1GLOBAL (an account of the world's simulator) first, and
/// "Standby" (a second simulator) after it.
struct TwoProviders {
    lineup: Lineup,
    standby_sim: RunningSimulator,
    tenant: TenantId,
    primary: ProviderConnection,
    standby: ProviderConnection,
    primary_plans: Vec<Plan>,
    standby_plans: Vec<Plan>,
}

async fn two_providers(w: &World) -> TwoProviders {
    let standby_sim = lineup_simulator::spawn(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig::for_tests(),
        Credentials::default(),
    )
    .await
    .unwrap();
    let lineup = w
        .lineup
        .clone()
        .with_provider_connector(
            ProviderConnector::new(w.sim.base_url())
                .with_retry(quick_retries())
                .with_vendor(STANDBY_VENDOR, VendorApi::OneGlobal, standby_sim.base_url()),
        )
        .with_circuit_policy(CircuitPolicy {
            failures_to_open: FAILURES_TO_OPEN,
            cool_down: COOL_DOWN,
        });
    let tenant = add_tenant(&lineup, "globex").await;
    let account = w.sim.add_account("Globex", None, None).unwrap();
    let (primary, _) = lineup
        .connect_provider(
            tenant,
            &ADMIN,
            ProviderCredentials {
                client_id: account.client_id,
                client_secret: account.client_secret,
                account_id: account.account_id,
            },
        )
        .await
        .unwrap();
    let defaults = Credentials::default();
    let (standby, plans) = lineup
        .add_provider_connection(
            tenant,
            &ADMIN,
            NewConnection {
                vendor: STANDBY_VENDOR.into(),
                label: "Standby".into(),
                credentials: ProviderCredentials {
                    client_id: defaults.client_id.clone(),
                    client_secret: defaults.client_secret.clone(),
                    account_id: standby_sim.account_id(),
                },
            },
        )
        .await
        .unwrap();
    let of = |id| -> Vec<Plan> {
        plans
            .iter()
            .filter(|p| p.active && p.provider_connection_id == Some(id))
            .cloned()
            .collect()
    };
    TwoProviders {
        primary_plans: of(primary.id),
        standby_plans: of(standby.id),
        lineup,
        standby_sim,
        tenant,
        primary,
        standby,
    }
}

fn quick_retries() -> lineup_core::provider::oneglobal::RetryPolicy {
    lineup_core::provider::oneglobal::RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

async fn sim_call(
    base_url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{base_url}{path}"));
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

/// Every API call of the simulator answers 503 (`true`), or none does. The 503 comes before
/// the call is processed, as a gateway's does: a 503 after an order was taken is a different
/// failure (the order exists), which reconciliation finds, and failover cannot rule out.
async fn set_outage(base_url: &str, down: bool) {
    let mut config = sim_call(base_url, reqwest::Method::GET, "/_sim/config", None).await;
    config["error_rate"] = json!(if down { 1.0 } else { 0.0 });
    config["error_after_processing"] = json!(0.0);
    config["error_statuses"] = json!({"503": 1});
    config["drop_connection_rate"] = json!(0.0);
    sim_call(base_url, reqwest::Method::PUT, "/_sim/config", Some(config)).await;
}

async fn orders_at(base_url: &str) -> u64 {
    sim_call(base_url, reqwest::Method::GET, "/_sim/stats", None).await["orders"]["total"]
        .as_u64()
        .unwrap()
}

/// The employee asks for a line on `plan`, their manager approves, and it is carried out.
async fn approved_line(t: &TwoProviders, who: &Employee, manager: &Employee, plan: &Plan) -> Line {
    let submitted = t
        .lineup
        .submit_request(
            t.tenant,
            SubmitRequest {
                requester: who.id,
                details: RequestDetails::NewLine {
                    plan_id: plan.id,
                    wanted_date: None,
                },
                reason: "new starter".into(),
                dedupe_key: format!("ask-{}", who.id),
            },
        )
        .await
        .unwrap();
    let decided = t
        .lineup
        .decide_request(
            t.tenant,
            manager.id,
            submitted.request.id,
            Decision::Approve,
            None,
        )
        .await
        .unwrap();
    assert!(decided.won);
    let Fulfilment::Line(line) = t
        .lineup
        .fulfil_request(t.tenant, submitted.request.id)
        .await
        .unwrap()
    else {
        panic!("a new line request makes a line");
    };
    line
}

both_backends!(
    with_1global_down_approved_lines_go_to_the_alternative_once_each_and_come_back_after_recovery,
    |store| async move {
        let w = World::new(store).await;
        let t = two_providers(&w).await;
        let boss = add_employee(&t.lineup, t.tenant, "boss", None).await;
        let monthly = t
            .primary_plans
            .iter()
            .find(|p| p.validity == lineup_core::provider::Validity::Monthly)
            .unwrap()
            .clone();
        t.lineup
            .set_provider_routes(
                t.tenant,
                &ADMIN,
                &[NewRouteRule {
                    plan_kind: Some(RoutePlanKind::Monthly),
                    provider_connection_id: Some(t.primary.id),
                    allow_failover: true,
                    ..Default::default()
                }],
            )
            .await
            .unwrap();
        let primary_url = w.sim.base_url();
        let standby_url = t.standby_sim.base_url();
        set_outage(&primary_url, true).await;

        let mut lines = Vec::new();
        let outage = std::time::Instant::now();
        for n in 0..20 {
            let who =
                add_employee(&t.lineup, t.tenant, &format!("hire{n:02}"), Some(boss.id)).await;
            let line = approved_line(&t, &who, &boss, &monthly).await;
            assert_eq!(
                line.state,
                LineState::Ready,
                "{n}: {:?}",
                line.failure_reason
            );
            assert_eq!(line.provider_connection_id, Some(t.standby.id), "{n}");
            assert!(t.standby_plans.iter().any(|p| p.id == line.plan_id));
            assert_eq!(t.lineup.carrier_of(t.tenant, &line).await, "Standby");
            lines.push(line);
        }
        assert_eq!(
            orders_at(&primary_url).await,
            0,
            "1GLOBAL never took an order"
        );
        assert_eq!(
            orders_at(&standby_url).await,
            20,
            "one order per line, no duplicates"
        );
        let mut tried_primary = 0;
        for line in &lines {
            let history = w_actions(&t, line).await;
            tried_primary += history.iter().filter(|a| *a == "line.failed_over").count();
        }
        // The orders before the circuit opened, then at most one trial per cool-down (a
        // loaded machine may take more than one cool-down for the 20 orders).
        let trials = (outage.elapsed().as_secs_f64() / COOL_DOWN.as_secs_f64()) as usize;
        assert!(
            tried_primary >= FAILURES_TO_OPEN as usize
                && tried_primary <= FAILURES_TO_OPEN as usize + trials,
            "{tried_primary} orders tried at 1GLOBAL: only {FAILURES_TO_OPEN} before the \
             circuit opened and at most {trials} trials after cool-downs should be"
        );
        let circuit = t
            .lineup
            .provider_circuits()
            .into_iter()
            .find(|c| c.connection == t.primary.id)
            .unwrap();
        assert_eq!(circuit.health, CircuitHealth::Open);

        // 1GLOBAL recovers: after the cool-down the next order is the trial, and it and the
        // ones after it go back to 1GLOBAL.
        set_outage(&primary_url, false).await;
        tokio::time::sleep(COOL_DOWN + Duration::from_millis(100)).await;
        for n in 0..2 {
            let who = add_employee(&t.lineup, t.tenant, &format!("later{n}"), Some(boss.id)).await;
            let line = approved_line(&t, &who, &boss, &monthly).await;
            assert_eq!(line.state, LineState::Ready);
            assert_eq!(line.provider_connection_id, Some(t.primary.id));
            assert_eq!(t.lineup.carrier_of(t.tenant, &line).await, "1GLOBAL");
        }
        assert_eq!(orders_at(&primary_url).await, 2);
        assert_eq!(orders_at(&standby_url).await, 20);
        let circuit = t
            .lineup
            .provider_circuits()
            .into_iter()
            .find(|c| c.connection == t.primary.id)
            .unwrap();
        assert_eq!(circuit.health, CircuitHealth::Closed);
    }
);

async fn w_actions(t: &TwoProviders, line: &Line) -> Vec<String> {
    t.lineup
        .line_history(t.tenant, line.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

both_backends!(
    a_line_stays_with_its_provider_when_that_one_is_down,
    |store| async move {
        let w = World::new(store).await;
        let t = two_providers(&w).await;
        let ada = add_employee(&t.lineup, t.tenant, "ada", None).await;
        let line = t
            .lineup
            .issue_line(
                t.tenant,
                &ADMIN,
                lineup_core::lines::line::commands::IssueLine {
                    employee_id: ada.id,
                    plan_id: t.primary_plans[0].id,
                    issue_key: "ada-line".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(line.provider_connection_id, Some(t.primary.id));
        set_outage(&w.sim.base_url(), true).await;
        let standby_requests = sim_call(
            &t.standby_sim.base_url(),
            reqwest::Method::GET,
            "/_sim/stats",
            None,
        )
        .await["requests"]
            .clone();
        let refused = t
            .lineup
            .terminate_line(t.tenant, &ADMIN, line.id, None)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("temporarily unavailable"),
            "{refused}"
        );
        let after = t.lineup.line(t.tenant, line.id).await.unwrap();
        assert_eq!(after.state, LineState::Ready, "nothing changed");
        assert_eq!(
            after.provider_connection_id,
            Some(t.primary.id),
            "it did not move"
        );
        let standby_after = sim_call(
            &t.standby_sim.base_url(),
            reqwest::Method::GET,
            "/_sim/stats",
            None,
        )
        .await["requests"]
            .clone();
        assert_eq!(
            standby_requests, standby_after,
            "the standby was never asked"
        );
    }
);

both_backends!(
    a_pinned_rule_never_fails_over_and_bad_rules_are_refused,
    |store| async move {
        let w = World::new(store).await;
        let t = two_providers(&w).await;
        let refused = t
            .lineup
            .set_provider_routes(
                t.tenant,
                &ADMIN,
                &[
                    NewRouteRule {
                        provider_connection_id: Some(t.primary.id),
                        ..Default::default()
                    },
                    NewRouteRule {
                        country: Some("de".into()),
                        provider_connection_id: Some(t.standby.id),
                        ..Default::default()
                    },
                ],
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, CoreError::Invalid { .. }), "{refused}");
        assert!(refused.to_string().contains("rule 2 can never match"));
        let rules = t
            .lineup
            .set_provider_routes(
                t.tenant,
                &ADMIN,
                &[NewRouteRule {
                    provider_connection_id: Some(t.primary.id),
                    allow_failover: false,
                    ..Default::default()
                }],
            )
            .await
            .unwrap();
        assert_eq!(t.lineup.provider_routes(t.tenant).await.unwrap(), rules);
        let audit = {
            let mut tx = t.lineup.store().tenant(t.tenant).await.unwrap();
            store::audit::list_for_subject(&mut tx, t.tenant, "tenant", &t.tenant.to_string())
                .await
                .unwrap()
        };
        assert!(audit.iter().any(|e| e.action == "provider.routes_changed"));

        set_outage(&w.sim.base_url(), true).await;
        let ada = add_employee(&t.lineup, t.tenant, "ada", None).await;
        let failed = t
            .lineup
            .issue_line(
                t.tenant,
                &ADMIN,
                lineup_core::lines::line::commands::IssueLine {
                    employee_id: ada.id,
                    plan_id: t.primary_plans[0].id,
                    issue_key: "pinned".into(),
                },
            )
            .await
            .unwrap_err();
        assert!(
            failed.to_string().contains("temporarily unavailable"),
            "{failed}"
        );
        assert_eq!(orders_at(&t.standby_sim.base_url()).await, 0);

        // Another tenant cannot see or use these connections.
        let other = add_tenant(&t.lineup, "umbrella").await;
        assert!(t.lineup.provider_routes(other).await.unwrap().is_empty());
        let foreign = t
            .lineup
            .set_provider_routes(
                other,
                &ADMIN,
                &[NewRouteRule {
                    provider_connection_id: Some(t.primary.id),
                    ..Default::default()
                }],
            )
            .await
            .unwrap_err();
        assert!(foreign.to_string().contains("not connected"), "{foreign}");
    }
);

both_backends!(
    a_tenant_connects_a_gigs_project_beside_1global_and_its_plans_are_synced,
    |store| async move {
        let w = World::new(store).await;
        w.connect_own_account_and_airalo().await;
        let (gigs, plans) = w
            .lineup
            .add_provider_connection(
                w.tenant,
                &ADMIN,
                NewConnection {
                    vendor: "gigs".into(),
                    label: String::new(),
                    credentials: ProviderCredentials {
                        client_id: "lineup key".into(),
                        client_secret: lineup_simulator::GIGS_API_KEY.into(),
                        account_id: lineup_simulator::GIGS_PROJECT.into(),
                    },
                },
            )
            .await
            .unwrap();
        assert_eq!(gigs.label, "Gigs");
        assert_eq!(gigs.vendor, "gigs");
        let from_gigs: Vec<&Plan> = plans
            .iter()
            .filter(|p| p.provider_connection_id == Some(gigs.id))
            .collect();
        assert!(!from_gigs.is_empty(), "Gigs' plans are synced: {plans:?}");
        let connections = w.lineup.provider_connections(w.tenant).await.unwrap();
        assert_eq!(
            connections
                .iter()
                .map(|c| c.label.as_str())
                .collect::<Vec<_>>(),
            ["1GLOBAL", "Airalo", "Gigs"]
        );

        // A wrong API key is refused before anything is stored.
        let refused = w
            .lineup
            .add_provider_connection(
                w.tenant,
                &ADMIN,
                NewConnection {
                    vendor: "gigs".into(),
                    label: "Gigs again".into(),
                    credentials: ProviderCredentials {
                        client_id: "lineup key".into(),
                        client_secret: "gigs_wrong_key".into(),
                        account_id: lineup_simulator::GIGS_PROJECT.into(),
                    },
                },
            )
            .await;
        assert!(refused.is_err(), "a wrong Gigs key was accepted");
        assert_eq!(
            w.lineup.provider_connections(w.tenant).await.unwrap().len(),
            3
        );
    }
);
