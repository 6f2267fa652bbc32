//! Teams (Bot Framework) configuration: the Azure bot registration's app id and password, and
//! the three Microsoft endpoints, which tests point at a local fake.

/// Bot Framework's OpenID metadata for tokens the Bot Connector sends us.
pub const DEFAULT_OPENID_METADATA_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// Where we get our own tokens for calling the Bot Connector (client credentials).
pub const DEFAULT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token";
/// The `iss` of tokens the Bot Connector sends.
pub const DEFAULT_EXPECTED_ISSUER: &str = "https://api.botframework.com";
/// The scope of the outbound token.
pub const BOT_FRAMEWORK_SCOPE: &str = "https://api.botframework.com/.default";

#[derive(Clone, PartialEq, Eq)]
pub struct TeamsConfig {
    /// The Microsoft App ID of the bot registration (inbound `aud`, outbound `client_id`).
    pub app_id: String,
    /// Its client secret.
    pub app_password: String,
    pub openid_metadata_url: String,
    pub token_url: String,
    pub expected_issuer: String,
}

impl TeamsConfig {
    /// A configuration with Microsoft's production endpoints.
    pub fn new(app_id: impl Into<String>, app_password: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            app_password: app_password.into(),
            openid_metadata_url: DEFAULT_OPENID_METADATA_URL.to_string(),
            token_url: DEFAULT_TOKEN_URL.to_string(),
            expected_issuer: DEFAULT_EXPECTED_ISSUER.to_string(),
        }
    }

    /// The bot's id inside Teams conversations (`28:<app id>`).
    pub fn bot_id(&self) -> String {
        format!("28:{}", self.app_id)
    }
}

impl std::fmt::Debug for TeamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamsConfig")
            .field("app_id", &self.app_id)
            .field("app_password", &"<redacted>")
            .field("openid_metadata_url", &self.openid_metadata_url)
            .field("token_url", &self.token_url)
            .field("expected_issuer", &self.expected_issuer)
            .finish()
    }
}
