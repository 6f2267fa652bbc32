//! Leavers on Slack, end to end: an identity provider deactivates a manager over SCIM, their
//! authority ends at once, their lines are suspended and wait for their manager's choice on
//! a card, and the default happens at the deadline (the worker step's simulated clock).

use lineup_core::audit::Actor;
use lineup_core::ids::OffboardingCaseId;
use lineup_core::lines::line::LineState;
use lineup_core::lines::request::commands::SubmitRequest;
use lineup_core::lines::request::{RequestDetails, RequestState};
use lineup_core::organisation::employee::Employee;
use lineup_core::organisation::offboarding::grace::{CaseState, GraceChoice, cards};
use lineup_core::organisation::scim::{Update, UserRecord};
use lineup_core::organisation::tenant::{GraceDefault, OffboardingAction};
use lineup_core::person_name::PersonName;
use lineup_testkit::both_backends;
use lineup_testkit::world::World;
use time::{Duration, OffsetDateTime};

use crate::harness::slack::*;

/// The tenant takes the grace workflow: 14 days, a reminder after 7, terminate by default.
pub async fn grace_policy(w: &World) {
    let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
    settings.offboarding_action = OffboardingAction::Grace;
    settings.offboarding_grace_days = 14;
    settings.offboarding_reminder_after_days = 7;
    settings.offboarding_grace_default = GraceDefault::Terminate;
    w.lineup
        .update_settings(w.tenant, &Actor::System, settings)
        .await
        .unwrap();
}

/// The identity provider replaces `who` with `active: false`, as Okta does on deactivation.
async fn scim_deactivate(w: &World, who: &Employee) {
    let mut tx = w.lineup.store().system().await.unwrap();
    let owner = lineup_core::store::users::find_by_email(&mut tx, w.olivia.email.as_str())
        .await
        .unwrap()
        .unwrap()
        .id;
    drop(tx);
    let token = w
        .lineup
        .create_scim_token(w.tenant, &Actor::System, owner, "okta")
        .await
        .unwrap()
        .secret;
    let client = w.lineup.scim_client(w.tenant, &token).await.unwrap();
    let record = UserRecord {
        email: who.email.clone(),
        user_name: None,
        given_name: PersonName::parse(&who.given_name).unwrap(),
        family_name: PersonName::parse(&who.family_name).unwrap(),
        active: Some(false),
        external_id: Update::Keep,
        employee_number: Update::Keep,
        department: Update::Keep,
        cost_centre: Update::Keep,
        manager: Update::Keep,
        start_date: Update::Keep,
    };
    w.lineup
        .scim_replace_user(&client, &who.id.to_string(), record, None)
        .await
        .unwrap();
}

fn terminate_orders(stats: &serde_json::Value) -> i64 {
    stats["orders"]["by_type"]["terminate_subscription"]
        .as_i64()
        .unwrap()
}

/// Grace cards (messages with the Keep button) posted to `channel`.
async fn grace_cards_in(
    s: &Slack,
    channel: &str,
    n: usize,
) -> Vec<lineup_testkit::fake_slack::Call> {
    wait_until(|| {
        let posted: Vec<_> = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.body["channel"] == channel && c.body["blocks"].to_string().contains(cards::KEEP)
            })
            .collect();
        (posted.len() >= n).then_some(posted)
    })
    .await
}

