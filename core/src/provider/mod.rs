//! The vendor-neutral connectivity provider: what core needs from any eSIM vendor.
//!
//! Adapters translate a vendor's API into these types; no HTTP type leaks out of them.

pub mod airalo;
pub mod circuit;
pub mod connection;
pub mod gigs;
pub mod http;
pub mod oneglobal;
pub mod routing;
mod usage_chunks;
pub mod vendor;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use tokio::sync::Notify;

use crate::lines::activation_code::ActivationCode;
use crate::lines::eid::Eid;
use crate::lines::iccid::Iccid;
use crate::money::Money;

/// Sent with every write so a retry, a crash or a duplicate click never acts twice.
/// Core persists it with the command before the call and reuses it on every retry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningMode {
    Sync,
    AsyncPoll,
    AsyncCallback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub provisioning: ProvisioningMode,
    pub suspend: bool,
    pub resume: bool,
    pub terminate: bool,
    pub change_plan: bool,
    pub top_up: bool,
    pub usage_by_country: bool,
    pub eid_push_install: bool,
    pub webhooks: bool,
    /// Can cap a line's data speed (`set_speed_limit`).
    pub speed_limit: bool,
    /// Can bring an existing phone number onto a line (`port_in`).
    pub port_in: bool,
    /// Can authorise the subscriber to take the number to another operator (`port_out`).
    pub port_out: bool,
}

/// What a leaver needs to take their number to another operator: the number, the code their
/// new operator asks for (a UK PAC, a US port-out PIN), and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortingAuthorisation {
    pub msisdn: String,
    pub code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Base,
    TopUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    Monthly,
    Days(u16),
}

/// A catalogue entry as the vendor sells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPlan {
    pub offering_id: String,
    /// The order template that issues this plan, where the vendor orders by template.
    pub template_id: Option<String>,
    pub name: String,
    pub kind: PlanKind,
    /// `None` is unlimited.
    pub data_bytes: Option<i64>,
    pub validity: Validity,
    /// ISO 3166 alpha-2 codes where the plan works.
    pub coverage: Vec<String>,
    pub price: Option<Money>,
    pub throttle_after_cap_kbps: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub employee_id: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// We fetch the activation code and deliver it ourselves (chat DM, portal).
    Api,
    Email {
        to: Vec<String>,
    },
    EidPush(Eid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub plan: PlanRef,
    pub subscriber: Subscriber,
    pub delivery: Delivery,
    /// Our reference for the order (Lineup sends the line's id). Vendors that echo it on the
    /// subscription let reconciliation adopt a subscription whose order we lost track of.
    pub reference: Option<String>,
}

/// How to name a plan to the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRef {
    pub offering_id: String,
    pub template_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    Now,
    NextPeriod,
}

/// An asynchronous vendor operation (an order). Synchronous vendors return it settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub status: OperationStatus,
    /// The subscription the operation created or acted on, once known.
    pub subscription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    Pending,
    Succeeded,
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileState {
    Released,
    Downloaded,
    Installed,
    Enabled,
    Disabled,
    Deleted,
    Error,
    Unknown,
}

/// What the device needs to download the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimProfile {
    pub iccid: Iccid,
    pub eid: Option<Eid>,
    pub state: ProfileState,
    pub activation_code: ActivationCode,
    /// Delivered out of band; never inside the activation code.
    pub confirmation_code: Option<String>,
    pub qr_code_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    Pending,
    Active,
    Suspended,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    pub state: SubscriptionState,
    pub created_at: Option<OffsetDateTime>,
}

/// One subscription as the provider lists it: what reconciliation matches lines on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSubscription {
    pub id: String,
    pub state: SubscriptionState,
    /// The [`ProvisionRequest::reference`] of the order that created it, when the vendor
    /// echoes it.
    pub reference: Option<String>,
    pub created_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Roaming {
    None,
    International,
    Unknown,
}

/// Moving an existing number from its current carrier (the donor) onto a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInRequest {
    /// E.164, e.g. `+14155550123`.
    pub number: String,
    /// The account at the donor carrier, and its PIN where the donor asks for one.
    pub donor_account: String,
    pub donor_pin: Option<String>,
}

