//! Spend reports: the dashboard, chargeback by cost centre, and the rows behind the CSV
//! exports.
//!
//! **Spend** of a line in a calendar month (UTC) is the monthly price of the line's plan if the
//! line was *billed* that month, plus the usage charges recorded for it that month
//! (Σ `usage_daily.cost_minor`, read from the `usage_monthly` rollup).
//!
//! A line is billed in a month when all of these hold:
//! - it was provisioned: its state is ready, active, suspended or terminated (a line still
//!   requested or provisioning, or one that failed, never held a subscription);
//! - it was created before the month ends;
//! - it was not terminated before the month starts. Terminated is final and every write to a
//!   line stamps `updated_at`, so a terminated line's `updated_at` is when it was terminated;
//!   a line terminated on any day of a month is billed that month in full.
//!
//! The fee is the full price of the line's current plan (no proration; plan changes are not
//! back-dated), and spend belongs to the line's current employee and that person's current
//! team and cost centre. Budget caps measure usage charges only (as the chat usage summary
//! does): a cap is what a person may spend beyond their plan in a month, raised by any cap
//! raises granted for that month.

pub mod commands;

use std::collections::HashMap;

use time::{Date, UtcOffset};

use crate::ids::{CostCentreId, EmployeeId, LineId, TeamId};
use crate::lines::line::LineState;
use crate::money::{Bytes, Money};
use crate::organisation::org_unit::{CostCentre, Team};
use crate::period::{Month, Period};
use crate::store::reports::{BilledLine, ReportLine, Scope};

pub use crate::store::reports::{ReportLine as Line, UsageCursor, UsageExportRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    #[default]
    Employee,
    Team,
    CostCentre,
}

impl GroupBy {
    pub const ALL: [GroupBy; 3] = [Self::Employee, Self::Team, Self::CostCentre];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Employee => "employee",
            Self::Team => "team",
            Self::CostCentre => "cost_centre",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Employee => "Employee",
            Self::Team => "Team",
            Self::CostCentre => "Cost centre",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    Day,
    Week,
    #[default]
    Month,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Self::Day, Self::Week, Self::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// Days shown at most by day and week views (they read daily rows).
pub const DAILY_VIEW_DAYS: i64 = 92;
/// A live line with no usage for this long is unused.
pub const UNUSED_AFTER_DAYS: i64 = 30;
/// Share of the cap (percent) from which a person is near it.
pub const NEAR_CAP_PERCENT: i64 = 80;
/// Groups listed on the dashboard; the exports carry all of them.
pub const GROUPS_SHOWN: usize = 25;
const TOP_SPENDERS: usize = 10;
const LIST_LIMIT: usize = 50;

/// What a report covers: the period and the optional team and cost centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportFilter {
    pub period: Period,
    pub team: Option<TeamId>,
    pub cost_centre: Option<CostCentreId>,
}

/// The lines a signed-in user's report may cover, and the names to label them with;
/// resolve once with [`Lineup::report_scope`], then use for every query of the request.
#[derive(Debug, Clone)]
pub struct ReportScope {
    /// `None`: this user may see no lines at all.
    lines: Option<Scope>,
    pub directory: Directory,
}

/// Team and cost-centre names for labels.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub teams: HashMap<TeamId, Team>,
    pub cost_centres: HashMap<CostCentreId, CostCentre>,
}

impl Directory {
    pub fn team_name(&self, id: Option<TeamId>) -> &str {
        id.and_then(|id| self.teams.get(&id))
            .map_or("", |t| t.name.as_str())
    }

    pub fn cost_centre(&self, id: Option<CostCentreId>) -> Option<&CostCentre> {
        id.and_then(|id| self.cost_centres.get(&id))
    }

    pub fn sorted_teams(&self) -> Vec<&Team> {
        let mut teams: Vec<_> = self.teams.values().collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        teams
    }

    pub fn sorted_cost_centres(&self) -> Vec<&CostCentre> {
        let mut centres: Vec<_> = self.cost_centres.values().collect();
        centres.sort_by(|a, b| a.code.cmp(&b.code));
        centres
    }
}

/// The months a line pays its plan's fee in (see the module doc): from the month it was
/// created to the month it was terminated, or on while it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BilledSpan {
    pub first: Month,
    pub last: Option<Month>,
}

impl BilledSpan {
    /// `None` for a line that never held a subscription (requested, provisioning, failed).
    pub fn of(line: &BilledLine) -> Option<Self> {
        let month_of =
            |at: time::OffsetDateTime| Month::containing(at.to_offset(UtcOffset::UTC).date());
        match line.state.as_str() {
            "ready" | "active" | "suspended" => Some(Self {
                first: month_of(line.created_at),
                last: None,
            }),
            "terminated" => Some(Self {
                first: month_of(line.created_at),
                last: Some(month_of(line.updated_at)),
            }),
            _ => None,
        }
    }

    pub fn contains(self, month: Month) -> bool {
        self.first <= month && self.last.is_none_or(|last| month <= last)
    }

