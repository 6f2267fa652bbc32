//! Connect-compatible per-SIM notification registrations and payloads.
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::accounts::Caller;
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::state::{Sim, State as SimState};
use crate::webhooks::DeliveryTarget;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnectEvent {
    UsageThreshold,
    SubscriptionEnd,
    DownloadProgress,
}

impl ConnectEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageThreshold => "USAGE_THRESHOLD",
            Self::SubscriptionEnd => "SUBSCRIPTION_END",
            Self::DownloadProgress => "DOWNLOAD_PROGRESS",
        }
    }

    /// Accepts the misspelling `SUBSCRITPION_END` found in the Connect docs.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "USAGE_THRESHOLD" => Some(Self::UsageThreshold),
            "SUBSCRIPTION_END" | "SUBSCRITPION_END" => Some(Self::SubscriptionEnd),
            "DOWNLOAD_PROGRESS" => Some(Self::DownloadProgress),
            _ => None,
        }
    }
}

impl SimState {
    /// Sends a Connect payload to the URL registered for this SIM and type, if any.
    pub fn notify_connect(
        &mut self,
        iccid: &str,
        event: ConnectEvent,
        payload: impl FnOnce(String) -> Value,
    ) {
        let Some(url) = self
            .connect_hooks
            .get(&(iccid.to_string(), event.as_str().to_string()))
            .cloned()
        else {
            return;
        };
        let notification_id = self.ids.next("ntf");
        let body = payload(notification_id.clone()).to_string();
        let target = DeliveryTarget {
            webhook_id: None,
            kind: "connect",
            url,
            secret: None,
        };
        self.queue_delivery(target, &notification_id, event.as_str(), &body);
    }
}

/// 404 unless the SIM belongs to a subscription of the caller's account.
fn check_sim(state: &SimState, caller: &Caller, iccid: &str) -> ApiResult<()> {
    let owned = state
        .profiles
        .get(iccid)
        .and_then(|profile| state.subscriptions.get(&profile.subscription_id))
        .is_some_and(|subscription| subscription.account_id == caller.account_id);
    if owned {
        Ok(())
    } else {
        Err(ApiError::not_found("sim", iccid))
    }
}

fn parse_target(
    state: &SimState,
    caller: &Caller,
    iccid: &str,
    kind: &str,
) -> ApiResult<ConnectEvent> {
    check_sim(state, caller, iccid)?;
    ConnectEvent::parse(kind)
        .ok_or_else(|| ApiError::bad_request(format!("unknown notification type {kind}")))
}

pub async fn register_notification(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path((iccid, kind)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            ErrorType::InvalidHttpMessage,
            format!("body is not valid JSON: {error}"),
        )
    })?;
    let url = body
        .get("webhook_url")
        .and_then(Value::as_str)
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .ok_or_else(|| ApiError::bad_request("webhook_url must be an http(s) URL"))?
        .to_string();
    let mut state = sim.lock();
    let event = parse_target(&state, &caller, &iccid, &kind)?;
    state
        .connect_hooks
        .insert((iccid.clone(), event.as_str().to_string()), url.clone());
    Ok(Json(
        json!({"iccid": iccid, "type": event.as_str(), "webhook_url": url}),
    ))
}

pub async fn unregister_notification(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path((iccid, kind)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut state = sim.lock();
    let event = parse_target(&state, &caller, &iccid, &kind)?;
    state
        .connect_hooks
        .remove(&(iccid.clone(), event.as_str().to_string()))
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| {
            ApiError::not_found(
                "notification preference",
                &format!("{iccid}/{}", event.as_str()),
            )
        })
}

pub async fn list_preferences(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(iccid): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    check_sim(&state, &caller, &iccid)?;
    let notifications: Vec<Value> = state
        .connect_hooks
        .iter()
        .filter(|((hook_iccid, _), _)| *hook_iccid == iccid)
        .map(|((_, kind), url)| json!({"type": kind, "webhook_url": url}))
        .collect();
    Ok(Json(
        json!({"iccid": iccid, "notifications": notifications}),
    ))
}
