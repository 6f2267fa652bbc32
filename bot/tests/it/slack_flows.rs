//! Slack end to end: signed requests into the real routes, the real core and provider
//! simulator behind them, and a fake Slack Web API recording every call we make.

use std::sync::Arc;

use crate::harness::slack::*;
use lineup_core::audit::Actor;
use lineup_core::lines::request::{RequestState, cards};
use lineup_core::messaging::chat::Platform;
use lineup_testkit::both_backends;
use serde_json::json;

both_backends!(
    request_approve_and_receive_the_qr_code,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        assert_eq!(request.state, RequestState::Pending);
        let maria_dm = s.fake.dm_channel(MARIA);
        let card = s.cards_in(&maria_dm, 1).await.remove(0);
        let card_text = card.body["blocks"].to_string();
        assert!(
            card_text.contains("on-call phone") && card_text.contains("Ada"),
            "the card says who and why: {card_text}"
        );

        s.card_refs_saved(request.id, 1).await;
        s.click(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;

        // The card is updated in place, and the eSIM reaches Ada with its QR code.
        let ada_dm = s.fake.dm_channel(ADA);
        let upload = wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        assert_eq!(&upload.bytes[..8], b"\x89PNG\r\n\x1a\n");
        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .any(|u| u.body["channel"] == maria_dm.as_str()
                    && u.body["blocks"].to_string().contains("Approved by Maria")),
            "{updates:?}"
        );
        assert!(
            updates
                .iter()
                .all(|u| !u.body["blocks"].to_string().contains(cards::APPROVE)),
            "no stale buttons"
        );
        let delivery = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["blocks"].to_string().contains("LPA:1$")
            })
            .expect("the DM carries the LPA string");
        let text = delivery.body["blocks"].to_string();
        assert!(
            text.contains("SM-DP+")
                && text.contains("Matching ID")
                && text.contains("iPhone")
                && text.contains("Android")
        );
        // The requester, who is waiting, first: the eSIM DM goes before the note under the card.
        let ready_note = wait_until(|| {
            s.fake
                .calls_to("chat.postMessage")
                .into_iter()
                .find(|c| c.body.to_string().contains("Ready: the eSIM"))
        })
        .await;
        assert!(
            delivery.at < ready_note.at,
            "the DM went after the note under the card"
        );
        let thread: Vec<String> = s
            .fake
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.body["channel"] == maria_dm.as_str() && c.body.get("thread_ts").is_some())
            .map(|c| c.body["text"].to_string())
            .collect();
        assert!(
            thread.iter().any(|t| t.contains("Provisioning"))
                && thread.iter().any(|t| t.contains("Ready")),
            "{thread:?}"
        );
        let stored = s
            .world
            .lineup
            .request(s.world.tenant, request.id)
            .await
            .unwrap();
        assert_eq!(stored.state, RequestState::Fulfilled);
        assert_eq!(s.world.stats().await["subscriptions"]["total"], 1);
        s.assert_within_limits();
    }
);

both_backends!(
    deny_asks_for_a_reason_and_tells_the_requester,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        s.cards_in(&s.fake.dm_channel(MARIA), 1).await;
        s.click(TEAM, MARIA, cards::DENY, &request.id.to_string())
            .await;
        let modal = s
            .fake
            .wait_for("views.open", 2, WAIT)
            .await
            .pop()
            .unwrap()
            .body["view"]
            .clone();
        let empty = s
            .submit_view(
                TEAM,
                MARIA,
                &modal,
                json!({"deny_reason": {"deny_reason": {"type": "plain_text_input", "value": ""}}}),
            )
            .await;
        assert_eq!(
            empty["response_action"], "errors",
            "a denial needs a reason: {empty}"
        );
        s.submit_view(TEAM, MARIA, &modal, json!({"deny_reason": {"deny_reason": {"type": "plain_text_input", "value": "use the team phone"}}})).await;
        let ada_dm = s.fake.dm_channel(ADA);
        wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["blocks"].to_string().contains("use the team phone")
            })
        })
        .await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Denied
        );
        assert_eq!(s.world.stats().await["subscriptions"]["total"], 0);
        s.assert_within_limits();
    }
);

