//! Policy storage on both backends: caps per scope (one per scope, the tenant's too),
//! removal, roaming presets with ISO country codes, and the reach a change would have.

use lineup_core::CoreError;
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, Reach, RoamingRule};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World};

fn cap(scope: CapScope, amount_minor: i64) -> BudgetCap {
    BudgetCap {
        scope,
        amount_minor,
        thresholds: vec![100, 50, 80, 50],
        action: CapAction::Alert,
    }
}

both_backends!(
    caps_are_one_per_scope_and_can_be_removed,
    |store| async move {
        let w = World::new(store).await;
        for amount in [1000, 2000] {
            w.lineup
                .set_budget_cap(w.tenant, &ADMIN, cap(CapScope::Tenant, amount))
                .await
                .unwrap();
            w.lineup
                .set_budget_cap(
                    w.tenant,
                    &ADMIN,
                    cap(CapScope::Employee(w.ada.id), amount / 2),
                )
                .await
                .unwrap();
        }
        let caps = w.lineup.budget_caps(w.tenant).await.unwrap();
        assert_eq!(caps.len(), 2, "{caps:?}");
        let org = caps.iter().find(|c| c.scope == CapScope::Tenant).unwrap();
        assert_eq!(org.amount_minor, 2000);
        assert_eq!(org.thresholds, [50, 80, 100], "sorted, without repeats");

        w.ready_line(&w.ada, "ada").await;
        w.ready_line(&w.alan, "alan").await;
        let ada_only = w
            .lineup
            .cap_reach(w.tenant, CapScope::Employee(w.ada.id))
            .await
            .unwrap();
        assert_eq!(
            ada_only,
            Reach {
                employees: 1,
                employees_with_lines: 1,
                live_lines: 1
            }
        );
        let org = w
            .lineup
            .cap_reach(w.tenant, CapScope::Tenant)
            .await
            .unwrap();
        assert_eq!(
            (org.employees, org.live_lines),
            (5, 2),
            "everyone: the organisation's cap adds up every line, Ada's too"
        );

        w.lineup
            .delete_budget_cap(w.tenant, &ADMIN, CapScope::Tenant)
            .await
            .unwrap();
        let gone = w
            .lineup
            .delete_budget_cap(w.tenant, &ADMIN, CapScope::Tenant)
            .await
            .unwrap_err();
        assert!(matches!(gone, CoreError::NotFound { .. }), "{gone}");
        assert_eq!(w.lineup.budget_caps(w.tenant).await.unwrap().len(), 1);
        assert_eq!(
            w.audit_actions("budget_cap", "tenant:").await,
            [
                "policy.budget_cap_set",
                "policy.budget_cap_set",
                "policy.budget_cap_deleted"
            ]
        );
    }
);

both_backends!(
    roaming_presets_take_iso_codes_and_are_listed_and_removed,
    |store| async move {
        let w = World::new(store).await;
        let bad = w
            .lineup
            .set_roaming_rule(w.tenant, &ADMIN, "XX", RoamingRule::Blocked)
            .await
            .unwrap_err();
        assert!(bad.to_string().contains("ISO 3166"), "{bad}");
        for (country, rule) in [
            ("jp", RoamingRule::Allowed),
            ("FR", RoamingRule::Blocked),
            ("JP", RoamingRule::NeedsApproval),
        ] {
            w.lineup
                .set_roaming_rule(w.tenant, &ADMIN, country, rule)
                .await
                .unwrap();
        }
        assert_eq!(
            w.lineup.roaming_rules(w.tenant).await.unwrap(),
            [
                ("FR".to_owned(), RoamingRule::Blocked),
                ("JP".to_owned(), RoamingRule::NeedsApproval)
            ]
        );
        w.lineup
            .delete_roaming_rule(w.tenant, &ADMIN, "fr")
            .await
            .unwrap();
        assert_eq!(w.lineup.roaming_rules(w.tenant).await.unwrap().len(), 1);
        assert_eq!(
            w.audit_actions("roaming_preset", "FR").await,
            ["policy.roaming_rule_set", "policy.roaming_rule_deleted"]
        );
    }
);

both_backends!(
    the_starter_policy_caps_each_active_employee_once_and_counts_as_a_policy,
    |store| async move {
        let w = World::new(store).await;
        assert!(!w.lineup.has_policy(w.tenant).await.unwrap());
        let active = w
            .lineup
            .employees(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.status == lineup_core::organisation::employee::EmployeeStatus::Active)
            .count();
        let starter = w
            .lineup
            .apply_starter_policy(w.tenant, &ADMIN)
            .await
            .unwrap();
        assert_eq!((starter.caps, starter.amount_minor), (active, 5_000));
        assert!(starter.effect.is_nothing(), "nobody has spent anything");
        let caps = w.lineup.budget_caps(w.tenant).await.unwrap();
        assert_eq!(caps.len(), active);
        assert!(caps.iter().all(|c| matches!(c.scope, CapScope::Employee(_))
            && c.amount_minor == 5_000
            && c.thresholds == [80]
            && c.action == CapAction::Throttle));
        assert!(w.lineup.has_policy(w.tenant).await.unwrap());
        assert_eq!(
            w.audit_actions("policy", "starter").await,
            ["policy.starter_policy_applied"]
        );
        let ada_cap = format!("employee:{}", w.ada.id);
        assert_eq!(
            w.audit_actions("budget_cap", &ada_cap).await,
            ["policy.budget_cap_set"]
        );

        // Again: refused with the reason, nothing new.
        let again = w.lineup.apply_starter_policy(w.tenant, &ADMIN).await;
        assert!(
            matches!(&again, Err(CoreError::Conflict(why)) if why.contains("already has budget caps")),
            "{again:?}"
        );
        assert_eq!(w.lineup.budget_caps(w.tenant).await.unwrap().len(), active);
        assert_eq!(w.audit_actions("policy", "starter").await.len(), 1);

        // An organisation with nobody in it yet is told to import its people first; a
        // roaming preset alone is a policy too.
        let empty = lineup_testkit::world::add_tenant(&w.lineup, "empty-co").await;
        let refused = w.lineup.apply_starter_policy(empty, &ADMIN).await;
        assert!(
            matches!(
                &refused,
                Err(CoreError::Invalid {
                    field: "employees",
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(!w.lineup.has_policy(empty).await.unwrap());
        w.lineup
            .set_roaming_rule(empty, &ADMIN, "FR", RoamingRule::NeedsApproval)
            .await
            .unwrap();
        assert!(w.lineup.has_policy(empty).await.unwrap());
    }
);
