//! Delivering core outcomes to Slack: approval cards to approvers (DM or the approvals
//! channel), updates of every copy of a card after a decision, the requester's DMs, the eSIM
//! with its QR code, reminders, escalations, expiries and finance alerts.
//!
//! Where cards were posted is kept on the request (`chat_refs.slack`), so any later event —
//! a decision made in another copy, in the portal, or by the sweep — updates all of them.

use lineup_core::chat::Workspace;
use lineup_core::ids::{EmployeeId, RequestId};
use lineup_core::notify::Message;
use lineup_core::request::commands::{Fulfilment, Submitted, SweepEvent};
use lineup_core::request::{Request, RequestDetails, RequestState, cards};
use serde_json::{Value, json};

use super::app::{SlackApp, refs_entry};
use super::render;

impl SlackApp {
    /// A new request: cards to whoever decides, word to the requester, and straight to
    /// fulfilment when policy approved it.
    pub async fn announce(&self, ws: &Workspace, submitted: Submitted) {
        let request = submitted.request;
        let outcome = async {
            let ctx = self.lineup.card_context(ws.tenant, &request).await?;
            match request.state {
                RequestState::Pending => {
                    let card = cards::approval_card(&request, &ctx);
                    let posted = self.post_cards(ws, &submitted.approvers, &card).await;
                    self.save_refs(ws, request.id, |refs| refs["cards"] = json!(posted))
                        .await?;
                }
                RequestState::Approved => {
                    // Inside a preset: approved by policy, with an FYI to the manager.
                    let requester = self.lineup.employee(ws.tenant, request.requester).await?;
                    if let Some(manager) = requester.manager_id {
                        let fyi = Message::text(format!(
                            "FYI: policy approved {} for {}.",
                            cards::what(&request, &ctx),
                            ctx.requester_name
                        ))
                        .field("Why", request.decision_note.clone().unwrap_or_default());
                        self.dm_employee(ws, manager, &fyi).await;
                    }
                    self.fulfil(ws, request.id).await;
                }
                _ => {}
            }
            Ok::<_, lineup_core::CoreError>(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(request = %request.id, error = %e, "announcing a request in Slack failed");
        }
    }

    /// After the winning decision: every card copy updated in place, the requester told,
    /// and an approved request carried out.
    pub async fn after_decision(&self, ws: &Workspace, request: Request) {
        if let Err(e) = self.refresh_cards(ws, request.id).await {
            tracing::error!(request = %request.id, error = %e, "updating Slack cards failed");
        }
        self.tell_requester(ws, request.id).await;
        if request.state == RequestState::Approved {
            self.fulfil(ws, request.id).await;
        }
    }

    /// Carry out an approved request, narrating progress in the card threads.
    pub async fn fulfil(&self, ws: &Workspace, request_id: RequestId) {
        let Ok(request) = self.lineup.request(ws.tenant, request_id).await else {
            return;
        };
        if matches!(request.details, RequestDetails::NewLine { .. }) {
            self.thread_note(ws, &request, "Provisioning the eSIM…")
                .await;
        }
        match self.lineup.fulfil_request(ws.tenant, request_id).await {
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
                self.thread_note(
                    ws,
                    &request,
                    &format!("Ready: the eSIM (ICCID {iccid}) was sent to the requester."),
                )
                .await;
                match cards::delivery_message(&line, plan) {
                    Ok(message) => self.dm_employee(ws, request.requester, &message).await,
                    Err(e) => {
                        tracing::error!(line = %line.id, error = %e, "building the eSIM message failed")
                    }
                }
            }
            Ok(Fulfilment::CapRaised { period, amount }) => {
                let message = Message::text(format!(
                    "Your monthly cap is raised by {amount} for {period}."
                ));
                self.dm_employee(ws, request.requester, &message).await;
            }
            Ok(Fulfilment::Roaming(grant)) => {
                let message = Message::text(format!(
                    "Roaming in {} is approved from {} to {}. It switches off by itself after the trip.",
                    grant.country, grant.starts_on, grant.ends_on
                ));
                self.dm_employee(ws, request.requester, &message).await;
            }
            Err(e) => {
                tracing::warn!(request = %request_id, error = %e, "fulfilling a request failed");
                let Ok(failed) = self.lineup.request(ws.tenant, request_id).await else {
                    return;
                };
                let Ok(ctx) = self.lineup.card_context(ws.tenant, &failed).await else {
                    return;
                };
                let mut card = cards::failure_card(&failed, &ctx);
                if failed.state != RequestState::Failed {
                    // Still running at the provider: say so, without a retry button.
                    card = Message::text(format!(
                        "The provider is still working on {}; we'll finish it in the background.",
                        cards::what(&failed, &ctx)
                    ));
                }
                self.dm_employee(ws, failed.requester, &card).await;
                self.thread_message(ws, &failed, &card).await;
            }
        }
    }

