//! The Gigs adapter against the simulator's Gigs personality, over real sockets, with
//! injected faults: exactly-once orders, no lost usage, duplicate and reordered events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lineup_core::provider::gigs::{GigsConfig, GigsProvider};
use lineup_core::provider::http::RetryPolicy;
use lineup_core::provider::{
    ConnectivityProvider, Delivery, Effective, IdempotencyKey, OperationStatus, PlanRef,
    PollPolicy, PortInRequest, ProviderError, ProviderEvent, ProvisionRequest, ProvisioningMode,
    Roaming, Subscriber, SubscriptionState, UsageQuery, UsageRecord, Validity, WebhookError,
    wait_for_operation,
};
use lineup_simulator::{
    Credentials, GIGS_API_KEY, GIGS_PROJECT, Personality, RunningSimulator, SimConfig,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::hook_receiver;

const MIB: i64 = 1024 * 1024;
const HOOK_SECRET: &str = "whsec_gigs_test";

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

    fn provider_with(&self, page_size: u8, attempts: u32) -> GigsProvider {
        let mut config = GigsConfig::new(
            self.sim.personality_url(Personality::Gigs),
            GIGS_PROJECT,
            GIGS_API_KEY,
        );
        config.request_timeout = Duration::from_secs(2);
        config.retry = RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
        };
        config.webhook_secret = Some(HOOK_SECRET.into());
        config.page_size = page_size;
        GigsProvider::new(config).expect("valid adapter config")
    }

    fn provider(&self) -> GigsProvider {
        self.provider_with(100, 5)
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

    async fn usage(&self, subscription: &str, body: Value) {
        let path = format!("/_sim/gigs/subscriptions/{subscription}/usage");
        self.control(reqwest::Method::POST, &path, body).await;
    }

    /// The API requests the simulator saw to paths starting with `prefix`.
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

fn project_path(rest: &str) -> String {
    format!("/gigs/projects/{GIGS_PROJECT}{rest}")
}

fn fast_poll() -> PollPolicy {
    PollPolicy {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        timeout: Duration::from_secs(15),
        ..PollPolicy::default()
    }
}

fn request(plan: &str, n: usize) -> ProvisionRequest {
    ProvisionRequest {
        plan: PlanRef {
            offering_id: plan.into(),
            template_id: None,
        },
        subscriber: Subscriber {
            first_name: "Ada".into(),
            last_name: format!("Lovelace{n}"),
            email: format!("ada{n}@lineup.example"),
            employee_id: None,
            group: None,
        },
        delivery: Delivery::Api,
        reference: Some(format!("line-{n}")),
    }
}

async fn active_line(provider: &GigsProvider, n: usize) -> String {
    let op = provider
        .provision_line(&request("pln_us_5gb", n), &IdempotencyKey::generate())
        .await
        .expect("order accepted");
    assert_eq!(op.status, OperationStatus::Pending, "Gigs answers pending");
    let done = wait_for_operation(provider, op, fast_poll(), None)
        .await
        .unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded);
    done.subscription_id.unwrap()
}

/// Every usage page from the start, `(dedupe key → record)`.
async fn all_usage(provider: &GigsProvider) -> HashMap<String, UsageRecord> {
    let today = OffsetDateTime::now_utc().date();
    let mut query = UsageQuery {
        from: today - time::Duration::days(30),
        to: today,
        subscription_id: None,
        cursor: None,
    };
    let mut records = HashMap::new();
    loop {
        let page = provider.usage(&query).await.expect("usage page");
        for record in page.items {
            let previous = records.insert(record.dedupe_key.clone(), record.clone());
            assert!(
                previous.is_none_or(|p| p == record),
                "a key changed meaning"
            );
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return records,
        }
    }
}

fn bytes_of(records: &HashMap<String, UsageRecord>, subscription: &str) -> i64 {
    records
        .values()
        .filter(|r| r.subscription_id == subscription)
        .map(|r| r.data_bytes)
        .sum()
}

