//! The Airalo adapter against the simulator's Airalo personality, over real sockets, with
//! injected faults: exactly-once orders without an idempotency key, the 15-minute usage
//! window honoured without losing usage, and signed low-data webhooks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lineup_core::provider::airalo::{AiraloConfig, AiraloProvider};
use lineup_core::provider::http::RetryPolicy;
use lineup_core::provider::{
    ConnectivityProvider, Delivery, Effective, IdempotencyKey, OperationStatus, PlanKind, PlanRef,
    ProviderError, ProviderEvent, ProvisionRequest, ProvisioningMode, Roaming, Subscriber,
    UsageQuery, UsageRecord, Validity, WebhookError,
};
use lineup_simulator::{
    AIRALO_CLIENT_ID, AIRALO_CLIENT_SECRET, Credentials, Personality, RunningSimulator, SimConfig,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::hook_receiver;

const MIB: i64 = 1024 * 1024;

struct Harness {
    sim: RunningSimulator,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        let sim = lineup_simulator::spawn(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig::for_tests(),
            Credentials::default(),
        )
        .await
        .expect("simulator starts");
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    /// A fresh adapter: a restarted Lineup remembers no usage windows.
    fn provider_with(&self, attempts: u32) -> AiraloProvider {
        let mut config = AiraloConfig::new(
            self.sim.personality_url(Personality::Airalo),
            AIRALO_CLIENT_ID,
            AIRALO_CLIENT_SECRET,
        );
        config.request_timeout = Duration::from_secs(2);
        config.retry = RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        };
        config.webhook_secret = Some(AIRALO_CLIENT_SECRET.into());
        config.page_size = 1;
        AiraloProvider::new(config).expect("valid adapter config")
    }

    fn provider(&self) -> AiraloProvider {
        self.provider_with(5)
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("simulator answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn fault(&self, spec: Value) {
        self.control(reqwest::Method::POST, "/_sim/faults", spec)
            .await;
    }

    async fn configure(&self, patch: Value) {
        self.control(reqwest::Method::PUT, "/_sim/config", patch)
            .await;
    }

    async fn use_data(&self, iccid: &str, mb: i64) {
        let path = format!("/_sim/airalo/sims/{iccid}/usage");
        self.control(reqwest::Method::POST, &path, json!({ "mb": mb }))
            .await;
    }

    async fn requests_to(&self, method: &str, prefix: &str) -> Vec<Value> {
        let url = format!("{}/_sim/requests", self.sim.base_url());
        let all: Vec<Value> = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.into_iter()
            .filter(|r| r["method"] == method && r["path"].as_str().unwrap().starts_with(prefix))
            .collect()
    }
}

fn request(package: &str, n: usize) -> ProvisionRequest {
    ProvisionRequest {
        plan: PlanRef {
            offering_id: package.into(),
            template_id: None,
        },
        subscriber: Subscriber {
            first_name: "Katherine".into(),
            last_name: format!("Johnson{n}"),
            email: format!("kj{n}@lineup.example"),
            employee_id: None,
            group: None,
        },
        delivery: Delivery::Api,
        reference: Some(format!("travel-{n}")),
    }
}

async fn travel_esim(provider: &AiraloProvider, n: usize) -> String {
    let op = provider
        .provision_line(&request("change-7days-1gb", n), &IdempotencyKey::generate())
        .await
        .expect("order placed");
    assert_eq!(
        op.status,
        OperationStatus::Succeeded,
        "orders are synchronous"
    );
    op.subscription_id.unwrap()
}

async fn all_esims(provider: &AiraloProvider) -> Vec<String> {
    let mut cursor = None;
    let mut iccids = Vec::new();
    loop {
        let page = provider
            .list_subscriptions(cursor.as_deref())
            .await
            .unwrap();
        iccids.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return iccids,
        }
    }
}

/// Every page of the account's usage, merged by key into `seen`.
async fn pull_usage(provider: &AiraloProvider, seen: &mut HashMap<String, UsageRecord>) -> usize {
    let today = OffsetDateTime::now_utc().date();
    let mut query = UsageQuery {
        from: today,
        to: today,
        subscription_id: None,
        cursor: None,
    };
    let mut fetched = 0;
    loop {
        let page = provider.usage(&query).await.expect("usage page");
        fetched += page.items.len();
        for record in page.items {
            seen.entry(record.dedupe_key.clone()).or_insert(record);
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return fetched,
        }
    }
}

fn bytes_of(seen: &HashMap<String, UsageRecord>, iccid: &str) -> i64 {
    seen.values()
        .filter(|r| r.subscription_id == iccid)
        .map(|r| r.data_bytes)
        .sum()
}

