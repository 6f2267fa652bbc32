//! Report queries: the report scope a viewer may see, the dashboard, chargeback by cost
//! centre, and the rows behind the CSV exports.

use std::collections::{BTreeMap, HashMap};

use time::{Date, Duration, UtcOffset};

use super::*;
use crate::app::Lineup;
use crate::error::{CoreError, CoreResult};
use crate::ids::{CostCentreId, EmployeeId, LineId, PlanId, TeamId, TenantId};
use crate::money::{Bytes, Currency, Money};
use crate::organisation::employee::Visibility;
use crate::organisation::mover::cost_centre_on;
use crate::period::{Month, Period};
use crate::spend::policy::{BudgetCap, CapScope};
use crate::store::reports::{self as store_reports, BilledLine, RecentMonths, ReportLine, Scope};
use crate::store::{self, Tx};

/// Sums kept per group while a report is assembled.
#[derive(Default, Clone, Copy)]
struct Sums {
    spend: i64,
    data: i64,
    lines: usize,
    last: i64,
    previous: i64,
}

impl Lineup {
    /// Rebuild `tenant`'s chargeback rollup (usage per cost centre and month) if usage was
    /// added or lines or people moved since it was built. Until then chargeback adds the
    /// tenant's lines up itself: the rollup makes the export fast, never different. A cache
    /// of figures nobody changed by hand, so no audit event. Returns whether it was rebuilt.
    pub async fn refresh_chargeback_rollup(&self, tenant: TenantId) -> CoreResult<bool> {
        {
            let mut tx = self.tenant_read_tx(tenant).await?;
            if store::chargeback_months::is_current(&mut tx, tenant).await? {
                return Ok(false);
            }
        }
        let mut tx = self.tenant_tx(tenant).await?;
        store::usage::lock_rollups(&mut tx, tenant).await?;
        if store::chargeback_months::is_current(&mut tx, tenant).await? {
            return Ok(false);
        }
        let rebuilt = store::chargeback_months::rebuild(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(rebuilt)
    }

    /// The worker's step: every tenant's out-of-date chargeback rollup rebuilt. Returns how
    /// many were.
    pub async fn refresh_chargeback_rollups(&self) -> CoreResult<usize> {
        let tenants = {
            let mut tx = self.store().system_read().await?;
            store::chargeback_months::out_of_date(&mut tx).await?
        };
        let mut rebuilt = 0;
        for tenant in tenants {
            if self.refresh_chargeback_rollup(tenant).await? {
                rebuilt += 1;
            }
        }
        Ok(rebuilt)
    }

    /// Whether chargeback reads `tenant`'s rollup now (for operators and tests).
    pub async fn chargeback_rollup_is_current(&self, tenant: TenantId) -> CoreResult<bool> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::chargeback_months::is_current(&mut tx, tenant).await?)
    }

    /// Check the filter's team and cost centre belong to `tenant` (a guessed id of another
    /// organisation is "not found") and narrow to what `visibility` may see.
    pub async fn report_scope(
        &self,
        tenant: TenantId,
        visibility: Visibility,
        filter: &ReportFilter,
    ) -> CoreResult<ReportScope> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let directory = directory(&mut tx, tenant).await?;
        if let Some(team) = filter.team
            && !directory.teams.contains_key(&team)
        {
            return Err(CoreError::not_found("team", team));
        }
        if let Some(centre) = filter.cost_centre
            && !directory.cost_centres.contains_key(&centre)
        {
            return Err(CoreError::not_found("cost centre", centre));
        }
        let manager = match visibility {
            Visibility::Everyone => None,
            Visibility::ReportsOf(manager) => Some(manager),
            Visibility::Nobody => {
                return Ok(ReportScope {
                    lines: None,
                    directory,
                });
            }
        };
        let scope = Scope {
            manager,
            team: filter.team,
            cost_centre: filter.cost_centre,
        };
        Ok(ReportScope {
            lines: Some(scope),
            directory,
        })
    }

    /// The spend dashboard for `filter`'s period as of `today`.
    pub async fn dashboard(
        &self,
        tenant: TenantId,
        scope: &ReportScope,
        filter: &ReportFilter,
        group_by: GroupBy,
        granularity: Granularity,
        today: Date,
    ) -> CoreResult<Dashboard> {
        let period = filter.period;
        let current = Month::containing(today);
        let active_since = today - Duration::days(UNUSED_AFTER_DAYS);
        let recent = RecentMonths {
            last: period.to.first_day(),
            previous: period.to.previous().first_day(),
            current: current.first_day(),
            active_since,
        };
        let chart = ChartRange::of(period, granularity, today);
        // The lines, their usage and the chart's usage are independent reads: each on its
        // own connection, at once.
        let (currency, facts, chart_usage) = match scope.lines {
            Some(lines) => tokio::try_join!(
                self.currency_of(tenant),
                DashboardFacts::load(self, tenant, &lines, period, recent, current),
                self.chart_usage(tenant, &lines, &chart),
            )?,
            None => (
                self.currency_of(tenant).await?,
                DashboardFacts::default(),
                Vec::new(),
            ),
        };
        let tally = Tally::of(&facts, period, group_by, &scope.directory);
        let unused = UnusedLines::of(&facts, active_since);
        let shortlists = Shortlists::of(&tally, &facts);
        let names = self
            .report_names(tenant, &scope.directory, &shortlists, &unused)
            .await?;
        let (series, series_note) = match scope.lines {
            Some(_) => (
                chart.points(&chart_usage, &facts.lines, period, currency),
                chart.note,
            ),
            None => (Vec::new(), None),
        };
        let money = |minor| Money::new(minor, currency);
        Ok(Dashboard {
            totals: Totals {
                spend: money(tally.fees + tally.usage),
                plan_fees: money(tally.fees),
                usage: money(tally.usage),
                data: Bytes(tally.data),
                live_lines: facts.lines.iter().filter(|l| is_live(l)).count(),
                billed_lines: tally.billed_lines,
            },
            series,
            series_note,
            groups: shortlists.groups(&names, currency),
            group_count: tally.groups.len(),
            changes: shortlists.changes(&names, currency),
            top_spenders: shortlists.top_spenders(&names, currency),
            near_cap: shortlists.near_cap(&names, currency),
            unused_count: unused.lines.len(),
            unused_monthly_cost: money(unused.monthly_cost),
            unused: unused.shown(&names, currency),
            last_month: period.to,
            previous_month: period.to.previous(),
            current_month: current,
        })
    }

    /// The names the dashboard shows: of the people on its lists (the contenders for them;
    /// ties are broken by name) and of the unused lines' plans. A few dozen, not one per line.
    async fn report_names<'a>(
        &self,
        tenant: TenantId,
        directory: &'a Directory,
        shortlists: &Shortlists,
        unused: &UnusedLines<'_>,
    ) -> CoreResult<Names<'a>> {
        let mut people: Vec<EmployeeId> = shortlists
            .people()
            .chain(unused.listed().map(|l| l.employee_id))
            .collect();
        people.sort();
        people.dedup();
        let mut names = Names {
            people: HashMap::new(),
            plans: HashMap::new(),
            directory,
        };
        if people.is_empty() && unused.lines.is_empty() {
            return Ok(names);
        }
        let mut tx = self.tenant_read_tx(tenant).await?;
        names.people = store::employees::people(&mut tx, tenant, &people)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        if !unused.lines.is_empty() {
            names.plans = store::plans::list(&mut tx, tenant)
                .await?
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect();
        }
        Ok(names)
    }

    /// Spend per cost centre per month of the period: the lines billed, data, plan fees and
    /// usage charges. Rows with nothing in them are left out.
    pub async fn chargeback(
        &self,
        tenant: TenantId,
        scope: &ReportScope,
        filter: &ReportFilter,
    ) -> CoreResult<Vec<ChargebackRow>> {
        let directory = &scope.directory;
        let Some(scope) = scope.lines else {
            return Ok(Vec::new());
        };
        let period = filter.period;
        // The lines and their usage are independent reads: each on its own connection.
        let ((currency, lines, moves), usage) = tokio::try_join!(
            async {
                let mut tx = self.tenant_read_tx(tenant).await?;
                let currency = tenant_currency(&mut tx, tenant).await?;
                CoreResult::Ok((
                    currency,
                    store_reports::billed_lines(&mut tx, tenant, &scope).await?,
                    store::moves::list_after(&mut tx, tenant, period.from.first_day()).await?,
                ))
            },
            async {
                let mut tx = self.tenant_read_tx(tenant).await?;
                let (from, to) = (period.from.first_day(), period.to.first_day());
                // The whole tenant's sums are kept (see `refresh_chargeback_rollup`); a part
                // of it, or sums not current, are added up from the lines.
                if scope == Scope::default()
                    && let Some(months) =
                        store::chargeback_months::months_if_current(&mut tx, tenant, from, to)
                            .await?
                {
                    return CoreResult::Ok(months);
                }
                CoreResult::Ok(
                    store_reports::usage_by_cost_centre(&mut tx, tenant, &scope, from, to).await?,
                )
            },
        )?;
        #[derive(Default)]
        struct CentreMonth {
            fees: i64,
            lines: usize,
            usage: i64,
            data: i64,
        }
        let mut sums: BTreeMap<(Option<CostCentreId>, Month), CentreMonth> = BTreeMap::new();
        for line in &lines {
            let Some(span) = BilledSpan::of(line) else {
                continue;
            };
            for month in period.months().filter(|m| span.contains(*m)) {
                let centre = cost_centre_on(
                    &moves,
                    line.employee_id,
                    line.cost_centre_id,
                    month.first_day(),
                );
                let sum = sums.entry((centre, month)).or_default();
                sum.fees += line.price_minor.unwrap_or(0);
                sum.lines += 1;
            }
        }
        for u in usage {
            let sum = sums
                .entry((u.cost_centre_id, Month::containing(u.month)))
                .or_default();
            sum.usage += u.cost_minor;
            sum.data += u.data_bytes;
        }
        // People who changed cost centre: their spend goes where it was spent, a day at a
        // time (a month's overage to the cost centre of its last day); plan fees to the
        // cost centre of the month's first day, when they are charged. Only a month with a
        // move inside it needs its days: any other month was spent in one cost centre.
        if !moves.is_empty() {
            let mut tx = self.tenant_read_tx(tenant).await?;
            let mut moved: Vec<EmployeeId> = moves.iter().map(|m| m.employee_id).collect();
            moved.sort();
            moved.dedup();
            let (from, to) = (period.from.first_day(), period.to.first_day());
            let months =
                store_reports::usage_of_employees(&mut tx, tenant, &scope, &moved, from, to, false)
                    .await?;
            let split = months_split_by_moves(&moves, period);
            for m in months {
                let month = Month::containing(m.start);
                let counted = sums.entry((m.cost_centre_id, month)).or_default();
                counted.usage -= m.cost_minor;
                counted.data -= m.data_bytes;
                let last_day =
                    cost_centre_on(&moves, m.employee_id, m.cost_centre_id, month.last_day());
                sums.entry((last_day, month)).or_default().usage += m.overage_minor;
                if !split
                    .get(&month)
                    .is_some_and(|who| who.contains(&m.employee_id))
                {
                    let spent_in =
                        cost_centre_on(&moves, m.employee_id, m.cost_centre_id, month.first_day());
                    let sum = sums.entry((spent_in, month)).or_default();
                    sum.usage += m.cost_minor - m.overage_minor;
                    sum.data += m.data_bytes;
                }
            }
            for (month, who) in &split {
                let days = store_reports::usage_of_employees(
                    &mut tx,
                    tenant,
                    &scope,
                    who,
                    month.first_day(),
                    month.last_day(),
                    true,
                )
                .await?;
                for d in days {
                    let centre = cost_centre_on(&moves, d.employee_id, d.cost_centre_id, d.start);
                    let sum = sums.entry((centre, *month)).or_default();
                    sum.usage += d.cost_minor;
                    sum.data += d.data_bytes;
                }
            }
            sums.retain(|_, sum| sum.lines > 0 || sum.usage != 0 || sum.data != 0);
        }
        let money = |minor| Money::new(minor, currency);
        let mut rows: Vec<ChargebackRow> = sums
            .into_iter()
            .map(|((centre, month), sum)| ChargebackRow {
                cost_centre: directory.cost_centre(centre).cloned(),
                month,
                lines: sum.lines,
                data: Bytes(sum.data),
                plan_fees: money(sum.fees),
                usage: money(sum.usage),
                total: money(sum.fees + sum.usage),
            })
            .collect();
        // By cost centre code (none last), then month.
        rows.sort_by(|a, b| {
            let code = |r: &ChargebackRow| {
                r.cost_centre
                    .as_ref()
                    .map_or((1, String::new()), |c| (0, c.code.clone()))
            };
            code(a).cmp(&code(b)).then(a.month.cmp(&b.month))
        });
        Ok(rows)
    }

    async fn currency_of(&self, tenant: TenantId) -> CoreResult<Currency> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        tenant_currency(&mut tx, tenant).await
    }

    /// The usage behind the chart: per month of the range, or per day of it.
    async fn chart_usage(
        &self,
        tenant: TenantId,
        scope: &Scope,
        chart: &ChartRange,
    ) -> CoreResult<Vec<store_reports::UsageTotal>> {
        if chart.start > chart.end {
            return Ok(Vec::new());
        }
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store_reports::usage_over_time(
            &mut tx,
            tenant,
            scope,
            chart.start,
            chart.end,
            chart.granularity != Granularity::Month,
        )
        .await?)
    }

    /// Every line in scope with its employee and plan, for the lines export.
    pub async fn report_lines(
        &self,
        tenant: TenantId,
        scope: &ReportScope,
    ) -> CoreResult<Vec<ReportLine>> {
        let Some(scope) = scope.lines else {
            return Ok(Vec::new());
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        let mut lines = store_reports::lines(&mut tx, tenant, &scope).await?;
        lines.sort_by(|a, b| {
            (&a.family_name, &a.given_name, a.billed.created_at).cmp(&(
                &b.family_name,
                &b.given_name,
                b.billed.created_at,
            ))
        });
        Ok(lines)
    }

    /// One page of the usage export (per line per day, or per month), after `cursor`.
    pub async fn usage_export_page(
        &self,
        tenant: TenantId,
        scope: &ReportScope,
        filter: &ReportFilter,
        daily: bool,
        cursor: Option<UsageCursor>,
        limit: i64,
    ) -> CoreResult<Vec<UsageExportRow>> {
        let Some(scope) = scope.lines else {
            return Ok(Vec::new());
        };
        let (from, to) = if daily {
            (filter.period.from.first_day(), filter.period.to.last_day())
        } else {
            (filter.period.from.first_day(), filter.period.to.first_day())
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store_reports::usage_export_page(
            &mut tx, tenant, &scope, from, to, daily, cursor, limit,
        )
        .await?)
    }
}

