//! Request commands: submit (with the policy pre-check and routing), decide (exactly once,
//! by an authorised approver only, never one's own), fulfil, and the reminder/escalation/
//! expiry and roaming-grant sweeps.

use serde_json::json;
use time::{Date, Duration, OffsetDateTime};

use super::cards::CardContext;
use super::roaming_quote::{self, RoamingOption, TravelOffer};
use super::{Decider, Decision, Request, RequestDetails, RequestState, Route};
use crate::app::{Lineup, record, required, to_json};
use crate::audit::commands::{actor_employee, actor_name_among};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::ids::{EmployeeId, LineId, PlanId, RequestId, TenantId};
use crate::lines::line::commands::IssueLine;
use crate::lines::line::travel::{TravelEsim, TravelEsimState};
use crate::lines::line::{Line, LineState};
use crate::lines::plan::Plan;
use crate::messaging::chat::{Platform, refuse_inactive};
use crate::money::{Bytes, Money};
use crate::organisation::employee::{Employee, EmployeeStatus};
use crate::organisation::tenant::Tenant;
use crate::spend::guardrail::commands::ScopeNames;
use crate::spend::policy::{self, CapScope, Facts, RoamingGrant, RoamingRule, Verdict};
use crate::store::employees::Standing;
use crate::store::{self, Tx, now};

#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub requester: EmployeeId,
    pub details: RequestDetails,
    pub reason: String,
    /// The caller's key (a modal submission id, a command's trigger): submitting twice
    /// with the same key gives the same request.
    pub dedupe_key: String,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub request: Request,
    /// False when this key was submitted before and the existing request is returned.
    pub created: bool,
    /// Who may decide it now (empty unless pending).
    pub approvers: Vec<EmployeeId>,
}

#[derive(Debug, Clone)]
pub struct Decided {
    pub request: Request,
    /// False when someone (or something) had already decided; `request` says who and how.
    pub won: bool,
}

/// What a chat user's click on a request's card came to.
#[derive(Debug, Clone)]
pub enum ChatDecision {
    /// The chat user is linked to no employee yet: find them (by email), then decide.
    Unlinked,
    /// Already decided before this click: the request as it stands, and its card's names.
    AlreadyDecided {
        request: Request,
        names: CardContext,
    },
    /// The click was carried out (`won` false when another decision beat it to the write).
    Decided(Decided),
}

/// What a pending request needs from the sweep.
#[derive(Debug, Clone)]
pub enum SweepEvent {
    Reminded {
        request: Request,
        approvers: Vec<EmployeeId>,
    },
    Escalated {
        request: Request,
        approvers: Vec<EmployeeId>,
    },
    Expired {
        request: Request,
    },
    /// The requester's manager changed: the request now waits on `approvers`, named in
    /// `moved_to` ("Bea Boss", "the admins").
    Rerouted {
        request: Request,
        approvers: Vec<EmployeeId>,
        moved_to: String,
    },
}

#[derive(Debug, Clone)]
pub enum Fulfilment {
    Line(Line),
    CapRaised { period: String, amount: Money },
    Roaming(RoamingGrant),
}

/// What the requester and approver see next to a request: usage, budget and price.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageSummary {
    pub data_last_30_days: Bytes,
    pub spent_this_period: Money,
    /// The employee's own monthly cap, with this month's approved raises.
    pub cap: Option<Money>,
    /// The budgets the employee shares (team, cost centre, organisation): each adds up the
    /// spend of every line in it, and the guardrails act when it reaches its cap.
    pub shared_budgets: Vec<SharedBudget>,
    pub days_left_in_period: i64,
    pub lines: Vec<Line>,
}

/// A shared budget's spend so far this month against its cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBudget {
    /// "Team Platform", "Cost centre CC-100", "Organisation".
    pub name: String,
    pub spent: Money,
    pub cap: Money,
}

impl std::fmt::Display for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.spent, self.cap)
    }
}

const MAX_REASON_CHARS: usize = 500;
const MANAGER_CHAIN_LIMIT: usize = 16;

impl Lineup {
    /// File a request: checked, pre-decided by the policy or routed to its approver, and
    /// audited. Submitting again with the same dedupe key returns the first request.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, requester = %cmd.requester))]
    pub async fn submit_request(
        &self,
        tenant: TenantId,
        mut cmd: SubmitRequest,
    ) -> CoreResult<Submitted> {
        let reason = checked_reason(&cmd.reason)?;
        validate_details(&cmd.details, now().date())?;
        let mut tx = self.tenant_tx(tenant).await?;
        if let Some(existing) =
            store::requests::find_by_dedupe_key(&mut tx, tenant, &cmd.dedupe_key).await?
        {
            drop(tx);
            return self.submitted_before(tenant, existing).await;
        }
        let known = RequestFacts::load(&mut tx, tenant, cmd.requester, &cmd.details).await?;
        if let RequestDetails::Roaming {
            line_id,
            country,
            from,
            to,
            quote,
        } = &mut cmd.details
        {
            *quote = roaming_quote::quote_trip(
                &mut tx,
                tenant,
                cmd.requester,
                *line_id,
                country,
                roaming_quote::trip_days(*from, *to),
                known.tenant.currency,
            )
            .await?;
        }
        let verdict = policy::evaluate(&cmd.details, &known.facts());
        let mut request = pending_request(tenant, &known, cmd, reason, now());
        let action = apply_verdict(&mut tx, tenant, &mut request, &verdict).await?;
        if !store::requests::insert_if_new(&mut tx, tenant, &request).await? {
            drop(tx);
            return Box::pin(self.submit_request_existing(tenant, &request.dedupe_key)).await;
        }
        record_submission(&mut tx, tenant, &request, action, &verdict).await?;
        tx.commit().await?;
        let approvers = self.approvers_for(tenant, &request).await?;
        Ok(Submitted {
            request,
            created: true,
            approvers,
        })
    }

