//! The zero-setup demo tenant: teams, cost centres, ~50 employees with managers, lines in
//! every settled state issued through the real provider adapter, a month of daily usage, lines
//! worth cancelling or moving to another plan size, and a policy (caps at every scope with
//! every action, roaming presets) that has already acted on the month's spend.
//! Seeding happens once; a second start finds the tenant and reuses it.

use anyhow::Context;
use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::ids::{CostCentreId, EmployeeId, TeamId, TenantId};
use lineup_core::lines::line::LineState;
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::money::{Bytes, Currency};
use lineup_core::organisation::employee::NewEmployee;
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::{Roaming, UsageRecord};
use lineup_core::store;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const SLUG: &str = "demo";
pub const LOGIN_EMAIL: &str = "admin@demo.lineup.localhost";
pub const LOGIN_PASSWORD: &str = "lineup-demo-password";

const TEAMS: [(&str, &str, &str); 5] = [
    ("Sales", "CC-100", "Revenue"),
    ("Engineering", "CC-200", "Research & Development"),
    ("Customer Support", "CC-300", "Customer Operations"),
    ("Field Operations", "CC-400", "Field Services"),
    ("Finance", "CC-500", "General & Administrative"),
];

const GIVEN: [&str; 25] = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Tim",
    "Radia",
    "Donald",
    "Shafi",
    "John",
    "Hedy",
    "Edsger",
    "Karen",
    "Niklaus",
    "Sophie",
    "Leslie",
    "Annie",
    "Guido",
    "Mary",
    "Bjarne",
];
const FAMILY: [&str; 25] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Berners-Lee",
    "Perlman",
    "Knuth",
    "Goldwasser",
    "McCarthy",
    "Lamarr",
    "Dijkstra",
    "Jones",
    "Wirth",
    "Wilson",
    "Lamport",
    "Easley",
    "van Rossum",
    "Keller",
    "Stroustrup",
];

/// The demo tenant, seeding it first if this data directory has none. `simulator` is the
/// built-in simulator's URL, used to stage a provider failure and a slow order so the demo
/// shows `failed` and `provisioning` lines too.
pub async fn ensure_seeded(lineup: &Lineup, simulator: Option<&str>) -> anyhow::Result<TenantId> {
    let slug = Slug::parse(SLUG).expect("the demo slug is valid");
    if let Some(tenant) = lineup.tenant_by_slug(&slug).await? {
        return Ok(tenant.id);
    }
    tracing::info!("seeding the demo tenant (first start in this data directory)");
    let actor = Actor::System;
    let tenant = lineup
        .create_tenant(
            &actor,
            NewTenant {
                slug,
                name: "Acme Demo Co".into(),
                currency: Currency::USD,
            },
        )
        .await?;
    let t = tenant.id;
    let login = Email::parse(LOGIN_EMAIL).expect("valid");
    lineup
        .add_user(
            t,
            &actor,
            &login,
            "Demo Admin",
            LOGIN_PASSWORD,
            Role::Owner,
            None,
        )
        .await?;

    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let employees = seed_people(lineup, t, &actor).await?;
    // The CEO owns the account and the finance lead approves big cap raises, in chat too.
    for (employee, role) in [(employees[0], Role::Owner), (employees[5], Role::Finance)] {
        let person = lineup.employee(t, employee).await?;
        let name = person.full_name();
        lineup
            .add_user(
                t,
                &actor,
                &person.email,
                &name,
                LOGIN_PASSWORD,
                role,
                Some(employee),
            )
            .await?;
    }
    let plans = lineup.sync_plans(t, &actor).await?;
    anyhow::ensure!(!plans.is_empty(), "the provider offers no plans");
    seed_lines(lineup, t, &employees, &plans, &mut rng).await?;
    if let Some(simulator) = simulator {
        seed_unhappy_lines(lineup, t, &employees[40..42], plans[0].id, simulator).await?;
    }
    seed_pending_requests(lineup, t, &employees[42..44], plans[0].id).await?;
    seed_usage(lineup, t, &mut rng).await?;
    let savings = seed_savings(lineup, t, &employees[44..50], &plans).await?;
    seed_policy(lineup, t, savings).await?;
    Ok(t)
}

