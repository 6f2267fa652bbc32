//! Single sign-on: the settings page (issuer, client id, sealed secret, on/off), and the two
//! public legs of a sign-in: off to the identity provider, and back.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use lineup_core::CoreError;
use lineup_core::identity::sso::SsoUpdate;
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::redirect::safe_next;
use crate::session::with_session_cookie;
use crate::view::{Chrome, Page, Visitor, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/sso", get(show).post(save))
        .route("/sso/start", get(start))
        .route("/sso/callback", get(callback))
}

#[derive(Template)]
#[template(path = "sso_settings.html")]
struct SettingsPage {
    chrome: Chrome,
    form: SsoForm,
    has_secret: bool,
    callback_url: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct SsoForm {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    client_secret: Option<String>,
    enabled: Option<String>,
}

fn settings_page(
    portal: &Portal,
    page: &Page,
    form: SsoForm,
    has_secret: bool,
    error: Option<String>,
) -> SettingsPage {
    SettingsPage {
        chrome: page.chrome(),
        form: SsoForm {
            client_secret: None,
            ..form
        },
        has_secret,
        callback_url: portal.tenant_link(&page.tenant, "/sso/callback"),
        error,
    }
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let current = portal.lineup.sso_settings(page.tenant_id()).await?;
    let form = current.as_ref().map_or_else(SsoForm::default, |s| SsoForm {
        issuer: s.issuer.clone(),
        client_id: s.client_id.clone(),
        client_secret: None,
        enabled: s.enabled.then(|| "on".to_owned()),
    });
    page.render(&settings_page(
        &portal,
        &page,
        form,
        current.is_some(),
        None,
    ))
}

async fn save(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<SsoForm>,
) -> Result<Response, PortalError> {
    let update = SsoUpdate {
        issuer: form.issuer.clone(),
        client_id: form.client_id.clone(),
        client_secret: form.client_secret.clone(),
        enabled: form.enabled.is_some(),
    };
    let tenant = page.tenant_id();
    match portal
        .lineup
        .save_sso_settings(tenant, &page.actor(), update)
        .await
    {
        Ok(saved) => {
            let notice = if saved.enabled {
                "Single sign-on is on: the sign-in page offers it"
            } else {
                "Single sign-on settings saved (off)"
            };
            Ok(redirect_with_notice("/settings/sso", notice))
        }
        Err(CoreError::Invalid { field, reason }) => {
            let has_secret = portal.lineup.sso_settings(tenant).await?.is_some();
            let error = Some(format!("{field}: {reason}"));
            let mut response =
                page.render(&settings_page(&portal, &page, form, has_secret, error))?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "sso_refused.html")]
struct RefusedPage {
    tenant_name: String,
    reason: String,
}

fn refused(tenant_name: &str, reason: String) -> Result<Response, PortalError> {
    let page = RefusedPage {
        tenant_name: tenant_name.to_owned(),
        reason,
    };
    Ok((StatusCode::FORBIDDEN, Html(page.render()?)).into_response())
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

/// Off to the identity provider; it sends the browser back to this very host.
async fn start(
    State(portal): State<Portal>,
    Visitor {
        tenant,
        csrf: browser,
    }: Visitor,
    headers: HeaderMap,
    Query(query): Query<StartQuery>,
) -> Result<Response, PortalError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(PortalError::NotFound)?;
    let redirect_uri = format!("{}://{host}/sso/callback", portal.config.base_url.scheme());
    let next = safe_next(query.next.as_deref());
    match portal
        .lineup
        .begin_sso(tenant.id, &browser, &redirect_uri, &next)
        .await
    {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(CoreError::Invalid { reason, .. }) => refused(&tenant.name, reason),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(portal): State<Portal>,
    Visitor {
        tenant,
        csrf: browser,
    }: Visitor,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PortalError> {
    let (Some(code), Some(state)) = (query.code, query.state) else {
        let reason = match query.error {
            Some(error) => format!(
                "the identity provider stopped the sign-in: {error} {}",
                query.error_description.unwrap_or_default()
            ),
            None => "the identity provider sent no code back".to_owned(),
        };
        return refused(&tenant.name, reason);
    };
    match portal
        .lineup
        .finish_sso(tenant.id, &browser, &state, &code)
        .await
    {
        Ok((new, next)) => {
            let response = Redirect::to(&safe_next(Some(&next))).into_response();
            Ok(with_session_cookie(&portal, &new.token, response))
        }
        Err(CoreError::NotAuthorised(reason) | CoreError::Invalid { reason, .. }) => {
            tracing::info!(tenant = tenant.slug.as_str(), %reason, "single sign-on refused");
            refused(&tenant.name, reason)
        }
        Err(e) => Err(e.into()),
    }
}
