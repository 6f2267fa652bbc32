//! The 1GLOBAL adapter against the local simulator, over real sockets.
//! Every test starts its own simulator with no latency and fast orders.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use lineup_core::lines::iccid::luhn_valid;
use lineup_core::money::{Currency, Money};
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use lineup_core::provider::{
    ConnectivityProvider, Delivery, Effective, IdempotencyKey, Operation, OperationStatus,
    PlanKind, PlanRef, PollPolicy, ProfileState, ProviderError, ProviderEvent, ProvisionRequest,
    ProvisioningMode, Subscriber, SubscriptionState, UsageQuery, Validity, WebhookError,
    wait_for_operation,
};
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;

const GIB: i64 = 1024 * 1024 * 1024;

// ------------------------------------------------------------------ harness

struct Harness {
    sim: RunningSimulator,
    http: reqwest::Client,
}

impl Harness {
    async fn start(patch: Value) -> Self {
        let base = SimConfig::for_tests();
        let mut config = base
            .merged_with(&json!({ "rate_limit_per_min": 1_000_000 }))
            .unwrap();
        config = config
            .merged_with(&patch)
            .expect("valid simulator config patch");
        let sim = lineup_simulator::spawn(
            "127.0.0.1:0".parse().unwrap(),
            config,
            Credentials::default(),
        )
        .await
        .expect("simulator starts");
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn base_url(&self) -> String {
        self.sim.base_url().to_string()
    }

    fn config(&self) -> OneGlobalConfig {
        let creds = Credentials::default();
        let mut config = OneGlobalConfig::new(
            self.base_url(),
            creds.client_id,
            creds.client_secret,
            self.sim.account_id().to_string(),
        );
        config.request_timeout = Duration::from_secs(5);
        config.retry = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        };
        config
    }

    fn provider(&self) -> OneGlobalProvider {
        OneGlobalProvider::new(self.config()).expect("valid adapter config")
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control plane answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn fault(&self, spec: Value) {
        self.control(reqwest::Method::POST, "/_sim/faults", Some(spec))
            .await;
    }

    async fn stats(&self) -> Value {
        self.control(reqwest::Method::GET, "/_sim/stats", None)
            .await
    }

    async fn tokens_issued(&self) -> u64 {
        self.stats().await["tokens_issued"]
            .as_u64()
            .expect("tokens_issued")
    }

    async fn advance_clock(&self, seconds: i64) {
        let body = json!({ "seconds": seconds });
        self.control(reqwest::Method::POST, "/_sim/clock/advance", Some(body))
            .await;
    }

    /// The API requests the simulator saw (outside `/_sim`).
    async fn requests(&self) -> Vec<Value> {
        match self
            .control(reqwest::Method::GET, "/_sim/requests", None)
            .await
        {
            Value::Array(items) => items,
            other => panic!("unexpected /_sim/requests shape: {other}"),
        }
    }

    async fn requests_to(&self, method: &str, path_prefix: &str) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| {
                r["method"] == method && r["path"].as_str().unwrap().starts_with(path_prefix)
            })
            .collect()
    }
}

fn fast_poll() -> PollPolicy {
    PollPolicy {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        timeout: Duration::from_secs(15),
        ..PollPolicy::default()
    }
}

fn employee(n: usize) -> Subscriber {
    Subscriber {
        first_name: "Grace".into(),
        last_name: format!("Hopper{n}"),
        email: format!("grace{n}@lineup.example"),
        employee_id: Some(format!("E-{n:04}")),
        group: Some("Engineering".into()),
    }
}

async fn us_plan(provider: &OneGlobalProvider) -> PlanRef {
    let plans = provider.list_plans().await.expect("plans");
    let plan = plans
        .iter()
        .find(|p| p.name == "US 1GB")
        .expect("the US 1GB fixture plan");
    PlanRef {
        offering_id: plan.offering_id.clone(),
        template_id: plan.template_id.clone(),
    }
}

fn provision_request(plan: &PlanRef, n: usize) -> ProvisionRequest {
    ProvisionRequest {
        plan: plan.clone(),
        subscriber: employee(n),
        delivery: Delivery::Api,
        reference: Some(format!("ref-{n}")),
    }
}

/// Provisions one line and waits for it; returns the subscription id.
async fn active_line(provider: &OneGlobalProvider, plan: &PlanRef, n: usize) -> String {
    let op = provider
        .provision_line(&provision_request(plan, n), &IdempotencyKey::generate())
        .await
        .expect("provision accepted");
    let done = wait_for_operation(provider, op, fast_poll(), None)
        .await
        .expect("order settles");
    assert_eq!(done.status, OperationStatus::Succeeded);
    done.subscription_id.expect("subscription id")
}

