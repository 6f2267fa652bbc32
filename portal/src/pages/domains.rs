//! Custom domains: add a host name, show the DNS record that proves it is ours, verify it,
//! remove it. A verified domain serves this tenant's portal (see host.rs).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::organisation::custom_domain::CustomDomain;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/domains", get(show).post(add))
        .route("/settings/domains/{domain}/verify", post(verify))
        .route("/settings/domains/{domain}/remove", post(remove))
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    chrome: Chrome,
    domains: Vec<CustomDomain>,
    /// Where a custom domain's CNAME should point.
    portal_host: String,
    typed: String,
    error: Option<String>,
}

async fn render(
    portal: &Portal,
    page: &Page,
    typed: String,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PortalError> {
    let template = DomainsPage {
        chrome: page.chrome(),
        domains: portal.lineup.custom_domains(page.tenant_id()).await?,
        portal_host: format!("{}.{}", page.tenant.slug, portal.config.base_domain()),
        typed,
        error: error.as_ref().map(|(_, e)| e.clone()),
    };
    let mut response = page.render(&template)?;
    if let Some((status, _)) = error {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// A mistake the admin can fix is shown on the page; anything else is an error page.
async fn answer(
    portal: &Portal,
    page: &Page,
    typed: String,
    outcome: Result<String, PortalError>,
) -> Result<Response, PortalError> {
    let error = match outcome {
        Ok(notice) => return Ok(redirect_with_notice("/settings/domains", &notice)),
        Err(PortalError::Invalid { field, reason }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {reason}"),
        ),
        Err(PortalError::Conflict(message)) => (StatusCode::CONFLICT, message),
        Err(other) => return Err(other),
    };
    render(portal, page, typed, Some(error)).await
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, String::new(), None).await
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    domain: String,
}

async fn add(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<AddForm>,
) -> Result<Response, PortalError> {
    let added = portal
        .lineup
        .add_custom_domain(
            page.tenant_id(),
            &page.actor(),
            &form.domain,
            portal.config.base_domain(),
        )
        .await
        .map(|d| format!("{} added: create its DNS record, then verify", d.domain))
        .map_err(PortalError::from);
    answer(&portal, &page, form.domain, added).await
}

async fn verify(
    State(portal): State<Portal>,
    page: Page,
    Path(domain): Path<String>,
) -> Result<Response, PortalError> {
    let resolver = portal.txt_resolver.as_ref();
    let verified = portal
        .lineup
        .verify_custom_domain(page.tenant_id(), &page.actor(), &domain, resolver)
        .await
        .map(|d| format!("{} is verified and serves this portal", d.domain))
        .map_err(PortalError::from);
    answer(&portal, &page, String::new(), verified).await
}

async fn remove(
    State(portal): State<Portal>,
    page: Page,
    Path(domain): Path<String>,
) -> Result<Response, PortalError> {
    portal
        .lineup
        .remove_custom_domain(page.tenant_id(), &page.actor(), &domain)
        .await?;
    Ok(redirect_with_notice(
        "/settings/domains",
        &format!("{domain} removed; it no longer serves this portal"),
    ))
}
