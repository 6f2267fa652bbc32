//! Who may do what: one permission per route, one table of which role holds which
//! permission, enforced for every request by [`guard`] before any handler runs.

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use lineup_core::identity::user::Role;

use crate::Portal;
use crate::error::PortalError;
use crate::host::{Site, SiteKind, resolve_site};
use crate::session::{self, FormToken};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Anyone, signed in or not (sign-in, sign-up, accepting an invite).
    Public,
    /// Any member of the tenant.
    SignedIn,
    ViewPeople,
    ManagePeople,
    ViewLines,
    ManageLines,
    /// See a ready line's QR code and activation code (each reveal is audited).
    RevealActivationCode,
    DecideRequests,
    ViewPolicies,
    ManagePolicies,
    ViewSpend,
    Export,
    ViewAlerts,
    ActOnAlerts,
    ViewAudit,
    ManageOrganisation,
    ManageMembers,
}

/// The permission table. Managers hold the "view" permissions only over their own reports
/// (direct and indirect): pages narrow what they show with [`Signed::scope`].
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        Public | SignedIn => true,
        ViewPeople | ViewLines | ViewSpend | ViewPolicies => true,
        DecideRequests => matches!(role, Owner | Admin | Finance | Manager),
        Export => matches!(role, Owner | Admin | Finance | Manager),
        ManagePolicies | ViewAlerts | ActOnAlerts | ViewAudit => {
            matches!(role, Owner | Admin | Finance)
        }
        ManagePeople | ManageLines | ManageOrganisation | ManageMembers => {
            matches!(role, Owner | Admin)
        }
        // Core's reveal command asks the same question of the same role.
        RevealActivationCode => role.reveals_activation_codes(),
    }
}

/// One route of the portal and what it needs.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub site: SiteKind,
    pub method: &'static str,
    pub path: &'static str,
    pub permission: Permission,
}

const fn rule(
    site: SiteKind,
    method: &'static str,
    path: &'static str,
    permission: Permission,
) -> RouteRule {
    RouteRule {
        site,
        method,
        path,
        permission,
    }
}

use Permission as P;
use SiteKind::{Root, Tenant};

