//! Store behaviour, run on SQLite and on a throwaway PostgreSQL by the same test bodies.

use lineup_core::audit::{Actor, AuditEvent};
use lineup_core::email_address::Email;
use lineup_core::ids::{CostCentreId, EmployeeId, LineId, PlanId, TeamId, TenantId};
use lineup_core::lines::line::LineState;
use lineup_core::money::{Bytes, Currency};
use lineup_core::organisation::employee::{Employee, EmployeeStatus};
use lineup_core::organisation::org_unit::{CostCentre, Team};
use lineup_core::organisation::tenant::{Slug, Tenant, TenantSettings};
use lineup_core::provider::Validity;
use lineup_core::store::operations::{OperationKind, OperationState, ProviderOperation};
use lineup_core::store::{self, Store, now};
use lineup_testkit::both_backends;
use serde_json::json;
use uuid::Uuid;

struct Seeded {
    tenant: TenantId,
    employee: EmployeeId,
    plan: PlanId,
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
    // Plain SQL with the columns every schema since 0001 has: the migration tests seed
    // databases from before the later migrations add columns the store now writes.
    let plan_id = PlanId::new();
    let validity = serde_json::to_string(&Validity::Monthly).unwrap();
    let plan = format!(
        "INSERT INTO plans (id, tenant_id, provider, offering_id, template_id, name, data_bytes,
             validity, coverage, price_minor, currency, active, created_at)
         VALUES ($1, $2, '1global', 'prdoff_US5GB', 'otpl_US5GB', 'US 5GB', {}, '{validity}',
             '[\"US\"]', 2000, 'USD', TRUE, {AT})",
        Bytes::gb(5).0
    );
    assert_eq!(execute(&mut tx, &plan, &[plan_id.0, t.0]).await.unwrap(), 1);
    let line_id = LineId::new();
    let line = format!(
        "INSERT INTO lines (id, tenant_id, employee_id, plan_id, state, provider, issue_key,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'requested', '1global', 'issue-{slug}', {AT}, {AT})"
    );
    let ids = [line_id.0, t.0, employee.id.0, plan_id.0];
    assert_eq!(execute(&mut tx, &line, &ids).await.unwrap(), 1);
    tx.commit().await.unwrap();
    Seeded {
        tenant: t,
        employee: employee.id,
        plan: plan_id,
        line: line_id,
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
                let sql = include_str!(
                    "../../../migrations/sqlite/0013_audit_without_activation_codes.sql"
                );
                sqlx::raw_sql(sql).execute(&mut **t).await.unwrap();
            }
            store::Tx::Postgres(t) => {
                let sql = include_str!(
                    "../../../migrations/postgres/0013_audit_without_activation_codes.sql"
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

/// Every table holding tenants' rows has row-level security forced and the one
/// `tenant_isolation` policy that `lineup_tenant_isolation` writes, word for word the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_owned_table_has_the_one_tenant_isolation_policy() {
    let store = lineup_testkit::postgres_store().await;
    let Store::Postgres(pool) = &*store else {
        unreachable!()
    };
    // Name, row security enabled, forced, the policy's USING and WITH CHECK.
    type TableSecurity = (String, bool, bool, Option<String>, Option<String>);
    let tables: Vec<TableSecurity> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check
         FROM pg_class c
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             AND NOT a.attisdropped
         LEFT JOIN pg_policies p ON p.schemaname = current_schema()
             AND p.tablename = c.relname AND p.policyname = 'tenant_isolation'
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
         ORDER BY c.relname",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:#?}");
    let (_, _, _, qual, check) = &tables[0];
    let unprotected: Vec<_> = tables
        .iter()
        .filter(|(_, enabled, forced, q, c)| !enabled || !forced || q != qual || c != check)
        .collect();
    assert!(
        unprotected.is_empty(),
        "{unprotected:#?} differ from {qual:?}"
    );
    assert!(
        qual.as_deref().is_some_and(|q| q.contains("app.tenant_id")),
        "{qual:?}"
    );

    // The policies are the function's: a new table given it gets exactly the same one.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("CREATE TABLE rls_probe (tenant_id uuid NOT NULL)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT lineup_tenant_isolation('rls_probe')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let probe: (bool, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT c.relforcerowsecurity, p.qual, p.with_check FROM pg_class c
         JOIN pg_policies p ON p.tablename = c.relname AND p.policyname = 'tenant_isolation'
         WHERE c.relname = 'rls_probe' AND p.schemaname = current_schema()",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(probe, (true, qual.clone(), check.clone()));
}

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

/// A team and a cost centre of `tenant`'s own.
async fn seed_team_and_cost_centre(store: &Store, tenant: TenantId) -> (TeamId, CostCentreId) {
    let team = Team {
        id: TeamId::new(),
        tenant_id: tenant,
        name: "Platform".into(),
        created_at: now(),
    };
    let centre = CostCentre {
        id: CostCentreId::new(),
        tenant_id: tenant,
        code: "CC-1".into(),
        name: "Operations".into(),
        created_at: now(),
    };
    let mut tx = store.tenant(tenant).await.unwrap();
    store::org::insert_team(&mut tx, tenant, &team)
        .await
        .unwrap();
    store::org::insert_cost_centre(&mut tx, tenant, &centre)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (team.id, centre.id)
}