/// What the dashboard reads about the lines in scope.
#[derive(Default)]
struct DashboardFacts {
    lines: Vec<BilledLine>,
    usage: HashMap<LineId, LineUsage>,
    caps: Vec<BudgetCap>,
    /// This month's approved cap raises per employee.
    raises: HashMap<EmployeeId, i64>,
}

/// One line's usage over the period and in the months the dashboard singles out.
#[derive(Default, Clone, Copy)]
struct LineUsage {
    period_cost: i64,
    period_data: i64,
    recent: store_reports::LineRecentUsage,
}

impl DashboardFacts {
    /// The lines with the caps and raises on one connection, their usage beside it.
    async fn load(
        lineup: &Lineup,
        tenant: TenantId,
        scope: &Scope,
        period: Period,
        recent: RecentMonths,
        current: Month,
    ) -> CoreResult<Self> {
        let ((lines, caps, raises), usage) = tokio::try_join!(
            async {
                let mut tx = lineup.tenant_read_tx(tenant).await?;
                let lines = store_reports::billed_lines(&mut tx, tenant, scope).await?;
                let caps = store::policy::list_caps(&mut tx, tenant).await?;
                let raises =
                    store::policy::cap_raises_for_period(&mut tx, tenant, &current.period())
                        .await?;
                CoreResult::Ok((lines, caps, raises))
            },
            line_usage(lineup, tenant, scope, period, recent),
        )?;
        Ok(Self {
            lines,
            usage,
            caps,
            raises: raises.into_iter().collect(),
        })
    }
}

