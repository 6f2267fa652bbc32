//! Alerts: the list finance works through (filters by state, kind and period, newest first)
//! and one alert with its actions: acknowledge, snooze, resolve, suspend the line, raise the
//! cap, terminate an unknown subscription at the provider. Every action is a core command
//! audited as the signed-in user.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use lineup_core::ids::AlertId;
use lineup_core::organisation::tenant::Tenant;
use lineup_core::spend::alert::{self, Alert, AlertFilter, AlertKind, AlertState};
use serde::Deserialize;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::error::PortalError;
use crate::forms::{Form, non_empty};
use crate::view::{Chrome, Page, redirect_with_notice};

/// The list shows this many; narrower filters find older ones.
const LIST_LIMIT: usize = 200;

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}", get(show))
        .route("/alerts/{id}/acknowledge", post(acknowledge))
        .route("/alerts/{id}/resolve", post(resolve))
        .route("/alerts/{id}/snooze", post(snooze))
        .route("/alerts/{id}/suspend", post(suspend))
        .route("/alerts/{id}/raise-cap", post(raise_cap))
        .route("/alerts/{id}/terminate", post(terminate))
}

/// One alert as a row: who and what it is about, in words.
struct AlertRow {
    id: String,
    kind: &'static str,
    title: &'static str,
    message: String,
    employee: Option<(String, String)>,
    line: Option<String>,
    scope: String,
    period: String,
    state: &'static str,
    snoozed_until: Option<String>,
    created: String,
    resolved: bool,
}

impl AlertRow {
    fn new(alert: &Alert, names: &HashMap<String, String>) -> Self {
        let employee = alert.employee_id.map(|e| {
            let id = e.to_string();
            let name = names.get(&id).cloned().unwrap_or_else(|| id.clone());
            (id, name)
        });
        Self {
            id: alert.id.to_string(),
            kind: alert.kind.as_str(),
            title: alert.kind.title(),
            message: alert.message.clone(),
            employee,
            line: alert.line_id.map(|l| l.to_string()),
            scope: scope_in_words(&alert.scope, names),
            period: alert.period.clone(),
            state: alert.state.as_str(),
            snoozed_until: alert.snoozed_until.map(alert::minute_utc),
            created: alert::minute_utc(alert.created_at),
            resolved: alert.state == AlertState::Resolved,
        }
    }
}

