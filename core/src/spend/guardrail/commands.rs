//! Guardrails applied to stored usage: roaming judged in the transaction that stores a page of
//! records, spikes and caps in the one that rolls pages up (and both when a cap or roaming
//! preset is saved, against what is already recorded); their line actions carried out right
//! after it commits, and undone at period rollover or when a changed policy no longer calls
//! for them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::app::{Lineup, record, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::lines::line::LineState;
use crate::messaging::employee_notice;
use crate::provider::{IdempotencyKey, OperationStatus, ProviderError};
use crate::spend::alert::{Alert, AlertKind};
use crate::spend::pricing::billing_period;
use crate::spend::usage::{UsageContext, owner_of, utc_day};
use crate::store::usage::{DayTotal, SpendDelta, UsageRow};
use crate::store::{self, Tx, now};

/// The policy a change touched: the caps of these scopes, or the roaming preset of a country.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PolicyChange<'a> {
    Caps(&'a [CapScope]),
    Roaming(&'a str),
}

/// What a rollover sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloverReport {
    /// Lines a guardrail had suspended or slowed, put back.
    pub resumed: usize,
    pub periods_opened: u64,
    pub unused_line_alerts: usize,
}

impl Lineup {
    /// Judges the new `rows`' roaming on its own, needing no totals (outside the presets, or in
    /// a country new to the line), and records what it found. Runs in the transaction that
    /// stores the rows, so a page's records and its roaming alerts commit together: the
    /// new-country check counts the line's stored records, and a page stored later must not
    /// make this page's country look known.
    pub(crate) async fn check_roaming_and_record(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ctx: &UsageContext,
        rows: &[UsageRow],
        now: OffsetDateTime,
    ) -> CoreResult<Recorded> {
        if rows.is_empty() {
            return Ok(Recorded::default());
        }
        let mut found = Findings::default();
        let current = billing_period(now.date());
        check_roaming(tx, tenant, ctx, rows, &current, &mut found).await?;
        record_findings(tx, tenant, found).await
    }

    /// Usage spikes among the (line, day) totals a rollup just added to.
    pub(crate) async fn check_spikes(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ctx: &UsageContext,
        days: &[DayTotal],
    ) -> CoreResult<Findings> {
        let mut found = Findings::default();
        check_spikes(tx, tenant, ctx, days, &mut found).await?;
        Ok(found)
    }

    /// Checks the budget caps the new `rows` may have tripped, with their spend already added
    /// to the periods, then raises each new alert (with `found`) once and plans line actions
    /// (applied after commit by `apply_guardrail_actions`).
    pub(crate) async fn check_budgets_and_record(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        ctx: &UsageContext,
        rows: &[UsageRow],
        mut found: Findings,
        now: OffsetDateTime,
    ) -> CoreResult<Recorded> {
        if rows.is_empty() {
            return Ok(Recorded::default());
        }
        let current = billing_period(now.date());
        let mut touched: BTreeMap<String, HashSet<CapScope>> = BTreeMap::new();
        for row in rows {
            if let Some(owner) = ctx.owner(row.line_id) {
                touched
                    .entry(billing_period(utc_day(row.started_at)))
                    .or_default()
                    .extend(owner.scopes());
            }
        }
        check_budgets(tx, tenant, ctx, touched, &current, &mut found).await?;
        record_findings(tx, tenant, found).await
    }