both_backends!(
    a_waiting_request_escalates_then_expires,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        s.flows
            .run_sweeps(request.routed_at + time::Duration::hours(49))
            .await
            .unwrap();
        let olivia_dm = s.fake.dm_channel(OLIVIA);
        s.cards_in(&olivia_dm, 1).await;
        s.card_refs_saved(request.id, 2).await;
        let moved = s.fake.calls_to("chat.update");
        assert!(
            moved.iter().any(|u| u.body["channel"] == maria_dm.as_str()
                && u.body["text"].to_string().contains("Escalated")),
            "{moved:?}"
        );
        let late = s
            .click_told(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;
        assert!(late.contains("only the request's approver"), "{late}");

        s.flows.run_sweeps(request.expires_at).await.unwrap();
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Expired
        );
        let ada_dm = s.fake.dm_channel(ADA);
        wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["text"].to_string().contains("expired")
            })
        })
        .await;
        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .any(|u| u.body["channel"] == olivia_dm.as_str()
                    && u.body["blocks"].to_string().contains("Expired")),
            "{updates:?}"
        );
        s.assert_within_limits();
    }
);

both_backends!(
    cap_raises_roaming_usage_and_help_from_the_command_line,
    |store| async move {
        let s = slack(store).await;
        let help = s.command(TEAM, ADA, "help").await;
        assert!(ephemeral_text(&help).contains("/esim roaming"), "{help}");
        let bad = s.command(TEAM, ADA, "cap lots because").await;
        assert!(
            ephemeral_text(&bad).contains("`lots` is not an amount"),
            "{bad}"
        );
        let cap = s.command(TEAM, ADA, "cap 90 conference week").await;
        assert!(
            ephemeral_text(&cap).contains("finance"),
            "above the threshold goes to finance: {cap}"
        );
        s.cards_in(&s.fake.dm_channel(FIONA), 1).await;
        let usage = s.command(TEAM, ADA, "usage").await;
        assert!(ephemeral_text(&usage).contains("Days left"), "{usage}");
        let no_line = s
            .command(TEAM, ADA, "roaming FR 2030-01-01 2030-01-05 client visit")
            .await;
        assert!(
            ephemeral_text(&no_line).contains("no working line"),
            "{no_line}"
        );
        let status = s.command(TEAM, ADA, "status").await;
        assert!(ephemeral_text(&status).contains("pending"), "{status}");
        s.assert_within_limits();
    }
);

both_backends!(
    strangers_and_other_workspaces_see_nothing,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        // A second tenant with its own workspace, and someone there.
        let (team, mallory) = s.stranger_workspace().await;
        let stolen = s
            .click_told(team, mallory, cards::APPROVE, &request.id.to_string())
            .await;
        assert!(stolen.contains("was not found"), "{stolen}");
        let status = s.command(team, mallory, "status").await;
        assert!(
            !ephemeral_text(&status).contains("on-call phone"),
            "{status}"
        );
        let unknown = s.command(TEAM, "U0NOBODY", "status").await;
        assert!(
            ephemeral_text(&unknown).contains("couldn't find you"),
            "{unknown}"
        );
        let foreign = s.command("T0UNKNOWN", ADA, "status").await;
        assert!(
            ephemeral_text(&foreign).contains("isn't connected"),
            "{foreign}"
        );
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Pending
        );
        s.assert_within_limits();
    }
);

both_backends!(
    a_test_alert_reaches_the_finance_channel_with_its_buttons,
    |store| async move {
        let s = slack(store).await;
        let tenant = s.world.lineup.tenant(s.world.tenant).await.unwrap();
        let ws = s
            .world
            .lineup
            .workspace(Platform::Slack, TEAM)
            .await
            .unwrap()
            .unwrap();
        let alert = lineup_core::spend::alert::test_alert(&tenant);
        let err = s
            .flows
            .post_finance_alert(&ws, Platform::Slack, &alert)
            .await
            .unwrap_err();
        assert!(err.contains("no finance channel"), "{err}");

        let mut settings = tenant.settings.clone();
        settings.finance_channel = Some("C0FINANCE".into());
        s.world
            .lineup
            .update_settings(s.world.tenant, &Actor::System, settings)
            .await
            .unwrap();
        s.flows
            .post_finance_alert(&ws, Platform::Slack, &alert)
            .await
            .unwrap();
        let posted = s
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| c.body["channel"] == "C0FINANCE")
            .unwrap();
        let blocks = posted.body["blocks"].to_string();
        for action in [
            lineup_core::spend::alert::SUSPEND_LINE,
            lineup_core::spend::alert::RAISE_CAP,
            lineup_core::spend::alert::SNOOZE,
        ] {
            assert!(blocks.contains(action), "{blocks}");
        }
        assert_eq!(posted.token.as_deref(), Some(TOKEN));
        let told = s
            .click_told(TEAM, FIONA, lineup_core::spend::alert::SNOOZE, "test")
            .await;
        assert!(told.contains("test alert"), "{told}");
        s.assert_within_limits();
    }
);

