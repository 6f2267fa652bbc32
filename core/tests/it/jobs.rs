//! The durable job queue: each tenant's cron tick becomes exactly one job, and with several
//! workers on one database each job runs once.

use std::sync::Arc;

use lineup_core::jobs::{
    DELETE_EXPIRED_SESSIONS, FREE_STALE_DOMAINS, ForeignJobs, PLAN_SYNC, PRUNE_FINISHED_STEPS,
    TICK, USAGE_SYNC,
};
use lineup_core::store::{self, Tx, now};
use lineup_testkit::both_backends;
use lineup_testkit::world::{World, add_tenant, lineup_for, quick_poll};
use serde_json::json;

async fn job_states(w: &World) -> Vec<(String, i64)> {
    let mut tx = w.lineup.store().system().await.unwrap();
    store::jobs::count_by_state(&mut tx, USAGE_SYNC)
        .await
        .unwrap()
}

both_backends!(
    each_tick_is_one_job_run_once_by_competing_workers,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "jobs-line").await;
        let sub = line.provider_subscription_id.clone().unwrap();
        w.sim(
            reqwest::Method::POST,
            &format!("/_sim/subscriptions/{sub}/usage"),
            Some(json!({"data_bytes": 1_000_000, "country": "US"})),
        )
        .await;

        // Two replicas, each with its own Lineup, on the same database.
        let other = Arc::new(lineup_for(w.lineup.store(), &w.sim, quick_poll()));
        let at = now();
        let (a, b) = tokio::join!(w.lineup.schedule_due_jobs(at), other.schedule_due_jobs(at));
        assert_eq!(
            a.unwrap() + b.unwrap(),
            1,
            "one job for the tenant's tick, whoever schedules it"
        );
        assert_eq!(w.lineup.schedule_due_jobs(at).await.unwrap(), 0);

        let mut workers = tokio::task::JoinSet::new();
        for n in 0..4 {
            let lineup = if n % 2 == 0 {
                w.lineup.clone()
            } else {
                (*other).clone()
            };
            workers.spawn(async move {
                lineup
                    .run_next_job(&format!("worker-{n}"), at)
                    .await
                    .unwrap()
            });
        }
        let mut ran = 0;
        while let Some(did) = workers.join_next().await {
            ran += usize::from(did.unwrap());
        }
        assert_eq!(ran, 1, "exactly one worker ran the job");
        assert_eq!(job_states(&w).await, vec![("done".to_owned(), 1)]);
        let days = w.lineup.daily_usage(w.tenant, line.id).await.unwrap();
        assert_eq!(days.iter().map(|d| d.data_bytes).sum::<i64>(), 1_000_000);
    }
);

both_backends!(
    a_failing_job_is_retried_later_with_its_error,
    |store| async move {
        let w = World::new(store).await;
        w.sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(json!({
                "match": {"method": "GET", "path_prefix": "/enterprise/usage/items"},
                "action": {"status": 400},
                "times": 1
            })),
        )
        .await;
        let at = now();
        assert_eq!(w.lineup.schedule_due_jobs(at).await.unwrap(), 1);
        assert!(w.lineup.run_next_job("worker", at).await.unwrap());
        assert_eq!(job_states(&w).await, vec![("queued".to_owned(), 1)]);
        assert!(
            !w.lineup.run_next_job("worker", at).await.unwrap(),
            "not due again until its back-off passes"
        );
        let later = at + time::Duration::minutes(2);
        assert!(w.lineup.run_next_job("worker", later).await.unwrap());
        assert_eq!(job_states(&w).await, vec![("done".to_owned(), 1)]);
    }
);

