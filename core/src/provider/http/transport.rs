//! The one place that builds HTTP requests, attaches auth and headers, classifies answers
//! and retries.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::errors::{map_error, snippet};
use super::retry::RetryPolicy;
use super::token::{AccessToken, TokenAnswer, TokenCache, TokenResponse};
use crate::provider::{IdempotencyKey, ProviderError};

const CORRELATION_ID: &str = "X-Correlation-ID";
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const ACCEPT_HAL: &str = "application/hal+json, application/json";

/// How a vendor authenticates our calls.
pub(crate) enum Auth {
    /// OAuth2 client credentials: a bearer token from `token_url`, cached and refreshed.
    ClientCredentials {
        token_url: Url,
        client_id: String,
        client_secret: String,
    },
    /// A static key sent as the bearer token on every call.
    ApiKey(String),
}

/// Secrets stay out of logs.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientCredentials {
                token_url,
                client_id,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// One logical API call; it may be sent several times.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// Serialised once so every retry sends the same bytes.
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) key: Option<&'a IdempotencyKey>,
    /// The API operation, a label of the provider metrics ("get_subscription",
    /// "order suspend_subscription"): never an id, so the label set stays small.
    pub(crate) operation: String,
    /// Names the resource, for `NotFound` and logs ("subscription sub_…").
    pub(crate) what: String,
    /// Sent once, never retried: for writes the vendor cannot deduplicate, whose caller
    /// checks what happened before trying again.
    pub(crate) once: bool,
}

impl<'a> Call<'a> {
    pub(crate) fn get(url: Url, operation: &'static str, what: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            url,
            body: None,
            key: None,
            operation: operation.to_owned(),
            what: what.into(),
            once: false,
        }
    }

    /// A JSON write the vendor has no idempotency for: sent once, never retried.
    pub(crate) fn post_once(
        url: Url,
        body: &serde_json::Value,
        operation: String,
        what: impl Into<String>,
    ) -> Self {
        Self {
            method: Method::POST,
            url,
            body: Some(body.to_string().into_bytes()),
            key: None,
            operation,
            what: what.into(),
            once: true,
        }
    }

    pub(crate) fn post(
        url: Url,
        body: &serde_json::Value,
        key: &'a IdempotencyKey,
        operation: String,
        what: impl Into<String>,
    ) -> Self {
        Self {
            method: Method::POST,
            url,
            body: Some(body.to_string().into_bytes()),
            key: Some(key),
            operation,
            what: what.into(),
            once: false,
        }
    }
}

/// Why one attempt failed.
enum Failure {
    /// The API refused this token; drop it and try once more with a new one.
    TokenRejected(AccessToken),
    Error(ProviderError),
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Self::Error(e)
    }
}

#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    /// The adapter's name in logs.
    vendor: &'static str,
    auth: Auth,
    retry: RetryPolicy,
    tokens: TokenCache,
}

impl Transport {
    pub(crate) fn new(
        vendor: &'static str,
        auth: Auth,
        retry: RetryPolicy,
        request_timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout)
            .build()
            .map_err(|e| ProviderError::InvalidRequest {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            vendor,
            auth,
            retry: RetryPolicy {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            tokens: TokenCache::default(),
        })
    }

