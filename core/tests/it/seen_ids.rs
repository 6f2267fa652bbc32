//! Inbound ids seen, shared by every replica through the database: claimed once until they
//! expire, pruned after.

use lineup_core::CoreError;
use lineup_core::store::{self, Store};
use lineup_testkit::both_backends;
use lineup_testkit::world::{World, lineup_with, quick_poll};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);

async fn offer(store: &Store, key: &str, now: OffsetDateTime, ttl: Duration) -> bool {
    store::seen_ids::first_time(store, key, now, now + ttl)
        .await
        .unwrap()
}

both_backends!(
    an_inbound_id_is_new_once_until_it_expires_and_pruning_takes_only_the_expired,
    |store| async move {
        let minute = Duration::minutes(1);
        assert!(offer(&store, "slack_event:Ev1", T0, minute).await);
        assert!(!offer(&store, "slack_event:Ev1", T0, minute).await);
        // Half a second short of the expiry is still remembered, whatever the fraction.
        let almost = T0 + minute - Duration::milliseconds(500);
        assert!(!offer(&store, "slack_event:Ev1", almost, minute).await);
        // Another scope is another key.
        assert!(offer(&store, "teams_activity:Ev1", T0, Duration::hours(1)).await);
        // Once expired it is new again, and remembered afresh from then.
        let later = T0 + minute;
        assert!(offer(&store, "slack_event:Ev1", later, minute).await);
        assert!(
            !offer(
                &store,
                "slack_event:Ev1",
                later + Duration::seconds(30),
                minute
            )
            .await
        );

        assert!(offer(&store, "slack_event:Ev2", T0, minute).await);
        let mut tx = store.system().await.unwrap();
        // At T0 + 2 min: Ev2 (until T0 + 1 min) has expired; Ev1 (until T0 + 2 min) expires
        // right then; the Teams id (until T0 + 1 h) has not.
        let pruned = store::seen_ids::prune(&mut tx, T0 + Duration::minutes(2), 1)
            .await
            .unwrap();
        assert_eq!(pruned, 1, "bounded per call");
        let pruned = store::seen_ids::prune(&mut tx, T0 + Duration::minutes(2), 100)
            .await
            .unwrap();
        assert_eq!(pruned, 1);
        assert_eq!(store::seen_ids::count(&mut tx).await.unwrap(), 1);
        tx.commit().await.unwrap();
        assert!(
            !offer(
                &store,
                "teams_activity:Ev1",
                T0 + Duration::minutes(2),
                minute
            )
            .await,
            "an unexpired id survives pruning"
        );
    }
);

/// Two replicas offered the same id at the same moment: exactly one handles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_offers_of_one_id_exactly_one_is_first() {
    let world = World::new(lineup_testkit::postgres_store().await).await;
    let offers = (0..20).map(|_| {
        let lineup = world.lineup.clone();
        tokio::spawn(async move {
            lineup
                .first_time_inbound("slack_event:EvRace", Duration::minutes(5))
                .await
                .unwrap()
        })
    });
    let mut firsts = 0;
    for offer in offers.collect::<Vec<_>>() {
        firsts += usize::from(offer.await.unwrap());
    }
    assert_eq!(firsts, 1);

    let empty = world
        .lineup
        .first_time_inbound(" ", Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &empty,
            CoreError::Invalid {
                field: "inbound id",
                ..
            }
        ),
        "{empty:?}"
    );
    let unremembered = world
        .lineup
        .first_time_inbound("slack_event:Ev0", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(&unremembered, CoreError::Invalid { .. }),
        "{unremembered:?}"
    );
}

// Claims made at once are written together, one statement per process at a time: each of
// two replicas on one database offers ten keys five times each, all at once and in opposite
// orders, and every key is first exactly once, with no error (no deadlock between the
// replicas' statements); the same keys offered again are all remembered.
both_backends!(
    claims_written_together_are_first_once_per_key_across_replicas,
    |store| async move {
        let world = World::new(store).await;
        let replica = lineup_with(&world.store, &world.sim, quick_poll(), None);
        let replicas = [world.lineup.clone(), replica].into_iter().enumerate();
        let offers = replicas.flat_map(|(replica, lineup)| {
            (0..50).map(move |i| {
                let lineup = lineup.clone();
                // The second replica offers the keys in the opposite order.
                let k = if replica == 0 { i % 10 } else { 9 - i % 10 };
                tokio::spawn(async move {
                    let key = format!("slack_signature:burst-{k}");
                    let first = lineup
                        .first_time_inbound(&key, Duration::minutes(5))
                        .await
                        .unwrap();
                    (key, first)
                })
            })
        });
        let mut firsts = std::collections::BTreeMap::new();
        for offer in offers.collect::<Vec<_>>() {
            let (key, first) = offer.await.unwrap();
            *firsts.entry(key).or_insert(0) += usize::from(first);
        }
        assert_eq!(firsts.len(), 10);
        assert!(firsts.values().all(|n| *n == 1), "{firsts:?}");
        for i in 0..10 {
            let key = format!("slack_signature:burst-{i}");
            assert!(
                !world
                    .lineup
                    .first_time_inbound(&key, Duration::minutes(5))
                    .await
                    .unwrap(),
                "{key}"
            );
        }
    }
);

/// A batch whose statement fails answers every claim in it with the error (so the platform
/// retries), and remembers none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_claim_is_an_error_for_the_caller_and_remembers_nothing() {
    let world = World::new(lineup_testkit::sqlite_store().await).await;
    let Store::Sqlite(pool) = &*world.store else {
        unreachable!()
    };
    sqlx::query("ALTER TABLE inbound_seen RENAME TO inbound_seen_away")
        .execute(pool)
        .await
        .unwrap();
    let offers: Vec<_> = (0..20)
        .map(|i| {
            let lineup = world.lineup.clone();
            tokio::spawn(async move {
                lineup
                    .first_time_inbound(&format!("slack_event:Fail{i}"), Duration::minutes(5))
                    .await
            })
        })
        .collect();
    for offer in offers {
        let failed = offer.await.unwrap().unwrap_err();
        assert!(
            failed.to_string().contains("inbound_seen"),
            "the database's reason reaches the caller: {failed}"
        );
    }
    sqlx::query("ALTER TABLE inbound_seen_away RENAME TO inbound_seen")
        .execute(pool)
        .await
        .unwrap();
    let mut tx = world.store.system().await.unwrap();
    assert_eq!(store::seen_ids::count(&mut tx).await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert!(
        world
            .lineup
            .first_time_inbound("slack_event:Fail0", Duration::minutes(5))
            .await
            .unwrap()
    );
}
