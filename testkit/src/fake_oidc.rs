//! A small OpenID Connect provider on a loopback port, for single sign-on tests: discovery,
//! an authorize endpoint that signs the configured person in at once and redirects back with
//! a code, a token endpoint that checks the client's secret (post or basic), the redirect URI,
//! the PKCE verifier (S256) and that a code is used once, and a JWKS with the Teams test key.
//! [`TokenTweak`] bends the next ID token (audience, expiry, signing key, nonce…). It
//! records every connection and request, so a test can show that nothing reached it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::fake_teams::{ATTACKER_KEY_PEM, TEST_KEY_N, TEST_KEY_PEM, TEST_KID, pem_der, unix_now};

pub const CLIENT_ID: &str = "lineup-portal";
pub const CLIENT_SECRET: &str = "oidc client secret";

/// Changes to the next ID token the provider issues.
#[derive(Debug, Clone, Default)]
pub struct TokenTweak {
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// Seconds from now until `exp` (default an hour).
    pub expires_in: Option<i64>,
    pub attacker_key: bool,
    pub nonce: Option<String>,
    pub email_verified: Option<bool>,
}

struct Grant {
    redirect_uri: String,
    challenge: String,
    nonce: String,
    email: String,
    used: bool,
}

#[derive(Default)]
struct FakeState {
    person: Option<String>,
    grants: HashMap<String, Grant>,
    tweak: TokenTweak,
    only_basic_auth: bool,
    token_requests: Vec<HashMap<String, String>>,
    /// `GET /jwks`, `POST /token`…, in order.
    requests: Vec<String>,
    /// Where discovery says the token endpoint and keys are, instead of the issuer.
    endpoints_origin: Option<String>,
    /// The kid the keys are published and tokens signed under, once rotated.
    rotated_kid: Option<String>,
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    state: Arc<Mutex<FakeState>>,
    connections: Arc<AtomicUsize>,
}

pub struct FakeOidc {
    shared: Shared,
}

impl FakeOidc {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Shared {
            issuer,
            state: Arc::default(),
            connections: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .layer(middleware::from_fn_with_state(shared.clone(), note_request))
            .with_state(shared.clone());
        let connections = shared.connections.clone();
        let listener = listener.tap_io(move |_| {
            connections.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { shared }
    }

    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The port it listens on (its issuer is `http://127.0.0.1:<port>`).
    pub fn port(&self) -> u16 {
        url::Url::parse(self.issuer()).unwrap().port().unwrap()
    }

    /// Every request received, as `METHOD /path`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// How many requests for `path` were received.
    pub fn hits(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.split_once(' ').is_some_and(|(_, p)| p == path))
            .count()
    }

    /// How many TCP connections were accepted (TLS attempts included, which never become
    /// requests here).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Discovery from now on says the token endpoint and keys live on `origin`.
    pub fn point_endpoints_at(&self, origin: &str) {
        self.lock().endpoints_origin = Some(origin.to_owned());
    }

