//! Webhook verification (`X-Sim-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>`)
//! and normalisation of the event envelope `{"id","type","occurred_at","data":{…}}`.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use time::OffsetDateTime;

use super::wire::{profile_state, subscription_state};
use crate::provider::{OperationStatus, ProfileState, ProviderEvent, WebhookError};

/// Events older or newer than this (against `now`) are refused as replays.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

/// Checks the signature header over the raw body, then the timestamp window.
pub(crate) fn verify(
    secret: Option<&str>,
    header: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let (timestamp, signatures) = parse_header(header).ok_or(WebhookError::BadSignature)?;
    let secret = secret.ok_or(WebhookError::BadSignature)?;
    let matches = signatures.iter().any(|sig| {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    let sent_at: i64 = timestamp.parse().map_err(|_| WebhookError::BadSignature)?;
    if (now.unix_timestamp() - sent_at).abs() > SIGNATURE_TOLERANCE_S {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// `t=<unix>,v1=<hex>[,v1=<hex>…]` into the timestamp text and the decoded signatures.
fn parse_header(header: &str) -> Option<(&str, Vec<Vec<u8>>)> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                timestamp = Some(t)
            }
            Some(("v1", hex_sig)) => signatures.push(hex::decode(hex_sig).ok()?),
            _ => {}
        }
    }
    Some((timestamp?, signatures)).filter(|(_, s)| !s.is_empty())
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// One envelope, or a batch of them.
pub(crate) fn normalise(body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    let envelopes = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    envelopes
        .into_iter()
        .map(|v| {
            let envelope: Envelope = serde_json::from_value(v)
                .map_err(|e| WebhookError::Malformed(format!("not an event envelope: {e}")))?;
            event(&envelope)
        })
        .collect()
}

fn event(envelope: &Envelope) -> Result<ProviderEvent, WebhookError> {
    let data = &envelope.data;
    let event = match envelope.kind.as_str() {
        "order.completed" => ProviderEvent::OperationSettled {
            operation_id: order_id(data)?,
            status: OperationStatus::Succeeded,
        },
        "order.canceled" | "order.cancelled" => ProviderEvent::OperationSettled {
            operation_id: order_id(data)?,
            status: OperationStatus::Failed {
                code: text_at(data, &["failure", "code"])
                    .unwrap_or("CANCELED")
                    .to_owned(),
                message: text_at(data, &["failure", "message"])
                    .unwrap_or_default()
                    .to_owned(),
            },
        },
        "subscription.status_changed" => ProviderEvent::SubscriptionStateChanged {
            subscription_id: required(data, "subscription_id")?,
            to: subscription_state("data.to", &required(data, "to")?)
                .map_err(|e| WebhookError::Malformed(e.to_string()))?,
        },
        "sim_profile.download_progress" => ProviderEvent::ProfileStateChanged {
            iccid: required(data, "iccid")?,
            state: download_progress_state(data),
        },
        "usage.threshold_reached" => ProviderEvent::UsageThresholdReached {
            subscription_id: required(data, "subscription_id")?,
            percent: threshold_percent(data)?,
        },
        // An expired one-time product leaves the line without allowance, like a depleted one.
        "product.depleted" | "product.expired" => ProviderEvent::AllowanceExhausted {
            subscription_id: required(data, "subscription_id")?,
        },
        other => {
            return Err(WebhookError::Malformed(format!(
                "unknown event type {other:?}"
            )));
        }
    };
    Ok(event)
}

/// The profile status when the event names it, else the ES2+ download-progress step reached.
fn download_progress_state(data: &Value) -> ProfileState {
    if let Some(status) = text_at(data, &["profile_status"]) {
        return profile_state(status);
    }
    if text_at(data, &["status"]).is_some_and(|s| s.eq_ignore_ascii_case("failure")) {
        return ProfileState::Error;
    }
    match text_at(data, &["step"])
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("BPP_DOWNLOAD") => ProfileState::Downloaded,
        Some("BPP_INSTALLATION") => ProfileState::Installed,
        Some("DELETED") => ProfileState::Deleted,
        _ => ProfileState::Unknown,
    }
}

fn threshold_percent(data: &Value) -> Result<u8, WebhookError> {
    ["threshold_pct", "threshold", "percent"]
        .iter()
        .find_map(|k| data.get(*k).and_then(Value::as_u64))
        .and_then(|p| u8::try_from(p).ok())
        .ok_or_else(|| WebhookError::Malformed("data.threshold_pct is missing".into()))
}

/// Order events carry the order itself (`data.id`) or a reference (`data.order_id`).
fn order_id(data: &Value) -> Result<String, WebhookError> {
    text_at(data, &["order_id"])
        .or_else(|| text_at(data, &["id"]))
        .map(str::to_owned)
        .ok_or_else(|| WebhookError::Malformed("data.id (the order id) is missing".into()))
}

fn required(data: &Value, key: &str) -> Result<String, WebhookError> {
    text_at(data, &[key])
        .map(str::to_owned)
        .ok_or_else(|| WebhookError::Malformed(format!("data.{key} is missing")))
}

fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, k| v.get(*k))?.as_str()
}
