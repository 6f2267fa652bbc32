//! Airalo JSON as it appears on the wire (answers wrapped in `data`, lists paged by
//! `links.next`), its translation into neutral types, and the low-data webhooks.
//! Names the simulator had to guess are marked [ext].

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha512;

use crate::lines::activation_code::ActivationCode;
use crate::lines::iccid::Iccid;
use crate::money::{Currency, Money};
use crate::provider::oneglobal::wire::{bad_field, optional_timestamp};
use crate::provider::{
    ListedSubscription, Operation, OperationStatus, PlanKind, ProfileState, ProviderError,
    ProviderEvent, ProviderPlan, SimProfile, SubscriptionSnapshot, SubscriptionState, Validity,
    WebhookError,
};

/// Every answer: `{"data": …, "meta": {"message"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: Option<String>,
}

/// A list answer: `{"data": […], "links": {"next": "<url>"|null}, "meta": {…}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Listing<T> {
    pub(crate) data: Vec<T>,
    #[serde(default)]
    pub(crate) links: Links,
}

#[derive(Debug, Deserialize)]
struct CountryCode {
    country_code: String,
}

#[derive(Debug, Deserialize)]
struct PackageWire {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    price: f64,
    amount: i64,
    day: u16,
    #[serde(default)]
    is_unlimited: bool,
}

#[derive(Debug, Deserialize)]
struct OperatorWire {
    #[serde(default)]
    countries: Vec<CountryCode>,
    packages: Vec<PackageWire>,
}

/// A country (or region) with its operators and their packages.
#[derive(Debug, Deserialize)]
pub(crate) struct CountryWire {
    title: String,
    operators: Vec<OperatorWire>,
}

const MIB: i64 = 1024 * 1024;