/// Each line's usage over the period and in the recent months. PostgreSQL sums both in one
/// pass over the months; SQLite, whose per-row `CASE`s cost as much as the reading, adds up
/// the period (in line order) and the few recent months in two reads side by side.
async fn line_usage(
    lineup: &Lineup,
    tenant: TenantId,
    scope: &Scope,
    period: Period,
    recent: RecentMonths,
) -> CoreResult<HashMap<LineId, LineUsage>> {
    let (from, to) = (period.from.first_day(), period.to.first_day());
    if lineup.store().backend() == store::Backend::Postgres {
        let window = store_reports::MonthWindow {
            from,
            to,
            previous: recent.previous,
            current: recent.current,
            active_since: recent.active_since,
        };
        let mut tx = lineup.tenant_read_tx(tenant).await?;
        let rows = store_reports::usage_by_line(&mut tx, tenant, scope, window).await?;
        return Ok(rows
            .into_iter()
            .map(|u| {
                let used = LineUsage {
                    period_cost: u.period_cost,
                    period_data: u.period_data,
                    recent: store_reports::LineRecentUsage {
                        line_id: u.line_id,
                        last_cost: u.last_cost,
                        previous_cost: u.previous_cost,
                        current_cost: u.current_cost,
                        recently_active: u.recently_active,
                    },
                };
                (u.line_id, used)
            })
            .collect());
    }
    let (period_usage, recent_usage) = tokio::try_join!(
        async {
            let mut tx = lineup.tenant_read_tx(tenant).await?;
            CoreResult::Ok(
                store_reports::period_usage_by_line(&mut tx, tenant, scope, from, to).await?,
            )
        },
        async {
            let mut tx = lineup.tenant_read_tx(tenant).await?;
            CoreResult::Ok(
                store_reports::recent_usage_by_line(&mut tx, tenant, scope, recent).await?,
            )
        },
    )?;
    let mut usage: HashMap<LineId, LineUsage> = HashMap::with_capacity(period_usage.len());
    for line in period_usage {
        let used = usage.entry(line.line_id).or_default();
        used.period_cost = line.cost;
        used.period_data = line.data;
    }
    for line in recent_usage {
        usage.entry(line.line_id).or_default().recent = line;
    }
    Ok(usage)
}

