//! Line commands: issue, suspend, resume, terminate, change plan, transfer, retry; and the
//! queries that read lines for people: the filtered, paged directory, one line's history,
//! and finding a line by the key it was issued with.
//!
//! Every provider write first persists a `provider_operations` row holding the idempotency
//! key, in the same transaction that validates the command; the call is made after commit
//! and every retry (including after a restart) reuses that key. So a retried command, a
//! double click or a crash never creates a second provider order.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::activation::SealedActivationCode;
use super::{Line, LineEvent, LineSearch, LineState};
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, LineId, OperationId, PlanId, TenantId};
use crate::organisation::employee::{EmployeeStatus, Visibility};
use crate::provider::{
    ConnectivityProvider, Delivery, Effective, IdempotencyKey, Operation, OperationStatus,
    PollPolicy, ProfileState, ProviderError, ProvisionRequest, Subscriber, WaitError,
};
use crate::store::operations::{OperationKind, OperationState, ProviderOperation};
use crate::store::{self, Tx, lines::ListedLine, now};

#[derive(Debug, Clone)]
pub struct IssueLine {
    pub employee_id: EmployeeId,
    pub plan_id: PlanId,
    /// The caller's key for this request (a request id, a form token): issuing twice with
    /// the same key gives the same line.
    pub issue_key: String,
}

/// Set in an operation's payload when the provider definitively refused or canceled it, so a
/// retry must place a new order rather than replay the old key.
pub(super) const DEFINITIVE: &str = "definitive_failure";

