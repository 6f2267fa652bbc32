//! Which provider account a tenant's calls go to. A tenant may connect its own account
//! (client id, sealed secret, account id; checked live before anything is stored); otherwise
//! it uses the server-wide account if an operator allowed it (`tenants.uses_server_provider`),
//! or it has none and is told to connect one. The provider's URL is always the operator's:
//! tenants never type one, so they cannot point Lineup at hosts of their choosing.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use super::{ConnectivityProvider, ProviderError, ProviderPlan};
use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ProviderConnectionId, TenantId};
use crate::lines::plan::Plan;
use crate::store::{self, now, provider_connections::ConnectionRow};

/// Builds adapters for tenants' own accounts at the operator's provider URL.
#[derive(Debug, Clone)]
pub struct ProviderConnector {
    base_url: String,
    retry: RetryPolicy,
    request_timeout: Duration,
}

impl ProviderConnector {
    /// `base_url` is PROVIDER_BASE_URL, or the built-in simulator's URL.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(10),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn build(
        &self,
        credentials: &ProviderCredentials,
        webhook_secret: Option<String>,
    ) -> Result<Arc<dyn ConnectivityProvider>, ProviderError> {
        let mut config = OneGlobalConfig::new(
            &self.base_url,
            &credentials.client_id,
            &credentials.client_secret,
            &credentials.account_id,
        );
        config.retry = self.retry;
        config.request_timeout = self.request_timeout;
        config.webhook_secret = webhook_secret;
        Ok(Arc::new(OneGlobalProvider::new(config)?))
    }
}

/// What a tenant types to connect its account.
#[derive(Clone, Default)]
pub struct ProviderCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub account_id: String,
}

impl fmt::Debug for ProviderCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// A tenant's own connection as its admins see it.
#[derive(Clone)]
pub struct ProviderConnection {
    pub id: ProviderConnectionId,
    pub client_id: String,
    pub account_id: String,
    pub checked_at: OffsetDateTime,
    /// Signs the provider's webhooks to `/provider/webhooks/{id}`; registered at the vendor.
    pub webhook_secret: String,
}

impl fmt::Debug for ProviderConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConnection")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("account_id", &self.account_id)
            .field("checked_at", &self.checked_at)
            .finish_non_exhaustive()
    }
}

impl ProviderConnection {
    /// Where the vendor delivers this connection's webhooks (after the public URL).
    pub fn webhook_path(&self) -> String {
        format!("/provider/webhooks/{}", self.id)
    }
}

/// Whether a tenant can reach a provider, and through which account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Its own account, checked live when connected.
    Own {
        account_id: String,
        checked_at: OffsetDateTime,
        plans: usize,
    },
    /// The operator's server-wide account.
    ServerDefault {
        plans: usize,
    },
    NotConnected,
}

impl ProviderStatus {
    pub fn is_connected(&self) -> bool {
        !matches!(self, Self::NotConnected)
    }

    /// Active plans in the tenant's catalogue (0 when not connected).
    pub fn plans(&self) -> usize {
        match self {
            Self::Own { plans, .. } | Self::ServerDefault { plans } => *plans,
            Self::NotConnected => 0,
        }
    }
}

/// Adapters built from tenants' stored connections, kept so their access tokens are reused.
/// A replaced connection has a new version, so its old adapter is never picked again.
#[derive(Default)]
pub(crate) struct TenantProviders {
    built: Mutex<HashMap<TenantId, BuiltProvider>>,
}

/// An adapter and the connection id and version it was built from.
type BuiltProvider = (ProviderConnectionId, i64, Arc<dyn ConnectivityProvider>);

impl TenantProviders {
    fn get(&self, row: &ConnectionRow) -> Option<Arc<dyn ConnectivityProvider>> {
        let built = self.built.lock().expect("provider cache lock");
        built
            .get(&row.tenant_id)
            .filter(|(id, version, _)| *id == row.id && *version == row.version)
            .map(|(_, _, provider)| provider.clone())
    }

    fn put(&self, row: &ConnectionRow, provider: Arc<dyn ConnectivityProvider>) {
        let mut built = self.built.lock().expect("provider cache lock");
        built.insert(row.tenant_id, (row.id, row.version, provider));
    }

    fn forget(&self, tenant: TenantId) {
        self.built
            .lock()
            .expect("provider cache lock")
            .remove(&tenant);
    }
}

