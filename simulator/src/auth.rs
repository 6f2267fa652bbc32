use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::config::AuthMode;
use crate::error::{ApiError, ErrorType};
use crate::ratelimit::RateDecision;
use crate::state::Sim;

pub const TOKEN_PATH: &str = "/auth/realms/enterprise-apis/protocol/openid-connect/token";

pub struct IssuedToken {
    pub client_id: String,
    pub expires_at: OffsetDateTime,
}

/// The authenticated client, available to handlers behind [`authenticate`].
#[derive(Clone)]
pub struct ClientId(pub String);

pub async fn issue_token(
    State(sim): State<Sim>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (client_id, client_secret) = basic_credentials(&headers).unwrap_or_else(|| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    let expected = sim.credentials();
    if client_id != expected.client_id || client_secret != expected.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let mut state = sim.lock();
    let ttl = state.config.token_ttl_s;
    let token = format!("simtok_{}", uuid::Uuid::new_v4().simple());
    let expires_at = state.now() + Duration::seconds(ttl as i64);
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            client_id,
            expires_at,
        },
    );
    state.counters.tokens_issued += 1;
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": "enterprise",
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Bearer check (by simulated time) and the per-client, per-route rate limit.
pub async fn authenticate(State(sim): State<Sim>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_string(),
        |m| m.as_str().to_string(),
    );
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let decision = {
        let mut state = sim.lock();
        let client = match state.config.auth_mode {
            AuthMode::None => Some("anonymous".to_string()),
            AuthMode::Oauth2 => bearer.and_then(|token| {
                let now = state.now();
                state
                    .tokens
                    .get(&token)
                    .filter(|issued| issued.expires_at > now)
                    .map(|issued| issued.client_id.clone())
            }),
        };
        let Some(client) = client else {
            drop(state);
            let mut response = ApiError::new(
                ErrorType::Unauthorised,
                "missing, invalid or expired bearer token",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"enterprise-apis\""),
            );
            return response;
        };
        let per_minute = state.config.rate_limit_per_min;
        let decision = state.rate_limiter.check(&client, &route, per_minute);
        request.extensions_mut().insert(ClientId(client));
        decision
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        ApiError::new(ErrorType::TooManyRequests, "rate limit exceeded")
            .with_retry_after(decision.retry_after_s)
            .into_response()
    };
    add_rate_headers(response.headers_mut(), &decision);
    response
}

fn add_rate_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_s));
}
