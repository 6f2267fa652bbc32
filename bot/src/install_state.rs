//! The OAuth `state` for "Add to Slack": which tenant is installing, signed and short-lived,
//! so a forged or replayed callback cannot attach a workspace to someone else's tenant. It
//! also holds a nonce that `/slack/install` puts in a cookie, binding the callback to the
//! browser that started the installation: a state (or a whole callback URL) lured onto
//! another person's browser is refused there.

use hmac::{Hmac, Mac};
use lineup_core::ids::TenantId;
use lineup_core::session::random_token;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const VALID_FOR_SECONDS: i64 = 15 * 60;

/// The cookie holding the installing browser's nonce; it lives as long as the state.
pub const COOKIE_NAME: &str = "lineup_slack_install";

#[derive(Clone)]
pub struct InstallState {
    key: Vec<u8>,
}

/// What a verified state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub tenant: TenantId,
    /// Must equal the installing browser's [`COOKIE_NAME`] cookie.
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
    #[error("this install link is malformed; start again from Lineup's Slack settings")]
    Malformed,
    #[error("this install link has expired; start again from Lineup's Slack settings")]
    Expired,
    #[error("this install link was not issued by Lineup")]
    BadSignature,
}

impl InstallState {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// `tenant.expires.nonce.signature`, with a fresh nonce.
    pub fn issue(&self, tenant: TenantId, now: OffsetDateTime) -> String {
        let nonce = &random_token()[..32];
        let body = format!(
            "{tenant}.{}.{nonce}",
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
        let mut fields = body.split('.');
        let (Some(tenant), Some(expires), Some(nonce), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(InstallStateError::Malformed);
        };
        let expires: i64 = expires.parse().map_err(|_| InstallStateError::Malformed)?;
        if now.unix_timestamp() > expires {
            return Err(InstallStateError::Expired);
        }
        Ok(VerifiedState {
            tenant: tenant.parse().map_err(|_| InstallStateError::Malformed)?,
            nonce: nonce.to_owned(),
        })
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
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
}
