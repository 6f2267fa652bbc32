//! Airalo Partner API adapter (research §2.4): travel data packages as plans
//! (`Validity::Days`, coverage countries, USD prices), synchronous orders, usage by ICCID,
//! and low-data webhooks signed with HMAC-SHA512 in `airalo-signature`.
//!
//! A travel eSIM is a second, time-boxed line: its subscription id is its ICCID. Airalo has
//! no suspend, resume, terminate or plan change (`Unsupported`, and the capability flags say
//! so), no idempotency key (an order's description carries ours and a retry looks it up
//! before ordering again), and answers usage at most once per 15 minutes per eSIM: the
//! adapter skips an eSIM until its window has passed. Usage is a running total with no
//! country breakdown; records carry the package's country when it covers one.
//!
//! * `wire` — vendor JSON, its translation, the webhook signature and events.

pub(crate) mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;

use super::http::transport::{Auth, Call, Transport};
use super::http::{RetryPolicy, parse_url};
use super::usage_chunks::chunks;
use super::{
    Capabilities, ConnectivityProvider, Delivery, Effective, IdempotencyKey, ListedSubscription,
    Operation, Page, PlanRef, ProviderError, ProviderEvent, ProviderPlan, ProvisionRequest,
    ProvisioningMode, Roaming, SimProfile, SubscriptionSnapshot, UsageQuery, UsageRecord,
    WebhookError,
};
use wire::{CountryWire, Envelope, Listing, OrderWire, SimWire, UsageWire};

/// Airalo answers one usage read per eSIM per this long.
pub const USAGE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Stops a misbehaving `links.next` chain from looping forever.
const MAX_PAGES: usize = 1000;

/// How to reach one Airalo partner account.
#[derive(Clone)]
pub struct AiraloConfig {
    /// e.g. `https://partners-api.airalo.com`, or the simulator's `http://127.0.0.1:8787/airalo`.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Signs `airalo-signature`; without it every webhook is refused.
    pub webhook_secret: Option<String>,
    /// `limit` for list calls (1..=100).
    pub page_size: u8,
}

impl AiraloConfig {
    /// Defaults: 10 s request timeout, default retries, no webhook secret, pages of 100.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            webhook_secret: None,
            page_size: 100,
        }
    }
}

/// Secrets stay out of logs.
impl fmt::Debug for AiraloConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiraloConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct AiraloProvider {
    base: Url,
    page_size: u8,
    retry: RetryPolicy,
    webhook_secret: Option<String>,
    transport: Transport,
    /// When each eSIM's usage may next be read.
    usage_not_before: Mutex<HashMap<String, Instant>>,
    /// Package id to the countries it covers, read once from the catalogue.
    package_countries: tokio::sync::OnceCell<HashMap<String, Vec<String>>>,
}

impl AiraloProvider {
    pub const CAPABILITIES: Capabilities = Capabilities {
        provisioning: ProvisioningMode::Sync,
        suspend: false,
        resume: false,
        terminate: false,
        change_plan: false,
        top_up: true,
        usage_by_country: false,
        eid_push_install: false,
        webhooks: true,
        speed_limit: false,
        port_in: false,
        port_out: false,
    };

    pub fn new(config: AiraloConfig) -> Result<Self, ProviderError> {
        let base = parse_url("Airalo", "base_url", &config.base_url)?;
        let auth = Auth::ClientCredentials {
            token_url: v2_url(&base, &["token"]),
            client_id: config.client_id,
            client_secret: config.client_secret,
        };
        let transport = Transport::new("airalo", auth, config.retry, config.request_timeout)?;
        Ok(Self {
            base,
            page_size: config.page_size.clamp(1, 100),
            retry: config.retry,
            webhook_secret: config.webhook_secret.filter(|s| !s.is_empty()),
            transport,
            usage_not_before: Mutex::new(HashMap::new()),
            package_countries: tokio::sync::OnceCell::new(),
        })
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        v2_url(&self.base, segments)
    }

