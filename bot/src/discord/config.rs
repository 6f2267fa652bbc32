//! Discord application settings.

/// Discord's REST API root; tests point [`DiscordConfig::api_base_url`] at a local fake.
pub const DEFAULT_API_BASE_URL: &str = "https://discord.com/api/v10";

#[derive(Clone)]
pub struct DiscordConfig {
    /// The application (client) id: interaction webhooks and command registration use it.
    pub application_id: String,
    /// The application's Ed25519 public key, hex (64 characters), from the developer portal.
    pub public_key: String,
    /// The bot token (without the `Bot ` prefix); used when a workspace has none of its own.
    pub bot_token: String,
    /// `https://discord.com/api/v10` or a fake's `http://127.0.0.1:PORT/api/v10`.
    pub api_base_url: String,
}

impl DiscordConfig {
    pub fn new(
        application_id: impl Into<String>,
        public_key: impl Into<String>,
        bot_token: impl Into<String>,
    ) -> Self {
        Self {
            application_id: application_id.into(),
            public_key: public_key.into(),
            bot_token: bot_token.into(),
            api_base_url: DEFAULT_API_BASE_URL.to_string(),
        }
    }

    pub fn with_api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = url.into();
        self
    }
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("application_id", &self.application_id)
            .field("public_key", &self.public_key)
            .field("bot_token", &"<redacted>")
            .field("api_base_url", &self.api_base_url)
            .finish()
    }
}
