//! A fake Slack Web API on a real socket (axum on 127.0.0.1:0) for tests.
//!
//! It implements the methods `lineup_bot::slack::SlackClient` calls (`chat.postMessage`,
//! `chat.update`, `chat.postEphemeral`, `conversations.open`, `views.open`/`views.update`,
//! `users.lookupByEmail`, `users.info`, `files.getUploadURLExternal` + the upload URL +
//! `files.completeUploadExternal`, `oauth.v2.access`) and a `/response_url/{id}` endpoint, answers
//! with Slack-shaped JSON, records every call with its parsed body and token, and runs the Block
//! Kit limits checker on every message and view it receives.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine;
use hmac::{Hmac, Mac};
use lineup_bot::slack::limits;
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`: the `X-Slack-Signature` Slack would send.
/// Written independently of the bot's verifier so tests check the scheme, not an echo.
pub fn sign_slack_request(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Web API method (`chat.postMessage`), `upload` for the upload URL, or `response_url`.
    pub method: String,
    /// The bot token from `Authorization: Bearer` or a `token` parameter.
    pub token: Option<String>,
    /// Query, form or JSON body as one JSON object (form values that hold JSON, like `blocks` or
    /// `view`, are parsed). For `upload`: `{"file_id", "length"}`.
    pub body: Value,
    /// The `{id}` of `/response_url/{id}` or `/upload/{file_id}`.
    pub path_id: Option<String>,
    /// When the fake received it (benchmarks time deliveries by it).
    pub at: std::time::Instant,
}

/// A payload that broke Slack's documented limits.
#[derive(Debug, Clone)]
pub struct Violation {
    pub method: String,
    pub problems: Vec<String>,
}

/// What `oauth.v2.access` hands out for an accepted code.
#[derive(Debug, Clone)]
pub struct OAuthGrant {
    pub team_id: String,
    pub team_name: String,
    pub bot_token: String,
    pub bot_user_id: String,
    pub authed_user_id: String,
    pub scopes: Vec<String>,
}

/// A file uploaded through the upload-URL flow.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_id: String,
    pub filename: String,
    pub bytes: Vec<u8>,
    /// Set by `files.completeUploadExternal`.
    pub channel: Option<String>,
    pub title: Option<String>,
    pub thread_ts: Option<String>,
    pub completed: bool,
}

enum Failure {
    Error(String),
    RateLimited(u64),
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    violations: Vec<Violation>,
    ts_seq: u64,
    id_seq: u64,
    users: BTreeMap<String, String>,
    dms: HashMap<String, String>,
    oauth: HashMap<String, OAuthGrant>,
    client_credentials: Option<(String, String)>,
    revoked: HashSet<String>,
    failures: HashMap<String, VecDeque<Failure>>,
    uploads: BTreeMap<String, Upload>,
}

impl FakeState {
    fn next_ts(&mut self) -> String {
        self.ts_seq += 1;
        format!(
            "{}.{:06}",
            1_700_000_000 + self.ts_seq / 1_000_000,
            self.ts_seq * 100 % 1_000_000
        )
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.id_seq += 1;
        format!("{prefix}0{:08X}", self.id_seq)
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    base: String,
}

/// A running fake Slack. Dropping it stops the server.
pub struct FakeSlack {
    shared: Shared,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack");
        let addr = listener.local_addr().expect("fake Slack address");
        let shared = Shared {
            state: Arc::new(Mutex::new(FakeState::default())),
            base: format!("http://{addr}"),
        };
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/upload/{file_id}", post(upload))
            .route("/response_url/{id}", post(response_url))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { shared, addr, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.state.lock().expect("fake Slack lock")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Web API base to configure (`SlackConfig::api_base_url`), like `https://slack.com/api/`.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.shared.base)
    }

    /// A `response_url` for an inbound payload; posts to it are recorded as `response_url` calls
    /// with `path_id == Some(id)`.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response_url/{id}", self.shared.base)
    }

    /// Adds a user to the workspace directory (`users.lookupByEmail`, `users.info`).
    pub fn add_user(&self, id: &str, email: &str) {
        self.lock().users.insert(id.to_string(), email.to_string());
    }

    /// Makes `oauth.v2.access` accept `code` (once) and answer with `grant`.
    pub fn accept_oauth_code(&self, code: &str, grant: OAuthGrant) {
        self.lock().oauth.insert(code.to_string(), grant);
    }

    /// Makes `oauth.v2.access` also require these client credentials.
    pub fn require_client_credentials(&self, client_id: &str, client_secret: &str) {
        self.lock().client_credentials = Some((client_id.to_string(), client_secret.to_string()));
    }

    /// Calls with this token answer `invalid_auth` from now on.
    pub fn revoke_token(&self, token: &str) {
        self.lock().revoked.insert(token.to_string());
    }

    /// The next call to `method` answers `ok: false` with `error`.
    pub fn fail_next(&self, method: &str, error: &str) {
        self.lock()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(Failure::Error(error.to_string()));
    }

    /// The next call to `method` answers HTTP 429 with `Retry-After: secs`.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.lock()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(Failure::RateLimited(retry_after_secs));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Bodies posted to `/response_url/{id}`.
    pub fn responses(&self, id: &str) -> Vec<Value> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == "response_url" && c.path_id.as_deref() == Some(id))
            .map(|c| c.body.clone())
            .collect()
    }

    /// Every limits violation seen so far; tests assert this is empty.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().violations.clone()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.values().cloned().collect()
    }

    /// The DM channel id the fake gives `user` (opening it if needed).
    pub fn dm_channel(&self, user: &str) -> String {
        let mut s = self.lock();
        dm_for(&mut s, user)
    }

    /// Waits until at least `n` calls to `method` were received (or `timeout` passes) and
    /// returns them.
    pub async fn wait_for(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls_to(method);
            if calls.len() >= n || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn dm_for(s: &mut FakeState, user: &str) -> String {
    if let Some(d) = s.dms.get(user) {
        return d.clone();
    }
    let d = s.next_id("D");
    s.dms.insert(user.to_string(), d.clone());
    d
}

fn slack_json(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn slack_error(code: &str) -> Response {
    slack_json(json!({"ok": false, "error": code}))
}

/// Query string, form or JSON body → one JSON object; form values holding JSON are parsed.
fn parse_body(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut out = Map::new();
    let form = |raw: &[u8], out: &mut Map<String, Value>| {
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw) {
            for (k, v) in pairs {
                let parsed = match k.as_str() {
                    "blocks" | "view" | "files" | "attachments" => {
                        serde_json::from_str(&v).unwrap_or(Value::String(v))
                    }
                    _ => Value::String(v),
                };
                out.insert(k, parsed);
            }
        }
    };
    if let Some(q) = query {
        form(q.as_bytes(), &mut out);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
            out.extend(o);
        }
    } else if !body.is_empty() {
        form(body, &mut out);
    }
    Value::Object(out)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.strip_prefix("Basic ")?)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn str_of<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn user_json(id: &str, email: &str) -> Value {
    let name = email.split('@').next().unwrap_or(id);
    json!({
        "id": id,
        "team_id": "T0FAKE",
        "name": name,
        "deleted": false,
        "real_name": name,
        "tz": "Europe/Paris",
        "is_bot": false,
        "is_admin": false,
        "profile": {"real_name": name, "display_name": name, "email": email},
    })
}

