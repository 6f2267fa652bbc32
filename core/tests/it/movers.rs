//! Joiners without a start date and movers, in core: the most specific joiner policy wins
//! and the line comes at once; a manager change moves pending requests to the new manager
//! (told once to chat through the sweep); a cost-centre change keeps past spend where it was.

use lineup_core::lines::request::commands::{SubmitRequest, SweepEvent};
use lineup_core::lines::request::{RequestDetails, RequestState, Route};
use lineup_core::money::Bytes;
use lineup_core::organisation::employee::{EmployeeEdit, NewEmployee};
use lineup_core::organisation::joiner::{JoinerRule, JoinerState};
use lineup_core::period::{Month, Period};
use lineup_core::provider::{Roaming, UsageRecord};
use lineup_core::spend::reports::ReportFilter;
use lineup_core::store::{self, now};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World};
use time::Duration;

fn edit_of(e: &lineup_core::organisation::employee::Employee) -> EmployeeEdit {
    EmployeeEdit {
        email: e.email.clone(),
        given_name: e.given_name.clone(),
        family_name: e.family_name.clone(),
        team_id: e.team_id,
        cost_centre_id: e.cost_centre_id,
        manager: None,
    }
}

both_backends!(
    a_joiner_without_a_start_date_gets_the_line_of_the_most_specific_policy_at_once,
    |store| async move {
        let w = World::new(store).await;
        let hire = |email: &str, team| NewEmployee {
            email: lineup_core::email_address::Email::parse(email).unwrap(),
            given_name: "New".into(),
            family_name: "Hire".into(),
            team_id: team,
            cost_centre_id: None,
            manager_id: Some(w.maria.id),
        };
        let before_policy = w
            .lineup
            .add_employee(w.tenant, &ADMIN, hire("early@example.com", None))
            .await
            .unwrap();
        let field = w.lineup.add_team(w.tenant, &ADMIN, "Field").await.unwrap();
        w.lineup
            .add_joiner_policy(w.tenant, &ADMIN, JoinerRule::Everyone, w.plans[0].id)
            .await
            .unwrap();
        let for_field = w
            .lineup
            .add_joiner_policy(w.tenant, &ADMIN, JoinerRule::Team(field.id), w.plans[1].id)
            .await
            .unwrap();
        let same_rule = w
            .lineup
            .add_joiner_policy(w.tenant, &ADMIN, JoinerRule::Team(field.id), w.plans[0].id)
            .await
            .unwrap_err();
        assert!(
            same_rule.to_string().contains("for the same people exists"),
            "{same_rule}"
        );
        let joiner = w
            .lineup
            .add_employee(w.tenant, &ADMIN, hire("field@example.com", Some(field.id)))
            .await
            .unwrap();

        assert_eq!(w.lineup.order_joiner_lines(now()).await.unwrap(), 1);
        let got = w.lineup.joiner(w.tenant, joiner.id).await.unwrap().unwrap();
        assert_eq!(got.state, JoinerState::Ordered);
        assert_eq!(got.policy_id, Some(for_field.id));
        let line = w.lineup.line(w.tenant, got.line_id.unwrap()).await.unwrap();
        assert_eq!(
            line.plan_id, w.plans[1].id,
            "the team's plan, not everyone's"
        );
        assert_eq!(
            w.lineup.joiner(w.tenant, before_policy.id).await.unwrap(),
            None,
            "people who joined before any policy are not joiners"
        );
        // Another tenant sees none of it.
        let other = lineup_testkit::world::add_tenant(&w.lineup, "globex").await;
        assert!(w.lineup.joiners(other).await.unwrap().is_empty());
        assert!(w.lineup.joiner_policies(other).await.unwrap().is_empty());
    }
);