impl Lineup {
    #[tracing::instrument(skip_all, fields(tenant = %tenant, employee = %cmd.employee_id, plan = %cmd.plan_id))]
    pub async fn issue_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        cmd: IssueLine,
    ) -> CoreResult<Line> {
        if cmd.issue_key.trim().is_empty() {
            return Err(CoreError::invalid("issue_key", "must not be empty"));
        }
        // The activation code is sealed when it arrives, and a line needs a provider account:
        // refuse before anything is written.
        self.secrets()?;
        let provider = self.provider_for(tenant).await?;
        let mut tx = self.tenant_tx(tenant).await?;
        if let Some(existing) =
            store::lines::find_by_issue_key(&mut tx, tenant, &cmd.issue_key).await?
        {
            drop(tx);
            return self.await_settled(tenant, existing).await;
        }
        let employee = required(
            store::employees::get(&mut tx, tenant, cmd.employee_id).await?,
            "employee",
            cmd.employee_id,
        )?;
        if employee.status != EmployeeStatus::Active {
            return Err(CoreError::invalid(
                "employee_id",
                format!("{} is offboarded", employee.email),
            ));
        }
        let plan = required(
            store::plans::get(&mut tx, tenant, cmd.plan_id).await?,
            "plan",
            cmd.plan_id,
        )?;
        if !plan.active {
            return Err(CoreError::invalid(
                "plan_id",
                format!("plan {} is no longer offered", plan.name),
            ));
        }
        let routed = self
            .route_new_order(&mut tx, tenant, &plan, employee.team_id, &[])
            .await?;
        let (connection, plan) = match routed {
            Some(choice) => choice,
            None => (plan.provider_connection_id, plan),
        };
        let provider = match connection {
            Some(id) => self
                .provider_of_connection_in(&mut tx, tenant, id)
                .await?
                .unwrap_or(provider),
            None => provider,
        };
        let at = now();
        let line = Line {
            id: LineId::new(),
            tenant_id: tenant,
            employee_id: employee.id,
            plan_id: plan.id,
            state: LineState::Requested,
            provider: provider.name().to_owned(),
            provider_connection_id: connection,
            provider_subscription_id: None,
            iccid: None,
            activation_code: None,
            failure_reason: None,
            issue_key: cmd.issue_key.clone(),
            created_at: at,
            updated_at: at,
        };
        if !store::lines::insert_if_new(&mut tx, tenant, &line).await? {
            drop(tx);
            let existing = self.line_by_issue_key(tenant, &cmd.issue_key).await?;
            return self.await_settled(tenant, existing).await;
        }
        let op = new_operation(tenant, line.id, OperationKind::Provision, None, json!({}));
        store::operations::insert(&mut tx, tenant, &op).await?;
        record(
            &mut tx,
            &AuditEvent::new(
                tenant,
                actor,
                "line.requested",
                subject(&line),
                None,
                to_json(&line),
            ),
        )
        .await?;
        tx.commit().await?;
        self.drive_provisioning(tenant, actor, line, op, self.poll_policy())
            .await
    }

    /// Issue again after a provider failure. Replays the failed order's key when its outcome
    /// was unknown (the order may exist), so a retry can never make a second subscription.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id))]
    pub async fn retry_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
    ) -> CoreResult<Line> {
        self.retry_line_once(tenant, actor, line_id, None).await
    }

    /// [`Self::retry_line`] under the caller's command key: the same key again (a double
    /// submit) reports the first retry's line instead of refusing a second one.
    pub async fn retry_line_once(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        command_key: Option<String>,
    ) -> CoreResult<Line> {
        let mut tx = self.tenant_tx(tenant).await?;
        if let Some(key) = &command_key
            && let Some(op) = store::operations::find_by_command_key(&mut tx, tenant, key).await?
        {
            let line = self.load_line(&mut tx, tenant, op.line_id).await?;
            drop(tx);
            return self.await_settled(tenant, line).await;
        }
        let line = self.load_line(&mut tx, tenant, line_id).await?;
        LineState::on(line.state, LineEvent::Retry)?;
        let previous = store::operations::list_for_line(&mut tx, tenant, line.id).await?;
        let last = previous
            .iter()
            .rev()
            .find(|op| op.kind == OperationKind::Provision);
        let mut op = new_operation(
            tenant,
            line.id,
            OperationKind::Provision,
            command_key,
            json!({}),
        );
        if let Some(last) = last.filter(|op| op.payload.get(DEFINITIVE).is_none()) {
            op.payload = json!({ "replays": replayed_key(last) });
        }
        let retried = self
            .transition(&mut tx, actor, &line, LineEvent::Retry, |l| {
                l.failure_reason = None;
            })
            .await?;
        store::operations::insert(&mut tx, tenant, &op).await?;
        tx.commit().await?;
        self.drive_provisioning(tenant, actor, retried, op, self.poll_policy())
            .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id))]

    pub async fn suspend_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        command_key: Option<String>,
    ) -> CoreResult<Line> {
        self.run_operation(
            tenant,
            actor,
            line_id,
            OperationKind::Suspend,
            command_key,
            json!({}),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id))]

    pub async fn resume_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        command_key: Option<String>,
    ) -> CoreResult<Line> {
        self.run_operation(
            tenant,
            actor,
            line_id,
            OperationKind::Resume,
            command_key,
            json!({}),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id))]

    pub async fn terminate_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        command_key: Option<String>,
    ) -> CoreResult<Line> {
        self.run_operation(
            tenant,
            actor,
            line_id,
            OperationKind::Terminate,
            command_key,
            json!({}),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id, plan_id = %plan_id))]

    pub async fn change_plan(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        plan_id: PlanId,
        command_key: Option<String>,
    ) -> CoreResult<Line> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let plan = required(
            store::plans::get(&mut tx, tenant, plan_id).await?,
            "plan",
            plan_id,
        )?;
        if !plan.active {
            return Err(CoreError::invalid(
                "plan_id",
                format!("plan {} is no longer offered", plan.name),
            ));
        }
        drop(tx);
        self.run_operation(
            tenant,
            actor,
            line_id,
            OperationKind::ChangePlan,
            command_key,
            json!({ "plan_id": plan_id }),
        )
        .await
    }

    /// Reassign a line to another employee of the same tenant. No provider call: the
    /// subscription stays; only who it belongs to (and is charged to) changes.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, line_id = %line_id, to_employee = %to))]
    pub async fn transfer_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        to: EmployeeId,
    ) -> CoreResult<Line> {
        let mut tx = self.tenant_tx(tenant).await?;
        let line = self.load_line(&mut tx, tenant, line_id).await?;
        if line.employee_id == to {
            return Ok(line);
        }
        if !matches!(
            line.state,
            LineState::Ready | LineState::Active | LineState::Suspended
        ) {
            return Err(CoreError::invalid(
                "line_id",
                format!("a {} line cannot be transferred", line.state),
            ));
        }
        let target = required(
            store::employees::get(&mut tx, tenant, to).await?,
            "employee",
            to,
        )?;
        if target.status != EmployeeStatus::Active {
            return Err(CoreError::invalid(
                "employee_id",
                format!("{} is offboarded", target.email),
            ));
        }
        let moved = self
            .rewrite(&mut tx, actor, &line, "line.transferred", |l| {
                l.employee_id = to
            })
            .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Ask the provider whether a ready line's profile is now on a device, and activate it.
    pub async fn refresh_activation(&self, tenant: TenantId, line_id: LineId) -> CoreResult<Line> {
        let mut tx = self.tenant_tx(tenant).await?;
        let line = self.load_line(&mut tx, tenant, line_id).await?;
        drop(tx);
        let (LineState::Ready, Some(sub)) = (line.state, line.provider_subscription_id.as_deref())
        else {
            return Ok(line);
        };
        let profile = self
            .provider_of_connection(tenant, line.provider_connection_id)
            .await?
            .get_sim_profile(sub)
            .await?;
        if !matches!(
            profile.state,
            ProfileState::Installed | ProfileState::Enabled
        ) {
            return Ok(line);
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let active = self
            .transition(
                &mut tx,
                &Actor::Provider,
                &line,
                LineEvent::Activated,
                |_| {},
            )
            .await?;
        tx.commit().await?;
        Ok(active)
    }

    pub async fn line(&self, tenant: TenantId, line_id: LineId) -> CoreResult<Line> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        self.load_line(&mut tx, tenant, line_id).await
    }

    pub async fn lines(&self, tenant: TenantId) -> CoreResult<Vec<Line>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::lines::list(&mut tx, tenant).await?)
    }

    /// After a restart, and periodically: finish every provider write still in flight. An
    /// order already placed is asked about once (never placed again); one never placed is
    /// placed with its stored key. Orders still running stay pending for the next sweep.
    pub async fn resume_in_flight(&self) -> CoreResult<usize> {
        let check_once = PollPolicy {
            timeout: std::time::Duration::ZERO,
            ..self.poll_policy()
        };
        let mut tx = self.store().system_read().await?;
        let pending = store::operations::list_pending(&mut tx).await?;
        drop(tx);
        let count = pending.len();
        for op in pending {
            let tenant = op.tenant_id;
            match self.resume_operation(&Actor::System, op, check_once).await {
                Ok(_) => {}
                // Asked once and still running: the next sweep asks again.
                Err(CoreError::ProviderTimeout(_)) => {
                    tracing::debug!(%tenant, "a provider operation is still running");
                }
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "resuming an in-flight provider operation failed");
                }
            }
        }
        Ok(count)
    }

    /// Carry an in-flight operation forward: ask about its order (or place it with its key).
    pub(crate) async fn resume_operation(
        &self,
        actor: &Actor,
        op: ProviderOperation,
        poll: PollPolicy,
    ) -> CoreResult<Line> {
        let tenant = op.tenant_id;
        let line = self.line(tenant, op.line_id).await?;
        match op.kind {
            OperationKind::Provision => {
                self.drive_provisioning(tenant, actor, line, op, poll).await
            }
            _ => self.drive_operation(tenant, actor, line, op, poll).await,
        }
    }

    async fn run_operation(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line_id: LineId,
        kind: OperationKind,
        command_key: Option<String>,
        payload: serde_json::Value,
    ) -> CoreResult<Line> {
        let mut tx = self.tenant_tx(tenant).await?;
        // The line is read before the command key is looked up. Under PostgreSQL's read
        // committed, the other order let a retry racing the first attempt see the line already
        // terminated by it but not its operation (committed earlier, read earlier), and fail as
        // "a terminated line cannot be terminated" instead of reporting the first outcome.
        let line = self.load_line(&mut tx, tenant, line_id).await?;
        if let Some(key) = &command_key
            && let Some(op) = store::operations::find_by_command_key(&mut tx, tenant, key).await?
        {
            let line = self.load_line(&mut tx, tenant, op.line_id).await?;
            drop(tx);
            return self.replay(tenant, actor, line, op).await;
        }
        if let Some(event) = event_for(kind) {
            line.state.on(event)?;
        } else if !line.state.is_live() {
            return Err(CoreError::invalid(
                "line_id",
                format!("a {} line cannot change plan", line.state),
            ));
        }
        if line.provider_subscription_id.is_none() {
            return Err(CoreError::invalid(
                "line_id",
                "the line has no provider subscription yet",
            ));
        }
        let op = new_operation(tenant, line.id, kind, command_key, payload);
        match store::operations::insert(&mut tx, tenant, &op).await {
            Err(e) if e.is_unique_violation() => {
                return Err(CoreError::Conflict(format!(
                    "line {line_id} already has a provider operation in flight; wait for it to finish"
                )));
            }
            other => other?,
        }
        tx.commit().await?;
        self.drive_operation(tenant, actor, line, op, self.poll_policy())
            .await
    }

    /// The same command arrived again: report the outcome of the first, finishing it if needed.
    async fn replay(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line: Line,
        op: ProviderOperation,
    ) -> CoreResult<Line> {
        match op.state {
            OperationState::Pending => {
                self.drive_operation(tenant, actor, line, op, self.poll_policy())
                    .await
            }
            OperationState::Succeeded => Ok(line),
            OperationState::Failed => Err(CoreError::OperationFailed {
                operation: op.kind.as_str(),
                reason: op.error.unwrap_or_default(),
            }),
        }
    }

    async fn drive_operation(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line: Line,
        op: ProviderOperation,
        poll: PollPolicy,
    ) -> CoreResult<Line> {
        let sub = line.provider_subscription_id.clone().ok_or_else(|| {
            CoreError::invalid("line_id", "the line has no provider subscription yet")
        })?;
        let key = IdempotencyKey(op.idempotency_key.clone());
        // An existing line stays with its provider: when that one is down the call is
        // retried there, never moved.
        let provider = self
            .provider_of_connection(tenant, line.provider_connection_id)
            .await?;
        let placed = match (&op.provider_order_id, op.kind) {
            // Already placed (we are resuming): ask how it went instead of placing it again.
            (Some(order), _) => provider.poll_operation(order).await,
            (None, kind) => {
                self.place(provider.as_ref(), tenant, kind, &op, &sub, &key)
                    .await
            }
        };
        let settled = match self
            .place_and_wait(provider.as_ref(), tenant, &op, placed, poll)
            .await
        {
            Ok(settled) => settled,
            Err(failure) => {
                return Err(self
                    .fail_operation(tenant, actor, &line, &op, failure)
                    .await);
            }
        };
        debug_assert_eq!(settled.status, OperationStatus::Succeeded);
        let mut tx = self.tenant_tx(tenant).await?;
        // Settled first, as a compare-and-set: a retry that replayed this operation while it
        // was pending drives it too, and only the first to finish may change the line (the
        // other would fail as "a terminated line cannot be terminated"); it reports the line
        // as the first left it.
        let first =
            store::operations::settle(&mut tx, tenant, op.id, OperationState::Succeeded, None)
                .await?;
        let current = self.load_line(&mut tx, tenant, line.id).await?;
        if !first {
            return Ok(current);
        }
        let updated = match event_for(op.kind) {
            Some(event) => {
                self.transition(&mut tx, actor, &current, event, |_| {})
                    .await?
            }
            None => {
                let plan_id: PlanId = serde_json::from_value(op.payload["plan_id"].clone())
                    .map_err(|e| CoreError::invalid("plan_id", e))?;
                self.rewrite(&mut tx, actor, &current, "line.plan_changed", |l| {
                    l.plan_id = plan_id
                })
                .await?
            }
        };
        tx.commit().await?;
        Ok(updated)
    }

    /// Place a suspend, resume, terminate or plan change with the operation's key.
    async fn place(
        &self,
        provider: &dyn ConnectivityProvider,
        tenant: TenantId,
        kind: OperationKind,
        op: &ProviderOperation,
        sub: &str,
        key: &IdempotencyKey,
    ) -> Result<Operation, ProviderError> {
        match kind {
            OperationKind::Suspend => provider.suspend(sub, key).await,
            OperationKind::Resume => provider.resume(sub, key).await,
            OperationKind::Terminate => provider.terminate(sub, key).await,
            OperationKind::ChangePlan => {
                let plan = self.operation_plan(tenant, op).await.map_err(|e| {
                    ProviderError::InvalidRequest {
                        message: e.to_string(),
                    }
                })?;
                provider
                    .change_plan(sub, &plan.provider_ref(), Effective::Now, key)
                    .await
            }
            OperationKind::Provision => {
                unreachable!("provisioning is driven by drive_provisioning")
            }
        }
    }

    async fn operation_plan(
        &self,
        tenant: TenantId,
        op: &ProviderOperation,
    ) -> CoreResult<crate::lines::plan::Plan> {
        let plan_id: PlanId = serde_json::from_value(op.payload["plan_id"].clone())
            .map_err(|e| CoreError::invalid("plan_id", e))?;
        let mut tx = self.tenant_read_tx(tenant).await?;
        required(
            store::plans::get(&mut tx, tenant, plan_id).await?,
            "plan",
            plan_id,
        )
    }

    async fn drive_provisioning(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line: Line,
        op: ProviderOperation,
        poll: PollPolicy,
    ) -> CoreResult<Line> {
        // Checked before the provider is asked: an issued code must be storable.
        let secrets = self.secrets()?.clone();
        let mut tx = self.tenant_tx(tenant).await?;
        let employee = required(
            store::employees::get(&mut tx, tenant, line.employee_id).await?,
            "employee",
            line.employee_id,
        )?;
        let plan = required(
            store::plans::get(&mut tx, tenant, line.plan_id).await?,
            "plan",
            line.plan_id,
        )?;
        let mut line = self.load_line(&mut tx, tenant, line.id).await?;
        if line.state == LineState::Requested {
            line = self
                .transition(
                    &mut tx,
                    actor,
                    &line,
                    LineEvent::ProvisioningStarted,
                    |_| {},
                )
                .await?;
        }
        tx.commit().await?;
        if line.state != LineState::Provisioning {
            return Ok(line);
        }
        let provider = self
            .provider_of_connection(tenant, line.provider_connection_id)
            .await?;
        let request = ProvisionRequest {
            plan: plan.provider_ref(),
            subscriber: Subscriber {
                first_name: employee.given_name.clone(),
                last_name: employee.family_name.clone(),
                email: employee.email.to_string(),
                employee_id: Some(employee.id.to_string()),
                group: None,
            },
            delivery: Delivery::Api,
            reference: Some(line.id.to_string()),
        };
        let key = IdempotencyKey(replayed_key(&op));
        let placed = match &op.provider_order_id {
            // Already placed (we are resuming): ask how it went instead of placing it again.
            Some(order) => provider.poll_operation(order).await,
            None => provider.provision_line(&request, &key).await,
        };
        if let Err(error @ ProviderError::Transient { .. }) = &placed
            && op.provider_order_id.is_none()
            && let Some((moved, next_op)) = self
                .fail_over(tenant, actor, &line, &op, &employee, error)
                .await?
        {
            return Box::pin(self.drive_provisioning(tenant, actor, moved, next_op, poll)).await;
        }
        let settled = match self
            .place_and_wait(provider.as_ref(), tenant, &op, placed, poll)
            .await
        {
            Ok(settled) => settled,
            Err(failure) => {
                return Err(self
                    .fail_operation(tenant, actor, &line, &op, failure)
                    .await);
            }
        };
        let Some(sub) = settled.subscription_id.clone() else {
            let failure = Failure::unknown(
                ProviderError::Protocol {
                    status: 200,
                    body: "completed order has no subscription_id".into(),
                }
                .into(),
            );
            return Err(self
                .fail_operation(tenant, actor, &line, &op, failure)
                .await);
        };
        let profile = match provider.get_sim_profile(&sub).await {
            Ok(profile) => profile,
            // The order completed: the subscription exists whatever this call says.
            Err(e) => {
                return Err(self
                    .fail_operation(tenant, actor, &line, &op, Failure::while_polling(e))
                    .await);
            }
        };
        let mut tx = self.tenant_tx(tenant).await?;
        // Settled first, as a compare-and-set, as in `drive_operation`: a webhook on one
        // replica and the waiting approval on another may finish the same order, and the one
        // that loses reports the line the winner made Ready instead of a conflict.
        let first =
            store::operations::settle(&mut tx, tenant, op.id, OperationState::Succeeded, None)
                .await?;
        let current = self.load_line(&mut tx, tenant, line.id).await?;
        if !first || current.state != LineState::Provisioning {
            tx.commit().await?;
            return Ok(current);
        }
        let ready = self
            .transition(
                &mut tx,
                actor,
                &current,
                LineEvent::ProvisioningSucceeded,
                |l| {
                    l.provider_subscription_id = Some(sub.clone());
                    l.iccid = Some(profile.iccid.clone());
                    l.activation_code = Some(SealedActivationCode::seal(
                        &secrets,
                        l.id,
                        &profile.activation_code,
                    ));
                },
            )
            .await?;
        tx.commit().await?;
        Ok(ready)
    }

    /// Record the order id as soon as we have it, then poll the order to settlement.
    async fn place_and_wait(
        &self,
        provider: &dyn ConnectivityProvider,
        tenant: TenantId,
        op: &ProviderOperation,
        placed: Result<Operation, ProviderError>,
        poll: PollPolicy,
    ) -> Result<Operation, Failure> {
        let order = match (placed, &op.provider_order_id) {
            (Ok(order), _) => order,
            // We were asking about an order the provider had already accepted.
            (Err(e), Some(_)) => return Err(Failure::while_polling(e)),
            (Err(e), None) => return Err(Failure::placing(e, op, poll, now())),
        };
        if op.provider_order_id.is_none() {
            let mut tx = self.tenant_tx(tenant).await.map_err(Failure::unknown)?;
            store::operations::record_order(&mut tx, tenant, op.id, &order.id)
                .await
                .map_err(|e| Failure::unknown(e.into()))?;
            tx.commit().await.map_err(|e| Failure::unknown(e.into()))?;
        }
        let settled = self
            .wait_for_order(provider, order, poll)
            .await
            .map_err(|e| match e {
                // The order is still running at the provider: leave it pending for the worker.
                timed_out @ WaitError::TimedOut { .. } => Failure {
                    error: timed_out.into(),
                    outcome: Outcome::StillPending,
                },
                WaitError::Provider(e) => Failure::while_polling(e),
            })?;
        match &settled.status {
            OperationStatus::Succeeded => Ok(settled),
            OperationStatus::Failed { code, message } => Err(Failure {
                error: CoreError::OperationFailed {
                    operation: op.kind.as_str(),
                    reason: format!("{code}: {message}"),
                },
                outcome: Outcome::Refused,
            }),
            OperationStatus::Pending => {
                unreachable!("wait_for_operation returns settled operations")
            }
        }
    }

    /// Leave the line in a state that says what happened: a failed issue marks the line
    /// `failed` with the reason; a failed suspend/resume/terminate leaves the line as it was
    /// and records the failure. Returns the error for the caller.
    async fn fail_operation(
        &self,
        tenant: TenantId,
        actor: &Actor,
        line: &Line,
        op: &ProviderOperation,
        failure: Failure,
    ) -> CoreError {
        if failure.outcome == Outcome::StillPending {
            // Callers (requests, offboarding, the portal) read this as "still working on it".
            return match failure.error {
                timed_out @ CoreError::ProviderTimeout(_) => timed_out,
                other => CoreError::ProviderTimeout(format!(
                    "the order is still in progress; checking on it failed for now ({other})"
                )),
            };
        }
        let reason = failure.error.to_string();
        let outcome: CoreResult<()> = async {
            let mut tx = self.tenant_tx(tenant).await?;
            if failure.outcome == Outcome::Refused {
                let mut payload = op.payload.clone();
                payload[DEFINITIVE] = json!(true);
                store::operations::set_payload(&mut tx, tenant, op.id, &payload).await?;
            }
            let first = store::operations::settle(
                &mut tx,
                tenant,
                op.id,
                OperationState::Failed,
                Some(&reason),
            )
            .await?;
            if !first {
                // Another caller driving the same order settled it: its outcome stands.
                return Ok(());
            }
            let current = self.load_line(&mut tx, tenant, line.id).await?;
            if op.kind == OperationKind::Provision {
                if current.state.on(LineEvent::ProvisioningFailed).is_ok() {
                    self.transition(
                        &mut tx,
                        actor,
                        &current,
                        LineEvent::ProvisioningFailed,
                        |l| {
                            l.failure_reason = Some(reason.clone());
                        },
                    )
                    .await?;
                }
            } else {
                let event = AuditEvent::new(
                    tenant,
                    actor,
                    &format!("line.{}_failed", op.kind.as_str()),
                    subject(&current),
                    None,
                    Some(json!({ "reason": reason })),
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(%tenant, line = %line.id, error = %e, "could not record a provider failure");
        }
        failure.error
    }

    /// Apply one state-machine event: compare-and-set on the stored state, plus its audit event.
    pub(crate) async fn transition(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        line: &Line,
        event: LineEvent,
        change: impl FnOnce(&mut Line),
    ) -> CoreResult<Line> {
        let mut next = line.clone();
        next.state = line.state.on(event)?;
        change(&mut next);
        self.save(tx, actor, line, next, event.audit_action()).await
    }

    /// Change fields without a state change (plan, owner), with its audit event.
    pub(super) async fn rewrite(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        line: &Line,
        action: &str,
        change: impl FnOnce(&mut Line),
    ) -> CoreResult<Line> {
        let mut next = line.clone();
        change(&mut next);
        self.save(tx, actor, line, next, action).await
    }

    /// Write `next` if `before` is still what is stored, and audit the change.
    async fn save(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        before: &Line,
        mut next: Line,
        action: &str,
    ) -> CoreResult<Line> {
        next.updated_at = now();
        if !store::lines::update_if_state(tx, before.tenant_id, &next, before.state).await? {
            return Err(CoreError::Conflict(format!(
                "line {} changed concurrently; try again",
                before.id
            )));
        }
        let event = AuditEvent::new(
            before.tenant_id,
            actor,
            action,
            subject(before),
            to_json(before),
            to_json(&next),
        );
        record(tx, &event).await?;
        Ok(next)
    }

    pub(super) async fn load_line(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        id: LineId,
    ) -> CoreResult<Line> {
        required(store::lines::get(tx, tenant, id).await?, "line", id)
    }

    pub(crate) async fn line_by_issue_key(&self, tenant: TenantId, key: &str) -> CoreResult<Line> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        required(
            store::lines::find_by_issue_key(&mut tx, tenant, key).await?,
            "line",
            key,
        )
    }

    /// Another caller is issuing this line: wait for its outcome rather than act twice.
    async fn await_settled(&self, tenant: TenantId, line: Line) -> CoreResult<Line> {
        let deadline = tokio::time::Instant::now() + self.poll_policy().timeout;
        let mut current = line;
        while matches!(
            current.state,
            LineState::Requested | LineState::Provisioning
        ) && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            current = self.line(tenant, current.id).await?;
        }
        Ok(current)
    }
}

