//! Gigs JSON as it appears on the wire, its translation into neutral types, and the signed
//! `com.gigs.*` events. Names the simulator had to guess are marked [ext].

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::lines::activation_code::ActivationCode;
use crate::lines::iccid::Iccid;
use crate::money::{Currency, Money};
use crate::provider::oneglobal::wire::{bad_field, optional_timestamp, timestamp};
use crate::provider::usage_chunks::chunks;
use crate::provider::{
    ListedSubscription, Operation, OperationStatus, PlanKind, ProfileState, ProviderError,
    ProviderEvent, ProviderPlan, Roaming, SimProfile, SubscriptionSnapshot, SubscriptionState,
    UsageRecord, Validity, WebhookError,
};

/// `{"object":"list","items":[…],"moreItemsAfter":"<id>"|null}`
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct List<T> {
    pub(crate) items: Vec<T>,
    #[serde(default)]
    pub(crate) more_items_after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Price {
    amount: i64,
    currency: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Allowances {
    #[serde(default)]
    data_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct Coverage {
    #[serde(default)]
    countries: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PlanWire {
    id: String,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    allowances: Allowances,
    #[serde(default)]
    coverage: Coverage,
    #[serde(default)]
    price: Option<Price>,
}

impl PlanWire {
    /// Plans a project may no longer sell are left out.
    pub(crate) fn is_available(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "available")
    }

    pub(crate) fn into_plan(self) -> Result<ProviderPlan, ProviderError> {
        let price = self
            .price
            .map(|p| {
                Currency::parse(&p.currency)
                    .map(|currency| Money::new(p.amount, currency))
                    .map_err(|e| bad_field("plan.price.currency", e))
            })
            .transpose()?;
        Ok(ProviderPlan {
            offering_id: self.id,
            template_id: None,
            name: self.name,
            kind: PlanKind::Base,
            data_bytes: self.allowances.data_bytes,
            validity: Validity::Monthly,
            coverage: self.coverage.countries,
            price,
            throttle_after_cap_kbps: None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct User {
    pub(crate) id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SimWire {
    pub(crate) id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionWire {
    pub(crate) id: String,
    status: String,
    pub(crate) sim: Option<SimWire>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    activated_at: Option<String>,
}

impl SubscriptionWire {
    fn state(&self) -> Result<SubscriptionState, ProviderError> {
        subscription_state(&self.status)
    }

    /// As the operation that provisioned it: settled once active; an end before activation
    /// means the order failed.
    pub(crate) fn into_operation(self) -> Result<Operation, ProviderError> {
        let status = match (self.state()?, &self.activated_at) {
            (SubscriptionState::Pending, _) => OperationStatus::Pending,
            (SubscriptionState::Terminated, None) => OperationStatus::Failed {
                code: "ended".into(),
                message: "the subscription ended before it was activated".into(),
            },
            _ => OperationStatus::Succeeded,
        };
        Ok(Operation {
            subscription_id: Some(self.id.clone()),
            id: self.id,
            status,
        })
    }

    pub(crate) fn into_snapshot(self) -> Result<SubscriptionSnapshot, ProviderError> {
        Ok(SubscriptionSnapshot {
            state: self.state()?,
            created_at: optional_timestamp("subscription.createdAt", self.created_at.as_deref())?,
            id: self.id,
        })
    }

    pub(crate) fn into_listed(self) -> Result<ListedSubscription, ProviderError> {
        let reference = self.metadata["reference"].as_str().map(str::to_owned);
        Ok(ListedSubscription {
            state: self.state()?,
            created_at: optional_timestamp("subscription.createdAt", self.created_at.as_deref())?,
            id: self.id,
            reference,
        })
    }
}

/// Gigs has no suspended state: a line is pending, running or ended.
fn subscription_state(status: &str) -> Result<SubscriptionState, ProviderError> {
    match status {
        "pending" | "initiated" => Ok(SubscriptionState::Pending),
        "active" => Ok(SubscriptionState::Active),
        "ended" => Ok(SubscriptionState::Terminated),
        other => Err(bad_field(
            "subscription.status",
            format!("unknown status {other:?}"),
        )),
    }
}

/// A plan change (`sch_…`) or a porting (`prt_…`).
#[derive(Debug, Deserialize)]
pub(crate) struct PendingWire {
    id: String,
    subscription: String,
    status: String,
}

impl PendingWire {
    pub(crate) fn into_operation(self) -> Result<Operation, ProviderError> {
        let status = match self.status.as_str() {
            "pending" | "requested" | "initiated" => OperationStatus::Pending,
            "applied" | "completed" => OperationStatus::Succeeded,
            "failed" | "canceled" | "declined" => OperationStatus::Failed {
                code: self.status.clone(),
                message: format!("the provider reports {} as {}", self.id, self.status),
            },
            other => return Err(bad_field("status", format!("unknown status {other:?}"))),
        };
        Ok(Operation {
            id: self.id,
            status,
            subscription_id: Some(self.subscription),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileWire {
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CredentialsWire {
    iccid: String,
    activation_code: String,
    #[serde(default)]
    qr_code_url: Option<String>,
    #[serde(default)]
    e_sim_profile: Option<ProfileWire>,
}

impl CredentialsWire {
    pub(crate) fn into_profile(self) -> Result<SimProfile, ProviderError> {
        let state = match self.e_sim_profile.as_ref().map(|p| p.status.as_str()) {
            Some("installed") => ProfileState::Installed,
            Some("enabled") => ProfileState::Enabled,
            Some("disabled") => ProfileState::Disabled,
            Some("deleted") => ProfileState::Deleted,
            // Only some carriers report the profile; an unreported one is still downloadable.
            _ => ProfileState::Released,
        };
        Ok(SimProfile {
            iccid: Iccid::parse(&self.iccid).map_err(|e| bad_field("simCredentials.iccid", e))?,
            eid: None,
            state,
            activation_code: ActivationCode::parse(&self.activation_code)
                .map_err(|e| bad_field("simCredentials.activationCode", e))?,
            confirmation_code: None,
            qr_code_url: self.qr_code_url,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PortOutWire {
    pub(crate) phone_number: String,
    pub(crate) code: String,
    pub(crate) expires_at: String,
}

impl PortOutWire {
    pub(crate) fn expires_at(&self) -> Result<OffsetDateTime, ProviderError> {
        timestamp("portOutAuthorization.expiresAt", &self.expires_at)
    }
}

#[derive(Debug, Deserialize)]
struct Labels {
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    roaming: Option<String>,
    subscription: String,
}

/// A daily aggregate: the window's total so far, re-read as it grows.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageRecordWire {
    data: i64,
    #[serde(default)]
    sms: i64,
    #[serde(default)]
    voice: i64,
    start: String,
    end: String,
    updated_at: String,
    labels: Labels,
}

impl UsageRecordWire {
    /// The window's usage as chunk records (see `usage_chunks`); SMS and voice ride on the
    /// first record of a closed window.
    pub(crate) fn into_records(
        self,
        now: OffsetDateTime,
    ) -> Result<Vec<UsageRecord>, ProviderError> {
        let started_at = timestamp("usageRecord.start", &self.start)?;
        let ended_at = timestamp("usageRecord.end", &self.end)?;
        let observed_at = timestamp("usageRecord.updatedAt", &self.updated_at)?;
        let closed = ended_at <= now;
        let roaming = match self.labels.roaming.as_deref() {
            Some("none" | "domestic") => Roaming::None,
            Some("international") => Roaming::International,
            _ => Roaming::Unknown,
        };
        let country = self.labels.country.filter(|c| !c.is_empty());
        let series = format!(
            "{}:{}:{}:{}",
            self.labels.subscription,
            started_at.date(),
            country.as_deref().unwrap_or("-"),
            self.labels.roaming.as_deref().unwrap_or("-"),
        );
        let mut parts = chunks(self.data, closed);
        if closed && parts.is_empty() && (self.sms > 0 || self.voice > 0) {
            parts.push(("rest".into(), 0));
        }
        let records = parts
            .into_iter()
            .enumerate()
            .map(|(i, (part, data_bytes))| {
                let first_of_closed = closed && i == 0;
                UsageRecord {
                    dedupe_key: format!("{series}:{part}"),
                    subscription_id: self.labels.subscription.clone(),
                    started_at,
                    ended_at,
                    data_bytes,
                    sms: if first_of_closed { self.sms } else { 0 },
                    voice_seconds: if first_of_closed { self.voice } else { 0 },
                    country: country.clone(),
                    roaming,
                    in_bundle: None,
                    observed_at,
                }
            })
            .collect();
        Ok(records)
    }
}

// ---------------------------------------------------------------- events

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// One `com.gigs.*` event into the neutral events it stands for.
pub(crate) fn normalise(body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Gigs event: {e}")))?;
    let data = &event.data;
    let text = |key: &str| {
        data[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| WebhookError::Malformed(format!("data.{key} is missing")))
    };
    let settled = |id: String| ProviderEvent::OperationSettled {
        operation_id: id,
        status: OperationStatus::Succeeded,
    };
    let events = match event.kind.as_str() {
        "com.gigs.subscription.activated" => {
            let id = text("id")?;
            vec![
                settled(id.clone()),
                ProviderEvent::SubscriptionStateChanged {
                    subscription_id: id,
                    to: SubscriptionState::Active,
                },
            ]
        }
        "com.gigs.subscription.ended" => vec![ProviderEvent::SubscriptionStateChanged {
            subscription_id: text("id")?,
            to: SubscriptionState::Terminated,
        }],
        "com.gigs.subscriptionChange.applied" | "com.gigs.porting.completed" => {
            vec![settled(text("id")?)]
        }
        "com.gigs.usageThreshold.exceeded" => {
            let percent = data["threshold"]["percentage"]
                .as_u64()
                .and_then(|p| u8::try_from(p).ok())
                .ok_or_else(|| {
                    WebhookError::Malformed("data.threshold.percentage is missing".into())
                })?;
            vec![ProviderEvent::UsageThresholdReached {
                subscription_id: text("subscription")?,
                percent,
            }]
        }
        other => {
            return Err(WebhookError::Malformed(format!(
                "unknown event type {other:?}"
            )));
        }
    };
    Ok(events)
}
