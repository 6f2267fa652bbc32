//! What people do in chat, turned into core commands: `/esim …`, Approve/Deny/Retry (all three
//! need the authority to decide, checked in core), and the request and deny-reason forms.
//! Alert and leaver buttons go to `alerts.rs` and `leavers.rs`.
//! Slow work (routing, delivery, provisioning) happens after the answer, in the background.

use async_trait::async_trait;
use lineup_core::CoreError;
use lineup_core::email_address::Email;
use lineup_core::ids::{EmployeeId, LineId, RequestId, TenantId};
use lineup_core::lines::request::Request;
use lineup_core::lines::request::cards::CardContext;
use lineup_core::lines::request::commands::{ChatDecision, SubmitRequest, plan_label};
use lineup_core::lines::request::{Decider, Decision, RequestDetails, cards};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use time::Date;
use time::macros::format_description;

use super::ChatFlows;
use crate::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use crate::commands::{self, EsimCommand};

pub const UNKNOWN_WORKSPACE: &str = "Lineup isn't connected to this workspace yet. Ask your Lineup \
     admin to connect it.";

impl ChatFlows {
    /// The employee behind a chat user: by stored link, else by the email the platform gives.
    pub(super) async fn employee(
        &self,
        ws: &Workspace,
        speaker: &Speaker,
    ) -> Result<EmployeeId, Answer> {
        // Someone linked before needs no directory call to the platform.
        let (platform, user) = (speaker.platform, speaker.user_id.as_str());
        match self.lineup.chat_employee(ws.tenant, platform, user).await {
            Ok(Some(id)) => return Ok(id),
            Ok(None) => {}
            Err(e) => return Err(failure(&e)),
        }
        let email = match &speaker.email {
            Some(email) => Some(email.clone()),
            None => match self.transport(speaker.platform) {
                Some(transport) => transport
                    .user_email(ws, &speaker.user_id)
                    .await
                    .ok()
                    .flatten(),
                None => None,
            },
        };
        let email = email.as_deref().and_then(|e| Email::parse(e).ok());
        match self
            .lineup
            .employee_for_chat_user(
                ws.tenant,
                speaker.platform,
                &speaker.user_id,
                email.as_ref(),
            )
            .await
        {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(private(format!(
                "I couldn't find you in your company's Lineup directory{}. Ask your IT admin to add you.",
                email
                    .map(|e| format!(" (looked for {e})"))
                    .unwrap_or_default()
            ))),
            Err(e) => Err(failure(&e)),
        }
    }

    async fn run_command(&self, ws: Workspace, speaker: Speaker, text: &str, key: &str) -> Answer {
        let parsed = match commands::parse(text) {
            Ok(parsed) => parsed,
            Err(hint) => return private(hint.to_string()),
        };
        if parsed == EsimCommand::Help {
            return private(commands::HELP);
        }
        let me = match self.employee(&ws, &speaker).await {
            Ok(me) => me,
            Err(answer) => return answer,
        };
        let t = ws.tenant;
        let outcome = match parsed {
            EsimCommand::Help => unreachable!("answered above"),
            EsimCommand::Request => self.request_form(t).await,
            EsimCommand::Status => self.status(t, me).await,
            EsimCommand::Usage => self
                .lineup
                .usage_summary(t, me)
                .await
                .map(|u| Answer::Private(cards::usage_message(&u))),
            EsimCommand::Cap {
                amount_minor,
                reason,
            } => {
                let details = RequestDetails::CapRaise { amount_minor };
                self.submit(ws, speaker.platform, me, details, reason, key)
                    .await
                    .map(Answer::Private)
            }
            EsimCommand::Roaming {
                country,
                from,
                to,
                reason,
            } => match self.working_line(t, me).await {
                Ok(Some(line_id)) => {
                    let details = RequestDetails::Roaming {
                        line_id,
                        country,
                        from,
                        to,
                        quote: None,
                    };
                    self.submit(ws, speaker.platform, me, details, reason, key)
                        .await
                        .map(Answer::Private)
                }
                Ok(None) => Ok(private(
                    "You have no working line to add roaming to. Ask for one with `/esim request`.",
                )),
                Err(e) => Err(e),
            },
        };
        outcome.unwrap_or_else(|e| failure(&e))
    }

