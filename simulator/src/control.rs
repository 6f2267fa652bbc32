//! The `/_sim` control plane: config, faults, clock, usage, profile events, orders, webhooks,
//! fixtures, accounts.
use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::accounts;
use crate::config::SimConfig;
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::faults::FaultSpec;
use crate::fixtures::FixturesInput;
use crate::ids::is_valid_eid;
use crate::model::{OrderStatus, OrderType, ProfileStatus};
use crate::qr::qr_png;
use crate::settlement::PROVISIONING_FAILED;
use crate::state::Sim;
use crate::subscriptions::subscription_counts;
use crate::usage::UsageInput;

pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/config", get(get_config).put(put_config))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/clock", get(get_clock))
        .route("/clock/advance", post(advance_clock))
        .route("/subscriptions/{id}/usage", post(inject_usage))
        .route("/sim-profiles/{iccid}/events", post(profile_event))
        .route("/orders/{id}/complete", post(complete_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/webhooks/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}/redeliver", post(redeliver))
        .route("/reset", post(reset))
        .route("/fixtures", get(get_fixtures).post(add_fixtures))
        .route("/accounts", post(accounts::create_account))
        .route("/stats", get(stats))
        .route("/requests", get(list_requests).delete(clear_requests))
        .route("/qr/{file}", get(qr_png))
        .nest("/gigs", crate::gigs::control_routes())
        .nest("/airalo", crate::airalo::control_routes())
}

/// Parses an optional JSON body; an empty body means the type's default.
fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            ErrorType::InvalidRequestParams,
            format!("invalid body: {error}"),
        )
    })
}

async fn get_config(State(sim): State<Sim>) -> Json<SimConfig> {
    Json(sim.lock().config.clone())
}

async fn put_config(State(sim): State<Sim>, body: Bytes) -> ApiResult<Json<SimConfig>> {
    let patch: Value = parse_body(&body)?;
    let mut state = sim.lock();
    let config = state
        .config
        .merged_with(&patch)
        .map_err(|error| ApiError::bad_request(format!("invalid config: {error}")))?;
    validate_config(&config)?;
    state.config = config.clone();
    Ok(Json(config))
}

fn validate_config(config: &SimConfig) -> ApiResult<()> {
    let rates = [
        ("error_rate", config.error_rate),
        ("error_after_processing", config.error_after_processing),
        ("drop_connection_rate", config.drop_connection_rate),
        ("order_failure_rate", config.order_failure_rate),
        ("webhooks.duplicate_rate", config.webhooks.duplicate_rate),
    ];
    if let Some((name, _)) = rates.iter().find(|(_, rate)| !(0.0..=1.0).contains(rate)) {
        return Err(ApiError::bad_request(format!(
            "{name} must be between 0 and 1"
        )));
    }
    if config.latency_ms.min > config.latency_ms.max
        || config.order_delay_ms.min > config.order_delay_ms.max
    {
        return Err(ApiError::bad_request("ranges need min <= max"));
    }
    if config
        .error_statuses
        .keys()
        .any(|status| status.parse::<u16>().is_err())
    {
        return Err(ApiError::bad_request(
            "error_statuses keys must be HTTP status codes",
        ));
    }
    Ok(())
}

