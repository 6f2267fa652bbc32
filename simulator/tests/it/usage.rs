use crate::harness::Harness;
use reqwest::Method;
use serde_json::{Value, json};

const GIB: u64 = 1024 * 1024 * 1024;

#[tokio::test]
async fn injected_usage_updates_balances_and_lists_usage_items() {
    let harness = Harness::start().await;
    let subscription_id = harness.active_line("US 1GB", "u@lineup.example").await;
    let recorded = harness
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{subscription_id}/usage"),
            Some(json!({"data_bytes": 52191, "country": "FR", "roaming": true})),
        )
        .await;
    assert_eq!(recorded["recorded"], true);

    let products = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/products"
        ))
        .await;
    let product = &products["_embedded"]["products"][0];
    assert_eq!(product["used_bytes"], 52191);
    assert_eq!(product["remaining_bytes"], GIB - 52191);

    let items = harness
        .get_json(&format!(
            "/enterprise/usage/items?subscription_id={subscription_id}"
        ))
        .await;
    let items = items["_embedded"]["usage_items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert!(item["id"].as_str().unwrap().starts_with("uitem_"));
    assert_eq!(item["type"], "data");
    assert_eq!(item["quantity"], 52191);
    assert_eq!(item["unit"], "bytes");
    assert_eq!(item["cost_type"], "in_bundle");
    assert_eq!(item["location_country"], "FR");
    assert_eq!(item["roaming"], true);

    let today = item["started_at"].as_str().unwrap()[..10].to_string();
    let dated = harness
        .get_json(&format!(
            "/enterprise/usage/items?from-date={today}&to-date={today}"
        ))
        .await;
    assert_eq!(
        dated["_embedded"]["usage_items"].as_array().unwrap().len(),
        1
    );
    let before = harness
        .get_json("/enterprise/usage/items?from-date=2000-01-01&to-date=2000-01-02")
        .await;
    assert_eq!(
        before["_embedded"]["usage_items"].as_array().unwrap().len(),
        0
    );
}

#[tokio::test]
async fn depletion_blocks_further_data_and_renewal_resets_it() {
    let mut harness = Harness::start().await;
    let subscription_id = harness.active_line("US 1GB", "d@lineup.example").await;
    let usage_path = format!("/_sim/subscriptions/{subscription_id}/usage");
    let recorded = harness
        .control(
            Method::POST,
            &usage_path,
            Some(json!({"data_bytes": GIB + 10})),
        )
        .await;
    assert_eq!(recorded["refused_bytes"], 10);
    let products_path = format!("/enterprise/subscriptions/{subscription_id}/products");
    let product = harness.get_json(&products_path).await["_embedded"]["products"][0].clone();
    assert_eq!(product["status"], "depleted");
    assert_eq!(product["remaining_bytes"], 0);
    let subscription = harness
        .get_json(&format!("/enterprise/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(subscription["status"], "active");

    harness
        .control(
            Method::POST,
            "/_sim/clock/advance",
            Some(json!({"seconds": 32 * 86400})),
        )
        .await;
    harness.token = harness.issue_token().await;
    let product = harness.get_json(&products_path).await["_embedded"]["products"][0].clone();
    assert_eq!(product["status"], "active");
    assert_eq!(product["used_bytes"], 0);
}

#[tokio::test]
async fn suspended_lines_record_no_usage() {
    let harness = Harness::start().await;
    let subscription_id = harness.active_line("US 5GB", "s@lineup.example").await;
    let suspend: Value = harness
        .change_line("suspend_subscription", &subscription_id)
        .await
        .json()
        .await
        .unwrap();
    harness
        .wait_for_order(suspend["id"].as_str().unwrap())
        .await;

    let recorded = harness
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{subscription_id}/usage"),
            Some(json!({"data_bytes": 1000})),
        )
        .await;
    assert_eq!(recorded["recorded"], false);
    let products = harness
        .get_json(&format!(
            "/enterprise/subscriptions/{subscription_id}/products"
        ))
        .await;
    assert_eq!(products["_embedded"]["products"][0]["used_bytes"], 0);
    let items = harness
        .get_json(&format!(
            "/enterprise/usage/items?subscription_id={subscription_id}"
        ))
        .await;
    assert_eq!(
        items["_embedded"]["usage_items"].as_array().unwrap().len(),
        0
    );

    harness
        .configure(json!({"suspend_semantics": "reject"}))
        .await;
    let rejected = harness
        .http
        .post(harness.url(&format!("/_sim/subscriptions/{subscription_id}/usage")))
        .json(&json!({"data_bytes": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 409);
}
