//! OIDC single sign-on, configured per tenant: discovery, the authorization code flow with
//! PKCE (S256), `state` and `nonce` kept server-side for ten minutes and used once, the code
//! exchanged with the client secret, and the ID token verified (RS256 against the issuer's
//! JWKS; `iss`, `aud`, `exp`, `nonce`). The verified email must belong to a member of the
//! tenant: nobody is created by signing in.
//!
//! Every request goes to the issuer's own https origin on a public address (see
//! [`network`]); what the provider publishes (discovery, keys) is kept for ten minutes.

mod network;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use time::Duration;
use url::Url;

pub use network::SsoNetworkPolicy;

use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email::Email;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::session::{NewSession, random_token, token_hash};
use crate::store::{self, now, sso::SsoConfigRow, sso::SsoLoginRow};

/// How long a started sign-in may take at the identity provider.
const LOGIN_LIFETIME: Duration = Duration::minutes(10);
/// Clock difference tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;
/// How long a provider's discovery document and keys are used before they are fetched again.
const PUBLISHED_TTL: StdDuration = StdDuration::from_secs(10 * 60);

/// A tenant's SSO settings as shown to an admin (the secret never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct SsoUpdate {
    pub issuer: String,
    pub client_id: String,
    /// `None` keeps the stored secret.
    pub client_secret: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    email: Option<String>,
    email_verified: Option<bool>,
    nonce: Option<String>,
}

fn seal_context(tenant: TenantId) -> String {
    format!("sso:{tenant}")
}

fn refused(reason: impl Into<String>) -> CoreError {
    CoreError::NotAuthorised(reason.into())
}

/// A provider's discovery document, checked: it names the configured issuer, and every
/// endpoint is on the issuer's own origin.
#[derive(Debug)]
struct Provider {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    client_secret_post: bool,
}

/// What providers published, by URL, each kept for [`PUBLISHED_TTL`].
struct Published<T>(Mutex<HashMap<String, (Instant, Arc<T>)>>);

impl<T> Published<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn fresh(&self, key: &str) -> Option<Arc<T>> {
        let kept = self
            .0
            .lock()
            .expect("the published cache is never poisoned");
        kept.get(key)
            .filter(|(at, _)| at.elapsed() < PUBLISHED_TTL)
            .map(|(_, value)| value.clone())
    }

    fn keep(&self, key: &str, value: Arc<T>) {
        let mut kept = self
            .0
            .lock()
            .expect("the published cache is never poisoned");
        kept.retain(|_, (at, _)| at.elapsed() < PUBLISHED_TTL);
        kept.insert(key.to_owned(), (Instant::now(), value));
    }
}

/// The network side of single sign-on: an HTTP client held to the [`SsoNetworkPolicy`],
/// and what identity providers published.
pub(crate) struct IdentityProviders {
    policy: SsoNetworkPolicy,
    http: reqwest::Client,
    providers: Published<Provider>,
    key_sets: Published<Jwks>,
}

impl IdentityProviders {
    pub(crate) fn new(policy: SsoNetworkPolicy) -> Self {
        Self {
            policy,
            http: policy.client(),
            providers: Published::new(),
            key_sets: Published::new(),
        }
    }

