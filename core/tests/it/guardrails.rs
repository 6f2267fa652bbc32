//! Spend guardrails on real usage ingest: budget thresholds alert once per period, a cap
//! reached suspends in the same sync and resumes at rollover (only what it suspended), roaming
//! outside policy alerts or suspends unless a grant covers the day, anomalies alert once, the
//! finance buttons are idempotent, and tenants never see each other's alerts or spend.

use lineup_core::ids::TenantId;
use lineup_core::lines::line::{Line, LineState};
use lineup_core::money::Bytes;
use lineup_core::provider::{Roaming, UsageRecord};
use lineup_core::spend::alert::{Alert, AlertFilter, AlertKind, AlertState};
use lineup_core::spend::guardrail::PolicyEffect;
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, RoamingGrant, RoamingRule};
use lineup_core::spend::usage::UsagePipeline;
use lineup_core::spend::usage::{SpendFilter, SpendGrouping};
use lineup_core::store::{self, now};
use lineup_core::{CoreError, Lineup};
use lineup_testkit::both_backends;
use lineup_testkit::world::{ADMIN, World, add_tenant};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

/// The sync's "now" in these tests: the middle of November 2026.
const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const GB: i64 = Bytes::GB;
const MB: i64 = Bytes::MB;

fn record(line: &Line, key: &str, at: OffsetDateTime, bytes: i64, country: &str) -> UsageRecord {
    UsageRecord {
        dedupe_key: key.into(),
        subscription_id: line.provider_subscription_id.clone().unwrap(),
        started_at: at,
        ended_at: at + Duration::minutes(5),
        data_bytes: bytes,
        sms: 0,
        voice_seconds: 0,
        country: Some(country.into()),
        roaming: if country == "US" {
            Roaming::None
        } else {
            Roaming::International
        },
        in_bundle: None,
        observed_at: at,
    }
}

async fn alert_kinds(lineup: &Lineup, tenant: TenantId) -> Vec<AlertKind> {
    let mut kinds: Vec<AlertKind> = lineup
        .alerts(tenant, &AlertFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds
}

async fn alerts_of(w: &World, kind: AlertKind) -> Vec<Alert> {
    let filter = AlertFilter {
        kind: Some(kind),
        ..AlertFilter::default()
    };
    w.lineup.alerts(w.tenant, &filter).await.unwrap()
}

async fn assert_audited(w: &World, line: &Line, action: &str) {
    let audit = w.audit_actions("line", &line.id.to_string()).await;
    assert!(
        audit.iter().any(|a| a == action),
        "{action} not in {audit:?}"
    );
}

async fn state_of(w: &World, line: &Line) -> LineState {
    w.lineup.line(w.tenant, line.id).await.unwrap().state
}

/// Ada's plan: Europe 10GB at 25.00 a month, 10.00 per GB over (the default rate card).
fn europe_plan(w: &World) -> lineup_core::lines::plan::Plan {
    let plan = w.plans[0].clone();
    assert_eq!(plan.name, "Europe 10GB");
    assert_eq!(plan.price.unwrap().minor, 2_500);
    assert_eq!(plan.overage_per_gb.unwrap().minor, 1_000);
    plan
}

/// The whole organisation's budget, alerting at 50 % and 80 %.
async fn cap_organisation(w: &World, amount_minor: i64) {
    w.lineup
        .set_budget_cap(
            w.tenant,
            &ADMIN,
            BudgetCap {
                scope: CapScope::Tenant,
                amount_minor,
                thresholds: vec![50, 80],
                action: CapAction::Alert,
            },
        )
        .await
        .unwrap();
}

async fn cap_ada(w: &World, amount_minor: i64, action: CapAction) {
    w.lineup
        .set_budget_cap(
            w.tenant,
            &ADMIN,
            BudgetCap {
                scope: CapScope::Employee(w.ada.id),
                amount_minor,
                thresholds: vec![50, 80],
                action,
            },
        )
        .await
        .unwrap();
}

both_backends!(
    thresholds_fire_once_and_the_cap_suspends_in_the_same_sync_until_rollover,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-line").await;
        let alan = w.active_line(&w.alan, "alan-line").await;
        // An admin suspends Alan's line for their own reasons: rollover must leave it alone.
        w.lineup
            .suspend_line(w.tenant, &ADMIN, alan.id, None)
            .await
            .unwrap();
        cap_ada(&w, 5_000, CapAction::Suspend).await;

        // 1 GB: spend is the plan's 25.00, 50 % of the 50.00 cap.
        let first = [record(&ada, "u1", NOW - Duration::days(3), GB, "US")];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &first, NOW)
            .await
            .unwrap();
        assert_eq!((report.recorded, report.alerts), (1, 1));
        // 11 GB more: 12 GB is 2 GB over → 20.00 overage, 45.00 = 90 %.
        let second = [record(&ada, "u2", NOW - Duration::days(2), 11 * GB, "US")];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &second, NOW)
            .await
            .unwrap();
        assert_eq!(report.alerts, 1, "the 80 % threshold, once");
        // The same records again (a re-run sync) alert nothing.
        let again = [first[0].clone(), second[0].clone()];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &again, NOW)
            .await
            .unwrap();
        assert_eq!((report.recorded, report.alerts), (0, 0));
        assert_eq!(state_of(&w, &ada).await, LineState::Active);

        // 1 GB more: 13 GB → 30.00 overage, 55.00 ≥ 50.00: suspended in this very call.
        let third = [record(&ada, "u3", NOW - Duration::days(1), GB, "US")];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &third, NOW)
            .await
            .unwrap();
        assert_eq!(report.alerts, 1);
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        assert_eq!(
            alert_kinds(&w.lineup, w.tenant).await,
            vec![
                AlertKind::BudgetCapReached,
                AlertKind::BudgetThreshold,
                AlertKind::BudgetThreshold
            ]
        );
        let spend = w
            .lineup
            .spend(w.tenant, SpendGrouping::Line, &SpendFilter::default())
            .await
            .unwrap();
        let ada_spend = spend.iter().find(|r| r.key == Some(ada.id.0)).unwrap();
        assert_eq!(ada_spend.period, "2026-11");
        assert_eq!(
            (
                ada_spend.plan_minor,
                ada_spend.overage_minor,
                ada_spend.total_minor
            ),
            (2_500, 3_000, 5_500)
        );
        assert_audited(&w, &ada, "guardrail.line_suspended").await;

        // December: Ada's line comes back; Alan's, suspended by an admin, does not.
        let rollover = w
            .lineup
            .rollover_guardrails(w.tenant, datetime!(2026-12-01 06:00 UTC))
            .await
            .unwrap();
        assert_eq!(rollover.resumed, 1);
        assert_eq!(state_of(&w, &ada).await, LineState::Active);
        assert_eq!(state_of(&w, &alan).await, LineState::Suspended);
        assert_audited(&w, &ada, "guardrail.line_resumed").await;
        let again = w
            .lineup
            .rollover_guardrails(w.tenant, datetime!(2026-12-01 07:00 UTC))
            .await
            .unwrap();
        assert_eq!(again.resumed, 0);

        // Ada is told, once each: both thresholds of her own budget, the suspension (which
        // stands in for the cap-reached alert) and the line coming back. Alan hears nothing.
        let notices = w.lineup.employee_notices(w.tenant).await.unwrap();
        let titles: Vec<&str> = notices
            .iter()
            .map(|(_, state, m)| {
                assert_eq!(state, "queued");
                m.title.as_deref().unwrap()
            })
            .collect();
        assert_eq!(
            titles,
            vec![
                "Budget threshold passed",
                "Budget threshold passed",
                "Your line is suspended",
                "Your line is back"
            ]
        );
        assert!(
            notices[0]
                .2
                .text
                .starts_with("Ada Tester's budget passed 50%"),
            "people's names, not ids: {}",
            notices[0].2.text
        );
        let (_, _, suspended) = &notices[2];
        assert!(
            suspended.text.contains("reached its cap"),
            "the reason is given: {}",
            suspended.text
        );
        assert!(notices[3].2.text.contains("a new billing month started"));
    }
);