both_backends!(
    each_connected_tenant_syncs_its_plans_once_a_day_through_the_queue,
    |store| async move {
        let w = World::new(store).await;
        // A plan the provider still sells was retired here by mistake: the day's sync
        // offers it again.
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        store::plans::retire(&mut tx, w.tenant, w.plans[0].id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // A tenant with no provider account it may use gets no job.
        let idle = add_tenant(&w.lineup, "idle").await;
        let mut tx = w.lineup.store().system().await.unwrap();
        store::provider_connections::set_uses_server_provider(&mut tx, idle, false)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let at = now();
        assert_eq!(w.lineup.schedule_plan_syncs(at).await.unwrap(), 1);
        assert_eq!(
            w.lineup.schedule_plan_syncs(at).await.unwrap(),
            0,
            "one a day"
        );
        assert!(w.lineup.run_next_job("worker", at).await.unwrap());
        let mut tx = w.lineup.store().system().await.unwrap();
        let states = store::jobs::count_by_state(&mut tx, PLAN_SYNC)
            .await
            .unwrap();
        drop(tx);
        assert_eq!(states, vec![("done".to_owned(), 1)]);
        let plans = w.lineup.plans(w.tenant).await.unwrap();
        assert!(plans.iter().find(|p| p.id == w.plans[0].id).unwrap().active);
        let tomorrow = at + time::Duration::days(1);
        assert_eq!(w.lineup.schedule_plan_syncs(tomorrow).await.unwrap(), 1);
    }
);

// The operator's gauges: a tenant's queued usage sync shows as backlog until a worker has
// run it, then as the tenant's last finished sync.
both_backends!(
    the_backlog_shows_queued_jobs_then_the_tenants_last_sync,
    |store| async move {
        let w = World::new(store).await;
        w.active_line(&w.ada, "backlog-line").await;
        let snapshot = || async {
            let mut tx = w.lineup.store().system().await.unwrap();
            store::backlog::snapshot(&mut tx).await.unwrap()
        };
        let at = now();
        assert_eq!(w.lineup.schedule_due_jobs(at).await.unwrap(), 1);
        let queued = snapshot().await;
        let usage = queued.jobs.iter().find(|j| j.name == USAGE_SYNC).unwrap();
        assert_eq!(usage.count, 1);
        assert!(usage.oldest.is_some_and(|due| due <= at));
        assert_eq!(queued.usage_syncs.len(), 1);
        assert_eq!(queued.usage_syncs[0].last_done, None);
        assert!(queued.lines.contains(&("active".to_owned(), 1)));
        let outboxes: Vec<&str> = queued.outboxes.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outboxes, ["email", "alerts", "notices"]);

        while w.lineup.run_next_job("worker", at).await.unwrap() {}
        let done = snapshot().await;
        assert!(done.jobs.iter().all(|j| j.name != USAGE_SYNC), "{done:?}");
        assert!(done.usage_syncs[0].last_done.is_some(), "{done:?}");
    }
);

/// A step whose runner never comes back: the worker running it is as good as dead.
struct Hangs;

#[async_trait::async_trait]
impl ForeignJobs for Hangs {
    async fn run(
        &self,
        _kind: &str,
        _now: time::OffsetDateTime,
    ) -> Option<lineup_core::CoreResult<()>> {
        std::future::pending().await
    }
}

/// Runs every foreign step but "failing_step" successfully.
struct Succeeds;

#[async_trait::async_trait]
impl ForeignJobs for Succeeds {
    async fn run(
        &self,
        kind: &str,
        _now: time::OffsetDateTime,
    ) -> Option<lineup_core::CoreResult<()>> {
        Some(match kind {
            "failing_step" => Err(lineup_core::CoreError::Conflict("it failed".into())),
            _ => Ok(()),
        })
    }
}

/// The step's row: (state, attempts, locked_by).
async fn step_row(w: &World, kind: &str) -> (String, i32, Option<String>) {
    let sql = "SELECT state, attempts, locked_by FROM jobs WHERE kind = $1";
    let mut tx = w.lineup.store().system().await.unwrap();
    match &mut tx {
        Tx::Sqlite(t) => sqlx::query_as(sql).bind(kind).fetch_one(&mut **t).await,
        Tx::Postgres(t) => sqlx::query_as(sql).bind(kind).fetch_one(&mut **t).await,
    }
    .unwrap()
}

/// Worker "dead" claims `kind` and dies in the middle of it.
async fn die_running(w: &World, at: time::OffsetDateTime) {
    let lineup = w.lineup.clone();
    let dying = tokio::spawn(async move { lineup.run_next_job_with("dead", at, &Hangs).await });
    for _ in 0..200 {
        if step_row(w, "chat_step").await.0 == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled());
}

both_backends!(
    each_step_is_queued_once_per_tick_whoever_asks,
    |store| async move {
        let w = World::new(store).await;
        let other = lineup_for(w.lineup.store(), &w.sim, quick_poll());
        let at = time::macros::datetime!(2026-03-02 10:00:07 UTC);
        let steps = [DELETE_EXPIRED_SESSIONS, FREE_STALE_DOMAINS];
        let (a, b) = tokio::join!(
            w.lineup.schedule_steps(&steps, at),
            other.schedule_steps(&steps, at)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 2, "one job per step and tick");
        let same_tick = at + time::Duration::seconds(20);
        assert_eq!(w.lineup.schedule_steps(&steps, same_tick).await.unwrap(), 0);
        let next_tick = at + time::Duration::seconds(25);
        assert_eq!(w.lineup.schedule_steps(&steps, next_tick).await.unwrap(), 2);
    }
);

