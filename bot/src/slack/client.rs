//! The Slack Web API client: slack-morphism's hyper client pointed at a configurable base URL.
//!
//! Messages and views go out as the exact JSON the renderer built (through slack-morphism's
//! generic `http_post`, so auth, error mapping and 429 handling are the library's); the other
//! calls use slack-morphism's typed requests. Every call takes the workspace's bot token.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tracing::warn;

use super::config::SlackConfig;
use super::limits;

type Inner = slack_morphism::SlackClient<SlackClientHyperHttpsConnector>;

/// What `oauth.v2.access` gave us for a new install.
#[derive(Clone, PartialEq, Eq)]
pub struct Installation {
    pub team_id: String,
    pub team_name: String,
    pub bot_token: String,
    pub bot_user_id: String,
    pub authed_user_id: String,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("team_id", &self.team_id)
            .field("team_name", &self.team_name)
            .field("bot_token", &"<redacted>")
            .field("bot_user_id", &self.bot_user_id)
            .field("authed_user_id", &self.authed_user_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A Slack Web API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackApiError {
    /// `ok: false` with Slack's error code (`channel_not_found`, `invalid_auth`…).
    #[error("Slack {method} failed: {code}")]
    Api { method: String, code: String },
    /// HTTP 429 still there after the bounded retries.
    #[error("Slack {method} rate limited (retry after {retry_after:?})")]
    RateLimited {
        method: String,
        retry_after: Option<Duration>,
    },
    #[error("Slack {method} answered HTTP {status}")]
    Http { method: String, status: u16 },
    /// Connection, TLS or unreadable response.
    #[error("Slack {method}: {message}")]
    Transport { method: String, message: String },
}

impl SlackApiError {
    /// Slack's error code, for `ok: false` answers.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    fn from_client(method: &str, e: SlackClientError) -> Self {
        let method = method.to_string();
        match e {
            SlackClientError::ApiError(e) => SlackApiError::Api {
                method,
                code: e.code,
            },
            SlackClientError::RateLimitError(e) => SlackApiError::RateLimited {
                method,
                retry_after: e.retry_after,
            },
            SlackClientError::HttpError(e) => SlackApiError::Http {
                method,
                status: e.status_code.as_u16(),
            },
            other => SlackApiError::Transport {
                method,
                message: other.to_string(),
            },
        }
    }
}

/// How 429s are retried: at most `max_retries` times, each wait `Retry-After` capped at
/// `max_wait` (1 s when the header is missing).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct SlackClient {
    inner: std::sync::Arc<Inner>,
    client_id: String,
    client_secret: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn token(t: &str) -> SlackApiToken {
    SlackApiToken::new(t.to_string().into())
}

impl SlackClient {
    /// A client for `api_base_url` (e.g. `https://slack.com/api/` or a fake's URL). HTTPS uses the
    /// machine's root certificates; plain HTTP is allowed so a local fake works.
    pub fn new(
        api_base_url: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_base_url.trim_end_matches('/'));
        Ok(Self {
            inner: std::sync::Arc::new(slack_morphism::SlackClient::new(connector)),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            retry: RetryPolicy::default(),
        })
    }

    pub fn from_config(config: &SlackConfig) -> std::io::Result<Self> {
        Self::new(
            &config.api_base_url,
            &config.client_id,
            &config.client_secret,
        )
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The underlying slack-morphism client, for calls not wrapped here.
    pub fn inner(&self) -> &Inner {
        &self.inner
    }

    async fn retrying<T, F, Fut>(&self, method: &str, mut call: F) -> Result<T, SlackApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(SlackClientError::RateLimitError(e)) if attempt < self.retry.max_retries => {
                    let wait = e
                        .retry_after
                        .unwrap_or(Duration::from_secs(1))
                        .min(self.retry.max_wait);
                    warn!(method, ?wait, attempt, "Slack rate limited; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(SlackApiError::from_client(method, e)),
            }
        }
    }