    async fn submit_request_existing(&self, tenant: TenantId, key: &str) -> CoreResult<Submitted> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let existing = required(
            store::requests::find_by_dedupe_key(&mut tx, tenant, key).await?,
            "request",
            key,
        )?;
        drop(tx);
        self.submitted_before(tenant, existing).await
    }

    async fn submitted_before(&self, tenant: TenantId, existing: Request) -> CoreResult<Submitted> {
        let approvers = self.approvers_for(tenant, &existing).await?;
        Ok(Submitted {
            request: existing,
            created: false,
            approvers,
        })
    }

    /// Everyone who may decide a pending request now (never the requester).
    pub async fn approvers_for(
        &self,
        tenant: TenantId,
        request: &Request,
    ) -> CoreResult<Vec<EmployeeId>> {
        if request.state != RequestState::Pending {
            return Ok(Vec::new());
        }
        let mut tx = self.tenant_read_tx(tenant).await?;
        let mut approvers = match request.route {
            Route::Manager => request.approver.into_iter().collect(),
            Route::Finance => {
                store::users::employees_with_roles(&mut tx, tenant, &["finance"]).await?
            }
            Route::Admins => {
                store::users::employees_with_roles(&mut tx, tenant, &["owner", "admin"]).await?
            }
            Route::Auto => Vec::new(),
        };
        if approvers.is_empty() && request.route == Route::Finance {
            approvers =
                store::users::employees_with_roles(&mut tx, tenant, &["owner", "admin"]).await?;
        }
        approvers.retain(|a| *a != request.requester);
        Ok(approvers)
    }

    /// Approve or deny. Only an authorised approver may, never for their own request; the
    /// first decision wins and every later one (double click, retry, a second approver)
    /// gets `won: false` with the winning decision in `request`.
    pub async fn decide_request(
        &self,
        tenant: TenantId,
        decider: EmployeeId,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> CoreResult<Decided> {
        self.decide_request_as(
            tenant,
            Decider::Employee(decider),
            request_id,
            decision,
            note,
        )
        .await
    }

    /// A chat user's click on a request's card. Most clicks after a card's first find the
    /// request decided, so who the user is, whether they may decide it and what the settled
    /// card shows are answered from one read (one transaction instead of three); only a
    /// pending request goes on to the decision's write (`decide_pending`).
    pub async fn decide_request_from_chat(
        &self,
        tenant: TenantId,
        platform: Platform,
        chat_user: &str,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> CoreResult<ChatDecision> {
        let note = decision_note(decision, note)?;
        let mut read = self.tenant_read_tx(tenant).await?;
        let Some(me) = store::employees::standing_of_chat_user(
            &mut read,
            tenant,
            platform.as_str(),
            chat_user,
        )
        .await?
        else {
            return Ok(ChatDecision::Unlinked);
        };
        refuse_inactive(&mut read, tenant, me.status).await?;
        let request = self.request_in(&mut read, tenant, request_id).await?;
        self.authorise_standing(&mut read, tenant, &request, &me)
            .await?;
        if request.state != RequestState::Pending {
            let names = self.card_names_in(&mut read, tenant, &request).await?;
            return Ok(ChatDecision::AlreadyDecided { request, names });
        }
        drop(read);
        let me = Decider::Employee(me.employee_id);
        self.decide_pending(tenant, me, request_id, decision, note)
            .await
            .map(ChatDecision::Decided)
    }

    /// [`Self::decide_request`] for any [`Decider`], e.g. a portal admin with no employee
    /// record.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, request_id = %request_id))]
    pub async fn decide_request_as(
        &self,
        tenant: TenantId,
        decider: Decider,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> CoreResult<Decided> {
        let note = decision_note(decision, note)?;
        // Most clicks after a card's first find it decided: those are answered from a read,
        // which on SQLite runs beside the writer instead of queueing for its lock.
        let mut read = self.tenant_read_tx(tenant).await?;
        let request = self
            .authorised_request(&mut read, tenant, request_id, decider)
            .await?;
        drop(read);
        if request.state != RequestState::Pending {
            return Ok(settled_before(request));
        }
        self.decide_pending(tenant, decider, request_id, decision, note)
            .await
    }

    /// Decide a request last seen pending, in the write transaction: authorised again and
    /// settled as a compare-and-set, so of two deciders racing only one wins.
    async fn decide_pending(
        &self,
        tenant: TenantId,
        decider: Decider,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> CoreResult<Decided> {
        let mut tx = self.tenant_tx(tenant).await?;
        let request = self
            .authorised_request(&mut tx, tenant, request_id, decider)
            .await?;
        if request.state != RequestState::Pending {
            return Ok(settled_before(request));
        }
        let mut decided = request.clone();
        decided.state = match decision {
            Decision::Approve | Decision::ApproveTravelEsim => RequestState::Approved,
            Decision::Deny => RequestState::Denied,
        };
        choose_roaming_option(&mut decided.details, decision)?;
        decided.decided_by = Some(decider.actor().to_text());
        decided.decided_at = Some(now());
        decided.decision_note = note.or(request.decision_note.clone());
        if !store::requests::settle(&mut tx, tenant, &decided, RequestState::Pending).await? {
            drop(tx);
            return Ok(settled_before(self.request(tenant, request_id).await?));
        }
        let action = match decision {
            Decision::Approve => "request.approved",
            Decision::ApproveTravelEsim => "request.approved_travel_esim",
            Decision::Deny => "request.denied",
        };
        let event = AuditEvent::new(
            tenant,
            &decider.actor(),
            action,
            subject(&request),
            to_json(&request),
            to_json(&decided),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Decided {
            request: decided,
            won: true,
        })
    }

    /// The request, once `decider` is found allowed to decide it.
    async fn authorised_request(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request_id: RequestId,
        decider: Decider,
    ) -> CoreResult<Request> {
        let request = self.request_in(tx, tenant, request_id).await?;
        self.authorise(tx, tenant, &request, decider).await?;
        Ok(request)
    }

    async fn request_in(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request_id: RequestId,
    ) -> CoreResult<Request> {
        required(
            store::requests::get(tx, tenant, request_id).await?,
            "request",
            request_id,
        )
    }

    /// May `decider` decide `request`? The routed approver or anyone above them in the
    /// manager chain; finance members for finance-routed requests; owners and admins for
    /// anything. Never the requester.
    async fn authorise(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request: &Request,
        decider: Decider,
    ) -> CoreResult<()> {
        let decider = match decider {
            Decider::Employee(employee) => employee,
            Decider::Member(user) => {
                if let Some(employee) = store::users::member(tx, tenant, user)
                    .await?
                    .and_then(|m| m.employee_id)
                {
                    let standing = standing(tx, tenant, employee).await?;
                    refuse_if_offboarded(tx, tenant, &standing).await?;
                }
                let role = store::users::role_in(tx, tenant, user).await?;
                return if matches!(role.as_deref(), Some("owner" | "admin")) {
                    Ok(())
                } else {
                    Err(CoreError::NotAuthorised(
                        "your account is not linked to an employee record, so it can only \
                         decide as an owner or admin"
                            .into(),
                    ))
                };
            }
        };
        let standing = standing(tx, tenant, decider).await?;
        self.authorise_standing(tx, tenant, request, &standing)
            .await
    }

    /// [`Self::authorise`] for an employee whose standing is already read.
    async fn authorise_standing(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request: &Request,
        standing: &Standing,
    ) -> CoreResult<()> {
        refuse_if_offboarded(tx, tenant, standing).await?;
        let decider = standing.employee_id;
        if decider == request.requester {
            return Err(CoreError::NotAuthorised(
                "you cannot decide your own request".into(),
            ));
        }
        let has = |r: &str| standing.roles.iter().any(|role| role == r);
        if has("owner") || has("admin") {
            return Ok(());
        }
        let allowed = match request.route {
            Route::Finance => has("finance"),
            Route::Manager => match request.approver {
                Some(approver) => {
                    approver == decider || self.is_above(tx, tenant, approver, decider).await?
                }
                None => false,
            },
            Route::Admins | Route::Auto => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(CoreError::NotAuthorised(
                "only the request's approver can decide it".into(),
            ))
        }
    }

    async fn is_above(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        employee: EmployeeId,
        candidate: EmployeeId,
    ) -> CoreResult<bool> {
        let mut current = employee;
        for _ in 0..MANAGER_CHAIN_LIMIT {
            let Some(person) = store::employees::get(tx, tenant, current).await? else {
                return Ok(false);
            };
            match person.manager_id {
                Some(manager) if manager == candidate => return Ok(true),
                Some(manager) => current = manager,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Move every request waiting on `leaver` to their nearest active manager (the admins when
    /// there is none), auditing each, inside the offboarding's transaction so nothing waits
    /// on someone who can no longer decide.
    pub(crate) async fn reroute_requests_of_leaver(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        actor: &Actor,
        leaver: EmployeeId,
    ) -> CoreResult<()> {
        for request in store::requests::list_pending_for_approver(tx, tenant, leaver).await? {
            let mut next = request.clone();
            next.approver =
                first_active_manager_above(tx, tenant, leaver, request.requester).await?;
            next.route = if next.approver.is_some() {
                Route::Manager
            } else {
                Route::Admins
            };
            next.routed_at = now();
            next.reminded_at = None;
            if store::requests::update_routing(tx, tenant, &next).await? {
                let event = AuditEvent::new(
                    tenant,
                    actor,
                    "request.rerouted",
                    subject(&request),
                    to_json(&request),
                    to_json(&next),
                );
                record(tx, &event).await?;
            }
        }
        Ok(())
    }

    /// Before re-running a request's fulfilment from a Retry button: the clicker needs the
    /// authority to decide the request (the requester never has it), and the request must
    /// be one that fulfilment can pick up. Records who asked.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, request_id = %request_id))]
    pub async fn authorise_retry(
        &self,
        tenant: TenantId,
        retrier: Decider,
        request_id: RequestId,
    ) -> CoreResult<Request> {
        let mut tx = self.tenant_tx(tenant).await?;
        let request = required(
            store::requests::get(&mut tx, tenant, request_id).await?,
            "request",
            request_id,
        )?;
        if retrier == Decider::Employee(request.requester) {
            return Err(CoreError::NotAuthorised(
                "only someone who can decide this request can retry it, not its requester".into(),
            ));
        }
        self.authorise(&mut tx, tenant, &request, retrier).await?;
        if !matches!(request.state, RequestState::Approved | RequestState::Failed) {
            return Err(CoreError::invalid(
                "request_id",
                format!("a {} request has nothing to retry", request.state.as_str()),
            ));
        }
        let event = AuditEvent::new(
            tenant,
            &retrier.actor(),
            "request.retry_requested",
            subject(&request),
            None,
            None,
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(request)
    }

    /// Carry out an approved request. Safe to call again: a fulfilled request returns what
    /// it made, and a new line is issued with the request as its issue key.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, request_id = %request_id))]
    pub async fn fulfil_request(
        &self,
        tenant: TenantId,
        request_id: RequestId,
    ) -> CoreResult<Fulfilment> {
        let request = self.request(tenant, request_id).await?;
        if !matches!(
            request.state,
            RequestState::Approved | RequestState::Fulfilled | RequestState::Failed
        ) {
            return Err(CoreError::invalid(
                "request_id",
                format!("a {} request cannot be fulfilled", request.state.as_str()),
            ));
        }
        match request.details.clone() {
            RequestDetails::NewLine { plan_id, .. } => {
                self.fulfil_new_line(tenant, &request, plan_id).await
            }
            RequestDetails::CapRaise { amount_minor } => {
                self.fulfil_cap_raise(tenant, &request, amount_minor).await
            }
            RequestDetails::Roaming {
                line_id,
                country,
                from,
                to,
                quote,
            } => match quote.and_then(|q| {
                q.travel
                    .filter(|_| q.chosen == Some(RoamingOption::TravelEsim))
            }) {
                Some(offer) => {
                    self.fulfil_travel_esim(tenant, &request, &offer, &country, to)
                        .await
                }
                None => {
                    let grant = roaming_grant(tenant, &request, line_id, country, from, to);
                    self.fulfil_roaming(tenant, &request, grant).await
                }
            },
        }
    }

    /// Issue the line (or retry the one that failed). The request is fulfilled once the line
    /// is ready; a provider that did not answer in time leaves it approved, to try again.
    async fn fulfil_new_line(
        &self,
        tenant: TenantId,
        request: &Request,
        plan_id: PlanId,
    ) -> CoreResult<Fulfilment> {
        let actor = Actor::Employee(request.requester);
        let issue = IssueLine {
            employee_id: request.requester,
            plan_id,
            issue_key: format!("request:{}", request.id),
        };
        let issued = match request.state {
            RequestState::Failed => {
                self.retry_request_line(tenant, &actor, &issue.issue_key)
                    .await
            }
            _ => self.issue_line(tenant, &actor, issue).await,
        };
        match issued {
            Ok(line) if line.state == LineState::Ready || line.state.is_live() => {
                self.finish_request(tenant, request, RequestState::Fulfilled, None)
                    .await?;
                Ok(Fulfilment::Line(line))
            }
            Ok(line) => Ok(Fulfilment::Line(line)),
            Err(e @ CoreError::ProviderTimeout(_)) => Err(e),
            Err(e) => {
                self.finish_request(tenant, request, RequestState::Failed, Some(e.to_string()))
                    .await?;
                Err(e)
            }
        }
    }

    /// Raise the requester's cap for this billing period, once per request.
    async fn fulfil_cap_raise(
        &self,
        tenant: TenantId,
        request: &Request,
        amount_minor: i64,
    ) -> CoreResult<Fulfilment> {
        let period = billing_period(now().date());
        let mut tx = self.tenant_tx(tenant).await?;
        let tenant_row = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?;
        let raised = store::policy::insert_cap_raise(
            &mut tx,
            tenant,
            request.requester,
            &period,
            amount_minor,
            request.id,
        )
        .await?;
        if raised {
            let event = AuditEvent::new(
                tenant,
                &Actor::Employee(request.requester),
                "cap.raised",
                ("employee", request.requester.to_string()),
                None,
                Some(
                    json!({ "period": period, "amount_minor": amount_minor, "request_id": request.id }),
                ),
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.finish_request(tenant, request, RequestState::Fulfilled, None)
            .await?;
        Ok(Fulfilment::CapRaised {
            period,
            amount: tenant_row.money(amount_minor),
        })
    }

    /// Store the roaming grant, once per request: active now, or scheduled for the trip.
    async fn fulfil_roaming(
        &self,
        tenant: TenantId,
        request: &Request,
        grant: RoamingGrant,
    ) -> CoreResult<Fulfilment> {
        let mut tx = self.tenant_tx(tenant).await?;
        if store::policy::insert_grant(&mut tx, tenant, &grant).await? {
            let action = if grant.state == "active" {
                "roaming.enabled"
            } else {
                "roaming.scheduled"
            };
            let event = AuditEvent::new(
                tenant,
                &Actor::Employee(request.requester),
                action,
                ("line", grant.line_id.to_string()),
                None,
                to_json(&grant),
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        self.finish_request(tenant, request, RequestState::Fulfilled, None)
            .await?;
        Ok(Fulfilment::Roaming(grant))
    }

    /// Order the quote's travel package as a second line for the requester, through the
    /// same idempotent path as any new line (the request is its issue key), and note that it
    /// ends with the trip. The home line gets no roaming grant: its roaming stays as policy
    /// says for the whole trip.
    async fn fulfil_travel_esim(
        &self,
        tenant: TenantId,
        request: &Request,
        offer: &TravelOffer,
        country: &str,
        ends_on: Date,
    ) -> CoreResult<Fulfilment> {
        let fulfilment = self.fulfil_new_line(tenant, request, offer.plan_id).await?;
        if let Fulfilment::Line(line) = &fulfilment {
            let travel = TravelEsim {
                line_id: line.id,
                tenant_id: tenant,
                employee_id: request.requester,
                request_id: request.id,
                country: country.to_owned(),
                ends_on,
                state: TravelEsimState::Active,
            };
            let mut tx = self.tenant_tx(tenant).await?;
            if store::travel_esims::insert_if_new(&mut tx, tenant, &travel).await? {
                let event = AuditEvent::new(
                    tenant,
                    &Actor::Employee(request.requester),
                    "line.travel_esim_issued",
                    ("line", line.id.to_string()),
                    None,
                    to_json(&travel),
                );
                record(&mut tx, &event).await?;
            }
            tx.commit().await?;
        }
        Ok(fulfilment)
    }

    async fn retry_request_line(
        &self,
        tenant: TenantId,
        actor: &Actor,
        issue_key: &str,
    ) -> CoreResult<Line> {
        let line = self.line_by_issue_key(tenant, issue_key).await?;
        if line.state == LineState::Failed {
            self.retry_line(tenant, actor, line.id).await
        } else {
            Ok(line)
        }
    }

    async fn finish_request(
        &self,
        tenant: TenantId,
        request: &Request,
        state: RequestState,
        failure: Option<String>,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        let current = required(
            store::requests::get(&mut tx, tenant, request.id).await?,
            "request",
            request.id,
        )?;
        if current.state == state {
            return Ok(());
        }
        let mut next = current.clone();
        next.state = state;
        next.failure_reason = failure;
        if store::requests::settle(&mut tx, tenant, &next, current.state).await? {
            let action = match state {
                RequestState::Fulfilled => "request.fulfilled",
                _ => "request.failed",
            };
            let event = AuditEvent::new(
                tenant,
                &Actor::System,
                action,
                subject(&current),
                to_json(&current),
                to_json(&next),
            );
            record(&mut tx, &event).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The pending requests `decider` may decide, by the same rule [`Self::decide_request`]
    /// enforces, oldest first.
    pub async fn decidable_requests(
        &self,
        tenant: TenantId,
        decider: Decider,
    ) -> CoreResult<Vec<Request>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        let pending = store::requests::list_pending_in(&mut tx, tenant).await?;
        let mut decidable = Vec::new();
        for request in pending {
            match self.authorise(&mut tx, tenant, &request, decider).await {
                Ok(()) => decidable.push(request),
                Err(CoreError::NotAuthorised(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(decidable)
    }

    /// The latest decided requests of the tenant, newest first.
    pub async fn recent_decisions(&self, tenant: TenantId, limit: i64) -> CoreResult<Vec<Request>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::requests::list_recently_decided(&mut tx, tenant, limit).await?)
    }

    pub async fn request(&self, tenant: TenantId, id: RequestId) -> CoreResult<Request> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        required(
            store::requests::get(&mut tx, tenant, id).await?,
            "request",
            id,
        )
    }

    pub async fn requests_of(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<Vec<Request>> {
        let mut tx = self.tenant_read_tx(tenant).await?;
        Ok(store::requests::list_for_employee(&mut tx, tenant, employee).await?)
    }

    /// Adapters record where they posted about a request, to update those messages later.
    pub async fn set_request_chat_refs(
        &self,
        tenant: TenantId,
        id: RequestId,
        refs: &super::ChatRefs,
    ) -> CoreResult<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        store::requests::set_chat_refs(&mut tx, tenant, id, refs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remind approvers of requests waiting too long, escalate one level up, expire the
    /// stale. Runs across tenants; each change is audited.
    /// Approved requests still waiting to be carried out `grace` after their decision. The
    /// replica that took the decision fulfils at once; one that died or was stopped on the
    /// way leaves its requests here for the periodic sweep, which fulfils them again (safe:
    /// the request is the line's issue key, so no second line or order is made).
    pub async fn approved_left_behind(
        &self,
        at: OffsetDateTime,
        grace: time::Duration,
    ) -> CoreResult<Vec<Request>> {
        let mut tx = self.store().system_read().await?;
        Ok(store::requests::list_approved_before(&mut tx, at - grace).await?)
    }

    pub async fn sweep_requests(&self, at: OffsetDateTime) -> CoreResult<Vec<SweepEvent>> {
        let mut tx = self.store().system_read().await?;
        let pending = store::requests::list_pending(&mut tx).await?;
        drop(tx);
        let mut events = Vec::new();
        for request in pending {
            if let Some(event) = self.sweep_one(request, at).await? {
                events.push(event);
            }
        }
        events.extend(self.take_reroutes().await?);
        Ok(events)
    }

    /// The requests moved to a new approver since the last sweep (see
    /// [`reroute_to_new_manager`]), each told once; those settled meanwhile are left out.
    async fn take_reroutes(&self) -> CoreResult<Vec<SweepEvent>> {
        let mut tx = self.store().system().await?;
        let taken = store::requests::take_reroutes(&mut tx).await?;
        tx.commit().await?;
        let mut events = Vec::with_capacity(taken.len());
        for (tenant, id) in taken {
            let request = self.request(tenant, id).await?;
            if request.state != RequestState::Pending {
                continue;
            }
            let moved_to = match request.approver {
                Some(approver) => self.employee(tenant, approver).await?.full_name(),
                None => "the admins".to_owned(),
            };
            let approvers = self.approvers_for(tenant, &request).await?;
            events.push(SweepEvent::Rerouted {
                request,
                approvers,
                moved_to,
            });
        }
        Ok(events)
    }

    async fn sweep_one(
        &self,
        request: Request,
        at: OffsetDateTime,
    ) -> CoreResult<Option<SweepEvent>> {
        let tenant = request.tenant_id;
        let mut tx = self.tenant_tx(tenant).await?;
        let settings = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?
        .settings;
        if at >= request.expires_at {
            let mut expired = request.clone();
            expired.state = RequestState::Expired;
            expired.decided_by = Some("system".into());
            expired.decided_at = Some(at);
            expired.decision_note = Some("nobody decided in time".into());
            if !store::requests::settle(&mut tx, tenant, &expired, RequestState::Pending).await? {
                return Ok(None);
            }
            record(
                &mut tx,
                &AuditEvent::new(
                    tenant,
                    &Actor::System,
                    "request.expired",
                    subject(&request),
                    None,
                    to_json(&expired),
                ),
            )
            .await?;
            tx.commit().await?;
            return Ok(Some(SweepEvent::Expired { request: expired }));
        }
        let waited = at - request.routed_at;
        let mut next = request.clone();
        let event_kind;
        if waited >= Duration::hours(settings.approval_escalate_after_hours) {
            match self.escalation_target(&mut tx, tenant, &request).await? {
                Some((route, approver)) => {
                    next.route = route;
                    next.approver = approver;
                    next.escalations += 1;
                    next.routed_at = at;
                    next.reminded_at = None;
                    event_kind = "request.escalated";
                }
                None if request.reminded_at.is_none_or(|r| {
                    at - r >= Duration::hours(settings.approval_remind_after_hours)
                }) =>
                {
                    next.reminded_at = Some(at);
                    event_kind = "request.reminded";
                }
                None => return Ok(None),
            }
        } else if waited >= Duration::hours(settings.approval_remind_after_hours)
            && request.reminded_at.is_none()
        {
            next.reminded_at = Some(at);
            event_kind = "request.reminded";
        } else {
            return Ok(None);
        }
        if !store::requests::update_routing(&mut tx, tenant, &next).await? {
            return Ok(None);
        }
        record(
            &mut tx,
            &AuditEvent::new(
                tenant,
                &Actor::System,
                event_kind,
                subject(&request),
                to_json(&request),
                to_json(&next),
            ),
        )
        .await?;
        tx.commit().await?;
        let approvers = self.approvers_for(tenant, &next).await?;
        Ok(Some(if event_kind == "request.escalated" {
            SweepEvent::Escalated {
                request: next,
                approvers,
            }
        } else {
            SweepEvent::Reminded {
                request: next,
                approvers,
            }
        }))
    }

    /// One level up: the approver's nearest active manager; with no one above, the admins; finance
    /// escalates to the admins; admins have nowhere further to go.
    async fn escalation_target(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request: &Request,
    ) -> CoreResult<Option<(Route, Option<EmployeeId>)>> {
        Ok(match request.route {
            Route::Manager => {
                let above = match request.approver {
                    Some(approver) => {
                        first_active_manager_above(tx, tenant, approver, request.requester).await?
                    }
                    None => None,
                };
                match above {
                    Some(manager) => Some((Route::Manager, Some(manager))),
                    None => Some((Route::Admins, None)),
                }
            }
            Route::Finance => Some((Route::Admins, None)),
            Route::Admins | Route::Auto => None,
        })
    }

    /// Start scheduled roaming grants and end finished ones, auditing each way.
    pub async fn sweep_roaming_grants(&self, today: Date) -> CoreResult<Vec<RoamingGrant>> {
        let mut tx = self.store().system_read().await?;
        let due = store::policy::grants_due(&mut tx, today).await?;
        drop(tx);
        let mut changed = Vec::new();
        for mut grant in due {
            let (to, action) = if grant.state == "scheduled" && grant.ends_on >= today {
                ("active", "roaming.enabled")
            } else {
                ("ended", "roaming.reverted")
            };
            let mut tx = self.tenant_tx(grant.tenant_id).await?;
            if store::policy::set_grant_state(&mut tx, grant.tenant_id, grant.id, &grant.state, to)
                .await?
            {
                let before = to_json(&grant);
                grant.state = to.to_owned();
                let event = AuditEvent::new(
                    grant.tenant_id,
                    &Actor::System,
                    action,
                    ("line", grant.line_id.to_string()),
                    before,
                    to_json(&grant),
                );
                record(&mut tx, &event).await?;
                tx.commit().await?;
                changed.push(grant);
            }
        }
        Ok(changed)
    }

    /// The names and numbers a card about `request` shows.
    pub async fn card_context(
        &self,
        tenant: TenantId,
        request: &Request,
    ) -> CoreResult<CardContext> {
        let mut ctx = self.card_names(tenant, request).await?;
        ctx.usage = Some(self.usage_summary(tenant, request.requester).await?);
        Ok(ctx)
    }

    /// A card's names (requester, plan, decider) without the requester's usage: what a
    /// settled request shows, at a fraction of the cost.
    pub async fn card_names(&self, tenant: TenantId, request: &Request) -> CoreResult<CardContext> {
        // One read transaction for the three lookups: each transaction costs its own round
        // trips (and, on SQLite, hand-offs to a thread).
        let mut tx = self.tenant_read_tx(tenant).await?;
        self.card_names_in(&mut tx, tenant, request).await
    }

    async fn card_names_in(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        request: &Request,
    ) -> CoreResult<CardContext> {
        // The requester and an employee who decided, in one statement.
        let decided_by = request.decided_by.as_deref();
        let mut named = vec![request.requester];
        named.extend(decided_by.and_then(actor_employee));
        let people = store::employees::people(tx, tenant, &named).await?;
        let requester = required(
            people.iter().find(|p| p.id == request.requester),
            "employee",
            request.requester,
        )?;
        let plan_label = match &request.details {
            RequestDetails::NewLine { plan_id, .. } => store::plans::get(tx, tenant, *plan_id)
                .await?
                .as_ref()
                .map(plan_label),
            _ => None,
        };
        let decided_by_name = match decided_by {
            Some(actor) => Some(actor_name_among(tx, tenant, actor, &people).await?),
            None => None,
        };
        Ok(CardContext {
            requester_name: requester.full_name(),
            plan_label,
            usage: None,
            decided_by_name,
        })
    }

    /// An employee's usage, spend and cap for the current billing period.
    pub async fn usage_summary(
        &self,
        tenant: TenantId,
        employee: EmployeeId,
    ) -> CoreResult<UsageSummary> {
        let today = now().date();
        let period_start = today.replace_day(1).expect("day 1 exists");
        let mut tx = self.tenant_read_tx(tenant).await?;
        let tenant_row = required(
            store::tenants::get(&mut tx, tenant).await?,
            "tenant",
            tenant,
        )?;
        let person = required(
            store::employees::get(&mut tx, tenant, employee).await?,
            "employee",
            employee,
        )?;
        let spent = store::usage::employee_period_spend(
            &mut tx,
            tenant,
            employee,
            &billing_period(period_start),
        )
        .await?;
        let data = store::usage::employee_data_between(
            &mut tx,
            tenant,
            employee,
            today - Duration::days(30),
            today,
        )
        .await?;
        let standing = self
            .budget_standing(&mut tx, tenant, &person, &billing_period(today))
            .await?;
        let money = |minor: i64| tenant_row.money(minor);
        let cap = standing
            .iter()
            .find(|(cap, _)| matches!(cap.scope, CapScope::Employee(_)))
            .map(|(_, check)| money(check.limit_minor));
        let mut names = ScopeNames::default();
        let mut shared_budgets = Vec::new();
        for (cap, check) in &standing {
            if !matches!(cap.scope, CapScope::Employee(_)) {
                shared_budgets.push(SharedBudget {
                    name: names.name(&mut tx, tenant, cap.scope).await?,
                    spent: money(check.spent_minor),
                    cap: money(check.limit_minor),
                });
            }
        }
        let lines = store::lines::list_for_employee(&mut tx, tenant, employee).await?;
        Ok(UsageSummary {
            data_last_30_days: Bytes(data),
            spent_this_period: tenant_row.money(spent),
            cap,
            shared_budgets,
            days_left_in_period: days_left_in_month(today),
            lines,
        })
    }
}

/// What the policy pre-check knows about the requester and what they ask for.
struct RequestFacts {
    tenant: Tenant,
    requester: Employee,
    live_lines: usize,
    plan: Option<Plan>,
    roaming_rule: Option<RoamingRule>,
}

impl RequestFacts {
    /// Refuses a plan that does not exist, and roaming on a line that is not the
    /// requester's or not working.
    async fn load(
        tx: &mut Tx,
        tenant: TenantId,
        requester: EmployeeId,
        details: &RequestDetails,
    ) -> CoreResult<Self> {
        let tenant_row = required(store::tenants::get(tx, tenant).await?, "tenant", tenant)?;
        let requester = required(
            store::employees::get(tx, tenant, requester).await?,
            "employee",
            requester,
        )?;
        let lines = store::lines::list_for_employee(tx, tenant, requester.id).await?;
        let plan = match details {
            RequestDetails::NewLine { plan_id, .. } => Some(required(
                store::plans::get(tx, tenant, *plan_id).await?,
                "plan",
                plan_id,
            )?),
            _ => None,
        };
        let roaming_rule = match details {
            RequestDetails::Roaming {
                line_id, country, ..
            } => {
                if !lines.iter().any(|l| l.id == *line_id && l.state.is_live()) {
                    return Err(CoreError::invalid(
                        "line_id",
                        "that is not one of your working lines",
                    ));
                }
                store::policy::roaming_rule(tx, tenant, country).await?
            }
            _ => None,
        };
        Ok(Self {
            tenant: tenant_row,
            requester,
            live_lines: lines.iter().filter(|l| l.state.is_live()).count(),
            plan,
            roaming_rule,
        })
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            settings: &self.tenant.settings,
            requester: &self.requester,
            live_lines: self.live_lines,
            plan: self.plan.as_ref(),
            roaming_rule: self.roaming_rule,
            currency: self.tenant.currency,
        }
    }
}

fn checked_reason(reason: &str) -> CoreResult<String> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() {
        return Err(CoreError::invalid("reason", "say why you need it"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(CoreError::invalid(
            "reason",
            format!("keep it under {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(reason)
}

/// The request as filed, pending and not yet routed; it expires after the tenant's approval
/// window.
fn pending_request(
    tenant: TenantId,
    known: &RequestFacts,
    cmd: SubmitRequest,
    reason: String,
    at: OffsetDateTime,
) -> Request {
    Request {
        id: RequestId::new(),
        tenant_id: tenant,
        requester: known.requester.id,
        details: cmd.details,
        reason,
        state: RequestState::Pending,
        route: Route::Auto,
        approver: None,
        escalations: 0,
        decided_by: None,
        decided_at: None,
        decision_note: None,
        failure_reason: None,
        chat_refs: Default::default(),
        dedupe_key: cmd.dedupe_key,
        created_at: at,
        routed_at: at,
        reminded_at: None,
        expires_at: at + Duration::hours(known.tenant.settings.approval_expire_after_hours),
    }
}

/// Decide the request as the policy did, or route it: to the requester's nearest active
/// manager, or to the admins when there is none. Returns the audit action.
async fn apply_verdict(
    tx: &mut Tx,
    tenant: TenantId,
    request: &mut Request,
    verdict: &Verdict,
) -> CoreResult<&'static str> {
    let decided_by_policy = |request: &mut Request, state: RequestState, why: &str| {
        request.state = state;
        request.decided_by = Some("policy".into());
        request.decided_at = Some(request.created_at);
        request.decision_note = Some(why.to_owned());
    };
    Ok(match verdict {
        Verdict::AutoApprove { why } => {
            decided_by_policy(request, RequestState::Approved, why);
            "request.auto_approved"
        }
        Verdict::AutoDeny { why } => {
            decided_by_policy(request, RequestState::Denied, why);
            "request.auto_denied"
        }
        Verdict::Route { to, why } => {
            request.route = *to;
            if *to == Route::Manager {
                request.approver =
                    first_active_manager_above(tx, tenant, request.requester, request.requester)
                        .await?;
                if request.approver.is_none() {
                    request.route = Route::Admins;
                }
            }
            request.decision_note = Some(why.clone());
            "request.routed"
        }
    })
}

/// The requester submitted it; the policy decided or routed it.
async fn record_submission(
    tx: &mut Tx,
    tenant: TenantId,
    request: &Request,
    action: &str,
    verdict: &Verdict,
) -> CoreResult<()> {
    let submitted = AuditEvent::new(
        tenant,
        &Actor::Employee(request.requester),
        "request.submitted",
        subject(request),
        None,
        to_json(request),
    );
    record(tx, &submitted).await?;
    let verdict_event = AuditEvent::new(
        tenant,
        &Actor::System,
        action,
        subject(request),
        None,
        to_json(verdict),
    );
    record(tx, &verdict_event).await?;
    Ok(())
}

/// Record which way a roaming request is approved in its quote; refuse the travel eSIM for
/// a request that has no travel offer (or is not about roaming).
fn choose_roaming_option(details: &mut RequestDetails, decision: Decision) -> CoreResult<()> {
    let quote = match details {
        RequestDetails::Roaming { quote, .. } => quote.as_mut(),
        _ => None,
    };
    match (decision, quote) {
        (Decision::ApproveTravelEsim, Some(quote)) if quote.travel.is_some() => {
            quote.chosen = Some(RoamingOption::TravelEsim);
            Ok(())
        }
        (Decision::ApproveTravelEsim, _) => Err(CoreError::invalid(
            "decision",
            "this request has no travel eSIM offer to approve",
        )),
        (Decision::Approve, Some(quote)) => {
            quote.chosen = Some(RoamingOption::HomeLine);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The grant a roaming request asks for: active when the trip has started.
fn roaming_grant(
    tenant: TenantId,
    request: &Request,
    line_id: LineId,
    country: String,
    from: Date,
    to: Date,
) -> RoamingGrant {
    let today = now().date();
    RoamingGrant {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant,
        line_id,
        country,
        starts_on: from,
        ends_on: to,
        request_id: Some(request.id),
        state: if from <= today {
            "active".into()
        } else {
            "scheduled".into()
        },
    }
}

/// The nearest active person above `employee` in the manager chain, never `requester`.
async fn first_active_manager_above(
    tx: &mut Tx,
    tenant: TenantId,
    employee: EmployeeId,
    requester: EmployeeId,
) -> CoreResult<Option<EmployeeId>> {
    Ok(store::employees::manager_chain(tx, tenant, employee)
        .await?
        .into_iter()
        .find(|m| m.status == EmployeeStatus::Active && m.id != requester)
        .map(|m| m.id))
}

/// The answer to a decider who found `request` already settled: someone else won.
fn settled_before(request: Request) -> Decided {
    Decided {
        request,
        won: false,
    }
}

/// `employee`'s standing. Someone not in the directory stands as an active employee with
/// no roles: they have no authority either, and the checks after this say so.
async fn standing(tx: &mut Tx, tenant: TenantId, employee: EmployeeId) -> CoreResult<Standing> {
    Ok(store::employees::standing(tx, tenant, employee)
        .await?
        .unwrap_or(Standing {
            employee_id: employee,
            status: EmployeeStatus::Active,
            roles: Vec::new(),
        }))
}

async fn refuse_if_offboarded(
    tx: &mut Tx,
    tenant: TenantId,
    standing: &Standing,
) -> CoreResult<()> {
    if standing.status == EmployeeStatus::Active {
        return Ok(());
    }
    let person = required(
        store::employees::get(tx, tenant, standing.employee_id).await?,
        "employee",
        standing.employee_id,
    )?;
    let on = crate::organisation::offboarding::offboarded_on(tx, tenant, &person).await?;
    Err(CoreError::NotAuthorised(format!(
        "you were offboarded on {on}, so you can no longer decide requests"
    )))
}

fn validate_details(details: &RequestDetails, today: Date) -> CoreResult<()> {
    match details {
        RequestDetails::NewLine {
            wanted_date: Some(date),
            ..
        } if *date < today => Err(CoreError::invalid("wanted_date", "is in the past")),
        RequestDetails::CapRaise { amount_minor } if *amount_minor <= 0 => {
            Err(CoreError::invalid("amount", "must be more than zero"))
        }
        RequestDetails::Roaming { from, to, .. } if to < from => {
            Err(CoreError::invalid("to", "the trip ends before it starts"))
        }
        RequestDetails::Roaming { to, .. } if *to < today => {
            Err(CoreError::invalid("to", "the trip is already over"))
        }
        RequestDetails::Roaming { country, .. }
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) =>
        {
            Err(CoreError::invalid(
                "country",
                format!("{country:?} is not a two-letter country code like FR"),
            ))
        }
        _ => Ok(()),
    }
}

pub use crate::spend::pricing::billing_period;

fn days_left_in_month(today: Date) -> i64 {
    let next_month = if today.month() == time::Month::December {
        Date::from_calendar_date(today.year() + 1, time::Month::January, 1)
    } else {
        Date::from_calendar_date(today.year(), today.month().next(), 1)
    }
    .expect("the first of a month exists");
    (next_month - today).whole_days()
}

fn subject(request: &Request) -> (&'static str, String) {
    ("request", request.id.to_string())
}

/// "US 5GB · 20.00 USD/month"
pub fn plan_label(plan: &crate::lines::plan::Plan) -> String {
    match plan.price {
        Some(price) => format!("{} · {price}/month", plan.name),
        None => plan.name.clone(),
    }
}

/// The requester's manager changed from `old` to `new`: their pending requests waiting on
/// the old manager now wait on the new one (on the admins when there is no active one), in
/// the caller's transaction. Each is audited and noted for chat, where the approval sweep
/// marks the old cards "moved to …" and posts new ones. Returns the requests moved.
pub(crate) async fn reroute_to_new_manager(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    requester: EmployeeId,
    old: Option<EmployeeId>,
    new: Option<EmployeeId>,
    at: OffsetDateTime,
) -> CoreResult<Vec<Request>> {
    let Some(old) = old else {
        return Ok(Vec::new());
    };
    let new_manager = match new {
        Some(id) if id != requester => store::employees::get(tx, tenant, id)
            .await?
            .filter(|m| m.status == EmployeeStatus::Active)
            .map(|m| m.id),
        _ => None,
    };
    let mut moved = Vec::new();
    for request in store::requests::list_pending_of(tx, tenant, requester).await? {
        if request.route != Route::Manager || request.approver != Some(old) {
            continue;
        }
        let next = Request {
            route: if new_manager.is_some() {
                Route::Manager
            } else {
                Route::Admins
            },
            approver: new_manager,
            routed_at: at,
            reminded_at: None,
            ..request.clone()
        };
        if !store::requests::update_routing(tx, tenant, &next).await? {
            continue;
        }
        store::requests::note_reroute(tx, tenant, request.id, Some(old), at).await?;
        record(
            tx,
            &AuditEvent::new(
                tenant,
                actor,
                "request.rerouted",
                subject(&request),
                to_json(&request),
                to_json(&next),
            ),
        )
        .await?;
        moved.push(next);
    }
    Ok(moved)
}

/// A decision's note, trimmed; a denial must say why.
fn decision_note(decision: Decision, note: Option<String>) -> CoreResult<Option<String>> {
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if decision == Decision::Deny && note.is_none() {
        return Err(CoreError::invalid("reason", "say why you deny the request"));
    }
    Ok(note)
}
