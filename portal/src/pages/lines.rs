//! Lines: the directory, one line's page with its history, revealing a ready line's
//! activation code (owners and admins, one audited POST at a time), issuing an eSIM, and the
//! lifecycle actions (each behind a confirmation page carrying a one-time key).

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use lineup_core::identity::session::random_token;
use lineup_core::ids::{EmployeeId, LineId, PlanId};
use lineup_core::lines::activation_code::ActivationCode;
use lineup_core::lines::line::LineSearch;
use lineup_core::lines::line::activation::{Revealer, unrevealable_because};
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::lines::line::{Line, LineEvent, LineState};
use lineup_core::lines::plan::Plan;
use lineup_core::lines::request::cards::delivery_message;
use lineup_core::lines::request::commands::plan_label;
use lineup_core::messaging::chat_message::Field;
use lineup_core::organisation::employee::{Employee, EmployeeStatus};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::error::PortalError;
use crate::forms::{Form, non_empty, page_number};
use crate::view::{Chrome, Page, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/lines", get(list).post(issue))
        .route("/lines/new", get(new_line))
        .route("/lines/{id}", get(show))
        .route("/lines/{id}/reveal", post(reveal))
        .route("/lines/{id}/{action}", get(confirm).post(act))
}

/// Lines per directory page.
const PAGE_SIZE: i64 = 50;
/// How long issuing waits for the provider before showing the line as provisioning (the
/// page then refreshes itself until it is ready).
const ISSUE_WAIT: Duration = Duration::from_secs(8);

/// `2026-05-01 09:30 UTC`.
pub(crate) fn when(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// One option of a `<select>`.
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub(crate) fn new(value: impl ToString, label: impl Into<String>, current: &str) -> Self {
        let value = value.to_string();
        Self {
            selected: value == current.trim(),
            label: label.into(),
            value,
        }
    }
}

/// An id from the URL; anything that is not one is simply not found.
pub(crate) fn id_from<T: std::str::FromStr>(text: &str) -> Result<T, PortalError> {
    text.parse().map_err(|_| PortalError::NotFound)
}

#[derive(Deserialize, Default)]
struct Filters {
    state: Option<String>,
    plan: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

struct ListedRow {
    id: LineId,
    employee_name: String,
    employee_email: String,
    plan_name: String,
    state: &'static str,
    iccid: String,
    created: String,
}

#[derive(Template)]
#[template(path = "lines.html")]
struct LinesPage {
    chrome: Chrome,
    rows: Vec<ListedRow>,
    states: Vec<Choice>,
    plans: Vec<Choice>,
    q: String,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    can_issue: bool,
}

async fn list(
    State(portal): State<Portal>,
    page: Page,
    Query(filters): Query<Filters>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let state = non_empty(&filters.state)
        .map(|s| {
            s.parse::<LineState>()
                .map_err(|e| PortalError::invalid("state", e))
        })
        .transpose()?;
    let plan = non_empty(&filters.plan)
        .map(|p| {
            p.parse::<PlanId>()
                .map_err(|_| PortalError::invalid("plan", "is not one of the plans"))
        })
        .transpose()?;
    let page_number = page_number(&filters.page)?;
    let search = LineSearch {
        state,
        plan,
        text: non_empty(&filters.q).map(str::to_owned),
        limit: PAGE_SIZE,
        offset: (page_number - 1) * PAGE_SIZE,
        ..LineSearch::default()
    };
    let (lines, total) = portal
        .lineup
        .search_lines(tenant, page.signed.visibility(), search)
        .await?;
    let rows = lines
        .into_iter()
        .map(|l| ListedRow {
            id: l.line.id,
            employee_name: l.employee_name,
            employee_email: l.employee_email,
            plan_name: l.plan_name,
            state: l.line.state.as_str(),
            iccid: l.line.iccid.map(|i| i.to_string()).unwrap_or_default(),
            created: when(l.line.created_at),
        })
        .collect();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let href = |n: i64| {
        let query = serde_urlencoded::to_string([
            ("state", filters.state.as_deref().unwrap_or_default()),
            ("plan", filters.plan.as_deref().unwrap_or_default()),
            ("q", filters.q.as_deref().unwrap_or_default()),
            ("page", &n.to_string()),
        ])
        .unwrap_or_default();
        format!("/lines?{query}")
    };
    let current_plan = filters.plan.as_deref().unwrap_or_default();
    let plans = portal
        .lineup
        .plans(tenant)
        .await?
        .into_iter()
        .map(|p| Choice::new(p.id, p.name, current_plan))
        .collect();
    let current_state = filters.state.as_deref().unwrap_or_default();
    let template = LinesPage {
        chrome: page.chrome(),
        rows,
        states: LineState::ALL
            .iter()
            .map(|s| Choice::new(s, s.as_str(), current_state))
            .collect(),
        plans,
        q: filters.q.clone().unwrap_or_default(),
        total,
        page: page_number,
        pages,
        prev_href: (page_number > 1).then(|| href(page_number - 1)),
        next_href: (page_number < pages).then(|| href(page_number + 1)),
        can_issue: allows(page.signed.session.role, Permission::ManageLines),
    };
    page.render(&template)
}

/// A line of this tenant that this user may see (managers: their reporting tree only).
async fn visible_line(portal: &Portal, page: &Page, id: &str) -> Result<Line, PortalError> {
    let tenant = page.tenant_id();
    let line = portal.lineup.line(tenant, id_from(id)?).await?;
    let visible = portal
        .lineup
        .visible(tenant, page.signed.visibility())
        .await?;
    if visible.contains(line.employee_id) {
        Ok(line)
    } else {
        Err(PortalError::NotFound)
    }
}

struct Activation {
    qr_data_uri: String,
    fields: Vec<Field>,
}

struct HistoryRow {
    at: String,
    who: String,
    what: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "line.html")]
