//! People: the directory (search, filters, paging in SQL), an employee's page, editing and
//! offboarding. Managers see only their reporting tree.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use lineup_core::email_address::Email;
use lineup_core::ids::{CostCentreId, EmployeeId, TeamId};
use lineup_core::messaging::chat::{ChatReach, Platform};
use lineup_core::organisation::employee::DirectoryFilter;
use lineup_core::organisation::employee::{EmployeeEdit, EmployeeProfile, EmployeeStatus};
use lineup_core::organisation::offboarding::{LineOutcome, OffboardingPlan, OffboardingReport};
use lineup_core::organisation::org_unit::{CostCentre, Team};
use lineup_core::organisation::tenant::OffboardingAction;
use lineup_core::store::employees::DirectoryRow;
use serde::Deserialize;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::error::PortalError;
use crate::forms::{Form, non_empty, page_number};
use crate::view::{Chrome, Page, form_status, redirect_with_notice};

pub fn routes() -> Router<Portal> {
    Router::new()
        .route("/employees", get(directory))
        .route("/employees/{id}", get(show))
        .route("/employees/{id}/edit", get(edit_form).post(edit))
        .route(
            "/employees/{id}/offboard",
            get(offboard_form).post(offboard),
        )
}

const PAGE_SIZE: i64 = 50;

/// The directory's query string, as typed (so the form shows it back).
#[derive(Deserialize, Default, Clone)]
struct DirectoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    cost_centre: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    sort: String,
    page: Option<String>,
}

impl DirectoryQuery {
    fn filter(&self) -> Result<DirectoryFilter, PortalError> {
        let page = page_number(&self.page)?;
        Ok(DirectoryFilter {
            search: non_empty(&Some(self.q.clone())).map(str::to_owned),
            team: self.team.parse::<TeamId>().ok(),
            cost_centre: self.cost_centre.parse::<CostCentreId>().ok(),
            status: EmployeeStatus::parse(&self.status),
            has_line: match self.line.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            within: None,
            descending: self.sort == "-name",
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
        })
    }

    /// This query on another page.
    fn href(&self, page: i64) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("team", &self.team),
            ("cost_centre", &self.cost_centre),
            ("status", &self.status),
            ("line", &self.line),
            ("sort", &self.sort),
        ];
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(k, v);
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        format!("/employees?{}", query.finish())
    }

    fn sorted_by(&self, sort: &str) -> String {
        Self {
            sort: sort.to_owned(),
            ..self.clone()
        }
        .href(1)
    }
}

#[derive(Template)]
#[template(path = "employees.html")]
struct DirectoryPage {
    chrome: Chrome,
    query: DirectoryQuery,
    /// Each person with the chat platforms that reach them.
    rows: Vec<(DirectoryRow, Vec<&'static str>)>,
    total: i64,
    first: i64,
    last: i64,
    previous: Option<String>,
    next: Option<String>,
    sort_link: String,
    descending: bool,
    teams: Vec<Team>,
    cost_centres: Vec<CostCentre>,
    can_manage: bool,
    scoped: bool,
}

async fn directory(
    State(portal): State<Portal>,
    page: Page,
    Query(query): Query<DirectoryQuery>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let filter = query.filter()?;
    let (rows, total) = portal
        .lineup
        .employee_directory(tenant, page.signed.visibility(), filter.clone())
        .await?;
    let ids: Vec<EmployeeId> = rows.iter().map(|r| r.id).collect();
    let mut chat = portal.lineup.chat_platforms_of(tenant, &ids).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|row| {
            let platforms = chat.remove(&row.id).unwrap_or_default();
            (row, platforms.into_iter().map(Platform::label).collect())
        })
        .collect();
    let current = filter.offset / PAGE_SIZE + 1;
    let shown_to = filter.offset + rows.len() as i64;
    let template = DirectoryPage {
        chrome: page.chrome(),
        first: if rows.is_empty() {
            0
        } else {
            filter.offset + 1
        },
        last: shown_to,
        previous: (current > 1).then(|| query.href(current - 1)),
        next: (shown_to < total).then(|| query.href(current + 1)),
        sort_link: query.sorted_by(if filter.descending { "name" } else { "-name" }),
        descending: filter.descending,
        teams: portal.lineup.teams(tenant).await?,
        cost_centres: portal.lineup.cost_centres(tenant).await?,
        can_manage: can_manage(&page),
        scoped: page.signed.visibility()
            != lineup_core::organisation::employee::Visibility::Everyone,
        query,
        rows,
        total,
    };
    page.render(&template)
}