async fn add_fault(State(sim): State<Sim>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec: FaultSpec = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid fault: {error}")))?;
    spec.validate()?;
    let id = sim.lock().add_fault(spec);
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

async fn list_faults(State(sim): State<Sim>) -> Json<Value> {
    let state = sim.lock();
    Json(state.faults.values().map(|fault| fault.to_json()).collect())
}

async fn clear_faults(State(sim): State<Sim>) -> StatusCode {
    sim.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(sim): State<Sim>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    sim.lock()
        .faults
        .remove(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| ApiError::not_found("fault", &id))
}

async fn get_clock(State(sim): State<Sim>) -> Json<Value> {
    Json(sim.lock().clock_json())
}

#[derive(serde::Deserialize, Default)]
struct AdvanceInput {
    seconds: i64,
}

async fn advance_clock(State(sim): State<Sim>, body: Bytes) -> ApiResult<Json<Value>> {
    let input: AdvanceInput = parse_body(&body)?;
    if input.seconds < 0 {
        return Err(ApiError::bad_request("the clock only moves forward"));
    }
    let mut state = sim.lock();
    state.clock.advance(input.seconds);
    state.tick();
    Ok(Json(state.clock_json()))
}

async fn inject_usage(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let input: UsageInput = parse_body(&body)?;
    Ok(Json(sim.lock().record_usage(&id, input)?))
}

#[derive(serde::Deserialize, Default)]
struct ProfileEventInput {
    status: String,
    eid: Option<String>,
}

async fn profile_event(
    State(sim): State<Sim>,
    Path(iccid): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let input: ProfileEventInput = parse_body(&body)?;
    let status = ProfileStatus::parse(&input.status)
        .ok_or_else(|| ApiError::bad_request(format!("unknown profile status {}", input.status)))?;
    if input.eid.as_ref().is_some_and(|eid| !is_valid_eid(eid)) {
        return Err(ApiError::bad_request(
            "eid must be 32 digits with a valid check (mod 97 = 1)",
        ));
    }
    let mut state = sim.lock();
    state.move_profile(&iccid, status, input.eid)?;
    let smdp = state.config.smdp_address.clone();
    Ok(Json(state.profiles[&iccid].to_json(&smdp, sim.base_url())))
}

async fn complete_order(State(sim): State<Sim>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(sim.lock().complete_order_by_hand(&id)?))
}

#[derive(serde::Deserialize, Default)]
struct CancelInput {
    code: Option<String>,
}

async fn cancel_order(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let input: CancelInput = parse_body(&body)?;
    let code = input
        .code
        .unwrap_or_else(|| PROVISIONING_FAILED.to_string());
    Ok(Json(sim.lock().cancel_order_by_hand(&id, &code)?))
}

async fn list_deliveries(State(sim): State<Sim>) -> Json<Value> {
    let state = sim.lock();
    Json(state.deliveries.values().map(|d| d.to_json()).collect())
}

async fn redeliver(State(sim): State<Sim>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(sim.lock().redeliver(&id)?))
}

async fn reset(State(sim): State<Sim>) -> Json<Value> {
    let mut state = sim.lock();
    state.reset();
    Json(json!({"account_id": state.fixture_account_id}))
}

async fn get_fixtures(
    State(sim): State<Sim>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Json<Value> {
    let account_id = query.get("account_id").map(String::as_str);
    Json(sim.lock().fixtures_json(account_id))
}

async fn add_fixtures(State(sim): State<Sim>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let input: FixturesInput = parse_body(&body)?;
    let created = sim
        .lock()
        .add_fixtures(input)
        .map_err(ApiError::bad_request)?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn stats(State(sim): State<Sim>) -> Json<Value> {
    let state = sim.lock();
    let by_type: BTreeMap<&str, usize> = OrderType::ALL
        .into_iter()
        .map(|kind| {
            (
                kind.as_str(),
                state.orders.values().filter(|o| o.kind == kind).count(),
            )
        })
        .collect();
    let by_status: BTreeMap<&str, usize> = OrderStatus::ALL
        .into_iter()
        .map(|status| {
            (
                status.as_str(),
                state.orders.values().filter(|o| o.status == status).count(),
            )
        })
        .collect();
    Json(json!({
        "subscriptions": subscription_counts(&state),
        "orders": {"total": state.orders.len(), "by_type": by_type, "by_status": by_status},
        "tokens_issued": state.counters.tokens_issued,
        "requests": state.counters.requests,
        "faults_injected": state.counters.faults_injected,
    }))
}

async fn list_requests(State(sim): State<Sim>) -> Json<Value> {
    Json(sim.lock().request_log.to_json())
}

async fn clear_requests(State(sim): State<Sim>) -> StatusCode {
    sim.lock().request_log.clear();
    StatusCode::NO_CONTENT
}
