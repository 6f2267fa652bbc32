//! What the tests share. One behaviour table for every chat platform: the scenarios are
//! written once against [`ChatHarness`], and each platform (`slack`, `teams`, `discord`)
//! drives its own real routes against its own fake API. For the endpoint tests, each router on
//! a socket with the one [`recorder::Recorder`] behind it (`slack_router`, `teams_router`).
#![allow(dead_code)]

pub mod discord;
pub mod recorder;
pub mod slack;
pub mod slack_router;
pub mod teams;
pub mod teams_router;

use async_trait::async_trait;
use lineup_bot::flows::ChatFlows;
use lineup_core::ids::RequestId;
use lineup_core::lines::request::{Request, RequestState, cards};
use lineup_core::organisation::employee::Employee;
use lineup_testkit::world::World;

/// Driving one platform as its users would.
#[async_trait]
pub trait ChatHarness: Send + Sync {
    fn world(&self) -> &World;
    /// The flows behind the platform's routes (the worker's view of chat).
    fn flows(&self) -> &ChatFlows;
    /// Ada asks for a line through the platform's form; the stored request.
    async fn request_line(&self) -> Request;
    /// Wait until `who` has received `n` approval cards.
    async fn approval_cards_for(&self, who: &Employee, n: usize);
    /// `who` clicks `action` with `value`; what they were told, if anything.
    async fn click(&self, who: &Employee, action: &str, value: &str) -> Option<String>;
    /// The exact same signed click delivered twice; what each delivery told the clicker.
    async fn replayed_click(
        &self,
        who: &Employee,
        action: &str,
        value: &str,
    ) -> (Option<String>, Option<String>);
    /// `who` denies through the platform's deny form.
    async fn deny(&self, who: &Employee, request: RequestId, reason: &str);
    /// Wait until `who` has a direct message containing `text`.
    async fn direct_message_contains(&self, who: &Employee, text: &str);
    /// Wait until `who` has received the QR code image.
    async fn qr_received(&self, who: &Employee);
    /// A well-formed request with a bad signature or token: the HTTP status.
    async fn forged_request_status(&self) -> u16;
    /// Someone from another tenant's workspace clicks Approve on `request`: what they're told.
    async fn stranger_clicks_approve(&self, request: RequestId) -> Option<String>;
    /// Payloads we sent that broke the platform's documented limits.
    fn violations(&self) -> Vec<String>;
}

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Polls `f` every 10 ms until it holds or `timeout` passes; whether it held.
pub async fn eventually<F: Fn() -> bool>(f: F, timeout: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    f()
}

/// Wait until the request remembers where its card went (delivery runs after the answer; a
/// person needs seconds to read a card, a test does not).
async fn cards_remembered(h: &dyn ChatHarness, request: RequestId) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let stored = h
            .world()
            .lineup
            .request(h.world().tenant, request)
            .await
            .unwrap();
        let remembered = stored.chat_refs.cards().next().is_some();
        if remembered {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the card's location was never saved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn state_of(h: &dyn ChatHarness, request: RequestId) -> RequestState {
    h.world()
        .lineup
        .request(h.world().tenant, request)
        .await
        .unwrap()
        .state
}

pub async fn request_approve_and_deliver(h: &dyn ChatHarness) {
    let w = h.world();
    let request = h.request_line().await;
    assert_eq!(request.state, RequestState::Pending);
    h.approval_cards_for(&w.maria, 1).await;
    h.click(&w.maria, cards::APPROVE, &request.id.to_string())
        .await;
    h.qr_received(&w.ada).await;
    h.direct_message_contains(&w.ada, "LPA:1$").await;
    h.direct_message_contains(&w.ada, "SM-DP+").await;
    wait_for_state(h, request.id, RequestState::Fulfilled).await;
    assert_eq!(w.stats().await["subscriptions"]["total"], 1);
    // Sending the code to its holder is a reveal like any other: audited, by Ada, via chat.
    let line = &w.lineup.lines(w.tenant).await.unwrap()[0];
    let history = w.lineup.line_history(w.tenant, line.id).await.unwrap();
    let reveal = history
        .iter()
        .find(|e| e.action == "line.activation_code_revealed")
        .expect("the DM's reveal is audited");
    assert_eq!(reveal.actor, format!("employee:{}", w.ada.id));
    assert_eq!(reveal.after.as_ref().unwrap()["via"], "chat");
    assert!(h.violations().is_empty(), "{:?}", h.violations());
}

pub async fn deny_with_a_reason(h: &dyn ChatHarness) {
    let w = h.world();
    let request = h.request_line().await;
    h.approval_cards_for(&w.maria, 1).await;
    cards_remembered(h, request.id).await;
    h.deny(&w.maria, request.id, "use the team phone").await;
    h.direct_message_contains(&w.ada, "use the team phone")
        .await;
    assert_eq!(state_of(h, request.id).await, RequestState::Denied);
    assert_eq!(w.stats().await["subscriptions"]["total"], 0);
    assert!(h.violations().is_empty(), "{:?}", h.violations());
}

