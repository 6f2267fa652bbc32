//! Requests and approvals in core: policy pre-check, routing, authority, exactly-once
//! decisions, fulfilment, reminders/escalation/expiry and roaming grants — on both backends.

use std::sync::Arc;

use lineup_core::CoreError;
use lineup_core::lines::line::LineState;
use lineup_core::lines::request::commands::{Fulfilment, SubmitRequest, Submitted, SweepEvent};
use lineup_core::lines::request::{Decision, RequestDetails, RequestState, Route};
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::employee::EmployeeStatus;
use lineup_core::spend::policy::RoamingRule;
use lineup_core::store::{self, now};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World, add_tenant};
use serde_json::json;
use time::Duration;

fn new_line(w: &World, key: &str) -> SubmitRequest {
    SubmitRequest {
        requester: w.ada.id,
        details: RequestDetails::NewLine {
            plan_id: w.plans[0].id,
            wanted_date: None,
        },
        reason: "field work".into(),
        dedupe_key: key.into(),
    }
}

fn cap_raise(w: &World, minor: i64, key: &str) -> SubmitRequest {
    SubmitRequest {
        requester: w.ada.id,
        details: RequestDetails::CapRaise {
            amount_minor: minor,
        },
        reason: "conference week".into(),
        dedupe_key: key.into(),
    }
}

async fn submit(w: &World, cmd: SubmitRequest) -> Submitted {
    w.lineup.submit_request(w.tenant, cmd).await.unwrap()
}

both_backends!(
    a_new_line_goes_to_the_manager_and_is_issued_once_approved,
    |store| async move {
        let w = World::new(store).await;
        let submitted = submit(&w, new_line(&w, "modal-1")).await;
        assert!(submitted.created);
        assert_eq!(submitted.request.state, RequestState::Pending);
        assert_eq!(submitted.request.route, Route::Manager);
        assert_eq!(submitted.approvers, vec![w.maria.id]);

        let again = submit(&w, new_line(&w, "modal-1")).await;
        assert!(!again.created, "a retried submission is the same request");
        assert_eq!(again.request.id, submitted.request.id);

        let decided = w
            .lineup
            .decide_request(
                w.tenant,
                w.maria.id,
                submitted.request.id,
                Decision::Approve,
                None,
            )
            .await
            .unwrap();
        assert!(decided.won);
        let Fulfilment::Line(line) = w
            .lineup
            .fulfil_request(w.tenant, submitted.request.id)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(line.state, LineState::Ready);
        assert_eq!(line.employee_id, w.ada.id);
        // Fulfilling twice (a retried job) gives the same line, not a second one.
        let Fulfilment::Line(same) = w
            .lineup
            .fulfil_request(w.tenant, submitted.request.id)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(same.id, line.id);
        assert_eq!(w.stats().await["subscriptions"]["total"], 1);
        let request = w
            .lineup
            .request(w.tenant, submitted.request.id)
            .await
            .unwrap();
        assert_eq!(request.state, RequestState::Fulfilled);
        assert_eq!(
            w.audit_actions("request", &request.id.to_string()).await,
            [
                "request.submitted",
                "request.routed",
                "request.approved",
                "request.fulfilled"
            ]
        );
    }
);

both_backends!(denying_needs_a_reason_and_tells_it, |store| async move {
    let w = World::new(store).await;
    let request = submit(&w, new_line(&w, "modal-2")).await.request;
    let err = w
        .lineup
        .decide_request(
            w.tenant,
            w.maria.id,
            request.id,
            Decision::Deny,
            Some("  ".into()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Invalid {
                field: "reason",
                ..
            }
        ),
        "{err}"
    );
    let decided = w
        .lineup
        .decide_request(
            w.tenant,
            w.maria.id,
            request.id,
            Decision::Deny,
            Some("use the pool phone".into()),
        )
        .await
        .unwrap();
    assert!(decided.won);
    assert_eq!(decided.request.state, RequestState::Denied);
    assert_eq!(
        decided.request.decision_note.as_deref(),
        Some("use the pool phone")
    );
    let err = w
        .lineup
        .fulfil_request(w.tenant, request.id)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("denied request cannot be fulfilled"),
        "{err}"
    );
});

