//! The Slack HTTP endpoints on axum: signature check, replay and retry memory, parsing, the
//! unknown-workspace refusal and the 3-second rule, then the [`Conversation`] (what people do)
//! or [`SlackWorkspaces`] (installing and uninstalling the app).
//!
//! | route | what |
//! |---|---|
//! | `POST /slack/commands` | slash commands (form) → [`Conversation::command`] |
//! | `POST /slack/interactions` | buttons → [`Conversation::click`]; modal submissions → the form calls (`payload=` JSON) |
//! | `POST /slack/events` | Events API (`url_verification`; `app_uninstalled` and `tokens_revoked` → [`SlackWorkspaces::uninstalled`]) |
//! | `GET /slack/install?state=…` | state checked, the browser's install cookie set, 302 to Slack's OAuth v2 authorize page |
//! | `GET /slack/oauth/callback?code&state` | state and cookie checked, then `oauth.v2.access`, then [`SlackWorkspaces::installed`] |
//!
//! How answers come out: [`Answer::Private`] is the ephemeral ack of a command, or posted to a
//! click's `response_url` (never replacing the card); the forms open as modals with the
//! request's `trigger_id`; a form's field error keeps the modal open with the error under the
//! field, and what a closed form has to say goes by direct message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, error, info, warn};

use super::inbound::{
    self, BlockAction, Interaction, PushEvent, SlashCommand, ViewSubmission, WorkspaceEvent,
};
use super::render;
use super::transport::SlackTransport;
use super::verify::{self, ReplayGuard};
use super::{Installation, SlackClient, SlackConfig};
use crate::chat::{Answer, ChatTransport, Conversation, FormAnswer, RequestForm, Speaker};
use crate::dedupe::SeenIds;
use crate::install_state::{self, InstallState, redirect};

/// Largest request body accepted (Slack's payloads are a few KiB); larger → 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a command or modal submission may take before we ack without its answer.
pub const ACK_BUDGET: Duration = Duration::from_millis(2500);
/// What a slow command shows while its answer is on the way.
pub const WORKING_TEXT: &str = "Working on it…";
/// What a command from a workspace without a tenant gets.
pub const UNKNOWN_WORKSPACE_TEXT: &str = "Lineup isn't connected to this Slack workspace yet. \
     Ask your Lineup admin to add it from the portal's Slack settings.";
/// How long an Events API `event_id` is remembered (Slack retries up to three times over
/// several minutes).
pub const EVENT_MEMORY: Duration = Duration::from_secs(60 * 60);

/// The Slack-only side of the application: the app's installation. Implemented by
/// [`super::SlackApp`] over core; tests use a recorder.
#[async_trait]
pub trait SlackWorkspaces: Send + Sync + 'static {
    /// The connected workspace of `team_id`, with its bot token (to open modals and DM).
    async fn workspace(&self, team_id: &str) -> Option<Workspace>;

    /// `app_uninstalled` / `tokens_revoked`: forget or disable the workspace's token.
    async fn uninstalled(&self, event: WorkspaceEvent);

    /// A finished OAuth install for `tenant`, started by `installer` (the portal admin, when
    /// known), whose signed state and browser cookie the route has already checked.
    /// `Ok(url)` redirects the browser there, `Err(text)` shows the text on a plain error page.
    async fn installed(
        &self,
        tenant: TenantId,
        installer: Option<UserId>,
        install: Installation,
    ) -> Result<String, String>;
}

/// Shared state of the Slack routes. Cheap to clone.
#[derive(Clone)]
pub struct SlackState {
    inner: Arc<Inner>,
}

struct Inner {
    config: SlackConfig,
    conversation: Arc<dyn Conversation>,
    workspaces: Arc<dyn SlackWorkspaces>,
    client: SlackClient,
    /// Signs install links with the signing secret: only this server can mint one.
    install_state: InstallState,
    replays: ReplayGuard,
    /// Events API `event_id`s already handled (`slack_event:` keys).
    events: Arc<dyn SeenIds>,
    ack_budget: Duration,
}

impl SlackState {
    /// State with a Web API client built from `config.api_base_url`. `seen` remembers the
    /// requests and events handled: the database's for a server that may have replicas.
    pub fn new(
        config: SlackConfig,
        conversation: Arc<dyn Conversation>,
        workspaces: Arc<dyn SlackWorkspaces>,
        seen: Arc<dyn SeenIds>,
    ) -> std::io::Result<Self> {
        let client = SlackClient::from_config(&config)?;
        Ok(Self::with_client(
            config,
            conversation,
            workspaces,
            client,
            seen,
        ))
    }

