//! The background worker: every tick it queues one job per periodic step (once across all
//! replicas, whichever asks first) and runs due jobs until none is left, logging each lasting
//! problem once. The steps whose work lives in the bot (chat delivery) and email run here.

use std::sync::Arc;

use lineup_bot::flows::ChatFlows;
use lineup_core::Lineup;
use lineup_core::jobs::{self, ForeignJobs};
use lineup_core::messaging::chat::Platform;
use lineup_core::messaging::outgoing_email::Mailer;
use lineup_core::{CoreError, CoreResult};
use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};

/// Remind, escalate and expire pending approvals (delivered in chat); switch roaming grants.
pub const SWEEP_APPROVALS: &str = "sweep_approvals";
/// Leavers' lines in their grace period: cards to managers, reminders, the default at the
/// deadline (delivered in chat).
pub const SWEEP_OFFBOARDING: &str = "sweep_offboarding";
/// Post new budget and anomaly alerts to each tenant's finance channel.
pub const DELIVER_ALERTS: &str = "deliver_alerts";
/// Tell employees by direct message what guardrails did to their lines.
pub const NOTIFY_EMPLOYEES: &str = "notify_employees";
/// Send joiners their eSIM on the morning of their start date, and tell their managers.
pub const DELIVER_JOINER_LINES: &str = "deliver_joiner_lines";
/// Deliver queued email, retrying failed sends.
pub const DELIVER_EMAIL: &str = "deliver_email";

/// Every tick's steps, each with what the log calls it when it fails. A new step is one line
/// here (and its work in core's job runner or in [`ChatWork`]).
const STEPS: &[(&str, &str)] = &[
    (
        jobs::RESUME_IN_FLIGHT,
        "resuming in-flight provider operations",
    ),
    (SWEEP_APPROVALS, "the approval and roaming sweep"),
    (SWEEP_OFFBOARDING, "the sweep of leavers' lines"),
    (
        jobs::SCHEDULE_TENANT_JOBS,
        "scheduling usage syncs, plan syncs and reconciliations",
    ),
    (DELIVER_ALERTS, "delivering alerts"),
    (jobs::ORDER_JOINER_LINES, "ordering joiners' lines"),
    (DELIVER_JOINER_LINES, "sending joiners their eSIMs"),
    (NOTIFY_EMPLOYEES, "sending notices to employees"),
    (DELIVER_EMAIL, "delivering queued email"),
    (
        jobs::FREE_STALE_DOMAINS,
        "freeing unverified custom domains",
    ),
    (
        jobs::DELETE_EXPIRED_SESSIONS,
        "deleting expired portal sessions",
    ),
    (
        jobs::PRUNE_INBOUND_SEEN,
        "forgetting expired inbound chat ids",
    ),
    (
        jobs::ROLL_UP_STAGED_USAGE,
        "rolling up usage a sync left staged",
    ),
    (
        jobs::REFRESH_CHARGEBACK_ROLLUPS,
        "rebuilding chargeback rollups",
    ),
    (jobs::PRUNE_FINISHED_STEPS, "pruning finished worker steps"),
];

/// One replica's worker: its name on the jobs it claims, and what runs the chat steps.
pub struct Worker {
    lineup: Lineup,
    id: String,
    chat: ChatWork,
    problems: Arc<Mutex<Problems>>,
}

impl Worker {
    pub fn new(lineup: Lineup, flows: Arc<ChatFlows>, mailer: Arc<dyn Mailer>) -> Self {
        let problems = Arc::new(Mutex::new(Problems::default()));
        let id = format!(
            "lineup-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let chat = ChatWork {
            lineup: lineup.clone(),
            flows,
            mailer,
            problems: problems.clone(),
        };
        Self {
            lineup,
            id,
            chat,
            problems,
        }
    }

    /// Tick every 30 s until `stop` says so; a job already running is finished first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(jobs::TICK.unsigned_abs());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() || stop.has_changed().is_err() {
                return;
            }
            self.tick(OffsetDateTime::now_utc(), &stop).await;
        }
    }

    /// Queue this tick's steps, then claim and run due jobs until none is left or `stop` is
    /// set. Returns how many jobs ran.
    pub async fn tick(&self, now: OffsetDateTime, stop: &watch::Receiver<bool>) -> usize {
        let kinds: Vec<&str> = STEPS.iter().map(|(kind, _)| *kind).collect();
        let scheduled = self.lineup.schedule_steps(&kinds, now).await;
        self.problems
            .lock()
            .await
            .step("queueing the worker's steps", scheduled);
        let mut ran = 0;
        while !*stop.borrow() {
            let next = self
                .lineup
                .run_next_job_with(&self.id, now, &self.chat)
                .await;
            let mut problems = self.problems.lock().await;
            match next {
                Ok(Some(job)) => {
                    problems.cleared("claiming background jobs");
                    ran += 1;
                    // Tenants' own jobs keep their failures on their rows, retried there.
                    if let Some((_, what)) = STEPS.iter().find(|(kind, _)| *kind == job.kind) {
                        problems.step(what, job.outcome);
                    }
                }
                Ok(None) => {
                    problems.cleared("claiming background jobs");
                    break;
                }
                Err(e) => {
                    problems.failed("claiming background jobs", &e);
                    break;
                }
            }
        }
        ran
    }

    /// Put back the jobs this worker still holds (it was stopped in the middle of one).
    pub async fn release_held_jobs(&self) -> CoreResult<u64> {
        self.lineup.release_jobs(&self.id).await
    }
}