both_backends!(
    only_an_authorised_approver_decides_and_never_their_own,
    |store| async move {
        let w = World::new(store).await;
        let request = submit(&w, new_line(&w, "modal-3")).await.request;
        for outsider in [w.alan.id, w.fiona.id, w.ada.id] {
            let err = w
                .lineup
                .decide_request(w.tenant, outsider, request.id, Decision::Approve, None)
                .await
                .unwrap_err();
            assert!(matches!(err, CoreError::NotAuthorised(_)), "{err}");
        }
        let own = w
            .lineup
            .decide_request(w.tenant, w.ada.id, request.id, Decision::Approve, None)
            .await
            .unwrap_err();
        assert_eq!(own.to_string(), "you cannot decide your own request");
        // The manager's manager may step in.
        assert!(
            w.lineup
                .decide_request(w.tenant, w.olivia.id, request.id, Decision::Approve, None)
                .await
                .unwrap()
                .won
        );

        // Olivia has no manager: her request goes to the admins, and she — the only owner —
        // still cannot approve it herself.
        let mut own_cmd = new_line(&w, "modal-olivia");
        own_cmd.requester = w.olivia.id;
        let hers = submit(&w, own_cmd).await;
        assert_eq!(hers.request.route, Route::Admins);
        assert!(
            hers.approvers.is_empty(),
            "the requester is never their own approver"
        );
        let err = w
            .lineup
            .decide_request(
                w.tenant,
                w.olivia.id,
                hers.request.id,
                Decision::Approve,
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::NotAuthorised(_)));
    }
);

both_backends!(
    double_clicks_and_racing_approvers_give_one_decision,
    |store| async move {
        let w = Arc::new(World::new(store).await);
        let request = submit(&w, new_line(&w, "modal-4")).await.request;
        let mut racing = tokio::task::JoinSet::new();
        for i in 0..6 {
            let w = w.clone();
            let (who, decision, note) = match i % 3 {
                0 => (w.maria.id, Decision::Approve, None),
                1 => (w.olivia.id, Decision::Deny, Some("no budget".to_owned())),
                _ => (w.maria.id, Decision::Approve, None),
            };
            racing.spawn(async move {
                w.lineup
                    .decide_request(w.tenant, who, request.id, decision, note)
                    .await
                    .unwrap()
            });
        }
        let mut winners = Vec::new();
        let mut outcomes = Vec::new();
        while let Some(decided) = racing.join_next().await {
            let decided = decided.unwrap();
            outcomes.push(decided.request.state);
            if decided.won {
                winners.push(decided.request.state);
            }
        }
        assert_eq!(winners.len(), 1, "exactly one decision wins");
        assert!(
            outcomes.iter().all(|s| *s == winners[0]),
            "losers see the winning decision: {outcomes:?}"
        );
        let actions = w.audit_actions("request", &request.id.to_string()).await;
        let decisions = actions
            .iter()
            .filter(|a| *a == "request.approved" || *a == "request.denied")
            .count();
        assert_eq!(decisions, 1, "{actions:?}");
    }
);