    pub fn with_client(
        config: SlackConfig,
        conversation: Arc<dyn Conversation>,
        workspaces: Arc<dyn SlackWorkspaces>,
        client: SlackClient,
        seen: Arc<dyn SeenIds>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                install_state: InstallState::new(config.signing_secret.as_bytes().to_vec()),
                config,
                conversation,
                workspaces,
                client,
                replays: ReplayGuard::new("slack_signature", seen.clone()),
                events: seen,
                ack_budget: ACK_BUDGET,
            }),
        }
    }

    /// Changes the 2.5 s budget (tests). Call before cloning.
    pub fn with_ack_budget(mut self, budget: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ack_budget = budget;
        }
        self
    }

    pub fn client(&self) -> &SlackClient {
        &self.inner.client
    }

    pub fn config(&self) -> &SlackConfig {
        &self.inner.config
    }

    /// Mints the `state` of install links (`/slack/install?state=…`).
    pub fn install_state(&self) -> &InstallState {
        &self.inner.install_state
    }
}

/// The Slack routes, ready to merge into the main server's router.
pub fn slack_router(state: SlackState) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route("/slack/install", get(install))
        .route("/slack/oauth/callback", get(oauth_callback))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn page(status: StatusCode, text: &str) -> Response {
    install_state::install_page("Slack", status, text)
}

fn secure_cookie(config: &SlackConfig) -> bool {
    config.oauth_redirect_url.starts_with("https://")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

enum Gate {
    /// Verified and first seen: handle it.
    Fresh,
    /// Verified, but this exact request was accepted before: ack only.
    Replay,
    /// Missing, invalid or stale signature: 401.
    Refused,
    /// Whether it was seen could not be checked: 503, so Slack retries.
    Unavailable,
}

async fn gate(state: &SlackState, headers: &HeaderMap, body: &[u8]) -> Gate {
    let now = verify::unix_now();
    let signature = header_str(headers, verify::SIGNATURE_HEADER);
    match verify::verify(
        &state.inner.config.signing_secret,
        header_str(headers, verify::TIMESTAMP_HEADER),
        signature,
        body,
        now,
    ) {
        Ok(ts) => match state
            .inner
            .replays
            .first_time(ts, signature.unwrap_or_default(), now)
            .await
        {
            Ok(true) => Gate::Fresh,
            Ok(false) => {
                info!("replayed Slack request acknowledged and skipped");
                Gate::Replay
            }
            Err(e) => {
                error!(error = %e, "Slack request left for Slack to retry");
                Gate::Unavailable
            }
        },
        Err(e) => {
            warn!(error = %e, "Slack request refused");
            Gate::Refused
        }
    }
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response()
}

/// The request could not be checked against those already handled; Slack retries a 5xx.
fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response()
}

fn ack() -> Response {
    StatusCode::OK.into_response()
}

fn bad_request(e: impl std::fmt::Display) -> Response {
    warn!(error = %e, "unreadable Slack payload");
    (StatusCode::BAD_REQUEST, "unreadable payload").into_response()
}

fn ephemeral_text(text: &str) -> Value {
    json!({"response_type": "ephemeral", "text": text})
}

/// What the person who typed or clicked sees, as the ack or through `response_url`.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    /// Nothing (the flows post or update messages themselves; a modal was opened).
    None,
    /// A message only this person sees.
    Ephemeral(Message),
}

/// The answer to a modal submission, sent as the HTTP response (`response_action`).
#[derive(Debug, Clone, PartialEq)]
enum ViewReply {
    /// Close the modal.
    Close,
    /// Keep the modal open and show these messages under the inputs (`block_id` → message).
    Errors(BTreeMap<String, String>),
}

/// The message body of a reply (`response_type: ephemeral`), or `None` for [`Reply::None`].
/// `from_message` says the reply goes to the `response_url` of a click on a message, which
/// must stay as it is.
fn reply_body(reply: &Reply, from_message: bool) -> Option<Value> {
    let Reply::Ephemeral(message) = reply else {
        return None;
    };
    let mut body = render::message_payload(message);
    body["response_type"] = json!("ephemeral");
    if from_message {
        body["replace_original"] = json!(false);
    }
    Some(body)
}

