//! 1GLOBAL Enterprise-style eSIM API adapter (see research §1.2–1.5 and the simulator, §5.2).
//!
//! * `wire` — vendor JSON and its translation; `webhook` — signature check and events.
//! * The HTTP client (token cache, retries, error bodies) is the shared [`super::http`].

pub(crate) mod webhook;
pub(crate) mod wire;

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

pub use super::http::RetryPolicy;
pub use webhook::SIGNATURE_TOLERANCE_S;

use super::http::iso_date;
use super::http::transport::{Auth, Call, Transport};
use super::{
    Capabilities, ConnectivityProvider, Delivery, Effective, IdempotencyKey, ListedSubscription,
    Operation, Page, PlanRef, PortingAuthorisation, ProviderError, ProviderEvent, ProviderPlan,
    ProvisionRequest, ProvisioningMode, SimProfile, SubscriptionSnapshot, UsageQuery, UsageRecord,
    WebhookError,
};
use wire::{
    HalPage, OfferingWire, OrderWire, PortOutWire, SimProfileWire, SubscriptionWire, TemplateWire,
    UsageItemWire,
};

/// Stops a misbehaving `_links.next` chain from looping forever.
const MAX_PAGES: usize = 1000;

/// How to reach and authenticate against one 1GLOBAL Enterprise account.
#[derive(Clone)]
pub struct OneGlobalConfig {
    /// e.g. `https://api.1global.com` or the simulator's `http://127.0.0.1:8787`.
    pub base_url: String,
    /// OAuth2 token endpoint; [`OneGlobalConfig::new`] derives it from `base_url`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// `acc_…`, sent with every order.
    pub account_id: String,
    /// Per HTTP request (connect + answer); a timeout is retried like a 5xx.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Shared secret for `X-Sim-Signature`; without it every webhook is refused.
    pub webhook_secret: Option<String>,
    /// `limit` for list calls (1..=100).
    pub page_size: u8,
}

impl OneGlobalConfig {
    pub const TOKEN_PATH: &'static str =
        "/auth/realms/enterprise-apis/protocol/openid-connect/token";

    /// Defaults: token URL under `base_url`, 10 s request timeout, default retry policy,
    /// no webhook secret, pages of 100.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into();
        Self {
            token_url: format!("{}{}", base_url.trim_end_matches('/'), Self::TOKEN_PATH),
            base_url,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            account_id: account_id.into(),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            webhook_secret: None,
            page_size: 100,
        }
    }
}

/// Secrets stay out of logs.
impl fmt::Debug for OneGlobalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneGlobalConfig")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("page_size", &self.page_size)
            .finish()
    }
}

#[derive(Debug)]
pub struct OneGlobalProvider {
    base: Url,
    account_id: String,
    page_size: u8,
    webhook_secret: Option<String>,
    transport: Transport,
    capabilities: Capabilities,
}

impl OneGlobalProvider {
    pub const CAPABILITIES: Capabilities = Capabilities {
        provisioning: ProvisioningMode::AsyncPoll,
        suspend: true,
        resume: true,
        terminate: true,
        change_plan: true,
        top_up: true,
        usage_by_country: true,
        eid_push_install: true,
        webhooks: true,
        speed_limit: true,
        port_in: false,
        port_out: true,
    };

    pub fn new(config: OneGlobalConfig) -> Result<Self, ProviderError> {
        let base = parse_url("base_url", &config.base_url)?;
        let token_url = parse_url("token_url", &config.token_url)?;
        if config.account_id.trim().is_empty() {
            return Err(invalid_config("account_id is empty"));
        }
        let auth = Auth::ClientCredentials {
            token_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
        };
        let transport = Transport::new("oneglobal", auth, config.retry, config.request_timeout)?;
        Ok(Self {
            base,
            account_id: config.account_id,
            page_size: config.page_size.clamp(1, 100),
            webhook_secret: config.webhook_secret.filter(|s| !s.is_empty()),
            transport,
            capabilities: Self::CAPABILITIES,
        })
    }

    /// `base_url` plus path segments, each escaped.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("base_url was checked to be a base")
            .pop_if_empty()
            .extend(segments);
        url
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

    /// Submits an order and returns it as an operation.
    async fn order(&self, body: Value, key: &IdempotencyKey) -> Result<Operation, ProviderError> {
        let kind = body["type"].as_str().unwrap_or("unknown");
        let (operation, what) = (format!("order {kind}"), format!("{kind} order"));
        let call = Call::post(
            self.endpoint(&["enterprise", "orders"]),
            &body,
            key,
            operation,
            what,
        );
        self.transport
            .json::<OrderWire>(&call)
            .await?
            .into_operation()
    }

