//! Discord REST through serenity's [`Http`], pointed at [`DiscordConfig::api_base_url`].
//!
//! serenity builds every URL as `https://discord.com/api/v10/…`; `HttpBuilder::proxy(p)`
//! replaces the `https://discord.com` part with `p` (serenity `http/request.rs`). A base URL
//! `http://127.0.0.1:PORT/api/v10` therefore becomes the proxy `http://127.0.0.1:PORT`; a base
//! URL not ending in `/api/v10` is refused. serenity's own ratelimiter ignores the proxy (it
//! builds requests with `proxy = None`, `http/ratelimiting.rs`), so it is switched off whenever
//! the base URL is not Discord's; against Discord itself it stays on.
//!
//! Every message, response and modal is checked against [`super::limits`] before it is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use serenity::all::{
    ApplicationId, ChannelId, CreateAttachment, GuildId, InteractionId, MessageId,
};
use serenity::http::{Http, HttpBuilder};

use super::config::{DEFAULT_API_BASE_URL, DiscordConfig};
use super::limits;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscordError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("{what} {id:?} is not a Discord snowflake")]
    BadId { what: &'static str, id: String },
    #[error("payload breaks Discord's limits: {}", .0.join("; "))]
    Limits(Vec<String>),
    #[error("Discord answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("Discord request failed: {0}")]
    Transport(String),
}

impl From<serenity::Error> for DiscordError {
    fn from(e: serenity::Error) -> Self {
        match e {
            serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
                DiscordError::Api {
                    status: r.status_code.as_u16(),
                    message: r.error.message,
                }
            }
            other => DiscordError::Transport(other.to_string()),
        }
    }
}

/// A file sent as `files[0]` with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub filename: String,
}

fn snowflake(what: &'static str, id: &str) -> Result<u64, DiscordError> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| DiscordError::BadId {
            what,
            id: id.to_string(),
        })
}

fn files(file: Option<&File>) -> Vec<CreateAttachment> {
    file.map(|f| vec![CreateAttachment::bytes(f.bytes.clone(), f.filename.clone())])
        .unwrap_or_default()
}

fn checked_message(body: &Value) -> Result<(), DiscordError> {
    limits::check_message(body).map_err(DiscordError::Limits)
}

/// The Discord REST client. Cheap to clone.
#[derive(Clone)]
pub struct DiscordClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: DiscordConfig,
    application_id: ApplicationId,
    proxy: Option<String>,
    /// One `Http` per bot token (one reqwest pool each).
    by_token: Mutex<HashMap<String, Arc<Http>>>,
}

