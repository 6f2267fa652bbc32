//! Health probes: what `/healthz` and `/readyz` answer, and `lineup healthcheck`, the
//! container's own probe client (the slim image has no curl).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use lineup_core::Lineup;
use lineup_core::provider::ConnectivityProvider;
use lineup_core::provider::circuit::{CircuitHealth, CircuitReport};

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
/// said without detail (the route is public). `/readyz?detail` adds one line per check and
/// the tenant connections' circuits (vendor kind and state, never a tenant or an id). An
/// open circuit does not make the replica unready: every replica sees the same provider, so
/// taking this one out of rotation would not help, and routing already goes around it.
pub async fn readyz(
    State(ready): State<Readiness>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    let database = matches!(
        tokio::time::timeout(DATABASE_TIMEOUT, ready.lineup.store().ping()).await,
        Ok(Ok(()))
    );
    let (status, summary) = if !database {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    } else {
        match ready.provider.check().await {
            Ok(()) => (StatusCode::OK, "ready"),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "provider unavailable"),
        }
    };
    let wants_detail = query.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("detail"))
    });
    if !wants_detail {
        return (status, summary.to_owned());
    }
    (
        status,
        detail(summary, database, &ready.lineup.provider_circuits()),
    )
}

/// The `/readyz?detail` body.
fn detail(summary: &str, database: bool, circuits: &[CircuitReport]) -> String {
    let mut out = format!(
        "{summary}\ndatabase: {}\n",
        if database { "ok" } else { "unavailable" }
    );
    for health in [
        CircuitHealth::Closed,
        CircuitHealth::HalfOpen,
        CircuitHealth::Open,
    ] {
        let mut vendors: Vec<&str> = circuits
            .iter()
            .filter(|c| c.health == health)
            .map(|c| c.vendor.as_str())
            .collect();
        vendors.sort_unstable();
        let _ = writeln!(
            out,
            "provider circuits {}: {}{}",
            health.as_str(),
            vendors.len(),
            if vendors.is_empty() || health == CircuitHealth::Closed {
                String::new()
            } else {
                format!(" ({})", vendors.join(", "))
            }
        );
    }
    out
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

    #[test]
    fn the_detail_counts_circuits_by_state_and_names_the_vendors_of_unhealthy_ones() {
        let report = |vendor: &str, health| CircuitReport {
            connection: lineup_core::ids::ProviderConnectionId::new(),
            vendor: vendor.into(),
            health,
        };
        let circuits = [
            report("1global", CircuitHealth::Open),
            report("1global", CircuitHealth::Closed),
            report("gigs", CircuitHealth::Closed),
        ];
        assert_eq!(
            detail("ready", true, &circuits),
            "ready\ndatabase: ok\nprovider circuits closed: 2\n\
             provider circuits half_open: 0\nprovider circuits open: 1 (1global)\n"
        );
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