/// Every route the portal serves. A route missing here answers 404 on every host, so a new
/// page cannot be reachable without someone deciding who may see it. The one exception is
/// the SCIM API under `/scim/v2/` (crate::scim): not a page, it answers only to a tenant's
/// SCIM bearer token, never to a session.
pub const ROUTES: &[RouteRule] = &[
    rule(Root, "GET", "/", P::Public),
    rule(Root, "GET", "/signup", P::Public),
    rule(Root, "POST", "/signup", P::Public),
    rule(Root, "GET", "/static/portal.css", P::Public),
    rule(Tenant, "GET", "/static/portal.css", P::Public),
    rule(Root, "GET", "/static/portal.js", P::Public),
    rule(Tenant, "GET", "/static/portal.js", P::Public),
    rule(Tenant, "GET", "/login", P::Public),
    rule(Tenant, "POST", "/login", P::Public),
    rule(Tenant, "GET", "/verify-email/{token}", P::Public),
    rule(Tenant, "POST", "/logout", P::SignedIn),
    rule(Tenant, "GET", "/", P::SignedIn),
    rule(Tenant, "GET", "/settings", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings", P::ManageOrganisation),
    rule(Tenant, "GET", "/dashboard", P::ViewSpend),
    rule(Tenant, "GET", "/exports/usage.csv", P::Export),
    rule(Tenant, "GET", "/exports/chargeback.csv", P::Export),
    rule(Tenant, "GET", "/exports/lines.csv", P::Export),
    rule(Tenant, "GET", "/audit", P::ViewAudit),
    // The audit log is not a manager's to see, so neither is its download.
    rule(Tenant, "GET", "/audit/export.csv", P::ViewAudit),
    rule(Tenant, "GET", "/members", P::ManageMembers),
    rule(Tenant, "POST", "/members/invite", P::ManageMembers),
    rule(Tenant, "POST", "/members/{user_id}", P::ManageMembers),
    rule(
        Tenant,
        "POST",
        "/members/{user_id}/remove",
        P::ManageMembers,
    ),
    rule(Tenant, "GET", "/invite/{token}", P::Public),
    rule(Tenant, "POST", "/invite/{token}", P::Public),
    rule(Tenant, "GET", "/password/forgot", P::Public),
    rule(Tenant, "POST", "/password/forgot", P::Public),
    rule(Tenant, "GET", "/password/reset/{token}", P::Public),
    rule(Tenant, "POST", "/password/reset/{token}", P::Public),
    rule(Tenant, "GET", "/settings/domains", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings/domains", P::ManageOrganisation),
    rule(
        Tenant,
        "POST",
        "/settings/domains/{domain}/verify",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/domains/{domain}/remove",
        P::ManageOrganisation,
    ),
    rule(Tenant, "GET", "/settings/sso", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings/sso", P::ManageOrganisation),
    rule(Tenant, "GET", "/settings/routing", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings/routing", P::ManageOrganisation),
    rule(
        Tenant,
        "POST",
        "/settings/routing/{id}/delete",
        P::ManageOrganisation,
    ),
    rule(Tenant, "GET", "/settings/provider", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings/provider", P::ManageOrganisation),
    rule(
        Tenant,
        "POST",
        "/settings/provider/sync",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/provider/disconnect",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "GET",
        "/settings/provisioning",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/provisioning/tokens",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/provisioning/tokens/{id}/revoke",
        P::ManageOrganisation,
    ),
    rule(Tenant, "GET", "/settings/joiners", P::ManageOrganisation),
    rule(Tenant, "POST", "/settings/joiners", P::ManageOrganisation),
    rule(
        Tenant,
        "POST",
        "/settings/joiners/{id}/remove",
        P::ManageOrganisation,
    ),
    rule(Tenant, "GET", "/settings/chat", P::ManageOrganisation),
    rule(
        Tenant,
        "GET",
        "/settings/chat/teams/app.zip",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/chat/teams/code",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/chat/{platform}/connect",
        P::ManageOrganisation,
    ),
    rule(
        Tenant,
        "POST",
        "/settings/chat/{platform}/disconnect",
        P::ManageOrganisation,
    ),
    rule(Tenant, "GET", "/sso/start", P::Public),
    rule(Tenant, "GET", "/sso/callback", P::Public),
    rule(Tenant, "GET", "/lines", P::ViewLines),
    rule(Tenant, "GET", "/lines/new", P::ManageLines),
    rule(Tenant, "POST", "/lines", P::ManageLines),
    rule(Tenant, "GET", "/lines/{id}", P::ViewLines),
    // A POST, so no link prefetcher can trigger an (audited) reveal.
    rule(
        Tenant,
        "POST",
        "/lines/{id}/reveal",
        P::RevealActivationCode,
    ),
    // Confirmation page and action: change-plan, suspend, resume, transfer, terminate, retry.
    rule(Tenant, "GET", "/lines/{id}/{action}", P::ManageLines),
    rule(Tenant, "POST", "/lines/{id}/{action}", P::ManageLines),
    rule(Tenant, "GET", "/requests", P::DecideRequests),
    rule(Tenant, "POST", "/requests/{id}/approve", P::DecideRequests),
    rule(
        Tenant,
        "POST",
        "/requests/{id}/approve-travel-esim",
        P::DecideRequests,
    ),
    rule(Tenant, "POST", "/requests/{id}/deny", P::DecideRequests),
    rule(Tenant, "GET", "/policies", P::ViewPolicies),
    // Every policy change is previewed (reach shown), then confirmed.
    rule(Tenant, "POST", "/policies/caps/preview", P::ManagePolicies),
    rule(Tenant, "POST", "/policies/caps", P::ManagePolicies),
    rule(Tenant, "POST", "/policies/caps/delete", P::ManagePolicies),
    rule(Tenant, "POST", "/policies/starter", P::ManagePolicies),
    rule(
        Tenant,
        "POST",
        "/policies/roaming/preview",
        P::ManagePolicies,
    ),
    rule(Tenant, "POST", "/policies/roaming", P::ManagePolicies),
    rule(
        Tenant,
        "POST",
        "/policies/roaming/delete",
        P::ManagePolicies,
    ),
    rule(Tenant, "GET", "/alerts", P::ViewAlerts),
    rule(Tenant, "GET", "/alerts/{id}", P::ViewAlerts),
    rule(Tenant, "POST", "/alerts/{id}/acknowledge", P::ActOnAlerts),
    rule(Tenant, "POST", "/alerts/{id}/resolve", P::ActOnAlerts),
    rule(Tenant, "POST", "/alerts/{id}/snooze", P::ActOnAlerts),
    rule(Tenant, "POST", "/alerts/{id}/suspend", P::ActOnAlerts),
    rule(Tenant, "POST", "/alerts/{id}/raise-cap", P::ActOnAlerts),
    // Ends a subscription someone may be using: owners and admins, not finance.
    rule(Tenant, "POST", "/alerts/{id}/terminate", P::ManageLines),
    rule(Tenant, "GET", "/whatif", P::ManagePolicies),
    rule(Tenant, "GET", "/optimise", P::ViewSpend),
    rule(Tenant, "POST", "/whatif", P::ManagePolicies),
    rule(Tenant, "GET", "/employees", P::ViewPeople),
    rule(Tenant, "GET", "/employees/{id}", P::ViewPeople),
    rule(Tenant, "GET", "/employees/{id}/edit", P::ManagePeople),
    rule(Tenant, "POST", "/employees/{id}/edit", P::ManagePeople),
    rule(Tenant, "GET", "/employees/{id}/offboard", P::ManagePeople),
    rule(Tenant, "POST", "/employees/{id}/offboard", P::ManagePeople),
    rule(Tenant, "GET", "/employees/import", P::ManagePeople),
    rule(Tenant, "POST", "/employees/import", P::ManagePeople),
    rule(Tenant, "GET", "/employees/import/{upload}", P::ManagePeople),
    rule(
        Tenant,
        "POST",
        "/employees/import/{upload}/commit",
        P::ManagePeople,
    ),
];

fn rule_for(site: SiteKind, method: &Method, path: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .find(|r| r.site == site && r.method == method.as_str() && r.path == path)
}

/// Largest form body read to find its CSRF token.
const FORM_LIMIT: usize = 1024 * 1024;

/// How much of a multipart upload is read ahead to find the `_csrf` field, which must come
/// first (before the file, so the file itself is streamed to the handler unread).
const MULTIPART_HEAD_LIMIT: usize = 16 * 1024;

/// Resolve the host to its site, then check sign-in, permission and CSRF for the matched
/// route; only then run the handler.
pub async fn guard(
    State(portal): State<Portal>,
    request: Request,
    next: Next,
) -> Result<Response, PortalError> {
    let site = resolve_site(&portal, request.headers()).await?;
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .ok_or(PortalError::NotFound)?;
    let rule = rule_for(site.kind(), request.method(), &path).ok_or(PortalError::NotFound)?;
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD);
    if unsafe_method {
        check_origin(&request)?;
    }
    let (mut request, new_form_cookie) = match (&site, rule.permission) {
        (_, Permission::Public) => {
            let (token, fresh) = session::form_cookie(request.headers());
            let mut request = request;
            request.extensions_mut().insert(FormToken(token));
            (request, fresh)
        }
        (Site::Tenant(tenant), permission) => {
            let Some(signed) = session::signed_in(&portal, tenant, request.headers()).await? else {
                return Err(PortalError::SignInNeeded {
                    next: request.uri().path().to_owned(),
                });
            };
            if !allows(signed.session.role, permission) {
                return Err(PortalError::Forbidden(format!(
                    "your role ({}) cannot do this",
                    signed.session.role.as_str()
                )));
            }
            let mut request = request;
            request
                .extensions_mut()
                .insert(FormToken(signed.session.csrf_token.clone()));
            request.extensions_mut().insert(signed);
            (request, None)
        }
        (Site::Root, _) => return Err(PortalError::NotFound),
    };
    request.extensions_mut().insert(site);
    if unsafe_method {
        request = check_csrf(request).await?;
    }
    let mut response = next.run(request).await;
    if let Some(cookie) = new_form_cookie {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::form_cookie_header(&portal, &cookie),
        );
    }
    Ok(response)
}

/// Browsers send `Origin` on cross-site form posts; one naming another host is refused.
fn check_origin(request: &Request) -> Result<(), PortalError> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        });
    if origin_host.as_deref() == Some(host) {
        Ok(())
    } else {
        Err(PortalError::Csrf)
    }
}

