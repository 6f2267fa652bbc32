//! Outbound webhooks: registration, the event envelope, signing, delivery with retries.
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};
use tokio::task::JoinSet;

use crate::accounts::Caller;
use crate::airalo::airalo_signature;
use crate::clock::{rfc3339, rfc3339_opt};
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::hal::{QueryMap, page};
use crate::state::{Sim, State as SimState};

pub const EVENT_TYPES: [&str; 7] = [
    "order.completed",
    "order.canceled",
    "subscription.status_changed",
    "sim_profile.download_progress",
    "usage.threshold_reached",
    "product.depleted",
    "product.expired",
];

/// Delay before retry n (after attempt n failed).
const RETRY_DELAYS_S: [i64; 5] = [1, 5, 30, 120, 600];
const WORKER_PERIOD: std::time::Duration = std::time::Duration::from_millis(25);
const MAX_REORDER_JITTER_MS: u64 = 300;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    pub id: String,
    /// The account whose events it receives; empty in state files written before accounts
    /// were separated.
    #[serde(default)]
    pub account_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

pub struct Delivery {
    pub id: String,
    pub webhook_id: Option<String>,
    /// `enterprise` (signed envelope) or `connect` (per-SIM notification payload).
    pub kind: &'static str,
    pub url: String,
    pub secret: Option<String>,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub attempt_limit: usize,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub in_flight: bool,
    pub created_at: OffsetDateTime,
}

pub struct Attempt {
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// What the worker needs to send one delivery attempt.
pub struct Outgoing {
    delivery_id: String,
    kind: &'static str,
    url: String,
    secret: Option<String>,
    event_id: String,
    event_type: String,
    body: String,
    jitter_ms: u64,
}

impl Webhook {
    fn to_json(&self, with_secret: bool) -> Value {
        let mut body = json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "created_at": rfc3339(self.created_at),
            "_links": {"self": {"href": format!("/enterprise/webhooks/{}", self.id)}},
        });
        if with_secret {
            body["secret"] = self.secret.clone().into();
        }
        body
    }

    fn wants(&self, event_type: &str) -> bool {
        self.events
            .iter()
            .any(|wanted| wanted == "*" || wanted == event_type)
    }
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl Delivery {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "webhook_id": self.webhook_id,
            "kind": self.kind,
            "url": self.url,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status.as_str(),
            "attempt_count": self.attempts.len(),
            "attempts": self.attempts.iter().map(|a| json!({
                "at": rfc3339(a.at), "status": a.status, "error": a.error, "latency_ms": a.latency_ms,
            })).collect::<Vec<_>>(),
            "next_attempt_at": rfc3339_opt(self.next_attempt_at),
            "created_at": rfc3339(self.created_at),
            "payload": serde_json::from_str::<Value>(&self.body).unwrap_or(Value::Null),
        })
    }
}

