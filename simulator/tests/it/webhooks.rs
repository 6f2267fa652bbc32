use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::Harness;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
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

#[tokio::test]
async fn an_accounts_events_go_only_to_its_own_webhooks() {
    let harness = Harness::start().await;
    let other = harness
        .sim
        .add_account("Other Co", Some("other"), Some("other-secret"))
        .unwrap();
    let other_token = harness.token_for("other", "other-secret").await;
    let (url, receiver) = start_receiver().await;
    let created = harness
        .post_as(&other_token, "/enterprise/webhooks", &json!({"url": url}))
        .await;
    assert_eq!(created.status(), 201);
    let hook: Value = created.json().await.unwrap();
    let hook_id = hook["id"].as_str().unwrap();

    // The default account's webhook list does not show it, nor can it delete it.
    let listed = harness.get_json("/enterprise/webhooks").await;
    assert_eq!(listed["_embedded"]["webhooks"], json!([]));
    let deleted = harness
        .http
        .delete(harness.url(&format!("/enterprise/webhooks/{hook_id}")))
        .bearer_auth(&harness.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 404);

    // A line on the default account sends nothing to the other account's webhook.
    let subscription_id = harness.active_line("US 1GB", "quiet@lineup.example").await;
    let profile = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/sim-profile"
        ))
        .await;
    let iccid = profile["iccid"].as_str().unwrap();
    harness
        .control(
            Method::POST,
            &format!("/_sim/sim-profiles/{iccid}/events"),
            Some(json!({"status": "enabled"})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deliveries = harness
        .control(Method::GET, "/_sim/webhooks/deliveries", None)
        .await;
    assert_eq!(deliveries, json!([]));
    assert!(receiver.calls.lock().unwrap().is_empty());

    // Nor can the other account register Connect notifications for that SIM.
    let foreign = harness
        .http
        .put(harness.url(&format!(
            "/connect-api/v1/sim/{iccid}/preferences/notifications/USAGE_THRESHOLD"
        )))
        .bearer_auth(&other_token)
        .json(&json!({"webhook_url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    // The other account's own order is announced to its webhook.
    let template = harness
        .get_json_as(&other_token, "/enterprise/order-templates")
        .await["_embedded"]["order_templates"][0]["id"]
        .clone();
    let order = harness
        .post_as(
            &other_token,
            "/enterprise/orders",
            &json!({
                "type": "activate_subscription",
                "account_id": other.account_id,
                "template_id": template,
                "subscriber": {"first_name": "O", "last_name": "Ther", "email": "o@other.example"},
            }),
        )
        .await;
    assert_eq!(order.status(), 202);
    let order: Value = order.json().await.unwrap();
    let mut deliveries = Value::Null;
    for _ in 0..200 {
        deliveries = harness
            .control(Method::GET, "/_sim/webhooks/deliveries", None)
            .await;
        if deliveries
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["event_type"] == "order.completed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries = deliveries.as_array().unwrap();
    let completed = deliveries
        .iter()
        .find(|d| d["event_type"] == "order.completed")
        .expect("order.completed delivered");
    assert_eq!(completed["webhook_id"], hook_id);
    assert_eq!(completed["payload"]["data"]["id"], order["id"]);
    assert!(deliveries.iter().all(|d| d["webhook_id"] == hook_id));
}
