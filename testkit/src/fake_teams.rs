//! A fake Microsoft identity platform + Bot Connector on one real socket (axum on 127.0.0.1:0).
//!
//! It serves (a) the OpenID metadata (`/openid`) and the JWKS (`/keys`) with one fixed RSA test
//! key, kid [`TEST_KID`], endorsed for `msteams`; (b) the token service (`POST /token`,
//! client credentials, checking the app id and password, handing out expiring tokens); and
//! (c) the Bot Connector under [`FakeTeams::service_url`] (`/connector/v3/conversations…`:
//! create a conversation, send, reply, update, get a member), recording every call with its
//! JSON body and bearer token, refusing tokens it did not issue, running the Adaptive Card
//! limits checker on every activity it receives and recording violations, and answering with
//! realistic ids.
//!
//! [`sign_activity_token`] mints inbound JWTs the way the Bot Connector does (RS256, `kid`,
//! `iss`, `aud`, `serviceurl`, `nbf`, `exp`); the `*_activity` helpers build realistic
//! activities. The key is a fixed PEM (generating RSA keys in debug builds is slow); never use
//! it for anything but tests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lineup_bot::teams::limits;
use serde_json::{Value, json};

/// The `kid` of the test key in the fake JWKS.
pub const TEST_KID: &str = "test-key";
/// The `iss` the fake signs with (the Bot Framework's).
pub const BOT_FRAMEWORK_ISSUER: &str = "https://api.botframework.com";