    /// Inside `tx`, where the policy already reads as changed: what the change calls for,
    /// given the spend (or roaming) recorded so far this period. The caps of `change` are
    /// checked exactly as ingest checks them (alerts once per threshold, actions on the scope's
    /// active lines), so the next sync repeats nothing; roaming in the changed country is
    /// judged as ingest judged it. Alerts and planned actions are written to `tx`; the
    /// cap-imposed actions no cap calls for any more are returned, to be undone after commit.
    pub(crate) async fn evaluate_policy_change(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        change: PolicyChange<'_>,
        now: OffsetDateTime,
    ) -> CoreResult<(PolicyEffect, Vec<GuardrailAction>)> {
        let current = billing_period(now.date());
        let ctx = UsageContext::load(tx, tenant).await?;
        let mut found = Findings::default();
        let to_release = match change {
            PolicyChange::Caps(scopes) => {
                let touched = BTreeMap::from([(current.clone(), scopes.iter().copied().collect())]);
                check_budgets(tx, tenant, &ctx, touched, &current, &mut found).await?;
                cap_actions_to_release(tx, tenant, &ctx, &current).await?
            }
            PolicyChange::Roaming(country) => {
                let from = crate::spend::pricing::period_start(now.date())
                    .midnight()
                    .assume_utc();
                let this_period = store::usage::roaming_records_between(
                    tx,
                    tenant,
                    from,
                    now + Duration::days(1),
                )
                .await?;
                let in_country: Vec<UsageRow> = this_period
                    .iter()
                    .filter(|r| {
                        r.country
                            .as_deref()
                            .is_some_and(|c| c.eq_ignore_ascii_case(country))
                    })
                    .cloned()
                    .collect();
                roaming_violations(tx, tenant, &ctx, &in_country, &current, &mut found).await?;
                roaming_actions_to_release(tx, tenant, &ctx, &current, &this_period).await?
            }
        };
        let recorded = record_findings(tx, tenant, found).await?;
        let effect = PolicyEffect {
            alerts: recorded.alerts,
            throttled: recorded.throttled,
            suspended: recorded.suspended,
            released: to_release.len(),
        };
        Ok((effect, to_release))
    }

    /// Carry out what a policy change decided, after its transaction committed: give back the
    /// lines in `release`, then apply the planned actions (each idempotent at the provider).
    pub(crate) async fn act_on_policy_change(
        &self,
        tenant: TenantId,
        release: Vec<GuardrailAction>,
    ) -> CoreResult<()> {
        for action in release {
            self.revert_guardrail_action(tenant, &action, "policy_changed")
                .await?;
        }
        self.apply_guardrail_actions(tenant).await?;
        Ok(())
    }

    /// Where each budget that counts `person`'s spend stands in `period` (their own cap, their
    /// team's, cost centre's and the organisation's), exactly as the guardrails count it.
    pub(crate) async fn budget_standing(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        person: &crate::organisation::employee::Employee,
        period: &str,
    ) -> CoreResult<Vec<(BudgetCap, CapCheck)>> {
        let owner = Owner {
            employee: person.id,
            team: person.team_id,
            cost_centre: person.cost_centre_id,
        };
        let scopes: HashSet<CapScope> = owner.scopes().into_iter().collect();
        let budgets = Budgets::load(tx, tenant, period, &scopes).await?;
        Ok(budgets
            .checks()
            .into_iter()
            .map(|(cap, check)| (cap.clone(), check))
            .collect())
    }

