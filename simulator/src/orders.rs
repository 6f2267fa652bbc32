//! `POST /enterprise/orders`: validation at submit, then asynchronous settlement (see settlement.rs).
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use rand::Rng;
use serde_json::{Value, json};
use time::Duration;

use crate::accounts::Caller;
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::hal::{QueryMap, page};
use crate::ids::is_valid_eid;
use crate::model::*;
use crate::state::{Sim, State as SimState};

pub async fn submit_order(
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
    let order = sim.lock().place_order(&caller.account_id, body)?;
    Ok((StatusCode::ACCEPTED, Json(order)))
}

pub async fn get_order(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let order = state
        .orders
        .get(&id)
        .ok_or_else(|| ApiError::not_found("order", &id))?;
    caller.owns(&order.account_id, "order", &id)?;
    Ok(Json(order.to_json()))
}

pub async fn list_orders(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .orders
        .values()
        .filter(|o| o.account_id == caller.account_id)
        .filter(|o| query.get("status").is_none_or(|s| o.status.as_str() == s))
        .filter(|o| query.get("type").is_none_or(|t| o.kind.as_str() == t))
        .filter(|o| {
            query
                .get("subscription_id")
                .is_none_or(|id| o.subscription_id.as_ref() == Some(id))
        })
        .map(|order| (order.id.clone(), order.to_json()))
        .collect();
    page("/enterprise/orders", &query, "orders", items)
}

impl SimState {
    /// Places an order for the caller's account (`caller_account_id`); the body must name it.
    pub fn place_order(&mut self, caller_account_id: &str, body: Value) -> ApiResult<Value> {
        if !body.is_object() {
            return Err(ApiError::new(
                ErrorType::InvalidHttpMessage,
                "body must be a JSON object",
            ));
        }
        let kind_text = required_str(&body, "type")?;
        let kind = OrderType::parse(kind_text)
            .ok_or_else(|| ApiError::bad_request(format!("type {kind_text} is not supported")))?;
        let account_id = required_str(&body, "account_id")?.to_string();
        if account_id != caller_account_id {
            return Err(ApiError::new(
                ErrorType::AccessDenied,
                format!(
                    "account_id {account_id} is not the account of this client \
                     ({caller_account_id}): a client orders only for its own account"
                ),
            ));
        }
        if !self.accounts.contains_key(&account_id) {
            return Err(ApiError::not_found("account", &account_id));
        }
        let (subscription_id, offering_id) = match kind {
            OrderType::ActivateSubscription => {
                let offering_id = self.validate_activation(&account_id, &body)?;
                let subscription_id =
                    self.open_pending_subscription(&account_id, &body, &offering_id);
                (subscription_id, Some(offering_id))
            }
            _ => {
                let subscription_id = required_str(&body, "subscription_id")?.to_string();
                let offering_id =
                    self.validate_change(kind, &account_id, &subscription_id, &body)?;
                (subscription_id, offering_id)
            }
        };
        let now = self.now();
        let delay = self.pick_order_delay();
        let order = Order {
            id: self.ids.next("order"),
            kind,
            status: OrderStatus::Pending,
            account_id,
            subscription_id: Some(subscription_id),
            request: body,
            offering_id,
            created_at: now,
            due_at: now + delay,
            completed_at: None,
            canceled_at: None,
            failure: None,
            forced_failure: self.take_order_fault(kind.as_str()),
        };
        let json = order.to_json();
        self.orders.insert(order.id.clone(), order);
        Ok(json)
    }

    pub fn pick_order_delay(&mut self) -> Duration {
        let range = self.config.order_delay_ms;
        let ms = if range.max <= range.min {
            range.min
        } else {
            self.rng.gen_range(range.min..=range.max)
        };
        Duration::milliseconds(ms as i64)
    }

