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
use lineup_core::provider::connection::ProviderConnector;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::secret::SecretBox;
use lineup_core::store::Store;
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, DiscordSettings, ProviderSettings, SlackSettings, TeamsSettings};
use crate::metrics;
use crate::probes::{self, ProviderProbe, Readiness};
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
    let lineup = Lineup::new(store, provider, PollPolicy::default())
        .with_provider_connector(ProviderConnector::new(&settings.base_url))
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
        let outbound = TeamsOutbound::new(&config);
        transports.push(Arc::new(outbound.transport()));
        (config, outbound)
    });
    let flows = ChatFlows::new(lineup.clone(), transports);
    let teams = teams_outbound.map(|(config, outbound)| {
        TeamsState::with_outbound(config, flows.clone(), Arc::new(lineup.clone()), outbound)
            .with_tenant_links(Arc::new(lineup.clone()))
    });
    let discord = match discord_client {
        Some(client) => Some(
            DiscordState::with_client(client, flows.clone())
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
        let state = SlackState::with_client(slack_config, flows.clone(), app, client);
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
        .route("/provider/webhooks", post(provider_webhook))
        .route("/provider/webhooks/{connection}", post(connection_webhook))
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

/// Serve until Ctrl-C / SIGTERM, then finish in-flight requests and close the database.
/// With `metrics`, `/metrics` is served at its address (and only there).
pub async fn serve(
    runtime: Runtime,
    listen: SocketAddr,
    metrics: Option<(SocketAddr, PrometheusHandle)>,
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
    let worker = tokio::spawn(run_worker(
        runtime.lineup.clone(),
        runtime.flows.clone(),
        runtime.mailer.clone(),
    ));
    on_ready(bound);
    // The peer address feeds the sign-in limits (per client address).
    let app = router(&runtime).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    worker.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    runtime.lineup.store().close().await;
    if let Some(sim) = runtime.simulator {
        sim.shutdown().await;
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Background work every 30 s: finish provider operations left in flight (after a restart,
/// or a provider slower than a request could wait); remind, escalate and expire pending
/// approvals (delivered in chat); switch roaming grants on and off; run the durable jobs
/// (each tenant's usage sync on its cron); post new budget and anomaly alerts to finance;
/// tell employees by direct message what guardrails did to their lines; deliver queued email
/// (retrying failed sends); free custom domains left unverified and delete expired sessions.
async fn run_worker(lineup: Lineup, flows: Arc<ChatFlows>, mailer: Arc<dyn Mailer>) {
    let worker = format!(
        "lineup-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut problems = Problems::default();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        match lineup.resume_in_flight().await {
            Ok(n) => {
                problems.cleared("resuming in-flight provider operations");
                if n > 0 {
                    tracing::info!(operations = n, "resumed in-flight provider operations");
                }
            }
            Err(e) => problems.failed("resuming in-flight provider operations", &e),
        }
        let outcome = flows.run_sweeps(time::OffsetDateTime::now_utc()).await;
        problems.step("the approval and roaming sweep", outcome);
        let outcome = run_due_jobs(&lineup, &worker).await;
        problems.step("running scheduled jobs", outcome);
        match deliver_alerts(&lineup, &flows, &mut problems).await {
            Ok(n) => {
                problems.cleared("delivering alerts");
                if n > 0 {
                    tracing::info!(alerts = n, "posted alerts to finance");
                }
            }
            Err(e) => problems.failed("delivering alerts", &e),
        }
        let now = time::OffsetDateTime::now_utc();
        match lineup.deliver_employee_notices(flows.as_ref(), now).await {
            Ok(n) => {
                problems.cleared("sending notices to employees");
                if n > 0 {
                    tracing::info!(notices = n, "told employees about their lines");
                }
            }
            Err(e) => problems.failed("sending notices to employees", &e),
        }
        let outcome = lineup.deliver_due_emails(mailer.as_ref(), now).await;
        problems.step("delivering queued email", outcome);
        match lineup.prune_stale_domain_claims(now).await {
            Ok(n) => {
                problems.cleared("freeing unverified custom domains");
                if n > 0 {
                    tracing::info!(domains = n, "freed custom domains left unverified");
                }
            }
            Err(e) => problems.failed("freeing unverified custom domains", &e),
        }
        let outcome = lineup.delete_expired_sessions(now).await;
        problems.step("deleting expired portal sessions", outcome);
    }
}

/// What the worker has warned about and not yet seen resolved. A condition that lasts (the
/// database down, a tenant with no finance channel) is logged when it starts, when its
/// reason changes and when it ends: not again on every 30 s tick, nor once per alert.
#[derive(Default)]
struct Problems {
    reasons: std::collections::HashMap<String, String>,
}

impl Problems {
    /// Logs `what` failing for `reason` unless that is already known.
    fn failed(&mut self, what: &str, reason: &dyn std::fmt::Display) {
        let reason = reason.to_string();
        if self.reasons.get(what) != Some(&reason) {
            tracing::warn!(error = %reason, "{what} failed");
            self.reasons.insert(what.to_owned(), reason);
        }
    }

    /// Logs that `what` works again, if it had failed.
    fn cleared(&mut self, what: &str) {
        if self.reasons.remove(what).is_some() {
            tracing::info!("{what} works again");
        }
    }

    fn step<T, E: std::fmt::Display>(&mut self, what: &str, outcome: Result<T, E>) {
        match outcome {
            Ok(_) => self.cleared(what),
            Err(e) => self.failed(what, &e),
        }
    }
}

/// Post alerts not yet delivered to each tenant's finance channel, on the first chat platform
/// the tenant has installed that takes it. Undelivered alerts stay in the outbox and are
/// tried again on the next tick; why a tenant's alerts cannot be posted is logged once.
async fn deliver_alerts(
    lineup: &Lineup,
    flows: &ChatFlows,
    problems: &mut Problems,
) -> Result<usize, lineup_core::CoreError> {
    let mut delivered = 0;
    for delivery in lineup.alerts_to_deliver(50).await? {
        let tenant = delivery.alert.tenant_id;
        for platform in Platform::ALL {
            let Some(workspace) = lineup.workspace_of_tenant(tenant, platform).await? else {
                continue;
            };
            let condition = format!(
                "posting alerts of tenant {tenant} to finance on {}",
                platform.as_str()
            );
            match flows
                .post_finance_alert(&workspace, platform, &delivery.finance)
                .await
            {
                Ok(_) => {
                    problems.cleared(&condition);
                    lineup
                        .mark_alert_delivered(tenant, delivery.alert.id)
                        .await?;
                    delivered += 1;
                    break;
                }
                Err(reason) => problems.failed(&condition, &reason),
            }
        }
    }
    Ok(delivered)
}

/// Queue the tenants' cron ticks and daily plan syncs (once each, whatever the number of
/// replicas), then work through what is due.
async fn run_due_jobs(lineup: &Lineup, worker: &str) -> Result<(), lineup_core::CoreError> {
    let now = time::OffsetDateTime::now_utc();
    lineup.schedule_due_jobs(now).await?;
    lineup.schedule_plan_syncs(now).await?;
    lineup.schedule_reconciliations(now).await?;
    while lineup.run_next_job(worker, now).await? {}
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Log lines written by the code under test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn count(&self, needle: &str) -> usize {
            let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            text.lines().filter(|line| line.contains(needle)).count()
        }
    }

    /// The demo tenant has dozens of undelivered alerts and a Slack workspace but no finance
    /// channel: two ticks of alert delivery say so once, not once per alert per tick.
    #[tokio::test]
    async fn a_missing_finance_channel_is_logged_once_not_per_alert_and_tick() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap().to_owned();
        let config = Config::from_lookup(|key| {
            match key {
                "LINEUP_DATA_DIR" => Some(dir.as_str()),
                "SLACK_SIGNING_SECRET" => Some("signing-secret"),
                "SLACK_CLIENT_ID" => Some("1.2"),
                "SLACK_CLIENT_SECRET" => Some("client-secret"),
                // Never reached: the missing channel is noticed before anything is sent.
                "SLACK_API_BASE_URL" => Some("http://127.0.0.1:9/api/"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();
        let runtime = start(&config).await.unwrap();
        let simulator = runtime.simulator.as_ref().map(|sim| sim.base_url());
        let tenant = crate::demo::ensure_seeded(&runtime.lineup, simulator.as_deref())
            .await
            .unwrap();
        runtime
            .lineup
            .install_workspace(
                tenant,
                &lineup_core::audit::Actor::System,
                Platform::Slack,
                "T0FINANCE",
                None,
                "",
            )
            .await
            .unwrap();
        let pending = runtime.lineup.alerts_to_deliver(50).await.unwrap().len();
        assert!(pending > 10, "the demo leaves alerts to deliver: {pending}");

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut problems = Problems::default();
        for _tick in 0..2 {
            let delivered = deliver_alerts(&runtime.lineup, &runtime.flows, &mut problems)
                .await
                .unwrap();
            assert_eq!(delivered, 0);
        }
        assert_eq!(captured.count("no finance channel"), 1);
    }

    #[test]
    fn a_problem_is_logged_when_it_starts_changes_and_ends() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut problems = Problems::default();
            problems.failed("syncing", &"database down");
            problems.failed("syncing", &"database down");
            problems.failed("syncing", &"disk full");
            problems.cleared("syncing");
            problems.cleared("syncing");
        });
        assert_eq!(captured.count("syncing failed"), 2);
        assert_eq!(captured.count("syncing works again"), 1);
    }
}
