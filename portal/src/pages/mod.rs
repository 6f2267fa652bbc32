//! The portal's pages, a module per noun. Every route here must also be listed, with the
//! permission it needs, in `access::ROUTES`.

mod alerts;
mod audit;
mod auth;
mod chat_settings;
mod dashboard;
mod domains;
mod employees;
mod exports;
mod home;
mod imports;
mod invites;
mod joiners;
mod lines;
mod members;
mod optimise;
mod password;
mod pending_leavers;
mod policies;
mod provider;
mod provisioning;
mod requests;
mod routing;
mod settings;
mod sso;
mod whatif;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Portal;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/static/portal.css", get(stylesheet))
        .route("/static/portal.js", get(script))
        .merge(alerts::routes())
        .merge(auth::routes())
        .merge(home::routes())
        .merge(lines::routes())
        .merge(policies::routes())
        .merge(requests::routes())
        .merge(settings::routes())
        .merge(chat_settings::routes())
        .merge(dashboard::routes())
        .merge(exports::routes())
        .merge(audit::routes())
        .merge(members::routes())
        .merge(invites::routes())
        .merge(password::routes())
        .merge(domains::routes())
        .merge(sso::routes())
        .merge(provider::routes())
        .merge(routing::routes())
        .merge(provisioning::routes())
        .merge(joiners::routes())
        .merge(optimise::routes())
        .merge(whatif::routes())
        .merge(employees::routes())
        .merge(imports::routes())
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
}

/// The pages' only script: the security policy forbids inline script, so confirmation
/// prompts and "Go back" links are wired up from here.
async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.js"),
    )
}
