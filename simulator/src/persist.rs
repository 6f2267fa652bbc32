//! Optional persistence of the simulated world to a JSON state file (`spawn_persistent`).
//!
//! What is written: the config, the clock offset, the id sequence, every domain record,
//! webhook and Connect registrations and idempotency records. What is not: tokens, the
//! request log, rate-limit buckets, targeted faults, counters and webhook deliveries.
//! Time-driven work (pending orders, profile auto-install, renewals) needs no rescheduling:
//! it is driven by the due times stored on the records and the simulated clock.
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State as AxumState};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::accounts::Client;
use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::idempotency::{StoredIdempotency, restore_records, store_records};
use crate::ids::{IdGen, stream_seed};
use crate::model::*;
use crate::state::{Counters, Sim, State};
use crate::webhooks::Webhook;

/// Identifies the file's content; checked before anything else is read.
const FORMAT: &str = "lineup-simulator-state";
/// Bump when the layout changes incompatibly; files of another version are refused.
pub const FORMAT_VERSION: u32 = 1;
/// The most often the background task writes the file while requests keep changing state.
const SAVE_PERIOD: Duration = Duration::from_millis(200);
/// The fault/latency dice of `State::new` use this stream offset from the seed.
const RNG_STREAM: u64 = 0x5EED_F00D;

#[derive(Serialize)]
struct SnapshotOut<'a> {
    format: &'static str,
    version: u32,
    config: &'a SimConfig,
    clock_offset_ms: i64,
    id_sequence: u64,
    id_generation: u64,
    fixture_account_id: &'a str,
    accounts: &'a BTreeMap<String, Account>,
    clients: &'a BTreeMap<String, Client>,
    subscribers: &'a BTreeMap<String, Subscriber>,
    templates: &'a BTreeMap<String, OrderTemplate>,
    offerings: &'a BTreeMap<String, Offering>,
    orders: &'a BTreeMap<String, Order>,
    subscriptions: &'a BTreeMap<String, Subscription>,
    profiles: &'a BTreeMap<String, SimProfile>,
    products: &'a BTreeMap<String, Product>,
    usage_items: &'a BTreeMap<String, UsageItem>,
    webhooks: &'a BTreeMap<String, Webhook>,
    connect_hooks: Vec<ConnectHook>,
    idempotency: Vec<StoredIdempotency>,
}

/// The same layout as `SnapshotOut`, owned, for reading.
#[derive(Deserialize)]
struct SnapshotIn {
    config: SimConfig,
    clock_offset_ms: i64,
    id_sequence: u64,
    id_generation: u64,
    fixture_account_id: String,
    accounts: BTreeMap<String, Account>,
    /// Absent in files written before there were clients besides the default one.
    #[serde(default)]
    clients: BTreeMap<String, Client>,
    subscribers: BTreeMap<String, Subscriber>,
    templates: BTreeMap<String, OrderTemplate>,
    offerings: BTreeMap<String, Offering>,
    orders: BTreeMap<String, Order>,
    subscriptions: BTreeMap<String, Subscription>,
    profiles: BTreeMap<String, SimProfile>,
    products: BTreeMap<String, Product>,
    usage_items: BTreeMap<String, UsageItem>,
    webhooks: BTreeMap<String, Webhook>,
    connect_hooks: Vec<ConnectHook>,
    idempotency: Vec<StoredIdempotency>,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct ConnectHook {
    iccid: String,
    notification: String,
    url: String,
}

/// Serde for `Option<(start, end)>` as `null` or `{"start": rfc3339, "end": rfc3339}`.
pub mod period {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    #[derive(Serialize, Deserialize)]
    struct Period {
        #[serde(with = "time::serde::rfc3339")]
        start: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        end: OffsetDateTime,
    }