/// `X-Sim-Signature` value: `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
pub fn signature_header(secret: &str, unix_time: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(format!("{unix_time}.{body}").as_bytes());
    format!(
        "t={unix_time},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

impl SimState {
    /// Publishes an account's event to every webhook of that account subscribed to its type.
    pub fn emit(&mut self, account_id: &str, event_type: &str, data: Value) {
        let event_id = self.ids.next("evt");
        let body = json!({
            "id": event_id,
            "type": event_type,
            "occurred_at": rfc3339(self.now()),
            "data": data,
        })
        .to_string();
        let targets: Vec<(String, String, String)> = self
            .webhooks
            .values()
            .filter(|hook| hook.account_id == account_id && hook.wants(event_type))
            .map(|hook| (hook.id.clone(), hook.url.clone(), hook.secret.clone()))
            .collect();
        for (webhook_id, url, secret) in targets {
            let target = DeliveryTarget {
                webhook_id: Some(webhook_id),
                kind: "enterprise",
                url,
                secret: Some(secret),
            };
            self.queue_delivery(target, &event_id, event_type, &body);
        }
    }

    pub fn queue_delivery(
        &mut self,
        target: DeliveryTarget,
        event_id: &str,
        event_type: &str,
        body: &str,
    ) {
        if !self.config.webhooks.enabled {
            return;
        }
        let copies = if self.roll(self.config.webhooks.duplicate_rate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let now = self.now();
            let id = self.ids.next("dlv");
            self.deliveries.insert(
                id.clone(),
                Delivery {
                    id,
                    webhook_id: target.webhook_id.clone(),
                    kind: target.kind,
                    url: target.url.clone(),
                    secret: target.secret.clone(),
                    event_id: event_id.to_string(),
                    event_type: event_type.to_string(),
                    body: body.to_string(),
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    attempt_limit: self.config.webhooks.max_attempts.max(1) as usize,
                    next_attempt_at: Some(now),
                    in_flight: false,
                    created_at: now,
                },
            );
        }
    }

    fn take_due_deliveries(&mut self) -> Vec<Outgoing> {
        let now = self.now();
        let reorder = self.config.webhooks.reorder;
        let due: Vec<String> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending
                    && !d.in_flight
                    && d.next_attempt_at.is_some_and(|at| at <= now)
            })
            .map(|d| d.id.clone())
            .collect();
        let mut outgoing = Vec::with_capacity(due.len());
        for id in due {
            let jitter_ms = if reorder {
                self.rng.gen_range(0..=MAX_REORDER_JITTER_MS)
            } else {
                0
            };
            let delivery = self.deliveries.get_mut(&id).expect("exists");
            delivery.in_flight = true;
            outgoing.push(Outgoing {
                delivery_id: id,
                kind: delivery.kind,
                url: delivery.url.clone(),
                secret: delivery.secret.clone(),
                event_id: delivery.event_id.clone(),
                event_type: delivery.event_type.clone(),
                body: delivery.body.clone(),
                jitter_ms,
            });
        }
        if reorder {
            outgoing.shuffle(&mut self.rng);
        }
        outgoing
    }

    fn record_attempt(&mut self, delivery_id: &str, attempt: Attempt) {
        let now = self.now();
        let Some(delivery) = self.deliveries.get_mut(delivery_id) else {
            return;
        };
        let succeeded = attempt
            .status
            .is_some_and(|status| (200..300).contains(&status));
        delivery.attempts.push(attempt);
        delivery.in_flight = false;
        if succeeded {
            delivery.status = DeliveryStatus::Delivered;
            delivery.next_attempt_at = None;
        } else if delivery.attempts.len() >= delivery.attempt_limit {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
        } else {
            let index = (delivery.attempts.len() - 1).min(RETRY_DELAYS_S.len() - 1);
            delivery.next_attempt_at = Some(now + Duration::seconds(RETRY_DELAYS_S[index]));
        }
    }

    pub fn redeliver(&mut self, delivery_id: &str) -> ApiResult<Value> {
        let now = self.now();
        let max_attempts = self.config.webhooks.max_attempts.max(1) as usize;
        let delivery = self
            .deliveries
            .get_mut(delivery_id)
            .ok_or_else(|| ApiError::not_found("delivery", delivery_id))?;
        delivery.status = DeliveryStatus::Pending;
        delivery.next_attempt_at = Some(now);
        delivery.attempt_limit = delivery.attempts.len() + max_attempts;
        Ok(delivery.to_json())
    }
}

pub struct DeliveryTarget {
    pub webhook_id: Option<String>,
    pub kind: &'static str,
    pub url: String,
    pub secret: Option<String>,
}

/// Background task: sends due deliveries and records each attempt. Also advances time-driven state.
pub async fn run_delivery_worker(sim: Sim) {
    let mut in_flight = JoinSet::new();
    loop {
        tokio::time::sleep(WORKER_PERIOD).await;
        while in_flight.try_join_next().is_some() {}
        let due = {
            let mut state = sim.lock();
            state.tick();
            state.take_due_deliveries()
        };
        for outgoing in due {
            let sim = sim.clone();
            in_flight.spawn(async move {
                if outgoing.jitter_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(outgoing.jitter_ms)).await;
                }
                let attempt = send(&sim, &outgoing).await;
                sim.lock().record_attempt(&outgoing.delivery_id, attempt);
            });
        }
    }
}

