//! Settings → Joiners: the joiner policies (who gets a line on which plan when they join:
//! everyone, a team or a cost centre; the most specific wins), and the joiners with where
//! their line is.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::JoinerPolicyId;
use lineup_core::organisation::joiner::{DELIVERY_HOUR, JoinerRule};
use serde::Deserialize;

use crate::Portal;
use crate::error::PortalError;
use crate::forms::Form;
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/settings/joiners", get(show).post(add))
        .route("/settings/joiners/{id}/remove", post(remove))
}

/// A policy as the page shows it.
struct PolicyRow {
    id: JoinerPolicyId,
    who: String,
    plan: String,
}

/// A joiner as the page shows it.
struct JoinerRow {
    name: String,
    start: String,
    state: &'static str,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "joiners.html")]
struct JoinersPage {
    chrome: Chrome,
    policies: Vec<PolicyRow>,
    joiners: Vec<JoinerRow>,
    /// (form value, label) of every rule that can be picked.
    rules: Vec<(String, String)>,
    plans: Vec<(String, String)>,
    hour: u32,
    error: Option<String>,
}

async fn render(
    portal: &Portal,
    page: &Page,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let lineup = &portal.lineup;
    let (teams, centres, plans) = (
        lineup.teams(tenant).await?,
        lineup.cost_centres(tenant).await?,
        lineup.plans(tenant).await?,
    );
    let who = |rule: JoinerRule| match rule {
        JoinerRule::Everyone => "Everyone".to_owned(),
        JoinerRule::Team(id) => teams
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_string(), |t| format!("Team {}", t.name)),
        JoinerRule::CostCentre(id) => centres
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_string(), |c| format!("Cost centre {}", c.code)),
    };
    let policies = lineup
        .joiner_policies(tenant)
        .await?
        .into_iter()
        .map(|p| PolicyRow {
            id: p.id,
            who: who(p.rule),
            plan: plans
                .iter()
                .find(|plan| plan.id == p.plan_id)
                .map_or_else(|| p.plan_id.to_string(), |plan| plan.name.clone()),
        })
        .collect();
    let mut joiners = Vec::new();
    for j in lineup.joiners(tenant).await? {
        let employee = lineup.employee(tenant, j.employee_id).await?;
        joiners.push(JoinerRow {
            name: employee.full_name(),
            start: j
                .start_date
                .map_or_else(|| "not given: at once".to_owned(), |d| d.to_string()),
            state: j.state.as_str(),
            problem: j.last_error,
        });
    }
    let mut rules = vec![("everyone".to_owned(), "Everyone".to_owned())];
    rules.extend(
        teams
            .iter()
            .map(|t| (format!("team:{}", t.id), format!("Team {}", t.name))),
    );
    rules.extend(centres.iter().map(|c| {
        (
            format!("cost_centre:{}", c.id),
            format!("Cost centre {}", c.code),
        )
    }));
    let template = JoinersPage {
        chrome: page.chrome(),
        policies,
        joiners,
        rules,
        plans: plans
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.id.to_string(), p.name.clone()))
            .collect(),
        hour: DELIVERY_HOUR,
        error,
    };
    page.render(&template)
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    render(&portal, &page, None).await
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    plan: String,
}

/// `everyone`, `team:<id>` or `cost_centre:<id>`.
fn parse_rule(text: &str) -> Result<JoinerRule, PortalError> {
    let invalid = || PortalError::Invalid {
        field: "rule".into(),
        reason: format!("{text:?} is not everyone, a team or a cost centre"),
    };
    match text.split_once(':') {
        None if text == "everyone" => Ok(JoinerRule::Everyone),
        Some(("team", id)) => id.parse().map(JoinerRule::Team).map_err(|_| invalid()),
        Some(("cost_centre", id)) => id
            .parse()
            .map(JoinerRule::CostCentre)
            .map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

async fn add(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<AddForm>,
) -> Result<Response, PortalError> {
    let added = async {
        let rule = parse_rule(&form.rule)?;
        let plan = form.plan.parse().map_err(|_| PortalError::Invalid {
            field: "plan".into(),
            reason: "pick a plan".into(),
        })?;
        Ok::<_, PortalError>(
            portal
                .lineup
                .add_joiner_policy(page.tenant_id(), &page.actor(), rule, plan)
                .await?,
        )
    }
    .await;
    match added {
        Ok(_) => Ok(redirect_with_notice(
            "/settings/joiners",
            "Joiner policy added: people who join from now on get their line",
        )),
        Err(PortalError::Invalid { field, reason }) => {
            let mut response = render(&portal, &page, Some(format!("{field}: {reason}"))).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(other) => Err(other),
    }
}

async fn remove(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id: JoinerPolicyId = id.parse().map_err(|_| PortalError::NotFound)?;
    portal
        .lineup
        .remove_joiner_policy(page.tenant_id(), &page.actor(), id)
        .await?;
    Ok(redirect_with_notice(
        "/settings/joiners",
        "Joiner policy removed",
    ))
}