    pub fn serialize<S: Serializer>(
        value: &Option<(OffsetDateTime, OffsetDateTime)>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value
            .map(|(start, end)| Period { start, end })
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, D::Error> {
        Ok(Option::<Period>::deserialize(deserializer)?.map(|p| (p.start, p.end)))
    }
}

/// Serializes the persistent part of the state.
fn encode(state: &State) -> serde_json::Result<Vec<u8>> {
    let snapshot = SnapshotOut {
        format: FORMAT,
        version: FORMAT_VERSION,
        config: &state.config,
        clock_offset_ms: state.clock.offset_ms(),
        id_sequence: state.ids.sequence(),
        id_generation: state.ids.generation(),
        fixture_account_id: &state.fixture_account_id,
        accounts: &state.accounts,
        clients: &state.clients,
        subscribers: &state.subscribers,
        templates: &state.templates,
        offerings: &state.offerings,
        orders: &state.orders,
        subscriptions: &state.subscriptions,
        profiles: &state.profiles,
        products: &state.products,
        usage_items: &state.usage_items,
        webhooks: &state.webhooks,
        connect_hooks: state
            .connect_hooks
            .iter()
            .map(|((iccid, notification), url)| ConnectHook {
                iccid: iccid.clone(),
                notification: notification.clone(),
                url: url.clone(),
            })
            .collect(),
        idempotency: store_records(&state.idempotency),
    };
    let mut bytes = serde_json::to_vec_pretty(&snapshot)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Rebuilds a state from a file's bytes; the error is the reason, without the file name.
fn decode(bytes: &[u8]) -> Result<State, String> {
    let header: Header = serde_json::from_slice(bytes)
        .map_err(|error| format!("not a valid JSON document: {error}"))?;
    if header.format.as_deref() != Some(FORMAT) {
        return Err(format!(
            "not a simulator state file (expected \"format\": \"{FORMAT}\")"
        ));
    }
    match header.version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(other) => {
            return Err(format!(
                "unsupported format version {other} (this build reads version {FORMAT_VERSION})"
            ));
        }
        None => return Err("the format version is missing".into()),
    }
    let snapshot: SnapshotIn = serde_json::from_slice(bytes).map_err(|error| {
        format!("the content does not match format version {FORMAT_VERSION}: {error}")
    })?;
    restore(snapshot)
}

fn check_keys<T>(
    what: &str,
    records: &BTreeMap<String, T>,
    id: impl Fn(&T) -> &str,
) -> Result<(), String> {
    match records
        .iter()
        .find(|(key, record)| key.as_str() != id(record))
    {
        Some((key, record)) => Err(format!(
            "{what} stored under {key:?} has id {:?}",
            id(record)
        )),
        None => Ok(()),
    }
}

fn restore(snapshot: SnapshotIn) -> Result<State, String> {
    check_keys("account", &snapshot.accounts, |r| &r.id)?;
    check_keys("subscriber", &snapshot.subscribers, |r| &r.id)?;
    check_keys("order template", &snapshot.templates, |r| &r.id)?;
    check_keys("product offering", &snapshot.offerings, |r| &r.id)?;
    check_keys("order", &snapshot.orders, |r| &r.id)?;
    check_keys("subscription", &snapshot.subscriptions, |r| &r.id)?;
    check_keys("sim profile", &snapshot.profiles, |r| &r.iccid)?;
    check_keys("product", &snapshot.products, |r| &r.id)?;
    check_keys("usage item", &snapshot.usage_items, |r| &r.id)?;
    check_keys("webhook", &snapshot.webhooks, |r| &r.id)?;
    check_keys("client", &snapshot.clients, |r| &r.client_id)?;
    if let Some(client) = snapshot
        .clients
        .values()
        .find(|client| !snapshot.accounts.contains_key(&client.account_id))
    {
        return Err(format!(
            "client {:?} is bound to account {:?}, which is not in the file",
            client.client_id, client.account_id
        ));
    }
    let idempotency = restore_records(snapshot.idempotency)?;
    let seed = snapshot.config.seed;
    // A new random stream per restore: ICCIDs and secrets must not repeat earlier ones.
    let generation = snapshot.id_generation.wrapping_add(1);
    let mut state = State::new(snapshot.config);
    state.clock = SimClock::with_offset_ms(snapshot.clock_offset_ms);
    state.ids = IdGen::resume(seed, snapshot.id_sequence, generation);
    state.rng = StdRng::seed_from_u64(stream_seed(seed ^ RNG_STREAM, generation));
    state.accounts = snapshot.accounts;
    state.clients = snapshot.clients;
    state.subscribers = snapshot.subscribers;
    state.templates = snapshot.templates;
    state.offerings = snapshot.offerings;
    state.orders = snapshot.orders;
    state.subscriptions = snapshot.subscriptions;
    state.profiles = snapshot.profiles;
    state.products = snapshot.products;
    state.usage_items = snapshot.usage_items;
    state.webhooks = snapshot.webhooks;
    state.connect_hooks = snapshot
        .connect_hooks
        .into_iter()
        .map(|hook| ((hook.iccid, hook.notification), hook.url))
        .collect();
    state.idempotency = idempotency;
    state.fixture_account_id = snapshot.fixture_account_id;
    state.assign_unowned_records_to_fixture_account();
    state.ensure_trial_account();
    state.deliveries.clear();
    state.faults.clear();
    state.counters = Counters::default();
    state.unsaved_changes = false;
    Ok(state)
}

impl State {
    /// Files from before accounts had their own catalogues and webhooks knew one account.
    fn assign_unowned_records_to_fixture_account(&mut self) {
        let fixture = self.fixture_account_id.clone();
        let owners = self
            .offerings
            .values_mut()
            .map(|o| &mut o.account_id)
            .chain(self.templates.values_mut().map(|t| &mut t.account_id))
            .chain(self.webhooks.values_mut().map(|w| &mut w.account_id));
        for owner in owners.filter(|owner| owner.is_empty()) {
            owner.clone_from(&fixture);
        }
    }
}

fn file_error(path: &Path, kind: io::ErrorKind, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        kind,
        format!("simulator state file {}: {reason}", path.display()),
    )
}

/// The state saved in `path`, or `None` when there is no such file.
pub fn load(path: &Path) -> io::Result<Option<State>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(file_error(path, error.kind(), error)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|reason| file_error(path, io::ErrorKind::InvalidData, reason))
}