/// The steps core cannot run itself: chat delivery through the bot's flows, and email
/// through the configured mailer.
struct ChatWork {
    lineup: Lineup,
    flows: Arc<ChatFlows>,
    mailer: Arc<dyn Mailer>,
    problems: Arc<Mutex<Problems>>,
}

#[async_trait::async_trait]
impl ForeignJobs for ChatWork {
    async fn run(&self, kind: &str, now: OffsetDateTime) -> Option<CoreResult<()>> {
        Some(match kind {
            SWEEP_APPROVALS => self.flows.run_sweeps(now).await.map(drop),
            SWEEP_OFFBOARDING => self.flows.run_offboarding_sweep(now).await.map(drop),
            DELIVER_ALERTS => {
                let mut problems = self.problems.lock().await;
                match deliver_alerts(&self.lineup, &self.flows, &mut problems).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(alerts = n, "posted alerts to finance");
                        Ok(())
                    }
                    outcome => outcome.map(drop),
                }
            }
            NOTIFY_EMPLOYEES => {
                let sent = self
                    .lineup
                    .deliver_employee_notices(self.flows.as_ref(), now)
                    .await;
                match sent {
                    Ok(n) if n > 0 => {
                        tracing::info!(notices = n, "told employees about their lines");
                        Ok(())
                    }
                    outcome => outcome.map(drop),
                }
            }
            DELIVER_JOINER_LINES => {
                let sent = self
                    .lineup
                    .deliver_joiner_lines(self.flows.as_ref(), now)
                    .await;
                match sent {
                    Ok(n) if n > 0 => {
                        tracing::info!(joiners = n, "sent joiners their eSIMs");
                        Ok(())
                    }
                    outcome => outcome.map(drop),
                }
            }
            DELIVER_EMAIL => self
                .lineup
                .deliver_due_emails(self.mailer.as_ref(), now)
                .await
                .map(drop),
            _ => return None,
        })
    }
}

/// What the worker has warned about and not yet seen resolved. A condition that lasts (the
/// database down, a tenant with no finance channel) is logged when it starts, when its
/// reason changes and when it ends: not again on every 30 s tick, nor once per alert.
#[derive(Default)]
struct Problems {
    reasons: std::collections::HashMap<String, String>,
}

impl Problems {
    /// Logs `what` failing for `reason` unless that is already known.
    fn failed(&mut self, what: &str, reason: &dyn std::fmt::Display) {
        let reason = reason.to_string();
        if self.reasons.get(what) != Some(&reason) {
            tracing::warn!(error = %reason, "{what} failed");
            self.reasons.insert(what.to_owned(), reason);
        }
    }

    /// Logs that `what` works again, if it had failed.
    fn cleared(&mut self, what: &str) {
        if self.reasons.remove(what).is_some() {
            tracing::info!("{what} works again");
        }
    }

    fn step<T, E: std::fmt::Display>(&mut self, what: &str, outcome: Result<T, E>) {
        match outcome {
            Ok(_) => self.cleared(what),
            Err(e) => self.failed(what, &e),
        }
    }
}

