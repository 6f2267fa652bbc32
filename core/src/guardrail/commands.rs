//! Guardrails applied to stored usage: evaluated inside each ingest batch's transaction,
//! their line actions carried out right after it commits, and undone at period rollover.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::alert::{Alert, AlertKind};
use crate::app::{Lineup, record, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::line::LineState;
use crate::pricing::billing_period;
use crate::store::usage::{LineSpend, SpendDelta, UsageRow};
use crate::store::{self, Tx, now};
use crate::usage::{UsageContext, owner_of, utc_day};

/// What a rollover sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloverReport {
    pub resumed: usize,
    pub periods_opened: u64,
    pub unused_line_alerts: usize,
}

impl Lineup {
    /// Checks the guardrails the new `rows` may have tripped; raises each new alert once and
    /// plans line actions (applied after commit by `apply_guardrail_actions`). Returns how
    /// many alerts are new.
    pub(crate) async fn evaluate_guardrails(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ctx: &UsageContext,
        rows: &[UsageRow],
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let current = billing_period(now.date());
        let mut raised = 0;
        raised += check_budgets(tx, tenant, ctx, rows, &current).await?;
        raised += check_roaming(tx, tenant, ctx, rows, &current).await?;
        raised += check_spikes(tx, tenant, ctx, rows).await?;
        Ok(raised)
    }

    /// Carry out planned guardrail actions (suspensions) through the line lifecycle, each
    /// with its own idempotency key, so a crash between plan and call is finished on the
    /// next run.
    pub async fn apply_guardrail_actions(&self, tenant: TenantId) -> CoreResult<usize> {
        let mut tx = self.tenant_tx(tenant).await?;
        let pending =
            store::guardrails::actions_in_state(&mut tx, tenant, ActionState::Pending, None)
                .await?;
        drop(tx);
        let mut applied = 0;
        for action in pending {
            let line = self.line(tenant, action.line_id).await?;
            let outcome = match (action.kind, line.state) {
                (GuardrailActionKind::Suspend, LineState::Active) => self
                    .suspend_line(
                        tenant,
                        &Actor::System,
                        line.id,
                        Some(format!("guardrail:{}", action.id)),
                    )
                    .await
                    .map(|_| ()),
                (GuardrailActionKind::Suspend, state) => Err(CoreError::invalid(
                    "line_id",
                    format!("the line was {state} when the guardrail came to suspend it"),
                )),
                (GuardrailActionKind::Throttle, _) => Err(CoreError::Provider(
                    crate::provider::ProviderError::Unsupported("throttling"),
                )),
            };
            let (to, error, audit) = match &outcome {
                Ok(()) => (ActionState::Applied, None, "guardrail.line_suspended"),
                Err(CoreError::Provider(e)) if e.is_retryable() => continue,
                Err(e) => (
                    ActionState::Failed,
                    Some(e.to_string()),
                    "guardrail.action_failed",
                ),
            };
            let mut tx = self.tenant_tx(tenant).await?;
            if store::guardrails::set_action_state(
                &mut tx,
                tenant,
                action.id,
                ActionState::Pending,
                to,
                error.as_deref(),
            )
            .await?
            {
                let event = AuditEvent::new(
                    tenant,
                    &Actor::System,
                    audit,
                    ("line", line.id.to_string()),
                    None,
                    to_json(&json!({
                        "guardrail_action": action.id, "period": action.period,
                        "alert": action.alert_id, "error": error,
                    })),
                );
                record(&mut tx, &event).await?;
                applied += usize::from(to == ActionState::Applied);
            }
            tx.commit().await?;
        }
        Ok(applied)
    }

