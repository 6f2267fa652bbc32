//! What single sign-on may reach: identity providers over https on public addresses, and
//! nothing else. A tenant's owner types the issuer, and anyone can sign up and become an
//! owner, so without these checks the server's discovery, token and key requests would let
//! anyone probe hosts only the server can see (cloud metadata, the database, admin ports).
//!
//! Names are checked where they are resolved (a `reqwest` resolver), so the address that is
//! checked is the address that is connected to: a name that changes its answer between a
//! check and the request (DNS rebinding) gains nothing.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents, key sets and token answers are a few kilobytes.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Which hosts single sign-on may talk to. The default, public https hosts only, is what
/// `lineup serve` runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SsoNetworkPolicy {
    /// Also allow plain http to, and connections to, this machine's loopback addresses
    /// (a provider started by a test or next to `lineup demo`). Private, link-local and
    /// other non-public addresses stay refused.
    pub allow_loopback_http: bool,
}

impl SsoNetworkPolicy {
    /// For tests and the local demo: a provider on 127.0.0.1 over http is fine.
    pub const LOCAL_TESTING: Self = Self {
        allow_loopback_http: true,
    };

    pub fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback_http && ip.to_canonical().is_loopback())
    }

    /// Refuse a URL this policy forbids before any request is made: a scheme other than
    /// https, credentials in it, or a host written as a non-public IP address. (Names are
    /// checked when they are resolved.)
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        let loopback = match url.host() {
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(format!("{url} names no host")),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback_http && loopback => {}
            _ => return Err("must be an https:// URL".to_owned()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".to_owned());
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        match literal {
            Some(ip) if !self.allows(ip) => Err(not_public(&ip.to_string(), ip)),
            _ => Ok(()),
        }
    }

    /// An HTTP client that resolves names with this policy, follows no redirects and uses
    /// no proxy (a proxy would resolve the name itself, unchecked).
    pub(crate) fn client(self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver { policy: self }))
            .build()
            .expect("an HTTP client with rustls builds")
    }
}

fn not_public(host: &str, ip: IpAddr) -> String {
    let shown = if host == ip.to_string() {
        host.to_owned()
    } else {
        format!("{host} resolves to {ip}, which")
    };
    format!(
        "{shown} is not a public address; single sign-on only reaches identity providers \
         on the internet"
    )
}

/// A name that resolved to an address the policy forbids.
#[derive(Debug)]
struct RefusedAddress {
    host: String,
    ip: IpAddr,
}

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&not_public(&self.host, self.ip))
    }
}

impl StdError for RefusedAddress {}

struct CheckedResolver {
    policy: SsoNetworkPolicy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // One forbidden answer refuses the name: which address gets used is not ours to pick.
            if let Some(refused) = found.iter().find(|a| !policy.allows(a.ip())) {
                let ip = refused.ip();
                return Err(Box::new(RefusedAddress { host, ip }) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// What to tell an admin about a request that failed: a refused address as it is, anything
/// else only as "did not answer as expected", so nobody learns from our answers what
/// listens where. The detail goes to the server's log.
pub(crate) fn failure(step: &str, error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return refused.to_string();
        }
        source = e.source();
    }
    tracing::warn!(step, %error, "identity provider request failed");
    did_not_answer(step)
}

pub(crate) fn did_not_answer(step: &str) -> String {
    format!("the identity provider did not answer as expected ({step})")
}

/// Why a request to an identity provider failed, already worded for an admin (see
/// [`failure`]).
#[derive(Debug)]
pub(crate) struct Unanswered(pub(crate) String);

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Unanswered {}

/// A client made by [`SsoNetworkPolicy::client`] as openidconnect's HTTP client for one step of
/// a sign-in: it reads at most [`MAX_ANSWER_BYTES`] of an answer.
pub(crate) struct GuardedHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) step: &'static str,
}