/// The test signing key (PKCS#1 PEM), published in the fake JWKS under [`TEST_KID`].
pub const TEST_KEY_PEM: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA63N1IVplobko5bSpPuJKhV9rdOGsxGINlAK2ZqpQYKzmAI2r
ic5GIqlBnuszZF2Z3miRsh9QCV10j7vthik+T9PFWhYJdfX1xNhQVlI7VokIw10W
g8l78TzChGD9TrYciNoGnkKB+AGN4RNCrd3vox1xmRTUc1rAPHi14ZkMKG60Yapo
PXxy3Z5Vj3/dRI8jyjK/Rj9WsvIiaHhVdrSF+HmrTz0A2rGrKOXz6Tn2PudeHwM0
f83uA55oQu7rX/SCLiWpf4KfG/HaFRitDdU/omLdI+Q+eGMrNBke4XLmzr9D3hkE
/cd3N8TMk2Kn+xA9DJmxccQfe2ZxLVd9woDVaQIDAQABAoIBAAaYcjWwI7xZ2fiZ
TMu7U2K/ZLII/P8hT10P4w58Ld/kvVVS9/UBHLuC1Jjq4MJ/0WbGtMdxvhsNDaNV
xyu6GF9BwOZVoLKNDx3nq1RyXZbTzuAzdC/WjeIY6sqs3DD/bqGHbfuymZPEw2CE
hW/REZHsVLl447ykKadoADxPaQ+cKzB0SgyJlKnYaARd4pfKjl87tKpSHZYsFwJ3
Dwa5tSVvLlRaT9O3hUCO0s656jCgIYR2HFyYCDiXidv0uiPcl5LRjvUvdBBPD1PA
5fTL8PP/HcBTpeoiqz8qeDO+V+mzu7Qc9x4mvebfX1trKE5NY6KCJCG2kZEGT6a4
mGnmkoECgYEA9rvPlfWdNG2cXQNgWoYQBxJ2PJgVZFIPT8gUZlFof1WU98bdgx30
tdm64JZWXEA14NSy9r+nq6sbDQyEhh8qBvkoGkXJHUYRcr3nv8tDORVWC8fKTI9P
G0M9wn3bQEThDOTfNt0SnuQYdm2xl5OM1f0AUsYvx6Ss4qM/SZ1bUiECgYEA9Esr
1tZAdNT0/5MV9trgVHSyyWA4gjNJJqKcqq85ICiNrF6orOOqNQCCktEyQsn2DcRV
kJl9vbEeQ71pJn1q7FVksBnNyPx2c7sYnFSwgZkCcOTpgA9AciJOj9aVKkkfEgS6
1JiCoxDRJDs769QdXCblBejoadZqoQL1w9JdKkkCgYEAo0aLy5fa7Tvv8pluZNk8
uAFenyChX17yZQBph4At373Zs9I0+jSToNex1DeIdMnFHcCDocgYhADaCNuUw1DS
NgUhpakyup2IpF7JguFW3eqho3AWDm3zkn3/27n/olsydp7qm9rWHLGjApP6puzs
kRs44I3oRnxSMDSJiASKzyECgYEA6NH3fvGETpRixmxso24oG/V4KvmcAWJVVg/m
FbmXTPG5S8yPHu5+2bKZvsjHCOYnrSkvjvbp4m459L9AxmEDFSexJTACcolBbryi
EOOZsHmd3PAdJWHjvqK5ktYkJT+479g4IsMSxcwSNmCJlBD8xkV/QameTrf9uWPz
y+PhzJkCgYAdUTv4Ts4PjiNtrHZfBbxMMVYCTkIDnpi2Tv51Nf5knd5V9/b4Ft90
219hbwMgC/n1kKogsJL0wtq+NngoW8xBLc715Yc+vTEs/8SgHTMV11QFD60EOe6N
+lU4fwFTYrTcZCzwBa6JaRno1LAo8wn5ME5/1qreuveEtFfqw0gC+A==
-----END RSA PRIVATE KEY-----";
/// Its modulus, base64url (the JWKS `n`); the exponent is 65537 (`AQAB`).
pub const TEST_KEY_N: &str = "63N1IVplobko5bSpPuJKhV9rdOGsxGINlAK2ZqpQYKzmAI2ric5GIqlBnuszZF2Z3miRsh9QCV10j7vthik-T9PFWhYJdfX1xNhQVlI7VokIw10Wg8l78TzChGD9TrYciNoGnkKB-AGN4RNCrd3vox1xmRTUc1rAPHi14ZkMKG60YapoPXxy3Z5Vj3_dRI8jyjK_Rj9WsvIiaHhVdrSF-HmrTz0A2rGrKOXz6Tn2PudeHwM0f83uA55oQu7rX_SCLiWpf4KfG_HaFRitDdU_omLdI-Q-eGMrNBke4XLmzr9D3hkE_cd3N8TMk2Kn-xA9DJmxccQfe2ZxLVd9woDVaQ";
/// Another key, in no key set: tokens signed with it must be refused.
pub const ATTACKER_KEY_PEM: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA3nV43Ox8w0ncwjFutCrvD5rHtRmLq9WVuFEF0JFqfv866e2T
SnXOueb1Stl+hg43Gn0FbguMxiATvwL3iqpy3eZQX3xNyvb81Ej88kmlXu2yPVqv
77nkACTRW5PwAOYleORHNAP9KX/+QZgrcI+I3Ru5GkwID4Y2k0tTMu4gkxDjlpwJ
7jp63bmYEez+1Yic+IM8K2XeE9CgHFPL8bLxETNjjxDs2e8Ln/g0evEtVAgcFsgf
EBIQ/E7LI7GFe4NKaETVlEdr8lVe3TOmo7nXecH8njFPvAwsZ6PuVxQpEeQkvU06
6mNjI4AqQYV2C4bAuIrlzhZjPAkXGOhiaYaRUQIDAQABAoIBAE4CKKNkBG4g6Rpp
5jWktpckwjJF5n4X1DxBoUXdsFgfXUPpzRQ30onLLSoVsbIFqxoNTEmmIDPbzMDX
JAIKumQI3xdUyhzJ1qgEfjriS2zJ8o5kTjzE1WidgJLaAjf2fJ5zgmqBmZWjbgAH
gfgjRS2wCo1nqw3ylRG6wM6jxWV8R4a9OCvhI9zHStm8heqrduQzYj1h8e+daiJ9
lQLiaEl+6xxaRyTcT9IoKshgilFhYI014BC9Oxxcmap7nlGDkXkHQ/xeWA4SBHtl
6Q6yHcaGNH1KTOy1EWK4LxbXdZFGyM9G4uQG8pvTEI+eeJfHEwTxc+km42FoR1uQ
oqtAYt8CgYEA/KOn84gm0XCkQFzLC4X6R1Pr6eY591KEtNP1B7QZp2z0+N27gJn9
fnX6qt7BPJiBytSl0z8Bfyz+toHlvCpbXrJ8GGfsfewaiXOqT/rhUvrN4doEbLvo
O8KEDvT0qQHJWpkaqICfiPL2akKlyW1dRnTMaV5PJ+O2URfefhiBNusCgYEA4WsJ
+jcIG4n6LBRtDO9OsF2rSKjVZoMZ9jBwupPbivmnIDp41cQin76wtyLl31KRL0Vk
n2OBZvSdxaFol6DWWNu+mhlxQQT0G+oXhETEe9KEE1SwZWGqdsEqypSHPKObzK+h
+xAqyMxIFxCLx/kw+JoUjPjOYgjO/dBtKHDSwbMCgYEAos7smxpwuaP3laq3BvQO
OA0zCQbe8C1za/zz+UTtC2JB9GcgQF38aJSrN5ZZvS0i541mV95Qnp5mf0Lyw/If
88TeB/RhCT0wVMf/R4+LyafrKdMP6uqlXG2cIO9nA8ss8X+dGF3bcavxdMUChe4+
n/sBCB5IsJIkmdnh/izYiIUCgYBAX+0tg+HQ24qSZBLwircSLu3nhi/LYs1bPWI0
Jl2gRsOvtIMlqSmqLS8SXej/6fiEY3DlA+nEmT8lXX8dLlWIctjv8SwiwWNlRWkJ
4QmrwubtDlaB3W5tE6VAzUIB00d/IPlFVcyiI5TC4XrJ1SRjGr2btMJbxOA4I/nI
fs/xeQKBgQDMaSKxe6HMynpQCbcX6at04oG5VtoZdNVEzQ/WgUhyikVL6lt/Aw5A
fZJ9mT7J+27+GKtUBfHXFbZEE2TMhz4MZVhNHogdjGvbxM5C1HvcDLFsn/vDJWYE
STypKlbr29hzrT71Et3GkRTylhOHeMSbxscvlWWdOls5zUMzolCNUQ==
-----END RSA PRIVATE KEY-----";