#[tokio::test]
async fn provisions_a_line_from_pending_and_reads_its_profile_and_plans() {
    let h = Harness::start().await;
    let provider = h.provider();
    assert_eq!(provider.name(), "gigs");
    assert_eq!(
        provider.capabilities().provisioning,
        ProvisioningMode::AsyncCallback
    );
    let plans = provider.list_plans().await.unwrap();
    let us = plans
        .iter()
        .find(|p| p.offering_id == "pln_us_5gb")
        .unwrap();
    assert_eq!(us.validity, Validity::Monthly);
    assert_eq!(us.coverage, vec!["US".to_string()]);
    assert_eq!(us.data_bytes, Some(5 * 1024 * MIB));
    assert_eq!(us.price.unwrap().minor, 1500);
    let unlimited = plans
        .iter()
        .find(|p| p.offering_id == "pln_us_unlimited")
        .unwrap();
    assert_eq!(unlimited.data_bytes, None);

    let subscription = active_line(&provider, 1).await;
    let snapshot = provider.get_subscription(&subscription).await.unwrap();
    assert_eq!(snapshot.state, SubscriptionState::Active);
    let profile = provider.get_sim_profile(&subscription).await.unwrap();
    assert!(
        profile
            .activation_code
            .lpa_string()
            .starts_with("LPA:1$rsp.sim.local$")
    );
    let listed = provider.list_subscriptions(None).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].reference.as_deref(), Some("line-1"));

    // The same person's second line reuses their Gigs user.
    let mut second = request("pln_us_5gb", 1);
    second.reference = Some("line-1b".into());
    provider
        .provision_line(&second, &IdempotencyKey::generate())
        .await
        .unwrap();
    assert_eq!(
        h.requests_to("POST", &project_path("/users")).await.len(),
        1
    );
}

#[tokio::test]
async fn suspend_and_resume_are_refused_without_asking_gigs() {
    let h = Harness::start().await;
    let provider = h.provider();
    let caps = provider.capabilities();
    assert!(!caps.suspend && !caps.resume && caps.terminate && caps.port_in && caps.port_out);
    let subscription = active_line(&provider, 1).await;
    let key = IdempotencyKey::generate();
    assert_eq!(
        provider.suspend(&subscription, &key).await,
        Err(ProviderError::Unsupported("suspending a line"))
    );
    assert_eq!(
        provider.resume(&subscription, &key).await,
        Err(ProviderError::Unsupported("resuming a line"))
    );
    assert_eq!(
        provider
            .get_subscription(&subscription)
            .await
            .unwrap()
            .state,
        SubscriptionState::Active,
        "nothing pretended to suspend it"
    );
    let email = ProvisionRequest {
        delivery: Delivery::Email {
            to: vec!["a@b.example".into()],
        },
        ..request("pln_us_5gb", 2)
    };
    assert!(matches!(
        provider.provision_line(&email, &key).await,
        Err(ProviderError::Unsupported(_))
    ));
}

#[tokio::test]
async fn plan_changes_porting_in_and_out_and_ending_a_line() {
    let h = Harness::start().await;
    let provider = h.provider();
    let subscription = active_line(&provider, 1).await;
    let plan = PlanRef {
        offering_id: "pln_na_10gb".into(),
        template_id: None,
    };
    let change = provider
        .change_plan(
            &subscription,
            &plan,
            Effective::Now,
            &IdempotencyKey::generate(),
        )
        .await
        .unwrap();
    assert!(change.id.starts_with("sch_"));
    let change = wait_for_operation(&provider, change, fast_poll(), None)
        .await
        .unwrap();
    assert_eq!(change.status, OperationStatus::Succeeded);
    assert_eq!(
        provider
            .change_plan(
                &subscription,
                &plan,
                Effective::NextPeriod,
                &IdempotencyKey::generate()
            )
            .await,
        Err(ProviderError::Unsupported(
            "plan changes from the next period"
        ))
    );

    let port = PortInRequest {
        number: "+14155550123".into(),
        donor_account: "DONOR-1".into(),
        donor_pin: Some("1234".into()),
    };
    let porting = provider
        .port_in(&subscription, &port, &IdempotencyKey::generate())
        .await
        .unwrap();
    let porting = wait_for_operation(&provider, porting, fast_poll(), None)
        .await
        .unwrap();
    assert_eq!(porting.status, OperationStatus::Succeeded);
    assert_eq!(
        porting.subscription_id.as_deref(),
        Some(subscription.as_str())
    );
    let bad_number = PortInRequest {
        number: "0415".into(),
        ..port.clone()
    };
    assert!(matches!(
        provider.port_in(&subscription, &bad_number, &IdempotencyKey::generate()).await,
        Err(ProviderError::InvalidRequest { message }) if message.contains("E.164")
    ));

    let key = IdempotencyKey::generate();
    let released = provider.port_out(&subscription, &key).await.unwrap();
    assert_eq!(
        released.msisdn, "+14155550123",
        "the ported-in number leaves"
    );
    assert_eq!(released.code.len(), 8);
    assert!(released.expires_at > OffsetDateTime::now_utc());
    assert_eq!(
        provider.port_out(&subscription, &key).await.unwrap(),
        released,
        "a retried release replays the same code"
    );

    let ended = provider
        .terminate(&subscription, &IdempotencyKey::generate())
        .await
        .unwrap();
    assert_eq!(ended.status, OperationStatus::Succeeded);
    assert_eq!(
        provider
            .get_subscription(&subscription)
            .await
            .unwrap()
            .state,
        SubscriptionState::Terminated
    );
    assert!(matches!(
        provider
            .port_out(&subscription, &IdempotencyKey::generate())
            .await,
        Err(ProviderError::InvalidState { .. })
    ));
}

