//! What every signed-in page shares: the header with the navigation this user's role
//! allows, the one-off notice after an action, and rendering.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use lineup_core::audit::Actor;
use lineup_core::ids::TenantId;
use lineup_core::organisation::tenant::Tenant;

use crate::access::{Permission, ROUTES, allows};
use crate::error::PortalError;
use crate::host::{Site, SiteKind};
use crate::session::{FormToken, Signed, cookie};

const NOTICE_COOKIE: &str = "lineup_notice";

/// The navigation, in order: label, path, what it needs.
const NAV: &[(&str, &str, Permission)] = &[
    ("Overview", "/", Permission::SignedIn),
    ("Spend", "/dashboard", Permission::ViewSpend),
    ("Savings", "/optimise", Permission::ViewSpend),
    ("People", "/employees", Permission::ViewPeople),
    ("Lines", "/lines", Permission::ViewLines),
    ("Requests", "/requests", Permission::DecideRequests),
    ("Policies", "/policies", Permission::ViewPolicies),
    ("What-if", "/whatif", Permission::ManagePolicies),
    ("Alerts", "/alerts", Permission::ViewAlerts),
    ("Audit log", "/audit", Permission::ViewAudit),
    ("Members", "/members", Permission::ManageMembers),
    ("Settings", "/settings", Permission::ManageOrganisation),
];

pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// The page frame: organisation, user, navigation, CSRF token for forms, notice.
pub struct Chrome {
    pub tenant_name: String,
    pub user_name: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub notice: Option<String>,
}

/// A signed-in page request: who, for which tenant, and the frame to draw around it.
pub struct Page {
    pub signed: Signed,
    pub tenant: Tenant,
    pub csrf: String,
    path: String,
    notice: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let signed = Signed::from_request_parts(parts, state).await?;
        let FormToken(csrf) = FormToken::from_request_parts(parts, state).await?;
        let tenant = match parts.extensions.get::<Site>() {
            Some(Site::Tenant(tenant)) => (**tenant).clone(),
            _ => return Err(PortalError::NotFound),
        };
        let notice = pending_notice(&parts.headers);
        Ok(Self {
            signed,
            tenant,
            csrf,
            path: parts.uri.path().to_owned(),
            notice,
        })
    }
}

impl Page {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    pub fn actor(&self) -> Actor {
        Actor::User(self.signed.session.user_id)
    }

    pub fn chrome(&self) -> Chrome {
        let role = self.signed.session.role;
        let nav = NAV
            .iter()
            .filter(|(_, href, permission)| allows(role, *permission) && is_page(href))
            .map(|&(label, href, _)| NavItem {
                label,
                href,
                current: self.path == href || (href != "/" && self.path.starts_with(href)),
            })
            .collect();
        Chrome {
            tenant_name: self.tenant.name.clone(),
            user_name: self.signed.session.name.clone(),
            role: role.as_str(),
            csrf: self.csrf.clone(),
            nav,
            notice: self.notice.clone(),
        }
    }

    /// The page as HTML; a notice shown now is cleared so it shows once.
    pub fn render<T: Template>(&self, template: &T) -> Result<Response, PortalError> {
        let mut response = Html(template.render()?).into_response();
        if self.notice.is_some() {
            clear_notice(&mut response);
        }
        Ok(response)
    }
}

impl Page {
    /// A form page, answered 422 when it is shown again because of bad input.
    pub fn render_form<T: Template>(
        &self,
        template: &T,
        invalid: bool,
    ) -> Result<Response, PortalError> {
        let mut response = self.render(template)?;
        if invalid {
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        }
        Ok(response)
    }
}

/// Whether a nav entry's page exists yet on tenant sites.
fn is_page(href: &str) -> bool {
    ROUTES
        .iter()
        .any(|r| r.site == SiteKind::Tenant && r.method == "GET" && r.path == href)
}

/// The one-off notice a redirect left for the next page, if any.
pub fn pending_notice(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, NOTICE_COOKIE)?;
    url::form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .filter(|n| !n.is_empty())
}

/// The page that showed the notice says so, so it shows once.
pub fn clear_notice(response: &mut Response) {
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("lineup_notice=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
    );
}

/// After a change: go to `to` and tell the user what happened, once.
pub fn redirect_with_notice(to: &str, notice: &str) -> Response {
    let encoded: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    let mut response = Redirect::to(to).into_response();
    let cookie = format!("{NOTICE_COOKIE}={encoded}; Path=/; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Someone on a tenant's public pages (sign-in, invites, password reset, single sign-on):
/// the tenant the host names, and the token their forms echo.
pub struct Visitor {
    pub tenant: Tenant,
    pub csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let FormToken(csrf) = FormToken::from_request_parts(parts, state).await?;
        match parts.extensions.get::<Site>() {
            Some(Site::Tenant(tenant)) => Ok(Self {
                tenant: (**tenant).clone(),
                csrf,
            }),
            _ => Err(PortalError::NotFound),
        }
    }
}

/// A form page answers 422 while it shows an error, so a refused submit never reads as done.
pub fn form_status(mut response: Response, failed: bool) -> Response {
    if failed {
        *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}