/// The period's spend added up per group, per person and in total, and what each person's
/// lines used this calendar month.
#[derive(Default)]
struct Tally {
    groups: HashMap<GroupKey, Sums>,
    people: HashMap<EmployeeId, Sums>,
    /// Per employee this calendar month: live lines, usage charges.
    this_month: HashMap<EmployeeId, (usize, i64)>,
    fees: i64,
    usage: i64,
    data: i64,
    billed_lines: usize,
}

/// The employee, team or cost centre a dashboard row adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum GroupKey {
    Employee(EmployeeId),
    /// `None`: no team, or one no longer in the directory.
    Team(Option<TeamId>),
    CostCentre(Option<CostCentreId>),
}

impl GroupKey {
    fn of(group_by: GroupBy, line: &BilledLine, directory: &Directory) -> Self {
        match group_by {
            GroupBy::Employee => Self::Employee(line.employee_id),
            GroupBy::Team => Self::Team(line.team_id.filter(|t| directory.teams.contains_key(t))),
            GroupBy::CostCentre => Self::CostCentre(
                line.cost_centre_id
                    .filter(|c| directory.cost_centres.contains_key(c)),
            ),
        }
    }
}

impl Tally {
    fn of(
        facts: &DashboardFacts,
        period: Period,
        group_by: GroupBy,
        directory: &Directory,
    ) -> Self {
        let mut tally = Self::default();
        for line in &facts.lines {
            let used = facts.usage.get(&line.line_id);
            let (sums, fees, billed) = line_sums(line, used, period);
            tally.fees += fees;
            tally.usage += used.map_or(0, |u| u.period_cost);
            tally.data += sums.data;
            tally.billed_lines += usize::from(billed);
            let group = GroupKey::of(group_by, line, directory);
            add(tally.groups.entry(group).or_default(), &sums);
            add(tally.people.entry(line.employee_id).or_default(), &sums);
            let month = tally.this_month.entry(line.employee_id).or_default();
            month.0 += usize::from(is_live(line));
            month.1 += used.map_or(0, |u| u.recent.current_cost);
        }
        tally
    }
}

