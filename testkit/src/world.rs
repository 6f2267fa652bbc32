//! A small company wired to a real provider simulator: the shared set-up of core, bot and
//! end-to-end tests.

use std::sync::Arc;
use std::time::Duration;

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::email_address::Email;
use lineup_core::identity::sso::SsoNetworkPolicy;
use lineup_core::identity::user::Role;
use lineup_core::ids::{CostCentreId, EmployeeId, TenantId};
use lineup_core::lines::line::Line;
use lineup_core::lines::line::LineState;
use lineup_core::lines::line::commands::IssueLine;
use lineup_core::lines::plan::Plan;
use lineup_core::money::Currency;
use lineup_core::organisation::employee::{Employee, EmployeeEdit, NewEmployee};
use lineup_core::organisation::tenant::{Slug, commands::NewTenant};
use lineup_core::provider::connection::{
    NewConnection, ProviderConnection, ProviderConnector, ProviderCredentials, VendorApi,
};
use lineup_core::provider::oneglobal::{OneGlobalConfig, OneGlobalProvider, RetryPolicy};
use lineup_core::provider::{
    ConnectivityProvider, Delivery, IdempotencyKey, OperationStatus, PlanRef, PollPolicy,
    ProvisionRequest, Subscriber, wait_for_operation,
};
use lineup_core::secret::SecretBox;
use lineup_core::store::{self, Store};
use lineup_simulator::{
    AIRALO_CLIENT_ID, AIRALO_CLIENT_SECRET, Credentials, Personality, RunningSimulator, SimConfig,
};
use serde_json::Value;

use crate::TestStore;

pub const ADMIN: Actor = Actor::System;
/// The secret the test adapter verifies provider webhooks with.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

/// Ada and Alan report to Maria; Maria and Fiona (finance) report to Olivia, the CEO and owner.
pub struct World {
    pub lineup: Lineup,
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
    pub tenant: TenantId,
    pub ada: Employee,
    pub alan: Employee,
    pub maria: Employee,
    pub olivia: Employee,
    pub fiona: Employee,
    pub plans: Vec<Plan>,
    pub store: TestStore,
}

pub fn quick_poll() -> PollPolicy {
    PollPolicy {
        first_delay: Duration::from_millis(10),
        tight_for: Duration::ZERO,
        max_delay: Duration::from_millis(50),
        timeout: Duration::from_secs(20),
        ..PollPolicy::default()
    }
}

impl World {
    pub async fn new(store: TestStore) -> World {
        Self::with_poll(store, quick_poll()).await
    }

    pub async fn with_poll(store: TestStore, poll: PollPolicy) -> World {
        Self::with_simulator(store, poll, SimConfig::for_tests(), Some(WEBHOOK_SECRET)).await
    }

    /// A world whose simulator behaves as `config` says (benchmarks use its default latency
    /// and order times), its adapter verifying webhooks with `webhook_secret` — without one
    /// Lineup expects no order webhooks and polls tightly.
    pub async fn with_simulator(
        store: TestStore,
        poll: PollPolicy,
        config: SimConfig,
        webhook_secret: Option<&str>,
    ) -> World {
        let sim = lineup_simulator::spawn(
            "127.0.0.1:0".parse().unwrap(),
            config,
            Credentials::default(),
        )
        .await
        .unwrap();
        let lineup = lineup_with(&store, &sim, poll, webhook_secret);
        let tenant = add_tenant(&lineup, "acme").await;
        let olivia = add_employee(&lineup, tenant, "olivia", None).await;
        let maria = add_employee(&lineup, tenant, "maria", Some(olivia.id)).await;
        let fiona = add_employee(&lineup, tenant, "fiona", Some(olivia.id)).await;
        let ada = add_employee(&lineup, tenant, "ada", Some(maria.id)).await;
        let alan = add_employee(&lineup, tenant, "alan", Some(maria.id)).await;
        for (person, role) in [(&olivia, Role::Owner), (&fiona, Role::Finance)] {
            lineup
                .add_user(
                    tenant,
                    &ADMIN,
                    &person.email,
                    &person.full_name(),
                    "a long test password",
                    role,
                    Some(person.id),
                )
                .await
                .unwrap();
        }
        let plans = lineup.sync_plans(tenant, &ADMIN).await.unwrap();
        World {
            lineup,
            sim,
            http: reqwest::Client::new(),
            tenant,
            ada,
            alan,
            maria,
            olivia,
            fiona,
            plans,
            store,
        }
    }