fn assert_foreign_key_violation<T: std::fmt::Debug>(result: store::StoreResult<T>, what: &str) {
    match result {
        Err(e) if e.is_foreign_key_violation() => {}
        other => panic!("{what}: expected the database to refuse it, got {other:?}"),
    }
}

// The store functions write whatever ids they are given: the composite keys are the wall.
both_backends!(
    another_tenants_team_cost_centre_or_manager_is_refused_by_the_database,
    |store| async move {
        let acme = seed_tenant(&store, "acme").await;
        let globex = seed_tenant(&store, "globex").await;
        let (acme_team, acme_centre) = seed_team_and_cost_centre(&store, acme.tenant).await;
        let (globex_team, globex_centre) = seed_team_and_cost_centre(&store, globex.tenant).await;
        let t = acme.tenant;
        let mut tx = store.tenant(t).await.unwrap();
        let ada = store::employees::get(&mut tx, t, acme.employee)
            .await
            .unwrap()
            .unwrap();
        drop(tx);

        let newcomer = Employee {
            id: EmployeeId::new(),
            email: Email::parse("new@acme.example").unwrap(),
            ..ada.clone()
        };
        let foreign = [
            (
                "team",
                Employee {
                    team_id: Some(globex_team),
                    ..newcomer.clone()
                },
            ),
            (
                "cost centre",
                Employee {
                    cost_centre_id: Some(globex_centre),
                    ..newcomer.clone()
                },
            ),
            (
                "manager",
                Employee {
                    manager_id: Some(globex.employee),
                    ..newcomer.clone()
                },
            ),
        ];
        for (what, employee) in &foreign {
            let mut tx = store.tenant(t).await.unwrap();
            assert_foreign_key_violation(
                store::employees::insert(&mut tx, t, employee).await,
                &format!("insert with globex's {what}"),
            );
            drop(tx);
            let mut tx = store.tenant(t).await.unwrap();
            let edited = Employee {
                id: ada.id,
                email: ada.email.clone(),
                ..employee.clone()
            };
            assert_foreign_key_violation(
                store::employees::update(&mut tx, t, &edited).await,
                &format!("update to globex's {what}"),
            );
            drop(tx);
            let mut tx = store.tenant(t).await.unwrap();
            assert_foreign_key_violation(
                store::employees::upsert_many(&mut tx, t, std::slice::from_ref(employee)).await,
                &format!("import with globex's {what}"),
            );
        }

        // The same writes with acme's own team, cost centre and manager go through.
        let mut tx = store.tenant(t).await.unwrap();
        let own = Employee {
            team_id: Some(acme_team),
            cost_centre_id: Some(acme_centre),
            manager_id: Some(ada.id),
            ..newcomer
        };
        store::employees::insert(&mut tx, t, &own).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.tenant(t).await.unwrap();
        let employees = store::employees::list(&mut tx, t).await.unwrap();
        assert_eq!(employees.len(), 2);
        assert_eq!(
            store::employees::get(&mut tx, t, ada.id).await.unwrap(),
            Some(ada),
            "refused writes changed nothing"
        );
    }
);

/// One of a tenant's rows for every tenant-owned table that references another.
struct Rows {
    tenant: Uuid,
    team: Uuid,
    cost_centre: Uuid,
    employee: Uuid,
    plan: Uuid,
    line: Uuid,
    request: Uuid,
    alert: Uuid,
    /// Inserted by `seed_later_referenced_rows`: the table's shape changes in 0025.
    provider_connection: Uuid,
}

const AT: &str = "'2026-01-05T10:00:00Z'";

async fn execute(tx: &mut store::Tx, sql: &str, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    match tx {
        store::Tx::Sqlite(tx) => {
            let mut query = sqlx::query(sql);
            for id in ids {
                query = query.bind(*id);
            }
            Ok(query.execute(&mut **tx).await?.rows_affected())
        }
        store::Tx::Postgres(tx) => {
            let mut query = sqlx::query(sql);
            for id in ids {
                query = query.bind(*id);
            }
            Ok(query.execute(&mut **tx).await?.rows_affected())
        }
    }
}

async fn count(tx: &mut store::Tx, sql: &str, ids: &[Uuid]) -> i64 {
    match tx {
        store::Tx::Sqlite(tx) => {
            let mut query = sqlx::query_scalar(sql);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_one(&mut **tx).await.unwrap()
        }
        store::Tx::Postgres(tx) => {
            let mut query = sqlx::query_scalar(sql);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_one(&mut **tx).await.unwrap()
        }
    }
}