    async fn request_form(&self, t: TenantId) -> Result<Answer, CoreError> {
        let plans = self.lineup.plans(t).await?;
        let plans: Vec<_> = plans
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.id.to_string(), plan_label(p)))
            .collect();
        if plans.is_empty() {
            // Never an empty list: say what an admin has to do first.
            let status = self.lineup.provider_status(t).await?;
            return Ok(private(if status.is_connected() {
                "There are no plans to choose from yet: an admin can sync them in the portal                  under Settings → Provider."
            } else {
                "Your company has not connected its mobile provider yet: an admin connects it                  in the portal under Settings → Provider."
            }));
        }
        Ok(Answer::OpenRequestForm { plans })
    }

    async fn status(&self, t: TenantId, me: EmployeeId) -> Result<Answer, CoreError> {
        let plans = self.lineup.plans(t).await?;
        let name = |id| {
            plans
                .iter()
                .find(|p| p.id == id)
                .map_or("Unknown plan".to_owned(), |p| p.name.clone())
        };
        let summary = self.lineup.usage_summary(t, me).await?;
        let lines: Vec<_> = summary
            .lines
            .iter()
            .map(|l| (l.clone(), name(l.plan_id)))
            .collect();
        let mut requests = Vec::new();
        for request in self.lineup.requests_of(t, me).await? {
            let ctx = self.lineup.card_context(t, &request).await?;
            let label = cards::what(&request, &ctx);
            requests.push((request, label));
        }
        Ok(Answer::Private(cards::status_message(&lines, &requests)))
    }

    async fn working_line(&self, t: TenantId, me: EmployeeId) -> Result<Option<LineId>, CoreError> {
        let summary = self.lineup.usage_summary(t, me).await?;
        Ok(summary
            .lines
            .iter()
            .find(|l| l.state.is_live())
            .map(|l| l.id))
    }

    /// Submit, tell the requester at once, and route and deliver in the background.
    async fn submit(
        &self,
        ws: Workspace,
        platform: Platform,
        me: EmployeeId,
        details: RequestDetails,
        reason: String,
        key: &str,
    ) -> Result<Message, CoreError> {
        let dedupe_key = format!("{}:{key}", platform.as_str());
        let cmd = SubmitRequest {
            requester: me,
            details,
            reason,
            dedupe_key,
        };
        let submitted = self.lineup.submit_request(ws.tenant, cmd).await?;
        let ctx = self
            .lineup
            .card_context(ws.tenant, &submitted.request)
            .await?;
        let update = cards::requester_update(&submitted.request, &ctx);
        if submitted.created {
            let flows = self.clone();
            tokio::spawn(async move { flows.announce(&ws, platform, submitted).await });
        }
        Ok(update)
    }

    async fn decide(
        &self,
        ws: Workspace,
        speaker: &Speaker,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> Answer {
        let clicked = self
            .lineup
            .decide_request_from_chat(
                ws.tenant,
                speaker.platform,
                &speaker.user_id,
                request_id,
                decision,
                note.clone(),
            )
            .await;
        let decided = match clicked {
            Ok(ChatDecision::AlreadyDecided { request, names }) => {
                return already_decided(&request, &names);
            }
            Ok(ChatDecision::Decided(decided)) => decided,
            // Their first act here: find them by email (and link them), then decide.
            Ok(ChatDecision::Unlinked) => {
                let me = match self.employee(&ws, speaker).await {
                    Ok(me) => me,
                    Err(answer) => return answer,
                };
                match self
                    .lineup
                    .decide_request(ws.tenant, me, request_id, decision, note)
                    .await
                {
                    Ok(decided) => decided,
                    Err(e) => return failure(&e),
                }
            }
            Err(e) => return failure(&e),
        };
        if !decided.won {
            return match self.lineup.card_names(ws.tenant, &decided.request).await {
                Ok(names) => already_decided(&decided.request, &names),
                Err(e) => failure(&e),
            };
        }
        let (flows, platform) = (self.clone(), speaker.platform);
        tokio::spawn(async move { flows.after_decision(&ws, platform, decided.request).await });
        Answer::Nothing
    }

    /// Re-run a failed fulfilment, for someone with the authority to decide the request.
    async fn retry(&self, ws: Workspace, speaker: &Speaker, request_id: RequestId) -> Answer {
        let me = match self.employee(&ws, speaker).await {
            Ok(me) => me,
            Err(answer) => return answer,
        };
        if let Err(e) = self
            .lineup
            .authorise_retry(ws.tenant, Decider::Employee(me), request_id)
            .await
        {
            return failure(&e);
        }
        let (flows, platform) = (self.clone(), speaker.platform);
        tokio::spawn(async move { flows.fulfil(&ws, platform, request_id).await });
        private("Trying again…")
    }
}

#[async_trait]
impl Conversation for ChatFlows {
    async fn workspace_known(&self, platform: Platform, workspace_id: &str) -> bool {
        self.workspace(platform, workspace_id).await.is_some()
    }