async fn settle(provider: &OneGlobalProvider, op: Operation) -> Operation {
    let done = wait_for_operation(provider, op, fast_poll(), None)
        .await
        .expect("order settles");
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    done
}

fn assert_every_post_has_a_key(requests: &[Value]) {
    let posts: Vec<&Value> = requests
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().unwrap().starts_with("/enterprise/")
        })
        .collect();
    assert!(!posts.is_empty());
    for post in posts {
        assert!(
            post["idempotency_key"]
                .as_str()
                .is_some_and(|k| !k.is_empty()),
            "POST without Idempotency-Key: {post}"
        );
    }
}

// ------------------------------------------------------------------ happy paths

#[tokio::test]
async fn provisions_a_line_and_reads_a_valid_profile() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    assert_eq!(provider.name(), "1global");
    let caps = provider.capabilities();
    assert_eq!(caps.provisioning, ProvisioningMode::AsyncPoll);
    assert!(caps.suspend && caps.resume && caps.terminate && caps.change_plan && caps.top_up);
    assert!(caps.usage_by_country && caps.webhooks);

    let plan = us_plan(&provider).await;
    let op = provider
        .provision_line(&provision_request(&plan, 1), &IdempotencyKey::generate())
        .await
        .unwrap();
    assert_eq!(op.status, OperationStatus::Pending);
    assert!(op.id.starts_with("order_"), "{op:?}");
    assert!(
        op.subscription_id.is_some(),
        "the order names its subscription at once"
    );
    let done = settle(&provider, op).await;
    let subscription_id = done.subscription_id.unwrap();

    let snapshot = provider.get_subscription(&subscription_id).await.unwrap();
    assert_eq!(snapshot.id, subscription_id);
    assert_eq!(snapshot.state, SubscriptionState::Active);
    assert!(snapshot.created_at.is_some());

    let profile = provider.get_sim_profile(&subscription_id).await.unwrap();
    assert!(luhn_valid(profile.iccid.as_str()), "{}", profile.iccid);
    assert_eq!(profile.activation_code.smdp_address, "rsp.sim.local");
    let lpa = profile.activation_code.lpa_string();
    assert!(lpa.starts_with("LPA:1$rsp.sim.local$"), "{lpa}");
    assert_eq!(
        lineup_core::lines::activation_code::ActivationCode::parse(&lpa).unwrap(),
        profile.activation_code
    );
    assert!(!profile.activation_code.confirmation_code_required);
    assert_eq!(profile.confirmation_code, None);
    assert_ne!(profile.state, ProfileState::Unknown);
    assert!(profile.qr_code_url.is_some());

    assert_every_post_has_a_key(&h.requests().await);
}

#[tokio::test]
async fn list_plans_walks_every_page_and_joins_templates() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.page_size = 2;
    let provider = OneGlobalProvider::new(config).unwrap();
    let plans = provider.list_plans().await.unwrap();

    let by_name: HashMap<&str, _> = plans.iter().map(|p| (p.name.as_str(), p)).collect();
    for name in [
        "US 1GB",
        "US 5GB",
        "Global 10GB",
        "Europe 10GB",
        "Unlimited US",
        "Top-up 1GB",
    ] {
        assert!(by_name.contains_key(name), "missing {name} in {plans:?}");
    }
    let us1 = by_name["US 1GB"];
    assert_eq!(us1.kind, PlanKind::Base);
    assert_eq!(us1.price, Some(Money::new(1000, Currency::USD)));
    assert_eq!(us1.data_bytes, Some(GIB));
    assert_eq!(us1.validity, Validity::Monthly);
    assert_eq!(us1.coverage, vec!["US".to_string()]);
    assert!(
        us1.template_id
            .as_deref()
            .is_some_and(|t| t.starts_with("otpl_"))
    );
    assert_eq!(by_name["Global 10GB"].throttle_after_cap_kbps, Some(128));
    assert_eq!(by_name["Unlimited US"].data_bytes, None);
    assert_eq!(
        by_name["Europe 10GB"].price,
        Some(Money::new(2500, Currency::USD))
    );
    let top_up = by_name["Top-up 1GB"];
    assert_eq!(top_up.kind, PlanKind::TopUp);
    assert_eq!(top_up.template_id, None, "no template issues a top-up");
    let templates: HashSet<_> = plans.iter().filter_map(|p| p.template_id.clone()).collect();
    assert_eq!(templates.len(), 5, "each base plan has its own template");

    // 6 offerings and 5 templates in pages of 2: 3 + 3 requests.
    assert_eq!(
        h.requests_to("GET", "/enterprise/product-offerings")
            .await
            .len(),
        3
    );
    assert_eq!(
        h.requests_to("GET", "/enterprise/order-templates")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn suspend_resume_change_plan_and_terminate_are_orders() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    let sub = active_line(&provider, &plan, 1).await;

    settle(
        &provider,
        provider
            .suspend(&sub, &IdempotencyKey::generate())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        provider.get_subscription(&sub).await.unwrap().state,
        SubscriptionState::Suspended
    );

    settle(
        &provider,
        provider
            .resume(&sub, &IdempotencyKey::generate())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        provider.get_subscription(&sub).await.unwrap().state,
        SubscriptionState::Active
    );

    let plans = provider.list_plans().await.unwrap();
    let bigger = plans.iter().find(|p| p.name == "US 5GB").unwrap();
    let bigger = PlanRef {
        offering_id: bigger.offering_id.clone(),
        template_id: bigger.template_id.clone(),
    };
    let changed = provider
        .change_plan(&sub, &bigger, Effective::Now, &IdempotencyKey::generate())
        .await
        .unwrap();
    assert_eq!(changed.subscription_id.as_deref(), Some(sub.as_str()));
    settle(&provider, changed).await;

    settle(
        &provider,
        provider
            .terminate(&sub, &IdempotencyKey::generate())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        provider.get_subscription(&sub).await.unwrap().state,
        SubscriptionState::Terminated
    );

    let requests = h.requests().await;
    assert_every_post_has_a_key(&requests);
    let correlation_ids: HashSet<&str> = requests
        .iter()
        .filter_map(|r| r["correlation_id"].as_str())
        .collect();
    assert_eq!(
        correlation_ids.len(),
        requests.len(),
        "a fresh X-Correlation-ID per request"
    );
}