both_backends!(
    policy_settles_what_it_can_and_routes_the_rest,
    |store| async move {
        let w = World::new(store).await;
        let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        settings.cap_raise_auto_approve_max_minor = 1_000;
        settings.cap_raise_finance_threshold_minor = 5_000;
        settings.cap_raise_max_minor = 20_000;
        w.lineup
            .update_settings(w.tenant, &ADMIN, settings)
            .await
            .unwrap();

        let small = submit(&w, cap_raise(&w, 800, "cap-small")).await.request;
        assert_eq!(small.state, RequestState::Approved);
        assert_eq!(small.decided_by.as_deref(), Some("policy"));
        let Fulfilment::CapRaised { amount, .. } =
            w.lineup.fulfil_request(w.tenant, small.id).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(amount.minor, 800);

        let medium = submit(&w, cap_raise(&w, 3_000, "cap-medium")).await;
        assert_eq!(
            (medium.request.route, medium.approvers.clone()),
            (Route::Manager, vec![w.maria.id])
        );
        let big = submit(&w, cap_raise(&w, 9_000, "cap-big")).await;
        assert_eq!(
            (big.request.route, big.approvers.clone()),
            (Route::Finance, vec![w.fiona.id])
        );
        assert!(
            w.lineup
                .decide_request(
                    w.tenant,
                    w.fiona.id,
                    big.request.id,
                    Decision::Approve,
                    None
                )
                .await
                .unwrap()
                .won
        );
        let huge = submit(&w, cap_raise(&w, 90_000, "cap-huge")).await.request;
        assert_eq!(huge.state, RequestState::Denied);
        assert!(
            huge.decision_note
                .unwrap()
                .contains("above the largest raise"),
            "the reason is given"
        );

        let line = w.active_line(&w.ada, "line-for-roaming").await;
        w.lineup
            .set_roaming_rule(w.tenant, &ADMIN, "fr", RoamingRule::Allowed)
            .await
            .unwrap();
        w.lineup
            .set_roaming_rule(w.tenant, &ADMIN, "KP", RoamingRule::Blocked)
            .await
            .unwrap();
        let today = now().date();
        let trip = |country: &str, key: &str| SubmitRequest {
            requester: w.ada.id,
            details: RequestDetails::Roaming {
                line_id: line.id,
                country: country.into(),
                from: today,
                to: today + Duration::days(3),
                quote: None,
            },
            reason: "customer visit".into(),
            dedupe_key: key.into(),
        };
        assert_eq!(
            submit(&w, trip("FR", "trip-fr")).await.request.state,
            RequestState::Approved
        );
        let blocked = submit(&w, trip("KP", "trip-kp")).await.request;
        assert_eq!(blocked.state, RequestState::Denied);
        assert!(blocked.decision_note.unwrap().contains("blocked"));
        assert_eq!(
            submit(&w, trip("JP", "trip-jp")).await.request.route,
            Route::Manager
        );

        // Ada has a line now: a second one is refused by policy with the reason.
        let second = submit(&w, new_line(&w, "second-line")).await.request;
        assert_eq!(second.state, RequestState::Denied);
        assert!(
            second
                .decision_note
                .unwrap()
                .contains("already have a line")
        );

        let bad = w
            .lineup
            .submit_request(w.tenant, trip("France", "bad-country"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                bad,
                CoreError::Invalid {
                    field: "country",
                    ..
                }
            ),
            "{bad}"
        );
        let err = w
            .lineup
            .submit_request(w.tenant, cap_raise(&w, -5, "negative"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            CoreError::Invalid {
                field: "amount",
                ..
            }
        ));
    }
);

both_backends!(
    pending_requests_remind_escalate_and_expire,
    |store| async move {
        let w = World::new(store).await;
        let request = submit(&w, new_line(&w, "slow")).await.request;
        let t0 = request.routed_at;
        assert!(
            w.lineup
                .sweep_requests(t0 + Duration::hours(1))
                .await
                .unwrap()
                .is_empty()
        );

        let events = w
            .lineup
            .sweep_requests(t0 + Duration::hours(25))
            .await
            .unwrap();
        let [SweepEvent::Reminded { approvers, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(approvers, &vec![w.maria.id]);
        assert!(
            w.lineup
                .sweep_requests(t0 + Duration::hours(26))
                .await
                .unwrap()
                .is_empty(),
            "one reminder"
        );

        let events = w
            .lineup
            .sweep_requests(t0 + Duration::hours(49))
            .await
            .unwrap();
        let [
            SweepEvent::Escalated {
                request: escalated,
                approvers,
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!(escalated.approver, Some(w.olivia.id));
        assert_eq!(approvers, &vec![w.olivia.id]);
        // Maria may still decide? No: the request now waits on Olivia, who is above her.
        let err = w
            .lineup
            .decide_request(w.tenant, w.maria.id, request.id, Decision::Approve, None)
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::NotAuthorised(_)));

        let events = w.lineup.sweep_requests(request.expires_at).await.unwrap();
        let [SweepEvent::Expired { request: expired }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(expired.state, RequestState::Expired);
        let decided = w
            .lineup
            .decide_request(w.tenant, w.olivia.id, request.id, Decision::Approve, None)
            .await
            .unwrap();
        assert!(!decided.won, "an expired request cannot be approved");
        assert_eq!(
            w.audit_actions("request", &request.id.to_string()).await,
            [
                "request.submitted",
                "request.routed",
                "request.reminded",
                "request.escalated",
                "request.expired"
            ]
        );
    }
);

both_backends!(
    roaming_grants_start_and_revert_on_their_dates,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "line").await;
        w.lineup
            .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Allowed)
            .await
            .unwrap();
        let today = now().date();
        let (from, to) = (today + Duration::days(10), today + Duration::days(14));
        let request = submit(
            &w,
            SubmitRequest {
                requester: w.ada.id,
                details: RequestDetails::Roaming {
                    line_id: line.id,
                    country: "JP".into(),
                    from,
                    to,
                    quote: None,
                },
                reason: "Tokyo office".into(),
                dedupe_key: "trip".into(),
            },
        )
        .await
        .request;
        let Fulfilment::Roaming(grant) =
            w.lineup.fulfil_request(w.tenant, request.id).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(grant.state, "scheduled");
        assert!(
            w.lineup
                .sweep_roaming_grants(today)
                .await
                .unwrap()
                .is_empty()
        );
        let started = w.lineup.sweep_roaming_grants(from).await.unwrap();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].state, "active");
        assert!(
            w.lineup.sweep_roaming_grants(to).await.unwrap().is_empty(),
            "the last day is still covered"
        );
        let ended = w
            .lineup
            .sweep_roaming_grants(to + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(ended[0].state, "ended");
        let actions = w.audit_actions("line", &line.id.to_string()).await;
        assert!(
            actions.ends_with(&[
                "roaming.scheduled".into(),
                "roaming.enabled".into(),
                "roaming.reverted".into()
            ]),
            "{actions:?}"
        );
    }
);