    /// POSTs raw JSON to a Web API method and returns the raw JSON answer.
    pub async fn call(
        &self,
        bot_token: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, SlackApiError> {
        let token = token(bot_token);
        let inner = &*self.inner;
        self.retrying(method, || {
            let token = &token;
            async move {
                inner
                    .open_session(token)
                    .http_session_api
                    .http_post::<Value, Value>(method, body, None)
                    .await
            }
        })
        .await
    }

    fn check(what: &str, r: Result<(), Vec<String>>) {
        if let Err(violations) = r {
            warn!(what, ?violations, "payload breaks Slack's Block Kit limits");
        }
    }

    /// `auth.revoke`: the bot token stops working (the app is disconnected from Lineup).
    pub async fn revoke_token(&self, bot_token: &str) -> Result<(), SlackApiError> {
        self.call(bot_token, "auth.revoke", &json!({}))
            .await
            .map(drop)
    }

    /// `chat.postMessage`; returns the message `ts`.
    pub async fn post_message(
        &self,
        bot_token: &str,
        channel: &str,
        text: &str,
        blocks: &[Value],
        thread_ts: Option<&str>,
    ) -> Result<String, SlackApiError> {
        let mut body = json!({"channel": channel, "text": text, "blocks": blocks});
        if let Some(t) = thread_ts {
            body["thread_ts"] = json!(t);
        }
        Self::check("chat.postMessage", limits::check_message(&body));
        let r = self.call(bot_token, "chat.postMessage", &body).await?;
        Ok(r["ts"].as_str().unwrap_or_default().to_string())
    }

    /// `chat.update`: replaces a message's text and blocks in place.
    pub async fn update_message(
        &self,
        bot_token: &str,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: &[Value],
    ) -> Result<(), SlackApiError> {
        let body = json!({"channel": channel, "ts": ts, "text": text, "blocks": blocks});
        Self::check("chat.update", limits::check_message(&body));
        self.call(bot_token, "chat.update", &body).await.map(drop)
    }

    /// `chat.postEphemeral`; returns `message_ts`.
    pub async fn post_ephemeral(
        &self,
        bot_token: &str,
        channel: &str,
        user: &str,
        text: &str,
        blocks: &[Value],
    ) -> Result<String, SlackApiError> {
        let body = json!({"channel": channel, "user": user, "text": text, "blocks": blocks});
        Self::check("chat.postEphemeral", limits::check_message(&body));
        let r = self.call(bot_token, "chat.postEphemeral", &body).await?;
        Ok(r["message_ts"].as_str().unwrap_or_default().to_string())
    }

    /// `conversations.open` with one user: the DM channel id (`D…`).
    pub async fn open_dm(&self, bot_token: &str, user: &str) -> Result<String, SlackApiError> {
        let token = token(bot_token);
        let inner = &*self.inner;
        let req = SlackApiConversationsOpenRequest::new().with_users(vec![user.to_string().into()]);
        let r = self
            .retrying("conversations.open", || {
                let (token, req) = (&token, &req);
                async move { inner.open_session(token).conversations_open(req).await }
            })
            .await?;
        Ok(r.channel.id.to_string())
    }

    /// `views.open`; returns the view id.
    pub async fn open_view(
        &self,
        bot_token: &str,
        trigger_id: &str,
        view: &Value,
    ) -> Result<String, SlackApiError> {
        Self::check("views.open", limits::check_view(view));
        let body = json!({"trigger_id": trigger_id, "view": view});
        let r = self.call(bot_token, "views.open", &body).await?;
        Ok(r["view"]["id"].as_str().unwrap_or_default().to_string())
    }

    /// `users.lookupByEmail`; `None` when Slack says `users_not_found`.
    pub async fn lookup_user_by_email(
        &self,
        bot_token: &str,
        email: &str,
    ) -> Result<Option<String>, SlackApiError> {
        let token = token(bot_token);
        let inner = &*self.inner;
        let req = SlackApiUsersLookupByEmailRequest::new(EmailAddress(email.to_string()));
        let r = self
            .retrying("users.lookupByEmail", || {
                let (token, req) = (&token, &req);
                async move { inner.open_session(token).users_lookup_by_email(req).await }
            })
            .await;
        match r {
            Ok(r) => Ok(Some(r.user.id.to_string())),
            Err(e) if e.code() == Some("users_not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `users.info`: the user's email, when the app may see it (`users:read.email`).
    pub async fn user_email(
        &self,
        bot_token: &str,
        user: &str,
    ) -> Result<Option<String>, SlackApiError> {
        let token = token(bot_token);
        let inner = &*self.inner;
        let req = SlackApiUsersInfoRequest::new(user.to_string().into());
        let r = self
            .retrying("users.info", || {
                let (token, req) = (&token, &req);
                async move { inner.open_session(token).users_info(req).await }
            })
            .await?;
        Ok(r.user.profile.and_then(|p| p.email).map(|e| e.0))
    }

    /// Uploads a PNG into a channel (or thread): `files.getUploadURLExternal`, the bytes POSTed to
    /// the upload URL, then `files.completeUploadExternal`. Returns the file id.
    pub async fn upload_png(
        &self,
        bot_token: &str,
        channel: &str,
        png: &[u8],
        filename: &str,
        title: &str,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackApiError> {
        let token = token(bot_token);
        let inner = &*self.inner;
        let req = SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), png.len());
        let url = self
            .retrying("files.getUploadURLExternal", || {
                let (token, req) = (&token, &req);
                async move { inner.open_session(token).get_upload_url_external(req).await }
            })
            .await?;
        let upload = SlackApiFilesUploadViaUrlRequest::new(
            url.upload_url.clone(),
            png.to_vec(),
            "image/png".to_string(),
        );
        self.retrying("files.upload (upload URL)", || {
            let (token, upload) = (&token, &upload);
            async move { inner.open_session(token).files_upload_via_url(upload).await }
        })
        .await?;
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(url.file_id.clone()).with_title(title.to_string()),
        ])
        .with_channel_id(channel.to_string().into())
        .opt_thread_ts(thread_ts.map(|t| t.to_string().into()));
        self.retrying("files.completeUploadExternal", || {
            let (token, complete) = (&token, &complete);
            async move {
                inner
                    .open_session(token)
                    .files_complete_upload_external(complete)
                    .await
            }
        })
        .await?;
        Ok(url.file_id.to_string())
    }

    /// POSTs a message body to an interaction's `response_url` (no token: the URL is the
    /// credential). `body` is e.g. `{"response_type": "ephemeral", "text": …, "blocks": […]}`.
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackApiError> {
        Self::check("response_url", limits::check_message(body));
        let url: url::Url =
            response_url
                .parse()
                .map_err(|e: url::ParseError| SlackApiError::Transport {
                    method: "response_url".into(),
                    message: e.to_string(),
                })?;
        let inner = &*self.inner;
        let span = tracing::debug_span!("Slack response_url");
        self.retrying("response_url", || {
            let (url, span) = (url.clone(), &span);
            async move {
                let context = SlackClientApiCallContext {
                    rate_control_params: None,
                    token: None,
                    tracing_span: span,
                    is_sensitive_url: true,
                };
                inner
                    .http_api
                    .connector
                    .http_post_uri::<Value, Value>(url, body, context)
                    .await
            }
        })
        .await
        .map(drop)
    }

    /// `oauth.v2.access`: exchanges an install's `code` (client id and secret as HTTP Basic).
    pub async fn oauth_v2_access(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Installation, SlackApiError> {
        let mut req = SlackOAuthV2AccessTokenRequest::new(
            self.client_id.clone().into(),
            self.client_secret.clone().into(),
            code.to_string().into(),
        );
        if let Ok(url) = redirect_uri.parse() {
            req = req.with_redirect_uri(url);
        }
        let inner = &*self.inner;
        let r = self
            .retrying("oauth.v2.access", || {
                let req = &req;
                async move { inner.oauth2_access(req).await }
            })
            .await?;
        Ok(Installation {
            team_id: r.team.id.to_string(),
            team_name: r.team.name.unwrap_or_default(),
            bot_token: r.access_token.to_string(),
            bot_user_id: r.bot_user_id.map(|u| u.to_string()).unwrap_or_default(),
            authed_user_id: r.authed_user.id.to_string(),
            scopes: r
                .scope
                .0
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}
