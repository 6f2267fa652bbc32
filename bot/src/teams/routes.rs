//! The Teams messaging endpoint on axum: `POST /teams/messages`.
//!
//! Order of work for every activity: body cap (413) → JWT check against the activity's
//! `serviceUrl` (401; the [`Conversation`] is never called) → parse (400) → replay memory
//! (a redelivered activity is acknowledged, not handled again) → unknown Azure AD tenant refused
//! with a reply saying Lineup isn't connected → the service URL and the sender's conversation
//! remembered → the [`Conversation`] called within [`ANSWER_BUDGET`] → the answer rendered.
//!
//! How answers come out:
//!
//! | answer | to a `message` (typed command, `Action.Submit`) | to an `adaptiveCard/action` invoke (`Action.Execute`) |
//! |---|---|---|
//! | `Nothing` | nothing | invoke response *message* "Done." (the card stays as the flows left it) |
//! | `Private(m)` | `m`'s card as a reply in a 1:1 chat, or by direct message when typed in a channel or group chat (Teams has no ephemeral messages) | invoke response *message* with `m`'s text (a card response would replace the clicked card, for everyone in a channel); when `m` has buttons or an image its card is also sent privately |
//! | `OpenRequestForm` / `OpenDenyForm` | the form card, privately as above | the form card sent privately, and an invoke response message saying so |
//! | `FormAnswer::FieldError` | the form again with the error under the field, privately | invoke response *card*: the submitted form again with the error |
//! | `FormAnswer::Done(m)` | `m` (or "Done.") privately | invoke response *card* replacing the form with `m` (or "Done.") |
//!
//! An answer that misses the budget is delivered privately when it comes; the invoke gets a
//! "Working on it…" message response at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lineup_core::messaging::chat::{ConversationKind, Platform};
use lineup_core::messaging::chat_message::Message;
use serde_json::{Value, json};
use tracing::{debug, error, info, warn};

use super::auth::{AuthError, InboundVerifier, OutboundTokens};
use super::client::BotConnector;
use super::config::TeamsConfig;
use super::inbound::{self, Activity, Intent};
use super::render::{self, FormValues};
use super::transport::{KnownConversations, SERVICE_URL_SETTING, TeamsTransport};
use crate::chat::{Answer, Conversation, FormAnswer, Speaker};
use crate::dedupe::SeenIds;

/// Largest activity accepted; larger → 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long the [`Conversation`] may take before we answer without it (Teams gives up on an
/// invoke after a few seconds).
pub const ANSWER_BUDGET: Duration = Duration::from_millis(4000);
/// How long an email learned from the Bot Connector is reused.
pub const EMAIL_TTL: Duration = Duration::from_secs(10 * 60);
pub const WORKING_TEXT: &str = "Working on it…";
pub const DONE_TEXT: &str = "Done.";
pub const FORM_SENT_TEXT: &str = "I've sent you a form in our chat.";
pub const UNKNOWN_TENANT_TEXT: &str = "Lineup isn't connected to this Microsoft Teams organisation \
     yet. Ask your Lineup admin to connect it from the portal's Teams settings.";
pub const REPLAY_TEXT: &str = "Already handled.";
/// How long a handled activity is remembered.
pub const REPLAY_MEMORY: Duration = Duration::from_secs(5 * 60);

/// Where the router records the Bot Connector service URL it learns for a tenant.
/// Implemented for [`lineup_core::Lineup`] (`set_workspace_setting(Teams, tenant,
/// "service_url", url)`); tests use a recorder.
#[async_trait]
pub trait ServiceUrlStore: Send + Sync + 'static {
    async fn remember_service_url(
        &self,
        aad_tenant_id: &str,
        service_url: &str,
    ) -> Result<(), String>;
}

