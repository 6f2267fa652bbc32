//! Which tenant a request is for, from its `Host`: `<slug>.<base domain>`, a verified
//! custom domain, or the bare base domain (sign-up). Anything else is 404, so an unknown
//! host can never show a tenant's data.

use axum::http::{HeaderMap, header};
use lineup_core::organisation::tenant::{Slug, Tenant};

use crate::Portal;
use crate::error::PortalError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// The base domain: sign-up and the front page.
    Root,
    /// One tenant's portal.
    Tenant,
}

#[derive(Debug, Clone)]
pub enum Site {
    Root,
    Tenant(Box<Tenant>),
}

impl Site {
    pub fn kind(&self) -> SiteKind {
        match self {
            Self::Root => SiteKind::Root,
            Self::Tenant(_) => SiteKind::Tenant,
        }
    }
}

/// The host name without its port, lower-cased.
pub fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    Some(name.trim_end_matches('.').to_ascii_lowercase())
}

pub async fn resolve_site(portal: &Portal, headers: &HeaderMap) -> Result<Site, PortalError> {
    let host = host_name(headers).ok_or(PortalError::NotFound)?;
    let base = portal.config.base_domain();
    if host == base {
        return Ok(Site::Root);
    }
    let tenant = match host.strip_suffix(base).and_then(|h| h.strip_suffix('.')) {
        Some(label) if !label.contains('.') => match Slug::parse(label) {
            Ok(slug) => portal.lineup.tenant_by_slug(&slug).await?,
            Err(_) => None,
        },
        Some(_) => None,
        None => portal.lineup.tenant_by_domain(&host).await?,
    };
    tenant
        .map(|t| Site::Tenant(Box::new(t)))
        .ok_or(PortalError::NotFound)
}
