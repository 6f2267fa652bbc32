//! The vendor's JSON, as it appears on the wire, and its translation into neutral types.
//! Field names that are simulator guesses (§5.2 "[ext]") live only here.

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lines::activation_code::ActivationCode;
use crate::lines::eid::Eid;
use crate::lines::iccid::Iccid;
use crate::money::{Currency, Money};
use crate::provider::{
    ListedSubscription, Operation, OperationStatus, PlanKind, PortingAuthorisation, ProfileState,
    ProviderError, ProviderPlan, Roaming, SimProfile, SubscriptionSnapshot, SubscriptionState,
    UsageRecord, Validity,
};

/// A vendor answer we could parse as JSON but whose `field` makes no sense.
pub(crate) fn bad_field(field: &str, reason: impl std::fmt::Display) -> ProviderError {
    ProviderError::Protocol {
        status: 200,
        body: format!("field `{field}`: {reason}"),
    }
}

pub(crate) fn timestamp(field: &str, value: &str) -> Result<OffsetDateTime, ProviderError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| bad_field(field, format!("{value:?}: {e}")))
}

pub(crate) fn optional_timestamp(
    field: &str,
    value: Option<&str>,
) -> Result<Option<OffsetDateTime>, ProviderError> {
    value.map(|v| timestamp(field, v)).transpose()
}

// ---------------------------------------------------------------- HAL paging

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Link {
    pub(crate) href: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: Option<Link>,
    #[serde(default)]
    pub(crate) subscription: Option<Link>,
}

/// `{"_links":{"next":{"href"}},"_embedded":{"<plural>":[…]}}`
#[derive(Debug, Deserialize)]
pub(crate) struct HalPage {
    #[serde(default, rename = "_links")]
    pub(crate) links: Links,
    #[serde(default, rename = "_embedded")]
    embedded: Map<String, Value>,
}

impl HalPage {
    /// The embedded list under `key`, or the only list embedded when the name differs.
    pub(crate) fn items<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut lists = self.embedded.iter().filter(|(_, v)| v.is_array());
        let list = match self.embedded.get(key) {
            Some(list) => list,
            None => match (lists.next(), lists.next()) {
                (Some((_, only)), None) => only,
                (None, _) => return Ok(Vec::new()),
                _ => return Err(bad_field("_embedded", format!("no `{key}` list"))),
            },
        };
        Vec::<T>::deserialize(list).map_err(|e| bad_field(&format!("_embedded.{key}"), e))
    }

    pub(crate) fn next_href(&self) -> Option<&str> {
        self.links
            .next
            .as_ref()
            .map(|l| l.href.as_str())
            .filter(|h| !h.is_empty())
    }
}

// ---------------------------------------------------------------- porting

/// `{"subscription_id","msisdn","pac","issued_at","expires_at"}` [ext].
#[derive(Debug, Deserialize)]
pub(crate) struct PortOutWire {
    msisdn: String,
    pac: String,
    expires_at: String,
}

impl PortOutWire {
    pub(crate) fn into_authorisation(self) -> Result<PortingAuthorisation, ProviderError> {
        if self.msisdn.trim().is_empty() || self.pac.trim().is_empty() {
            return Err(bad_field("pac", "the number or the code is empty"));
        }
        Ok(PortingAuthorisation {
            msisdn: self.msisdn,
            code: self.pac,
            expires_at: timestamp("expires_at", &self.expires_at)?,
        })
    }
}

// ---------------------------------------------------------------- orders

#[derive(Debug, Deserialize)]
pub(crate) struct OrderWire {
    id: String,
    status: String,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    failure: Option<FailureWire>,
}

#[derive(Debug, Default, Deserialize)]
struct FailureWire {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl OrderWire {
    pub(crate) fn into_operation(self) -> Result<Operation, ProviderError> {
        let status = match self.status.to_ascii_lowercase().as_str() {
            "pending" | "accepted" | "processing" | "in_progress" => OperationStatus::Pending,
            "completed" => OperationStatus::Succeeded,
            "canceled" | "cancelled" | "failed" => {
                let failure = self.failure.unwrap_or_default();
                OperationStatus::Failed {
                    code: failure.code.unwrap_or_else(|| "CANCELED".into()),
                    message: failure.message.unwrap_or_default(),
                }
            }
            other => {
                return Err(bad_field(
                    "order.status",
                    format!("unknown status {other:?}"),
                ));
            }
        };
        Ok(Operation {
            id: self.id,
            status,
            subscription_id: self.subscription_id,
        })
    }
}

// ---------------------------------------------------------------- subscriptions

#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionWire {
    id: String,
    status: String,
    #[serde(default)]
    created_at: Option<String>,
    /// The reference our order carried; echoed by the simulator (an [ext] field there).
    #[serde(default)]
    external_reference: Option<String>,
}

