//! "Add to Discord" from the portal: the bot invite (OAuth2 with the `bot` scope) whose
//! callback links the server to the tenant that started it.
//!
//! | route | what |
//! |---|---|
//! | `GET /discord/install?state=…` | state checked, the browser's install cookie set, 302 to Discord's authorize page |
//! | `GET /discord/oauth/callback?code&state` | state and cookie checked, the code exchanged at `/oauth2/token`, the guild of the answer linked |
//!
//! The guild comes from Discord's token answer, never from the callback's `guild_id`
//! parameter, which anyone can edit in the address bar.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::messaging::chat::{Platform, WorkspaceGrant};
use serde::Deserialize;
use std::sync::Arc;
use tracing::warn;

use super::config::DEFAULT_API_BASE_URL;
use crate::install_state::{self, AfterInstall, InstallState, redirect};

/// Where Discord's consent screen lives for the real API.
pub const AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";
/// The scopes of the invite: the bot user, and its slash commands.
pub const SCOPES: &str = "bot applications.commands";

/// The channel permissions the bot asks for in the invite, as Discord's bit field:
/// SEND_MESSAGES (1 << 11) posts approval cards and alerts, EMBED_LINKS (1 << 14) lets its
/// messages carry embeds, READ_MESSAGE_HISTORY (1 << 16) lets it edit and reply to its cards,
/// USE_APPLICATION_COMMANDS (1 << 31) lets people use `/esim` in the server's channels.
pub const PERMISSIONS: u64 = (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31);

/// What the invite flow needs: the application's OAuth2 credentials and where things are.
#[derive(Clone)]
pub struct DiscordInstallConfig {
    pub application_id: String,
    pub client_secret: String,
    /// Discord's REST root (`https://discord.com/api/v10`, or a fake's); `/oauth2/token`
    /// is under it, and the authorize page beside it.
    pub api_base_url: String,
    /// Our `/discord/oauth/callback`, as registered in the developer portal.
    pub redirect_url: String,
}

impl DiscordInstallConfig {
    /// Discord's consent page for the bot invite carrying `state`.
    pub fn authorize_url(&self, state: &str) -> String {
        let base = self.api_base_url.trim_end_matches('/');
        let authorize = if base == DEFAULT_API_BASE_URL {
            AUTHORIZE_URL.to_owned()
        } else {
            format!(
                "{}/oauth2/authorize",
                base.strip_suffix("/api/v10").unwrap_or(base)
            )
        };
        let mut url = url::Url::parse(&authorize).expect("an http(s) base makes a valid URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.application_id)
            .append_pair("scope", SCOPES)
            .append_pair("permissions", &PERMISSIONS.to_string())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.redirect_url)
            .append_pair("state", state);
        url.into()
    }

    fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.api_base_url.trim_end_matches('/'))
    }

    fn secure_cookie(&self) -> bool {
        self.redirect_url.starts_with("https://")
    }
}

