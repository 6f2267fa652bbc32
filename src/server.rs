//! Composes core, bot and portal into one server: storage, provider, HTTP routes, worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use lineup_core::Lineup;
use lineup_core::ids::{TenantId, UserId};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::outgoing_email::{FileMailer, Mailer, SmtpMailer};
use lineup_core::provider::PollPolicy;
use lineup_core::provider::WebhookError;
use lineup_core::provider::connection::{ProviderConnector, VendorApi};
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::secret::SecretBox;
use lineup_core::store::Store;
use lineup_simulator::{Credentials, Personality, RunningSimulator, SimConfig};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, DiscordSettings, ProviderSettings, SlackSettings, TeamsSettings};
use crate::metrics;
use crate::probes::{self, ProviderProbe, Readiness};
use crate::worker::Worker;
use lineup_bot::chat::ChatTransport;
use lineup_bot::discord::transport::DiscordTransport;
use lineup_bot::discord::{
    DiscordClient, DiscordConfig, DiscordInstall, DiscordInstallConfig, DiscordState,
    discord_install_router, discord_router,
};
use lineup_bot::flows::ChatFlows;
use lineup_bot::install_state::AfterInstall;
use lineup_bot::slack::{
    InstallState, SlackApp, SlackClient, SlackConfig, SlackState, SlackTransport, slack_router,
};
use lineup_bot::teams::{TeamsConfig, TeamsOutbound, TeamsState, teams_router};
use lineup_portal::{ChatConnections, Portal, PortalConfig, RequestEvents, portal_router};
use metrics_exporter_prometheus::PrometheusHandle;

/// Everything a running server holds; dropping it stops the in-process simulator.
pub struct Runtime {
    pub lineup: Lineup,
    pub simulator: Option<RunningSimulator>,
    /// The chat flows over every configured platform.
    pub flows: Arc<ChatFlows>,
    pub slack: Option<SlackParts>,
    pub discord: Option<DiscordState>,
    /// "Add to Discord", when DISCORD_CLIENT_SECRET is set.
    pub discord_install: Option<DiscordInstall>,
    pub teams: Option<TeamsState>,
    pub portal: Portal,
    /// Delivers the email outbox: SMTP, or `.eml` files when no SMTP_URL is set.
    pub mailer: Arc<dyn Mailer>,
    /// The provider half of `/readyz`, checked at most once per TTL.
    pub provider_probe: Arc<ProviderProbe>,
}

/// The Slack routes' state and its install links, when Slack is configured.
#[derive(Clone)]
pub struct SlackParts {
    pub state: SlackState,
    pub install_state: InstallState,
}

/// Open storage, migrate, and connect the provider (starting the simulator when none is
/// configured). Fails with one line naming the setting at fault.
pub async fn start(config: &Config) -> anyhow::Result<Runtime> {
    start_with(config, true).await
}

/// The same for a one-off command beside a running server: a built-in simulator, if needed,
/// does not touch the server's saved simulator state.
pub async fn start_for_command(config: &Config) -> anyhow::Result<Runtime> {
    start_with(config, false).await
}