#[tokio::test]
async fn usage_returns_one_page_with_a_cursor() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.page_size = 2;
    let provider = OneGlobalProvider::new(config).unwrap();
    let plan = us_plan(&provider).await;
    let sub = active_line(&provider, &plan, 1).await;
    for (bytes, country, roaming) in [(1000, "US", false), (2000, "FR", true), (3000, "DE", true)] {
        let body = json!({ "data_bytes": bytes, "country": country, "roaming": roaming });
        h.control(
            reqwest::Method::POST,
            &format!("/_sim/subscriptions/{sub}/usage"),
            Some(body),
        )
        .await;
    }
    let today = OffsetDateTime::now_utc().date();
    let mut query = UsageQuery {
        from: today.previous_day().unwrap(),
        to: today.next_day().unwrap(),
        subscription_id: Some(sub.clone()),
        cursor: None,
    };
    let first = provider.usage(&query).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next_cursor.is_some());
    query.cursor = first.next_cursor.clone();
    let second = provider.usage(&query).await.unwrap();
    assert_eq!(second.next_cursor, None);

    let records: Vec<_> = first.items.into_iter().chain(second.items).collect();
    assert_eq!(records.len(), 3);
    let keys: HashSet<_> = records.iter().map(|r| r.dedupe_key.clone()).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.starts_with("uitem_")));
    assert_eq!(records.iter().map(|r| r.data_bytes).sum::<i64>(), 6000);
    let fr = records
        .iter()
        .find(|r| r.country.as_deref() == Some("FR"))
        .unwrap();
    assert_eq!(fr.roaming, lineup_core::provider::Roaming::International);
    assert_eq!(fr.subscription_id, sub);
    assert!(fr.observed_at >= fr.ended_at);
}

// ------------------------------------------------------------------ tokens

#[tokio::test]
async fn refetches_a_token_that_expired_mid_flow() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    let sub = active_line(&provider, &plan, 1).await;
    let before = h.tokens_issued().await;
    assert_eq!(before, 1, "one token serves the whole flow");

    // The vendor's clock passes the 300 s TTL; our cached token is now refused.
    h.advance_clock(400).await;
    let snapshot = provider
        .get_subscription(&sub)
        .await
        .expect("retried with a new token");
    assert_eq!(snapshot.id, sub);
    assert_eq!(h.tokens_issued().await, before + 1);

    let gets = h
        .requests_to("GET", &format!("/enterprise/subscriptions/{sub}"))
        .await;
    let statuses: Vec<_> = gets
        .iter()
        .rev()
        .take(2)
        .map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(statuses, vec![Some(200), Some(401)]);
}

