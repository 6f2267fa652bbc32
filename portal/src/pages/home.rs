//! The overview a member lands on: people and lines at a glance, and what needs attention.

use askama::Template;
use axum::Router;
use axum::response::Response;
use lineup_core::lines::line::LineState;
use lineup_core::organisation::employee::EmployeeStatus;
use lineup_core::organisation::onboarding::OnboardingStep;

use crate::Portal;
use crate::access::{Permission, allows};
use crate::error::PortalError;
use crate::view::{Chrome, Page};

pub fn routes() -> Router<Portal> {
    Router::new()
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    active_people: usize,
    offboarded_people: usize,
    lines_by_state: Vec<(&'static str, usize)>,
    live_lines: usize,
    failed_lines: usize,
    /// The first-day steps, shown to admins until every one is done.
    checklist: Option<Vec<ChecklistItem>>,
}

struct ChecklistItem {
    label: &'static str,
    hint: &'static str,
    href: &'static str,
    done: bool,
    next: bool,
}

fn checklist_item(step: OnboardingStep) -> (&'static str, &'static str, &'static str) {
    match step {
        OnboardingStep::ConnectProvider => (
            "Connect your mobile provider",
            "Your provider account's API credentials; Lineup checks them and loads your plans.",
            "/settings/provider",
        ),
        OnboardingStep::ImportPeople => (
            "Import your people",
            "A CSV export from your HR system: names, emails, teams, cost centres, managers.",
            "/employees/import",
        ),
        OnboardingStep::ConnectChat => (
            "Connect Slack, Teams or Discord",
            "Where people ask for lines and managers approve them.",
            "/settings/chat",
        ),
        OnboardingStep::SetPolicy => (
            "Set a policy",
            "Budget caps, alerts and roaming rules; the starter policy is one click.",
            "/policies",
        ),
        OnboardingStep::IssueFirstLine => (
            "Issue the first line",
            "Pick a person and a plan; they get the eSIM QR code in seconds.",
            "/lines/new",
        ),
    }
}

async fn checklist(
    portal: &Portal,
    page: &Page,
) -> Result<Option<Vec<ChecklistItem>>, PortalError> {
    if !allows(page.signed.session.role, Permission::ManageOrganisation) {
        return Ok(None);
    }
    let onboarding = portal.lineup.onboarding(page.tenant_id()).await?;
    if onboarding.is_complete() {
        return Ok(None);
    }
    let next = onboarding.next_step();
    Ok(Some(
        onboarding
            .steps
            .iter()
            .map(|&(step, done)| {
                let (label, hint, href) = checklist_item(step);
                ChecklistItem {
                    label,
                    hint,
                    href,
                    done,
                    next: Some(step) == next,
                }
            })
            .collect(),
    ))
}

pub async fn overview(portal: Portal, page: Page) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let visible = portal
        .lineup
        .visible(tenant, page.signed.visibility())
        .await?;
    let people: Vec<_> = portal
        .lineup
        .employees(tenant)
        .await?
        .into_iter()
        .filter(|e| visible.contains(e.id))
        .collect();
    let lines: Vec<_> = portal
        .lineup
        .lines(tenant)
        .await?
        .into_iter()
        .filter(|l| visible.contains(l.employee_id))
        .collect();
    let count = |state: LineState| lines.iter().filter(|l| l.state == state).count();
    let lines_by_state = LineState::ALL
        .iter()
        .map(|&s| (s.as_str(), count(s)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let template = OverviewPage {
        chrome: page.chrome(),
        active_people: people
            .iter()
            .filter(|e| e.status == EmployeeStatus::Active)
            .count(),
        offboarded_people: people
            .iter()
            .filter(|e| e.status == EmployeeStatus::Offboarded)
            .count(),
        live_lines: count(LineState::Active) + count(LineState::Ready),
        failed_lines: count(LineState::Failed),
        lines_by_state,
        checklist: checklist(&portal, &page).await?,
    };
    page.render(&template)
}
