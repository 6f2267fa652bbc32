//! Members: the list, role changes and links to employee records, removing access; only
//! owners touch the owner role and the last owner always stays; sessions ended by removal or
//! expiry do not linger.

use lineup_testkit::portal::{BASE_DOMAIN, PASSWORD, PortalWorld};
use lineup_testkit::{both_backends, sqlite_store};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_page_lists_this_tenants_users_with_role_and_employee() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let page = owner.get("/members").await;
    page.assert_ok()
        .assert_contains("Maria Tester")
        .assert_contains("maria@example.com")
        .assert_contains("Linked to Maria Tester")
        .assert_contains("viewer@example.com")
        .assert_contains("<option value=\"owner\"");
    assert!(
        !page.body.contains("owner@globex.example"),
        "no other tenant's users"
    );
    // An admin is not offered the owner role.
    let admin = w.signed_in("admin@example.com").await;
    let page = admin.get("/members").await;
    assert!(!page.body.contains("<option value=\"owner\">owner"));
}

both_backends!(
    an_admin_changes_a_role_and_links_an_employee,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let admin = w.signed_in("admin@example.com").await;
        admin.get("/members").await.assert_ok();
        let viewer = w.user_id("viewer@example.com").await;
        let answer = admin
            .post(
                &format!("/members/{viewer}"),
                &[("role", "finance"), ("employee_email", "alan@example.com")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        admin
            .get("/members")
            .await
            .assert_contains("viewer is now finance")
            .assert_contains("Linked to Alan Tester");
        let actions = w.audit_in(w.tenant, "user", &viewer.to_string()).await;
        assert!(
            actions.contains(&"membership.updated".to_owned()),
            "{actions:?}"
        );
        // Their next page already runs with the new role.
        let them = w.signed_in("viewer@example.com").await;
        assert_eq!(them.get("/").await.status, StatusCode::OK);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_changes_nothing() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in("admin@example.com").await;
    admin.get("/members").await.assert_ok();
    let viewer = w.user_id("viewer@example.com").await;
    let path = format!("/members/{viewer}");
    let answer = admin.post(&path, &[("role", "emperor")]).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("role: choose owner, admin");
    let answer = admin
        .post(
            &path,
            &[
                ("role", "finance"),
                ("employee_email", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.assert_contains("no employee of this organisation has the email nobody@example.com");
    let members = w.lineup.members(w.tenant).await.unwrap();
    let v = members.iter().find(|m| m.user_id == viewer).unwrap();
    assert_eq!(v.role.as_str(), "viewer", "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_owner_grants_or_revokes_the_owner_role() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let admin = w.signed_in("admin@example.com").await;
    admin.get("/members").await.assert_ok();
    let (viewer, olivia) = (
        w.user_id("viewer@example.com").await,
        w.user_id(w.olivia.email.as_str()).await,
    );
    let me = w.user_id("admin@example.com").await;
    for (path, fields) in [
        (format!("/members/{viewer}"), vec![("role", "owner")]),
        (format!("/members/{me}"), vec![("role", "owner")]),
        (format!("/members/{olivia}"), vec![("role", "viewer")]),
        (format!("/members/{olivia}/remove"), vec![]),
    ] {
        let answer = admin.post(&path, &fields).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        answer.assert_contains("only an owner can grant or revoke the owner role");
    }
    let owners: Vec<_> = w
        .lineup
        .members(w.tenant)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role.as_str() == "owner")
        .map(|m| m.user_id)
        .collect();
    assert_eq!(owners, vec![olivia]);

    // The owner may make the admin an owner.
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/members").await.assert_ok();
    let answer = owner
        .post(&format!("/members/{me}"), &[("role", "owner")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
}

both_backends!(
    the_last_owner_cannot_be_demoted_or_removed,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let owner = w.signed_in(w.olivia.email.as_str()).await;
        owner.get("/members").await.assert_ok();
        let olivia = w.user_id(w.olivia.email.as_str()).await;
        let answer = owner
            .post(&format!("/members/{olivia}"), &[("role", "admin")])
            .await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        answer.assert_contains("Olivia Tester is the last owner and cannot be demoted");
        let answer = owner.post(&format!("/members/{olivia}/remove"), &[]).await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        answer.assert_contains("is the last owner and cannot be removed");
        // With a second owner, the first may step down.
        let admin = w.user_id("admin@example.com").await;
        owner
            .post(&format!("/members/{admin}"), &[("role", "owner")])
            .await;
        let answer = owner
            .post(&format!("/members/{olivia}"), &[("role", "admin")])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }
);

both_backends!(
    removing_access_ends_their_sessions_at_once,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let viewer = w.signed_in("viewer@example.com").await;
        viewer.get("/").await.assert_ok();
        let admin = w.signed_in("admin@example.com").await;
        admin.get("/members").await.assert_ok();
        let id = w.user_id("viewer@example.com").await;
        let answer = admin.post(&format!("/members/{id}/remove"), &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let page = admin.get("/members").await;
        page.assert_contains("Access removed");
        assert!(!page.body.contains("viewer@example.com"));
        let answer = viewer.get("/").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "the session is gone");
        let again = w.browser(&format!("acme.{BASE_DOMAIN}"));
        again.get("/login").await.assert_ok();
        let refused = again
            .post(
                "/login",
                &[("email", "viewer@example.com"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "no membership, no sign-in"
        );
        let actions = w.audit_in(w.tenant, "user", &id.to_string()).await;
        assert!(
            actions.contains(&"membership.removed".to_owned()),
            "{actions:?}"
        );
    }
);

both_backends!(expired_sessions_are_deleted, |store| async move {
    let w = PortalWorld::new(store).await;
    let viewer = w.signed_in("viewer@example.com").await;
    w.signed_in("admin@example.com").await;
    let globex = w.browser(&format!("globex.{BASE_DOMAIN}"));
    globex.sign_in("owner@globex.example", PASSWORD).await;
    let signed_in = w.stored_sessions().await;
    assert!(signed_in >= 3, "{signed_in}");

    // Expired sessions sign nobody in, but their rows stay until the worker's sweep.
    w.expire_sessions().await;
    assert_eq!(viewer.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(w.stored_sessions().await, signed_in);
    let now = lineup_core::store::now();
    let deleted = w.lineup.delete_expired_sessions(now).await.unwrap();
    assert_eq!(deleted, signed_in as u64, "every tenant's");
    assert_eq!(w.stored_sessions().await, 0);

    // Signing in clears the tenant's expired sessions too, and leaves other tenants' alone.
    w.signed_in("admin@example.com").await;
    globex.sign_in("owner@globex.example", PASSWORD).await;
    w.expire_sessions().await;
    w.signed_in("viewer@example.com").await;
    assert_eq!(
        w.stored_sessions().await,
        2,
        "globex's expired one and the new one"
    );
    assert_eq!(
        w.lineup
            .delete_expired_sessions(lineup_core::store::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        w.stored_sessions().await,
        1,
        "the live session survives the sweep"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_member_cannot_be_changed_or_removed() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(w.olivia.email.as_str()).await;
    owner.get("/members").await.assert_ok();
    let globex_owner = w.user_id("owner@globex.example").await;
    for (path, fields) in [
        (format!("/members/{globex_owner}"), vec![("role", "viewer")]),
        (format!("/members/{globex_owner}/remove"), vec![]),
        ("/members/not-an-id".to_owned(), vec![("role", "viewer")]),
    ] {
        let answer = owner.post(&path, &fields).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!answer.body.contains("Globex"));
    }
    let globex = w.lineup.members(w.globex).await.unwrap();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].role.as_str(), "owner");
}