#[tokio::test]
async fn refreshes_a_short_lived_token_before_it_expires() {
    let h = Harness::start(json!({ "token_ttl_s": 2 })).await;
    let provider = h.provider();
    provider.list_plans().await.unwrap();
    assert_eq!(h.tokens_issued().await, 1);
    // Half-life of a 2 s token: refreshed proactively after 1 s, without a 401.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider.list_plans().await.unwrap();
    assert_eq!(h.tokens_issued().await, 2);
    assert!(h.requests().await.iter().all(|r| r["status"] != 401));
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_new_token() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    let sub = active_line(&provider, &plan, 1).await;
    let path = format!("/enterprise/subscriptions/{sub}");
    let before = h.tokens_issued().await;

    h.fault(json!({ "match": { "method": "GET", "path_prefix": path }, "action": { "status": 401 }, "times": 1 }))
        .await;
    provider
        .get_subscription(&sub)
        .await
        .expect("second try succeeds");
    assert_eq!(h.tokens_issued().await, before + 1);

    // Two refusals in a row: one retry only, then Unauthorized.
    h.fault(json!({ "match": { "method": "GET", "path_prefix": path }, "action": { "status": 401 }, "times": 2 }))
        .await;
    let sent_before = h.requests_to("GET", &path).await.len();
    assert_eq!(
        provider.get_subscription(&sub).await,
        Err(ProviderError::Unauthorized)
    );
    assert_eq!(h.requests_to("GET", &path).await.len(), sent_before + 2);
    assert_eq!(h.tokens_issued().await, before + 2);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_without_retries() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.client_secret = "wrong".into();
    let provider = OneGlobalProvider::new(config).unwrap();
    assert_eq!(
        provider.list_plans().await,
        Err(ProviderError::Unauthorized)
    );
    assert_eq!(h.tokens_issued().await, 0);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let h = Harness::start(json!({})).await;
    let provider = Arc::new(h.provider());
    let calls = (0..20).map(|_| {
        let p = Arc::clone(&provider);
        tokio::spawn(async move { p.list_plans().await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    assert_eq!(h.tokens_issued().await, 1);
}

// ------------------------------------------------------------------ retries

#[tokio::test]
async fn honours_retry_after_on_429() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    h.fault(json!({
        "match": { "method": "POST", "path_prefix": "/enterprise/orders" },
        "action": { "status": 429, "retry_after_s": 1 },
        "times": 1
    }))
    .await;
    let started = Instant::now();
    let key = IdempotencyKey::generate();
    let op = provider
        .provision_line(&provision_request(&plan, 1), &key)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(op.status, OperationStatus::Pending);

    let posts = h.requests_to("POST", "/enterprise/orders").await;
    let statuses: Vec<_> = posts
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![429, 202]);
    assert!(posts.iter().all(|r| r["idempotency_key"] == key.0.as_str()));
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_returned_at_once() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": "/enterprise/product-offerings" },
        "action": { "status": 429, "retry_after_s": 120 },
        "times": 1
    }))
    .await;
    let started = Instant::now();
    let result = provider.list_plans().await;
    assert_eq!(
        result,
        Err(ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        })
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_detail() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider(); // max_attempts 5
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": "/enterprise/order-templates" },
        "action": { "status": 503 },
        "times": 50
    }))
    .await;
    match provider.list_plans().await {
        Err(ProviderError::Transient { detail }) => {
            assert!(
                detail.contains("5 attempts") && detail.contains("503"),
                "{detail}"
            );
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(
        h.requests_to("GET", "/enterprise/order-templates")
            .await
            .len(),
        5
    );

    h.control(reqwest::Method::DELETE, "/_sim/faults", None)
        .await;
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": "/enterprise/order-templates" },
        "action": { "status": 429, "retry_after_s": 0 },
        "times": 50
    }))
    .await;
    assert!(matches!(
        provider.list_plans().await,
        Err(ProviderError::RateLimited { .. })
    ));
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_retried_with_the_same_key() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.request_timeout = Duration::from_millis(500);
    let provider = OneGlobalProvider::new(config).unwrap();
    let plan = us_plan(&provider).await;
    // Processed, then the connection is closed without an answer.
    h.fault(json!({
        "match": { "method": "POST", "path_prefix": "/enterprise/orders" },
        "action": { "drop_connection": true },
        "phase": "after",
        "times": 1
    }))
    .await;
    // Then one attempt hangs past the client timeout.
    h.fault(json!({
        "match": { "method": "POST", "path_prefix": "/enterprise/orders" },
        "action": { "timeout": true },
        "times": 1
    }))
    .await;
    let key = IdempotencyKey::generate();
    let op = provider
        .provision_line(&provision_request(&plan, 1), &key)
        .await
        .unwrap();
    settle(&provider, op).await;

    let posts = h.requests_to("POST", "/enterprise/orders").await;
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert!(posts.iter().all(|r| r["idempotency_key"] == key.0.as_str()));
    let stats = h.stats().await;
    assert_eq!(stats["orders"]["total"], 1, "{stats}");
    assert_eq!(stats["subscriptions"]["total"], 1, "{stats}");
}

