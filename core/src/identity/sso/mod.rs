//! OIDC single sign-on, configured per tenant: discovery, the authorization code flow with
//! PKCE (S256), `state` and `nonce` kept server-side for ten minutes and used once, the code
//! exchanged with the client secret, and the ID token verified (RS256 against the issuer's
//! JWKS; `iss`, `aud`, `exp`, `nonce`). The verified email must belong to a member of the
//! tenant: nobody is created by signing in.
//!
//! Every request goes to the issuer's own https origin on a public address (see
//! [`network`]); what the provider publishes (discovery, keys) is kept for ten minutes.

mod network;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreIdToken,
    CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::http::{Method, Request};
use openidconnect::{
    AsyncHttpClient, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, DiscoveryError, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    StandardErrorResponse,
};
use time::Duration;
use url::Url;

pub use network::SsoNetworkPolicy;

use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::email_address::Email;
use crate::error::{CoreError, CoreResult};
use crate::identity::session::{NewSession, token_hash};
use crate::ids::TenantId;
use crate::store::{self, now, sso::SsoConfigRow, sso::SsoLoginRow};
use network::{GuardedHttp, Unanswered};

/// How long a started sign-in may take at the identity provider.
const LOGIN_LIFETIME: Duration = Duration::minutes(10);
/// Clock difference tolerated on `exp`.
const LEEWAY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
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

/// A client for the authorization endpoint and the token endpoint.
type SignInClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn seal_context(tenant: TenantId) -> String {
    format!("sso:{tenant}")
}

fn refused(reason: impl Into<String>) -> CoreError {
    CoreError::NotAuthorised(reason.into())
}

/// A provider's discovery document, checked: it names the configured issuer, and every
/// endpoint used is on the issuer's own origin.
#[derive(Debug)]
struct Provider {
    metadata: CoreProviderMetadata,
    client_secret_post: bool,
}

impl Provider {
    fn client(&self, client_id: &str) -> SignInClient {
        let token_endpoint = self
            .metadata
            .token_endpoint()
            .expect("a provider without a token endpoint is refused at discovery");
        // ID tokens are checked by `verify_id_token` against keys kept apart from the client.
        CoreClient::new(
            ClientId::new(client_id.to_owned()),
            self.metadata.issuer().clone(),
            CoreJsonWebKeySet::default(),
        )
        .set_auth_uri(self.metadata.authorization_endpoint().clone())
        .set_token_uri(token_endpoint.clone())
        .set_auth_type(if self.client_secret_post {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        })
    }
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

/// What to tell an admin about a fetch of what the provider publishes that failed.
fn unpublished(step: &str, error: DiscoveryError<Unanswered>) -> String {
    match error {
        DiscoveryError::Request(unanswered) => unanswered.0,
        other => {
            tracing::warn!(step, error = %other, "identity provider answer unusable");
            network::did_not_answer(step)
        }
    }
}

/// The network side of single sign-on: an HTTP client held to the [`SsoNetworkPolicy`],
/// and what identity providers published.
pub(crate) struct IdentityProviders {
    policy: SsoNetworkPolicy,
    http: reqwest::Client,
    providers: Published<Provider>,
    key_sets: Published<CoreJsonWebKeySet>,
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

