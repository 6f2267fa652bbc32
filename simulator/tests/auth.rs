mod common;

use common::Harness;
use lineup_simulator::TOKEN_PATH;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn token_expires_when_the_clock_passes_its_ttl() {
    let harness = Harness::start().await;
    assert_eq!(harness.get("/enterprise/accounts").await.status(), 200);

    harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 299})),
        )
        .await;
    assert_eq!(harness.get("/enterprise/accounts").await.status(), 200);

    harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 2})),
        )
        .await;
    let response = harness.get("/enterprise/accounts").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "UNAUTHORISED");
    assert_eq!(body["status"], 401);
    assert!(body["correlation_id"].is_string());
}

#[tokio::test]
async fn token_endpoint_rejects_bad_credentials() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .post(harness.url(TOKEN_PATH))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "invalid_client"}));
}

#[tokio::test]
async fn token_response_and_bearer_check() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .post(harness.url(TOKEN_PATH))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "lineup-demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);

    let anonymous = harness
        .http
        .get(harness.url("/enterprise/accounts"))
        .header("x-correlation-id", "corr-123")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["x-correlation-id"], "corr-123");
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["correlation_id"], "corr-123");
}