/// The key property: under random 5xx/429s (half of them after the state changed) and
/// dropped connections, 50 concurrent provisions all succeed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_provisions_under_faults_create_exactly_fifty_lines() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.retry = RetryPolicy {
        max_attempts: 20,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(80),
        max_retry_after: Duration::from_secs(5),
    };
    let provider = Arc::new(OneGlobalProvider::new(config).unwrap());
    let plan = us_plan(&provider).await;
    let stats_before = h.stats().await;
    assert_eq!(stats_before["subscriptions"]["total"], 0);

    let faults = json!({
        "error_rate": 0.3,
        "error_statuses": { "500": 1, "503": 1, "429": 1 },
        "error_after_processing": 0.5,
        "drop_connection_rate": 0.1,
        "retry_after_s": 0
    });
    h.control(reqwest::Method::PUT, "/_sim/config", Some(faults))
        .await;

    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let provider = Arc::clone(&provider);
            let plan = plan.clone();
            tokio::spawn(async move {
                let key = IdempotencyKey::generate();
                let op = provider
                    .provision_line(&provision_request(&plan, n), &key)
                    .await?;
                let done = wait_for_operation(provider.as_ref(), op, fast_poll(), None)
                    .await
                    .map_err(|e| ProviderError::Transient {
                        detail: e.to_string(),
                    })?;
                Ok::<_, ProviderError>((key, done))
            })
        })
        .collect();
    let mut order_ids = HashSet::new();
    let mut keys = HashSet::new();
    for task in tasks {
        let (key, done) = task
            .await
            .unwrap()
            .expect("every provision eventually succeeds");
        assert_eq!(done.status, OperationStatus::Succeeded);
        order_ids.insert(done.id);
        keys.insert(key.0);
    }
    assert_eq!(order_ids.len(), 50);

    h.control(
        reqwest::Method::PUT,
        "/_sim/config",
        Some(json!({ "error_rate": 0.0, "drop_connection_rate": 0.0 })),
    )
    .await;
    let stats = h.stats().await;
    assert_eq!(stats["subscriptions"]["total"], 50, "{stats}");
    assert_eq!(stats["orders"]["total"], 50, "{stats}");
    assert_eq!(
        stats["orders"]["by_type"]["activate_subscription"], 50,
        "{stats}"
    );
    assert!(
        stats["faults_injected"].as_u64().unwrap_or(0) > 0,
        "faults were injected: {stats}"
    );

    let posts = h.requests_to("POST", "/enterprise/orders").await;
    let labels: HashSet<String> = h
        .requests()
        .await
        .iter()
        .filter_map(|r| r["fault"].as_str().map(str::to_string))
        .collect();
    for kind in [
        "random:drop_connection",
        "random:500",
        "random:503",
        "random:429",
    ] {
        assert!(labels.contains(kind), "the run saw no {kind}: {labels:?}");
    }
    assert_every_post_has_a_key(&posts);
    assert!(
        posts.len() > 50,
        "some POSTs were retried ({} sent)",
        posts.len()
    );
    let sent_keys: HashSet<String> = posts
        .iter()
        .map(|r| r["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sent_keys, keys,
        "retries reused the caller's key, nothing else"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------ idempotency and errors

#[tokio::test]
async fn the_same_idempotency_key_makes_one_order() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    let key = IdempotencyKey::generate();
    let request = provision_request(&plan, 1);
    let first = provider.provision_line(&request, &key).await.unwrap();
    let second = provider.provision_line(&request, &key).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(h.stats().await["orders"]["total"], 1);

    let other = provision_request(&plan, 2);
    match provider.provision_line(&other, &key).await {
        Err(ProviderError::InvalidRequest { message }) => {
            assert!(message.contains("Idempotency-Key"), "{message}");
        }
        other => panic!("expected a key-reuse error, got {other:?}"),
    }
    assert_eq!(h.stats().await["orders"]["total"], 1);
}

#[tokio::test]
async fn maps_validation_state_and_lookup_errors_with_their_messages() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;

    let mut bad = provision_request(&plan, 1);
    bad.subscriber.email = "not-an-email".into();
    assert_eq!(
        provider
            .provision_line(&bad, &IdempotencyKey::generate())
            .await,
        Err(ProviderError::InvalidRequest {
            message: "subscriber.email is not an email address".into()
        })
    );
    assert_eq!(
        h.requests_to("POST", "/enterprise/orders").await.len(),
        1,
        "a 400 is not retried"
    );

    let sub = active_line(&provider, &plan, 2).await;
    match provider.resume(&sub, &IdempotencyKey::generate()).await {
        Err(ProviderError::InvalidState { message }) => {
            assert!(
                message.contains("cannot resume") && message.contains("active"),
                "{message}"
            );
        }
        other => panic!("expected InvalidState, got {other:?}"),
    }
    assert_eq!(
        provider.get_subscription("sub_NOPE").await,
        Err(ProviderError::NotFound("subscription sub_NOPE".into()))
    );
    let unknown_plan = PlanRef {
        offering_id: "prdoff_NOPE".into(),
        template_id: None,
    };
    assert!(matches!(
        provider
            .provision_line(
                &provision_request(&unknown_plan, 3),
                &IdempotencyKey::generate()
            )
            .await,
        Err(ProviderError::NotFound(_))
    ));
}

