//! Employee CSV import: reading awkward files, reporting every defect with its row and
//! column, and committing all or nothing on both backends.

use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::ids::TenantId;
use lineup_core::import::{self, Field, FileError, Mapping, Problem};
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::employee::Employee;
use lineup_core::store::{self, Tx};
use lineup_testkit::both_backends;
use lineup_testkit::portal::EMPLOYEE_CSV_WITH_EVERY_DEFECT;
use lineup_testkit::world::World;

const ACTOR: Actor = Actor::System;

fn problems_at(problems: &[Problem], row: Option<u64>) -> Vec<(String, String)> {
    problems
        .iter()
        .filter(|p| p.row == row)
        .map(|p| (p.column.clone(), p.reason.clone()))
        .collect()
}

#[test]
fn a_file_full_of_defects_reports_each_with_its_row_and_column() {
    let file = import::read_csv(EMPLOYEE_CSV_WITH_EVERY_DEFECT.as_bytes()).unwrap();
    assert_eq!(
        file.headers[0], "Work Email",
        "the BOM is not part of the header"
    );
    let mapping = Mapping::detect(&file.headers);
    assert_eq!(mapping.get(Field::FamilyName), None);
    assert_eq!(mapping.get(Field::ManagerEmail), Some(4));
    let quoted = file.rows.iter().find(|r| r.row == 9).unwrap();
    assert_eq!(quoted.values[1], "Mary, Ann");
    assert_eq!(quoted.values[2], "Research\r\nand Development");
    assert_eq!(
        file.rows.last().unwrap().row,
        10,
        "rows count as a spreadsheet shows them"
    );

    let existing = existing_world_like();
    let plan = import::plan(
        TenantId::new(),
        &file,
        &mapping,
        &existing,
        lineup_core::store::now(),
    );
    assert!(!plan.can_commit());
    assert!(
        plan.changes.is_empty(),
        "nothing is planned while a column is missing"
    );
    let whole_file = problems_at(&plan.problems, None);
    assert_eq!(whole_file.len(), 1, "{:?}", plan.problems);
    assert_eq!(whole_file[0].0, "Last name");
    assert!(whole_file[0].1.contains("no column is mapped to Last name"));

    let at = |row| problems_at(&plan.problems, Some(row));
    assert!(at(2).is_empty(), "{:?}", at(2));
    assert_eq!(at(3)[0].0, "Work Email");
    assert!(at(3)[0].1.contains("not-an-email"), "{:?}", at(3));
    assert!(at(4).is_empty());
    assert_eq!(at(5)[0].0, "Work Email");
    assert!(at(5)[0].1.contains("already on row 4"), "{:?}", at(5));
    assert_eq!(at(6)[0].0, "Supervisor Email");
    assert!(at(6)[0].1.contains("ghost@example.com is not in this file"));
    for row in [7, 8] {
        assert_eq!(at(row)[0].0, "Supervisor Email");
        assert!(
            at(row)[0].1.contains("loops"),
            "row {row}: {:?}",
            plan.problems
        );
    }
    assert!(
        at(7)[0]
            .1
            .contains("loop1@example.com → loop2@example.com → loop1@example.com")
    );
    assert!(at(9).is_empty(), "the quoted row is fine: {:?}", at(9));
    assert!(
        at(10)[0]
            .1
            .contains("maria@example.com → ada@example.com → maria@example.com"),
        "a loop through an existing employee: {:?}",
        at(10)
    );
    assert_eq!(plan.problems.len(), 7, "{:#?}", plan.problems);
}

#[test]
fn headers_from_common_hris_exports_are_recognised_in_any_case_and_spacing() {
    let headers: Vec<String> = [
        "employee id",
        "FIRST_NAME",
        "surname",
        "  Work e-mail ",
        "Department",
        "cost center",
        "Manager Email",
    ]
    .map(str::to_owned)
    .to_vec();
    let mapping = Mapping::detect(&headers);
    assert_eq!(mapping.get(Field::Email), Some(3));
    assert_eq!(mapping.get(Field::GivenName), Some(1));
    assert_eq!(mapping.get(Field::FamilyName), Some(2));
    assert_eq!(mapping.get(Field::Team), Some(4));
    assert_eq!(mapping.get(Field::CostCentre), Some(5));
    assert_eq!(mapping.get(Field::ManagerEmail), Some(6));
    let other: Vec<String> = [
        "Email",
        "Given Name",
        "Family Name",
        "Team",
        "Cost Centre",
        "Supervisor Email",
        "Slack member ID",
        "Discord User ID",
        "Teams user id",
        "Employment Status",
    ]
    .map(str::to_owned)
    .to_vec();
    let mapping = Mapping::detect(&other);
    for (i, field) in Field::ALL.into_iter().enumerate() {
        assert_eq!(mapping.get(field), Some(i), "{field:?}");
    }
}

