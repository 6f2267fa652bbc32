//! The overview a member lands on: people and lines at a glance, and what needs attention.

use askama::Template;
use axum::Router;
use axum::response::Response;
use lineup_core::employee::EmployeeStatus;
use lineup_core::line::LineState;

use crate::Portal;
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
    };
    page.render(&template)
}