#[tokio::test]
async fn unreadable_bodies_never_panic() {
    let h = Harness::start(json!({})).await;
    let mut config = h.config();
    config.retry.max_attempts = 2;
    let provider = OneGlobalProvider::new(config).unwrap();
    let plan = us_plan(&provider).await;
    let sub = active_line(&provider, &plan, 1).await;

    // A gateway error page instead of JSON: retried, then Transient with the text.
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": format!("/enterprise/subscriptions/{sub}") },
        "action": { "status": 502, "body": "<html>Bad Gateway</html>" },
        "times": 2
    }))
    .await;
    match provider.get_subscription(&sub).await {
        Err(ProviderError::Transient { detail }) => {
            assert!(
                detail.contains("502") && detail.contains("Bad Gateway"),
                "{detail}"
            );
        }
        other => panic!("expected Transient, got {other:?}"),
    }

    // A 2xx that is not an order.
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": "/enterprise/orders/" },
        "action": { "status": 200, "body": "surprise" },
        "times": 1
    }))
    .await;
    assert!(matches!(
        provider.poll_operation("order_ANY").await,
        Err(ProviderError::Protocol { status: 200, .. })
    ));

    // A 400 with a body we cannot read.
    h.fault(json!({
        "match": { "method": "GET", "path_prefix": "/enterprise/orders/" },
        "action": { "status": 400, "body": ["what"] },
        "times": 1
    }))
    .await;
    assert!(matches!(
        provider.poll_operation("order_ANY").await,
        Err(ProviderError::Protocol { status: 400, .. })
    ));
}

#[tokio::test]
async fn a_malformed_profile_from_the_vendor_is_a_protocol_error_naming_the_field() {
    let h = Harness::start(json!({})).await;
    let provider = h.provider();
    let path = "/enterprise/subscriptions/sub_X/sim-profile";
    let good_code = "LPA:1$rsp.sim.local$K2-ABCDE-FGHIJK";
    let cases = [
        (
            json!({ "iccid": "8944474600000109252", "activation_code": good_code }),
            "sim_profile.iccid",
        ),
        (
            json!({ "iccid": "8944474600000109251", "activation_code": "LPA:1$$X" }),
            "sim_profile.activation_code",
        ),
        // A profile whose other fields are malformed: the error does not quote the code.
        (
            json!({ "iccid": 8944474600000109251_u64, "activation_code": good_code }),
            "SIM profile",
        ),
        // A near-miss code may still install: the error names what is wrong, not the code.
        (
            json!({ "iccid": "8944474600000109251", "activation_code": "LPA:1$rsp.sim.local$k2-lower-case" }),
            "matching id with characters outside",
        ),
        (
            json!({ "iccid": "8944474600000109251", "activation_code": good_code, "eid": "123" }),
            "sim_profile.eid",
        ),
    ];
    for (body, field) in cases {
        h.fault(json!({ "match": { "path_prefix": path }, "action": { "status": 200, "body": body }, "times": 1 }))
            .await;
        match provider.get_sim_profile("sub_X").await {
            Err(ProviderError::Protocol { body, .. }) => {
                assert!(body.contains(field), "{body}");
                assert!(!body.contains("k2-lower-case"), "{body}");
                assert!(!body.contains("K2-ABCDE"), "{body}");
            }
            other => panic!("expected Protocol naming {field}, got {other:?}"),
        }
    }
    h.fault(json!({
        "match": { "path_prefix": path },
        "action": { "status": 200, "body": { "iccid": "8944474600000109251", "activation_code": good_code, "status": "installed" } },
        "times": 1
    }))
    .await;
    let profile = provider.get_sim_profile("sub_X").await.unwrap();
    assert_eq!(profile.state, ProfileState::Installed);
}

// ------------------------------------------------------------------ webhooks

const SECRET: &str = "whsec_test";

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn webhook_provider() -> OneGlobalProvider {
    let mut config = OneGlobalConfig::new("http://127.0.0.1:9", "id", "secret", "acc_X");
    config.webhook_secret = Some(SECRET.into());
    OneGlobalProvider::new(config).unwrap()
}