#[test]
fn images_spreadsheets_and_latin1_files_get_an_error_that_says_what_to_do() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let error = import::read_csv(png).unwrap_err();
    assert_eq!(
        error,
        FileError::NotCsv {
            kind: "a PNG image"
        }
    );
    assert!(error.to_string().contains("CSV UTF-8"), "{error}");

    let xlsx = b"PK\x03\x04\x14\0\x06\0[Content_Types].xml";
    let error = import::read_csv(xlsx).unwrap_err().to_string();
    assert!(error.contains("Excel workbook (.xlsx)"), "{error}");

    let latin1 = b"Work Email,First Name,Last Name\r\njose@example.com,Jos\xe9,Garc\xeda\r\n";
    let error = import::read_csv(latin1).unwrap_err();
    assert_eq!(error, FileError::NotUtf8 { row: 2, byte: 0xE9 });
    let message = error.to_string();
    assert!(message.contains("not UTF-8"), "{message}");
    assert!(message.contains("CSV UTF-8"), "{message}");

    assert_eq!(import::read_csv(b"").unwrap_err(), FileError::Empty);
    assert_eq!(
        import::read_csv(b"\xEF\xBB\xBF\r\n").unwrap_err(),
        FileError::Empty
    );
}

/// The people `World` has, without a database: enough for the pure checks.
fn existing_world_like() -> import::Existing {
    let now = lineup_core::store::now();
    let tenant = TenantId::new();
    let person = |name: &str, manager: Option<&Employee>| Employee {
        id: lineup_core::ids::EmployeeId::new(),
        tenant_id: tenant,
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        given_name: name.to_owned(),
        family_name: "Tester".to_owned(),
        team_id: None,
        cost_centre_id: None,
        manager_id: manager.map(|m| m.id),
        status: lineup_core::organisation::employee::EmployeeStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let olivia = person("olivia", None);
    let maria = person("maria", Some(&olivia));
    let ada = person("ada", Some(&maria));
    import::Existing {
        employees: vec![olivia, maria, ada],
        teams: Vec::new(),
        cost_centres: Vec::new(),
        chat_identities: Vec::new(),
    }
}

async fn count(tx: &mut Tx, table: &str, tenant: TenantId) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    match tx {
        Tx::Sqlite(tx) => sqlx::query_scalar(&sql)
            .bind(tenant)
            .fetch_one(&mut **tx)
            .await
            .unwrap(),
        Tx::Postgres(tx) => sqlx::query_scalar(&sql)
            .bind(tenant)
            .fetch_one(&mut **tx)
            .await
            .unwrap(),
    }
}

async fn counts(w: &World) -> (i64, i64, i64) {
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    (
        count(&mut tx, "employees", w.tenant).await,
        count(&mut tx, "audit_events", w.tenant).await,
        count(&mut tx, "teams", w.tenant).await,
    )
}

async fn upload_and_preview(w: &World, name: &str, csv: &str) -> import::Preview {
    let upload = w
        .lineup
        .upload_employee_csv(w.tenant, &ACTOR, name, csv.as_bytes().to_vec())
        .await
        .unwrap();
    w.lineup
        .preview_import(w.tenant, upload.id, None)
        .await
        .unwrap()
}

async fn by_email(w: &World, email: &str) -> Employee {
    let mut tx = w.store.tenant(w.tenant).await.unwrap();
    store::employees::find_by_email(&mut tx, w.tenant, &Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{email} was not imported"))
}

both_backends!(
    a_defective_file_cannot_be_committed_and_writes_nothing,
    |store| async move {
        let w = World::new(store).await;
        let before = counts(&w).await;
        let preview = upload_and_preview(&w, "hris.csv", EMPLOYEE_CSV_WITH_EVERY_DEFECT).await;
        let upload = preview.upload.clone();
        assert_eq!(preview.plan.problems.len(), 7);
        // Even with the missing column mapped to something, the row defects remain.
        let mut mapping = preview.mapping;
        mapping.set(Field::FamilyName, Some(1));
        let error = w
            .lineup
            .commit_import(w.tenant, &ACTOR, upload.id, mapping)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("problem(s) remain"), "{error}");
        assert_eq!(
            counts(&w).await,
            before,
            "no employee, team or audit event was written"
        );
    }
);

