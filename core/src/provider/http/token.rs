//! OAuth2 client-credentials token cache shared by every call of one provider.
//!
//! A single `tokio::sync::Mutex` guards the token, so concurrent callers that find it stale
//! queue behind one refresh instead of each asking the token endpoint (no thundering herd).

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Refresh this long before expiry when the token lives at least `MIN_TTL_FOR_MARGIN`.
const REFRESH_MARGIN: Duration = Duration::from_secs(15);
const MIN_TTL_FOR_MARGIN: Duration = Duration::from_secs(30);
/// Used when the token endpoint omits `expires_in` (1GLOBAL tokens last about 5 minutes).
const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessToken(pub(crate) String);

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Option<Cached>>,
}

/// The token endpoint's success body.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// The token endpoint's answer: the response itself (OAuth2), or inside `data` (Airalo).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum TokenAnswer {
    Plain(TokenResponse),
    Wrapped { data: TokenResponse },
}

impl TokenAnswer {
    pub(crate) fn into_response(self) -> TokenResponse {
        match self {
            Self::Plain(response) | Self::Wrapped { data: response } => response,
        }
    }
}

impl TokenCache {
    /// Returns the cached token, or runs `fetch` (once, under the lock) to get a new one.
    pub(crate) async fn get_or_refresh<F, Fut, E>(&self, fetch: F) -> Result<AccessToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenResponse, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        let fresh = fetch().await?;
        let ttl = fresh.expires_in.map_or(DEFAULT_TTL, Duration::from_secs);
        let token = AccessToken(fresh.access_token);
        *slot = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_after(ttl),
        });
        tracing::debug!(ttl_s = ttl.as_secs(), "obtained a new access token");
        Ok(token)
    }

    /// Drops `rejected` if it is still the cached token (a 401 told us it is no longer valid).
    /// Another caller may already have replaced it; that newer token is kept.
    pub(crate) async fn invalidate(&self, rejected: &AccessToken) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| &c.token == rejected) {
            *slot = None;
        }
    }
}

/// How long a token with this TTL is used before refreshing: 15 s early, or at half-life
/// when the TTL is too short for that margin.
pub(crate) fn refresh_after(ttl: Duration) -> Duration {
    if ttl >= MIN_TTL_FOR_MARGIN {
        ttl - REFRESH_MARGIN
    } else {
        ttl / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_early_or_at_half_life() {
        assert_eq!(
            refresh_after(Duration::from_secs(300)),
            Duration::from_secs(285)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }
}