impl CountryWire {
    /// Every package as a plan: `amount` MB for `day` days, in the operator's countries.
    pub(crate) fn into_plans(self) -> Result<Vec<ProviderPlan>, ProviderError> {
        let usd = Currency::parse("USD").map_err(|e| bad_field("currency", e))?;
        let mut plans = Vec::new();
        for operator in self.operators {
            let coverage: Vec<String> = operator
                .countries
                .into_iter()
                .map(|c| c.country_code)
                .collect();
            for package in operator.packages {
                let price = usd
                    .parse_amount(&format!("{:.2}", package.price))
                    .ok_or_else(|| bad_field("package.price", package.price))?;
                plans.push(ProviderPlan {
                    name: format!("{} {}", self.title, package.title),
                    template_id: None,
                    kind: if package.kind == "topup" {
                        PlanKind::TopUp
                    } else {
                        PlanKind::Base
                    },
                    data_bytes: (!package.is_unlimited).then_some(package.amount * MIB),
                    validity: Validity::Days(package.day),
                    coverage: coverage.clone(),
                    price: Some(Money::new(price, usd)),
                    throttle_after_cap_kbps: None,
                    offering_id: package.id,
                });
            }
        }
        Ok(plans)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SimWire {
    pub(crate) iccid: String,
    qrcode: String,
    #[serde(default)]
    qrcode_url: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    simable: Option<Simable>,
}

/// The order a SIM came from, as `GET /sims` embeds it.
#[derive(Debug, Deserialize)]
pub(crate) struct Simable {
    pub(crate) package_id: String,
    #[serde(default)]
    description: Option<String>,
}

impl SimWire {
    pub(crate) fn package_id(&self) -> Option<&str> {
        self.simable.as_ref().map(|s| s.package_id.as_str())
    }

    /// Airalo does not report install progress: a sold eSIM is downloadable until used.
    pub(crate) fn into_profile(self) -> Result<SimProfile, ProviderError> {
        Ok(SimProfile {
            iccid: Iccid::parse(&self.iccid).map_err(|e| bad_field("sim.iccid", e))?,
            eid: None,
            state: ProfileState::Released,
            activation_code: ActivationCode::parse(&self.qrcode)
                .map_err(|e| bad_field("sim.qrcode", e))?,
            confirmation_code: None,
            qr_code_url: self.qrcode_url,
        })
    }

    /// A travel eSIM has no suspend or end: once sold it is active until it runs out.
    pub(crate) fn into_snapshot(self) -> Result<SubscriptionSnapshot, ProviderError> {
        Ok(SubscriptionSnapshot {
            state: SubscriptionState::Active,
            created_at: optional_timestamp("sim.created_at", self.created_at.as_deref())?,
            id: self.iccid,
        })
    }

    pub(crate) fn into_listed(self) -> Result<ListedSubscription, ProviderError> {
        let reference = self
            .simable
            .as_ref()
            .and_then(|s| s.description.as_deref())
            .and_then(reference_of);
        Ok(ListedSubscription {
            state: SubscriptionState::Active,
            created_at: optional_timestamp("sim.created_at", self.created_at.as_deref())?,
            id: self.iccid,
            reference,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrderWire {
    id: u64,
    #[serde(default)]
    sims: Vec<SimWire>,
}

impl OrderWire {
    /// Orders are synchronous: an order with its eSIM is done.
    pub(crate) fn into_operation(self) -> Result<Operation, ProviderError> {
        let iccid = self
            .sims
            .into_iter()
            .next()
            .map(|sim| sim.iccid)
            .ok_or_else(|| bad_field("order.sims", "the order has no eSIM"))?;
        Ok(Operation {
            id: self.id.to_string(),
            status: OperationStatus::Succeeded,
            subscription_id: Some(iccid),
        })
    }
}

/// Airalo has no idempotency key; the order's `description` carries ours, so a retry can
/// find the order an earlier attempt placed. The line's reference rides along.
pub(crate) fn order_description(key: &str, reference: Option<&str>) -> String {
    match reference {
        Some(reference) => format!("lineup {key} ref {reference}"),
        None => format!("lineup {key}"),
    }
}

fn reference_of(description: &str) -> Option<String> {
    let mut words = description.split_whitespace();
    (words.next() == Some("lineup")).then_some(())?;
    let _key = words.next()?;
    (words.next() == Some("ref")).then_some(())?;
    words.next().map(str::to_owned)
}

/// `GET /sims/{iccid}/usage`: the package's balance in MB.
#[derive(Debug, Deserialize)]
pub(crate) struct UsageWire {
    pub(crate) remaining: i64,
    pub(crate) total: i64,
    #[serde(default)]
    pub(crate) is_unlimited: bool,
    pub(crate) status: String,
}

impl UsageWire {
    pub(crate) fn used_bytes(&self) -> i64 {
        (self.total - self.remaining).max(0) * MIB
    }

    /// Finished or expired packages use no more: their total is final.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "FINISHED" | "EXPIRED")
    }
}

/// `airalo-signature`: hex HMAC-SHA512 of the raw body (no timestamp: replays are caught by
/// the events' idempotent handling, not by age).
pub(crate) fn verify(
    secret: Option<&str>,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let signature = hex::decode(header.trim()).map_err(|_| WebhookError::BadSignature)?;
    let secret = secret.ok_or(WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::BadSignature)
}

/// Low-data notifications at a share of the allowance become thresholds; the day-based
/// levels and credit-limit notices have no neutral event and are accepted and dropped.
pub(crate) fn normalise(body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
    if let Some(level) = value["level"].as_str() {
        let iccid = value["iccid"]
            .as_str()
            .ok_or_else(|| WebhookError::Malformed("iccid is missing".into()))?;
        if let Some(percent) = level.strip_suffix('%') {
            let percent = percent
                .parse::<u8>()
                .map_err(|_| WebhookError::Malformed(format!("unknown level {level:?}")))?;
            return Ok(vec![ProviderEvent::UsageThresholdReached {
                subscription_id: iccid.to_owned(),
                percent,
            }]);
        }
        if level.ends_with("days") {
            return Ok(Vec::new());
        }
        return Err(WebhookError::Malformed(format!("unknown level {level:?}")));
    }
    if value.get("credit_limit").is_some() || value["type"] == "credit_limit" {
        return Ok(Vec::new());
    }
    Err(WebhookError::Malformed(
        "neither a low-data nor a credit-limit notification".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_rides_in_the_description() {
        let text = order_description("k-1", Some("line-9"));
        assert_eq!(reference_of(&text).as_deref(), Some("line-9"));
        assert_eq!(reference_of(&order_description("k-1", None)), None);
        assert_eq!(reference_of("someone else's order"), None);
    }
}
