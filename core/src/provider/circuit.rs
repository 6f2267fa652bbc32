//! The per-connection circuit breaker: it counts consecutive 5xx answers and timeouts of one
//! provider connection, opens after too many, and half-opens after a cool-down so that one
//! new order may test whether the provider is back.
//!
//! The state is per replica, in memory: each replica judges the provider by the answers it
//! gets itself, reacts within one call, and needs no database write per provider call. The
//! budget is therefore per replica (with N replicas a dead provider receives at most N times
//! `failures_to_open` failing calls before every circuit is open), and a restarted replica
//! starts closed.
//!
//! Routing consults the circuit only to choose among alternatives for a new order: with no
//! alternative, or for an existing line, calls go through as before (they retry and wait, and
//! a line never moves provider), so a tenant with one provider behaves exactly as without it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{
    Capabilities, ConnectivityProvider, Effective, IdempotencyKey, ListedSubscription, Operation,
    Page, PlanRef, ProviderError, ProviderEvent, ProviderPlan, ProvisionRequest, SimProfile,
    SubscriptionSnapshot, UsageQuery, UsageRecord, WebhookError,
};
use crate::ids::ProviderConnectionId;

/// When a circuit opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Consecutive failed calls (5xx, timeouts, dropped connections, after the adapter's own
    /// retries) that open the circuit.
    pub failures_to_open: u32,
    /// How long an open circuit refuses new orders before one may try again.
    pub cool_down: Duration,
}

impl Default for CircuitPolicy {
    fn default() -> Self {
        // Each failed call already spent the adapter's retries (seconds), so three in a row
        // is a provider that is down, not a blip; thirty seconds lets it recover before the
        // next trial without leaving orders on the alternative for long.
        Self {
            failures_to_open: 3,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitHealth {
    Closed,
    /// One trial order is (or may be) on its way.
    HalfOpen,
    Open,
}

impl CircuitHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// The value of the `lineup_provider_circuit_state` gauge.
    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { since: Instant },
    HalfOpen { trial_since: Instant },
}

/// One connection's circuit.
#[derive(Debug)]
pub struct Circuit {
    connection: ProviderConnectionId,
    vendor: String,
    policy: CircuitPolicy,
    state: Mutex<State>,
}

/// A circuit as `/readyz` and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitReport {
    pub connection: ProviderConnectionId,
    pub vendor: String,
    pub health: CircuitHealth,
}

impl Circuit {
    fn new(connection: ProviderConnectionId, vendor: &str, policy: CircuitPolicy) -> Self {
        let circuit = Self {
            connection,
            vendor: vendor.to_owned(),
            policy,
            state: Mutex::new(State::Closed { failures: 0 }),
        };
        circuit.publish(CircuitHealth::Closed);
        circuit
    }

    pub fn health(&self) -> CircuitHealth {
        match *self.state.lock().expect("circuit lock") {
            State::Closed { .. } => CircuitHealth::Closed,
            State::HalfOpen { .. } => CircuitHealth::HalfOpen,
            State::Open { since } if since.elapsed() >= self.policy.cool_down => {
                CircuitHealth::HalfOpen
            }
            State::Open { .. } => CircuitHealth::Open,
        }
    }

