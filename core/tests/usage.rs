//! Usage from the provider into daily rollups: every record counts once, whatever the order,
//! however often it arrives, and however many times an interrupted sync is run again.

use lineup_core::line::Line;
use lineup_core::money::Bytes;
use lineup_core::provider::{Roaming, UsageQuery, UsageRecord};
use lineup_core::store::now;
use lineup_testkit::both_backends;
use lineup_testkit::world::World;
use serde_json::json;
use time::Duration;

async fn use_data(w: &World, line: &Line, megabytes: i64, country: &str) {
    let sub = line.provider_subscription_id.as_deref().unwrap();
    w.sim(
        reqwest::Method::POST,
        &format!("/_sim/subscriptions/{sub}/usage"),
        Some(json!({"data_bytes": Bytes::mb(megabytes).0, "country": country})),
    )
    .await;
}

async fn total_bytes(w: &World, line: &Line) -> (i64, i64) {
    let days = w.lineup.daily_usage(w.tenant, line.id).await.unwrap();
    (
        days.iter().map(|d| d.data_bytes).sum(),
        days.iter().map(|d| d.roaming_bytes).sum(),
    )
}

fn window() -> (time::Date, time::Date) {
    let today = now().date();
    (today - Duration::days(2), today + Duration::days(1))
}

both_backends!(
    synced_usage_lands_in_daily_rollups_once,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "usage-line").await;
        use_data(&w, &line, 100, "US").await;
        use_data(&w, &line, 50, "FR").await;
        let (from, to) = window();
        let first = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!(first.recorded, 2, "{first:?}");
        assert_eq!(
            total_bytes(&w, &line).await,
            (Bytes::mb(150).0, Bytes::mb(50).0),
            "FR is roaming for a US account"
        );

        // The same window again (a retried cron tick, an overlapping sync) counts nothing twice.
        let again = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((again.recorded, again.duplicates), (0, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(150).0);

        // New usage after that is picked up on the next sync.
        use_data(&w, &line, 25, "US").await;
        let third = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((third.recorded, third.duplicates), (1, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(175).0);
    }
);

both_backends!(
    duplicates_and_out_of_order_records_never_double_count,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "ooo-line").await;
        let sub = line.provider_subscription_id.clone().unwrap();
        let at = now();
        let record = |key: &str, minutes_ago: i64, mb: i64| UsageRecord {
            dedupe_key: key.into(),
            subscription_id: sub.clone(),
            started_at: at - Duration::minutes(minutes_ago),
            ended_at: at - Duration::minutes(minutes_ago - 1),
            data_bytes: Bytes::mb(mb).0,
            sms: 0,
            voice_seconds: 0,
            country: Some("US".into()),
            roaming: Roaming::None,
            in_bundle: Some(true),
            observed_at: at,
        };
        let (early, late) = (record("uitem_A", 120, 10), record("uitem_B", 60, 20));
        let report = w
            .lineup
            .record_usage(w.tenant, &[late.clone(), early.clone(), late.clone()])
            .await
            .unwrap();
        assert_eq!((report.recorded, report.duplicates), (2, 1));
        let redelivered = w
            .lineup
            .record_usage(w.tenant, &[early, late])
            .await
            .unwrap();
        assert_eq!((redelivered.recorded, redelivered.duplicates), (0, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(30).0);

        let mut stranger = record("uitem_C", 30, 5);
        stranger.subscription_id = "sub_SOMEONE_ELSE".into();
        let report = w.lineup.record_usage(w.tenant, &[stranger]).await.unwrap();
        assert_eq!(report.unknown_lines, 1);
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(30).0);
    }
);

both_backends!(
    an_interrupted_sync_run_again_ends_with_the_same_totals,
    |store| async move {
        let w = World::new(store).await;
        let line = w.active_line(&w.ada, "resume-line").await;
        for mb in [5, 7, 11, 13] {
            use_data(&w, &line, mb, "US").await;
        }
        // The sync died after storing the first page (two of four records).
        let (from, to) = window();
        let all = w
            .lineup
            .provider()
            .usage(&UsageQuery {
                from,
                to,
                subscription_id: None,
                cursor: None,
            })
            .await
            .unwrap();
        assert_eq!(all.items.len(), 4);
        w.lineup
            .record_usage(w.tenant, &all.items[..2])
            .await
            .unwrap();
        // Run again from the start.
        let report = w.lineup.sync_usage(w.tenant, from, to).await.unwrap();
        assert_eq!((report.recorded, report.duplicates), (2, 2));
        assert_eq!(total_bytes(&w, &line).await.0, Bytes::mb(36).0);
    }
);