fn secret_context(tenant: TenantId, what: &str) -> String {
    format!("provider:{tenant}:{what}")
}

fn required(field: &'static str, value: &str) -> CoreResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CoreError::invalid(field, "is required"));
    }
    Ok(value.to_owned())
}

/// Why a live check failed, in words an admin can act on.
fn explain_check_failure(error: ProviderError, account_id: &str) -> CoreError {
    match error {
        ProviderError::Unauthorized => CoreError::invalid(
            "client_secret",
            "the provider refused these credentials (client id or secret is wrong)",
        ),
        ProviderError::Forbidden => CoreError::invalid(
            "account_id",
            format!("the provider does not let these credentials use account {account_id}"),
        ),
        ProviderError::NotFound(_) => CoreError::invalid(
            "account_id",
            format!(
                "the provider has no account {account_id} for these credentials (copy the \
                 account id from the account page)"
            ),
        ),
        ProviderError::Transient { detail } => CoreError::invalid(
            "provider",
            format!("the provider could not be reached ({detail}); nothing was saved, try again"),
        ),
        ProviderError::RateLimited { .. } => CoreError::invalid(
            "provider",
            "the provider is rate limiting us; nothing was saved, try again in a minute",
        ),
        other => CoreError::invalid(
            "provider",
            format!("the provider's answer could not be used ({other}); nothing was saved"),
        ),
    }
}

impl Lineup {
    /// The provider `tenant`'s calls go to: its own connection, else the server-wide account
    /// if the tenant may use it, else [`CoreError::ProviderNotConnected`].
    pub async fn provider_for(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Arc<dyn ConnectivityProvider>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let connection = store::provider_connections::get(&mut tx, tenant).await?;
        let Some(row) = connection else {
            let allowed =
                store::provider_connections::uses_server_provider(&mut tx, tenant).await?;
            drop(tx);
            return if allowed {
                Ok(self.shared_provider())
            } else {
                Err(CoreError::ProviderNotConnected)
            };
        };
        drop(tx);
        self.adapter_for(&row)
    }

    fn adapter_for(&self, row: &ConnectionRow) -> CoreResult<Arc<dyn ConnectivityProvider>> {
        if let Some(provider) = self.tenant_providers().get(row) {
            return Ok(provider);
        }
        let secrets = self.secrets()?;
        let unseal = |stored: &str, what: &str| {
            secrets
                .open_text(stored, &secret_context(row.tenant_id, what))
                .map_err(|e| CoreError::invalid("LINEUP_SECRET_KEY", e))
        };
        let credentials = ProviderCredentials {
            client_id: row.client_id.clone(),
            client_secret: unseal(&row.client_secret, "client_secret")?,
            account_id: row.account_id.clone(),
        };
        let webhook_secret = unseal(&row.webhook_secret, "webhook_secret")?;
        let provider = self
            .provider_connector()?
            .build(&credentials, Some(webhook_secret))?;
        self.tenant_providers().put(row, provider.clone());
        Ok(provider)
    }

    /// The adapter of one connection, named by id (a webhook arriving for it), and its tenant.
    pub(crate) async fn connection_provider(
        &self,
        id: ProviderConnectionId,
    ) -> CoreResult<(TenantId, Arc<dyn ConnectivityProvider>)> {
        let mut tx = self.store().system().await?;
        let row = store::provider_connections::find(&mut tx, id).await?;
        drop(tx);
        let row = row.ok_or_else(|| CoreError::not_found("provider connection", id))?;
        Ok((row.tenant_id, self.adapter_for(&row)?))
    }

    /// Whether the tenant has a usable provider, and which; for set-up steps and pages.
    pub async fn provider_status(&self, tenant: TenantId) -> CoreResult<ProviderStatus> {
        let mut tx = self.tenant_tx(tenant).await?;
        let connection = store::provider_connections::get(&mut tx, tenant).await?;
        let allowed = store::provider_connections::uses_server_provider(&mut tx, tenant).await?;
        let plans = store::plans::list(&mut tx, tenant)
            .await?
            .iter()
            .filter(|p| p.active)
            .count();
        Ok(match connection {
            Some(row) => ProviderStatus::Own {
                account_id: row.account_id,
                checked_at: row.checked_at,
                plans,
            },
            None if allowed => ProviderStatus::ServerDefault { plans },
            None => ProviderStatus::NotConnected,
        })
    }

