//! The admin portal: tenant setup, people, lines, policies, spend and exports, rendered on
//! the server with askama. A thin adapter: every page reads or changes state through core.

mod access;
mod error;
mod forms;
mod host;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use lineup_core::Lineup;
use lineup_core::ids::{RequestId, TenantId};
use url::Url;

pub use access::{Permission, ROUTES, RouteRule, allows};
pub use error::PortalError;
pub use host::SiteKind;

/// Where the portal is served. Tenants live on `<slug>.<host of base_url>` or on a custom
/// domain they verified; the bare host serves sign-up.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub base_url: Url,
}

impl PortalConfig {
    pub fn new(base_url: Url) -> Self {
        Self { base_url }
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

/// What every handler can reach.
#[derive(Clone)]
pub struct Portal {
    pub lineup: Lineup,
    pub config: Arc<PortalConfig>,
    pub(crate) sign_in_limiter: Arc<session::SignInLimiter>,
    /// Told of every decision made in the portal. Without it the portal fulfils approved
    /// requests itself (nobody is told in chat).
    pub(crate) request_events: Option<Arc<dyn RequestEvents>>,
}

impl Portal {
    pub fn new(lineup: Lineup, config: PortalConfig) -> Self {
        Self {
            lineup,
            config: Arc::new(config),
            sign_in_limiter: Arc::default(),
            request_events: None,
        }
    }

    /// Hand decisions made in the portal to `events` (the chat side), which then also
    /// fulfils approved requests.
    pub fn with_request_events(mut self, events: Arc<dyn RequestEvents>) -> Self {
        self.request_events = Some(events);
        self
    }
}

/// Every portal route, behind the host → tenant resolution, sign-in, permission and CSRF
/// checks (in that order).
pub fn portal_router(portal: Portal) -> Router {
    pages::routes()
        .layer(axum::middleware::from_fn_with_state(
            portal.clone(),
            access::guard,
        ))
        .with_state(portal)
}