both_backends!(
    a_provider_failure_is_reported_to_both_sides_and_can_be_retried,
    |store| async move {
        let s = slack(store).await;
        s.world
            .sim(
                reqwest::Method::POST,
                "/_sim/faults",
                Some(json!({
                    "match": {"order_type": "activate_subscription"},
                    "action": {"cancel_with": "PROVISIONING_FAILED"},
                    "times": 1
                })),
            )
            .await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        s.click(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;
        let ada_dm = s.fake.dm_channel(ADA);
        let failure_to = |channel: String| {
            let fake = &s.fake;
            move || {
                fake.calls_to("chat.postMessage").into_iter().find(|c| {
                    c.body["channel"] == channel.as_str()
                        && c.body["blocks"].to_string().contains("PROVISIONING_FAILED")
                        && c.body["blocks"].to_string().contains(cards::RETRY)
                })
            }
        };
        wait_until(failure_to(ada_dm.clone())).await;
        wait_until(failure_to(maria_dm.clone())).await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Failed
        );

        s.click(TEAM, MARIA, cards::RETRY, &request.id.to_string())
            .await;
        wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Fulfilled
        );
        // The canceled order's subscription was abandoned by the provider; the retry made
        // the one working line.
        let stats = s.world.stats().await;
        assert_eq!(stats["subscriptions"]["active"], 1, "{stats}");
        assert_eq!(stats["subscriptions"]["pending"], 0, "{stats}");
        s.assert_within_limits();
    }
);

both_backends!(
    a_linked_person_is_not_looked_up_in_slack_again,
    |store| async move {
        let s = slack(store).await;
        s.command(TEAM, ADA, "status").await;
        let lookups = s.fake.calls_to("users.info").len();
        assert_eq!(lookups, 1, "the first command finds Ada by her Slack email");
        s.command(TEAM, ADA, "usage").await;
        assert_eq!(
            s.fake.calls_to("users.info").len(),
            lookups,
            "then she is known"
        );
    }
);

both_backends!(
    a_decision_made_in_the_portal_updates_the_cards_and_delivers_the_esim_by_chat,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        // Olivia approves in the portal, as the portal does: core decides, chat is told.
        let decided = s
            .world
            .lineup
            .decide_request(
                s.world.tenant,
                s.world.olivia.id,
                request.id,
                lineup_core::lines::request::Decision::Approve,
                None,
            )
            .await
            .unwrap();
        assert!(decided.won);
        s.flows
            .after_outside_decision(s.world.tenant, request.id)
            .await;

        let updates = s.fake.calls_to("chat.update");
        assert!(
            updates
                .iter()
                .any(|u| u.body["channel"] == maria_dm.as_str()
                    && u.body["blocks"].to_string().contains("Approved by Olivia")),
            "Maria's card no longer offers buttons: {updates:?}"
        );
        let ada_dm = s.fake.dm_channel(ADA);
        assert!(
            s.fake
                .uploads()
                .iter()
                .any(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str())),
            "the QR code reached Ada"
        );
        let stored = s
            .world
            .lineup
            .request(s.world.tenant, request.id)
            .await
            .unwrap();
        assert_eq!(stored.state, RequestState::Fulfilled);
        assert_eq!(s.world.stats().await["subscriptions"]["total"], 1);
    }
);

