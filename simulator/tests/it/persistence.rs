use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::Harness;
use lineup_simulator::{Credentials, SimConfig, spawn_persistent};
use reqwest::Method;
use serde_json::{Value, json};

async fn start(state_file: &Path) -> Harness {
    start_with(state_file, SimConfig::for_tests()).await
}

async fn start_with(state_file: &Path, config: SimConfig) -> Harness {
    let sim = spawn_persistent(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Credentials::default(),
        state_file.to_path_buf(),
    )
    .await
    .expect("persistent simulator starts");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut harness = Harness {
        sim,
        http,
        token: String::new(),
    };
    harness.token = harness.issue_token().await;
    harness
}

fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("simulator-state.json")
}

fn read_state(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_line_and_its_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let mut harness = start(&path).await;
    assert!(path.exists(), "the state file is created at start");
    let account_id = harness.sim.account_id();

    let template_id = harness.template_id("US 1GB").await;
    let body = harness.activation_body(&template_id, "persist@lineup.example");
    let first = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "persist-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let first_text = first.text().await.unwrap();
    let first_order: Value = serde_json::from_str(&first_text).unwrap();
    let order_id = first_order["id"].as_str().unwrap().to_string();
    let order = harness.wait_for_order(&order_id).await;
    assert_eq!(order["status"], "completed", "{order}");
    let subscription_id = order["subscription_id"].as_str().unwrap().to_string();

    harness
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{subscription_id}/usage"),
            Some(json!({"data_bytes": 123_456, "sms": 3, "country": "FR", "roaming": true})),
        )
        .await;
    let webhook = harness
        .post(
            "/enterprise/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["order.completed"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 201);
    let webhook: Value = webhook.json().await.unwrap();
    let clock = harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 3600})),
        )
        .await;
    assert_eq!(clock["offset_s"], 3600);
    // The hour outlived the token.
    harness.token = harness.issue_token().await;

    // The background saver writes the file without waiting for shutdown.
    wait_until("the state file holds the new line", || {
        read_state(&path)["subscriptions"]
            .get(&subscription_id)
            .is_some()
    })
    .await;

    let subscription_path = format!("/enterprise/subscriptions/{subscription_id}");
    let profile_path = format!("{subscription_path}/sim-profile");
    let usage_path = format!("/enterprise/usage/items?subscription_id={subscription_id}");
    let subscription = harness.get_json(&subscription_path).await;
    let profile = harness.get_json(&profile_path).await;
    let usage = harness.get_json(&usage_path).await["_embedded"]["usage_items"].clone();
    assert_eq!(usage.as_array().unwrap().len(), 2);
    let products = harness
        .get_json(&format!("{subscription_path}/products"))
        .await["_embedded"]["products"]
        .clone();
    harness.sim.shutdown().await;
    assert!(!dir.path().join("simulator-state.json.tmp").exists());

    let harness = start(&path).await;
    assert_eq!(harness.sim.account_id(), account_id);
    assert_eq!(harness.get_json(&subscription_path).await, subscription);
    let reloaded_profile = harness.get_json(&profile_path).await;
    for field in ["iccid", "activation_code", "matching_id", "eid", "status"] {
        assert_eq!(reloaded_profile[field], profile[field], "profile {field}");
    }
    assert_eq!(
        harness.get_json(&usage_path).await["_embedded"]["usage_items"],
        usage
    );
    assert_eq!(
        harness
            .get_json(&format!("{subscription_path}/products"))
            .await["_embedded"]["products"],
        products
    );
    let clock = harness.control(Method::GET, "/_sim/clock", None).await;
    assert_eq!(clock["offset_s"], 3600);
    let hooks = harness.get_json("/enterprise/webhooks").await;
    assert_eq!(hooks["_embedded"]["webhooks"][0]["id"], webhook["id"]);
    let completed = harness
        .get_json(&format!("/enterprise/orders/{order_id}"))
        .await;
    assert_eq!(completed["status"], "completed");

    // An idempotent replay still answers with the response stored before the restart.
    let replay = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "persist-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), first_text);
    let reused = harness
        .post(
            "/enterprise/orders",
            &harness.activation_body(&template_id, "other@lineup.example"),
        )
        .header("idempotency-key", "persist-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 409);

    // New records get fresh ids that sort after the old ones, and a fresh ICCID.
    let suspend = harness
        .change_line("suspend_subscription", &subscription_id)
        .await;
    assert_eq!(suspend.status(), 202);
    let suspend: Value = suspend.json().await.unwrap();
    let suspend_id = suspend["id"].as_str().unwrap();
    assert_ne!(suspend_id, order_id);
    assert!(
        suspend_id > order_id.as_str(),
        "{suspend_id} after {order_id}"
    );
    let suspended = harness.wait_for_order(suspend_id).await;
    assert_eq!(suspended["status"], "completed", "{suspended}");
    let second_line = harness.active_line("US 5GB", "second@lineup.example").await;
    assert_ne!(second_line, subscription_id);
    let second_profile = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{second_line}/sim-profile"
        ))
        .await;
    assert_ne!(second_profile["iccid"], profile["iccid"]);
    let orders = harness.get_json("/enterprise/orders").await;
    assert_eq!(orders["_embedded"]["orders"].as_array().unwrap().len(), 3);
    harness.sim.shutdown().await;

    // A third start sees the changes made in the second.
    let harness = start(&path).await;
    let subscription = harness.get_json(&subscription_path).await;
    assert_eq!(subscription["status"], "suspended");
    let orders = harness.get_json("/enterprise/orders").await;
    assert_eq!(orders["_embedded"]["orders"].as_array().unwrap().len(), 3);
    harness.sim.shutdown().await;
}