/// `team:<id>` → "Team Sales"; names hold employees, teams and cost centres by id.
fn scope_in_words(scope: &str, names: &HashMap<String, String>) -> String {
    let (kind, id) = scope.split_once(':').unwrap_or((scope, ""));
    let kind = match kind {
        "tenant" => return "Whole organisation".into(),
        "team" => "Team",
        "cost_centre" => "Cost centre",
        "employee" => "Employee",
        "line" => "Line",
        other => other,
    };
    match names.get(id) {
        Some(name) => format!("{kind} {name}"),
        None => format!("{kind} {id}"),
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    period: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<AlertFilter, PortalError> {
        let state = non_empty(&self.state)
            .map(|s| {
                AlertState::parse(s).ok_or_else(|| {
                    PortalError::invalid(
                        "state",
                        format!("{s:?} is not open, acknowledged, snoozed or resolved"),
                    )
                })
            })
            .transpose()?;
        let kind = non_empty(&self.kind)
            .map(|k| {
                AlertKind::parse(k).ok_or_else(|| {
                    PortalError::invalid("kind", format!("{k:?} is not a kind of alert"))
                })
            })
            .transpose()?;
        let period = non_empty(&self.period)
            .map(|p| {
                let valid = p.len() == 7
                    && p.as_bytes()[4] == b'-'
                    && p.chars()
                        .enumerate()
                        .all(|(i, c)| i == 4 || c.is_ascii_digit());
                if valid {
                    Ok(p.to_owned())
                } else {
                    Err(PortalError::invalid(
                        "period",
                        format!("{p:?} is not a month like 2026-11"),
                    ))
                }
            })
            .transpose()?;
        Ok(AlertFilter {
            state,
            kind,
            period,
        })
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    alerts: Vec<AlertRow>,
    total: usize,
    limit: usize,
    states: [&'static str; 4],
    kinds: Vec<(&'static str, &'static str)>,
    state: String,
    kind: String,
    period: String,
    error: Option<String>,
    may_act: bool,
    /// Where the list's buttons come back to: this list with its filters.
    back: String,
}

/// Names of the people, teams and cost centres alerts can be about, by id.
async fn names(portal: &Portal, tenant: &Tenant) -> Result<HashMap<String, String>, PortalError> {
    let mut names: HashMap<String, String> = portal
        .lineup
        .employees(tenant.id)
        .await?
        .into_iter()
        .map(|e| (e.id.to_string(), e.full_name()))
        .collect();
    for team in portal.lineup.teams(tenant.id).await? {
        names.insert(team.id.to_string(), team.name);
    }
    for centre in portal.lineup.cost_centres(tenant.id).await? {
        names.insert(centre.id.to_string(), centre.name);
    }
    Ok(names)
}

async fn list(
    State(portal): State<Portal>,
    page: Page,
    Query(query): Query<ListQuery>,
) -> Result<Response, PortalError> {
    let (alerts, total, error) = match query.filter() {
        Ok(filter) => {
            let alerts = portal.lineup.alerts(page.tenant_id(), &filter).await?;
            let names = names(&portal, &page.tenant).await?;
            let total = alerts.len();
            let rows = alerts
                .iter()
                .take(LIST_LIMIT)
                .map(|a| AlertRow::new(a, &names))
                .collect();
            (rows, total, None)
        }
        Err(e) => (Vec::new(), 0, Some(e.to_string())),
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let template = AlertsPage {
        chrome: page.chrome(),
        alerts,
        total,
        limit: LIST_LIMIT,
        states: ["open", "acknowledged", "snoozed", "resolved"],
        kinds: AlertKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.title()))
            .collect(),
        state: text(&query.state),
        kind: text(&query.kind),
        period: text(&query.period),
        may_act: allows(page.signed.session.role, Permission::ActOnAlerts),
        back: format!(
            "/alerts?{}",
            serde_urlencoded::to_string([
                ("state", text(&query.state)),
                ("kind", text(&query.kind)),
                ("period", text(&query.period)),
            ])
            .unwrap_or_default()
        ),
        error: error.clone(),
    };
    let mut response = page.render(&template)?;
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// What the actions' forms held, kept when one is refused.
#[derive(Deserialize, Default)]
struct ActionForm {
    days: Option<String>,
    amount: Option<String>,
    confirm: Option<String>,
    /// The alerts list (with its filters) the action was taken from.
    back: Option<String>,
}

impl ActionForm {
    /// Back to the list the button was on, else to the alert; only ever a page of alerts.
    fn after(&self, id: AlertId) -> String {
        match non_empty(&self.back) {
            Some(back) if back.starts_with("/alerts?") && !back.contains("//") => back.to_owned(),
            _ => format!("/alerts/{id}"),
        }
    }
}

#[derive(Template)]
#[template(path = "alert.html")]
struct AlertPage {
    chrome: Chrome,
    alert: AlertRow,
    details: Vec<(&'static str, String)>,
    lines: Vec<(String, String, &'static str)>,
    can_suspend: bool,
    /// The provider subscription Terminate ends, when this user may press it.
    terminates: Option<String>,
    currency: String,
    raise_suggestion: Option<String>,
    days: String,
    amount: String,
    max_snooze_days: i64,
    error: Option<String>,
    may_act: bool,
}

fn alert_id(raw: &str) -> Result<AlertId, PortalError> {
    raw.parse().map_err(|_| PortalError::NotFound)
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id = alert_id(&id)?;
    render_alert(&portal, &page, id, &ActionForm::default(), None).await
}

async fn render_alert(
    portal: &Portal,
    page: &Page,
    id: AlertId,
    form: &ActionForm,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = &page.tenant;
    let alert = portal.lineup.alert(tenant.id, id).await?;
    let names = names(portal, tenant).await?;
    let lines = if alert.has_lines() {
        portal.lineup.alert_lines(tenant.id, id).await?
    } else {
        Vec::new()
    };
    let money = |key: &str| {
        alert
            .details
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .map(|m| tenant.money(m).to_string())
    };
    let mut details = Vec::new();
    if let Some(spent) = money("spent_minor") {
        details.push(("Spent", spent));
    }
    if let Some(cap) = money("limit_minor") {
        details.push(("Cap", cap));
    }
    let raise = alert::button_raise_minor(&alert, tenant.currency);
    let template = AlertPage {
        chrome: page.chrome(),
        details,
        lines: lines
            .iter()
            .map(|l| {
                let owner = names
                    .get(&l.employee_id.to_string())
                    .map_or("someone", String::as_str);
                (
                    l.id.to_string(),
                    alert::line_label(l, owner),
                    l.state.as_str(),
                )
            })
            .collect(),
        can_suspend: alert.has_lines(),
        terminates: alert::unknown_subscription(&alert)
            .filter(|_| allows(page.signed.session.role, Permission::ManageLines))
            .map(str::to_owned),
        currency: tenant.currency.to_string(),
        raise_suggestion: raise.map(|m| tenant.currency.format_amount(m)),
        days: form
            .days
            .clone()
            .unwrap_or_else(|| alert::SNOOZE_BUTTON_DAYS.to_string()),
        amount: form
            .amount
            .clone()
            .or_else(|| raise.map(|m| tenant.currency.format_amount(m)))
            .unwrap_or_default(),
        max_snooze_days: alert::MAX_SNOOZE_DAYS,
        error: error.clone(),
        may_act: allows(page.signed.session.role, Permission::ActOnAlerts),
        alert: AlertRow::new(&alert, &names),
    };
    let mut response = page.render(&template)?;
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// Carry out an action; a refused input re-renders the alert with the reason and what was
/// typed, anything else goes back to the list with a notice.
async fn act(
    portal: &Portal,
    page: &Page,
    raw_id: &str,
    form: ActionForm,
    action: impl AsyncFnOnce(AlertId, &ActionForm) -> Result<String, PortalError>,
) -> Result<Response, PortalError> {
    let id = alert_id(raw_id)?;
    // An unknown (or another tenant's) alert is 404 before any input is looked at.
    portal.lineup.alert(page.tenant_id(), id).await?;
    match action(id, &form).await {
        Ok(notice) => Ok(redirect_with_notice(&form.after(id), &notice)),
        Err(PortalError::Invalid { field, reason }) => {
            render_alert(portal, page, id, &form, Some(format!("{field}: {reason}"))).await
        }
        Err(e) => Err(e),
    }
}

async fn acknowledge(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    move_alert(&portal, &page, &id, form, AlertState::Acknowledged).await
}

async fn resolve(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    move_alert(&portal, &page, &id, form, AlertState::Resolved).await
}

/// Acknowledge or resolve.
async fn move_alert(
    portal: &Portal,
    page: &Page,
    id: &str,
    form: ActionForm,
    to: AlertState,
) -> Result<Response, PortalError> {
    act(portal, page, id, form, async |id, _| {
        let (tenant, actor) = (page.tenant_id(), page.actor());
        if to == AlertState::Resolved {
            portal.lineup.resolve_alert(tenant, &actor, id).await?;
        } else {
            portal.lineup.acknowledge_alert(tenant, &actor, id).await?;
        }
        Ok(format!("Alert {}", to.as_str()))
    })
    .await
}

async fn snooze(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    act(&portal, &page, &id, form, async |id, form| {
        let text = non_empty(&form.days)
            .ok_or_else(|| PortalError::invalid("days", "say for how many days"))?;
        let days = text.parse::<i64>().map_err(|_| {
            PortalError::invalid("days", format!("{text:?} is not a whole number of days"))
        })?;
        let alert = portal
            .lineup
            .snooze_alert(page.tenant_id(), &page.actor(), id, days)
            .await?;
        let until = alert
            .snoozed_until
            .map(alert::minute_utc)
            .unwrap_or_default();
        Ok(format!("Alert snoozed until {until}"))
    })
    .await
}

async fn suspend(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    act(&portal, &page, &id, form, async |id, form| {
        if non_empty(&form.confirm) != Some("yes") {
            return Err(PortalError::invalid(
                "confirm",
                "tick the box to confirm: the employee loses service until the line is reactivated",
            ));
        }
        Ok(portal
            .lineup
            .suspend_line_from_alert_told(page.tenant_id(), &page.actor(), id)
            .await?)
    })
    .await
}

async fn terminate(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    act(&portal, &page, &id, form, async |id, form| {
        if non_empty(&form.confirm) != Some("yes") {
            return Err(PortalError::invalid(
                "confirm",
                "tick the box to confirm: whoever uses the subscription loses service for good",
            ));
        }
        let alert = portal
            .lineup
            .terminate_subscription_from_alert(page.tenant_id(), &page.actor(), id)
            .await?;
        let subscription = alert::unknown_subscription(&alert).unwrap_or_default();
        Ok(format!(
            "Terminated subscription {subscription} at the provider"
        ))
    })
    .await
}

async fn raise_cap(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    let currency = page.tenant.currency;
    act(&portal, &page, &id, form, async |id, form| {
        let text = non_empty(&form.amount).ok_or_else(|| {
            PortalError::invalid("amount", format!("say how much, in {currency}"))
        })?;
        let amount = currency.parse_amount(text).ok_or_else(|| {
            PortalError::invalid(
                "amount",
                format!("{text:?} is not an amount in {currency} (e.g. 25.00)"),
            )
        })?;
        let tenant = page.tenant_id();
        // Core raises once per alert (a double submit raises once); say so instead of
        // pretending a second raise happened.
        if let Some(by) = portal
            .lineup
            .last_alert_action(tenant, id, "alert.cap_raised")
            .await?
        {
            return Err(PortalError::Conflict(format!(
                "the cap was already raised from this alert by {by}; change the cap itself \
                 on the Policies page"
            )));
        }
        let alert = portal
            .lineup
            .raise_cap_from_alert(tenant, &page.actor(), id, amount)
            .await?;
        let about = scope_in_words(&alert.scope, &names(&portal, &page.tenant).await?);
        Ok(format!(
            "Raised the cap of {about} by {} for {}",
            page.tenant.money(amount),
            alert.period
        ))
    })
    .await
}