/// A tenant with one row of every table another tenant-owned row can reference.
async fn seed_referenced_rows(store: &Store, slug: &str) -> Rows {
    let seeded = seed_tenant(store, slug).await;
    let (team, centre) = seed_team_and_cost_centre(store, seeded.tenant).await;
    let r = Rows {
        tenant: seeded.tenant.0,
        team: team.0,
        cost_centre: centre.0,
        employee: seeded.employee.0,
        plan: seeded.plan.0,
        line: seeded.line.0,
        request: Uuid::now_v7(),
        alert: Uuid::now_v7(),
        provider_connection: Uuid::now_v7(),
    };
    let statements: Vec<(String, Vec<Uuid>)> = vec![
        (
            format!(
                "INSERT INTO requests (id, tenant_id, kind, employee_id, line_id, details, reason,
                     state, approver_id, dedupe_key, created_at, expires_at)
                 VALUES ($1, $2, 'cap_raise', $3, $4, '{{}}', 'more', 'pending', $3, 'r', {AT}, {AT})"
            ),
            vec![r.request, r.tenant, r.employee, r.line],
        ),
        (
            format!(
                "INSERT INTO alerts (id, tenant_id, kind, line_id, scope, period, dedupe_key,
                     message, state, created_at, employee_id)
                 VALUES ($1, $2, 'budget', $3, 'tenant', '2026-01', 'a', 'over', 'open', {AT}, $4)"
            ),
            vec![r.alert, r.tenant, r.line, r.employee],
        ),
    ];
    let mut tx = store.tenant(seeded.tenant).await.unwrap();
    for (sql, ids) in &statements {
        execute(&mut tx, sql, ids)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    r
}

/// A tenant with a row in every table that references another tenant-owned row.
async fn seed_every_reference(store: &Store, slug: &str) -> Rows {
    let r = seed_referenced_rows(store, slug).await;
    let new = Uuid::now_v7;
    let statements: Vec<(String, Vec<Uuid>)> = vec![
        (
            format!(
                "INSERT INTO chat_identities (tenant_id, employee_id, platform, external_id,
                     created_at)
                 VALUES ($1, $2, 'slack', 'U1', {AT})"
            ),
            vec![r.tenant, r.employee],
        ),
        (
            format!(
                "INSERT INTO provider_operations (id, tenant_id, line_id, kind, idempotency_key,
                     status, created_at, updated_at)
                 VALUES ($1, $2, $3, 'suspend', 'op-{slug}', 'succeeded', {AT}, {AT})"
            ),
            vec![new(), r.tenant, r.line],
        ),
        (
            format!(
                "INSERT INTO roaming_grants (id, tenant_id, line_id, country, starts_on, ends_on,
                     request_id, state, created_at)
                 VALUES ($1, $2, $3, 'FR', '2026-01-01', '2026-01-08', $4, 'scheduled', {AT})"
            ),
            vec![new(), r.tenant, r.line, r.request],
        ),
        (
            format!(
                "INSERT INTO usage_records (tenant_id, dedupe_key, line_id, started_at, ended_at,
                     data_bytes, sms, voice_seconds, roaming, cost_minor, observed_at)
                 VALUES ($1, 'u', $2, {AT}, {AT}, 1, 0, 0, FALSE, 0, {AT})"
            ),
            vec![r.tenant, r.line],
        ),
        (
            "INSERT INTO usage_daily (tenant_id, line_id, day, data_bytes, roaming_bytes, sms,
                 voice_seconds, cost_minor)
             VALUES ($1, $2, '2026-01-05', 1, 0, 0, 0, 0)"
                .to_owned(),
            vec![r.tenant, r.line],
        ),
        (
            "INSERT INTO usage_monthly (tenant_id, line_id, month, data_bytes, roaming_bytes,
                 cost_minor)
             VALUES ($1, $2, '2026-01-01', 1, 0, 0)"
                .to_owned(),
            vec![r.tenant, r.line],
        ),
        (
            format!(
                "INSERT INTO cap_raises (id, tenant_id, employee_id, period, amount_minor,
                     request_id, created_at)
                 VALUES ($1, $2, $3, '2026-01', 100, $4, {AT})"
            ),
            vec![new(), r.tenant, r.employee, r.request],
        ),
        (
            format!(
                "INSERT INTO cap_period_raises (id, tenant_id, scope_kind, period, amount_minor,
                     alert_id, created_at)
                 VALUES ($1, $2, 'tenant', '2026-01', 100, $3, {AT})"
            ),
            vec![new(), r.tenant, r.alert],
        ),
        (
            format!(
                "INSERT INTO guardrail_actions (id, tenant_id, line_id, period, action, alert_id,
                     state, created_at, updated_at)
                 VALUES ($1, $2, $3, '2026-01', 'suspend', $4, 'applied', {AT}, {AT})"
            ),
            vec![new(), r.tenant, r.line, r.alert],
        ),
        (
            format!(
                "INSERT INTO employee_notices (id, tenant_id, employee_id, dedupe_key, message,
                     state, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, 'n', '{{}}', 'queued', {AT}, {AT})"
            ),
            vec![new(), r.tenant, r.employee],
        ),
    ];
    let mut tx = store.tenant(TenantId(r.tenant)).await.unwrap();
    for (sql, ids) in &statements {
        execute(&mut tx, sql, ids)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    r
}

