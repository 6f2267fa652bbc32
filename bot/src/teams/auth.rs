//! Bot Framework authentication, both ways.
//!
//! Inbound ([`InboundVerifier`]): every activity carries `Authorization: Bearer <JWT>` signed by
//! the Bot Connector. We check RS256 with the key named by the header's `kid`, taken from the
//! JWKS at the OpenID metadata's `jwks_uri` (cached for a day, refetched when an unknown `kid`
//! shows up but at most once a minute, at most [`MAX_KEYS`] keys kept), `iss`, `aud` = our app
//! id, `exp`/`nbf` with 5 minutes of leeway, the key's `endorsements` (when the JWKS lists
//! them) containing the activity's `channelId`, and the `serviceurl` claim equal to the
//! activity's `serviceUrl`.
//!
//! Outbound ([`OutboundTokens`]): an OAuth client-credentials token for
//! `https://api.botframework.com/.default`, cached until five minutes before it expires.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tracing::{info, warn};

use super::config::{BOT_FRAMEWORK_SCOPE, TeamsConfig};

/// Leeway on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: u64 = 5 * 60;
/// How long a fetched key set is trusted before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The least time between two key-set fetches caused by unknown `kid`s.
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);
/// Keys kept from one key set (the real one has a handful).
pub const MAX_KEYS: usize = 64;
/// An outbound token is renewed this long before it expires.
pub const TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Timeout of one call to the metadata, key-set or token endpoint.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization: Bearer header")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token algorithm {0} is not RS256")]
    Algorithm(String),
    #[error("token has no kid")]
    NoKid,
    #[error("no signing key with kid {0}")]
    UnknownKey(String),
    #[error("signing key {kid} is not endorsed for channel {channel}")]
    NotEndorsed { kid: String, channel: String },
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("serviceurl claim {claim:?} does not match the activity's serviceUrl {activity:?}")]
    ServiceUrl {
        claim: Option<String>,
        activity: String,
    },
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

/// The claims we read from an inbound token.
#[derive(Debug, Clone, Deserialize)]
pub struct InboundClaims {
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default, alias = "serviceUrl")]
    pub serviceurl: Option<String>,
}

/// Compares service URLs the way the Bot Framework SDKs do: exact, but a trailing slash and
/// the case of the scheme/host do not matter.
pub fn same_service_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_end_matches('/');
        match url::Url::parse(s) {
            Ok(u) => u.as_str().trim_end_matches('/').to_string(),
            Err(_) => s.to_string(),
        }
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}