impl std::fmt::Debug for DiscordInstallConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordInstallConfig")
            .field("application_id", &self.application_id)
            .field("client_secret", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// Shared state of the invite routes. Cheap to clone.
#[derive(Clone)]
pub struct DiscordInstall {
    inner: Arc<Inner>,
}

struct Inner {
    config: DiscordInstallConfig,
    /// Signed with the client secret: only this server can mint a state.
    states: InstallState,
    lineup: Lineup,
    after_install: AfterInstall,
    http: reqwest::Client,
}

impl DiscordInstall {
    pub fn new(config: DiscordInstallConfig, lineup: Lineup, after_install: AfterInstall) -> Self {
        Self {
            inner: Arc::new(Inner {
                states: InstallState::for_platform(
                    Platform::Discord,
                    config.client_secret.as_bytes().to_vec(),
                ),
                config,
                lineup,
                after_install,
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .expect("a default HTTP client builds"),
            }),
        }
    }

    /// Mints the `state` of invite links (`/discord/install?state=…`).
    pub fn install_state(&self) -> &InstallState {
        &self.inner.states
    }

    pub fn config(&self) -> &DiscordInstallConfig {
        &self.inner.config
    }
}

/// The invite routes, ready to merge into the main server's router.
pub fn discord_install_router(install: DiscordInstall) -> Router {
    Router::new()
        .route("/discord/install", get(start))
        .route("/discord/oauth/callback", get(callback))
        .with_state(install)
}

fn page(status: StatusCode, text: &str) -> Response {
    install_state::install_page("Discord", status, text)
}

#[derive(Deserialize)]
struct StartQuery {
    state: Option<String>,
}

async fn start(State(install): State<DiscordInstall>, Query(q): Query<StartQuery>) -> Response {
    let Some(state) = q.state.filter(|s| !s.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Missing state: start from Lineup's Settings → Chat.",
        );
    };
    let states = &install.inner.states;
    let verified = match states.verify(&state) {
        Ok(v) => v,
        Err(e) => return page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut response = redirect(&install.inner.config.authorize_url(&state));
    response.headers_mut().append(
        header::SET_COOKIE,
        states.binding_cookie(
            &verified.nonce,
            states.lifetime_seconds(),
            install.inner.config.secure_cookie(),
        ),
    );
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The part of Discord's token answer we use: the server the bot was added to.
#[derive(Deserialize)]
struct TokenAnswer {
    guild: Option<Guild>,
}

#[derive(Deserialize)]
struct Guild {
    id: String,
    name: Option<String>,
}

async fn callback(
    State(install): State<DiscordInstall>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(error) = q.error {
        let text = if error == "access_denied" {
            "The invitation was cancelled in Discord. Nothing was changed.".to_owned()
        } else {
            format!("Discord did not complete the invitation ({error}).")
        };
        return page(StatusCode::BAD_REQUEST, &text);
    }
    let (Some(code), Some(state)) = (q.code.filter(|c| !c.is_empty()), q.state) else {
        return page(StatusCode::BAD_REQUEST, "Missing code or state.");
    };
    let states = &install.inner.states;
    let verified = match states.verify(&state) {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "Discord invite callback with a bad state refused");
            return page(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    if !verified.belongs_to(states.browser_nonce(&headers)) {
        warn!("Discord invite callback from a browser that did not start it refused");
        return page(
            StatusCode::BAD_REQUEST,
            "This invitation was started in another browser, or too long ago. Start again \
             from Lineup's Settings → Chat in this browser.",
        );
    }
    let guild = match exchange(&install.inner.config, &install.inner.http, &code).await {
        Ok(guild) => guild,
        Err(reason) => {
            warn!(reason, "Discord token exchange failed");
            return page(
                StatusCode::BAD_GATEWAY,
                &format!("Discord refused the invitation ({reason}). Please try again."),
            );
        }
    };
    let lineup = &install.inner.lineup;
    let actor = verified.installer.map_or(Actor::System, Actor::User);
    let grant = WorkspaceGrant {
        workspace_id: guild.id,
        name: guild.name,
        bot_user_id: None,
        bot_token: String::new(),
    };
    let landing = match lineup
        .connect_workspace(verified.tenant, &actor, Platform::Discord, &grant)
        .await
    {
        Ok(()) => lineup.tenant(verified.tenant).await,
        Err(e) => Err(e),
    };
    let mut response = match landing {
        Ok(tenant) => redirect(&install.inner.after_install.url(&tenant, Platform::Discord)),
        Err(e) => page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        states.binding_cookie("", 0, install.inner.config.secure_cookie()),
    );
    response
}

/// `POST /oauth2/token` with the code: Discord answers with the guild the bot joined.
async fn exchange(
    config: &DiscordInstallConfig,
    http: &reqwest::Client,
    code: &str,
) -> Result<Guild, String> {
    let answer = http
        .post(config.token_url())
        .basic_auth(&config.application_id, Some(&config.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", config.redirect_url.as_str()),
        ])
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let answer: TokenAnswer = answer
        .json()
        .await
        .map_err(|e| format!("unreadable answer: {e}"))?;
    answer
        .guild
        .filter(|g| !g.id.is_empty())
        .ok_or_else(|| "the answer names no server".to_owned())
}