    fn check_issuer(&self, issuer: &str) -> CoreResult<Url> {
        let url = Url::parse(issuer)
            .map_err(|e| CoreError::invalid("issuer", format!("{issuer:?} is not a URL: {e}")))?;
        self.policy
            .check_url(&url)
            .map_err(|reason| CoreError::invalid("issuer", reason))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(CoreError::invalid(
                "issuer",
                "must not have a query or a fragment",
            ));
        }
        Ok(url)
    }

    /// The issuer's checked discovery document: the one kept from less than ten minutes ago
    /// if `reuse`, else fetched now.
    async fn provider(&self, issuer: &str, reuse: bool) -> CoreResult<Arc<Provider>> {
        if reuse && let Some(provider) = self.providers.fresh(issuer) {
            return Ok(provider);
        }
        let issuer_url = self.check_issuer(issuer)?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc: Discovery = self
            .get_json("discovery", &url)
            .await
            .map_err(|reason| CoreError::invalid("issuer", reason))?;
        if doc.issuer != issuer {
            return Err(CoreError::invalid(
                "issuer",
                format!(
                    "the provider calls itself {:?}; enter exactly that",
                    doc.issuer
                ),
            ));
        }
        let on_issuer_origin = |name: &str, endpoint: &str| -> CoreResult<Url> {
            let url = Url::parse(endpoint).map_err(|e| {
                CoreError::invalid("issuer", format!("the provider's {name} is not a URL: {e}"))
            })?;
            if url.origin() != issuer_url.origin() {
                return Err(CoreError::invalid(
                    "issuer",
                    format!(
                        "the provider's {name} {url} is not on the issuer's own origin {}; \
                         single sign-on only talks to the issuer's host",
                        issuer_url.origin().ascii_serialization()
                    ),
                ));
            }
            self.policy
                .check_url(&url)
                .map_err(|reason| CoreError::invalid("issuer", reason))?;
            Ok(url)
        };
        let provider = Arc::new(Provider {
            authorization_endpoint: on_issuer_origin(
                "authorization_endpoint",
                &doc.authorization_endpoint,
            )?,
            token_endpoint: on_issuer_origin("token_endpoint", &doc.token_endpoint)?,
            jwks_uri: on_issuer_origin("jwks_uri", &doc.jwks_uri)?,
            client_secret_post: doc
                .token_endpoint_auth_methods_supported
                .is_some_and(|m| m.iter().any(|m| m == "client_secret_post")),
            issuer: doc.issuer,
        });
        self.providers.keep(issuer, provider.clone());
        Ok(provider)
    }

    /// The provider's keys, and whether they were fetched just now (else kept from less than
    /// ten minutes ago, if `reuse`).
    async fn keys(&self, provider: &Provider, reuse: bool) -> Result<(Arc<Jwks>, bool), String> {
        let uri = provider.jwks_uri.as_str();
        if reuse && let Some(keys) = self.key_sets.fresh(uri) {
            return Ok((keys, false));
        }
        let keys: Arc<Jwks> = Arc::new(self.get_json("signing keys", uri).await?);
        self.key_sets.keep(uri, keys.clone());
        Ok((keys, true))
    }

    async fn get_json<T: DeserializeOwned>(&self, step: &str, url: &str) -> Result<T, String> {
        let (status, body) = network::read_answer(step, self.http.get(url)).await?;
        if !status.is_success() {
            tracing::warn!(step, %status, "identity provider answered with an error");
            return Err(network::did_not_answer(step));
        }
        serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(step, error = %e, "identity provider answer unreadable");
            network::did_not_answer(step)
        })
    }

    async fn exchange_code(
        &self,
        provider: &Provider,
        client_id: &str,
        secret: &str,
        code: &str,
        login: &SsoLoginRow,
    ) -> CoreResult<String> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.code_verifier.as_str()),
            ("client_id", client_id),
        ];
        let mut request = self.http.post(provider.token_endpoint.clone());
        if provider.client_secret_post {
            form.push(("client_secret", secret));
        } else {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(client_id), Some(enc(secret)));
        }
        let step = "token exchange";
        let (status, body) = network::read_answer(step, request.form(&form))
            .await
            .map_err(refused)?;
        let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
        match answer {
            Some(TokenAnswer {
                id_token: Some(token),
                error: None,
                ..
            }) if status.is_success() => Ok(token),
            // An OAuth error (RFC 6749 §5.2) is the provider's word to us, not a status code.
            Some(TokenAnswer {
                error: Some(error),
                error_description,
                ..
            }) => Err(refused(format!(
                "the identity provider refused the sign-in: {} {}",
                printable(&error, 64),
                printable(&error_description.unwrap_or_default(), 200)
            ))),
            _ => {
                tracing::warn!(step, %status, "identity provider token answer unexpected");
                Err(refused(network::did_not_answer(step)))
            }
        }
    }

    /// Check the ID token's signature against the issuer's keys and its claims against this
    /// client and this attempt; returns the verified email.
    async fn verify_id_token(
        &self,
        provider: &Provider,
        client_id: &str,
        nonce: &str,
        token: &str,
    ) -> CoreResult<Email> {
        let bad = |reason: String| refused(format!("the sign-in could not be verified: {reason}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!(
                "token algorithm {:?} is not RS256",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let (mut jwks, fetched_now) = self.keys(provider, true).await.map_err(bad)?;
        if signing_key(&jwks, kid).is_none() && !fetched_now {
            // The provider may have rotated its keys since they were kept: ask once more.
            jwks = self.keys(provider, false).await.map_err(bad)?.0;
        }
        let jwk = signing_key(&jwks, kid).ok_or_else(|| {
            bad("the token was signed with a key the provider does not publish".into())
        })?;
        let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
            return Err(bad("the provider's key has no modulus or exponent".into()));
        };
        let key = DecodingKey::from_rsa_components(n, e).map_err(|e| bad(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[provider.issuer.as_str()]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| bad(e.to_string()))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(bad("the token's nonce is not this sign-in's".into()));
        }
        if claims.email_verified == Some(false) {
            return Err(bad(
                "the provider has not verified this email address".into()
            ));
        }
        let email = claims
            .email
            .ok_or_else(|| bad("the token has no email; allow the email scope".into()))?;
        Email::parse(&email).map_err(|e| bad(format!("its email {email:?}: {e}")))
    }
}

