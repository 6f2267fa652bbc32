//! The OAuth `state` for "Add to Slack" and "Add to Discord": which tenant is connecting and
//! which admin started it, signed and short-lived, so a forged or replayed callback cannot
//! attach a workspace to someone else's tenant. It also holds a nonce that the install step
//! puts in a cookie, binding the callback to the browser that started the installation: a
//! state (or a whole callback URL) lured onto another person's browser is refused there.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use lineup_core::identity::session::random_token;
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::tenant::Tenant;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const VALID_FOR_SECONDS: i64 = 15 * 60;

/// The cookie holding the installing browser's Slack nonce; it lives as long as the state.
pub const COOKIE_NAME: &str = "lineup_slack_install";

/// Signs and checks the states of one platform's install links.
#[derive(Clone)]
pub struct InstallState {
    platform: Platform,
    key: Vec<u8>,
}

/// What a verified state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub tenant: TenantId,
    /// The portal user who pressed "Add to …"; `None` for a link an operator printed.
    pub installer: Option<UserId>,
    /// Must equal the installing browser's install cookie.
    pub nonce: String,
}

impl VerifiedState {
    /// Whether `cookie` (the browser's nonce) is this state's.
    pub fn belongs_to(&self, cookie: Option<&str>) -> bool {
        cookie.is_some_and(|c| bool::from(c.as_bytes().ct_eq(self.nonce.as_bytes())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallStateError {
    #[error("this install link is malformed; start again from Lineup's Settings → Chat")]
    Malformed,
    #[error("this install link has expired; start again from Lineup's Settings → Chat")]
    Expired,
    #[error("this install link was not issued by Lineup")]
    BadSignature,
}

impl InstallState {
    /// Slack's install states, signed with `key` (the signing secret).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self::for_platform(Platform::Slack, key)
    }

    /// `platform`'s install states, signed with `key`: a state names its platform, so one
    /// minted for Slack is refused by Discord's callback even under the same key.
    pub fn for_platform(platform: Platform, key: impl Into<Vec<u8>>) -> Self {
        Self {
            platform,
            key: key.into(),
        }
    }

    /// The cookie binding the browser: `lineup_<platform>_install`.
    pub fn cookie_name(&self) -> String {
        format!("lineup_{}_install", self.platform.as_str())
    }

    /// A state for an operator's printed link: no admin is known.
    pub fn issue(&self, tenant: TenantId, now: OffsetDateTime) -> String {
        self.issue_by(tenant, None, now)
    }

    /// `platform.tenant.installer.expires.nonce.signature`, with a fresh nonce.
    pub fn issue_by(
        &self,
        tenant: TenantId,
        installer: Option<UserId>,
        now: OffsetDateTime,
    ) -> String {
        let nonce = &random_token()[..32];
        let installer = installer.map_or_else(|| "-".to_owned(), |u| u.to_string());
        let body = format!(
            "{}.{tenant}.{installer}.{}.{nonce}",
            self.platform.as_str(),
            now.unix_timestamp() + VALID_FOR_SECONDS
        );
        format!(
            "{body}.{}",
            hex::encode(self.mac(&body).finalize().into_bytes())
        )
    }

    /// Seconds a state (and its cookie) stays valid.
    pub fn lifetime_seconds(&self) -> i64 {
        VALID_FOR_SECONDS
    }

    pub fn verify(&self, state: &str) -> Result<VerifiedState, InstallStateError> {
        self.verify_at(state, OffsetDateTime::now_utc())
    }

    pub fn verify_at(
        &self,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedState, InstallStateError> {
        let (body, signature) = state.rsplit_once('.').ok_or(InstallStateError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| InstallStateError::Malformed)?;
        self.mac(body)
            .verify_slice(&signature)
            .map_err(|_| InstallStateError::BadSignature)?;
        let fields: Vec<&str> = body.split('.').collect();
        let [platform, tenant, installer, expires, nonce] = fields[..] else {
            return Err(InstallStateError::Malformed);
        };
        if platform != self.platform.as_str() {
            return Err(InstallStateError::BadSignature);
        }
        let expires: i64 = expires.parse().map_err(|_| InstallStateError::Malformed)?;
        if now.unix_timestamp() > expires {
            return Err(InstallStateError::Expired);
        }
        let installer = match installer {
            "-" => None,
            id => Some(id.parse().map_err(|_| InstallStateError::Malformed)?),
        };
        Ok(VerifiedState {
            tenant: tenant.parse().map_err(|_| InstallStateError::Malformed)?,
            installer,
            nonce: nonce.to_owned(),
        })
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
    }
}

impl InstallState {
    /// The `Set-Cookie` binding this browser to `nonce` (an empty value with `max_age` 0
    /// clears it). HttpOnly; SameSite=Lax, so it comes back on the platform's top-level
    /// redirect to the callback but not on other sites' requests; Secure over HTTPS.
    pub fn binding_cookie(&self, nonce: &str, max_age: i64, secure: bool) -> HeaderValue {
        let secure = if secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={nonce}; Path=/{}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(),
            self.platform.as_str()
        ))
        .expect("the nonce is hex")
    }

    /// The nonce this browser's install cookie holds, if any.
    pub fn browser_nonce<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A 302 to `location` (an install or landing page).
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => install_page(
            "Lineup",
            StatusCode::INTERNAL_SERVER_ERROR,
            "Invalid redirect address.",
        ),
    }
}

/// The plain page an install step that cannot go on shows (`Lineup · <platform> installation`).
pub fn install_page(platform: &str, status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Lineup · {platform} installation\n\n{text}\n"),
    )
        .into_response()
}