pub fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("test key PEM")
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What an inbound token says. [`TokenClaims::new`] gives a good token; change fields to make a
/// bad one.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    pub iss: String,
    pub aud: String,
    pub serviceurl: Option<String>,
    pub nbf: i64,
    pub exp: i64,
    pub kid: Option<String>,
    /// Sign with [`ATTACKER_KEY_PEM`] instead of the published key.
    pub attacker_key: bool,
}

impl TokenClaims {
    /// A good token for `app_id`, valid from a minute ago for an hour, for `service_url`.
    pub fn new(app_id: &str, service_url: &str) -> Self {
        let now = unix_now();
        Self {
            iss: BOT_FRAMEWORK_ISSUER.to_string(),
            aud: app_id.to_string(),
            serviceurl: Some(service_url.to_string()),
            nbf: now - 60,
            exp: now + 3600,
            kid: Some(TEST_KID.to_string()),
            attacker_key: false,
        }
    }
}

/// An inbound `Authorization` token as the Bot Connector mints it (without `Bearer `).
pub fn sign_activity_token(claims: &TokenClaims) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = claims.kid.clone();
    header.typ = Some("JWT".into());
    let pem = if claims.attacker_key {
        ATTACKER_KEY_PEM
    } else {
        TEST_KEY_PEM
    };
    let key = EncodingKey::from_rsa_der(&pem_der(pem));
    let mut wire = json!({
        "iss": claims.iss,
        "aud": claims.aud,
        "nbf": claims.nbf,
        "exp": claims.exp,
        "iat": claims.nbf,
    });
    if let Some(url) = &claims.serviceurl {
        wire["serviceurl"] = json!(url);
    }
    jsonwebtoken::encode(&header, &wire, &key).expect("sign a test token")
}

