//! The Bot Connector REST API (the part Lineup uses) over reqwest: create a 1:1 conversation,
//! send, reply, update, and read one member. The service URL comes from inbound activities
//! (stored per Azure AD tenant), so tests point it at a local fake.
//!
//! Every call carries our client-credentials token ([`OutboundTokens`]); a 401 drops the cached
//! token and retries once with a fresh one; 429 and 5xx are retried up to [`MAX_ATTEMPTS`]
//! times, waiting for `Retry-After` (capped at [`MAX_RETRY_WAIT`]) or a short back-off.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::auth::OutboundTokens;

pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("no token for the Bot Connector: {0}")]
    Token(String),
    #[error("bad service URL {0:?}")]
    ServiceUrl(String),
    #[error("Bot Connector unreachable: {0}")]
    Transport(String),
    #[error("Bot Connector answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unreadable Bot Connector answer: {0}")]
    Decode(String),
}

impl ConnectorError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A conversation member as `GET …/members/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aad_object_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

impl Member {
    /// `email`, else a UPN that looks like one.
    pub fn best_email(&self) -> Option<String> {
        self.email
            .clone()
            .filter(|e| e.contains('@'))
            .or_else(|| self.user_principal_name.clone().filter(|u| u.contains('@')))
    }
}

/// A Bot Connector client. Cheap to clone.
#[derive(Clone)]
pub struct BotConnector {
    http: reqwest::Client,
    tokens: Arc<OutboundTokens>,
}

/// `{service_url}/v3/conversations/{segments…}` with every segment percent-encoded (Teams
/// conversation ids hold `:`, `;`, `@` and `=`).
pub fn endpoint(service_url: &str, segments: &[&str]) -> Result<url::Url, ConnectorError> {
    let mut url = url::Url::parse(service_url.trim())
        .map_err(|_| ConnectorError::ServiceUrl(service_url.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
        return Err(ConnectorError::ServiceUrl(service_url.to_string()));
    }
    url.set_query(None);
    url.set_fragment(None);
    let mut path = url.path().trim_end_matches('/').to_string();
    path.push_str("/v3/conversations");
    for seg in segments {
        path.push('/');
        path.push_str(&encode_component(seg));
    }
    url.set_path(&path);
    Ok(url)
}

/// JavaScript's `encodeURIComponent`, as the Bot Framework SDKs encode ids in paths.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn retry_wait(resp: &reqwest::Response, attempt: u32) -> Duration {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_millis(200 * 2u64.pow(attempt)))
        .min(MAX_RETRY_WAIT)
}

impl BotConnector {
    pub fn new(http: reqwest::Client, tokens: Arc<OutboundTokens>) -> Self {
        Self { http, tokens }
    }

    async fn call(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.token().await.map_err(ConnectorError::Token)?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token)
                .timeout(CALL_TIMEOUT);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                    continue;
                }
                Err(e) => return Err(ConnectorError::Transport(e.to_string())),
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.tokens.invalidate().await;
                continue;
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && attempt < MAX_ATTEMPTS
            {
                let wait = retry_wait(&resp, attempt);
                warn!(%status, ?wait, path = url.path(), "Bot Connector busy; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = resp
                .text()
                .await
                .map_err(|e| ConnectorError::Transport(e.to_string()))?;
            if !status.is_success() {
                return Err(ConnectorError::Status {
                    status: status.as_u16(),
                    body: text.chars().take(300).collect(),
                });
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| ConnectorError::Decode(e.to_string()));
        }
    }

    fn id_of(v: &Value) -> Result<String, ConnectorError> {
        v.get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ConnectorError::Decode("no id in the answer".into()))
    }

    /// Creates (or gets back: Teams answers with the existing one) the 1:1 conversation between
    /// the bot and `user_id` in `tenant_id`; returns its id.
    pub async fn create_conversation(
        &self,
        service_url: &str,
        bot_id: &str,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<String, ConnectorError> {
        let body = json!({
            "bot": {"id": bot_id},
            "members": [{"id": user_id}],
            "isGroup": false,
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        });
        let v = self
            .call(Method::POST, endpoint(service_url, &[])?, Some(&body))
            .await?;
        Self::id_of(&v)
    }

    /// Posts an activity to a conversation (a new message, or a new thread in a channel);
    /// returns the new activity's id.
    pub async fn send_activity(
        &self,
        service_url: &str,
        conversation_id: &str,
        activity: &Value,
    ) -> Result<String, ConnectorError> {
        let url = endpoint(service_url, &[conversation_id, "activities"])?;
        Self::id_of(&self.call(Method::POST, url, Some(activity)).await?)
    }

    /// Replies to an activity (in its thread, in a channel); returns the reply's id.
    pub async fn reply(
        &self,
        service_url: &str,
        conversation_id: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<String, ConnectorError> {
        let mut activity = activity.clone();
        activity["replyToId"] = json!(activity_id);
        let url = endpoint(service_url, &[conversation_id, "activities", activity_id])?;
        Self::id_of(&self.call(Method::POST, url, Some(&activity)).await?)
    }

    /// Replaces an activity we posted.
    pub async fn update(
        &self,
        service_url: &str,
        conversation_id: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<(), ConnectorError> {
        let mut activity = activity.clone();
        activity["id"] = json!(activity_id);
        let url = endpoint(service_url, &[conversation_id, "activities", activity_id])?;
        self.call(Method::PUT, url, Some(&activity))
            .await
            .map(|_| ())
    }

    /// One member of a conversation; `None` when Teams does not know them there (404) or does
    /// not let the bot read the roster (403).
    pub async fn get_member(
        &self,
        service_url: &str,
        conversation_id: &str,
        user_id: &str,
    ) -> Result<Option<Member>, ConnectorError> {
        let url = endpoint(service_url, &[conversation_id, "members", user_id])?;
        match self.call(Method::GET, url, None).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| ConnectorError::Decode(e.to_string())),
            Err(e) if matches!(e.status(), Some(403 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_encode_conversation_ids() {
        let u = endpoint(
            "https://smba.trafficmanager.net/emea/",
            &["19:abc@thread.tacv2;messageid=17", "activities"],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://smba.trafficmanager.net/emea/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D17/activities"
        );
        assert!(endpoint("ftp://x/", &[]).is_err());
        assert!(endpoint("a:1", &[]).is_err());
    }
}