both_backends!(
    roaming_outside_the_presets_suspends_unless_a_grant_covers_the_day,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-roams").await;
        let alan = w.active_line(&w.alan, "alan-roams").await;
        let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        settings.roaming_violation_action = CapAction::Suspend;
        w.lineup
            .update_settings(w.tenant, &ADMIN, settings)
            .await
            .unwrap();
        for (country, rule) in [
            ("JP", RoamingRule::NeedsApproval),
            ("FR", RoamingRule::Allowed),
        ] {
            w.lineup
                .set_roaming_rule(w.tenant, &ADMIN, country, rule)
                .await
                .unwrap();
        }
        // Alan has an approved trip to Japan.
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let grant = RoamingGrant {
            id: uuid::Uuid::now_v7(),
            tenant_id: w.tenant,
            line_id: alan.id,
            country: "JP".into(),
            starts_on: date!(2026 - 11 - 15),
            ends_on: date!(2026 - 11 - 22),
            request_id: None,
            state: "active".into(),
        };
        store::policy::insert_grant(&mut tx, w.tenant, &grant)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let day = NOW - Duration::days(1);
        let batch = [
            record(&ada, "ada-jp", day, 100 * MB, "JP"),
            record(&ada, "ada-fr", day, 50 * MB, "FR"),
            record(&alan, "alan-jp", day, 100 * MB, "JP"),
        ];
        w.lineup
            .record_usage_at(w.tenant, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        assert_eq!(state_of(&w, &alan).await, LineState::Active);
        let violations = alerts_of(&w, AlertKind::RoamingViolation).await;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].line_id, Some(ada.id));
        assert_eq!(violations[0].employee_id, Some(w.ada.id));
        // Allowed roaming in a country the line never used is worth a look, not an action.
        let new_countries = alerts_of(&w, AlertKind::NewRoamingCountry).await;
        assert_eq!(new_countries.len(), 2, "Ada in France, Alan in Japan");

        // Japan is outside the Europe plan: 100 MB at the Asia-Pacific 9.00/GB is
        // 100/1024 × 900 = 87.9 → 88 cents. France is inside the plan's coverage: bundle.
        let spend = w
            .lineup
            .spend(w.tenant, SpendGrouping::Line, &SpendFilter::default())
            .await
            .unwrap();
        let ada_spend = spend.iter().find(|r| r.key == Some(ada.id.0)).unwrap();
        assert_eq!(
            (ada_spend.roaming_minor, ada_spend.roaming_bytes),
            (88, 100 * MB)
        );
        assert_eq!(ada_spend.bundle_bytes, 50 * MB);

        // The same roaming the next day is the same condition this period: no new alert.
        let later = [record(&ada, "ada-jp-2", NOW, 10 * MB, "JP")];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &later, NOW)
            .await
            .unwrap();
        assert_eq!(report.alerts, 0);
    }
);

