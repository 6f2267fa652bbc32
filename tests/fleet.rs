//! The fleet: three `lineup serve` processes on one PostgreSQL behind a round-robin proxy,
//! driven as Slack drives them. Every card is clicked on two replicas at once and still
//! decided once, with one provider order; a replica killed in the middle of provisioning under
//! provider faults leaves no line stuck; a rolling restart under steady clicks shows the
//! clicker no error. Each test prints every check that failed, not just the first.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::fleet::{
    Findings, Fleet, Post, RequestRow, activate_orders, count, deliver, progress, some_of,
};
use serde_json::json;

const REPLICAS: usize = 3;
/// Two fleets at once would be six servers on a machine of two cores: one at a time.
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The first test: 150 cards, each clicked at the same moment on two replicas (300
/// clicks; half of the pairs are one delivery sent twice, half two separate clicks), then 50
/// more lines approved under 30 % provider faults while one replica is killed with `kill -9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_decide_each_request_once_and_a_killed_one_leaves_no_line_stuck() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let began = Instant::now();
    let mut fleet = Fleet::start(REPLICAS, 200, 10).await;
    let mut findings = Findings::default();
    progress(began, "seeded and three replicas started");

    let (clicked_twice, provisioned_under_faults) = fleet.people.split_at(150);
    let (clicked_twice, provisioned_under_faults) =
        (clicked_twice.to_vec(), provisioned_under_faults.to_vec());
    let requests = fleet.file_requests(&clicked_twice, &mut findings).await;
    let cards = fleet.cards_for(&requests).await;
    progress(began, "150 requests filed, their cards posted");
    let double_clicks: Vec<Vec<Post>> = cards
        .iter()
        .enumerate()
        .map(|(n, card)| fleet.double_click(card, n))
        .collect();
    let answers = deliver(&fleet.sender, double_clicks, 8).await;
    findings.all_answered_200("double clicks", &answers);
    eprintln!(
        "fleet: {} double clicks sent; replicas served {:?} connections through the proxy",
        answers.len(),
        fleet.proxy.served()
    );
    findings.check(fleet.proxy.served().iter().all(|n| *n > 0), || {
        format!(
            "the proxy spread nothing to some replica: {:?}",
            fleet.proxy.served()
        )
    });
    fleet
        .wait_until_settled(&requests, Duration::from_secs(60))
        .await;
    progress(began, "double-clicked requests settled");
    let ledger = fleet.ledger(&requests).await;
    findings.each_decided_once_with_one_line(&ledger, "double-clicked");
    findings.each_fulfilled(&ledger, "double-clicked");
    fleet.check_provider_orders(&ledger, &mut findings).await;
    fleet.check_double_click_answers(&cards, &mut findings);

    // 50 more lines, approved while the provider fails 30 % of calls and orders take seconds,
    // and one replica dies (no shutdown of any kind) while they are provisioning.
    let requests = fleet
        .file_requests(&provisioned_under_faults, &mut findings)
        .await;
    let cards = fleet.cards_for(&requests).await;
    let before = fleet.sim_stats().await;
    fleet
        .sim_config(json!({
            "error_rate": 0.2,
            "error_statuses": {"429": 2, "500": 1, "503": 1},
            "error_after_processing": 0.5,
            "drop_connection_rate": 0.1,
            "retry_after_s": 1,
            "order_delay_ms": {"min": 1500, "max": 4000},
        }))
        .await;
    let clicks: Vec<Vec<Post>> = cards
        .iter()
        .map(|card| vec![fleet.click(card, &fleet.proxy.url(), "single")])
        .collect();
    let answers = deliver(&fleet.sender, clicks, 10).await;
    findings.all_answered_200("clicks under provider faults", &answers);
    let provisioning = fleet
        .wait_for_lines_in(&requests, "provisioning", 10, Duration::from_secs(30))
        .await;
    eprintln!("fleet: kill -9 replica 2 with {provisioning} of 50 lines provisioning");
    fleet.kill_hard(1);
    let deadline = Instant::now() + Duration::from_secs(150);
    let ledger = loop {
        let ledger = fleet.ledger(&requests).await;
        // Settled: every request carried out or given up, no line still provisioning.
        let done = ledger
            .iter()
            .all(|r| r.state != "approved" && !r.line_states.contains("provisioning"));
        if done || Instant::now() > deadline {
            break ledger;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    progress(
        began,
        "lines approved during the kill settled (or 150 s passed)",
    );
    let faults = fleet.sim_stats().await["faults_injected"]
        .as_u64()
        .unwrap_or(0);
    fleet
        .sim_config(json!({"error_rate": 0.0, "drop_connection_rate": 0.0}))
        .await;
    let after = fleet.sim_stats().await;
    findings.check(faults > 0, || {
        "the simulator injected no fault: the phase proved nothing".to_owned()
    });
    findings.each_decided_once_with_one_line(&ledger, "approved during the kill");
    findings.each_fulfilled(&ledger, "approved during the kill");
    let working = ledger
        .iter()
        .filter(|r| r.line_states == "ready" || r.line_states == "active")
        .count();
    findings.check(working == 50, || {
        let unwell: Vec<String> = ledger
            .iter()
            .filter(|r| r.line_states != "ready" && r.line_states != "active")
            .map(RequestRow::describe)
            .collect();
        format!(
            "{working} of 50 lines approved during the kill are ready or active after 150 s; \
             the rest:{}",
            some_of(&unwell)
        )
    });
    let new_subscriptions =
        count(&after["subscriptions"]["total"]) - count(&before["subscriptions"]["total"]);
    let new_orders = activate_orders(&after) - activate_orders(&before);
    findings.check(new_subscriptions == 50 && new_orders == 50, || {
        format!(
            "the simulator holds {new_subscriptions} new subscriptions from {new_orders} new \
             activation orders for the 50 lines approved during the kill (want 50 and 50)"
        )
    });
    fleet.check_sweep_jobs(&mut findings).await;
    eprintln!(
        "fleet: {faults} provider faults injected; wall time {:.0} s",
        began.elapsed().as_secs_f64()
    );
    findings.assert_none();
}

/// The second test: replica 1 is stopped (SIGTERM) and started again, then 2, then 3,
/// while approvals and `/esim status` commands keep arriving through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_steady_clicks_shows_no_error_and_no_duplicate() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let began = Instant::now();
    let mut fleet = Fleet::start(REPLICAS, 60, 10).await;
    let mut findings = Findings::default();
    let people = fleet.people.clone();
    let requests = fleet.file_requests(&people, &mut findings).await;
    let cards = fleet.cards_for(&requests).await;
    progress(began, "60 requests filed, their cards posted");

    // Clicks and status commands alternate, one every 100 ms, until the restart is over and
    // every card is clicked.
    let proxy = fleet.proxy.url();
    let mut clicks: Vec<Post> = cards
        .iter()
        .map(|card| fleet.click(card, &proxy, "rolling"))
        .collect();
    clicks.reverse();
    let status_commands: Vec<Post> = people
        .iter()
        .map(|person| Post {
            label: format!("/esim status from {}", person.user),
            url: proxy.clone(),
            path: "/slack/commands",
            body: fleet.slash_command(&person.user, "status", "status"),
            signature: None,
        })
        .collect();
    let restarted = Arc::new(AtomicBool::new(false));
    let clicker = tokio::spawn({
        let (sender, restarted) = (fleet.sender.clone(), restarted.clone());
        async move {
            let mut seen = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for n in 0_usize.. {
                if restarted.load(Ordering::SeqCst) && clicks.is_empty() {
                    break;
                }
                tick.tick().await;
                let post = match clicks.pop() {
                    Some(click) if n.is_multiple_of(2) => click,
                    Some(click) => {
                        clicks.push(click);
                        status_commands[n % status_commands.len()].clone()
                    }
                    None => status_commands[n % status_commands.len()].clone(),
                };
                let label = post.label.clone();
                seen.push((label, sender.send(post).await));
            }
            seen
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    for replica in 0..REPLICAS {
        let (status, took) = fleet.terminate(replica);
        eprintln!(
            "fleet: replica {} stopped by SIGTERM in {:.1} s: {}",
            replica + 1,
            took.as_secs_f64(),
            status.map_or("still running, killed".to_owned(), |s| s.to_string())
        );
        findings.check(status.is_some_and(|s| s.success()), || {
            format!(
                "replica {} did not exit cleanly within 30 s of SIGTERM: {status:?}",
                replica + 1
            )
        });
        fleet.start_replica(replica);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    restarted.store(true, Ordering::SeqCst);
    progress(began, "replicas 1, 2 and 3 restarted");
    let seen = clicker.await.unwrap();
    let failed: Vec<String> = seen
        .iter()
        .filter_map(|(label, outcome)| match outcome {
            Ok((200, _)) => None,
            Ok((status, body)) => Some(format!("{label}: HTTP {status} {body}")),
            Err(error) => Some(format!("{label}: {error}")),
        })
        .collect();
    eprintln!(
        "fleet: {} requests sent during the rolling restart, {} failed",
        seen.len(),
        failed.len()
    );
    findings.check(failed.is_empty(), || {
        format!(
            "{} of {} requests during the rolling restart failed:{}",
            failed.len(),
            seen.len(),
            some_of(&failed)
        )
    });
    fleet
        .wait_until_settled(&requests, Duration::from_secs(90))
        .await;
    progress(began, "requests settled");
    let ledger = fleet.ledger(&requests).await;
    findings.each_decided_once_with_one_line(&ledger, "clicked during the restart");
    findings.each_fulfilled(&ledger, "clicked during the restart");
    fleet.check_provider_orders(&ledger, &mut findings).await;
    eprintln!("fleet: wall time {:.0} s", began.elapsed().as_secs_f64());
    findings.assert_none();
}