/// Where an activity comes from.
#[derive(Debug, Clone)]
pub struct ActivityCtx {
    pub service_url: String,
    /// Azure AD tenant id.
    pub tenant_id: String,
    /// Teams user id (`29:…`).
    pub user_id: String,
    pub user_name: String,
    pub aad_object_id: String,
    pub conversation_id: String,
    /// `personal`, `channel` or `groupChat`.
    pub conversation_type: String,
    /// `28:<app id>`.
    pub bot_id: String,
}

impl ActivityCtx {
    /// A 1:1 chat between `user_id` and the bot.
    pub fn personal(service_url: &str, tenant_id: &str, app_id: &str, user_id: &str) -> Self {
        Self {
            service_url: service_url.to_string(),
            tenant_id: tenant_id.to_string(),
            user_id: user_id.to_string(),
            user_name: "Ann Example".into(),
            aad_object_id: format!("aad-{user_id}"),
            conversation_id: format!("a:1personal-{user_id}"),
            conversation_type: "personal".into(),
            bot_id: format!("28:{app_id}"),
        }
    }

    /// The same person in a team channel.
    pub fn in_channel(mut self, channel_id: &str) -> Self {
        self.conversation_id = channel_id.to_string();
        self.conversation_type = "channel".into();
        self
    }
}

static ACTIVITY_SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh activity id like Teams' (`f:…` for invokes, digits for messages).
pub fn next_activity_id() -> String {
    format!("1700000{:09}", ACTIVITY_SEQ.fetch_add(1, Ordering::Relaxed))
}

fn base_activity(ctx: &ActivityCtx, kind: &str) -> Value {
    let mut conversation = json!({
        "id": ctx.conversation_id,
        "conversationType": ctx.conversation_type,
        "tenantId": ctx.tenant_id,
    });
    if ctx.conversation_type != "personal" {
        conversation["isGroup"] = json!(true);
    }
    let mut channel_data = json!({"tenant": {"id": ctx.tenant_id}});
    if ctx.conversation_type == "channel" {
        channel_data["channel"] = json!({"id": ctx.conversation_id});
        channel_data["team"] = json!({"id": ctx.conversation_id});
    }
    json!({
        "type": kind,
        "id": next_activity_id(),
        "timestamp": "2024-05-01T10:00:00.000Z",
        "localTimestamp": "2024-05-01T12:00:00.000+02:00",
        "serviceUrl": ctx.service_url,
        "channelId": "msteams",
        "from": {"id": ctx.user_id, "name": ctx.user_name, "aadObjectId": ctx.aad_object_id},
        "conversation": conversation,
        "recipient": {"id": ctx.bot_id, "name": "Lineup"},
        "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web"}],
        "channelData": channel_data,
        "locale": "en-US",
    })
}

/// A typed message; in channels write the bot's mention yourself (`<at>Lineup</at> esim …`).
pub fn message_activity(ctx: &ActivityCtx, text: &str) -> Value {
    let mut a = base_activity(ctx, "message");
    a["text"] = json!(text);
    a["textFormat"] = json!("plain");
    if text.contains("<at>") {
        a["entities"].as_array_mut().expect("entities").push(json!({
            "type": "mention",
            "mentioned": {"id": ctx.bot_id, "name": "Lineup"},
            "text": "<at>Lineup</at>",
        }));
    }
    a
}

/// An `Action.Submit` click: a message whose `value` is the action's data merged with inputs.
pub fn submit_activity(ctx: &ActivityCtx, value: Value, reply_to: &str) -> Value {
    let mut a = base_activity(ctx, "message");
    a["value"] = value;
    a["replyToId"] = json!(reply_to);
    a
}