/// One line's sums for the period, the plan fees among them, and whether it was billed in
/// any month of it.
fn line_sums(line: &BilledLine, used: Option<&LineUsage>, period: Period) -> (Sums, i64, bool) {
    let span = BilledSpan::of(line);
    let price = line.price_minor.unwrap_or(0);
    let fee = |month| {
        if span.is_some_and(|s| s.contains(month)) {
            price
        } else {
            0
        }
    };
    let billed_months = span.map_or(0, |s| s.months_in(period));
    let fees = price * billed_months;
    let billed = billed_months > 0;
    let sums = Sums {
        spend: fees + used.map_or(0, |u| u.period_cost),
        data: used.map_or(0, |u| u.period_data),
        lines: usize::from(billed || used.is_some()),
        last: fee(period.to) + used.map_or(0, |u| u.recent.last_cost),
        previous: fee(period.to.previous()) + used.map_or(0, |u| u.recent.previous_cost),
    };
    (sums, fees, billed)
}

/// Someone whose usage charges this month reached [`NEAR_CAP_PERCENT`] of their cap.
struct NearCapFact {
    employee: EmployeeId,
    live_lines: usize,
    spent: i64,
    cap: i64,
    percent: i64,
}

/// What may make each of the dashboard's lists, before names are read: everything ranking
/// at least as high as the last place shown. Ties are broken by name, so those tied for
/// the last places all need theirs; nobody below them does.
struct Shortlists {
    groups: Vec<(GroupKey, Sums)>,
    changes: Vec<(GroupKey, Sums)>,
    spenders: Vec<(EmployeeId, Sums)>,
    near_cap: Vec<NearCapFact>,
}