/// Where the browser lands once a workspace is connected: the tenant's Settings → Chat page
/// (the root binary knows the portal's addresses), or one fixed address.
#[derive(Clone)]
pub struct AfterInstall(Arc<LandingUrl>);

type LandingUrl = dyn Fn(&Tenant, Platform) -> String + Send + Sync;

impl AfterInstall {
    pub fn new(to: impl Fn(&Tenant, Platform) -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(to))
    }

    pub fn url(&self, tenant: &Tenant, platform: Platform) -> String {
        (self.0)(tenant, platform)
    }
}

impl From<&str> for AfterInstall {
    fn from(url: &str) -> Self {
        url.to_owned().into()
    }
}

impl From<String> for AfterInstall {
    fn from(url: String) -> Self {
        Self::new(move |_, _| url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_verifies_and_refuses_forgeries() {
        let states = InstallState::new(b"key".to_vec());
        let tenant = TenantId::new();
        let now = OffsetDateTime::now_utc();
        let state = states.issue(tenant, now);
        let verified = states.verify_at(&state, now).unwrap();
        assert_eq!(verified.tenant, tenant);
        assert_eq!(verified.installer, None);
        assert!(verified.belongs_to(Some(&verified.nonce.clone())));
        assert!(!verified.belongs_to(Some("another-browser")));
        assert!(!verified.belongs_to(None));
        assert_ne!(
            states
                .verify_at(&states.issue(tenant, now), now)
                .unwrap()
                .nonce,
            verified.nonce,
            "each link has its own nonce"
        );
        assert_eq!(
            states.verify_at(&state, now + time::Duration::minutes(16)),
            Err(InstallStateError::Expired)
        );
        let other = TenantId::new();
        let forged = state.replacen(&tenant.to_string(), &other.to_string(), 1);
        assert_eq!(
            states.verify_at(&forged, now),
            Err(InstallStateError::BadSignature)
        );
        assert_eq!(
            InstallState::new(b"other".to_vec()).verify_at(&state, now),
            Err(InstallStateError::BadSignature)
        );
        assert_eq!(
            states.verify_at("nonsense", now),
            Err(InstallStateError::Malformed)
        );
    }

    #[test]
    fn carries_the_admin_and_stays_on_its_platform() {
        let slack = InstallState::new(b"key".to_vec());
        let discord = InstallState::for_platform(Platform::Discord, b"key".to_vec());
        let (tenant, admin) = (TenantId::new(), UserId::new());
        let now = OffsetDateTime::now_utc();
        let state = slack.issue_by(tenant, Some(admin), now);
        assert_eq!(slack.verify_at(&state, now).unwrap().installer, Some(admin));
        assert_eq!(
            discord.verify_at(&state, now),
            Err(InstallStateError::BadSignature),
            "a Slack state does not complete a Discord install"
        );
        assert_eq!(discord.cookie_name(), "lineup_discord_install");
        assert_eq!(slack.cookie_name(), COOKIE_NAME);
    }
}
