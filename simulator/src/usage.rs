//! Usage: injection through the control plane (balances, thresholds, depletion) and usage items.
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;

use crate::accounts::Caller;
use crate::clock::{parse_date, parse_rfc3339, rfc3339_opt};
use crate::config::{CapPolicy, SuspendSemantics};
use crate::connect::ConnectEvent;
use crate::error::{ApiError, ApiResult};
use crate::hal::{QueryMap, page};
use crate::model::*;
use crate::state::{Sim, State as SimState};

/// Body of `POST /_sim/subscriptions/{id}/usage`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UsageInput {
    pub data_bytes: u64,
    pub country: Option<String>,
    pub roaming: Option<bool>,
    pub technology: Option<String>,
    pub sms: u64,
    pub voice_seconds: u64,
    pub at: Option<String>,
}

/// Where and when a usage record happened; shared by the items it produces.
struct UsageContext {
    subscription_id: String,
    subscriber_id: String,
    account_id: String,
    country: String,
    roaming: bool,
    technology: String,
    started_at: time::OffsetDateTime,
    processed_at: time::OffsetDateTime,
}

struct Charge {
    product_id: Option<String>,
    kind: &'static str,
    unit: &'static str,
    quantity: u64,
    charged_quantity: u64,
    cost_type: &'static str,
}

impl SimState {
    pub fn record_usage(&mut self, subscription_id: &str, input: UsageInput) -> ApiResult<Value> {
        let subscription = self
            .subscriptions
            .get(subscription_id)
            .ok_or_else(|| ApiError::not_found("subscription", subscription_id))?;
        if subscription.status != SubscriptionStatus::Active {
            let reason = format!("subscription is {}", subscription.status.as_str());
            return match self.config.suspend_semantics {
                SuspendSemantics::AttachBlocked => Ok(
                    json!({"recorded": false, "reason": reason, "items": [], "refused_bytes": input.data_bytes}),
                ),
                SuspendSemantics::Reject => Err(ApiError::invalid_transition(reason)),
            };
        }
        let started_at = match &input.at {
            Some(text) => parse_rfc3339(text)
                .ok_or_else(|| ApiError::bad_request("at must be an RFC 3339 timestamp"))?,
            None => self.now(),
        };
        let home_country = self
            .accounts
            .get(&subscription.account_id)
            .map_or_else(|| "US".to_string(), |a| a.country.clone());
        let country = input
            .country
            .clone()
            .unwrap_or_else(|| home_country.clone())
            .to_uppercase();
        let context = UsageContext {
            subscription_id: subscription_id.to_string(),
            subscriber_id: subscription.subscriber_id.clone(),
            account_id: subscription.account_id.clone(),
            roaming: input.roaming.unwrap_or(country != home_country),
            country,
            technology: input.technology.clone().unwrap_or_else(|| "4G".into()),
            started_at,
            processed_at: started_at + Duration::seconds(self.config.usage_delay_s as i64),
        };
        let plan_product_id = subscription.plan_product_id.clone();
        let mut charges = Vec::new();
        let mut refused_bytes = 0;
        if input.data_bytes > 0 {
            refused_bytes = self.charge_data(&context, input.data_bytes, &mut charges);
        }
        for (quantity, kind, unit) in [
            (input.sms, "sms", "messages"),
            (input.voice_seconds, "voice", "seconds"),
        ] {
            if quantity > 0 {
                charges.push(Charge {
                    product_id: plan_product_id.clone(),
                    kind,
                    unit,
                    quantity,
                    charged_quantity: quantity,
                    cost_type: "in_bundle",
                });
            }
        }
        let items: Vec<Value> = charges
            .into_iter()
            .map(|charge| self.store_usage_item(&context, charge))
            .collect();
        Ok(json!({"recorded": true, "items": items, "refused_bytes": refused_bytes}))
    }

    /// Draws data from the plan, then other products; returns the bytes refused by a block cap.
    fn charge_data(
        &mut self,
        context: &UsageContext,
        bytes: u64,
        charges: &mut Vec<Charge>,
    ) -> u64 {
        let plan_product_id = self.subscriptions[&context.subscription_id]
            .plan_product_id
            .clone();
        let mut candidates: Vec<String> = self
            .products
            .values()
            .filter(|p| {
                p.subscription_id == context.subscription_id && p.status == ProductStatus::Active
            })
            .map(|p| p.id.clone())
            .collect();
        candidates.sort_by_key(|id| Some(id) != plan_product_id.as_ref());
        let mut left = bytes;
        for product_id in candidates {
            if left == 0 {
                break;
            }
            let product = &self.products[&product_id];
            let take = product
                .remaining_bytes()
                .map_or(left, |remaining| remaining.min(left));
            if take == 0 {
                continue;
            }
            left -= take;
            self.consume(&product_id, take);
            charges.push(Charge {
                product_id: Some(product_id),
                kind: "data",
                unit: "bytes",
                quantity: take,
                charged_quantity: take,
                cost_type: "in_bundle",
            });
        }
        if left == 0 {
            return 0;
        }
        match self.config.cap_policy {
            CapPolicy::Block => left,
            CapPolicy::Throttle => {
                charges.push(Charge {
                    product_id: plan_product_id,
                    kind: "data",
                    unit: "bytes",
                    quantity: left,
                    charged_quantity: 0,
                    cost_type: "throttled",
                });
                0
            }
        }
    }