#[async_trait]
impl ServiceUrlStore for lineup_core::Lineup {
    async fn remember_service_url(
        &self,
        aad_tenant_id: &str,
        service_url: &str,
    ) -> Result<(), String> {
        self.set_workspace_setting(
            Platform::Teams,
            aad_tenant_id,
            SERVICE_URL_SETTING,
            json!(service_url),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// Links an Azure AD tenant to the Lineup tenant whose one-time code (from Settings → Chat)
/// an activity from it carries. Implemented for [`lineup_core::Lineup`].
#[async_trait]
pub trait TenantLinks: Send + Sync + 'static {
    /// `Ok(organisation name)` once linked; `Err(text)` says why not, for the sender.
    async fn link_with_code(&self, aad_tenant_id: &str, code: &str) -> Result<String, String>;
}

#[async_trait]
impl TenantLinks for lineup_core::Lineup {
    async fn link_with_code(&self, aad_tenant_id: &str, code: &str) -> Result<String, String> {
        let grant = lineup_core::messaging::chat::WorkspaceGrant {
            workspace_id: aad_tenant_id.to_owned(),
            name: None,
            bot_user_id: None,
            bot_token: String::new(),
        };
        match self
            .link_workspace_with_code(Platform::Teams, code, &grant)
            .await
        {
            Ok(tenant) => Ok(tenant.name),
            Err(lineup_core::CoreError::Invalid { reason, .. }) => Err(reason),
            Err(lineup_core::CoreError::Conflict(reason)) => Err(reason),
            Err(e) => {
                warn!(error = %e, "linking a Teams tenant failed");
                Err("Lineup could not link this organisation right now; try again.".to_owned())
            }
        }
    }
}

/// An email looked up (or found missing) and when.
type CachedEmail = (Option<String>, Instant);

/// Shared state of the Teams route. Cheap to clone.
#[derive(Clone)]
pub struct TeamsState {
    inner: Arc<Inner>,
}

struct Inner {
    config: TeamsConfig,
    verifier: InboundVerifier,
    connector: BotConnector,
    conversation: Arc<dyn Conversation>,
    service_urls: Arc<dyn ServiceUrlStore>,
    /// Redeems `link <code>`; without it the command is not understood.
    links: Option<Arc<dyn TenantLinks>>,
    known: Arc<dyn KnownConversations>,
    /// Activities already handled (`teams_activity:` keys), so a redelivery is acknowledged
    /// only.
    replays: Arc<dyn SeenIds>,
    budget: Duration,
    /// The service URL last stored per Azure AD tenant, so an unchanged one is not written
    /// again. A cache: the URL itself is in the database, and a replica that has not seen a
    /// tenant yet just stores it once more.
    stored_urls: Mutex<HashMap<String, String>>,
    /// Emails from the Bot Connector's member lookup: a cache any replica refills.
    emails: Mutex<HashMap<(String, String), CachedEmail>>,
}

impl TeamsState {
    /// State with its own HTTP client, key cache and outbound token cache. `seen` and
    /// `known` remember the activities handled and where people are reached: the database's
    /// for a server that may have replicas.
    pub fn new(
        config: TeamsConfig,
        conversation: Arc<dyn Conversation>,
        service_urls: Arc<dyn ServiceUrlStore>,
        seen: Arc<dyn SeenIds>,
        known: Arc<dyn KnownConversations>,
    ) -> Self {
        let outbound = TeamsOutbound::new(&config, known);
        Self::with_outbound(config, conversation, service_urls, outbound, seen)
    }

    /// State sharing an outbound side built first — the transport the chat flows send
    /// with must exist before the flows that answer this route's activities.
    pub fn with_outbound(
        config: TeamsConfig,
        conversation: Arc<dyn Conversation>,
        service_urls: Arc<dyn ServiceUrlStore>,
        outbound: TeamsOutbound,
        seen: Arc<dyn SeenIds>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                verifier: InboundVerifier::new(config.clone(), outbound.http.clone()),
                connector: outbound.connector,
                config,
                conversation,
                service_urls,
                links: None,
                known: outbound.known,
                replays: seen,
                budget: ANSWER_BUDGET,
                stored_urls: Mutex::new(HashMap::new()),
                emails: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Lets `link <code>` connect the sender's Azure AD tenant. Call before cloning.
    pub fn with_tenant_links(mut self, links: Arc<dyn TenantLinks>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.links = Some(links);
        }
        self
    }

    /// Changes the answer budget (tests). Call before cloning.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.budget = budget;
        }
        self
    }