async fn seed_people(
    lineup: &Lineup,
    t: TenantId,
    actor: &Actor,
) -> anyhow::Result<Vec<EmployeeId>> {
    let mut structure: Vec<(TeamId, CostCentreId)> = Vec::new();
    for (team, code, centre) in TEAMS {
        let team = lineup.add_team(t, actor, team).await?;
        let centre = lineup.add_cost_centre(t, actor, code, centre).await?;
        structure.push((team.id, centre.id));
    }
    let person = |i: usize| {
        (
            GIVEN[i % GIVEN.len()],
            FAMILY[(i * 7 + i / 25) % FAMILY.len()],
        )
    };
    let add = |i: usize, team: Option<(TeamId, CostCentreId)>, manager: Option<EmployeeId>| {
        let (given, family) = person(i);
        let local = format!("{}.{}{}", given, family.replace([' ', '-'], ""), i).to_lowercase();
        NewEmployee {
            email: Email::parse(&format!("{local}@acme-demo.example")).expect("valid demo email"),
            given_name: given.into(),
            family_name: family.into(),
            team_id: team.map(|(team, _)| team),
            cost_centre_id: team.map(|(_, centre)| centre),
            manager_id: manager,
        }
    };
    let ceo = lineup
        .add_employee(t, actor, add(0, Some(structure[4]), None))
        .await?;
    let mut ids = vec![ceo.id];
    let mut leads = Vec::new();
    for (n, team) in structure.iter().enumerate() {
        let lead = lineup
            .add_employee(t, actor, add(1 + n, Some(*team), Some(ceo.id)))
            .await?;
        leads.push((lead.id, *team));
        ids.push(lead.id);
    }
    for i in 6..50 {
        let (lead, team) = leads[i % leads.len()];
        ids.push(
            lineup
                .add_employee(t, actor, add(i, Some(team), Some(lead)))
                .await?
                .id,
        );
    }
    Ok(ids)
}