both_backends!(
    the_finance_buttons_act_once_however_often_they_are_clicked,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-buttons").await;
        cap_ada(&w, 3_000, CapAction::Suspend).await;
        // 11 GB: 1 GB over → 35.00 ≥ 30.00.
        let batch = [record(&ada, "big", NOW - Duration::days(1), 11 * GB, "US")];
        w.lineup
            .record_usage_at(w.tenant, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        let cap_alert = w
            .lineup
            .alerts(
                w.tenant,
                &AlertFilter {
                    kind: Some(AlertKind::BudgetCapReached),
                    period: Some("2026-11".into()),
                    ..AlertFilter::default()
                },
            )
            .await
            .unwrap()
            .remove(0);

        // Raise the cap by 10.00 twice (a double click): raised once, 35.00 < 40.00, resumed.
        for _ in 0..2 {
            w.lineup
                .raise_cap_from_alert(w.tenant, &ADMIN, cap_alert.id, 1_000)
                .await
                .unwrap();
        }
        assert_eq!(state_of(&w, &ada).await, LineState::Active);
        let audit = w.audit_actions("alert", &cap_alert.id.to_string()).await;
        assert_eq!(
            audit.iter().filter(|a| *a == "alert.cap_raised").count(),
            1,
            "{audit:?}"
        );

        // Suspend from the alert, twice: one suspension, then the line is found suspended.
        for _ in 0..2 {
            let lines = w
                .lineup
                .suspend_line_from_alert(w.tenant, &ADMIN, cap_alert.id)
                .await
                .unwrap();
            assert_eq!(lines[0].state, LineState::Suspended);
        }
        let suspends = w
            .audit_actions("line", &ada.id.to_string())
            .await
            .into_iter()
            .filter(|a| a == "line.suspended")
            .count();
        assert_eq!(suspends, 2, "once by the guardrail, once from the button");

        for _ in 0..2 {
            let snoozed = w
                .lineup
                .snooze_alert(w.tenant, &ADMIN, cap_alert.id, 7)
                .await
                .unwrap();
            assert_eq!(snoozed.state, AlertState::Snoozed);
        }
        assert!(matches!(
            w.lineup
                .snooze_alert(w.tenant, &ADMIN, cap_alert.id, 0)
                .await,
            Err(CoreError::Invalid { field: "days", .. })
        ));
        w.lineup
            .acknowledge_alert(w.tenant, &ADMIN, cap_alert.id)
            .await
            .unwrap();
        w.lineup
            .resolve_alert(w.tenant, &ADMIN, cap_alert.id)
            .await
            .unwrap();
        assert!(matches!(
            w.lineup
                .acknowledge_alert(w.tenant, &ADMIN, cap_alert.id)
                .await,
            Err(CoreError::Conflict(_))
        ));
        let audit = w.audit_actions("alert", &cap_alert.id.to_string()).await;
        for action in ["alert.snoozed", "alert.acknowledged", "alert.resolved"] {
            assert_eq!(
                audit.iter().filter(|a| *a == action).count(),
                1,
                "{audit:?}"
            );
        }
    }
);

both_backends!(
    a_usage_spike_and_an_unused_line_alert_once_per_period,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-spiky").await;
        let alan = w.active_line(&w.alan, "alan-idle").await;
        // Ten steady days of 100 MB, then 700 MB: more than 3 × the median and the floor.
        let start = now() + Duration::days(10);
        let mut batch: Vec<UsageRecord> = (0..10)
            .map(|d| {
                record(
                    &ada,
                    &format!("d{d}"),
                    start + Duration::days(d),
                    100 * MB,
                    "US",
                )
            })
            .collect();
        let report = w
            .lineup
            .record_usage_at(w.tenant, &batch, start)
            .await
            .unwrap();
        assert_eq!(report.alerts, 0);
        batch = vec![record(
            &ada,
            "spike",
            start + Duration::days(10),
            700 * MB,
            "US",
        )];
        let report = w
            .lineup
            .record_usage_at(w.tenant, &batch, start)
            .await
            .unwrap();
        assert_eq!(report.alerts, 1);
        batch = vec![record(
            &ada,
            "spike-2",
            start + Duration::days(11),
            900 * MB,
            "US",
        )];
        w.lineup
            .record_usage_at(w.tenant, &batch, start)
            .await
            .unwrap();
        let spikes = alerts_of(&w, AlertKind::UsageSpike).await;
        let periods: std::collections::BTreeSet<_> = spikes.iter().map(|a| &a.period).collect();
        assert_eq!(
            spikes.len(),
            periods.len(),
            "one spike alert per line and period"
        );

        // A month on, Alan's line has never been used: it costs its plan for nothing.
        let month_on = now() + Duration::days(31);
        let report = w
            .lineup
            .rollover_guardrails(w.tenant, month_on)
            .await
            .unwrap();
        assert_eq!(report.unused_line_alerts, 1);
        let unused = alerts_of(&w, AlertKind::UnusedLine).await;
        assert_eq!(unused[0].line_id, Some(alan.id));
        assert_eq!(unused[0].details["wasted_per_month_minor"], 2_500);
        let again = w
            .lineup
            .rollover_guardrails(w.tenant, month_on)
            .await
            .unwrap();
        assert_eq!(again.unused_line_alerts, 0);
    }
);