const FIRST: &str = "Email,First Name,Last Name,Team,Cost Center,Manager Email\n\
    erin@example.com,Erin,Engineer,Engineering,CC-200,dave@example.com\n\
    carol@example.com,Carol,Chief,Leadership,CC-100,\n\
    dave@example.com,Dave,Doer,Engineering,CC-200,carol@example.com\n\
    ada@example.com,Ada,Tester,engineering,CC-200,maria@example.com\n";

/// Dave renamed; Frank new, under Ada (spelled in capitals); everyone else as before.
const SECOND: &str = "Email,First Name,Last Name,Team,Cost Center,Manager Email\n\
    carol@example.com,Carol,Chief,Leadership,CC-100,\n\
    dave@example.com,David,Doer,Engineering,CC-200,carol@example.com\n\
    erin@example.com,Erin,Engineer,Engineering,CC-200,dave@example.com\n\
    ADA@example.com,Ada,Tester,Engineering,CC-200,maria@example.com\n\
    frank@example.com,Frank,Fresh,Engineering,CC-200,Ada@Example.com\n";

both_backends!(
    a_clean_import_creates_people_teams_and_cost_centres_and_a_reimport_updates_by_email,
    |store| async move {
        let w = World::new(store).await;
        let (people, _, _) = counts(&w).await;
        let preview = upload_and_preview(&w, "first.csv", FIRST).await;
        let upload = preview.upload.clone();
        assert!(preview.plan.can_commit(), "{:?}", preview.plan.problems);
        let new_teams: Vec<_> = preview
            .plan
            .new_teams
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(
            new_teams,
            ["Engineering", "Leadership"],
            "one team, whatever the case"
        );
        let summary = w
            .lineup
            .commit_import(w.tenant, &ACTOR, preview.upload.id, preview.mapping)
            .await
            .unwrap();
        assert_eq!(
            (summary.created, summary.updated, summary.unchanged),
            (3, 1, 0)
        );
        assert_eq!(
            (summary.teams_created, summary.cost_centres_created),
            (2, 2)
        );
        assert_eq!(counts(&w).await.0, people + 3);

        let carol = by_email(&w, "carol@example.com").await;
        let dave = by_email(&w, "dave@example.com").await;
        let erin = by_email(&w, "erin@example.com").await;
        let ada = by_email(&w, "ada@example.com").await;
        assert_eq!(dave.manager_id, Some(carol.id));
        assert_eq!(
            erin.manager_id,
            Some(dave.id),
            "a manager later in the file is linked"
        );
        assert_eq!(
            ada.id, w.ada.id,
            "an existing employee is updated, not duplicated"
        );
        assert_eq!(ada.manager_id, Some(w.maria.id));
        assert_eq!(ada.team_id, dave.team_id);
        let teams = w.lineup.teams(w.tenant).await.unwrap();
        assert_eq!(teams.len(), 2);
        let centres = w.lineup.cost_centres(w.tenant).await.unwrap();
        let codes: Vec<_> = centres.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["CC-100", "CC-200"]);
        assert_eq!(
            w.audit_actions("employee", &carol.id.to_string()).await,
            ["employee.created"]
        );
        assert!(
            w.audit_actions("employee", &ada.id.to_string())
                .await
                .contains(&"employee.updated".to_owned())
        );
        let summary_events = w
            .audit_actions("employee_import", &upload.id.to_string())
            .await;
        assert_eq!(summary_events, ["employee_import.committed"]);

        // The same upload cannot be committed twice.
        let again = w
            .lineup
            .commit_import(w.tenant, &ACTOR, upload.id, preview.mapping)
            .await
            .unwrap_err();
        assert!(
            again.to_string().contains("already been imported"),
            "{again}"
        );

        let preview = upload_and_preview(&w, "second.csv", SECOND).await;
        let upload = preview.upload.clone();
        assert!(preview.plan.can_commit(), "{:?}", preview.plan.problems);
        let updates: Vec<_> = preview.plan.updates().collect();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].row, 3);
        assert_eq!(updates[0].differences.len(), 1);
        assert_eq!(updates[0].differences[0].field, "First name");
        assert_eq!(
            (
                updates[0].differences[0].before.as_str(),
                updates[0].differences[0].after.as_str()
            ),
            ("Dave", "David")
        );
        assert!(preview.plan.new_teams.is_empty());
        let summary = w
            .lineup
            .commit_import(w.tenant, &ACTOR, upload.id, preview.mapping)
            .await
            .unwrap();
        assert_eq!(
            (summary.created, summary.updated, summary.unchanged),
            (1, 1, 3)
        );
        let frank = by_email(&w, "frank@example.com").await;
        assert_eq!(frank.manager_id, Some(w.ada.id));
        assert_eq!(by_email(&w, "dave@example.com").await.given_name, "David");
        assert_eq!(
            w.audit_actions("employee", &dave.id.to_string()).await,
            ["employee.created", "employee.updated"]
        );
    }
);

