//! Gigs adapter (research §2.1): subscriptions for people, with phone numbers, plans per
//! project, `pending → active` announced by events, `Idempotency-Key` on every write, daily
//! usage with country and roaming labels, and porting in and out. Gigs has no suspend: a
//! line runs or has ended, so `suspend` and `resume` are `Unsupported` and the capability
//! flags say so.
//!
//! * `wire` — vendor JSON, its translation, and the `com.gigs.*` events.
//! * Webhooks are signed like 1GLOBAL's (`t=…,v1=<hex HMAC-SHA256(secret, t.body)>`) in
//!   `Gigs-Signature` [ext: the simulator's header].

pub(crate) mod wire;

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use super::http::transport::{Auth, Call, Transport};
use super::http::{RetryPolicy, iso_date, parse_url};
use super::oneglobal::webhook;
use super::{
    Capabilities, ConnectivityProvider, Delivery, Effective, IdempotencyKey, ListedSubscription,
    Operation, Page, PlanRef, PortInRequest, PortingAuthorisation, ProviderError, ProviderEvent,
    ProviderPlan, ProvisionRequest, ProvisioningMode, SimProfile, SubscriptionSnapshot, UsageQuery,
    UsageRecord, WebhookError,
};
use wire::{
    CredentialsWire, List, PendingWire, PlanWire, PortOutWire, SubscriptionWire, UsageRecordWire,
    User,
};

/// Stops a misbehaving `moreItemsAfter` chain from looping forever.
const MAX_PAGES: usize = 1000;

/// How to reach one Gigs project.
#[derive(Clone)]
pub struct GigsConfig {
    /// e.g. `https://api.gigs.com`, or the simulator's `http://127.0.0.1:8787/gigs`.
    pub base_url: String,
    pub project: String,
    pub api_key: String,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Signs `Gigs-Signature`; without it every webhook is refused.
    pub webhook_secret: Option<String>,
    /// `limit` for list calls (1..=200).
    pub page_size: u8,
}

impl GigsConfig {
    /// Defaults: 10 s request timeout, default retries, no webhook secret, pages of 100.
    pub fn new(
        base_url: impl Into<String>,
        project: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            project: project.into(),
            api_key: api_key.into(),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            webhook_secret: None,
            page_size: 100,
        }
    }
}

/// Secrets stay out of logs.
impl fmt::Debug for GigsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GigsConfig")
            .field("base_url", &self.base_url)
            .field("project", &self.project)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct GigsProvider {
    base: Url,
    project: String,
    page_size: u8,
    webhook_secret: Option<String>,
    transport: Transport,
}

impl GigsProvider {
    /// Provisioning: a `pending` subscription, settled by the `subscription.activated` event
    /// or by polling the subscription, whichever comes first.
    pub const CAPABILITIES: Capabilities = Capabilities {
        provisioning: ProvisioningMode::AsyncCallback,
        suspend: false,
        resume: false,
        terminate: true,
        change_plan: true,
        top_up: true,
        usage_by_country: true,
        eid_push_install: false,
        webhooks: true,
        speed_limit: false,
        port_in: true,
        port_out: true,
    };

    pub fn new(config: GigsConfig) -> Result<Self, ProviderError> {
        let base = parse_url("Gigs", "base_url", &config.base_url)?;
        if config.project.trim().is_empty() {
            return Err(invalid_config("project is empty"));
        }
        if config.api_key.trim().is_empty() {
            return Err(invalid_config("api_key is empty"));
        }
        let auth = Auth::ApiKey(config.api_key);
        let transport = Transport::new("gigs", auth, config.retry, config.request_timeout)?;
        Ok(Self {
            base,
            project: config.project,
            page_size: config.page_size.clamp(1, 200),
            webhook_secret: config.webhook_secret.filter(|s| !s.is_empty()),
            transport,
        })
    }

