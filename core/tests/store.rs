//! Store behaviour, run on SQLite and on a throwaway PostgreSQL by the same test bodies.

use lineup_core::audit::{Actor, AuditEvent};
use lineup_core::email::Email;
use lineup_core::employee::{Employee, EmployeeStatus};
use lineup_core::ids::{EmployeeId, LineId, PlanId, TenantId};
use lineup_core::line::{Line, LineState};
use lineup_core::money::{Bytes, Currency, Money};
use lineup_core::plan::Plan;
use lineup_core::provider::Validity;
use lineup_core::store::operations::{OperationKind, OperationState, ProviderOperation};
use lineup_core::store::{self, Store, now};
use lineup_core::tenant::{Slug, Tenant, TenantSettings};
use lineup_testkit::both_backends;
use serde_json::json;

struct Seeded {
    tenant: TenantId,
    employee: EmployeeId,
    line: LineId,
}

async fn seed_tenant(store: &Store, slug: &str) -> Seeded {
    let tenant = Tenant {
        id: TenantId::new(),
        slug: Slug::parse(slug).unwrap(),
        name: slug.to_uppercase(),
        currency: Currency::USD,
        settings: TenantSettings::default(),
        created_at: now(),
    };
    let mut tx = store.system().await.unwrap();
    store::tenants::insert(&mut tx, &tenant).await.unwrap();
    tx.commit().await.unwrap();

    let t = tenant.id;
    let mut tx = store.tenant(t).await.unwrap();
    let employee = Employee {
        id: EmployeeId::new(),
        tenant_id: t,
        email: Email::parse(&format!("ada@{slug}.example")).unwrap(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        team_id: None,
        cost_centre_id: None,
        manager_id: None,
        status: EmployeeStatus::Active,
        created_at: now(),
        updated_at: now(),
    };
    store::employees::insert(&mut tx, t, &employee)
        .await
        .unwrap();
    let plan = Plan {
        id: PlanId::new(),
        tenant_id: t,
        provider: "1global".into(),
        offering_id: "prdoff_US5GB".into(),
        template_id: Some("otpl_US5GB".into()),
        name: "US 5GB".into(),
        data: Some(Bytes::gb(5)),
        validity: Validity::Monthly,
        coverage: vec!["US".into()],
        price: Some(Money::new(2000, Currency::USD)),
        overage_per_gb: None,
        roaming_per_gb_minor: Default::default(),
        throttle_after_cap_kbps: None,
        active: true,
        created_at: now(),
    };
    let plan_id = store::plans::upsert(&mut tx, t, &plan).await.unwrap();
    let line = Line {
        id: LineId::new(),
        tenant_id: t,
        employee_id: employee.id,
        plan_id,
        state: LineState::Requested,
        provider: "1global".into(),
        provider_subscription_id: None,
        iccid: None,
        activation_code: None,
        failure_reason: None,
        issue_key: format!("issue-{slug}"),
        created_at: now(),
        updated_at: now(),
    };
    assert!(
        store::lines::insert_if_new(&mut tx, t, &line)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    Seeded {
        tenant: t,
        employee: employee.id,
        line: line.id,
    }
}

both_backends!(
    tenant_a_cannot_read_or_change_tenant_b,
    |store| async move {
        let a = seed_tenant(&store, "acme").await;
        let b = seed_tenant(&store, "globex").await;

        let mut tx = store.tenant(a.tenant).await.unwrap();
        // Guessing B's ids while scoped to A finds nothing.
        assert!(
            store::employees::get(&mut tx, a.tenant, b.employee)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store::lines::get(&mut tx, a.tenant, b.line)
                .await
                .unwrap()
                .is_none()
        );
        let lines = store::lines::list(&mut tx, a.tenant).await.unwrap();
        assert_eq!(lines.iter().map(|l| l.id).collect::<Vec<_>>(), vec![a.line]);
        let employees = store::employees::list(&mut tx, a.tenant).await.unwrap();
        assert_eq!(employees.len(), 1);
        assert_eq!(employees[0].id, a.employee);

        // Writing B's rows while scoped to A changes nothing.
        assert!(
            !store::employees::update_name(&mut tx, a.tenant, b.employee, "Eve", "Hacker")
                .await
                .unwrap()
        );
        let mut hijacked = store::lines::list(&mut tx, a.tenant)
            .await
            .unwrap()
            .remove(0);
        hijacked.id = b.line;
        hijacked.state = LineState::Terminated;
        assert!(
            !store::lines::update_if_state(&mut tx, a.tenant, &hijacked, LineState::Requested)
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();

        let mut tx = store.tenant(b.tenant).await.unwrap();
        let untouched = store::lines::get(&mut tx, b.tenant, b.line)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(untouched.state, LineState::Requested);
        let employee = store::employees::get(&mut tx, b.tenant, b.employee)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(employee.given_name, "Ada");
    }
);

both_backends!(line_state_changes_are_compare_and_set, |store| async move {
    let a = seed_tenant(&store, "acme").await;
    let mut tx = store.tenant(a.tenant).await.unwrap();
    let mut line = store::lines::get(&mut tx, a.tenant, a.line)
        .await
        .unwrap()
        .unwrap();
    line.state = LineState::Provisioning;
    assert!(
        store::lines::update_if_state(&mut tx, a.tenant, &line, LineState::Requested)
            .await
            .unwrap()
    );
    // A second writer that still believes the line is `requested` loses.
    assert!(
        !store::lines::update_if_state(&mut tx, a.tenant, &line, LineState::Requested)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
});

both_backends!(
    a_line_has_at_most_one_pending_operation,
    |store| async move {
        let a = seed_tenant(&store, "acme").await;
        let op = |kind, key: &str| ProviderOperation {
            id: lineup_core::ids::OperationId::new(),
            tenant_id: a.tenant,
            line_id: a.line,
            kind,
            idempotency_key: key.to_owned(),
            command_key: None,
            payload: serde_json::json!({}),
            provider_order_id: None,
            state: OperationState::Pending,
            error: None,
            created_at: now(),
            updated_at: now(),
        };
        let mut tx = store.tenant(a.tenant).await.unwrap();
        let first = op(OperationKind::Suspend, "k1");
        store::operations::insert(&mut tx, a.tenant, &first)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.tenant(a.tenant).await.unwrap();
        let err = store::operations::insert(&mut tx, a.tenant, &op(OperationKind::Terminate, "k2"))
            .await
            .unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
        drop(tx);

        let mut tx = store.tenant(a.tenant).await.unwrap();
        assert!(
            store::operations::settle(&mut tx, a.tenant, first.id, OperationState::Succeeded, None)
                .await
                .unwrap()
        );
        assert!(
            !store::operations::settle(
                &mut tx,
                a.tenant,
                first.id,
                OperationState::Failed,
                Some("late")
            )
            .await
            .unwrap()
        );
        store::operations::insert(&mut tx, a.tenant, &op(OperationKind::Terminate, "k2"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
);

both_backends!(issue_keys_are_unique_per_tenant, |store| async move {
    let a = seed_tenant(&store, "acme").await;
    let mut tx = store.tenant(a.tenant).await.unwrap();
    let mut again = store::lines::get(&mut tx, a.tenant, a.line)
        .await
        .unwrap()
        .unwrap();
    again.id = LineId::new();
    assert!(
        !store::lines::insert_if_new(&mut tx, a.tenant, &again)
            .await
            .unwrap()
    );
    assert_eq!(
        store::lines::list(&mut tx, a.tenant).await.unwrap().len(),
        1
    );
    tx.commit().await.unwrap();
});

both_backends!(
    migration_0013_removes_activation_codes_from_old_audit_payloads,
    |store| async move {
        let a = seed_tenant(&store, "acme").await;
        let line =
            json!({ "id": a.line, "state": "ready", "activation_code": "1$rsp.sim.local$K2-OLD" });
        let mut tx = store.tenant(a.tenant).await.unwrap();
        for (action, before, after) in [
            (
                "line.provisioned",
                Some(json!({ "id": a.line, "state": "provisioning" })),
                Some(line.clone()),
            ),
            ("line.suspended", Some(line.clone()), Some(line.clone())),
            (
                "line.requested",
                None,
                Some(json!({ "id": a.line, "state": "requested" })),
            ),
        ] {
            let event = AuditEvent::new(
                a.tenant,
                &Actor::System,
                action,
                ("line", a.line.to_string()),
                before,
                after,
            );
            store::audit::insert(&mut tx, a.tenant, &event)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();

        // Written as an upgraded database would hold them; then the migration's own SQL.
        let mut tx = store.system().await.unwrap();
        match &mut tx {
            store::Tx::Sqlite(t) => {
                let sql =
                    include_str!("../../migrations/sqlite/0013_audit_without_activation_codes.sql");
                sqlx::raw_sql(sql).execute(&mut **t).await.unwrap();
            }
            store::Tx::Postgres(t) => {
                let sql = include_str!(
                    "../../migrations/postgres/0013_audit_without_activation_codes.sql"
                );
                sqlx::raw_sql(sql).execute(&mut **t).await.unwrap();
            }
        }
        tx.commit().await.unwrap();

        let mut tx = store.tenant(a.tenant).await.unwrap();
        let events = store::audit::list_for_subject(&mut tx, a.tenant, "line", &a.line.to_string())
            .await
            .unwrap();
        assert_eq!(events.len(), 3);
        for event in events {
            let payloads = format!("{:?} {:?}", event.before, event.after);
            assert!(!payloads.contains("K2-OLD"), "{}: {payloads}", event.action);
            // Everything else in the payloads is kept.
            let after = event.after.unwrap();
            assert!(after["state"].is_string(), "{after}");
        }
    }
);

/// The second wall: on PostgreSQL even a query that forgets `WHERE tenant_id` sees only the
/// scoped tenant's rows, and nothing at all without a scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_other_tenants_from_unscoped_queries() {
    let store = lineup_testkit::postgres_store().await;
    assert!(
        !store.bypasses_row_security().await.unwrap(),
        "tests must run as an ordinary role"
    );
    let a = seed_tenant(&store, "acme").await;
    seed_tenant(&store, "globex").await;

    let mut tx = store.tenant(a.tenant).await.unwrap();
    assert_eq!(store::employees::count_visible(&mut tx).await.unwrap(), 1);
    drop(tx);
    let mut tx = store.system().await.unwrap();
    assert_eq!(store::employees::count_visible(&mut tx).await.unwrap(), 2);
    drop(tx);

    let Store::Postgres(pool) = &*store else {
        unreachable!()
    };
    let unscoped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM employees")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(unscoped, 0);
    // Inserting a row for another tenant from A's scope is refused by the policy.
    let mut tx = store.tenant(a.tenant).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO teams (id, tenant_id, name, created_at) VALUES ($1, $2, 'x', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(TenantId::new())
    .execute(match &mut tx {
        store::Tx::Postgres(t) => &mut **t,
        _ => unreachable!(),
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// Both backends' migrations must describe the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_schemas_match() {
    let sqlite = lineup_testkit::sqlite_store().await;
    let postgres = lineup_testkit::postgres_store().await;
    let Store::Sqlite(lite) = &*sqlite else {
        unreachable!()
    };
    let Store::Postgres(pg) = &*postgres else {
        unreachable!()
    };
    let mut lite_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(lite)
    .await
    .unwrap();
    let mut pg_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    lite_columns.sort();
    pg_columns.sort();
    assert!(
        lite_columns.len() > 100,
        "expected the whole schema, got {}",
        lite_columns.len()
    );
    assert_eq!(lite_columns, pg_columns);
}

#[tokio::test]
async fn a_bad_database_url_names_the_setting() {
    let err = Store::connect("mysql://nope").await.unwrap_err();
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    let err = Store::connect("postgres://user:secret@localhost:notaport/db")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("DATABASE_URL") && !text.contains("secret"),
        "{text}"
    );
}