both_backends!(
    a_failed_provisioning_fails_the_request_and_a_retry_completes_it,
    |store| async move {
        let w = World::new(store).await;
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"order_type": "activate_subscription"},
                "action": {"cancel_with": "PROVISIONING_FAILED"},
                "times": 1
            })),
        )
        .await;
        let request = submit(&w, new_line(&w, "fails")).await.request;
        w.lineup
            .decide_request(w.tenant, w.maria.id, request.id, Decision::Approve, None)
            .await
            .unwrap();
        let err = w
            .lineup
            .fulfil_request(w.tenant, request.id)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("PROVISIONING_FAILED"));
        let failed = w.lineup.request(w.tenant, request.id).await.unwrap();
        assert_eq!(failed.state, RequestState::Failed);
        assert!(
            failed
                .failure_reason
                .unwrap()
                .contains("PROVISIONING_FAILED")
        );
        let Fulfilment::Line(line) = w.lineup.fulfil_request(w.tenant, request.id).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(line.state, LineState::Ready);
        assert_eq!(
            w.lineup.request(w.tenant, request.id).await.unwrap().state,
            RequestState::Fulfilled
        );
    }
);

both_backends!(
    another_tenant_cannot_see_or_decide_requests,
    |store| async move {
        let w = World::new(store).await;
        let request = submit(&w, new_line(&w, "mine")).await.request;
        let other = add_tenant(&w.lineup, "globex").await;
        let err = w
            .lineup
            .decide_request(other, w.maria.id, request.id, Decision::Approve, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::NotFound {
                    what: "request",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            w.lineup.request(other, request.id).await,
            Err(CoreError::NotFound { .. })
        ));
        let mut stolen = new_line(&w, "stolen");
        stolen.requester = w.ada.id;
        assert!(matches!(
            w.lineup.submit_request(other, stolen).await,
            Err(CoreError::NotFound { .. })
        ));
    }
);