async fn api(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse_body(query.as_deref(), &headers, &body);
    let token = bearer(&headers).or_else(|| str_of(&body, "token").map(str::to_string));
    let mut s = shared.state.lock().expect("fake Slack lock");
    s.calls.push(Call {
        method: method.clone(),
        token: token.clone(),
        body: body.clone(),
        path_id: None,
        at: std::time::Instant::now(),
    });
    if let Some(f) = s.failures.get_mut(&method).and_then(VecDeque::pop_front) {
        return match f {
            Failure::Error(code) => slack_error(&code),
            Failure::RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                axum::Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response(),
        };
    }
    if method == "oauth.v2.access" {
        return oauth_access(&mut s, &headers, &body);
    }
    match &token {
        None => return slack_error("not_authed"),
        Some(t) if s.revoked.contains(t) => return slack_error("invalid_auth"),
        Some(_) => {}
    }
    let check_message = |s: &mut FakeState, body: &Value| {
        if let Err(problems) = limits::check_message(body) {
            s.violations.push(Violation {
                method: method.clone(),
                problems,
            });
        }
    };
    match method.as_str() {
        "chat.postMessage" => {
            let Some(channel) = str_of(&body, "channel").map(str::to_string) else {
                return slack_error("channel_not_found");
            };
            if str_of(&body, "text").is_none() && body.get("blocks").is_none() {
                return slack_error("no_text");
            }
            check_message(&mut s, &body);
            let ts = s.next_ts();
            let mut message = json!({
                "type": "message", "bot_id": "B0FAKEBOT", "user": "U0FAKEBOT",
                "text": body.get("text").cloned().unwrap_or(json!("")), "ts": ts,
            });
            if let Some(b) = body.get("blocks") {
                message["blocks"] = b.clone();
            }
            if let Some(t) = body.get("thread_ts") {
                message["thread_ts"] = t.clone();
            }
            slack_json(json!({"ok": true, "channel": channel, "ts": ts, "message": message}))
        }
        "auth.revoke" => {
            if let Some(t) = token {
                s.revoked.insert(t);
            }
            slack_json(json!({"ok": true, "revoked": true}))
        }
        "chat.update" => {
            let (Some(channel), Some(ts)) = (str_of(&body, "channel"), str_of(&body, "ts")) else {
                return slack_error("message_not_found");
            };
            let (channel, ts) = (channel.to_string(), ts.to_string());
            check_message(&mut s, &body);
            slack_json(json!({"ok": true, "channel": channel, "ts": ts,
                "text": body.get("text").cloned().unwrap_or(json!(""))}))
        }
        "chat.postEphemeral" => {
            if str_of(&body, "channel").is_none() {
                return slack_error("channel_not_found");
            }
            if str_of(&body, "user").is_none() {
                return slack_error("user_not_in_channel");
            }
            check_message(&mut s, &body);
            let ts = s.next_ts();
            slack_json(json!({"ok": true, "message_ts": ts}))
        }
        "conversations.open" => {
            let users: Vec<String> = match body.get("users") {
                Some(Value::String(u)) => u.split(',').map(str::to_string).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec![],
            };
            match users.as_slice() {
                [user] => {
                    let d = dm_for(&mut s, user);
                    slack_json(json!({"ok": true, "channel": {"id": d}}))
                }
                [] => slack_error("users_list_not_supplied"),
                _ => {
                    let g = s.next_id("G");
                    slack_json(json!({"ok": true, "channel": {"id": g}}))
                }
            }
        }
        "views.open" | "views.update" | "views.push" => {
            let Some(view) = body.get("view").cloned() else {
                return slack_error("invalid_arguments");
            };
            if method == "views.open" && str_of(&body, "trigger_id").is_none() {
                return slack_error("invalid_trigger_id");
            }
            if let Err(problems) = limits::check_view(&view) {
                s.violations.push(Violation {
                    method: method.clone(),
                    problems,
                });
            }
            let id = str_of(&body, "view_id")
                .map(str::to_string)
                .unwrap_or_else(|| s.next_id("V"));
            let mut v = view;
            v["id"] = json!(id);
            v["team_id"] = json!("T0FAKE");
            v["hash"] = json!(format!("{}.{}", 1_700_000_000, id));
            slack_json(json!({"ok": true, "view": v}))
        }
        "users.lookupByEmail" => {
            let email = str_of(&body, "email").unwrap_or_default().to_string();
            match s.users.iter().find(|(_, e)| e.eq_ignore_ascii_case(&email)) {
                Some((id, e)) => slack_json(json!({"ok": true, "user": user_json(id, e)})),
                None => slack_error("users_not_found"),
            }
        }
        "users.info" => {
            let id = str_of(&body, "user").unwrap_or_default();
            match s.users.get(id) {
                Some(e) => slack_json(json!({"ok": true, "user": user_json(id, e)})),
                None => slack_error("user_not_found"),
            }
        }
        "files.getUploadURLExternal" => {
            let (Some(filename), Some(length)) =
                (str_of(&body, "filename"), str_of(&body, "length"))
            else {
                return slack_error("invalid_arguments");
            };
            if length.parse::<u64>().map_or(true, |n| n == 0) {
                return slack_error("invalid_arguments");
            }
            let filename = filename.to_string();
            let file_id = s.next_id("F");
            s.uploads.insert(
                file_id.clone(),
                Upload {
                    file_id: file_id.clone(),
                    filename,
                    bytes: vec![],
                    channel: None,
                    title: None,
                    thread_ts: None,
                    completed: false,
                },
            );
            slack_json(json!({"ok": true, "file_id": file_id,
                "upload_url": format!("{}/upload/{file_id}", shared.base)}))
        }
        "files.completeUploadExternal" => {
            let files = body
                .get("files")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if files.is_empty() {
                return slack_error("invalid_arguments");
            }
            let channel = str_of(&body, "channel_id").map(str::to_string);
            let thread_ts = str_of(&body, "thread_ts").map(str::to_string);
            let mut out = vec![];
            for f in files {
                let id = f.get("id").and_then(Value::as_str).unwrap_or_default();
                let Some(up) = s.uploads.get_mut(id) else {
                    return slack_error("file_not_found");
                };
                if up.bytes.is_empty() {
                    return slack_error("file_not_found");
                }
                up.completed = true;
                up.channel = channel.clone();
                up.thread_ts = thread_ts.clone();
                up.title = f.get("title").and_then(Value::as_str).map(str::to_string);
                out.push(json!({"id": id, "name": up.filename, "title": up.title, "mimetype": "image/png"}));
            }
            slack_json(json!({"ok": true, "files": out}))
        }
        "auth.test" => slack_json(json!({"ok": true, "team_id": "T0FAKE", "user_id": "U0FAKEBOT"})),
        _ => slack_error("unknown_method"),
    }
}