both_backends!(
    tenants_never_see_each_others_alerts_or_spend,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-private").await;
        cap_ada(&w, 2_000, CapAction::Alert).await;
        let batch = [record(&ada, "private", NOW - Duration::days(1), GB, "US")];
        w.lineup
            .record_usage_at(w.tenant, &batch, NOW)
            .await
            .unwrap();
        let ours = w
            .lineup
            .alerts(w.tenant, &AlertFilter::default())
            .await
            .unwrap();
        assert!(!ours.is_empty());

        let other = add_tenant(&w.lineup, "globex").await;
        let theirs = w
            .lineup
            .alerts(other, &AlertFilter::default())
            .await
            .unwrap();
        assert!(theirs.is_empty());
        for grouping in [SpendGrouping::Line, SpendGrouping::Tenant] {
            let spend = w
                .lineup
                .spend(other, grouping, &SpendFilter::default())
                .await
                .unwrap();
            assert!(spend.is_empty(), "{spend:?}");
        }
        assert!(matches!(
            w.lineup.alert(other, ours[0].id).await,
            Err(CoreError::NotFound { what: "alert", .. })
        ));
        assert!(matches!(
            w.lineup.acknowledge_alert(other, &ADMIN, ours[0].id).await,
            Err(CoreError::NotFound { what: "alert", .. })
        ));
        // Their alerts outbox holds none of ours, and they see none of Ada's notices.
        let deliveries = w.lineup.alerts_to_deliver(100).await.unwrap();
        assert!(deliveries.iter().all(|d| d.alert.tenant_id == w.tenant));
        assert!(
            !w.lineup
                .employee_notices(w.tenant)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(w.lineup.employee_notices(other).await.unwrap().is_empty());
    }
);

both_backends!(
    the_what_if_replay_of_recorded_usage_gives_the_hand_computed_numbers,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-whatif").await;
        let alan = w.active_line(&w.alan, "alan-whatif").await;
        let daily: Vec<UsageRecord> = (1..=20)
            .map(|d| {
                let at = datetime!(2026-11-01 10:00 UTC).replace_day(d).unwrap();
                record(&ada, &format!("day{d}"), at, GB, "US")
            })
            .collect();
        w.lineup
            .record_usage_at(w.tenant, &daily, NOW)
            .await
            .unwrap();

        // Proposed: Ada's cap at 45.00, suspending. Europe 10GB costs 25.00 + 10.00 per GB
        // over 10 GB, so after day n of November Ada has spent 25.00 + max(0, n − 10) × 10.00.
        // The window is the last 10 days (11–20 November); 1–10 November warm up.
        //   day 1: 25.00 ≥ 22.50 (50 %), before the window: not counted;
        //   day 11: 35.00 < 36.00 (80 %); day 12: 45.00 → 80 % and 100 %: two alerts;
        //   suspended from day 13: 13–20 November are 8 suspended days, that usage dropped;
        //   Ada's November: 12 GB → 20.00 overage → 45.00 (was 20 GB → 100.00 → 125.00).
        // Alan's line is live and unused: 25.00 either way.
        let proposed = lineup_core::spend::whatif::PolicySet::from_json(&format!(
            r#"{{"caps": [{{"scope": {{"kind": "employee", "id": "{}"}},
                 "amount_minor": 4500, "action": "suspend"}}]}}"#,
            w.ada.id
        ))
        .unwrap();
        let report = w
            .lineup
            .what_if(w.tenant, 10, &proposed, date!(2026 - 11 - 20))
            .await
            .unwrap();
        assert_eq!(
            (report.from, report.to),
            (date!(2026 - 11 - 11), date!(2026 - 11 - 20))
        );
        let now_total = report.current.total();
        let if_total = report.proposed.total();
        assert_eq!(
            (now_total.spend.total_minor(), now_total.spend.overage_minor),
            (15_000, 10_000)
        );
        assert_eq!((now_total.suspended_days, now_total.alerts), (0, 0));
        assert_eq!(
            (if_total.spend.total_minor(), if_total.spend.overage_minor),
            (7_000, 2_000)
        );
        assert_eq!((if_total.suspended_days, if_total.alerts), (8, 2));
        assert_eq!(report.proposed.lines[&ada.id].suspended_days, 8);
        assert_eq!(report.proposed.lines[&alan.id].spend.total_minor(), 2_500);
        assert!(report.labels[&ada.id].starts_with("ada@example.com"));
    }
);

