//! Which provider account a tenant's calls go to. A tenant may connect its own accounts, one
//! or several (vendor kind, client id, sealed secret, account id; each checked live before
//! anything is stored): the first is its primary, the others are where routing sends orders
//! by rule or when the primary is down. Without one it uses the server-wide account if an
//! operator allowed it (`tenants.uses_server_provider`), or it has none and is told to
//! connect one. A line's calls always go to the connection it was ordered through. Each
//! vendor's URL is always the operator's: tenants never type one, so they cannot point
//! Lineup at hosts of their choosing.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::airalo::{AiraloConfig, AiraloProvider};
use super::circuit::Guarded;
use super::gigs::{GigsConfig, GigsProvider};
use super::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use super::{ConnectivityProvider, ProviderError, ProviderPlan};
use crate::app::{Lineup, record};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ProviderConnectionId, TenantId};
use crate::lines::plan::Plan;
use crate::store::{self, now, provider_connections::ConnectionRow};

/// The vendor kind of the operator's default endpoint, and of every connection made before
/// tenants could choose one.
pub const DEFAULT_VENDOR: &str = "1global";

/// Which adapter speaks a vendor's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorApi {
    OneGlobal,
    /// Travel data packages; the account id is not part of Airalo's API.
    Airalo,
    /// Lines with phone numbers; the account id is the Gigs project and the client secret its
    /// API key (Gigs has no client id: that field names the key).
    Gigs,
}

impl VendorApi {
    /// The carrier's name as people read it, the default label of a connection.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::OneGlobal => "1GLOBAL",
            Self::Airalo => "Airalo",
            Self::Gigs => "Gigs",
        }
    }
}

/// One vendor kind a tenant may connect: its adapter and the operator's URL for it.
#[derive(Debug, Clone)]
struct VendorEndpoint {
    api: VendorApi,
    base_url: String,
}

/// Builds adapters for tenants' own accounts at the operator's URL of each vendor kind.
#[derive(Debug, Clone)]
pub struct ProviderConnector {
    base_url: String,
    vendors: Vec<(String, VendorEndpoint)>,
    retry: RetryPolicy,
    request_timeout: Duration,
}

