//! Who can reach what: every route under every role, sign-in, CSRF, rate limiting, tenant
//! isolation by host, by session swap and by id guessing, and the headers that keep other
//! sites from framing or scripting the pages.

use lineup_core::user::Role;
use lineup_portal::{ROUTES, allows};
use lineup_testkit::portal::{BASE_DOMAIN, PASSWORD, PortalWorld, input_value};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

/// A path with its `{param}`s filled in with ids of acme's records (or any id).
fn concrete(path: &str, w: &PortalWorld) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                w.ada.id.to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_under_every_role_is_allowed_or_refused_as_the_table_says() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let anonymous = w.browser(&format!("acme.{BASE_DOMAIN}"));
    anonymous.get("/login").await.assert_ok();
    for role in Role::ALL {
        let browser = w.signed_in(&w.email_for(role)).await;
        for rule in ROUTES.iter().filter(|r| {
            r.site == lineup_portal::SiteKind::Tenant
                && r.permission != lineup_portal::Permission::Public
                && r.path != "/logout"
        }) {
            let path = concrete(rule.path, &w);
            let answer = match rule.method {
                "GET" => browser.get(&path).await,
                _ => browser.post(&path, &[]).await,
            };
            let allowed = allows(role, rule.permission);
            if allowed {
                assert!(
                    answer.status != StatusCode::FORBIDDEN
                        && answer.status != StatusCode::NOT_FOUND
                        || path.contains(&w.ada.id.to_string()),
                    "{} {} as {role:?} should be allowed, got {}: {}",
                    rule.method,
                    path,
                    answer.status,
                    answer.body
                );
                assert_ne!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role:?}",
                    rule.method
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role:?} should be refused: {}",
                    rule.method,
                    path,
                    answer.body
                );
            }
            // Nobody signed in: every one of these sends them to sign in.
            let answer = match rule.method {
                "GET" => anonymous.get(&path).await,
                _ => anonymous.post(&path, &[]).await,
            };
            if rule.method == "GET" {
                assert_eq!(
                    answer.status,
                    StatusCode::SEE_OTHER,
                    "GET {path} anonymously"
                );
                assert!(answer.location().unwrap().starts_with("/login?next="));
            } else {
                assert!(
                    matches!(answer.status, StatusCode::SEE_OTHER | StatusCode::FORBIDDEN),
                    "POST {path} anonymously gave {}",
                    answer.status
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_get_404_and_the_bare_domain_offers_sign_up() {
    let w = PortalWorld::new(sqlite_store().await).await;
    for host in [
        format!("nobody.{BASE_DOMAIN}"),
        format!("a.b.{BASE_DOMAIN}"),
        "acme.example.org".to_owned(),
    ] {
        let answer = w.browser(&host).get("/login").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host}");
        assert!(!answer.body.contains("acme"), "{host} leaked a tenant name");
    }
    let root = w.browser(BASE_DOMAIN);
    let front = root.get("/").await;
    assert_eq!(front.location(), Some("/signup"));
    root.get("/signup").await.assert_ok();
    // Tenant pages do not exist on the bare domain.
    assert_eq!(root.get("/settings").await.status, StatusCode::NOT_FOUND);
}

both_backends!(
    a_session_from_one_tenant_is_worthless_on_another,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let acme = w.signed_in(&w.olivia.email.to_string()).await;
        let token = acme.cookie("lineup_session").unwrap();
        let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
        globex.set_cookie("lineup_session", &token);
        let answer = globex.get("/").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert!(answer.location().unwrap().starts_with("/login"));
        // And an acme user's password does not open globex.
        globex.get("/login").await.assert_ok();
        let refused = globex
            .post(
                "/login",
                &[
                    ("email", &w.olivia.email.to_string()),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        refused.assert_contains("the email or password is not right");
        // Globex's own owner does get in, and sees only globex.
        globex.sign_in("owner@globex.example", PASSWORD).await;
        let overview = globex.get("/").await;
        overview.assert_contains("globex");
        assert!(!overview.body.contains("acme"));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_right_token_or_from_another_origin_are_refused() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    owner.get("/settings").await.assert_ok();
    let fields = [("name", "Hijacked"), ("_csrf", "0000")];
    let answer = owner.post("/settings", &fields).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    answer.assert_contains("reload the page");
    let tenant = w.lineup.tenant(w.tenant).await.unwrap();
    assert_eq!(tenant.name, "acme", "nothing changed");

    // A cross-site post carries the victim's cookie and even a token, but its Origin gives
    // it away.
    let client = reqwest::Client::builder()
        .resolve(&format!("acme.{BASE_DOMAIN}"), w.addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client
        .post(format!("{}/logout", owner.origin()))
        .header("origin", "https://evil.example")
        .header(
            "cookie",
            format!("lineup_session={}", owner.cookie("lineup_session").unwrap()),
        )
        .form(&[("_csrf", owner.csrf().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    // The session still works.
    owner.get("/").await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_sign_ins_are_slowed_down() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = w.browser(&format!("acme.{BASE_DOMAIN}"));
    browser.get("/login").await.assert_ok();
    let email = w.olivia.email.to_string();
    for _ in 0..5 {
        let answer = browser
            .post(
                "/login",
                &[("email", &email), ("password", "wrong password!")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, without being checked.
    let answer = browser
        .post("/login", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    answer.assert_contains("try again in 15 minutes");
    // Other accounts are unaffected.
    browser.sign_in(&w.fiona.email.to_string(), PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_out_are_audited_and_sign_out_ends_the_session() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let token = owner.cookie("lineup_session").unwrap();
    let answer = owner.post("/logout", &[]).await;
    assert_eq!(answer.location(), Some("/login"));
    assert!(owner.cookie("lineup_session").is_none());
    // The old token is dead on the server too, not just forgotten by the browser.
    let replay = w.browser(&format!("acme.{BASE_DOMAIN}"));
    replay.set_cookie("lineup_session", &token);
    assert_eq!(replay.get("/").await.status, StatusCode::SEE_OTHER);
    let actions = w.audit_actions("user", &olivia_user(&w).await).await;
    assert!(
        actions.contains(&"session.signed_in".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"session.signed_out".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_creates_an_organisation_reachable_on_its_own_subdomain() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let root = w.browser(BASE_DOMAIN);
    root.get("/signup").await.assert_ok();
    let fields = [
        ("organisation", "Initech"),
        ("slug", "initech"),
        ("currency", "gbp"),
        ("name", "Bill Lumbergh"),
        ("email", "bill@initech.example"),
        ("password", "yeah if you could sign in"),
    ];
    let answer = root.post("/signup", &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(answer.location().unwrap().contains("initech.lineup.test"));
    let initech = w.browser(&format!("initech.{BASE_DOMAIN}"));
    initech
        .sign_in("bill@initech.example", "yeah if you could sign in")
        .await;
    initech
        .get("/settings")
        .await
        .assert_ok()
        .assert_contains("GBP");

    // The same address again is refused with the reason, and creates nothing.
    root.get("/signup").await.assert_ok();
    let again = [("email", "other@initech.example"), ("slug", "initech")];
    let fields: Vec<_> = fields
        .iter()
        .map(|(k, v)| {
            (
                *k,
                again.iter().find(|(a, _)| a == k).map_or(*v, |(_, b)| *b),
            )
        })
        .collect();
    let answer = root.post("/signup", &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("initech is already taken");
    let mut tx = w.store.system().await.unwrap();
    let other = lineup_core::store::users::find_by_email(&mut tx, "other@initech.example")
        .await
        .unwrap();
    assert!(other.is_none(), "no half-made account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_name_the_bad_field_and_change_nothing_until_all_are_right() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in("admin@example.com").await;
    let page = admin.get("/settings").await;
    page.assert_ok().assert_contains("0 0 * * * *");
    let mut fields = vec![
        ("name", "Acme Corporation"),
        ("currency", "USD"),
        ("approvals_channel", "C0APPROVALS"),
        ("finance_channel", ""),
        ("offboarding_action", "terminate"),
        ("cap_raise_finance_threshold", "50.00"),
        ("cap_raise_auto_approve_max", "ten"),
        ("cap_raise_max", "500"),
        ("new_line_auto_approve_max_price", ""),
        ("approval_remind_after_hours", "24"),
        ("approval_escalate_after_hours", "48"),
        ("approval_expire_after_hours", "120"),
        ("usage_sync_cron", "0 0 * * * *"),
        ("roaming_violation_action", "suspend"),
    ];
    let answer = admin.post("/settings", &fields).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("cap_raise_auto_approve_max: &#34;ten&#34; is not an amount in USD");
    answer.assert_contains("Acme Corporation"); // what was typed is kept
    let tenant = w.lineup.tenant(w.tenant).await.unwrap();
    assert_eq!(
        tenant.name, "acme",
        "a bad field changes nothing, not even the name"
    );

    fields[6] = ("cap_raise_auto_approve_max", "10");
    let answer = admin.post("/settings", &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    admin
        .get("/settings")
        .await
        .assert_contains("Settings saved");
    let tenant = w.lineup.tenant(w.tenant).await.unwrap();
    assert_eq!(tenant.name, "Acme Corporation");
    assert_eq!(tenant.settings.cap_raise_auto_approve_max_minor, 1000);
    assert_eq!(
        tenant.settings.approvals_channel.as_deref(),
        Some("C0APPROVALS")
    );
    let actions = w.audit_actions("tenant", &w.tenant.to_string()).await;
    assert!(
        actions.contains(&"tenant.profile_updated".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"tenant.settings_updated".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_only_their_reporting_tree() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let maria = w.signed_in(&w.maria.email.to_string()).await;
    // Maria, Ada and Alan; not Olivia or Fiona.
    maria
        .get("/")
        .await
        .assert_contains("<p class=\"big\">3</p>");
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    owner
        .get("/")
        .await
        .assert_contains("<p class=\"big\">5</p>");
}

async fn olivia_user(w: &PortalWorld) -> String {
    let mut tx = w.store.system().await.unwrap();
    let user = lineup_core::store::users::find_by_email(&mut tx, w.olivia.email.as_str())
        .await
        .unwrap()
        .unwrap();
    user.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let visitor = w.browser(&format!("acme.{BASE_DOMAIN}"));
    let admin = w.signed_in("admin@example.com").await;
    let line = w.ready_line(&w.ada, "ada-headers").await;
    let answers = [
        ("sign-in page", visitor.get("/login").await),
        ("front page", w.browser(BASE_DOMAIN).get("/").await),
        ("stylesheet", visitor.get("/static/portal.css").await),
        ("script", visitor.get("/static/portal.js").await),
        ("sign-in redirect", visitor.get("/employees").await),
        ("signed-in page", admin.get("/members").await),
        (
            "revealed activation code with its QR code",
            admin.post(&format!("/lines/{}/reveal", line.id), &[]).await,
        ),
        ("not found", admin.get("/no-such-page").await),
        (
            "CSRF refusal",
            admin
                .post("/settings/domains", &[("_csrf", "forged")])
                .await,
        ),
    ];
    for (what, answer) in &answers {
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{what} ({}): no {name}", answer.status))
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        assert_eq!(header("referrer-policy"), "same-origin", "{what}");
    }
    assert_eq!(answers[8].1.status, StatusCode::FORBIDDEN);
    answers[3].1.assert_ok().assert_contains("data-confirm");

    // The pages themselves need nothing the policy forbids: no inline script or handlers.
    let members = &answers[5].1;
    members.assert_ok().assert_contains("data-confirm=");
    for (what, answer) in &answers {
        for forbidden in ["<script>", "onsubmit=", "onclick=", "javascript:", "style="] {
            assert!(!answer.body.contains(forbidden), "{what} has {forbidden}");
        }
    }
    answers[6]
        .1
        .assert_ok()
        .assert_contains("src=\"data:image/png;base64,");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_never_sends_the_browser_to_another_site() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let email = w.olivia.email.to_string();
    for (next, lands_on) in [
        ("/%09/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("/.//evil.example", "/"),
        ("https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/members", "/members"),
    ] {
        let browser = w.browser(&format!("acme.{BASE_DOMAIN}"));
        let page = browser.get(&format!("/login?next={next}")).await;
        page.assert_ok();
        assert_eq!(
            input_value(&page.body, "next").as_deref(),
            Some(lands_on),
            "{next}"
        );
        // A form posted from another site carries whatever it likes in `next`.
        let field = format!("next={next}");
        let (_, raw) = url::form_urlencoded::parse(field.as_bytes())
            .next()
            .unwrap();
        let answer = browser
            .post(
                "/login",
                &[("email", &email), ("password", PASSWORD), ("next", &raw)],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{next}: {}",
            answer.body
        );
        assert_eq!(answer.location(), Some(lands_on), "{next}");
    }
}