/// Writes snapshots of one simulator's state to its file.
#[derive(Clone)]
pub struct Persistence(Arc<Inner>);

struct Inner {
    sim: Sim,
    path: PathBuf,
    temp_path: PathBuf,
    /// Numbers snapshots in the order they were taken (under the state lock).
    taken: AtomicU64,
    /// The number of the snapshot last written; held while writing so writes never interleave
    /// and an older snapshot never replaces a newer one.
    written: Mutex<u64>,
}

impl Persistence {
    pub fn new(sim: Sim, path: PathBuf) -> Self {
        let mut temp_name = path.as_os_str().to_owned();
        temp_name.push(".tmp");
        Self(Arc::new(Inner {
            sim,
            temp_path: PathBuf::from(temp_name),
            path,
            taken: AtomicU64::new(0),
            written: Mutex::new(0),
        }))
    }

    /// Takes a snapshot if anything changed since the last one.
    fn snapshot_if_changed(&self) -> Option<io::Result<(u64, Vec<u8>)>> {
        let mut state = self.0.sim.lock();
        if !state.unsaved_changes {
            return None;
        }
        Some(self.snapshot(&mut state))
    }

    fn snapshot(&self, state: &mut State) -> io::Result<(u64, Vec<u8>)> {
        state.unsaved_changes = false;
        let number = self.0.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let bytes = encode(state).map_err(|error| {
            state.unsaved_changes = true;
            file_error(&self.0.path, io::ErrorKind::InvalidData, error)
        })?;
        Ok((number, bytes))
    }

    /// Saves the current state now (blocking file I/O).
    pub fn save_now(&self) -> io::Result<()> {
        let (number, bytes) = self.snapshot(&mut self.0.sim.lock())?;
        self.write(number, &bytes)
    }

    /// Writes `bytes` to the temporary file, then renames it over the state file.
    fn write(&self, number: u64, bytes: &[u8]) -> io::Result<()> {
        let mut written = self
            .0
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *written >= number {
            return Ok(());
        }
        let result = (|| {
            let mut file = fs::File::create(&self.0.temp_path)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.0.temp_path, &self.0.path)
        })();
        match result {
            Ok(()) => {
                *written = number;
                Ok(())
            }
            Err(error) => {
                drop(written);
                // Keep trying on the next round.
                self.0.sim.lock().unsaved_changes = true;
                Err(file_error(&self.0.path, error.kind(), error))
            }
        }
    }
}