pub async fn only_the_approver_and_never_oneself(h: &dyn ChatHarness) {
    let w = h.world();
    let request = h.request_line().await;
    let id = request.id.to_string();
    let peer = h
        .click(&w.alan, cards::APPROVE, &id)
        .await
        .unwrap_or_default();
    assert!(peer.contains("only the request's approver"), "{peer}");
    let own = h
        .click(&w.ada, cards::APPROVE, &id)
        .await
        .unwrap_or_default();
    assert!(own.contains("cannot decide your own request"), "{own}");
    assert_eq!(state_of(h, request.id).await, RequestState::Pending);
}

pub async fn forged_requests_are_refused(h: &dyn ChatHarness) {
    assert_eq!(h.forged_request_status().await, 401);
}

pub async fn a_replayed_request_is_handled_once(h: &dyn ChatHarness) {
    let w = h.world();
    let request = h.request_line().await;
    let (first, second) = h
        .replayed_click(&w.alan, cards::APPROVE, &request.id.to_string())
        .await;
    assert!(first.is_some_and(|t| t.contains("only the request's approver")));
    assert_eq!(
        second, None,
        "the replay was acknowledged, not handled again"
    );
}

pub async fn double_clicks_give_one_decision(h: &dyn ChatHarness) {
    let w = h.world();
    let request = h.request_line().await;
    h.approval_cards_for(&w.maria, 1).await;
    cards_remembered(h, request.id).await;
    let id = request.id.to_string();
    let (a, b, c) = tokio::join!(
        h.click(&w.maria, cards::APPROVE, &id),
        h.click(&w.maria, cards::APPROVE, &id),
        h.click(&w.olivia, cards::APPROVE, &id),
    );
    let told: Vec<String> = [a, b, c].into_iter().flatten().collect();
    assert_eq!(
        told.iter()
            .filter(|t| t.contains("Already decided") && t.contains("Approved by"))
            .count(),
        2,
        "the losers are told who decided: {told:?}"
    );
    h.qr_received(&w.ada).await;
    let actions = w.audit_actions("request", &id).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "request.approved").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(w.stats().await["subscriptions"]["total"], 1);
}

pub async fn other_workspaces_cannot_touch_requests(h: &dyn ChatHarness) {
    let request = h.request_line().await;
    let told = h
        .stranger_clicks_approve(request.id)
        .await
        .unwrap_or_default();
    assert!(told.contains("was not found"), "{told}");
    assert_eq!(state_of(h, request.id).await, RequestState::Pending);
}

/// A failed order's Retry is a decision like Approve: only the approver may press it.
pub async fn retry_needs_the_authority_to_decide(h: &dyn ChatHarness) {
    let w = h.world();
    w.sim(
        reqwest::Method::POST,
        "/_sim/faults",
        Some(serde_json::json!({
            "match": {"order_type": "activate_subscription"},
            "action": {"cancel_with": "PROVISIONING_FAILED"},
            "times": 1
        })),
    )
    .await;
    let request = h.request_line().await;
    let id = request.id.to_string();
    h.approval_cards_for(&w.maria, 1).await;
    cards_remembered(h, request.id).await;
    h.click(&w.maria, cards::APPROVE, &id).await;
    wait_for_state(h, request.id, RequestState::Failed).await;
    let orders = w.stats().await["orders"]["total"].clone();

    let peer = h
        .click(&w.alan, cards::RETRY, &id)
        .await
        .unwrap_or_default();
    assert!(peer.contains("only the request's approver"), "{peer}");
    let own = h.click(&w.ada, cards::RETRY, &id).await.unwrap_or_default();
    assert!(own.contains("not its requester"), "{own}");
    assert_eq!(state_of(h, request.id).await, RequestState::Failed);
    assert_eq!(
        w.stats().await["orders"]["total"],
        orders,
        "no order placed"
    );

    h.click(&w.maria, cards::RETRY, &id).await;
    wait_for_state(h, request.id, RequestState::Fulfilled).await;
    assert_eq!(
        w.stats().await["orders"]["total"].as_i64(),
        orders.as_i64().map(|n| n + 1),
        "the approver's Retry placed one order"
    );
}

