//! The admin portal: tenant setup, people, lines, policies, spend and exports, rendered on
//! the server with askama. A thin adapter: every page reads or changes state through core.

mod access;
mod chart;
mod error;
mod forms;
mod host;
mod pages;
mod redirect;
mod scim;
mod security_headers;
mod session;
mod spreadsheet;
mod view;

use std::sync::Arc;

use axum::Router;
use lineup_core::Lineup;
use lineup_core::ids::{RequestId, TenantId, UserId};
use lineup_core::messaging::chat::{ChatDirectory, Platform, Workspace};
use lineup_core::messaging::outgoing_email::Mailer;
use lineup_core::organisation::custom_domain::{DnsTxtResolver, TxtResolver};
use url::Url;

pub use access::{Permission, ROUTES, RouteRule, allows};
pub use error::PortalError;
pub use host::SiteKind;

/// Where the portal is served. Tenants live on `<slug>.<host of base_url>` or on a custom
/// domain they verified; the bare host serves sign-up.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub base_url: Url,
    /// The reverse proxy in front of the portal (LINEUP_TRUSTED_PROXY): only requests from
    /// it have their `X-Forwarded-For` believed for the sign-in limits.
    pub trusted_proxy: Option<std::net::IpAddr>,
}

impl PortalConfig {
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            trusted_proxy: None,
        }
    }

    /// The bare host name tenants' subdomains hang off, e.g. `lineup.localhost`.
    pub fn base_domain(&self) -> &str {
        self.base_url.host_str().unwrap_or("localhost")
    }

    /// Cookies are `Secure` whenever the portal is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.scheme() == "https"
    }

    /// The portal's address for one tenant, e.g. `http://acme.lineup.localhost:8080`.
    pub fn tenant_url(&self, slug: &str) -> String {
        let mut url = self.base_url.clone();
        let host = format!("{slug}.{}", self.base_domain());
        url.set_host(Some(&host))
            .expect("a subdomain of a valid host is valid");
        url.as_str().trim_end_matches('/').to_owned()
    }
}

/// What happens after a request is decided in the portal, outside the portal: the chat side
/// updates every copy of the card, tells the requester, and carries out (and delivers) an
/// approved request.
#[async_trait::async_trait]
pub trait RequestEvents: Send + Sync {
    /// `request` was just decided in the portal, and this decision won.
    async fn decided(&self, tenant: TenantId, request: RequestId);
}

/// The chat platforms' connect flows, which live in the bot crate: the root binary hands them
/// to Settings → Chat. Without one the page says the server is not set up for chat.
#[async_trait::async_trait]
pub trait ChatConnections: Send + Sync {
    /// Whether this server holds `platform`'s app credentials.
    fn configured(&self, platform: Platform) -> bool;
    /// Whether an admin can connect `platform` from the portal (else an operator's command).
    fn connects(&self, platform: Platform) -> bool;
    /// Where the admin's browser goes to add the app for `tenant`: a link carrying a signed
    /// state that names `admin`, which the install step binds to that browser.
    fn connect_url(&self, platform: Platform, tenant: TenantId, admin: UserId) -> Option<String>;
    /// The Teams app package (manifest with this server's host and bot id, icons), zipped;
    /// `None` when Teams is not configured.
    fn teams_app_package(&self) -> Option<Vec<u8>>;
    /// Tell the platform Lineup is leaving `workspace` (revoke its token); best effort, since
    /// the token is wiped here whatever the platform answers.
    async fn revoke(&self, platform: Platform, workspace: &Workspace);
}

/// What every handler can reach.
#[derive(Clone)]
pub struct Portal {
    pub lineup: Lineup,
    pub config: Arc<PortalConfig>,
    /// Sends queued email right away; without one it waits for the worker.
    mailer: Option<Arc<dyn Mailer>>,
    /// Checks custom domains' DNS challenge records.
    pub(crate) txt_resolver: Arc<dyn TxtResolver>,
    /// Told of every decision made in the portal. Without it the portal fulfils approved
    /// requests itself (nobody is told in chat).
    pub(crate) request_events: Option<Arc<dyn RequestEvents>>,
    /// Looks imported people up in chat by email. Without it people are linked when they
    /// first use Lineup in chat.
    pub(crate) chat_directory: Option<Arc<dyn ChatDirectory>>,
    /// Connects chat workspaces (Settings → Chat).
    pub(crate) chat_connections: Option<Arc<dyn ChatConnections>>,
}

impl Portal {
    pub fn new(lineup: Lineup, config: PortalConfig) -> Self {
        Self {
            lineup,
            config: Arc::new(config),
            mailer: None,
            txt_resolver: Arc::new(DnsTxtResolver::from_system()),
            request_events: None,
            chat_directory: None,
            chat_connections: None,
        }
    }

    pub fn with_txt_resolver(mut self, resolver: Arc<dyn TxtResolver>) -> Self {
        self.txt_resolver = resolver;
        self
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Deliver what was just queued in the background: the page does not wait on the mail
    /// server (nor tell, by its timing, whether anything was sent). What fails here stays
    /// queued for the worker.
    pub(crate) fn deliver_mail_soon(&self) {
        let Some(mailer) = self.mailer.clone() else {
            return;
        };
        let lineup = self.lineup.clone();
        tokio::spawn(async move {
            let now = lineup_core::store::now();
            if let Err(e) = lineup.deliver_due_emails(mailer.as_ref(), now).await {
                tracing::warn!(error = %e, "delivering queued email failed; the worker retries");
            }
        });
    }

    /// A link into this tenant's portal, for emails.
    pub(crate) fn tenant_link(
        &self,
        tenant: &lineup_core::organisation::tenant::Tenant,
        path: &str,
    ) -> String {
        format!("{}{path}", self.config.tenant_url(tenant.slug.as_str()))
    }

    /// Hand decisions made in the portal to `events` (the chat side), which then also
    /// fulfils approved requests.
    pub fn with_request_events(mut self, events: Arc<dyn RequestEvents>) -> Self {
        self.request_events = Some(events);
        self
    }

    /// After an import, find the people in the tenant's chat workspaces by email.
    pub fn with_chat_directory(mut self, directory: Arc<dyn ChatDirectory>) -> Self {
        self.chat_directory = Some(directory);
        self
    }
}

impl Portal {
    /// Let Settings → Chat connect and disconnect workspaces through `connections`.
    pub fn with_chat_connections(mut self, connections: Arc<dyn ChatConnections>) -> Self {
        self.chat_connections = Some(connections);
        self
    }
}

/// Every portal route, behind the host → tenant resolution, sign-in, permission and CSRF
/// checks (in that order), and beside them the SCIM service provider, which answers only to
/// a tenant's bearer token (see `scim`); every answer, refusals included, carries the
/// security headers.
pub fn portal_router(portal: Portal) -> Router {
    pages::routes()
        .layer(axum::middleware::from_fn_with_state(
            portal.clone(),
            access::guard,
        ))
        .nest_service("/scim/v2", scim::service(portal.clone()))
        .layer(axum::middleware::map_response(security_headers::add))
        .with_state(portal)
}