struct LinePage {
    chrome: Chrome,
    line: Line,
    employee: Employee,
    plan_name: String,
    created: String,
    /// Still with the provider: the page refreshes itself.
    provisioning: bool,
    /// Only in the answer to a reveal.
    activation: Option<Activation>,
    /// A ready line whose code this user may reveal: the page offers the button.
    can_reveal: bool,
    /// Why the page shows no activation code, when it is not simply not issued yet.
    activation_note: Option<String>,
    history: Vec<HistoryRow>,
    actions: Vec<LineAction>,
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let line = visible_line(&portal, &page, &id).await?;
    render_line(&portal, &page, line, None).await
}

/// The line page with its QR code and activation code, drawn once for an owner or admin who
/// asked; core refuses anyone else and any line whose profile is installed, and audits the
/// reveal. The answer is never cached.
async fn reveal(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let line = visible_line(&portal, &page, &id).await?;
    let plans = portal.lineup.plans(tenant).await?;
    let plan = plans
        .iter()
        .find(|p| p.id == line.plan_id)
        .ok_or_else(|| PortalError::Internal(format!("the plan of line {} is gone", line.id)))?;
    let code = portal
        .lineup
        .reveal_activation_code(
            tenant,
            Revealer::Member(page.signed.session.user_id),
            line.id,
        )
        .await?;
    let activation = activation(&line, plan, &code).map_err(PortalError::Internal)?;
    let mut response = render_line(&portal, &page, line, Some(activation)).await?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn render_line(
    portal: &Portal,
    page: &Page,
    line: Line,
    activation: Option<Activation>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let role = page.signed.session.role;
    let employee = portal.lineup.employee(tenant, line.employee_id).await?;
    let plans = portal.lineup.plans(tenant).await?;
    let plan = plans.iter().find(|p| p.id == line.plan_id);
    let may_reveal = allows(role, Permission::RevealActivationCode);
    let activation_note = match (unrevealable_because(line.state), line.state) {
        (Some(why), LineState::Active | LineState::Suspended) => Some(sentence(why)),
        (None, _) if !may_reveal => Some(format!(
            "Only owners and admins can see the activation code; {} receives it by direct \
             message in chat.",
            employee.given_name
        )),
        _ => None,
    };
    let mut history = Vec::new();
    for event in portal.lineup.line_history(tenant, line.id).await? {
        let moved_to = |field: &str| {
            event
                .after
                .as_ref()
                .and_then(|a| a.get(field))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let detail = match event.action.as_str() {
            "line.transferred" => match moved_to("employee_id") {
                Some(to) => format!(
                    "to {}",
                    portal
                        .lineup
                        .actor_name(tenant, &format!("employee:{to}"))
                        .await?
                ),
                None => String::new(),
            },
            "line.plan_changed" => moved_to("plan_id")
                .and_then(|to| plans.iter().find(|p| p.id.to_string() == to))
                .map(|p| format!("to {}", p.name))
                .unwrap_or_default(),
            _ => event_detail(&event.after),
        };
        history.push(HistoryRow {
            at: when(event.at),
            who: portal.lineup.actor_name(tenant, &event.actor).await?,
            what: describe_action(&event.action),
            detail,
        });
    }
    let actions = if allows(role, Permission::ManageLines) {
        LineAction::ALL
            .into_iter()
            .filter(|a| a.applies_to(line.state))
            .collect()
    } else {
        Vec::new()
    };
    let template = LinePage {
        chrome: page.chrome(),
        plan_name: plan.map(|p| p.name.clone()).unwrap_or_default(),
        created: when(line.created_at),
        provisioning: matches!(line.state, LineState::Requested | LineState::Provisioning),
        can_reveal: may_reveal && line.state == LineState::Ready && activation.is_none(),
        activation,
        activation_note,
        history,
        actions,
        employee,
        line,
    };
    page.render(&template)
}

/// `the eSIM is …` → `The eSIM is ….`
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The same eSIM delivery chat sends, drawn as a page: QR image inline, then its fields.
fn activation(line: &Line, plan: &Plan, code: &ActivationCode) -> Result<Activation, String> {
    let message = delivery_message(line, plan, code)?;
    let image = message.image.ok_or("the QR code could not be drawn")?;
    let png = base64::engine::general_purpose::STANDARD.encode(image.png);
    Ok(Activation {
        qr_data_uri: format!("data:image/png;base64,{png}"),
        fields: message.fields,
    })
}

/// `line.plan_changed` → `Plan changed`.
fn describe_action(action: &str) -> String {
    let words = action
        .split_once('.')
        .map_or(action, |(_, rest)| rest)
        .replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// The reason of a failure, when the event carries one.
fn event_detail(after: &Option<serde_json::Value>) -> String {
    let Some(after) = after else {
        return String::new();
    };
    ["reason", "failure_reason"]
        .iter()
        .find_map(|k| after.get(*k).and_then(|v| v.as_str()))
        .unwrap_or_default()
        .to_owned()
}

#[derive(Deserialize, Default, Clone)]
struct IssueForm {
    #[serde(default)]
    employee_id: String,
    #[serde(default)]
    plan_id: String,
    /// Rendered once into the form: a double submit or a retried post issues one line.
    #[serde(default)]
    issue_key: String,
}

#[derive(Template)]
#[template(path = "line_new.html")]
struct NewLinePage {
    chrome: Chrome,
    /// Without a provider account there is nothing to offer: the page says how to connect.
    provider_connected: bool,
    employees: Vec<Choice>,
    plans: Vec<Choice>,
    form: IssueForm,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NewLineQuery {
    employee: Option<String>,
}

async fn new_line(
    State(portal): State<Portal>,
    page: Page,
    Query(query): Query<NewLineQuery>,
) -> Result<Response, PortalError> {
    let form = IssueForm {
        employee_id: query.employee.unwrap_or_default(),
        plan_id: String::new(),
        issue_key: random_token(),
    };
    render_new_line(&portal, &page, form, None).await
}

async fn render_new_line(
    portal: &Portal,
    page: &Page,
    form: IssueForm,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let employees = active_employees(portal, page)
        .await?
        .into_iter()
        .map(|e| {
            let label = format!("{} <{}>", e.full_name(), e.email);
            Choice::new(e.id, label, &form.employee_id)
        })
        .collect();
    let plans = offered_plans(portal, page)
        .await?
        .iter()
        .map(|p| Choice::new(p.id, plan_label(p), &form.plan_id))
        .collect();
    let provider_connected = portal
        .lineup
        .provider_status(page.tenant_id())
        .await?
        .is_connected();
    let failed = error.is_some();
    let template = NewLinePage {
        chrome: page.chrome(),
        provider_connected,
        employees,
        plans,
        form,
        error,
    };
    page.render_form(&template, failed)
}

async fn active_employees(portal: &Portal, page: &Page) -> Result<Vec<Employee>, PortalError> {
    let tenant = page.tenant_id();
    let visible = portal
        .lineup
        .visible(tenant, page.signed.visibility())
        .await?;
    Ok(portal
        .lineup
        .employees(tenant)
        .await?
        .into_iter()
        .filter(|e| e.status == EmployeeStatus::Active && visible.contains(e.id))
        .collect())
}

async fn offered_plans(portal: &Portal, page: &Page) -> Result<Vec<Plan>, PortalError> {
    Ok(portal
        .lineup
        .plans(page.tenant_id())
        .await?
        .into_iter()
        .filter(|p| p.active)
        .collect())
}

async fn issue(
    State(portal): State<Portal>,
    page: Page,
    Form(form): Form<IssueForm>,
) -> Result<Response, PortalError> {
    let command = match issue_command(&form) {
        Ok(command) => command,
        Err(PortalError::Invalid { field, reason }) => {
            let error = Some(format!("{field}: {reason}"));
            return render_new_line(&portal, &page, form, error).await;
        }
        Err(e) => return Err(e),
    };
    let issue_key = command.issue_key.clone();
    match issue_within(&portal, &page, command, ISSUE_WAIT).await? {
        Ok(line) => Ok(redirect_with_notice(
            &format!("/lines/{}", line.id),
            if line.state == LineState::Ready {
                "The eSIM is ready: reveal its activation code below to hand it over"
            } else {
                "The eSIM is being issued"
            },
        )),
        Err(PortalError::Invalid { field, reason }) => {
            render_new_line(&portal, &page, form, Some(format!("{field}: {reason}"))).await
        }
        Err(error) => unfinished_issue(&portal, &page, &issue_key, error).await,
    }
}

/// Issue, waiting at most `wait`; provisioning goes on in the background after that (the
/// line page shows progress). The outer error is the portal's own; the inner is the issue's.
async fn issue_within(
    portal: &Portal,
    page: &Page,
    command: IssueLine,
    wait: Duration,
) -> Result<Result<Line, PortalError>, PortalError> {
    let (lineup, tenant, actor) = (portal.lineup.clone(), page.tenant_id(), page.actor());
    let mut issuing = tokio::spawn(async move { lineup.issue_line(tenant, &actor, command).await });
    match tokio::time::timeout(wait, &mut issuing).await {
        Ok(Ok(issued)) => Ok(issued.map_err(PortalError::from)),
        Ok(Err(join)) => Err(PortalError::Internal(format!("issuing failed: {join}"))),
        Err(_still_running) => Ok(Err(PortalError::Provider("still provisioning".into()))),
    }
}

/// Issuing did not finish: when a line exists (failed, or still provisioning) its page says
/// what happened and offers a retry; otherwise the error itself.
async fn unfinished_issue(
    portal: &Portal,
    page: &Page,
    issue_key: &str,
    error: PortalError,
) -> Result<Response, PortalError> {
    let Some(line) = portal
        .lineup
        .line_issued_with(page.tenant_id(), issue_key)
        .await?
    else {
        return Err(error);
    };
    let notice = match line.state {
        LineState::Failed => format!("The eSIM could not be issued. {error}"),
        _ => "The provider is still working on this eSIM; this page refreshes until it is ready"
            .to_owned(),
    };
    Ok(redirect_with_notice(
        &format!("/lines/{}", line.id),
        &notice,
    ))
}

fn issue_command(form: &IssueForm) -> Result<IssueLine, PortalError> {
    let employee_id: EmployeeId = form
        .employee_id
        .trim()
        .parse()
        .map_err(|_| PortalError::invalid("employee_id", "choose the employee to issue to"))?;
    let plan_id: PlanId = form
        .plan_id
        .trim()
        .parse()
        .map_err(|_| PortalError::invalid("plan_id", "choose a plan"))?;
    let key = form.issue_key.trim();
    if key.len() < 16 {
        return Err(PortalError::invalid(
            "issue_key",
            "the form lost its one-time key; reload the page and submit again",
        ));
    }
    Ok(IssueLine {
        employee_id,
        plan_id,
        issue_key: format!("portal:{key}"),
    })
}

/// What can be done to a line from its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineAction {
    ChangePlan,
    Suspend,
    Resume,
    Transfer,
    Terminate,
    Retry,
}

impl LineAction {
    const ALL: [LineAction; 6] = [
        Self::ChangePlan,
        Self::Suspend,
        Self::Resume,
        Self::Transfer,
        Self::Terminate,
        Self::Retry,
    ];

    fn slug(self) -> &'static str {
        match self {
            Self::ChangePlan => "change-plan",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Transfer => "transfer",
            Self::Terminate => "terminate",
            Self::Retry => "retry",
        }
    }

    fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.slug() == slug)
    }

    fn label(self) -> &'static str {
        match self {
            Self::ChangePlan => "Change plan",
            Self::Suspend => "Suspend",
            Self::Resume => "Reactivate",
            Self::Transfer => "Transfer to another employee",
            Self::Terminate => "Terminate",
            Self::Retry => "Retry issuing",
        }
    }

    fn danger(self) -> bool {
        matches!(self, Self::Terminate | Self::Suspend)
    }

    /// What the confirmation page says will happen.
    fn consequence(self) -> &'static str {
        match self {
            Self::ChangePlan => {
                "The provider moves the line to the new plan now; the new price applies from today."
            }
            Self::Suspend => {
                "Data and calls stop until the line is reactivated. The eSIM stays on the phone and the number is kept."
            }
            Self::Resume => "Data and calls work again on this line.",
            Self::Transfer => {
                "The line (and its spend) moves to another employee. The eSIM and number stay as they are; no provider change is made."
            }
            Self::Terminate => {
                "The subscription is ended at the provider. This cannot be undone: the eSIM stops working for good, and a new eSIM would have to be issued."
            }
            Self::Retry => {
                "The provider is asked again to issue this eSIM. If the first attempt may have reached them, the same order is replayed, so no second subscription is made."
            }
        }
    }

    /// Whether the action makes sense for a line in `state` (core enforces it again).
    fn applies_to(self, state: LineState) -> bool {
        match self {
            Self::ChangePlan | Self::Transfer => state.is_live(),
            Self::Suspend => state.on(LineEvent::Suspend).is_ok(),
            Self::Resume => state.on(LineEvent::Resume).is_ok(),
            Self::Terminate => state.on(LineEvent::Terminate).is_ok(),
            Self::Retry => state.on(LineEvent::Retry).is_ok(),
        }
    }
}

