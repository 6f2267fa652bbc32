//! A trip abroad priced both ways on the approval card: roaming on the home line against the
//! cheapest travel eSIM. The approver picks the travel eSIM; it is ordered once at Airalo, its
//! QR code reaches the traveller by DM, the home line gets no roaming for the trip, and the
//! travel line ends with the trip.

use lineup_core::lines::line::LineState;
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::lines::request::roaming_quote::{RoamingOption, UsageBasis};
use lineup_core::lines::request::{RequestDetails, RequestState, cards};
use lineup_core::money::{Bytes, Currency, Money};
use lineup_core::provider::Validity;
use lineup_core::store::{self, usage::DailyUsage};
use lineup_testkit::both_backends;
use lineup_testkit::world::ADMIN;
use serde_json::Value;
use time::Duration;

use crate::harness::slack::*;

both_backends!(
    a_japan_trip_is_priced_both_ways_and_the_chosen_travel_esim_is_provisioned,
    |store| async move {
        let s = slack(store).await;
        let w = &*s.world;
        // Acme's own 1GLOBAL account for its lines, and Airalo for travel packages.
        let (airalo, plans) = w.connect_own_account_and_airalo().await;
        let home_plan = plans
            .iter()
            .find(|p| p.active && p.provider == "1global" && p.validity == Validity::Monthly)
            .expect("a monthly 1GLOBAL plan");
        let home = w
            .lineup
            .issue_line(
                w.tenant,
                &ADMIN,
                IssueLine {
                    employee_id: w.ada.id,
                    plan_id: home_plan.id,
                    issue_key: "home line".into(),
                },
            )
            .await
            .unwrap();
        // Ada's last trip: 3 GB of roaming over 6 days.
        let today = time::OffsetDateTime::now_utc().date();
        let past_trip: Vec<DailyUsage> = (0..6)
            .map(|d| DailyUsage {
                line_id: home.id,
                day: today - Duration::days(60 - d),
                data_bytes: Bytes::GB / 2,
                roaming_bytes: Bytes::GB / 2,
                sms: 0,
                voice_seconds: 0,
                cost_minor: 450,
            })
            .collect();
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        store::usage::add_daily_batch(&mut tx, w.tenant, &past_trip)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        // A 10-day trip to Japan, asked for in Slack.
        let (from, to) = (today + Duration::days(7), today + Duration::days(16));
        let asked = s
            .command(
                TEAM,
                ADA,
                &format!("roaming JP {from} {to} Tokyo office week"),
            )
            .await;
        assert!(ephemeral_text(&asked).contains("manager"), "{asked}");
        let request = w
            .lineup
            .requests_of(w.tenant, w.ada.id)
            .await
            .unwrap()
            .into_iter()
            .find(|r| matches!(r.details, RequestDetails::Roaming { .. }))
            .expect("the roaming request");
        let quote = request.details.roaming_quote().expect("priced when filed");
        assert_eq!(
            quote.basis,
            UsageBasis::PastTrips {
                days: 6,
                bytes: Bytes(3 * Bytes::GB)
            }
        );
        assert_eq!(
            quote.expected,
            Bytes(5 * Bytes::GB),
            "0.5 GB a day for 10 days"
        );
        // Asia-Pacific roaming at the default 9.00 per GB.
        assert_eq!(quote.home, Money::new(4_500, Currency::USD));
        let travel = quote.travel.clone().expect("a package covers the trip");
        assert_eq!(
            travel.package, "Japan 10 GB - 15 Days",
            "the cheapest with 5 GB for 10 days"
        );
        assert_eq!(travel.price, Money::new(2_600, Currency::USD));
        assert_eq!(quote.recommended, RoamingOption::TravelEsim);
        assert_eq!(quote.saving(), Some(Money::new(1_900, Currency::USD)));

        // The card shows both options with prices and the saving, and a button for each.
        let maria_dm = s.fake.dm_channel(MARIA);
        let card = s.cards_in(&maria_dm, 1).await.remove(0);
        let blocks = card.body["blocks"].to_string();
        for shown in [
            "45.00 USD",
            "Japan 10 GB - 15 Days · 26.00 USD",
            "Travel eSIM, saves 19.00 USD",
            "Approve roaming on the home line",
            "Approve travel eSIM (Japan 10 GB - 15 Days, 26.00 USD)",
            cards::APPROVE_TRAVEL_ESIM,
            "Deny",
        ] {
            assert!(blocks.contains(shown), "the card shows {shown:?}: {blocks}");
        }
        s.card_refs_saved(request.id, 1).await;

        // Maria picks the travel eSIM, with a double click.
        let id = request.id.to_string();
        let (first, second) = tokio::join!(
            s.click(TEAM, MARIA, cards::APPROVE_TRAVEL_ESIM, &id),
            s.click(TEAM, MARIA, cards::APPROVE_TRAVEL_ESIM, &id),
        );
        let ada_dm = s.fake.dm_channel(ADA);
        let upload = wait_until(|| {
            s.fake
                .uploads()
                .into_iter()
                .find(|u| u.completed && u.channel.as_deref() == Some(ada_dm.as_str()))
        })
        .await;
        assert_eq!(&upload.bytes[..8], b"\x89PNG\r\n\x1a\n", "{first} {second}");
        let delivery = wait_until(|| {
            s.fake.calls_to("chat.postMessage").into_iter().find(|c| {
                c.body["channel"] == ada_dm.as_str()
                    && c.body["blocks"].to_string().contains("LPA:1$")
            })
        })
        .await;
        assert!(
            delivery.body["blocks"].to_string().contains("Airalo"),
            "the DM names the carrier: {}",
            delivery.body
        );
        let mut settled = w.lineup.request(w.tenant, request.id).await.unwrap();
        for _ in 0..500 {
            if settled.state == RequestState::Fulfilled {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            settled = w.lineup.request(w.tenant, request.id).await.unwrap();
        }
        assert_eq!(settled.state, RequestState::Fulfilled);
        assert_eq!(
            settled.details.roaming_quote().unwrap().chosen,
            Some(RoamingOption::TravelEsim)
        );
        // Maria's card now says what was approved.
        let updated = wait_until(|| {
            s.fake.calls_to("chat.update").into_iter().find(|u| {
                u.body["channel"] == maria_dm.as_str()
                    && u.body["blocks"]
                        .to_string()
                        .contains("a travel eSIM for JP")
            })
        })
        .await;
        assert!(
            !updated.body["blocks"]
                .to_string()
                .contains(cards::APPROVE_TRAVEL_ESIM),
            "no stale buttons"
        );

        // A second line on Airalo for Ada, the quote's package; one order at Airalo.
        let lines = w.lineup.lines(w.tenant).await.unwrap();
        let travel_line = lines
            .iter()
            .find(|l| l.id != home.id && l.employee_id == w.ada.id)
            .expect("the travel eSIM line");
        assert_eq!(travel_line.plan_id, travel.plan_id);
        assert_eq!(travel_line.provider_connection_id, Some(airalo.id));
        assert!(travel_line.state.is_live(), "{:?}", travel_line.state);
        let orders: Vec<Value> = w
            .sim(reqwest::Method::GET, "/_sim/requests", None)
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/airalo/v2/orders")
            .cloned()
            .collect();
        assert_eq!(orders.len(), 1, "exactly one Airalo order: {orders:?}");

        // The home line has no roaming in Japan, before or during the trip.
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        let grants = store::policy::grants_for_line(&mut tx, w.tenant, home.id)
            .await
            .unwrap();
        drop(tx);
        assert!(
            grants.is_empty(),
            "no roaming grant on the home line: {grants:?}"
        );
        s.flows
            .run_sweeps(time::OffsetDateTime::now_utc() + Duration::days(10))
            .await
            .unwrap();
        let mut tx = w.lineup.store().tenant(w.tenant).await.unwrap();
        assert!(
            store::policy::grants_for_line(&mut tx, w.tenant, home.id)
                .await
                .unwrap()
                .is_empty(),
            "mid-trip, still none"
        );
        drop(tx);

        // The day after the trip the travel line ends (a package runs out by itself: Lineup
        // ends it without asking Airalo), and the home line is untouched.
        let ended = w
            .lineup
            .sweep_travel_esims(to + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].id, travel_line.id);
        assert_eq!(ended[0].state, LineState::Terminated);
        let actions = w.audit_actions("line", &travel_line.id.to_string()).await;
        for action in [
            "line.travel_esim_issued",
            "line.terminated",
            "line.travel_esim_ended",
        ] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
        let request_actions = w.audit_actions("request", &id).await;
        assert_eq!(
            request_actions
                .iter()
                .filter(|a| a.starts_with("request.approved"))
                .collect::<Vec<_>>(),
            ["request.approved_travel_esim"],
            "one decision: {request_actions:?}"
        );
        s.assert_within_limits();
    }
);