/// The RSA key `kid` names, or the only one when the token names none.
fn signing_key<'a>(jwks: &'a Jwks, kid: Option<&str>) -> Option<&'a Jwk> {
    let mut rsa = jwks.keys.iter().filter(|k| k.kty == "RSA");
    match kid {
        Some(kid) => rsa.find(|k| k.kid.as_deref() == Some(kid)),
        None => rsa.next().filter(|_| rsa.next().is_none()),
    }
}

/// At most `max` characters of what a provider said, without control characters.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Lineup {
    pub async fn sso_settings(&self, tenant: TenantId) -> CoreResult<Option<SsoSettings>> {
        let mut tx = self.tenant_tx(tenant).await?;
        Ok(store::sso::get(&mut tx, tenant)
            .await?
            .map(|row| SsoSettings {
                issuer: row.issuer,
                client_id: row.client_id,
                enabled: row.enabled,
            }))
    }

    /// Save the settings. Switching SSO on checks the issuer's discovery document first, so
    /// a typo shows now and not at the next person's sign-in.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn save_sso_settings(
        &self,
        tenant: TenantId,
        actor: &Actor,
        update: SsoUpdate,
    ) -> CoreResult<SsoSettings> {
        let issuer = update.issuer.trim().to_owned();
        let client_id = update.client_id.trim().to_owned();
        let providers = self.identity_providers();
        providers.check_issuer(&issuer)?;
        if client_id.is_empty() {
            return Err(CoreError::invalid("client_id", "is required"));
        }
        let new_secret = update
            .client_secret
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if update.enabled {
            providers.provider(&issuer, false).await?;
        }
        let secrets = self.secrets()?.clone();
        let mut tx = self.tenant_tx(tenant).await?;
        let before = store::sso::get(&mut tx, tenant).await?;
        let sealed = match (&new_secret, &before) {
            (Some(secret), _) => secrets.seal(secret, &seal_context(tenant)),
            (None, Some(row)) => row.client_secret_encrypted.clone(),
            (None, None) => return Err(CoreError::invalid("client_secret", "is required")),
        };
        let row = SsoConfigRow {
            issuer,
            client_id,
            client_secret_encrypted: sealed,
            enabled: update.enabled,
            updated_at: now(),
        };
        store::sso::upsert(&mut tx, tenant, &row).await?;
        let shown = |r: &SsoConfigRow| serde_json::json!({ "issuer": r.issuer, "client_id": r.client_id, "enabled": r.enabled });
        let mut after = shown(&row);
        after["client_secret_changed"] = serde_json::json!(new_secret.is_some());
        let event = AuditEvent::new(
            tenant,
            actor,
            "sso.configured",
            ("tenant", tenant.to_string()),
            before.as_ref().map(shown),
            Some(after),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(SsoSettings {
            issuer: row.issuer,
            client_id: row.client_id,
            enabled: row.enabled,
        })
    }

    async fn live_sso(&self, tenant: TenantId) -> CoreResult<SsoConfigRow> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = store::sso::get(&mut tx, tenant).await?;
        row.filter(|r| r.enabled)
            .ok_or_else(|| CoreError::not_found("single sign-on", tenant))
    }

    /// Start a sign-in: remember state, nonce and PKCE verifier (bound to this browser's
    /// `browser_token`) and return the identity provider's URL to send the browser to.
    pub async fn begin_sso(
        &self,
        tenant: TenantId,
        browser_token: &str,
        redirect_uri: &str,
        next_path: &str,
    ) -> CoreResult<String> {
        let config = self.live_sso(tenant).await?;
        let provider = self
            .identity_providers()
            .provider(&config.issuer, true)
            .await?;
        let (state, nonce, verifier) = (random_token(), random_b64(32), random_b64(32));
        let mut url = provider.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let row = SsoLoginRow {
            state_hash: token_hash(&state),
            browser_hash: token_hash(browser_token),
            nonce,
            code_verifier: verifier,
            redirect_uri: redirect_uri.to_owned(),
            next_path: next_path.to_owned(),
            expires_at: now() + LOGIN_LIFETIME,
        };
        let mut tx = self.tenant_tx(tenant).await?;
        store::sso::delete_expired_logins(&mut tx, tenant, now()).await?;
        store::sso::insert_login(&mut tx, tenant, &row).await?;
        tx.commit().await?;
        Ok(url.into())
    }

    /// Finish a sign-in the identity provider sent back: returns the new session and the
    /// path to go to. Every failure is a refusal saying why.
    pub async fn finish_sso(
        &self,
        tenant: TenantId,
        browser_token: &str,
        state: &str,
        code: &str,
    ) -> CoreResult<(NewSession, String)> {
        let login = {
            let mut tx = self.tenant_tx(tenant).await?;
            let login = store::sso::take_login(&mut tx, tenant, &token_hash(state)).await?;
            tx.commit().await?;
            login
        };
        let stale = "this sign-in attempt is unknown, expired or was started in another \
                     browser; start again from the sign-in page";
        let login = login
            .filter(|l| l.expires_at > now() && l.browser_hash == token_hash(browser_token))
            .ok_or_else(|| refused(stale))?;
        let config = self.live_sso(tenant).await?;
        let secret = self
            .secrets()?
            .open(&config.client_secret_encrypted, &seal_context(tenant))
            .map_err(|e| CoreError::invalid("LINEUP_SECRET_KEY", e))?;
        let providers = self.identity_providers();
        let provider = providers.provider(&config.issuer, true).await?;
        let id_token = providers
            .exchange_code(&provider, &config.client_id, &secret, code, &login)
            .await?;
        let email = providers
            .verify_id_token(&provider, &config.client_id, &login.nonce, &id_token)
            .await?;
        let member = {
            let mut tx = self.tenant_tx(tenant).await?;
            store::users::member_by_email(&mut tx, tenant, email.as_str()).await?
        };
        let tenant_name = self.tenant(tenant).await?.name;
        let member = required(member, "member", &email).map_err(|_| {
            refused(format!(
                "{email} is not a member of {tenant_name}; ask an admin to invite you"
            ))
        })?;
        let session = self.open_session(tenant, member.user_id, "sso").await?;
        Ok((session, login.next_path))
    }
}