async fn send(sim: &Sim, outgoing: &Outgoing) -> Attempt {
    // Signatures use wall-clock time so receivers can check freshness against their own clock.
    let unix_time = OffsetDateTime::now_utc().unix_timestamp();
    let mut request = sim
        .http()
        .post(&outgoing.url)
        .header("content-type", "application/json")
        .header("x-sim-event-id", &outgoing.event_id)
        .header("x-sim-event-type", &outgoing.event_type)
        .header("x-sim-delivery-id", &outgoing.delivery_id)
        .body(outgoing.body.clone());
    request = match (outgoing.kind, &outgoing.secret) {
        (_, None) => request,
        ("gigs", Some(secret)) => request.header(
            "gigs-signature",
            signature_header(secret, unix_time, &outgoing.body),
        ),
        ("airalo", Some(secret)) => {
            request.header("airalo-signature", airalo_signature(secret, &outgoing.body))
        }
        (_, Some(secret)) => request.header(
            "x-sim-signature",
            signature_header(secret, unix_time, &outgoing.body),
        ),
    };
    let started = Instant::now();
    let result = request.send().await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let at = sim.lock().now();
    match result {
        Ok(response) => Attempt {
            at,
            status: Some(response.status().as_u16()),
            error: None,
            latency_ms,
        },
        Err(error) => Attempt {
            at,
            status: None,
            error: Some(error.to_string()),
            latency_ms,
        },
    }
}

pub async fn create_webhook(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: Value = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            ErrorType::InvalidHttpMessage,
            format!("body is not valid JSON: {error}"),
        )
    })?;
    let url = body
        .get("url")
        .and_then(Value::as_str)
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .ok_or_else(|| ApiError::bad_request("url must be an http(s) URL"))?;
    let events: Vec<String> = match body.get("events") {
        None | Some(Value::Null) => vec!["*".into()],
        Some(Value::Array(events)) => events
            .iter()
            .map(|event| event.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request("events must be strings"))?,
        Some(_) => return Err(ApiError::bad_request("events must be an array")),
    };
    if let Some(unknown) = events
        .iter()
        .find(|e| *e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown event type {unknown}"
        )));
    }
    let mut state = sim.lock();
    let secret = match body.get("secret").and_then(Value::as_str) {
        Some(secret) if !secret.is_empty() => secret.to_string(),
        _ => format!("whsec_{}", state.ids.digits(32)),
    };
    let webhook = Webhook {
        id: state.ids.next("wh"),
        account_id: caller.account_id,
        url: url.to_string(),
        events,
        secret,
        created_at: state.now(),
    };
    let json = webhook.to_json(true);
    state.webhooks.insert(webhook.id.clone(), webhook);
    Ok((StatusCode::CREATED, Json(json)))
}

pub async fn list_webhooks(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .webhooks
        .values()
        .filter(|hook| hook.account_id == caller.account_id)
        .map(|hook| (hook.id.clone(), hook.to_json(false)))
        .collect();
    page("/enterprise/webhooks", &query, "webhooks", items)
}

pub async fn get_webhook(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let hook = state
        .webhooks
        .get(&id)
        .filter(|hook| hook.account_id == caller.account_id)
        .ok_or_else(|| ApiError::not_found("webhook", &id))?;
    Ok(Json(hook.to_json(false)))
}

pub async fn delete_webhook(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut state = sim.lock();
    state
        .webhooks
        .get(&id)
        .filter(|hook| hook.account_id == caller.account_id)
        .ok_or_else(|| ApiError::not_found("webhook", &id))?;
    state.webhooks.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_time_dot_body() {
        let header = signature_header("secret", 1_700_000_000, "{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"1700000000.{}");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
    }
}
