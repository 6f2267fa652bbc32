//! `POST /discord/interactions`: Discord's HTTP interactions endpoint.
//!
//! Raw body (≤ [`MAX_BODY_BYTES`]) → Ed25519 check (401, handler never called) → replay memory
//! → parse → PING/PONG → guild check ([`Conversation::workspace_known`]) → the
//! [`Conversation`] within [`ACK_BUDGET`]. An answer in time is the HTTP response itself; a late
//! one is acknowledged first (type 5 "thinking…", ephemeral, or type 6 for a button) and lands
//! afterwards by editing the original response or as an ephemeral follow-up.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::chat_message::Message;
use serde_json::{Value, json};
use tracing::{error, info, warn};

use super::client::{DiscordClient, DiscordError, File};
use super::config::DiscordConfig;
use super::inbound::{self, ComponentId, Context, Inbound, ModalId};
use super::limits;
use super::render::{self, FIELD_DENY_REASON, FIELD_REASON, FIELD_WANTED_DATE};
use super::verify::{self, ReplayGuard, Verifier};
use crate::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use crate::dedupe::SeenIds;

/// Interactions are a few KiB; larger → 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Discord waits 3 s for the first response; we answer within 2.5 s.
pub const ACK_BUDGET: Duration = Duration::from_millis(2500);
pub const UNKNOWN_GUILD_TEXT: &str = "Lineup isn't connected to this Discord server yet. \
     Ask your Lineup admin to add it from the portal's chat settings.";
pub const NO_GUILD_TEXT: &str = "Use `/esim` in your company's Discord server.";
pub const DONE_TEXT: &str = "Done.";
pub const ALREADY_HANDLED_TEXT: &str = "Already handled.";
pub const STALE_BUTTON_TEXT: &str = "This button is no longer valid.";
pub const FAILED_TEXT: &str = "Sorry, something went wrong. Please try again.";

/// Shared state of the Discord route. Cheap to clone.
#[derive(Clone)]
pub struct DiscordState {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    conversation: Arc<dyn Conversation>,
    client: DiscordClient,
    replays: ReplayGuard,
    ack_budget: Duration,
}

impl DiscordState {
    /// State with a REST client built from `config` (its `api_base_url`). `seen` remembers
    /// the interactions handled: the database's for a server that may have replicas.
    pub fn new(
        config: DiscordConfig,
        conversation: Arc<dyn Conversation>,
        seen: Arc<dyn SeenIds>,
    ) -> Result<Self, DiscordError> {
        let client = DiscordClient::new(config)?;
        Self::with_client(client, conversation, seen)
    }

    pub fn with_client(
        client: DiscordClient,
        conversation: Arc<dyn Conversation>,
        seen: Arc<dyn SeenIds>,
    ) -> Result<Self, DiscordError> {
        let verifier =
            Verifier::from_hex(&client.config().public_key).map_err(DiscordError::Config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                verifier,
                conversation,
                client,
                replays: ReplayGuard::new("discord_signature", seen),
                ack_budget: ACK_BUDGET,
            }),
        })
    }

    /// Changes the 2.5 s budget (tests). Call before cloning.
    pub fn with_ack_budget(mut self, budget: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ack_budget = budget;
        }
        self
    }

    pub fn client(&self) -> &DiscordClient {
        &self.inner.client
    }
}

