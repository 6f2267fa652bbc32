//! A local imitation of eSIM vendor APIs — 1GLOBAL Enterprise at the root, Gigs under
//! `/gigs`, Airalo under `/airalo` — with one `/_sim` control plane for fault injection, a
//! simulated clock and webhook delivery.

mod accounts;
mod airalo;
mod auth;
mod catalog;
mod clock;
mod config;
mod connect;
mod control;
mod error;
mod faults;
mod fixtures;
mod gigs;
mod hal;
mod idempotency;
mod ids;
mod lifecycle;
mod model;
mod orders;
mod persist;
mod pipeline;
mod qr;
mod ratelimit;
mod requestlog;
mod routes;
mod server;
mod settlement;
mod state;
mod subscriptions;
mod usage;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::middleware::from_fn_with_state;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use accounts::{AccountCredentials, AddAccountError};
pub use airalo::{AIRALO_CLIENT_ID, AIRALO_CLIENT_SECRET, airalo_signature};
pub use auth::TOKEN_PATH;
pub use config::{
    AuthMode, AutoInstall, CapPolicy, Credentials, MillisRange, SimConfig, SuspendSemantics,
    TRIAL_ACCOUNT_ID, TRIAL_CLIENT_ID, TRIAL_CLIENT_SECRET, WebhookConfig,
};
pub use gigs::{GIGS_API_KEY, GIGS_PROJECT};
pub use ids::{is_valid_eid, is_valid_luhn};
pub use persist::FORMAT_VERSION as STATE_FILE_FORMAT_VERSION;
pub use routes::Personality;
pub use webhooks::signature_header;

use persist::Persistence;
use state::{Sim, State};

/// A simulator serving in the background. Dropping it stops the server.
pub struct RunningSimulator {
    addr: SocketAddr,
    base_url: String,
    account_id: String,
    sim: Sim,
    tasks: Vec<JoinHandle<()>>,
    /// Set by `spawn_persistent`: the final save on shutdown or drop.
    persistence: Option<Persistence>,
}

impl RunningSimulator {
    /// For example `http://127.0.0.1:8787`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Where `personality`'s API is served, e.g. `http://127.0.0.1:8787/gigs`.
    pub fn personality_url(&self, personality: Personality) -> String {
        format!("{}{}", self.base_url, personality.prefix())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The default fixture account (stable across `/_sim/reset` for the same seed).
    pub fn account_id(&self) -> String {
        self.account_id.clone()
    }

    /// Opens another provider account with the fixture account's catalogue and a client bound
    /// to it; a missing client id or secret is generated. A taken client id is refused.
    pub fn add_account(
        &self,
        name: &str,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<AccountCredentials, AddAccountError> {
        self.sim.add_account(name, client_id, client_secret)
    }

    /// The ready-made trial account (seeded at start-up) and its client.
    pub fn trial_account(&self) -> AccountCredentials {
        AccountCredentials {
            account_id: TRIAL_ACCOUNT_ID.into(),
            client_id: TRIAL_CLIENT_ID.into(),
            client_secret: TRIAL_CLIENT_SECRET.into(),
        }
    }

    /// Stops serving; a persistent simulator then writes its state file one last time.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Some(persistence) = self.persistence.take() {
            let saved = tokio::task::spawn_blocking(move || persistence.save_now()).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "could not save the simulator state"),
                Err(error) => tracing::warn!(%error, "could not save the simulator state"),
            }
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Best effort: `shutdown` is the way to be sure the last changes are on disk.
        if let Some(persistence) = self.persistence.take()
            && let Err(error) = persistence.save_now()
        {
            tracing::warn!(%error, "could not save the simulator state");
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves every personality in background tasks.
pub async fn spawn(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
) -> std::io::Result<RunningSimulator> {
    spawn_serving(addr, config, credentials, &Personality::ALL).await
}

/// Like [`spawn`], serving only `personalities` (each at its own path prefix).
pub async fn spawn_serving(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
    personalities: &[Personality],
) -> std::io::Result<RunningSimulator> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = base_url_for(addr);
    let sim = Sim::new(config, credentials, base_url.clone());
    let account_id = sim.lock().fixture_account_id.clone();
    let app = routes::app(sim.clone(), personalities);
    let tasks = vec![
        tokio::spawn(server::serve(listener, app)),
        tokio::spawn(webhooks::run_delivery_worker(sim.clone())),
    ];
    Ok(RunningSimulator {
        addr,
        base_url,
        account_id,
        sim,
        tasks,
        persistence: None,
    })
}

/// Like [`spawn`], but the simulated world lives on in `state_file` across restarts.
///
/// When `state_file` exists, the world (accounts and their clients, subscribers, templates,
/// offerings, orders, subscriptions, SIM profiles, products, usage, webhook registrations,
/// idempotency records, id sequence, clock offset and config) is loaded from it and `config` is ignored; otherwise
/// the world starts from the fixtures of `config` and the file is created right away.
/// A file that cannot be read, is corrupt, or has another format version is an error naming
/// the file. Changes are written atomically (`<state_file>.tmp`, then a rename) at most every
/// 200 ms, and on [`RunningSimulator::shutdown`] (best effort also on drop). Tokens, the
/// request log, rate-limit buckets, targeted faults and webhook deliveries are not kept;
/// orders still pending settle after a restart once their stored due time has passed.
pub async fn spawn_persistent(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
    state_file: PathBuf,
) -> std::io::Result<RunningSimulator> {
    let state = match persist::load(&state_file)? {
        Some(state) => state,
        None => State::new(config),
    };
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = base_url_for(addr);
    let sim = Sim::with_state(state, credentials, base_url.clone());
    let account_id = sim.lock().fixture_account_id.clone();
    let persistence = Persistence::new(sim.clone(), state_file);
    persistence.save_now()?;
    let app = routes::app(sim.clone(), &Personality::ALL)
        .layer(from_fn_with_state(sim.clone(), persist::track_changes));
    let tasks = vec![
        tokio::spawn(server::serve(listener, app)),
        tokio::spawn(webhooks::run_delivery_worker(sim.clone())),
        tokio::spawn(persist::run_saver(persistence.clone())),
    ];
    Ok(RunningSimulator {
        addr,
        base_url,
        account_id,
        sim,
        tasks,
        persistence: Some(persistence),
    })
}

/// Serves `personalities` until ctrl-c.
pub async fn run(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
    personalities: &[Personality],
) -> std::io::Result<()> {
    let simulator = spawn_serving(addr, config, credentials, personalities).await?;
    tracing::info!(
        base_url = %simulator.base_url(),
        account_id = %simulator.account_id(),
        token_url = %format!("{}{}", simulator.base_url(), TOKEN_PATH),
        "eSIM simulator listening"
    );
    tokio::signal::ctrl_c().await?;
    simulator.shutdown().await;
    Ok(())
}

fn base_url_for(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}", addr.port())
}