/// One usage record as the vendor reported it; `dedupe_key` is stable across re-reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub dedupe_key: String,
    pub subscription_id: String,
    pub started_at: OffsetDateTime,
    pub ended_at: OffsetDateTime,
    pub data_bytes: i64,
    pub sms: i64,
    pub voice_seconds: i64,
    pub country: Option<String>,
    pub roaming: Roaming,
    pub in_bundle: Option<bool>,
    pub observed_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub from: Date,
    pub to: Date,
    pub subscription_id: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A vendor webhook, verified and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    OperationSettled {
        operation_id: String,
        status: OperationStatus,
    },
    SubscriptionStateChanged {
        subscription_id: String,
        to: SubscriptionState,
    },
    ProfileStateChanged {
        iccid: String,
        state: ProfileState,
    },
    UsageThresholdReached {
        subscription_id: String,
        percent: u8,
    },
    AllowanceExhausted {
        subscription_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider rejected the request: {message}")]
    InvalidRequest { message: String },
    #[error("the provider refused our credentials")]
    Unauthorized,
    #[error("the provider denied access")]
    Forbidden,
    #[error("the provider does not know this {0}")]
    NotFound(String),
    #[error("the provider refused: the subscription's state does not allow it ({message})")]
    InvalidState { message: String },
    #[error("the provider does not support {0}")]
    Unsupported(&'static str),
    #[error("the provider's account limit is exhausted: {message}")]
    QuotaExceeded { message: String },
    #[error("the provider is rate limiting us")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the provider is temporarily unavailable ({detail})")]
    Transient { detail: String },
    #[error("the provider answered {status} with a body we could not read: {body}")]
    Protocol { status: u16, body: String },
}

impl ProviderError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// The error's kind in one word, for metrics labels (never the message).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::InvalidState { .. } => "invalid_state",
            Self::Unsupported(_) => "unsupported",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient { .. } => "transient",
            Self::Protocol { .. } => "protocol",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook signature header is missing")]
    MissingSignature,
    #[error("webhook signature does not match")]
    BadSignature,
    #[error("webhook timestamp is outside the accepted window")]
    Stale,
    #[error("webhook body is not a known event: {0}")]
    Malformed(String),
}