/// 5xx (half after the subscription was created), 429 with Retry-After and dropped
/// connections: twenty concurrent orders make twenty subscriptions and twenty users.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_under_faults_create_each_line_exactly_once() {
    let h = Harness::start().await;
    let provider = Arc::new(h.provider_with(100, 20));
    h.fault(json!({
        "match": { "method": "POST", "path_prefix": project_path("/subscriptions") },
        "action": { "status": 429, "retry_after_s": 1 },
        "times": 1
    }))
    .await;
    h.configure(json!({
        "error_rate": 0.3,
        "error_statuses": { "500": 1, "503": 1, "429": 1 },
        "error_after_processing": 0.5,
        "drop_connection_rate": 0.1,
        "retry_after_s": 0
    }))
    .await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let provider = Arc::clone(&provider);
            tokio::spawn(async move {
                let op = provider
                    .provision_line(&request("pln_us_5gb", n), &IdempotencyKey::generate())
                    .await?;
                wait_for_operation(provider.as_ref(), op, fast_poll(), None)
                    .await
                    .map_err(|e| ProviderError::Transient {
                        detail: e.to_string(),
                    })
            })
        })
        .collect();
    let mut subscriptions = HashSet::new();
    for task in tasks {
        let done = task
            .await
            .unwrap()
            .expect("every order eventually succeeds");
        assert_eq!(done.status, OperationStatus::Succeeded);
        subscriptions.insert(done.subscription_id.unwrap());
    }
    h.configure(json!({ "error_rate": 0.0, "drop_connection_rate": 0.0 }))
        .await;
    let listed = provider.list_subscriptions(None).await.unwrap();
    let listed: HashSet<String> = listed.items.into_iter().map(|s| s.id).collect();
    assert_eq!(listed, subscriptions, "one subscription per order, no more");
    let faults: HashSet<String> = h
        .requests_to("POST", "/gigs")
        .await
        .iter()
        .filter_map(|r| r["fault"].as_str().map(str::to_string))
        .collect();
    assert!(faults.len() >= 3, "faults were injected: {faults:?}");
    let url = format!("{}{}", h.sim.base_url(), project_path("/users?limit=200"));
    let users: Value = h
        .http
        .get(url)
        .bearer_auth(GIGS_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        20,
        "one user per person"
    );
}