/// Background task: writes the state file at most every `SAVE_PERIOD` while state changes.
pub async fn run_saver(persistence: Persistence) {
    let mut interval = tokio::time::interval(SAVE_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        interval.tick().await;
        let (number, bytes) = match persistence.snapshot_if_changed() {
            None => continue,
            Some(Ok(snapshot)) => snapshot,
            Some(Err(error)) => {
                report(&mut last_error, error.to_string());
                continue;
            }
        };
        let writer = persistence.clone();
        let result = tokio::task::spawn_blocking(move || writer.write(number, &bytes)).await;
        match result {
            Ok(Ok(())) => last_error = None,
            Ok(Err(error)) => report(&mut last_error, error.to_string()),
            Err(error) => report(
                &mut last_error,
                format!("state file writer failed: {error}"),
            ),
        }
    }
}

/// Logs a save failure once, not every round while it persists.
fn report(last_error: &mut Option<String>, error: String) {
    if last_error.as_ref() != Some(&error) {
        tracing::warn!(%error, "could not save the simulator state");
        *last_error = Some(error);
    }
}

/// Middleware: any request that may change state (not GET/HEAD/OPTIONS) marks the state
/// unsaved once it is done, also when its connection is dropped on purpose mid-way.
pub async fn track_changes(
    AxumState(sim): AxumState<Sim>,
    request: Request,
    next: Next,
) -> Response {
    let read_only = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let _guard = (!read_only).then(|| MarkUnsaved(sim));
    next.run(request).await
}

struct MarkUnsaved(Sim);

impl Drop for MarkUnsaved {
    fn drop(&mut self) {
        self.0.lock().unsaved_changes = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_before_accounts_were_separated_gives_the_fixture_account_its_catalogue() {
        let state = State::new(SimConfig::for_tests());
        let mut file: serde_json::Value = serde_json::from_slice(&encode(&state).unwrap()).unwrap();
        let fixture = state.fixture_account_id.clone();
        let file_object = file.as_object_mut().unwrap();
        file_object.remove("clients");
        for key in ["offerings", "templates"] {
            let records = file_object[key].as_object_mut().unwrap();
            records.retain(|_, record| record["account_id"] == fixture.as_str());
            for record in records.values_mut() {
                record.as_object_mut().unwrap().remove("account_id");
            }
        }
        file_object["accounts"]
            .as_object_mut()
            .unwrap()
            .retain(|id, _| *id == fixture);
        let restored = decode(&serde_json::to_vec(&file).unwrap()).unwrap();
        assert_eq!(restored.offerings.len(), 12);
        let owned_by = |account: &str| {
            restored
                .offerings
                .values()
                .filter(|o| o.account_id == account)
                .count()
        };
        assert_eq!(owned_by(&fixture), 6);
        assert_eq!(owned_by(crate::config::TRIAL_ACCOUNT_ID), 6);
        assert!(
            restored
                .templates
                .values()
                .all(|t| !t.account_id.is_empty())
        );
        assert_eq!(
            restored.clients[crate::config::TRIAL_CLIENT_ID].account_id,
            crate::config::TRIAL_ACCOUNT_ID
        );
    }

    #[test]
    fn fixtures_round_trip_through_the_file_format() {
        let state = State::new(SimConfig::for_tests());
        let bytes = encode(&state).unwrap();
        let restored = decode(&bytes).unwrap();
        assert_eq!(restored.fixture_account_id, state.fixture_account_id);
        assert_eq!(restored.offerings.len(), state.offerings.len());
        assert_eq!(restored.config, state.config);
        assert_eq!(restored.ids.sequence(), state.ids.sequence());
        assert_eq!(restored.ids.generation(), 1);
        // Re-encoding the restored world gives the same document but for the generation.
        let again = String::from_utf8(encode(&restored).unwrap()).unwrap();
        let first = String::from_utf8(bytes).unwrap();
        assert_eq!(
            again.replace("\"id_generation\": 1", "\"id_generation\": 0"),
            first
        );
    }

    fn refusal(bytes: &[u8]) -> String {
        match decode(bytes) {
            Ok(_) => panic!("accepted {}", String::from_utf8_lossy(bytes)),
            Err(reason) => reason,
        }
    }

    #[test]
    fn foreign_and_future_files_are_refused() {
        assert!(refusal(b"{}").contains("not a simulator state file"));
        let future = format!("{{\"format\": \"{FORMAT}\", \"version\": 99}}");
        assert!(refusal(future.as_bytes()).contains("unsupported format version 99"));
        assert!(refusal(b"{\"format\"").contains("not a valid JSON"));
    }
}