async fn post_late(client: SlackClient, response_url: String, body: Value) {
    if response_url.is_empty() {
        warn!("a reply has no response_url to go to; dropped");
        return;
    }
    if let Err(e) = client.respond(&response_url, &body).await {
        warn!(error = %e, "posting a reply to response_url failed");
    }
}

fn speaker(team_id: &str, user_id: &str) -> Speaker {
    Speaker {
        platform: Platform::Slack,
        workspace_id: team_id.to_owned(),
        user_id: user_id.to_owned(),
        email: None,
    }
}

/// Shows an answer: ephemeral text, or a modal opened with the request's trigger.
async fn show(state: &SlackState, team_id: &str, trigger_id: &str, answer: Answer) -> Reply {
    let view = match answer {
        Answer::Nothing => return Reply::None,
        Answer::Private(message) => return Reply::Ephemeral(message),
        Answer::OpenRequestForm { plans } => render::request_modal(&plans, ""),
        Answer::OpenDenyForm { request_id } => render::deny_reason_modal(&request_id),
    };
    let Some(ws) = state.inner.workspaces.workspace(team_id).await else {
        return Reply::None;
    };
    match state
        .inner
        .client
        .open_view(&ws.bot_token, trigger_id, &view)
        .await
    {
        Ok(_) => Reply::None,
        Err(e) => Reply::Ephemeral(Message::text(format!("I couldn't open the form: {e}"))),
    }
}

async fn answer_command(state: SlackState, cmd: SlashCommand) -> Reply {
    let answer = state
        .inner
        .conversation
        .command(
            speaker(&cmd.team_id, &cmd.user_id),
            &cmd.text,
            &cmd.trigger_id,
        )
        .await;
    show(&state, &cmd.team_id, &cmd.trigger_id, answer).await
}

async fn answer_click(state: &SlackState, action: &BlockAction) -> Reply {
    let answer = state
        .inner
        .conversation
        .click(
            speaker(&action.team_id, &action.user_id),
            &action.action_id,
            &action.value,
        )
        .await;
    show(state, &action.team_id, &action.trigger_id, answer).await
}

/// A modal's submission as the form call its `callback_id` names.
async fn answer_view(state: SlackState, view: ViewSubmission) -> ViewReply {
    let speaker = speaker(&view.team_id, &view.user_id);
    let value = |key: &str| view.values.get(key).cloned().unwrap_or_default();
    let conversation = &state.inner.conversation;
    let answer = match view.callback_id.as_str() {
        render::REQUEST_CALLBACK_ID => {
            let form = RequestForm {
                plan_id: value(render::REQUEST_PLAN_KEY),
                reason: value(render::REQUEST_REASON_KEY),
                wanted_date: value(render::REQUEST_DATE_KEY),
            };
            conversation
                .submit_request_form(speaker.clone(), form, &format!("view:{}", view.view_id))
                .await
        }
        render::DENY_CALLBACK_ID => {
            let reason = value(render::DENY_REASON_KEY);
            conversation
                .submit_deny_reason(speaker.clone(), &view.private_metadata, &reason)
                .await
        }
        _ => FormAnswer::Done(None),
    };
    match answer {
        FormAnswer::Done(None) => ViewReply::Close,
        FormAnswer::Done(Some(message)) => {
            // Modals close without room for a message: it goes by DM.
            dm_later(&state, speaker, message);
            ViewReply::Close
        }
        FormAnswer::FieldError { field, message } => {
            ViewReply::Errors([(block_for(field).to_owned(), message)].into())
        }
    }
}

fn dm_later(state: &SlackState, speaker: Speaker, message: Message) {
    let state = state.clone();
    tokio::spawn(async move {
        let Some(ws) = state
            .inner
            .workspaces
            .workspace(&speaker.workspace_id)
            .await
        else {
            return;
        };
        let transport = SlackTransport::new(state.inner.client.clone());
        if let Err(e) = transport.send_direct(&ws, &speaker.user_id, &message).await {
            warn!(error = %e, "sending a DM after a form failed");
        }
    });
}

/// The modal block that shows an error about `field`.
fn block_for(field: &str) -> &'static str {
    match field {
        "reason" => "reason",
        "wanted_date" => "wanted_date",
        "deny_reason" => "deny_reason",
        _ => "plan",
    }
}

