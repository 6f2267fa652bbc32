//! A fleet of `lineup serve` processes on one throwaway PostgreSQL behind a round-robin TCP
//! proxy, driven as Slack drives them: the fleet tests and the soak and scale-out benchmarks
//! share it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Server, free_listen_address, start};
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

pub const SIGNING_SECRET: &str = "fleet-signing-secret";
pub const TEAM: &str = "T0FLEET";
pub const BOT_TOKEN: &str = "xoxb-fleet";
/// The tenant's slug: its portal is `fleet.lineup.test` through the proxy.
pub const SLUG: &str = "fleet";
pub const PORTAL_HOST: &str = "fleet.lineup.test";
/// The tenant owner's portal sign-in.
pub const OWNER_EMAIL: &str = "owner@fleet.example";
pub const OWNER_PASSWORD: &str = "a long fleet owner password";

/// Everything that went wrong, reported together at the end.
#[derive(Default)]
pub struct Findings(pub Vec<String>);

impl Findings {
    pub fn check(&mut self, holds: bool, problem: impl FnOnce() -> String) {
        if !holds {
            self.0.push(problem());
        }
    }

    pub fn all_answered_200(&mut self, what: &str, answers: &[Vec<Outcome>]) {
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
    pub fn each_decided_once_with_one_line(&mut self, ledger: &[RequestRow], which: &str) {
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
    pub fn each_fulfilled(&mut self, ledger: &[RequestRow], which: &str) {
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

    pub fn assert_none(self) {
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
pub struct Post {
    pub label: String,
    pub url: String,
    pub path: &'static str,
    pub body: String,
    pub signature: Option<(String, String)>,
}

/// HTTP status and body, or why no answer came.
pub type Outcome = Result<(u16, String), String>;

#[derive(Clone)]
pub struct Sender {
    pub http: reqwest::Client,
}

impl Sender {
    pub async fn send(&self, post: Post) -> Outcome {
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
pub async fn deliver(sender: &Sender, groups: Vec<Vec<Post>>, width: usize) -> Vec<Vec<Outcome>> {
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
pub struct Proxy {
    pub addr: SocketAddr,
    pub served: Arc<Vec<AtomicUsize>>,
}

impl Proxy {
    pub async fn start(backends: Vec<SocketAddr>) -> Proxy {
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

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

/// A requester, by Slack user id.
#[derive(Clone)]
pub struct Person {
    pub user: String,
}

/// An approval card the fake Slack received: which request, in whose direct messages.
pub struct Card {
    pub request: String,
    pub approver: String,
}

pub struct Replica {
    pub listen: String,
    pub data: tempfile::TempDir,
    pub server: Option<Server>,
}

pub struct Fleet {
    pub tenant: TenantId,
    pub replicas: Vec<Replica>,
    pub proxy: Proxy,
    pub sender: Sender,
    pub slack: FakeSlack,
    pub sim: RunningSimulator,
    pub db: PgPool,
    pub env: Vec<(String, String)>,
    pub plan: String,
    pub people: Vec<Person>,
    /// The managers' direct-message channels at the fake Slack, to their user ids.
    pub approver_of_channel: HashMap<String, String>,
}

impl Fleet {
    /// A tenant on a throwaway PostgreSQL with `requesters` employees, a manager for each
    /// `per_manager` of them, all known to Slack, and an owner who can sign in to the portal;
    /// the workspace installed, plans synced from the simulator; then `replicas` replicas and
    /// the proxy in front of them.
    pub async fn start(replicas: usize, requesters: usize, per_manager: usize) -> Fleet {
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
        let tenant = add_tenant(&lineup, SLUG).await;
        lineup
            .add_user(
                tenant,
                &ADMIN,
                &lineup_core::email_address::Email::parse(OWNER_EMAIL).unwrap(),
                "Fleet Owner",
                OWNER_PASSWORD,
                lineup_core::identity::user::Role::Owner,
                None,
            )
            .await
            .unwrap();
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
        let replicas: Vec<Replica> = (0..replicas)
            .map(|_| Replica {
                listen: free_listen_address(),
                data: tempfile::tempdir().unwrap(),
                server: None,
            })
            .collect();
        let backends = replicas.iter().map(|r| r.listen.parse().unwrap()).collect();
        let proxy = Proxy::start(backends).await;
        let mut env = env;
        // Browsers reach the portal through the proxy, as through a load balancer.
        env.push((
            "LINEUP_PORTAL_URL".to_owned(),
            format!("http://lineup.test:{}", proxy.addr.port()),
        ));
        let mut fleet = Fleet {
            tenant,
            replicas,
            proxy,
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
        for replica in 0..fleet.replicas.len() {
            fleet.start_replica(replica);
        }
        fleet
    }

    pub fn start_replica(&mut self, index: usize) {
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

    pub fn terminate(&mut self, index: usize) -> (Option<std::process::ExitStatus>, Duration) {
        let server = self.replicas[index].server.take().unwrap();
        tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)))
    }

    pub fn kill_hard(&mut self, index: usize) {
        let server = self.replicas[index].server.take().unwrap();
        tokio::task::block_in_place(|| server.kill_hard());
    }

    pub fn replica_url(&self, index: usize) -> String {
        format!("http://{}", self.replicas[index].listen)
    }

    pub fn slash_command(&self, user: &str, text: &str, trigger: &str) -> String {
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
    pub async fn file_requests(&self, people: &[Person], findings: &mut Findings) -> Vec<String> {
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
                    "team": {"id": TEAM, "domain": SLUG},
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
    pub async fn opened_modals(&self, triggers: &[String]) -> Value {
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
    pub async fn cards_for(&self, requests: &[String]) -> Vec<Card> {
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
    pub fn click_body(&self, card: &Card, answer: &str) -> String {
        let payload = json!({
            "type": "block_actions",
            "team": {"id": TEAM, "domain": SLUG},
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

    pub fn click(&self, card: &Card, url: &str, answer: &str) -> Post {
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
    pub fn double_click(&self, card: &Card, n: usize) -> Vec<Post> {
        let urls = [
            self.replica_url(n % self.replicas.len()),
            self.replica_url((n + 1) % self.replicas.len()),
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
    pub fn check_double_click_answers(&self, cards: &[Card], findings: &mut Findings) {
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
    pub async fn wait_until_settled(&self, requests: &[String], patience: Duration) {
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
    pub async fn wait_for_lines_in(
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
    pub async fn ledger(&self, requests: &[String]) -> Vec<RequestRow> {
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
    pub async fn check_provider_orders(&self, ledger: &[RequestRow], findings: &mut Findings) {
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
    pub async fn check_sweep_jobs(&self, findings: &mut Findings) {
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

    pub async fn sim_stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn sim_config(&self, patch: Value) {
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
pub struct RequestRow {
    pub id: String,
    pub state: String,
    pub decisions: i64,
    pub lines: i64,
    pub provision_orders: i64,
    pub line_states: String,
    pub failures: String,
}

impl RequestRow {
    pub fn describe(&self) -> String {
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
pub async fn link(
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
pub fn approve_buttons(blocks: &Value) -> Vec<String> {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .filter(|element| element["action_id"] == cards::APPROVE)
        .filter_map(|element| element["value"].as_str().map(str::to_owned))
        .collect()
}

pub fn progress(began: Instant, what: &str) {
    eprintln!("fleet: {:>5.1} s {what}", began.elapsed().as_secs_f64());
}

/// The first few items of a long list, one a line, and how many more there are.
pub fn some_of(items: &[String]) -> String {
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

pub fn activate_orders(stats: &Value) -> i64 {
    count(&stats["orders"]["by_type"]["activate_subscription"])
}

pub fn count(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