#[test]
fn webhook_signatures_are_verified() {
    let provider = webhook_provider();
    let now = OffsetDateTime::now_utc();
    let t = now.unix_timestamp();
    let body = br#"{"id":"evt_1","type":"order.completed","occurred_at":"2025-01-01T00:00:00Z","data":{"id":"order_1","status":"completed","subscription_id":"sub_1"}}"#;

    let events = provider
        .parse_webhook(Some(&sign(SECRET, t, body)), body, now)
        .unwrap();
    assert_eq!(
        events,
        vec![ProviderEvent::OperationSettled {
            operation_id: "order_1".into(),
            status: OperationStatus::Succeeded
        }]
    );

    let tampered = body
        .iter()
        .map(|&b| if b == b'1' { b'2' } else { b })
        .collect::<Vec<_>>();
    assert_eq!(
        provider.parse_webhook(Some(&sign(SECRET, t, body)), &tampered, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        provider.parse_webhook(Some(&sign("other", t, body)), body, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        provider.parse_webhook(None, body, now),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        provider.parse_webhook(Some("garbage"), body, now),
        Err(WebhookError::BadSignature)
    );
    let old = t - 301;
    assert_eq!(
        provider.parse_webhook(Some(&sign(SECRET, old, body)), body, now),
        Err(WebhookError::Stale)
    );
    let future = t + 301;
    assert_eq!(
        provider.parse_webhook(Some(&sign(SECRET, future, body)), body, now),
        Err(WebhookError::Stale)
    );
    assert!(
        provider
            .parse_webhook(Some(&sign(SECRET, t - 299, body)), body, now)
            .is_ok()
    );
}

#[test]
fn webhook_events_are_normalised() {
    let provider = webhook_provider();
    let now = OffsetDateTime::now_utc();
    let parse = |envelope: Value| {
        let body = envelope.to_string().into_bytes();
        provider.parse_webhook(Some(&sign(SECRET, now.unix_timestamp(), &body)), &body, now)
    };
    let event = |kind: &str, data: Value| json!({ "id": "evt_1", "type": kind, "occurred_at": "2025-01-01T00:00:00Z", "data": data });

    assert_eq!(
        parse(event(
            "order.canceled",
            json!({ "id": "order_2", "failure": { "code": "PROVISIONING_FAILED", "message": "no" } })
        )),
        Ok(vec![ProviderEvent::OperationSettled {
            operation_id: "order_2".into(),
            status: OperationStatus::Failed {
                code: "PROVISIONING_FAILED".into(),
                message: "no".into()
            },
        }])
    );
    assert_eq!(
        parse(event(
            "subscription.status_changed",
            json!({ "subscription_id": "sub_1", "from": "active", "to": "suspended" })
        )),
        Ok(vec![ProviderEvent::SubscriptionStateChanged {
            subscription_id: "sub_1".into(),
            to: SubscriptionState::Suspended
        }])
    );
    assert_eq!(
        parse(event(
            "sim_profile.download_progress",
            json!({ "iccid": "8944474600000109251", "eid": null, "step": "BPP_INSTALLATION", "status": "SUCCESS" })
        )),
        Ok(vec![ProviderEvent::ProfileStateChanged {
            iccid: "8944474600000109251".into(),
            state: ProfileState::Installed
        }])
    );
    assert_eq!(
        parse(event(
            "sim_profile.download_progress",
            json!({ "iccid": "8944474600000109251", "step": "BPP_INSTALLATION", "status": "FAILURE" })
        )),
        Ok(vec![ProviderEvent::ProfileStateChanged {
            iccid: "8944474600000109251".into(),
            state: ProfileState::Error
        }])
    );
    assert_eq!(
        parse(event(
            "usage.threshold_reached",
            json!({ "subscription_id": "sub_1", "product_id": "prd_1", "threshold_pct": 80, "remaining_bytes": 5 })
        )),
        Ok(vec![ProviderEvent::UsageThresholdReached {
            subscription_id: "sub_1".into(),
            percent: 80
        }])
    );
    assert_eq!(
        parse(event(
            "product.depleted",
            json!({ "subscription_id": "sub_1", "product_id": "prd_1" })
        )),
        Ok(vec![ProviderEvent::AllowanceExhausted {
            subscription_id: "sub_1".into()
        }])
    );
    assert!(matches!(
        parse(event("account.renamed", json!({}))),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse(event("usage.threshold_reached", json!({}))),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse(json!([1, 2])),
        Err(WebhookError::Malformed(_))
    ));
}

/// A minimal HTTP receiver: hands over each request's signature header and body, answers 200.
async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let signature = head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("x-sim-signature")
                        .then(|| value.trim().to_string())
                });
                let _ = tx.send((signature, buf[head_end..head_end + length].to_vec()));
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = stream.write_all(reply).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn webhooks_delivered_by_the_simulator_verify_and_normalise() {
    let h = Harness::start(json!({})).await;
    let (url, mut deliveries) = webhook_receiver().await;
    let token: Value = h
        .http
        .post(format!("{}{}", h.base_url(), OneGlobalConfig::TOKEN_PATH))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "lineup-demo-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = h
        .http
        .post(format!("{}/enterprise/webhooks", h.base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({ "url": url, "events": ["*"], "secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );

    let mut config = h.config();
    config.webhook_secret = Some(SECRET.into());
    let provider = OneGlobalProvider::new(config).unwrap();
    let plan = us_plan(&provider).await;
    let op = provider
        .provision_line(&provision_request(&plan, 1), &IdempotencyKey::generate())
        .await
        .unwrap();
    let order_id = op.id.clone();
    let sub = settle(&provider, op).await.subscription_id.unwrap();

    let (mut settled, mut activated) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(settled && activated) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (signature, body) = tokio::time::timeout(left, deliveries.recv())
            .await
            .expect("the simulator delivers the events")
            .unwrap();
        let events = provider
            .parse_webhook(signature.as_deref(), &body, OffsetDateTime::now_utc())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        for event in events {
            match event {
                ProviderEvent::OperationSettled {
                    operation_id,
                    status,
                } if operation_id == order_id => {
                    assert_eq!(status, OperationStatus::Succeeded);
                    settled = true;
                }
                ProviderEvent::SubscriptionStateChanged {
                    subscription_id,
                    to,
                } if subscription_id == sub => {
                    activated |= to == SubscriptionState::Active;
                }
                _ => {}
            }
        }
    }
}

#[test]
fn without_a_secret_every_webhook_is_refused() {
    let provider = OneGlobalProvider::new(OneGlobalConfig::new(
        "http://127.0.0.1:9",
        "id",
        "s",
        "acc_X",
    ))
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let body = br#"{"type":"order.completed","data":{"id":"order_1"}}"#;
    assert_eq!(
        provider.parse_webhook(Some(&sign("", now.unix_timestamp(), body)), body, now),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn config_defaults_and_validation() {
    let config = OneGlobalConfig::new("https://api.1global.com/", "id", "s", "acc_X");
    assert_eq!(
        config.token_url,
        "https://api.1global.com/auth/realms/enterprise-apis/protocol/openid-connect/token"
    );
    assert_eq!(config.request_timeout, Duration::from_secs(10));
    assert_eq!(config.retry, RetryPolicy::default());
    assert!(
        !format!("{config:?}").contains("\"s\""),
        "the secret is redacted"
    );
    assert!(OneGlobalProvider::new(config).is_ok());
    assert!(OneGlobalProvider::new(OneGlobalConfig::new("not a url", "id", "s", "acc_X")).is_err());
    assert!(OneGlobalProvider::new(OneGlobalConfig::new("http://x", "id", "s", " ")).is_err());
}

#[tokio::test]
async fn an_order_is_asked_about_often_at_first_then_less_and_less() {
    let h = Harness::start(json!({"order_delay_ms": {"min": 1500, "max": 1500}})).await;
    let provider = h.provider();
    let plan = us_plan(&provider).await;
    let polls_while_waiting = |n: usize, tight_for: Duration| {
        let (provider, plan, h) = (&provider, &plan, &h);
        async move {
            h.control(reqwest::Method::DELETE, "/_sim/requests", None)
                .await;
            let op = provider
                .provision_line(&provision_request(plan, n), &IdempotencyKey::generate())
                .await
                .expect("provision accepted");
            let policy = PollPolicy {
                first_delay: Duration::from_millis(50),
                tight_for,
                max_delay: Duration::from_secs(10),
                timeout: Duration::from_secs(15),
                ..PollPolicy::default()
            };
            let done = wait_for_operation(provider, op, policy, None)
                .await
                .expect("order settles");
            assert_eq!(done.status, OperationStatus::Succeeded);
            h.requests_to("GET", "/enterprise/orders/").await.len()
        }
    };
    // Every 50 ms for the order's 1.5 s: ~30 polls, fewer on a busy machine.
    let tight = polls_while_waiting(1, Duration::from_secs(10)).await;
    assert!(tight >= 12, "only {tight} polls in the tight phase");
    // Backing off from the first poll: 50, 75, 112, … ms, 7 polls to reach 1.5 s.
    let relaxed = polls_while_waiting(2, Duration::ZERO).await;
    assert!(relaxed <= 8, "{relaxed} polls while backing off");
}