both_backends!(
    a_scim_deactivated_manager_s_approvals_move_up_lines_wait_and_end_once_at_the_deadline,
    |store| async move {
        let s = slack(store).await;
        let w = &s.world;
        grace_policy(w).await;
        let first = w.active_line(&w.maria, "maria-1").await;
        let second = w.active_line(&w.maria, "maria-2").await;
        let mut pending = vec![s.request_line().await.id];
        for (who, details, key) in [
            (
                &w.alan,
                RequestDetails::NewLine {
                    plan_id: w.plans[0].id,
                    wanted_date: None,
                },
                "alan-line",
            ),
            (
                &w.ada,
                RequestDetails::CapRaise {
                    amount_minor: 1_000,
                },
                "ada-cap",
            ),
        ] {
            let submitted = w
                .lineup
                .submit_request(
                    w.tenant,
                    SubmitRequest {
                        requester: who.id,
                        details,
                        reason: "needed".into(),
                        dedupe_key: key.into(),
                    },
                )
                .await
                .unwrap();
            pending.push(submitted.request.id);
        }
        for id in &pending {
            let request = w.lineup.request(w.tenant, *id).await.unwrap();
            assert_eq!(request.state, RequestState::Pending);
            assert_eq!(request.approver, Some(w.maria.id));
        }

        scim_deactivate(w, &w.maria).await;

        for id in &pending {
            let request = w.lineup.request(w.tenant, *id).await.unwrap();
            assert_eq!(request.state, RequestState::Pending);
            assert_eq!(
                request.approver,
                Some(w.olivia.id),
                "re-routed up the chain"
            );
        }
        for line in [&first, &second] {
            let line = w.lineup.line(w.tenant, line.id).await.unwrap();
            assert_eq!(line.state, LineState::Suspended);
        }
        let cases = w.lineup.pending_offboarding_cases(w.tenant).await.unwrap();
        assert_eq!(cases.len(), 2);
        assert!(cases.iter().all(|c| c.state == CaseState::Open
            && c.asked_id == Some(w.olivia.id)
            && c.employee_id == w.maria.id));

        // The worker's next tick: Maria's manager gets a card per line, once.
        let now = OffsetDateTime::now_utc();
        s.flows.run_offboarding_sweep(now).await.unwrap();
        s.flows.run_offboarding_sweep(now).await.unwrap();
        let olivia_dm = s.fake.dm_channel(OLIVIA);
        let posted = grace_cards_in(&s, &olivia_dm, 2).await;
        assert_eq!(posted.len(), 2, "one card per line, announced once");
        let card = posted[0].body["blocks"].to_string();
        assert!(
            card.contains("has left")
                && card.contains(cards::TERMINATE)
                && card.contains(cards::RELEASE),
            "{card}"
        );

        // A week on, one reminder each; nobody chooses.
        s.flows
            .run_offboarding_sweep(now + Duration::days(8))
            .await
            .unwrap();
        s.flows
            .run_offboarding_sweep(now + Duration::days(9))
            .await
            .unwrap();
        let reminders = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.body["channel"] == olivia_dm.as_str()
                    && c.body["text"].to_string().contains("Reminder")
            })
            .count();
        assert_eq!(reminders, 2);
        let terminations = terminate_orders(&w.stats().await);

        // The deadline passes; two workers' sweeps race: each line is terminated once.
        let late = now + Duration::days(15);
        let (a, b) = tokio::join!(
            s.flows.run_offboarding_sweep(late),
            s.flows.run_offboarding_sweep(late)
        );
        a.unwrap();
        b.unwrap();
        s.flows.run_offboarding_sweep(late).await.unwrap();
        for line in [&first, &second] {
            let line = w.lineup.line(w.tenant, line.id).await.unwrap();
            assert_eq!(line.state, LineState::Terminated);
        }
        assert_eq!(
            terminate_orders(&w.stats().await),
            terminations + 2,
            "each line terminated at the provider exactly once"
        );
        assert!(
            w.lineup
                .pending_offboarding_cases(w.tenant)
                .await
                .unwrap()
                .is_empty()
        );
        for case in &cases {
            let actions = w
                .audit_actions("offboarding_case", &case.id.to_string())
                .await;
            assert_eq!(
                actions,
                [
                    "offboarding.case_opened",
                    "offboarding.case_reminded",
                    "offboarding.case_defaulted",
                    "offboarding.case_done"
                ],
                "every step audited once"
            );
        }
        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .filter(|u| u.body["channel"] == olivia_dm.as_str())
                .count()
                >= 2
                && updates
                    .iter()
                    .all(|u| !u.body["blocks"].to_string().contains(cards::KEEP)),
            "every card shows the outcome, without stale buttons: {updates:?}"
        );
        s.assert_within_limits();
    }
);

/// A leaver with one active line under the grace policy; the open case once announced.
async fn one_case(s: &Slack) -> OffboardingCaseId {
    let w = &s.world;
    grace_policy(w).await;
    w.active_line(&w.maria, "maria-1").await;
    w.lineup
        .offboard_employee(w.tenant, &Actor::System, w.maria.id)
        .await
        .unwrap();
    s.flows
        .run_offboarding_sweep(OffsetDateTime::now_utc())
        .await
        .unwrap();
    grace_cards_in(s, &s.fake.dm_channel(OLIVIA), 1).await;
    w.lineup.pending_offboarding_cases(w.tenant).await.unwrap()[0].id
}

