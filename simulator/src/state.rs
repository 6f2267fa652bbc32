use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::accounts::Client;
use crate::airalo::AiraloWorld;
use crate::auth::IssuedToken;
use crate::clock::SimClock;
use crate::config::{Credentials, SimConfig};
use crate::faults::Fault;
use crate::gigs::GigsWorld;
use crate::idempotency::IdempotencyRecord;
use crate::ids::IdGen;
use crate::model::*;
use crate::ratelimit::RateLimiter;
use crate::requestlog::RequestLog;
use crate::webhooks::{Delivery, Webhook};

/// Everything the simulator knows. Guarded by one mutex that is never held across an await.
pub struct State {
    pub config: SimConfig,
    pub clock: SimClock,
    pub ids: IdGen,
    pub rng: StdRng,
    pub accounts: BTreeMap<String, Account>,
    /// Clients other than the default one (`Shared::credentials`), by client id.
    pub clients: BTreeMap<String, Client>,
    pub subscribers: BTreeMap<String, Subscriber>,
    pub templates: BTreeMap<String, OrderTemplate>,
    pub offerings: BTreeMap<String, Offering>,
    pub orders: BTreeMap<String, Order>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub profiles: BTreeMap<String, SimProfile>,
    pub products: BTreeMap<String, Product>,
    pub usage_items: BTreeMap<String, UsageItem>,
    pub webhooks: BTreeMap<String, Webhook>,
    /// Connect-style per-SIM registrations: (iccid, notification type) → URL.
    pub connect_hooks: BTreeMap<(String, String), String>,
    pub deliveries: BTreeMap<String, Delivery>,
    pub tokens: HashMap<String, IssuedToken>,
    pub idempotency: HashMap<(String, String), IdempotencyRecord>,
    pub faults: BTreeMap<String, Fault>,
    pub rate_limiter: RateLimiter,
    pub request_log: RequestLog,
    pub counters: Counters,
    pub fixture_account_id: String,
    /// Set when persisted state may have changed since the last save (see `persist`).
    pub unsaved_changes: bool,
    /// The other personalities' worlds; not persisted.
    pub gigs: GigsWorld,
    pub airalo: AiraloWorld,
}

#[derive(Default)]
pub struct Counters {
    pub requests: u64,
    pub tokens_issued: u64,
    pub faults_injected: u64,
}

impl State {
    pub fn new(config: SimConfig) -> Self {
        let seed = config.seed;
        let mut state = Self {
            config,
            clock: SimClock::default(),
            ids: IdGen::new(seed),
            // A different stream from the id generator so ids do not shift when faults roll dice.
            rng: StdRng::seed_from_u64(seed ^ 0x5EED_F00D),
            accounts: BTreeMap::new(),
            clients: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            templates: BTreeMap::new(),
            offerings: BTreeMap::new(),
            orders: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            profiles: BTreeMap::new(),
            products: BTreeMap::new(),
            usage_items: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            connect_hooks: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            tokens: HashMap::new(),
            idempotency: HashMap::new(),
            faults: BTreeMap::new(),
            rate_limiter: RateLimiter::default(),
            request_log: RequestLog::default(),
            counters: Counters::default(),
            fixture_account_id: String::new(),
            unsaved_changes: false,
            gigs: GigsWorld::new(seed),
            airalo: AiraloWorld::new(seed),
        };
        state.load_default_fixtures();
        state
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn roll(&mut self, probability: f64) -> bool {
        probability > 0.0 && rand::Rng::gen_bool(&mut self.rng, probability.clamp(0.0, 1.0))
    }

    /// An offering of the account's catalogue.
    pub fn account_offering(&self, account_id: &str, id: &str) -> Option<&Offering> {
        self.offerings
            .get(id)
            .filter(|offering| offering.account_id == account_id)
    }
}

/// Shared handle to the simulator, cloned into every handler and background task.
#[derive(Clone)]
pub struct Sim(Arc<Shared>);

pub struct Shared {
    state: Mutex<State>,
    pub credentials: Credentials,
    pub base_url: String,
    pub http: reqwest::Client,
}

impl Sim {
    pub fn new(config: SimConfig, credentials: Credentials, base_url: String) -> Self {
        Self::with_state(State::new(config), credentials, base_url)
    }

    pub fn with_state(state: State, credentials: Credentials, base_url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self(Arc::new(Shared {
            state: Mutex::new(state),
            credentials,
            base_url,
            http,
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn credentials(&self) -> &Credentials {
        &self.0.credentials
    }

    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }
}
