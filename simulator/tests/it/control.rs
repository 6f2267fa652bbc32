use crate::harness::Harness;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn stats_and_request_log_track_api_traffic() {
    let harness = Harness::start().await;
    harness.active_line("US 1GB", "stats@lineup.example").await;
    let response = harness
        .http
        .get(harness.url("/enterprise/accounts"))
        .bearer_auth(&harness.token)
        .header("x-correlation-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "trace-me");

    let stats = harness.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["subscriptions"]["total"], 1);
    assert_eq!(stats["subscriptions"]["active"], 1);
    assert_eq!(stats["subscriptions"]["pending"], 0);
    assert_eq!(stats["orders"]["total"], 1);
    assert_eq!(stats["orders"]["by_type"]["activate_subscription"], 1);
    assert_eq!(stats["orders"]["by_status"]["completed"], 1);
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["faults_injected"], 0);
    let requests = stats["requests"].as_u64().unwrap();

    let log = harness.control(Method::GET, "/_sim/requests", None).await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len() as u64, requests);
    assert!(
        log.iter()
            .all(|entry| !entry["path"].as_str().unwrap().starts_with("/_sim"))
    );
    let traced = log
        .iter()
        .find(|entry| entry["correlation_id"] == "trace-me")
        .unwrap();
    assert_eq!(traced["method"], "GET");
    assert_eq!(traced["path"], "/enterprise/accounts");
    assert_eq!(traced["status"], 200);
    assert_eq!(traced["idempotency_key"], Value::Null);
    assert_eq!(traced["fault"], Value::Null);
    assert!(traced["at"].is_string());

    let cleared = harness
        .http
        .delete(harness.url("/_sim/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    let log = harness.control(Method::GET, "/_sim/requests", None).await;
    assert_eq!(log.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn reset_restores_fixtures_with_the_same_ids() {
    let harness = Harness::start().await;
    let before = harness.control(Method::GET, "/_sim/fixtures", None).await;
    harness.active_line("US 1GB", "r@lineup.example").await;
    let reset = harness.control(Method::POST, "/_sim/reset", None).await;
    assert_eq!(reset["account_id"], harness.sim.account_id());
    let after = harness.control(Method::GET, "/_sim/fixtures", None).await;
    assert_eq!(before, after);
    let stats = harness.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats["subscriptions"]["total"], 0);

    let names: Vec<&str> = after["product_offerings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for name in [
        "US 1GB",
        "US 5GB",
        "Global 10GB",
        "Europe 10GB",
        "Unlimited US",
        "Top-up 1GB",
    ] {
        assert!(names.contains(&name), "{name} missing");
    }
}

#[tokio::test]
async fn config_round_trips_partial_updates() {
    let harness = Harness::start().await;
    let config = harness.control(Method::GET, "/_sim/config", None).await;
    assert_eq!(config["token_ttl_s"], 300);
    assert_eq!(config["thresholds_pct"], json!([80]));
    harness
        .configure(json!({"webhooks": {"duplicate_rate": 0.5}, "cap_policy": "throttle"}))
        .await;
    let config = harness.control(Method::GET, "/_sim/config", None).await;
    assert_eq!(config["webhooks"]["duplicate_rate"], 0.5);
    assert_eq!(config["webhooks"]["max_attempts"], 5);
    assert_eq!(config["cap_policy"], "throttle");

    let rejected = harness
        .http
        .put(harness.url("/_sim/config"))
        .json(&json!({"error_rate": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);
}