    fn subscription_order(&self, kind: &str, subscription_id: &str) -> Value {
        json!({
            "type": kind,
            "account_id": self.account_id,
            "subscription_id": subscription_id,
        })
    }

    /// Follows `_links.next` until the last page.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        mut url: Url,
        key: &'static str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: HalPage = self.get(url, key, key.replace('_', " ")).await?;
            items.extend(page.items::<T>(key)?);
            match page.next_href() {
                Some(href) => url = self.resolve(href)?,
                None => return Ok(items),
            }
        }
        Err(wire::bad_field(
            "_links.next",
            format!("more than {MAX_PAGES} pages of {key}"),
        ))
    }

    fn resolve(&self, href: &str) -> Result<Url, ProviderError> {
        self.base
            .join(href)
            .map_err(|e| wire::bad_field("_links.next.href", format!("{href:?}: {e}")))
    }

    fn usage_url(&self, query: &UsageQuery) -> Result<Url, ProviderError> {
        if let Some(href) = query.cursor.as_deref().filter(|c| c.contains('/')) {
            return self.resolve(href);
        }
        let (from, to) = (iso_date(query.from), iso_date(query.to));
        let mut params = vec![("from-date", from.as_str()), ("to-date", to.as_str())];
        if let Some(id) = &query.subscription_id {
            params.push(("subscription_id", id));
        }
        if let Some(cursor) = &query.cursor {
            params.push(("cursor", cursor));
        }
        Ok(self.list_endpoint(&["enterprise", "usage", "items"], &params))
    }

    /// The opaque cursor of a next link (or the whole link when it has none).
    fn cursor_of(&self, href: &str) -> Option<String> {
        let url = self.resolve(href).ok()?;
        let cursor = url
            .query_pairs()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned());
        Some(cursor.unwrap_or_else(|| href.to_owned()))
    }
}

