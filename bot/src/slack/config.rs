//! Slack app settings.

/// Everything the Slack adapter needs from configuration.
#[derive(Clone)]
pub struct SlackConfig {
    /// The app's signing secret (Basic Information → App Credentials).
    pub signing_secret: String,
    pub client_id: String,
    pub client_secret: String,
    /// The Web API base, `https://slack.com/api/` unless a test points it at a fake.
    pub api_base_url: String,
    /// Where Slack sends the browser after install: our `/slack/oauth/callback`.
    pub oauth_redirect_url: String,
    /// Bot scopes requested on install.
    pub scopes: Vec<String>,
}

/// Slack's Web API.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api/";
/// Where "Add to Slack" sends the browser.
pub const AUTHORIZE_URL: &str = "https://slack.com/oauth/v2/authorize";

/// The bot scopes `manifests/slack-app.yaml` asks for.
pub const DEFAULT_SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "files:write",
    "channels:read",
    "groups:read",
];

impl SlackConfig {
    /// Settings with Slack's real API base and the default scopes.
    pub fn new(
        signing_secret: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        oauth_redirect_url: impl Into<String>,
    ) -> Self {
        Self {
            signing_secret: signing_secret.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            api_base_url: DEFAULT_API_BASE_URL.to_string(),
            oauth_redirect_url: oauth_redirect_url.into(),
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = url.into();
        self
    }

    /// The "Add to Slack" URL carrying `state`.
    pub fn authorize_url(&self, state: &str) -> String {
        let mut url = url::Url::parse(AUTHORIZE_URL).expect("constant URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scopes.join(","))
            .append_pair("redirect_uri", &self.oauth_redirect_url)
            .append_pair("state", state);
        url.into()
    }
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("signing_secret", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .field("oauth_redirect_url", &self.oauth_redirect_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}