    async fn command(&self, speaker: Speaker, text: &str, dedupe_key: &str) -> Answer {
        match self
            .workspace(speaker.platform, &speaker.workspace_id)
            .await
        {
            Some(ws) => self.run_command(ws, speaker, text, dedupe_key).await,
            None => private(UNKNOWN_WORKSPACE),
        }
    }

    async fn click(&self, speaker: Speaker, action_id: &str, value: &str) -> Answer {
        let Some(ws) = self
            .workspace(speaker.platform, &speaker.workspace_id)
            .await
        else {
            return private(UNKNOWN_WORKSPACE);
        };
        if action_id.starts_with("alert.") {
            return self.act_on_alert(ws, &speaker, action_id, value).await;
        }
        if action_id.starts_with("offboarding.") {
            return self
                .act_on_offboarding(ws, &speaker, action_id, value)
                .await;
        }
        let Ok(request_id) = value.parse::<RequestId>() else {
            return private("That button is out of date.");
        };
        match action_id {
            cards::APPROVE => {
                self.decide(ws, &speaker, request_id, Decision::Approve, None)
                    .await
            }
            cards::APPROVE_TRAVEL_ESIM => {
                self.decide(ws, &speaker, request_id, Decision::ApproveTravelEsim, None)
                    .await
            }
            cards::DENY => Answer::OpenDenyForm {
                request_id: request_id.to_string(),
            },
            cards::RETRY => self.retry(ws, &speaker, request_id).await,
            other => private(format!("I don't know the action `{other}`.")),
        }
    }

    async fn submit_request_form(
        &self,
        speaker: Speaker,
        form: RequestForm,
        dedupe_key: &str,
    ) -> FormAnswer {
        let Some(ws) = self
            .workspace(speaker.platform, &speaker.workspace_id)
            .await
        else {
            return FormAnswer::Done(Some(Message::text(UNKNOWN_WORKSPACE)));
        };
        let me = match self.employee(&ws, &speaker).await {
            Ok(me) => me,
            Err(_) => {
                return field_error(
                    "plan",
                    "I couldn't find you in your company's Lineup directory.",
                );
            }
        };
        let Ok(plan_id) = form.plan_id.parse() else {
            return field_error("plan", "Choose a plan.");
        };
        let wanted_date = match form.wanted_date.trim() {
            "" => None,
            text => match Date::parse(text, format_description!("[year]-[month]-[day]")) {
                Ok(date) => Some(date),
                Err(_) => return field_error("wanted_date", "That is not a date like 2026-12-01."),
            },
        };
        let details = RequestDetails::NewLine {
            plan_id,
            wanted_date,
        };
        match self
            .submit(ws, speaker.platform, me, details, form.reason, dedupe_key)
            .await
        {
            Ok(update) => FormAnswer::Done(Some(update)),
            Err(CoreError::Invalid { field, reason }) => field_error(form_field(field), &reason),
            Err(e) => field_error("plan", &e.to_string()),
        }
    }

    async fn submit_deny_reason(
        &self,
        speaker: Speaker,
        request_id: &str,
        reason: &str,
    ) -> FormAnswer {
        let Some(ws) = self
            .workspace(speaker.platform, &speaker.workspace_id)
            .await
        else {
            return FormAnswer::Done(Some(Message::text(UNKNOWN_WORKSPACE)));
        };
        let Ok(request_id) = request_id.parse::<RequestId>() else {
            return field_error("deny_reason", "This form is out of date; click Deny again.");
        };
        match self
            .decide(
                ws,
                &speaker,
                request_id,
                Decision::Deny,
                Some(reason.to_owned()),
            )
            .await
        {
            Answer::Private(message) => field_error("deny_reason", &message.text),
            _ => FormAnswer::Done(None),
        }
    }
}

pub(super) fn private(text: impl Into<String>) -> Answer {
    Answer::Private(Message::text(text))
}

/// What a person sees when a command cannot be carried out.
pub(super) fn failure(error: &CoreError) -> Answer {
    match error {
        CoreError::Store(_) => {
            super::log_failure("a chat command", error);
            private("Something went wrong on our side; please try again in a minute.")
        }
        other => private(other.to_string()),
    }
}

fn field_error(field: &'static str, message: &str) -> FormAnswer {
    FormAnswer::FieldError {
        field,
        message: message.to_owned(),
    }
}

fn form_field(field: &str) -> &'static str {
    match field {
        "reason" => "reason",
        "wanted_date" => "wanted_date",
        _ => "plan",
    }
}

/// The answer to a click on a card someone had already decided: who did, and how.
fn already_decided(request: &Request, names: &CardContext) -> Answer {
    let settled = cards::settled_card(request, names);
    private(format!(
        "Already decided: {}.",
        settled.context.unwrap_or_default()
    ))
}
