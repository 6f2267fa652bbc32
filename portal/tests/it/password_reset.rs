//! "Forgot your password?": the same answer whether or not the address has an account, an
//! emailed link valid for an hour and usable once, and every other session ended.

use crate::helpers::ACME;
use lineup_testkit::fake_smtp::FakeSmtp;
use lineup_testkit::portal::{BASE_DOMAIN, PASSWORD, PortalWorld};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Ask for a reset link for `email` on `host`; returns the page's answer.
async fn ask(w: &PortalWorld, host: &str, email: &str) -> lineup_testkit::portal::Response {
    let browser = w.browser(host);
    browser
        .get("/login")
        .await
        .assert_ok()
        .assert_contains("Forgot your password?");
    browser.get("/password/forgot").await.assert_ok();
    browser.post("/password/forgot", &[("email", email)]).await
}

both_backends!(
    a_reset_link_sets_a_new_password_and_ends_other_sessions,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let smtp = FakeSmtp::start().await;
        let elsewhere = w.signed_in(w.fiona.email.as_str()).await;
        let known = ask(&w, ACME, w.fiona.email.as_str()).await;
        let unknown = ask(&w, ACME, "nobody@example.com").await;
        known.assert_ok().assert_contains("we have sent it a link");
        let same = |body: &str, email: &str| body.replace(email, "ADDRESS");
        assert_eq!(
            same(&known.body, w.fiona.email.as_str()),
            same(&unknown.body, "nobody@example.com"),
            "the answer never tells whether an account exists"
        );
        w.deliver_mail(&smtp).await;
        assert!(smtp.to("nobody@example.com").is_empty());
        let mail = smtp.wait_for(w.fiona.email.as_str()).await;
        assert_eq!(mail.header("Subject"), Some("Reset your Lineup password"));
        let link = mail.link().unwrap();

        let browser = w.browser(ACME);
        browser
            .open_link(&link)
            .await
            .assert_ok()
            .assert_contains("Choose a new password");
        let path = format!("/password/reset/{}", link.rsplit('/').next().unwrap());
        let answer = browser
            .post(
                &path,
                &[("password", NEW_PASSWORD), ("confirm", "something else")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer.assert_contains("confirm: the two passwords differ");
        let answer = browser
            .post(&path, &[("password", "short"), ("confirm", "short")])
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer.assert_contains("password: must be at least 10 characters");
        let answer = browser
            .post(
                &path,
                &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        browser
            .get("/")
            .await
            .assert_ok()
            .assert_contains("Password changed");

        // The session from before the reset is over; the old password no longer works.
        assert_eq!(elsewhere.get("/").await.status, StatusCode::SEE_OTHER);
        let login = w.browser(ACME);
        login.get("/login").await.assert_ok();
        let old = login
            .post(
                "/login",
                &[("email", w.fiona.email.as_str()), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(old.status, StatusCode::UNAUTHORIZED);
        login.sign_in(w.fiona.email.as_str(), NEW_PASSWORD).await;

        let fiona = w.user_id(w.fiona.email.as_str()).await;
        let actions = w.audit_in(w.tenant, "user", &fiona.to_string()).await;
        assert!(
            actions.contains(&"password.reset_requested".to_owned()),
            "{actions:?}"
        );
        assert!(
            actions.contains(&"password.reset".to_owned()),
            "{actions:?}"
        );

        // Once only.
        let answer = w.browser(ACME).open_link(&link).await;
        assert_eq!(answer.status, StatusCode::GONE);
        answer.assert_contains("already been used");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_too_often_is_refused_for_a_while() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    for _ in 0..3 {
        ask(&w, ACME, w.maria.email.as_str()).await.assert_ok();
    }
    let answer = ask(&w, ACME, w.maria.email.as_str()).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    answer.assert_contains("try again in 15 minutes");
    w.deliver_mail(&smtp).await;
    let sent = smtp.to(w.maria.email.as_str());
    assert_eq!(sent.len(), 3, "the fourth request sent nothing");
    // Each new link replaces the one before: only the newest works.
    let browser = w.browser(ACME);
    for (i, mail) in sent.iter().enumerate() {
        let expected = if i == 2 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let answer = browser.open_link(&mail.link().unwrap()).await;
        assert_eq!(answer.status, expected, "link {i}");
    }
    // An unknown address is limited the same way, so the limit reveals nothing either.
    for _ in 0..3 {
        ask(&w, ACME, "nobody@example.com").await.assert_ok();
    }
    assert_eq!(
        ask(&w, ACME, "nobody@example.com").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_reset_link_is_refused_before_any_password_work() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let browser = w.browser(ACME);
    browser.get("/login").await.assert_ok();
    let path = format!("/password/reset/{}", "0".repeat(64));
    // Even a password too short to hash: the link is checked first.
    let answer = browser
        .post(&path, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_contains("not valid here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reset_link_says_so_and_changes_nothing() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    ask(&w, ACME, w.maria.email.as_str()).await.assert_ok();
    w.deliver_mail(&smtp).await;
    let link = smtp.wait_for(w.maria.email.as_str()).await.link().unwrap();
    w.expire_links().await;
    let browser = w.browser(ACME);
    let answer = browser.open_link(&link).await;
    assert_eq!(answer.status, StatusCode::GONE);
    answer
        .assert_contains("has expired")
        .assert_contains("Forgot your password?");
    browser.get("/login").await.assert_ok();
    let path = format!("/password/reset/{}", link.rsplit('/').next().unwrap());
    let answer = browser
        .post(
            &path,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::GONE);
    w.signed_in(w.maria.email.as_str()).await; // the old password still works
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_links_and_requests_stay_within_their_tenant() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    // Globex's owner is no member of acme: asking on acme's host sends nothing.
    ask(&w, ACME, "owner@globex.example").await.assert_ok();
    ask(&w, ACME, w.maria.email.as_str()).await.assert_ok();
    w.deliver_mail(&smtp).await;
    assert!(smtp.to("owner@globex.example").is_empty());
    let link = smtp.wait_for(w.maria.email.as_str()).await.link().unwrap();
    let token = link.rsplit('/').next().unwrap();
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    let answer = globex.get(&format!("/password/reset/{token}")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(!answer.body.contains("acme"));
    globex.get("/login").await.assert_ok();
    let path = format!("/password/reset/{token}");
    let answer = globex
        .post(
            &path,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    // Still usable on acme.
    w.browser(ACME).open_link(&link).await.assert_ok();
}
