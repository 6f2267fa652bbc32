//! Offboarding: mark an employee as gone, take away their authority at once (requests waiting
//! on them move up, their portal access and chat links go), and suspend or terminate their
//! lines, as the tenant's `offboarding_action` says, through the line lifecycle commands —
//! or, under the `grace` action, suspend them and let the leaver's manager choose what
//! becomes of each (see [`grace`]).
//!
//! Each line's provider call carries a command key derived from the offboarding (employee,
//! line, action, attempt), so a double click or a retry replays the same operation instead
//! of placing a second order. A line whose provider call failed does not stop the others;
//! offboarding again tries that line once more under the next attempt's key, and leaves
//! every line already done alone.

pub mod commands;
pub mod grace;

use serde::Serialize;
use time::Date;

use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::lines::line::{Line, LineState};
use crate::organisation::employee::Employee;
use crate::organisation::tenant::OffboardingAction;
use crate::store::{self, Tx};

/// What offboarding does to one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    Suspend,
    Terminate,
    /// Already where offboarding would put it.
    Nothing,
    /// Left as it is, and why.
    Skip(String),
}

impl Step {
    pub fn for_line(action: OffboardingAction, state: LineState) -> Step {
        use LineState as S;
        match (action, state) {
            (OffboardingAction::Suspend | OffboardingAction::Grace, S::Active) => Step::Suspend,
            (OffboardingAction::Grace, S::Ready) => Step::Skip(
                "its eSIM is not installed on a device yet, so the provider cannot suspend it; \
                 the manager's choice (or the default at the deadline) decides what becomes of it"
                    .to_owned(),
            ),
            (OffboardingAction::Suspend, S::Ready) => Step::Skip(
                "its eSIM is not installed on a device yet, so the provider cannot suspend it; \
                 terminate it from its line page if it must never be used"
                    .to_owned(),
            ),
            (OffboardingAction::Terminate, S::Ready | S::Active | S::Suspended) => Step::Terminate,
            (_, S::Requested | S::Provisioning) => Step::Skip(
                "it is still being issued; offboard again once it is ready, or cancel it"
                    .to_owned(),
            ),
            _ => Step::Nothing,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Suspend => "will be suspended".to_owned(),
            Self::Terminate => "will be terminated".to_owned(),
            Self::Nothing => "nothing to do".to_owned(),
            Self::Skip(why) => format!("left as it is: {why}"),
        }
    }
}

/// How one line came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LineOutcome {
    /// Moved to this state now.
    Done(LineState),
    /// Nothing was needed.
    Unchanged,
    Skipped(String),
    /// The provider accepted the order but has not finished; the background worker will.
    InProgress(String),
    /// The provider refused or could not be reached; offboarding again retries.
    Failed(String),
}

impl LineOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

#[derive(Debug, Clone)]
pub struct OffboardingPlan {
    pub employee: Employee,
    pub action: OffboardingAction,
    pub lines: Vec<(Line, Step)>,
    /// People whose manager this employee is: they keep them as manager until edited.
    pub direct_reports: usize,
}

#[derive(Debug, Clone)]
pub struct OffboardingReport {
    pub employee: Employee,
    pub action: OffboardingAction,
    /// False when the employee was already offboarded before this call.
    pub newly_offboarded: bool,
    pub lines: Vec<(Line, LineOutcome)>,
    /// Under the `grace` action: the cases this call opened, waiting for the manager.
    pub grace_cases: Vec<grace::OffboardingCase>,
}

impl OffboardingReport {
    pub fn failures(&self) -> usize {
        self.lines.iter().filter(|(_, o)| o.is_failure()).count()
    }
}

/// The day `employee` was offboarded: from the audit log, else their record's last change.
pub(crate) async fn offboarded_on(
    tx: &mut Tx,
    tenant: TenantId,
    employee: &Employee,
) -> CoreResult<Date> {
    let events =
        store::audit::list_for_subject(tx, tenant, "employee", &employee.id.to_string()).await?;
    Ok(events
        .iter()
        .rev()
        .find(|e| e.action == "employee.offboarded")
        .map_or(employee.updated_at, |e| e.at)
        .date())
}