both_backends!(
    the_what_if_replay_prices_each_trip_on_the_home_line_and_as_a_travel_esim,
    |store| async move {
        use lineup_core::lines::request::roaming_quote::RoamingOption;
        use lineup_core::provider::connection::{NewConnection, ProviderCredentials};

        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-trip").await;
        let trip: Vec<UsageRecord> = (10..=14)
            .map(|d| {
                let at = datetime!(2026-11-01 10:00 UTC).replace_day(d).unwrap();
                record(&ada, &format!("jp{d}"), at, GB, "JP")
            })
            .collect();
        w.lineup
            .record_usage_at(w.tenant, &trip, NOW)
            .await
            .unwrap();
        // Airalo's Japan packages are what the trip is compared with.
        w.lineup
            .add_provider_connection(
                w.tenant,
                &ADMIN,
                NewConnection {
                    vendor: "airalo".into(),
                    label: "Airalo".into(),
                    credentials: ProviderCredentials {
                        client_id: lineup_simulator::AIRALO_CLIENT_ID.into(),
                        client_secret: lineup_simulator::AIRALO_CLIENT_SECRET.into(),
                        account_id: "partner".into(),
                    },
                },
            )
            .await
            .unwrap();
        let report = w
            .lineup
            .what_if(
                w.tenant,
                20,
                &lineup_core::spend::whatif::PolicySet::default(),
                date!(2026 - 11 - 20),
            )
            .await
            .unwrap();
        let [trip] = report.trips.as_slice() else {
            panic!("one trip: {:?}", report.trips)
        };
        assert_eq!(
            (trip.country.as_str(), trip.from, trip.to, trip.data),
            (
                "JP",
                date!(2026 - 11 - 10),
                date!(2026 - 11 - 14),
                Bytes(5 * GB)
            )
        );
        // 5 GB at Europe 10GB's Asia-Pacific rate of 9.00 per GB; the cheapest Japan package
        // with 5 GB for 5 days is Airalo's 10 GB for 15 days at 26.00.
        assert_eq!(trip.home_minor, 4_500);
        assert_eq!(
            trip.travel
                .as_ref()
                .map(|t| (t.package.as_str(), t.price.minor)),
            Some(("Japan 10 GB - 15 Days", 2_600))
        );
        assert_eq!(trip.cheaper, RoamingOption::TravelEsim);
        assert_eq!((trip.cheaper_minor(), trip.saving_minor()), (2_600, 1_900));
    }
);

/// The speed limit the simulator holds for a subscription, read through its API.
async fn speed_limit_kbps(w: &World, line: &Line) -> serde_json::Value {
    let base = w.sim.base_url();
    let token: serde_json::Value = w
        .http
        .post(format!(
            "{base}{}",
            lineup_core::provider::oneglobal::OneGlobalConfig::TOKEN_PATH
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "lineup-demo-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subscription: serde_json::Value = w
        .http
        .get(format!(
            "{base}/enterprise/subscriptions/{}",
            line.provider_subscription_id.as_deref().unwrap()
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    subscription["speed_limit_kbps"].clone()
}

both_backends!(
    a_throttling_cap_slows_the_line_through_the_provider_until_rollover,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-throttled").await;
        cap_ada(&w, 3_000, CapAction::Throttle).await;
        assert_eq!(speed_limit_kbps(&w, &ada).await, serde_json::Value::Null);
        // 11 GB on Europe 10GB: 25.00 + 10.00 overage ≥ 30.00.
        let batch = [record(
            &ada,
            "heavy",
            NOW - Duration::days(1),
            11 * GB,
            "US",
        )];
        w.lineup
            .record_usage_at(w.tenant, &batch, NOW)
            .await
            .unwrap();
        assert_eq!(
            state_of(&w, &ada).await,
            LineState::Active,
            "still in service"
        );
        // The Europe plan names no after-cap speed: the default 128 kbps.
        assert_eq!(speed_limit_kbps(&w, &ada).await, 128);
        assert_audited(&w, &ada, "guardrail.line_throttled").await;

        let rollover = w
            .lineup
            .rollover_guardrails(w.tenant, datetime!(2026-12-01 06:00 UTC))
            .await
            .unwrap();
        assert_eq!(rollover.resumed, 1);
        assert_eq!(speed_limit_kbps(&w, &ada).await, serde_json::Value::Null);
        assert_audited(&w, &ada, "guardrail.line_unthrottled").await;
    }
);

both_backends!(
    batches_recorded_side_by_side_add_up_and_alert_once,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-line").await;
        let alan = w.active_line(&w.alan, "alan-line").await;
        cap_organisation(&w, 8_000).await;
        // Twelve batches, each a GB on each line on a day of November (two records per day
        // to a line, so consecutive batches share their (line, day) rows).
        let mut pipeline = UsagePipeline::new(&w.lineup, w.tenant, NOW);
        for n in 0..12 {
            let at = datetime!(2026-11-01 06:00 UTC) + Duration::hours(12 * n);
            let batch = vec![
                record(&ada, &format!("ada-{n}"), at, GB, "US"),
                record(&alan, &format!("alan-{n}"), at, GB, "US"),
            ];
            pipeline.push(batch).await.unwrap();
        }
        // A re-delivered batch, in flight with new ones, counts nothing twice.
        pipeline
            .push(vec![record(
                &ada,
                "ada-0",
                datetime!(2026-11-01 06:00 UTC),
                GB,
                "US",
            )])
            .await
            .unwrap();
        let report = pipeline.finish().await.unwrap();
        assert_eq!((report.recorded, report.duplicates), (24, 1));

        // Each line: 12 GB, 2 over at 10.00 → 25.00 + 20.00 = 45.00; 90.00 of an 80.00 cap.
        let spend = w
            .lineup
            .spend(w.tenant, SpendGrouping::Line, &SpendFilter::default())
            .await
            .unwrap();
        let per_line: Vec<(i64, i64, i64)> = spend
            .iter()
            .map(|s| (s.bundle_bytes, s.overage_minor, s.total_minor))
            .collect();
        assert_eq!(per_line, vec![(12 * GB, 2_000, 4_500); 2]);
        for line in [&ada, &alan] {
            let days = w.lineup.daily_usage(w.tenant, line.id).await.unwrap();
            assert_eq!(days.len(), 6, "two GB a day over six days");
            assert!(days.iter().all(|d| d.data_bytes == 2 * GB), "{days:?}");
        }
        // 50 %, 80 % and the cap itself, each exactly once.
        assert_eq!(
            alert_kinds(&w.lineup, w.tenant).await,
            vec![
                AlertKind::BudgetCapReached,
                AlertKind::BudgetThreshold,
                AlertKind::BudgetThreshold
            ]
        );
    }
);

/// A chat platform that fails the way it is told to.
struct FailingChat(lineup_core::messaging::employee_notice::NoticeError);

#[async_trait::async_trait]
impl lineup_core::messaging::employee_notice::NoticeSender for FailingChat {
    async fn send_notice(
        &self,
        _: &lineup_core::messaging::employee_notice::EmployeeNotice,
    ) -> Result<(), lineup_core::messaging::employee_notice::NoticeError> {
        Err(self.0.clone())
    }
}

both_backends!(
    a_notice_that_cannot_be_sent_waits_and_one_that_never_can_is_given_up,
    |store| async move {
        use lineup_core::messaging::employee_notice::NoticeError;
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-notice").await;
        cap_ada(&w, 2_600, CapAction::Alert).await;
        // 25.00 of 26.00: the 50 % and 80 % alerts, each a notice for Ada.
        let batch = [record(&ada, "n1", NOW - Duration::days(1), GB, "US")];
        w.lineup
            .record_usage_at(w.tenant, &batch, NOW)
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        let offline = FailingChat(NoticeError::Temporary("Slack is down".into()));
        let sent = w
            .lineup
            .deliver_employee_notices(&offline, now)
            .await
            .unwrap();
        assert_eq!(sent, 0);
        let states: Vec<String> = w
            .lineup
            .employee_notices(w.tenant)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, state, _)| state)
            .collect();
        assert_eq!(states, vec!["queued", "queued"], "waiting to be retried");
        // Not due again until the back-off has passed: nothing is claimed twice in a round.
        let refused = FailingChat(NoticeError::Permanent("no such user".into()));
        assert_eq!(
            w.lineup
                .deliver_employee_notices(&refused, now)
                .await
                .unwrap(),
            0
        );
        let later = now + Duration::minutes(2);
        w.lineup
            .deliver_employee_notices(&refused, later)
            .await
            .unwrap();
        let notices = w.lineup.employee_notices(w.tenant).await.unwrap();
        assert!(
            notices.iter().all(|(_, state, _)| state == "failed"),
            "{notices:?}"
        );
        let audit = w.audit_actions("employee", &w.ada.id.to_string()).await;
        assert_eq!(
            audit
                .iter()
                .filter(|a| *a == "employee.notice_failed")
                .count(),
            2
        );
    }
);