    /// Adds usage to a product and fires thresholds and depletion.
    fn consume(&mut self, product_id: &str, bytes: u64) {
        let thresholds = self.config.thresholds_pct.clone();
        let product = self.products.get_mut(product_id).expect("exists");
        product.used_bytes += bytes;
        let Some(allowance) = product.allowance_bytes.filter(|a| *a > 0) else {
            return;
        };
        let used_pct_x100 = u128::from(product.used_bytes) * 100;
        let crossed: Vec<u8> = thresholds
            .into_iter()
            .filter(|pct| !product.thresholds_fired.contains(pct))
            .filter(|pct| used_pct_x100 >= u128::from(*pct) * u128::from(allowance))
            .collect();
        product.thresholds_fired.extend(&crossed);
        let remaining = allowance.saturating_sub(product.used_bytes);
        let depleted = remaining == 0;
        if depleted {
            product.status = ProductStatus::Depleted;
        }
        let (account_id, subscription_id, offering_id, expires_at) = (
            product.account_id.clone(),
            product.subscription_id.clone(),
            product.offering_id.clone(),
            product.expires_at,
        );
        let iccid = self
            .subscriptions
            .get(&subscription_id)
            .and_then(|s| s.iccid.clone());
        for pct in crossed {
            self.emit(
                &account_id,
                "usage.threshold_reached",
                json!({"subscription_id": subscription_id, "product_id": product_id, "threshold_pct": pct, "remaining_bytes": remaining}),
            );
            if let Some(iccid) = &iccid {
                self.notify_connect(iccid, ConnectEvent::UsageThreshold, |id| {
                    json!({
                        "id": id,
                        "type": "USAGE_THRESHOLD",
                        "iccid": iccid,
                        "subscription_id": subscription_id,
                        "product_id": product_id,
                        "threshold": pct,
                        "expiration_date": rfc3339_opt(expires_at),
                        "current_balance": remaining,
                    })
                });
            }
        }
        if depleted {
            self.emit(
                &account_id,
                "product.depleted",
                json!({"subscription_id": subscription_id, "product_id": product_id, "product_offering_id": offering_id}),
            );
            self.announce_subscription_end(&subscription_id, product_id, expires_at);
        }
    }

    fn store_usage_item(&mut self, context: &UsageContext, charge: Charge) -> Value {
        let item = UsageItem {
            id: self.ids.next("uitem"),
            account_id: context.account_id.clone(),
            subscription_id: context.subscription_id.clone(),
            subscriber_id: context.subscriber_id.clone(),
            product_id: charge.product_id,
            kind: charge.kind.to_string(),
            unit: charge.unit.to_string(),
            quantity: charge.quantity,
            charged_quantity: charge.charged_quantity,
            cost_type: charge.cost_type.to_string(),
            location_country: context.country.clone(),
            roaming: context.roaming,
            technology: context.technology.clone(),
            started_at: context.started_at,
            ended_at: context.started_at,
            processed_at: context.processed_at,
        };
        let json = item.to_json();
        self.usage_items.insert(item.id.clone(), item);
        json
    }
}

/// `GET /enterprise/usage/items?from-date&to-date&subscription_id&limit&cursor`.
pub async fn list_usage_items(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let date = |key: &str| -> ApiResult<Option<time::Date>> {
        query
            .get(key)
            .map(|text| {
                parse_date(text)
                    .ok_or_else(|| ApiError::bad_request(format!("{key} must be YYYY-MM-DD")))
            })
            .transpose()
    };
    let (from, to) = (date("from-date")?, date("to-date")?);
    let state = sim.lock();
    let now = state.now();
    let items = state
        .usage_items
        .values()
        .filter(|item| item.account_id == caller.account_id)
        .filter(|item| item.processed_at <= now)
        .filter(|item| from.is_none_or(|from| item.started_at.date() >= from))
        .filter(|item| to.is_none_or(|to| item.started_at.date() <= to))
        .filter(|item| {
            query
                .get("subscription_id")
                .is_none_or(|id| &item.subscription_id == id)
        })
        .filter(|item| query.get("type").is_none_or(|kind| item.kind == *kind))
        .map(|item| (item.id.clone(), item.to_json()))
        .collect();
    page("/enterprise/usage/items", &query, "usage_items", items)
}