    /// Whether a new order may be sent now. An open circuit whose cool-down has passed lets
    /// exactly one caller through (half-open) until that call's outcome is recorded; a trial
    /// that never reports back is replaced after another cool-down.
    pub fn admits_new_order(&self) -> bool {
        let mut state = self.state.lock().expect("circuit lock");
        match *state {
            State::Closed { .. } => true,
            State::Open { since } | State::HalfOpen { trial_since: since }
                if since.elapsed() >= self.policy.cool_down =>
            {
                *state = State::HalfOpen {
                    trial_since: Instant::now(),
                };
                drop(state);
                self.publish(CircuitHealth::HalfOpen);
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    /// Count one call's outcome. Only a provider that did not answer usefully (5xx, timeout,
    /// dropped connection) counts against it; a 429 says it is alive but busy and changes
    /// nothing; any other answer, error or not, proves it is up.
    pub fn record(&self, outcome: Result<(), &ProviderError>) {
        let failed = match outcome {
            Err(ProviderError::Transient { .. }) => true,
            Err(ProviderError::RateLimited { .. }) => return,
            _ => false,
        };
        let mut state = self.state.lock().expect("circuit lock");
        let next = match (*state, failed) {
            (State::Closed { failures }, true) if failures + 1 >= self.policy.failures_to_open => {
                State::Open {
                    since: Instant::now(),
                }
            }
            (State::Closed { failures }, true) => State::Closed {
                failures: failures + 1,
            },
            (State::HalfOpen { .. }, true) => State::Open {
                since: Instant::now(),
            },
            (open @ State::Open { .. }, true) => open,
            (_, false) => State::Closed { failures: 0 },
        };
        let before = health_of(*state);
        *state = next;
        drop(state);
        let after = health_of(next);
        if before != after {
            match after {
                CircuitHealth::Open => {
                    tracing::warn!(connection = %self.connection, vendor = %self.vendor, "provider circuit opened: new orders go to alternatives");
                    metrics::counter!(
                        "lineup_provider_circuit_opened_total",
                        "connection" => self.connection.to_string(),
                        "vendor" => self.vendor.clone()
                    )
                    .increment(1);
                }
                CircuitHealth::Closed => {
                    tracing::info!(connection = %self.connection, vendor = %self.vendor, "provider circuit closed: the provider answers again")
                }
                CircuitHealth::HalfOpen => {}
            }
            self.publish(after);
        }
    }

    fn publish(&self, health: CircuitHealth) {
        metrics::gauge!(
            "lineup_provider_circuit_state",
            "connection" => self.connection.to_string(),
            "vendor" => self.vendor.clone()
        )
        .set(health.gauge());
    }

    fn report(&self) -> CircuitReport {
        CircuitReport {
            connection: self.connection,
            vendor: self.vendor.clone(),
            health: self.health(),
        }
    }
}

fn health_of(state: State) -> CircuitHealth {
    match state {
        State::Closed { .. } => CircuitHealth::Closed,
        State::HalfOpen { .. } => CircuitHealth::HalfOpen,
        State::Open { .. } => CircuitHealth::Open,
    }
}

/// Every connection's circuit on this replica.
#[derive(Debug, Default)]
pub struct CircuitBreakers {
    policy: Mutex<CircuitPolicy>,
    circuits: Mutex<HashMap<ProviderConnectionId, Arc<Circuit>>>,
}

impl CircuitBreakers {
    pub(crate) fn set_policy(&self, policy: CircuitPolicy) {
        *self.policy.lock().expect("circuit policy lock") = policy;
    }

    /// The connection's circuit, created closed on first use.
    pub fn circuit(&self, connection: ProviderConnectionId, vendor: &str) -> Arc<Circuit> {
        let policy = *self.policy.lock().expect("circuit policy lock");
        self.circuits
            .lock()
            .expect("circuits lock")
            .entry(connection)
            .or_insert_with(|| Arc::new(Circuit::new(connection, vendor, policy)))
            .clone()
    }

    /// The connection's circuit if it was ever used on this replica.
    pub fn existing(&self, connection: ProviderConnectionId) -> Option<Arc<Circuit>> {
        self.circuits
            .lock()
            .expect("circuits lock")
            .get(&connection)
            .cloned()
    }

    /// Every circuit, for `/readyz` and `/metrics`.
    pub fn reports(&self) -> Vec<CircuitReport> {
        let mut reports: Vec<_> = self
            .circuits
            .lock()
            .expect("circuits lock")
            .values()
            .map(|c| c.report())
            .collect();
        reports.sort_by_key(|r| r.connection);
        reports
    }
}

/// An adapter whose every call's outcome is counted by its connection's circuit. It never
/// refuses a call itself: routing decides where new orders go.
pub(crate) struct Guarded {
    pub(crate) inner: Arc<dyn ConnectivityProvider>,
    pub(crate) circuit: Arc<Circuit>,
}

impl Guarded {
    fn count<T>(&self, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        self.circuit.record(result.as_ref().map(|_| ()));
        result
    }
}

#[async_trait::async_trait]
impl ConnectivityProvider for Guarded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn check_account(&self) -> Result<(), ProviderError> {
        self.count(self.inner.check_account().await)
    }
    async fn list_plans(&self) -> Result<Vec<ProviderPlan>, ProviderError> {
        self.count(self.inner.list_plans().await)
    }
    async fn provision_line(
        &self,
        request: &ProvisionRequest,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(self.inner.provision_line(request, key).await)
    }
    async fn poll_operation(&self, operation_id: &str) -> Result<Operation, ProviderError> {
        self.count(self.inner.poll_operation(operation_id).await)
    }
    async fn get_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self.count(self.inner.get_subscription(subscription_id).await)
    }
    async fn get_sim_profile(&self, subscription_id: &str) -> Result<SimProfile, ProviderError> {
        self.count(self.inner.get_sim_profile(subscription_id).await)
    }
    async fn list_subscriptions(
        &self,
        cursor: Option<&str>,
    ) -> Result<Page<ListedSubscription>, ProviderError> {
        self.count(self.inner.list_subscriptions(cursor).await)
    }
    async fn suspend(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(self.inner.suspend(subscription_id, key).await)
    }
    async fn resume(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(self.inner.resume(subscription_id, key).await)
    }
    async fn terminate(
        &self,
        subscription_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(self.inner.terminate(subscription_id, key).await)
    }
    async fn change_plan(
        &self,
        subscription_id: &str,
        plan: &PlanRef,
        effective: Effective,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(
            self.inner
                .change_plan(subscription_id, plan, effective, key)
                .await,
        )
    }
    async fn set_speed_limit(
        &self,
        subscription_id: &str,
        max_kbps: Option<u32>,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        self.count(
            self.inner
                .set_speed_limit(subscription_id, max_kbps, key)
                .await,
        )
    }
    async fn usage(&self, query: &UsageQuery) -> Result<Page<UsageRecord>, ProviderError> {
        self.count(self.inner.usage(query).await)
    }
    fn pushes_settled_orders(&self) -> bool {
        self.inner.pushes_settled_orders()
    }
    fn webhook_signature_header(&self) -> &'static str {
        self.inner.webhook_signature_header()
    }
    fn parse_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, WebhookError> {
        self.inner.parse_webhook(signature_header, body, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(cool_down: Duration) -> Circuit {
        Circuit::new(
            ProviderConnectionId::new(),
            "1global",
            CircuitPolicy {
                failures_to_open: 3,
                cool_down,
            },
        )
    }

    fn down() -> ProviderError {
        ProviderError::Transient {
            detail: "HTTP 503".into(),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let c = circuit(Duration::from_secs(60));
        c.record(Err(&down()));
        c.record(Err(&down()));
        c.record(Ok(()));
        c.record(Err(&down()));
        c.record(Err(&down()));
        assert_eq!(c.health(), CircuitHealth::Closed);
        assert!(c.admits_new_order());
        c.record(Err(&down()));
        assert_eq!(c.health(), CircuitHealth::Open);
        assert!(!c.admits_new_order());
    }

    #[test]
    fn rate_limits_and_refusals_do_not_count_as_the_provider_being_down() {
        let c = circuit(Duration::from_secs(60));
        for _ in 0..5 {
            c.record(Err(&ProviderError::RateLimited { retry_after: None }));
            c.record(Err(&ProviderError::InvalidRequest {
                message: "bad plan".into(),
            }));
        }
        assert_eq!(c.health(), CircuitHealth::Closed);
    }

    #[test]
    fn half_opens_for_one_trial_after_the_cool_down_and_closes_on_success() {
        let c = circuit(Duration::from_millis(30));
        for _ in 0..3 {
            c.record(Err(&down()));
        }
        assert!(!c.admits_new_order());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.admits_new_order(), "the trial goes through");
        assert!(!c.admits_new_order(), "only one trial at a time");
        c.record(Err(&down()));
        assert_eq!(c.health(), CircuitHealth::Open, "a failed trial reopens");
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.admits_new_order());
        c.record(Ok(()));
        assert_eq!(c.health(), CircuitHealth::Closed);
        assert!(c.admits_new_order());
    }
}