both_backends!(
    a_cap_raise_makes_room_in_every_budget_that_counts_the_employee,
    |store| async move {
        use lineup_core::lines::request::RequestDetails;
        use lineup_core::lines::request::commands::SubmitRequest;
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-raise").await;
        let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        settings.cap_raise_auto_approve_max_minor = 1_000;
        w.lineup
            .update_settings(w.tenant, &ADMIN, settings)
            .await
            .unwrap();
        cap_organisation(&w, 3_000).await;
        // This month, as the wall clock sees it: cap raises are for the current month.
        let at = now();
        let first = [record(&ada, "r1", at - Duration::minutes(30), GB, "US")];
        w.lineup
            .record_usage_at(w.tenant, &first, at)
            .await
            .unwrap();
        let summary = w.lineup.usage_summary(w.tenant, w.ada.id).await.unwrap();
        assert_eq!(summary.cap, None, "Ada has no cap of her own");
        let shared: Vec<String> = summary
            .shared_budgets
            .iter()
            .map(|b| format!("{}: {} of {}", b.name, b.spent.minor, b.cap.minor))
            .collect();
        assert_eq!(shared, vec!["Organisation: 2500 of 3000"]);

        // Ada gets 10.00 more this month (auto-approved): the organisation's budget has room.
        let raise = w
            .lineup
            .submit_request(
                w.tenant,
                SubmitRequest {
                    requester: w.ada.id,
                    details: RequestDetails::CapRaise {
                        amount_minor: 1_000,
                    },
                    reason: "conference".into(),
                    dedupe_key: "raise-1".into(),
                },
            )
            .await
            .unwrap();
        w.lineup
            .fulfil_request(w.tenant, raise.request.id)
            .await
            .unwrap();
        let summary = w.lineup.usage_summary(w.tenant, w.ada.id).await.unwrap();
        assert_eq!(summary.shared_budgets[0].cap.minor, 4_000);

        // 11 GB: 1 GB over → 35.00. Past the old 30.00, within the raised 40.00: no cap alert.
        let second = [record(
            &ada,
            "r2",
            at - Duration::minutes(20),
            10 * GB,
            "US",
        )];
        w.lineup
            .record_usage_at(w.tenant, &second, at)
            .await
            .unwrap();
        assert_eq!(
            alert_kinds(&w.lineup, w.tenant).await,
            vec![AlertKind::BudgetThreshold, AlertKind::BudgetThreshold]
        );
    }
);