/// A priced roaming request as the card renders it.
fn priced_trip() -> lineup_core::lines::request::Request {
    use lineup_core::ids::{EmployeeId, LineId, PlanId, RequestId, TenantId};
    use lineup_core::lines::request::roaming_quote::{RoamingQuote, TravelOffer};
    use lineup_core::lines::request::{ChatRefs, Request, Route};
    let at = time::OffsetDateTime::now_utc();
    let from = at.date() + Duration::days(7);
    Request {
        id: RequestId::new(),
        tenant_id: TenantId::new(),
        requester: EmployeeId::new(),
        details: RequestDetails::Roaming {
            line_id: LineId::new(),
            country: "JP".into(),
            from,
            to: from + Duration::days(9),
            quote: Some(RoamingQuote {
                trip_days: 10,
                basis: UsageBasis::PastTrips {
                    days: 6,
                    bytes: Bytes(3 * Bytes::GB),
                },
                expected: Bytes(5 * Bytes::GB),
                home: Money::new(4_500, Currency::USD),
                travel: Some(TravelOffer {
                    plan_id: PlanId::new(),
                    package: "Japan 10 GB - 15 Days".into(),
                    data: Some(Bytes(10 * Bytes::GB)),
                    days: 15,
                    price: Money::new(2_600, Currency::USD),
                }),
                recommended: RoamingOption::TravelEsim,
                chosen: None,
            }),
        },
        reason: "Tokyo office week".into(),
        state: RequestState::Pending,
        route: Route::Manager,
        approver: None,
        escalations: 0,
        decided_by: None,
        decided_at: None,
        decision_note: None,
        failure_reason: None,
        chat_refs: ChatRefs::default(),
        dedupe_key: "trip".into(),
        created_at: at,
        routed_at: at,
        reminded_at: None,
        expires_at: at + Duration::days(3),
    }
}