#[async_trait::async_trait]
impl ConnectivityProvider for OneGlobalProvider {
    fn name(&self) -> &'static str {
        "1global"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn check_account(&self) -> Result<(), ProviderError> {
        let url = self.endpoint(&["enterprise", "accounts", &self.account_id]);
        let _: Value = self
            .get(url, "get_account", format!("account {}", self.account_id))
            .await?;
        Ok(())
    }

    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        let templates_url = self.list_endpoint(&["enterprise", "order-templates"], &[]);
        let templates: Vec<TemplateWire> = self.all_pages(templates_url, "order_templates").await?;
        let offerings_url = self.list_endpoint(
            &["enterprise", "product-offerings"],
            &[("status", "active")],
        );
        let offerings: Vec<OfferingWire> =
            self.all_pages(offerings_url, "product_offerings").await?;
        offerings
            .into_iter()
            .map(|o| o.into_plan(&templates))
            .collect()
    }

    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let s = &request.subscriber;
        let mut body = json!({
            "type": "activate_subscription",
            "account_id": self.account_id,
            "subscriber": {
                "first_name": s.first_name,
                "last_name": s.last_name,
                "email": s.email,
                "employee_id": s.employee_id,
                "group": s.group,
            },
            "sim_profile": { "sim_type": "esim", "delivery": delivery(&request.delivery) },
        });
        if let Some(reference) = &request.reference {
            // Not in 1GLOBAL's documented order body (research §1.5); the simulator echoes
            // it on the subscription, which is what reconciliation matches on.
            body["external_reference"] = json!(reference);
        }
        add_plan(&mut body, &request.plan);
        self.order(body, key).await
    }

    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        let url = self.endpoint(&["enterprise", "orders", operation_id]);
        let order: OrderWire = self
            .get(url, "get_order", format!("order {operation_id}"))
            .await?;
        order.into_operation()
    }

    async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        let url = self.endpoint(&["enterprise", "subscriptions", subscription_id]);
        let sub: SubscriptionWire = self
            .get(
                url,
                "get_subscription",
                format!("subscription {subscription_id}"),
            )
            .await?;
        sub.into_snapshot()
    }

    async fn get_sim_profile(&self, subscription_id: &str) -> Result<SimProfile, ProviderError> {
        let url = self.endpoint(&[
            "enterprise",
            "subscriptions",
            subscription_id,
            "sim-profile",
        ]);
        let what = format!("SIM profile of subscription {subscription_id}");
        // Decoded in two steps so a malformed profile's error never quotes the body: it may
        // carry a working activation code, and errors reach failure reasons and the audit log.
        let answer: Value = self.get(url, "get_sim_profile", what.clone()).await?;
        let profile: SimProfileWire =
            serde_json::from_value(answer).map_err(|e| ProviderError::Protocol {
                status: 200,
                body: format!("{what} answer is not the expected JSON: {e}"),
            })?;
        profile.into_profile()
    }

    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ListedSubscription>, ProviderError> {
        let url = match cursor {
            Some(href) if href.contains('/') => self.resolve(href)?,
            Some(cursor) => {
                self.list_endpoint(&["enterprise", "subscriptions"], &[("cursor", cursor)])
            }
            None => self.list_endpoint(&["enterprise", "subscriptions"], &[]),
        };
        let page: HalPage = self
            .get(url, "list_subscriptions", "subscriptions".into())
            .await?;
        let items = page
            .items::<SubscriptionWire>("subscriptions")?
            .into_iter()
            .map(SubscriptionWire::into_listed)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_href().and_then(|href| self.cursor_of(href)),
        })
    }

    async fn suspend(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.order(
            self.subscription_order("suspend_subscription", subscription_id),
            key,
        )
        .await
    }

    async fn resume(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.order(
            self.subscription_order("resume_subscription", subscription_id),
            key,
        )
        .await
    }

    /// A `set_speed_limit` order [ext: the simulator's name; 1GLOBAL's is not public].
    async fn set_speed_limit(
        &self,
        subscription_id: &str,
        max_kbps: Option<u32>,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let mut body = self.subscription_order("set_speed_limit", subscription_id);
        body["max_kbps"] = json!(max_kbps);
        self.order(body, key).await
    }

    async fn terminate(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.order(
            self.subscription_order("terminate_subscription", subscription_id),
            key,
        )
        .await
    }

    async fn change_plan(
        &self,
        subscription_id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let mut body = self.subscription_order("change_plan", subscription_id);
        add_plan(&mut body, plan);
        body["effective"] = json!(match effective {
            Effective::Now => "now",
            Effective::NextPeriod => "next_period",
        });
        self.order(body, key).await
    }

    /// `POST /enterprise/subscriptions/{id}/port-out` [ext: the simulator's; 1GLOBAL's porting
    /// call is not public].
    async fn port_out(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<PortingAuthorisation, ProviderError> {
        let url = self.endpoint(&["enterprise", "subscriptions", subscription_id, "port-out"]);
        let what = format!("port-out of subscription {subscription_id}");
        let call = Call::post(url, &json!({}), key, "port_out".to_owned(), what.clone());
        // Decoded in two steps so a malformed answer's error never quotes the porting code.
        let answer: Value = self.transport.json(&call).await?;
        let wire: PortOutWire =
            serde_json::from_value(answer).map_err(|e| ProviderError::Protocol {
                status: 200,
                body: format!("{what} answer is not the expected JSON: {e}"),
            })?;
        wire.into_authorisation()
    }

    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        let page: HalPage = self
            .get(self.usage_url(query)?, "usage_items", "usage items".into())
            .await?;
        let items = page
            .items::<UsageItemWire>("usage_items")?
            .into_iter()
            .map(UsageItemWire::into_record)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_href().and_then(|href| self.cursor_of(href)),
        })
    }

    fn pushes_settled_orders(&self) -> bool {
        self.webhook_secret.is_some()
    }
    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        webhook::verify(self.webhook_secret.as_deref(), signature_header, body, now)?;
        webhook::normalise(body)
    }
}

/// Orders name a plan by template where we have one, else by catalogue offering.
fn add_plan(body: &mut Value, plan: &PlanRef) {
    match &plan.template_id {
        Some(template) => body["template_id"] = json!(template),
        None => body["product_offering_id"] = json!(plan.offering_id),
    }
}

fn delivery(delivery: &Delivery) -> Value {
    match delivery {
        Delivery::Api => json!({ "type": "api" }),
        Delivery::Email { to } => json!({ "type": "email", "to": to }),
        Delivery::EidPush(eid) => json!({ "type": "eid_push", "eid": eid.as_str() }),
    }
}

fn parse_url(field: &str, text: &str) -> Result<Url, ProviderError> {
    super::http::parse_url("1GLOBAL", field, text)
}

fn invalid_config(message: &str) -> ProviderError {
    ProviderError::InvalidRequest {
        message: format!("1GLOBAL adapter configuration: {message}"),
    }
}
