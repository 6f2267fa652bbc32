//! A spend history small enough to add up by hand, for report and dashboard tests.
//!
//! Months are relative to today: `before` (two months ago), `previous`, `current`. Plans:
//! Basic 10.00 USD and Plus 25.00 USD a month. Teams Sales and Engineering; cost centres
//! CC-100 "+Field sales" (a formula-looking name) and CC-200 "R&D".
//!
//! | line | employee (manager) | team / cc | plan | state | created | usage charges |
//! |---|---|---|---|---|---|---|
//! | plus | bea (maria) | Sales / CC-100 | Plus | active | before, 15th | 3.00 before (1 GiB), 2.00 on previous' last day (2 GiB), 1.50 on current's 1st (512 MiB) |
//! | ended | carl (olivia) | Engineering / CC-200 | Basic | terminated on previous' 10th | before, 1st | 0.50 before (100 MiB) |
//! | fresh | ada (maria) | none | Basic | active | current, 1st | none |
//! | idle | "=Dora" (olivia) | Sales / CC-100 | Basic | suspended | before, 1st | none |
//! | failed | fiona (olivia) | none | Plus | failed | previous, 3rd | none |
//!
//! Spend over the three months: before 48.50, previous 47.00, current 46.50; 142.00 in all
//! (135.00 plan fees + 7.00 usage). Bea's own cap is 1.80, so 1.50 is 83 % of it. Globex gets
//! one line on a 99.00 plan with 77.77 of usage this month, which acme must never see.

use lineup_core::Lineup;
use lineup_core::email_address::Email;
use lineup_core::ids::{EmployeeId, LineId, PlanId, TenantId};
use lineup_core::lines::line::{Line, LineState};
use lineup_core::lines::plan::Plan;
use lineup_core::money::{Bytes, Currency, Money};
use lineup_core::organisation::employee::{Employee, NewEmployee};
use lineup_core::organisation::org_unit::{CostCentre, Team};
use lineup_core::period::Month;
use lineup_core::spend::policy::{BudgetCap, CapAction, CapScope};
use lineup_core::store::{self, usage::DailyUsage};
use time::{Date, OffsetDateTime, Time};

use crate::world::{ADMIN, World};

pub struct SpendFixture {
    pub today: Date,
    pub before: Month,
    pub previous: Month,
    pub current: Month,
    pub sales: Team,
    pub engineering: Team,
    pub field: CostCentre,
    pub rnd: CostCentre,
    pub bea: Employee,
    pub carl: Employee,
    pub dora: Employee,
    pub plus_line: LineId,
    pub ended_line: LineId,
    pub fresh_line: LineId,
    pub idle_line: LineId,
    pub failed_line: LineId,
    pub globex_team: Option<Team>,
    pub globex_line: Option<LineId>,
}