/// The subscription the simulator holds for `line`, read through its API.
async fn sim_subscription(w: &World, line: &Line) -> serde_json::Value {
    let base = w.sim.base_url();
    let token: serde_json::Value = w
        .http
        .post(format!(
            "{base}{}",
            lineup_core::provider::oneglobal::OneGlobalConfig::TOKEN_PATH
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "lineup-demo"),
            ("client_secret", "lineup-demo-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    w.http
        .get(format!(
            "{base}/enterprise/subscriptions/{}",
            line.provider_subscription_id.as_deref().unwrap()
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A record from a second ago, so it counts in the period a policy saved now acts on.
fn record_now(line: &Line, key: &str, bytes: i64, country: &str) -> UsageRecord {
    record(line, key, now() - Duration::seconds(1), bytes, country)
}

/// Ada's spend this month: 47.12 on Europe 10GB (25.00 + 2.212 GB over at 10.00 per GB).
async fn spend_47_12(w: &World, line: &Line) {
    let over = 2_212 * GB / 1_000;
    let batch = [record_now(line, "ada-47.12", 10 * GB + over, "US")];
    w.lineup.record_usage(w.tenant, &batch).await.unwrap();
    let spend = w
        .lineup
        .spend(w.tenant, SpendGrouping::Line, &SpendFilter::default())
        .await
        .unwrap();
    let row = spend.iter().find(|r| r.key == Some(line.id.0)).unwrap();
    assert_eq!(row.total_minor, 4_712);
}

fn ada_cap(w: &World, amount_minor: i64, action: CapAction) -> BudgetCap {
    BudgetCap {
        scope: CapScope::Employee(w.ada.id),
        amount_minor,
        thresholds: vec![50, 80],
        action,
    }
}

both_backends!(
    a_cap_saved_below_the_spend_suspends_at_once_and_raising_it_gives_the_line_back,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-main").await;
        // Ada's second line, suspended by an admin: no cap may give it back.
        let spare = w.active_line(&w.ada, "ada-spare").await;
        w.lineup
            .suspend_line(w.tenant, &ADMIN, spare.id, None)
            .await
            .unwrap();
        spend_47_12(&w, &ada).await;

        // The preview says what saving does, and saves nothing.
        let cap = ada_cap(&w, 4_600, CapAction::Suspend);
        let preview = w
            .lineup
            .preview_budget_cap(w.tenant, cap.clone())
            .await
            .unwrap();
        let expected = PolicyEffect {
            alerts: 3,
            suspended: 1,
            ..PolicyEffect::default()
        };
        assert_eq!(
            preview, expected,
            "50 %, 80 % and the cap; Ada's active line"
        );
        assert!(w.lineup.budget_caps(w.tenant).await.unwrap().is_empty());
        assert!(alert_kinds(&w.lineup, w.tenant).await.is_empty());
        assert_eq!(state_of(&w, &ada).await, LineState::Active);

        // Saved: suspended at once, with no new usage, at the provider too.
        let saved = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, cap)
            .await
            .unwrap();
        assert_eq!(saved, expected);
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        assert_eq!(sim_subscription(&w, &ada).await["status"], "suspended");
        assert_audited(&w, &ada, "guardrail.line_suspended").await;
        assert_eq!(alerts_of(&w, AlertKind::BudgetCapReached).await.len(), 1);

        // The next sync brings the same usage: nothing is raised or planned again.
        let batch = [record_now(&ada, "ada-47.12", GB, "US")];
        let report = w.lineup.record_usage(w.tenant, &batch).await.unwrap();
        assert_eq!((report.recorded, report.alerts), (0, 0));

        // Raised to 60.00: 47.12 is under it; the line the cap suspended comes back, the one
        // the admin suspended does not.
        let raised = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, ada_cap(&w, 6_000, CapAction::Suspend))
            .await
            .unwrap();
        assert_eq!(
            raised,
            PolicyEffect {
                released: 1,
                ..PolicyEffect::default()
            }
        );
        assert_eq!(state_of(&w, &ada).await, LineState::Active);
        assert_eq!(sim_subscription(&w, &ada).await["status"], "active");
        assert_audited(&w, &ada, "guardrail.line_resumed").await;
        assert_eq!(state_of(&w, &spare).await, LineState::Suspended);

        // Lowered again the same month: the cap acts again (a new action, a new provider
        // order), without repeating its alerts.
        let lowered = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, ada_cap(&w, 4_600, CapAction::Suspend))
            .await
            .unwrap();
        assert_eq!(
            lowered,
            PolicyEffect {
                suspended: 1,
                ..PolicyEffect::default()
            }
        );
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        assert_eq!(sim_subscription(&w, &ada).await["status"], "suspended");
        assert_eq!(alerts_of(&w, AlertKind::BudgetCapReached).await.len(), 1);
    }
);

both_backends!(
    an_alert_cap_alerts_once_and_a_throttling_cap_slows_at_once_until_it_is_removed,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-alerted").await;
        spend_47_12(&w, &ada).await;

        // The organisation's 40.00 cap, alert only: 50 % and the cap are already passed.
        let org = BudgetCap {
            scope: CapScope::Tenant,
            amount_minor: 4_000,
            thresholds: vec![50],
            action: CapAction::Alert,
        };
        let saved = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, org)
            .await
            .unwrap();
        assert_eq!(
            saved,
            PolicyEffect {
                alerts: 2,
                ..PolicyEffect::default()
            }
        );
        assert_eq!(
            alert_kinds(&w.lineup, w.tenant).await,
            vec![AlertKind::BudgetCapReached, AlertKind::BudgetThreshold]
        );
        assert_eq!(state_of(&w, &ada).await, LineState::Active);
        // A following sync with new usage does not repeat them.
        let batch = [record_now(&ada, "ada-more", 10 * MB, "US")];
        let report = w.lineup.record_usage(w.tenant, &batch).await.unwrap();
        assert_eq!((report.recorded, report.alerts), (1, 0));
        assert_eq!(alert_kinds(&w.lineup, w.tenant).await.len(), 2);

        // Ada's own 46.00 cap slowing data down: throttled at the provider at once.
        let saved = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, ada_cap(&w, 4_600, CapAction::Throttle))
            .await
            .unwrap();
        assert_eq!((saved.alerts, saved.throttled), (3, 1));
        assert_eq!(speed_limit_kbps(&w, &ada).await, 128);
        assert_eq!(state_of(&w, &ada).await, LineState::Active);

        // Removing it gives the speed back (the organisation's cap only alerts).
        let scope = CapScope::Employee(w.ada.id);
        let preview = w
            .lineup
            .preview_budget_cap_removal(w.tenant, scope)
            .await
            .unwrap();
        assert_eq!(preview.released, 1);
        let removed = w
            .lineup
            .delete_budget_cap(w.tenant, &ADMIN, scope)
            .await
            .unwrap();
        assert_eq!(removed, preview);
        assert_eq!(speed_limit_kbps(&w, &ada).await, serde_json::Value::Null);
        assert_audited(&w, &ada, "guardrail.line_unthrottled").await;
    }
);