#[tokio::test]
async fn an_order_pending_at_shutdown_settles_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let harness = start(&path).await;
    harness
        .configure(json!({"order_delay_ms": {"min": 1500, "max": 1500}}))
        .await;
    let template_id = harness.template_id("US 1GB").await;
    let order = harness
        .place_order(&harness.activation_body(&template_id, "pending@lineup.example"))
        .await;
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(order["status"], "pending");
    harness.sim.shutdown().await;
    let saved = read_state(&path);
    assert_eq!(saved["orders"][&order_id]["status"], "pending");
    assert_eq!(saved["config"]["order_delay_ms"]["min"], 1500);

    // The stored config wins over the one passed in.
    let harness = start_with(&path, SimConfig::default()).await;
    let mut settled = Value::Null;
    for _ in 0..100 {
        let order = harness
            .get_json(&format!("/enterprise/orders/{order_id}"))
            .await;
        if order["status"] != "pending" {
            settled = order;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled["status"], "completed", "{settled}");
    let subscription_id = settled["subscription_id"].as_str().unwrap();
    let subscription = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(subscription["status"], "active");
    let config = harness.control(Method::GET, "/_sim/config", None).await;
    assert_eq!(config["order_delay_ms"]["min"], 1500);
    assert_eq!(config["latency_ms"]["max"], 0);
    harness.sim.shutdown().await;
    assert_eq!(
        read_state(&path)["orders"][&order_id]["status"],
        "completed"
    );
}

#[tokio::test]
async fn a_corrupt_or_foreign_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let start = |path: PathBuf| {
        spawn_persistent(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig::for_tests(),
            Credentials::default(),
            path,
        )
    };

    std::fs::write(&path, "{\"format\": \"lineup-simulator-state\", \"ver").unwrap();
    let error = start(path.clone()).await.err().expect("corrupt file fails");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a valid JSON document"), "{message}");
    // The broken file is left alone for inspection, not replaced by a fresh world.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"format\": \"lineup-simulator-state\", \"ver"
    );

    std::fs::write(
        &path,
        "{\"format\": \"lineup-simulator-state\", \"version\": 999}",
    )
    .unwrap();
    let message = start(path.clone()).await.err().unwrap().to_string();
    assert!(
        message.contains("unsupported format version 999"),
        "{message}"
    );

    std::fs::write(&path, "{\"something\": \"else\"}").unwrap();
    let message = start(path.clone()).await.err().unwrap().to_string();
    assert!(message.contains("not a simulator state file"), "{message}");

    // The right header with a damaged body.
    let good_dir = tempfile::tempdir().unwrap();
    let good = state_path(&good_dir);
    start(good.clone()).await.unwrap().shutdown().await;
    let mut document = read_state(&good);
    document["orders"] = json!({"ord_x": {"id": "ord_x", "kind": "teleport"}});
    std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
    let message = start(path.clone()).await.err().unwrap().to_string();
    assert!(
        message.contains("does not match format version 1"),
        "{message}"
    );
}

#[tokio::test]
async fn added_accounts_and_their_clients_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_path(&dir);
    let harness = start(&path).await;
    let added = harness
        .sim
        .add_account("Kept Co", Some("kept"), Some("kept-secret"))
        .unwrap();
    harness.sim.shutdown().await;
    let stored = read_state(&path);
    assert_eq!(stored["clients"]["kept"]["account_id"], added.account_id);

    let harness = start(&path).await;
    for (client_id, secret, account_id) in [
        ("kept", "kept-secret", added.account_id.clone()),
        (
            "lineup-trial",
            "lineup-trial-secret",
            "acc_trial".to_string(),
        ),
    ] {
        let token = harness.token_for(client_id, secret).await;
        let accounts = harness.get_json_as(&token, "/enterprise/accounts").await;
        assert_eq!(accounts["_embedded"]["accounts"][0]["id"], account_id);
        let offerings = harness
            .get_json_as(&token, "/enterprise/product-offerings")
            .await;
        assert_eq!(
            offerings["_embedded"]["product_offerings"]
                .as_array()
                .unwrap()
                .len(),
            6
        );
    }
    let refused = harness.request_token("kept", "wrong").await;
    assert_eq!(refused.status(), 401);
}
