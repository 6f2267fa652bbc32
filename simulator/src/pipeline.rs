//! Cross-cutting behaviour: correlation ids, the request log, latency and fault injection.
use std::time::Duration;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, CORRELATION_ID, ErrorType};
use crate::faults::{Effect, InjectedFault, Phase, RequestProbe};
use crate::idempotency::MAX_BODY_BYTES;
use crate::requestlog::RequestEntry;
use crate::server::ConnectionKill;
use crate::state::Sim;

const CORRELATION_HEADER: &str = "x-correlation-id";
const TIMEOUT_HOLD: Duration = Duration::from_secs(60);

/// Echoes or generates `X-Correlation-ID`, and lets due simulated work happen before serving.
pub async fn correlate(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    let correlation_id = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 256)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    sim.lock().tick();
    let mut response = CORRELATION_ID
        .scope(correlation_id.clone(), next.run(request))
        .await;
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

/// For API requests (everything outside `/_sim`): log, latency, targeted and random faults.
pub async fn api_pipeline(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/_sim") {
        return next.run(request).await;
    }
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(ErrorType::InvalidHttpMessage, "request body is unreadable")
            .into_response();
    };
    let order_type = (parts.method == Method::POST)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|value| {
            value
                .get("type")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        });
    let probe = RequestProbe {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        order_type: order_type.as_deref(),
    };
    let (sequence, latency_ms, fault) = {
        let mut state = sim.lock();
        let fault = state.plan_fault(&probe);
        let mut entry = RequestEntry::new(
            parts.method.to_string(),
            parts.uri.path().to_string(),
            header_text(&parts.headers, "idempotency-key"),
            crate::error::current_correlation_id().unwrap_or_default(),
            state.now(),
        );
        entry.fault = fault.as_ref().map(|fault| fault.label.clone());
        let sequence = state.request_log.record(entry);
        state.counters.requests += 1;
        if fault.is_some() {
            state.counters.faults_injected += 1;
        }
        (sequence, state.pick_latency_ms(), fault)
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    let request = Request::from_parts(parts, Body::from(body));
    let response = match fault {
        None => next.run(request).await,
        Some(fault) => run_with_fault(fault, request, next, kill).await,
    };
    sim.lock()
        .request_log
        .set_status(sequence, response.status().as_u16());
    response
}

async fn run_with_fault(
    fault: InjectedFault,
    request: Request,
    next: Next,
    kill: Option<ConnectionKill>,
) -> Response {
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    let processed = match (fault.phase, &fault.effect) {
        (_, Effect::DelayOnly) => return next.run(request).await,
        (Phase::After, _) => Some(next.run(request).await),
        (Phase::Before, _) => None,
    };
    match fault.effect {
        Effect::DelayOnly => {
            processed.unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Effect::Respond {
            status,
            body,
            retry_after_s,
        } => injected_response(status, body, retry_after_s),
        Effect::DropConnection => drop_connection(kill).await,
        Effect::Timeout => {
            tokio::time::sleep(TIMEOUT_HOLD).await;
            drop_connection(kill).await
        }
    }
}

fn injected_response(
    status: u16,
    body: Option<serde_json::Value>,
    retry_after_s: Option<u64>,
) -> Response {
    let Some(body) = body else {
        return ApiError::injected(status, retry_after_s).into_response();
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = retry_after_s {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn drop_connection(kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(kill) => kill.drop_connection().await,
        // Served outside our accept loop (no connection to drop): the closest honest answer.
        None => ApiError::injected(503, None).into_response(),
    }
}

fn header_text(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}