impl DiscordClient {
    pub fn new(config: DiscordConfig) -> Result<Self, DiscordError> {
        let application_id =
            ApplicationId::new(snowflake("application id", &config.application_id)?);
        let base = config.api_base_url.trim_end_matches('/');
        let proxy = if base == DEFAULT_API_BASE_URL {
            None
        } else {
            let root = base.strip_suffix("/api/v10").ok_or_else(|| {
                DiscordError::Config(format!(
                    "api_base_url {base:?} must end with /api/v10 (serenity speaks API v10)"
                ))
            })?;
            if !(root.starts_with("http://") || root.starts_with("https://")) {
                return Err(DiscordError::Config(format!(
                    "api_base_url {base:?} is not an http(s) URL"
                )));
            }
            Some(root.to_string())
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                application_id,
                proxy,
                by_token: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &DiscordConfig {
        &self.inner.config
    }

    /// serenity's client for `token` (the configured bot token when empty).
    pub fn http(&self, token: &str) -> Arc<Http> {
        let token = if token.is_empty() {
            self.inner.config.bot_token.as_str()
        } else {
            token
        };
        let mut map = self.inner.by_token.lock().expect("http cache lock");
        map.entry(token.to_string())
            .or_insert_with(|| {
                let mut b = HttpBuilder::new(token).application_id(self.inner.application_id);
                if let Some(p) = &self.inner.proxy {
                    b = b.proxy(p.clone()).ratelimiter_disabled(true);
                }
                Arc::new(b.build())
            })
            .clone()
    }

    /// `DELETE /users/@me/guilds/{guild}`: the bot leaves a server (disconnected in Lineup).
    pub async fn leave_guild(&self, guild_id: &str) -> Result<(), DiscordError> {
        let guild = GuildId::new(snowflake("guild id", guild_id)?);
        self.http("").leave_guild(guild).await?;
        Ok(())
    }

    /// `POST /users/@me/channels`: the DM channel with a user.
    pub async fn create_dm(&self, token: &str, user_id: &str) -> Result<String, DiscordError> {
        snowflake("user id", user_id)?;
        let ch = self
            .http(token)
            .create_private_channel(&json!({"recipient_id": user_id}))
            .await?;
        Ok(ch.id.to_string())
    }

    /// `POST /channels/{channel}/messages` (multipart with `files[0]` when `file` is set).
    /// Returns the message id.
    pub async fn create_message(
        &self,
        token: &str,
        channel_id: &str,
        body: &Value,
        file: Option<&File>,
    ) -> Result<String, DiscordError> {
        checked_message(body)?;
        let channel = ChannelId::new(snowflake("channel id", channel_id)?);
        let m = self
            .http(token)
            .send_message(channel, files(file), body)
            .await?;
        Ok(m.id.to_string())
    }

    /// `PATCH /channels/{channel}/messages/{id}`.
    pub async fn edit_message(
        &self,
        token: &str,
        channel_id: &str,
        message_id: &str,
        body: &Value,
        file: Option<&File>,
    ) -> Result<(), DiscordError> {
        checked_message(body)?;
        let channel = ChannelId::new(snowflake("channel id", channel_id)?);
        let message = MessageId::new(snowflake("message id", message_id)?);
        self.http(token)
            .edit_message(channel, message, body, files(file))
            .await?;
        Ok(())
    }

    /// `POST /interactions/{id}/{token}/callback` (type 4 / 5 / 6 / 7 / 9 bodies).
    pub async fn interaction_callback(
        &self,
        interaction_id: &str,
        interaction_token: &str,
        response: &Value,
        file: Option<&File>,
    ) -> Result<(), DiscordError> {
        limits::check_response(response).map_err(DiscordError::Limits)?;
        let id = InteractionId::new(snowflake("interaction id", interaction_id)?);
        self.http("")
            .create_interaction_response(id, interaction_token, response, files(file))
            .await?;
        Ok(())
    }

    /// `PATCH /webhooks/{application}/{token}/messages/@original`: replaces the deferred
    /// "thinking…" message with the answer.
    pub async fn edit_original(
        &self,
        interaction_token: &str,
        body: &Value,
        file: Option<&File>,
    ) -> Result<(), DiscordError> {
        checked_message(body)?;
        self.http("")
            .edit_original_interaction_response(interaction_token, body, files(file))
            .await?;
        Ok(())
    }

    /// `POST /webhooks/{application}/{token}`: a follow-up message (ephemeral with flags 64).
    pub async fn followup(
        &self,
        interaction_token: &str,
        body: &Value,
        file: Option<&File>,
    ) -> Result<String, DiscordError> {
        checked_message(body)?;
        let m = self
            .http("")
            .create_followup_message(interaction_token, body, files(file))
            .await?;
        Ok(m.id.to_string())
    }

    /// `PUT /applications/{id}/commands` or `…/guilds/{guild}/commands` (bulk overwrite).
    /// Returns the names of the registered commands.
    pub async fn overwrite_commands(
        &self,
        guild_id: Option<&str>,
        commands: &Value,
    ) -> Result<Vec<String>, DiscordError> {
        let http = self.http("");
        let registered = match guild_id {
            Some(g) => {
                http.create_guild_commands(GuildId::new(snowflake("guild id", g)?), commands)
                    .await?
            }
            None => http.create_global_commands(commands).await?,
        };
        Ok(registered.into_iter().map(|c| c.name).collect())
    }
}