/// The Discord route, ready to merge into the main server's router.
pub fn discord_router(state: DiscordState) -> Router {
    Router::new()
        .route("/discord/interactions", post(interactions))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn respond(body: Value) -> Response {
    if let Err(problems) = limits::check_response(&body) {
        warn!(?problems, "Discord interaction response breaks a limit");
    }
    axum::Json(body).into_response()
}

fn ephemeral(text: &str) -> Response {
    respond(render::respond_message(render::ephemeral_text(text)))
}

/// What the person did, once it needs the [`Conversation`].
enum Job {
    Command(String),
    Click { action_id: String, value: String },
    RequestForm(RequestForm),
    DenyReason { request_id: String, reason: String },
}

enum Outcome {
    Answer(Answer),
    Form(FormAnswer),
}

/// How an outcome reaches Discord.
enum Delivery {
    /// The HTTP response body.
    Now(Value),
    /// Ack with this body, then PATCH `@original` with (body, file): an answer with a file
    /// cannot ride in the HTTP response.
    DeferThenEdit(Value, Value, Option<File>),
}

async fn interactions(
    State(state): State<DiscordState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = verify::unix_now();
    let signature = header_str(&headers, verify::SIGNATURE_HEADER);
    let ts = match state.inner.verifier.verify(
        header_str(&headers, verify::TIMESTAMP_HEADER),
        signature,
        &body,
        now,
    ) {
        Ok(ts) => ts,
        Err(e) => {
            warn!(error = %e, "Discord interaction refused");
            return (StatusCode::UNAUTHORIZED, "invalid request signature").into_response();
        }
    };
    let interaction = match inbound::parse(&body) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "unreadable Discord interaction");
            return (StatusCode::BAD_REQUEST, "unreadable interaction").into_response();
        }
    };
    if interaction == Inbound::Ping {
        return respond(json!({"type": render::PONG}));
    }
    match state
        .inner
        .replays
        .first_time(ts, signature.unwrap_or_default(), now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            info!("replayed Discord interaction acknowledged and skipped");
            return match interaction {
                Inbound::Component { .. } => respond(render::respond_deferred_update()),
                _ => ephemeral(ALREADY_HANDLED_TEXT),
            };
        }
        Err(e) => {
            // Handling it might handle a replay; Discord shows the person the failure and
            // they can try again.
            error!(error = %e, "Discord interaction refused unchecked");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response();
        }
    }
    handle(state, interaction).await
}

fn speaker(guild: &str, ctx: &Context) -> Speaker {
    Speaker {
        platform: Platform::Discord,
        workspace_id: guild.to_string(),
        user_id: ctx.user_id.clone(),
        email: None,
    }
}

async fn handle(state: DiscordState, interaction: Inbound) -> Response {
    let (ctx, job) = match interaction {
        Inbound::Ping => return respond(json!({"type": render::PONG})),
        Inbound::Other { kind } => {
            info!(kind, "Discord interaction type ignored");
            return (StatusCode::BAD_REQUEST, "unsupported interaction type").into_response();
        }
        Inbound::Command { ctx, name, text } => {
            if name != "esim" {
                return ephemeral(&format!("Lineup doesn't know `/{name}`. Try `/esim help`."));
            }
            (ctx, Job::Command(text))
        }
        Inbound::Component {
            ctx,
            custom_id,
            values,
            label,
        } => match inbound::parse_component_id(&custom_id) {
            ComponentId::PlanSelect => {
                return match values.first() {
                    Some(plan) => respond(render::respond_modal(render::request_modal(plan, None))),
                    None => ephemeral("Pick a plan first."),
                };
            }
            ComponentId::OpenDeny { request_id } => {
                return respond(render::respond_modal(render::deny_modal(&request_id)));
            }
            ComponentId::Unknown => return ephemeral(STALE_BUTTON_TEXT),
            ComponentId::Action {
                guild,
                action_id,
                value,
                confirm,
            } => {
                let ctx = match (guild, &ctx.guild_id) {
                    (Some(g), Some(here)) if &g != here => {
                        warn!(button = g, here, "button of another guild refused");
                        return ephemeral(STALE_BUTTON_TEXT);
                    }
                    (Some(g), None) => Context {
                        guild_id: Some(g),
                        ..ctx
                    },
                    _ => ctx,
                };
                if confirm {
                    if !known(&state, &ctx).await {
                        return ephemeral(UNKNOWN_GUILD_TEXT);
                    }
                    let real = custom_id.trim_start_matches('?');
                    let label = label.unwrap_or_else(|| "continue".into());
                    let question = format!("*{label}*: are you sure? This can't be undone.");
                    return respond(render::respond_message(render::confirm_prompt(
                        &question,
                        &label.to_lowercase(),
                        real,
                    )));
                }
                (ctx, Job::Click { action_id, value })
            }
        },
        Inbound::ModalSubmit {
            ctx,
            custom_id,
            mut fields,
        } => match inbound::parse_modal_id(&custom_id) {
            ModalId::RequestForm { plan_id } => (
                ctx,
                Job::RequestForm(RequestForm {
                    plan_id,
                    reason: fields
                        .remove(FIELD_REASON)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    wanted_date: fields
                        .remove(FIELD_WANTED_DATE)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                }),
            ),
            ModalId::DenyReason { request_id } => (
                ctx,
                Job::DenyReason {
                    request_id,
                    reason: fields
                        .remove(FIELD_DENY_REASON)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                },
            ),
            ModalId::Unknown => return ephemeral(STALE_BUTTON_TEXT),
        },
    };
    let Some(guild) = ctx.guild_id.clone() else {
        return ephemeral(NO_GUILD_TEXT);
    };
    if !known(&state, &ctx).await {
        info!(guild, "interaction from an unknown guild refused");
        return ephemeral(UNKNOWN_GUILD_TEXT);
    }
    run(state, ctx, guild, job).await
}

