//! Subscriptions (lines), their sim-profile and products.
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::accounts::Caller;
use crate::error::{ApiError, ApiResult};
use crate::hal::{QueryMap, page};
use crate::model::*;
use crate::state::{Sim, State as SimState};

/// Which related objects `Prefer: transclude="subscriber;sim_profile;products"` asked for.
#[derive(Default)]
struct Transclude {
    subscriber: bool,
    sim_profile: bool,
    products: bool,
}

impl Transclude {
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut wanted = Self::default();
        for value in headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Some((_, list)) = value.split_once("transclude=") else {
                continue;
            };
            let list = list
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches('"');
            for name in list.split(';').map(str::trim) {
                match name {
                    "subscriber" => wanted.subscriber = true,
                    "sim_profile" => wanted.sim_profile = true,
                    "products" => wanted.products = true,
                    _ => {}
                }
            }
        }
        wanted
    }

    fn any(&self) -> bool {
        self.subscriber || self.sim_profile || self.products
    }
}

impl SimState {
    fn subscription_json(
        &self,
        subscription: &Subscription,
        transclude: &Transclude,
        base_url: &str,
    ) -> Value {
        let mut body = subscription.to_json();
        if !transclude.any() {
            return body;
        }
        let mut embedded = serde_json::Map::new();
        if transclude.subscriber {
            let subscriber = self
                .subscribers
                .get(&subscription.subscriber_id)
                .map(Subscriber::to_json);
            embedded.insert("subscriber".into(), subscriber.unwrap_or(Value::Null));
        }
        if transclude.sim_profile {
            let profile = self.profile_json(subscription, base_url);
            embedded.insert("sim_profile".into(), profile.unwrap_or(Value::Null));
        }
        if transclude.products {
            embedded.insert(
                "products".into(),
                self.products_json(&subscription.id).into(),
            );
        }
        body["_embedded"] = Value::Object(embedded);
        body
    }

    fn profile_json(&self, subscription: &Subscription, base_url: &str) -> Option<Value> {
        let profile = self.profiles.get(subscription.iccid.as_ref()?)?;
        Some(profile.to_json(&self.config.smdp_address, base_url))
    }

    fn products_json(&self, subscription_id: &str) -> Vec<Value> {
        self.products
            .values()
            .filter(|p| p.subscription_id == subscription_id)
            .map(|p| p.to_json(self.offerings.get(&p.offering_id)))
            .collect()
    }

    /// A subscription of the caller's account; another account's is not found.
    fn subscription(&self, caller: &Caller, id: &str) -> ApiResult<&Subscription> {
        self.subscriptions
            .get(id)
            .filter(|s| s.account_id == caller.account_id)
            .ok_or_else(|| ApiError::not_found("subscription", id))
    }
}

pub async fn list_subscriptions(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    if let Some(status) = query.get("status")
        && SubscriptionStatus::parse(status).is_none()
    {
        return Err(ApiError::bad_request(
            "status must be pending, active, suspended or terminated",
        ));
    }
    let transclude = Transclude::from_headers(&headers);
    let state = sim.lock();
    let items = state
        .subscriptions
        .values()
        .filter(|s| s.account_id == caller.account_id)
        .filter(|s| {
            query
                .get("status")
                .is_none_or(|status| s.status.as_str() == status)
        })
        .filter(|s| {
            query
                .get("subscriber_id")
                .is_none_or(|id| &s.subscriber_id == id)
        })
        .filter(|s| query.get("account_id").is_none_or(|id| &s.account_id == id))
        .map(|s| {
            (
                s.id.clone(),
                state.subscription_json(s, &transclude, sim.base_url()),
            )
        })
        .collect();
    let response = page("/enterprise/subscriptions", &query, "subscriptions", items)?;
    Ok(with_preference_applied(response, &transclude))
}

pub async fn get_subscription(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let transclude = Transclude::from_headers(&headers);
    let state = sim.lock();
    let subscription = state.subscription(&caller, &id)?;
    let body = state.subscription_json(subscription, &transclude, sim.base_url());
    Ok(with_preference_applied(
        Json(body).into_response(),
        &transclude,
    ))
}

