//! Domain records held by the simulator and their JSON representations.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::clock::{rfc3339, rfc3339_opt};

#[derive(Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub country: String,
    pub status: String,
}

#[derive(Serialize, Deserialize)]
pub struct Subscriber {
    pub id: String,
    pub account_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub employee_id: Option<String>,
    pub group: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct OrderTemplate {
    pub id: String,
    /// Empty in state files written before accounts had their own catalogues.
    #[serde(default)]
    pub account_id: String,
    pub name: String,
    pub product_offering_ids: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferingType {
    Plan,
    Addon,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recurrence {
    Monthly,
    OneTime,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Offering {
    pub id: String,
    /// Empty in state files written before accounts had their own catalogues.
    #[serde(default)]
    pub account_id: String,
    pub name: String,
    pub kind: OfferingType,
    pub status: String,
    pub data_bytes: Option<u64>,
    pub voice_seconds: Option<u64>,
    pub sms: Option<u64>,
    pub validity_months: u32,
    pub coverage_countries: Vec<String>,
    pub throttle_kbps: Option<u32>,
    pub price_minor: Option<u64>,
    pub currency: String,
    pub recurrence: Recurrence,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    ActivateSubscription,
    SuspendSubscription,
    ResumeSubscription,
    TerminateSubscription,
    ChangePlan,
    AddProduct,
    ChangeSimProfile,
    /// [ext] Cap the line's data speed (`max_kbps`), or lift the cap (`max_kbps: null`).
    SetSpeedLimit,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Completed,
    Canceled,
}

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub kind: OrderType,
    pub status: OrderStatus,
    pub account_id: String,
    pub subscription_id: Option<String>,
    /// The submitted body, echoed back in every representation.
    pub request: Value,
    /// The offering the order will put in place (activate, change_plan, add_product).
    pub offering_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub canceled_at: Option<OffsetDateTime>,
    pub failure: Option<Failure>,
    /// Set by an order-level fault: the async step cancels with this code.
    pub forced_failure: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Pending,
    Active,
    Suspended,
    Terminated,
}

#[derive(Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub account_id: String,
    pub subscriber_id: String,
    pub status: SubscriptionStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub suspended_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub terminated_at: Option<OffsetDateTime>,
    #[serde(with = "crate::persist::period")]
    pub current_period: Option<(OffsetDateTime, OffsetDateTime)>,
    pub iccid: Option<String>,
    pub plan_product_id: Option<String>,
    /// A `change_plan` with `effective: next_period` waiting for the renewal.
    pub next_plan_offering_id: Option<String>,
    pub sim_request: Value,
    /// Set by a `set_speed_limit` order: data is served at most this fast.
    #[serde(default)]
    pub speed_limit_kbps: Option<u32>,
    /// **[ext]** The client's own reference from the `activate_subscription` order, echoed on
    /// the subscription so a client can match lines it lost track of. The research notes
    /// (esim-vendor-apis.md §5.1 rule 1 and §3.3 "store (provider, external_id) pairs") call for
    /// such an `external_ref`; 1GLOBAL's documented order body (§1.5) names none.
    #[serde(default)]
    pub external_reference: Option<String>,
    /// **[ext]** The porting authorisation issued for the subscription's number, if any: the
    /// code the subscriber gives their next operator to take the number away.
    #[serde(default)]
    pub port_out: Option<PortOut>,
}

/// **[ext]** A port-out authorisation (a UK PAC): valid until `expires_at`, asked for again
/// it is the same one.
#[derive(Clone, Serialize, Deserialize)]
pub struct PortOut {
    pub msisdn: String,
    pub code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl PortOut {
    pub fn to_json(&self, subscription_id: &str) -> Value {
        json!({
            "subscription_id": subscription_id,
            "msisdn": self.msisdn,
            "pac": self.code,
            "issued_at": rfc3339(self.issued_at),
            "expires_at": rfc3339(self.expires_at),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    Released,
    Downloaded,
    Installed,
    Enabled,
    Disabled,
    Deleted,
    Error,
}

#[derive(Serialize, Deserialize)]
pub struct SimProfile {
    pub iccid: String,
    pub subscription_id: String,
    pub eid: Option<String>,
    pub status: ProfileStatus,
    pub matching_id: String,
    pub confirmation_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub install_at: Option<OffsetDateTime>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Pending,
    Active,
    Depleted,
    Expired,
    Terminated,
}

#[derive(Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub account_id: String,
    pub subscription_id: String,
    pub offering_id: String,
    pub status: ProductStatus,
    pub allowance_bytes: Option<u64>,
    pub used_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub thresholds_fired: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
pub struct UsageItem {
    pub id: String,
    pub account_id: String,
    pub subscription_id: String,
    pub subscriber_id: String,
    pub product_id: Option<String>,
    pub kind: String,
    pub unit: String,
    pub quantity: u64,
    pub charged_quantity: u64,
    pub cost_type: String,
    pub location_country: String,
    pub roaming: bool,
    pub technology: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub processed_at: OffsetDateTime,
}

impl Account {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "country": self.country, "status": self.status,
            "_links": {"self": {"href": format!("/enterprise/accounts/{}", self.id)}},
        })
    }
}

impl Subscriber {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "account_id": self.account_id,
            "first_name": self.first_name, "last_name": self.last_name, "email": self.email,
            "employee_id": self.employee_id, "group": self.group,
            "_links": {"self": {"href": format!("/enterprise/subscribers/{}", self.id)}},
        })
    }
}