fn oauth_access(s: &mut FakeState, headers: &HeaderMap, body: &Value) -> Response {
    let creds = basic(headers).or_else(|| {
        Some((
            str_of(body, "client_id")?.to_string(),
            str_of(body, "client_secret")?.to_string(),
        ))
    });
    if let Some(required) = &s.client_credentials
        && creds.as_ref() != Some(required)
    {
        return slack_error("invalid_client_id");
    }
    if creds.is_none() {
        return slack_error("invalid_client_id");
    }
    let Some(grant) = str_of(body, "code").and_then(|c| s.oauth.remove(c)) else {
        return slack_error("invalid_code");
    };
    slack_json(json!({
        "ok": true,
        "access_token": grant.bot_token,
        "token_type": "bot",
        "scope": grant.scopes.join(","),
        "bot_user_id": grant.bot_user_id,
        "app_id": "A0FAKEAPP",
        "team": {"id": grant.team_id, "name": grant.team_name},
        "enterprise": null,
        "is_enterprise_install": false,
        "authed_user": {"id": grant.authed_user_id},
    }))
}

async fn upload(
    State(shared): State<Shared>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = shared.state.lock().expect("fake Slack lock");
    s.calls.push(Call {
        method: "upload".into(),
        token: bearer(&headers),
        body: json!({"file_id": file_id, "length": body.len()}),
        path_id: Some(file_id.clone()),
        at: std::time::Instant::now(),
    });
    match s.uploads.get_mut(&file_id) {
        Some(up) => {
            up.bytes = body.to_vec();
            (StatusCode::OK, format!("OK - {}", body.len())).into_response()
        }
        None => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}

async fn response_url(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse_body(None, &headers, &body);
    let mut s = shared.state.lock().expect("fake Slack lock");
    if let Err(problems) = limits::check_message(&body) {
        s.violations.push(Violation {
            method: "response_url".into(),
            problems,
        });
    }
    s.calls.push(Call {
        method: "response_url".into(),
        token: bearer(&headers),
        body,
        path_id: Some(id),
        at: std::time::Instant::now(),
    });
    slack_json(json!({"ok": true}))
}