impl SubscriptionWire {
    pub(crate) fn into_listed(self) -> Result<ListedSubscription, ProviderError> {
        Ok(ListedSubscription {
            state: subscription_state("subscription.status", &self.status)?,
            created_at: optional_timestamp("subscription.created_at", self.created_at.as_deref())?,
            reference: self.external_reference.filter(|r| !r.is_empty()),
            id: self.id,
        })
    }

    pub(crate) fn into_snapshot(self) -> Result<SubscriptionSnapshot, ProviderError> {
        Ok(SubscriptionSnapshot {
            state: subscription_state("subscription.status", &self.status)?,
            created_at: optional_timestamp("subscription.created_at", self.created_at.as_deref())?,
            id: self.id,
        })
    }
}

pub(crate) fn subscription_state(
    field: &str,
    status: &str,
) -> Result<SubscriptionState, ProviderError> {
    Ok(match status.to_ascii_lowercase().as_str() {
        "pending" => SubscriptionState::Pending,
        "active" => SubscriptionState::Active,
        "suspended" => SubscriptionState::Suspended,
        "terminated" => SubscriptionState::Terminated,
        other => return Err(bad_field(field, format!("unknown status {other:?}"))),
    })
}

// ---------------------------------------------------------------- sim profile

#[derive(Debug, Deserialize)]
pub(crate) struct SimProfileWire {
    iccid: String,
    #[serde(default)]
    eid: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    activation_code: Option<String>,
    #[serde(default)]
    smdp_address: Option<String>,
    #[serde(default)]
    matching_id: Option<String>,
    #[serde(default)]
    confirmation_code: Option<String>,
    #[serde(default)]
    qr_code_url: Option<String>,
}

