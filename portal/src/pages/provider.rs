//! Settings → Provider: the tenant's own provider account (checked live, secret sealed),
//! the plans it offers with prices, sync now, disconnect.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::CoreError;
use lineup_core::lines::plan::Plan;
use lineup_core::provider::Validity;
use lineup_core::provider::connection::{ProviderCredentials, ProviderStatus};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/provider", get(show).post(connect))
        .route("/settings/provider/sync", post(sync))
        .route("/settings/provider/disconnect", post(disconnect))
}

struct PlanRow {
    name: String,
    data: String,
    validity: String,
    countries: usize,
    price: String,
}

/// The tenant's own connection as the page shows it.
struct Connected {
    client_id: String,
    account_id: String,
    checked_at: String,
    webhook_url: String,
    webhook_secret: String,
}

#[derive(Template)]
#[template(path = "provider_settings.html")]
struct ProviderPage {
    chrome: Chrome,
    connected: Option<Connected>,
    server_default: bool,
    plans: Vec<PlanRow>,
    form: ConnectForm,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ConnectForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    account_id: String,
}

fn plan_row(plan: &Plan) -> PlanRow {
    PlanRow {
        name: plan.name.clone(),
        data: plan
            .data
            .map_or_else(|| "unlimited".to_owned(), |b| b.to_string()),
        validity: match plan.validity {
            Validity::Monthly => "monthly".to_owned(),
            Validity::Days(days) => format!("{days} days"),
        },
        countries: plan.coverage.len(),
        price: plan.price.map_or_else(|| "—".to_owned(), |p| p.to_string()),
    }
}

async fn render(
    portal: &Portal,
    page: &Page,
    form: ConnectForm,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let status = portal.lineup.provider_status(tenant).await?;
    let connected = portal
        .lineup
        .provider_connection(tenant)
        .await?
        .map(|c| Connected {
            webhook_url: portal.tenant_link(&page.tenant, &c.webhook_path()),
            client_id: c.client_id,
            account_id: c.account_id,
            checked_at: c
                .checked_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            webhook_secret: c.webhook_secret,
        });
    let plans = portal
        .lineup
        .plans(tenant)
        .await?
        .iter()
        .filter(|p| p.active)
        .map(plan_row)
        .collect();
    let failed = error.is_some();
    let template = ProviderPage {
        chrome: page.chrome(),
        connected,
        server_default: matches!(status, ProviderStatus::ServerDefault { .. }),
        plans,
        form: ConnectForm {
            client_secret: String::new(),
            ..form
        },
        error,
    };
    page.render_form(&template, failed)
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let form = match portal.lineup.provider_connection(page.tenant_id()).await? {
        Some(c) => ConnectForm {
            client_id: c.client_id,
            client_secret: String::new(),
            account_id: c.account_id,
        },
        None => ConnectForm::default(),
    };
    render(&portal, &page, form, None).await
}

async fn connect(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<ConnectForm>,
) -> Result<Response, PortalError> {
    let credentials = ProviderCredentials {
        client_id: form.client_id.clone(),
        client_secret: form.client_secret.clone(),
        account_id: form.account_id.clone(),
    };
    match portal
        .lineup
        .connect_provider(page.tenant_id(), &page.actor(), credentials)
        .await
    {
        Ok((_, plans)) => {
            let offered = plans.iter().filter(|p| p.active).count();
            Ok(redirect_with_notice(
                "/settings/provider",
                &format!("Provider account connected: {offered} plans synced"),
            ))
        }
        Err(CoreError::Invalid { reason, .. }) => render(&portal, &page, form, Some(reason)).await,
        Err(e) => Err(e.into()),
    }
}

async fn sync(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    match portal
        .lineup
        .sync_plans(page.tenant_id(), &page.actor())
        .await
    {
        Ok(plans) => {
            let offered = plans.iter().filter(|p| p.active).count();
            Ok(redirect_with_notice(
                "/settings/provider",
                &format!("Plans synced: {offered} offered"),
            ))
        }
        Err(e @ (CoreError::Provider(_) | CoreError::ProviderNotConnected)) => {
            let mut response =
                render(&portal, &page, ConnectForm::default(), Some(e.to_string())).await?;
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

async fn disconnect(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let removed = portal
        .lineup
        .disconnect_provider(page.tenant_id(), &page.actor())
        .await?;
    Ok(redirect_with_notice(
        "/settings/provider",
        if removed {
            "Provider account disconnected"
        } else {
            "No provider account of your own was connected"
        },
    ))
}