/// The rows newer tables reference, in their latest shape.
async fn seed_later_referenced_rows(store: &Store, r: &Rows) {
    let connection = format!(
        "INSERT INTO provider_connections (id, tenant_id, provider, client_id, client_secret,
             account_id, webhook_secret, version, checked_at, created_at, label, position)
         VALUES ($1, $2, '1global', 'c', 's', 'a', 'w', 1, {AT}, {AT}, '1GLOBAL', 0)"
    );
    let mut tx = store.tenant(TenantId(r.tenant)).await.unwrap();
    execute(&mut tx, &connection, &[r.provider_connection, r.tenant])
        .await
        .unwrap_or_else(|e| panic!("{connection}: {e}"));
    tx.commit().await.unwrap();
}

/// The rows of tables newer than migration 0014 (which `seed_every_reference` also serves).
async fn seed_later_references(store: &Store, r: &Rows) {
    seed_later_referenced_rows(store, r).await;
    let statements = [
        (
            "INSERT INTO scim_users (tenant_id, employee_id, version) VALUES ($1, $2, 1)",
            [r.tenant, r.employee],
        ),
        (
            "INSERT INTO scim_groups (tenant_id, team_id, version) VALUES ($1, $2, 1)",
            [r.tenant, r.team],
        ),
    ];
    let mut tx = store.tenant(TenantId(r.tenant)).await.unwrap();
    for (sql, ids) in &statements {
        execute(&mut tx, sql, ids)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let case = format!(
        "INSERT INTO offboarding_cases (id, tenant_id, employee_id, line_id, state, asked_id,
             successor_id, deadline_at, remind_at, created_at)
         VALUES ($1, $2, $3, $4, 'open', $3, $3, {AT}, {AT}, {AT})"
    );
    execute(
        &mut tx,
        &case,
        &[Uuid::now_v7(), r.tenant, r.employee, r.line],
    )
    .await
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    let new = Uuid::now_v7;
    // The joiner policy names neither team nor cost centre: it may name one at a time.
    let statements: Vec<(String, Vec<Uuid>)> = vec![
        (
            format!(
                "INSERT INTO joiner_policies (id, tenant_id, plan_id, created_at)
                 VALUES ($1, $2, $3, {AT})"
            ),
            vec![new(), r.tenant, r.plan],
        ),
        (
            format!(
                "INSERT INTO joiners (tenant_id, employee_id, state, created_at)
                 VALUES ($1, $2, 'waiting', {AT})"
            ),
            vec![r.tenant, r.employee],
        ),
        (
            format!(
                "INSERT INTO cost_centre_moves (id, tenant_id, employee_id, from_cost_centre_id,
                     to_cost_centre_id, effective_on, created_at)
                 VALUES ($1, $2, $3, $4, $4, '2026-01-05', {AT})"
            ),
            vec![new(), r.tenant, r.employee, r.cost_centre],
        ),
        (
            format!(
                "INSERT INTO request_reroutes (tenant_id, request_id, from_approver, at)
                 VALUES ($1, $2, $3, {AT})"
            ),
            vec![r.tenant, r.request, r.employee],
        ),
        (
            "INSERT INTO travel_esims (tenant_id, line_id, employee_id, request_id, country,
                 ends_on, state)
             VALUES ($1, $2, $3, $4, 'JP', '2026-01-05', 'active')"
                .to_owned(),
            vec![r.tenant, r.line, r.employee, r.request],
        ),
        (
            format!(
                "INSERT INTO provider_routes (id, tenant_id, position, team_id,
                     provider_connection_id, allow_failover, created_at)
                 VALUES ($1, $2, 0, $3, $4, TRUE, {AT})"
            ),
            vec![new(), r.tenant, r.team, r.provider_connection],
        ),
    ];
    for (sql, ids) in &statements {
        execute(&mut tx, sql, ids)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
}

/// Which of a tenant's rows a reference names.
type Named = fn(&Rows) -> Uuid;

