//! The OAuth `state` for "Add to Slack": which tenant is installing, signed and short-lived,
//! so a forged or replayed callback cannot attach a workspace to someone else's tenant.

use hmac::{Hmac, Mac};
use lineup_core::ids::TenantId;
use sha2::Sha256;
use time::OffsetDateTime;

const VALID_FOR_SECONDS: i64 = 15 * 60;

#[derive(Clone)]
pub struct InstallState {
    key: Vec<u8>,
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

    /// `tenant.expires.signature`
    pub fn issue(&self, tenant: TenantId, now: OffsetDateTime) -> String {
        let body = format!("{tenant}.{}", now.unix_timestamp() + VALID_FOR_SECONDS);
        format!(
            "{body}.{}",
            hex::encode(self.mac(&body).finalize().into_bytes())
        )
    }

    pub fn verify(&self, state: &str) -> Result<TenantId, InstallStateError> {
        self.verify_at(state, OffsetDateTime::now_utc())
    }

    pub fn verify_at(
        &self,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<TenantId, InstallStateError> {
        let (body, signature) = state.rsplit_once('.').ok_or(InstallStateError::Malformed)?;
        let signature = hex::decode(signature).map_err(|_| InstallStateError::Malformed)?;
        self.mac(body)
            .verify_slice(&signature)
            .map_err(|_| InstallStateError::BadSignature)?;
        let (tenant, expires) = body.split_once('.').ok_or(InstallStateError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| InstallStateError::Malformed)?;
        if now.unix_timestamp() > expires {
            return Err(InstallStateError::Expired);
        }
        tenant.parse().map_err(|_| InstallStateError::Malformed)
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
        assert_eq!(states.verify_at(&state, now), Ok(tenant));
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