async fn start_with(config: &Config, keep_simulator_state: bool) -> anyhow::Result<Runtime> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "LINEUP_DATA_DIR: cannot create {}",
            config.data_dir.display()
        )
    })?;
    let store = Store::connect(&config.database_url()).await?;
    store
        .migrate()
        .await
        .context("DATABASE_URL: applying migrations failed")?;
    if store.bypasses_row_security().await? {
        tracing::warn!(
            "DATABASE_URL connects as a superuser or BYPASSRLS role: row-level security is \
             not enforced; connect as an ordinary role in production"
        );
    }
    let (settings, simulator) = match &config.provider {
        Some(settings) => (settings.clone(), None),
        None => {
            let sim = start_simulator(&config.data_dir, keep_simulator_state).await?;
            let settings = ProviderSettings {
                base_url: sim.base_url(),
                client_id: Credentials::default().client_id,
                client_secret: Credentials::default().client_secret,
                account_id: sim.account_id(),
                webhook_secret: config.provider_webhook_secret.clone(),
            };
            tracing::info!(url = %sim.base_url(), "no PROVIDER_BASE_URL set: using the built-in provider simulator");
            (settings, Some(sim))
        }
    };
    let provider = connect_provider(&settings).await?;
    let secrets = load_secrets(config)?;
    let mut connector = ProviderConnector::new(&settings.base_url);
    let airalo_url = match (&config.airalo_base_url, &simulator) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(sim)) => Some(sim.personality_url(Personality::Airalo)),
        (None, None) => None,
    };
    if let Some(url) = airalo_url {
        connector = connector.with_vendor("airalo", VendorApi::Airalo, url);
    }
    let gigs_url = match (&config.gigs_base_url, &simulator) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(sim)) => Some(sim.personality_url(Personality::Gigs)),
        (None, None) => None,
    };
    if let Some(url) = gigs_url {
        connector = connector.with_vendor("gigs", VendorApi::Gigs, url);
    }
    let lineup = Lineup::new(store, provider, PollPolicy::default())
        .with_provider_connector(connector)
        .with_secrets(secrets)
        .with_sso_network_policy(config.sso_network);
    let sealed = lineup
        .seal_stored_activation_codes()
        .await
        .context("sealing activation codes stored in clear failed")?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed activation codes stored in clear before this version"
        );
    }
    let mut transports: Vec<Arc<dyn ChatTransport>> = Vec::new();
    let slack_client = match &config.slack {
        Some(settings) => {
            let (client, slack_config) = slack_client(config, settings)?;
            transports.push(Arc::new(SlackTransport::new(client.clone())));
            Some((client, slack_config))
        }
        None => None,
    };
    let discord_client = match &config.discord {
        Some(settings) => {
            let client = discord_client(settings)?;
            transports.push(Arc::new(DiscordTransport::new(client.clone())));
            Some(client)
        }
        None => None,
    };
    let teams_outbound = config.teams.as_ref().map(|settings| {
        let config = teams_config(settings);
        let outbound = TeamsOutbound::new(&config, Arc::new(lineup.clone()));
        transports.push(Arc::new(outbound.transport()));
        (config, outbound)
    });
    let flows = ChatFlows::new(lineup.clone(), transports);
    let teams = teams_outbound.map(|(config, outbound)| {
        TeamsState::with_outbound(
            config,
            flows.clone(),
            Arc::new(lineup.clone()),
            outbound,
            Arc::new(lineup.clone()),
        )
        .with_tenant_links(Arc::new(lineup.clone()))
    });
    let discord = match discord_client {
        Some(client) => Some(
            DiscordState::with_client(client, flows.clone(), Arc::new(lineup.clone()))
                .map_err(|e| anyhow!("DISCORD_PUBLIC_KEY: {e}"))?,
        ),
        None => None,
    };
    let portal_config = PortalConfig {
        trusted_proxy: config.trusted_proxy,
        ..PortalConfig::new(config.portal_url.clone())
    };
    let after_install = {
        let portal_config = portal_config.clone();
        AfterInstall::new(move |tenant, platform| {
            format!(
                "{}/settings/chat?connected={}",
                portal_config.tenant_url(tenant.slug.as_str()),
                platform.as_str()
            )
        })
    };
    let slack = slack_client.map(|(client, slack_config)| {
        let app = SlackApp::new(flows.clone(), after_install.clone());
        let state = SlackState::with_client(
            slack_config,
            flows.clone(),
            app,
            client,
            Arc::new(lineup.clone()),
        );
        SlackParts {
            install_state: state.install_state().clone(),
            state,
        }
    });
    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(settings) => Arc::new(SmtpMailer::new(settings.clone())),
        None => {
            let outbox = config.data_dir.join("outbox");
            tracing::info!(folder = %outbox.display(), "no SMTP_URL set: emails are written to the outbox folder");
            Arc::new(FileMailer::new(outbox, &config.mail_from))
        }
    };
    let discord_install = config.discord.as_ref().and_then(|settings| {
        let client_secret = settings.client_secret.clone()?;
        let install = DiscordInstallConfig {
            application_id: settings.application_id.clone(),
            client_secret,
            api_base_url: settings
                .api_base_url
                .clone()
                .unwrap_or_else(|| lineup_bot::discord::config::DEFAULT_API_BASE_URL.to_owned()),
            redirect_url: format!("{}/discord/oauth/callback", public_url(config)),
        };
        Some(DiscordInstall::new(
            install,
            lineup.clone(),
            after_install.clone(),
        ))
    });
    let connectors = ChatConnectors {
        public_url: public_url(config),
        slack: slack.clone(),
        discord: discord.as_ref().map(|d| d.client().clone()),
        discord_install: discord_install.clone(),
        teams_app_id: config.teams.as_ref().map(|t| t.app_id.clone()),
    };
    let portal = Portal::new(lineup.clone(), portal_config)
        .with_mailer(mailer.clone())
        .with_request_events(Arc::new(ChatDecisions(flows.clone())))
        .with_chat_directory(flows.clone())
        .with_chat_connections(Arc::new(connectors));
    let provider_probe = Arc::new(ProviderProbe::new(
        lineup.shared_provider(),
        crate::probes::PROVIDER_CHECK_TTL,
    ));
    Ok(Runtime {
        provider_probe,
        mailer,
        portal,
        lineup,
        simulator,
        flows,
        slack,
        discord,
        discord_install,
        teams,
    })
}

