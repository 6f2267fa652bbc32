//! The Slack side of Lineup: `/esim` commands, approval buttons and modals turned into core
//! commands, and core outcomes delivered as Slack messages. Handlers stay short; delivery
//! lives in `deliver.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use lineup_core::chat::{Platform, Workspace};
use lineup_core::email::Email;
use lineup_core::ids::{EmployeeId, RequestId};
use lineup_core::request::cards;
use lineup_core::request::commands::{SubmitRequest, plan_label};
use lineup_core::request::{Decision, RequestDetails};
use lineup_core::{CoreError, Lineup};
use serde_json::json;
use time::Date;
use time::macros::format_description;

use super::SlackClient;
use super::commands::{self, EsimCommand};
use super::handler::{Installation, Reply, SlackHandler, ViewReply};
use super::inbound::{BlockAction, SlashCommand, ViewSubmission, WorkspaceEvent};
use super::install_state::InstallState;
use super::render;

/// Core plus the Slack Web API client: what every handler and delivery needs.
#[derive(Clone)]
pub struct SlackApp {
    pub(crate) lineup: Lineup,
    pub(crate) client: SlackClient,
    install_state: InstallState,
    /// Where the browser goes after installing (the portal's Slack settings page).
    after_install_url: String,
}

impl SlackApp {
    pub fn new(
        lineup: Lineup,
        client: SlackClient,
        install_state: InstallState,
        after_install_url: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            lineup,
            client,
            install_state,
            after_install_url,
        })
    }

    pub fn lineup(&self) -> &Lineup {
        &self.lineup
    }

    async fn workspace(&self, team_id: &str) -> Option<Workspace> {
        match self.lineup.workspace(Platform::Slack, team_id).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::error!(team_id, error = %e, "looking up a Slack workspace failed");
                None
            }
        }
    }

    /// The employee behind a Slack user: by stored link, else by their Slack email.
    async fn employee(&self, ws: &Workspace, user_id: &str) -> Result<EmployeeId, Reply> {
        let email = self
            .client
            .user_email(&ws.bot_token, user_id)
            .await
            .ok()
            .flatten();
        let email = email.as_deref().and_then(|e| Email::parse(e).ok());
        match self
            .lineup
            .employee_for_chat_user(ws.tenant, Platform::Slack, user_id, email.as_ref())
            .await
        {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(Reply::text(format!(
                "I couldn't find you in your company's Lineup directory{}. Ask your IT admin to add you.",
                email
                    .map(|e| format!(" (looked for {e})"))
                    .unwrap_or_default()
            ))),
            Err(e) => Err(failure(&e)),
        }
    }

    async fn run_command(&self, ws: Workspace, cmd: SlashCommand) -> Reply {
        let parsed = match commands::parse(&cmd.text) {
            Ok(parsed) => parsed,
            Err(hint) => return Reply::text(hint.to_string()),
        };
        if parsed == EsimCommand::Help {
            return Reply::text(commands::HELP);
        }
        let me = match self.employee(&ws, &cmd.user_id).await {
            Ok(me) => me,
            Err(reply) => return reply,
        };
        let t = ws.tenant;
        let outcome = match parsed {
            EsimCommand::Help => unreachable!("answered above"),
            EsimCommand::Request => self.open_request_modal(&ws, &cmd.trigger_id).await,
            EsimCommand::Status => self.status(t, me).await,
            EsimCommand::Usage => self
                .lineup
                .usage_summary(t, me)
                .await
                .map(|u| Reply::Ephemeral(cards::usage_message(&u))),
            EsimCommand::Cap {
                amount_minor,
                reason,
            } => {
                let details = RequestDetails::CapRaise { amount_minor };
                self.submit(ws, me, details, reason, format!("slack:{}", cmd.trigger_id))
                    .await
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
                    };
                    self.submit(ws, me, details, reason, format!("slack:{}", cmd.trigger_id))
                        .await
                }
                Ok(None) => Ok(Reply::text(
                    "You have no working line to add roaming to. Ask for one with `/esim request`.",
                )),
                Err(e) => Err(e),
            },
        };
        outcome.unwrap_or_else(|e| failure(&e))
    }

    async fn open_request_modal(
        &self,
        ws: &Workspace,
        trigger_id: &str,
    ) -> Result<Reply, CoreError> {
        let plans: Vec<(String, String)> = self
            .lineup
            .plans(ws.tenant)
            .await?
            .iter()
            .filter(|p| p.active)
            .map(|p| (p.id.to_string(), plan_label(p)))
            .collect();
        let view = render::request_modal(&plans, "");
        match self
            .client
            .open_view(&ws.bot_token, trigger_id, &view)
            .await
        {
            Ok(_) => Ok(Reply::None),
            Err(e) => Ok(Reply::text(format!(
                "I couldn't open the request form: {e}"
            ))),
        }
    }

    async fn status(
        &self,
        t: lineup_core::ids::TenantId,
        me: EmployeeId,
    ) -> Result<Reply, CoreError> {
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
        Ok(Reply::Ephemeral(cards::status_message(&lines, &requests)))
    }

    async fn working_line(
        &self,
        t: lineup_core::ids::TenantId,
        me: EmployeeId,
    ) -> Result<Option<lineup_core::ids::LineId>, CoreError> {
        let summary = self.lineup.usage_summary(t, me).await?;
        Ok(summary
            .lines
            .iter()
            .find(|l| l.state.is_live())
            .map(|l| l.id))
    }

    /// Submit, answer the requester at once, and route/deliver in the background.
    async fn submit(
        &self,
        ws: Workspace,
        me: EmployeeId,
        details: RequestDetails,
        reason: String,
        key: String,
    ) -> Result<Reply, CoreError> {
        let submitted = self
            .lineup
            .submit_request(
                ws.tenant,
                SubmitRequest {
                    requester: me,
                    details,
                    reason,
                    dedupe_key: key,
                },
            )
            .await?;
        let ctx = self
            .lineup
            .card_context(ws.tenant, &submitted.request)
            .await?;
        let reply = Reply::Ephemeral(cards::requester_update(&submitted.request, &ctx));
        if submitted.created {
            let app = self.clone();
            tokio::spawn(async move { app.announce(&ws, submitted).await });
        }
        Ok(reply)
    }

    async fn decide(
        &self,
        ws: Workspace,
        user_id: &str,
        request_id: RequestId,
        decision: Decision,
        note: Option<String>,
    ) -> Result<Reply, Reply> {
        let me = self.employee(&ws, user_id).await?;
        let decided = self
            .lineup
            .decide_request(ws.tenant, me, request_id, decision, note)
            .await
            .map_err(|e| failure(&e))?;
        let ctx = self
            .lineup
            .card_context(ws.tenant, &decided.request)
            .await
            .map_err(|e| failure(&e))?;
        if !decided.won {
            let settled = cards::settled_card(&decided.request, &ctx);
            return Ok(Reply::text(format!(
                "Already decided: {}.",
                settled.context.unwrap_or_default()
            )));
        }
        let app = self.clone();
        tokio::spawn(async move { app.after_decision(&ws, decided.request).await });
        Ok(Reply::None)
    }

    async fn on_action(&self, ws: Workspace, action: BlockAction) -> Reply {
        if action.action_id.starts_with("alert.") {
            // Budget and anomaly alerts act on lines once the usage engine raises them;
            // until then the only alerts are tests.
            return Reply::text(
                "That was a test alert: nothing to do. Real alerts act on their line.",
            );
        }
        let Ok(request_id) = action.value.parse::<RequestId>() else {
            return Reply::text("That button is out of date.");
        };
        match action.action_id.as_str() {
            cards::APPROVE => self
                .decide(ws, &action.user_id, request_id, Decision::Approve, None)
                .await
                .unwrap_or_else(|r| r),
            cards::DENY => {
                // Check authority before asking for a reason nobody may give.
                let view = render::deny_reason_modal(&request_id.to_string());
                match self
                    .client
                    .open_view(&ws.bot_token, &action.trigger_id, &view)
                    .await
                {
                    Ok(_) => Reply::None,
                    Err(e) => Reply::text(format!("I couldn't open the form: {e}")),
                }
            }
            cards::RETRY => {
                let app = self.clone();
                tokio::spawn(async move { app.retry(&ws, request_id).await });
                Reply::text("Trying again…")
            }
            other => Reply::text(format!("I don't know the action `{other}`.")),
        }
    }

    async fn on_request_form(&self, ws: Workspace, view: ViewSubmission) -> ViewReply {
        let me = match self.employee(&ws, &view.user_id).await {
            Ok(me) => me,
            Err(_) => {
                return errors(
                    "plan",
                    "I couldn't find you in your company's Lineup directory.",
                );
            }
        };
        let Some(plan_id) = view
            .values
            .get(render::REQUEST_PLAN_KEY)
            .and_then(|p| p.parse().ok())
        else {
            return errors("plan", "Choose a plan.");
        };
        let reason = view
            .values
            .get(render::REQUEST_REASON_KEY)
            .cloned()
            .unwrap_or_default();
        let wanted_date = match view
            .values
            .get(render::REQUEST_DATE_KEY)
            .filter(|d| !d.is_empty())
        {
            None => None,
            Some(d) => match Date::parse(d, format_description!("[year]-[month]-[day]")) {
                Ok(date) => Some(date),
                Err(_) => return errors("wanted_date", "That is not a date."),
            },
        };
        let details = RequestDetails::NewLine {
            plan_id,
            wanted_date,
        };
        let key = format!("slack:view:{}", view.view_id);
        match self.submit(ws.clone(), me, details, reason, key).await {
            Ok(reply) => {
                if let Reply::Ephemeral(message) = reply {
                    let app = self.clone();
                    let user = view.user_id.clone();
                    tokio::spawn(async move { app.dm(&ws, &user, &message, None).await });
                }
                ViewReply::Close
            }
            Err(CoreError::Invalid { field, reason }) => errors(block_for(field), &reason),
            Err(e) => errors("plan", &e.to_string()),
        }
    }

    async fn on_deny_form(&self, ws: Workspace, view: ViewSubmission) -> ViewReply {
        let Ok(request_id) = view.private_metadata.parse::<RequestId>() else {
            return errors("deny_reason", "This form is out of date; click Deny again.");
        };
        let note = view.values.get(render::DENY_REASON_KEY).cloned();
        match self
            .decide(ws.clone(), &view.user_id, request_id, Decision::Deny, note)
            .await
        {
            Ok(Reply::None) => ViewReply::Close,
            Ok(Reply::Ephemeral(m)) | Err(Reply::Ephemeral(m)) => errors("deny_reason", &m.text),
            Ok(_) | Err(_) => ViewReply::Close,
        }
    }
}