#[derive(Template)]
#[template(path = "line_action.html")]
struct ConfirmPage {
    chrome: Chrome,
    line: Line,
    employee: Employee,
    plan_name: String,
    action: LineAction,
    command_key: String,
    /// For a transfer: who may receive the line; for a plan change: the other plans.
    choices: Vec<Choice>,
    choice_label: &'static str,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ActionForm {
    #[serde(default)]
    command_key: String,
    /// The new plan or the new employee, for a plan change or a transfer.
    #[serde(default)]
    target: String,
}

async fn line_and_action(
    portal: &Portal,
    page: &Page,
    id: &str,
    action: &str,
) -> Result<(Line, LineAction), PortalError> {
    let action = LineAction::from_slug(action).ok_or(PortalError::NotFound)?;
    let line = visible_line(portal, page, id).await?;
    if !action.applies_to(line.state) {
        return Err(PortalError::Conflict(format!(
            "a {} line cannot be changed this way ({})",
            line.state,
            action.label().to_lowercase()
        )));
    }
    Ok((line, action))
}

async fn confirm(
    State(portal): State<Portal>,
    page: Page,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let (line, action) = line_and_action(&portal, &page, &id, &action).await?;
    render_confirm(&portal, &page, line, action, random_token(), None).await
}

async fn render_confirm(
    portal: &Portal,
    page: &Page,
    line: Line,
    action: LineAction,
    command_key: String,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let employee = portal.lineup.employee(tenant, line.employee_id).await?;
    let plans = portal.lineup.plans(tenant).await?;
    let plan_name = plans
        .iter()
        .find(|p| p.id == line.plan_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let (choices, choice_label) = match action {
        LineAction::ChangePlan => (
            plans
                .iter()
                .filter(|p| p.active && p.id != line.plan_id)
                .map(|p| Choice::new(p.id, plan_label(p), ""))
                .collect(),
            "New plan",
        ),
        LineAction::Transfer => (
            active_employees(portal, page)
                .await?
                .into_iter()
                .filter(|e| e.id != line.employee_id)
                .map(|e| Choice::new(e.id, format!("{} <{}>", e.full_name(), e.email), ""))
                .collect(),
            "New holder",
        ),
        _ => (Vec::new(), ""),
    };
    let failed = error.is_some();
    let template = ConfirmPage {
        chrome: page.chrome(),
        line,
        employee,
        plan_name,
        action,
        command_key,
        choices,
        choice_label,
        error,
    };
    page.render_form(&template, failed)
}

async fn act(
    State(portal): State<Portal>,
    page: Page,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PortalError> {
    let action = LineAction::from_slug(&action).ok_or(PortalError::NotFound)?;
    let line = visible_line(&portal, &page, &id).await?;
    let key = form.command_key.trim();
    if key.len() < 16 {
        return render_confirm(
            &portal,
            &page,
            line,
            action,
            random_token(),
            Some("command_key: the form lost its one-time key; submit it again".into()),
        )
        .await;
    }
    let command_key = Some(format!("portal:{}:{key}", line.id));
    let (tenant, actor, lineup) = (page.tenant_id(), page.actor(), &portal.lineup);
    let target = form.target.trim();
    let done = match action {
        LineAction::Suspend => {
            lineup
                .suspend_line(tenant, &actor, line.id, command_key)
                .await
        }
        LineAction::Resume => {
            lineup
                .resume_line(tenant, &actor, line.id, command_key)
                .await
        }
        LineAction::Terminate => {
            lineup
                .terminate_line(tenant, &actor, line.id, command_key)
                .await
        }
        LineAction::Retry => {
            lineup
                .retry_line_once(tenant, &actor, line.id, command_key)
                .await
        }
        LineAction::ChangePlan => match target.parse::<PlanId>() {
            Ok(plan) => {
                lineup
                    .change_plan(tenant, &actor, line.id, plan, command_key)
                    .await
            }
            Err(_) => {
                let error = Some("target: choose the new plan".to_owned());
                return render_confirm(&portal, &page, line, action, key.to_owned(), error).await;
            }
        },
        LineAction::Transfer => match target.parse::<EmployeeId>() {
            Ok(to) => lineup.transfer_line(tenant, &actor, line.id, to).await,
            Err(_) => {
                let error = Some("target: choose who gets the line".to_owned());
                return render_confirm(&portal, &page, line, action, key.to_owned(), error).await;
            }
        },
    };
    match done {
        Ok(changed) => Ok(redirect_with_notice(
            &format!("/lines/{}", changed.id),
            &format!("Done: {} ({})", action.label(), changed.state),
        )),
        Err(lineup_core::CoreError::ProviderTimeout(_)) => Ok(redirect_with_notice(
            &format!("/lines/{}", line.id),
            "The provider is still working on this; it will finish in the background",
        )),
        Err(e) => match PortalError::from(e) {
            PortalError::Invalid { field, reason } => {
                let error = Some(format!("{field}: {reason}"));
                render_confirm(&portal, &page, line, action, key.to_owned(), error).await
            }
            other => Err(other),
        },
    }
}
