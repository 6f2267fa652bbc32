//! Settings → Routing: the tenant's rule table (country, plan kind, team → which connected
//! provider gets a new order, and whether it may fail over), with a form to add a rule at
//! the end and a button to delete one. Both go through core's `set_provider_routes`, which
//! validates the whole table and audits the change.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::ProviderRouteId;
use lineup_core::provider::routing::{NewRouteRule, RoutePlanKind, RouteRule};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/routing", get(show).post(add))
        .route("/settings/routing/{id}/delete", post(delete))
}

/// One rule as the page shows it.
struct RuleView {
    id: String,
    position: i32,
    country: String,
    plan_kind: &'static str,
    team: String,
    connection: String,
    allow_failover: bool,
}

/// A choice in a select.
struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "routing.html")]
struct RoutingPage {
    chrome: Chrome,
    rules: Vec<RuleView>,
    connections: Vec<Choice>,
    teams: Vec<Choice>,
    error: Option<String>,
}

async fn render(
    portal: &Portal,
    page: &Page,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let connections = portal.lineup.provider_connections(tenant).await?;
    let teams = portal.lineup.teams(tenant).await?;
    let rules = portal
        .lineup
        .provider_routes(tenant)
        .await?
        .into_iter()
        .map(|rule| RuleView {
            id: rule.id.to_string(),
            position: rule.position + 1,
            country: rule.country.unwrap_or_else(|| "any".into()),
            plan_kind: rule.plan_kind.map_or("any", RoutePlanKind::as_str),
            team: rule.team_id.map_or_else(
                || "any".into(),
                |id| {
                    teams
                        .iter()
                        .find(|t| t.id == id)
                        .map_or_else(|| id.to_string(), |t| t.name.clone())
                },
            ),
            connection: connections
                .iter()
                .find(|c| c.id == rule.provider_connection_id)
                .map_or_else(|| "a removed provider".into(), |c| c.label.clone()),
            allow_failover: rule.allow_failover,
        })
        .collect();
    let template = RoutingPage {
        chrome: page.chrome(),
        rules,
        connections: connections
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.label.clone(),
            })
            .collect(),
        teams: teams
            .iter()
            .map(|t| Choice {
                value: t.id.to_string(),
                label: t.name.clone(),
            })
            .collect(),
        error: error.as_ref().map(|(_, e)| e.clone()),
    };
    let mut response = page.render(&template)?;
    if let Some((status, _)) = error {
        *response.status_mut() = status;
    }
    Ok(response)
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, None).await
}

/// The rules as core takes them back, to change the table by one rule.
fn as_new(rules: &[RouteRule]) -> Vec<NewRouteRule> {
    rules
        .iter()
        .map(|r| NewRouteRule {
            country: r.country.clone(),
            plan_kind: r.plan_kind,
            team_id: r.team_id,
            provider_connection_id: Some(r.provider_connection_id),
            allow_failover: r.allow_failover,
        })
        .collect()
}

/// Replace the table; a mistake the admin can fix is shown on the page.
async fn save(
    portal: &Portal,
    page: &Page,
    rules: &[NewRouteRule],
    notice: &str,
) -> Result<Response, PortalError> {
    match portal
        .lineup
        .set_provider_routes(page.tenant_id(), &page.actor(), rules)
        .await
        .map_err(PortalError::from)
    {
        Ok(_) => Ok(redirect_with_notice("/settings/routing", notice)),
        Err(PortalError::Invalid { field, reason }) => {
            let error = format!("{field}: {reason}");
            render(
                portal,
                page,
                Some((StatusCode::UNPROCESSABLE_ENTITY, error)),
            )
            .await
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    country: String,
    #[serde(default)]
    plan_kind: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    provider_connection_id: String,
    /// A checkbox: present when ticked.
    allow_failover: Option<String>,
}

fn optional<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, PortalError> {
    match text.trim() {
        "" => Ok(None),
        value => value
            .parse()
            .map(Some)
            .map_err(|_| PortalError::invalid(field, "choose one from the list")),
    }
}

/// The rule as typed; empty fields match anything.
fn parse_rule(form: &AddForm) -> Result<NewRouteRule, PortalError> {
    Ok(NewRouteRule {
        country: Some(form.country.clone()).filter(|c| !c.trim().is_empty()),
        plan_kind: match form.plan_kind.trim() {
            "" => None,
            kind => Some(RoutePlanKind::parse(kind)?),
        },
        team_id: optional("team_id", &form.team_id)?,
        provider_connection_id: optional("provider_connection_id", &form.provider_connection_id)?,
        allow_failover: form.allow_failover.is_some(),
    })
}

async fn add(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<AddForm>,
) -> Result<Response, PortalError> {
    let parsed = parse_rule(&form);
    let rule = match parsed {
        Ok(rule) => rule,
        Err(PortalError::Invalid { field, reason }) => {
            let error = format!("{field}: {reason}");
            return render(
                &portal,
                &page,
                Some((StatusCode::UNPROCESSABLE_ENTITY, error)),
            )
            .await;
        }
        Err(other) => return Err(other),
    };
    let mut rules = as_new(&portal.lineup.provider_routes(page.tenant_id()).await?);
    rules.push(rule);
    save(&portal, &page, &rules, "Rule added at the end of the table").await
}

async fn delete(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id: ProviderRouteId = id.parse().map_err(|_| PortalError::NotFound)?;
    let current = portal.lineup.provider_routes(page.tenant_id()).await?;
    if !current.iter().any(|r| r.id == id) {
        return Err(PortalError::NotFound);
    }
    let kept: Vec<RouteRule> = current.into_iter().filter(|r| r.id != id).collect();
    save(&portal, &page, &as_new(&kept), "Rule deleted").await
}