    /// `base_url/projects/{project}/…`, each segment escaped.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("base_url was checked to be a base")
            .pop_if_empty()
            .extend(["projects", self.project.as_str()])
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

    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
        key: &IdempotencyKey,
        operation: &str,
        what: String,
    ) -> Result<T, ProviderError> {
        let call = Call::post(
            self.endpoint(segments),
            body,
            key,
            format!("gigs {operation}"),
            what,
        );
        self.transport.json(&call).await
    }

    /// Every item of a list, following `moreItemsAfter`.
    async fn all_items<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        operation: &'static str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query: Vec<(&str, &str)> = after.iter().map(|a| ("after", a.as_str())).collect();
            let url = self.list_endpoint(segments, &query);
            let page: List<T> = self.get(url, operation, segments.join("/")).await?;
            items.extend(page.items);
            match page.more_items_after {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
        Err(super::oneglobal::wire::bad_field(
            "moreItemsAfter",
            format!("more than {MAX_PAGES} pages of {}", segments.join("/")),
        ))
    }

    /// The project's user with this e-mail, created (once per key) when there is none.
    async fn user_for(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<String, ProviderError> {
        let email = request.subscriber.email.as_str();
        let url = self.list_endpoint(&["users"], &[("email", email)]);
        let found: List<User> = self.get(url, "gigs find_user", "user".into()).await?;
        if let Some(user) = found.items.into_iter().next() {
            return Ok(user.id);
        }
        let s = &request.subscriber;
        let body = json!({
            "email": s.email,
            "fullName": format!("{} {}", s.first_name, s.last_name).trim(),
        });
        // A key of its own, derived from the order's, so a retried order finds its user.
        let user_key = IdempotencyKey(format!("{}-user", key.0));
        let user: User = self
            .post(&["users"], &body, &user_key, "create_user", "user".into())
            .await?;
        Ok(user.id)
    }

    async fn subscription(&self, id: &str) -> Result<SubscriptionWire, ProviderError> {
        let url = self.endpoint(&["subscriptions", id]);
        self.get(url, "gigs get_subscription", format!("subscription {id}"))
            .await
    }
}

