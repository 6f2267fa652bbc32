//! Configuration from the environment (12-factor). Every setting is listed in the README;
//! a bad one stops start-up with one line naming it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Below Kubernetes' default 30 s termination grace period, which must stay above it.
const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/metrics` is served for the operator's Prometheus; `None`: not at all.
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `None` means the built-in simulator, started in-process.
    pub provider: Option<ProviderSettings>,
    /// AIRALO_BASE_URL: tenants may connect Airalo accounts (travel eSIMs) at this address.
    /// `None`: only with the built-in simulator (its Airalo personality).
    pub airalo_base_url: Option<String>,
    /// GIGS_BASE_URL: tenants may connect Gigs projects at this address.
    /// `None`: only with the built-in simulator (its Gigs personality).
    pub gigs_base_url: Option<String>,
    pub log_format: LogFormat,
    /// OTEL_EXPORTER_OTLP_ENDPOINT: where spans go over OTLP/HTTP (`/v1/traces` is appended);
    /// `None` exports nothing.
    pub otlp: Option<OtlpSettings>,
    /// Verifies provider webhooks, for a configured provider and the built-in simulator alike.
    pub provider_webhook_secret: Option<String>,
    /// Hex key sealing secrets at rest; `None` means a key file in `data_dir` (made once).
    pub secret_key: Option<String>,
    /// Where users reach this server (links in chat, OAuth redirects).
    pub public_url: Option<String>,
    /// The admin portal's base address; tenants are served on its subdomains.
    pub portal_url: url::Url,
    pub slack: Option<SlackSettings>,
    pub discord: Option<DiscordSettings>,
    pub teams: Option<TeamsSettings>,
    /// `None` means emails are written as `.eml` files under `data_dir/outbox`.
    pub smtp: Option<lineup_core::messaging::outgoing_email::SmtpSettings>,
    /// The sender of invite and password-reset emails.
    pub mail_from: String,
    /// What single sign-on may reach: public https hosts only, except in `lineup demo`.
    pub sso_network: lineup_core::identity::sso::SsoNetworkPolicy,
    /// The reverse proxy whose `X-Forwarded-For` names the client for the sign-in limits.
    pub trusted_proxy: Option<std::net::IpAddr>,
    /// How long a stopping server may take to finish in-flight requests and its current job.
    pub shutdown_grace: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The collector's traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    pub traces_url: String,
    /// OTEL_SERVICE_NAME, `lineup` unless set.
    pub service_name: String,
}

#[derive(Debug, Clone)]
pub struct TeamsSettings {
    /// The Azure bot's Microsoft App ID (the audience of every inbound token).
    pub app_id: String,
    pub app_password: String,
    /// Overrides for tests: where the signing keys and outbound tokens come from.
    pub openid_metadata_url: Option<String>,
    pub token_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub application_id: String,
    /// The application's Ed25519 public key (hex); every interaction is verified with it.
    pub public_key: String,
    pub bot_token: String,
    pub api_base_url: Option<String>,
    /// The OAuth2 client secret: "Add to Discord" in the portal needs it (the invite's code
    /// is exchanged for the server it added the bot to).
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub signing_secret: String,
    pub client_id: String,
    pub client_secret: String,
    /// Slack's Web API, or a fake in tests.
    pub api_base_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub account_id: String,
    pub webhook_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn error(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let listen = get("LINEUP_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen.parse().map_err(|_| {
            error(
                "LINEUP_LISTEN",
                format!("{listen:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let metrics_listen = match get("LINEUP_METRICS_LISTEN") {
            None => None,
            Some(addr) => Some(addr.trim().parse().map_err(|_| {
                error(
                    "LINEUP_METRICS_LISTEN",
                    format!("{addr:?} is not an address like 0.0.0.0:9090"),
                )
            })?),
        };
        let database_url = get("DATABASE_URL");
        if let Some(url) = &database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return Err(error(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            ));
        }
        let provider = match get("PROVIDER_BASE_URL") {
            None => None,
            Some(base_url) => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(error("PROVIDER_BASE_URL", "must be an http(s) URL"));
                }
                let need = |key: &'static str| {
                    get(key).ok_or_else(|| error(key, "is required when PROVIDER_BASE_URL is set"))
                };
                Some(ProviderSettings {
                    base_url,
                    client_id: need("PROVIDER_CLIENT_ID")?,
                    client_secret: need("PROVIDER_CLIENT_SECRET")?,
                    account_id: need("PROVIDER_ACCOUNT_ID")?,
                    webhook_secret: get("PROVIDER_WEBHOOK_SECRET"),
                })
            }
        };
        let airalo_base_url = get("AIRALO_BASE_URL");
        if let Some(url) = &airalo_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(error("AIRALO_BASE_URL", "must be an http(s) URL"));
        }
        let gigs_base_url = get("GIGS_BASE_URL");
        if let Some(url) = &gigs_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(error("GIGS_BASE_URL", "must be an http(s) URL"));
        }
        let log_format = match get("LINEUP_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(error(
                    "LINEUP_LOG_FORMAT",
                    format!("{other:?} is not json or pretty"),
                ));
            }
        };
        let otlp = match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            None => None,
            Some(endpoint) => {
                let url = url::Url::parse(&endpoint)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        error(
                            "OTEL_EXPORTER_OTLP_ENDPOINT",
                            "must be an http(s) URL, e.g. http://otel-collector:4318",
                        )
                    })?;
                Some(OtlpSettings {
                    traces_url: format!("{}/v1/traces", url.as_str().trim_end_matches('/')),
                    service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "lineup".into()),
                })
            }
        };
        let secret_key = get("LINEUP_SECRET_KEY");
        if let Some(key) = &secret_key {
            lineup_core::secret::SecretBox::from_hex(key)
                .map_err(|e| error("LINEUP_SECRET_KEY", e.to_string()))?;
        }
        let public_url = get("LINEUP_PUBLIC_URL");
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(error("LINEUP_PUBLIC_URL", "must be an http(s) URL"));
        }
        let portal_url = portal_url(get("LINEUP_PORTAL_URL"), &listen)?;
        let trusted_proxy = match get("LINEUP_TRUSTED_PROXY") {
            None => None,
            Some(ip) => Some(ip.trim().parse().map_err(|_| {
                error(
                    "LINEUP_TRUSTED_PROXY",
                    format!("{ip:?} is not an IP address"),
                )
            })?),
        };
        let shutdown_grace = match get("LINEUP_SHUTDOWN_GRACE_SECS") {
            None => DEFAULT_SHUTDOWN_GRACE,
            Some(secs) => secs
                .trim()
                .parse()
                .map(std::time::Duration::from_secs)
                .map_err(|_| {
                    error(
                        "LINEUP_SHUTDOWN_GRACE_SECS",
                        format!("{secs:?} is not a whole number of seconds"),
                    )
                })?,
        };
        let slack = match get("SLACK_SIGNING_SECRET") {
            None => None,
            Some(signing_secret) => {
                let need = |key: &'static str| {
                    get(key)
                        .ok_or_else(|| error(key, "is required when SLACK_SIGNING_SECRET is set"))
                };
                Some(SlackSettings {
                    signing_secret,
                    client_id: need("SLACK_CLIENT_ID")?,
                    client_secret: need("SLACK_CLIENT_SECRET")?,
                    api_base_url: get("SLACK_API_BASE_URL"),
                })
            }
        };
        let discord = match get("DISCORD_APPLICATION_ID") {
            None => None,
            Some(application_id) => {
                let need = |key: &'static str| {
                    get(key)
                        .ok_or_else(|| error(key, "is required when DISCORD_APPLICATION_ID is set"))
                };
                let public_key = need("DISCORD_PUBLIC_KEY")?;
                if hex::decode(&public_key).map(|k| k.len()) != Ok(32) {
                    return Err(error(
                        "DISCORD_PUBLIC_KEY",
                        "must be the 64 hex characters shown in the Discord developer portal",
                    ));
                }
                Some(DiscordSettings {
                    application_id,
                    public_key,
                    bot_token: need("DISCORD_BOT_TOKEN")?,
                    api_base_url: get("DISCORD_API_BASE_URL"),
                    client_secret: get("DISCORD_CLIENT_SECRET"),
                })
            }
        };
        let teams = match get("TEAMS_APP_ID") {
            None => None,
            Some(app_id) => Some(TeamsSettings {
                app_id,
                app_password: get("TEAMS_APP_PASSWORD").ok_or_else(|| {
                    error("TEAMS_APP_PASSWORD", "is required when TEAMS_APP_ID is set")
                })?,
                openid_metadata_url: get("TEAMS_OPENID_METADATA_URL"),
                token_url: get("TEAMS_TOKEN_URL"),
            }),
        };
        let mail_from = get("MAIL_FROM");
        if let Some(from) = &mail_from {
            lineup_core::messaging::outgoing_email::check_sender(from)
                .map_err(|reason| error("MAIL_FROM", reason))?;
        }
        let smtp = match get("SMTP_URL") {
            None => None,
            Some(url) => {
                let from = mail_from
                    .as_deref()
                    .ok_or_else(|| error("MAIL_FROM", "is required when SMTP_URL is set"))?;
                Some(
                    lineup_core::messaging::outgoing_email::SmtpSettings::parse(&url, from)
                        .map_err(|reason| error("SMTP_URL", reason))?,
                )
            }
        };
        Ok(Self {
            smtp,
            mail_from: mail_from.unwrap_or_else(|| "lineup@localhost".to_owned()),
            trusted_proxy,
            shutdown_grace,
            provider_webhook_secret: get("PROVIDER_WEBHOOK_SECRET"),
            teams,
            discord,
            secret_key,
            public_url,
            portal_url,
            slack,
            listen,
            metrics_listen,
            data_dir: get("LINEUP_DATA_DIR")
                .map_or_else(|| PathBuf::from("lineup-data"), PathBuf::from),
            database_url,
            provider,
            airalo_base_url,
            gigs_base_url,
            log_format,
            otlp,
            sso_network: lineup_core::identity::sso::SsoNetworkPolicy::default(),
        })
    }

    /// The portal's address: LINEUP_PORTAL_URL, or `lineup.localhost` on the listen port
    /// (browsers resolve every `*.localhost` name to this machine).
    pub fn portal_url_default(listen: &SocketAddr) -> url::Url {
        url::Url::parse(&format!("http://lineup.localhost:{}", listen.port()))
            .expect("a port makes a valid URL")
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("lineup.db").display()))
    }
}

fn portal_url(value: Option<String>, listen: &SocketAddr) -> Result<url::Url, ConfigError> {
    let Some(value) = value else {
        return Ok(Config::portal_url_default(listen));
    };
    let url = url::Url::parse(&value)
        .map_err(|e| error("LINEUP_PORTAL_URL", format!("{value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(error(
            "LINEUP_PORTAL_URL",
            "must be an http(s) URL with a host name, e.g. https://lineup.example.com",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn nothing_set_means_embedded_sqlite_and_the_simulator() {
        let c = config(&[]).unwrap();
        assert!(c.provider.is_none());
        assert_eq!(c.database_url(), "sqlite://lineup-data/lineup.db");
        assert_eq!(c.shutdown_grace, std::time::Duration::from_secs(20));
    }

    #[test]
    fn each_bad_setting_is_named() {
        assert_eq!(
            config(&[("DATABASE_URL", "mysql://x")])
                .unwrap_err()
                .setting,
            "DATABASE_URL"
        );
        assert_eq!(
            config(&[("LINEUP_LISTEN", "nope")]).unwrap_err().setting,
            "LINEUP_LISTEN"
        );
        assert_eq!(
            config(&[("LINEUP_METRICS_LISTEN", "9090")])
                .unwrap_err()
                .setting,
            "LINEUP_METRICS_LISTEN"
        );
        let missing = config(&[
            ("PROVIDER_BASE_URL", "https://api.1global.com"),
            ("PROVIDER_CLIENT_ID", "id"),
            ("PROVIDER_ACCOUNT_ID", "acc"),
        ]);
        assert_eq!(missing.unwrap_err().setting, "PROVIDER_CLIENT_SECRET");
        let no_sender = config(&[("SMTP_URL", "smtp://mail.example.com")]);
        assert_eq!(no_sender.unwrap_err().setting, "MAIL_FROM");
        let bad_scheme = config(&[("SMTP_URL", "imap://x"), ("MAIL_FROM", "l@x.com")]);
        assert_eq!(bad_scheme.unwrap_err().setting, "SMTP_URL");
        let clear_to_elsewhere = config(&[
            ("SMTP_URL", "smtp://mail.example.com?tls=none"),
            ("MAIL_FROM", "l@x.com"),
        ]);
        assert_eq!(clear_to_elsewhere.unwrap_err().setting, "SMTP_URL");
        let bad_grace = config(&[("LINEUP_SHUTDOWN_GRACE_SECS", "20s")]);
        assert_eq!(bad_grace.unwrap_err().setting, "LINEUP_SHUTDOWN_GRACE_SECS");
        let bad_sender = config(&[("MAIL_FROM", "lineup at example.com")]);
        assert_eq!(bad_sender.unwrap_err().setting, "MAIL_FROM");
        for bad in ["ftp://lineup.example.com", "lineup.example.com", "https://"] {
            let c = config(&[("LINEUP_PORTAL_URL", bad)]);
            assert_eq!(c.unwrap_err().setting, "LINEUP_PORTAL_URL", "{bad}");
        }
    }

    #[test]
    fn the_portal_defaults_to_lineup_localhost_on_the_listen_port() {
        let c = config(&[("LINEUP_LISTEN", "0.0.0.0:9000")]).unwrap();
        assert_eq!(c.portal_url.as_str(), "http://lineup.localhost:9000/");
    }
}
