//! Health probes: what `/healthz` and `/readyz` answer, and `lineup healthcheck`, the
//! container's own probe client (the slim image has no curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use lineup_core::Lineup;
use lineup_core::provider::ConnectivityProvider;

/// How long one provider check stands for: probes every few seconds from every kubelet must
/// not become provider traffic.
pub const PROVIDER_CHECK_TTL: Duration = Duration::from_secs(30);
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(3);
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the provider answers (token and account), asked at most once per `ttl`; concurrent
/// probes wait for the one check under way.
pub struct ProviderProbe {
    provider: Arc<dyn ConnectivityProvider>,
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl ProviderProbe {
    pub fn new(provider: Arc<dyn ConnectivityProvider>, ttl: Duration) -> Self {
        Self {
            provider,
            ttl,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < self.ttl
        {
            return outcome.clone();
        }
        let outcome =
            match tokio::time::timeout(PROVIDER_TIMEOUT, self.provider.check_account()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", PROVIDER_TIMEOUT.as_secs())),
            };
        // Logged when the answer changes, not at every probe.
        let was_ok = last.as_ref().is_none_or(|(_, before)| before.is_ok());
        match (&outcome, was_ok) {
            (Err(error), true) => tracing::warn!(%error, "readiness: the provider is unreachable"),
            (Ok(()), false) => tracing::info!("readiness: the provider answers again"),
            _ => {}
        }
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }
}

/// What `/readyz` needs: the database and the provider.
#[derive(Clone)]
pub struct Readiness {
    pub lineup: Lineup,
    pub provider: Arc<ProviderProbe>,
}

/// Ready when the database answers a query and the provider answers (cached); the reason is
/// said without detail (the route is public).
pub async fn readyz(State(ready): State<Readiness>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(DATABASE_TIMEOUT, ready.lineup.store().ping()).await {
        Ok(Ok(())) => {}
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
    match ready.provider.check().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "provider unavailable"),
    }
}

/// The address a probe on this machine reaches a server listening on `listen` at: the
/// loopback of the same family when it listens on every interface.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `lineup healthcheck`: GET /healthz of the server on LINEUP_LISTEN; fails unless it
/// answers 200 within 5 s.
pub async fn healthcheck(listen: SocketAddr) -> anyhow::Result<()> {
    let url = format!("http://{}/healthz", local_address(listen));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("LINEUP_LISTEN: {url} did not answer: {e}"))?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "LINEUP_LISTEN: {url} answered {status}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider};
    use lineup_simulator::{Credentials, SimConfig};

    #[test]
    fn probes_reach_a_wildcard_listener_on_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(local_address(at("0.0.0.0:8080")), at("127.0.0.1:8080"));
        assert_eq!(local_address(at("[::]:8080")), at("[::1]:8080"));
        assert_eq!(local_address(at("10.0.0.5:80")), at("10.0.0.5:80"));
    }

    #[tokio::test]
    async fn the_provider_check_is_cached_and_notices_an_outage_once_it_expires() {
        let sim = lineup_simulator::spawn(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig::default(),
            Credentials::default(),
        )
        .await
        .unwrap();
        let credentials = Credentials::default();
        let provider = OneGlobalProvider::new(OneGlobalConfig::new(
            sim.base_url(),
            &credentials.client_id,
            &credentials.client_secret,
            sim.account_id(),
        ))
        .unwrap();
        let ttl = Duration::from_millis(500);
        let probe = ProviderProbe::new(Arc::new(provider), ttl);
        assert_eq!(probe.check().await, Ok(()));
        sim.shutdown().await;
        // Within the TTL the last answer stands: nothing is sent to the provider.
        assert_eq!(probe.check().await, Ok(()));
        tokio::time::sleep(ttl).await;
        let outage = probe.check().await;
        assert!(outage.is_err(), "{outage:?}");
    }
}