    /// How many of `period`'s months the span covers.
    pub fn months_in(self, period: Period) -> i64 {
        let from = self.first.max(period.from);
        let to = self.last.map_or(period.to, |last| last.min(period.to));
        i64::from((to.index() - from.index() + 1).max(0))
    }
}

/// Whether `line` pays its plan's fee in `month`.
pub fn billed_in(line: &BilledLine, month: Month) -> bool {
    BilledSpan::of(line).is_some_and(|span| span.contains(month))
}

fn is_live(line: &BilledLine) -> bool {
    line.state
        .parse::<LineState>()
        .is_ok_and(LineState::is_live)
}

pub fn employee_name(line: &ReportLine) -> String {
    format!("{} {}", line.given_name, line.family_name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub spend: Money,
    pub plan_fees: Money,
    pub usage: Money,
    pub data: Bytes,
    /// Ready, active or suspended now.
    pub live_lines: usize,
    /// Billed in at least one month of the period.
    pub billed_lines: usize,
}

/// One bar of the spend-over-time chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPoint {
    pub label: String,
    pub start: Date,
    pub spend: Money,
    pub data: Bytes,
}

/// Spend of one employee, team or cost centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpend {
    pub label: String,
    pub spend: Money,
    pub data: Bytes,
    pub lines: usize,
    /// Spend in the period's last month and the month before it.
    pub last_month: Money,
    pub previous_month: Money,
}

impl GroupSpend {
    pub fn change(&self) -> Money {
        Money::new(
            self.last_month.minor - self.previous_month.minor,
            self.spend.currency,
        )
    }

    /// Whole percent change from the previous month; `None` when there was nothing before.
    pub fn change_percent(&self) -> Option<i64> {
        let before = self.previous_month.minor;
        (before != 0).then(|| (self.last_month.minor - before) * 100 / before.abs())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearCap {
    pub employee_id: EmployeeId,
    pub name: String,
    pub lines: usize,
    /// Usage charges this calendar month.
    pub spent: Money,
    /// The effective cap plus this month's raises.
    pub cap: Money,
    pub percent: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedLine {
    pub line_id: LineId,
    pub employee: String,
    pub plan: String,
    pub state: String,
    pub monthly_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub totals: Totals,
    pub series: Vec<SeriesPoint>,
    /// What the chart leaves out, said plainly.
    pub series_note: Option<String>,
    /// Largest first, at most [`GROUPS_SHOWN`].
    pub groups: Vec<GroupSpend>,
    pub group_count: usize,
    /// The groups that moved most from the previous month to the last, largest move first.
    pub changes: Vec<GroupSpend>,
    pub top_spenders: Vec<GroupSpend>,
    pub near_cap: Vec<NearCap>,
    pub unused: Vec<UnusedLine>,
    pub unused_count: usize,
    /// What the unused lines cost a month in plan fees.
    pub unused_monthly_cost: Money,
    pub last_month: Month,
    pub previous_month: Month,
    pub current_month: Month,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargebackRow {
    pub cost_centre: Option<CostCentre>,
    pub month: Month,
    pub lines: usize,
    pub data: Bytes,
    pub plan_fees: Money,
    pub usage: Money,
    pub total: Money,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn line(
        state: &str,
        created: time::OffsetDateTime,
        updated: time::OffsetDateTime,
    ) -> BilledLine {
        BilledLine {
            line_id: LineId::new(),
            employee_id: EmployeeId::new(),
            team_id: None,
            cost_centre_id: None,
            plan_id: crate::ids::PlanId::new(),
            price_minor: Some(2000),
            state: state.into(),
            created_at: created,
            updated_at: updated,
        }
    }

    #[test]
    fn a_line_is_billed_from_the_month_it_is_created_to_the_month_it_is_terminated() {
        let created = datetime!(2026-01-31 23:00 UTC);
        let terminated = datetime!(2026-03-01 08:00 UTC);
        let month = |s| Month::parse(s).unwrap();
        let ended = line("terminated", created, terminated);
        assert!(!billed_in(&ended, month("2025-12")));
        assert!(billed_in(&ended, month("2026-01")));
        assert!(billed_in(&ended, month("2026-03")));
        assert!(!billed_in(&ended, month("2026-04")));
        let live = line("active", created, terminated);
        assert!(billed_in(&live, month("2027-01")));
        let span = |l: &BilledLine| BilledSpan::of(l).unwrap();
        let period = |from, to| Period::new(month(from), month(to)).unwrap();
        assert_eq!(span(&ended).months_in(period("2025-06", "2026-12")), 3);
        assert_eq!(span(&ended).months_in(period("2026-02", "2026-02")), 1);
        assert_eq!(span(&ended).months_in(period("2026-04", "2026-12")), 0);
        assert_eq!(span(&live).months_in(period("2025-11", "2026-12")), 12);
        for never in ["failed", "requested", "provisioning"] {
            assert!(!billed_in(&line(never, created, created), month("2026-02")));
        }
    }
}