/// An `Action.Execute` click: an `adaptiveCard/action` invoke with `verb` and `data` (inputs
/// merged into `data`, as Teams does).
pub fn invoke_action_activity(ctx: &ActivityCtx, verb: &str, data: Value, reply_to: &str) -> Value {
    let mut a = base_activity(ctx, "invoke");
    a["id"] = json!(format!("f:{}", next_activity_id()));
    a["name"] = json!("adaptiveCard/action");
    a["replyToId"] = json!(reply_to);
    a["value"] = json!({
        "action": {"type": "Action.Execute", "id": verb, "verb": verb, "data": data},
        "trigger": "manual",
    });
    a
}

/// The bot was added to the conversation (installed in a team or a personal scope).
pub fn bot_added_activity(ctx: &ActivityCtx) -> Value {
    let mut a = base_activity(ctx, "conversationUpdate");
    a["membersAdded"] = json!([{"id": ctx.bot_id}]);
    a["channelData"]["eventType"] = json!("teamMemberAdded");
    a
}

/// One request the fake Bot Connector received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `create_conversation`, `send`, `reply`, `update` or `get_member`.
    pub op: String,
    pub method: String,
    /// The decoded conversation id from the path.
    pub conversation: Option<String>,
    /// The activity id (reply, update) or member id (get_member) from the path.
    pub target: Option<String>,
    pub token: Option<String>,
    pub body: Value,
}

impl Call {
    /// The Adaptive Card of the activity posted, if any.
    pub fn card(&self) -> Option<&Value> {
        self.body
            .get("attachments")?
            .as_array()?
            .iter()
            .find(|a| {
                a.get("contentType").and_then(Value::as_str) == Some(limits::CARD_CONTENT_TYPE)
            })?
            .get("content")
    }
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub op: String,
    pub problems: Vec<String>,
}

/// A member of the fake tenant directory.
#[derive(Debug, Clone)]
pub struct FakeMember {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub upn: Option<String>,
    pub aad_object_id: String,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    violations: Vec<Violation>,
    token_requests: Vec<HashMap<String, String>>,
    tokens: HashMap<String, i64>,
    key_fetches: usize,
    /// How long the JWKS endpoint takes to answer, as a slow network would.
    key_delay: std::time::Duration,
    metadata_fetches: usize,
    members: HashMap<String, FakeMember>,
    conversations: HashMap<String, String>,
    seq: u64,
    token_lifetime: i64,
    failures: HashMap<String, VecDeque<(u16, Option<u64>)>>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    base: String,
    app_id: String,
    app_password: String,
}

