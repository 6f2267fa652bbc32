//! Offboarding commands: what offboarding an employee would do, and doing it.

use serde_json::json;

use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::identity::user::Role;
use crate::ids::{EmployeeId, LineId, TenantId};
use crate::lines::line::Line;
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::tenant::OffboardingAction;
use crate::store::operations::OperationState;
use crate::store::{self, now};

impl Lineup {
    /// What offboarding `employee` would do, for the confirmation page.
    pub async fn offboarding_plan(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<OffboardingPlan> {
        let action = self.tenant(tenant).await?.settings.offboarding_action;
        let mut tx = self.tenant_read_tx(tenant).await?;
        let employee = required(
            store::employees::get(&mut tx, tenant, employee).await?,
            "employee",
            employee,
        )?;
        let lines = store::lines::list_for_employee(&mut tx, tenant, employee.id)
            .await?
            .into_iter()
            .map(|line| {
                let step = Step::for_line(action, line.state);
                (line, step)
            })
            .collect();
        let direct_reports =
            store::employees::direct_report_count(&mut tx, tenant, employee.id).await? as usize;
        Ok(OffboardingPlan {
            employee,
            action,
            lines,
            direct_reports,
        })
    }

    /// Mark the employee offboarded — in the same step taking away their authority: requests
    /// waiting on them move up the chain, and their portal memberships, sessions and chat
    /// links go — then suspend or terminate each live line. Idempotent: running it again
    /// changes nothing that is already done and retries what failed. The last owner cannot
    /// be offboarded.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, employee = %employee))]
    pub async fn offboard_employee(
        &self,
        tenant: TenantId,
        actor: &Actor,
        employee: EmployeeId,
    ) -> CoreResult<OffboardingReport> {
        let plan = self.offboarding_plan(tenant, employee).await?;
        let newly_offboarded = plan.employee.status == EmployeeStatus::Active;
        let employee = if newly_offboarded {
            self.mark_offboarded(tenant, actor, &plan.employee).await?
        } else {
            plan.employee
        };
        let mut lines = Vec::with_capacity(plan.lines.len());
        for (line, step) in plan.lines {
            let outcome = match step {
                Step::Nothing => LineOutcome::Unchanged,
                Step::Skip(why) => LineOutcome::Skipped(why),
                Step::Suspend | Step::Terminate => {
                    self.offboard_line(tenant, actor, &employee, &line, plan.action)
                        .await
                }
            };
            let line = self.line(tenant, line.id).await.unwrap_or(line);
            lines.push((line, outcome));
        }
        let grace_cases = if plan.action == OffboardingAction::Grace {
            let current: Vec<Line> = lines.iter().map(|(line, _)| line.clone()).collect();
            self.open_grace_cases(tenant, actor, &employee, &current)
                .await?
        } else {
            Vec::new()
        };
        let acted = lines.iter().any(|(_, o)| {
            matches!(
                o,
                LineOutcome::Done(_) | LineOutcome::Failed(_) | LineOutcome::InProgress(_)
            )
        });
        if acted {
            let outcomes: Vec<_> = lines
                .iter()
                .map(|(line, outcome)| json!({ "line_id": line.id, "outcome": outcome }))
                .collect();
            let mut tx = self.tenant_tx(tenant).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "employee.offboarding_lines",
                ("employee", employee.id.to_string()),
                None,
                Some(json!({ "action": plan.action, "lines": outcomes })),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
        }
        Ok(OffboardingReport {
            employee,
            action: plan.action,
            newly_offboarded,
            lines,
            grace_cases,
        })
    }

    async fn mark_offboarded(
        &self,
        tenant: TenantId,
        actor: &Actor,
        before: &Employee,
    ) -> CoreResult<Employee> {
        let mut tx = self.tenant_tx(tenant).await?;
        let current = required(
            store::employees::get(&mut tx, tenant, before.id).await?,
            "employee",
            before.id,
        )?;
        if current.status == EmployeeStatus::Offboarded {
            // A concurrent offboarding got here first.
            return Ok(current);
        }
        let memberships = store::users::memberships_of_person(
            &mut tx,
            tenant,
            current.id,
            current.email.as_str(),
        )
        .await?;
        let owners_leaving = memberships
            .iter()
            .filter(|m| m.role == Role::Owner.as_str())
            .count() as i64;
        if owners_leaving > 0
            && store::users::count_with_role(&mut tx, tenant, Role::Owner.as_str()).await?
                <= owners_leaving
        {
            return Err(CoreError::Conflict(format!(
                "{} is the last owner of this organisation; make someone else an owner before \
                 offboarding them",
                current.full_name()
            )));
        }
        let after = Employee {
            status: EmployeeStatus::Offboarded,
            updated_at: now(),
            ..current.clone()
        };
        store::employees::update(&mut tx, tenant, &after).await?;
        let event = AuditEvent::new(
            tenant,
            actor,
            "employee.offboarded",
            ("employee", after.id.to_string()),
            to_json(&current),
            to_json(&after),
        );
        record(&mut tx, &event).await?;
        self.reroute_requests_of_leaver(&mut tx, tenant, actor, after.id)
            .await?;
        for member in memberships {
            let sessions =
                store::sessions::delete_for_user(&mut tx, tenant, member.user_id).await?;
            store::users::remove_membership(&mut tx, tenant, member.user_id).await?;
            let event = AuditEvent::new(
                tenant,
                actor,
                "membership.removed",
                ("user", member.user_id.to_string()),
                Some(json!({ "email": member.email, "role": member.role })),
                Some(json!({ "sessions_ended": sessions, "because": "offboarded" })),
            );
            record(&mut tx, &event).await?;
        }
        for (platform, external_id) in
            store::chat::unlink_employee(&mut tx, tenant, after.id).await?
        {
            let event = AuditEvent::new(
                tenant,
                actor,
                "employee.chat_unlinked",
                ("employee", after.id.to_string()),
                Some(json!({ "platform": platform, "external_id": external_id })),
                None,
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    async fn offboard_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        employee: &Employee,
        line: &Line,
        action: OffboardingAction,
    ) -> LineOutcome {
        let key = match self
            .offboarding_key(tenant, employee.id, line.id, action)
            .await
        {
            Ok(key) => key,
            Err(e) => return LineOutcome::Failed(e.to_string()),
        };
        let result = match action {
            OffboardingAction::Suspend | OffboardingAction::Grace => {
                self.suspend_line(tenant, actor, line.id, Some(key)).await
            }
            OffboardingAction::Terminate => {
                self.terminate_line(tenant, actor, line.id, Some(key)).await
            }
        };
        match result {
            Ok(line) => LineOutcome::Done(line.state),
            Err(e @ (CoreError::ProviderTimeout(_) | CoreError::Conflict(_))) => {
                LineOutcome::InProgress(e.to_string())
            }
            Err(e) => LineOutcome::Failed(e.to_string()),
        }
    }

    /// The command key for this line's offboarding call: the first attempt's, or the next
    /// one after each attempt that failed. A pending or finished attempt keeps its key, so
    /// replaying it never acts twice.
    async fn offboarding_key(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
        line: LineId,
        action: OffboardingAction,
    ) -> CoreResult<String> {
        let action = match action {
            OffboardingAction::Suspend | OffboardingAction::Grace => "suspend",
            OffboardingAction::Terminate => "terminate",
        };
        let mut tx = self.tenant_read_tx(tenant).await?;
        for attempt in 1.. {
            let key = format!("offboard:{employee}:{line}:{action}:{attempt}");
            match store::operations::find_by_command_key(&mut tx, tenant, &key).await? {
                Some(op) if op.state == OperationState::Failed => continue,
                _ => return Ok(key),
            }
        }
        unreachable!("attempts are unbounded")
    }
}
