//! Grace workflow commands: open a leaver's cases, decide one (from chat or the portal),
//! carry a decision out, and the sweep that announces, reminds and applies the default at
//! the deadline.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::cards::CaseContext;
use super::*;
use crate::app::{Lineup, record, required, to_json};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, OffboardingCaseId, TenantId};
use crate::lines::line::{Line, LineState};
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::tenant::{GraceDefault, TenantSettings};
use crate::provider::IdempotencyKey;
use crate::store::{self, Tx};

/// A decided case is left to the process that decided it this long before the sweep carries
/// it out instead (it was stopped or killed in between).
const CARRY_OUT_GRACE: Duration = Duration::seconds(30);
/// Successor buttons on one picker.
const MAX_SUCCESSORS: usize = 10;

fn subject(case: &OffboardingCase) -> (&'static str, String) {
    ("offboarding_case", case.id.to_string())
}

/// The choice the tenant's settings make at the deadline.
pub fn default_choice(settings: &TenantSettings) -> GraceChoice {
    match settings.offboarding_grace_default {
        GraceDefault::Terminate => GraceChoice::Terminate,
        GraceDefault::KeepSuspended => GraceChoice::KeepSuspended,
    }
}

impl Lineup {
    /// One case per line of `leaver` that is still live, asked of their nearest active
    /// manager, with the tenant's grace period. Opening again changes nothing.
    pub(crate) async fn open_grace_cases(
        &self,
        tenant: TenantId,
        actor: &Actor,
        leaver: &Employee,
        lines: &[Line],
    ) -> CoreResult<Vec<OffboardingCase>> {
        let settings = self.tenant(tenant).await?.settings;
        let mut tx = self.tenant_tx(tenant).await?;
        let asked = store::employees::manager_chain(&mut tx, tenant, leaver.id)
            .await?
            .into_iter()
            .find(|m| m.status == EmployeeStatus::Active)
            .map(|m| m.id);
        let now = store::now();
        let mut opened = Vec::new();
        for line in lines.iter().filter(|l| l.state.is_live()) {
            let case = OffboardingCase {
                id: OffboardingCaseId::new(),
                tenant_id: tenant,
                employee_id: leaver.id,
                line_id: line.id,
                state: CaseState::Open,
                asked_id: asked,
                deadline_at: now + Duration::days(settings.offboarding_grace_days),
                remind_at: now + Duration::days(settings.offboarding_reminder_after_days),
                announced_at: None,
                reminded_at: None,
                choice: None,
                successor_id: None,
                chosen_by: None,
                chosen_at: None,
                by_default: false,
                porting: None,
                failure_reason: None,
                chat_refs: Default::default(),
                created_at: now,
                completed_at: None,
            };
            if store::offboarding_cases::insert_if_new(&mut tx, &case).await? {
                let event = AuditEvent::new(
                    tenant,
                    actor,
                    "offboarding.case_opened",
                    subject(&case),
                    None,
                    Some(json!({
                        "employee_id": leaver.id, "line_id": line.id, "asked_id": asked,
                        "deadline_at": case.deadline_at.to_string(),
                        "default": default_choice(&settings).as_str(),
                    })),
                );
                record(&mut tx, &event).await?;
                opened.push(case);
            }
        }
        tx.commit().await?;
        Ok(opened)
    }

