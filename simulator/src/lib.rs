//! A local imitation of the 1GLOBAL Enterprise eSIM API with a `/_sim` control plane
//! for fault injection, a simulated clock and webhook delivery.

mod auth;
mod catalog;
mod clock;
mod config;
mod connect;
mod control;
mod error;
mod faults;
mod fixtures;
mod hal;
mod idempotency;
mod ids;
mod lifecycle;
mod model;
mod orders;
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

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use auth::TOKEN_PATH;
pub use config::{
    AuthMode, AutoInstall, CapPolicy, Credentials, MillisRange, SimConfig, SuspendSemantics,
    WebhookConfig,
};
pub use ids::{is_valid_eid, is_valid_luhn};
pub use webhooks::signature_header;

use state::Sim;

/// A simulator serving in the background. Dropping it stops the server.
pub struct RunningSimulator {
    addr: SocketAddr,
    base_url: String,
    account_id: String,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSimulator {
    /// For example `http://127.0.0.1:8787`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The default fixture account (stable across `/_sim/reset` for the same seed).
    pub fn account_id(&self) -> String {
        self.account_id.clone()
    }

    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves in background tasks.
pub async fn spawn(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
) -> std::io::Result<RunningSimulator> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let base_url = base_url_for(addr);
    let sim = Sim::new(config, credentials, base_url.clone());
    let account_id = sim.lock().fixture_account_id.clone();
    let app = routes::app(sim.clone());
    let tasks = vec![
        tokio::spawn(server::serve(listener, app)),
        tokio::spawn(webhooks::run_delivery_worker(sim)),
    ];
    Ok(RunningSimulator {
        addr,
        base_url,
        account_id,
        tasks,
    })
}

/// Serves until ctrl-c.
pub async fn run(
    addr: SocketAddr,
    config: SimConfig,
    credentials: Credentials,
) -> std::io::Result<()> {
    let simulator = spawn(addr, config, credentials).await?;
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