    /// Sends the call (with retries) and decodes a 2xx JSON body.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
    ) -> Result<T, ProviderError> {
        let (status, body) = self.execute(call).await?;
        serde_json::from_slice(&body).map_err(|e| ProviderError::Protocol {
            status: status.as_u16(),
            body: format!(
                "{} answer is not the expected JSON ({e}): {}",
                call.what,
                snippet(&body)
            ),
        })
    }

    /// One logical call, retries included, counted and timed by operation and outcome.
    async fn execute(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), ProviderError> {
        let started = std::time::Instant::now();
        let answer = self.execute_with_retries(call).await;
        record_call(&call.operation, answer.as_ref().err(), started.elapsed());
        answer
    }

    async fn execute_with_retries(
        &self,
        call: &Call<'_>,
    ) -> Result<(StatusCode, Vec<u8>), ProviderError> {
        let mut attempt = 1;
        let mut reauthenticated = false;
        loop {
            let error = match self.attempt(call).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::TokenRejected(token)) if !reauthenticated => {
                    tracing::debug!(vendor = self.vendor, what = %call.what, "token rejected, fetching a new one");
                    self.tokens.invalidate(&token).await;
                    reauthenticated = true;
                    continue;
                }
                Err(Failure::TokenRejected(_)) => return Err(ProviderError::Unauthorized),
                Err(Failure::Error(error)) if call.once => return Err(error),
                Err(Failure::Error(error)) => error,
            };
            let wait = self.wait_before_retry(&error, attempt, &call.what)?;
            tracing::debug!(
                vendor = self.vendor, what = %call.what, attempt, error = %error,
                wait_ms = wait.as_millis() as u64, "retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `Ok(wait)` when `error` may be retried after `attempt`, else the error to return.
    fn wait_before_retry(
        &self,
        error: &ProviderError,
        attempt: u32,
        what: &str,
    ) -> Result<Duration, ProviderError> {
        let retry_after = match error {
            ProviderError::RateLimited { retry_after } => *retry_after,
            ProviderError::Transient { .. } => None,
            _ => return Err(error.clone()),
        };
        if retry_after.is_some_and(|wait| wait > self.retry.max_retry_after) {
            return Err(error.clone());
        }
        if attempt >= self.retry.max_attempts {
            return Err(gave_up(error, attempt, what));
        }
        Ok(self.retry.wait(attempt, retry_after))
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), Failure> {
        let token = match &self.auth {
            Auth::ClientCredentials { .. } => {
                Some(self.tokens.get_or_refresh(|| self.fetch_token()).await?)
            }
            Auth::ApiKey(_) => None,
        };
        let bearer = match (&token, &self.auth) {
            (Some(token), _) => token.0.as_str(),
            (None, Auth::ApiKey(key)) => key.as_str(),
            (None, Auth::ClientCredentials { .. }) => unreachable!("a token was fetched above"),
        };
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(bearer)
            .header(ACCEPT, ACCEPT_HAL)
            .header(CORRELATION_ID, uuid::Uuid::new_v4().to_string());
        if let Some(key) = call.key {
            request = request.header(IDEMPOTENCY_KEY, &key.0);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        match (self.exchange(request, &call.what).await, token) {
            (Err(ProviderError::Unauthorized), Some(token)) => Err(Failure::TokenRejected(token)),
            (other, _) => Ok(other?),
        }
    }

    async fn fetch_token(&self) -> Result<TokenResponse, ProviderError> {
        let Auth::ClientCredentials {
            token_url,
            client_id,
            client_secret,
        } = &self.auth
        else {
            unreachable!("only client credentials fetch tokens")
        };
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", client_secret.as_str()),
        ];
        let request = self
            .http
            .post(token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CORRELATION_ID, uuid::Uuid::new_v4().to_string())
            .form(&form);
        let started = std::time::Instant::now();
        let answer = self
            .exchange(request, "access token")
            .await
            .map_err(|e| match e {
                // OAuth answers bad client credentials with 400 or 401 `invalid_client`.
                ProviderError::InvalidRequest { .. } => ProviderError::Unauthorized,
                other => other,
            });
        record_call("token", answer.as_ref().err(), started.elapsed());
        let (status, body) = answer?;
        serde_json::from_slice::<TokenAnswer>(&body)
            .map(TokenAnswer::into_response)
            .map_err(|e| ProviderError::Protocol {
                status: status.as_u16(),
                body: format!("token answer ({e}): {}", snippet(&body)),
            })
    }

    /// Sends one request and classifies the answer: 2xx body, or the mapped error.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(StatusCode, Vec<u8>), ProviderError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        if status.is_success() {
            return Ok((status, body));
        }
        Err(map_error(status.as_u16(), &body, what, retry_after))
    }
}

/// Provider calls by operation and outcome (`ok`, or the kind of error), with their latency.
fn record_call(operation: &str, error: Option<&ProviderError>, elapsed: Duration) {
    let outcome = error.map_or("ok", ProviderError::kind);
    let labels = [
        ("operation", operation.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("lineup_provider_requests_total", &labels).increment(1);
    metrics::histogram!("lineup_provider_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
}

/// `Retry-After` in seconds (the HTTP-date form is not used by this vendor).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Connection refused or dropped, timeouts and truncated bodies are all worth retrying.
fn transport_error(e: reqwest::Error) -> ProviderError {
    if e.is_builder() {
        return ProviderError::InvalidRequest {
            message: format!("cannot build the request: {e}"),
        };
    }
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::Transient { detail }
}

fn gave_up(error: &ProviderError, attempts: u32, what: &str) -> ProviderError {
    match error {
        ProviderError::Transient { detail } => ProviderError::Transient {
            detail: format!("{what}: gave up after {attempts} attempts, last: {detail}"),
        },
        other => other.clone(),
    }
}