    /// The outbound side, sharing this state's Bot Connector client (and token cache) and the
    /// conversations it learns.
    pub fn transport(&self) -> TeamsTransport {
        TeamsTransport::new(
            self.inner.connector.clone(),
            self.inner.config.bot_id(),
            self.inner.known.clone(),
        )
    }

    pub fn connector(&self) -> &BotConnector {
        &self.inner.connector
    }

    pub fn known_conversations(&self) -> Arc<dyn KnownConversations> {
        self.inner.known.clone()
    }

    pub fn config(&self) -> &TeamsConfig {
        &self.inner.config
    }
}

/// The outbound half of the Teams adapter: the Bot Connector client with its token cache, and
/// where the conversations learned are kept. Build it first, make the transport from it, then
/// the state with [`TeamsState::with_outbound`].
#[derive(Clone)]
pub struct TeamsOutbound {
    http: reqwest::Client,
    connector: BotConnector,
    known: Arc<dyn KnownConversations>,
    bot_id: String,
}

impl TeamsOutbound {
    pub fn new(config: &TeamsConfig, known: Arc<dyn KnownConversations>) -> Self {
        let http = reqwest::Client::new();
        let tokens = Arc::new(OutboundTokens::new(config.clone(), http.clone()));
        Self {
            connector: BotConnector::new(http.clone(), tokens),
            http,
            known,
            bot_id: config.bot_id(),
        }
    }

    pub fn transport(&self) -> TeamsTransport {
        TeamsTransport::new(
            self.connector.clone(),
            self.bot_id.clone(),
            self.known.clone(),
        )
    }
}