impl OrderTemplate {
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "product_offering_ids": self.product_offering_ids})
    }
}

impl OfferingType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Addon => "addon",
        }
    }
}

impl Recurrence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::OneTime => "one_time",
        }
    }
}

impl Offering {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind.as_str(),
            "status": self.status,
            "allowances": {
                "data_bytes": self.data_bytes,
                "voice_seconds": self.voice_seconds,
                "sms": self.sms,
                "validity": {"unit": "month", "value": self.validity_months},
                "coverage_countries": self.coverage_countries,
            },
            "throttle": self.throttle_kbps.map(|kbps| json!({"after_cap_kbps": kbps})),
            "price": self.price_minor.map(|amount| json!({"amount": amount, "currency": self.currency})),
            "recurrence": self.recurrence.as_str(),
        })
    }

    pub fn covers(&self, country: &str) -> bool {
        self.coverage_countries
            .iter()
            .any(|covered| covered.eq_ignore_ascii_case(country))
    }
}

impl OrderType {
    pub const ALL: [Self; 8] = [
        Self::ActivateSubscription,
        Self::SuspendSubscription,
        Self::ResumeSubscription,
        Self::TerminateSubscription,
        Self::ChangePlan,
        Self::AddProduct,
        Self::ChangeSimProfile,
        Self::SetSpeedLimit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActivateSubscription => "activate_subscription",
            Self::SuspendSubscription => "suspend_subscription",
            Self::ResumeSubscription => "resume_subscription",
            Self::TerminateSubscription => "terminate_subscription",
            Self::ChangePlan => "change_plan",
            Self::AddProduct => "add_product",
            Self::ChangeSimProfile => "change_sim_profile",
            Self::SetSpeedLimit => "set_speed_limit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl OrderStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Completed, Self::Canceled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Canceled => "canceled",
        }
    }
}

impl Order {
    pub fn to_json(&self) -> Value {
        let mut body = match &self.request {
            Value::Object(fields) => fields.clone(),
            _ => serde_json::Map::new(),
        };
        let href = format!("/enterprise/orders/{}", self.id);
        let fields = json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "status": self.status.as_str(),
            "account_id": self.account_id,
            "subscription_id": self.subscription_id,
            "created_at": rfc3339(self.created_at),
            "completed_at": rfc3339_opt(self.completed_at),
            "canceled_at": rfc3339_opt(self.canceled_at),
            "failure": self.failure.as_ref().map(|f| json!({"code": f.code, "message": f.message})),
            "_links": {"self": {"href": href}},
        });
        if let Value::Object(fields) = fields {
            body.extend(fields);
        }
        Value::Object(body)
    }
}

impl SubscriptionStatus {
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Active,
        Self::Suspended,
        Self::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Suspended)
    }
}

impl Subscription {
    pub fn to_json(&self) -> Value {
        let href = format!("/enterprise/subscriptions/{}", self.id);
        json!({
            "id": self.id,
            "status": self.status.as_str(),
            "account_id": self.account_id,
            "subscriber_id": self.subscriber_id,
            "msisdn": self.port_out.as_ref().map(|p| p.msisdn.as_str()),
            "created_at": rfc3339(self.created_at),
            "activated_at": rfc3339_opt(self.activated_at),
            "suspended_at": rfc3339_opt(self.suspended_at),
            "terminated_at": rfc3339_opt(self.terminated_at),
            "current_period": self.current_period.map(|(start, end)| json!({"start": rfc3339(start), "end": rfc3339(end)})),
            "speed_limit_kbps": self.speed_limit_kbps,
            "external_reference": self.external_reference,
            "_links": {
                "self": {"href": href},
                "sim_profile": {"href": format!("{href}/sim-profile")},
                "products": {"href": format!("{href}/products")},
                "usage": {"href": format!("/enterprise/usage/items?subscription_id={}", self.id)},
            },
        })
    }
}

