//! Delivering core outcomes: approval cards to approvers (DM, or the approvals channel),
//! updates of every copy of a card after a decision, the requester's messages, the eSIM with
//! its QR code, reminders, escalations, expiries and finance alerts.
//!
//! Where cards were posted is kept on the request (`chat_refs`, per platform), so any later
//! event — a decision in another copy, in the portal, or by the sweep — updates all of them.

use lineup_core::CoreError;
use lineup_core::ids::{EmployeeId, RequestId, TenantId};
use lineup_core::lines::line::activation::Revealer;
use lineup_core::lines::request::commands::{Fulfilment, Submitted, SweepEvent};
use lineup_core::lines::request::{PlatformRefs, Request, RequestDetails, RequestState, cards};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;

use super::{ChatFlows, platform_named};

/// How long after its decision an approved request is left to the replica that decided it
/// before the sweep carries it out instead. Above a normal order's time (seconds), so a
/// healthy replica almost always finishes (and tells the requester) first.
const FULFILMENT_GRACE: time::Duration = time::Duration::seconds(30);
use crate::chat::{MessageRef, TransportError};

impl ChatFlows {
    /// A new request: cards to whoever decides, and straight to fulfilment when policy
    /// approved it (with an FYI to the manager).
    pub async fn announce(&self, ws: &Workspace, platform: Platform, submitted: Submitted) {
        let request = submitted.request;
        let outcome = async {
            self.save_refs(ws, request.id, platform, |_| {}).await?;
            let ctx = self.lineup.card_context(ws.tenant, &request).await?;
            match request.state {
                RequestState::Pending => {
                    let card = cards::approval_card(&request, &ctx);
                    let posted = self
                        .post_cards(ws, platform, &submitted.approvers, &card)
                        .await;
                    self.save_refs(ws, request.id, platform, |refs| refs.cards = posted)
                        .await?;
                    self.catch_up_cards(ws, request.id).await?;
                }
                RequestState::Approved => {
                    let requester = self.lineup.employee(ws.tenant, request.requester).await?;
                    if let Some(manager) = requester.manager_id {
                        let fyi = Message::text(format!(
                            "FYI: policy approved {} for {}.",
                            cards::what(&request, &ctx),
                            ctx.requester_name
                        ))
                        .field("Why", request.decision_note.clone().unwrap_or_default());
                        self.send_to_employee(ws, platform, manager, &fyi).await;
                    }
                    self.fulfil(ws, platform, request.id).await;
                }
                _ => {}
            }
            Ok::<_, CoreError>(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(request = %request.id, error = %e, "announcing a request failed");
        }
    }

    /// After the winning decision: every card copy updated in place, the requester told,
    /// and an approved request carried out — its order placed at once, not after the
    /// messages (each a round trip to the chat platform).
    pub async fn after_decision(&self, ws: &Workspace, platform: Platform, request: Request) {
        let tell = async {
            if let Err(e) = self.refresh_cards(ws, request.id).await {
                tracing::error!(request = %request.id, error = %e, "updating cards failed");
            }
            self.tell_requester(ws, platform, &request).await;
        };
        let carry_out = async {
            if request.state == RequestState::Approved {
                self.fulfil(ws, platform, request.id).await;
            }
        };
        tokio::join!(tell, carry_out);
    }

    /// A decision made outside chat (in the portal): where the request has a chat
    /// workspace (the one it was made on first, else any connected one), update every card,
    /// tell the requester and carry out an approved request with delivery by chat; with no
    /// workspace, still carry out an approved request.
    pub async fn after_outside_decision(&self, tenant: TenantId, request_id: RequestId) {
        let request = match self.lineup.request(tenant, request_id).await {
            Ok(request) => request,
            Err(e) => {
                tracing::error!(request = %request_id, error = %e, "loading a decided request failed");
                return;
            }
        };
        let mut platforms: Vec<Platform> = request.chat_refs.origin().into_iter().collect();
        platforms.extend(
            self.transports
                .keys()
                .filter_map(|name| platform_named(name)),
        );
        for platform in platforms {
            match self.lineup.workspace_of_tenant(tenant, platform).await {
                Ok(Some(ws)) => return self.after_decision(&ws, platform, request).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%tenant, platform = platform.as_str(), error = %e, "looking up a chat workspace failed")
                }
            }
        }
        if request.state == RequestState::Approved
            && let Err(e) = self.lineup.fulfil_request(tenant, request_id).await
        {
            tracing::warn!(%tenant, request = %request_id, error = %e, "fulfilling an approved request failed");
        }
    }

    /// Carry out an approved request, narrating progress under the cards.
    pub async fn fulfil(&self, ws: &Workspace, platform: Platform, request_id: RequestId) {
        let Ok(request) = self.lineup.request(ws.tenant, request_id).await else {
            return;
        };
        let narrate = async {
            if matches!(request.details, RequestDetails::NewLine { .. }) {
                self.reply_under_cards(ws, &request, &Message::text("Provisioning the eSIM…"))
                    .await;
            }
        };
        let (_, fulfilled) =
            tokio::join!(narrate, self.lineup.fulfil_request(ws.tenant, request_id));
        match fulfilled {
            Ok(Fulfilment::Line(line)) => {
                let plans = self.lineup.plans(ws.tenant).await.unwrap_or_default();
                let Some(plan) = plans.iter().find(|p| p.id == line.plan_id) else {
                    return;
                };
                let iccid = line
                    .iccid
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let carrier = self.lineup.carrier_of(ws.tenant, &line).await;
                let revealed = self
                    .lineup
                    .reveal_activation_code(ws.tenant, Revealer::Holder(request.requester), line.id)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|code| cards::delivery_message(&line, plan, &code))
                    .map(|message| cards::naming_carrier(message, &carrier));
                match revealed {
                    Ok(message) => {
                        // The requester first: they are the one waiting.
                        self.send_to_employee(ws, platform, request.requester, &message)
                            .await;
                        let note = format!(
                            "Ready: the eSIM (ICCID {iccid}, carrier {carrier}) was sent to the requester."
                        );
                        self.reply_under_cards(ws, &request, &Message::text(note))
                            .await;
                    }
                    Err(e) => {
                        tracing::error!(line = %line.id, error = %e, "building the eSIM message failed")
                    }
                }
            }
            Ok(Fulfilment::CapRaised { period, amount }) => {
                let message = Message::text(format!(
                    "Your monthly cap is raised by {amount} for {period}."
                ));
                self.send_to_employee(ws, platform, request.requester, &message)
                    .await;
            }
            Ok(Fulfilment::Roaming(grant)) => {
                let message = Message::text(format!(
                    "Roaming in {} is approved from {} to {}. It switches off by itself after the trip.",
                    grant.country, grant.starts_on, grant.ends_on
                ));
                self.send_to_employee(ws, platform, request.requester, &message)
                    .await;
            }
            Err(e) => {
                tracing::warn!(request = %request_id, error = %e, "fulfilling a request failed");
                let Ok(failed) = self.lineup.request(ws.tenant, request_id).await else {
                    return;
                };
                let Ok(ctx) = self.lineup.card_context(ws.tenant, &failed).await else {
                    return;
                };
                let card = if failed.state == RequestState::Failed {
                    cards::failure_card(&failed, &ctx)
                } else {
                    // Still running at the provider: say so, without a retry button.
                    Message::text(format!(
                        "The provider is still working on {}; we'll finish it in the background.",
                        cards::what(&failed, &ctx)
                    ))
                };
                self.send_to_employee(ws, platform, failed.requester, &card)
                    .await;
                self.reply_under_cards(ws, &failed, &card).await;
            }
        }
    }

    /// The periodic sweep: reminders, escalations and expiries delivered where each request
    /// was made, roaming grants switched on and off on their dates, and approved requests a
    /// stopped or killed replica left unfulfilled carried out.
    pub async fn run_sweeps(&self, now: time::OffsetDateTime) -> Result<usize, CoreError> {
        let events = self.lineup.sweep_requests(now).await?;
        let count = events.len();
        for event in events {
            let request = match &event {
                SweepEvent::Reminded { request, .. }
                | SweepEvent::Escalated { request, .. }
                | SweepEvent::Rerouted { request, .. }
                | SweepEvent::Expired { request } => request,
            };
            let Some(platform) = request.chat_refs.origin() else {
                continue;
            };
            match self
                .lineup
                .workspace_of_tenant(request.tenant_id, platform)
                .await?
            {
                Some(ws) => self.deliver_sweep(&ws, platform, event).await,
                None => {
                    tracing::debug!(tenant = %request.tenant_id, "no workspace to deliver a sweep event to")
                }
            }
        }
        self.lineup.sweep_roaming_grants(now.date()).await?;
        self.lineup.sweep_travel_esims(now.date()).await?;
        for request in self
            .lineup
            .approved_left_behind(now, FULFILMENT_GRACE)
            .await?
        {
            let tenant = request.tenant_id;
            let workspace = match request.chat_refs.origin() {
                Some(platform) => self
                    .lineup
                    .workspace_of_tenant(tenant, platform)
                    .await?
                    .map(|ws| (ws, platform)),
                None => None,
            };
            match workspace {
                Some((ws, platform)) => self.fulfil(&ws, platform, request.id).await,
                None => {
                    if let Err(e) = self.lineup.fulfil_request(tenant, request.id).await {
                        tracing::warn!(%tenant, request = %request.id, error = %e, "fulfilling an approved request failed");
                    }
                }
            }
        }
        Ok(count)
    }

    async fn deliver_sweep(&self, ws: &Workspace, platform: Platform, event: SweepEvent) {
        let outcome = async {
            match event {
                SweepEvent::Reminded { request, approvers } => {
                    let ctx = self.lineup.card_context(ws.tenant, &request).await?;
                    let reminder = Message::text(format!(
                        "Reminder: {} is still waiting for your decision on {}.",
                        ctx.requester_name,
                        cards::what(&request, &ctx)
                    ));
                    for approver in approvers {
                        self.send_to_employee(ws, platform, approver, &reminder)
                            .await;
                    }
                }
                SweepEvent::Escalated { request, approvers } => {
                    let ctx = self.lineup.card_context(ws.tenant, &request).await?;
                    let moved = Message::text(format!(
                        "Escalated: {} now waits on the next approver. No action needed here.",
                        cards::what(&request, &ctx)
                    ));
                    self.update_cards(ws, &request, &moved).await;
                    let card = cards::approval_card(&request, &ctx);
                    let posted = self.post_cards(ws, platform, &approvers, &card).await;
                    self.save_refs(ws, request.id, platform, |refs| refs.cards.extend(posted))
                        .await?;
                    self.catch_up_cards(ws, request.id).await?;
                }
                SweepEvent::Rerouted {
                    request,
                    approvers,
                    moved_to,
                } => {
                    let ctx = self.lineup.card_context(ws.tenant, &request).await?;
                    let moved = Message::text(format!(
                        "Moved to {moved_to}: {} now waits on them, as {}'s manager changed. \
                         No action needed here.",
                        cards::what(&request, &ctx),
                        ctx.requester_name
                    ));
                    self.update_cards(ws, &request, &moved).await;
                    let card = cards::approval_card(&request, &ctx);
                    let posted = self.post_cards(ws, platform, &approvers, &card).await;
                    self.save_refs(ws, request.id, platform, |refs| refs.cards.extend(posted))
                        .await?;
                    self.catch_up_cards(ws, request.id).await?;
                }
                SweepEvent::Expired { request } => {
                    self.refresh_cards(ws, request.id).await?;
                    self.tell_requester(ws, platform, &request).await;
                }
            }
            Ok::<_, CoreError>(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "delivering a reminder, escalation or expiry failed");
        }
    }

    /// Post to the tenant's finance channel (budget and anomaly alerts, with their buttons).
    pub async fn post_finance_alert(
        &self,
        ws: &Workspace,
        platform: Platform,
        alert: &Message,
    ) -> Result<MessageRef, String> {
        let tenant = self
            .lineup
            .tenant(ws.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let channel = tenant
            .settings
            .finance_channel
            .ok_or("no finance channel is set in the organisation settings")?;
        let transport = self
            .transport(platform)
            .ok_or("this chat platform is not configured")?;
        transport
            .send_channel(ws, &channel, alert)
            .await
            .map_err(|e| e.to_string())
    }

    /// The card to each approver directly, or once to the approvals channel when one is set.
    async fn post_cards(
        &self,
        ws: &Workspace,
        platform: Platform,
        approvers: &[EmployeeId],
        card: &Message,
    ) -> Vec<MessageRef> {
        let Some(transport) = self.transport(platform) else {
            return Vec::new();
        };
        let channel = self
            .lineup
            .tenant(ws.tenant)
            .await
            .ok()
            .and_then(|t| t.settings.approvals_channel);
        let mut posted = Vec::new();
        if let Some(channel) = channel {
            match transport.send_channel(ws, &channel, card).await {
                Ok(at) => posted.push(at),
                Err(e) => tracing::error!(channel, error = %e, "posting an approval card failed"),
            }
            return posted;
        }
        for approver in approvers {
            let Some(user) = self.chat_user(ws, platform, *approver).await else {
                continue;
            };
            match transport.send_direct(ws, &user, card).await {
                Ok(at) => posted.push(at),
                Err(e) => tracing::error!(error = %e, "posting an approval card failed"),
            }
        }
        posted
    }

    /// A decision can land between posting a card and remembering where it is; if one did,
    /// bring the just-posted cards up to date now.
    async fn catch_up_cards(&self, ws: &Workspace, request_id: RequestId) -> Result<(), CoreError> {
        if self.lineup.request(ws.tenant, request_id).await?.state != RequestState::Pending {
            self.refresh_cards(ws, request_id).await?;
        }
        Ok(())
    }

    /// Replace every copy of the request's card with its current form.
    async fn refresh_cards(&self, ws: &Workspace, request_id: RequestId) -> Result<(), CoreError> {
        let request = self.lineup.request(ws.tenant, request_id).await?;
        let ctx = self.lineup.card_context(ws.tenant, &request).await?;
        let card = match request.state {
            RequestState::Pending => cards::approval_card(&request, &ctx),
            _ => cards::settled_card(&request, &ctx),
        };
        self.update_cards(ws, &request, &card).await;
        Ok(())
    }

    async fn update_cards(&self, ws: &Workspace, request: &Request, card: &Message) {
        for (platform, at) in request.chat_refs.cards() {
            let Some(transport) = self.transport(platform) else {
                continue;
            };
            if let Err(e) = transport.update(ws, at, card).await {
                tracing::warn!(channel = at.channel, error = %e, "updating a card failed");
            }
        }
    }

    /// The requester told of `request` as it stands (the decision, not what came of it since).
    async fn tell_requester(&self, ws: &Workspace, platform: Platform, request: &Request) {
        let Ok(ctx) = self.lineup.card_context(ws.tenant, request).await else {
            return;
        };
        let update = cards::requester_update(request, &ctx);
        self.send_to_employee(ws, platform, request.requester, &update)
            .await;
        let summary = Message::text(update.context.clone().unwrap_or(update.text.clone()));
        self.reply_under_cards(ws, request, &summary).await;
    }

    /// A reply under every copy of the request's card.
    async fn reply_under_cards(&self, ws: &Workspace, request: &Request, message: &Message) {
        for (platform, at) in request.chat_refs.cards() {
            let Some(transport) = self.transport(platform) else {
                continue;
            };
            if let Err(e) = transport.reply(ws, at, message).await {
                tracing::warn!(channel = at.channel, error = %e, "replying under a card failed");
            }
        }
    }

    pub(crate) async fn send_to_employee(
        &self,
        ws: &Workspace,
        platform: Platform,
        employee: EmployeeId,
        message: &Message,
    ) {
        let (Some(transport), Some(user)) = (
            self.transport(platform),
            self.chat_user(ws, platform, employee).await,
        ) else {
            tracing::warn!(%employee, platform = platform.as_str(), "cannot reach this employee in chat");
            return;
        };
        if let Err(e) = transport.send_direct(ws, &user, message).await {
            tracing::warn!(%employee, error = %e, "sending a direct message failed");
        }
    }

    /// An employee's user id on a platform: remembered, else found by email and remembered.
    pub(super) async fn chat_user(
        &self,
        ws: &Workspace,
        platform: Platform,
        employee: EmployeeId,
    ) -> Option<String> {
        self.find_chat_user(ws, platform, employee)
            .await
            .ok()
            .flatten()
    }

    /// [`Self::chat_user`], saying when the platform failed the lookup (a revoked token
    /// must not look like someone without an account).
    pub(super) async fn find_chat_user(
        &self,
        ws: &Workspace,
        platform: Platform,
        employee: EmployeeId,
    ) -> Result<Option<String>, TransportError> {
        if let Some(user) = self
            .lineup
            .chat_user_of(ws.tenant, employee, platform)
            .await
            .ok()
            .flatten()
        {
            return Ok(Some(user));
        }
        let Some(transport) = self.transport(platform) else {
            return Ok(None);
        };
        let Ok(person) = self.lineup.employee(ws.tenant, employee).await else {
            return Ok(None);
        };
        let Some(user) = transport
            .find_user_by_email(ws, person.email.as_str())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .lineup
            .link_chat_user(ws.tenant, employee, platform, &user)
            .await
            .ok()
            .map(|_| user))
    }

    /// Changes `platform`'s part of where the request's messages are, noting the platform
    /// as the request's origin when it is the first.
    async fn save_refs(
        &self,
        ws: &Workspace,
        request_id: RequestId,
        platform: Platform,
        change: impl FnOnce(&mut PlatformRefs),
    ) -> Result<(), CoreError> {
        let request = self.lineup.request(ws.tenant, request_id).await?;
        let mut refs = request.chat_refs;
        refs.origin
            .get_or_insert_with(|| platform.as_str().to_owned());
        change(refs.on(platform));
        self.lineup
            .set_request_chat_refs(ws.tenant, request_id, &refs)
            .await
    }
}