both_backends!(
    a_file_listing_reports_before_their_managers_commits_across_many_batches,
    |store| async move {
        let w = World::new(store).await;
        // A tree eight wide, written bottom-up: every row names a manager further down.
        let mut csv = String::from("Work Email,First Name,Last Name,Manager Email\n");
        for i in (0..1000).rev() {
            let manager = if i == 0 {
                "olivia@example.com".to_owned()
            } else {
                format!("p{}@example.com", (i - 1) / 8)
            };
            csv.push_str(&format!("p{i}@example.com,P,N{i},{manager}\n"));
        }
        let preview = upload_and_preview(&w, "big.csv", &csv).await;
        assert!(
            preview.plan.can_commit(),
            "{:?}",
            &preview.plan.problems[..1]
        );
        let summary = w
            .lineup
            .commit_import(w.tenant, &ACTOR, preview.upload.id, preview.mapping)
            .await
            .unwrap();
        assert_eq!(summary.created, 1000);
        let p9 = by_email(&w, "p9@example.com").await;
        let p1 = by_email(&w, "p1@example.com").await;
        assert_eq!(p9.manager_id, Some(p1.id));
        let (people, audit, _) = counts(&w).await;
        assert_eq!(people, 1005);
        assert!(audit > 1000);
    }
);

async fn chat_id(w: &World, email: &str, platform: Platform) -> Option<String> {
    let person = by_email(w, email).await;
    w.lineup
        .chat_user_of(w.tenant, person.id, platform)
        .await
        .unwrap()
}

async fn commit(w: &World, preview: &import::Preview) -> import::ImportSummary {
    assert!(preview.plan.can_commit(), "{:?}", preview.plan.problems);
    w.lineup
        .commit_import(w.tenant, &ACTOR, preview.upload.id, preview.mapping)
        .await
        .unwrap()
}

const TEAMS_ID: &str = "29:1xYz-AbC_dEf";

