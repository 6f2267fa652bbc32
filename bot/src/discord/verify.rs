//! Discord request signing: `X-Signature-Ed25519` is the hex Ed25519 signature of
//! `X-Signature-Timestamp + raw body` by the application's key. Requests older (or newer) than
//! five minutes are refused; [`ReplayGuard`] (shared with Slack) remembers accepted signatures
//! for that window so a replayed interaction is acknowledged but not handled twice.

use ed25519_dalek::{Signature, VerifyingKey};

pub use crate::slack::verify::{ReplayGuard, WINDOW_SECS, unix_now};

pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Signature-Ed25519 or X-Signature-Timestamp")]
    Missing,
    #[error("malformed signature or timestamp")]
    Malformed,
    #[error("timestamp outside the 5-minute window")]
    Stale,
    #[error("signature does not verify")]
    Mismatch,
}

/// The application's public key, parsed once.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// From the 64 hex characters shown in the developer portal.
    pub fn from_hex(public_key: &str) -> Result<Self, String> {
        let bytes: [u8; 32] = hex::decode(public_key.trim())
            .map_err(|e| format!("Discord public key is not hex: {e}"))?
            .try_into()
            .map_err(|_| "Discord public key must be 32 bytes (64 hex characters)".to_string())?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| format!("Discord public key is not an Ed25519 point: {e}"))?;
        Ok(Self { key })
    }

    /// Checks one request; `now` is Unix seconds. Returns the parsed timestamp.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<i64, VerifyError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(VerifyError::Missing);
        };
        let ts: i64 = timestamp.parse().map_err(|_| VerifyError::Malformed)?;
        if (now - ts).abs() > WINDOW_SECS {
            return Err(VerifyError::Stale);
        }
        let sig: [u8; 64] = hex::decode(signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(VerifyError::Malformed)?;
        let sig = Signature::from_bytes(&sig);
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.key
            .verify_strict(&signed, &sig)
            .map(|()| ts)
            .map_err(|_| VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn pair() -> (SigningKey, Verifier) {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let v = Verifier::from_hex(&hex::encode(sk.verifying_key().to_bytes())).unwrap();
        (sk, v)
    }

    fn sign(sk: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut m = ts.as_bytes().to_vec();
        m.extend_from_slice(body);
        hex::encode(sk.sign(&m).to_bytes())
    }

    #[test]
    fn accepts_good_and_refuses_bad() {
        let (sk, v) = pair();
        let body = br#"{"type":1}"#;
        let sig = sign(&sk, "1000", body);
        assert_eq!(v.verify(Some("1000"), Some(&sig), body, 1100), Ok(1000));
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), b"{\"type\":2}", 1100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            v.verify(Some("1001"), Some(&sig), body, 1100),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            v.verify(Some("1000"), Some(&sig), body, 1000 + WINDOW_SECS + 1),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            v.verify(None, Some(&sig), body, 1000),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            v.verify(Some("1000"), Some("zz"), body, 1000),
            Err(VerifyError::Malformed)
        );
        assert!(Verifier::from_hex("abcd").is_err());
    }
}