/// A provider failure and what it tells us about the provider's side.
struct Failure {
    error: CoreError,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The provider refused or canceled: a retry must place a new order.
    Refused,
    /// We could not learn the outcome (the order may exist): a retry must replay the key.
    Unknown,
    /// The order is still running: keep the operation pending and let the worker finish it.
    StillPending,
}

impl Failure {
    fn unknown(error: CoreError) -> Self {
        Self {
            error,
            outcome: Outcome::Unknown,
        }
    }

    /// A failed call about an order the provider accepted. Only the provider saying the order
    /// failed (a settled `Failed` status, handled by the caller) ends it as refused; a 429, a
    /// 5xx, a timeout or a dropped connection keeps it pending, to be polled again.
    ///
    /// A 404 is the one answer that does end it: the provider says it does not know the order
    /// (or, for the sim profile, the subscription). Polling it forever would leave the line
    /// stuck in `provisioning`, so it fails with an unknown outcome: a retry replays the same
    /// idempotency key, and the reconciliation sweep adopts any subscription that carries our
    /// reference. Every other refusal (401, 403, 400, an unreadable body) says something about
    /// our credentials or the call, not the order, so the order stays pending for the next sweep.
    fn while_polling(error: ProviderError) -> Self {
        let outcome = match error {
            ProviderError::NotFound(_) => Outcome::Unknown,
            _ => Outcome::StillPending,
        };
        Self {
            error: error.into(),
            outcome,
        }
    }

