//! Settings → Provisioning, "People pending offboarding": each leaver's line still in its
//! grace period (or whose choice failed), with its deadline and the choice made so far. A
//! section of its own (template `provisioning_leavers.html`) so the page can grow others.

use lineup_core::Lineup;
use lineup_core::ids::TenantId;
use lineup_core::organisation::offboarding::grace::{CaseState, GraceChoice};

use crate::error::PortalError;

/// One row of the section.
pub struct PendingLeaver {
    pub leaver: String,
    pub line: String,
    pub deadline: String,
    /// Who is asked to choose, or who decides when nobody is.
    pub asked: String,
    /// The choice so far: "waiting", or the choice and who made it, and how it went.
    pub choice: String,
    pub failed: bool,
}

pub async fn pending_leavers(
    lineup: &Lineup,
    tenant: TenantId,
) -> Result<Vec<PendingLeaver>, PortalError> {
    let mut rows = Vec::new();
    for case in lineup.pending_offboarding_cases(tenant).await? {
        let ctx = lineup.case_context(tenant, &case).await?;
        let choice = match (case.state, case.choice) {
            (CaseState::Open, _) if case.reminded_at.is_some() => "waiting (reminded)".to_owned(),
            (CaseState::Open, _) | (_, None) => "waiting".to_owned(),
            (state, Some(choice)) => {
                let by = if case.by_default {
                    "the default at the deadline".to_owned()
                } else {
                    ctx.chooser_name
                        .clone()
                        .unwrap_or_else(|| "an admin".into())
                };
                let whom = match (choice, &ctx.successor_name) {
                    (GraceChoice::Keep, Some(name)) => format!(" ({name})"),
                    _ => String::new(),
                };
                let how = match state {
                    CaseState::Failed => format!(
                        ", failed: {}",
                        case.failure_reason.clone().unwrap_or_default()
                    ),
                    _ => ", being carried out".to_owned(),
                };
                format!("{}{whom} by {by}{how}", choice.describe())
            }
        };
        rows.push(PendingLeaver {
            leaver: ctx.leaver_name,
            line: ctx.line_label,
            deadline: lineup_core::spend::alert::minute_utc(case.deadline_at),
            asked: ctx
                .asked_name
                .unwrap_or_else(|| "nobody: an admin decides".into()),
            choice,
            failed: case.state == CaseState::Failed,
        });
    }
    Ok(rows)
}
