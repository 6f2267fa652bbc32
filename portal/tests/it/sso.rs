//! OIDC single sign-on against a local provider: the happy path (client_secret_post and
//! basic), and every way a sign-in must fail: a wrong or replayed state, a replayed code, a
//! PKCE verifier that does not match, ID tokens with the wrong audience, issuer or nonce,
//! expired or signed with another key, and a person who is not a member. Then what the
//! server may reach: with the production network policy no request goes to a non-public
//! address, discovery may not point elsewhere, and what the provider published is kept.

use crate::helpers::ACME;
use lineup_core::identity::sso::SsoNetworkPolicy;
use lineup_testkit::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, TokenTweak};
use lineup_testkit::portal::{BASE_DOMAIN, Browser, PASSWORD, PortalWorld, Response};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

/// Acme's owner switches SSO on with the fake provider.
async fn configure(w: &PortalWorld, oidc: &FakeOidc) {
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/settings/sso").await.assert_ok();
    let answer = owner
        .post(
            "/settings/sso",
            &[
                ("issuer", oidc.issuer()),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

/// Acme with SSO switched on, the provider signing Olivia in.
async fn acme_with_sso(store: lineup_testkit::TestStore) -> (PortalWorld, FakeOidc) {
    let w = PortalWorld::new(store).await;
    let oidc = FakeOidc::start().await;
    configure(&w, &oidc).await;
    oidc.sign_in_as(w.olivia.email.as_str());
    (w, oidc)
}

/// A fresh browser on acme's sign-in page.
async fn at_sign_in(w: &PortalWorld) -> Browser {
    let browser = w.browser(ACME);
    browser.get("/login").await.assert_ok();
    browser
}

/// The browser's trip: our start page → the provider → back to our callback. Returns the
/// callback's answer.
async fn round_trip(browser: &Browser, tamper: impl FnOnce(String) -> String) -> Response {
    round_trip_from(browser, "/sso/start?next=/members", tamper).await
}

async fn round_trip_from(
    browser: &Browser,
    start: &str,
    tamper: impl FnOnce(String) -> String,
) -> Response {
    let start = browser.get(start).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = tamper(start.location().unwrap().to_owned());
    let back = provider_redirect(&authorize).await;
    browser.open_link(&back).await
}

/// Follow the authorize URL at the provider; return where it sends the browser.
async fn provider_redirect(authorize: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(authorize).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{authorize}");
    answer.headers()["location"].to_str().unwrap().to_owned()
}

fn assert_refused(answer: &Response, says: &str) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    answer.assert_contains("Single sign-on did not sign you in");
    answer.assert_contains(says);
    assert!(
        answer
            .headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("lineup_session=")),
        "no session on a refusal"
    );
}

both_backends!(a_member_signs_in_with_sso, |store| async move {
    let (w, oidc) = acme_with_sso(store).await;
    let browser = w.browser(ACME);
    browser
        .get("/login")
        .await
        .assert_ok()
        .assert_contains("Sign in with SSO");
    let answer = round_trip(&browser, |u| u).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some("/members"));
    browser
        .get("/members")
        .await
        .assert_ok()
        .assert_contains("Members");

    let requests = oidc.token_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["auth"], "post");
    assert_eq!(
        requests[0]["code_verifier"].len(),
        43,
        "a PKCE verifier was sent"
    );
    assert_eq!(
        requests[0]["redirect_uri"],
        format!("http://{ACME}:{}/sso/callback", w.addr.port())
    );
    let olivia = w.user_id(w.olivia.email.as_str()).await;
    let actions = w.audit_in(w.tenant, "user", &olivia.to_string()).await;
    assert!(actions.contains(&"session.signed_in".to_owned()));
    let configured = w.audit_in(w.tenant, "tenant", &w.tenant.to_string()).await;
    assert!(
        configured.contains(&"sso.configured".to_owned()),
        "{configured:?}"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_is_used_when_that_is_all_the_provider_takes() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let oidc = FakeOidc::start().await;
    oidc.only_basic_auth();
    configure(&w, &oidc).await;
    oidc.sign_in_as(w.fiona.email.as_str());
    let browser = at_sign_in(&w).await;
    let answer = round_trip(&browser, |u| u).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(oidc.token_requests()[0]["auth"], "basic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_state_or_another_browsers_state_is_refused() {
    let (w, oidc) = acme_with_sso(sqlite_store().await).await;
    let browser = at_sign_in(&w).await;
    let answer = browser
        .get("/sso/callback?code=whatever&state=made-up")
        .await;
    assert_refused(&answer, "start again from the sign-in page");

    // A victim's browser handed the attacker's callback (login CSRF) is refused too.
    let attacker = at_sign_in(&w).await;
    let start = attacker.get("/sso/start").await;
    let back = provider_redirect(start.location().unwrap()).await;
    let answer = browser.open_link(&back).await;
    assert_refused(&answer, "started in another browser");
    assert!(oidc.token_requests().is_empty(), "no code was exchanged");

    let answer = browser
        .get("/sso/callback?error=access_denied&error_description=nope")
        .await;
    assert_refused(&answer, "access_denied nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_callback_or_code_is_refused() {
    let (w, _oidc) = acme_with_sso(sqlite_store().await).await;
    let browser = at_sign_in(&w).await;
    let start = browser.get("/sso/start").await;
    let back = provider_redirect(start.location().unwrap()).await;
    assert_eq!(browser.open_link(&back).await.status, StatusCode::SEE_OTHER);
    // The same callback again: its state is spent.
    assert_refused(&browser.open_link(&back).await, "start again");
    // The old code under a fresh state: the provider refuses it.
    let fresh = browser.get("/sso/start").await;
    let fresh_back = provider_redirect(fresh.location().unwrap()).await;
    let old_code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut replay = url::Url::parse(&fresh_back).unwrap();
    let state = replay
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    replay
        .query_pairs_mut()
        .clear()
        .append_pair("code", &old_code)
        .append_pair("state", &state);
    assert_refused(
        &browser.open_link(replay.as_str()).await,
        "the code was already used",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_bound_to_another_pkce_challenge_is_refused() {
    let (w, _oidc) = acme_with_sso(sqlite_store().await).await;
    let browser = at_sign_in(&w).await;
    let answer = round_trip(&browser, |authorize| {
        let mut url = url::Url::parse(&authorize).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "code_challenge" {
                    "A".repeat(43)
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.into()
    })
    .await;
    assert_refused(&answer, "PKCE verification failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_that_do_not_verify_are_refused() {
    let (w, oidc) = acme_with_sso(sqlite_store().await).await;
    let cases = [
        (
            TokenTweak {
                audience: Some("someone-else".into()),
                ..Default::default()
            },
            "InvalidAudience",
        ),
        (
            TokenTweak {
                expires_in: Some(-3600),
                ..Default::default()
            },
            "ExpiredSignature",
        ),
        (
            TokenTweak {
                attacker_key: true,
                ..Default::default()
            },
            "InvalidSignature",
        ),
        (
            TokenTweak {
                issuer: Some("https://evil.example".into()),
                ..Default::default()
            },
            "InvalidIssuer",
        ),
        (
            TokenTweak {
                nonce: Some("another nonce".into()),
                ..Default::default()
            },
            "nonce is not this sign-in",
        ),
        (
            TokenTweak {
                email_verified: Some(false),
                ..Default::default()
            },
            "has not verified this email",
        ),
    ];
    for (tweak, says) in cases {
        oidc.tweak_tokens(tweak);
        let browser = at_sign_in(&w).await;
        let answer = round_trip(&browser, |u| u).await;
        assert_refused(&answer, says);
        assert_eq!(
            browser.get("/").await.status,
            StatusCode::SEE_OTHER,
            "{says}: not signed in"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_is_not_a_member_is_refused() {
    let (w, oidc) = acme_with_sso(sqlite_store().await).await;
    for email in [
        "stranger@example.com",
        "owner@globex.example",
        "ada@example.com",
    ] {
        oidc.sign_in_as(email);
        let browser = at_sign_in(&w).await;
        let answer = round_trip(&browser, |u| u).await;
        assert_refused(&answer, &format!("{email} is not a member of acme"));
    }
    let mut tx = w.store.system().await.unwrap();
    let created = lineup_core::store::users::find_by_email(&mut tx, "stranger@example.com")
        .await
        .unwrap();
    assert!(created.is_none(), "signing in creates nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_sso_is_never_used_by_another() {
    let (w, oidc) = acme_with_sso(sqlite_store().await).await;
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    let login = globex.get("/login").await;
    login.assert_ok();
    assert!(!login.body.contains("Sign in with SSO"));
    assert_eq!(globex.get("/sso/start").await.status, StatusCode::NOT_FOUND);
    // An acme sign-in's callback replayed on globex's host finds nothing there.
    let acme = at_sign_in(&w).await;
    let start = acme.get("/sso/start").await;
    let back = provider_redirect(start.location().unwrap()).await;
    let query = back.split_once('?').unwrap().1;
    let answer = globex.get(&format!("/sso/callback?{query}")).await;
    assert_refused(&answer, "start again");
    assert!(!answer.body.contains("acme"));
    assert!(oidc.token_requests().is_empty());
    // Acme's attempt was not spent by the detour: it still finishes on acme.
    assert_eq!(acme.open_link(&back).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_check_the_issuer_and_never_show_the_secret() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let oidc = FakeOidc::start().await;
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/settings/sso").await.assert_ok();
    let slash = format!("{}/", oidc.issuer());
    for (issuer, secret, says) in [
        (
            "http://idp.example.com",
            CLIENT_SECRET,
            "issuer: must be an https:// URL",
        ),
        (slash.as_str(), CLIENT_SECRET, "the provider calls itself"),
        (oidc.issuer(), "", "client_secret: is required"),
    ] {
        let answer = owner
            .post(
                "/settings/sso",
                &[
                    ("issuer", issuer),
                    ("client_id", CLIENT_ID),
                    ("client_secret", secret),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{issuer}");
        answer.assert_contains(says).assert_contains(CLIENT_ID);
        assert!(!answer.body.contains(CLIENT_SECRET));
    }
    assert!(
        w.lineup.sso_settings(w.tenant).await.unwrap().is_none(),
        "nothing saved"
    );

    configure(&w, &oidc).await;
    let page = owner.get("/settings/sso").await;
    page.assert_ok().assert_contains("leave empty to keep it");
    assert!(!page.body.contains(CLIENT_SECRET));
    // Saving without a secret keeps the stored one, and sign-in still works.
    let answer = owner
        .post(
            "/settings/sso",
            &[
                ("issuer", oidc.issuer()),
                ("client_id", CLIENT_ID),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    oidc.sign_in_as(w.olivia.email.as_str());
    let browser = at_sign_in(&w).await;
    assert_eq!(
        round_trip(&browser, |u| u).await.status,
        StatusCode::SEE_OTHER
    );
    // At rest the secret is sealed.
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    let row = lineup_core::store::sso::get(&mut tx, w.tenant)
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    assert!(!String::from_utf8_lossy(&row.client_secret_encrypted).contains(CLIENT_SECRET));
    // Switched off: no button, no start.
    owner.get("/settings/sso").await.assert_ok();
    owner
        .post(
            "/settings/sso",
            &[("issuer", oidc.issuer()), ("client_id", CLIENT_ID)],
        )
        .await;
    let login = w.browser(ACME);
    assert!(!login.get("/login").await.body.contains("Sign in with SSO"));
    assert_eq!(login.get("/sso/start").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_start_never_sends_the_browser_to_another_site() {
    let (w, _oidc) = acme_with_sso(sqlite_store().await).await;
    for next in [
        "/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "/.//evil.example",
        "https://evil.example",
    ] {
        let browser = at_sign_in(&w).await;
        let answer = round_trip_from(&browser, &format!("/sso/start?next={next}"), |u| u).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{next}: {}",
            answer.body
        );
        assert_eq!(answer.location(), Some("/"), "{next}");
    }
}

/// A second portal on the same tenants whose core runs with the production network policy,
/// and acme's owner signed in there.
async fn production_portal(w: &PortalWorld) -> Browser {
    let addr = w
        .serve_another(|mut portal| {
            portal.lineup = portal
                .lineup
                .with_sso_network_policy(SsoNetworkPolicy::default());
            portal
        })
        .await;
    let owner = Browser::new(ACME, addr);
    owner.sign_in(w.olivia.email.as_str(), PASSWORD).await;
    owner.get("/settings/sso").await.assert_ok();
    owner
}

async fn save_issuer(owner: &Browser, issuer: &str) -> Response {
    owner
        .post(
            "/settings/sso",
            &[
                ("issuer", issuer),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("enabled", "on"),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_production_policy_no_request_reaches_a_non_public_address() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let oidc = FakeOidc::start().await;
    let owner = production_portal(&w).await;
    let port = oidc.port();
    let cases = [
        (
            oidc.issuer().to_owned(),
            "issuer: must be an https:// URL".to_owned(),
        ),
        (
            format!("https://127.0.0.1:{port}"),
            "127.0.0.1 is not a public address".to_owned(),
        ),
        (
            format!("https://localhost:{port}"),
            "localhost resolves to".to_owned(),
        ),
        (
            format!("https://[::ffff:127.0.0.1]:{port}"),
            "is not a public address".to_owned(),
        ),
        (
            "https://10.0.0.5".to_owned(),
            "10.0.0.5 is not a public address".to_owned(),
        ),
        (
            "https://169.254.169.254/latest".to_owned(),
            "169.254.169.254 is not a public address".to_owned(),
        ),
    ];
    for (issuer, says) in cases {
        let answer = save_issuer(&owner, &issuer).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{issuer}");
        answer.assert_contains(&says);
    }
    assert_eq!(oidc.connections(), 0, "nothing reached the provider");
    assert!(w.lineup.sso_settings(w.tenant).await.unwrap().is_none());

    // Settings saved before (here: through the test portal) are held to the policy at
    // sign-in too.
    configure(&w, &oidc).await;
    oidc.sign_in_as(w.olivia.email.as_str());
    let heard = oidc.requests();
    let visitor = Browser::new(ACME, owner_addr(&owner));
    visitor.get("/login").await.assert_ok();
    let answer = visitor.get("/sso/start?next=/members").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    answer.assert_contains("must be an https:// URL");
    assert_eq!(oidc.requests(), heard, "sign-in asked the provider nothing");
}

/// The loopback address a browser made with [`Browser::new`] talks to.
fn owner_addr(browser: &Browser) -> std::net::SocketAddr {
    let port = url::Url::parse(browser.origin()).unwrap().port().unwrap();
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_pointing_the_token_endpoint_elsewhere_is_refused_and_nothing_goes_there() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let oidc = FakeOidc::start().await;
    let elsewhere = FakeOidc::start().await;
    oidc.point_endpoints_at(elsewhere.issuer());
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/settings/sso").await.assert_ok();
    let answer = save_issuer(&owner, oidc.issuer()).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains(&format!(
        "token_endpoint {}/token is not on the issuer&#39;s own origin {}",
        elsewhere.issuer(),
        oidc.issuer()
    ));
    assert_eq!(oidc.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(elsewhere.connections(), 0, "nothing went to the other host");
    assert!(w.lineup.sso_settings(w.tenant).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_reported_without_their_status_or_body() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let oidc = FakeOidc::start().await;
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/settings/sso").await.assert_ok();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for issuer in [
        format!("{}/no-such-tenant", oidc.issuer()),
        format!("http://127.0.0.1:{closed}"),
    ] {
        let answer = save_issuer(&owner, &issuer).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{issuer}");
        answer.assert_contains("the identity provider did not answer as expected (discovery)");
        for detail in [
            "404 Not Found",
            "status",
            "onnection refused",
            "error sending",
        ] {
            assert!(!answer.body.contains(detail), "{issuer}: {detail} shown");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_keys_are_kept_between_sign_ins_and_keys_refetched_when_rotated() {
    let (w, oidc) = acme_with_sso(sqlite_store().await).await;
    for _ in 0..2 {
        let browser = at_sign_in(&w).await;
        let answer = round_trip(&browser, |u| u).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }
    // Once when the settings were saved, and kept since.
    assert_eq!(oidc.hits("/.well-known/openid-configuration"), 1);
    assert_eq!(oidc.hits("/jwks"), 1);

    oidc.rotate_keys();
    let browser = at_sign_in(&w).await;
    let answer = round_trip(&browser, |u| u).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        oidc.hits("/jwks"),
        2,
        "an unknown kid fetches the keys once more"
    );
    assert_eq!(oidc.hits("/.well-known/openid-configuration"), 1);
}