    /// A failed call placing an order. A retryable failure (a 429, a 5xx, a timeout, a dropped
    /// connection) may have come after the provider accepted the order, so a new line's order
    /// stays pending and the in-flight sweep places it again under the same idempotency key
    /// (the provider answers a replay with the first order) for the policy's placement
    /// patience; only then does the line fail, its outcome unknown, for reconciliation to settle.
    fn placing(
        error: ProviderError,
        op: &ProviderOperation,
        poll: PollPolicy,
        now: OffsetDateTime,
    ) -> Self {
        let patient = op.kind == OperationKind::Provision
            && error.is_retryable()
            && now - op.created_at < poll.placement_patience;
        if patient {
            Self {
                error: error.into(),
                outcome: Outcome::StillPending,
            }
        } else {
            Self::from_provider(error)
        }
    }

    fn from_provider(error: ProviderError) -> Self {
        let outcome = if error.is_retryable() {
            Outcome::Unknown
        } else {
            Outcome::Refused
        };
        Self {
            error: error.into(),
            outcome,
        }
    }
}

fn event_for(kind: OperationKind) -> Option<LineEvent> {
    match kind {
        OperationKind::Suspend => Some(LineEvent::Suspend),
        OperationKind::Resume => Some(LineEvent::Resume),
        OperationKind::Terminate => Some(LineEvent::Terminate),
        OperationKind::Provision => Some(LineEvent::ProvisioningStarted),
        OperationKind::ChangePlan => None,
    }
}