/// Post alerts not yet delivered to each tenant's finance channel, on the first chat platform
/// the tenant has installed that takes it. Undelivered alerts stay in the outbox and are
/// tried again on the next tick; why a tenant's alerts cannot be posted is logged once.
async fn deliver_alerts(
    lineup: &Lineup,
    flows: &ChatFlows,
    problems: &mut Problems,
) -> Result<usize, CoreError> {
    let mut delivered = 0;
    for delivery in lineup.alerts_to_deliver(50).await? {
        let tenant = delivery.alert.tenant_id;
        for platform in Platform::ALL {
            let Some(workspace) = lineup.workspace_of_tenant(tenant, platform).await? else {
                continue;
            };
            let condition = format!(
                "posting alerts of tenant {tenant} to finance on {}",
                platform.as_str()
            );
            match flows
                .post_finance_alert(&workspace, platform, &delivery.finance)
                .await
            {
                Ok(_) => {
                    problems.cleared(&condition);
                    lineup
                        .mark_alert_delivered(tenant, delivery.alert.id)
                        .await?;
                    delivered += 1;
                    break;
                }
                Err(reason) => problems.failed(&condition, &reason),
            }
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::{Runtime, start};
    use lineup_core::store::{Store, Tx};
    use std::sync::Mutex;

    const SECRET_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    /// A server's runtime on `database_url` (SQLite in `data` when `None`), demo seeded.
    async fn seeded_runtime(data: &std::path::Path, database_url: Option<&str>) -> Runtime {
        let dir = data.to_str().unwrap().to_owned();
        let config = Config::from_lookup(|key| match key {
            "LINEUP_DATA_DIR" => Some(dir.clone()),
            "LINEUP_SECRET_KEY" => Some(SECRET_KEY.to_owned()),
            "DATABASE_URL" => database_url.map(str::to_owned),
            _ => None,
        })
        .unwrap();
        let runtime = start(&config).await.unwrap();
        let simulator = runtime.simulator.as_ref().map(|sim| sim.base_url());
        crate::demo::ensure_seeded(&runtime.lineup, simulator.as_deref())
            .await
            .unwrap();
        runtime
    }

    fn worker_of(runtime: &Runtime) -> Arc<Worker> {
        Arc::new(Worker::new(
            runtime.lineup.clone(),
            runtime.flows.clone(),
            runtime.mailer.clone(),
        ))
    }

    async fn rows<T>(store: &Store, sql: &str) -> Vec<T>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut tx = store.system().await.unwrap();
        match &mut tx {
            Tx::Sqlite(t) => sqlx::query_as(sql).fetch_all(&mut **t).await,
            Tx::Postgres(t) => sqlx::query_as(sql).fetch_all(&mut **t).await,
        }
        .unwrap()
    }

    const FINISHED: &str = "SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'failed')";

    /// Every step of the tick has one row, claimed once (one attempt) and done; nothing is
    /// left running or due.
    async fn assert_each_step_ran_once(store: &Store) {
        let steps: Vec<(String, String, i32, Option<String>)> = rows(
            store,
            "SELECT kind, state, attempts, last_error FROM jobs
             WHERE dedupe_key LIKE 'tick:%' ORDER BY kind",
        )
        .await;
        let mut expected: Vec<(String, String, i32, Option<String>)> = STEPS
            .iter()
            .map(|(kind, _)| ((*kind).to_owned(), "done".to_owned(), 1, None))
            .collect();
        expected.sort();
        assert_eq!(steps, expected);
        let unfinished: Vec<(String, String)> = rows(
            store,
            "SELECT kind, state FROM jobs WHERE state IN ('queued', 'running')",
        )
        .await;
        assert_eq!(unfinished, [], "every due job ran");
    }

    /// Two replicas (each its own pool) on one PostgreSQL tick at the same moment: each step
    /// of the tick runs once, and between them they ran exactly the jobs that finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_ticking_together_run_each_step_once() {
        let url = lineup_testkit::fresh_postgres_url().await;
        let data = tempfile::tempdir().unwrap();
        let first = seeded_runtime(data.path(), Some(&url)).await;
        let store = Store::connect(&url).await.unwrap();
        let second_lineup = Lineup::new(
            store.clone(),
            first.lineup.shared_provider(),
            lineup_core::provider::PollPolicy::default(),
        )
        .with_secrets(lineup_core::secret::SecretBox::from_hex(SECRET_KEY).unwrap());
        let second = Arc::new(Worker::new(
            second_lineup.clone(),
            ChatFlows::new(second_lineup, Vec::new()),
            first.mailer.clone(),
        ));
        let before: Vec<(i64,)> = rows(&store, FINISHED).await;

        let (_stop, running) = watch::channel(false);
        let now = OffsetDateTime::now_utc();
        let ticks = [worker_of(&first), second].map(|worker| {
            let running = running.clone();
            tokio::spawn(async move { worker.tick(now, &running).await })
        });
        let mut ran = 0;
        for tick in ticks {
            ran += tick.await.unwrap();
        }

        assert_each_step_ran_once(&store).await;
        let after: Vec<(i64,)> = rows(&store, FINISHED).await;
        assert_eq!(usize::try_from(after[0].0 - before[0].0).unwrap(), ran);
        assert!(
            ran > STEPS.len(),
            "the steps, and the tenant's syncs they queued"
        );
    }

    /// On SQLite one worker runs everything; a second tick in the same 30 s runs nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite_one_worker_runs_every_step_once_per_tick() {
        let data = tempfile::tempdir().unwrap();
        let runtime = seeded_runtime(data.path(), None).await;
        let worker = worker_of(&runtime);
        let (_stop, running) = watch::channel(false);
        let bucket = jobs::TICK.whole_seconds();
        let start = OffsetDateTime::now_utc().unix_timestamp() / bucket * bucket;
        let now = OffsetDateTime::from_unix_timestamp(start).unwrap();
        assert!(worker.tick(now, &running).await > STEPS.len());
        assert_each_step_ran_once(runtime.lineup.store()).await;
        let later_same_tick = now + time::Duration::seconds(bucket - 1);
        assert_eq!(worker.tick(later_same_tick, &running).await, 0);
    }

    /// A stopping worker claims nothing more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_worker_claims_no_job() {
        let data = tempfile::tempdir().unwrap();
        let runtime = seeded_runtime(data.path(), None).await;
        let (stop, stopping) = watch::channel(false);
        stop.send(true).unwrap();
        assert_eq!(
            worker_of(&runtime)
                .tick(OffsetDateTime::now_utc(), &stopping)
                .await,
            0
        );
        let queued: Vec<(i64,)> = rows(
            runtime.lineup.store(),
            "SELECT COUNT(*) FROM jobs WHERE dedupe_key LIKE 'tick:%' AND state = 'queued'",
        )
        .await;
        assert_eq!(usize::try_from(queued[0].0).unwrap(), STEPS.len());
    }

    /// Log lines written by the code under test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn count(&self, needle: &str) -> usize {
            let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            text.lines().filter(|line| line.contains(needle)).count()
        }
    }

    /// The demo tenant has dozens of undelivered alerts and a Slack workspace but no finance
    /// channel: two ticks of alert delivery say so once, not once per alert per tick.
    #[tokio::test]
    async fn a_missing_finance_channel_is_logged_once_not_per_alert_and_tick() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap().to_owned();
        let config = Config::from_lookup(|key| {
            match key {
                "LINEUP_DATA_DIR" => Some(dir.as_str()),
                "SLACK_SIGNING_SECRET" => Some("signing-secret"),
                "SLACK_CLIENT_ID" => Some("1.2"),
                "SLACK_CLIENT_SECRET" => Some("client-secret"),
                // Never reached: the missing channel is noticed before anything is sent.
                "SLACK_API_BASE_URL" => Some("http://127.0.0.1:9/api/"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();
        let runtime = start(&config).await.unwrap();
        let simulator = runtime.simulator.as_ref().map(|sim| sim.base_url());
        let tenant = crate::demo::ensure_seeded(&runtime.lineup, simulator.as_deref())
            .await
            .unwrap();
        runtime
            .lineup
            .install_workspace(
                tenant,
                &lineup_core::audit::Actor::System,
                Platform::Slack,
                "T0FINANCE",
                None,
                "",
            )
            .await
            .unwrap();
        let pending = runtime.lineup.alerts_to_deliver(50).await.unwrap().len();
        assert!(pending > 10, "the demo leaves alerts to deliver: {pending}");

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut problems = Problems::default();
        for _tick in 0..2 {
            let delivered = deliver_alerts(&runtime.lineup, &runtime.flows, &mut problems)
                .await
                .unwrap();
            assert_eq!(delivered, 0);
        }
        assert_eq!(captured.count("no finance channel"), 1);
    }

    /// A tenant's usage_sync_cron that no longer parses (saved before it was checked) is
    /// logged once, not on every tick.
    #[tokio::test]
    async fn an_invalid_usage_sync_cron_is_logged_once_not_per_tick() {
        let data = tempfile::tempdir().unwrap();
        let runtime = seeded_runtime(data.path(), None).await;
        let Store::Sqlite(pool) = runtime.lineup.store() else {
            unreachable!("no DATABASE_URL: the embedded SQLite")
        };
        sqlx::query(
            "UPDATE tenants SET settings = json_set(settings, '$.usage_sync_cron', 'hourly')",
        )
        .execute(pool)
        .await
        .unwrap();
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let now = OffsetDateTime::now_utc();
        for tick in 0..3 {
            let at = now + jobs::TICK * tick;
            assert_eq!(runtime.lineup.schedule_due_jobs(at).await.unwrap(), 0);
        }
        assert_eq!(captured.count("usage_sync_cron is invalid"), 1);
    }

    #[test]
    fn a_problem_is_logged_when_it_starts_changes_and_ends() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut problems = Problems::default();
            problems.failed("syncing", &"database down");
            problems.failed("syncing", &"database down");
            problems.failed("syncing", &"disk full");
            problems.cleared("syncing");
            problems.cleared("syncing");
        });
        assert_eq!(captured.count("syncing failed"), 2);
        assert_eq!(captured.count("syncing works again"), 1);
    }
}
