//! A fake Discord REST API on a real socket (axum on 127.0.0.1:0) for tests, plus request
//! signing exactly as Discord does and a recording [`Conversation`].
//!
//! It implements what `lineup_bot::discord::DiscordClient` calls — `POST /users/@me/channels`,
//! `POST|PATCH /channels/{c}/messages[/{m}]` (JSON or multipart with `payload_json` and
//! `files[n]`), `POST /interactions/{id}/{token}/callback`, `POST /webhooks/{app}/{token}`,
//! `PATCH /webhooks/{app}/{token}/messages/@original`, `PUT /applications/{app}/commands` and
//! `PUT /applications/{app}/guilds/{g}/commands` — under `/api/v10`, answers with Discord-shaped
//! JSON (snowflake ids; complete enough for serenity's models), records every call and runs the
//! limits checker on every message, interaction response and modal it receives.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use ed25519_dalek::{Signer, SigningKey};
use lineup_bot::chat::{Answer, Conversation, FormAnswer, RequestForm, Speaker};
use lineup_bot::discord::limits;
use lineup_core::messaging::chat::Platform;
use serde_json::{Value, json};

/// The fixed seed of [`test_signing_key`].
pub const TEST_KEY_SEED: [u8; 32] = *b"lineup-discord-test-signing-key!";
/// The fake's application id (use it in the bot's `DiscordConfig`).
pub const APPLICATION_ID: &str = "1100000000000000001";
/// The bot user the fake says messages come from.
pub const BOT_USER_ID: &str = "1100000000000000002";

/// Discord's application key pair, deterministic for tests.
pub fn test_signing_key() -> SigningKey {
    SigningKey::from_bytes(&TEST_KEY_SEED)
}

/// The hex public key to configure the bot with (what the developer portal shows).
pub fn test_public_key_hex() -> String {
    hex::encode(test_signing_key().verifying_key().to_bytes())
}

/// The `X-Signature-Ed25519` Discord sends: hex Ed25519 signature of `timestamp + body`.
/// Written independently of the bot's verifier so tests check the scheme, not an echo.
pub fn sign_discord_request(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    hex::encode(key.sign(&signed).to_bytes())
}

/// A file part of a multipart request.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The form field, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The path under `/api/v10`, e.g. `/channels/123/messages`.
    pub path: String,
    pub query: Option<String>,
    /// The `Authorization` header (`Bot …`).
    pub auth: Option<String>,
    /// The JSON body, or the multipart `payload_json`; `Null` when there is none.
    pub body: Value,
    pub attachments: Vec<Attachment>,
}

/// A payload that broke Discord's documented limits.
#[derive(Debug, Clone)]
pub struct Violation {
    pub path: String,
    pub problems: Vec<String>,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    violations: Vec<Violation>,
    dm_channels: HashMap<String, String>,
    /// Current body of each message by id (what an edit left).
    messages: HashMap<String, Value>,
    /// OAuth2 codes `/oauth2/token` accepts (once each), with the guild the invite added.
    invites: HashMap<String, (String, String)>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    next_id: Arc<AtomicU64>,
}