/// Every reference between tenant-owned rows: (table, column, the row it names).
const REFERENCES: &[(&str, &str, Named)] = &[
    ("employees", "team_id", |r| r.team),
    ("employees", "cost_centre_id", |r| r.cost_centre),
    ("employees", "manager_id", |r| r.employee),
    ("chat_identities", "employee_id", |r| r.employee),
    ("lines", "employee_id", |r| r.employee),
    ("lines", "plan_id", |r| r.plan),
    ("provider_operations", "line_id", |r| r.line),
    ("requests", "employee_id", |r| r.employee),
    ("requests", "line_id", |r| r.line),
    ("requests", "approver_id", |r| r.employee),
    ("roaming_grants", "line_id", |r| r.line),
    ("roaming_grants", "request_id", |r| r.request),
    ("usage_records", "line_id", |r| r.line),
    ("usage_daily", "line_id", |r| r.line),
    ("usage_monthly", "line_id", |r| r.line),
    ("alerts", "line_id", |r| r.line),
    ("alerts", "employee_id", |r| r.employee),
    ("cap_raises", "employee_id", |r| r.employee),
    ("cap_raises", "request_id", |r| r.request),
    ("cap_period_raises", "alert_id", |r| r.alert),
    ("guardrail_actions", "line_id", |r| r.line),
    ("guardrail_actions", "alert_id", |r| r.alert),
    ("employee_notices", "employee_id", |r| r.employee),
    ("scim_users", "employee_id", |r| r.employee),
    ("scim_groups", "team_id", |r| r.team),
    ("offboarding_cases", "employee_id", |r| r.employee),
    ("offboarding_cases", "line_id", |r| r.line),
    ("offboarding_cases", "asked_id", |r| r.employee),
    ("offboarding_cases", "successor_id", |r| r.employee),
    ("joiner_policies", "team_id", |r| r.team),
    ("joiner_policies", "cost_centre_id", |r| r.cost_centre),
    ("joiner_policies", "plan_id", |r| r.plan),
    ("joiners", "employee_id", |r| r.employee),
    ("cost_centre_moves", "employee_id", |r| r.employee),
    ("cost_centre_moves", "from_cost_centre_id", |r| {
        r.cost_centre
    }),
    ("cost_centre_moves", "to_cost_centre_id", |r| r.cost_centre),
    ("request_reroutes", "request_id", |r| r.request),
    ("travel_esims", "line_id", |r| r.line),
    ("travel_esims", "employee_id", |r| r.employee),
    ("travel_esims", "request_id", |r| r.request),
    ("provider_routes", "team_id", |r| r.team),
    ("provider_routes", "provider_connection_id", |r| {
        r.provider_connection
    }),
];

/// Usage ingest's tables carry no foreign keys on PostgreSQL (0003_spend_guardrails.sql).
fn unchecked_on_postgres(table: &str) -> bool {
    matches!(table, "usage_records" | "usage_daily")
}

both_backends!(
    no_tenant_owned_row_can_point_at_another_tenants_row,
    |store| async move {
        let acme = seed_every_reference(&store, "acme").await;
        seed_later_references(&store, &acme).await;
        // Rows nothing of globex's own points at, so no other constraint gets in the way.
        let globex = seed_referenced_rows(&store, "globex").await;
        seed_later_referenced_rows(&store, &globex).await;
        let tenant = TenantId(acme.tenant);
        for (table, column, row) in REFERENCES {
            if store.backend() == store::Backend::Postgres && unchecked_on_postgres(table) {
                continue;
            }
            let sql = format!("UPDATE {table} SET {column} = $2 WHERE tenant_id = $1");
            let mut tx = store.tenant(tenant).await.unwrap();
            let own = execute(&mut tx, &sql, &[acme.tenant, row(&acme)]).await;
            assert_eq!(own.unwrap(), 1, "{table}.{column} = acme's own row");
            drop(tx);

            let mut tx = store.tenant(tenant).await.unwrap();
            match execute(&mut tx, &sql, &[acme.tenant, row(&globex)]).await {
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {}
                other => {
                    panic!("{table}.{column} = globex's row: expected a refusal, got {other:?}")
                }
            }
        }
    }
);

/// Every foreign key between tenant-owned tables, as (table, its key columns, parent):
/// the same on both backends, and every one of them leads with tenant_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_between_tenant_owned_tables_names_the_tenant() {
    let sqlite = lineup_testkit::sqlite_store().await;
    let postgres = lineup_testkit::postgres_store().await;
    let Store::Sqlite(lite) = &*sqlite else {
        unreachable!()
    };
    let Store::Postgres(pg) = &*postgres else {
        unreachable!()
    };
    let lite_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.name, group_concat(f.\"from\", ', ' ORDER BY f.seq),
                f.\"table\" || '(' || group_concat(f.\"to\", ', ' ORDER BY f.seq) || ')'
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f
         WHERE m.type = 'table' AND f.\"table\" NOT IN ('tenants', 'users')
         GROUP BY m.name, f.id ORDER BY 1, 2",
    )
    .fetch_all(lite)
    .await
    .unwrap();
    let pg_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text,
                substring(pg_get_constraintdef(c.oid) from 'FOREIGN KEY \\(([^)]*)\\)'),
                substring(pg_get_constraintdef(c.oid) from 'REFERENCES (.*)$')
         FROM pg_constraint c
         WHERE c.contype = 'f' AND c.confrelid::regclass::text NOT IN ('tenants', 'users')
         ORDER BY 1, 2",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    // SQLite's foreign key list does not show the delete action PostgreSQL's definition does.
    let pg_keys: Vec<_> = pg_keys
        .into_iter()
        .map(|(table, columns, parent)| {
            let parent = parent.trim_end_matches(" ON DELETE CASCADE").to_owned();
            (table, columns, parent)
        })
        .collect();

    let global: Vec<_> = lite_keys
        .iter()
        .chain(&pg_keys)
        .filter(|(_, columns, parent)| {
            !columns.starts_with("tenant_id, ") || !parent.ends_with("(tenant_id, id)")
        })
        .collect();
    assert!(
        global.is_empty(),
        "references that ignore the tenant: {global:?}"
    );
    let lite_checked: Vec<_> = lite_keys
        .iter()
        .filter(|(table, ..)| !unchecked_on_postgres(table))
        .cloned()
        .collect();
    assert_eq!(lite_checked, pg_keys);
    let mut listed: Vec<(String, String)> = REFERENCES
        .iter()
        .map(|(table, column, _)| (table.to_string(), format!("tenant_id, {column}")))
        .collect();
    let mut found: Vec<(String, String)> = lite_keys
        .into_iter()
        .map(|(table, columns, _)| (table, columns))
        .collect();
    listed.sort();
    found.sort();
    assert_eq!(
        found, listed,
        "REFERENCES lists every foreign key, so the test above tries each one"
    );
}