#[async_trait::async_trait]
pub trait ConnectivityProvider: Send + Sync {
    /// Stable name stored with every line, e.g. "1global".
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> &Capabilities;
    /// Prove the account these credentials name exists and may be used by them. Vendors
    /// without such a call rely on `list_plans` alone.
    async fn check_account(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError>;
    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError>;
    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError>;
    async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError>;
    async fn get_sim_profile(&self, subscription_id: &str) -> Result<SimProfile, ProviderError>;
    /// One page of the account's subscriptions; pass `next_cursor` back for the next page.
    /// Vendors without a list call say `Unsupported`, and are not reconciled.
    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ListedSubscription>, ProviderError> {
        let _ = cursor;
        Err(ProviderError::Unsupported("listing subscriptions"))
    }
    async fn suspend(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError>;
    async fn resume(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError>;
    async fn terminate(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError>;
    async fn change_plan(
        &self,
        subscription_id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError>;
    /// Cap the line's data speed at `max_kbps`, or lift the cap with `None`. Vendors that
    /// cannot say so in `capabilities().speed_limit`.
    async fn set_speed_limit(
        &self,
        subscription_id: &str,
        max_kbps: Option<u32>,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let _ = (subscription_id, max_kbps, key);
        Err(ProviderError::Unsupported("speed limits"))
    }
    /// Authorise the subscriber to port the number out; asking again while the authorisation
    /// is valid gives the same one. Vendors that cannot say so in `capabilities().port_out`.
    async fn port_out(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<PortingAuthorisation, ProviderError> {
        let _ = (subscription_id, key);
        Err(ProviderError::Unsupported("porting numbers out"))
    }
    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError>;
    /// Port `request.number` in onto the subscription; settles when the donor released it.
    /// Vendors that cannot say so in `capabilities().port_in`.
    async fn port_in(
        &self,
        subscription_id: &str,
        request: &PortInRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        let _ = (subscription_id, request, key);
        Err(ProviderError::Unsupported("porting a number in"))
    }
    /// Whether this account's order webhooks reach us (its webhook secret is configured), so
    /// an order's end is pushed and waiting on it needs no tight polling.
    fn pushes_settled_orders(&self) -> bool {
        false
    }
    /// The request header that carries the webhook signature.
    fn webhook_signature_header(&self) -> &'static str {
        "X-Sim-Signature"
    }
    /// Verify the signature and normalise; never does I/O.
    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError>;
}

/// How long to wait for an asynchronous operation, and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub first_delay: Duration,
    /// For this long after an order is placed it is asked about every `first_delay`; after
    /// that the delay grows ×1.5 up to `max_delay`.
    pub tight_for: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
    /// How long a new line's order whose placing failed in a way that may have reached the
    /// provider (a 429, a 5xx, a timeout, a dropped connection) is placed again under its key
    /// before the line fails with an unknown outcome.
    pub placement_patience: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        // Most orders settle within seconds and someone is waiting for the QR code: ask every
        // 150 ms for the first 5 s (an order's end is noticed ~75 ms late on average), then
        // back off so a slow order costs the provider's rate limit little.
        Self {
            first_delay: Duration::from_millis(150),
            tight_for: Duration::from_secs(5),
            max_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
            placement_patience: Duration::from_secs(15 * 60),
        }
    }
}

impl PollPolicy {
    /// For a provider that pushes an order's end: no tight phase, the push wakes the wait
    /// (see [`OrderWakeups`]) and the back-off is only the fallback.
    pub fn when_pushed(self) -> Self {
        Self {
            tight_for: Duration::ZERO,
            ..self
        }
    }
}

/// The orders this process is waiting on, so a webhook saying one settled wakes its wait at
/// once instead of at its next poll. A webhook delivered to another replica finds no waiter
/// here and finishes the order from the database instead.
#[derive(Debug, Default)]
pub struct OrderWakeups {
    waiting: std::sync::Mutex<std::collections::HashMap<String, Vec<Arc<Notify>>>>,
}

impl OrderWakeups {
    /// Wake every wait on `order_id` in this process; false when there is none.
    pub fn wake(&self, order_id: &str) -> bool {
        let waiting = self.waiting.lock().expect("order wakeups lock");
        match waiting.get(order_id) {
            Some(waits) => {
                // `notify_one` keeps the wake-up for a wait that is between two polls.
                waits.iter().for_each(|wait| wait.notify_one());
                true
            }
            None => false,
        }
    }

    fn watch(&self, order_id: &str) -> OrderWatch<'_> {
        let wake = Arc::new(Notify::new());
        self.waiting
            .lock()
            .expect("order wakeups lock")
            .entry(order_id.to_owned())
            .or_default()
            .push(wake.clone());
        OrderWatch {
            wakeups: self,
            order_id: order_id.to_owned(),
            wake,
        }
    }
}

/// One wait's registration; gone when the wait ends.
struct OrderWatch<'a> {
    wakeups: &'a OrderWakeups,
    order_id: String,
    wake: Arc<Notify>,
}

impl Drop for OrderWatch<'_> {
    fn drop(&mut self) {
        let mut waiting = self.wakeups.waiting.lock().expect("order wakeups lock");
        if let Some(waits) = waiting.get_mut(&self.order_id) {
            waits.retain(|wait| !Arc::ptr_eq(wait, &self.wake));
            if waits.is_empty() {
                waiting.remove(&self.order_id);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("operation {operation_id} was still pending after {waited:?}")]
    TimedOut {
        operation_id: String,
        waited: Duration,
    },
}

/// Poll an operation until it settles: every `first_delay` for `tight_for`, then backing off
/// (×1.5) up to `max_delay`; with `wakeups`, a webhook saying the order settled cuts the
/// current wait short.
///
/// The provider has accepted the order, so a 429 or a transient failure (5xx, timeout, dropped
/// connection) says nothing about it: ask again, no sooner than a `Retry-After` allows, until
/// `timeout`. Any other error is returned for the caller to judge.
pub async fn wait_for_operation(
    provider: &dyn ConnectivityProvider,
    operation: Operation,
    policy: PollPolicy,
    wakeups: Option<&OrderWakeups>,
) -> Result<Operation, WaitError> {
    let started = tokio::time::Instant::now();
    let watch = wakeups
        .filter(|_| operation.status == OperationStatus::Pending)
        .map(|wakeups| wakeups.watch(&operation.id));
    let mut delay = policy.first_delay;
    let mut retry_after = None;
    let mut current = operation;
    while current.status == OperationStatus::Pending {
        let waited = started.elapsed();
        if waited >= policy.timeout {
            return Err(WaitError::TimedOut {
                operation_id: current.id,
                waited,
            });
        }
        // A wake-up never cuts short the pause a `Retry-After` asked for.
        let asked = retry_after.take();
        let pause = asked.map_or(delay, |asked: Duration| delay.max(asked));
        let sleep = tokio::time::sleep(pause.min(policy.timeout - waited));
        match watch.as_ref().filter(|_| asked.is_none()) {
            Some(watch) => {
                tokio::select! {
                    () = sleep => {}
                    () = watch.wake.notified() => {}
                }
            }
            None => sleep.await,
        }
        if started.elapsed() >= policy.tight_for {
            delay = (delay * 3 / 2).min(policy.max_delay);
        }
        match provider.poll_operation(&current.id).await {
            Ok(polled) => current = polled,
            Err(ProviderError::RateLimited { retry_after: asked }) => {
                tracing::debug!(operation = %current.id, "rate limited while polling an order");
                retry_after = asked;
            }
            Err(ProviderError::Transient { detail }) => {
                tracing::debug!(operation = %current.id, %detail, "polling an order failed for now");
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(current)
}
