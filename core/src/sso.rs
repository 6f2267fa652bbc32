//! OIDC single sign-on, configured per tenant: discovery, the authorization code flow with
//! PKCE (S256), `state` and `nonce` kept server-side for ten minutes and used once, the code
//! exchanged with the client secret, and the ID token verified (RS256 against the issuer's
//! JWKS; `iss`, `aud`, `exp`, `nonce`). The verified email must belong to a member of the
//! tenant: nobody is created by signing in.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::Duration;

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
const HTTP_TIMEOUT: StdDuration = StdDuration::from_secs(10);

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

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds")
    })
}

fn seal_context(tenant: TenantId) -> String {
    format!("sso:{tenant}")
}

fn refused(reason: impl Into<String>) -> CoreError {
    CoreError::NotAuthorised(reason.into())
}

/// Issuers are https; plain http only on this machine (a local test provider).
fn check_issuer(issuer: &str) -> CoreResult<url::Url> {
    let url = url::Url::parse(issuer)
        .map_err(|e| CoreError::invalid("issuer", format!("{issuer:?} is not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(CoreError::invalid("issuer", "must be an https:// URL"));
    }
    Ok(url)
}

async fn discover(issuer: &str) -> CoreResult<Discovery> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let fail = |e: String| CoreError::invalid("issuer", format!("discovery at {url} failed: {e}"));
    let doc: Discovery = http()
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(e.to_string()))?
        .json()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if doc.issuer != issuer {
        return Err(CoreError::invalid(
            "issuer",
            format!(
                "the provider calls itself {:?}; enter exactly that",
                doc.issuer
            ),
        ));
    }
    Ok(doc)
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
    pub async fn save_sso_settings(
        &self,
        tenant: TenantId,
        actor: &Actor,
        update: SsoUpdate,
    ) -> CoreResult<SsoSettings> {
        let issuer = update.issuer.trim().to_owned();
        let client_id = update.client_id.trim().to_owned();
        check_issuer(&issuer)?;
        if client_id.is_empty() {
            return Err(CoreError::invalid("client_id", "is required"));
        }
        let new_secret = update
            .client_secret
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if update.enabled {
            discover(&issuer).await?;
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
        let discovery = discover(&config.issuer).await?;
        let (state, nonce, verifier) = (random_token(), random_b64(32), random_b64(32));
        let mut url = url::Url::parse(&discovery.authorization_endpoint).map_err(|e| {
            CoreError::invalid(
                "issuer",
                format!("authorization_endpoint is not a URL: {e}"),
            )
        })?;
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
        let discovery = discover(&config.issuer).await?;
        let id_token = exchange_code(&discovery, &config.client_id, &secret, code, &login).await?;
        let email = verify_id_token(&discovery, &config.client_id, &login.nonce, &id_token).await?;
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

async fn exchange_code(
    discovery: &Discovery,
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
    let methods = discovery.token_endpoint_auth_methods_supported.as_deref();
    let post = methods.is_some_and(|m| m.iter().any(|m| m == "client_secret_post"));
    let mut request = http().post(&discovery.token_endpoint);
    if post {
        form.push(("client_secret", secret));
    } else {
        // RFC 6749 §2.3.1: both parts form-encoded before Basic.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        request = request.basic_auth(enc(client_id), Some(enc(secret)));
    }
    let answer = request
        .form(&form)
        .send()
        .await
        .map_err(|e| refused(format!("the identity provider did not answer: {e}")))?;
    let status = answer.status();
    let body: TokenAnswer = answer.json().await.map_err(|e| {
        refused(format!(
            "the identity provider's token answer ({status}) is unreadable: {e}"
        ))
    })?;
    match (body.id_token, body.error) {
        (Some(token), None) if status.is_success() => Ok(token),
        (_, error) => Err(refused(format!(
            "the identity provider refused the sign-in: {} {}",
            error.unwrap_or_else(|| status.to_string()),
            body.error_description.unwrap_or_default()
        ))),
    }
}

/// Check the ID token's signature against the issuer's keys and its claims against this
/// client and this attempt; returns the verified email.
async fn verify_id_token(
    discovery: &Discovery,
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
    let jwks: Jwks = http()
        .get(&discovery.jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| bad(format!("the provider's keys: {e}")))?
        .json()
        .await
        .map_err(|e| bad(format!("the provider's keys: {e}")))?;
    let rsa: Vec<&Jwk> = jwks.keys.iter().filter(|k| k.kty == "RSA").collect();
    let jwk = match &header.kid {
        Some(kid) => rsa.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())),
        None if rsa.len() == 1 => rsa.first(),
        None => None,
    }
    .ok_or_else(|| bad("the token was signed with a key the provider does not publish".into()))?;
    let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
        return Err(bad("the provider's key has no modulus or exponent".into()));
    };
    let key = DecodingKey::from_rsa_components(n, e).map_err(|e| bad(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECS;
    validation.set_issuer(&[discovery.issuer.as_str()]);
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