/// Ada's 50.00 budget passes 50 % (1 GB on her 25.00 plan): a finance alert about her
/// employee budget, whose buttons act on her live line.
async fn ada_budget_alert(
    s: &Slack,
) -> (
    lineup_core::lines::line::Line,
    lineup_core::spend::alert::Alert,
) {
    use lineup_testkit::portal::{cap_employee, usage_record};
    let w = &s.world;
    let line = w.active_line(&w.ada, "ada-alert-line").await;
    let policy = lineup_core::spend::policy::CapAction::Alert;
    cap_employee(w, &w.ada, 5_000, vec![50, 80], policy).await;
    let half_hour = std::time::Duration::from_secs(1800);
    let record = usage_record(
        &line,
        "ada-1gb",
        half_hour,
        lineup_core::money::Bytes::GB,
        "US",
    );
    let report = w.lineup.record_usage(w.tenant, &[record]).await.unwrap();
    assert_eq!(report.alerts, 1);
    let alert = w
        .lineup
        .alerts(w.tenant, &Default::default())
        .await
        .unwrap()
        .remove(0);
    (line, alert)
}

both_backends!(
    finance_alert_buttons_suspend_raise_and_snooze_once_for_finance_only,
    |store| async move {
        use lineup_core::lines::line::LineState;
        use lineup_core::spend::alert::{self, AlertState};
        let s = slack(store).await;
        let w = &s.world;
        let (line, budget) = ada_budget_alert(&s).await;
        let id = budget.id.to_string();
        let tenant = w.lineup.tenant(w.tenant).await.unwrap();
        let finance = alert::finance_message(&budget, &tenant);
        assert!(
            finance
                .actions
                .iter()
                .any(|a| a.id == alert::RAISE_CAP && a.label == "Raise cap +12.50 USD"),
            "the button says what it raises: {:?}",
            finance.actions
        );

        // Ada is a plain employee: refused, and nothing changes.
        let told = s.click_told(TEAM, ADA, alert::SUSPEND_LINE, &id).await;
        assert!(told.contains("Only finance, admin or owner"), "{told}");
        let suspends = || async {
            w.stats().await["orders"]["by_type"]["suspend_subscription"]
                .as_u64()
                .unwrap_or(0)
        };
        assert_eq!(suspends().await, 0);
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Active
        );

        // Fiona (finance) suspends; a double click suspends once and says who did it.
        let told = s.click_told(TEAM, FIONA, alert::SUSPEND_LINE, &id).await;
        assert!(
            told.contains("Suspended Ada Tester's line (ICCID"),
            "{told}"
        );
        let again = s.click_told(TEAM, OLIVIA, alert::SUSPEND_LINE, &id).await;
        assert!(
            again.contains("Nothing to do for Ada Tester's line (ICCID")
                && again
                    .contains("is suspended (Suspend was pressed on this alert by Fiona Tester"),
            "{again}"
        );
        assert_eq!(suspends().await, 1, "one suspension at the provider");
        assert_eq!(
            w.lineup.line(w.tenant, line.id).await.unwrap().state,
            LineState::Suspended
        );
        let fiona = format!("employee:{}", w.fiona.id);
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let events = lineup_core::store::audit::list_for_subject(&mut tx, w.tenant, "alert", &id)
            .await
            .unwrap();
        drop(tx);
        assert!(
            events
                .iter()
                .any(|e| e.action == "alert.suspend_line" && e.actor == fiona),
            "audited as the clicking employee: {events:?}"
        );

        // Raise cap adds 25 % of the 50.00 cap for the period, once.
        let told = s.click_told(TEAM, FIONA, alert::RAISE_CAP, &id).await;
        assert!(told.contains("by 12.50 USD"), "{told}");
        let again = s.click_told(TEAM, OLIVIA, alert::RAISE_CAP, &id).await;
        assert!(
            again.contains("already raised from this alert by Fiona Tester"),
            "{again}"
        );
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let raises =
            lineup_core::store::guardrails::period_raises(&mut tx, w.tenant, &budget.period)
                .await
                .unwrap();
        drop(tx);
        assert_eq!(
            raises,
            vec![(
                lineup_core::spend::policy::CapScope::Employee(w.ada.id),
                1_250
            )]
        );

        // Snooze silences it for a week; a second click says so.
        let told = s.click_told(TEAM, FIONA, alert::SNOOZE, &id).await;
        assert!(told.contains("Snoozed for 7 days"), "{told}");
        let snoozed = w.lineup.alert(w.tenant, budget.id).await.unwrap();
        assert_eq!(snoozed.state, AlertState::Snoozed);
        let until = snoozed.snoozed_until.unwrap() - time::OffsetDateTime::now_utc();
        assert!(until > time::Duration::days(6) && until <= time::Duration::days(7));
        let again = s.click_told(TEAM, OLIVIA, alert::SNOOZE, &id).await;
        assert!(again.contains("Already snoozed by Fiona Tester"), "{again}");
    }
);