    /// Publish the keys under a new kid and sign with it from now on, as a provider
    /// rotating its keys does.
    pub fn rotate_keys(&self) {
        self.lock().rotated_kid = Some("rotated-key".to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.state.lock().unwrap()
    }

    /// Who signs in at the authorize endpoint from now on.
    pub fn sign_in_as(&self, email: &str) {
        self.lock().person = Some(email.to_owned());
    }

    /// Bend the ID tokens issued from now on.
    pub fn tweak_tokens(&self, tweak: TokenTweak) {
        self.lock().tweak = tweak;
    }

    /// Advertise and accept only `client_secret_basic`.
    pub fn only_basic_auth(&self) {
        self.lock().only_basic_auth = true;
    }

    /// The form fields of every token request, with how the client authenticated
    /// (`auth` = `post` or `basic`).
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.lock().token_requests.clone()
    }
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn note_request(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let line = format!("{} {}", request.method(), request.uri().path());
    s.state.lock().unwrap().requests.push(line);
    next.run(request).await
}

fn kid(state: &FakeState) -> String {
    state
        .rotated_kid
        .clone()
        .unwrap_or_else(|| TEST_KID.to_owned())
}

async fn discovery(State(s): State<Shared>) -> Response {
    let state = s.state.lock().unwrap();
    let methods = if state.only_basic_auth {
        json!(["client_secret_basic"])
    } else {
        json!(["client_secret_post", "client_secret_basic"])
    };
    let elsewhere = state.endpoints_origin.as_deref().unwrap_or(&s.issuer);
    json_answer(
        StatusCode::OK,
        json!({
            "issuer": s.issuer,
            "authorization_endpoint": format!("{}/authorize", s.issuer),
            "token_endpoint": format!("{elsewhere}/token"),
            "jwks_uri": format!("{elsewhere}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": methods,
        }),
    )
}

async fn jwks(State(s): State<Shared>) -> Response {
    let kid = kid(&s.state.lock().unwrap());
    json_answer(
        StatusCode::OK,
        json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                         "n": TEST_KEY_N, "e": "AQAB"}]}),
    )
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || !get("scope").split(' ').any(|s| s == "openid")
    {
        return (
            StatusCode::BAD_REQUEST,
            format!("bad authorization request: {q:?}"),
        )
            .into_response();
    }
    let mut state = s.state.lock().unwrap();
    let Some(email) = state.person.clone() else {
        return (StatusCode::UNAUTHORIZED, "nobody to sign in").into_response();
    };
    let code = uuid::Uuid::new_v4().simple().to_string();
    state.grants.insert(
        code.clone(),
        Grant {
            redirect_uri: get("redirect_uri"),
            challenge: get("code_challenge"),
            nonce: get("nonce"),
            email,
            used: false,
        },
    );
    let mut back = url::Url::parse(&get("redirect_uri")).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Redirect::to(back.as_str()).into_response()
}

fn invalid_grant(reason: &str) -> Response {
    json_answer(
        StatusCode::BAD_REQUEST,
        json!({"error": "invalid_grant", "error_description": reason}),
    )
}

/// The client's id and secret from HTTP Basic (each form-decoded), if sent that way.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let mut state = s.state.lock().unwrap();
    let (client, auth) = match basic_credentials(&headers) {
        Some(credentials) => (Some(credentials), "basic"),
        None if state.only_basic_auth => (None, "post"),
        None => (
            form.get("client_id")
                .cloned()
                .zip(form.get("client_secret").cloned()),
            "post",
        ),
    };
    form.insert("auth".into(), auth.into());
    state.token_requests.push(form.clone());
    if client != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return json_answer(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    let tweak = state.tweak.clone();
    let kid = kid(&state);
    let Some(grant) = state.grants.get_mut(&get("code")) else {
        return invalid_grant("unknown code");
    };
    if grant.used {
        return invalid_grant("the code was already used");
    }
    grant.used = true;
    if grant.redirect_uri != get("redirect_uri") {
        return invalid_grant("redirect_uri differs from the authorization request");
    }
    let verifier_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        <sha2::Sha256 as sha2::Digest>::digest(get("code_verifier").as_bytes()),
    );
    if verifier_hash != grant.challenge {
        return invalid_grant("PKCE verification failed");
    }
    let now = unix_now();
    let claims = json!({
        "iss": tweak.issuer.unwrap_or_else(|| s.issuer.clone()),
        "sub": format!("sub-{}", grant.email),
        "aud": tweak.audience.unwrap_or_else(|| CLIENT_ID.to_owned()),
        "iat": now,
        "exp": now + tweak.expires_in.unwrap_or(3600),
        "nonce": tweak.nonce.unwrap_or_else(|| grant.nonce.clone()),
        "email": grant.email,
        "email_verified": tweak.email_verified.unwrap_or(true),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid);
    let pem = if tweak.attacker_key {
        ATTACKER_KEY_PEM
    } else {
        TEST_KEY_PEM
    };
    let id_token =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&pem_der(pem)))
            .expect("sign a test ID token");
    json_answer(
        StatusCode::OK,
        json!({"access_token": "fake-access", "token_type": "Bearer", "expires_in": 3600,
               "id_token": id_token}),
    )
}