async fn commands(State(state): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    match gate(&state, &headers, &body).await {
        Gate::Refused => return unauthorized(),
        Gate::Unavailable => return unavailable(),
        Gate::Replay => return ack(),
        Gate::Fresh => {}
    }
    let cmd = match inbound::parse_slash_command(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    if !state
        .inner
        .conversation
        .workspace_known(Platform::Slack, &cmd.team_id)
        .await
    {
        info!(team_id = %cmd.team_id, "slash command from an unknown workspace refused");
        return axum::Json(ephemeral_text(UNKNOWN_WORKSPACE_TEXT)).into_response();
    }
    let response_url = cmd.response_url.clone();
    let mut task = tokio::spawn(answer_command(state.clone(), cmd));
    match tokio::time::timeout(state.inner.ack_budget, &mut task).await {
        Ok(Ok(reply)) => match reply_body(&reply, false) {
            Some(body) => axum::Json(body).into_response(),
            None => ack(),
        },
        Ok(Err(e)) => {
            warn!(error = %e, "slash command handler failed");
            axum::Json(ephemeral_text(
                "Sorry, something went wrong. Please try again.",
            ))
            .into_response()
        }
        Err(_) => {
            let client = state.inner.client.clone();
            tokio::spawn(async move {
                match task.await {
                    Ok(reply) => {
                        if let Some(body) = reply_body(&reply, false) {
                            post_late(client, response_url, body).await;
                        }
                    }
                    Err(e) => warn!(error = %e, "slash command handler failed"),
                }
            });
            axum::Json(ephemeral_text(WORKING_TEXT)).into_response()
        }
    }
}

async fn interactions(
    State(state): State<SlackState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match gate(&state, &headers, &body).await {
        Gate::Refused => return unauthorized(),
        Gate::Unavailable => return unavailable(),
        Gate::Replay => return ack(),
        Gate::Fresh => {}
    }
    let interaction = match inbound::parse_interaction(&body) {
        Ok(i) => i,
        Err(e) => return bad_request(e),
    };
    let known = match inbound::interaction_team(&interaction) {
        Some(team) => {
            state
                .inner
                .conversation
                .workspace_known(Platform::Slack, team)
                .await
        }
        None => false,
    };
    if !known {
        info!("interaction from an unknown workspace ignored");
        return ack();
    }
    match interaction {
        Interaction::BlockActions(actions) => {
            // Slack ignores the body of a block_actions ack, so replies go through response_url.
            // The ack waits (within the budget) until the click is decided: a replica that dies
            // before that never acks, Slack shows the clicker an error and they click again,
            // instead of an acked click that was never carried out.
            let (decided, clicks_decided) = tokio::sync::oneshot::channel();
            let state_for_clicks = state.clone();
            tokio::spawn(async move {
                let mut replies = Vec::new();
                for action in actions {
                    let from_message = action.message_ts.is_some();
                    let reply = answer_click(&state_for_clicks, &action).await;
                    if let Some(body) = reply_body(&reply, from_message) {
                        replies.push((action.response_url, body));
                    }
                }
                let _ = decided.send(());
                for (response_url, body) in replies {
                    post_late(state_for_clicks.inner.client.clone(), response_url, body).await;
                }
            });
            let _ = tokio::time::timeout(state.inner.ack_budget, clicks_decided).await;
            ack()
        }
        Interaction::ViewSubmission(view) => {
            let mut task = tokio::spawn(answer_view(state.clone(), view));
            match tokio::time::timeout(state.inner.ack_budget, &mut task).await {
                Ok(Ok(ViewReply::Close)) => ack(),
                Ok(Ok(ViewReply::Errors(errors))) => {
                    axum::Json(json!({"response_action": "errors", "errors": errors}))
                        .into_response()
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "view submission handler failed");
                    ack()
                }
                Err(_) => {
                    tokio::spawn(async move {
                        if let Ok(reply) = task.await
                            && reply != ViewReply::Close
                        {
                            warn!("a modal answer came after the ack budget and was dropped");
                        }
                    });
                    ack()
                }
            }
        }
        Interaction::Other { kind, .. } => {
            debug!(kind, "interaction ignored");
            ack()
        }
    }
}

