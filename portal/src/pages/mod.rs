//! The portal's pages, a module per noun. Every route here must also be listed, with the
//! permission it needs, in `access::ROUTES`.

mod auth;
mod employees;
mod home;
mod imports;
mod settings;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Portal;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/static/portal.css", get(stylesheet))
        .merge(auth::routes())
        .merge(home::routes())
        .merge(settings::routes())
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