    fn guarded(&self, step: &'static str) -> GuardedHttp {
        GuardedHttp {
            client: self.http.clone(),
            step,
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
    ///
    /// Not `CoreProviderMetadata::discover_async`: it fetches the keys from wherever the
    /// document points before the endpoints can be checked against the issuer's origin.
    async fn provider(&self, issuer: &str, reuse: bool) -> CoreResult<Arc<Provider>> {
        if reuse && let Some(provider) = self.providers.fresh(issuer) {
            return Ok(provider);
        }
        let issuer_url = self.check_issuer(issuer)?;
        let step = "discovery";
        let did_not_answer = || CoreError::invalid("issuer", network::did_not_answer(step));
        let discovery_url = IssuerUrl::new(issuer.to_owned())
            .and_then(|issuer| issuer.join(".well-known/openid-configuration"))
            .map_err(|e| CoreError::invalid("issuer", format!("{issuer:?} is not a URL: {e}")))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(discovery_url.as_str())
            .body(Vec::new())
            .expect("a GET of a parsed URL is a valid request");
        let answer = self
            .guarded(step)
            .call(request)
            .await
            .map_err(|unanswered| CoreError::invalid("issuer", unanswered.0))?;
        if !answer.status().is_success() {
            tracing::warn!(step, status = %answer.status(), "identity provider answered with an error");
            return Err(did_not_answer());
        }
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(answer.body()).map_err(|e| {
                tracing::warn!(step, error = %e, "identity provider answer unreadable");
                did_not_answer()
            })?;
        if metadata.issuer().as_str() != issuer {
            return Err(CoreError::invalid(
                "issuer",
                format!(
                    "the provider calls itself {:?}; enter exactly that",
                    metadata.issuer().as_str()
                ),
            ));
        }
        let on_issuer_origin = |name: &str, url: &Url| -> CoreResult<()> {
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
                .check_url(url)
                .map_err(|reason| CoreError::invalid("issuer", reason))
        };
        on_issuer_origin(
            "authorization_endpoint",
            metadata.authorization_endpoint().url(),
        )?;
        let token_endpoint = metadata.token_endpoint().ok_or_else(|| {
            CoreError::invalid("issuer", "the provider publishes no token_endpoint")
        })?;
        on_issuer_origin("token_endpoint", token_endpoint.url())?;
        on_issuer_origin("jwks_uri", metadata.jwks_uri().url())?;
        let provider = Arc::new(Provider {
            client_secret_post: metadata
                .token_endpoint_auth_methods_supported()
                .is_some_and(|m| m.contains(&CoreClientAuthMethod::ClientSecretPost)),
            metadata,
        });
        self.providers.keep(issuer, provider.clone());
        Ok(provider)
    }

    /// The provider's keys, and whether they were fetched just now (else kept from less than
    /// ten minutes ago, if `reuse`).
    async fn keys(
        &self,
        provider: &Provider,
        reuse: bool,
    ) -> Result<(Arc<CoreJsonWebKeySet>, bool), String> {
        let uri = provider.metadata.jwks_uri();
        if reuse && let Some(keys) = self.key_sets.fresh(uri.as_str()) {
            return Ok((keys, false));
        }
        let step = "signing keys";
        let keys = CoreJsonWebKeySet::fetch_async(uri, &self.guarded(step))
            .await
            .map_err(|e| unpublished(step, e))?;
        let keys = Arc::new(keys);
        self.key_sets.keep(uri.as_str(), keys.clone());
        Ok((keys, true))
    }

    async fn exchange_code(
        &self,
        provider: &Provider,
        client_id: &str,
        secret: &str,
        code: &str,
        login: &SsoLoginRow,
    ) -> CoreResult<CoreIdToken> {
        let step = "token exchange";
        let redirect_uri = RedirectUrl::new(login.redirect_uri.clone())
            .map_err(|e| CoreError::invalid("redirect_uri", e))?;
        let answer = provider
            .client(client_id)
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(login.code_verifier.clone()))
            .set_redirect_uri(Cow::Owned(redirect_uri))
            .request_async(&self.guarded(step))
            .await
            .map_err(|e| refused(token_refusal(step, e)))?;
        answer.extra_fields().id_token().cloned().ok_or_else(|| {
            tracing::warn!(step, "identity provider token answer has no ID token");
            refused(network::did_not_answer(step))
        })
    }

    /// Check the ID token's signature against the issuer's keys and its claims against this
    /// client and this attempt; returns the verified email.
    async fn verify_id_token(
        &self,
        provider: &Provider,
        client_id: &str,
        nonce: &str,
        token: &CoreIdToken,
    ) -> CoreResult<Email> {
        let bad = |reason: String| refused(format!("the sign-in could not be verified: {reason}"));
        let nonce = Nonce::new(nonce.to_owned());
        let verifier = |keys: &CoreJsonWebKeySet| {
            CoreIdTokenVerifier::new_public_client(
                ClientId::new(client_id.to_owned()),
                provider.metadata.issuer().clone(),
                keys.clone(),
            )
            .set_allowed_algs([CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
            .set_time_fn(|| chrono::Utc::now() - LEEWAY)
        };
        let (keys, fetched_now) = self.keys(provider, true).await.map_err(bad)?;
        let claims = match token.claims(&verifier(&keys), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if !fetched_now => {
                // The provider may have rotated its keys since they were kept: ask once more.
                let keys = self.keys(provider, false).await.map_err(bad)?.0;
                token.claims(&verifier(&keys), &nonce)
            }
            verified => verified,
        }
        .map_err(|e| bad(unverified(e)))?;
        if claims.email_verified() == Some(false) {
            return Err(bad(
                "the provider has not verified this email address".into()
            ));
        }
        let email = claims
            .email()
            .ok_or_else(|| bad("the token has no email; allow the email scope".into()))?;
        Email::parse(email).map_err(|e| bad(format!("its email {:?}: {e}", email.as_str())))
    }
}

/// What to tell a person whose code the token endpoint did not exchange.
fn token_refusal(
    step: &str,
    error: RequestTokenError<Unanswered, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match error {
        RequestTokenError::Request(unanswered) => unanswered.0,
        // An OAuth error (RFC 6749 §5.2) is the provider's word to us, not a status code.
        RequestTokenError::ServerResponse(answer) => format!(
            "the identity provider refused the sign-in: {} {}",
            printable(answer.error().as_ref(), 64),
            printable(answer.error_description().map_or("", String::as_str), 200)
        ),
        other => {
            tracing::warn!(step, error = %other, "identity provider token answer unexpected");
            network::did_not_answer(step)
        }
    }
}

/// Why an ID token was not accepted. The bracketed names are the codes these refusals have
/// always carried, so that what people report stays recognisable.
fn unverified(error: ClaimsVerificationError) -> String {
    use ClaimsVerificationError as Claims;
    use SignatureVerificationError as Signature;
    let detail = |text: &str| printable(text, 200);
    match error {
        Claims::InvalidAudience(why) => {
            format!(
                "the token is meant for another client: {} (InvalidAudience)",
                detail(&why)
            )
        }
        Claims::InvalidIssuer(why) => {
            format!(
                "the token names another issuer: {} (InvalidIssuer)",
                detail(&why)
            )
        }
        Claims::Expired(why) => {
            format!("the token has expired: {} (ExpiredSignature)", detail(&why))
        }
        Claims::InvalidNonce(_) => "the token's nonce is not this sign-in's".into(),
        Claims::SignatureVerification(Signature::NoMatchingKey) => {
            "the token was signed with a key the provider does not publish".into()
        }
        Claims::SignatureVerification(Signature::CryptoError(_)) => {
            "its signature does not match the provider's key (InvalidSignature)".into()
        }
        Claims::SignatureVerification(Signature::DisallowedAlg(why)) => {
            format!("token algorithm is not RS256: {}", detail(&why))
        }
        Claims::SignatureVerification(other) => detail(&other.to_string()),
        other => detail(&other.to_string()),
    }
}

/// At most `max` characters of what a provider said, without control characters.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Lineup {
    pub async fn sso_settings(&self, tenant: TenantId) -> CoreResult<Option<SsoSettings>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let mut tx = self.tenant_read_tx(tenant).await?;
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
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| CoreError::invalid("redirect_uri", e))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = provider
            .client(&config.client_id)
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".to_owned()))
            .add_scope(Scope::new("profile".to_owned()))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect))
            .url();
        let row = SsoLoginRow {
            state_hash: token_hash(state.secret()),
            browser_hash: token_hash(browser_token),
            nonce: nonce.secret().clone(),
            code_verifier: verifier.secret().clone(),
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