fn teams_config(settings: &TeamsSettings) -> TeamsConfig {
    let mut config = TeamsConfig::new(&settings.app_id, &settings.app_password);
    if let Some(url) = &settings.openid_metadata_url {
        config.openid_metadata_url = url.clone();
    }
    if let Some(url) = &settings.token_url {
        config.token_url = url.clone();
    }
    config
}

pub fn discord_client(settings: &DiscordSettings) -> anyhow::Result<DiscordClient> {
    let mut config = DiscordConfig::new(
        &settings.application_id,
        &settings.public_key,
        &settings.bot_token,
    );
    if let Some(api) = &settings.api_base_url {
        config = config.with_api_base_url(api);
    }
    DiscordClient::new(config).map_err(|e| anyhow!("DISCORD_API_BASE_URL: {e}"))
}

fn slack_client(
    config: &Config,
    settings: &SlackSettings,
) -> anyhow::Result<(SlackClient, SlackConfig)> {
    let public = public_url(config);
    let mut slack_config = SlackConfig::new(
        &settings.signing_secret,
        &settings.client_id,
        &settings.client_secret,
        format!("{public}/slack/oauth/callback"),
    );
    if let Some(api) = &settings.api_base_url {
        slack_config = slack_config.with_api_base_url(api);
    }
    let client = SlackClient::from_config(&slack_config)
        .context("SLACK_API_BASE_URL: cannot build the Slack client")?;
    Ok((client, slack_config))
}

/// Where people reach this server: LINEUP_PUBLIC_URL, or the listen address.
pub fn public_url(config: &Config) -> String {
    config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen))
        .trim_end_matches('/')
        .to_owned()
}

/// LINEUP_SECRET_KEY, or a key generated once into the data directory (readable by the
/// owner only) so the zero-setup run needs no configuration and restarts keep working.
fn load_secrets(config: &Config) -> anyhow::Result<SecretBox> {
    if let Some(key) = &config.secret_key {
        return SecretBox::from_hex(key).map_err(|e| anyhow!("LINEUP_SECRET_KEY: {e}"));
    }
    let path = config.data_dir.join("secret.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretBox::generate_hex_key();
            write_private(&path, &key)
                .with_context(|| format!("LINEUP_DATA_DIR: cannot write {}", path.display()))?;
            key
        }
        Err(e) => {
            return Err(anyhow!(
                "LINEUP_DATA_DIR: cannot read {}: {e}",
                path.display()
            ));
        }
    };
    SecretBox::from_hex(&key).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// The simulator keeps its world in the data directory, so a restart finds the
/// subscriptions our database refers to.
async fn start_simulator(
    data_dir: &std::path::Path,
    persistent: bool,
) -> anyhow::Result<RunningSimulator> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let (config, credentials) = (SimConfig::default(), Credentials::default());
    let started = if persistent {
        let state_file = data_dir.join("simulator.json");
        lineup_simulator::spawn_persistent(addr, config, credentials, state_file).await
    } else {
        lineup_simulator::spawn(addr, config, credentials).await
    };
    started.context("LINEUP_DATA_DIR: could not start the built-in provider simulator")
}

async fn connect_provider(settings: &ProviderSettings) -> anyhow::Result<Arc<OneGlobalProvider>> {
    let mut config = OneGlobalConfig::new(
        &settings.base_url,
        &settings.client_id,
        &settings.client_secret,
        &settings.account_id,
    );
    config.webhook_secret = settings.webhook_secret.clone();
    let provider = OneGlobalProvider::new(config).map_err(|e| anyhow!("PROVIDER_BASE_URL: {e}"))?;
    // Prove the URL and credentials work now, not at the first employee's request.
    use lineup_core::provider::ConnectivityProvider;
    provider
        .list_plans()
        .await
        .map_err(|e| anyhow!("PROVIDER_BASE_URL {} is not usable: {e}", settings.base_url))?;
    Ok(Arc::new(provider))
}