both_backends!(
    retry_needs_the_authority_to_decide_the_request,
    |store| async move {
        let s = slack(store).await;
        s.world
            .sim(
                reqwest::Method::POST,
                "/_sim/faults",
                Some(json!({
                    "match": {"order_type": "activate_subscription"},
                    "action": {"cancel_with": "PROVISIONING_FAILED"},
                    "times": 1
                })),
            )
            .await;
        let request = s.request_line().await;
        let maria_dm = s.fake.dm_channel(MARIA);
        s.cards_in(&maria_dm, 1).await;
        s.card_refs_saved(request.id, 1).await;
        s.click(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
            .await;
        wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == maria_dm.as_str()
                    && c.body["blocks"].to_string().contains(cards::RETRY)
            })
        })
        .await;
        let orders = s.world.stats().await["orders"]["total"].clone();

        let peer = s
            .click_told(TEAM, ALAN, cards::RETRY, &request.id.to_string())
            .await;
        assert!(peer.contains("only the request's approver"), "{peer}");
        let own = s
            .click_told(TEAM, ADA, cards::RETRY, &request.id.to_string())
            .await;
        assert!(own.contains("not its requester"), "{own}");
        assert_eq!(
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state,
            RequestState::Failed
        );
        assert_eq!(
            s.world.stats().await["orders"]["total"],
            orders,
            "no order placed"
        );

        let approver = s
            .click_told(TEAM, MARIA, cards::RETRY, &request.id.to_string())
            .await;
        assert!(approver.contains("Trying again"), "{approver}");
        let retried = s
            .world
            .audit_actions("request", &request.id.to_string())
            .await;
        assert!(
            retried.contains(&"request.retry_requested".to_owned()),
            "{retried:?}"
        );
    }
);

both_backends!(a_leavers_approve_click_is_refused, |store| async move {
    let s = slack(store).await;
    let request = s.request_line().await;
    let maria_dm = s.fake.dm_channel(MARIA);
    s.cards_in(&maria_dm, 1).await;
    s.card_refs_saved(request.id, 1).await;
    s.world
        .lineup
        .offboard_employee(s.world.tenant, &Actor::System, s.world.maria.id)
        .await
        .unwrap();

    let told = s
        .click_told(TEAM, MARIA, cards::APPROVE, &request.id.to_string())
        .await;
    assert!(told.contains("no longer active at acme"), "{told}");
    let after = s
        .world
        .lineup
        .request(s.world.tenant, request.id)
        .await
        .unwrap();
    assert_eq!(after.state, RequestState::Pending);
    assert_eq!(
        after.approver,
        Some(s.world.olivia.id),
        "moved up the chain"
    );
    let status = s.command(TEAM, MARIA, "status").await;
    assert!(
        ephemeral_text(&status).contains("no longer active at acme"),
        "{status}"
    );
});

both_backends!(
    a_request_card_click_checks_who_may_decide_before_saying_it_is_decided,
    |store| async move {
        let s = slack(store).await;
        let request = s.request_line().await;
        let id = request.id.to_string();
        let state = || async {
            s.world
                .lineup
                .request(s.world.tenant, request.id)
                .await
                .unwrap()
                .state
        };

        // Alan, Ada's peer, has not used Lineup yet: found by his Slack email, then refused.
        let told = s.click_told(TEAM, ALAN, cards::APPROVE, &id).await;
        assert!(told.contains("only the request's approver"), "{told}");
        let told = s.click_told(TEAM, ADA, cards::APPROVE, &id).await;
        assert!(told.contains("cannot decide your own request"), "{told}");
        assert_eq!(state().await, RequestState::Pending);

        // Maria approves; her second click is told who decided, and Alan, known by now, is
        // still refused rather than told it is decided.
        s.click(TEAM, MARIA, cards::APPROVE, &id).await;
        eventually("the approval", || async {
            state().await != RequestState::Pending
        })
        .await;
        let again = s.click_told(TEAM, MARIA, cards::APPROVE, &id).await;
        assert!(
            again.contains("Already decided") && again.contains("Approved by"),
            "{again}"
        );
        let lookups = s.fake.calls_to("users.info").len();
        let told = s.click_told(TEAM, ALAN, cards::APPROVE, &id).await;
        assert!(told.contains("only the request's approver"), "{told}");
        assert_eq!(
            s.fake.calls_to("users.info").len(),
            lookups,
            "Alan is linked since his first click"
        );
    }
);

