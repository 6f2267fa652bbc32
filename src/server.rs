//! Composes core, bot and portal into one server: storage, provider, HTTP routes, worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lineup_core::Lineup;
use lineup_core::provider::PollPolicy;
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
use lineup_core::store::Store;
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, ProviderSettings};

/// Everything a running server holds; dropping it stops the in-process simulator.
pub struct Runtime {
    pub lineup: Lineup,
    pub simulator: Option<RunningSimulator>,
}

/// Open storage, migrate, and connect the provider (starting the simulator when none is
/// configured). Fails with one line naming the setting at fault.
pub async fn start(config: &Config) -> anyhow::Result<Runtime> {
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
            let sim = start_simulator(&config.data_dir).await?;
            let settings = ProviderSettings {
                base_url: sim.base_url(),
                client_id: Credentials::default().client_id,
                client_secret: Credentials::default().client_secret,
                account_id: sim.account_id(),
                webhook_secret: None,
            };
            tracing::info!(url = %sim.base_url(), "no PROVIDER_BASE_URL set: using the built-in provider simulator");
            (settings, Some(sim))
        }
    };
    let provider = connect_provider(&settings).await?;
    let lineup = Lineup::new(store, provider, PollPolicy::default());
    Ok(Runtime { lineup, simulator })
}

/// The simulator keeps its world in the data directory, so a restart finds the
/// subscriptions our database refers to.
async fn start_simulator(data_dir: &std::path::Path) -> anyhow::Result<RunningSimulator> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let state_file = data_dir.join("simulator.json");
    lineup_simulator::spawn_persistent(
        addr,
        SimConfig::default(),
        Credentials::default(),
        state_file,
    )
    .await
    .context("LINEUP_DATA_DIR: could not start the built-in provider simulator")
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
pub fn router(lineup: Lineup) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(lineup)
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn readyz(State(lineup): State<Lineup>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(Duration::from_secs(2), lineup.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Serve until Ctrl-C / SIGTERM, then finish in-flight requests and close the database.
pub async fn serve(
    runtime: Runtime,
    listen: SocketAddr,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("LINEUP_LISTEN: cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let worker = tokio::spawn(run_worker(runtime.lineup.clone()));
    on_ready(bound);
    axum::serve(listener, router(runtime.lineup.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    worker.abort();
    runtime.lineup.store().close().await;
    if let Some(sim) = runtime.simulator {
        sim.shutdown().await;
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Background work: finish provider operations left in flight (after a restart, or a
/// provider that took longer than a request could wait), every 30 s.
async fn run_worker(lineup: Lineup) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        match lineup.resume_in_flight().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(operations = n, "resumed in-flight provider operations"),
            Err(e) => tracing::warn!(error = %e, "resuming in-flight provider operations failed"),
        }
    }
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