    pub fn issue(&self, who: &Employee, key: &str) -> IssueLine {
        IssueLine {
            employee_id: who.id,
            plan_id: self.plans[0].id,
            issue_key: key.into(),
        }
    }

    pub async fn ready_line(&self, who: &Employee, key: &str) -> Line {
        let line = self
            .lineup
            .issue_line(self.tenant, &ADMIN, self.issue(who, key))
            .await
            .unwrap();
        assert_eq!(line.state, LineState::Ready);
        line
    }

    pub async fn active_line(&self, who: &Employee, key: &str) -> Line {
        let line = self.ready_line(who, key).await;
        for _ in 0..200 {
            let refreshed = self
                .lineup
                .refresh_activation(self.tenant, line.id)
                .await
                .unwrap();
            if refreshed.state == LineState::Active {
                return refreshed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the simulator never installed the profile");
    }

    /// Call the simulator (its API or `/_sim` control plane) and return the JSON answer.
    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// Make the simulator keep every order from now on pending for an hour: what a carrier
    /// that is slow to settle looks like to Lineup.
    pub async fn hold_orders(&self) {
        self.sim(
            reqwest::Method::PUT,
            "/_sim/config",
            Some(serde_json::json!({"order_delay_ms": {"min": 3_600_000, "max": 3_600_000}})),
        )
        .await;
    }

    /// The adapter on the simulator's account, without Lineup: what the vendor's own console
    /// (or a script) would do there.
    pub fn provider(&self) -> OneGlobalProvider {
        OneGlobalProvider::new(adapter_config(&self.sim, Some(WEBHOOK_SECRET))).unwrap()
    }

    /// A subscription ordered at the provider behind Lineup's back (no reference of ours),
    /// once its order completed; returns its id.
    pub async fn order_behind_lineups_back(&self, email: &str) -> String {
        let provider = self.provider();
        let plan = &provider.list_plans().await.unwrap()[0];
        let request = ProvisionRequest {
            plan: PlanRef {
                offering_id: plan.offering_id.clone(),
                template_id: plan.template_id.clone(),
            },
            subscriber: Subscriber {
                first_name: "Someone".into(),
                last_name: "Else".into(),
                email: email.into(),
                employee_id: None,
                group: None,
            },
            delivery: Delivery::Api,
            reference: None,
        };
        let placed = provider
            .provision_line(&request, &IdempotencyKey::generate())
            .await
            .unwrap();
        let done = wait_for_operation(&provider, placed, quick_poll(), None)
            .await
            .unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded);
        done.subscription_id.unwrap()
    }

    /// Acme connects its own 1GLOBAL account (an account of the world's simulator) and then
    /// Airalo (the simulator's Airalo personality) for travel packages: the Airalo connection
    /// and every plan after both syncs.
    pub async fn connect_own_account_and_airalo(&self) -> (ProviderConnection, Vec<Plan>) {
        let account = self.sim.add_account("Acme", None, None).unwrap();
        self.lineup
            .connect_provider(
                self.tenant,
                &ADMIN,
                ProviderCredentials {
                    client_id: account.client_id,
                    client_secret: account.client_secret,
                    account_id: account.account_id,
                },
            )
            .await
            .unwrap();
        self.lineup
            .add_provider_connection(
                self.tenant,
                &ADMIN,
                NewConnection {
                    vendor: "airalo".into(),
                    label: "Airalo".into(),
                    credentials: ProviderCredentials {
                        client_id: AIRALO_CLIENT_ID.into(),
                        client_secret: AIRALO_CLIENT_SECRET.into(),
                        account_id: "partner".into(),
                    },
                },
            )
            .await
            .unwrap()
    }

    pub async fn stats(&self) -> Value {
        self.sim(reqwest::Method::GET, "/_sim/stats", None).await
    }

    pub async fn audit_actions(&self, subject_type: &str, subject_id: &str) -> Vec<String> {
        let mut tx = self.lineup.store().tenant(self.tenant).await.unwrap();
        store::audit::list_for_subject(&mut tx, self.tenant, subject_type, subject_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

pub fn lineup_for(store: &Store, sim: &RunningSimulator, poll: PollPolicy) -> Lineup {
    lineup_with(store, sim, poll, Some(WEBHOOK_SECRET))
}

/// [`lineup_for`] with the adapter's webhook secret chosen: `None` for a deployment that
/// registered no order webhook.
pub fn lineup_with(
    store: &Store,
    sim: &RunningSimulator,
    poll: PollPolicy,
    webhook_secret: Option<&str>,
) -> Lineup {
    let config = adapter_config(sim, webhook_secret);
    // Tenants may connect the simulator's Airalo personality next to 1GLOBAL (travel eSIMs).
    let connector = ProviderConnector::new(sim.base_url())
        .with_vendor(
            "airalo",
            VendorApi::Airalo,
            sim.personality_url(Personality::Airalo),
        )
        .with_vendor(
            "gigs",
            VendorApi::Gigs,
            sim.personality_url(Personality::Gigs),
        )
        .with_retry(config.retry);
    let secrets = SecretBox::from_hex(&SecretBox::generate_hex_key()).unwrap();
    Lineup::new(
        store.clone(),
        Arc::new(OneGlobalProvider::new(config).unwrap()),
        poll,
    )
    .with_provider_connector(connector)
    .with_secrets(secrets)
    // The fake identity provider listens on http://127.0.0.1.
    .with_sso_network_policy(SsoNetworkPolicy::LOCAL_TESTING)
}

/// How the tests' adapter reaches the simulator's demo account: quick retries, webhooks
/// verified with `webhook_secret`.
fn adapter_config(sim: &RunningSimulator, webhook_secret: Option<&str>) -> OneGlobalConfig {
    let mut config = OneGlobalConfig::new(
        sim.base_url(),
        "lineup-demo",
        "lineup-demo-secret",
        sim.account_id(),
    );
    config.retry = RetryPolicy {
        max_attempts: 20,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    };
    config.webhook_secret = webhook_secret.map(str::to_owned);
    config
}

pub async fn add_tenant(lineup: &Lineup, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: Slug::parse(slug).unwrap(),
        name: slug.into(),
        currency: Currency::USD,
    };
    lineup.create_tenant(&ADMIN, new).await.unwrap().id
}

/// The portal edit that moves `who` to `cost_centre` (or none) and changes nothing else.
pub async fn cost_centre_edit(
    lineup: &Lineup,
    tenant: TenantId,
    who: EmployeeId,
    cost_centre: Option<CostCentreId>,
) -> EmployeeEdit {
    let person = lineup.employee(tenant, who).await.unwrap();
    let manager = match person.manager_id {
        Some(m) => Some(lineup.employee(tenant, m).await.unwrap().email),
        None => None,
    };
    EmployeeEdit {
        email: person.email,
        given_name: person.given_name,
        family_name: person.family_name,
        team_id: person.team_id,
        cost_centre_id: cost_centre,
        manager,
    }
}

pub async fn add_employee(
    lineup: &Lineup,
    tenant: TenantId,
    name: &str,
    manager: Option<EmployeeId>,
) -> Employee {
    let new = NewEmployee {
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        given_name: name[..1].to_uppercase() + &name[1..],
        family_name: "Tester".into(),
        team_id: None,
        cost_centre_id: None,
        manager_id: manager,
    };
    lineup.add_employee(tenant, &ADMIN, new).await.unwrap()
}