    fn list_endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint(segments);
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("limit", &self.page_size.to_string());
        url
    }

    async fn get<T: DeserializeOwned>(
        &self,
        url: Url,
        operation: &'static str,
        what: String,
    ) -> Result<T, ProviderError> {
        self.transport.json(&Call::get(url, operation, what)).await
    }

    /// Every item of a list, following `links.next`.
    async fn all_items<T: DeserializeOwned>(
        &self,
        mut url: Url,
        operation: &'static str,
        what: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: Listing<T> = self.get(url, operation, what.to_owned()).await?;
            items.extend(page.data);
            match page.links.next {
                Some(next) => {
                    url = self.base.join(&next).map_err(|e| {
                        super::oneglobal::wire::bad_field("links.next", format!("{next:?}: {e}"))
                    })?
                }
                None => return Ok(items),
            }
        }
        Err(super::oneglobal::wire::bad_field(
            "links.next",
            format!("more than {MAX_PAGES} pages of {what}"),
        ))
    }

    /// The order an earlier attempt placed under this description, if any.
    async fn find_order(&self, description: &str) -> Result<Option<Operation>, ProviderError> {
        let url = self.list_endpoint(&["orders"], &[("filter[description]", description)]);
        let orders: Listing<OrderWire> =
            self.get(url, "airalo find_order", "orders".into()).await?;
        orders
            .data
            .into_iter()
            .next()
            .map(OrderWire::into_operation)
            .transpose()
    }

    async fn sim(&self, iccid: &str) -> Result<SimWire, ProviderError> {
        let url = self.endpoint(&["sims", iccid]);
        let sim: Envelope<SimWire> = self
            .get(url, "airalo get_sim", format!("eSIM {iccid}"))
            .await?;
        Ok(sim.data)
    }

    async fn package_countries(&self) -> Result<&HashMap<String, Vec<String>>, ProviderError> {
        self.package_countries
            .get_or_try_init(|| async {
                let plans = self.list_plans().await?;
                Ok(plans
                    .into_iter()
                    .map(|plan| (plan.offering_id, plan.coverage))
                    .collect())
            })
            .await
    }

    /// Whether this eSIM's usage may be read now (Airalo's 15-minute window).
    fn usage_due(&self, iccid: &str) -> bool {
        let not_before = self.usage_not_before.lock().expect("not poisoned");
        not_before.get(iccid).is_none_or(|at| Instant::now() >= *at)
    }

    fn defer_usage(&self, iccid: &str, wait: Duration) {
        let mut not_before = self.usage_not_before.lock().expect("not poisoned");
        not_before.insert(iccid.to_owned(), Instant::now() + wait);
    }

    /// One eSIM's usage as chunk records, or none when its window has not passed. A 429
    /// defers the eSIM by its `Retry-After`: the next read's running total includes
    /// everything this one would have said, so nothing is lost.
    async fn sim_usage(&self, sim: &SimWire) -> Result<Vec<UsageRecord>, ProviderError> {
        if !self.usage_due(&sim.iccid) {
            return Ok(Vec::new());
        }
        let url = self.endpoint(&["sims", &sim.iccid, "usage"]);
        let call = Call::get(
            url,
            "airalo sim_usage",
            format!("usage of eSIM {}", sim.iccid),
        );
        let usage: UsageWire = match self.transport.json::<Envelope<UsageWire>>(&call).await {
            Ok(answer) => answer.data,
            Err(ProviderError::RateLimited { retry_after }) => {
                tracing::debug!(iccid = %sim.iccid, ?retry_after, "airalo: usage read too soon, deferred");
                self.defer_usage(&sim.iccid, retry_after.unwrap_or(USAGE_INTERVAL));
                return Ok(Vec::new());
            }
            Err(other) => return Err(other),
        };
        self.defer_usage(&sim.iccid, USAGE_INTERVAL);
        if usage.is_unlimited {
            return Ok(Vec::new());
        }
        let countries = match sim.package_id() {
            Some(package) => self.package_countries().await?.get(package).cloned(),
            None => None,
        };
        let country = match countries.as_deref() {
            Some([only]) => Some(only.clone()),
            _ => None,
        };
        let observed_at = OffsetDateTime::now_utc();
        Ok(chunks(usage.used_bytes(), usage.is_final())
            .into_iter()
            .map(|(part, data_bytes)| UsageRecord {
                dedupe_key: format!("{}:{part}", sim.iccid),
                subscription_id: sim.iccid.clone(),
                started_at: observed_at,
                ended_at: observed_at,
                data_bytes,
                sms: 0,
                voice_seconds: 0,
                country: country.clone(),
                roaming: Roaming::International,
                in_bundle: Some(true),
                observed_at,
            })
            .collect())
    }

    /// Asks Airalo to send low-data notifications to `url`; Airalo first checks that the
    /// URL answers `HEAD` with 200.
    pub async fn opt_in_webhooks(
        &self,
        url: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ProviderError> {
        let body = json!({ "type": "webhook_low_data_notification", "webhook_url": url });
        let call = Call::post(
            self.endpoint(&["notifications", "opt-in"]),
            &body,
            key,
            "airalo opt_in".into(),
            "webhook opt-in",
        );
        let _: serde_json::Value = self.transport.json(&call).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConnectivityProvider for AiraloProvider {
    fn name(&self) -> &'static str {
        "airalo"
    }

    fn capabilities(&self) -> &Capabilities {
        &Self::CAPABILITIES
    }

    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        let url = self.list_endpoint(&["packages"], &[]);
        let countries: Vec<CountryWire> = self
            .all_items(url, "airalo list_packages", "packages")
            .await?;
        let mut plans = Vec::new();
        for country in countries {
            plans.extend(country.into_plans()?);
        }
        Ok(plans)
    }

    /// Looks for the order under our key first, and again after any failure that may have
    /// hidden a placed order (a dropped connection, a 5xx), so a retry never buys twice.
    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        if request.delivery != Delivery::Api {
            return Err(ProviderError::Unsupported(
                "delivering a profile other than through the API",
            ));
        }
        let description = wire::order_description(&key.0, request.reference.as_deref());
        let body = json!({
            "package_id": request.plan.offering_id,
            "quantity": 1,
            "type": "sim",
            "description": description,
        });
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            if let Some(placed) = self.find_order(&description).await? {
                return Ok(placed);
            }
            let call = Call::post_once(
                self.endpoint(&["orders"]),
                &body,
                "airalo order".into(),
                "order",
            );
            let error = match self.transport.json::<Envelope<OrderWire>>(&call).await {
                Ok(order) => return order.data.into_operation(),
                Err(error) if error.is_retryable() && attempt < attempts => error,
                Err(error) => return Err(error),
            };
            let retry_after = match &error {
                ProviderError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            if retry_after.is_some_and(|wait| wait > self.retry.max_retry_after) {
                return Err(error);
            }
            tracing::debug!(attempt, %error, "airalo: order failed, checking before ordering again");
            tokio::time::sleep(self.retry.wait(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        let url = self.endpoint(&["orders", operation_id]);
        let order: Envelope<OrderWire> = self
            .get(url, "airalo get_order", format!("order {operation_id}"))
            .await?;
        order.data.into_operation()
    }

    async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self.sim(subscription_id).await?.into_snapshot()
    }

    async fn get_sim_profile(&self, subscription_id: &str) -> Result<SimProfile, ProviderError> {
        self.sim(subscription_id).await?.into_profile()
    }

    /// Pages of eSIMs; the cursor is the next page number.
    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ListedSubscription>, ProviderError> {
        let page = page_number(cursor)?;
        let page_text = page.to_string();
        let url = self.list_endpoint(&["sims"], &[("page", &page_text)]);
        let sims: Listing<SimWire> = self.get(url, "airalo list_sims", "eSIMs".into()).await?;
        Ok(Page {
            next_cursor: sims.links.next.is_some().then(|| (page + 1).to_string()),
            items: sims
                .data
                .into_iter()
                .map(SimWire::into_listed)
                .collect::<Result<_, _>>()?,
        })
    }

    async fn suspend(
        &self,
        _subscription_id: &str,
        _key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        Err(ProviderError::Unsupported("suspending a line"))
    }

    async fn resume(
        &self,
        _subscription_id: &str,
        _key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        Err(ProviderError::Unsupported("resuming a line"))
    }

    async fn terminate(
        &self,
        _subscription_id: &str,
        _key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        Err(ProviderError::Unsupported(
            "ending a travel eSIM (it runs out by itself)",
        ))
    }

    async fn change_plan(
        &self,
        _subscription_id: &str,
        _plan: &PlanRef,
        _effective: Effective,
        _key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        Err(ProviderError::Unsupported(
            "changing a travel eSIM's package",
        ))
    }

    /// Usage of one eSIM (`subscription_id`), or of a page of the account's eSIMs (the cursor
    /// is the page number). Airalo balances have no dates: `from` and `to` do not narrow them.
    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        if let Some(iccid) = &query.subscription_id {
            let sim = self.sim(iccid).await?;
            return Ok(Page {
                items: self.sim_usage(&sim).await?,
                next_cursor: None,
            });
        }
        let page = page_number(query.cursor.as_deref())?;
        let page_text = page.to_string();
        let url = self.list_endpoint(&["sims"], &[("page", &page_text)]);
        let sims: Listing<SimWire> = self.get(url, "airalo list_sims", "eSIMs".into()).await?;
        let mut items = Vec::new();
        for sim in &sims.data {
            items.extend(self.sim_usage(sim).await?);
        }
        Ok(Page {
            items,
            next_cursor: sims.links.next.is_some().then(|| (page + 1).to_string()),
        })
    }

    fn webhook_signature_header(&self) -> &'static str {
        "airalo-signature"
    }

    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        _now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        wire::verify(self.webhook_secret.as_deref(), signature_header, body)?;
        wire::normalise(body)
    }
}

/// `base_url/v2/…`, each segment escaped.
fn v2_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("base_url was checked to be a base")
        .pop_if_empty()
        .push("v2")
        .extend(segments);
    url
}

fn page_number(cursor: Option<&str>) -> Result<u32, ProviderError> {
    match cursor {
        None => Ok(1),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| ProviderError::InvalidRequest {
                message: format!("Airalo cursor {text:?} is not a page number"),
            }),
    }
}