#[tokio::test]
async fn packages_are_plans_with_days_coverage_and_prices() {
    let h = Harness::start().await;
    let provider = h.provider();
    assert_eq!(provider.capabilities().provisioning, ProvisioningMode::Sync);
    let plans = provider.list_plans().await.unwrap();
    assert_eq!(plans.len(), 7, "every package of every country page");
    let us = plans
        .iter()
        .find(|p| p.offering_id == "change-7days-1gb")
        .unwrap();
    assert_eq!(us.validity, Validity::Days(7));
    assert_eq!(us.coverage, vec!["US".to_string()]);
    assert_eq!(us.data_bytes, Some(1024 * MIB));
    assert_eq!(us.price.unwrap().minor, 450);
    assert_eq!(us.kind, PlanKind::Base);
    let top_up = plans
        .iter()
        .find(|p| p.offering_id == "hallo-mobil-topup-1gb")
        .unwrap();
    assert_eq!(top_up.kind, PlanKind::TopUp);
}

/// Airalo has no idempotency key: faults that hide a placed order (a dropped connection,
/// a 5xx after processing) make the adapter look the order up, never buy twice.
#[tokio::test]
async fn orders_are_placed_exactly_once_through_faults() {
    let h = Harness::start().await;
    let provider = h.provider_with(10);
    // Refused twice, then processed with the answer lost.
    for (spec, phase) in [
        (json!({ "status": 503 }), "before"),
        (json!({ "status": 429, "retry_after_s": 1 }), "before"),
        (json!({ "drop_connection": true }), "after"),
    ] {
        h.fault(json!({
            "match": { "method": "POST", "path_prefix": "/airalo/v2/orders" },
            "action": spec, "phase": phase, "times": 1
        }))
        .await;
    }
    let iccid = travel_esim(&provider, 1).await;
    assert_eq!(
        all_esims(&provider).await,
        vec![iccid.clone()],
        "one eSIM bought"
    );
    let posts = h.requests_to("POST", "/airalo/v2/orders").await;
    assert_eq!(
        posts.len(),
        3,
        "the third was processed, its answer lost: {posts:?}"
    );
    let profile = provider.get_sim_profile(&iccid).await.unwrap();
    assert_eq!(profile.iccid.as_str(), iccid);
    let listed = provider.list_subscriptions(None).await.unwrap();
    assert_eq!(listed.items[0].reference.as_deref(), Some("travel-1"));
    let polled = provider.poll_operation("1").await.unwrap();
    assert_eq!(polled.subscription_id.as_deref(), Some(iccid.as_str()));

    // And concurrently, under random faults.
    h.configure(json!({
        "error_rate": 0.3,
        "error_statuses": { "500": 1, "503": 1, "429": 1 },
        "error_after_processing": 0.5,
        "drop_connection_rate": 0.1,
        "retry_after_s": 0
    }))
    .await;
    let provider = Arc::new(h.provider_with(20));
    let tasks: Vec<_> = (2..12)
        .map(|n| {
            let provider = Arc::clone(&provider);
            tokio::spawn(async move {
                provider
                    .provision_line(&request("change-7days-1gb", n), &IdempotencyKey::generate())
                    .await
            })
        })
        .collect();
    let mut bought = HashSet::from([iccid]);
    for task in tasks {
        let op = task
            .await
            .unwrap()
            .expect("every order eventually succeeds");
        bought.insert(op.subscription_id.unwrap());
    }
    h.configure(json!({ "error_rate": 0.0, "drop_connection_rate": 0.0 }))
        .await;
    let listed: HashSet<String> = all_esims(&provider).await.into_iter().collect();
    assert_eq!(listed, bought);
    assert_eq!(listed.len(), 11);
}

#[tokio::test]
async fn suspend_terminate_and_plan_changes_are_refused_without_asking_airalo() {
    let h = Harness::start().await;
    let provider = h.provider();
    let caps = provider.capabilities();
    assert!(!caps.suspend && !caps.resume && !caps.terminate && !caps.change_plan);
    assert!(!caps.usage_by_country);
    let iccid = travel_esim(&provider, 1).await;
    let key = IdempotencyKey::generate();
    let before = h.requests_to("POST", "/airalo").await.len();
    assert!(matches!(
        provider.suspend(&iccid, &key).await,
        Err(ProviderError::Unsupported(_))
    ));
    assert!(matches!(
        provider.resume(&iccid, &key).await,
        Err(ProviderError::Unsupported(_))
    ));
    assert!(matches!(
        provider.terminate(&iccid, &key).await,
        Err(ProviderError::Unsupported(_))
    ));
    let plan = PlanRef {
        offering_id: "change-30days-5gb".into(),
        template_id: None,
    };
    assert!(matches!(
        provider
            .change_plan(&iccid, &plan, Effective::Now, &key)
            .await,
        Err(ProviderError::Unsupported(_))
    ));
    assert!(matches!(
        provider.port_out(&iccid, &key).await,
        Err(ProviderError::Unsupported(_))
    ));
    assert_eq!(h.requests_to("POST", "/airalo").await.len(), before);
}

