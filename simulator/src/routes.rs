//! The HTTP surface: which personality serves which path, which path goes to which handler,
//! and the middleware around them.
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::Sim;
use crate::{
    airalo, auth, catalog, connect, control, gigs, idempotency, orders, pipeline, subscriptions,
    usage, webhooks,
};

/// One vendor API the simulator imitates, each with its own wire format, auth, async style
/// and faults, all behind the same `/_sim` control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    /// 1GLOBAL Enterprise, at the root.
    OneGlobal,
    /// Gigs, under `/gigs` (then `/projects/{project}/…`).
    Gigs,
    /// Airalo Partner API, under `/airalo` (then `/v2/…`).
    Airalo,
}

impl Personality {
    pub const ALL: [Self; 3] = [Self::OneGlobal, Self::Gigs, Self::Airalo];

    /// The name on the command line: `oneglobal`, `gigs` or `airalo`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OneGlobal => "oneglobal",
            Self::Gigs => "gigs",
            Self::Airalo => "airalo",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The path its API is served under (empty for the root).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::OneGlobal => "",
            Self::Gigs => "/gigs",
            Self::Airalo => "/airalo",
        }
    }
}

pub fn app(sim: Sim, personalities: &[Personality]) -> Router {
    let mut app = Router::new();
    if personalities.contains(&Personality::OneGlobal) {
        app = app
            .route(auth::TOKEN_PATH, post(auth::issue_token))
            .merge(oneglobal_api(sim.clone()));
    }
    if personalities.contains(&Personality::Gigs) {
        app = app.nest(Personality::Gigs.prefix(), gigs::routes(sim.clone()));
    }
    if personalities.contains(&Personality::Airalo) {
        app = app.nest(Personality::Airalo.prefix(), airalo::routes(sim.clone()));
    }
    app.nest("/_sim", control::routes())
        .fallback(not_found)
        .layer(from_fn_with_state(sim.clone(), pipeline::api_pipeline))
        .layer(from_fn_with_state(sim.clone(), pipeline::correlate))
        .with_state(sim)
}

fn oneglobal_api(sim: Sim) -> Router<Sim> {
    Router::new()
        .route("/enterprise/accounts", get(catalog::list_accounts))
        .route("/enterprise/accounts/{id}", get(catalog::get_account))
        .route("/enterprise/subscribers", get(catalog::list_subscribers))
        .route("/enterprise/subscribers/{id}", get(catalog::get_subscriber))
        .route("/enterprise/order-templates", get(catalog::list_templates))
        .route(
            "/enterprise/order-templates/{id}",
            get(catalog::get_template),
        )
        .route(
            "/enterprise/product-offerings",
            get(catalog::list_offerings),
        )
        .route(
            "/enterprise/product-offerings/{id}",
            get(catalog::get_offering),
        )
        .route(
            "/enterprise/orders",
            post(orders::submit_order).get(orders::list_orders),
        )
        .route("/enterprise/orders/{id}", get(orders::get_order))
        .route(
            "/enterprise/subscriptions",
            get(subscriptions::list_subscriptions),
        )
        .route(
            "/enterprise/subscriptions/{id}",
            get(subscriptions::get_subscription),
        )
        .route(
            "/enterprise/subscriptions/{id}/sim-profile",
            get(subscriptions::get_sim_profile),
        )
        .route(
            "/enterprise/subscriptions/{id}/port-out",
            post(subscriptions::authorise_port_out),
        )
        .route(
            "/enterprise/subscriptions/{id}/products",
            get(subscriptions::list_subscription_products),
        )
        .route("/enterprise/products", get(subscriptions::list_products))
        .route("/enterprise/products/{id}", get(subscriptions::get_product))
        .route("/enterprise/usage/items", get(usage::list_usage_items))
        .route(
            "/enterprise/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/enterprise/webhooks/{id}",
            get(webhooks::get_webhook).delete(webhooks::delete_webhook),
        )
        .route(
            "/connect-api/v1/sim/{iccid}/preferences",
            get(connect::list_preferences),
        )
        .route(
            "/connect-api/v1/sim/{iccid}/preferences/notifications/{kind}",
            post(connect::register_notification)
                .put(connect::register_notification)
                .delete(connect::unregister_notification),
        )
        // Layers run outside-in from the last added: authenticate, then idempotency.
        .layer(from_fn_with_state(sim.clone(), idempotency::idempotency))
        .layer(from_fn_with_state(sim, auth::authenticate))
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    ApiError::not_found("route", uri.path()).into_response()
}