#[async_trait::async_trait]
impl ConnectivityProvider for GigsProvider {
    fn name(&self) -> &'static str {
        "gigs"
    }

    fn capabilities(&self) -> &Capabilities {
        &Self::CAPABILITIES
    }

    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        let plans: Vec<PlanWire> = self.all_items(&["plans"], "gigs list_plans").await?;
        plans
            .into_iter()
            .filter(PlanWire::is_available)
            .map(PlanWire::into_plan)
            .collect()
    }

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
        let user = self.user_for(request, key).await?;
        let mut body = json!({ "plan": request.plan.offering_id, "user": user });
        if let Some(reference) = &request.reference {
            body["metadata"] = json!({ "reference": reference });
        }
        let subscription: SubscriptionWire = self
            .post(
                &["subscriptions"],
                &body,
                key,
                "create_subscription",
                "subscription".into(),
            )
            .await?;
        subscription.into_operation()
    }

    /// Operation ids are the ids of what they created: `sub_…` (a new line), `sch_…` (a
    /// plan change) or `prt_…` (a porting).
    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        let collection = match operation_id.split_once('_').map(|(prefix, _)| prefix) {
            Some("sub") => return self.subscription(operation_id).await?.into_operation(),
            Some("sch") => "subscriptionChanges",
            Some("prt") => "portings",
            _ => return Err(ProviderError::NotFound(format!("operation {operation_id}"))),
        };
        let url = self.endpoint(&[collection, operation_id]);
        let pending: PendingWire = self
            .get(
                url,
                "gigs get_operation",
                format!("operation {operation_id}"),
            )
            .await?;
        pending.into_operation()
    }

    async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self.subscription(subscription_id).await?.into_snapshot()
    }

    async fn get_sim_profile(&self, subscription_id: &str) -> Result<SimProfile, ProviderError> {
        let subscription = self.subscription(subscription_id).await?;
        let sim = subscription
            .sim
            .ok_or_else(|| ProviderError::InvalidState {
                message: format!("subscription {subscription_id} has no SIM yet"),
            })?;
        let url = self.endpoint(&["sims", &sim.id, "credentials"]);
        let what = format!("credentials of SIM {}", sim.id);
        // Decoded in two steps so an error never quotes a body holding a working code.
        let answer: Value = self.get(url, "gigs sim_credentials", what.clone()).await?;
        let credentials: CredentialsWire =
            serde_json::from_value(answer).map_err(|e| ProviderError::Protocol {
                status: 200,
                body: format!("{what} answer is not the expected JSON: {e}"),
            })?;
        credentials.into_profile()
    }

    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ListedSubscription>, ProviderError> {
        let query: Vec<(&str, &str)> = cursor.iter().map(|c| ("after", *c)).collect();
        let url = self.list_endpoint(&["subscriptions"], &query);
        let page: List<SubscriptionWire> = self
            .get(url, "gigs list_subscriptions", "subscriptions".into())
            .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(SubscriptionWire::into_listed)
                .collect::<Result<_, _>>()?,
            next_cursor: page.more_items_after,
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

    /// Ends the subscription now; Gigs answers with the ended subscription.
    async fn terminate(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let ended: SubscriptionWire = self
            .post(
                &["subscriptions", subscription_id, "end"],
                &json!({}),
                key,
                "end_subscription",
                format!("subscription {subscription_id}"),
            )
            .await?;
        let snapshot = ended.into_snapshot()?;
        Ok(Operation {
            id: snapshot.id.clone(),
            status: super::OperationStatus::Succeeded,
            subscription_id: Some(snapshot.id),
        })
    }

    async fn change_plan(
        &self,
        subscription_id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        if effective != Effective::Now {
            return Err(ProviderError::Unsupported(
                "plan changes from the next period",
            ));
        }
        let body = json!({ "subscription": subscription_id, "plan": plan.offering_id });
        let change: PendingWire = self
            .post(
                &["subscriptionChanges"],
                &body,
                key,
                "change_plan",
                format!("subscription {subscription_id}"),
            )
            .await?;
        change.into_operation()
    }

    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        let (start, end) = (iso_date(query.from), iso_date(query.to));
        let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
        if let Some(id) = &query.subscription_id {
            params.push(("subscription", id));
        }
        if let Some(after) = &query.cursor {
            params.push(("after", after));
        }
        let url = self.list_endpoint(&["usage"], &params);
        let page: List<UsageRecordWire> =
            self.get(url, "gigs usage", "usage records".into()).await?;
        let now = OffsetDateTime::now_utc();
        let mut items = Vec::new();
        for record in page.items {
            items.extend(record.into_records(now)?);
        }
        Ok(Page {
            items,
            next_cursor: page.more_items_after,
        })
    }

    async fn port_in(
        &self,
        subscription_id: &str,
        request: &PortInRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let body = json!({
            "subscription": subscription_id,
            "phoneNumber": request.number,
            "accountNumber": request.donor_account,
            "accountPin": request.donor_pin,
        });
        let porting: PendingWire = self
            .post(
                &["portings"],
                &body,
                key,
                "port_in",
                format!("porting of {}", request.number),
            )
            .await?;
        porting.into_operation()
    }

    async fn port_out(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<PortingAuthorisation, ProviderError> {
        let answer: PortOutWire = self
            .post(
                &["subscriptions", subscription_id, "portOutAuthorizations"],
                &json!({}),
                key,
                "port_out",
                format!("subscription {subscription_id}"),
            )
            .await?;
        Ok(PortingAuthorisation {
            expires_at: answer.expires_at()?,
            msisdn: answer.phone_number,
            code: answer.code,
        })
    }

    fn webhook_signature_header(&self) -> &'static str {
        "Gigs-Signature"
    }

    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        webhook::verify(self.webhook_secret.as_deref(), signature_header, body, now)?;
        wire::normalise(body)
    }
}

fn invalid_config(message: &str) -> ProviderError {
    ProviderError::InvalidRequest {
        message: format!("Gigs adapter configuration: {message}"),
    }
}
