//! Savings: lines nobody uses (cancel them) and lines on the wrong plan size (change plan),
//! with what each change saves a month, from core's optimisation report. Anyone who may see
//! spend sees it; managers see only their reports' lines and the total of those.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use lineup_core::organisation::tenant::Tenant;
use lineup_core::spend::optimise::{Change, Saving};

use crate::Portal;
use crate::error::PortalError;
use crate::view::{Chrome, Page};

pub fn routes() -> Router<Portal> {
    Router::new().route("/optimise", get(show))
}

struct SavingRow {
    line_id: String,
    label: String,
    change: String,
    monthly_saving: String,
}

impl SavingRow {
    fn new(saving: &Saving, tenant: &Tenant) -> Self {
        Self {
            line_id: saving.line_id.to_string(),
            label: saving.label.clone(),
            change: saving.change.describe(),
            monthly_saving: tenant.money(saving.monthly_saving_minor).to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "optimise.html")]
struct OptimisePage {
    chrome: Chrome,
    cancel: Vec<SavingRow>,
    cancel_total: String,
    resize: Vec<SavingRow>,
    resize_total: String,
    total: String,
    only_reports: bool,
}

async fn show(State(portal): State<Portal>, page: Page) -> Result<Response, PortalError> {
    let tenant = page.tenant_id();
    let visible = portal
        .lineup
        .visible(tenant, page.signed.visibility())
        .await?;
    let today = lineup_core::store::now().date();
    let report = portal.lineup.optimisation_report(tenant, today).await?;
    let (cancel, resize): (Vec<&Saving>, Vec<&Saving>) = report
        .savings
        .iter()
        .filter(|s| visible.contains(s.employee_id))
        .partition(|s| matches!(s.change, Change::Cancel { .. }));
    let sum = |savings: &[&Saving]| savings.iter().map(|s| s.monthly_saving_minor).sum::<i64>();
    let money = |minor: i64| page.tenant.money(minor).to_string();
    let rows = |savings: &[&Saving]| {
        savings
            .iter()
            .map(|s| SavingRow::new(s, &page.tenant))
            .collect()
    };
    let template = OptimisePage {
        chrome: page.chrome(),
        cancel_total: money(sum(&cancel)),
        resize_total: money(sum(&resize)),
        total: money(sum(&cancel) + sum(&resize)),
        cancel: rows(&cancel),
        resize: rows(&resize),
        only_reports: visible.ids().is_some(),
    };
    page.render(&template)
}