    /// Carry out planned guardrail actions (suspensions) through the line lifecycle, each
    /// with its own idempotency key, so a crash between plan and call is finished on the
    /// next run.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn apply_guardrail_actions(&self, tenant: TenantId) -> CoreResult<usize> {
        let mut tx = self.tenant_tx(tenant).await?;
        let pending =
            store::guardrails::actions_in_state(&mut tx, tenant, ActionState::Pending, None)
                .await?;
        drop(tx);
        let mut applied = 0;
        for action in pending {
            let line = self.line(tenant, action.line_id).await?;
            let key = format!("guardrail:{}", action.id);
            let mut kbps = None;
            let outcome = match (action.kind, line.state) {
                (GuardrailActionKind::Suspend, LineState::Active) => self
                    .suspend_line(tenant, &Actor::System, line.id, Some(key))
                    .await
                    .map(|_| ()),
                (GuardrailActionKind::Throttle, LineState::Active) => {
                    let speed = self.throttle_speed(tenant, &line).await?;
                    kbps = Some(speed);
                    self.set_line_speed_limit(&line, Some(speed), key).await
                }
                (kind, state) => Err(CoreError::invalid(
                    "line_id",
                    format!(
                        "the line was {state} when the guardrail came to {} it",
                        kind.as_str()
                    ),
                )),
            };
            let done = match action.kind {
                GuardrailActionKind::Suspend => "guardrail.line_suspended",
                GuardrailActionKind::Throttle => "guardrail.line_throttled",
            };
            let (to, error, audit) = match &outcome {
                Ok(()) => (ActionState::Applied, None, done),
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
                if to == ActionState::Applied {
                    applied += 1;
                    let why = match action.alert_id {
                        Some(id) => store::alerts::get(&mut tx, tenant, id).await?,
                        None => None,
                    };
                    let message =
                        employee_notice::guardrail_applied(action.kind, why.as_ref(), kbps);
                    let reason = format!("guardrail:{}:applied", action.id);
                    employee_notice::queue(&mut tx, tenant, line.employee_id, &reason, &message)
                        .await?;
                }
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
        let key = format!("guardrail-revert:{}", action.id);
        let resumed = match (action.kind, line.state) {
            (GuardrailActionKind::Suspend, LineState::Suspended) => {
                self.resume_line(tenant, &Actor::System, line.id, Some(key))
                    .await?;
                true
            }
            (GuardrailActionKind::Throttle, state) if state.is_live() => {
                self.set_line_speed_limit(&line, None, key).await?;
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
                match action.kind {
                    GuardrailActionKind::Suspend => "guardrail.line_resumed",
                    GuardrailActionKind::Throttle => "guardrail.line_unthrottled",
                },
                ("line", line.id.to_string()),
                None,
                to_json(&json!({
                    "guardrail_action": action.id, "period": action.period, "why": why,
                    "resumed": resumed,
                })),
            );
            record(&mut tx, &event).await?;
            if resumed {
                let message = employee_notice::guardrail_reverted(action.kind, why);
                let reason = format!("guardrail:{}:reverted", action.id);
                employee_notice::queue(&mut tx, tenant, line.employee_id, &reason, &message)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(resumed)
    }

    /// The speed a guardrail throttles `line` to: its plan's after-cap speed, or the default.
    async fn throttle_speed(
        &self,
        tenant: TenantId,
        line: &crate::lines::line::Line,
    ) -> CoreResult<u32> {
        let plans = self.plans(tenant).await?;
        Ok(plans
            .iter()
            .find(|p| p.id == line.plan_id)
            .and_then(|p| p.throttle_after_cap_kbps)
            .unwrap_or(DEFAULT_THROTTLE_KBPS))
    }

    /// Ask the provider to cap (or, with `None`, uncap) the line's speed and wait for it. The
    /// key is derived from the guardrail action stored before the call, so a retry after a
    /// crash replays the same order.
    async fn set_line_speed_limit(
        &self,
        line: &crate::lines::line::Line,
        max_kbps: Option<u32>,
        key: String,
    ) -> CoreResult<()> {
        let provider = self
            .provider_of_connection(line.tenant_id, line.provider_connection_id)
            .await?;
        let provider = provider.as_ref();
        if !provider.capabilities().speed_limit {
            return Err(ProviderError::Unsupported("speed limits").into());
        }
        let subscription = line.provider_subscription_id.as_deref().ok_or_else(|| {
            CoreError::invalid("line_id", "the line has no provider subscription yet")
        })?;
        let placed = provider
            .set_speed_limit(subscription, max_kbps, &IdempotencyKey(key))
            .await?;
        let settled = self
            .wait_for_order(provider, placed, self.poll_policy())
            .await?;
        match settled.status {
            OperationStatus::Failed { code, message } => Err(CoreError::OperationFailed {
                operation: "set the speed limit of",
                reason: format!("{code}: {message}"),
            }),
            _ => Ok(()),
        }
    }

    /// After a cap raise: resume the lines a budget cap suspended in `period` whose every
    /// capped scope is now under its cap.
    pub(crate) async fn lift_guardrails_under_cap(
        &self,
        tenant: TenantId,
        _actor: &Actor,
        period: &str,
    ) -> CoreResult<usize> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let ctx = UsageContext::load(&mut tx, tenant).await?;
        let to_release = cap_actions_to_release(&mut tx, tenant, &ctx, period).await?;
        drop(tx);
        let mut lifted = 0;
        for action in to_release {
            lifted += usize::from(
                self.revert_guardrail_action(tenant, &action, "cap_raised")
                    .await?,
            );
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
        let mut found = Findings::default();
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
            found.alert(alert);
        }
        let recorded = record_findings(&mut tx, tenant, found).await?;
        tx.commit().await?;
        Ok(recorded.alerts)
    }
}

/// What one batch's checks found: alerts to raise (once each, by dedupe key) and line actions
/// to plan, each answering the alert with the key it names.
#[derive(Default)]
pub(crate) struct Findings {
    alerts: Vec<Alert>,
    keys: HashSet<String>,
    actions: Vec<PlannedAction>,
}

struct PlannedAction {
    line: LineId,
    period: String,
    kind: GuardrailActionKind,
    alert_key: String,
}

impl Findings {
    fn alert(&mut self, alert: Alert) {
        if self.keys.insert(alert.dedupe_key.clone()) {
            self.alerts.push(alert);
        }
    }

    fn act(&mut self, line: LineId, period: &str, kind: GuardrailActionKind, alert_key: &str) {
        self.actions.push(PlannedAction {
            line,
            period: period.to_owned(),
            kind,
            alert_key: alert_key.to_owned(),
        });
    }
}

/// What a batch's findings added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub alerts: usize,
    pub actions: usize,
    pub throttled: usize,
    pub suspended: usize,
}

/// Stores the findings: new alerts (audited), and actions not yet planned this period.
async fn record_findings(tx: &mut Tx, tenant: TenantId, found: Findings) -> CoreResult<Recorded> {
    let stored: HashSet<AlertId> = store::alerts::insert_many_if_new(tx, tenant, &found.alerts)
        .await?
        .into_iter()
        .collect();
    let new: Vec<&Alert> = found
        .alerts
        .iter()
        .filter(|a| stored.contains(&a.id))
        .collect();
    let events: Vec<AuditEvent> = new
        .iter()
        .map(|alert| {
            AuditEvent::new(
                tenant,
                &Actor::System,
                "alert.raised",
                ("alert", alert.id.to_string()),
                None,
                to_json(alert),
            )
        })
        .collect();
    store::audit::insert_many(tx, tenant, &events).await?;
    for alert in &new {
        crate::messaging::employee_notice::queue_for_alert(tx, alert).await?;
    }
    let mut recorded = Recorded {
        alerts: new.len(),
        ..Recorded::default()
    };
    if found.actions.is_empty() {
        return Ok(recorded);
    }
    // An action given back this period (its cap raised or removed, its country allowed) is
    // taken again when its cap is reached again; any other stays one per line and period.
    let mut planned: HashSet<(LineId, String, &'static str)> = HashSet::new();
    let mut reverted: HashSet<(LineId, String, &'static str)> = HashSet::new();
    let periods: BTreeSet<&String> = found.actions.iter().map(|a| &a.period).collect();
    for period in periods {
        for (line, kind, state) in store::guardrails::planned_in_period(tx, tenant, period).await? {
            if let Some(kind) = GuardrailActionKind::parse(&kind) {
                let key = (line, period.clone(), kind.as_str());
                if ActionState::parse(&state) == Some(ActionState::Reverted) {
                    reverted.insert(key);
                } else {
                    planned.insert(key);
                }
            }
        }
    }
    let to_plan: Vec<&PlannedAction> = found
        .actions
        .iter()
        .filter(|a| planned.insert((a.line, a.period.clone(), a.kind.as_str())))
        .collect();
    if to_plan.is_empty() {
        return Ok(recorded);
    }
    let keys: Vec<String> = to_plan
        .iter()
        .map(|a| a.alert_key.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let alert_ids: HashMap<String, AlertId> = store::alerts::ids_by_dedupe_keys(tx, tenant, &keys)
        .await?
        .into_iter()
        .collect();
    for action in to_plan {
        if reverted.contains(&(action.line, action.period.clone(), action.kind.as_str())) {
            store::guardrails::delete_reverted(
                tx,
                tenant,
                action.line,
                &action.period,
                action.kind,
            )
            .await?;
        }
        let planned = GuardrailAction {
            id: GuardrailActionId::new(),
            tenant_id: tenant,
            line_id: action.line,
            period: action.period.clone(),
            kind: action.kind,
            alert_id: alert_ids.get(&action.alert_key).copied(),
            state: ActionState::Pending,
            error: None,
            created_at: now(),
        };
        if store::guardrails::insert_action_if_new(tx, tenant, &planned).await? {
            recorded.actions += 1;
            match planned.kind {
                GuardrailActionKind::Throttle => recorded.throttled += 1,
                GuardrailActionKind::Suspend => recorded.suspended += 1,
            }
        }
    }
    Ok(recorded)
}

/// A period's caps on the scopes a batch touched, with their raises and spend.
struct Budgets {
    caps: Vec<BudgetCap>,
    raises: HashMap<CapScope, i64>,
    spent: HashMap<CapScope, i64>,
}

impl Budgets {
    async fn load(
        tx: &mut Tx,
        tenant: TenantId,
        period: &str,
        touched: &HashSet<CapScope>,
    ) -> CoreResult<Self> {
        let caps: Vec<BudgetCap> = store::policy::list_caps(tx, tenant)
            .await?
            .into_iter()
            .filter(|cap| touched.contains(&cap.scope))
            .collect();
        if caps.is_empty() {
            return Ok(Self {
                caps,
                raises: HashMap::new(),
                spent: HashMap::new(),
            });
        }
        // An approved cap raise lets that employee spend more this month: every budget that
        // counts their spend (their own, their team's, cost centre's and the organisation's)
        // gets that much more room.
        let mut raises: HashMap<CapScope, i64> = HashMap::new();
        for (employee, team, cost_centre, amount) in
            store::policy::cap_raises_by_owner(tx, tenant, period).await?
        {
            let owner = Owner {
                employee,
                team,
                cost_centre,
            };
            for scope in owner.scopes() {
                *raises.entry(scope).or_insert(0) += amount;
            }
        }
        for (scope, amount) in store::guardrails::period_raises(tx, tenant, period).await? {
            *raises.entry(scope).or_insert(0) += amount;
        }
        let scopes: Vec<CapScope> = caps.iter().map(|cap| cap.scope).collect();
        let spent = store::usage::spend_of_scopes(tx, tenant, period, &scopes).await?;
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

/// The lines a budget cap slowed or suspended in `period` whose every capped scope is now
/// under its cap (or has no cap any more): what a raise or a removed cap gives back. Lines an
/// admin suspended have no guardrail action and are never among them.
async fn cap_actions_to_release(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    period: &str,
) -> CoreResult<Vec<GuardrailAction>> {
    let applied =
        store::guardrails::actions_in_state(tx, tenant, ActionState::Applied, None).await?;
    let mut candidates = Vec::new();
    for action in applied.into_iter().filter(|a| a.period == period) {
        let Some(alert_id) = action.alert_id else {
            continue;
        };
        let Some(alert) = store::alerts::get(tx, tenant, alert_id).await? else {
            continue;
        };
        if alert.kind == AlertKind::BudgetCapReached {
            candidates.push(action);
        }
    }
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let scopes: HashSet<CapScope> = candidates
        .iter()
        .filter_map(|action| ctx.owner(action.line_id))
        .flat_map(|owner| owner.scopes())
        .collect();
    let budgets = Budgets::load(tx, tenant, period, &scopes).await?;
    candidates.retain(|action| {
        let Some(owner) = ctx.owner(action.line_id) else {
            return false;
        };
        !budgets.checks().into_iter().any(|(cap, check)| {
            line_action_for(cap.action).is_some() && check.cap_reached && owner.is_in(cap.scope)
        })
    });
    Ok(candidates)
}

/// The lines slowed or suspended in `period` for roaming against policy whose every roaming
/// record of the period (`records`) is now within policy, and that no reached cap holds: what
/// allowing a country (or granting the trip) gives back.
async fn roaming_actions_to_release(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    period: &str,
    records: &[UsageRow],
) -> CoreResult<Vec<GuardrailAction>> {
    let applied =
        store::guardrails::actions_in_state(tx, tenant, ActionState::Applied, None).await?;
    let mut candidates = Vec::new();
    for action in applied.into_iter().filter(|a| a.period == period) {
        let Some(alert_id) = action.alert_id else {
            continue;
        };
        if let Some(alert) = store::alerts::get(tx, tenant, alert_id).await?
            && alert.kind == AlertKind::RoamingViolation
        {
            candidates.push(action);
        }
    }
    let Some(first_day) = records.iter().map(|r| utc_day(r.started_at)).min() else {
        return Ok(candidates);
    };
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let rules: HashMap<String, RoamingRule> = store::policy::list_roaming_rules(tx, tenant)
        .await?
        .into_iter()
        .collect();
    let grants = store::policy::grants_covering_since(tx, tenant, first_day).await?;
    let still_outside: HashSet<LineId> = records
        .iter()
        .filter(|r| r.roaming)
        .filter_map(|r| {
            let country = r.country.as_deref()?.to_ascii_uppercase();
            let granted = grant_covers(&grants, r.line_id, &country, utc_day(r.started_at));
            let verdict = roaming_verdict(rules.get(&country).copied(), granted);
            matches!(verdict, RoamingVerdict::Violation { .. }).then_some(r.line_id)
        })
        .collect();
    candidates.retain(|a| !still_outside.contains(&a.line_id));
    let scopes: HashSet<CapScope> = candidates
        .iter()
        .filter_map(|action| ctx.owner(action.line_id))
        .flat_map(|owner| owner.scopes())
        .collect();
    let budgets = Budgets::load(tx, tenant, period, &scopes).await?;
    candidates.retain(|action| {
        ctx.owner(action.line_id).is_some_and(|owner| {
            !budgets.checks().into_iter().any(|(cap, check)| {
                line_action_for(cap.action).is_some() && check.cap_reached && owner.is_in(cap.scope)
            })
        })
    });
    Ok(candidates)
}

async fn check_budgets(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    touched: BTreeMap<String, HashSet<CapScope>>,
    current: &str,
    found: &mut Findings,
) -> CoreResult<()> {
    let mut names = ScopeNames::default();
    for (period, scopes) in touched {
        let budgets = Budgets::load(tx, tenant, &period, &scopes).await?;
        if budgets.caps.is_empty() {
            continue;
        }
        // Thresholds stay passed for the rest of the period: skip what already alerted
        // instead of offering every batch's thousands of conflicts to the database.
        let raised: HashSet<String> = store::alerts::budget_keys_for_period(tx, tenant, &period)
            .await?
            .into_iter()
            .collect();
        for (cap, check) in budgets.checks() {
            let employee = match cap.scope {
                CapScope::Employee(e) => Some(e),
                _ => None,
            };
            for threshold in &check.thresholds_reached {
                if raised.contains(&budget_alert_key(cap.scope, &period, *threshold)) {
                    continue;
                }
                let whose = names.whose(tx, tenant, cap.scope).await?;
                let alert = budget_alert(ctx, cap, &check, &period, *threshold, &whose)
                    .for_employee(employee);
                found.alert(alert);
            }
            let action = line_action_for(cap.action);
            if let (true, Some(kind), true) = (check.cap_reached, action, period == current) {
                let key = budget_alert_key(cap.scope, &period, 100);
                for (line_id, line) in &ctx.lines {
                    if line.state == LineState::Active && owner_of(line).is_in(cap.scope) {
                        found.act(*line_id, &period, kind, &key);
                    }
                }
            }
        }
    }
    Ok(())
}

/// What people call a cap's scope: "Organisation", "Team Platform", "Cost centre CC-100",
/// "Ada Tester". Teams and cost centres are read once, on first use.
#[derive(Default)]
pub(crate) struct ScopeNames {
    teams: Option<HashMap<TeamId, String>>,
    cost_centres: Option<HashMap<CostCentreId, String>>,
}

impl ScopeNames {
    pub(crate) async fn name(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        scope: CapScope,
    ) -> CoreResult<String> {
        let name = match scope {
            CapScope::Tenant => return Ok("Organisation".to_owned()),
            CapScope::Team(id) => {
                if self.teams.is_none() {
                    let teams = store::org::list_teams(tx, tenant).await?;
                    self.teams = Some(teams.into_iter().map(|t| (t.id, t.name)).collect());
                }
                self.teams
                    .as_ref()
                    .and_then(|t| t.get(&id))
                    .map(|n| format!("Team {n}"))
            }
            CapScope::CostCentre(id) => {
                if self.cost_centres.is_none() {
                    let centres = store::org::list_cost_centres(tx, tenant).await?;
                    self.cost_centres = Some(centres.into_iter().map(|c| (c.id, c.code)).collect());
                }
                self.cost_centres
                    .as_ref()
                    .and_then(|c| c.get(&id))
                    .map(|code| format!("Cost centre {code}"))
            }
            CapScope::Employee(id) => store::employees::get(tx, tenant, id)
                .await?
                .map(|e| e.full_name()),
        };
        Ok(name.unwrap_or_else(|| scope_label(scope)))
    }

    /// Whose budget it is: "The organisation's", "Team Platform's", "Ada Tester's".
    async fn whose(
        &mut self,
        tx: &mut Tx,
        tenant: TenantId,
        scope: CapScope,
    ) -> CoreResult<String> {
        Ok(match scope {
            CapScope::Tenant => "The organisation's".to_owned(),
            _ => format!("{}'s", self.name(tx, tenant, scope).await?),
        })
    }
}

fn budget_alert(
    ctx: &UsageContext,
    cap: &BudgetCap,
    check: &CapCheck,
    period: &str,
    threshold: u8,
    whose: &str,
) -> Alert {
    let money = |m: i64| ctx.tenant.money(m).to_string();
    let scope = scope_label(cap.scope);
    let (kind, message) = if threshold >= 100 {
        let outcome = match cap.action {
            CapAction::Suspend => "its active lines are being suspended until the period ends",
            CapAction::Throttle => "its active lines are being slowed until the period ends",
            CapAction::Alert => "no action is taken",
        };
        (
            AlertKind::BudgetCapReached,
            format!(
                "{whose} budget reached its cap: {} of {} in {period}; {outcome}.",
                money(check.spent_minor),
                money(check.limit_minor)
            ),
        )
    } else {
        (
            AlertKind::BudgetThreshold,
            format!(
                "{whose} budget passed {threshold}%: {} of {} in {period}.",
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
    found: &mut Findings,
) -> CoreResult<()> {
    match roaming_violations(tx, tenant, ctx, rows, current, found).await? {
        Some((allowed_new, first_day)) => {
            check_new_countries(tx, tenant, ctx, allowed_new, first_day, found).await
        }
        None => Ok(()),
    }
}

/// Roaming records within policy, per (line, country), with the period they count in.
type AllowedRoaming = BTreeMap<(LineId, String), (i64, String)>;

/// Alerts (and, by the tenant's setting, actions) for roaming outside the presets with no
/// grant; returns the roaming that was allowed, and the first day seen, for the new-country
/// check. `None` when the rows hold no roaming.
async fn roaming_violations(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    rows: &[UsageRow],
    current: &str,
    found: &mut Findings,
) -> CoreResult<Option<(AllowedRoaming, time::Date)>> {
    let roaming: Vec<&UsageRow> = rows
        .iter()
        .filter(|r| r.roaming && r.country.is_some())
        .collect();
    let Some(first_day) = roaming.iter().map(|r| utc_day(r.started_at)).min() else {
        return Ok(None);
    };
    let rules: HashMap<String, RoamingRule> = store::policy::list_roaming_rules(tx, tenant)
        .await?
        .into_iter()
        .collect();
    let grants = store::policy::grants_covering_since(tx, tenant, first_day).await?;
    let action = line_action_for(ctx.tenant.settings.roaming_violation_action);
    // Per (line, country): how many records this batch added, for the new-country check.
    let mut allowed_new: AllowedRoaming = BTreeMap::new();
    for row in roaming {
        let (Some(country), Some(line)) = (row.country.as_deref(), ctx.lines.get(&row.line_id))
        else {
            continue;
        };
        let country = country.to_ascii_uppercase();
        let day = utc_day(row.started_at);
        let period = billing_period(day);
        let granted = grant_covers(&grants, row.line_id, &country, day);
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
                let key = format!("roaming:{}:{country}:{period}", row.line_id);
                if let (Some(kind), true, LineState::Active) =
                    (action, period == current, line.state)
                {
                    found.act(row.line_id, &period, kind, &key);
                }
                found.alert(
                    Alert::raise(
                        tenant,
                        AlertKind::RoamingViolation,
                        &period,
                        key,
                        format!("line:{}", row.line_id),
                        format!(
                            "A line roamed in {country} on {day}, which {why}, with no roaming \
                             grant for that day."
                        ),
                        json!({ "country": country, "day": day.to_string(), "rule": rule }),
                    )
                    .on_line(row.line_id, line.employee_id),
                );
            }
        }
    }
    Ok(Some((allowed_new, first_day)))
}

/// Roaming that policy allows, but in a country the line has not roamed in for
/// `KNOWN_COUNTRY_DAYS`: worth a look, not an action.
async fn check_new_countries(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    added: AllowedRoaming,
    first_day: time::Date,
    found: &mut Findings,
) -> CoreResult<()> {
    if added.is_empty() {
        return Ok(());
    }
    let lines = distinct_lines(added.keys().map(|(l, _)| *l));
    let since = first_day.midnight().assume_utc() - Duration::days(KNOWN_COUNTRY_DAYS);
    let counts: HashMap<(LineId, String), i64> =
        store::usage::roaming_record_counts(tx, tenant, &lines, since)
            .await?
            .into_iter()
            .map(|(line, country, n)| ((line, country.to_ascii_uppercase()), n))
            .collect();
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
        found.alert(
            Alert::raise(
                tenant,
                AlertKind::NewRoamingCountry,
                &period,
                format!("new_country:{line_id}:{country}:{period}"),
                format!("line:{line_id}"),
                format!("A line started roaming in {country}, a country it has not used before."),
                json!({ "country": country }),
            )
            .on_line(line_id, line.employee_id),
        );
    }
    Ok(())
}

/// Days whose new total is over the spike floor (the only days ingest reports back) are
/// compared with the line's trailing days; no other day can be a spike, so most batches read
/// no history at all.
async fn check_spikes(
    tx: &mut Tx,
    tenant: TenantId,
    ctx: &UsageContext,
    days: &[DayTotal],
    found: &mut Findings,
) -> CoreResult<()> {
    let candidates: Vec<&DayTotal> = days
        .iter()
        .filter(|d| d.data_bytes > SPIKE_FLOOR_BYTES)
        .collect();
    let Some(first_day) = candidates.iter().map(|d| d.day).min() else {
        return Ok(());
    };
    let lines = distinct_lines(candidates.iter().map(|d| d.line_id));
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
    for candidate in candidates {
        let (line_id, day, today) = (candidate.line_id, candidate.day, candidate.data_bytes);
        let trailing: Vec<i64> = by_line
            .get(&line_id)
            .map(|days| {
                days.range(day - Duration::days(BASELINE_DAYS)..day)
                    .map(|(_, bytes)| *bytes)
                    .collect()
            })
            .unwrap_or_default();
        if is_usage_spike(&trailing, today) != Some(true) {
            continue;
        }
        let Some(line) = ctx.lines.get(&line_id) else {
            continue;
        };
        let period = billing_period(day);
        found.alert(
            Alert::raise(
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
            .on_line(line_id, line.employee_id),
        );
    }
    Ok(())
}

fn distinct_lines(lines: impl Iterator<Item = LineId>) -> Vec<LineId> {
    lines.collect::<BTreeSet<_>>().into_iter().collect()
}