#[async_trait]
impl SlackHandler for SlackApp {
    async fn workspace_known(&self, team_id: &str) -> bool {
        self.workspace(team_id).await.is_some()
    }

    async fn slash_command(&self, cmd: SlashCommand) -> Reply {
        match self.workspace(&cmd.team_id).await {
            Some(ws) => self.run_command(ws, cmd).await,
            None => Reply::text(super::super::routes::UNKNOWN_WORKSPACE_TEXT),
        }
    }

    async fn block_action(&self, action: BlockAction) -> Reply {
        match self.workspace(&action.team_id).await {
            Some(ws) => self.on_action(ws, action).await,
            None => Reply::None,
        }
    }

    async fn view_submission(&self, view: ViewSubmission) -> ViewReply {
        let Some(ws) = self.workspace(&view.team_id).await else {
            return ViewReply::Close;
        };
        match view.callback_id.as_str() {
            render::REQUEST_CALLBACK_ID => self.on_request_form(ws, view).await,
            render::DENY_CALLBACK_ID => self.on_deny_form(ws, view).await,
            _ => ViewReply::Close,
        }
    }

    async fn workspace_event(&self, event: WorkspaceEvent) {
        let (WorkspaceEvent::AppUninstalled { team_id }
        | WorkspaceEvent::TokensRevoked { team_id }) = event;
        if let Err(e) = self
            .lineup
            .uninstall_workspace(Platform::Slack, &team_id)
            .await
        {
            tracing::error!(team_id, error = %e, "forgetting an uninstalled Slack workspace failed");
        }
    }

