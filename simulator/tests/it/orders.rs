use crate::harness::Harness;
use lineup_simulator::{SimConfig, is_valid_luhn};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn activation_order_completes_and_releases_a_profile() {
    let harness = Harness::start().await;
    let template_id = harness.template_id("US 5GB").await;
    let order = harness
        .place_order(&harness.activation_body(&template_id, "grace@lineup.example"))
        .await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["type"], "activate_subscription");
    assert!(order["id"].as_str().unwrap().starts_with("order_"));
    assert_eq!(
        order["_links"]["self"]["href"],
        format!("/enterprise/orders/{}", order["id"].as_str().unwrap())
    );

    let order = harness.wait_for_order(order["id"].as_str().unwrap()).await;
    assert_eq!(order["status"], "completed");
    assert!(order["completed_at"].is_string());
    let subscription_id = order["subscription_id"].as_str().unwrap();

    let subscription = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(subscription["status"], "active");
    assert!(subscription["current_period"]["end"].is_string());

    let profile = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/sim-profile"
        ))
        .await;
    let iccid = profile["iccid"].as_str().unwrap();
    assert_eq!(iccid.len(), 19);
    assert!(iccid.starts_with("8944"));
    assert!(is_valid_luhn(iccid));
    let matching_id = profile["matching_id"].as_str().unwrap();
    assert_eq!(
        profile["activation_code"],
        format!("LPA:1$rsp.sim.local${matching_id}")
    );
    assert_eq!(profile["confirmation_code_required"], false);
    assert!(matches!(
        profile["status"].as_str().unwrap(),
        "released" | "downloaded" | "installed"
    ));

    let products = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/products"
        ))
        .await;
    let product = &products["_embedded"]["products"][0];
    assert_eq!(product["status"], "active");
    assert_eq!(product["allowance_bytes"], 5u64 * 1024 * 1024 * 1024);
    assert_eq!(product["product_offering"]["name"], "US 5GB");

    let qr = harness
        .http
        .get(profile["qr_code_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(qr.headers()["content-type"], "image/png");
    assert!(qr.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[tokio::test]
async fn sim_profile_is_404_until_the_order_completes() {
    let harness = Harness::start_with(SimConfig {
        confirmation_code_required: true,
        order_delay_ms: lineup_simulator::MillisRange::fixed(3_600_000),
        ..SimConfig::for_tests()
    })
    .await;
    let template_id = harness.template_id("US 1GB").await;
    let order = harness
        .place_order(&harness.activation_body(&template_id, "kay@lineup.example"))
        .await;
    let subscription_id = order["subscription_id"].as_str().unwrap();
    let path = format!("/enterprise/subscriptions/{subscription_id}/sim-profile");
    assert_eq!(harness.get(&path).await.status(), 404);
    assert_eq!(
        harness
            .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
            .await["status"],
        "pending"
    );

    let order_id = order["id"].as_str().unwrap();
    let completed = harness
        .control(
            Method::POST,
            &format!("/_sim/orders/{order_id}/complete"),
            None,
        )
        .await;
    assert_eq!(completed["status"], "completed");
    let profile = harness.get_json(&path).await;
    assert!(
        profile["activation_code"]
            .as_str()
            .unwrap()
            .ends_with("$$1")
    );
    assert_eq!(profile["confirmation_code_required"], true);
    assert_eq!(profile["confirmation_code"].as_str().unwrap().len(), 8);
}

#[tokio::test]
async fn invalid_orders_are_rejected_at_submit() {
    let harness = Harness::start().await;
    let template_id = harness.template_id("US 1GB").await;

    let mut missing_email = harness.activation_body(&template_id, "x@lineup.example");
    missing_email["subscriber"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let response = harness
        .post("/enterprise/orders", &missing_email)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "INVALID_REQUEST_PARAMS");
    assert_eq!(body["messages"][0], "subscriber.email is required");

    let unknown_template =
        harness.activation_body("otpl_00000000000000000000000000", "x@lineup.example");
    let response = harness
        .post("/enterprise/orders", &unknown_template)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let mut bad_eid = harness.activation_body(&template_id, "x@lineup.example");
    bad_eid["sim_profile"]["delivery"] = json!({"type": "eid_push", "eid": "1234"});
    let response = harness
        .post("/enterprise/orders", &bad_eid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn resuming_an_active_line_is_an_invalid_transition() {
    let harness = Harness::start().await;
    let subscription_id = harness.active_line("US 1GB", "ada2@lineup.example").await;

    let response = harness
        .change_line("resume_subscription", &subscription_id)
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "INVALID_STATE_TRANSITION");

    let suspend = harness
        .change_line("suspend_subscription", &subscription_id)
        .await;
    assert_eq!(suspend.status(), 202);
    let suspend: Value = suspend.json().await.unwrap();
    harness
        .wait_for_order(suspend["id"].as_str().unwrap())
        .await;
    let subscription = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(subscription["status"], "suspended");
    assert_eq!(
        harness
            .change_line("suspend_subscription", &subscription_id)
            .await
            .status(),
        409
    );
    assert_eq!(
        harness
            .change_line("resume_subscription", &subscription_id)
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn order_failure_rate_cancels_with_provisioning_failed() {
    let harness = Harness::start_with(SimConfig {
        order_failure_rate: 1.0,
        ..SimConfig::for_tests()
    })
    .await;
    let template_id = harness.template_id("US 1GB").await;
    let order = harness
        .place_order(&harness.activation_body(&template_id, "fail@lineup.example"))
        .await;
    let order = harness.wait_for_order(order["id"].as_str().unwrap()).await;
    assert_eq!(order["status"], "canceled");
    assert_eq!(order["failure"]["code"], "PROVISIONING_FAILED");
}

#[tokio::test]
async fn idempotency_key_replays_and_rejects_a_different_body() {
    let harness = Harness::start().await;
    let template_id = harness.template_id("US 1GB").await;
    let body = harness.activation_body(&template_id, "idem@lineup.example");

    let first = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();

    let replay = harness
        .post("/enterprise/orders", &body)
        .header("idempotency-key", "key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay, first);

    let other = harness.activation_body(&template_id, "other@lineup.example");
    let reused = harness
        .post("/enterprise/orders", &other)
        .header("idempotency-key", "key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 409);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["type"], "IDEMPOTENCY_KEY_REUSED");

    let orders = harness.get_json("/enterprise/orders").await;
    assert_eq!(orders["_embedded"]["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_live_subscription_gets_one_port_out_code_and_a_terminated_one_none() {
    let harness = Harness::start().await;
    let subscription_id = harness.active_line("US 5GB", "leaver@lineup.example").await;
    let path = format!("/enterprise/subscriptions/{subscription_id}/port-out");

    let first = harness.post(&path, &json!({})).send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let pac = first["pac"].as_str().unwrap();
    assert_eq!(pac.len(), 9);
    assert!(pac[..3].chars().all(|c| c.is_ascii_uppercase()));
    assert!(pac[3..].chars().all(|c| c.is_ascii_digit()));
    assert!(first["msisdn"].as_str().unwrap().starts_with("+447700900"));
    assert!(first["expires_at"].is_string());

    let again = harness.post(&path, &json!({})).send().await.unwrap();
    assert_eq!(again.status(), 200, "a valid code is handed out again");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["pac"], first["pac"]);
    let subscription = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(subscription["msisdn"], first["msisdn"]);

    let terminated = harness
        .change_line("terminate_subscription", &subscription_id)
        .await;
    assert!(terminated.status().is_success());
    let order: Value = terminated.json().await.unwrap();
    harness.wait_for_order(order["id"].as_str().unwrap()).await;
    let refused = harness.post(&path, &json!({})).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "INVALID_STATE_TRANSITION");
}