both_backends!(
    a_new_manager_takes_over_pending_requests_and_chat_is_told_once,
    |store| async move {
        let w = World::new(store).await;
        let submitted = w
            .lineup
            .submit_request(
                w.tenant,
                SubmitRequest {
                    requester: w.ada.id,
                    details: RequestDetails::NewLine {
                        plan_id: w.plans[0].id,
                        wanted_date: None,
                    },
                    reason: "field work".into(),
                    dedupe_key: "mover-1".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(submitted.request.approver, Some(w.maria.id));
        let ada = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
        let edit = EmployeeEdit {
            manager: Some(w.olivia.email.clone()),
            ..edit_of(&ada)
        };
        w.lineup
            .update_employee(w.tenant, &ADMIN, w.ada.id, edit)
            .await
            .unwrap();
        let moved = w
            .lineup
            .request(w.tenant, submitted.request.id)
            .await
            .unwrap();
        assert_eq!(moved.state, RequestState::Pending);
        assert_eq!(moved.route, Route::Manager);
        assert_eq!(moved.approver, Some(w.olivia.id));
        let approvers = w.lineup.approvers_for(w.tenant, &moved).await.unwrap();
        assert_eq!(approvers, [w.olivia.id]);

        let events = w.lineup.sweep_requests(now()).await.unwrap();
        let told: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                SweepEvent::Rerouted {
                    request,
                    approvers,
                    moved_to,
                } => Some((request.id, approvers.clone(), moved_to.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(told, [(moved.id, vec![w.olivia.id], w.olivia.full_name())]);
        let again = w.lineup.sweep_requests(now()).await.unwrap();
        assert!(
            !again
                .iter()
                .any(|e| matches!(e, SweepEvent::Rerouted { .. })),
            "told once"
        );
        let mut tx = w.store.tenant(w.tenant).await.unwrap();
        let trail: Vec<String> =
            store::audit::list_for_subject(&mut tx, w.tenant, "request", &moved.id.to_string())
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
        assert!(trail.contains(&"request.rerouted".to_owned()), "{trail:?}");
    }
);

both_backends!(
    after_a_cost_centre_change_past_spend_stays_and_new_spend_goes_to_the_new_one,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "mover-line").await;
        let centre = w
            .lineup
            .add_cost_centre(w.tenant, &ADMIN, "CC-NEW", "New home")
            .await
            .unwrap();
        let at = now();
        let usage = |key: &str, when: time::OffsetDateTime, bytes: i64| UsageRecord {
            dedupe_key: key.into(),
            subscription_id: line.provider_subscription_id.clone().unwrap(),
            started_at: when,
            ended_at: when + Duration::minutes(5),
            data_bytes: bytes,
            sms: 0,
            voice_seconds: 0,
            country: Some("US".into()),
            roaming: Roaming::None,
            in_bundle: None,
            observed_at: when,
        };
        w.lineup
            .record_usage(
                w.tenant,
                &[usage("before", at - Duration::days(1), Bytes::GB)],
            )
            .await
            .unwrap();
        let ada = w.lineup.employee(w.tenant, w.ada.id).await.unwrap();
        let edit = EmployeeEdit {
            cost_centre_id: Some(centre.id),
            manager: Some(w.maria.email.clone()),
            ..edit_of(&ada)
        };
        w.lineup
            .update_employee(w.tenant, &ADMIN, w.ada.id, edit)
            .await
            .unwrap();
        w.lineup
            .record_usage(w.tenant, &[usage("after", now(), 3 * Bytes::GB)])
            .await
            .unwrap();

        let filter = ReportFilter {
            period: Period::new(
                Month::containing(at.date() - Duration::days(1)),
                Month::containing(at.date()),
            )
            .unwrap(),
            team: None,
            cost_centre: None,
        };
        let scope = w
            .lineup
            .report_scope(
                w.tenant,
                lineup_core::organisation::employee::Visibility::Everyone,
                &filter,
            )
            .await
            .unwrap();
        let rows = w
            .lineup
            .chargeback(w.tenant, &scope, &filter)
            .await
            .unwrap();
        let data_of = |code: Option<&str>| -> i64 {
            rows.iter()
                .filter(|r| r.cost_centre.as_ref().map(|c| c.code.as_str()) == code)
                .map(|r| r.data.0)
                .sum()
        };
        assert_eq!(data_of(Some("CC-NEW")), 3 * Bytes::GB, "{rows:?}");
        assert_eq!(
            data_of(None),
            Bytes::GB,
            "the day before the move stays: {rows:?}"
        );
    }
);