/// Teams and Discord render the same card with both approve buttons, within their limits,
/// each button carrying its action and the request the way every other button does.
#[test]
fn teams_and_discord_show_both_options_and_both_approve_buttons() {
    let request = priced_trip();
    let ctx = cards::CardContext {
        requester_name: "Ada Lovelace".into(),
        plan_label: None,
        usage: None,
        decided_by_name: None,
    };
    let card = cards::approval_card(&request, &ctx);
    let id = request.id.to_string();

    let teams = lineup_bot::teams::render::message_card(&card);
    lineup_bot::teams::limits::check_card(&teams).unwrap();
    let teams_text = teams.to_string();
    let discord = lineup_bot::discord::render::message_payload(&card, None);
    lineup_bot::discord::limits::check_message(&discord).unwrap();
    let discord_text = discord.to_string();
    for (platform, text) in [("Teams", &teams_text), ("Discord", &discord_text)] {
        for shown in [
            "45.00 USD",
            "Japan 10 GB - 15 Days · 26.00 USD",
            "Travel eSIM, saves 19.00 USD",
            "Approve roaming on the home line",
            "Approve travel eSIM (Japan 10 GB - 15 Days, 26.00 USD)",
            "Deny",
        ] {
            assert!(text.contains(shown), "{platform} shows {shown:?}: {text}");
        }
    }
    for action in [cards::APPROVE, cards::APPROVE_TRAVEL_ESIM, cards::DENY] {
        let custom_id = lineup_bot::discord::render::action_custom_id(None, action, &id, false);
        assert!(discord_text.contains(&custom_id), "Discord {custom_id}");
        assert!(teams_text.contains(action), "Teams {action}");
    }
}