/// A running fake. Dropping it stops the server.
pub struct FakeTeams {
    shared: Shared,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTeams {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTeams {
    /// Starts the fake for a bot registration with these credentials.
    pub async fn start(app_id: &str, app_password: &str) -> FakeTeams {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Teams");
        let addr = listener.local_addr().expect("fake Teams address");
        let shared = Shared {
            state: Arc::new(Mutex::new(FakeState {
                token_lifetime: 3600,
                ..Default::default()
            })),
            base: format!("http://{addr}"),
            app_id: app_id.to_string(),
            app_password: app_password.to_string(),
        };
        let app = Router::new()
            .route("/openid", get(openid))
            .route("/keys", get(keys))
            .route("/token", post(token))
            .route("/connector/v3/conversations", post(create_conversation))
            .route("/connector/v3/conversations/{conv}/activities", post(send))
            .route(
                "/connector/v3/conversations/{conv}/activities/{id}",
                post(reply).put(update),
            )
            .route(
                "/connector/v3/conversations/{conv}/members/{id}",
                get(member),
            )
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTeams { shared, addr, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.state.lock().expect("fake Teams lock")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `TeamsConfig::openid_metadata_url`.
    pub fn openid_metadata_url(&self) -> String {
        format!("{}/openid", self.shared.base)
    }

    /// `TeamsConfig::token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.base)
    }

    /// The Bot Connector service URL to put in activities (like `https://smba.trafficmanager.net/amer/`).
    pub fn service_url(&self) -> String {
        format!("{}/connector/", self.shared.base)
    }

    /// Adds a user the member lookup knows (in every conversation).
    pub fn add_member(&self, id: &str, name: &str, email: Option<&str>, upn: Option<&str>) {
        self.lock().members.insert(
            id.to_string(),
            FakeMember {
                id: id.to_string(),
                name: name.to_string(),
                email: email.map(str::to_string),
                upn: upn.map(str::to_string),
                aad_object_id: format!("aad-{id}"),
            },
        );
    }

    /// Lifetime (`expires_in`) of tokens handed out from now on.
    pub fn set_token_lifetime(&self, secs: i64) {
        self.lock().token_lifetime = secs;
    }

    /// The next call to `op` answers `status` (with `Retry-After` when given).
    pub fn fail_next(&self, op: &str, status: u16, retry_after: Option<u64>) {
        self.lock()
            .failures
            .entry(op.to_string())
            .or_default()
            .push_back((status, retry_after));
    }

    /// Every Bot Connector call so far.
    /// The 1:1 conversation handed out for `member` of `tenant`, once one was created.
    pub fn direct_conversation(&self, tenant: &str, member: &str) -> Option<String> {
        self.shared
            .state
            .lock()
            .expect("lock")
            .conversations
            .get(&format!("{tenant}|{member}"))
            .cloned()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, op: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    /// Bot Connector calls that post or change a message (not member lookups).
    pub fn posts(&self) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| matches!(c.op.as_str(), "send" | "reply" | "update"))
            .cloned()
            .collect()
    }

    /// The form bodies of every token request.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.lock().token_requests.clone()
    }

    /// How many times the JWKS was fetched.
    pub fn key_fetches(&self) -> usize {
        self.lock().key_fetches
    }

    /// Make the JWKS endpoint answer only after `delay`.
    pub fn delay_keys(&self, delay: std::time::Duration) {
        self.lock().key_delay = delay;
    }

    /// Every limits violation seen; tests assert this is empty.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().violations.clone()
    }

    /// Waits until at least `n` calls to `op` were received (or `timeout` passes).
    pub async fn wait_for(&self, op: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls_to(op);
            if calls.len() >= n || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

async fn openid(State(s): State<Shared>) -> Response {
    s.state.lock().expect("lock").metadata_fetches += 1;
    json_response(
        StatusCode::OK,
        json!({
            "issuer": BOT_FRAMEWORK_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": format!("{}/keys", s.base),
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }),
    )
}

async fn keys(State(s): State<Shared>) -> Response {
    let delay = {
        let mut st = s.state.lock().expect("lock");
        st.key_fetches += 1;
        st.key_delay
    };
    tokio::time::sleep(delay).await;
    json_response(
        StatusCode::OK,
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": TEST_KID,
            "n": TEST_KEY_N,
            "e": "AQAB",
            "endorsements": ["msteams", "skype", "webchat"],
        }]}),
    )
}

async fn token(State(s): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut st = s.state.lock().expect("lock");
    st.token_requests.push(form.clone());
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    if get("client_id") != s.app_id || get("client_secret") != s.app_password {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        );
    }
    if get("scope") != "https://api.botframework.com/.default" {
        return json_response(StatusCode::BAD_REQUEST, json!({"error": "invalid_scope"}));
    }
    st.seq += 1;
    let token = format!("fake-bf-token-{}", st.seq);
    let lifetime = st.token_lifetime;
    st.tokens.insert(token.clone(), unix_now() + lifetime);
    json_response(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
    )
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