impl ProviderConnector {
    /// `base_url` is PROVIDER_BASE_URL, or the built-in simulator's URL: the 1GLOBAL endpoint.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into();
        Self {
            vendors: vec![(
                DEFAULT_VENDOR.to_owned(),
                VendorEndpoint {
                    api: VendorApi::OneGlobal,
                    base_url: base_url.clone(),
                },
            )],
            base_url,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Let tenants connect accounts of vendor kind `vendor`, spoken to with `api` at
    /// `base_url` (replacing an earlier endpoint of the same kind).
    pub fn with_vendor(
        mut self,
        vendor: impl Into<String>,
        api: VendorApi,
        base_url: impl Into<String>,
    ) -> Self {
        let vendor = vendor.into();
        self.vendors.retain(|(kind, _)| *kind != vendor);
        self.vendors.push((
            vendor,
            VendorEndpoint {
                api,
                base_url: base_url.into(),
            },
        ));
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The vendor kinds tenants may connect, with their carriers' names.
    pub fn vendors(&self) -> Vec<(String, &'static str)> {
        self.vendors
            .iter()
            .map(|(kind, endpoint)| (kind.clone(), endpoint.api.display_name()))
            .collect()
    }

    fn endpoint(&self, vendor: &str) -> CoreResult<&VendorEndpoint> {
        self.vendors
            .iter()
            .find(|(kind, _)| kind == vendor)
            .map(|(_, endpoint)| endpoint)
            .ok_or_else(|| {
                CoreError::invalid(
                    "vendor",
                    format!("this server cannot connect {vendor:?} accounts"),
                )
            })
    }

    fn build(
        &self,
        vendor: &str,
        credentials: &ProviderCredentials,
        webhook_secret: Option<String>,
    ) -> CoreResult<Arc<dyn ConnectivityProvider>> {
        let endpoint = self.endpoint(vendor)?;
        match endpoint.api {
            VendorApi::OneGlobal => {
                let mut config = OneGlobalConfig::new(
                    &endpoint.base_url,
                    &credentials.client_id,
                    &credentials.client_secret,
                    &credentials.account_id,
                );
                config.retry = self.retry;
                config.request_timeout = self.request_timeout;
                config.webhook_secret = webhook_secret;
                Ok(Arc::new(OneGlobalProvider::new(config)?))
            }
            VendorApi::Airalo => {
                let mut config = AiraloConfig::new(
                    &endpoint.base_url,
                    &credentials.client_id,
                    &credentials.client_secret,
                );
                config.retry = self.retry;
                config.request_timeout = self.request_timeout;
                config.webhook_secret = webhook_secret;
                Ok(Arc::new(AiraloProvider::new(config)?))
            }
            VendorApi::Gigs => {
                let mut config = GigsConfig::new(
                    &endpoint.base_url,
                    &credentials.account_id,
                    &credentials.client_secret,
                );
                config.retry = self.retry;
                config.request_timeout = self.request_timeout;
                config.webhook_secret = webhook_secret;
                Ok(Arc::new(GigsProvider::new(config)?))
            }
        }
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
    /// The vendor kind (which adapter, which operator URL).
    pub vendor: String,
    /// The carrier's name as people see it (unique within the tenant).
    pub label: String,
    /// 0 is the primary; alternatives follow in this order.
    pub position: i32,
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
            .field("vendor", &self.vendor)
            .field("label", &self.label)
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
    built: Mutex<HashMap<ProviderConnectionId, BuiltProvider>>,
}

/// An adapter, its tenant and the connection version it was built from.
type BuiltProvider = (TenantId, i64, Arc<dyn ConnectivityProvider>);

impl TenantProviders {
    fn get(&self, row: &ConnectionRow) -> Option<Arc<dyn ConnectivityProvider>> {
        let built = self.built.lock().expect("provider cache lock");
        built
            .get(&row.id)
            .filter(|(tenant, version, _)| *tenant == row.tenant_id && *version == row.version)
            .map(|(_, _, provider)| provider.clone())
    }

    fn put(&self, row: &ConnectionRow, provider: Arc<dyn ConnectivityProvider>) {
        let mut built = self.built.lock().expect("provider cache lock");
        built.insert(row.id, (row.tenant_id, row.version, provider));
    }

    fn forget(&self, tenant: TenantId) {
        self.built
            .lock()
            .expect("provider cache lock")
            .retain(|_, (owner, _, _)| *owner != tenant);
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

/// A connection to add next to the tenant's others.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// A vendor kind the operator configured (see [`ProviderConnector::vendors`]).
    pub vendor: String,
    /// What people will see as the carrier; the vendor's name when empty.
    pub label: String,
    pub credentials: ProviderCredentials,
}

impl Lineup {
    /// The provider `tenant`'s calls go to when nothing names a connection: its primary
    /// connection, else the server-wide account if the tenant may use it, else
    /// [`CoreError::ProviderNotConnected`].
    pub async fn provider_for(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Arc<dyn ConnectivityProvider>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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

    /// The provider of one connection (`None`: the server-wide account, or the tenant's
    /// primary). A connection removed since falls back the same way, as lines did before a
    /// tenant could have several.
    pub async fn provider_of_connection(
        &self,
        tenant: TenantId,
        connection: Option<ProviderConnectionId>,
    ) -> CoreResult<Arc<dyn ConnectivityProvider>> {
        let Some(id) = connection else {
            return self.provider_for(tenant).await;
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        let row = store::provider_connections::get_by_id(&mut tx, tenant, id).await?;
        drop(tx);
        match row {
            Some(row) => self.adapter_for(&row),
            None => {
                tracing::warn!(%tenant, connection = %id, "a line's provider connection was removed; using the tenant's primary");
                self.provider_for(tenant).await
            }
        }
    }

    /// [`Self::provider_of_connection`] inside the caller's transaction, for a connection
    /// that must exist (`None` when it does not).
    pub(crate) async fn provider_of_connection_in(
        &self,
        tx: &mut crate::store::Tx,
        tenant: TenantId,
        id: ProviderConnectionId,
    ) -> CoreResult<Option<Arc<dyn ConnectivityProvider>>> {
        match store::provider_connections::get_by_id(tx, tenant, id).await? {
            Some(row) => Ok(Some(self.adapter_for(&row)?)),
            None => Ok(None),
        }
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
        let adapter =
            self.provider_connector()?
                .build(&row.provider, &credentials, Some(webhook_secret))?;
        let provider: Arc<dyn ConnectivityProvider> = Arc::new(Guarded {
            inner: adapter,
            circuit: self.circuits().circuit(row.id, &row.provider),
        });
        self.tenant_providers().put(row, provider.clone());
        Ok(provider)
    }

    /// The adapter of one connection, named by id (a webhook arriving for it), and its tenant.
    pub(crate) async fn connection_provider(
        &self,
        id: ProviderConnectionId,
    ) -> CoreResult<(TenantId, Arc<dyn ConnectivityProvider>)> {
        let mut tx = self.store().system_read().await?;
        let row = store::provider_connections::find(&mut tx, id).await?;
        drop(tx);
        let row = row.ok_or_else(|| CoreError::not_found("provider connection", id))?;
        Ok((row.tenant_id, self.adapter_for(&row)?))
    }

    /// Whether the tenant has a usable provider, and which; for set-up steps and pages.
    pub async fn provider_status(&self, tenant: TenantId) -> CoreResult<ProviderStatus> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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

    /// The tenant's primary connection, with its webhook secret unsealed for its admins.
    pub async fn provider_connection(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Option<ProviderConnection>> {
        Ok(self.provider_connections(tenant).await?.into_iter().next())
    }

    /// Every connection of the tenant, primary first, webhook secrets unsealed for its admins.
    pub async fn provider_connections(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Vec<ProviderConnection>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let rows = store::provider_connections::list(&mut tx, tenant).await?;
        drop(tx);
        let secrets = self.secrets()?;
        rows.into_iter()
            .map(|row| {
                let webhook_secret = secrets
                    .open_text(
                        &row.webhook_secret,
                        &secret_context(tenant, "webhook_secret"),
                    )
                    .map_err(|e| CoreError::invalid("LINEUP_SECRET_KEY", e))?;
                Ok(ProviderConnection {
                    id: row.id,
                    vendor: row.provider,
                    label: row.label,
                    position: row.position,
                    client_id: row.client_id,
                    account_id: row.account_id,
                    checked_at: row.checked_at,
                    webhook_secret,
                })
            })
            .collect()
    }

    /// The carrier's name for a line (its connection's label, or the vendor's name).
    pub async fn carrier_of(&self, tenant: TenantId, line: &crate::lines::line::Line) -> String {
        let label = match line.provider_connection_id {
            Some(id) => {
                async {
                    let mut tx = self.tenant_read_tx(tenant).await.ok()?;
                    store::provider_connections::get_by_id(&mut tx, tenant, id)
                        .await
                        .ok()
                        .flatten()
                        .map(|row| row.label)
                }
                .await
            }
            None => None,
        };
        label.unwrap_or_else(|| match line.provider.as_str() {
            DEFAULT_VENDOR => VendorApi::OneGlobal.display_name().to_owned(),
            other => other.to_owned(),
        })
    }

    /// Connect (or replace) the tenant's primary provider account. The credentials are
    /// checked live first (a token, the account, the plan list); a failure says what is wrong
    /// and stores nothing. Then the secret is stored sealed, the change audited (never a
    /// secret) and the plans synced from the new account.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn connect_provider(
        &self,
        tenant: TenantId,
        actor: &Actor,
        credentials: ProviderCredentials,
    ) -> CoreResult<(ProviderConnection, Vec<Plan>)> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let primary = store::provider_connections::get(&mut tx, tenant).await?;
        drop(tx);
        let vendor = primary
            .as_ref()
            .map_or(DEFAULT_VENDOR.to_owned(), |row| row.provider.clone());
        let new = NewConnection {
            vendor,
            label: String::new(),
            credentials,
        };
        self.store_connection(tenant, actor, new, primary).await
    }

    /// Connect one more provider account next to the tenant's others (after them in the
    /// failover order), checked live like [`Self::connect_provider`], and sync its plans.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, vendor = %new.vendor))]
    pub async fn add_provider_connection(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewConnection,
    ) -> CoreResult<(ProviderConnection, Vec<Plan>)> {
        self.store_connection(tenant, actor, new, None).await
    }

    async fn store_connection(
        &self,
        tenant: TenantId,
        actor: &Actor,
        new: NewConnection,
        replacing: Option<ConnectionRow>,
    ) -> CoreResult<(ProviderConnection, Vec<Plan>)> {
        let credentials = ProviderCredentials {
            client_id: required("client_id", &new.credentials.client_id)?,
            client_secret: required("client_secret", &new.credentials.client_secret)?,
            account_id: required("account_id", &new.credentials.account_id)?,
        };
        let connector = self.provider_connector()?;
        let api = connector.endpoint(&new.vendor)?.api;
        let label = match (new.label.trim(), &replacing) {
            (_, Some(row)) => row.label.clone(),
            ("", None) => api.display_name().to_owned(),
            (label, None) => label.to_owned(),
        };
        if label.chars().count() > 60 {
            return Err(CoreError::invalid("label", "must be at most 60 characters"));
        }
        let secrets = self.secrets()?.clone();
        let candidate = connector.build(&new.vendor, &credentials, None)?;
        let offered = check_live(candidate.as_ref())
            .await
            .map_err(|e| explain_check_failure(e, &credentials.account_id))?;
        let mut tx = self.tenant_tx(tenant).await?;
        let existing = store::provider_connections::list(&mut tx, tenant).await?;
        if replacing.is_none() && existing.iter().any(|row| row.label == label) {
            return Err(CoreError::Duplicate(format!(
                "a provider called {label:?} is already connected; give this one another name"
            )));
        }
        // A replaced connection keeps its webhook URL and secret, so the registration at
        // the vendor keeps working.
        let webhook_secret = match &replacing {
            Some(row) => row.webhook_secret.clone(),
            None => secrets.seal_text(
                &crate::identity::session::random_token(),
                &secret_context(tenant, "webhook_secret"),
            ),
        };
        let at = now();
        let row = ConnectionRow {
            id: replacing
                .as_ref()
                .map_or_else(ProviderConnectionId::new, |r| r.id),
            tenant_id: tenant,
            provider: new.vendor.clone(),
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
            label,
            position: match &replacing {
                Some(row) => row.position,
                None => existing.iter().map(|r| r.position + 1).max().unwrap_or(0),
            },
        };
        let stored = store::provider_connections::upsert(&mut tx, tenant, &row).await?;
        let shown = |r: &ConnectionRow| json!({ "provider": r.provider, "label": r.label, "client_id": r.client_id, "account_id": r.account_id });
        let mut after = shown(&stored);
        after["plans_offered"] = json!(offered.len());
        let event = AuditEvent::new(
            tenant,
            actor,
            match (&replacing, existing.is_empty()) {
                (Some(_), _) => "provider.replaced",
                (None, true) => "provider.connected",
                (None, false) => "provider.added",
            },
            ("provider_connection", stored.id.to_string()),
            replacing.as_ref().map(shown),
            Some(after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        self.tenant_providers().forget(tenant);
        let plans = self.sync_plans(tenant, actor).await?;
        let connection = self
            .provider_connections(tenant)
            .await?
            .into_iter()
            .find(|c| c.id == stored.id)
            .ok_or_else(|| CoreError::not_found("provider connection", stored.id))?;
        Ok((connection, plans))
    }

    /// Remove the tenant's primary connection; its calls go to the next connection, or fall
    /// back to the server-wide account if it may use it, or stop until a new one is
    /// connected. `false`: there was none.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn disconnect_provider(&self, tenant: TenantId, actor: &Actor) -> CoreResult<bool> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let primary = store::provider_connections::get(&mut tx, tenant).await?;
        drop(tx);
        match primary {
            Some(row) => self.remove_provider_connection(tenant, actor, row.id).await,
            None => Ok(false),
        }
    }

    /// Remove one of the tenant's connections (and the routing rules that name it).
    /// `false`: the tenant has no such connection.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, connection = %id))]
    pub async fn remove_provider_connection(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: ProviderConnectionId,
    ) -> CoreResult<bool> {
        let mut tx = self.tenant_tx(tenant).await?;
        let Some(before) = store::provider_connections::get_by_id(&mut tx, tenant, id).await?
        else {
            return Ok(false);
        };
        store::provider_connections::delete(&mut tx, tenant, id).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "provider.disconnected",
            ("provider_connection", before.id.to_string()),
            Some(json!({
                "provider": before.provider,
                "label": before.label,
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
