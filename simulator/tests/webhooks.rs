mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::Harness;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut calls = receiver.calls.lock().unwrap();
    calls.push((headers, String::from_utf8(body.to_vec()).unwrap()));
    // The first delivery fails so the simulator has to retry.
    if calls.len() == 1 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

fn verify(secret: &str, header: &str, body: &str) -> bool {
    let (t, v1) = header.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

#[tokio::test]
async fn signed_webhook_is_retried_after_a_500() {
    let harness = Harness::start().await;
    let (url, receiver) = start_receiver().await;
    let created = harness
        .post(
            "/enterprise/webhooks",
            &json!({"url": url, "events": ["order.completed"], "secret": "shh"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let webhook: Value = created.json().await.unwrap();
    assert!(webhook["id"].as_str().unwrap().starts_with("wh_"));

    let subscription_id = harness.active_line("US 1GB", "w@lineup.example").await;

    // The first attempt gets a 500; the retry is due one simulated second later.
    for _ in 0..200 {
        if !receiver.calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 2})),
        )
        .await;
    for _ in 0..200 {
        if receiver.calls.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = receiver.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one failed attempt and one retry");
    for (headers, body) in &calls {
        let signature = headers["x-sim-signature"].to_str().unwrap();
        assert!(verify("shh", signature, body), "bad signature {signature}");
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "order.completed");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert!(event["occurred_at"].is_string());
        assert_eq!(event["data"]["subscription_id"], subscription_id);
    }
    assert_eq!(calls[0].1, calls[1].1, "a retry sends the same event");

    tokio::time::sleep(Duration::from_millis(50)).await;
    let deliveries = harness
        .control(Method::GET, "/_sim/webhooks/deliveries", None)
        .await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"][0]["status"], 500);
    assert_eq!(delivery["attempts"][1]["status"], 200);

    let redelivered = harness
        .control(
            Method::POST,
            &format!(
                "/_sim/webhooks/deliveries/{}/redeliver",
                delivery["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(redelivered["status"], "pending");
    for _ in 0..200 {
        if receiver.calls.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(receiver.calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn connect_notifications_fire_for_download_progress_and_thresholds() {
    let harness = Harness::start().await;
    let (url, receiver) = start_receiver().await;
    let subscription_id = harness.active_line("US 1GB", "n@lineup.example").await;
    let profile = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/sim-profile"
        ))
        .await;
    let iccid = profile["iccid"].as_str().unwrap();
    for kind in ["USAGE_THRESHOLD", "DOWNLOAD_PROGRESS"] {
        let response = harness
            .http
            .put(harness.url(&format!(
                "/connect-api/v1/sim/{iccid}/preferences/notifications/{kind}"
            )))
            .bearer_auth(&harness.token)
            .json(&json!({"webhook_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    harness
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{subscription_id}/usage"),
            Some(json!({"data_bytes": 900 * 1024 * 1024})),
        )
        .await;
    harness
        .control(
            Method::POST,
            &format!("/_sim/sim-profiles/{iccid}/events"),
            Some(json!({"status": "deleted"})),
        )
        .await;
    // The receiver fails its first call; advance past the retry delay.
    harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 2})),
        )
        .await;
    let mut types = Vec::new();
    for _ in 0..300 {
        types = receiver
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap())
            .map(|payload| (payload["type"].as_str().unwrap().to_string(), payload))
            .map(|(kind, _)| kind)
            .collect::<Vec<_>>();
        if types.contains(&"USAGE_THRESHOLD".to_string())
            && types.contains(&"DOWNLOAD_PROGRESS".to_string())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(types.contains(&"USAGE_THRESHOLD".to_string()), "{types:?}");
    assert!(
        types.contains(&"DOWNLOAD_PROGRESS".to_string()),
        "{types:?}"
    );
}
