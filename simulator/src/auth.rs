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

use crate::accounts::Caller;
use crate::config::AuthMode;
use crate::error::{ApiError, ErrorType};
use crate::ratelimit::RateDecision;
use crate::state::Sim;

pub const TOKEN_PATH: &str = "/auth/realms/enterprise-apis/protocol/openid-connect/token";

pub struct IssuedToken {
    pub client_id: String,
    pub expires_at: OffsetDateTime,
}

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
    let mut state = sim.lock();
    if !sim.client_is_valid(&state, &client_id, &client_secret) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
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

/// Bearer check (by simulated time), the caller's account, and the per-client, per-route rate
/// limit. Without OAuth2 every caller acts for the fixture account.
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
        let caller = match state.config.auth_mode {
            AuthMode::None => Some(Caller {
                client_id: "anonymous".to_string(),
                account_id: state.fixture_account_id.clone(),
            }),
            AuthMode::Oauth2 => bearer.and_then(|token| {
                let now = state.now();
                let client_id = state
                    .tokens
                    .get(&token)
                    .filter(|issued| issued.expires_at > now)?
                    .client_id
                    .clone();
                let account_id = sim.account_of_client(&state, &client_id)?;
                Some(Caller {
                    client_id,
                    account_id,
                })
            }),
        };
        let Some(caller) = caller else {
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
        let decision = state
            .rate_limiter
            .check(&caller.client_id, &route, per_minute);
        request.extensions_mut().insert(caller);
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