    pub async fn offboarding_case(
        &self,
        tenant: TenantId,
        id: OffboardingCaseId,
    ) -> CoreResult<OffboardingCase> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        required(
            store::offboarding_cases::get(&mut tx, tenant, id).await?,
            "offboarding case",
            id,
        )
    }

    /// The tenant's cases not yet settled, and failed ones: soonest deadline first.
    pub async fn pending_offboarding_cases(
        &self,
        tenant: TenantId,
    ) -> CoreResult<Vec<OffboardingCase>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::offboarding_cases::list_in_states(
            &mut tx,
            tenant,
            &[CaseState::Open, CaseState::Decided, CaseState::Failed],
        )
        .await?)
    }

    /// What a card about `case` shows.
    pub async fn case_context(
        &self,
        tenant: TenantId,
        case: &OffboardingCase,
    ) -> CoreResult<CaseContext> {
        // A tenant without a working provider connection still sees its cases.
        let can_port_out = self
            .provider_for(tenant)
            .await
            .is_ok_and(|p| p.capabilities().port_out);
        let mut tx = self.tenant_read_tx(tenant).await?;
        let name = |e: Option<Employee>| e.map(|e| e.full_name());
        let leaver = store::employees::get(&mut tx, tenant, case.employee_id).await?;
        let line = store::lines::get(&mut tx, tenant, case.line_id).await?;
        let plan = match &line {
            Some(line) => store::plans::get(&mut tx, tenant, line.plan_id).await?,
            None => None,
        };
        let iccid = line
            .as_ref()
            .and_then(|l| l.iccid.as_ref())
            .map(|i| i.to_string())
            .map(|i| format!(" (ICCID …{})", &i[i.len().saturating_sub(4)..]))
            .unwrap_or_default();
        let asked = match case.asked_id {
            Some(id) => name(store::employees::get(&mut tx, tenant, id).await?),
            None => None,
        };
        let successor = match case.successor_id {
            Some(id) => name(store::employees::get(&mut tx, tenant, id).await?),
            None => None,
        };
        let chooser = match case
            .chosen_by
            .as_deref()
            .and_then(|a| a.strip_prefix("employee:"))
        {
            Some(id) => match id.parse() {
                Ok(id) => name(store::employees::get(&mut tx, tenant, id).await?),
                Err(_) => None,
            },
            None => None,
        };
        Ok(CaseContext {
            leaver_name: name(leaver).unwrap_or_else(|| "A leaver".into()),
            line_label: format!(
                "{}{iccid}",
                plan.map_or_else(|| "a line".to_owned(), |p| p.name)
            ),
            asked_name: asked,
            successor_name: successor,
            chooser_name: chooser,
            can_port_out,
        })
    }

    /// People who could take the leaver's line over: active colleagues in the leaver's team,
    /// then the leaver's direct reports, then the chooser themself (at most ten).
    pub async fn successor_candidates(
        &self,
        tenant: TenantId,
        case: &OffboardingCase,
        chooser: EmployeeId,
    ) -> CoreResult<Vec<(EmployeeId, String)>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let leaver = required(
            store::employees::get(&mut tx, tenant, case.employee_id).await?,
            "employee",
            case.employee_id,
        )?;
        let everyone = store::employees::list(&mut tx, tenant).await?;
        let active = |e: &&Employee| e.status == EmployeeStatus::Active && e.id != leaver.id;
        let team = everyone
            .iter()
            .filter(active)
            .filter(|e| leaver.team_id.is_some() && e.team_id == leaver.team_id);
        let reports = everyone
            .iter()
            .filter(active)
            .filter(|e| e.manager_id == Some(leaver.id));
        let me = everyone.iter().filter(active).filter(|e| e.id == chooser);
        let mut picked: Vec<(EmployeeId, String)> = Vec::new();
        for person in team.chain(reports).chain(me) {
            if picked.len() < MAX_SUCCESSORS && !picked.iter().any(|(id, _)| *id == person.id) {
                picked.push((person.id, person.full_name()));
            }
        }
        Ok(picked)
    }

    /// Decide a case: `Keep` needs a successor, `Release` a provider that ports numbers out.
    /// Exactly one decision wins; a later one gets `won: false` and the case as decided.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, case = %case_id))]
    pub async fn decide_offboarding_case(
        &self,
        tenant: TenantId,
        decider: CaseDecider,
        case_id: OffboardingCaseId,
        choice: GraceChoice,
        successor: Option<EmployeeId>,
    ) -> CoreResult<CaseDecided> {
        if choice == GraceChoice::Release
            && !self.provider_for(tenant).await?.capabilities().port_out
        {
            return Err(CoreError::invalid(
                "choice",
                "your mobile provider cannot port numbers out, so the number cannot be \
                 released; keep the line for a successor or terminate it",
            ));
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let case = required(
            store::offboarding_cases::get(&mut tx, tenant, case_id).await?,
            "offboarding case",
            case_id,
        )?;
        let actor = self.authorise_case(&mut tx, tenant, &case, decider).await?;
        if case.state != CaseState::Open {
            return Ok(CaseDecided { case, won: false });
        }
        let successor = match (choice, successor) {
            (GraceChoice::Keep, Some(id)) => {
                let person = required(
                    store::employees::get(&mut tx, tenant, id).await?,
                    "employee",
                    id,
                )?;
                if person.status != EmployeeStatus::Active || person.id == case.employee_id {
                    return Err(CoreError::invalid(
                        "successor",
                        format!(
                            "{} is not an active employee who can take the line",
                            person.email
                        ),
                    ));
                }
                Some(id)
            }
            (GraceChoice::Keep, None) => {
                return Err(CoreError::invalid("successor", "choose who keeps the line"));
            }
            (GraceChoice::KeepSuspended, _) => {
                return Err(CoreError::invalid(
                    "choice",
                    "leaving a line suspended is the organisation's default, not a choice",
                ));
            }
            _ => None,
        };
        let won = self
            .settle_choice(&mut tx, &actor, case, choice, successor, false)
            .await?;
        tx.commit().await?;
        Ok(won)
    }

    /// Sets the choice if the case is still open, auditing it.
    async fn settle_choice(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        case: OffboardingCase,
        choice: GraceChoice,
        successor: Option<EmployeeId>,
        by_default: bool,
    ) -> CoreResult<CaseDecided> {
        let decided = OffboardingCase {
            state: CaseState::Decided,
            choice: Some(choice),
            successor_id: successor,
            chosen_by: Some(actor.to_text()),
            chosen_at: Some(store::now()),
            by_default,
            ..case.clone()
        };
        if !store::offboarding_cases::decide(tx, &decided).await? {
            let current = required(
                store::offboarding_cases::get(tx, case.tenant_id, case.id).await?,
                "offboarding case",
                case.id,
            )?;
            return Ok(CaseDecided {
                case: current,
                won: false,
            });
        }
        let event = AuditEvent::new(
            case.tenant_id,
            actor,
            if by_default {
                "offboarding.case_defaulted"
            } else {
                "offboarding.case_decided"
            },
            subject(&case),
            to_json(&json!({ "state": case.state })),
            to_json(&json!({
                "choice": choice.as_str(), "successor_id": successor, "line_id": case.line_id,
            })),
        );
        record(tx, &event).await?;
        Ok(CaseDecided {
            case: decided,
            won: true,
        })
    }

    /// Who may decide: an active manager above the leaver, or an owner or admin. Never the
    /// leaver; never someone offboarded. Returns the actor to audit.
    async fn authorise_case(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        case: &OffboardingCase,
        decider: CaseDecider,
    ) -> CoreResult<Actor> {
        let employee = match decider {
            CaseDecider::Member(user) => {
                let role = store::users::role_in(tx, tenant, user).await?;
                return if matches!(role.as_deref(), Some("owner" | "admin")) {
                    Ok(Actor::User(user))
                } else {
                    Err(CoreError::NotAuthorised(
                        "only owners and admins decide a leaver's lines in the portal".into(),
                    ))
                };
            }
            CaseDecider::Employee(employee) => employee,
        };
        let person = required(
            store::employees::get(tx, tenant, employee).await?,
            "employee",
            employee,
        )?;
        if person.status != EmployeeStatus::Active || employee == case.employee_id {
            return Err(CoreError::NotAuthorised(
                "you can no longer decide what becomes of this line".into(),
            ));
        }
        let roles = store::users::roles_of_employee(tx, tenant, employee).await?;
        let above = store::employees::manager_chain(tx, tenant, case.employee_id)
            .await?
            .iter()
            .any(|m| m.id == employee);
        if above || roles.iter().any(|r| r == "owner" || r == "admin") {
            Ok(Actor::Employee(employee))
        } else {
            Err(CoreError::NotAuthorised(
                "only the leaver's managers, owners and admins decide what becomes of their \
                 line"
                    .into(),
            ))
        }
    }

    /// Carry out a decided case with its command key: done, failed (with the reason), or
    /// still decided when the provider has not finished (the sweep tries again). Safe to
    /// call again and from two places at once: the provider sees one order.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, case = %case_id))]
    pub async fn carry_out_offboarding_case(
        &self,
        tenant: TenantId,
        actor: &Actor,
        case_id: OffboardingCaseId,
    ) -> CoreResult<OffboardingCase> {
        let case = self.offboarding_case(tenant, case_id).await?;
        let (CaseState::Decided, Some(choice)) = (case.state, case.choice) else {
            return Ok(case);
        };
        let outcome = self.carry_out(tenant, actor, &case, choice).await;
        let mut settled = case.clone();
        settled.completed_at = Some(store::now());
        match outcome {
            Ok(porting) => {
                settled.state = CaseState::Done;
                settled.porting = porting;
            }
            Err(e @ (CoreError::ProviderTimeout(_) | CoreError::Conflict(_))) => {
                tracing::info!(case = %case.id, reason = %e, "an offboarding case is still being carried out");
                return Ok(case);
            }
            Err(e) => {
                settled.state = CaseState::Failed;
                settled.failure_reason = Some(e.to_string());
            }
        }
        let mut tx = self.tenant_tx(tenant).await?;
        if store::offboarding_cases::settle(&mut tx, &settled).await? {
            let event = AuditEvent::new(
                tenant,
                actor,
                if settled.state == CaseState::Done {
                    "offboarding.case_done"
                } else {
                    "offboarding.case_failed"
                },
                subject(&settled),
                None,
                to_json(&json!({
                    "choice": choice.as_str(), "line_id": settled.line_id,
                    "successor_id": settled.successor_id,
                    // The number and its expiry; the porting code itself stays on the case.
                    "msisdn": settled.porting.as_ref().map(|p| p.msisdn.clone()),
                    "error": settled.failure_reason,
                })),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
            Ok(settled)
        } else {
            drop(tx);
            self.offboarding_case(tenant, case_id).await
        }
    }

    async fn carry_out(
        &self,
        tenant: TenantId,
        actor: &Actor,
        case: &OffboardingCase,
        choice: GraceChoice,
    ) -> CoreResult<Option<crate::provider::PortingAuthorisation>> {
        let line = self.line(tenant, case.line_id).await?;
        match choice {
            GraceChoice::Keep => {
                let successor = case.successor_id.ok_or_else(|| {
                    CoreError::invalid("successor", "the decision names no successor")
                })?;
                let moved = self
                    .transfer_line(tenant, actor, line.id, successor)
                    .await?;
                if moved.state == LineState::Suspended {
                    let key = case.command_key(choice, "resume");
                    self.resume_line(tenant, actor, line.id, Some(key)).await?;
                }
                Ok(None)
            }
            GraceChoice::Terminate if line.state == LineState::Terminated => Ok(None),
            GraceChoice::Terminate => {
                let key = case.command_key(choice, "terminate");
                self.terminate_line(tenant, actor, line.id, Some(key))
                    .await?;
                Ok(None)
            }
            GraceChoice::Release => {
                let subscription = line.provider_subscription_id.clone().ok_or_else(|| {
                    CoreError::invalid("line_id", "the line has no provider subscription")
                })?;
                let key = IdempotencyKey(case.command_key(choice, "port_out"));
                let porting = self
                    .provider_for(tenant)
                    .await?
                    .port_out(&subscription, &key)
                    .await?;
                Ok(Some(porting))
            }
            GraceChoice::KeepSuspended => Ok(None),
        }
    }

    /// Where the case's cards are, as chat adapters posted them.
    pub async fn set_offboarding_case_chat_refs(
        &self,
        tenant: TenantId,
        case: OffboardingCaseId,
        refs: &crate::lines::request::ChatRefs,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        store::offboarding_cases::set_chat_refs(&mut tx, tenant, case, refs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every tenant's open and decided cases at `now`: new ones announced, one reminder when
    /// the reminder is due, the default taken and carried out at the deadline, and decisions
    /// a stopped process left behind carried out. What chat must show, in order.
    pub async fn sweep_offboarding(&self, now: OffsetDateTime) -> CoreResult<Vec<GraceEvent>> {
        let mut tx = self.store().system_read().await?;
        let cases = store::offboarding_cases::list_unsettled(&mut tx).await?;
        drop(tx);
        let mut events = Vec::new();
        for case in cases {
            let tenant = case.tenant_id;
            match self.sweep_case(case, now, &mut events).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "sweeping an offboarding case failed")
                }
            }
        }
        Ok(events)
    }

    async fn sweep_case(
        &self,
        case: OffboardingCase,
        now: OffsetDateTime,
        events: &mut Vec<GraceEvent>,
    ) -> CoreResult<()> {
        let tenant = case.tenant_id;
        let settings = self.tenant(tenant).await?.settings;
        let mut tx = self.tenant_tx(tenant).await?;
        if case.state == CaseState::Open
            && case.announced_at.is_none()
            && store::offboarding_cases::claim_announcement(&mut tx, tenant, case.id, now).await?
        {
            events.push(GraceEvent::Announce(case.clone()));
        }
        let due = match case.state {
            CaseState::Open if now >= case.deadline_at => {
                let default = default_choice(&settings);
                self.settle_choice(&mut tx, &Actor::System, case.clone(), default, None, true)
                    .await?
                    .won
            }
            CaseState::Open => {
                if now >= case.remind_at
                    && case.reminded_at.is_none()
                    && store::offboarding_cases::claim_reminder(&mut tx, tenant, case.id, now)
                        .await?
                {
                    let event = AuditEvent::new(
                        tenant,
                        &Actor::System,
                        "offboarding.case_reminded",
                        subject(&case),
                        None,
                        to_json(&json!({ "asked_id": case.asked_id })),
                    );
                    record(&mut tx, &event).await?;
                    events.push(GraceEvent::Remind(case.clone()));
                }
                false
            }
            CaseState::Decided => case.chosen_at.is_none_or(|at| now - at >= CARRY_OUT_GRACE),
            CaseState::Done | CaseState::Failed => false,
        };
        tx.commit().await?;
        if due {
            let settled = self
                .carry_out_offboarding_case(tenant, &Actor::System, case.id)
                .await?;
            if settled.state != CaseState::Decided {
                events.push(GraceEvent::Settled(settled));
            }
        }
        Ok(())
    }
}
