//! The fleet: three `lineup serve` processes on one PostgreSQL behind a round-robin proxy,
//! driven as Slack drives them. Every card is clicked on two replicas at once and still
//! decided once, with one provider order; a replica killed in the middle of provisioning under
//! provider faults leaves no line stuck; a rolling restart under steady clicks shows the
//! clicker no error. Each test prints every check that failed, not just the first.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, free_listen_address, start};
use lineup_core::ids::TenantId;
use lineup_core::lines::request::cards;
use lineup_core::messaging::chat::Platform;
use lineup_core::secret::SecretBox;
use lineup_core::store::Store;
use lineup_simulator::{Credentials, RunningSimulator, SimConfig};
use lineup_testkit::fake_slack::{FakeSlack, sign_slack_request};
use lineup_testkit::world::{ADMIN, add_employee, add_tenant, lineup_for, quick_poll};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const SIGNING_SECRET: &str = "fleet-signing-secret";
const TEAM: &str = "T0FLEET";
const BOT_TOKEN: &str = "xoxb-fleet";
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
    let mut fleet = Fleet::start(200, 10).await;
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
    let mut fleet = Fleet::start(60, 10).await;
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

/// Everything that went wrong, reported together at the end.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, holds: bool, problem: impl FnOnce() -> String) {
        if !holds {
            self.0.push(problem());
        }
    }

    fn all_answered_200(&mut self, what: &str, answers: &[Vec<Outcome>]) {
        let failed: Vec<String> = answers
            .iter()
            .flatten()
            .filter_map(|outcome| match outcome {
                Ok((200, _)) => None,
                Ok((status, body)) => Some(format!("HTTP {status} {body}")),
                Err(error) => Some(error.clone()),
            })
            .collect();
        self.check(failed.is_empty(), || {
            format!(
                "{what}: {} not answered 200:{}",
                failed.len(),
                some_of(&failed)
            )
        });
    }

    /// One decision, one audit event for it, one line and one provision order we placed.
    fn each_decided_once_with_one_line(&mut self, ledger: &[RequestRow], which: &str) {
        let wrong: Vec<String> = ledger
            .iter()
            .filter(|r| r.decisions != 1 || r.lines != 1 || r.provision_orders != 1)
            .map(RequestRow::describe)
            .collect();
        self.check(wrong.is_empty(), || {
            format!(
                "{} of {} requests {which} lack exactly one decision, line and order:{}",
                wrong.len(),
                ledger.len(),
                some_of(&wrong)
            )
        });
    }

    /// Every request carried out: its line delivered, not left `approved`.
    fn each_fulfilled(&mut self, ledger: &[RequestRow], which: &str) {
        let open: Vec<String> = ledger
            .iter()
            .filter(|r| r.state != "fulfilled")
            .map(RequestRow::describe)
            .collect();
        self.check(open.is_empty(), || {
            format!(
                "{} of {} requests {which} were not fulfilled:{}",
                open.len(),
                ledger.len(),
                some_of(&open)
            )
        });
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} fleet check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

/// A Slack request to send: to which server, and signed now (or with a given signature, to
/// deliver the very same request twice).
#[derive(Clone)]
struct Post {
    label: String,
    url: String,
    path: &'static str,
    body: String,
    signature: Option<(String, String)>,
}

/// HTTP status and body, or why no answer came.
type Outcome = Result<(u16, String), String>;

#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
}

impl Sender {
    async fn send(&self, post: Post) -> Outcome {
        let (timestamp, signature) = post.signature.unwrap_or_else(|| {
            let timestamp = unix_now().to_string();
            let signature = sign_slack_request(SIGNING_SECRET, &timestamp, post.body.as_bytes());
            (timestamp, signature)
        });
        let response = self
            .http
            .post(format!("{}{}", post.url, post.path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature)
            .body(post.body)
            .send()
            .await
            .map_err(|e| format!("{}: no answer: {e:?}", post.label))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("{}: answer cut off: {e:?}", post.label))?;
        Ok((status, body))
    }
}

/// Sends each group of posts at the same moment, `width` groups at a time; the answers in
/// the groups' order.
async fn deliver(sender: &Sender, groups: Vec<Vec<Post>>, width: usize) -> Vec<Vec<Outcome>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(width));
    let mut running = Vec::new();
    for group in groups {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let together: Vec<_> = group
            .into_iter()
            .map(|post| {
                tokio::spawn({
                    let sender = sender.clone();
                    async move { sender.send(post).await }
                })
            })
            .collect();
        running.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for post in together {
                answers.push(post.await.unwrap());
            }
            drop(permit);
            answers
        }));
    }
    let mut answers = Vec::new();
    for group in running {
        answers.push(group.await.unwrap());
    }
    answers
}

