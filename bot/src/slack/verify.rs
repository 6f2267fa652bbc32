//! Slack request signing (`X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`),
//! the 5-minute window, and the memory that refuses to handle a request twice.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::dedupe::{SeenIds, SeenIdsError};

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const RETRY_NUM_HEADER: &str = "x-slack-retry-num";

/// How far a request's timestamp may be from our clock, either way.
pub const WINDOW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    #[error("malformed signature or timestamp")]
    Malformed,
    #[error("timestamp outside the 5-minute window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks one request. `now` is Unix seconds. Returns the parsed timestamp.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<i64, VerifyError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(VerifyError::Missing);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed)?;
    if (now - ts).abs() > WINDOW_SECS {
        return Err(VerifyError::Stale);
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::Malformed)?;
    let expected = mac(secret, timestamp.trim(), body);
    if given.len() == expected.len() && bool::from(given.ct_eq(&expected)) {
        Ok(ts)
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Remembers every (timestamp, signature) accepted while it could still pass the window, in
/// the [`SeenIds`] every replica shares, so a replayed request reaching any of them is
/// acknowledged but not handled again. Signatures are hex, which verifies the same in either
/// case: they are remembered trimmed and lower-cased, so re-casing the header does not make a
/// replay look new.
#[derive(Clone)]
pub struct ReplayGuard {
    /// The platform, so its signatures never collide with another's (`slack_signature`).
    scope: &'static str,
    seen: Arc<dyn SeenIds>,
}

impl ReplayGuard {
    pub fn new(scope: &'static str, seen: Arc<dyn SeenIds>) -> Self {
        Self { scope, seen }
    }

    /// True the first time this request is seen; false for a replay. `now` is Unix seconds;
    /// the signature is remembered until its timestamp leaves the window.
    pub async fn first_time(
        &self,
        ts: i64,
        signature: &str,
        now: i64,
    ) -> Result<bool, SeenIdsError> {
        let key = format!(
            "{}:{ts}:{}",
            self.scope,
            signature.trim().to_ascii_lowercase()
        );
        let until_stale = (ts + WINDOW_SECS + 1 - now).max(1);
        self.seen
            .first_time(&key, Duration::from_secs(until_stale.unsigned_abs()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's worked example from "Verifying requests from Slack".
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TS: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slack_documented_vector() {
        assert_eq!(sign(DOC_SECRET, DOC_TS, DOC_BODY.as_bytes()), DOC_SIG);
        let now = 1531420618 + 60;
        assert_eq!(
            verify(
                DOC_SECRET,
                Some(DOC_TS),
                Some(DOC_SIG),
                DOC_BODY.as_bytes(),
                now
            ),
            Ok(1531420618)
        );
    }

    #[test]
    fn window_both_directions() {
        let ts = 1_700_000_000;
        let sig = sign("s", &ts.to_string(), b"x");
        let check = |now| verify("s", Some(&ts.to_string()), Some(&sig), b"x", now);
        assert!(check(ts + 300).is_ok());
        assert!(check(ts - 300).is_ok());
        assert_eq!(check(ts + 301), Err(VerifyError::Stale));
        assert_eq!(check(ts - 301), Err(VerifyError::Stale));
    }

    #[test]
    fn bad_inputs() {
        let ts = "1700000000";
        let now = 1_700_000_000;
        let sig = sign("s", ts, b"body");
        assert_eq!(
            verify("s", None, Some(&sig), b"body", now),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify("s", Some(ts), None, b"body", now),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify("s", Some("abc"), Some(&sig), b"body", now),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify("s", Some(ts), Some("v1=00"), b"body", now),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify("s", Some(ts), Some("v0=zz"), b"body", now),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            verify("s", Some(ts), Some("v0=abcd"), b"body", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(ts), Some(&sig), b"body", now),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s", Some(ts), Some(&sig), b"body!", now),
            Err(VerifyError::Mismatch)
        );
    }

    fn guard() -> ReplayGuard {
        ReplayGuard::new(
            "slack_signature",
            Arc::new(crate::dedupe::TtlDedupe::new(100)),
        )
    }

    #[tokio::test]
    async fn replay_guard_refuses_a_signature_it_accepted() {
        let g = guard();
        assert_eq!(g.first_time(1000, "a", 1000).await, Ok(true));
        assert_eq!(g.first_time(1000, "a", 1100).await, Ok(false));
        assert_eq!(g.first_time(1000, "b", 1100).await, Ok(true));
        assert_eq!(
            g.first_time(1001, "a", 1100).await,
            Ok(true),
            "another timestamp"
        );
    }

    #[tokio::test]
    async fn replay_guard_ignores_the_case_and_padding_of_the_hex() {
        let g = guard();
        assert_eq!(g.first_time(1000, "v0=ab12", 1000).await, Ok(true));
        assert_eq!(g.first_time(1000, "v0=AB12", 1000).await, Ok(false));
        assert_eq!(g.first_time(1000, " v0=aB12 ", 1000).await, Ok(false));
    }
}