async fn settled(
    w: &World,
    case: OffboardingCaseId,
) -> lineup_core::organisation::offboarding::grace::OffboardingCase {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let current = w.lineup.offboarding_case(w.tenant, case).await.unwrap();
        if matches!(current.state, CaseState::Done | CaseState::Failed) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the case never settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

both_backends!(
    keep_for_a_successor_picks_from_buttons_and_one_choice_wins,
    |store| async move {
        let s = slack(store).await;
        let w = &s.world;
        let case = one_case(&s).await;

        // Not Maria's manager: Alan cannot decide.
        let told = s
            .click_told(TEAM, ALAN, cards::TERMINATE, &case.to_string())
            .await;
        assert!(told.contains("only the leaver's managers"), "{told}");

        let picker = s
            .click_told(TEAM, OLIVIA, cards::KEEP, &case.to_string())
            .await;
        assert!(picker.contains("Who takes over"), "{picker}");
        let value = cards::successor_value(case, w.ada.id);
        let (keep_for, case_id) = (format!("{}.1", cards::KEEP_FOR), case.to_string());
        let (first, second) = tokio::join!(
            s.click_told(TEAM, OLIVIA, &keep_for, &value),
            s.click_told(TEAM, OLIVIA, cards::TERMINATE, &case_id),
        );
        let told = [first, second];
        assert_eq!(
            told.iter()
                .filter(|t| t.contains("Already decided"))
                .count(),
            1,
            "exactly one decision wins: {told:?}"
        );
        let done = settled(w, case).await;
        assert_eq!(done.state, CaseState::Done);
        let line = w.lineup.line(w.tenant, done.line_id).await.unwrap();
        match done.choice {
            Some(GraceChoice::Keep) => {
                assert_eq!(line.employee_id, w.ada.id);
                assert_eq!(line.state, LineState::Active, "resumed for the successor");
            }
            Some(GraceChoice::Terminate) => assert_eq!(line.state, LineState::Terminated),
            other => panic!("{other:?}"),
        }
        let actions = w.audit_actions("offboarding_case", &case.to_string()).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "offboarding.case_decided")
                .count(),
            1,
            "{actions:?}"
        );
        let again = s
            .click_told(TEAM, OLIVIA, cards::RELEASE, &case.to_string())
            .await;
        assert!(again.contains("Already decided"), "{again}");
    }
);

both_backends!(
    release_gives_the_leaver_a_porting_code_on_the_card,
    |store| async move {
        let s = slack(store).await;
        let w = &s.world;
        let case = one_case(&s).await;
        let told = s
            .click_told(TEAM, OLIVIA, cards::RELEASE, &case.to_string())
            .await;
        assert!(told.contains("release the number"), "{told}");
        let done = settled(w, case).await;
        let porting = done.porting.clone().expect("a porting authorisation");
        assert!(porting.msisdn.starts_with("+447700900"));
        assert_eq!(porting.code.len(), 9);
        let olivia_dm = s.fake.dm_channel(OLIVIA);
        let card = wait_until(|| {
            s.fake.calls_to("chat.update").into_iter().find(|u| {
                u.body["channel"] == olivia_dm.as_str()
                    && u.body["blocks"].to_string().contains(&porting.code)
            })
        })
        .await;
        assert!(card.body["blocks"].to_string().contains(&porting.msisdn));
        let line = w.lineup.line(w.tenant, done.line_id).await.unwrap();
        assert_eq!(
            line.state,
            LineState::Suspended,
            "kept until the number leaves"
        );
    }
);

both_backends!(
    another_tenants_manager_cannot_decide_a_case,
    |store| async move {
        let s = slack(store).await;
        let case = one_case(&s).await;
        let (team, user) = s.stranger_workspace().await;
        let told = s
            .click_told(team, user, cards::TERMINATE, &case.to_string())
            .await;
        assert!(told.contains("not found"), "{told}");
        let current = s
            .world
            .lineup
            .offboarding_case(s.world.tenant, case)
            .await
            .unwrap();
        assert_eq!(current.state, CaseState::Open);
    }
);