    /// Returns the plan offering the new line will get.
    fn validate_activation(&self, account_id: &str, body: &Value) -> ApiResult<String> {
        let offering_id = self.resolve_plan(account_id, body)?;
        let subscriber = body
            .get("subscriber")
            .filter(|s| s.is_object())
            .ok_or_else(|| ApiError::bad_request("subscriber is required"))?;
        for field in ["first_name", "last_name", "email"] {
            if subscriber
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
            {
                return Err(ApiError::bad_request(format!(
                    "subscriber.{field} is required"
                )));
            }
        }
        if !subscriber["email"]
            .as_str()
            .is_some_and(|email| email.contains('@'))
        {
            return Err(ApiError::bad_request(
                "subscriber.email is not an email address",
            ));
        }
        if let Some(sim_profile) = body.get("sim_profile") {
            validate_sim_profile(sim_profile)?;
        }
        match body.get("external_reference") {
            None | Some(Value::Null) => {}
            Some(Value::String(reference)) if (1..=255).contains(&reference.len()) => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "external_reference must be a string of 1 to 255 characters",
                ));
            }
        }
        Ok(offering_id)
    }

    /// `template_id` (its first offering) or `product_offering_id`, which must be a plan of
    /// the account.
    fn resolve_plan(&self, account_id: &str, body: &Value) -> ApiResult<String> {
        let offering_id = if let Some(template_id) = body.get("template_id").and_then(Value::as_str)
        {
            let template = self
                .templates
                .get(template_id)
                .filter(|template| template.account_id == account_id)
                .ok_or_else(|| ApiError::not_found("order template", template_id))?;
            template
                .product_offering_ids
                .first()
                .cloned()
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorType::Unacceptable,
                        "order template has no product offering",
                    )
                })?
        } else if let Some(offering_id) = body.get("product_offering_id").and_then(Value::as_str) {
            offering_id.to_string()
        } else {
            return Err(ApiError::bad_request(
                "template_id or product_offering_id is required",
            ));
        };
        let offering = self
            .account_offering(account_id, &offering_id)
            .ok_or_else(|| ApiError::not_found("product offering", &offering_id))?;
        if offering.kind != OfferingType::Plan {
            return Err(ApiError::bad_request(format!(
                "product offering {offering_id} is not a plan"
            )));
        }
        Ok(offering_id)
    }

    /// Checks an order on an existing line; returns the offering it brings, if any.
    fn validate_change(
        &self,
        kind: OrderType,
        account_id: &str,
        subscription_id: &str,
        body: &Value,
    ) -> ApiResult<Option<String>> {
        let subscription = self
            .subscriptions
            .get(subscription_id)
            .filter(|s| s.account_id == account_id)
            .ok_or_else(|| ApiError::not_found("subscription", subscription_id))?;
        let status = subscription.status;
        let allowed = match kind {
            OrderType::SuspendSubscription => status == SubscriptionStatus::Active,
            OrderType::ResumeSubscription => status == SubscriptionStatus::Suspended,
            _ => status.is_live(),
        };
        if !allowed {
            return Err(ApiError::invalid_transition(format!(
                "cannot {} a {} subscription",
                kind.as_str().trim_end_matches("_subscription"),
                status.as_str()
            )));
        }
        match kind {
            OrderType::ChangePlan => {
                let effective = body
                    .get("effective")
                    .and_then(Value::as_str)
                    .unwrap_or("now");
                if !matches!(effective, "now" | "next_period") {
                    return Err(ApiError::bad_request(
                        "effective must be now or next_period",
                    ));
                }
                self.resolve_plan(account_id, body).map(Some)
            }
            OrderType::AddProduct => {
                let offering_id = required_str(body, "product_offering_id")?;
                self.account_offering(account_id, offering_id)
                    .ok_or_else(|| ApiError::not_found("product offering", offering_id))?;
                Ok(Some(offering_id.to_string()))
            }
            OrderType::ChangeSimProfile => {
                let sim_profile = body
                    .get("sim_profile")
                    .ok_or_else(|| ApiError::bad_request("sim_profile is required"))?;
                validate_sim_profile(sim_profile)?;
                Ok(None)
            }
            OrderType::SetSpeedLimit => {
                speed_limit(body)?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Creates the subscriber (if new), a `pending` subscription and its `pending` plan product.
    fn open_pending_subscription(
        &mut self,
        account_id: &str,
        body: &Value,
        offering_id: &str,
    ) -> String {
        let subscriber_id = self.find_or_create_subscriber(account_id, &body["subscriber"]);
        let now = self.now();
        let subscription_id = self.ids.next("sub");
        let product_id = self.ids.next("prd");
        let allowance_bytes = self.offerings[offering_id].data_bytes;
        self.products.insert(
            product_id.clone(),
            Product {
                id: product_id.clone(),
                account_id: account_id.to_string(),
                subscription_id: subscription_id.clone(),
                offering_id: offering_id.to_string(),
                status: ProductStatus::Pending,
                allowance_bytes,
                used_bytes: 0,
                starts_at: now,
                expires_at: None,
                thresholds_fired: Vec::new(),
            },
        );
        self.subscriptions.insert(
            subscription_id.clone(),
            Subscription {
                id: subscription_id.clone(),
                account_id: account_id.to_string(),
                subscriber_id,
                status: SubscriptionStatus::Pending,
                created_at: now,
                activated_at: None,
                suspended_at: None,
                terminated_at: None,
                current_period: None,
                iccid: None,
                plan_product_id: Some(product_id),
                next_plan_offering_id: None,
                sim_request: body.get("sim_profile").cloned().unwrap_or(Value::Null),
                speed_limit_kbps: None,
                external_reference: body
                    .get("external_reference")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                port_out: None,
            },
        );
        subscription_id
    }

    fn find_or_create_subscriber(&mut self, account_id: &str, input: &Value) -> String {
        let email = input["email"].as_str().unwrap_or_default();
        if let Some(existing) = self
            .subscribers
            .values()
            .find(|s| s.account_id == account_id && s.email.eq_ignore_ascii_case(email))
        {
            return existing.id.clone();
        }
        let id = self.ids.next("sbr");
        let text = |field: &str| input.get(field).and_then(Value::as_str).map(str::to_string);
        self.subscribers.insert(
            id.clone(),
            Subscriber {
                id: id.clone(),
                account_id: account_id.to_string(),
                first_name: text("first_name").unwrap_or_default(),
                last_name: text("last_name").unwrap_or_default(),
                email: email.to_string(),
                employee_id: text("employee_id"),
                group: text("group"),
            },
        );
        id
    }
}

/// `max_kbps`: a positive whole number, or null to lift the limit.
pub fn speed_limit(body: &Value) -> ApiResult<Option<u32>> {
    match body.get("max_kbps") {
        None => Err(ApiError::bad_request(
            "max_kbps is required (null lifts the limit)",
        )),
        Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|k| (1..=u64::from(u32::MAX)).contains(k))
            .map(|k| Some(k as u32))
            .ok_or_else(|| ApiError::bad_request("max_kbps must be a positive whole number")),
    }
}

fn required_str<'a>(body: &'a Value, field: &str) -> ApiResult<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{field} is required")))
}