fn can_manage(page: &Page) -> bool {
    allows(page.signed.session.role, Permission::ManagePeople)
}

fn employee_id(raw: &str) -> Result<EmployeeId, PortalError> {
    raw.parse().map_err(|_| PortalError::NotFound)
}

#[derive(Template)]
#[template(path = "employee.html")]
struct EmployeePage {
    chrome: Chrome,
    profile: EmployeeProfile,
    can_manage: bool,
    /// Lines offboarding still has to act on (after a failure, or lines issued since).
    unfinished_offboarding: bool,
    reach: Vec<ReachRow>,
}

/// One chat platform on an employee's page: their account there, or why there is none.
struct ReachRow {
    platform: &'static str,
    user_id: Option<String>,
    why_not: String,
}

impl ReachRow {
    fn new(reach: &ChatReach) -> Self {
        let why_not = match (reach.platform, reach.connected) {
            (Platform::Slack, false) => "no Slack workspace is connected".to_owned(),
            (Platform::Discord, false) => "no Discord server is connected".to_owned(),
            (Platform::Teams, false) => "Teams is not connected".to_owned(),
            (Platform::Slack, true) => "not found in Slack by their email yet; Lineup looks \
                 again at the next import and when it first messages them"
                .to_owned(),
            (Platform::Discord, true) => "Discord does not share emails, so add their Discord \
                 user ID to an import"
                .to_owned(),
            (Platform::Teams, true) => "Teams links them by email when they first use Lineup \
                 there, or add their Teams ID to an import"
                .to_owned(),
        };
        Self {
            platform: reach.platform.label(),
            user_id: reach.user_id.clone(),
            why_not,
        }
    }
}

async fn show(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id = employee_id(&id)?;
    let profile = portal
        .lineup
        .employee_profile(page.tenant_id(), page.signed.visibility(), id)
        .await?;
    let action = page.tenant.settings.offboarding_action;
    let unfinished_offboarding = profile.employee.status == EmployeeStatus::Offboarded
        && profile.lines.iter().any(|(line, _)| {
            matches!(
                lineup_core::organisation::offboarding::Step::for_line(action, line.state),
                lineup_core::organisation::offboarding::Step::Suspend
                    | lineup_core::organisation::offboarding::Step::Terminate
            )
        });
    let template = EmployeePage {
        chrome: page.chrome(),
        can_manage: can_manage(&page),
        unfinished_offboarding,
        reach: profile.chat.iter().map(ReachRow::new).collect(),
        profile,
    };
    page.render(&template)
}

#[derive(Template)]
#[template(path = "employee_edit.html")]
struct EditPage {
    chrome: Chrome,
    id: EmployeeId,
    name: String,
    form: EditForm,
    teams: Vec<Team>,
    cost_centres: Vec<CostCentre>,
    error: Option<String>,
}

/// The edit form as typed.
#[derive(Deserialize, Default)]
struct EditForm {
    email: String,
    given_name: String,
    family_name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    cost_centre: String,
    #[serde(default)]
    manager_email: String,
}

/// A choice from a list: empty is none, anything else must be one of the list's ids.
fn chosen<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, PortalError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| PortalError::invalid(field, "choose one from the list")),
    }
}

impl EditForm {
    fn parse(&self) -> Result<EmployeeEdit, PortalError> {
        let email =
            Email::parse(&self.email).map_err(|e| PortalError::invalid("email", e.to_string()))?;
        let manager = match self.manager_email.trim() {
            "" => None,
            text => Some(
                Email::parse(text)
                    .map_err(|e| PortalError::invalid("manager", format!("manager {e}")))?,
            ),
        };
        Ok(EmployeeEdit {
            email,
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            team_id: chosen("team", &self.team)?,
            cost_centre_id: chosen("cost_centre", &self.cost_centre)?,
            manager,
        })
    }
}

