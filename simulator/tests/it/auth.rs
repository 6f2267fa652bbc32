use crate::harness::Harness;
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

/// The ids in a HAL list page.
fn ids(page: &Value, plural: &str) -> Vec<String> {
    page["_embedded"][plural]
        .as_array()
        .unwrap_or_else(|| panic!("{plural} in {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// A client's catalogue without ids, for comparing two accounts' catalogues.
fn catalogue(page: &Value) -> Vec<Value> {
    page["_embedded"]["product_offerings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|offering| {
            let mut offering = offering.clone();
            offering.as_object_mut().unwrap().remove("id");
            offering
        })
        .collect()
}

async fn wait_for_order_as(harness: &Harness, token: &str, order_id: &str) -> Value {
    for _ in 0..200 {
        let order = harness
            .get_json_as(token, &format!("/enterprise/orders/{order_id}"))
            .await;
        if order["status"] != "pending" {
            return order;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("order {order_id} never settled");
}

#[tokio::test]
async fn two_accounts_on_one_simulator_never_see_each_others_data() {
    let harness = Harness::start().await;
    let account_a = harness.sim.account_id();
    let created = harness
        .http
        .post(harness.url("/_sim/accounts"))
        .json(&json!({"name": "Beta Corp", "client_id": "beta", "client_secret": "beta-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["client_id"], "beta");
    assert_eq!(created["client_secret"], "beta-secret");
    assert_eq!(created["name"], "Beta Corp");
    let account_b = created["account_id"].as_str().unwrap().to_string();
    assert_ne!(account_b, account_a);
    let token_b = harness.token_for("beta", "beta-secret").await;

    // The same catalogue, prices included, under each account's own ids.
    let offerings_a = harness.get_json("/enterprise/product-offerings").await;
    let offerings_b = harness
        .get_json_as(&token_b, "/enterprise/product-offerings")
        .await;
    assert_eq!(catalogue(&offerings_a), catalogue(&offerings_b));
    assert_eq!(catalogue(&offerings_a).len(), 6);
    let offering_ids_a = ids(&offerings_a, "product_offerings");
    let offering_ids_b = ids(&offerings_b, "product_offerings");
    assert!(offering_ids_a.iter().all(|id| !offering_ids_b.contains(id)));
    let templates_b = harness
        .get_json_as(&token_b, "/enterprise/order-templates")
        .await;
    let template_ids_a = ids(
        &harness.get_json("/enterprise/order-templates").await,
        "order_templates",
    );
    let template_ids_b = ids(&templates_b, "order_templates");
    assert_eq!(template_ids_b.len(), 5);
    assert!(template_ids_a.iter().all(|id| !template_ids_b.contains(id)));

    // A line on each account.
    let subscription_a = harness.active_line("US 1GB", "a@alpha.example").await;
    let order_b = harness
        .post_as(
            &token_b,
            "/enterprise/orders",
            &json!({
                "type": "activate_subscription",
                "account_id": account_b,
                "template_id": template_ids_b[0],
                "subscriber": {"first_name": "Bea", "last_name": "Beta", "email": "b@beta.example"},
            }),
        )
        .await;
    assert_eq!(order_b.status(), 202);
    let order_b: Value = order_b.json().await.unwrap();
    let order_b_id = order_b["id"].as_str().unwrap().to_string();
    let order_b = wait_for_order_as(&harness, &token_b, &order_b_id).await;
    assert_eq!(order_b["status"], "completed", "{order_b}");
    let subscription_b = order_b["subscription_id"].as_str().unwrap().to_string();
    for subscription in [&subscription_a, &subscription_b] {
        harness
            .control(
                Method::POST,
                &format!("/_sim/subscriptions/{subscription}/usage"),
                Some(json!({"data_bytes": 1000})),
            )
            .await;
    }

    // Every list shows only the caller's own items.
    for (token, account, subscription, other_subscription) in [
        (&harness.token, &account_a, &subscription_a, &subscription_b),
        (&token_b, &account_b, &subscription_b, &subscription_a),
    ] {
        let accounts = harness.get_json_as(token, "/enterprise/accounts").await;
        assert_eq!(ids(&accounts, "accounts"), vec![account.clone()]);
        let subscriptions = harness
            .get_json_as(token, "/enterprise/subscriptions")
            .await;
        assert_eq!(
            ids(&subscriptions, "subscriptions"),
            vec![subscription.clone()]
        );
        let orders = harness.get_json_as(token, "/enterprise/orders").await;
        let orders = orders["_embedded"]["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(&orders[0]["account_id"], account.as_str());
        let usage = harness.get_json_as(token, "/enterprise/usage/items").await;
        let usage = usage["_embedded"]["usage_items"].as_array().unwrap();
        assert!(!usage.is_empty());
        assert!(
            usage
                .iter()
                .all(|item| item["subscription_id"] == subscription.as_str())
        );
        let products = harness.get_json_as(token, "/enterprise/products").await;
        let products = products["_embedded"]["products"].as_array().unwrap();
        assert!(products.iter().all(|p| p["account_id"] == account.as_str()));
        let subscribers = harness.get_json_as(token, "/enterprise/subscribers").await;
        let subscribers = subscribers["_embedded"]["subscribers"].as_array().unwrap();
        assert!(
            subscribers
                .iter()
                .all(|s| s["account_id"] == account.as_str())
        );

        // Another account's records are not found, not forbidden: their existence stays hidden.
        for path in [
            format!("/enterprise/subscriptions/{other_subscription}"),
            format!("/enterprise/subscriptions/{other_subscription}/sim-profile"),
            format!("/enterprise/subscriptions/{other_subscription}/products"),
            format!("/enterprise/usage/items?subscription_id={other_subscription}"),
        ] {
            let response = harness.get_as(token, &path).await;
            if path.contains("usage") {
                let page: Value = response.json().await.unwrap();
                assert_eq!(page["_embedded"]["usage_items"], json!([]), "{path}");
            } else {
                assert_eq!(response.status(), 404, "{path}");
            }
        }
    }
    for path in [
        format!("/enterprise/accounts/{account_b}"),
        format!("/enterprise/orders/{order_b_id}"),
        format!("/enterprise/product-offerings/{}", offering_ids_b[0]),
        format!("/enterprise/order-templates/{}", template_ids_b[0]),
    ] {
        let response = harness.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "NOT_FOUND");
    }

    // An order naming the other account is refused; one on the other's line is not found.
    let foreign = harness
        .post_as(
            &harness.token,
            "/enterprise/orders",
            &json!({"type": "suspend_subscription", "account_id": account_b, "subscription_id": subscription_b}),
        )
        .await;
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["type"], "ACCESS_DENIED");
    let message = body["messages"][0].as_str().unwrap();
    assert!(
        message.contains(&account_b) && message.contains("own account"),
        "{message}"
    );
    let hijack = harness
        .post_as(
            &token_b,
            "/enterprise/orders",
            &json!({"type": "suspend_subscription", "account_id": account_b, "subscription_id": subscription_a}),
        )
        .await;
    assert_eq!(hijack.status(), 404);
    let foreign_plan = harness
        .post_as(
            &harness.token,
            "/enterprise/orders",
            &json!({
                "type": "activate_subscription",
                "account_id": account_a,
                "template_id": template_ids_b[0],
                "subscriber": {"first_name": "Al", "last_name": "Alpha", "email": "x@alpha.example"},
            }),
        )
        .await;
    assert_eq!(foreign_plan.status(), 404);
    let subscription_a_now = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_a}"))
        .await;
    assert_eq!(subscription_a_now["status"], "active");
}

#[tokio::test]
async fn a_new_account_gets_a_token_and_lists_its_plans() {
    let harness = Harness::start().await;
    let created = harness
        .http
        .post(harness.url("/_sim/accounts"))
        .json(&json!({"name": "Gamma Ltd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let client_id = created["client_id"].as_str().unwrap();
    let client_secret = created["client_secret"].as_str().unwrap();
    assert!(!client_id.is_empty() && !client_secret.is_empty());

    let token = harness.token_for(client_id, client_secret).await;
    let plans = harness
        .get_json_as(&token, "/enterprise/product-offerings?type=plan")
        .await;
    let plans = plans["_embedded"]["product_offerings"].as_array().unwrap();
    assert_eq!(plans.len(), 5);
    let us_1gb = plans.iter().find(|p| p["name"] == "US 1GB").unwrap();
    assert_eq!(us_1gb["price"], json!({"amount": 1000, "currency": "USD"}));
    let accounts = harness.get_json_as(&token, "/enterprise/accounts").await;
    assert_eq!(
        ids(&accounts, "accounts"),
        vec![created["account_id"].as_str().unwrap()]
    );

    // A wrong secret for the known client is refused like any bad credentials.
    let refused = harness.request_token(client_id, "not-the-secret").await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body, json!({"error": "invalid_client"}));

    // The Rust API opens accounts too; a client id can be taken only once.
    let delta = harness
        .sim
        .add_account("Delta", Some("delta"), Some("delta-secret"))
        .unwrap();
    assert_eq!(delta.client_id, "delta");
    harness.token_for("delta", "delta-secret").await;
    for taken in ["delta", "lineup-demo", client_id] {
        let duplicate = harness
            .http
            .post(harness.url("/_sim/accounts"))
            .json(&json!({"name": "Again", "client_id": taken}))
            .send()
            .await
            .unwrap();
        assert_eq!(duplicate.status(), 409, "{taken}");
    }
    assert!(matches!(
        harness.sim.add_account("Again", Some("delta"), None),
        Err(lineup_simulator::AddAccountError::ClientIdTaken(_))
    ));
    let nameless = harness
        .http
        .post(harness.url("/_sim/accounts"))
        .json(&json!({"name": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(nameless.status(), 400);
}

#[tokio::test]
async fn the_trial_account_is_ready_with_documented_credentials() {
    let harness = Harness::start().await;
    let trial = harness.sim.trial_account();
    assert_eq!(trial.client_id, "lineup-trial");
    assert_eq!(trial.client_secret, "lineup-trial-secret");
    let token = harness
        .token_for(&trial.client_id, &trial.client_secret)
        .await;
    let accounts = harness.get_json_as(&token, "/enterprise/accounts").await;
    assert_eq!(ids(&accounts, "accounts"), vec![trial.account_id.clone()]);
    let offerings = harness
        .get_json_as(&token, "/enterprise/product-offerings")
        .await;
    assert_eq!(
        catalogue(&offerings),
        catalogue(&harness.get_json("/enterprise/product-offerings").await)
    );
    // The default client still sees only the fixture account.
    let accounts = harness.get_json("/enterprise/accounts").await;
    assert_eq!(ids(&accounts, "accounts"), vec![harness.sim.account_id()]);
}