/// A round-robin TCP proxy, as a load balancer in front of the replicas: each connection goes
/// to the next replica; one that refuses the connection (stopped, or not yet listening) is
/// skipped, as a health check would take it out of rotation.
struct Proxy {
    addr: SocketAddr,
    served: Arc<Vec<AtomicUsize>>,
}

impl Proxy {
    async fn start(backends: Vec<SocketAddr>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = served.clone();
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            while let Ok((mut inbound, _)) = listener.accept().await {
                let first = next.fetch_add(1, Ordering::Relaxed);
                let (backends, counts) = (backends.clone(), counts.clone());
                tokio::spawn(async move {
                    for offset in 0..backends.len() {
                        let index = (first + offset) % backends.len();
                        let Ok(mut outbound) =
                            tokio::net::TcpStream::connect(backends[index]).await
                        else {
                            continue;
                        };
                        counts[index].fetch_add(1, Ordering::Relaxed);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                });
            }
        });
        Proxy { addr, served }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

/// A requester, by Slack user id.
#[derive(Clone)]
struct Person {
    user: String,
}

/// An approval card the fake Slack received: which request, in whose direct messages.
struct Card {
    request: String,
    approver: String,
}

struct Replica {
    listen: String,
    data: tempfile::TempDir,
    server: Option<Server>,
}

struct Fleet {
    replicas: Vec<Replica>,
    proxy: Proxy,
    sender: Sender,
    slack: FakeSlack,
    sim: RunningSimulator,
    db: PgPool,
    env: Vec<(String, String)>,
    plan: String,
    people: Vec<Person>,
    /// The managers' direct-message channels at the fake Slack, to their user ids.
    approver_of_channel: HashMap<String, String>,
}

impl Fleet {
    /// A tenant on a throwaway PostgreSQL with `requesters` employees, a manager for each
    /// `per_manager` of them, all known to Slack; the workspace installed, plans synced from
    /// the simulator; then three replicas and the proxy in front of them.
    async fn start(requesters: usize, per_manager: usize) -> Fleet {
        let url = lineup_testkit::fresh_postgres_url().await;
        let sim = lineup_simulator::spawn(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig::for_tests(),
            Credentials::default(),
        )
        .await
        .unwrap();
        let slack = FakeSlack::start().await;
        let key = SecretBox::generate_hex_key();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let lineup =
            lineup_for(&store, &sim, quick_poll()).with_secrets(SecretBox::from_hex(&key).unwrap());
        let tenant = add_tenant(&lineup, "fleet").await;
        lineup
            .install_workspace(
                tenant,
                &ADMIN,
                Platform::Slack,
                TEAM,
                Some("U0FLEETBOT"),
                BOT_TOKEN,
            )
            .await
            .unwrap();
        let plans = lineup.sync_plans(tenant, &ADMIN).await.unwrap();
        let mut people = Vec::new();
        let mut approver_of_channel = HashMap::new();
        for m in 0..requesters.div_ceil(per_manager) {
            let manager = format!("mgr{m:02}");
            let manager_id = add_employee(&lineup, tenant, &manager, None).await.id;
            let manager_user = link(&lineup, &slack, tenant, &manager, manager_id).await;
            approver_of_channel.insert(slack.dm_channel(&manager_user), manager_user.clone());
            for r in (m * per_manager)..((m + 1) * per_manager).min(requesters) {
                let name = format!("req{r:03}");
                let id = add_employee(&lineup, tenant, &name, Some(manager_id))
                    .await
                    .id;
                let user = link(&lineup, &slack, tenant, &name, id).await;
                people.push(Person { user });
            }
        }
        store.close().await;

        let db = PgPoolOptions::new()
            .max_connections(4)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    // The test reads every tenant's rows, as the workers do.
                    sqlx::query("SET app.system = 'on'")
                        .execute(connection)
                        .await
                        .map(|_| ())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        let credentials = Credentials::default();
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", url),
            ("LINEUP_SECRET_KEY", key),
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_owned()),
            ("SLACK_CLIENT_ID", "123.456".to_owned()),
            ("SLACK_CLIENT_SECRET", "fleet-client-secret".to_owned()),
            ("SLACK_API_BASE_URL", slack.api_url()),
            ("PROVIDER_BASE_URL", sim.base_url()),
            ("PROVIDER_CLIENT_ID", credentials.client_id),
            ("PROVIDER_CLIENT_SECRET", credentials.client_secret),
            ("PROVIDER_ACCOUNT_ID", sim.account_id()),
            // Read by the graceful shutdown of the durable-queue work (h13-sweeps).
            ("LINEUP_SHUTDOWN_GRACE_SECS", "10".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let replicas: Vec<Replica> = (0..REPLICAS)
            .map(|_| Replica {
                listen: free_listen_address(),
                data: tempfile::tempdir().unwrap(),
                server: None,
            })
            .collect();
        let backends = replicas.iter().map(|r| r.listen.parse().unwrap()).collect();
        let mut fleet = Fleet {
            replicas,
            proxy: Proxy::start(backends).await,
            sender: Sender {
                // A new connection per request: the proxy spreads requests, not connections.
                http: reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap(),
            },
            slack,
            sim,
            db,
            env,
            plan: plans[0].id.to_string(),
            people,
            approver_of_channel,
        };
        for replica in 0..REPLICAS {
            fleet.start_replica(replica);
        }
        fleet
    }