async fn events(State(state): State<SlackState>, headers: HeaderMap, body: Bytes) -> Response {
    match gate(&state, &headers, &body).await {
        Gate::Refused => return unauthorized(),
        Gate::Unavailable => return unavailable(),
        Gate::Replay => return ack(),
        Gate::Fresh => {}
    }
    let event = match inbound::parse_push_event(&body) {
        Ok(e) => e,
        Err(e) => return bad_request(e),
    };
    match event {
        PushEvent::UrlVerification { challenge } => {
            axum::Json(json!({"challenge": challenge})).into_response()
        }
        PushEvent::Callback {
            team_id,
            event_id,
            event,
            kind,
        } => {
            let key = format!("slack_event:{event_id}");
            match state.inner.events.first_time(&key, EVENT_MEMORY).await {
                Ok(true) => {}
                Ok(false) => {
                    info!(
                        event_id,
                        retry = header_str(&headers, verify::RETRY_NUM_HEADER),
                        "Slack event already handled; acknowledged and skipped"
                    );
                    return ack();
                }
                Err(e) => {
                    error!(event_id, error = %e, "Slack event left for Slack to retry");
                    return unavailable();
                }
            }
            if !state
                .inner
                .conversation
                .workspace_known(Platform::Slack, &team_id)
                .await
            {
                info!(team_id, kind, "event from an unknown workspace ignored");
                return ack();
            }
            match event {
                Some(ev) => {
                    let workspaces = state.inner.workspaces.clone();
                    tokio::spawn(async move { workspaces.uninstalled(ev).await });
                }
                None => debug!(kind, "event ignored"),
            }
            ack()
        }
        PushEvent::Other { kind } => {
            debug!(kind, "event ignored");
            ack()
        }
    }
}

#[derive(Deserialize)]
struct InstallQuery {
    state: Option<String>,
}

/// Checks the state, then hands the browser a cookie holding the state's nonce, so the
/// callback can tell it is the same browser coming back.
async fn install(State(state): State<SlackState>, Query(q): Query<InstallQuery>) -> Response {
    let Some(st) = q.state.filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Missing state: start the installation from Lineup's settings.",
        );
    };
    let verified = match state.inner.install_state.verify(&st) {
        Ok(v) => v,
        Err(e) => return page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let install_state = &state.inner.install_state;
    let cookie = install_state.binding_cookie(
        &verified.nonce,
        install_state.lifetime_seconds(),
        secure_cookie(&state.inner.config),
    );
    let mut response = redirect(&state.inner.config.authorize_url(&st));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn oauth_callback(
    State(state): State<SlackState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(error) = q.error {
        let text = if error == "access_denied" {
            "The installation was cancelled in Slack. Nothing was changed.".to_string()
        } else {
            format!("Slack did not complete the installation ({error}).")
        };
        return page(StatusCode::BAD_REQUEST, &text);
    }
    let (Some(code), Some(st)) = (q.code.filter(|c| !c.is_empty()), q.state) else {
        return page(StatusCode::BAD_REQUEST, "Missing code or state.");
    };
    // Before the code is spent: a forged, expired or other browser's callback never reaches
    // Slack (nor gets a token out of it).
    let verified = match state.inner.install_state.verify(&st) {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "Slack install callback with a bad state refused");
            return page(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    if !verified.belongs_to(state.inner.install_state.browser_nonce(&headers)) {
        warn!("Slack install callback from a browser that did not start it refused");
        return page(
            StatusCode::BAD_REQUEST,
            "This installation was started in another browser, or too long ago. Start again \
             from Lineup's Slack settings in this browser.",
        );
    }
    let install = match state
        .inner
        .client
        .oauth_v2_access(&code, &state.inner.config.oauth_redirect_url)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "oauth.v2.access failed");
            return page(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "Slack refused the installation ({}). Please try again.",
                    e.code().unwrap_or("no answer")
                ),
            );
        }
    };
    let mut response = match state
        .inner
        .workspaces
        .installed(verified.tenant, verified.installer, install)
        .await
    {
        Ok(url) => redirect(&url),
        Err(text) => page(StatusCode::BAD_REQUEST, &text),
    };
    // The nonce has done its job.
    response.headers_mut().append(
        header::SET_COOKIE,
        state
            .inner
            .install_state
            .binding_cookie("", 0, secure_cookie(&state.inner.config)),
    );
    response
}