impl Shortlists {
    fn of(tally: &Tally, facts: &DashboardFacts) -> Self {
        let groups: Vec<(GroupKey, Sums)> = tally.groups.iter().map(|(k, s)| (*k, *s)).collect();
        let changes = groups
            .iter()
            .filter(|(_, sums)| sums.last != sums.previous)
            .copied()
            .collect();
        let spenders = tally
            .people
            .iter()
            .filter(|(_, sums)| sums.spend > 0)
            .map(|(id, sums)| (*id, *sums))
            .collect();
        let near_cap = tally
            .this_month
            .iter()
            .filter_map(|(&employee, &(live_lines, spent))| {
                let cap = facts
                    .caps
                    .iter()
                    .find(|cap| cap.scope == CapScope::Employee(employee))?
                    .amount_minor
                    + facts.raises.get(&employee).copied().unwrap_or(0);
                let percent = if cap > 0 {
                    spent * 100 / cap
                } else if spent > 0 {
                    100
                } else {
                    0
                };
                (percent >= NEAR_CAP_PERCENT).then_some(NearCapFact {
                    employee,
                    live_lines,
                    spent,
                    cap,
                    percent,
                })
            })
            .collect();
        Self {
            groups: contenders(groups, GROUPS_SHOWN, |(_, s)| s.spend),
            changes: contenders(changes, GROUPS_SHOWN, |(_, s)| (s.last - s.previous).abs()),
            spenders: contenders(spenders, TOP_SPENDERS, |(_, s)| s.spend),
            near_cap: contenders(near_cap, LIST_LIMIT, |n| n.percent),
        }
    }

    /// Everyone on a list, whose name it shows.
    fn people(&self) -> impl Iterator<Item = EmployeeId> + '_ {
        let in_groups = self
            .groups
            .iter()
            .chain(&self.changes)
            .filter_map(|(k, _)| match k {
                GroupKey::Employee(id) => Some(*id),
                _ => None,
            });
        in_groups
            .chain(self.spenders.iter().map(|(id, _)| *id))
            .chain(self.near_cap.iter().map(|n| n.employee))
    }

    /// The largest groups; ties in label order.
    fn groups(&self, names: &Names, currency: Currency) -> Vec<GroupSpend> {
        let by_spend = |a: &Sums, b: &Sums| b.spend.cmp(&a.spend);
        ranked(
            &self.groups,
            |k| names.group(k),
            by_spend,
            GROUPS_SHOWN,
            currency,
        )
    }

    /// The groups that moved most from the previous month to the last; ties by spend, then
    /// label.
    fn changes(&self, names: &Names, currency: Currency) -> Vec<GroupSpend> {
        let moved = |s: &Sums| (s.last - s.previous).abs();
        let by_move = |a: &Sums, b: &Sums| moved(b).cmp(&moved(a)).then(b.spend.cmp(&a.spend));
        ranked(
            &self.changes,
            |k| names.group(k),
            by_move,
            GROUPS_SHOWN,
            currency,
        )
    }

    /// The largest spenders; ties in name order.
    fn top_spenders(&self, names: &Names, currency: Currency) -> Vec<GroupSpend> {
        let by_spend = |a: &Sums, b: &Sums| b.spend.cmp(&a.spend);
        ranked(
            &self.spenders,
            |id| names.person(id),
            by_spend,
            TOP_SPENDERS,
            currency,
        )
    }

    /// People near their own cap (with this month's raises), highest first.
    fn near_cap(&self, names: &Names, currency: Currency) -> Vec<NearCap> {
        let money = |minor| Money::new(minor, currency);
        let mut near: Vec<NearCap> = self
            .near_cap
            .iter()
            .map(|n| NearCap {
                employee_id: n.employee,
                name: names.person(n.employee),
                lines: n.live_lines,
                spent: money(n.spent),
                cap: money(n.cap),
                percent: n.percent,
            })
            .collect();
        near.sort_by(|a, b| b.percent.cmp(&a.percent).then_with(|| a.name.cmp(&b.name)));
        near.truncate(LIST_LIMIT);
        near
    }
}

