//! `Lineup`: the commands and queries chat, portal and worker call. Holds the store and the
//! connectivity provider; every method takes the tenant first.

use std::sync::Arc;

use crate::audit::AuditEvent;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::provider::{ConnectivityProvider, PollPolicy};
use crate::secret::SecretBox;
use crate::store::{self, Store, Tx};

#[derive(Clone)]
pub struct Lineup {
    store: Store,
    provider: Arc<dyn ConnectivityProvider>,
    poll: PollPolicy,
    secrets: Option<SecretBox>,
    /// Argon2 runs on blocking threads, at most this many at once, so a flood of sign-ins
    /// queues here instead of filling the async workers that answer chat platforms.
    password_hashing: Arc<tokio::sync::Semaphore>,
}

/// Argon2 checks running at once (each takes ~19 MiB and a core for tens of milliseconds).
const PASSWORD_HASHING_PERMITS: usize = 2;

impl Lineup {
    pub fn new(store: Store, provider: Arc<dyn ConnectivityProvider>, poll: PollPolicy) -> Self {
        Self {
            store,
            provider,
            poll,
            secrets: None,
            password_hashing: Arc::new(tokio::sync::Semaphore::new(PASSWORD_HASHING_PERMITS)),
        }
    }

    /// Run `work` (Argon2) on a blocking thread once a hashing permit is free.
    pub(crate) async fn run_hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let _permit = self
            .password_hashing
            .acquire()
            .await
            .expect("the hashing semaphore is never closed");
        tokio::task::spawn_blocking(work)
            .await
            .expect("password hashing does not panic")
    }

    /// The key that seals secrets at rest (chat bot tokens); without it nothing can be
    /// installed.
    pub fn with_secrets(mut self, secrets: SecretBox) -> Self {
        self.secrets = Some(secrets);
        self
    }

    pub(crate) fn secrets(&self) -> CoreResult<&SecretBox> {
        self.secrets.as_ref().ok_or_else(|| {
            CoreError::invalid(
                "LINEUP_SECRET_KEY",
                "is not set, so chat tokens cannot be stored",
            )
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn provider(&self) -> &dyn ConnectivityProvider {
        self.provider.as_ref()
    }

    /// The provider itself, for wrapping (e.g. a test double around the real adapter).
    pub fn shared_provider(&self) -> Arc<dyn ConnectivityProvider> {
        self.provider.clone()
    }

    pub(crate) fn poll_policy(&self) -> PollPolicy {
        self.poll
    }

    pub(crate) async fn tenant_tx(&self, tenant: TenantId) -> CoreResult<Tx> {
        Ok(self.store.tenant(tenant).await?)
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