both_backends!(
    a_roaming_preset_saved_acts_on_roaming_already_recorded,
    |store| async move {
        let w = World::new(store).await;
        let ada = w.active_line(&w.ada, "ada-japan").await;
        let alan = w.active_line(&w.alan, "alan-home").await;
        let mut settings = w.lineup.tenant(w.tenant).await.unwrap().settings;
        settings.roaming_violation_action = CapAction::Suspend;
        w.lineup
            .update_settings(w.tenant, &ADMIN, settings)
            .await
            .unwrap();
        w.lineup
            .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Allowed)
            .await
            .unwrap();
        let batch = [
            record_now(&ada, "ada-tokyo", 50 * MB, "JP"),
            record_now(&alan, "alan-home", 50 * MB, "US"),
        ];
        w.lineup.record_usage(w.tenant, &batch).await.unwrap();
        assert!(alerts_of(&w, AlertKind::RoamingViolation).await.is_empty());

        let preview = w
            .lineup
            .preview_roaming_rule(w.tenant, "jp", Some(RoamingRule::Blocked))
            .await
            .unwrap();
        let expected = PolicyEffect {
            alerts: 1,
            suspended: 1,
            ..PolicyEffect::default()
        };
        assert_eq!(preview, expected);
        assert_eq!(state_of(&w, &ada).await, LineState::Active);

        let saved = w
            .lineup
            .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Blocked)
            .await
            .unwrap();
        assert_eq!(saved, expected);
        assert_eq!(state_of(&w, &ada).await, LineState::Suspended);
        assert_eq!(sim_subscription(&w, &ada).await["status"], "suspended");
        assert_eq!(state_of(&w, &alan).await, LineState::Active, "never roamed");
        let violations = alerts_of(&w, AlertKind::RoamingViolation).await;
        assert_eq!(violations.len(), 1);
        assert!(violations[0].message.contains("JP"), "{violations:?}");
        // Saved again: the alert and the suspension are not repeated.
        let again = w
            .lineup
            .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Blocked)
            .await
            .unwrap();
        assert!(again.is_nothing(), "{again:?}");

        // Allowed after all: the line comes back, at the provider too.
        let allowed = PolicyEffect {
            released: 1,
            ..PolicyEffect::default()
        };
        let preview = w
            .lineup
            .preview_roaming_rule(w.tenant, "JP", Some(RoamingRule::Allowed))
            .await
            .unwrap();
        assert_eq!(preview, allowed);
        let saved = w
            .lineup
            .set_roaming_rule(w.tenant, &ADMIN, "JP", RoamingRule::Allowed)
            .await
            .unwrap();
        assert_eq!(saved, allowed);
        assert_eq!(state_of(&w, &ada).await, LineState::Active);
        assert_eq!(sim_subscription(&w, &ada).await["status"], "active");
    }
);

both_backends!(
    a_slow_provider_never_holds_up_the_save_and_the_cap_still_acts,
    |store| async move {
        let w = World::new(store).await;
        europe_plan(&w);
        let ada = w.active_line(&w.ada, "ada-slow").await;
        spend_47_12(&w, &ada).await;
        // Every order now takes 8 s at the provider.
        let slow = serde_json::json!({"order_delay_ms": {"min": 8_000, "max": 8_000}});
        w.sim(reqwest::Method::PUT, "/_sim/config", Some(slow))
            .await;

        let started = std::time::Instant::now();
        let saved = w
            .lineup
            .set_budget_cap(w.tenant, &ADMIN, ada_cap(&w, 4_600, CapAction::Suspend))
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(saved.suspended, 1);
        assert!(
            took < lineup_core::spend::policy::POLICY_ACT_WAIT + std::time::Duration::from_secs(2),
            "the save took {took:?}"
        );
        // The suspension goes on in the background and lands when the provider is done.
        for _ in 0..150 {
            if state_of(&w, &ada).await == LineState::Suspended {
                assert_eq!(sim_subscription(&w, &ada).await["status"], "suspended");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the guardrail never suspended the line");
    }
);