both_backends!(
    chat_ids_in_the_file_link_people_and_a_reimport_changes_nothing,
    |store| async move {
        let w = World::new(store).await;
        let csv = format!(
            "Work Email,First Name,Last Name,Slack ID,Discord user ID,Teams ID\n\
             ada@example.com,Ada,Tester,U0ADA,,\n\
             gus@example.com,Gus,New,W0GUS42,803511102246789120,{TEAMS_ID}\n"
        );
        let preview = upload_and_preview(&w, "chat.csv", &csv).await;
        for field in [Field::SlackId, Field::DiscordId, Field::TeamsId] {
            assert!(preview.mapping.get(field).is_some(), "{field:?} recognised");
        }
        let ada_change = preview.plan.updates().next().expect("ada gains a Slack ID");
        assert!(
            !ada_change.employee_changed,
            "only her chat account changes"
        );
        let shown: Vec<_> = ada_change
            .differences
            .iter()
            .map(|d| (d.field, d.before.as_str(), d.after.as_str()))
            .collect();
        assert_eq!(shown, [("Slack ID", "", "U0ADA")]);
        let gus_shown: Vec<_> = preview
            .plan
            .creates()
            .next()
            .unwrap()
            .differences
            .iter()
            .filter(|d| d.field.ends_with("ID"))
            .map(|d| (d.field, d.after.clone()))
            .collect();
        assert_eq!(
            gus_shown,
            [
                ("Slack ID", "W0GUS42".to_owned()),
                ("Discord ID", "803511102246789120".to_owned()),
                ("Teams ID", TEAMS_ID.to_owned()),
            ]
        );
        let ada_updated_at = by_email(&w, "ada@example.com").await.updated_at;
        let summary = commit(&w, &preview).await;
        assert_eq!((summary.created, summary.updated), (1, 1));
        assert_eq!(summary.chat_ids_linked, 4);
        assert_eq!(
            chat_id(&w, "ada@example.com", Platform::Slack)
                .await
                .as_deref(),
            Some("U0ADA")
        );
        assert_eq!(
            chat_id(&w, "gus@example.com", Platform::Discord)
                .await
                .as_deref(),
            Some("803511102246789120")
        );
        assert_eq!(
            chat_id(&w, "gus@example.com", Platform::Teams)
                .await
                .as_deref(),
            Some(TEAMS_ID)
        );
        let ada = by_email(&w, "ada@example.com").await;
        assert_eq!(
            ada.updated_at, ada_updated_at,
            "her record was not rewritten"
        );
        assert_eq!(
            w.audit_actions("employee", &ada.id.to_string()).await,
            ["employee.created", "employee.chat_linked"],
            "linking her Slack account is audited; no update of her record is"
        );
        // Chat users are the people the file says: a message from U0ADA is Ada's.
        assert_eq!(
            w.lineup
                .chat_employee(w.tenant, Platform::Slack, "U0ADA")
                .await
                .unwrap(),
            Some(w.ada.id)
        );

        let gus = by_email(&w, "gus@example.com").await;
        let reach = w
            .lineup
            .chat_platforms_of(w.tenant, &[ada.id, gus.id, w.alan.id])
            .await
            .unwrap();
        assert_eq!(reach[&ada.id], [Platform::Slack]);
        assert_eq!(
            reach[&gus.id],
            [Platform::Slack, Platform::Teams, Platform::Discord]
        );
        assert!(!reach.contains_key(&w.alan.id));

        // The same file again: nothing to do.
        let again = upload_and_preview(&w, "chat-again.csv", &csv).await;
        assert!(again.plan.changes.is_empty(), "{:?}", again.plan.changes);
        assert_eq!(again.plan.unchanged, 2);
        let (_, audit_before, _) = counts(&w).await;
        let summary = commit(&w, &again).await;
        assert_eq!((summary.updated, summary.chat_ids_linked), (0, 0));
        assert_eq!(
            counts(&w).await.1,
            audit_before + 1,
            "only the import itself is audited"
        );

        // A new Slack ID replaces the old one.
        let moved = "Work Email,First Name,Last Name,Slack ID\nada@example.com,Ada,Tester,U0ADA2\n";
        let preview = upload_and_preview(&w, "moved.csv", moved).await;
        let change = preview.plan.updates().next().unwrap();
        assert_eq!(change.differences[0].before, "U0ADA");
        assert_eq!(change.differences[0].after, "U0ADA2");
        commit(&w, &preview).await;
        assert_eq!(
            chat_id(&w, "ada@example.com", Platform::Slack)
                .await
                .as_deref(),
            Some("U0ADA2")
        );
        assert_eq!(
            w.lineup
                .chat_employee(w.tenant, Platform::Slack, "U0ADA")
                .await
                .unwrap(),
            None,
            "the old account no longer reaches her"
        );
    }
);

