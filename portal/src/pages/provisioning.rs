//! Settings → Provisioning: the SCIM base URL an identity provider (Okta, Entra ID,
//! Rippling) is given, and its bearer tokens: create one (its secret shown once), see when
//! each was last used, revoke one; and the last SCIM calls, to see what the provider did.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::ScimTokenId;
use lineup_core::organisation::scim::{ScimCall, ScimToken};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/provisioning", get(show))
        .route("/settings/provisioning/tokens", post(create))
        .route("/settings/provisioning/tokens/{id}/revoke", post(revoke))
}

#[derive(Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    chrome: Chrome,
    base_url: String,
    tokens: Vec<ScimToken>,
    /// The newest SCIM calls, newest first.
    calls: Vec<ScimCall>,
    /// A token just created: its name and secret, shown this once.
    created: Option<(String, String)>,
    typed: String,
    error: Option<String>,
    leavers: Vec<super::pending_leavers::PendingLeaver>,
}

async fn render(
    portal: &Portal,
    page: &Page,
    created: Option<(String, String)>,
    typed: String,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let template = ProvisioningPage {
        chrome: page.chrome(),
        base_url: format!(
            "{}/scim/v2",
            portal.config.tenant_url(page.tenant.slug.as_str())
        ),
        tokens: portal.lineup.scim_tokens(page.tenant_id()).await?,
        calls: portal.lineup.scim_calls(page.tenant_id()).await?,
        created,
        typed,
        error,
        leavers: super::pending_leavers::pending_leavers(&portal.lineup, page.tenant_id()).await?,
    };
    page.render(&template)
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, None, String::new(), None).await
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
}

async fn create(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<CreateForm>,
) -> Result<Response, PortalError> {
    let issued = portal
        .lineup
        .create_scim_token(
            page.tenant_id(),
            &page.actor(),
            page.signed.session.user_id,
            &form.name,
        )
        .await
        .map_err(PortalError::from);
    match issued {
        Ok(issued) => {
            let created = Some((issued.token.name, issued.secret));
            render(&portal, &page, created, String::new(), None).await
        }
        Err(PortalError::Invalid { field, reason }) => {
            let error = Some(format!("{field}: {reason}"));
            let mut response = render(&portal, &page, None, form.name, error).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other),
    }
}

async fn revoke(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id: ScimTokenId = id.parse().map_err(|_| PortalError::NotFound)?;
    let token = portal
        .lineup
        .revoke_scim_token(page.tenant_id(), &page.actor(), id)
        .await?;
    Ok(redirect_with_notice(
        "/settings/provisioning",
        &format!(
            "{} is revoked: calls with it are refused from now on",
            token.name
        ),
    ))
}
