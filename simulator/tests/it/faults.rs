use crate::harness::Harness;
use lineup_simulator::SimConfig;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn targeted_fault_fails_twice_then_succeeds() {
    let harness = Harness::start().await;
    let fault = harness
        .control(
            Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "GET", "path_prefix": "/enterprise/accounts"},
                "action": {"status": 503},
                "times": 2,
            })),
        )
        .await;
    assert!(fault["id"].as_str().unwrap().starts_with("flt_"));

    for _ in 0..2 {
        let response = harness.get("/enterprise/accounts").await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "SERVICE_UNAVAILABLE");
    }
    assert_eq!(harness.get("/enterprise/accounts").await.status(), 200);

    let faults = harness.control(Method::GET, "/_sim/faults", None).await;
    assert_eq!(faults[0]["remaining"], 0);
    assert_eq!(faults[0]["hits"], 2);
}

#[tokio::test]
async fn injected_429_carries_retry_after() {
    let harness = Harness::start().await;
    harness
        .configure(json!({"error_rate": 1.0, "error_statuses": {"429": 1}, "error_after_processing": 0.0, "retry_after_s": 3}))
        .await;
    let response = harness.get("/enterprise/accounts").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "TOO_MANY_REQUESTS");

    harness.configure(json!({"error_rate": 0.0})).await;
    assert_eq!(harness.get("/enterprise/accounts").await.status(), 200);
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers() {
    let harness = Harness::start_with(SimConfig {
        rate_limit_per_min: 2,
        ..SimConfig::for_tests()
    })
    .await;
    let first = harness.get("/enterprise/accounts").await;
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert_eq!(harness.get("/enterprise/accounts").await.status(), 200);
    let limited = harness.get("/enterprise/accounts").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Buckets are per route template.
    assert_eq!(harness.get("/enterprise/subscriptions").await.status(), 200);
}

#[tokio::test]
async fn dropped_connection_after_processing_keeps_the_order_and_replays_it() {
    let harness = Harness::start().await;
    harness
        .control(
            Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "POST", "path_prefix": "/enterprise/orders", "order_type": "activate_subscription"},
                "action": {"drop_connection": true},
                "phase": "after",
                "times": 1,
            })),
        )
        .await;
    let template_id = harness.template_id("US 1GB").await;
    let body = harness.activation_body(&template_id, "drop@lineup.example");

    let dropped = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "drop-key")
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection should be dropped: {dropped:?}"
    );

    let orders = harness.get_json("/enterprise/orders").await;
    let orders = orders["_embedded"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);

    let retry = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "drop-key")
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 202);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], orders[0]["id"]);

    let log = harness.control(Method::GET, "/_sim/requests", None).await;
    let posts: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["method"] == "POST" && entry["path"] == "/enterprise/orders")
        .collect();
    assert_eq!(posts.len(), 2, "{log:#}");
    assert_eq!(posts[0]["status"], Value::Null);
    assert!(posts[0]["fault"].as_str().unwrap().starts_with("flt_"));
    assert_eq!(posts[1]["status"], 202);
}

#[tokio::test]
async fn error_after_processing_applies_the_change() {
    let harness = Harness::start().await;
    let template_id = harness.template_id("US 1GB").await;
    harness
        .configure(
            json!({"error_rate": 1.0, "error_statuses": {"500": 1}, "error_after_processing": 1.0}),
        )
        .await;
    let response = harness
        .post(
            "/enterprise/orders",
            &harness.activation_body(&template_id, "e@lineup.example"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    harness.configure(json!({"error_rate": 0.0})).await;
    let orders = harness.get_json("/enterprise/orders").await;
    assert_eq!(orders["_embedded"]["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn order_level_fault_cancels_the_order_asynchronously() {
    let harness = Harness::start().await;
    harness
        .control(
            Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"order_type": "activate_subscription"},
                "action": {"cancel_with": "PROVISIONING_FAILED"},
                "times": 1,
            })),
        )
        .await;
    let template_id = harness.template_id("US 1GB").await;
    let order = harness
        .place_order(&harness.activation_body(&template_id, "c@lineup.example"))
        .await;
    let order = harness.wait_for_order(order["id"].as_str().unwrap()).await;
    assert_eq!(order["status"], "canceled");
    assert_eq!(order["failure"]["code"], "PROVISIONING_FAILED");
}
