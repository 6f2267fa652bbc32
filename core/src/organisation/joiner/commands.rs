//! Joiner commands: the policies (add, remove, list), enrolling a new employee (in the
//! transaction that creates them), and the two worker steps: order the lines that are due,
//! then send the eSIMs whose morning has come and tell the managers.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::lines::line::LineState;
use crate::lines::line::activation::Revealer;
use crate::lines::line::commands::IssueLine;
use crate::lines::request::cards;
use crate::messaging::chat_message::Message;
use crate::messaging::employee_notice::{self, EmployeeNotice, NoticeError, NoticeSender};
use crate::organisation::employee::EmployeeStatus;
use crate::store::{self, Tx, now};

impl Lineup {
    pub async fn joiner_policies(&self, tenant: TenantId) -> CoreResult<Vec<JoinerPolicy>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::joiners::list_policies(&mut tx, tenant).await?)
    }

    /// A new policy: joiners matching `rule` get a line on `plan`. One policy per rule.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn add_joiner_policy(
        &self,
        tenant: TenantId,
        actor: &Actor,
        rule: JoinerRule,
        plan: PlanId,
    ) -> CoreResult<JoinerPolicy> {
        let mut tx = self.tenant_tx(tenant).await?;
        let plan = required(
            store::plans::get(&mut tx, tenant, plan).await?,
            "plan",
            plan,
        )?;
        if !plan.active {
            return Err(CoreError::invalid(
                "plan",
                format!("plan {} is no longer offered", plan.name),
            ));
        }
        match rule {
            JoinerRule::Team(team) if !store::org::team_exists(&mut tx, tenant, team).await? => {
                return Err(CoreError::invalid(
                    "team",
                    format!("team {team} was not found in this organisation"),
                ));
            }
            JoinerRule::CostCentre(centre)
                if !store::org::cost_centre_exists(&mut tx, tenant, centre).await? =>
            {
                return Err(CoreError::invalid(
                    "cost_centre",
                    format!("cost centre {centre} was not found in this organisation"),
                ));
            }
            _ => {}
        }
        let policy = JoinerPolicy {
            id: JoinerPolicyId::new(),
            tenant_id: tenant,
            rule,
            plan_id: plan.id,
            created_at: now(),
        };
        match store::joiners::insert_policy(&mut tx, tenant, &policy).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::invalid(
                    "rule",
                    "a joiner policy for the same people exists; remove it first",
                ));
            }
            other => other?,
        }
        let event = AuditEvent::new(
            tenant,
            actor,
            "joiner_policy.created",
            ("joiner_policy", policy.id.to_string()),
            None,
            to_json(&policy),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(policy)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, policy = %id))]
    pub async fn remove_joiner_policy(
        &self,
        tenant: TenantId,
        actor: &Actor,
        id: JoinerPolicyId,
    ) -> CoreResult<JoinerPolicy> {
        let mut tx = self.tenant_tx(tenant).await?;
        let policies = store::joiners::list_policies(&mut tx, tenant).await?;
        let policy = required(
            policies.into_iter().find(|p| p.id == id),
            "joiner policy",
            id,
        )?;
        store::joiners::delete_policy(&mut tx, tenant, id).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "joiner_policy.deleted",
            ("joiner_policy", id.to_string()),
            to_json(&policy),
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(policy)
    }

    /// Every joiner of the tenant, newest first.
    pub async fn joiners(&self, tenant: TenantId) -> CoreResult<Vec<Joiner>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::joiners::list(&mut tx, tenant).await?)
    }

    pub async fn joiner(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<Option<Joiner>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::joiners::get(&mut tx, tenant, employee).await?)
    }

    /// The worker step that orders joiners' lines: those without a start date at once, the
    /// others from 08:00 the day before it. The policy is the one matching the joiner's team
    /// and cost centre now (an identity provider may send them after the user). A failed
    /// order is kept on the joiner and tried again on the next tick; the issue key makes
    /// sure it never orders a second line. Returns how many lines were ordered.
    pub async fn order_joiner_lines(&self, now: OffsetDateTime) -> CoreResult<usize> {
        let mut ordered = 0;
        for tenant in self.tenants_with_joiners(JoinerState::Waiting).await? {
            let mut tx = self.tenant_read_tx(tenant).await?;
            let waiting =
                store::joiners::list_in_state(&mut tx, tenant, JoinerState::Waiting).await?;
            let policies = store::joiners::list_policies(&mut tx, tenant).await?;
            drop(tx);
            for joiner in waiting {
                if joiner.order_due().is_some_and(|due| now < due) {
                    continue;
                }
                if self
                    .order_joiner_line(tenant, joiner, &policies, now)
                    .await?
                {
                    ordered += 1;
                }
            }
        }
        Ok(ordered)
    }

    async fn order_joiner_line(
        &self,
        tenant: TenantId,
        before: Joiner,
        policies: &[JoinerPolicy],
        now: OffsetDateTime,
    ) -> CoreResult<bool> {
        let employee = self.employee(tenant, before.employee_id).await?;
        let policy = matching_policy(policies, employee.team_id, employee.cost_centre_id);
        let (Some(policy), EmployeeStatus::Active) = (policy, employee.status) else {
            let after = Joiner {
                state: JoinerState::Skipped,
                ..before.clone()
            };
            self.save_joiner(tenant, &before, &after, "joiner.skipped")
                .await?;
            return Ok(false);
        };
        let issued = self
            .issue_line(
                tenant,
                &Actor::System,
                IssueLine {
                    employee_id: employee.id,
                    plan_id: policy.plan_id,
                    issue_key: issue_key(employee.id, policy.id),
                },
            )
            .await;
        let after = match issued {
            Ok(line) => Joiner {
                state: JoinerState::Ordered,
                policy_id: Some(policy.id),
                line_id: Some(line.id),
                ordered_at: Some(now),
                last_error: line.failure_reason.clone(),
                ..before.clone()
            },
            Err(e) => {
                tracing::warn!(%tenant, employee = %employee.id, error = %e, "ordering a joiner's line failed");
                let after = Joiner {
                    policy_id: Some(policy.id),
                    last_error: Some(e.to_string()),
                    ..before.clone()
                };
                self.save_joiner(tenant, &before, &after, "joiner.order_failed")
                    .await?;
                return Ok(false);
            }
        };
        self.save_joiner(tenant, &before, &after, "joiner.line_ordered")
            .await?;
        Ok(true)
    }

    /// The worker step that sends joiners their eSIM by direct message once their start
    /// date's morning has come (at once without a start date), then tells their manager. A
    /// message that cannot go out yet is tried again on the next tick. Returns how many
    /// were sent.
    pub async fn deliver_joiner_lines(
        &self,
        sender: &dyn NoticeSender,
        now: OffsetDateTime,
    ) -> CoreResult<usize> {
        let mut delivered = 0;
        for tenant in self.tenants_with_joiners(JoinerState::Ordered).await? {
            let mut tx = self.tenant_read_tx(tenant).await?;
            let ordered =
                store::joiners::list_in_state(&mut tx, tenant, JoinerState::Ordered).await?;
            drop(tx);
            for joiner in ordered {
                if joiner.delivery_due().is_some_and(|due| now < due) {
                    continue;
                }
                if self
                    .deliver_joiner_line(tenant, sender, joiner, now)
                    .await?
                {
                    delivered += 1;
                }
            }
        }
        Ok(delivered)
    }

    async fn deliver_joiner_line(
        &self,
        tenant: TenantId,
        sender: &dyn NoticeSender,
        before: Joiner,
        now: OffsetDateTime,
    ) -> CoreResult<bool> {
        let line_id = before.line_id.ok_or_else(|| {
            CoreError::invalid(
                "joiner",
                format!("{} was ordered without a line", before.employee_id),
            )
        })?;
        let line = self.line(tenant, line_id).await?;
        let failed = |reason: String| Joiner {
            last_error: Some(reason),
            ..before.clone()
        };
        if !matches!(line.state, LineState::Ready | LineState::Active) {
            let reason = match line.state {
                LineState::Failed => format!(
                    "the line failed at the provider: {}",
                    line.failure_reason.clone().unwrap_or_default()
                ),
                state => format!("the line is {state:?}, not ready yet"),
            };
            if before.last_error.as_deref() != Some(reason.as_str()) {
                self.save_joiner(tenant, &before, &failed(reason), "joiner.delivery_failed")
                    .await?;
            }
            return Ok(false);
        }
        let plan = self
            .plans(tenant)
            .await?
            .into_iter()
            .find(|p| p.id == line.plan_id);
        let plan = required(plan, "plan", line.plan_id)?;
        let code = self
            .reveal_activation_code(tenant, Revealer::Holder(before.employee_id), line.id)
            .await?;
        let mut message = cards::delivery_message(&line, &plan, &code).map_err(|e| {
            CoreError::invalid(
                "activation code",
                format!("the QR code cannot be drawn: {e}"),
            )
        })?;
        message.title = Some("Welcome! Your work eSIM is ready".into());
        // Sent directly rather than through the notice outbox: the activation code is never
        // stored in the clear.
        let notice = EmployeeNotice {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            employee_id: before.employee_id,
            message,
            attempts: 0,
        };
        match sender.send_notice(&notice).await {
            Ok(()) => {}
            Err(
                NoticeError::Unreachable(reason)
                | NoticeError::Temporary(reason)
                | NoticeError::RetryAfter { reason, .. }
                | NoticeError::Permanent(reason),
            ) => {
                if before.last_error.as_deref() != Some(reason.as_str()) {
                    self.save_joiner(tenant, &before, &failed(reason), "joiner.delivery_failed")
                        .await?;
                }
                return Ok(false);
            }
        }
        let after = Joiner {
            state: JoinerState::Delivered,
            delivered_at: Some(now),
            last_error: None,
            ..before.clone()
        };
        let employee = self.employee(tenant, before.employee_id).await?;
        let mut tx = self.tenant_tx(tenant).await?;
        write_joiner(&mut tx, tenant, &before, &after, "joiner.line_delivered").await?;
        if let Some(manager) = employee.manager_id {
            let starts = match before.start_date {
                Some(day) => format!("starts today ({day})"),
                None => "has joined".to_owned(),
            };
            let told = Message::text(format!(
                "{} {starts}: their work eSIM on the *{}* plan was sent to them in chat.",
                employee.full_name(),
                plan.name
            ));
            employee_notice::queue(
                &mut tx,
                tenant,
                manager,
                &format!("joiner:{}:manager", employee.id),
                &told,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Tenants with a joiner in `state`.
    async fn tenants_with_joiners(&self, state: JoinerState) -> CoreResult<Vec<TenantId>> {
        let mut tx = self.store().system().await?;
        Ok(store::joiners::tenants_in_state(&mut tx, state).await?)
    }

    async fn save_joiner(
        &self,
        tenant: TenantId,
        before: &Joiner,
        after: &Joiner,
        action: &str,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        write_joiner(&mut tx, tenant, before, after, action).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn write_joiner(
    tx: &mut Tx,
    tenant: TenantId,
    before: &Joiner,
    after: &Joiner,
    action: &str,
) -> CoreResult<()> {
    store::joiners::update(tx, tenant, after).await?;
    let event = AuditEvent::new(
        tenant,
        &Actor::System,
        action,
        ("employee", after.employee_id.to_string()),
        to_json(before),
        to_json(after),
    );
    record(tx, &event).await
}

/// A new employee joins: while the tenant has a joiner policy they are recorded as a joiner
/// (in the transaction that creates them), to get their line on `start_date` (at once
/// without one). Recording them again changes nothing.
pub(crate) async fn enrol(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    employee: EmployeeId,
    start_date: Option<Date>,
) -> CoreResult<()> {
    if !store::joiners::any_policy(tx, tenant).await? {
        return Ok(());
    }
    let joiner = Joiner {
        tenant_id: tenant,
        employee_id: employee,
        start_date,
        state: JoinerState::Waiting,
        policy_id: None,
        line_id: None,
        ordered_at: None,
        delivered_at: None,
        last_error: None,
        created_at: now(),
    };
    if store::joiners::insert_if_new(tx, tenant, &joiner).await? {
        let event = AuditEvent::new(
            tenant,
            actor,
            "joiner.enrolled",
            ("employee", employee.to_string()),
            None,
            to_json(&joiner),
        );
        record(tx, &event).await?;
    }
    Ok(())
}

/// A joiner's start date changed (a later provisioning push): it counts while their line is
/// not ordered yet. Nothing happens for someone who is not a waiting joiner.
pub(crate) async fn move_start_date(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    employee: EmployeeId,
    start_date: Option<Date>,
) -> CoreResult<()> {
    let Some(before) = store::joiners::get(tx, tenant, employee).await? else {
        return Ok(());
    };
    if before.state != JoinerState::Waiting || before.start_date == start_date {
        return Ok(());
    }
    let after = Joiner {
        start_date,
        ..before.clone()
    };
    store::joiners::update(tx, tenant, &after).await?;
    let event = AuditEvent::new(
        tenant,
        actor,
        "joiner.start_date_changed",
        ("employee", employee.to_string()),
        to_json(&before),
        to_json(&after),
    );
    record(tx, &event).await
}
