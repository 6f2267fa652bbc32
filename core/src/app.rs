//! `Lineup`: the commands and queries chat, portal and worker call. Holds the store and the
//! server-wide connectivity provider (tenants' own ones are resolved per call, see
//! `provider::connection`); every method takes the tenant first.

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::error::{CoreError, CoreResult};
use crate::identity::sso::{IdentityProviders, SsoNetworkPolicy};
use crate::ids::TenantId;
use crate::provider::circuit::{CircuitBreakers, CircuitPolicy, CircuitReport};
use crate::provider::connection::{ProviderConnector, TenantProviders};
use crate::provider::{
    ConnectivityProvider, Operation, OrderWakeups, PollPolicy, WaitError, wait_for_operation,
};
use crate::secret::SecretBox;
use crate::store::{self, Store, Tx};

#[derive(Clone)]
pub struct Lineup {
    store: Store,
    /// The operator's account (PROVIDER_*): for tenants allowed to use it.
    server_provider: Arc<dyn ConnectivityProvider>,
    /// Builds adapters for tenants' own accounts; without it none can connect one.
    connector: Option<Arc<ProviderConnector>>,
    tenant_providers: Arc<TenantProviders>,
    /// Each tenant connection's circuit breaker, on this replica.
    circuits: Arc<CircuitBreakers>,
    poll: PollPolicy,
    /// Waits on orders in this process, for provider webhooks to wake.
    order_wakeups: Arc<OrderWakeups>,
    /// Chat installations read in the last second, for bursts of clicks.
    recent_workspaces: Arc<crate::messaging::chat::RecentWorkspaces>,
    secrets: Option<SecretBox>,
    identity_providers: Arc<IdentityProviders>,
    /// Where Argon2 runs: off the async threads, a few at a time, in reused memory.
    password_hashing: Arc<crate::identity::user::PasswordHashing>,
    invalid_crons: Arc<crate::jobs::InvalidCrons>,
    /// Inbound ids being claimed in this process, written together.
    inbound_claims: Arc<crate::messaging::inbound::InboundClaims>,
}

impl Lineup {
    /// `provider` is the server-wide account, used by tenants an operator created.
    pub fn new(store: Store, provider: Arc<dyn ConnectivityProvider>, poll: PollPolicy) -> Self {
        Self {
            store,
            server_provider: provider,
            connector: None,
            tenant_providers: Arc::default(),
            circuits: Arc::default(),
            poll,
            order_wakeups: Arc::default(),
            recent_workspaces: Arc::default(),
            secrets: None,
            identity_providers: Arc::new(IdentityProviders::new(SsoNetworkPolicy::default())),
            password_hashing: Arc::default(),
            invalid_crons: Arc::default(),
            inbound_claims: Arc::default(),
        }
    }

    /// Lets tenants connect their own provider accounts, at the connector's (operator's) URL.
    pub fn with_provider_connector(mut self, connector: ProviderConnector) -> Self {
        self.connector = Some(Arc::new(connector));
        self
    }

    pub(crate) fn provider_connector(&self) -> CoreResult<&ProviderConnector> {
        self.connector.as_deref().ok_or_else(|| {
            CoreError::invalid(
                "PROVIDER_BASE_URL",
                "this server has no provider URL for tenants' own accounts",
            )
        })
    }

    pub(crate) fn tenant_providers(&self) -> &TenantProviders {
        &self.tenant_providers
    }

    /// When tenant connections' circuits open and for how long (before any call is made).
    pub fn with_circuit_policy(self, policy: CircuitPolicy) -> Self {
        self.circuits.set_policy(policy);
        self
    }

    pub(crate) fn circuits(&self) -> &CircuitBreakers {
        &self.circuits
    }

    /// The circuit of every tenant connection this replica has called, for health pages.
    pub fn provider_circuits(&self) -> Vec<CircuitReport> {
        self.circuits.reports()
    }

    pub(crate) fn password_hashing(&self) -> &crate::identity::user::PasswordHashing {
        &self.password_hashing
    }

    /// Which hosts single sign-on may reach; the default is public https hosts only.
    pub fn with_sso_network_policy(mut self, policy: SsoNetworkPolicy) -> Self {
        self.identity_providers = Arc::new(IdentityProviders::new(policy));
        self
    }

    pub(crate) fn invalid_crons(&self) -> &crate::jobs::InvalidCrons {
        &self.invalid_crons
    }

    pub(crate) fn identity_providers(&self) -> &IdentityProviders {
        &self.identity_providers
    }

    /// The key that seals secrets at rest (chat bot tokens, activation codes); without it
    /// no chat workspace can be installed and no line issued.
    pub fn with_secrets(mut self, secrets: SecretBox) -> Self {
        self.secrets = Some(secrets);
        self
    }

    pub(crate) fn secrets(&self) -> CoreResult<&SecretBox> {
        self.secrets.as_ref().ok_or_else(|| {
            CoreError::invalid(
                "LINEUP_SECRET_KEY",
                "is not set, so secrets (chat tokens, activation codes) cannot be stored",
            )
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server-wide provider, for wrapping (e.g. a test double around the real adapter).
    /// Commands for a tenant use [`Lineup::provider_for`].
    pub fn shared_provider(&self) -> Arc<dyn ConnectivityProvider> {
        self.server_provider.clone()
    }

    pub(crate) fn poll_policy(&self) -> PollPolicy {
        self.poll
    }

    pub(crate) fn recent_workspaces(&self) -> &crate::messaging::chat::RecentWorkspaces {
        &self.recent_workspaces
    }

    pub(crate) fn inbound_claims(&self) -> &crate::messaging::inbound::InboundClaims {
        &self.inbound_claims
    }

    pub(crate) fn order_wakeups(&self) -> &OrderWakeups {
        &self.order_wakeups
    }

    /// Wait for a placed order to settle ([`wait_for_operation`]): woken by the provider's
    /// webhook when this process receives it, polling tightly only when no webhook will come.
    pub(crate) async fn wait_for_order(
        &self,
        provider: &dyn ConnectivityProvider,
        order: Operation,
        poll: PollPolicy,
    ) -> Result<Operation, WaitError> {
        let poll = if provider.pushes_settled_orders() {
            poll.when_pushed()
        } else {
            poll
        };
        wait_for_operation(provider, order, poll, Some(&self.order_wakeups)).await
    }

    pub(crate) async fn tenant_tx(&self, tenant: TenantId) -> CoreResult<Tx> {
        Ok(self.store.tenant(tenant).await?)
    }

    /// A read-only transaction for `tenant` ([`Store::tenant_read`]): reports use it so their
    /// independent reads run at once on SQLite too.
    pub(crate) async fn tenant_read_tx(&self, tenant: TenantId) -> CoreResult<Tx> {
        Ok(self.store.tenant_read(tenant).await?)
    }
}

pub(crate) async fn record(tx: &mut Tx, event: &AuditEvent) -> CoreResult<()> {
    store::audit::insert(tx, event.tenant_id, event).await?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Option<serde_json::Value> {
    Some(serde_json::to_value(value).expect("domain types serialise to JSON"))
}

pub(crate) fn required<T>(
    value: Option<T>,
    what: &'static str,
    id: impl ToString,
) -> CoreResult<T> {
    value.ok_or_else(|| CoreError::not_found(what, id))
}
