//! The durable job queue: each tenant's cron tick becomes exactly one job, and with several
//! workers on one database each job runs once.

use std::sync::Arc;

use lineup_core::jobs::{PLAN_SYNC, USAGE_SYNC};
use lineup_core::store::{self, now};
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