both_backends!(
    portal_members_without_an_employee_record_decide_only_as_owner_or_admin,
    |store| async move {
        use lineup_core::email_address::Email;
        use lineup_core::identity::user::Role;
        use lineup_core::lines::request::Decider;

        let w = World::new(store).await;
        let member = |email: &str, role: Role| {
            let lineup = w.lineup.clone();
            let email = Email::parse(email).unwrap();
            async move {
                lineup
                    .add_user(
                        w.tenant,
                        &ADMIN,
                        &email,
                        "Member",
                        "a long test password",
                        role,
                        None,
                    )
                    .await
                    .unwrap()
            }
        };
        let admin = Decider::Member(member("it@example.com", Role::Admin).await);
        let finance = Decider::Member(member("books@example.com", Role::Finance).await);
        let first = submit(&w, new_line(&w, "member-1")).await.request;

        // What each may decide is exactly what deciding allows.
        assert_eq!(
            w.lineup
                .decidable_requests(w.tenant, admin)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            w.lineup
                .decidable_requests(w.tenant, finance)
                .await
                .unwrap()
                .is_empty()
        );
        let refused = w
            .lineup
            .decide_request_as(w.tenant, finance, first.id, Decision::Approve, None)
            .await
            .unwrap_err();
        assert!(matches!(refused, CoreError::NotAuthorised(_)), "{refused}");
        assert_eq!(
            w.lineup
                .decidable_requests(w.tenant, Decider::Employee(w.maria.id))
                .await
                .unwrap()
                .len(),
            1,
            "Ada's manager"
        );
        assert!(
            w.lineup
                .decidable_requests(w.tenant, Decider::Employee(w.alan.id))
                .await
                .unwrap()
                .is_empty(),
            "a colleague"
        );

        let decided = w
            .lineup
            .decide_request_as(w.tenant, admin, first.id, Decision::Approve, None)
            .await
            .unwrap();
        assert!(decided.won);
        assert!(
            decided
                .request
                .decided_by
                .as_deref()
                .unwrap()
                .starts_with("user:")
        );
        let ctx = w
            .lineup
            .card_context(w.tenant, &decided.request)
            .await
            .unwrap();
        assert_eq!(ctx.decided_by_name.as_deref(), Some("Member"));
        let recent = w.lineup.recent_decisions(w.tenant, 10).await.unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].id, first.id);
        // Maria's late click loses and sees the admin's decision.
        let late = w
            .lineup
            .decide_request(
                w.tenant,
                w.maria.id,
                first.id,
                Decision::Deny,
                Some("no".into()),
            )
            .await
            .unwrap();
        assert!(!late.won);
        assert_eq!(late.request.state, RequestState::Approved);
    }
);

async fn offboard(w: &World, who: &lineup_core::organisation::employee::Employee) {
    w.lineup
        .offboard_employee(w.tenant, &ADMIN, who.id)
        .await
        .unwrap();
}

both_backends!(
    a_leaver_cannot_decide_and_what_waited_on_them_moves_up,
    |store| async move {
        let w = World::new(store).await;
        let request = submit(&w, new_line(&w, "modal-leaver")).await.request;
        assert_eq!(request.approver, Some(w.maria.id));

        offboard(&w, &w.maria).await;
        let moved = w.lineup.request(w.tenant, request.id).await.unwrap();
        assert_eq!(moved.route, Route::Manager);
        assert_eq!(
            moved.approver,
            Some(w.olivia.id),
            "the next active manager up"
        );
        assert_eq!(
            w.lineup.approvers_for(w.tenant, &moved).await.unwrap(),
            vec![w.olivia.id]
        );
        assert!(
            w.audit_actions("request", &request.id.to_string())
                .await
                .contains(&"request.rerouted".to_owned())
        );

        let err = w
            .lineup
            .decide_request(w.tenant, w.maria.id, request.id, Decision::Approve, None)
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::NotAuthorised(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "you were offboarded on {}, so you can no longer decide requests",
                now().date()
            )
        );
        assert!(
            w.lineup
                .decidable_requests(
                    w.tenant,
                    lineup_core::lines::request::Decider::Employee(w.maria.id)
                )
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            w.lineup.request(w.tenant, request.id).await.unwrap().state,
            RequestState::Pending,
            "the refused click changed nothing"
        );
        assert!(
            w.lineup
                .decide_request(w.tenant, w.olivia.id, request.id, Decision::Approve, None)
                .await
                .unwrap()
                .won
        );
    }
);

both_backends!(
    routing_walks_past_leavers_to_the_next_active_manager_then_the_admins,
    |store| async move {
        let w = World::new(store).await;
        // A second owner, so Olivia (the first) may leave.
        w.lineup
            .add_user(
                w.tenant,
                &ADMIN,
                &lineup_core::email_address::Email::parse("boss@example.com").unwrap(),
                "Boss",
                "a long test password",
                lineup_core::identity::user::Role::Owner,
                None,
            )
            .await
            .unwrap();
        offboard(&w, &w.maria).await;
        let to_olivia = submit(&w, new_line(&w, "modal-past-maria")).await;
        assert_eq!(to_olivia.request.route, Route::Manager);
        assert_eq!(to_olivia.request.approver, Some(w.olivia.id));
        assert_eq!(to_olivia.approvers, vec![w.olivia.id]);

        offboard(&w, &w.olivia).await;
        let moved = w
            .lineup
            .request(w.tenant, to_olivia.request.id)
            .await
            .unwrap();
        assert_eq!((moved.route, moved.approver), (Route::Admins, None));
        let mut alans = new_line(&w, "modal-alan");
        alans.requester = w.alan.id;
        let to_admins = submit(&w, alans).await;
        assert_eq!(to_admins.request.route, Route::Admins);
        assert_eq!(to_admins.request.approver, None);
        assert!(
            to_admins.approvers.is_empty(),
            "an offboarded owner is nobody's approver: {:?}",
            to_admins.approvers
        );
    }
);