/// One read per eSIM per 15 minutes: the adapter skips an eSIM inside its window, a fresh
/// adapter that asks too soon gets 429 + Retry-After and defers it, and the running total
/// read later carries everything, exact once the package has finished.
#[tokio::test]
async fn usage_honours_the_15_minute_window_and_loses_nothing() {
    let h = Harness::start().await;
    let provider = h.provider();
    let first = travel_esim(&provider, 1).await;
    let second = travel_esim(&provider, 2).await;
    h.use_data(&first, 25).await;
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": format!("/airalo/v2/sims/{first}/usage") },
        "action": { "status": 500 }, "times": 1
    }))
    .await;
    let mut seen = HashMap::new();
    pull_usage(&provider, &mut seen).await;
    assert_eq!(
        bytes_of(&seen, &first),
        20 * MIB,
        "whole chunks while the package runs"
    );
    assert_eq!(bytes_of(&seen, &second), 0);
    let record = seen.values().next().unwrap();
    assert_eq!(
        record.country.as_deref(),
        Some("US"),
        "the package's country"
    );
    assert_eq!(record.roaming, Roaming::International);
    let usage_reads = || h.requests_to("GET", "/airalo/v2/sims");
    let reads = usage_reads().await.len();

    // Inside the window the same adapter does not ask at all.
    h.use_data(&first, 100).await;
    assert_eq!(pull_usage(&provider, &mut seen).await, 0);
    let asked: Vec<Value> = usage_reads()
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/usage"))
        .collect();
    assert_eq!(
        asked.len(),
        3,
        "one 500, one read per eSIM, nothing since: {asked:?}"
    );
    assert!(
        usage_reads().await.len() > reads,
        "the eSIM list was read again"
    );

    // A restarted adapter asks too soon: 429 with Retry-After, deferred, not an error.
    let restarted = h.provider();
    assert_eq!(pull_usage(&restarted, &mut seen).await, 0);
    let limited = h
        .requests_to("GET", &format!("/airalo/v2/sims/{first}/usage"))
        .await;
    assert_eq!(limited.last().unwrap()["status"], 429);

    // Fifteen minutes later the running total carries the usage the skipped reads missed,
    // and once the package is used up the total is exact.
    h.use_data(&first, 2000).await;
    h.control(
        reqwest::Method::POST,
        "/_sim/clock/advance",
        json!({ "seconds": 15 * 60 }),
    )
    .await;
    let later = h.provider();
    pull_usage(&later, &mut seen).await;
    assert_eq!(
        bytes_of(&seen, &first),
        1024 * MIB,
        "the whole 1 GB, counted once"
    );
}

#[tokio::test]
async fn low_data_webhooks_need_the_head_opt_in_and_verify_through_duplicates() {
    let h = Harness::start().await;
    let provider = h.provider();
    let key = IdempotencyKey::generate();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        drop(listener);
        url
    };
    assert!(matches!(
        provider.opt_in_webhooks(&closed, &key).await,
        Err(ProviderError::InvalidRequest { message }) if message.contains("HEAD")
    ));
    let (url, mut deliveries) = hook_receiver::start().await;
    provider
        .opt_in_webhooks(&url, &IdempotencyKey::generate())
        .await
        .expect("the receiver answers HEAD with 200");
    h.configure(json!({ "webhooks": { "duplicate_rate": 1.0, "reorder": true } }))
        .await;
    let iccid = travel_esim(&provider, 1).await;
    h.use_data(&iccid, 800).await;
    h.use_data(&iccid, 150).await;
    let delivered = hook_receiver::collect(&mut deliveries, 4).await;
    let now = OffsetDateTime::now_utc();
    let mut thresholds = Vec::new();
    for d in &delivered {
        let signature = d.headers.get("airalo-signature").map(String::as_str);
        for event in provider.parse_webhook(signature, &d.body, now).unwrap() {
            match event {
                ProviderEvent::UsageThresholdReached {
                    subscription_id,
                    percent,
                } => {
                    assert_eq!(subscription_id, iccid);
                    thresholds.push(percent);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    thresholds.sort_unstable();
    assert_eq!(
        thresholds,
        vec![75, 75, 90, 90],
        "each level, delivered twice"
    );
    let body = &delivered[0].body;
    let signature = delivered[0]
        .headers
        .get("airalo-signature")
        .map(String::as_str);
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        provider.parse_webhook(signature, &tampered, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        provider.parse_webhook(None, body, now),
        Err(WebhookError::MissingSignature)
    );
    let days = br#"{"level":"1days","iccid":"8944"}"#;
    let signed = lineup_simulator::airalo_signature(
        AIRALO_CLIENT_SECRET,
        std::str::from_utf8(days).unwrap(),
    );
    assert_eq!(
        provider.parse_webhook(Some(&signed), days, now),
        Ok(Vec::new())
    );
    let unknown = br#"{"hello":"world"}"#;
    let signed = lineup_simulator::airalo_signature(
        AIRALO_CLIENT_SECRET,
        std::str::from_utf8(unknown).unwrap(),
    );
    assert!(matches!(
        provider.parse_webhook(Some(&signed), unknown, now),
        Err(WebhookError::Malformed(_))
    ));
}