impl SimProfileWire {
    pub(crate) fn into_profile(self) -> Result<SimProfile, ProviderError> {
        let iccid = Iccid::parse(&self.iccid)
            .map_err(|e| bad_field("sim_profile.iccid", format!("{:?}: {e}", self.iccid)))?;
        let eid = match self.eid.as_deref().filter(|e| !e.is_empty()) {
            Some(raw) => Some(
                Eid::parse(raw)
                    .map_err(|e| bad_field("sim_profile.eid", format!("{raw:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(SimProfile {
            iccid,
            eid,
            state: self
                .status
                .as_deref()
                .map_or(ProfileState::Unknown, profile_state),
            activation_code: self.activation_code()?,
            confirmation_code: self.confirmation_code.filter(|c| !c.is_empty()),
            qr_code_url: self.qr_code_url,
        })
    }

    /// The LPA string, or the code rebuilt from its parts when only those are given.
    fn activation_code(&self) -> Result<ActivationCode, ProviderError> {
        let (field, text) = match (&self.activation_code, &self.smdp_address, &self.matching_id) {
            (Some(code), _, _) => ("sim_profile.activation_code", code.clone()),
            (None, Some(smdp), Some(id)) => ("sim_profile.matching_id", format!("1${smdp}${id}")),
            _ => return Err(bad_field("sim_profile.activation_code", "missing")),
        };
        ActivationCode::parse(&text).map_err(|e| bad_field(field, e.without_values()))
    }
}

pub(crate) fn profile_state(status: &str) -> ProfileState {
    match status.to_ascii_lowercase().as_str() {
        "released" => ProfileState::Released,
        "downloaded" => ProfileState::Downloaded,
        "installed" => ProfileState::Installed,
        "enabled" => ProfileState::Enabled,
        "disabled" => ProfileState::Disabled,
        "deleted" => ProfileState::Deleted,
        "error" => ProfileState::Error,
        _ => ProfileState::Unknown,
    }
}

// ---------------------------------------------------------------- catalogue

#[derive(Debug, Deserialize)]
pub(crate) struct TemplateWire {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) product_offering_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OfferingWire {
    id: String,
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    allowances: AllowancesWire,
    #[serde(default)]
    throttle: Option<ThrottleWire>,
    #[serde(default)]
    price: Option<PriceWire>,
    #[serde(default)]
    recurrence: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AllowancesWire {
    #[serde(default)]
    data_bytes: Option<i64>,
    #[serde(default)]
    validity: Option<ValidityWire>,
    #[serde(default)]
    coverage_countries: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ValidityWire {
    unit: String,
    value: u16,
}

#[derive(Debug, Deserialize)]
struct ThrottleWire {
    #[serde(default)]
    after_cap_kbps: Option<u32>,
}

/// Minor units of `currency`.
#[derive(Debug, Deserialize)]
struct PriceWire {
    amount: i64,
    currency: String,
}

impl OfferingWire {
    pub(crate) fn into_plan(
        self,
        templates: &[TemplateWire],
    ) -> Result<ProviderPlan, ProviderError> {
        let template_id = templates
            .iter()
            .find(|t| t.product_offering_ids.contains(&self.id))
            .map(|t| t.id.clone());
        let price = match self.price {
            Some(p) => Some(Money::new(
                p.amount,
                Currency::parse(&p.currency)
                    .map_err(|e| bad_field("product_offering.price.currency", e))?,
            )),
            None => None,
        };
        Ok(ProviderPlan {
            kind: plan_kind(self.kind.as_deref()),
            validity: validity(
                self.allowances.validity.as_ref(),
                self.recurrence.as_deref(),
            )?,
            data_bytes: self.allowances.data_bytes,
            coverage: self.allowances.coverage_countries,
            throttle_after_cap_kbps: self.throttle.and_then(|t| t.after_cap_kbps),
            offering_id: self.id,
            template_id,
            name: self.name,
            price,
        })
    }
}

fn plan_kind(kind: Option<&str>) -> PlanKind {
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("addon" | "add_on" | "topup" | "top_up") => PlanKind::TopUp,
        _ => PlanKind::Base,
    }
}

fn validity(v: Option<&ValidityWire>, recurrence: Option<&str>) -> Result<Validity, ProviderError> {
    let Some(v) = v else {
        return match recurrence {
            Some("monthly") | None => Ok(Validity::Monthly),
            Some(other) => Err(bad_field(
                "product_offering.validity",
                format!("missing for {other:?}"),
            )),
        };
    };
    match (v.unit.to_ascii_lowercase().trim_end_matches('s'), v.value) {
        ("month", 1) => Ok(Validity::Monthly),
        ("day", days) => Ok(Validity::Days(days)),
        ("week", weeks) => Ok(Validity::Days(weeks.saturating_mul(7))),
        (unit, value) => Err(bad_field(
            "product_offering.allowances.validity",
            format!("unsupported {value} {unit}"),
        )),
    }
}

// ---------------------------------------------------------------- usage

#[derive(Debug, Deserialize)]
pub(crate) struct UsageItemWire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    quantity: i64,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    cost_type: Option<String>,
    #[serde(default)]
    location_country: Option<String>,
    #[serde(default)]
    roaming: Option<bool>,
    #[serde(default)]
    subscription_id: Option<String>,
    processed_at: String,
    started_at: String,
    ended_at: String,
    #[serde(default, rename = "_links")]
    links: Links,
}

impl UsageItemWire {
    pub(crate) fn into_record(self) -> Result<UsageRecord, ProviderError> {
        let subscription_id = self.subscription_id().ok_or_else(|| {
            bad_field(
                "usage_item.subscription_id",
                format!("item {} names no subscription", self.id),
            )
        })?;
        let (data_bytes, sms, voice_seconds) = self.quantities()?;
        Ok(UsageRecord {
            subscription_id,
            started_at: timestamp("usage_item.started_at", &self.started_at)?,
            ended_at: timestamp("usage_item.ended_at", &self.ended_at)?,
            observed_at: timestamp("usage_item.processed_at", &self.processed_at)?,
            data_bytes,
            sms,
            voice_seconds,
            country: self.location_country.filter(|c| !c.is_empty()),
            roaming: match self.roaming {
                Some(true) => Roaming::International,
                Some(false) => Roaming::None,
                None => Roaming::Unknown,
            },
            in_bundle: match self.cost_type.as_deref() {
                Some("in_bundle" | "throttled") => Some(true),
                Some("out_of_bundle" | "overage" | "payg") => Some(false),
                _ => None,
            },
            dedupe_key: self.id,
        })
    }

    fn subscription_id(&self) -> Option<String> {
        self.subscription_id.clone().or_else(|| {
            let href = &self.links.subscription.as_ref()?.href;
            href.trim_end_matches('/')
                .rsplit('/')
                .next()
                .map(str::to_owned)
        })
    }

    /// (data bytes, sms, voice seconds) from `type`, `quantity` and `unit`.
    fn quantities(&self) -> Result<(i64, i64, i64), ProviderError> {
        let q = self.quantity;
        let unit = self.unit.as_deref().map(str::to_ascii_lowercase);
        Ok(match (self.kind.as_str(), unit.as_deref()) {
            ("data", None | Some("bytes" | "byte" | "b")) => (q, 0, 0),
            ("data", Some("kb" | "kib")) => (q * 1024, 0, 0),
            ("data", Some("mb" | "mib")) => (q * 1024 * 1024, 0, 0),
            ("sms", _) => (0, q, 0),
            ("voice", None | Some("seconds" | "second" | "s")) => (0, 0, q),
            ("voice", Some("minutes" | "minute" | "min")) => (0, 0, q * 60),
            (kind, unit) => {
                return Err(bad_field(
                    "usage_item.type",
                    format!("unsupported {kind:?} in {unit:?}"),
                ));
            }
        })
    }
}