/// Daily aggregates are read again as they grow, through 5xx, 429 and dropped connections,
/// one record per page: every closed day adds up exactly and re-reads never double count.
#[tokio::test]
async fn usage_under_faults_is_neither_lost_nor_counted_twice() {
    let h = Harness::start().await;
    let provider = h.provider_with(1, 10);
    let first = active_line(&provider, 1).await;
    let second = active_line(&provider, 2).await;
    let yesterday = (OffsetDateTime::now_utc().date() - time::Duration::days(1)).to_string();
    h.usage(
        &first,
        json!({ "data_bytes": 25 * MIB + 3, "country": "US", "date": yesterday }),
    )
    .await;
    h.usage(&first, json!({ "data_bytes": 7 * MIB, "country": "FR", "roaming": "international", "date": yesterday })).await;
    h.usage(&second, json!({ "data_bytes": 31 * MIB, "country": "US" }))
        .await;
    for spec in [
        json!({ "action": { "status": 500 }, "times": 1 }),
        json!({ "action": { "status": 429, "retry_after_s": 1 }, "times": 1 }),
        json!({ "action": { "drop_connection": true }, "times": 1 }),
    ] {
        let mut spec = spec;
        spec["match"] = json!({ "method": "GET", "path_prefix": project_path("/usage") });
        h.fault(spec).await;
    }
    let records = all_usage(&provider).await;
    assert_eq!(
        bytes_of(&records, &first),
        32 * MIB + 3,
        "closed days are exact"
    );
    assert_eq!(
        bytes_of(&records, &second),
        30 * MIB,
        "today so far, in whole chunks"
    );
    let roaming: Vec<&UsageRecord> = records
        .values()
        .filter(|r| r.country.as_deref() == Some("FR"))
        .collect();
    assert!(!roaming.is_empty() && roaming.iter().all(|r| r.roaming == Roaming::International));
    let faults = h.requests_to("GET", &project_path("/usage")).await;
    assert_eq!(faults.iter().filter(|r| !r["fault"].is_null()).count(), 3);

    h.usage(&second, json!({ "data_bytes": 12 * MIB, "country": "US" }))
        .await;
    let again = all_usage(&provider).await;
    assert!(
        records.keys().all(|key| again.contains_key(key)),
        "old keys repeat"
    );
    assert_eq!(bytes_of(&again, &second), 40 * MIB);
    assert_eq!(bytes_of(&again, &first), 32 * MIB + 3);
}

/// Every event twice, shuffled: each verifies, and each operation settles once by id.
#[tokio::test]
async fn duplicate_and_reordered_events_verify_and_name_each_line_once() {
    let h = Harness::start().await;
    let provider = h.provider();
    let (url, mut deliveries) = hook_receiver::start().await;
    let register = format!("{}{}", h.sim.base_url(), project_path("/webhookEndpoints"));
    let answer = h
        .http
        .post(register)
        .bearer_auth(GIGS_API_KEY)
        .json(&json!({ "url": url, "secret": HOOK_SECRET }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    h.configure(json!({ "webhooks": { "duplicate_rate": 1.0, "reorder": true } }))
        .await;
    let mut lines = HashSet::new();
    for n in 0..3 {
        lines.insert(active_line(&provider, n).await);
    }
    let delivered = hook_receiver::collect(&mut deliveries, 6).await;
    let mut settled = Vec::new();
    let mut event_ids = HashMap::new();
    for d in &delivered {
        let signature = d.headers.get("gigs-signature").map(String::as_str);
        let events = provider
            .parse_webhook(signature, &d.body, OffsetDateTime::now_utc())
            .expect("a signed Gigs event");
        let id = serde_json::from_slice::<Value>(&d.body).unwrap()["id"].clone();
        *event_ids.entry(id.to_string()).or_insert(0) += 1;
        for event in events {
            if let ProviderEvent::OperationSettled {
                operation_id,
                status,
            } = event
            {
                assert_eq!(status, OperationStatus::Succeeded);
                settled.push(operation_id);
            }
        }
    }
    assert!(
        event_ids.values().all(|copies| *copies == 2),
        "{event_ids:?}"
    );
    let distinct: HashSet<String> = settled.iter().cloned().collect();
    assert_eq!(distinct, lines, "the events name each new line");
    assert_eq!(settled.len(), 6, "twice each: the receiver dedupes by id");

    let body = &delivered[0].body;
    let signature = delivered[0]
        .headers
        .get("gigs-signature")
        .map(String::as_str);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        provider.parse_webhook(signature, &tampered, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        provider.parse_webhook(None, body, now),
        Err(WebhookError::MissingSignature)
    );
}