both_backends!(
    a_step_is_due_within_the_first_second_of_its_tick,
    |store| async move {
        let w = World::new(store).await;
        // A tick starts on a whole second; SQLite writes that without a fraction.
        let at = now();
        let into_tick = at.unix_timestamp().rem_euclid(TICK.whole_seconds());
        let tick = at.replace_nanosecond(0).unwrap() - time::Duration::seconds(into_tick);
        let within_its_first_second = tick + time::Duration::milliseconds(400);
        assert_eq!(
            w.lineup
                .schedule_steps(&["chat_step"], within_its_first_second)
                .await
                .unwrap(),
            1
        );
        let ran = w
            .lineup
            .run_next_job_with("worker", within_its_first_second, &Succeeds)
            .await
            .unwrap()
            .expect("the step is due from the tick's first instant");
        assert_eq!(ran.kind, "chat_step");
    }
);

both_backends!(
    a_step_held_by_a_dead_worker_is_taken_by_another_once_its_short_lease_ends,
    |store| async move {
        let w = World::new(store).await;
        let at = now();
        assert_eq!(
            w.lineup.schedule_steps(&["chat_step"], at).await.unwrap(),
            1
        );
        die_running(&w, at).await;
        assert_eq!(step_row(&w, "chat_step").await.2.as_deref(), Some("dead"));

        let within_lease = at + time::Duration::seconds(110);
        assert!(
            !w.lineup.run_next_job("alive", within_lease).await.unwrap(),
            "the lease still holds"
        );
        let after_lease = at + time::Duration::seconds(121);
        let ran = w
            .lineup
            .run_next_job_with("alive", after_lease, &Succeeds)
            .await
            .unwrap()
            .expect("the abandoned step is taken over");
        assert_eq!(ran.kind, "chat_step");
        assert!(ran.outcome.is_ok());
        assert_eq!(
            step_row(&w, "chat_step").await,
            ("done".to_owned(), 2, None)
        );
    }
);

both_backends!(
    a_step_released_by_a_stopping_worker_is_taken_at_once_without_counting_the_attempt,
    |store| async move {
        let w = World::new(store).await;
        let at = now();
        assert_eq!(
            w.lineup.schedule_steps(&["chat_step"], at).await.unwrap(),
            1
        );
        die_running(&w, at).await;
        assert_eq!(w.lineup.release_jobs("someone-else").await.unwrap(), 0);
        assert_eq!(w.lineup.release_jobs("dead").await.unwrap(), 1);
        assert_eq!(
            step_row(&w, "chat_step").await,
            ("queued".to_owned(), 0, None)
        );
        let ran = w
            .lineup
            .run_next_job_with("alive", at, &Succeeds)
            .await
            .unwrap()
            .expect("taken at once, not after the lease");
        assert!(ran.outcome.is_ok());
        assert_eq!(
            step_row(&w, "chat_step").await,
            ("done".to_owned(), 1, None)
        );
    }
);

both_backends!(
    finished_steps_are_pruned_after_a_day_and_tenant_jobs_kept,
    |store| async move {
        let w = World::new(store).await;
        let day_one = now() - time::Duration::days(1) - time::Duration::minutes(5);
        w.lineup
            .schedule_steps(&["chat_step", "failing_step"], day_one)
            .await
            .unwrap();
        assert_eq!(w.lineup.schedule_due_jobs(day_one).await.unwrap(), 1);
        while let Some(ran) = w
            .lineup
            .run_next_job_with("worker", day_one, &Succeeds)
            .await
            .unwrap()
        {
            assert_eq!(ran.outcome.is_ok(), ran.kind != "failing_step", "{ran:?}");
        }
        let today = now();
        w.lineup
            .schedule_steps(&[PRUNE_FINISHED_STEPS, "chat_step"], today)
            .await
            .unwrap();
        while w
            .lineup
            .run_next_job_with("worker", today, &Succeeds)
            .await
            .unwrap()
            .is_some()
        {}
        let mut tx = w.lineup.store().system().await.unwrap();
        let sql = "SELECT kind, state FROM jobs ORDER BY kind";
        let kinds: Vec<(String, String)> = match &mut tx {
            Tx::Sqlite(t) => sqlx::query_as(sql).fetch_all(&mut **t).await,
            Tx::Postgres(t) => sqlx::query_as(sql).fetch_all(&mut **t).await,
        }
        .unwrap();
        let kinds: Vec<(&str, &str)> = kinds
            .iter()
            .map(|(k, s)| (k.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("chat_step", "done"),
                (PRUNE_FINISHED_STEPS, "done"),
                (USAGE_SYNC, "done")
            ],
            "yesterday's steps (done and failed) are gone, today's and the tenant's job stay"
        );
    }
);