impl<'c> AsyncHttpClient<'c> for GuardedHttp {
    type Error = Unanswered;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Unanswered>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let step = self.step;
        Box::pin(async move {
            let failed = |e: reqwest::Error| Unanswered(failure(step, &e));
            let request = reqwest::Request::try_from(request).map_err(failed)?;
            let mut answer = self.client.execute(request).await.map_err(failed)?;
            let mut body = Vec::new();
            while let Some(chunk) = answer.chunk().await.map_err(failed)? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    tracing::warn!(step, "identity provider answer too large");
                    return Err(Unanswered(did_not_answer(step)));
                }
                body.extend_from_slice(&chunk);
            }
            let mut response = HttpResponse::new(body);
            *response.status_mut() = answer.status();
            *response.headers_mut() = answer.headers().clone();
            Ok(response)
        })
    }
}

/// Addresses on the public internet: not this machine, not a private or carrier-grade NAT
/// network, not link-local, not multicast, broadcast, documentation or reserved ranges, in
/// any IPv6 form that embeds one of those.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", including 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    match segments {
        // ::, ::1 and the long-deprecated IPv4-compatible ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => false,
        // NAT64 (64:ff9b::/96) reaches the IPv4 address inside
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        // 6to4 (2002::/16) embeds an IPv4 address in the next 32 bits
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        // Teredo hides its IPv4 address; documentation 2001:db8::/32
        [0x2001, 0, ..] | [0x2001, 0xdb8, ..] => false,
        [first, ..] => {
            !(first & 0xfe00 == 0xfc00 // unique local fc00::/7
                || first & 0xffc0 == 0xfe80 // link-local fe80::/10
                || first & 0xffc0 == 0xfec0 // old site-local fec0::/10
                || first & 0xff00 == 0xff00 // multicast
                || segments[..4] == [0x100, 0, 0, 0]) // discard-only 100::/64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_allowed_in_production() {
        let production = SsoNetworkPolicy::default();
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "100.128.0.1",
        ] {
            assert!(production.allows(ip(public)), "{public}");
        }
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.5",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:0a00:0005::1",
        ] {
            assert!(!production.allows(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn the_test_allowance_adds_loopback_and_nothing_else() {
        let local = SsoNetworkPolicy::LOCAL_TESTING;
        for allowed in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "8.8.8.8"] {
            assert!(local.allows(ip(allowed)), "{allowed}");
        }
        for refused in [
            "10.0.0.5",
            "169.254.169.254",
            "192.168.0.1",
            "fd00::1",
            "0.0.0.0",
        ] {
            assert!(!local.allows(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn urls_are_refused_before_any_request() {
        let production = SsoNetworkPolicy::default();
        let check = |policy: SsoNetworkPolicy, url: &str| policy.check_url(&url.parse().unwrap());
        assert!(check(production, "https://login.example.com/tenant/v2.0").is_ok());
        for refused in [
            "http://login.example.com",
            "http://127.0.0.1:8080",
            "https://127.0.0.1",
            "https://10.0.0.5",
            "https://[::1]",
            "https://[::ffff:a9fe:a9fe]",
            "https://2130706433/", // 127.0.0.1 as one number
            "https://0x7f.1/",
            "https://user:pass@login.example.com",
            "ftp://login.example.com",
        ] {
            assert!(check(production, refused).is_err(), "{refused}");
        }
        let local = SsoNetworkPolicy::LOCAL_TESTING;
        assert!(check(local, "http://127.0.0.1:8080").is_ok());
        assert!(check(local, "http://localhost:8080").is_ok());
        assert!(check(local, "http://login.example.com").is_err());
        assert!(check(local, "https://10.0.0.5").is_err());
    }

    #[tokio::test]
    async fn names_are_checked_where_they_are_resolved() {
        let production = SsoNetworkPolicy::default();
        let error = production
            .client()
            .get("https://localhost:9/")
            .send()
            .await
            .unwrap_err();
        let said = failure("discovery", &error);
        assert!(
            said.contains("localhost resolves to") && said.contains("is not a public address"),
            "{said}"
        );
    }
}