/// Seeds the table above into `w`'s acme, and globex's line when `globex` is given.
pub async fn seed_spend(w: &World, globex: Option<(TenantId, &Employee)>) -> SpendFixture {
    let lineup = &w.lineup;
    let tenant = w.tenant;
    let today = OffsetDateTime::now_utc().date();
    let current = Month::containing(today);
    let previous = current.previous();
    let before = previous.previous();

    let sales = lineup.add_team(tenant, &ADMIN, "Sales").await.unwrap();
    let engineering = lineup
        .add_team(tenant, &ADMIN, "Engineering")
        .await
        .unwrap();
    let field = lineup
        .add_cost_centre(tenant, &ADMIN, "CC-100", "+Field sales")
        .await
        .unwrap();
    let rnd = lineup
        .add_cost_centre(tenant, &ADMIN, "CC-200", "R&D")
        .await
        .unwrap();
    let person =
        async |given: &str, email: &str, team: &Team, cc: &CostCentre, manager: &Employee| {
            let new = NewEmployee {
                email: Email::parse(email).unwrap(),
                given_name: given.into(),
                family_name: "Tester".into(),
                team_id: Some(team.id),
                cost_centre_id: Some(cc.id),
                manager_id: Some(manager.id),
            };
            lineup.add_employee(tenant, &ADMIN, new).await.unwrap()
        };
    let bea = person("Bea", "bea@example.com", &sales, &field, &w.maria).await;
    let carl = person("Carl", "carl@example.com", &engineering, &rnd, &w.olivia).await;
    let dora = person("=Dora", "dora@example.com", &sales, &field, &w.olivia).await;
    for (scope, amount_minor) in [(CapScope::Employee(bea.id), 180), (CapScope::Tenant, 5_000)] {
        let cap = BudgetCap {
            scope,
            amount_minor,
            thresholds: vec![80, 100],
            action: CapAction::Alert,
        };
        lineup.set_budget_cap(tenant, &ADMIN, cap).await.unwrap();
    }

    let basic = add_plan(w, tenant, "spend-basic", "Basic", 1_000).await;
    let plus = add_plan(w, tenant, "spend-plus", "Plus", 2_500).await;
    let day = |month: Month, n: u8| month.first_day().replace_day(n).unwrap();
    let history = [
        (
            bea.id,
            plus,
            LineState::Active,
            day(before, 15),
            day(before, 15),
        ),
        (
            carl.id,
            basic,
            LineState::Terminated,
            day(before, 1),
            day(previous, 10),
        ),
        (
            w.ada.id,
            basic,
            LineState::Active,
            day(current, 1),
            day(current, 1),
        ),
        (
            dora.id,
            basic,
            LineState::Suspended,
            day(before, 1),
            day(before, 2),
        ),
        (
            w.fiona.id,
            plus,
            LineState::Failed,
            day(previous, 3),
            day(previous, 3),
        ),
    ];
    let mut lines = Vec::new();
    for (employee, plan, state, created, updated) in history {
        lines.push(
            add_line(
                lineup,
                tenant,
                employee,
                plan,
                state,
                at(created),
                at(updated),
            )
            .await,
        );
    }
    let [plus_line, ended_line, fresh_line, idle_line, failed_line] =
        lines.try_into().expect("five lines");
    for (line, on, cost, data) in [
        (plus_line, day(before, 20), 300, Bytes::gb(1).0),
        (plus_line, previous.last_day(), 200, Bytes::gb(2).0),
        (plus_line, day(current, 1), 150, Bytes::mb(512).0),
        (ended_line, day(before, 5), 50, Bytes::mb(100).0),
    ] {
        add_usage(lineup, tenant, line, on, cost, data).await;
    }

    let (mut globex_team, mut globex_line) = (None, None);
    if let Some((globex, gina)) = globex {
        globex_team = Some(
            lineup
                .add_team(globex, &ADMIN, "Globex Secret Team")
                .await
                .unwrap(),
        );
        let plan = add_plan(w, globex, "globex-gold", "Globex Gold", 9_900).await;
        let line = add_line(
            lineup,
            globex,
            gina.id,
            plan,
            LineState::Active,
            at(day(before, 1)),
            at(day(before, 1)),
        )
        .await;
        add_usage(lineup, globex, line, day(current, 1), 7_777, Bytes::gb(9).0).await;
        globex_line = Some(line);
    }
    SpendFixture {
        today,
        before,
        previous,
        current,
        sales,
        engineering,
        field,
        rnd,
        bea,
        carl,
        dora,
        plus_line,
        ended_line,
        fresh_line,
        idle_line,
        failed_line,
        globex_team,
        globex_line,
    }
}

fn at(day: Date) -> OffsetDateTime {
    day.with_time(Time::from_hms(9, 30, 0).unwrap())
        .assume_utc()
}

async fn add_plan(w: &World, tenant: TenantId, offering: &str, name: &str, price: i64) -> PlanId {
    let plan = Plan {
        id: PlanId::new(),
        tenant_id: tenant,
        offering_id: offering.into(),
        name: name.into(),
        price: Some(Money::new(price, Currency::USD)),
        ..w.plans[0].clone()
    };
    let mut tx = w.lineup.store().tenant(tenant).await.unwrap();
    let id = store::plans::upsert(&mut tx, tenant, &plan).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// A line with the history given, written straight to the store (no provider involved).
pub async fn add_line(
    lineup: &Lineup,
    tenant: TenantId,
    employee: EmployeeId,
    plan: PlanId,
    state: LineState,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
) -> LineId {
    let line = Line {
        id: LineId::new(),
        tenant_id: tenant,
        employee_id: employee,
        plan_id: plan,
        state,
        provider: "test".into(),
        provider_connection_id: None,
        provider_subscription_id: None,
        iccid: None,
        activation_code: None,
        failure_reason: None,
        issue_key: uuid::Uuid::new_v4().to_string(),
        created_at,
        updated_at,
    };
    let mut tx = lineup.store().tenant(tenant).await.unwrap();
    assert!(
        store::lines::insert_if_new(&mut tx, tenant, &line)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    line.id
}

/// One day of usage through the same store call usage ingest makes.
pub async fn add_usage(
    lineup: &Lineup,
    tenant: TenantId,
    line: LineId,
    day: Date,
    cost_minor: i64,
    data_bytes: i64,
) {
    let mut tx = lineup.store().tenant(tenant).await.unwrap();
    let usage = DailyUsage {
        line_id: line,
        day,
        data_bytes,
        roaming_bytes: 0,
        sms: 0,
        voice_seconds: 0,
        cost_minor,
    };
    store::usage::add_daily_batch(&mut tx, tenant, std::slice::from_ref(&usage))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
