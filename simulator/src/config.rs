use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `/_sim/config` document. Every field has a default so partial JSON is accepted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SimConfig {
    pub seed: u64,
    pub latency_ms: MillisRange,
    pub error_rate: f64,
    /// Status code (as a string key) to relative weight.
    pub error_statuses: BTreeMap<String, u32>,
    /// Share of random errors applied after the handler ran (state changed, client sees an error).
    pub error_after_processing: f64,
    pub drop_connection_rate: f64,
    pub retry_after_s: u64,
    pub rate_limit_per_min: u32,
    pub token_ttl_s: u64,
    pub order_delay_ms: MillisRange,
    pub order_failure_rate: f64,
    pub auto_install: AutoInstall,
    pub usage_delay_s: u64,
    pub thresholds_pct: Vec<u8>,
    pub cap_policy: CapPolicy,
    pub suspend_semantics: SuspendSemantics,
    pub webhooks: WebhookConfig,
    pub confirmation_code_required: bool,
    pub auth_mode: AuthMode,
    pub smdp_address: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MillisRange {
    pub min: u64,
    pub max: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AutoInstall {
    pub enabled: bool,
    pub after_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WebhookConfig {
    pub enabled: bool,
    pub duplicate_rate: f64,
    pub reorder: bool,
    pub max_attempts: u32,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CapPolicy {
    Block,
    Throttle,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SuspendSemantics {
    AttachBlocked,
    Reject,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Oauth2,
    None,
}

/// The default OAuth2 client, bound to the fixture account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

/// The ready-made trial account seeded at start-up, for connecting a newly signed-up
/// organisation to the demo by typing its credentials.
pub const TRIAL_CLIENT_ID: &str = "lineup-trial";
pub const TRIAL_CLIENT_SECRET: &str = "lineup-trial-secret";
pub const TRIAL_ACCOUNT_ID: &str = "acc_trial";

impl Credentials {
    /// The trial account's client (bound to [`TRIAL_ACCOUNT_ID`]).
    pub fn trial() -> Self {
        Self {
            client_id: TRIAL_CLIENT_ID.into(),
            client_secret: TRIAL_CLIENT_SECRET.into(),
        }
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            client_id: "lineup-demo".into(),
            client_secret: "lineup-demo-secret".into(),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            latency_ms: MillisRange { min: 20, max: 200 },
            error_rate: 0.0,
            error_statuses: [("500", 1), ("503", 1), ("429", 1)]
                .into_iter()
                .map(|(status, weight)| (status.to_string(), weight))
                .collect(),
            error_after_processing: 0.5,
            drop_connection_rate: 0.0,
            retry_after_s: 1,
            rate_limit_per_min: 1000,
            token_ttl_s: 300,
            order_delay_ms: MillisRange {
                min: 500,
                max: 3000,
            },
            order_failure_rate: 0.0,
            auto_install: AutoInstall::default(),
            usage_delay_s: 0,
            thresholds_pct: vec![80],
            cap_policy: CapPolicy::Block,
            suspend_semantics: SuspendSemantics::AttachBlocked,
            webhooks: WebhookConfig::default(),
            confirmation_code_required: false,
            auth_mode: AuthMode::Oauth2,
            smdp_address: "rsp.sim.local".into(),
        }
    }
}

impl Default for AutoInstall {
    fn default() -> Self {
        Self {
            enabled: true,
            after_ms: 2000,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            duplicate_rate: 0.0,
            reorder: false,
            max_attempts: 5,
        }
    }
}

impl MillisRange {
    pub fn fixed(ms: u64) -> Self {
        Self { min: ms, max: ms }
    }
}

impl SimConfig {
    /// A config for tests: no latency, fast orders, fast auto-install.
    pub fn for_tests() -> Self {
        Self {
            latency_ms: MillisRange::fixed(0),
            order_delay_ms: MillisRange { min: 10, max: 30 },
            auto_install: AutoInstall {
                enabled: true,
                after_ms: 50,
            },
            ..Self::default()
        }
    }

    /// Applies a partial JSON document on top of this config (deep merge).
    pub fn merged_with(&self, patch: &serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut current = serde_json::to_value(self)?;
        merge_json(&mut current, patch);
        serde_json::from_value(current)
    }
}

fn merge_json(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(key) {
                    // error_statuses is replaced wholesale: merging weights would keep stale codes.
                    Some(existing) if key != "error_statuses" => merge_json(existing, value),
                    _ => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