    async fn installed(&self, state: &str, install: Installation) -> Result<String, String> {
        let tenant = self
            .install_state
            .verify(state)
            .map_err(|e| e.to_string())?;
        self.lineup
            .install_workspace(
                tenant,
                &lineup_core::audit::Actor::System,
                Platform::Slack,
                &install.team_id,
                Some(&install.bot_user_id),
                &install.bot_token,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.after_install_url.clone())
    }
}

/// What a person sees when a command cannot be carried out.
pub(crate) fn failure(error: &CoreError) -> Reply {
    match error {
        CoreError::Store(_) => {
            tracing::error!(error = %error, "Slack command failed on storage");
            Reply::text("Something went wrong on our side; please try again in a minute.")
        }
        other => Reply::text(other.to_string()),
    }
}

fn errors(block: &str, message: &str) -> ViewReply {
    ViewReply::Errors(
        [(block.to_owned(), message.to_owned())]
            .into_iter()
            .collect(),
    )
}

fn block_for(field: &str) -> &'static str {
    match field {
        "reason" => "reason",
        "wanted_date" => "wanted_date",
        _ => "plan",
    }
}

pub(crate) fn refs_entry(channel: &str, ts: &str) -> serde_json::Value {
    json!({ "channel": channel, "ts": ts })
}