/// Those of `items` that can be among the first `n` by `rank` (highest first) once ties are
/// broken: every item ranking at least as high as the `n`th.
fn contenders<T>(mut items: Vec<T>, n: usize, rank: impl Fn(&T) -> i64) -> Vec<T> {
    if n == 0 {
        return Vec::new();
    }
    if items.len() > n {
        items.select_nth_unstable_by_key(n - 1, |item| std::cmp::Reverse(rank(item)));
        let bar = rank(&items[n - 1]);
        items.retain(|item| rank(item) >= bar);
    }
    items
}

/// The first `n` of `items` in `order`, ties in label order.
fn ranked<K: Copy>(
    items: &[(K, Sums)],
    label: impl Fn(K) -> String,
    order: impl Fn(&Sums, &Sums) -> std::cmp::Ordering,
    n: usize,
    currency: Currency,
) -> Vec<GroupSpend> {
    let mut labelled: Vec<(String, &Sums)> = items
        .iter()
        .map(|(key, sums)| (label(*key), sums))
        .collect();
    labelled.sort_by(|a, b| order(a.1, b.1).then_with(|| a.0.cmp(&b.0)));
    labelled
        .into_iter()
        .take(n)
        .map(|(label, sums)| group_spend(label, sums, currency))
        .collect()
}

fn group_spend(label: String, sums: &Sums, currency: Currency) -> GroupSpend {
    let money = |minor| Money::new(minor, currency);
    GroupSpend {
        label,
        spend: money(sums.spend),
        data: Bytes(sums.data),
        lines: sums.lines,
        last_month: money(sums.last),
        previous_month: money(sums.previous),
    }
}

/// The names a dashboard shows, read for the people and plans on it.
struct Names<'a> {
    people: HashMap<EmployeeId, store::employees::Person>,
    plans: HashMap<PlanId, String>,
    directory: &'a Directory,
}

impl Names<'_> {
    fn person(&self, id: EmployeeId) -> String {
        self.people.get(&id).map_or_else(
            || format!("employee {id}"),
            |p| format!("{} {}", p.given_name, p.family_name),
        )
    }

    fn group(&self, key: GroupKey) -> String {
        match key {
            GroupKey::Employee(id) => match self.people.get(&id) {
                Some(p) => format!("{} {} <{}>", p.given_name, p.family_name, p.email),
                None => format!("employee {id}"),
            },
            GroupKey::Team(team) => match self.directory.team_name(team) {
                "" => "No team".to_owned(),
                name => name.to_owned(),
            },
            GroupKey::CostCentre(centre) => self
                .directory
                .cost_centre(centre)
                .map_or("No cost centre".to_owned(), |c| {
                    format!("{} {}", c.code, c.name)
                }),
        }
    }
}

/// Live lines older than the unused window with no usage in it: what they cost a month,
/// and which they are (the first [`LIST_LIMIT`] are listed).
struct UnusedLines<'a> {
    lines: Vec<&'a BilledLine>,
    monthly_cost: i64,
}

impl<'a> UnusedLines<'a> {
    fn of(facts: &'a DashboardFacts, active_since: Date) -> Self {
        let lines: Vec<&BilledLine> = facts
            .lines
            .iter()
            .filter(|l| {
                is_live(l)
                    && l.created_at.to_offset(UtcOffset::UTC).date() < active_since
                    && facts
                        .usage
                        .get(&l.line_id)
                        .is_none_or(|u| u.recent.recently_active == 0)
            })
            .collect();
        Self {
            monthly_cost: lines.iter().map(|l| l.price_minor.unwrap_or(0)).sum(),
            lines,
        }
    }

    fn listed(&self) -> impl Iterator<Item = &'a BilledLine> + '_ {
        self.lines.iter().take(LIST_LIMIT).copied()
    }

    fn shown(&self, names: &Names, currency: Currency) -> Vec<UnusedLine> {
        self.listed()
            .map(|l| UnusedLine {
                line_id: l.line_id,
                employee: names.person(l.employee_id),
                plan: names.plans.get(&l.plan_id).cloned().unwrap_or_default(),
                state: l.state.clone(),
                monthly_price: Money::new(l.price_minor.unwrap_or(0), currency),
            })
            .collect()
    }
}

fn add(into: &mut Sums, s: &Sums) {
    into.spend += s.spend;
    into.data += s.data;
    into.lines += s.lines;
    into.last += s.last;
    into.previous += s.previous;
}

async fn tenant_currency(tx: &mut Tx, tenant: TenantId) -> CoreResult<Currency> {
    Ok(store::tenants::get(tx, tenant)
        .await?
        .ok_or_else(|| CoreError::not_found("tenant", tenant))?
        .currency)
}