both_backends!(
    bad_duplicate_or_taken_chat_ids_are_row_errors_and_nothing_is_written,
    |store| async move {
        let w = World::new(store).await;
        w.lineup
            .link_chat_user(w.tenant, w.maria.id, Platform::Slack, "U0MARIA")
            .await
            .unwrap();
        let csv = "Email,First Name,Last Name,Slack member ID,Discord ID,Teams user ID\n\
             a1@example.com,A,One,u0lower,,\n\
             a2@example.com,A,Two,,12345,\n\
             a3@example.com,A,Three,,,6f1c1f42-2b6e-4c4e-9a57-0c1b9e6a1d2f\n\
             a4@example.com,A,Four,U0SAME,,\n\
             a5@example.com,A,Five,U0SAME,,\n\
             a6@example.com,A,Six,U0MARIA,,\n\
             maria@example.com,Maria,Tester,U0MARIA,,\n\
             a8@example.com,A,Eight,,,teams-user\n";
        let before = counts(&w).await;
        let identities_before = {
            let mut tx = w.store.tenant(w.tenant).await.unwrap();
            count(&mut tx, "chat_identities", w.tenant).await
        };
        let preview = upload_and_preview(&w, "bad-chat.csv", csv).await;
        let at = |row| problems_at(&preview.plan.problems, Some(row));
        assert_eq!(at(2).len(), 1, "{:?}", preview.plan.problems);
        assert_eq!(at(2)[0].0, "Slack member ID");
        assert!(
            at(2)[0].1.contains("u0lower is not a Slack member ID"),
            "{:?}",
            at(2)
        );
        assert!(
            at(2)[0].1.contains("U024BE7LH"),
            "the expected form is shown"
        );
        assert_eq!(at(3)[0].0, "Discord ID");
        assert!(at(3)[0].1.contains("17 to 20 digits"), "{:?}", at(3));
        assert_eq!(at(4)[0].0, "Teams user ID");
        assert!(at(4)[0].1.contains("Azure AD object ID"), "{:?}", at(4));
        assert!(at(4)[0].1.contains("29:"), "{:?}", at(4));
        assert!(at(5).is_empty(), "{:?}", at(5));
        assert_eq!(at(6)[0].0, "Slack member ID");
        assert!(
            at(6)[0]
                .1
                .contains("U0SAME appears again: it is already on row 5"),
            "{:?}",
            at(6)
        );
        assert!(
            at(7)[0]
                .1
                .contains("U0MARIA is already linked to maria@example.com"),
            "{:?}",
            at(7)
        );
        assert!(at(8).is_empty(), "Maria's own ID is fine: {:?}", at(8));
        assert!(at(9)[0].1.contains("starts with 29:"), "{:?}", at(9));
        assert_eq!(
            preview.plan.problems.len(),
            6,
            "{:#?}",
            preview.plan.problems
        );

        let error = w
            .lineup
            .commit_import(w.tenant, &ACTOR, preview.upload.id, preview.mapping)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("problem(s) remain"), "{error}");
        assert_eq!(
            counts(&w).await,
            before,
            "no employee or audit event was written"
        );
        let mut tx = w.store.tenant(w.tenant).await.unwrap();
        assert_eq!(
            count(&mut tx, "chat_identities", w.tenant).await,
            identities_before,
            "no chat account was linked"
        );
    }
);

both_backends!(
    a_terminated_status_offboards_people_lineup_has_and_refuses_others,
    |store| async move {
        use lineup_core::lines::line::LineState;
        use lineup_core::organisation::employee::EmployeeStatus;
        use lineup_core::organisation::tenant::OffboardingAction;

        let w = World::new(store).await;
        let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        settings.offboarding_action = OffboardingAction::Grace;
        w.lineup
            .update_settings(w.tenant, &ACTOR, settings)
            .await
            .unwrap();
        let line = w.active_line(&w.maria, "maria-1").await;
        let defective = "Email,First Name,Last Name,Employment Status\n\
            maria@example.com,Maria,Manager,Terminated\n\
            newbie@example.com,New,Person,Terminated\n\
            ada@example.com,Ada,Tester,On leave\n";
        let preview = upload_and_preview(&w, "hris.csv", defective).await;
        assert_eq!(
            problems_at(&preview.plan.problems, Some(3)),
            [(
                "Employment Status".to_owned(),
                "newbie@example.com is Terminated but not in Lineup; leave them out of the file"
                    .to_owned()
            )]
        );
        assert_eq!(
            problems_at(&preview.plan.problems, Some(4)),
            [(
                "Employment Status".to_owned(),
                "\"On leave\" is not Active or Terminated".to_owned()
            )]
        );

        let fixed = "Email,First Name,Last Name,Employment Status\n\
            maria@example.com,Maria,Manager,Terminated\n\
            ada@example.com,Ada,Tester,active\n";
        let preview = upload_and_preview(&w, "hris.csv", fixed).await;
        assert!(preview.plan.can_commit(), "{:?}", preview.plan.problems);
        assert_eq!(preview.plan.leavers.len(), 1);
        let summary = commit(&w, &preview).await;
        assert_eq!(summary.offboarded, 1);
        assert_eq!(
            by_email(&w, "maria@example.com").await.status,
            EmployeeStatus::Offboarded
        );
        assert_eq!(
            by_email(&w, "ada@example.com").await.status,
            EmployeeStatus::Active
        );
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Suspended
        );
        let cases = w.lineup.pending_offboarding_cases(w.tenant).await.unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].asked_id, Some(w.olivia.id));

        // The same file again: Maria is already gone, so nothing more happens.
        let again = upload_and_preview(&w, "hris.csv", fixed).await;
        assert!(again.plan.leavers.is_empty());
        assert_eq!(commit(&w, &again).await.offboarded, 0);
    }
);
