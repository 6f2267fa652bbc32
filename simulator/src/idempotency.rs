use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::accounts::Caller;
use crate::error::{ApiError, ErrorType};
use crate::state::{Sim, State as SimState};

pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const RETENTION: Duration = Duration::hours(24);

/// The first 2xx response stored for an `Idempotency-Key`.
pub struct IdempotencyRecord {
    fingerprint: [u8; 32],
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
    stored_at: OffsetDateTime,
}

/// Replays the stored response for a repeated key, or 409 when the key comes with another body.
pub async fn idempotency(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let (Some(key), true) = (key, request.method() == Method::POST) else {
        return next.run(request).await;
    };
    let client = request.extensions().get::<Caller>().map_or_else(
        || "anonymous".to_string(),
        |caller| caller.client_id.clone(),
    );
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(ErrorType::InvalidHttpMessage, "request body is unreadable")
            .into_response();
    };
    let fingerprint = fingerprint(parts.method.as_str(), parts.uri.path(), &body);
    let record_key = (client, key);
    if let Some(replayed) = lookup(&sim.lock(), &record_key, &fingerprint) {
        return replayed;
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut state = sim.lock();
    let stored_at = state.now();
    state
        .idempotency
        .entry(record_key)
        .or_insert(IdempotencyRecord {
            fingerprint,
            status: parts.status,
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            body: body.clone(),
            stored_at,
        });
    Response::from_parts(parts, Body::from(body))
}

/// An idempotency record as written to a state file.
#[derive(Serialize, Deserialize)]
pub struct StoredIdempotency {
    pub client: String,
    pub key: String,
    /// Hex SHA-256 of method, path and body.
    pub fingerprint: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub body_base64: String,
    #[serde(with = "time::serde::rfc3339")]
    pub stored_at: OffsetDateTime,
}

pub type IdempotencyRecords = std::collections::HashMap<(String, String), IdempotencyRecord>;

/// The records in a stable order (by client, then key) for writing.
pub fn store_records(records: &IdempotencyRecords) -> Vec<StoredIdempotency> {
    let mut stored: Vec<StoredIdempotency> = records
        .iter()
        .map(|((client, key), record)| StoredIdempotency {
            client: client.clone(),
            key: key.clone(),
            fingerprint: hex::encode(record.fingerprint),
            status: record.status.as_u16(),
            content_type: record
                .content_type
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
            body_base64: BASE64.encode(&record.body),
            stored_at: record.stored_at,
        })
        .collect();
    stored.sort_by(|a, b| (&a.client, &a.key).cmp(&(&b.client, &b.key)));
    stored
}

pub fn restore_records(stored: Vec<StoredIdempotency>) -> Result<IdempotencyRecords, String> {
    stored
        .into_iter()
        .map(|record| {
            let context = |what: &str| {
                format!(
                    "idempotency record {:?} of client {:?} has an invalid {what}",
                    record.key, record.client
                )
            };
            let fingerprint: [u8; 32] = hex::decode(&record.fingerprint)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| context("fingerprint"))?;
            let status = StatusCode::from_u16(record.status).map_err(|_| context("status"))?;
            let content_type = record
                .content_type
                .as_deref()
                .map(HeaderValue::from_str)
                .transpose()
                .map_err(|_| context("content type"))?;
            let body = BASE64
                .decode(&record.body_base64)
                .map_err(|_| context("body"))?;
            Ok((
                (record.client, record.key),
                IdempotencyRecord {
                    fingerprint,
                    status,
                    content_type,
                    body: Bytes::from(body),
                    stored_at: record.stored_at,
                },
            ))
        })
        .collect()
}

fn lookup(
    state: &SimState,
    record_key: &(String, String),
    fingerprint: &[u8; 32],
) -> Option<Response> {
    let record = state.idempotency.get(record_key)?;
    if record.fingerprint != *fingerprint {
        return Some(
            ApiError::new(
                ErrorType::IdempotencyKeyReused,
                "Idempotency-Key was already used with a different request",
            )
            .into_response(),
        );
    }
    let mut response = Response::new(Body::from(record.body.clone()));
    *response.status_mut() = record.status;
    if let Some(content_type) = &record.content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Some(response)
}

fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().into()
}

impl SimState {
    /// Returns whether any record was purged.
    pub fn purge_idempotency_records(&mut self) -> bool {
        let cutoff = self.now() - RETENTION;
        let before = self.idempotency.len();
        self.idempotency
            .retain(|_, record| record.stored_at > cutoff);
        self.idempotency.len() != before
    }
}
