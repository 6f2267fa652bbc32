//! Custom domains: the DNS challenge shown, verification (forced through a fake resolver),
//! a verified domain serving the tenant's portal over HTTP, unverified and removed ones 404,
//! one domain per tenant, and claims left unverified for a week freed for others.

use std::sync::Arc;

use crate::helpers::ACME;
use lineup_testkit::portal::{Browser, FakeDns, PASSWORD, PortalWorld};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

const CUSTOM: &str = "lines.acme-corp.example";

/// A portal whose DNS the test controls, and acme's admin signed in on it.
async fn with_dns(w: &PortalWorld) -> (Arc<FakeDns>, std::net::SocketAddr, Browser) {
    let dns = Arc::new(FakeDns::default());
    let resolver = dns.clone();
    let addr = w.serve_another(|p| p.with_txt_resolver(resolver)).await;
    let admin = Browser::new(ACME, addr);
    admin.sign_in("admin@example.com", PASSWORD).await;
    admin.get("/settings/domains").await.assert_ok();
    (dns, addr, admin)
}

both_backends!(
    a_verified_domain_serves_the_tenants_portal,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (dns, addr, admin) = with_dns(&w).await;
        let answer = admin
            .post(
                "/settings/domains",
                &[("domain", "Lines.Acme-Corp.example.")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let page = admin.get("/settings/domains").await;
        page.assert_contains("lines.acme-corp.example added")
            .assert_contains("_lineup-challenge.lines.acme-corp.example")
            .assert_contains("waiting for DNS");
        let domain = w.lineup.custom_domains(w.tenant).await.unwrap().remove(0);
        assert!(domain.record_value.starts_with("lineup-verify="));

        // Not verified yet: the domain is unknown to the portal.
        let visitor = Browser::new(CUSTOM, addr);
        assert_eq!(visitor.get("/login").await.status, StatusCode::NOT_FOUND);

        // Verifying before the record exists explains what DNS shows.
        let verify = format!("/settings/domains/{CUSTOM}/verify");
        dns.set_txt(&domain.record_name, "lineup-verify=somebody-elses-token");
        let answer = admin.post(&verify, &[]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer
            .assert_contains(&domain.record_value)
            .assert_contains("somebody-elses-token");

        dns.set_txt(&domain.record_name, &domain.record_value);
        let answer = admin.post(&verify, &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        admin
            .get("/settings/domains")
            .await
            .assert_contains("is verified");

        // Over HTTP on the custom host: acme's portal, and acme's users sign in there.
        visitor
            .get("/login")
            .await
            .assert_ok()
            .assert_contains("Sign in to acme");
        visitor.sign_in(w.olivia.email.as_str(), PASSWORD).await;
        visitor.get("/").await.assert_ok().assert_contains("acme");

        let actions = w.audit_in(w.tenant, "domain", CUSTOM).await;
        assert_eq!(actions, vec!["domain.added", "domain.verified"]);

        // Removed: 404 again.
        let answer = admin
            .post(&format!("/settings/domains/{CUSTOM}/remove"), &[])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(
            Browser::new(CUSTOM, addr).get("/login").await.status,
            StatusCode::NOT_FOUND
        );
        assert!(
            w.audit_in(w.tenant, "domain", CUSTOM)
                .await
                .contains(&"domain.removed".to_owned())
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_belongs_to_one_tenant_only() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let (_dns, addr, admin) = with_dns(&w).await;
    admin.post("/settings/domains", &[("domain", CUSTOM)]).await;
    let globex = Browser::new("globex.lineup.test", addr);
    globex.sign_in("owner@globex.example", PASSWORD).await;
    globex.get("/settings/domains").await.assert_ok();
    let answer = globex
        .post("/settings/domains", &[("domain", CUSTOM)])
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    answer.assert_contains("already claimed by another organisation");
    assert!(w.lineup.custom_domains(w.globex).await.unwrap().is_empty());
    // Globex can neither verify nor remove acme's domain, nor see it.
    for action in ["verify", "remove"] {
        let answer = globex
            .post(&format!("/settings/domains/{CUSTOM}/{action}"), &[])
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{action}");
    }
    let page = globex.get("/settings/domains").await;
    assert!(!page.body.contains(CUSTOM));
    assert_eq!(w.lineup.custom_domains(w.tenant).await.unwrap().len(), 1);
}

both_backends!(
    a_claim_left_unverified_for_a_week_no_longer_blocks_another_tenant,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (_dns, addr, admin) = with_dns(&w).await;
        admin.post("/settings/domains", &[("domain", CUSTOM)]).await;
        let globex = Browser::new("globex.lineup.test", addr);
        globex.sign_in("owner@globex.example", PASSWORD).await;
        globex.get("/settings/domains").await.assert_ok();

        // Six days on, acme's claim still holds.
        w.age_domain_claims(6).await;
        let answer = globex
            .post("/settings/domains", &[("domain", CUSTOM)])
            .await;
        assert_eq!(answer.status, StatusCode::CONFLICT);

        // Eight days on and still unverified: globex may claim it; acme is told in its log.
        w.age_domain_claims(8).await;
        let answer = globex
            .post("/settings/domains", &[("domain", CUSTOM)])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert!(w.lineup.custom_domains(w.tenant).await.unwrap().is_empty());
        let globex_domains = w.lineup.custom_domains(w.globex).await.unwrap();
        assert_eq!(globex_domains.len(), 1);
        assert_eq!(
            w.audit_in(w.tenant, "domain", CUSTOM).await,
            vec!["domain.added", "domain.expired"]
        );
        assert_eq!(
            w.audit_in(w.globex, "domain", CUSTOM).await,
            vec!["domain.added"]
        );

        // The worker's sweep frees stale claims nobody else asked for, and leaves verified and
        // recent ones.
        let now = lineup_core::store::now();
        assert_eq!(w.lineup.prune_stale_domain_claims(now).await.unwrap(), 0);
        admin
            .post("/settings/domains", &[("domain", "old.acme-corp.example")])
            .await;
        w.age_domain_claims(30).await;
        admin
            .post("/settings/domains", &[("domain", "new.acme-corp.example")])
            .await;
        assert_eq!(w.lineup.prune_stale_domain_claims(now).await.unwrap(), 2);
        let left: Vec<String> = w
            .lineup
            .custom_domains(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.domain)
            .collect();
        assert_eq!(left, vec!["new.acme-corp.example"]);
        assert!(w.lineup.custom_domains(w.globex).await.unwrap().is_empty());
        assert_eq!(
            w.audit_in(w.tenant, "domain", "old.acme-corp.example")
                .await,
            vec!["domain.added", "domain.expired"]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_domains_are_explained_and_nothing_is_added() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let (_dns, _addr, admin) = with_dns(&w).await;
    for (typed, says) in [
        ("localhost", "needs at least two parts"),
        ("https://lines.example.com", "is not a host name"),
        ("evil.lineup.test", "part of Lineup&#39;s own domain"),
        ("", "needs at least two parts"),
    ] {
        let answer = admin.post("/settings/domains", &[("domain", typed)]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{typed}");
        answer.assert_contains(says);
    }
    admin.post("/settings/domains", &[("domain", CUSTOM)]).await;
    let again = admin.post("/settings/domains", &[("domain", CUSTOM)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    again.assert_contains("is already added");
    assert_eq!(w.lineup.custom_domains(w.tenant).await.unwrap().len(), 1);
}