async fn wait_for_state(h: &dyn ChatHarness, request: RequestId, state: RequestState) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while state_of(h, request).await != state {
        assert!(
            tokio::time::Instant::now() < deadline,
            "request never reached {state:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Ada's own 10.00 cap with `suspend`, crossed by one sync: three notices for her are queued
/// (the 50 % and 80 % thresholds, and the suspension standing in for the cap-reached alert).
pub async fn ada_crosses_her_cap(w: &World) {
    use lineup_core::audit::Actor;
    use lineup_core::provider::{Roaming, UsageRecord};
    use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope};

    let line = w.active_line(&w.ada, "guardrail-dm").await;
    w.lineup
        .set_budget_cap(
            w.tenant,
            &Actor::System,
            BudgetCap {
                scope: CapScope::Employee(w.ada.id),
                amount_minor: 1_000,
                thresholds: vec![],
                action: CapAction::Suspend,
            },
        )
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let usage = UsageRecord {
        dedupe_key: "dm-1".into(),
        subscription_id: line.provider_subscription_id.clone().unwrap(),
        started_at: now - time::Duration::minutes(30),
        ended_at: now - time::Duration::minutes(20),
        data_bytes: 1 << 20,
        sms: 0,
        voice_seconds: 0,
        country: Some("US".into()),
        roaming: Roaming::None,
        in_bundle: None,
        observed_at: now,
    };
    w.lineup
        .record_usage_at(w.tenant, &[usage], now)
        .await
        .unwrap();
}

/// Ada's own budget cap suspends her line in the sync that crosses it; the worker tells her
/// by direct message on the tenant's platform, with the reason, and only once.
pub async fn a_guardrail_suspension_is_told_to_the_employee_once(h: &dyn ChatHarness) {
    let w = h.world();
    ada_crosses_her_cap(w).await;

    let sent = w
        .lineup
        .deliver_employee_notices(h.flows(), time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    // The default 50 % and 80 % thresholds, and the suspension, which stands in for the
    // cap-reached alert.
    assert_eq!(sent, 3);
    h.direct_message_contains(&w.ada, "Your eSIM line was suspended")
        .await;
    let again = w
        .lineup
        .deliver_employee_notices(
            h.flows(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(again, 0, "a sent notice is never sent again");
    let told = w.audit_actions("employee", &w.ada.id.to_string()).await;
    assert!(told.iter().any(|a| a == "employee.notified"), "{told:?}");
}

/// A leaver's manager gets the grace card by direct message on the platform, picks a
/// successor from the follow-up buttons, and the line moves to them and works again; a
/// second choice is told it came too late.
pub async fn a_leavers_manager_keeps_the_line_for_a_successor(h: &dyn ChatHarness) {
    use lineup_core::audit::Actor;
    use lineup_core::lines::line::LineState;
    use lineup_core::organisation::offboarding::grace::{CaseState, cards as grace};
    use lineup_core::organisation::tenant::OffboardingAction;

    let w = h.world();
    let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
    settings.offboarding_action = OffboardingAction::Grace;
    w.lineup
        .update_settings(w.tenant, &Actor::System, settings)
        .await
        .unwrap();
    let line = w.active_line(&w.maria, "maria-line").await;
    w.lineup
        .offboard_employee(w.tenant, &Actor::System, w.maria.id)
        .await
        .unwrap();
    h.flows()
        .run_offboarding_sweep(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    h.direct_message_contains(&w.olivia, "has left").await;
    let case = w.lineup.pending_offboarding_cases(w.tenant).await.unwrap()[0].clone();
    let picker = h
        .click(&w.olivia, grace::KEEP, &case.id.to_string())
        .await
        .unwrap_or_default();
    assert!(picker.contains("Who takes over"), "{picker}");
    let keep_for = format!("{}.1", grace::KEEP_FOR);
    h.click(
        &w.olivia,
        &keep_for,
        &grace::successor_value(case.id, w.ada.id),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let current = w.lineup.offboarding_case(w.tenant, case.id).await.unwrap();
        if current.state == CaseState::Done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{current:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let moved = w.lineup.line(w.tenant, line.id).await.unwrap();
    assert_eq!(moved.employee_id, w.ada.id);
    assert_eq!(moved.state, LineState::Active);
    // Release, not Terminate: Discord asks before a destructive button acts.
    let late = h
        .click(&w.olivia, grace::RELEASE, &case.id.to_string())
        .await
        .unwrap_or_default();
    assert!(late.contains("Already decided"), "{late}");
    assert!(h.violations().is_empty(), "{:?}", h.violations());
}

/// One test per scenario for a platform: `scenarios!(start_fn);` inside a module.
#[macro_export]
macro_rules! scenarios {
    ($start:path) => {
        $crate::scenarios!(@each $start,
            request_approve_and_deliver, deny_with_a_reason, only_the_approver_and_never_oneself,
            forged_requests_are_refused, a_replayed_request_is_handled_once,
            double_clicks_give_one_decision, other_workspaces_cannot_touch_requests,
            a_guardrail_suspension_is_told_to_the_employee_once,
            retry_needs_the_authority_to_decide,
            a_leavers_manager_keeps_the_line_for_a_successor);
    };
    (@each $start:path, $($scenario:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let harness = $start(lineup_testkit::sqlite_store().await).await;
            $crate::harness::$scenario(&harness).await;
        }
    )*};
}