/// Waits until `done` holds (the lookups run behind the answer).
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

both_backends!(
    installing_slack_links_everyone_slack_knows_by_email,
    |store| async move {
        use lineup_bot::slack::{Installation, SlackApp, SlackWorkspaces};
        let s = slack(store).await;
        let (w, tenant) = (&s.world, s.world.tenant);
        let zed = lineup_testkit::world::add_employee(&w.lineup, tenant, "zed", None).await;
        w.lineup
            .link_chat_user(tenant, w.olivia.id, Platform::Slack, OLIVIA)
            .await
            .unwrap();
        // Slack asks us to slow down once; the lookups wait and carry on.
        s.fake.rate_limit_next("users.lookupByEmail", 1);
        let app = SlackApp::new(s.flows.clone(), "https://x/settings".into());
        let install = Installation {
            team_id: TEAM.into(),
            team_name: "Acme".into(),
            bot_token: TOKEN.into(),
            bot_user_id: "U0BOT".into(),
            authed_user_id: OLIVIA.into(),
            scopes: vec!["users:read.email".into()],
        };
        app.installed(tenant, None, install).await.unwrap();

        let reachable = [
            (&w.maria, MARIA),
            (&w.fiona, FIONA),
            (&w.ada, ADA),
            (&w.alan, ALAN),
        ];
        for (person, user) in reachable {
            eventually(&format!("linking {}", person.email), || async {
                w.lineup
                    .chat_user_of(tenant, person.id, Platform::Slack)
                    .await
                    .unwrap()
                    .as_deref()
                    == Some(user)
            })
            .await;
        }
        eventually("looking zed up", || async {
            s.fake
                .calls_to("users.lookupByEmail")
                .iter()
                .any(|c| c.body["email"] == "zed@example.com")
        })
        .await;
        let mut looked_up: Vec<String> = s
            .fake
            .calls_to("users.lookupByEmail")
            .iter()
            .map(|c| c.body["email"].as_str().unwrap_or_default().to_owned())
            .collect();
        looked_up.sort();
        looked_up.dedup();
        assert_eq!(
            looked_up,
            [
                "ada@example.com",
                "alan@example.com",
                "fiona@example.com",
                "maria@example.com",
                "zed@example.com"
            ],
            "everyone not yet linked is looked up, by email, once the rate limit passed"
        );
        assert!(
            s.fake
                .calls_to("users.lookupByEmail")
                .iter()
                .all(|c| c.token.as_deref() == Some(TOKEN)),
            "with the installed workspace's token"
        );
        assert_eq!(
            w.lineup
                .chat_user_of(tenant, zed.id, Platform::Slack)
                .await
                .unwrap(),
            None,
            "someone Slack does not know stays unlinked"
        );
        assert!(
            w.audit_actions("employee", &w.ada.id.to_string())
                .await
                .contains(&"employee.chat_linked".to_owned())
        );
    }
);

both_backends!(
    slack_failing_mid_lookup_is_reported_and_the_next_run_links_the_rest,
    |store| async move {
        use lineup_core::messaging::chat::{ChatDirectory, EmailMatch};
        let s = slack(store).await;
        let tenant = s.world.tenant;
        s.fake.fail_next("users.lookupByEmail", "fatal_error");
        let first = s.flows.link_people_by_email(tenant).await;
        assert_eq!(first.len(), 1, "only Slack can look people up: {first:?}");
        assert_eq!((first[0].platform, first[0].unlinked), (Platform::Slack, 5));
        assert_eq!(first[0].linked, 0);
        let failure = first[0].failure.clone().unwrap_or_default();
        assert!(failure.contains("fatal_error"), "{failure}");

        let second = s.flows.link_people_by_email(tenant).await;
        assert_eq!(
            second,
            [EmailMatch {
                platform: Platform::Slack,
                unlinked: 5,
                linked: 5,
                failure: None
            }]
        );
        let third = s.flows.link_people_by_email(tenant).await;
        assert_eq!((third[0].unlinked, third[0].linked), (0, 0));
        assert_eq!(
            s.fake.calls_to("users.lookupByEmail").len(),
            6,
            "people already linked are not looked up again"
        );
    }
);