async fn known(state: &DiscordState, ctx: &Context) -> bool {
    match &ctx.guild_id {
        Some(g) => {
            state
                .inner
                .conversation
                .workspace_known(Platform::Discord, g)
                .await
        }
        None => false,
    }
}

async fn run(state: DiscordState, ctx: Context, guild: String, job: Job) -> Response {
    let conversation = state.inner.conversation.clone();
    let who = speaker(&guild, &ctx);
    let dedupe = format!("discord:{}", ctx.id);
    let is_click = matches!(job, Job::Click { .. });
    let request_form = matches!(job, Job::RequestForm(_));
    let mut task = tokio::spawn(async move {
        match job {
            Job::Command(text) => Outcome::Answer(conversation.command(who, &text, &dedupe).await),
            Job::Click { action_id, value } => {
                Outcome::Answer(conversation.click(who, &action_id, &value).await)
            }
            Job::RequestForm(form) => {
                Outcome::Form(conversation.submit_request_form(who, form, &dedupe).await)
            }
            Job::DenyReason { request_id, reason } => Outcome::Form(
                conversation
                    .submit_deny_reason(who, &request_id, &reason)
                    .await,
            ),
        }
    });
    let from_message = ctx.message_id.is_some();
    match tokio::time::timeout(state.inner.ack_budget, &mut task).await {
        Ok(Ok(outcome)) => match in_time(outcome, is_click, request_form && from_message) {
            Delivery::Now(body) => respond(body),
            Delivery::DeferThenEdit(ack, body, file) => {
                let client = state.inner.client.clone();
                tokio::spawn(async move {
                    // Discord needs the ack before the original response can be edited.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Err(e) = client.edit_original(&ctx.token, &body, file.as_ref()).await {
                        warn!(error = %e, "editing the deferred Discord response failed");
                    }
                });
                respond(ack)
            }
        },
        Ok(Err(e)) => {
            warn!(error = %e, "Discord interaction handler failed");
            ephemeral(FAILED_TEXT)
        }
        Err(_) => {
            let client = state.inner.client.clone();
            tokio::spawn(async move {
                let outcome = match task.await {
                    Ok(o) => o,
                    Err(e) => {
                        warn!(error = %e, "Discord interaction handler failed");
                        Outcome::Answer(Answer::Private(Message::text(FAILED_TEXT)))
                    }
                };
                deliver_late(&client, &ctx.token, outcome, is_click).await;
            });
            if is_click {
                respond(render::respond_deferred_update())
            } else {
                respond(render::respond_deferred_ephemeral())
            }
        }
    }
}