fn validate_sim_profile(sim_profile: &Value) -> ApiResult<()> {
    if !sim_profile.is_object() {
        return Err(ApiError::bad_request("sim_profile must be an object"));
    }
    if let Some(sim_type) = sim_profile.get("sim_type").and_then(Value::as_str)
        && sim_type != "esim"
    {
        return Err(ApiError::bad_request("sim_profile.sim_type must be esim"));
    }
    let delivery = sim_profile
        .get("delivery")
        .cloned()
        .unwrap_or(json!({"type": "api"}));
    match delivery
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("api")
    {
        "api" => Ok(()),
        "email" => {
            let has_recipient = delivery
                .get("to")
                .and_then(Value::as_array)
                .is_some_and(|to| {
                    to.iter()
                        .any(|address| address.as_str().is_some_and(|a| a.contains('@')))
                });
            if has_recipient {
                Ok(())
            } else {
                Err(ApiError::bad_request(
                    "sim_profile.delivery.to needs an email address",
                ))
            }
        }
        "eid_push" => {
            let eid = delivery
                .get("eid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if is_valid_eid(eid) {
                Ok(())
            } else {
                Err(ApiError::bad_request(
                    "sim_profile.delivery.eid must be 32 digits with a valid check (mod 97 = 1)",
                ))
            }
        }
        other => Err(ApiError::bad_request(format!(
            "sim_profile.delivery.type {other} is not one of api, email, eid_push"
        ))),
    }
}

/// The EID a profile is pushed to, when the order asked for `eid_push` delivery.
pub fn pushed_eid(sim_request: &Value) -> Option<String> {
    let delivery = sim_request.get("delivery")?;
    (delivery.get("type")?.as_str()? == "eid_push")
        .then(|| delivery.get("eid")?.as_str().map(str::to_string))
        .flatten()
}