    /// The period sweep, run with each usage sync: resume lines a guardrail suspended in an
    /// earlier period (only those), open the current period for live lines at their plan's
    /// price, and flag lines unused for `UNUSED_AFTER_DAYS`.
    pub async fn rollover_guardrails(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> CoreResult<RolloverReport> {
        let current = billing_period(now.date());
        let mut report = RolloverReport::default();
        let mut tx = self.tenant_tx(tenant).await?;
        let stale_pending = store::guardrails::actions_in_state(
            &mut tx,
            tenant,
            ActionState::Pending,
            Some(&current),
        )
        .await?;
        for action in stale_pending {
            store::guardrails::set_action_state(
                &mut tx,
                tenant,
                action.id,
                ActionState::Pending,
                ActionState::Failed,
                Some("its period ended before it was applied"),
            )
            .await?;
        }
        let to_revert = store::guardrails::actions_in_state(
            &mut tx,
            tenant,
            ActionState::Applied,
            Some(&current),
        )
        .await?;
        tx.commit().await?;
        for action in to_revert {
            report.resumed += usize::from(
                self.revert_guardrail_action(tenant, &action, "guardrail.period_rolled_over")
                    .await?,
            );
        }
        report.periods_opened = self.open_period(tenant, now).await?;
        report.unused_line_alerts = self.flag_unused_lines(tenant, now).await?;
        Ok(report)
    }

    /// Resume a line a guardrail suspended; returns whether it resumed it.
    async fn revert_guardrail_action(
        &self,
        tenant: TenantId,
        action: &GuardrailAction,
        why: &str,
    ) -> CoreResult<bool> {
        let line = self.line(tenant, action.line_id).await?;
        let resumed = match (action.kind, line.state) {
            (GuardrailActionKind::Suspend, LineState::Suspended) => {
                self.resume_line(
                    tenant,
                    &Actor::System,
                    line.id,
                    Some(format!("guardrail-revert:{}", action.id)),
                )
                .await?;
                true
            }
            // Someone resumed or terminated it in the meantime: nothing left to undo.
            _ => false,
        };
        let mut tx = self.tenant_tx(tenant).await?;
        if store::guardrails::set_action_state(
            &mut tx,
            tenant,
            action.id,
            ActionState::Applied,
            ActionState::Reverted,
            None,
        )
        .await?
        {
            let event = AuditEvent::new(
                tenant,
                &Actor::System,
                "guardrail.line_resumed",
                ("line", line.id.to_string()),
                None,
                to_json(&json!({
                    "guardrail_action": action.id, "period": action.period, "why": why,
                    "resumed": resumed,
                })),
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(resumed)
    }

    /// After a cap raise: resume the lines a budget cap suspended in `period` whose every
    /// capped scope is now under its cap.
    pub(crate) async fn lift_guardrails_under_cap(
        &self,
        tenant: TenantId,
        _actor: &Actor,
        period: &str,
    ) -> CoreResult<usize> {
        let mut tx = self.tenant_tx(tenant).await?;
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let applied =
            store::guardrails::actions_in_state(&mut tx, tenant, ActionState::Applied, None)
                .await?;
        let mut candidates = Vec::new();
        for action in applied.into_iter().filter(|a| a.period == period) {
            let Some(alert_id) = action.alert_id else {
                continue;
            };
            let Some(alert) = store::alerts::get(&mut tx, tenant, alert_id).await? else {
                continue;
            };
            if alert.kind == AlertKind::BudgetCapReached {
                candidates.push(action);
            }
        }
        if candidates.is_empty() {
            return Ok(0);
        }
        let budgets = Budgets::load(&mut tx, tenant, period).await?;
        drop(tx);
        let mut lifted = 0;
        for action in candidates {
            let Some(owner) = ctx.owner(action.line_id) else {
                continue;
            };
            let still_over = budgets.checks().into_iter().any(|(cap, check)| {
                cap.action == CapAction::Suspend && check.cap_reached && owner.is_in(cap.scope)
            });
            if !still_over {
                lifted += usize::from(
                    self.revert_guardrail_action(tenant, &action, "cap_raised")
                        .await?,
                );
            }
        }
        Ok(lifted)
    }

    /// Every live line gets its row for the current period at its plan's price, so a month's
    /// spend includes lines that have not been used yet.
    async fn open_period(&self, tenant: TenantId, now: OffsetDateTime) -> CoreResult<u64> {
        let period = billing_period(now.date());
        let mut tx = self.tenant_tx(tenant).await?;
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let opening: Vec<SpendDelta> = ctx
            .lines
            .values()
            .filter(|l| l.state.is_live())
            .map(|l| SpendDelta {
                line_id: l.line_id,
                period: period.clone(),
                employee_id: l.employee_id,
                team_id: l.team_id,
                cost_centre_id: l.cost_centre_id,
                plan_price_minor: ctx.pricing_of(l.line_id).map_or(0, |p| p.price_minor),
                bundle_bytes: 0,
                roaming_bytes: 0,
                roaming_minor: 0,
            })
            .collect();
        let opened = store::usage::open_periods(&mut tx, tenant, &opening).await?;
        tx.commit().await?;
        Ok(opened)
    }

    async fn flag_unused_lines(&self, tenant: TenantId, now: OffsetDateTime) -> CoreResult<usize> {
        let since = now - Duration::days(UNUSED_AFTER_DAYS);
        let period = billing_period(now.date());
        let mut tx = self.tenant_tx(tenant).await?;
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let unused =
            store::usage::lines_without_usage_since(&mut tx, tenant, since.date(), since).await?;
        let mut raised = 0;
        for line_id in unused {
            let Some(line) = ctx.lines.get(&line_id) else {
                continue;
            };
            let price = ctx.pricing_of(line_id).map_or(0, |p| p.price_minor);
            let alert = Alert::raise(
                tenant,
                AlertKind::UnusedLine,
                &period,
                format!("unused:{line_id}:{period}"),
                format!("line:{line_id}"),
                format!(
                    "A line has had no usage for {UNUSED_AFTER_DAYS} days; it costs {} a month.",
                    ctx.tenant.money(price)
                ),
                json!({ "wasted_per_month_minor": price, "days": UNUSED_AFTER_DAYS }),
            )
            .on_line(line_id, line.employee_id);
            raised += usize::from(raise(&mut tx, tenant, &alert).await?);
        }
        tx.commit().await?;
        Ok(raised)
    }
}

/// Stores the alert unless its condition already alerted this period; audits new ones.
pub(crate) async fn raise(tx: &mut Tx, tenant: TenantId, alert: &Alert) -> CoreResult<bool> {
    if !store::alerts::insert_if_new(tx, tenant, alert).await? {
        return Ok(false);
    }
    let event = AuditEvent::new(
        tenant,
        &Actor::System,
        "alert.raised",
        ("alert", alert.id.to_string()),
        None,
        to_json(alert),
    );
    record(tx, &event).await?;
    Ok(true)
}

/// The stored id of `alert`'s condition: its own when it was `new`, else the earlier one's.
async fn alert_id_for(
    tx: &mut Tx,
    tenant: TenantId,
    alert: &Alert,
    new: bool,
) -> CoreResult<Option<AlertId>> {
    if new {
        return Ok(Some(alert.id));
    }
    Ok(
        store::alerts::find_by_dedupe_key(tx, tenant, &alert.dedupe_key)
            .await?
            .map(|a| a.id),
    )
}

async fn plan_action(
    tx: &mut Tx,
    tenant: TenantId,
    line: LineId,
    period: &str,
    kind: GuardrailActionKind,
    alert: Option<AlertId>,
) -> CoreResult<()> {
    let action = GuardrailAction {
        id: GuardrailActionId::new(),
        tenant_id: tenant,
        line_id: line,
        period: period.to_owned(),
        kind,
        alert_id: alert,
        state: ActionState::Pending,
        error: None,
        created_at: now(),
    };
    store::guardrails::insert_action_if_new(tx, tenant, &action).await?;
    Ok(())
}

/// A period's caps, raises and spend per scope.
struct Budgets {
    caps: Vec<BudgetCap>,
    raises: HashMap<CapScope, i64>,
    spent: HashMap<CapScope, i64>,
}

impl Budgets {
    async fn load(tx: &mut Tx, tenant: TenantId, period: &str) -> CoreResult<Self> {
        let caps = store::policy::list_caps(tx, tenant).await?;
        let mut raises: HashMap<CapScope, i64> = HashMap::new();
        for (employee, amount) in store::policy::cap_raises_for_period(tx, tenant, period).await? {
            *raises.entry(CapScope::Employee(employee)).or_insert(0) += amount;
        }
        for (scope, amount) in store::guardrails::period_raises(tx, tenant, period).await? {
            *raises.entry(scope).or_insert(0) += amount;
        }
        let lines = if caps.is_empty() {
            Vec::new()
        } else {
            store::usage::line_spend_for_period(tx, tenant, period).await?
        };
        let spent = spend_per_scope(lines.iter().map(|l: &LineSpend| {
            (
                Owner {
                    employee: l.employee_id,
                    team: l.team_id,
                    cost_centre: l.cost_centre_id,
                },
                l.total_minor(),
            )
        }));
        Ok(Self {
            caps,
            raises,
            spent,
        })
    }

    fn checks(&self) -> Vec<(&BudgetCap, CapCheck)> {
        self.caps
            .iter()
            .map(|cap| {
                let raised = self.raises.get(&cap.scope).copied().unwrap_or(0);
                let spent = self.spent.get(&cap.scope).copied().unwrap_or(0);
                (cap, check_cap(cap, raised, spent))
            })
            .collect()
    }
}

async fn check_budgets(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
    current: &str,
) -> CoreResult<usize> {
    let mut touched: BTreeMap<String, HashSet<CapScope>> = BTreeMap::new();
    for row in rows {
        if let Some(owner) = ctx.owner(row.line_id) {
            touched
                .entry(billing_period(utc_day(row.started_at)))
                .or_default()
                .extend(owner.scopes());
        }
    }
    let mut raised = 0;
    for (period, scopes) in touched {
        let budgets = Budgets::load(tx, tenant, &period).await?;
        for (cap, check) in budgets.checks() {
            if !scopes.contains(&cap.scope) {
                continue;
            }
            let employee = match cap.scope {
                CapScope::Employee(e) => Some(e),
                _ => None,
            };
            let mut cap_alert = None;
            for threshold in &check.thresholds_reached {
                let alert =
                    budget_alert(ctx, cap, &check, &period, *threshold).for_employee(employee);
                let new = raise(tx, tenant, &alert).await?;
                raised += usize::from(new);
                if *threshold == 100 {
                    cap_alert = alert_id_for(tx, tenant, &alert, new).await?;
                }
            }
            let action = line_action_for(cap.action);
            if let (true, Some(kind), true) = (check.cap_reached, action, period == current) {
                for (line_id, line) in &ctx.lines {
                    if line.state == LineState::Active && owner_of(line).is_in(cap.scope) {
                        plan_action(tx, tenant, *line_id, &period, kind, cap_alert).await?;
                    }
                }
            }
        }
    }
    Ok(raised)
}

fn budget_alert(
    ctx: &UsageContext,
    cap: &BudgetCap,
    check: &CapCheck,
    period: &str,
    threshold: u8,
) -> Alert {
    let money = |m: i64| ctx.tenant.money(m).to_string();
    let scope = scope_label(cap.scope);
    let (kind, message) = if threshold >= 100 {
        let outcome = match cap.action {
            CapAction::Suspend => "its active lines are being suspended until the period ends",
            CapAction::Throttle => {
                "the cap asks for throttling, which the provider cannot do: alert only"
            }
            CapAction::Alert => "no action is taken",
        };
        (
            AlertKind::BudgetCapReached,
            format!(
                "The {scope} budget reached its cap: {} of {} in {period}; {outcome}.",
                money(check.spent_minor),
                money(check.limit_minor)
            ),
        )
    } else {
        (
            AlertKind::BudgetThreshold,
            format!(
                "The {scope} budget passed {threshold}%: {} of {} in {period}.",
                money(check.spent_minor),
                money(check.limit_minor)
            ),
        )
    };
    Alert::raise(
        ctx.tenant.id,
        kind,
        period,
        budget_alert_key(cap.scope, period, threshold),
        scope,
        message,
        json!({
            "cap_scope": cap.scope, "threshold": threshold, "spent_minor": check.spent_minor,
            "limit_minor": check.limit_minor, "action": cap.action,
        }),
    )
}

async fn check_roaming(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
    current: &str,
) -> CoreResult<usize> {
    let roaming: Vec<&UsageRow> = rows
        .iter()
        .filter(|r| r.roaming && r.country.is_some())
        .collect();
    let Some(first_day) = roaming.iter().map(|r| utc_day(r.started_at)).min() else {
        return Ok(0);
    };
    let rules: HashMap<String, RoamingRule> = store::policy::list_roaming_rules(tx, tenant)
        .await?
        .into_iter()
        .collect();
    let grants = store::policy::grants_covering_since(tx, tenant, first_day).await?;
    let action = line_action_for(ctx.tenant.settings.roaming_violation_action);
    let mut raised = 0;
    // Per (line, country): how many records this batch added, for the new-country check.
    let mut allowed_new: BTreeMap<(LineId, String), (i64, String)> = BTreeMap::new();
    for row in roaming {
        let (Some(country), Some(line)) = (row.country.as_deref(), ctx.lines.get(&row.line_id))
        else {
            continue;
        };
        let country = country.to_ascii_uppercase();
        let day = utc_day(row.started_at);
        let period = billing_period(day);
        let granted = grants.iter().any(|g| {
            g.line_id == row.line_id
                && g.country.eq_ignore_ascii_case(&country)
                && g.starts_on <= day
                && day <= g.ends_on
        });
        match roaming_verdict(rules.get(&country).copied(), granted) {
            RoamingVerdict::Allowed => {
                allowed_new
                    .entry((row.line_id, country))
                    .or_insert((0, period))
                    .0 += 1;
            }
            RoamingVerdict::Violation { rule } => {
                let why = match rule {
                    Some(RoamingRule::Blocked) => "is blocked",
                    Some(RoamingRule::NeedsApproval) => "needs approval",
                    _ => "is not in the roaming presets",
                };
                let alert = Alert::raise(
                    tenant,
                    AlertKind::RoamingViolation,
                    &period,
                    format!("roaming:{}:{country}:{period}", row.line_id),
                    format!("line:{}", row.line_id),
                    format!(
                        "A line roamed in {country} on {day}, which {why}, with no roaming \
                         grant for that day."
                    ),
                    json!({ "country": country, "day": day.to_string(), "rule": rule }),
                )
                .on_line(row.line_id, line.employee_id);
                let new = raise(tx, tenant, &alert).await?;
                raised += usize::from(new);
                if let (Some(kind), true, LineState::Active) =
                    (action, period == current, line.state)
                {
                    let alert_id = alert_id_for(tx, tenant, &alert, new).await?;
                    plan_action(tx, tenant, row.line_id, &period, kind, alert_id).await?;
                }
            }
        }
    }
    raised += check_new_countries(tx, tenant, ctx, allowed_new, first_day).await?;
    Ok(raised)
}

/// Roaming that policy allows, but in a country the line has not roamed in for
/// `KNOWN_COUNTRY_DAYS`: worth a look, not an action.
async fn check_new_countries(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    added: BTreeMap<(LineId, String), (i64, String)>,
    first_day: time::Date,
) -> CoreResult<usize> {
    if added.is_empty() {
        return Ok(0);
    }
    let lines: Vec<LineId> = added
        .keys()
        .map(|(l, _)| *l)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let since = first_day.midnight().assume_utc() - Duration::days(KNOWN_COUNTRY_DAYS);
    let counts: HashMap<(LineId, String), i64> =
        store::usage::roaming_record_counts(tx, tenant, &lines, since)
            .await?
            .into_iter()
            .map(|(line, country, n)| ((line, country.to_ascii_uppercase()), n))
            .collect();
    let mut raised = 0;
    for ((line_id, country), (added_now, period)) in added {
        let known = counts
            .get(&(line_id, country.clone()))
            .copied()
            .unwrap_or(0)
            > added_now;
        let Some(line) = ctx.lines.get(&line_id) else {
            continue;
        };
        if known {
            continue;
        }
        let alert = Alert::raise(
            tenant,
            AlertKind::NewRoamingCountry,
            &period,
            format!("new_country:{line_id}:{country}:{period}"),
            format!("line:{line_id}"),
            format!("A line started roaming in {country}, a country it has not used before."),
            json!({ "country": country }),
        )
        .on_line(line_id, line.employee_id);
        raised += usize::from(raise(tx, tenant, &alert).await?);
    }
    Ok(raised)
}

async fn check_spikes(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
) -> CoreResult<usize> {
    let touched: BTreeSet<(LineId, time::Date)> = rows
        .iter()
        .filter(|r| r.data_bytes > 0)
        .map(|r| (r.line_id, utc_day(r.started_at)))
        .collect();
    let Some(first_day) = touched.iter().map(|(_, d)| *d).min() else {
        return Ok(0);
    };
    let lines: Vec<LineId> = touched
        .iter()
        .map(|(l, _)| *l)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let history = store::usage::daily_for_lines_since(
        tx,
        tenant,
        &lines,
        first_day - Duration::days(BASELINE_DAYS),
    )
    .await?;
    let mut by_line: HashMap<LineId, BTreeMap<time::Date, i64>> = HashMap::new();
    for day in history {
        by_line
            .entry(day.line_id)
            .or_default()
            .insert(day.day, day.data_bytes);
    }
    let mut raised = 0;
    for (line_id, day) in touched {
        let Some(days) = by_line.get(&line_id) else {
            continue;
        };
        let Some(today) = days.get(&day).copied() else {
            continue;
        };
        let trailing: Vec<i64> = days
            .range(day - Duration::days(BASELINE_DAYS)..day)
            .map(|(_, bytes)| *bytes)
            .collect();
        if is_usage_spike(&trailing, today) != Some(true) {
            continue;
        }
        let Some(line) = ctx.lines.get(&line_id) else {
            continue;
        };
        let period = billing_period(day);
        let alert = Alert::raise(
            tenant,
            AlertKind::UsageSpike,
            &period,
            format!("spike:{line_id}:{period}"),
            format!("line:{line_id}"),
            format!(
                "A line used {} on {day}, more than {SPIKE_FACTOR}× its usual day.",
                crate::money::Bytes(today)
            ),
            json!({ "day": day.to_string(), "data_bytes": today }),
        )
        .on_line(line_id, line.employee_id);
        raised += usize::from(raise(tx, tenant, &alert).await?);
    }
    Ok(raised)
}