pub(super) fn new_operation(
    tenant: TenantId,
    line: LineId,
    kind: OperationKind,
    command_key: Option<String>,
    payload: serde_json::Value,
) -> ProviderOperation {
    let at = now();
    ProviderOperation {
        id: OperationId::new(),
        tenant_id: tenant,
        line_id: line,
        kind,
        idempotency_key: IdempotencyKey::generate().0,
        command_key,
        payload,
        provider_order_id: None,
        state: OperationState::Pending,
        error: None,
        created_at: at,
        updated_at: at,
    }
}

/// The key sent to the provider: a retry row replays its predecessor's key.
fn replayed_key(op: &ProviderOperation) -> String {
    op.payload
        .get("replays")
        .and_then(|k| k.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| op.idempotency_key.clone())
}

fn subject(line: &Line) -> (&'static str, String) {
    ("line", line.id.to_string())
}

/// Largest page the directory serves.
pub const MAX_PAGE: i64 = 200;

impl Lineup {
    /// One page of lines matching `search` that `visibility` lets through, newest first,
    /// and how many match in all. The reporting tree is filtered in SQL.
    pub async fn search_lines(
        &self,
        tenant: TenantId,
        visibility: Visibility,
        mut search: LineSearch,
    ) -> CoreResult<(Vec<ListedLine>, i64)> {
        search.reports_of = match visibility {
            Visibility::Everyone => None,
            Visibility::ReportsOf(manager) => Some(manager),
            Visibility::Nobody => return Ok((Vec::new(), 0)),
        };
        search.limit = search.limit.clamp(1, MAX_PAGE);
        search.offset = search.offset.max(0);
        search.text = search
            .text
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::lines::search(&mut tx, tenant, &search).await?)
    }

    /// Everything that happened to a line, oldest first.
    pub async fn line_history(
        &self,
        tenant: TenantId,
        line: LineId,
    ) -> CoreResult<Vec<AuditEvent>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::audit::list_for_subject(&mut tx, tenant, "line", &line.to_string()).await?)
    }

    /// The line issued with `issue_key`, if one was.
    pub async fn line_issued_with(
        &self,
        tenant: TenantId,
        issue_key: &str,
    ) -> CoreResult<Option<Line>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::lines::find_by_issue_key(&mut tx, tenant, issue_key).await?)
    }
}