    /// The tenant's own connection, with its webhook secret unsealed for its admins.
    pub async fn provider_connection(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Option<ProviderConnection>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(row) = store::provider_connections::get(&mut tx, tenant).await? else {
            return Ok(None);
        };
        let webhook_secret = self
            .secrets()?
            .open_text(
                &row.webhook_secret,
                &secret_context(tenant, "webhook_secret"),
            )
            .map_err(|e| CoreError::invalid("LINEUP_SECRET_KEY", e))?;
        Ok(Some(ProviderConnection {
            id: row.id,
            client_id: row.client_id,
            account_id: row.account_id,
            checked_at: row.checked_at,
            webhook_secret,
        }))
    }

    /// Connect (or replace) the tenant's own provider account. The credentials are checked
    /// live first (a token, the account, the plan list); a failure says what is wrong and
    /// stores nothing. Then the secret is stored sealed, the change audited (never a
    /// secret) and the plans synced from the new account.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn connect_provider(
        &self,
        tenant: TenantId,
        actor: &Actor,
        credentials: ProviderCredentials,
    ) -> CoreResult<(ProviderConnection, Vec<Plan>)> {
        let credentials = ProviderCredentials {
            client_id: required("client_id", &credentials.client_id)?,
            client_secret: required("client_secret", &credentials.client_secret)?,
            account_id: required("account_id", &credentials.account_id)?,
        };
        let secrets = self.secrets()?.clone();
        let candidate = self
            .provider_connector()?
            .build(&credentials, None)
            .map_err(|e| explain_check_failure(e, &credentials.account_id))?;
        let offered = check_live(candidate.as_ref())
            .await
            .map_err(|e| explain_check_failure(e, &credentials.account_id))?;
        let mut tx = self.tenant_tx(tenant).await?;
        let before = store::provider_connections::get(&mut tx, tenant).await?;
        // A replaced connection keeps its webhook URL and secret, so the registration at
        // the vendor keeps working.
        let webhook_secret = match &before {
            Some(row) => row.webhook_secret.clone(),
            None => secrets.seal_text(
                &crate::identity::session::random_token(),
                &secret_context(tenant, "webhook_secret"),
            ),
        };
        let at = now();
        let row = ConnectionRow {
            id: before
                .as_ref()
                .map_or_else(ProviderConnectionId::new, |r| r.id),
            tenant_id: tenant,
            provider: candidate.name().to_owned(),
            client_id: credentials.client_id.clone(),
            client_secret: secrets.seal_text(
                &credentials.client_secret,
                &secret_context(tenant, "client_secret"),
            ),
            account_id: credentials.account_id.clone(),
            webhook_secret,
            version: 1,
            checked_at: at,
            created_at: at,
        };
        let stored = store::provider_connections::upsert(&mut tx, tenant, &row).await?;
        let shown = |r: &ConnectionRow| json!({ "provider": r.provider, "client_id": r.client_id, "account_id": r.account_id });
        let mut after = shown(&stored);
        after["plans_offered"] = json!(offered.len());
        let event = AuditEvent::new(
            tenant,
            actor,
            if before.is_some() {
                "provider.replaced"
            } else {
                "provider.connected"
            },
            ("provider_connection", stored.id.to_string()),
            before.as_ref().map(shown),
            Some(after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.tenant_providers().forget(tenant);
        let plans = self.sync_plans(tenant, actor).await?;
        let connection = self
            .provider_connection(tenant)
            .await?
            .ok_or_else(|| CoreError::not_found("provider connection", tenant))?;
        Ok((connection, plans))
    }

    /// Remove the tenant's own connection; its calls fall back to the server-wide account
    /// if it may use it, or stop until a new one is connected. `false`: there was none.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn disconnect_provider(&self, tenant: TenantId, actor: &Actor) -> CoreResult<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let before = store::provider_connections::get(&mut tx, tenant).await?;
        let Some(before) = before else {
            return Ok(false);
        };
        store::provider_connections::delete(&mut tx, tenant).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "provider.disconnected",
            ("provider_connection", before.id.to_string()),
            Some(json!({
                "provider": before.provider,
                "client_id": before.client_id,
                "account_id": before.account_id,
            })),
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.tenant_providers().forget(tenant);
        Ok(true)
    }
}

/// A token (asked for by the first call), the account, and the plan list.
async fn check_live(
    provider: &dyn ConnectivityProvider,
) -> Result<Vec<ProviderPlan>, ProviderError> {
    provider.check_account().await?;
    provider.list_plans().await
}