    pub(crate) async fn retry(&self, ws: &Workspace, request_id: RequestId) {
        self.fulfil(ws, request_id).await;
    }

    /// Reminders, escalations and expiries found by the core sweep.
    pub async fn deliver_sweep(&self, ws: &Workspace, event: SweepEvent) {
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
                        self.dm_employee(ws, approver, &reminder).await;
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
                    let posted = self.post_cards(ws, &approvers, &card).await;
                    self.save_refs(ws, request.id, |refs| {
                        let mut all = refs["cards"].as_array().cloned().unwrap_or_default();
                        all.extend(posted);
                        refs["cards"] = json!(all);
                    })
                    .await?;
                }
                SweepEvent::Expired { request } => {
                    self.refresh_cards(ws, request.id).await?;
                    self.tell_requester(ws, request.id).await;
                }
            }
            Ok::<_, lineup_core::CoreError>(())
        }
        .await;
        if let Err(e) = outcome {
            tracing::error!(error = %e, "delivering a reminder/escalation/expiry failed");
        }
    }

    /// Post to the tenant's finance channel (budget and anomaly alerts, with their buttons).
    pub async fn post_finance_alert(
        &self,
        ws: &Workspace,
        alert: &Message,
    ) -> Result<String, String> {
        let tenant = self
            .lineup
            .tenant(ws.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let channel = tenant
            .settings
            .finance_channel
            .ok_or("no finance channel is set in the organisation settings")?;
        let payload = render::message_payload(alert);
        self.client
            .post_message(
                &ws.bot_token,
                &channel,
                payload["text"].as_str().unwrap_or_default(),
                &blocks(&payload),
                None,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// The card to each approver by DM, or once to the approvals channel when one is set.
    async fn post_cards(
        &self,
        ws: &Workspace,
        approvers: &[EmployeeId],
        card: &Message,
    ) -> Vec<Value> {
        let payload = render::message_payload(card);
        let text = payload["text"].as_str().unwrap_or_default().to_owned();
        let channel = self
            .lineup
            .tenant(ws.tenant)
            .await
            .ok()
            .and_then(|t| t.settings.approvals_channel);
        let mut posted = Vec::new();
        if let Some(channel) = channel {
            match self
                .client
                .post_message(&ws.bot_token, &channel, &text, &blocks(&payload), None)
                .await
            {
                Ok(ts) => posted.push(refs_entry(&channel, &ts)),
                Err(e) => tracing::error!(channel, error = %e, "posting an approval card failed"),
            }
            return posted;
        }
        for approver in approvers {
            let Some(dm) = self.dm_channel(ws, *approver).await else {
                continue;
            };
            match self
                .client
                .post_message(&ws.bot_token, &dm, &text, &blocks(&payload), None)
                .await
            {
                Ok(ts) => posted.push(refs_entry(&dm, &ts)),
                Err(e) => tracing::error!(error = %e, "posting an approval card failed"),
            }
        }
        posted
    }

    /// Replace every copy of the request's card with its settled form.
    async fn refresh_cards(
        &self,
        ws: &Workspace,
        request_id: RequestId,
    ) -> Result<(), lineup_core::CoreError> {
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
        let payload = render::message_payload(card);
        let text = payload["text"].as_str().unwrap_or_default();
        for (channel, ts) in card_refs(request) {
            if let Err(e) = self
                .client
                .update_message(&ws.bot_token, &channel, &ts, text, &blocks(&payload))
                .await
            {
                tracing::warn!(channel, ts, error = %e, "updating a card failed");
            }
        }
    }

    async fn tell_requester(&self, ws: &Workspace, request_id: RequestId) {
        let Ok(request) = self.lineup.request(ws.tenant, request_id).await else {
            return;
        };
        let Ok(ctx) = self.lineup.card_context(ws.tenant, &request).await else {
            return;
        };
        let update = cards::requester_update(&request, &ctx);
        self.dm_employee(ws, request.requester, &update).await;
        self.thread_message(
            ws,
            &request,
            &Message::text(update.context.clone().unwrap_or(update.text.clone())),
        )
        .await;
    }

    async fn thread_note(&self, ws: &Workspace, request: &Request, text: &str) {
        self.thread_message(ws, request, &Message::text(text)).await;
    }

    /// A reply in the thread under every copy of the request's card.
    async fn thread_message(&self, ws: &Workspace, request: &Request, message: &Message) {
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        for (channel, ts) in card_refs(request) {
            if let Err(e) = self
                .client
                .post_message(&ws.bot_token, &channel, text, &blocks(&payload), Some(&ts))
                .await
            {
                tracing::warn!(channel, error = %e, "posting in a card thread failed");
            }
        }
    }

    /// A direct message to an employee; the QR image (if any) follows as an upload.
    pub(crate) async fn dm_employee(
        &self,
        ws: &Workspace,
        employee: EmployeeId,
        message: &Message,
    ) {
        let Some(channel) = self.dm_channel(ws, employee).await else {
            tracing::warn!(%employee, "cannot reach this employee in Slack");
            return;
        };
        self.dm(ws, "", message, Some(channel)).await;
    }

    /// Post `message` to `channel`, or to a DM with `user` when no channel is given.
    pub(crate) async fn dm(
        &self,
        ws: &Workspace,
        user: &str,
        message: &Message,
        channel: Option<String>,
    ) {
        let channel = match channel {
            Some(channel) => channel,
            None => match self.client.open_dm(&ws.bot_token, user).await {
                Ok(channel) => channel,
                Err(e) => return tracing::warn!(user, error = %e, "opening a DM failed"),
            },
        };
        let payload = render::message_payload(message);
        let text = payload["text"].as_str().unwrap_or_default();
        let ts = match self
            .client
            .post_message(&ws.bot_token, &channel, text, &blocks(&payload), None)
            .await
        {
            Ok(ts) => ts,
            Err(e) => return tracing::warn!(channel, error = %e, "sending a DM failed"),
        };
        if let Some(image) = &message.image {
            let title = message.title.as_deref().unwrap_or("image");
            if let Err(e) = self
                .client
                .upload_png(
                    &ws.bot_token,
                    &channel,
                    &image.png,
                    &image.filename,
                    title,
                    Some(&ts),
                )
                .await
            {
                tracing::warn!(channel, error = %e, "uploading the QR code failed");
            }
        }
    }

    /// The DM channel with an employee, finding their Slack user by email the first time.
    async fn dm_channel(&self, ws: &Workspace, employee: EmployeeId) -> Option<String> {
        let platform = lineup_core::chat::Platform::Slack;
        let user = match self
            .lineup
            .chat_user_of(ws.tenant, employee, platform)
            .await
            .ok()
            .flatten()
        {
            Some(user) => user,
            None => {
                let person = self.lineup.employee(ws.tenant, employee).await.ok()?;
                let user = self
                    .client
                    .lookup_user_by_email(&ws.bot_token, person.email.as_str())
                    .await
                    .ok()
                    .flatten()?;
                self.lineup
                    .link_chat_user(ws.tenant, employee, platform, &user)
                    .await
                    .ok()?;
                user
            }
        };
        self.client.open_dm(&ws.bot_token, &user).await.ok()
    }

    async fn save_refs(
        &self,
        ws: &Workspace,
        request_id: RequestId,
        change: impl FnOnce(&mut Value),
    ) -> Result<(), lineup_core::CoreError> {
        let request = self.lineup.request(ws.tenant, request_id).await?;
        let mut refs = request.chat_refs.clone();
        if !refs.is_object() {
            refs = json!({});
        }
        let mut slack = refs.get("slack").cloned().unwrap_or_else(|| json!({}));
        change(&mut slack);
        refs["slack"] = slack;
        self.lineup
            .set_request_chat_refs(ws.tenant, request_id, &refs)
            .await
    }
}

fn card_refs(request: &Request) -> Vec<(String, String)> {
    request.chat_refs["slack"]["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["channel"].as_str()?.to_owned(),
                r["ts"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn blocks(payload: &Value) -> Vec<Value> {
    payload["blocks"].as_array().cloned().unwrap_or_default()
}

impl SlackApp {
    /// The periodic sweep: reminders, escalations and expiries delivered to Slack, and
    /// roaming grants switched on and off on their dates.
    pub async fn run_sweeps(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<usize, lineup_core::CoreError> {
        let events = self.lineup.sweep_requests(now).await?;
        let count = events.len();
        for event in events {
            let tenant = match &event {
                SweepEvent::Reminded { request, .. }
                | SweepEvent::Escalated { request, .. }
                | SweepEvent::Expired { request } => request.tenant_id,
            };
            match self
                .lineup
                .workspace_of_tenant(tenant, lineup_core::chat::Platform::Slack)
                .await?
            {
                Some(ws) => self.deliver_sweep(&ws, event).await,
                None => tracing::debug!(%tenant, "no Slack workspace to deliver a sweep event to"),
            }
        }
        self.lineup.sweep_roaming_grants(now.date()).await?;
        Ok(count)
    }
}