/// The Teams route, ready to merge into the main server's router.
pub fn teams_router(state: TeamsState) -> Router {
    Router::new()
        .route("/teams/messages", post(messages))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn unauthorized(e: &AuthError) -> Response {
    warn!(error = %e, "Teams activity refused");
    (StatusCode::UNAUTHORIZED, "invalid Bot Framework token").into_response()
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}

fn invoke(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn messages(State(state): State<TeamsState>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let activity = match inbound::parse_activity(&body) {
        Ok(a) => a,
        Err(e) => {
            // Unreadable: a 400 only for a caller whose token is otherwise good.
            return match state.inner.verifier.verify(auth, "", "msteams").await {
                Err(AuthError::ServiceUrl { .. }) => {
                    warn!(error = %e, "unreadable Teams activity");
                    (StatusCode::BAD_REQUEST, "unreadable activity").into_response()
                }
                Err(a) => unauthorized(&a),
                Ok(_) => (StatusCode::BAD_REQUEST, "unreadable activity").into_response(),
            };
        }
    };
    if let Err(e) = state
        .inner
        .verifier
        .verify(auth, &activity.service_url, &activity.channel_id)
        .await
    {
        return unauthorized(&e);
    }
    if let Some(key) = activity.dedupe_key() {
        let key = format!("teams_activity:{key}");
        match state.inner.replays.first_time(&key, REPLAY_MEMORY).await {
            Ok(true) => {}
            Ok(false) => {
                info!(activity_id = ?activity.id, "Teams activity already handled; acknowledged and skipped");
                return if activity.is_invoke() {
                    invoke(render::invoke_message_response(REPLAY_TEXT))
                } else {
                    ok()
                };
            }
            Err(e) => {
                error!(activity_id = ?activity.id, error = %e, "Teams activity left for the Bot Framework to retry");
                return (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response();
            }
        }
    }
    if activity.channel_id != "msteams" {
        debug!(
            channel = activity.channel_id,
            "activity from another channel ignored"
        );
        return ok();
    }
    let intent = inbound::intent(&activity);
    if let Intent::Ignored(why) = &intent {
        debug!(why, "Teams activity ignored");
        return if activity.is_invoke() {
            invoke(json!({}))
        } else {
            ok()
        };
    }
    let Some(tenant) = activity.tenant_id().map(str::to_string) else {
        warn!("Teams activity without a tenant id refused");
        return refuse_unknown(&state, &activity).await;
    };
    if let (Some(code), Some(links)) = (link_code(&intent), &state.inner.links) {
        // The tenant id is the Bot Framework's word (the token was checked above), so the
        // code only has to prove which Lineup organisation asked for it.
        let text = match links.link_with_code(&tenant, code).await {
            Ok(organisation) => {
                info!(tenant, "Teams tenant linked with a code");
                learn(&state, &tenant, &activity).await;
                format!(
                    "Done: this Microsoft 365 organisation is now connected to {organisation} in \
                     Lineup. Try `esim help`."
                )
            }
            Err(reason) => format!("I couldn't link this organisation: {reason}"),
        };
        return reply_text(&state, &activity, &text).await;
    }
    let conversation = state.inner.conversation.clone();
    if !conversation.workspace_known(Platform::Teams, &tenant).await {
        info!(tenant, "Teams activity from an unknown tenant refused");
        return refuse_unknown(&state, &activity).await;
    }
    learn(&state, &tenant, &activity).await;

    if intent == Intent::BotAdded {
        info!(
            tenant,
            conversation = activity.conversation.id,
            "Lineup added to a Teams conversation"
        );
        return ok();
    }

    let speaker = Speaker {
        platform: Platform::Teams,
        workspace_id: tenant.clone(),
        user_id: activity.from.id.clone(),
        email: lookup_email(&state, &tenant, &activity).await,
    };
    let dedupe = format!(
        "teams:{}:{}",
        activity.conversation.id,
        activity.id.as_deref().unwrap_or_default()
    );
    let is_invoke = activity.is_invoke();
    let mut task = tokio::spawn(async move { answer(conversation, speaker, intent, dedupe).await });
    match tokio::time::timeout(state.inner.budget, &mut task).await {
        Ok(Ok(reply)) => respond(&state, &activity, reply, is_invoke).await,
        Ok(Err(e)) => {
            warn!(error = %e, "Teams conversation handler failed");
            let text = "Sorry, something went wrong. Please try again.";
            if is_invoke {
                invoke(render::invoke_message_response(text))
            } else {
                deliver_private(&state, &activity, &render::text_activity(text)).await;
                ok()
            }
        }
        Err(_) => {
            let late_state = state.clone();
            let late_activity = activity.clone();
            tokio::spawn(async move {
                match task.await {
                    Ok(reply) => {
                        respond(&late_state, &late_activity, reply, false).await;
                    }
                    Err(e) => warn!(error = %e, "Teams conversation handler failed"),
                }
            });
            if is_invoke {
                invoke(render::invoke_message_response(WORKING_TEXT))
            } else {
                ok()
            }
        }
    }
}

/// What the [`Conversation`] said, with what rendering needs.
#[derive(Debug)]
enum Reply {
    Nothing,
    Private(Message),
    /// A form to open.
    Form(Value),
    /// The submitted form again, with an error.
    FormAgain(Value),
    FormDone(Option<Message>),
}

async fn answer(
    conversation: Arc<dyn Conversation>,
    speaker: Speaker,
    intent: Intent,
    dedupe: String,
) -> Reply {
    let from_answer = |a: Answer| match a {
        Answer::Nothing => Reply::Nothing,
        Answer::Private(m) => Reply::Private(m),
        Answer::OpenRequestForm { plans } => Reply::Form(render::request_form_card(
            &plans,
            &FormValues::default(),
            None,
        )),
        Answer::OpenDenyForm { request_id } => {
            Reply::Form(render::deny_form_card(&request_id, "", None))
        }
    };
    match intent {
        Intent::Command { text } => {
            from_answer(conversation.command(speaker, &text, &dedupe).await)
        }
        Intent::Click { action_id, value } => {
            from_answer(conversation.click(speaker, &action_id, &value).await)
        }
        Intent::RequestForm { form, plans } => {
            let values = FormValues {
                plan: form.plan_id.clone(),
                reason: form.reason.clone(),
                wanted_date: form.wanted_date.clone(),
            };
            match conversation
                .submit_request_form(speaker, form, &dedupe)
                .await
            {
                FormAnswer::Done(m) => Reply::FormDone(m),
                FormAnswer::FieldError { field, message } => Reply::FormAgain(
                    render::request_form_card(&plans, &values, Some((field, &message))),
                ),
            }
        }
        Intent::DenyReason { request_id, reason } => {
            match conversation
                .submit_deny_reason(speaker, &request_id, &reason)
                .await
            {
                FormAnswer::Done(m) => Reply::FormDone(m),
                FormAnswer::FieldError { message, .. } => {
                    Reply::FormAgain(render::deny_form_card(&request_id, &reason, Some(&message)))
                }
            }
        }
        Intent::BotAdded | Intent::Ignored(_) => Reply::Nothing,
    }
}

/// Renders a reply: as the invoke response when `as_invoke`, else by messages.
async fn respond(
    state: &TeamsState,
    activity: &Activity,
    reply: Reply,
    as_invoke: bool,
) -> Response {
    if !as_invoke {
        let out = match reply {
            Reply::Nothing => return ok(),
            Reply::Private(m) => render::message_activity(&m),
            Reply::Form(card) | Reply::FormAgain(card) => render::card_activity(&card),
            Reply::FormDone(m) => {
                render::message_activity(&m.unwrap_or_else(|| Message::text(DONE_TEXT)))
            }
        };
        deliver_private(state, activity, &out).await;
        return ok();
    }
    let body = match reply {
        Reply::Nothing => render::invoke_message_response(DONE_TEXT),
        Reply::Private(m) => {
            if !m.actions.is_empty() || m.image.is_some() {
                deliver_private(state, activity, &render::message_activity(&m)).await;
            }
            render::invoke_message_response(&render::summary(&m))
        }
        Reply::Form(card) => {
            deliver_private(state, activity, &render::card_activity(&card)).await;
            render::invoke_message_response(FORM_SENT_TEXT)
        }
        Reply::FormAgain(card) => render::invoke_card_response(&card),
        Reply::FormDone(m) => render::invoke_card_response(&render::message_card(
            &m.unwrap_or_else(|| Message::text(DONE_TEXT)),
        )),
    };
    invoke(body)
}

/// Sends `out` so only the activity's sender sees it: a reply in a 1:1 chat, else a direct
/// message in their 1:1 chat with the bot.
async fn deliver_private(state: &TeamsState, activity: &Activity, out: &Value) {
    let c = &state.inner.connector;
    let url = &activity.service_url;
    let result = if activity.is_personal() {
        match activity.id.as_deref().filter(|i| !i.is_empty()) {
            Some(id) => c.reply(url, &activity.conversation.id, id, out).await,
            None => c.send_activity(url, &activity.conversation.id, out).await,
        }
    } else {
        let tenant = activity.tenant_id().unwrap_or_default().to_string();
        let user = activity.from.id.clone();
        let known = state
            .inner
            .known
            .find(&tenant, &user, ConversationKind::Direct)
            .await
            .unwrap_or_else(|e| {
                // Asking Teams again is safe: it hands back the existing chat.
                warn!(error = %e, "reading a known Teams chat failed");
                None
            });
        let conversation = match known {
            Some(c) => Ok(c),
            None => {
                let created = c
                    .create_conversation(url, &state.inner.config.bot_id(), &tenant, &user)
                    .await;
                if let Ok(conv) = &created {
                    remember(state, &tenant, &user, ConversationKind::Direct, conv).await;
                }
                created
            }
        };
        match conversation {
            Ok(conv) => c.send_activity(url, &conv, out).await,
            Err(e) => Err(e),
        }
    };
    if let Err(e) = result {
        warn!(error = %e, "a private Teams answer could not be delivered");
    }
}

/// A reply (or invoke response) saying Lineup isn't connected.
async fn refuse_unknown(state: &TeamsState, activity: &Activity) -> Response {
    reply_text(state, activity, UNKNOWN_TENANT_TEXT).await
}

/// `text` in answer to `activity`: an invoke response, else a reply in its conversation.
async fn reply_text(state: &TeamsState, activity: &Activity, text: &str) -> Response {
    if activity.is_invoke() {
        return invoke(render::invoke_message_response(text));
    }
    let out = render::text_activity(text);
    let c = &state.inner.connector;
    let result = match activity.id.as_deref().filter(|i| !i.is_empty()) {
        Some(id) => {
            c.reply(&activity.service_url, &activity.conversation.id, id, &out)
                .await
        }
        None => {
            c.send_activity(&activity.service_url, &activity.conversation.id, &out)
                .await
        }
    };
    if let Err(e) = result {
        warn!(error = %e, "replying to a Teams activity failed");
    }
    ok()
}

/// The code of a `link <code>` (or `esim link <code>`) message.
fn link_code(intent: &Intent) -> Option<&str> {
    let Intent::Command { text } = intent else {
        return None;
    };
    let (word, code) = text.trim().split_once(char::is_whitespace)?;
    word.eq_ignore_ascii_case("link")
        .then(|| code.trim())
        .filter(|c| !c.is_empty())
}

/// Remembers the tenant's service URL (stored when it changes) and where the sender can be
/// reached.
async fn learn(state: &TeamsState, tenant: &str, activity: &Activity) {
    let url = activity.service_url.trim();
    let changed = state
        .inner
        .stored_urls
        .lock()
        .expect("service url memory lock")
        .get(tenant)
        .is_none_or(|u| u != url);
    if changed && !url.is_empty() {
        match state
            .inner
            .service_urls
            .remember_service_url(tenant, url)
            .await
        {
            Ok(()) => {
                state
                    .inner
                    .stored_urls
                    .lock()
                    .expect("service url memory lock")
                    .insert(tenant.to_string(), url.to_string());
            }
            Err(e) => warn!(tenant, error = %e, "storing the Teams service URL failed"),
        }
    }
    let user = &activity.from.id;
    if !user.is_empty() && !activity.conversation.id.is_empty() {
        let kind = if activity.is_personal() {
            ConversationKind::Direct
        } else {
            ConversationKind::Seen
        };
        remember(state, tenant, user, kind, &activity.conversation.id).await;
    }
}

/// Keeps where `user` is reached; a failure costs only a lookup later, so it is logged.
async fn remember(
    state: &TeamsState,
    tenant: &str,
    user: &str,
    kind: ConversationKind,
    conversation: &str,
) {
    if let Err(e) = state
        .inner
        .known
        .remember(tenant, user, kind, conversation)
        .await
    {
        warn!(tenant, error = %e, "remembering a Teams conversation failed");
    }
}

/// The sender's email from the Bot Connector's member lookup, cached for [`EMAIL_TTL`].
async fn lookup_email(state: &TeamsState, tenant: &str, activity: &Activity) -> Option<String> {
    let key = (tenant.to_string(), activity.from.id.clone());
    if let Some((email, at)) = state
        .inner
        .emails
        .lock()
        .expect("email cache lock")
        .get(&key)
        && at.elapsed() < EMAIL_TTL
    {
        return email.clone();
    }
    let email = match state
        .inner
        .connector
        .get_member(
            &activity.service_url,
            &activity.conversation.id,
            &activity.from.id,
        )
        .await
    {
        Ok(m) => m.and_then(|m| m.best_email()),
        Err(e) => {
            warn!(error = %e, "looking up a Teams user's email failed");
            return None;
        }
    };
    let mut emails = state.inner.emails.lock().expect("email cache lock");
    if emails.len() > 100_000 {
        emails.clear();
    }
    emails.insert(key, (email.clone(), Instant::now()));
    email
}