/// Every route of the composed server.
pub fn router(runtime: &Runtime) -> Router {
    let (lineup, slack) = (
        runtime.lineup.clone(),
        runtime.slack.as_ref().map(|s| s.state.clone()),
    );
    let readiness = Readiness {
        lineup: lineup.clone(),
        provider: runtime.provider_probe.clone(),
    };
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(probes::readyz).with_state(readiness))
        // Airalo checks a webhook URL with HEAD before it sends anything there.
        .route(
            "/provider/webhooks",
            post(provider_webhook).head(|| async { StatusCode::OK }),
        )
        .route(
            "/provider/webhooks/{connection}",
            post(connection_webhook).head(|| async { StatusCode::OK }),
        )
        .with_state(lineup);
    if let Some(state) = slack {
        app = app.merge(slack_router(state));
    }
    if let Some(state) = runtime.discord.clone() {
        app = app.merge(discord_router(state));
    }
    if let Some(install) = runtime.discord_install.clone() {
        app = app.merge(discord_install_router(install));
    }
    if let Some(state) = runtime.teams.clone() {
        app = app.merge(teams_router(state));
    }
    // Measured where the route is known: this router's routes here, the portal's inside it.
    app = app.route_layer(axum::middleware::from_fn(metrics::record_http));
    // Everything else is the portal, which answers by host name (tenant subdomains).
    let portal = portal_router(runtime.portal.clone())
        .layer(axum::middleware::from_fn(metrics::record_http));
    app = app.fallback_service(portal);
    app.layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Provider webhooks (order settled, usage hints, profile installed): verified by the
/// adapter, acted on by core; a 5xx makes the provider deliver again.
async fn provider_webhook(
    State(lineup): State<Lineup>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let header = lineup.shared_provider().webhook_signature_header();
    let signature = headers.get(header).and_then(|v| v.to_str().ok());
    let accepted = lineup
        .accept_provider_webhook(signature, &body, time::OffsetDateTime::now_utc())
        .await;
    webhook_answer(accepted)
}

/// Webhooks of one tenant's own provider connection: verified with that connection's
/// secret, acting on that tenant's lines only.
async fn connection_webhook(
    State(lineup): State<Lineup>,
    axum::extract::Path(connection): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let Ok(connection) = connection.parse() else {
        return (StatusCode::NOT_FOUND, "no such provider connection".into());
    };
    let header = lineup.shared_provider().webhook_signature_header();
    let signature = headers.get(header).and_then(|v| v.to_str().ok());
    let accepted = lineup
        .accept_connection_webhook(
            connection,
            signature,
            &body,
            time::OffsetDateTime::now_utc(),
        )
        .await;
    webhook_answer(accepted)
}

fn webhook_answer(
    accepted: Result<lineup_core::lines::webhook::WebhookOutcome, lineup_core::CoreError>,
) -> (StatusCode, String) {
    match accepted {
        Ok(outcome) => (
            StatusCode::OK,
            format!("accepted {} events", outcome.events),
        ),
        Err(lineup_core::CoreError::Webhook(WebhookError::Malformed(reason))) => {
            (StatusCode::BAD_REQUEST, reason)
        }
        Err(lineup_core::CoreError::Webhook(refused)) => {
            (StatusCode::UNAUTHORIZED, refused.to_string())
        }
        Err(lineup_core::CoreError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "no such provider connection".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "handling a provider webhook failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again".into())
        }
    }
}

