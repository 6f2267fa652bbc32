//! Settings → Routing over real sockets: the rule table listed, a rule added and one deleted
//! through core's validated, audited table, and a mistake shown on the page with nothing
//! changed.

use lineup_core::provider::routing::RoutePlanKind;
use lineup_testkit::both_backends;
use lineup_testkit::portal::PortalWorld;
use reqwest::StatusCode;

both_backends!(
    admins_add_and_delete_routing_rules_in_the_portal,
    |store| async move {
        let w = PortalWorld::new(store).await;
        let (airalo, _) = w.connect_own_account_and_airalo().await;
        let airalo_id = airalo.id.to_string();
        let admin = w.signed_in("admin@example.com").await;
        admin
            .get("/settings/routing")
            .await
            .assert_ok()
            .assert_contains("No rules yet")
            .assert_contains("Airalo");

        // Travel packages for Japan go to Airalo, pinned there.
        let added = admin
            .post(
                "/settings/routing",
                &[
                    ("country", "jp"),
                    ("plan_kind", "travel"),
                    ("team_id", ""),
                    ("provider_connection_id", &airalo_id),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        admin
            .get("/settings/routing")
            .await
            .assert_contains("Rule added")
            .assert_contains("<td>JP</td>")
            .assert_contains("<td>travel</td>")
            .assert_contains("pinned");
        let rules = w.lineup.provider_routes(w.tenant).await.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].country.as_deref(), Some("JP"));
        assert_eq!(rules[0].plan_kind, Some(RoutePlanKind::Travel));
        assert_eq!(rules[0].provider_connection_id, airalo.id);
        assert!(!rules[0].allow_failover);

        // Mistakes are shown on the page, and the table stays as it was.
        let bad_country = admin
            .post(
                "/settings/routing",
                &[("country", "Japan"), ("provider_connection_id", &airalo_id)],
            )
            .await;
        assert_eq!(bad_country.status, StatusCode::UNPROCESSABLE_ENTITY);
        bad_country.assert_contains("not a two-letter country code");
        let shadowed = admin
            .post(
                "/settings/routing",
                &[
                    ("country", "JP"),
                    ("plan_kind", "travel"),
                    ("provider_connection_id", &airalo_id),
                    ("allow_failover", "on"),
                ],
            )
            .await;
        assert_eq!(shadowed.status, StatusCode::UNPROCESSABLE_ENTITY);
        shadowed.assert_contains("can never match");
        assert_eq!(w.lineup.provider_routes(w.tenant).await.unwrap(), rules);

        // Deleting the rule empties the table again; each change is audited.
        let deleted = admin
            .post(&format!("/settings/routing/{}/delete", rules[0].id), &[])
            .await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
        admin
            .get("/settings/routing")
            .await
            .assert_contains("Rule deleted")
            .assert_contains("No rules yet");
        assert!(w.lineup.provider_routes(w.tenant).await.unwrap().is_empty());
        let actions = w.audit_in(w.tenant, "tenant", &w.tenant.to_string()).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "provider.routes_changed")
                .count(),
            2,
            "{actions:?}"
        );
        let unknown = admin
            .post(&format!("/settings/routing/{}/delete", rules[0].id), &[])
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    }
);