async fn directory(tx: &mut Tx, tenant: TenantId) -> CoreResult<Directory> {
    Ok(Directory {
        teams: store::org::list_teams(tx, tenant)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect(),
        cost_centres: store::org::list_cost_centres(tx, tenant)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect(),
    })
}

/// What the chart covers: per month, spend (fees + usage) over the period; per day or week,
/// usage charges only over at most [`DAILY_VIEW_DAYS`] (plan fees are monthly, and daily
/// rows are many).
struct ChartRange {
    granularity: Granularity,
    /// First and last day read (first days of months for a month chart); empty when
    /// `start > end`.
    start: Date,
    end: Date,
    /// What the chart leaves out, said plainly.
    note: Option<String>,
}

impl ChartRange {
    fn of(period: Period, granularity: Granularity, today: Date) -> Self {
        if granularity == Granularity::Month {
            return Self {
                granularity,
                start: period.from.first_day(),
                end: period.to.first_day(),
                note: None,
            };
        }
        let end = period.to.last_day().min(today);
        let start = period
            .from
            .first_day()
            .max(end - Duration::days(DAILY_VIEW_DAYS - 1));
        let mut note = format!(
            "{} views show usage charges only; plan fees are charged per month.",
            if granularity == Granularity::Day {
                "Daily"
            } else {
                "Weekly"
            }
        );
        if start > period.from.first_day() {
            note.push_str(&format!(
                " Showing the last {DAILY_VIEW_DAYS} days of the period, from {start}."
            ));
        }
        Self {
            granularity,
            start,
            end,
            note: Some(note),
        }
    }

    /// The chart's bars from the usage [`Lineup::chart_usage`] read and, per month, the plan
    /// fees of the lines billed in it.
    fn points(
        &self,
        usage: &[store_reports::UsageTotal],
        lines: &[BilledLine],
        period: Period,
        currency: Currency,
    ) -> Vec<SeriesPoint> {
        let money = |minor| Money::new(minor, currency);
        let usage: HashMap<Date, &store_reports::UsageTotal> =
            usage.iter().map(|u| (u.start, u)).collect();
        if self.granularity == Granularity::Month {
            let spans: Vec<(BilledSpan, i64)> = lines
                .iter()
                .filter_map(|l| Some((BilledSpan::of(l)?, l.price_minor.unwrap_or(0))))
                .collect();
            return period
                .months()
                .map(|month| {
                    let fees: i64 = spans
                        .iter()
                        .filter(|(span, _)| span.contains(month))
                        .map(|(_, price)| price)
                        .sum();
                    let used = usage.get(&month.first_day());
                    SeriesPoint {
                        label: month.to_string(),
                        start: month.first_day(),
                        spend: money(fees + used.map_or(0, |u| u.cost_minor)),
                        data: Bytes(used.map_or(0, |u| u.data_bytes)),
                    }
                })
                .collect();
        }
        let mut buckets: BTreeMap<Date, (i64, i64)> = BTreeMap::new();
        let mut day = self.start;
        while day <= self.end {
            let bucket = match self.granularity {
                Granularity::Week => (day
                    - Duration::days(i64::from(day.weekday().number_days_from_monday())))
                .max(self.start),
                _ => day,
            };
            let sums = buckets.entry(bucket).or_default();
            if let Some(u) = usage.get(&day) {
                sums.0 += u.cost_minor;
                sums.1 += u.data_bytes;
            }
            day += Duration::days(1);
        }
        buckets
            .into_iter()
            .map(|(start, (cost, data))| SeriesPoint {
                label: if self.granularity == Granularity::Week {
                    format!("week of {start}")
                } else {
                    start.to_string()
                },
                start,
                spend: money(cost),
                data: Bytes(data),
            })
            .collect()
    }
}

/// The months of `period` with a move inside them (not on their first day), and who moved
/// in each: the only months whose spend is split between cost centres a day at a time.
fn months_split_by_moves(
    moves: &[crate::store::moves::CostCentreMove],
    period: Period,
) -> BTreeMap<Month, Vec<EmployeeId>> {
    let mut split: BTreeMap<Month, Vec<EmployeeId>> = BTreeMap::new();
    for m in moves {
        let month = Month::containing(m.effective_on);
        if m.effective_on != month.first_day() && (period.from..=period.to).contains(&month) {
            split.entry(month).or_default().push(m.employee_id);
        }
    }
    for who in split.values_mut() {
        who.sort();
        who.dedup();
    }
    split
}
