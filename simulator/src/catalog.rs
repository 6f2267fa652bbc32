//! Read-only resources: accounts, subscribers, order templates and product offerings.
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::Value;

use crate::accounts::Caller;
use crate::error::{ApiError, ApiResult};
use crate::hal::{QueryMap, page};
use crate::model::Offering;
use crate::state::Sim;

pub async fn list_accounts(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .accounts
        .values()
        .filter(|account| account.id == caller.account_id)
        .map(|account| (account.id.clone(), account.to_json()))
        .collect();
    page("/enterprise/accounts", &query, "accounts", items)
}

pub async fn get_account(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.owns(&id, "account", &id)?;
    let state = sim.lock();
    let account = state
        .accounts
        .get(&id)
        .ok_or_else(|| ApiError::not_found("account", &id))?;
    Ok(Json(account.to_json()))
}

pub async fn list_subscribers(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .subscribers
        .values()
        .filter(|s| s.account_id == caller.account_id)
        .filter(|s| query.get("account_id").is_none_or(|id| &s.account_id == id))
        .filter(|s| {
            query
                .get("email")
                .is_none_or(|email| s.email.eq_ignore_ascii_case(email))
        })
        .filter(|s| {
            query
                .get("employee_id")
                .is_none_or(|id| s.employee_id.as_ref() == Some(id))
        })
        .map(|subscriber| (subscriber.id.clone(), subscriber.to_json()))
        .collect();
    page("/enterprise/subscribers", &query, "subscribers", items)
}

pub async fn get_subscriber(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let subscriber = state
        .subscribers
        .get(&id)
        .ok_or_else(|| ApiError::not_found("subscriber", &id))?;
    caller.owns(&subscriber.account_id, "subscriber", &id)?;
    Ok(Json(subscriber.to_json()))
}

pub async fn list_templates(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .templates
        .values()
        .filter(|template| template.account_id == caller.account_id)
        .map(|template| (template.id.clone(), template.to_json()))
        .collect();
    page(
        "/enterprise/order-templates",
        &query,
        "order_templates",
        items,
    )
}

pub async fn get_template(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let template = state
        .templates
        .get(&id)
        .ok_or_else(|| ApiError::not_found("order template", &id))?;
    caller.owns(&template.account_id, "order template", &id)?;
    Ok(Json(template.to_json()))
}

pub async fn list_offerings(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Response> {
    let items = sim
        .lock()
        .offerings
        .values()
        .filter(|offering| offering.account_id == caller.account_id)
        .filter(|offering| offering_matches(offering, &query))
        .map(|offering| (offering.id.clone(), offering.to_json()))
        .collect();
    page(
        "/enterprise/product-offerings",
        &query,
        "product_offerings",
        items,
    )
}

pub async fn get_offering(
    State(sim): State<Sim>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let state = sim.lock();
    let offering = state
        .offerings
        .get(&id)
        .ok_or_else(|| ApiError::not_found("product offering", &id))?;
    caller.owns(&offering.account_id, "product offering", &id)?;
    Ok(Json(offering.to_json()))
}

fn offering_matches(offering: &Offering, query: &QueryMap) -> bool {
    query
        .get("status")
        .is_none_or(|status| &offering.status == status)
        && query
            .get("type")
            .is_none_or(|kind| offering.kind.as_str() == kind)
        && query
            .get("country")
            .is_none_or(|country| offering.covers(country))
}