/// Issue lines through the provider for 40 of the 50 people, then walk some of them into
/// each later state with the real commands.
async fn seed_lines(
    lineup: &Lineup,
    t: TenantId,
    employees: &[EmployeeId],
    plans: &[lineup_core::lines::plan::Plan],
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<()> {
    let mut calls = tokio::task::JoinSet::new();
    for employee in &employees[..40] {
        let plan = plans[rng.gen_range(0..plans.len())].id;
        let (lineup, employee) = (lineup.clone(), *employee);
        calls.spawn(async move {
            let issue = IssueLine {
                employee_id: employee,
                plan_id: plan,
                issue_key: format!("demo-seed-{employee}"),
            };
            lineup.issue_line(t, &Actor::System, issue).await
        });
    }
    let mut issued = Vec::new();
    while let Some(outcome) = calls.join_next().await {
        issued.push(outcome?.context("issuing a demo line")?);
    }
    issued.sort_by_key(|line| line.created_at);
    let mut settling = tokio::task::JoinSet::new();
    for (i, line) in issued.into_iter().enumerate() {
        let lineup = lineup.clone();
        settling.spawn(async move { settle_demo_line(&lineup, t, line.id, i).await });
    }
    while let Some(outcome) = settling.join_next().await {
        outcome??;
    }
    Ok(())
}

/// Walk one seeded line into the state its position gives it.
async fn settle_demo_line(
    lineup: &Lineup,
    t: TenantId,
    line: lineup_core::ids::LineId,
    position: usize,
) -> anyhow::Result<()> {
    let actor = Actor::System;
    if lineup.line(t, line).await?.state != LineState::Ready {
        return Ok(());
    }
    match position % 10 {
        // Most lines are in use; some were installed and then suspended or returned.
        0..=5 => drop(activate(lineup, t, line).await?),
        6 => {
            activate(lineup, t, line).await?;
            lineup.suspend_line(t, &actor, line, None).await?;
        }
        7 => {
            activate(lineup, t, line).await?;
            lineup.terminate_line(t, &actor, line, None).await?;
        }
        _ => {} // still waiting for the employee to scan the QR code
    }
    Ok(())
}

/// One line the provider refused (failed, with the reason) and one whose order the provider
/// takes an hour over (provisioning; the worker finishes it, also after a restart).
async fn seed_unhappy_lines(
    lineup: &Lineup,
    t: TenantId,
    employees: &[EmployeeId],
    plan: lineup_core::ids::PlanId,
    simulator: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{simulator}/_sim/{path}");
    let refuse_next = serde_json::json!({
        "match": {"order_type": "activate_subscription"},
        "action": {"cancel_with": "PROVISIONING_FAILED"},
        "times": 1
    });
    http.post(control("faults"))
        .json(&refuse_next)
        .send()
        .await?
        .error_for_status()?;
    let failed = IssueLine {
        employee_id: employees[0],
        plan_id: plan,
        issue_key: format!("demo-seed-{}", employees[0]),
    };
    let outcome = lineup.issue_line(t, &Actor::System, failed).await;
    anyhow::ensure!(
        outcome.is_err(),
        "the staged provider failure did not happen"
    );

    let slow = serde_json::json!({"order_delay_ms": {"min": 3_600_000, "max": 3_600_000}});
    http.put(control("config"))
        .json(&slow)
        .send()
        .await?
        .error_for_status()?;
    let issue = IssueLine {
        employee_id: employees[1],
        plan_id: plan,
        issue_key: format!("demo-seed-{}", employees[1]),
    };
    let placing = {
        let lineup = lineup.clone();
        tokio::spawn(async move { lineup.issue_line(t, &Actor::System, issue).await })
    };
    // Restore the normal delay as soon as the slow order exists.
    for _ in 0..200 {
        let lines = lineup.lines(t).await?;
        if lines
            .iter()
            .any(|l| l.employee_id == employees[1] && l.state == LineState::Provisioning)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let normal = serde_json::json!({"order_delay_ms": {"min": 500, "max": 3000}});
    http.put(control("config"))
        .json(&normal)
        .send()
        .await?
        .error_for_status()?;
    drop(placing); // it keeps polling in the background; the worker takes over after a restart
    Ok(())
}

/// Two requests waiting for a manager, so approvals have something to show.
async fn seed_pending_requests(
    lineup: &Lineup,
    t: TenantId,
    employees: &[EmployeeId],
    plan: lineup_core::ids::PlanId,
) -> anyhow::Result<()> {
    use lineup_core::lines::request::RequestDetails;
    use lineup_core::lines::request::commands::SubmitRequest;
    let asks = [
        (
            RequestDetails::NewLine {
                plan_id: plan,
                wanted_date: None,
            },
            "starting field visits next week",
        ),
        (
            RequestDetails::NewLine {
                plan_id: plan,
                wanted_date: None,
            },
            "on-call rotation from December",
        ),
    ];
    for (employee, (details, reason)) in employees.iter().zip(asks) {
        let request = SubmitRequest {
            requester: *employee,
            details,
            reason: reason.into(),
            dedupe_key: format!("demo-seed-request-{employee}"),
        };
        lineup.submit_request(t, request).await?;
    }
    Ok(())
}

/// The simulator installs released profiles after a short delay; wait for it.
async fn activate(
    lineup: &Lineup,
    t: TenantId,
    line: lineup_core::ids::LineId,
) -> anyhow::Result<LineState> {
    for _ in 0..100 {
        let refreshed = lineup.refresh_activation(t, line).await?;
        if refreshed.state == LineState::Active {
            return Ok(refreshed.state);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("line {line} was not installed by the simulator")
}

/// A month of usage per line that ever reached a device, through the real ingest so the
/// demo's spend, rollups and alerts are what a provider sync would have produced.
async fn seed_usage(lineup: &Lineup, t: TenantId, rng: &mut ChaCha8Rng) -> anyhow::Result<()> {
    const ROAMING_COUNTRIES: [&str; 4] = ["FR", "GB", "JP", "MX"];
    let now = store::now();
    let today = now.date();
    let mut records = Vec::new();
    for line in lineup.lines(t).await? {
        if !matches!(
            line.state,
            LineState::Active | LineState::Suspended | LineState::Terminated
        ) {
            continue;
        }
        let Some(subscription) = line.provider_subscription_id.clone() else {
            continue;
        };
        let heavy = rng.gen_bool(0.15);
        for days_ago in 1..=30 {
            let mb = if heavy {
                rng.gen_range(150..600)
            } else {
                rng.gen_range(5..120)
            };
            let at = (today - time::Duration::days(days_ago))
                .with_hms(rng.gen_range(7..22), 0, 0)
                .expect("a valid hour")
                .assume_utc();
            let record = |key: String, bytes: i64, country: &str, roaming: Roaming| UsageRecord {
                dedupe_key: key,
                subscription_id: subscription.clone(),
                started_at: at,
                ended_at: at + time::Duration::hours(1),
                data_bytes: bytes,
                sms: 0,
                voice_seconds: 0,
                country: Some(country.to_owned()),
                roaming,
                in_bundle: None,
                observed_at: at + time::Duration::hours(2),
            };
            let mut home = record(
                format!("demo:{}:{days_ago}", line.id),
                Bytes::mb(mb).0,
                "US",
                Roaming::None,
            );
            home.sms = rng.gen_range(0..6);
            home.voice_seconds = rng.gen_range(0..1800);
            records.push(home);
            if rng.gen_bool(0.05) {
                let country = ROAMING_COUNTRIES[rng.gen_range(0..ROAMING_COUNTRIES.len())];
                records.push(record(
                    format!("demo:{}:{days_ago}:roaming", line.id),
                    Bytes::mb(rng.gen_range(10..200)).0,
                    country,
                    Roaming::International,
                ));
            }
        }
    }
    records.sort_by_key(|r| r.started_at);
    lineup.record_usage_at(t, &records, now).await?;
    lineup.rollover_guardrails(t, now).await?;
    Ok(())
}

/// Who the savings lines belong to, for the caps that act on them.
struct SavingsPeople {
    heavy: [EmployeeId; 2],
    light: EmployeeId,
}

/// Six lines `lineup optimise` and the Savings page have something to say about, issued four
/// months ago: two unused since, two heavy users on the smallest US plan (overage every
/// month), two light users on a bigger one (under half its allowance every month). `None`
/// when the provider does not offer the simulator's US plans.
async fn seed_savings(
    lineup: &Lineup,
    t: TenantId,
    people: &[EmployeeId],
    plans: &[lineup_core::lines::plan::Plan],
) -> anyhow::Result<Option<SavingsPeople>> {
    let plan = |name: &str| plans.iter().find(|p| p.name == name).map(|p| p.id);
    let (Some(small), Some(big)) = (plan("US 1GB"), plan("US 5GB")) else {
        return Ok(None);
    };
    let (gb, mb) = (Bytes::GB, Bytes::MB);
    // (plan, data in each of the last three months, data this month); `None`: unused.
    let profiles = [
        (big, None),
        (big, None),
        (small, Some((3 * gb, 1_536 * mb))),
        (small, Some((4 * gb, 1_536 * mb))),
        (big, Some((300 * mb, 100 * mb))),
        (big, Some((400 * mb, 100 * mb))),
    ];
    let mut calls = tokio::task::JoinSet::new();
    for (person, (plan, usage)) in people.iter().zip(profiles) {
        let (lineup, person) = (lineup.clone(), *person);
        calls.spawn(async move {
            let issue = IssueLine {
                employee_id: person,
                plan_id: plan,
                issue_key: format!("demo-seed-savings-{person}"),
            };
            let line = lineup.issue_line(t, &Actor::System, issue).await?;
            activate(&lineup, t, line.id).await?;
            anyhow::Ok((line, usage))
        });
    }
    let now = store::now();
    let this_month = lineup_core::spend::pricing::period_start(now.date());
    let mut records = Vec::new();
    while let Some(outcome) = calls.join_next().await {
        let (line, usage) = outcome?.context("issuing a demo savings line")?;
        let mut tx = lineup.store().tenant(t).await?;
        store::lines::backdate(&mut tx, t, line.id, now - time::Duration::days(120)).await?;
        tx.commit().await?;
        let (Some((monthly, current)), Some(subscription)) =
            (usage, line.provider_subscription_id.clone())
        else {
            continue;
        };
        let mut month = this_month;
        let mut days = Vec::new();
        for _ in 0..3 {
            month = lineup_core::spend::pricing::period_start(month - time::Duration::days(1));
            days.push((month + time::Duration::days(9), monthly));
        }
        days.push((this_month, current));
        for (day, bytes) in days {
            let at = day.midnight().assume_utc();
            records.push(UsageRecord {
                dedupe_key: format!("demo:{}:{day}:savings", line.id),
                subscription_id: subscription.clone(),
                started_at: at,
                ended_at: at + time::Duration::minutes(30),
                data_bytes: bytes,
                sms: 0,
                voice_seconds: 0,
                country: Some("US".into()),
                roaming: Roaming::None,
                in_bundle: None,
                observed_at: at + time::Duration::hours(1),
            });
        }
    }
    records.sort_by_key(|r| r.started_at);
    lineup.record_usage_at(t, &records, now).await?;
    // Opens this month for the new lines and flags the unused ones.
    lineup.rollover_guardrails(t, now).await?;
    Ok(Some(SavingsPeople {
        heavy: [people[2], people[3]],
        light: people[4],
    }))
}

/// A policy at every scope with every action, sized against this month's spend so that it
/// shows each outcome at once (caps act the moment they are saved): the organisation's and
/// two teams' budgets pass thresholds and alert, one heavy user is suspended and another
/// slowed down at their own caps, a light user's cap alerts at 80 %; and roaming presets
/// that allow, route and block countries the demo's travellers visited.
async fn seed_policy(
    lineup: &Lineup,
    t: TenantId,
    savings: Option<SavingsPeople>,
) -> anyhow::Result<()> {
    use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope, RoamingRule};
    use lineup_core::spend::usage::{SpendFilter, SpendGrouping};
    let actor = Actor::System;
    let period = lineup_core::spend::pricing::billing_period(store::now().date());
    let filter = SpendFilter {
        from_period: Some(period.clone()),
        to_period: Some(period),
        ..SpendFilter::default()
    };
    let spent = |grouping| lineup.spend(t, grouping, &filter);
    let of = |rows: &[lineup_core::store::usage::SpendRow], key: Option<uuid::Uuid>| {
        rows.iter()
            .filter(|r| r.key == key)
            .map(|r| r.total_minor)
            .sum::<i64>()
    };
    // `percent` of the spend, rounded up to whole dollars.
    let above = |spend: i64, percent: i64| ((spend * percent / 100).max(1_000) + 99) / 100 * 100;
    let teams = lineup.teams(t).await?;
    let centres = lineup.cost_centres(t).await?;
    let engineering = teams.iter().find(|team| team.name == "Engineering");
    let support = centres.iter().find(|c| c.code == "CC-300");
    let tenant_spend = of(&spent(SpendGrouping::Tenant).await?, None);
    let team_spend = spent(SpendGrouping::Team).await?;
    let centre_spend = spent(SpendGrouping::CostCentre).await?;
    let cap = |scope, amount_minor, thresholds: &[u8], action| BudgetCap {
        scope,
        amount_minor,
        thresholds: thresholds.to_vec(),
        action,
    };
    let mut caps = vec![cap(
        CapScope::Tenant,
        above(tenant_spend, 150),
        &[50, 80],
        CapAction::Alert,
    )];
    if let Some(team) = engineering {
        let amount = above(of(&team_spend, Some(team.id.0)), 120);
        caps.push(cap(
            CapScope::Team(team.id),
            amount,
            &[50, 80],
            CapAction::Throttle,
        ));
    }
    if let Some(centre) = support {
        let amount = above(of(&centre_spend, Some(centre.id.0)), 180);
        caps.push(cap(
            CapScope::CostCentre(centre.id),
            amount,
            &[50, 80],
            CapAction::Suspend,
        ));
    }
    if let Some(people) = savings {
        // Each heavy user has spent 15.00 this month (10.00 plan, 5.00 overage).
        let [suspended, slowed] = people.heavy;
        caps.push(cap(
            CapScope::Employee(suspended),
            1_200,
            &[80],
            CapAction::Suspend,
        ));
        caps.push(cap(
            CapScope::Employee(slowed),
            1_200,
            &[80],
            CapAction::Throttle,
        ));
        // 20.00 of 25.00: the 80 % alert.
        caps.push(cap(
            CapScope::Employee(people.light),
            2_500,
            &[80],
            CapAction::Alert,
        ));
    }
    for cap in caps {
        lineup.set_budget_cap(t, &actor, cap).await?;
    }
    for (country, rule) in [
        ("FR", RoamingRule::Allowed),
        ("GB", RoamingRule::Allowed),
        ("JP", RoamingRule::NeedsApproval),
        ("MX", RoamingRule::Blocked),
    ] {
        lineup.set_roaming_rule(t, &actor, country, rule).await?;
    }
    Ok(())
}