impl ProfileStatus {
    pub const ALL: [Self; 7] = [
        Self::Released,
        Self::Downloaded,
        Self::Installed,
        Self::Enabled,
        Self::Disabled,
        Self::Deleted,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::Downloaded => "downloaded",
            Self::Installed => "installed",
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
            Self::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// `released → downloaded → installed → enabled ⇄ disabled`; deleted or error from anywhere.
    pub fn can_move_to(self, next: Self) -> bool {
        use ProfileStatus::*;
        match (self, next) {
            (Deleted, _) => false,
            (_, Deleted | Error) => true,
            (Released, Downloaded | Installed | Enabled) => true,
            (Downloaded, Installed | Enabled) => true,
            (Installed, Enabled | Disabled) => true,
            (Enabled, Disabled) | (Disabled, Enabled) => true,
            (Error, Released) => true,
            _ => false,
        }
    }

    /// The ES2+ download-progress step announced when a profile reaches this status.
    pub fn progress_step(self) -> (&'static str, &'static str) {
        match self {
            Self::Downloaded => ("BPP_DOWNLOAD", "SUCCESS"),
            Self::Deleted => ("DELETED", "SUCCESS"),
            Self::Error => ("BPP_INSTALLATION", "FAILURE"),
            _ => ("BPP_INSTALLATION", "SUCCESS"),
        }
    }
}

impl SimProfile {
    pub fn activation_code(&self, smdp_address: &str) -> String {
        let base = format!("LPA:1${smdp_address}${}", self.matching_id);
        if self.confirmation_code.is_some() {
            format!("{base}$$1")
        } else {
            base
        }
    }

    pub fn to_json(&self, smdp_address: &str, base_url: &str) -> Value {
        let mut body = json!({
            "iccid": self.iccid,
            "eid": self.eid,
            "sim_type": "esim",
            "status": self.status.as_str(),
            "smdp_address": smdp_address,
            "matching_id": self.matching_id,
            "activation_code": self.activation_code(smdp_address),
            "confirmation_code_required": self.confirmation_code.is_some(),
            "qr_code_url": format!("{base_url}/_sim/qr/{}.png", self.iccid),
            "subscription_id": self.subscription_id,
            "last_modified": rfc3339(self.last_modified),
        });
        if let Some(code) = &self.confirmation_code {
            body["confirmation_code"] = code.clone().into();
        }
        body
    }
}

impl ProductStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Active,
        Self::Depleted,
        Self::Expired,
        Self::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Depleted => "depleted",
            Self::Expired => "expired",
            Self::Terminated => "terminated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl Product {
    pub fn remaining_bytes(&self) -> Option<u64> {
        self.allowance_bytes
            .map(|allowance| allowance.saturating_sub(self.used_bytes))
    }

    pub fn to_json(&self, offering: Option<&Offering>) -> Value {
        json!({
            "id": self.id,
            "product_offering": offering.map(Offering::to_json),
            "account_id": self.account_id,
            "subscription_id": self.subscription_id,
            "status": self.status.as_str(),
            "allowance_bytes": self.allowance_bytes,
            "used_bytes": self.used_bytes,
            "remaining_bytes": self.remaining_bytes(),
            "starts_at": rfc3339(self.starts_at),
            "expires_at": rfc3339_opt(self.expires_at),
            "_links": {
                "self": {"href": format!("/enterprise/products/{}", self.id)},
                "subscription": {"href": format!("/enterprise/subscriptions/{}", self.subscription_id)},
            },
        })
    }
}

impl UsageItem {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "direction": "outbound",
            "quantity": self.quantity,
            "unit": self.unit,
            "charged_quantity": self.charged_quantity,
            "cost_type": self.cost_type,
            "location_country": self.location_country,
            "from_msisdn": null,
            "technology": self.technology,
            "roaming": self.roaming,
            "subscription_id": self.subscription_id,
            "product_id": self.product_id,
            "started_at": rfc3339(self.started_at),
            "ended_at": rfc3339(self.ended_at),
            "processed_at": rfc3339(self.processed_at),
            "_links": {
                "account": {"href": format!("/enterprise/accounts/{}", self.account_id)},
                "subscription": {"href": format!("/enterprise/subscriptions/{}", self.subscription_id)},
                "subscriber": {"href": format!("/enterprise/subscribers/{}", self.subscriber_id)},
                "product": self.product_id.as_ref().map(|id| json!({"href": format!("/enterprise/products/{id}")})),
            },
        })
    }
}
