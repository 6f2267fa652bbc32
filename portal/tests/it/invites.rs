//! Invites: an emailed single-use link with a role; new people choose a name and password,
//! existing Lineup users confirm theirs; dead links say why; email goes through the outbox.

use std::sync::Arc;

use crate::helpers::ACME;
use lineup_testkit::fake_smtp::FakeSmtp;
use lineup_testkit::portal::{BASE_DOMAIN, Browser, PASSWORD, PortalWorld};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

/// Invite `email` as `role` from acme's admin and return the link the email carries.
async fn invite(
    w: &PortalWorld,
    smtp: &FakeSmtp,
    email: &str,
    role: &str,
    employee: &str,
) -> String {
    let admin = w.signed_in("admin@example.com").await;
    admin.get("/members").await.assert_ok();
    let answer = admin
        .post(
            "/members/invite",
            &[
                ("email", email),
                ("role", role),
                ("employee_email", employee),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    w.deliver_mail(smtp).await;
    smtp.wait_for(email)
        .await
        .link()
        .expect("the email has a link")
}

both_backends!(
    a_new_person_accepts_an_invite_and_is_signed_in,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let smtp = FakeSmtp::start().await;
        let link = invite(&w, &smtp, "ada@example.com", "manager", "ada@example.com").await;
        assert!(link.starts_with(&format!("http://{ACME}:")), "{link}");
        let mail = smtp.wait_for("ada@example.com").await;
        assert_eq!(mail.header("Subject"), Some("Join acme on Lineup"));
        assert!(mail.data.contains("as manager"));

        let ada = w.browser(ACME);
        ada.open_link(&link)
            .await
            .assert_ok()
            .assert_contains("Join acme")
            .assert_contains("Choose a password");
        let path = link
            .split_once(&format!("{ACME}:{}", w.addr.port()))
            .unwrap()
            .1;
        let answer = ada
            .post(path, &[("name", "Ada Lovelace"), ("password", "short")])
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        answer.assert_contains("password: must be at least 10 characters");
        let answer = ada
            .post(
                path,
                &[("name", "Ada Lovelace"), ("password", "analytical engine")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), Some("/"));
        ada.get("/")
            .await
            .assert_ok()
            .assert_contains("Welcome to acme");
        let me = w.user_id("ada@example.com").await;
        let member = w
            .lineup
            .members(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.user_id == me)
            .unwrap();
        assert_eq!(member.role.as_str(), "manager");
        assert_eq!(member.employee_id, Some(w.ada.id));
        let actions = w.audit_in(w.tenant, "user", &me.to_string()).await;
        assert!(
            actions.contains(&"invite.accepted".to_owned()),
            "{actions:?}"
        );
        assert!(
            w.audit_in(w.tenant, "invite", "ada@example.com")
                .await
                .contains(&"invite.sent".to_owned())
        );

        // The link worked once.
        let again = w.browser(ACME);
        let answer = again.open_link(&link).await;
        assert_eq!(answer.status, StatusCode::GONE);
        answer.assert_contains("already been used");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_lineup_user_confirms_with_their_password() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let link = invite(&w, &smtp, "owner@globex.example", "viewer", "").await;
    let them = w.browser(ACME);
    them.open_link(&link)
        .await
        .assert_ok()
        .assert_contains("already has a Lineup account");
    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    let answer = them.post(&path, &[("password", "not my password")]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    answer.assert_contains("not the password of this Lineup account");
    // A wrong password does not use the link up.
    let answer = them.post(&path, &[("password", PASSWORD)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    them.get("/")
        .await
        .assert_ok()
        .assert_contains("Welcome to acme");
    // Still an owner at globex, now a viewer at acme.
    let me = w.user_id("owner@globex.example").await;
    let acme = w.lineup.members(w.tenant).await.unwrap();
    assert_eq!(
        acme.iter().find(|m| m.user_id == me).unwrap().role.as_str(),
        "viewer"
    );
    assert_eq!(
        w.lineup.members(w.globex).await.unwrap()[0].role.as_str(),
        "owner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inviting_again_replaces_the_earlier_link_and_expired_links_say_so() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let first = invite(&w, &smtp, "new@example.com", "viewer", "").await;
    let second = invite(&w, &smtp, "new@example.com", "finance", "").await;
    assert_ne!(first, second);
    let browser = w.browser(ACME);
    let answer = browser.open_link(&first).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_contains("not valid here");
    browser
        .open_link(&second)
        .await
        .assert_ok()
        .assert_contains("finance");
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    let page = owner.get("/members").await;
    assert_eq!(
        page.body.matches("<td>new@example.com</td>").count(),
        1,
        "one pending invite"
    );

    w.expire_links().await;
    let answer = browser.open_link(&second).await;
    assert_eq!(answer.status, StatusCode::GONE);
    answer
        .assert_contains("has expired")
        .assert_contains("invite you again");
    let path = format!("/invite/{}", second.rsplit('/').next().unwrap());
    let answer = browser
        .post(
            &path,
            &[("name", "Late"), ("password", "too late for this")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::GONE);
    let mut tx = w.store.system().await.unwrap();
    assert!(
        lineup_core::store::users::find_by_email(&mut tx, "new@example.com")
            .await
            .unwrap()
            .is_none(),
        "no account from a dead link"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_for_acme_does_nothing_on_globex() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let link = invite(&w, &smtp, "new@example.com", "admin", "").await;
    let token = link.rsplit('/').next().unwrap();
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    let answer = globex.get(&format!("/invite/{token}")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(!answer.body.contains("acme"));
    globex.get("/login").await.assert_ok(); // a valid form token for globex
    let answer = globex
        .post(
            &format!("/invite/{token}"),
            &[("name", "Mallory"), ("password", "globex takeover")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(w.lineup.members(w.globex).await.unwrap().len() == 1);
    // Still good where it belongs.
    w.browser(ACME).open_link(&link).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_mistakes_are_explained_and_send_nothing() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let admin = w.signed_in("admin@example.com").await;
    admin.get("/members").await.assert_ok();
    for (fields, status, says) in [
        (
            vec![("email", "maria@example.com"), ("role", "viewer")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "maria@example.com is already a member",
        ),
        (
            vec![("email", "not-an-email"), ("role", "viewer")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email:",
        ),
        (
            vec![("email", "boss@example.com"), ("role", "owner")],
            StatusCode::FORBIDDEN,
            "only an owner can grant or revoke the owner role",
        ),
        (
            vec![
                ("email", "x@example.com"),
                ("role", "viewer"),
                ("employee_email", "gina@example.com"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "no employee of this organisation has the email gina@example.com",
        ),
    ] {
        let answer = admin.post("/members/invite", &fields).await;
        assert_eq!(answer.status, status, "{fields:?}: {}", answer.body);
        answer.assert_contains(says);
        // What was typed is kept.
        answer.assert_contains(fields[0].1);
    }
    assert_eq!(w.deliver_mail(&smtp).await.sent, 0);
    assert!(smtp.received().is_empty());
}

both_backends!(
    a_failed_delivery_is_retried_and_a_sent_one_never_repeats,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let smtp = FakeSmtp::start().await;
        smtp.fail_next(1);
        let admin = w.signed_in("admin@example.com").await;
        admin.get("/members").await.assert_ok();
        admin
            .post(
                "/members/invite",
                &[("email", "new@example.com"), ("role", "viewer")],
            )
            .await;
        let first = w.deliver_mail(&smtp).await;
        assert_eq!((first.sent, first.retrying), (0, 1));
        assert!(smtp.received().is_empty());
        admin
            .get("/members")
            .await
            .assert_contains("1 email is waiting to be sent");
        // Not due again yet…
        assert_eq!(w.deliver_mail(&smtp).await.sent, 0);
        // …but a few minutes later it goes, once.
        let later = lineup_core::store::now() + time::Duration::minutes(2);
        let mailer = smtp.mailer();
        let (a, b) = tokio::join!(
            w.lineup.deliver_due_emails(&mailer, later),
            w.lineup.deliver_due_emails(&mailer, later)
        );
        assert_eq!(a.unwrap().sent + b.unwrap().sent, 1);
        assert_eq!(
            w.lineup
                .deliver_due_emails(&mailer, later)
                .await
                .unwrap()
                .sent,
            0
        );
        assert_eq!(smtp.to("new@example.com").len(), 1);
        let page = admin.get("/members").await;
        assert!(!page.body.contains("waiting to be sent"));
        let mut tx = w.store.tenant(w.tenant).await.unwrap();
        let rows = lineup_core::store::mail::list(&mut tx, w.tenant)
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![("new@example.com".to_owned(), "sent".to_owned(), 2)]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_with_a_mailer_sends_at_once() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let addr = w
        .serve_another(|p| p.with_mailer(Arc::new(smtp.mailer())))
        .await;
    let admin = Browser::new(ACME, addr);
    admin.sign_in("admin@example.com", PASSWORD).await;
    admin.get("/members").await.assert_ok();
    admin
        .post(
            "/members/invite",
            &[("email", "quick@example.com"), ("role", "viewer")],
        )
        .await;
    let mail = smtp.wait_for("quick@example.com").await;
    assert!(mail.link().unwrap().contains("/invite/"));
    assert_eq!(mail.from, lineup_testkit::fake_smtp::MAIL_FROM);
}
