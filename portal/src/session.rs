//! Cookies: the session cookie (a random token; the session lives in the database), the
//! form cookie that protects sign-in and sign-up forms before there is a session, and the
//! client address the sign-in limits count by.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use lineup_core::identity::session::{SESSION_LIFETIME, Session, random_token};
use lineup_core::identity::sign_in_limit::TooManyAttempts;
use lineup_core::identity::user::Role;
use lineup_core::organisation::employee::Visibility;
use lineup_core::organisation::tenant::Tenant;
use subtle::ConstantTimeEq;

use crate::Portal;
use crate::error::PortalError;

pub const SESSION_COOKIE: &str = "lineup_session";
const FORM_COOKIE: &str = "lineup_form";

/// The signed-in user of this request, put there by the guard.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: Session,
    /// The cookie's token, needed to sign out.
    pub token: String,
}

impl Signed {
    /// Whose records this user may see: managers only their reporting tree (a manager
    /// account not linked to an employee record sees nobody); every other role everyone.
    pub fn visibility(&self) -> Visibility {
        match (self.session.role, self.session.employee_id) {
            (Role::Manager, Some(me)) => Visibility::ReportsOf(me),
            (Role::Manager, None) => Visibility::Nobody,
            _ => Visibility::Everyone,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Signed>()
            .cloned()
            .ok_or_else(|| PortalError::SignInNeeded {
                next: parts.uri.path().to_owned(),
            })
    }
}

/// The token forms on this page must echo back in `_csrf`.
#[derive(Debug, Clone)]
pub struct FormToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for FormToken {
    type Rejection = PortalError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<FormToken>()
            .cloned()
            .ok_or(PortalError::Csrf)
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub async fn signed_in(
    portal: &Portal,
    tenant: &Tenant,
    headers: &HeaderMap,
) -> Result<Option<Signed>, PortalError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = portal.lineup.session(tenant.id, &token).await?;
    Ok(session.map(|session| Signed { session, token }))
}

fn cookie_attributes(portal: &Portal) -> &'static str {
    if portal.config.secure_cookies() {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

pub fn session_cookie_header(portal: &Portal, token: &str) -> HeaderValue {
    let value = format!(
        "{SESSION_COOKIE}={token}; Max-Age={}{}",
        SESSION_LIFETIME.whole_seconds(),
        cookie_attributes(portal)
    );
    HeaderValue::from_str(&value).expect("hex tokens are valid header text")
}

pub fn clear_session_cookie_header(portal: &Portal) -> HeaderValue {
    let value = format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attributes(portal));
    HeaderValue::from_str(&value).expect("static cookie text is valid")
}

/// The visitor's form token and, when they had none, the new one to set.
pub fn form_cookie(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, FORM_COOKIE).filter(|t| t.len() == 64) {
        Some(token) => (token, None),
        None => {
            let token = random_token();
            (token.clone(), Some(token))
        }
    }
}

pub fn form_cookie_header(portal: &Portal, token: &str) -> HeaderValue {
    let value = format!("{FORM_COOKIE}={token}{}", cookie_attributes(portal));
    HeaderValue::from_str(&value).expect("hex tokens are valid header text")
}

pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// The address the request came from: the socket's peer (wired with axum's `ConnectInfo`).
/// Forwarded-for headers are ignored unless the portal is configured to sit behind a
/// trusted proxy, since anyone can send them. Unknown (no `ConnectInfo`) is `None`, and such
/// clients share one counter in the sign-in limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<Portal> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        portal: &Portal,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let forwarded = || {
            parts
                .headers
                .get("x-forwarded-for")?
                .to_str()
                .ok()?
                .rsplit(',')
                .next()?
                .trim()
                .parse::<IpAddr>()
                .ok()
        };
        let from_proxy = peer.is_some_and(|p| portal.config.trusted_proxy == Some(p));
        Ok(Self(if from_proxy {
            forwarded().or(peer)
        } else {
            peer
        }))
    }
}

impl From<TooManyAttempts> for PortalError {
    fn from(refused: TooManyAttempts) -> Self {
        Self::TooManyAttempts {
            minutes: refused.minutes(),
        }
    }
}

/// The answer to a completed sign-in (password, invite, reset, single sign-on): the session
/// cookie on `response`, usually a redirect.
pub fn with_session_cookie(
    portal: &Portal,
    token: &str,
    mut response: axum::response::Response,
) -> axum::response::Response {
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie_header(portal, token));
    response
}