pub async fn get_sim_profile(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let subscription = state.subscription(&caller, &id)?;
    state
        .profile_json(subscription, sim.base_url())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("sim profile of subscription", &id))
}

/// How long a porting authorisation stays valid (a UK PAC's 30 days).
const PORT_OUT_VALIDITY: time::Duration = time::Duration::days(30);

/// **[ext]** `POST /enterprise/subscriptions/{id}/port-out`: authorise the subscriber to take
/// the number to another operator. A live (active or suspended) subscription gets a code
/// valid for 30 days; asking again while it is valid returns the same code (201 the first
/// time, 200 after), and a terminated one cannot be ported.
pub async fn authorise_port_out(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let mut state = sim.lock();
    let status = state.subscription(&caller, &id)?.status;
    if !status.is_live() {
        return Err(ApiError::invalid_transition(format!(
            "a {} subscription has no number to port out",
            status.as_str()
        )));
    }
    let now = state.now();
    let existing = state.subscriptions[&id]
        .port_out
        .as_ref()
        .filter(|p| p.expires_at > now)
        .map(|p| p.to_json(&id));
    if let Some(body) = existing {
        return Ok(Json(body).into_response());
    }
    let msisdn = format!("+447700900{}", state.ids.digits(3));
    let code = state.ids.porting_code();
    let port_out = PortOut {
        msisdn,
        code,
        issued_at: now,
        expires_at: now + PORT_OUT_VALIDITY,
    };
    let body = port_out.to_json(&id);
    if let Some(subscription) = state.subscriptions.get_mut(&id) {
        subscription.port_out = Some(port_out);
    }
    state.unsaved_changes = true;
    Ok((axum::http::StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list_subscription_products(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let state = sim.lock();
    state.subscription(&caller, &id)?;
    let items = filtered_products(&state, &caller, &query, Some(&id));
    page(
        &format!("/enterprise/subscriptions/{id}/products"),
        &query,
        "products",
        items,
    )
}

pub async fn list_products(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    if let Some(status) = query.get("status")
        && ProductStatus::parse(status).is_none()
    {
        return Err(ApiError::bad_request("status is not a product status"));
    }
    let state = sim.lock();
    let items = filtered_products(
        &state,
        &caller,
        &query,
        query.get("subscription_id").map(String::as_str),
    );
    page("/enterprise/products", &query, "products", items)
}

pub async fn get_product(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let product = state
        .products
        .get(&id)
        .ok_or_else(|| ApiError::not_found("product", &id))?;
    caller.owns(&product.account_id, "product", &id)?;
    Ok(Json(
        product.to_json(state.offerings.get(&product.offering_id)),
    ))
}

fn filtered_products(
    state: &SimState,
    caller: &Caller,
    query: &QueryMap,
    subscription_id: Option<&str>,
) -> Vec<(String, Value)> {
    state
        .products
        .values()
        .filter(|p| p.account_id == caller.account_id)
        .filter(|p| subscription_id.is_none_or(|id| p.subscription_id == id))
        .filter(|p| {
            query
                .get("status")
                .is_none_or(|status| p.status.as_str() == status)
        })
        .map(|p| (p.id.clone(), p.to_json(state.offerings.get(&p.offering_id))))
        .collect()
}

fn with_preference_applied(mut response: Response, transclude: &Transclude) -> Response {
    if transclude.any() {
        let names: Vec<&str> = [
            (transclude.subscriber, "subscriber"),
            (transclude.sim_profile, "sim_profile"),
            (transclude.products, "products"),
        ]
        .into_iter()
        .filter_map(|(wanted, name)| wanted.then_some(name))
        .collect();
        if let Ok(value) = HeaderValue::from_str(&format!("transclude=\"{}\"", names.join(";"))) {
            response.headers_mut().insert("preference-applied", value);
        }
    }
    response
}

/// Used by the control plane's stats.
pub fn subscription_counts(state: &SimState) -> Value {
    let mut counts = json!({"total": state.subscriptions.len()});
    for status in SubscriptionStatus::ALL {
        let count = state
            .subscriptions
            .values()
            .filter(|s| s.status == status)
            .count();
        counts[status.as_str()] = count.into();
    }
    counts
}