both_backends!(
    asking_for_a_line_before_the_company_has_a_provider_says_what_to_do,
    |store| async move {
        let s = slack(store).await;
        let tenant = s.world.tenant;
        let lineup = &s.world.lineup;
        let mut tx = lineup.store().system().await.unwrap();
        for plan in &s.world.plans {
            lineup_core::store::plans::retire(&mut tx, tenant, plan.id)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let no_plans = s.command(TEAM, ADA, "request").await;
        assert!(
            ephemeral_text(&no_plans).contains("no plans to choose from yet"),
            "{no_plans}"
        );

        let mut tx = lineup.store().system().await.unwrap();
        lineup_core::store::provider_connections::set_uses_server_provider(&mut tx, tenant, false)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let no_provider = s.command(TEAM, ADA, "request").await;
        assert!(
            ephemeral_text(&no_provider).contains("has not connected its mobile provider"),
            "{no_provider}"
        );
        assert!(
            s.fake.calls_to("views.open").is_empty(),
            "no form with an empty plan list"
        );
    }
);

/// The states of the tenant's notices, oldest first.
async fn notice_states(s: &Slack) -> Vec<String> {
    s.world
        .lineup
        .employee_notices(s.world.tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, state, _)| state)
        .collect()
}

both_backends!(
    a_revoked_slack_token_gives_notices_up_instead_of_retrying,
    |store| async move {
        let s = slack(store).await;
        crate::harness::ada_crosses_her_cap(&s.world).await;
        s.fake.revoke_token(TOKEN);
        let now = time::OffsetDateTime::now_utc();
        let sent = s
            .world
            .lineup
            .deliver_employee_notices(s.flows.as_ref(), now)
            .await
            .unwrap();
        assert_eq!(sent, 0);
        assert_eq!(
            notice_states(&s).await,
            vec!["failed"; 3],
            "Slack said the token is gone: nothing to wait for"
        );
        let audit = s
            .world
            .audit_actions("employee", &s.world.ada.id.to_string())
            .await;
        assert_eq!(
            audit
                .iter()
                .filter(|a| *a == "employee.notice_failed")
                .count(),
            3,
            "{audit:?}"
        );
        let calls = s.fake.calls().len();
        let later = s
            .world
            .lineup
            .deliver_employee_notices(s.flows.as_ref(), now + time::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(later, 0);
        assert_eq!(s.fake.calls().len(), calls, "never tried again");
    }
);

both_backends!(
    a_rate_limited_notice_is_sent_again_once_retry_after_has_passed,
    |store| async move {
        use lineup_bot::flows::ChatFlows;
        use lineup_bot::slack::client::RetryPolicy;
        use lineup_bot::slack::{SlackClient, SlackConfig, SlackTransport};

        let s = slack(store).await;
        crate::harness::ada_crosses_her_cap(&s.world).await;
        // A client that hands the 429 straight back instead of waiting it out itself.
        let config = SlackConfig::new(SECRET, "123.456", "client-secret", "https://x/cb")
            .with_api_base_url(s.fake.api_url());
        let client = SlackClient::from_config(&config)
            .unwrap()
            .with_retry(RetryPolicy {
                max_retries: 0,
                max_wait: std::time::Duration::from_secs(1),
            });
        let flows = ChatFlows::new(
            s.world.lineup.clone(),
            vec![Arc::new(SlackTransport::new(client))],
        );
        s.fake.rate_limit_next("chat.postMessage", 120);
        let now = time::OffsetDateTime::now_utc();
        let deliver = |at| {
            let (lineup, flows) = (s.world.lineup.clone(), flows.clone());
            async move {
                lineup
                    .deliver_employee_notices(flows.as_ref(), at)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(deliver(now).await, 2, "the other notices went out");
        let mut states = notice_states(&s).await;
        states.sort();
        assert_eq!(states, vec!["queued", "sent", "sent"]);
        // Past the usual one-minute back-off, but Slack asked for two minutes.
        assert_eq!(deliver(now + time::Duration::seconds(61)).await, 0);
        assert_eq!(deliver(now + time::Duration::seconds(121)).await, 1);
        assert_eq!(notice_states(&s).await, vec!["sent"; 3]);
        assert_eq!(
            s.fake.calls_to("chat.postMessage").len(),
            4,
            "three notices, one of them twice"
        );
    }
);