/// Serve until Ctrl-C / SIGTERM, then shut down within `grace`: accept no new connections,
/// let in-flight requests and the worker's current job finish (it claims no new one), and
/// at the deadline cut what is left, putting the jobs this worker held back on the queue for
/// another replica. With `metrics`, `/metrics` is served at its address (and only there).
pub async fn serve(
    runtime: Runtime,
    listen: SocketAddr,
    metrics: Option<(SocketAddr, PrometheusHandle)>,
    grace: Duration,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("LINEUP_LISTEN: cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let metrics_server = match metrics {
        Some((addr, handle)) => {
            let listener = metrics::bind(addr).await?;
            tracing::info!(address = %listener.local_addr()?, "serving /metrics");
            let app = metrics::router(handle, runtime.lineup.clone());
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        None => None,
    };
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let worker = Arc::new(Worker::new(
        runtime.lineup.clone(),
        runtime.flows.clone(),
        runtime.mailer.clone(),
    ));
    let mut worker_task = tokio::spawn(worker.clone().run(stopping.clone()));
    let shutdown_requested = shutdown_signal();
    on_ready(bound);
    // The peer address feeds the sign-in limits (per client address).
    let app = router(&runtime).into_make_service_with_connect_info::<SocketAddr>();
    let mut http_stopping = stopping.clone();
    let http = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stopping.wait_for(|stop| *stop).await;
    });
    let mut http_task = tokio::spawn(async move { http.await });
    let served_until_signal = tokio::select! {
        () = shutdown_requested => None,
        served = &mut http_task => Some(served),
    };
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + grace;
    let served = match served_until_signal {
        Some(served) => served,
        None => match tokio::time::timeout_at(deadline, &mut http_task).await {
            Ok(served) => served,
            Err(_) => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still in flight at the shutdown deadline are cut"
                );
                http_task.abort();
                Ok(Ok(()))
            }
        },
    };
    if tokio::time::timeout_at(deadline, &mut worker_task)
        .await
        .is_err()
    {
        worker_task.abort();
        let _ = worker_task.await;
    }
    let released = worker
        .release_held_jobs()
        .await
        .context("putting back the jobs this worker held")?;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    // A request cut at the deadline may never hand its connection back: do not wait for it.
    let _ = tokio::time::timeout(Duration::from_secs(1), runtime.lineup.store().close()).await;
    if let Some(sim) = runtime.simulator {
        sim.shutdown().await;
    }
    served.context("the HTTP server stopped")??;
    tracing::info!(released_jobs = released, "shut down cleanly");
    Ok(())
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not when it is first
/// awaited: a signal that comes right after "Lineup is running" must still stop the server
/// gracefully instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let listening = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match listening {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}

/// Decisions made in the portal reach chat: cards updated, requester told, approved requests
/// carried out and the eSIM delivered by chat (or, with no workspace, just carried out).
struct ChatDecisions(Arc<ChatFlows>);

#[async_trait::async_trait]
impl RequestEvents for ChatDecisions {
    async fn decided(
        &self,
        tenant: lineup_core::ids::TenantId,
        request: lineup_core::ids::RequestId,
    ) {
        self.0.after_outside_decision(tenant, request).await;
    }
}

/// Settings → Chat starts and ends connections through the bot's install flows.
struct ChatConnectors {
    public_url: String,
    slack: Option<SlackParts>,
    discord: Option<DiscordClient>,
    discord_install: Option<DiscordInstall>,
    teams_app_id: Option<String>,
}

#[async_trait::async_trait]
impl ChatConnections for ChatConnectors {
    fn configured(&self, platform: Platform) -> bool {
        match platform {
            Platform::Slack => self.slack.is_some(),
            Platform::Discord => self.discord.is_some(),
            Platform::Teams => self.teams_app_id.is_some(),
        }
    }

    fn connects(&self, platform: Platform) -> bool {
        match platform {
            Platform::Slack => self.slack.is_some(),
            Platform::Discord => self.discord_install.is_some(),
            Platform::Teams => self.teams_app_id.is_some(),
        }
    }

    fn teams_app_package(&self) -> Option<Vec<u8>> {
        let app_id = self.teams_app_id.as_deref()?;
        let host = url::Url::parse(&self.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))?;
        lineup_bot::teams::package::app_package(app_id, &host)
            .map_err(|e| tracing::error!(error = %e, "building the Teams app package failed"))
            .ok()
    }

    fn connect_url(&self, platform: Platform, tenant: TenantId, admin: UserId) -> Option<String> {
        let now = time::OffsetDateTime::now_utc();
        match platform {
            Platform::Slack => self.slack.as_ref().map(|slack| {
                let state = slack.install_state.issue_by(tenant, Some(admin), now);
                format!("{}/slack/install?state={state}", self.public_url)
            }),
            Platform::Discord => self.discord_install.as_ref().map(|d| {
                let state = d.install_state().issue_by(tenant, Some(admin), now);
                format!("{}/discord/install?state={state}", self.public_url)
            }),
            Platform::Teams => None,
        }
    }

    async fn revoke(&self, platform: Platform, workspace: &Workspace) {
        let outcome = match (platform, &self.slack, &self.discord) {
            (Platform::Slack, Some(slack), _) => slack
                .state
                .client()
                .revoke_token(&workspace.bot_token)
                .await
                .map_err(|e| e.to_string()),
            (Platform::Discord, _, Some(discord)) => discord
                .leave_guild(&workspace.workspace_id)
                .await
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::warn!(
                platform = platform.as_str(),
                workspace = workspace.workspace_id,
                error,
                "telling the platform about a disconnect failed; the token is wiped here anyway"
            );
        }
    }
}