    fn start_replica(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        let data = replica.data.path().to_str().unwrap().to_owned();
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("LINEUP_LISTEN", &replica.listen));
        env.push(("LINEUP_DATA_DIR", &data));
        let server = tokio::task::block_in_place(|| start(&["serve"], &env));
        replica.server = Some(server);
    }

    fn terminate(&mut self, index: usize) -> (Option<std::process::ExitStatus>, Duration) {
        let server = self.replicas[index].server.take().unwrap();
        tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)))
    }

    fn kill_hard(&mut self, index: usize) {
        let server = self.replicas[index].server.take().unwrap();
        tokio::task::block_in_place(|| server.kill_hard());
    }

    fn replica_url(&self, index: usize) -> String {
        format!("http://{}", self.replicas[index].listen)
    }

    fn slash_command(&self, user: &str, text: &str, trigger: &str) -> String {
        serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", user),
            ("user_name", user),
            ("channel_id", "C0FLEET"),
            ("command", "/esim"),
            ("text", text),
            ("trigger_id", trigger),
            ("response_url", &self.slack.response_url(trigger)),
        ])
        .unwrap()
    }

    /// `/esim request` from each person through the proxy, then the modal each opened filled
    /// in and submitted through the proxy: the requests made, by id.
    async fn file_requests(&self, people: &[Person], findings: &mut Findings) -> Vec<String> {
        let triggers: Vec<String> = people
            .iter()
            .map(|_| format!("trigger-{}", uuid::Uuid::new_v4().simple()))
            .collect();
        let commands = people
            .iter()
            .zip(&triggers)
            .map(|(person, trigger)| {
                vec![Post {
                    label: format!("/esim request from {}", person.user),
                    url: self.proxy.url(),
                    path: "/slack/commands",
                    body: self.slash_command(&person.user, "request", trigger),
                    signature: None,
                }]
            })
            .collect();
        findings.all_answered_200("/esim request", &deliver(&self.sender, commands, 8).await);
        let modal = self.opened_modals(&triggers).await;
        let submissions = people
            .iter()
            .map(|person| {
                let values = json!({
                    "plan": {"plan": {"type": "static_select", "selected_option":
                        {"text": {"type": "plain_text", "text": "plan"}, "value": self.plan}}},
                    "reason": {"reason": {"type": "plain_text_input", "value": "on call"}},
                    "wanted_date": {"wanted_date": {"type": "datepicker", "selected_date": null}},
                });
                let payload = json!({
                    "type": "view_submission",
                    "team": {"id": TEAM, "domain": "fleet"},
                    "user": {"id": person.user, "username": person.user, "team_id": TEAM},
                    "api_app_id": "A0LINEUP",
                    "trigger_id": "trigger-view",
                    "view": {
                        "id": format!("V{}", uuid::Uuid::new_v4().simple()),
                        "team_id": TEAM, "type": "modal",
                        "callback_id": modal["callback_id"],
                        "private_metadata": modal["private_metadata"],
                        "blocks": modal["blocks"], "title": modal["title"],
                        "state": {"values": values}, "hash": "h",
                        "app_id": "A0LINEUP", "bot_id": "B0BOT",
                    },
                });
                vec![Post {
                    label: format!("request form of {}", person.user),
                    url: self.proxy.url(),
                    path: "/slack/interactions",
                    body: serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap(),
                    signature: None,
                }]
            })
            .collect();
        let answers = deliver(&self.sender, submissions, 8).await;
        findings.all_answered_200("request forms", &answers);
        let refused: Vec<&String> = answers
            .iter()
            .flatten()
            .filter_map(|a| a.as_ref().ok())
            .map(|(_, body)| body)
            .filter(|body| body.contains("response_action"))
            .collect();
        findings.check(refused.is_empty(), || {
            format!("request forms kept open with errors: {refused:?}")
        });
        let users: Vec<String> = people.iter().map(|p| p.user.clone()).collect();
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT r.id::text FROM requests r
             JOIN chat_identities c ON c.employee_id = r.employee_id AND c.platform = 'slack'
             WHERE c.external_id = ANY($1) ORDER BY r.created_at",
        )
        .bind(&users)
        .fetch_all(&self.db)
        .await
        .unwrap();
        assert_eq!(
            ids.len(),
            people.len(),
            "one request stored per form submitted"
        );
        ids
    }

    /// Waits until a modal was opened for every trigger; one of them (they are alike).
    async fn opened_modals(&self, triggers: &[String]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let opened = self.slack.calls_to("views.open");
            let with: BTreeSet<&str> = opened
                .iter()
                .filter_map(|call| call.body["trigger_id"].as_str())
                .collect();
            let missing = triggers
                .iter()
                .filter(|t| !with.contains(t.as_str()))
                .count();
            if missing == 0 {
                return opened[0].body["view"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} `/esim request` commands opened no modal",
                triggers.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The approval cards of `requests` posted to their approvers' direct messages.
    async fn cards_for(&self, requests: &[String]) -> Vec<Card> {
        let wanted: BTreeSet<&str> = requests.iter().map(String::as_str).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut cards: BTreeMap<String, Card> = BTreeMap::new();
            for post in self.slack.calls_to("chat.postMessage") {
                let Some(approver) = post.body["channel"]
                    .as_str()
                    .and_then(|c| self.approver_of_channel.get(c))
                else {
                    continue;
                };
                for request in approve_buttons(&post.body["blocks"]) {
                    if wanted.contains(request.as_str()) {
                        cards.insert(
                            request.clone(),
                            Card {
                                request,
                                approver: approver.clone(),
                            },
                        );
                    }
                }
            }
            if cards.len() == wanted.len() {
                return cards.into_values().collect();
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {} approval cards were posted within 30 s",
                cards.len(),
                wanted.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A `block_actions` payload: `approver` clicks Approve on `card`; what they are told
    /// goes to the fake's response_url `answer`.
    fn click_body(&self, card: &Card, answer: &str) -> String {
        let payload = json!({
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "fleet"},
            "user": {"id": card.approver, "username": card.approver, "team_id": TEAM},
            "api_app_id": "A0LINEUP",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0X"},
            "channel": {"id": "D0X", "name": "directmessage"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "card", "blocks": []},
            "trigger_id": format!("trigger-{}", uuid::Uuid::new_v4().simple()),
            "response_url": self.slack.response_url(answer),
            "actions": [{"action_id": cards::APPROVE, "block_id": "actions", "type": "button",
                         "text": {"type": "plain_text", "text": "Approve"}, "value": card.request,
                         "action_ts": format!("{}.{}", unix_now(), uuid::Uuid::new_v4().simple())}],
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }

    fn click(&self, card: &Card, url: &str, answer: &str) -> Post {
        Post {
            label: format!("Approve {} by {}", card.request, card.approver),
            url: url.to_owned(),
            path: "/slack/interactions",
            body: self.click_body(card, &format!("{answer}-{}", card.request)),
            signature: None,
        }
    }

    /// Card `n` clicked on two replicas at once: for even `n` one delivery sent to both (a
    /// retried or duplicated request, same signature), for odd `n` two separate clicks.
    fn double_click(&self, card: &Card, n: usize) -> Vec<Post> {
        let urls = [
            self.replica_url(n % REPLICAS),
            self.replica_url((n + 1) % REPLICAS),
        ];
        if n.is_multiple_of(2) {
            let body = self.click_body(card, &format!("replayed-{}", card.request));
            let timestamp = unix_now().to_string();
            let signature = sign_slack_request(SIGNING_SECRET, &timestamp, body.as_bytes());
            urls.into_iter()
                .map(|url| Post {
                    label: format!("the same Approve of {} on {url}", card.request),
                    url,
                    path: "/slack/interactions",
                    body: body.clone(),
                    signature: Some((timestamp.clone(), signature.clone())),
                })
                .collect()
        } else {
            urls.into_iter()
                .zip(["first", "second"])
                .map(|(url, which)| Post {
                    url,
                    ..self.click(card, "", which)
                })
                .collect()
        }
    }

    /// Double clicks answered as a fleet should: the same delivery twice is handled once (the
    /// winner is told nothing, the copy is acknowledged and skipped), and of two separate
    /// clicks exactly one is told "Already decided".
    fn check_double_click_answers(&self, cards: &[Card], findings: &mut Findings) {
        let already = |answer: &str| {
            self.slack
                .responses(answer)
                .iter()
                .filter(|r| r.to_string().contains("Already decided"))
                .count()
        };
        let (mut replayed_twice, mut separate_not_once) = (Vec::new(), Vec::new());
        for (n, card) in cards.iter().enumerate() {
            if n.is_multiple_of(2) {
                let told = already(&format!("replayed-{}", card.request));
                if told > 0 {
                    replayed_twice.push(card.request.clone());
                }
            } else {
                let told = already(&format!("first-{}", card.request))
                    + already(&format!("second-{}", card.request));
                if told != 1 {
                    separate_not_once.push(format!("{}: {told}", card.request));
                }
            }
        }
        findings.check(replayed_twice.is_empty(), || {
            format!(
                "{} of {} deliveries sent to two replicas were handled by both (the copy was \
                 told \"Already decided\" instead of being skipped as a replay):{}",
                replayed_twice.len(),
                cards.len().div_ceil(2),
                some_of(&replayed_twice)
            )
        });
        findings.check(separate_not_once.is_empty(), || {
            format!(
                "two separate clicks should tell exactly one clicker \"Already decided\", \
                 but did not for:{}",
                some_of(&separate_not_once)
            )
        });
    }

    /// Waits (bounded) until none of `requests` is pending or approved but not yet carried out.
    async fn wait_until_settled(&self, requests: &[String], patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM requests
                 WHERE id::text = ANY($1) AND state IN ('pending', 'approved')",
            )
            .bind(requests)
            .fetch_one(&self.db)
            .await
            .unwrap();
            if open == 0 {
                return;
            }
            if Instant::now() > deadline {
                eprintln!(
                    "fleet: {open} requests still pending or approved after {} s",
                    patience.as_secs()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits (bounded) until at least `n` of the requests' lines are in `state`; how many were.
    async fn wait_for_lines_in(
        &self,
        requests: &[String],
        state: &str,
        n: i64,
        patience: Duration,
    ) -> i64 {
        let deadline = Instant::now() + patience;
        loop {
            let found: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM lines
                 WHERE issue_key = ANY(SELECT 'request:' || unnest($1::text[])) AND state = $2",
            )
            .bind(requests)
            .bind(state)
            .fetch_one(&self.db)
            .await
            .unwrap();
            if found >= n || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Per request: its state, decisions audited, lines, provision orders we placed, lines'
    /// states and failures.
    async fn ledger(&self, requests: &[String]) -> Vec<RequestRow> {
        sqlx::query_as::<_, RequestRow>(
            "SELECT r.id::text AS id, r.state,
                (SELECT COUNT(*) FROM audit_events a
                  WHERE a.subject_type = 'request' AND a.subject_id = r.id::text
                    AND a.action IN ('request.approved', 'request.denied')) AS decisions,
                (SELECT COUNT(*) FROM lines l
                  WHERE l.tenant_id = r.tenant_id AND l.issue_key = 'request:' || r.id::text)
                  AS lines,
                (SELECT COUNT(*) FROM provider_operations o JOIN lines l ON l.id = o.line_id
                  WHERE l.tenant_id = r.tenant_id AND l.issue_key = 'request:' || r.id::text
                    AND o.kind = 'provision') AS provision_orders,
                COALESCE((SELECT string_agg(l.state, ',') FROM lines l
                  WHERE l.tenant_id = r.tenant_id AND l.issue_key = 'request:' || r.id::text),
                  '') AS line_states,
                COALESCE((SELECT string_agg(l.failure_reason, '; ') FROM lines l
                  WHERE l.tenant_id = r.tenant_id AND l.issue_key = 'request:' || r.id::text),
                  '') AS failures
             FROM requests r WHERE r.id::text = ANY($1) ORDER BY r.created_at",
        )
        .bind(requests)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    /// The simulator holds one activation order and one subscription per approved request,
    /// and every line we hold has its own subscription.
    async fn check_provider_orders(&self, ledger: &[RequestRow], findings: &mut Findings) {
        let stats = self.sim_stats().await;
        let approved = ledger.iter().filter(|r| r.decisions > 0).count() as i64;
        let (orders, subscriptions) = (
            activate_orders(&stats),
            count(&stats["subscriptions"]["total"]),
        );
        findings.check(orders == approved && subscriptions == approved, || {
            format!(
                "{approved} approved requests made {orders} activation orders and \
                 {subscriptions} subscriptions at the provider"
            )
        });
    }

    /// "Every sweep job ran once": sweeps are jobs on the durable queue (kinds `sweep…`,
    /// dedupe keys per tick bucket), and no dedupe key was done twice.
    async fn check_sweep_jobs(&self, findings: &mut Findings) {
        let twice: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, dedupe_key, COUNT(*) FROM jobs
             WHERE state = 'done' AND dedupe_key IS NOT NULL
             GROUP BY kind, dedupe_key HAVING COUNT(*) > 1",
        )
        .fetch_all(&self.db)
        .await
        .unwrap();
        findings.check(twice.is_empty(), || {
            format!("jobs done more than once for one dedupe key: {twice:?}")
        });
        let kinds: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.db)
        .await
        .unwrap();
        eprintln!("fleet: jobs by kind and state: {kinds:?}");
        let sweeps: Vec<&(String, String, i64)> = kinds
            .iter()
            .filter(|(kind, _, _)| kind.starts_with("sweep"))
            .collect();
        findings.check(!sweeps.is_empty(), || {
            format!(
                "no sweep job on the durable queue (jobs by kind and state: {kinds:?}): the \
                 sweeps run outside it, on every replica's own timer"
            )
        });
        let failed: Vec<&&(String, String, i64)> = sweeps
            .iter()
            .filter(|(_, state, _)| state == "failed")
            .collect();
        findings.check(failed.is_empty(), || {
            format!("sweep jobs failed: {failed:?}")
        });
    }

    async fn sim_stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn sim_config(&self, patch: Value) {
        let response = reqwest::Client::new()
            .put(format!("{}/_sim/config", self.sim.base_url()))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{patch}: {}",
            response.status()
        );
    }
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    state: String,
    decisions: i64,
    lines: i64,
    provision_orders: i64,
    line_states: String,
    failures: String,
}

impl RequestRow {
    fn describe(&self) -> String {
        format!(
            "request {} {}: {} decisions, {} lines ({}), {} provision orders{}",
            self.id,
            self.state,
            self.decisions,
            self.lines,
            self.line_states,
            self.provision_orders,
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", self.failures)
            }
        )
    }
}

/// Adds `name` to the fake Slack's directory and links their Slack user to the employee.
async fn link(
    lineup: &lineup_core::Lineup,
    slack: &FakeSlack,
    tenant: TenantId,
    name: &str,
    employee: lineup_core::ids::EmployeeId,
) -> String {
    let user = format!("U0{}", name.to_uppercase());
    let email = lineup_core::email_address::Email::parse(&format!("{name}@example.com")).unwrap();
    slack.add_user(&user, email.as_str());
    let linked = lineup
        .employee_for_chat_user(tenant, Platform::Slack, &user, Some(&email))
        .await
        .unwrap();
    assert_eq!(linked, Some(employee));
    user
}

/// The request ids of the Approve buttons in a message's blocks.
fn approve_buttons(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .filter(|element| element["action_id"] == cards::APPROVE)
        .filter_map(|element| element["value"].as_str().map(str::to_owned))
        .collect()
}

fn progress(began: Instant, what: &str) {
    eprintln!("fleet: {:>5.1} s {what}", began.elapsed().as_secs_f64());
}

/// The first few items of a long list, one a line, and how many more there are.
fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|item| format!("\n    {item}"))
        .collect::<String>();
    if items.len() > SHOWN {
        text.push_str(&format!("\n    … and {} more", items.len() - SHOWN));
    }
    text
}

fn activate_orders(stats: &Value) -> i64 {
    count(&stats["orders"]["by_type"]["activate_subscription"])
}

fn count(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