fn file_of(m: &Message) -> Option<File> {
    m.image.as_ref().map(|i| File {
        bytes: i.png.clone(),
        filename: i.filename.clone(),
    })
}

/// An ephemeral message for `m`, keeping its image (for REST calls that can carry the file).
fn ephemeral_with_image(m: &Message) -> Value {
    let mut body = render::message_payload(m, None);
    body["flags"] = json!(render::EPHEMERAL);
    body
}

fn in_time(outcome: Outcome, is_click: bool, replace_select: bool) -> Delivery {
    match outcome {
        Outcome::Answer(Answer::Nothing) if is_click => {
            Delivery::Now(render::respond_deferred_update())
        }
        Outcome::Answer(Answer::Nothing) => {
            Delivery::Now(render::respond_message(render::ephemeral_text(DONE_TEXT)))
        }
        Outcome::Answer(Answer::Private(m)) | Outcome::Form(FormAnswer::Done(Some(m)))
            if m.image.is_some() =>
        {
            Delivery::DeferThenEdit(
                render::respond_deferred_ephemeral(),
                ephemeral_with_image(&m),
                file_of(&m),
            )
        }
        Outcome::Answer(Answer::Private(m)) => {
            Delivery::Now(render::respond_message(render::ephemeral_message(&m)))
        }
        Outcome::Answer(Answer::OpenRequestForm { plans }) => {
            Delivery::Now(render::respond_message(render::plan_select(&plans)))
        }
        Outcome::Answer(Answer::OpenDenyForm { request_id }) => {
            Delivery::Now(render::respond_modal(render::deny_modal(&request_id)))
        }
        Outcome::Form(FormAnswer::Done(m)) if replace_select => {
            // The request form was opened from the ephemeral plan select: replace it, so the
            // select does not linger.
            let mut data = match &m {
                Some(m) => render::ephemeral_message(m),
                None => render::ephemeral_text("Request sent."),
            };
            data["components"] = json!([]);
            Delivery::Now(json!({"type": render::UPDATE_MESSAGE, "data": data}))
        }
        Outcome::Form(FormAnswer::Done(Some(m))) => {
            Delivery::Now(render::respond_message(render::ephemeral_message(&m)))
        }
        Outcome::Form(FormAnswer::Done(None)) => Delivery::Now(render::respond_deferred_update()),
        Outcome::Form(FormAnswer::FieldError { field, message }) => Delivery::Now(
            render::respond_message(render::field_error(field, &message)),
        ),
    }
}

/// A late outcome: commands and forms edit the deferred "thinking…" response; clicks (acked
/// with type 6) get an ephemeral follow-up when there is something to say.
async fn deliver_late(client: &DiscordClient, token: &str, outcome: Outcome, is_click: bool) {
    let (body, file) = match outcome {
        Outcome::Answer(Answer::Nothing) if is_click => return,
        Outcome::Form(FormAnswer::Done(None)) if is_click => return,
        Outcome::Answer(Answer::Nothing) | Outcome::Form(FormAnswer::Done(None)) => {
            (render::ephemeral_text(DONE_TEXT), None)
        }
        Outcome::Answer(Answer::Private(m)) | Outcome::Form(FormAnswer::Done(Some(m))) => {
            (ephemeral_with_image(&m), file_of(&m))
        }
        Outcome::Answer(Answer::OpenRequestForm { plans }) => (render::plan_select(&plans), None),
        // A modal can only answer the interaction itself: offer a button that opens it.
        Outcome::Answer(Answer::OpenDenyForm { request_id }) => {
            (render::open_deny_prompt(&request_id), None)
        }
        Outcome::Form(FormAnswer::FieldError { field, message }) => {
            (render::field_error(field, &message), None)
        }
    };
    let result = if is_click {
        client
            .followup(token, &body, file.as_ref())
            .await
            .map(|_| ())
    } else {
        client.edit_original(token, &body, file.as_ref()).await
    };
    if let Err(e) = result {
        warn!(error = %e, "delivering a late Discord answer failed");
    }
}