async fn edit_page(
    portal: &Portal,
    page: &Page,
    id: EmployeeId,
    form: Option<EditForm>,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let profile = portal
        .lineup
        .employee_profile(tenant, page.signed.visibility(), id)
        .await?;
    let e = &profile.employee;
    let form = form.unwrap_or_else(|| EditForm {
        email: e.email.to_string(),
        given_name: e.given_name.clone(),
        family_name: e.family_name.clone(),
        team: e.team_id.map(|t| t.to_string()).unwrap_or_default(),
        cost_centre: e.cost_centre_id.map(|c| c.to_string()).unwrap_or_default(),
        manager_email: profile
            .managers
            .first()
            .map(|m| m.email.to_string())
            .unwrap_or_default(),
    });
    let template = EditPage {
        chrome: page.chrome(),
        id,
        name: e.full_name(),
        form,
        teams: portal.lineup.teams(tenant).await?,
        cost_centres: portal.lineup.cost_centres(tenant).await?,
        error: error.clone(),
    };
    Ok(form_status(page.render(&template)?, error.is_some()))
}

async fn edit_form(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    edit_page(&portal, &page, employee_id(&id)?, None, None).await
}

async fn edit(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Result<Response, PortalError> {
    let id = employee_id(&id)?;
    let saved = match form.parse() {
        Ok(changes) => {
            portal
                .lineup
                .update_employee(page.tenant_id(), &page.actor(), id, changes)
                .await
        }
        Err(e) => return form_error(&portal, &page, id, form, e).await,
    };
    match saved {
        Ok(employee) => Ok(redirect_with_notice(
            &format!("/employees/{id}"),
            &format!("Saved {}", employee.full_name()),
        )),
        Err(e) => form_error(&portal, &page, id, form, e.into()).await,
    }
}

/// A bad field re-renders the form with what was typed; anything else is the error page.
async fn form_error(
    portal: &Portal,
    page: &Page,
    id: EmployeeId,
    form: EditForm,
    error: PortalError,
) -> Result<Response, PortalError> {
    match error {
        PortalError::Invalid { field, reason } => {
            edit_page(
                portal,
                page,
                id,
                Some(form),
                Some(format!("{field}: {reason}")),
            )
            .await
        }
        other => Err(other),
    }
}

#[derive(Template)]
#[template(path = "offboard.html")]
struct OffboardPage {
    chrome: Chrome,
    plan: OffboardingPlan,
    action: &'static str,
    error: Option<String>,
}

fn action_word(action: OffboardingAction) -> &'static str {
    match action {
        OffboardingAction::Suspend => "suspended",
        OffboardingAction::Terminate => "terminated",
        OffboardingAction::Grace => {
            "suspended, and their manager chooses (by chat) what becomes of each within the \
             grace period"
        }
    }
}

async fn offboard_page(
    portal: &Portal,
    page: &Page,
    id: EmployeeId,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let plan = portal.lineup.offboarding_plan(page.tenant_id(), id).await?;
    let template = OffboardPage {
        chrome: page.chrome(),
        action: action_word(plan.action),
        plan,
        error: error.clone(),
    };
    Ok(form_status(page.render(&template)?, error.is_some()))
}

async fn offboard_form(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    offboard_page(&portal, &page, employee_id(&id)?, None).await
}

#[derive(Deserialize)]
struct OffboardForm {
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "offboard_result.html")]
struct OffboardResultPage {
    chrome: Chrome,
    report: OffboardingReport,
    action: &'static str,
}

/// Offboard, then show how each line came out (a provider failure on one line is listed
/// with its reason; the others still proceed).
async fn offboard(
    State(portal): State<Portal>,
    page: Page,
    Path(id): Path<String>,
    Form(form): Form<OffboardForm>,
) -> Result<Response, PortalError> {
    let id = employee_id(&id)?;
    if form.confirm != "yes" {
        return offboard_page(
            &portal,
            &page,
            id,
            Some("confirm: tick the box to confirm the offboarding".to_owned()),
        )
        .await;
    }
    let report = portal
        .lineup
        .offboard_employee(page.tenant_id(), &page.actor(), id)
        .await?;
    let template = OffboardResultPage {
        chrome: page.chrome(),
        action: action_word(report.action),
        report,
    };
    page.render(&template)
}

impl OffboardResultPage {
    /// How a line came out, as the page words it.
    fn outcome(&self, outcome: &LineOutcome) -> String {
        outcome_text(outcome)
    }
}

fn outcome_text(outcome: &LineOutcome) -> String {
    match outcome {
        LineOutcome::Done(state) => format!("now {state}"),
        LineOutcome::Unchanged => "nothing to do".to_owned(),
        LineOutcome::Skipped(why) => format!("left as it is: {why}"),
        LineOutcome::InProgress(why) => {
            format!("in progress at the provider; it finishes in the background ({why})")
        }
        LineOutcome::Failed(why) => {
            format!("FAILED: {why}. Offboard again to retry this line.")
        }
    }
}