/// The form's `_csrf` field (the first field of a multipart upload), or the `X-CSRF-Token`
/// header, must equal this visitor's token. Never the query string: URLs end up in logs,
/// browser history and `Referer` headers.
async fn check_csrf(request: Request) -> Result<Request, PortalError> {
    let expected = request
        .extensions()
        .get::<FormToken>()
        .map(|t| t.0.clone())
        .ok_or(PortalError::Csrf)?;
    let from_header = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (request, from_form) = if let Ok(boundary) = multer::parse_boundary(&content_type) {
        multipart_token(request, boundary).await
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let (parts, body) = request.into_parts();
        let bytes = to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| PortalError::invalid("form", "is too large"))?;
        let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|fields| fields.into_iter().find(|(k, _)| k == "_csrf"))
            .map(|(_, v)| v);
        (Request::from_parts(parts, Body::from(bytes)), token)
    } else {
        (request, None)
    };
    let given = from_form.or(from_header);
    match given {
        Some(given) if session::tokens_match(&given, &expected) => Ok(request),
        _ => Err(PortalError::Csrf),
    }
}

/// The value of a multipart body's first field when it is `_csrf`. Only the body's head is
/// read; the request goes on with the whole body, head and unread rest.
async fn multipart_token(request: Request, boundary: String) -> (Request, Option<String>) {
    let (parts, body) = request.into_parts();
    let mut rest = body.into_data_stream();
    let mut head = Vec::new();
    let delimiter = format!("--{boundary}");
    // The first field is whole once its closing delimiter (the second one) has arrived.
    let mut failed = None;
    while head.len() < MULTIPART_HEAD_LIMIT && occurrences(&head, delimiter.as_bytes()) < 2 {
        match rest.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => break,
        }
    }
    let token = first_field_token(&head, boundary).await;
    let head = futures_util::stream::iter([Ok::<_, axum::Error>(axum::body::Bytes::from(head))]);
    let tail = futures_util::stream::iter(failed.map(Err));
    let body = Body::from_stream(head.chain(tail).chain(rest));
    (Request::from_parts(parts, body), token)
}

async fn first_field_token(head: &[u8], boundary: String) -> Option<String> {
    let bytes = axum::body::Bytes::copy_from_slice(head);
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let field = multipart.next_field().await.ok()??;
    if field.name() != Some("_csrf") {
        return None;
    }
    field.text().await.ok()
}

/// How many times `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