/// A store migrated up to, not including, migration `version`: the files the store embeds,
/// copied without the later ones (same contents, so a full `migrate` accepts them after).
/// Also its URL, and the directory that keeps it (and the copies) alive.
async fn store_before_migration(
    backend: store::Backend,
    version: i64,
) -> (Store, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (name, url) = match backend {
        store::Backend::Sqlite => (
            "sqlite",
            format!("sqlite://{}", dir.path().join("lineup.db").display()),
        ),
        store::Backend::Postgres => ("postgres", lineup_testkit::fresh_postgres_url().await),
    };
    let earlier = dir.path().join("migrations");
    std::fs::create_dir(&earlier).unwrap();
    let all = format!("{}/../migrations/{name}", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let number: i64 = file.split('_').next().unwrap().parse().unwrap();
        if number < version {
            std::fs::copy(&path, earlier.join(file)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap();
    let store = Store::connect(&url).await.unwrap();
    match &store {
        Store::Sqlite(pool) => migrator.run(pool).await.unwrap(),
        Store::Postgres(pool) => migrator.run(pool).await.unwrap(),
    }
    (store, url, dir)
}

/// Every pooled SQLite connection writes ahead to a log, maps the file, keeps a page cache a
/// usage rollup fits in and its statement journals in memory (ingest's speed rests on these:
/// issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_are_set_up_for_bulk_writes() {
    use sqlx::Row;
    let store = lineup_testkit::sqlite_store().await;
    let Store::Sqlite(pool) = &*store else {
        unreachable!()
    };
    for (pragma, expected) in [
        ("journal_mode", "wal"),
        ("foreign_keys", "1"),
        ("mmap_size", "1073741824"),
        ("cache_size", "-65536"),
        // 2 is MEMORY.
        ("temp_store", "2"),
    ] {
        let row = sqlx::query(&format!("PRAGMA {pragma}"))
            .fetch_one(pool)
            .await
            .unwrap();
        let value = match row.try_get::<i64, _>(0) {
            Ok(number) => number.to_string(),
            Err(_) => row.get::<String, _>(0),
        };
        assert_eq!(value, expected, "PRAGMA {pragma}");
    }
}

async fn sqlite_rows<T>(store: &Store, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let Store::Sqlite(pool) = store else {
        unreachable!()
    };
    sqlx::query_as(sql).fetch_all(pool).await.unwrap()
}

/// Each table's columns, indexes (named ones with their SQL, constraint ones by what they
/// cover), CHECK constraints, triggers and views, one line each.
async fn sqlite_schema(store: &Store) -> Vec<String> {
    let mut lines: Vec<(String, String)> = sqlite_rows(
        store,
        "SELECT m.name, 'column ' || c.cid || ' ' || c.name || ' ' || c.type
                || ' notnull=' || c.\"notnull\" || ' default=' || coalesce(c.dflt_value, '-')
                || ' pk=' || c.pk
         FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table'
         UNION ALL
         SELECT m.name, 'index ' || CASE i.origin WHEN 'c' THEN i.name ELSE i.origin END
                || ' unique=' || i.\"unique\" || ' partial=' || i.partial || ' ('
                || (SELECT group_concat(k.name, ', ' ORDER BY k.seqno)
                    FROM pragma_index_info(i.name) k) || ') '
                || coalesce((SELECT s.sql FROM sqlite_master s WHERE s.name = i.name), '-')
         FROM sqlite_master m, pragma_index_list(m.name) i WHERE m.type = 'table'
         UNION ALL
         SELECT tbl_name, type || ' ' || name || ' ' || sql FROM sqlite_master
         WHERE type IN ('trigger', 'view')",
    )
    .await;
    let tables: Vec<(String, String)> = sqlite_rows(
        store,
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL",
    )
    .await;
    for (table, sql) in tables {
        let mut rest = sql.as_str();
        while let Some(at) = rest.find("CHECK (") {
            let body = &rest[at + "CHECK ".len()..];
            let mut depth = 0;
            let end = body
                .char_indices()
                .find_map(|(i, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (depth == 0).then_some(i)
                })
                .unwrap();
            let check = body[..=end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            lines.push((table.clone(), format!("check {check}")));
            rest = &body[end..];
        }
    }
    let mut lines: Vec<String> = lines
        .into_iter()
        .map(|(table, line)| format!("{table}: {line}"))
        .collect();
    lines.sort();
    lines
}

/// Every row of every table, each value quoted, sorted.
async fn sqlite_contents(store: &Store) -> Vec<String> {
    let tables: Vec<(String,)> = sqlite_rows(
        store,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .await;
    let mut rows = Vec::new();
    for (table,) in tables {
        let columns: Vec<(String,)> = sqlite_rows(
            store,
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        )
        .await;
        let quoted: Vec<String> = columns
            .iter()
            .map(|(c,)| format!("quote(\"{c}\")"))
            .collect();
        let sql = format!(
            "SELECT '{table}: ' || {} FROM \"{table}\"",
            quoted.join(" || ', ' || ")
        );
        rows.extend(
            sqlite_rows::<(String,)>(store, &sql)
                .await
                .into_iter()
                .map(|(r,)| r),
        );
    }
    rows.sort();
    rows
}

/// SQLite rebuilds every referencing table to change its keys: the columns, indexes,
/// checks and rows must come out exactly as they went in, plus the (tenant_id, id) keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rebuilt_tables_keep_their_columns_indexes_checks_and_rows() {
    let (store, _url, _dir) = store_before_migration(store::Backend::Sqlite, 14).await;
    seed_every_reference(&store, "acme").await;
    seed_every_reference(&store, "globex").await;
    let schema_before = sqlite_schema(&store).await;
    let rows_before = sqlite_contents(&store).await;
    assert!(rows_before.len() > 30, "{rows_before:#?}");

    // Up to 0014 only: later migrations add columns and tables of their own.
    let through_14 = tempfile::tempdir().unwrap();
    let all = format!("{}/../migrations/sqlite", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if file.split('_').next().unwrap().parse::<i64>().unwrap() <= 14 {
            std::fs::copy(&path, through_14.path().join(file)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(through_14.path())
        .await
        .unwrap();
    let Store::Sqlite(pool) = &store else {
        unreachable!()
    };
    migrator.run(pool).await.unwrap();

    let schema_after = sqlite_schema(&store).await;
    let lost: Vec<_> = schema_before
        .iter()
        .filter(|l| !schema_after.contains(l))
        .collect();
    assert!(lost.is_empty(), "the rebuild lost {lost:#?}");
    let added: Vec<_> = schema_after
        .iter()
        .filter(|l| !schema_before.contains(l))
        .cloned()
        .collect();
    let expected: Vec<String> = [
        "alerts",
        "cost_centres",
        "employees",
        "lines",
        "plans",
        "requests",
        "teams",
    ]
    .iter()
    .map(|t| {
        format!(
            "{t}: index {t}_tenant_id_id unique=1 partial=0 (tenant_id, id) \
             CREATE UNIQUE INDEX {t}_tenant_id_id ON {t} (tenant_id, id)"
        )
    })
    .collect();
    assert_eq!(added, expected);
    assert_eq!(sqlite_contents(&store).await, rows_before);
}

/// A reference that already crosses tenants (written before the composite keys) stops the
/// migration, on both backends, and leaves the database as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_already_crossing_tenants_fails_the_migration_and_changes_nothing() {
    for backend in [store::Backend::Sqlite, store::Backend::Postgres] {
        let (store, _url, _dir) = store_before_migration(backend, 14).await;
        let acme = seed_tenant(&store, "acme").await;
        let globex = seed_tenant(&store, "globex").await;
        let (globex_team, _) = seed_team_and_cost_centre(&store, globex.tenant).await;
        let mut tx = store.tenant(acme.tenant).await.unwrap();
        let crossing = "UPDATE employees SET team_id = $2 WHERE tenant_id = $1";
        let joined = execute(&mut tx, crossing, &[acme.tenant.0, globex_team.0]).await;
        assert_eq!(
            joined.unwrap(),
            1,
            "{backend:?}: the global key let it through"
        );
        tx.commit().await.unwrap();

        let Err(err) = store.migrate().await else {
            panic!("{backend:?}: migrated over a reference to another tenant's team");
        };
        assert!(
            err.to_string().to_lowercase().contains("foreign key"),
            "{backend:?}: {err}"
        );
        let applied: i64 = match &store {
            Store::Sqlite(pool) => sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await
                .unwrap(),
            Store::Postgres(pool) => {
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        };
        assert!(applied < 14, "{backend:?}: recorded {applied}");
        if let Store::Postgres(pool) = &store {
            // The migrator's session is closed on failure; its server process lets go of the
            // lock as it exits, a moment after the close returns.
            let released_by = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                // This database's only: other tests migrate their own databases meanwhile.
                let held: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .fetch_one(pool)
                .await
                .unwrap();
                if held == 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < released_by,
                    "the failed migration left its lock held"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        // Plain SQL: the store's own queries name columns this old schema lacks.
        let mut tx = store.tenant(acme.tenant).await.unwrap();
        let still_crossing = "SELECT count(*) FROM employees WHERE id = $1 AND team_id = $2";
        let ids = [acme.employee.0, globex_team.0];
        assert_eq!(count(&mut tx, still_crossing, &ids).await, 1, "{backend:?}");
        let lines = "SELECT count(*) FROM lines WHERE tenant_id = $1";
        assert_eq!(
            count(&mut tx, lines, &[acme.tenant.0]).await,
            1,
            "{backend:?}: the rebuilt tables' rows are back"
        );
        if backend == store::Backend::Sqlite {
            let leftovers: Vec<(String,)> = sqlite_rows(
                &store,
                "SELECT name FROM sqlite_master WHERE name LIKE 'rebuild%'",
            )
            .await;
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }

        // Once the row is put right the migration goes through on the same store: the
        // failed attempt left no migration lock behind.
        execute(
            &mut tx,
            "UPDATE employees SET team_id = NULL WHERE tenant_id = $1",
            &[acme.tenant.0],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(60), store.migrate())
            .await
            .unwrap_or_else(|_| panic!("{backend:?}: the second migrate waited on a lock"))
            .unwrap();
    }
}

/// SQLite has one writer at a time, and a usage sync's batch holds the write lock for a fifth
/// of a second or more: the portal's list pages read beside it instead of queueing for it.
#[tokio::test]
async fn the_portals_lists_answer_while_a_writer_holds_sqlite() {
    use lineup_core::audit::AuditFilter;
    use lineup_core::spend::alert::AlertFilter;

    let world = lineup_testkit::world::World::new(lineup_testkit::sqlite_store().await).await;
    let (lineup, tenant) = (&world.lineup, world.tenant);
    let writer = world.store.tenant(tenant).await.unwrap();
    let lists = async {
        lineup.members(tenant).await.unwrap();
        lineup.pending_invites(tenant).await.unwrap();
        lineup.undelivered_emails(tenant).await.unwrap();
        lineup.employees(tenant).await.unwrap();
        lineup.teams(tenant).await.unwrap();
        lineup.cost_centres(tenant).await.unwrap();
        lineup
            .alerts(tenant, &AlertFilter::default())
            .await
            .unwrap();
        let everything = AuditFilter::default();
        lineup
            .audit_log(tenant, &everything, None, 50)
            .await
            .unwrap();
        lineup.audit_actors(tenant).await.unwrap();
        lineup.budget_caps(tenant).await.unwrap();
        lineup.roaming_rules(tenant).await.unwrap();
        lineup.joiner_policies(tenant).await.unwrap();
        lineup.joiners(tenant).await.unwrap();
        lineup.scim_tokens(tenant).await.unwrap();
        lineup.scim_calls(tenant).await.unwrap();
        lineup.custom_domains(tenant).await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), lists)
        .await
        .expect("every list answered while another connection held the write lock");
    drop(writer);
}

/// An upgraded PostgreSQL database, migrated as the application's ordinary role (row-level
/// security applies): migration 0034 must clear every tenant's chargeback rollup, built without
/// line counts, so none is read as current before it is rebuilt.
#[tokio::test]
async fn migration_0034_clears_every_tenants_chargeback_rollup_under_row_level_security() {
    let (store, _url, _dir) = store_before_migration(store::Backend::Postgres, 34).await;

    let a = seed_tenant(&store, "acme").await;
    let mut tx = store.tenant(a.tenant).await.unwrap();
    let store::Tx::Postgres(t) = &mut tx else {
        unreachable!()
    };
    sqlx::raw_sql(&format!(
        "INSERT INTO report_versions (tenant_id, version, chargeback_built)
         VALUES ('{0}', 3, 3);
         INSERT INTO chargeback_months (tenant_id, month, cost_centre_id, cost_minor, data_bytes)
         VALUES ('{0}', '2026-11-01', NULL, 500, 1000)",
        a.tenant.0
    ))
    .execute(&mut **t)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.tenant(a.tenant).await.unwrap();
    assert!(
        store::chargeback_months::is_current(&mut tx, a.tenant)
            .await
            .unwrap()
    );
    drop(tx);

    store.migrate().await.unwrap();
    let mut tx = store.tenant(a.tenant).await.unwrap();
    assert!(
        !store::chargeback_months::is_current(&mut tx, a.tenant)
            .await
            .unwrap(),
        "the rollup built before 0034 must be rebuilt"
    );
    let from = time::macros::date!(2026 - 01 - 01);
    let to = time::macros::date!(2026 - 12 - 01);
    assert_eq!(
        store::chargeback_months::months_if_current(&mut tx, a.tenant, from, to)
            .await
            .unwrap(),
        None
    );
    let store::Tx::Postgres(t) = &mut tx else {
        unreachable!()
    };
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chargeback_months")
        .fetch_one(&mut **t)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the old rows are gone");
}
