use crate::harness::Harness;
use serde_json::Value;

#[tokio::test]
async fn cursor_paging_walks_25_subscriptions_in_pages_of_10() {
    let harness = Harness::start().await;
    let template_id = harness.template_id("US 1GB").await;
    let mut created = Vec::new();
    for index in 0..25 {
        let order = harness
            .place_order(
                &harness.activation_body(&template_id, &format!("user{index}@lineup.example")),
            )
            .await;
        created.push(order["subscription_id"].as_str().unwrap().to_string());
    }

    let mut seen = Vec::new();
    let mut page_sizes = Vec::new();
    let mut next = Some("/enterprise/subscriptions?limit=10".to_string());
    while let Some(path) = next {
        let response = harness.get(&path).await;
        assert_eq!(response.headers()["content-type"], "application/hal+json");
        let page: Value = response.json().await.unwrap();
        let items = page["_embedded"]["subscriptions"].as_array().unwrap();
        page_sizes.push(items.len());
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        next = page["_links"]["next"]["href"].as_str().map(str::to_string);
    }
    assert_eq!(page_sizes, vec![10, 10, 5]);
    assert_eq!(seen, created);

    let bad = harness.get("/enterprise/subscriptions?limit=101").await;
    assert_eq!(bad.status(), 400);
    let bad = harness
        .get("/enterprise/subscriptions?cursor=not-a-cursor")
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn subscriptions_filter_by_status_and_transclude_related_objects() {
    let harness = Harness::start().await;
    let subscription_id = harness.active_line("Global 10GB", "t@lineup.example").await;
    let template_id = harness.template_id("US 1GB").await;
    harness
        .control(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(serde_json::json!({"order_delay_ms": {"min": 3_600_000, "max": 3_600_000}})),
        )
        .await;
    harness
        .place_order(&harness.activation_body(&template_id, "p@lineup.example"))
        .await;

    let active = harness
        .get_json("/enterprise/subscriptions?status=active")
        .await;
    let active = active["_embedded"]["subscriptions"].as_array().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["id"], subscription_id);
    let pending = harness
        .get_json("/enterprise/subscriptions?status=pending")
        .await;
    assert_eq!(
        pending["_embedded"]["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let response = harness
        .http
        .get(harness.url(&format!("/enterprise/subscriptions/{subscription_id}")))
        .bearer_auth(&harness.token)
        .header("prefer", "transclude=\"subscriber;sim_profile;products\"")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["_embedded"]["subscriber"]["email"], "t@lineup.example");
    assert!(body["_embedded"]["sim_profile"]["iccid"].is_string());
    assert_eq!(
        body["_embedded"]["products"][0]["product_offering"]["throttle"]["after_cap_kbps"],
        128
    );
}