/// Records the call, then checks the token, injected failures and card limits. `Err` is the
/// response to give instead of the normal one.
fn admit(
    s: &Shared,
    op: &str,
    method: Method,
    headers: &HeaderMap,
    conversation: Option<String>,
    target: Option<String>,
    body: &[u8],
) -> Result<Value, Box<Response>> {
    let token = bearer(headers);
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    let mut st = s.state.lock().expect("lock");
    st.calls.push(Call {
        op: op.to_string(),
        method: method.to_string(),
        conversation,
        target,
        token: token.clone(),
        body: body.clone(),
    });
    let valid = token
        .as_ref()
        .and_then(|t| st.tokens.get(t))
        .is_some_and(|exp| *exp > unix_now());
    if !valid {
        return Err(Box::new(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Authorization has been denied for this request."}),
        )));
    }
    if let Some((status, retry)) = st.failures.get_mut(op).and_then(VecDeque::pop_front) {
        let mut r = json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"error": {"code": "ServiceError", "message": "injected failure"}}),
        );
        if let Some(secs) = retry {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("header value"),
            );
        }
        return Err(Box::new(r));
    }
    if matches!(op, "send" | "reply" | "update") {
        if body.get("type").and_then(Value::as_str) != Some("message") {
            st.violations.push(Violation {
                op: op.to_string(),
                problems: vec!["activity: type must be message".into()],
            });
        }
        if let Err(problems) = limits::check_activity(&body) {
            st.violations.push(Violation {
                op: op.to_string(),
                problems,
            });
        }
    }
    Ok(body)
}

fn next_id(s: &Shared) -> String {
    let mut st = s.state.lock().expect("lock");
    st.seq += 1;
    format!("17000{:08}", st.seq)
}

async fn create_conversation(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match admit(
        &s,
        "create_conversation",
        Method::POST,
        &headers,
        None,
        None,
        &body,
    ) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let bot_ok = body["bot"]["id"].as_str() == Some(&format!("28:{}", s.app_id));
    let tenant = body["channelData"]["tenant"]["id"]
        .as_str()
        .or(body["tenantId"].as_str())
        .unwrap_or("");
    let member = body["members"][0]["id"].as_str().unwrap_or("");
    if !bot_ok || tenant.is_empty() || member.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "BadArgument", "message": "bot, members and tenant are required"}}),
        );
    }
    let mut st = s.state.lock().expect("lock");
    // Teams hands back the same 1:1 conversation for the same member.
    let n = st.conversations.len() + 1;
    let id = st
        .conversations
        .entry(format!("{tenant}|{member}"))
        .or_insert_with(|| format!("a:1fake-personal-{n}"))
        .clone();
    json_response(StatusCode::CREATED, json!({"id": id}))
}

async fn send(
    State(s): State<Shared>,
    Path(conv): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&s, "send", Method::POST, &headers, Some(conv), None, &body) {
        return *r;
    }
    json_response(StatusCode::CREATED, json!({"id": next_id(&s)}))
}

async fn reply(
    State(s): State<Shared>,
    Path((conv, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(
        &s,
        "reply",
        Method::POST,
        &headers,
        Some(conv),
        Some(id),
        &body,
    ) {
        return *r;
    }
    json_response(StatusCode::CREATED, json!({"id": next_id(&s)}))
}

async fn update(
    State(s): State<Shared>,
    Path((conv, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(
        &s,
        "update",
        Method::PUT,
        &headers,
        Some(conv),
        Some(id.clone()),
        &body,
    ) {
        return *r;
    }
    json_response(StatusCode::OK, json!({"id": id}))
}

async fn member(
    State(s): State<Shared>,
    Path((conv, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(
        &s,
        "get_member",
        Method::GET,
        &headers,
        Some(conv),
        Some(id.clone()),
        &[],
    ) {
        return *r;
    }
    let st = s.state.lock().expect("lock");
    match st.members.get(&id) {
        Some(m) => json_response(
            StatusCode::OK,
            json!({
                "id": m.id,
                "name": m.name,
                "aadObjectId": m.aad_object_id,
                "givenName": m.name.split(' ').next().unwrap_or(""),
                "email": m.email,
                "userPrincipalName": m.upn,
                "tenantId": "",
                "userRole": "user",
            }),
        ),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "MemberNotFoundInConversation", "message": "The member is not found in the conversation."}}),
        ),
    }
}