both_backends!(
    offboarding_revokes_memberships_sessions_and_chat_links,
    |store| async move {
        let w = World::new(store).await;
        let password = "a long test password";
        let signed_in = w
            .lineup
            .sign_in_with_password(w.tenant, "fiona@example.com", password)
            .await
            .unwrap();
        w.lineup
            .link_chat_user(w.tenant, w.fiona.id, Platform::Slack, "U0FIONA")
            .await
            .unwrap();
        // Alan's portal account is not linked to his employee record; his email gives it away.
        w.lineup
            .add_user(
                w.tenant,
                &ADMIN,
                &w.alan.email,
                "Alan",
                password,
                lineup_core::identity::user::Role::Viewer,
                None,
            )
            .await
            .unwrap();

        // The only owner cannot be offboarded: nobody would be left to run the organisation.
        let err = w
            .lineup
            .offboard_employee(w.tenant, &ADMIN, w.olivia.id)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("last owner"), "{err}");
        let olivia = w.lineup.employee(w.tenant, w.olivia.id).await.unwrap();
        assert_eq!(
            olivia.status,
            EmployeeStatus::Active,
            "nothing half-written"
        );

        offboard(&w, &w.fiona).await;
        offboard(&w, &w.alan).await;
        let members: Vec<String> = w
            .lineup
            .members(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.email)
            .collect();
        assert_eq!(members, vec!["olivia@example.com"]);
        assert!(
            w.lineup
                .session(w.tenant, &signed_in.token)
                .await
                .unwrap()
                .is_none()
        );
        let user = signed_in.session.user_id.to_string();
        let mut tx = w.store.tenant(w.tenant).await.unwrap();
        let removed = store::audit::list_for_subject(&mut tx, w.tenant, "user", &user)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.action == "membership.removed")
            .expect("the removal is audited");
        drop(tx);
        assert_eq!(removed.after.unwrap()["sessions_ended"], 1);
        assert!(
            w.audit_actions("employee", &w.fiona.id.to_string())
                .await
                .contains(&"employee.chat_unlinked".to_owned())
        );
        assert_eq!(
            w.lineup
                .chat_employee(w.tenant, Platform::Slack, "U0FIONA")
                .await
                .unwrap(),
            None,
            "the chat link is gone"
        );
        // Nor does her email link her again.
        let err = w
            .lineup
            .employee_for_chat_user(w.tenant, Platform::Slack, "U0FIONA", Some(&w.fiona.email))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "you are no longer active at acme, so Lineup cannot act for you here; if that is a \
             mistake, ask your IT admin"
        );
        assert_eq!(
            w.lineup
                .chat_employee(w.tenant, Platform::Slack, "U0FIONA")
                .await
                .unwrap(),
            None
        );
        // History stays.
        assert!(
            w.audit_actions("employee", &w.fiona.id.to_string())
                .await
                .contains(&"employee.offboarded".to_owned())
        );
    }
);

both_backends!(
    escalation_skips_a_leaver_above_the_approver,
    |store| async move {
        let w = World::new(store).await;
        w.lineup
            .add_user(
                w.tenant,
                &ADMIN,
                &lineup_core::email_address::Email::parse("boss@example.com").unwrap(),
                "Boss",
                "a long test password",
                lineup_core::identity::user::Role::Owner,
                None,
            )
            .await
            .unwrap();
        let request = submit(&w, new_line(&w, "modal-to-maria")).await.request;
        assert_eq!(request.approver, Some(w.maria.id));
        // Olivia, above Maria, leaves while the request waits on Maria.
        offboard(&w, &w.olivia).await;

        let events = w
            .lineup
            .sweep_requests(request.routed_at + Duration::hours(49))
            .await
            .unwrap();
        let [
            SweepEvent::Escalated {
                request: escalated,
                approvers,
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!((escalated.route, escalated.approver), (Route::Admins, None));
        assert!(approvers.is_empty(), "{approvers:?}");
    }
);