impl Shared {
    fn snowflake(&self) -> String {
        (1_200_000_000_000_000_000u64 + self.next_id.fetch_add(1, Ordering::SeqCst)).to_string()
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeDiscord {
    pub addr: SocketAddr,
    shared: Shared,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let shared = Shared {
            inner: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let app = Router::new()
            .route("/api/v10/{*rest}", any(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Discord");
        let addr = listener.local_addr().expect("fake Discord address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Discord serves");
        });
        Self {
            addr,
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/api/v10`: the bot's `api_base_url`.
    pub fn api_base_url(&self) -> String {
        format!("http://{}/api/v10", self.addr)
    }

    /// Makes `POST /oauth2/token` accept `code` once, answering that the bot joined guild
    /// `guild_id` named `guild_name`.
    pub fn accept_invite_code(&self, code: &str, guild_id: &str, guild_name: &str) {
        self.shared.inner.lock().unwrap().invites.insert(
            code.to_string(),
            (guild_id.to_string(), guild_name.to_string()),
        );
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    /// Calls whose method is `method` and whose path ends with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .collect()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.shared.inner.lock().unwrap().violations.clone()
    }

    /// The DM channel handed out for `user`, once one was opened.
    pub fn dm_channel(&self, user: &str) -> Option<String> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .dm_channels
            .get(user)
            .cloned()
    }

    /// The current body of a message the fake holds.
    pub fn message(&self, id: &str) -> Option<Value> {
        self.shared.inner.lock().unwrap().messages.get(id).cloned()
    }

    /// Waits until `ready(calls)` holds (or `timeout`), returning the calls then.
    pub async fn wait_for(&self, timeout: Duration, ready: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if ready(&calls) || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `multipart/form-data` → (`payload_json`, files).
fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<Attachment>) {
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return (Value::Null, Vec::new());
    };
    let delimiter = format!("--{boundary}").into_bytes();
    let mut payload = Value::Null;
    let mut files = Vec::new();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(pos) = find(rest, &delimiter) {
        parts.push(&rest[..pos]);
        rest = &rest[pos + delimiter.len()..];
    }
    for part in parts.into_iter().skip(1) {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let mut data = &part[split + 4..];
        if data.ends_with(b"\r\n") {
            data = &data[..data.len() - 2];
        }
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default()
            .to_string();
        let attr = |key: &str| {
            disposition.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix(&format!("{key}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        let name = attr("name").unwrap_or_default();
        let content_type = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type:")
                .then(|| l["content-type:".len()..].trim().to_string())
        });
        if name == "payload_json" {
            payload = serde_json::from_slice(data).unwrap_or(Value::Null);
        } else {
            files.push(Attachment {
                field: name,
                filename: attr("filename").unwrap_or_default(),
                content_type,
                bytes: data.to_vec(),
            });
        }
    }
    (payload, files)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn user(id: &str, name: &str, bot: bool) -> Value {
    json!({"id": id, "username": name, "discriminator": "0", "global_name": null, "avatar": null, "bot": bot})
}

/// A Discord message object for a body we accepted.
fn message_object(
    id: &str,
    channel_id: &str,
    body: &Value,
    files: &[Attachment],
    webhook: bool,
) -> Value {
    let mut embeds = body.get("embeds").cloned().unwrap_or(json!([]));
    for e in embeds.as_array_mut().into_iter().flatten() {
        if e.get("fields").is_none() {
            e["fields"] = json!([]);
        }
        if let Some(url) = e.pointer("/image/url").cloned() {
            e["image"]["proxy_url"] = url;
        }
        e["type"] = json!("rich");
    }
    let attachments: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let url = format!(
                "https://cdn.discordapp.com/attachments/{channel_id}/{id}/{}",
                f.filename
            );
            json!({"id": format!("{id}{i}"), "filename": f.filename, "size": f.bytes.len(),
                   "url": url, "proxy_url": url, "content_type": f.content_type})
        })
        .collect();
    json!({
        "id": id,
        "channel_id": channel_id,
        "author": user(BOT_USER_ID, "Lineup", true),
        "content": body.get("content").cloned().unwrap_or(json!("")),
        "timestamp": "2026-01-01T00:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": embeds,
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": if body.get("message_reference").is_some() { 19 } else { 0 },
        "flags": body.get("flags").cloned().unwrap_or(json!(0)),
        "message_reference": body.get("message_reference").cloned(),
        "webhook_id": if webhook { json!(APPLICATION_ID) } else { Value::Null },
        "application_id": APPLICATION_ID,
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "404: Not Found", "code": 0})),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{rest}");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (json_body, files) = if content_type.starts_with("multipart/form-data") {
        parse_multipart(&content_type, &body)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: serde_json::Map<String, Value> = url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        (Value::Object(fields), Vec::new())
    } else if body.is_empty() {
        (Value::Null, Vec::new())
    } else {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        )
    };
    let call = Call {
        method: method.to_string(),
        path: path.clone(),
        query,
        auth: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: json_body.clone(),
        attachments: files.clone(),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let check = |r: Result<(), Vec<String>>| {
        if let Err(problems) = r {
            shared.inner.lock().unwrap().violations.push(Violation {
                path: path.clone(),
                problems,
            });
        }
    };
    let inner_calls = |c: Call| shared.inner.lock().unwrap().calls.push(c);
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["oauth2", "token"]) => {
            inner_calls(call);
            let code = json_body
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some((id, name)) = shared.inner.lock().unwrap().invites.remove(code) else {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                )
                    .into_response();
            };
            axum::Json(json!({
                "access_token": "fake-access-token", "token_type": "Bearer",
                "expires_in": 604800, "refresh_token": "fake-refresh-token",
                "scope": "bot applications.commands",
                "guild": {"id": id, "name": name, "owner_id": "1100000000000000001"},
            }))
            .into_response()
        }
        ("DELETE", ["users", "@me", "guilds", _guild]) => {
            inner_calls(call);
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["users", "@me", "channels"]) => {
            inner_calls(call);
            let Some(recipient) = json_body.get("recipient_id").and_then(Value::as_str) else {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"message": "Invalid Form Body", "code": 50035})),
                )
                    .into_response();
            };
            let id = {
                let existing = shared
                    .inner
                    .lock()
                    .unwrap()
                    .dm_channels
                    .get(recipient)
                    .cloned();
                match existing {
                    Some(id) => id,
                    None => {
                        let id = shared.snowflake();
                        shared
                            .inner
                            .lock()
                            .unwrap()
                            .dm_channels
                            .insert(recipient.to_string(), id.clone());
                        id
                    }
                }
            };
            axum::Json(
                json!({"id": id, "type": 1, "last_message_id": null, "flags": 0,
                "recipients": [user(recipient, "employee", false)]}),
            )
            .into_response()
        }
        ("POST", ["channels", channel, "messages"]) => {
            inner_calls(call);
            check(limits::check_message(&json_body));
            let id = shared.snowflake();
            shared
                .inner
                .lock()
                .unwrap()
                .messages
                .insert(id.clone(), json_body.clone());
            axum::Json(message_object(&id, channel, &json_body, &files, false)).into_response()
        }
        ("PATCH", ["channels", channel, "messages", id]) => {
            inner_calls(call);
            check(limits::check_message(&json_body));
            let known = shared.inner.lock().unwrap().messages.contains_key(*id);
            if !known {
                return (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"message": "Unknown Message", "code": 10008})),
                )
                    .into_response();
            }
            shared
                .inner
                .lock()
                .unwrap()
                .messages
                .insert(id.to_string(), json_body.clone());
            axum::Json(message_object(id, channel, &json_body, &files, false)).into_response()
        }
        ("POST", ["interactions", _id, _token, "callback"]) => {
            inner_calls(call);
            check(limits::check_response(&json_body));
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["webhooks", _app, _token]) => {
            inner_calls(call);
            check(limits::check_message(&json_body));
            let id = shared.snowflake();
            axum::Json(message_object(
                &id,
                "1300000000000000000",
                &json_body,
                &files,
                true,
            ))
            .into_response()
        }
        ("PATCH", ["webhooks", _app, _token, "messages", "@original"]) => {
            inner_calls(call);
            check(limits::check_message(&json_body));
            let id = shared.snowflake();
            axum::Json(message_object(
                &id,
                "1300000000000000000",
                &json_body,
                &files,
                true,
            ))
            .into_response()
        }
        ("PUT", ["applications", app, "commands"])
        | ("PUT", ["applications", app, "guilds", _, "commands"]) => {
            inner_calls(call);
            let guild = segments
                .get(3)
                .filter(|_| segments.len() == 5)
                .map(|g| g.to_string());
            let commands: Vec<Value> = json_body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(shared.snowflake());
                    c["application_id"] = json!(app);
                    c["version"] = json!(shared.snowflake());
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    if let Some(g) = &guild {
                        c["guild_id"] = json!(g);
                    }
                    c
                })
                .collect();
            axum::Json(Value::Array(commands)).into_response()
        }
        _ => {
            inner_calls(call);
            not_found()
        }
    }
}

/// What a [`RecordingConversation`] was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCall {
    Command {
        speaker: Speaker,
        text: String,
        dedupe_key: String,
    },
    Click {
        speaker: Speaker,
        action_id: String,
        value: String,
    },
    RequestForm {
        speaker: Speaker,
        form: RequestForm,
        dedupe_key: String,
    },
    DenyReason {
        speaker: Speaker,
        request_id: String,
        reason: String,
    },
}

/// A [`Conversation`] that records every call and answers what it is told, after an optional
/// delay (to exercise the deferred path).
pub struct RecordingConversation {
    known: Mutex<HashSet<String>>,
    calls: Mutex<Vec<ConversationCall>>,
    answer: Mutex<Answer>,
    form_answer: Mutex<FormAnswer>,
    delay: Mutex<Duration>,
}

impl RecordingConversation {
    /// Knows the given guilds; answers `Answer::Nothing` / `FormAnswer::Done(None)` at once.
    pub fn new(known_guilds: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            known: Mutex::new(known_guilds.iter().map(|g| g.to_string()).collect()),
            calls: Mutex::default(),
            answer: Mutex::new(Answer::Nothing),
            form_answer: Mutex::new(FormAnswer::Done(None)),
            delay: Mutex::default(),
        })
    }

    pub fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    pub fn form_answer(&self, a: FormAnswer) {
        *self.form_answer.lock().unwrap() = a;
    }

    pub fn delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn calls(&self) -> Vec<ConversationCall> {
        self.calls.lock().unwrap().clone()
    }

    async fn record(&self, c: ConversationCall) {
        self.calls.lock().unwrap().push(c);
        let d = *self.delay.lock().unwrap();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

#[async_trait]
impl Conversation for RecordingConversation {
    async fn workspace_known(&self, platform: Platform, workspace_id: &str) -> bool {
        platform == Platform::Discord && self.known.lock().unwrap().contains(workspace_id)
    }

    async fn command(&self, speaker: Speaker, text: &str, dedupe_key: &str) -> Answer {
        self.record(ConversationCall::Command {
            speaker,
            text: text.to_string(),
            dedupe_key: dedupe_key.to_string(),
        })
        .await;
        self.answer.lock().unwrap().clone()
    }

    async fn click(&self, speaker: Speaker, action_id: &str, value: &str) -> Answer {
        self.record(ConversationCall::Click {
            speaker,
            action_id: action_id.to_string(),
            value: value.to_string(),
        })
        .await;
        self.answer.lock().unwrap().clone()
    }

    async fn submit_request_form(
        &self,
        speaker: Speaker,
        form: RequestForm,
        dedupe_key: &str,
    ) -> FormAnswer {
        self.record(ConversationCall::RequestForm {
            speaker,
            form,
            dedupe_key: dedupe_key.to_string(),
        })
        .await;
        self.form_answer.lock().unwrap().clone()
    }

    async fn submit_deny_reason(
        &self,
        speaker: Speaker,
        request_id: &str,
        reason: &str,
    ) -> FormAnswer {
        self.record(ConversationCall::DenyReason {
            speaker,
            request_id: request_id.to_string(),
            reason: reason.to_string(),
        })
        .await;
        self.form_answer.lock().unwrap().clone()
    }
}