struct Jwk {
    key: DecodingKey,
    endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Jwk>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

#[derive(Deserialize)]
struct OpenIdMetadata {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<JwkDoc>,
}

#[derive(Deserialize)]
struct JwkDoc {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    endorsements: Option<Vec<String>>,
}

/// Checks inbound tokens. Share one per process (it caches the key set).
pub struct InboundVerifier {
    config: TeamsConfig,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    refresh: tokio::sync::Mutex<()>,
}

impl InboundVerifier {
    pub fn new(config: TeamsConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            keys: RwLock::new(KeySet::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks the `Authorization` header value for an activity from `service_url` on
    /// `channel_id` (`msteams`).
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        service_url: &str,
        channel_id: &str,
    ) -> Result<InboundClaims, AuthError> {
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(AuthError::NoKid)?;
        self.ensure_key(&kid).await?;
        let claims = {
            let keys = self.keys.read().expect("key set lock");
            let jwk = keys
                .keys
                .get(&kid)
                .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
            if let Some(endorsements) = &jwk.endorsements
                && !endorsements.iter().any(|e| e == channel_id)
            {
                return Err(AuthError::NotEndorsed {
                    kid,
                    channel: channel_id.to_string(),
                });
            }
            let mut validation = Validation::new(Algorithm::RS256);
            validation.leeway = CLOCK_LEEWAY_SECS;
            validation.validate_nbf = true;
            validation.validate_exp = true;
            validation.set_issuer(&[self.config.expected_issuer.as_str()]);
            validation.set_audience(&[self.config.app_id.as_str()]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            jsonwebtoken::decode::<InboundClaims>(token, &jwk.key, &validation)
                .map_err(|e| AuthError::Invalid(e.to_string()))?
                .claims
        };
        match &claims.serviceurl {
            Some(claim) if same_service_url(claim, service_url) => Ok(claims),
            other => Err(AuthError::ServiceUrl {
                claim: other.clone(),
                activity: service_url.to_string(),
            }),
        }
    }

    /// Makes sure `kid` is in the cache if the key set has it, refetching when the set is old,
    /// or when `kid` is unknown and the last fetch is more than a minute ago.
    async fn ensure_key(&self, kid: &str) -> Result<(), AuthError> {
        let outdated = |ks: &KeySet| {
            let stale = ks.fetched_at.is_none_or(|t| t.elapsed() > JWKS_TTL);
            stale || !ks.keys.contains_key(kid)
        };
        if !outdated(&self.keys.read().expect("key set lock")) {
            return Ok(());
        }
        // Wait for a fetch already on its way (the first activities after start-up all find
        // the set empty) before deciding whether another is allowed yet.
        let _one_at_a_time = self.refresh.lock().await;
        let may_retry = |ks: &KeySet| {
            ks.last_attempt
                .is_none_or(|t| t.elapsed() > JWKS_MIN_REFRESH)
        };
        {
            let ks = self.keys.read().expect("key set lock");
            if !outdated(&ks) || !may_retry(&ks) {
                return Ok(());
            }
        }
        self.keys.write().expect("key set lock").last_attempt = Some(Instant::now());
        match self.fetch_keys().await {
            Ok(fresh) => {
                info!(keys = fresh.len(), "Bot Framework signing keys fetched");
                let mut ks = self.keys.write().expect("key set lock");
                ks.keys = fresh;
                ks.fetched_at = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "fetching Bot Framework signing keys failed");
                // Keep using the keys we have; without any, nothing can be verified.
                if self.keys.read().expect("key set lock").keys.is_empty() {
                    Err(AuthError::Keys(e))
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Jwk>, String> {
        let meta: OpenIdMetadata = self
            .http
            .get(&self.config.openid_metadata_url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("OpenID metadata: {e}"))?
            .json()
            .await
            .map_err(|e| format!("OpenID metadata: {e}"))?;
        let doc: JwksDoc = self
            .http
            .get(&meta.jwks_uri)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for k in doc.keys {
            if keys.len() >= MAX_KEYS {
                warn!("JWKS has more than {MAX_KEYS} keys; the rest are ignored");
                break;
            }
            let (Some(kid), Some(n), Some(e)) = (k.kid, k.n, k.e) else {
                continue;
            };
            if k.kty != "RSA" {
                continue;
            }
            match DecodingKey::from_rsa_components(&n, &e) {
                Ok(key) => {
                    keys.insert(
                        kid,
                        Jwk {
                            key,
                            endorsements: k.endorsements,
                        },
                    );
                }
                Err(err) => warn!(kid, error = %err, "unusable JWKS key skipped"),
            }
        }
        if keys.is_empty() {
            return Err("the key set has no usable RSA keys".into());
        }
        Ok(keys)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Our client-credentials token for the Bot Connector, fetched once and reused until shortly
/// before it expires.
pub struct OutboundTokens {
    config: TeamsConfig,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl OutboundTokens {
    pub fn new(config: TeamsConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid bearer token.
    pub async fn token(&self) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.app_id.as_str()),
            ("client_secret", self.config.app_password.as_str()),
            ("scope", BOT_FRAMEWORK_SCOPE),
        ];
        let resp = self
            .http
            .post(&self.config.token_url)
            .form(&form)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("token service unreachable: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "token service answered {status}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| format!("unreadable token response: {e}"))?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600));
        // Renew five minutes early, or halfway through a short-lived token.
        let early = TOKEN_RENEW_BEFORE.min(lifetime / 2);
        *cached = Some((t.access_token.clone(), Instant::now() + lifetime - early));
        Ok(t.access_token)
    }

    /// Forgets the cached token (after the Bot Connector refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
