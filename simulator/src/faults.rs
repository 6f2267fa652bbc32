//! Targeted faults (`/_sim/faults`) and the random error knobs of the config.
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::state::State;

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The request is never processed.
    #[default]
    Before,
    /// The request is processed (state changes stick), then the fault replaces the response.
    After,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultMatch {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub order_type: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultAction {
    pub status: Option<u16>,
    pub body: Option<Value>,
    pub retry_after_s: Option<u64>,
    pub delay_ms: u64,
    pub drop_connection: bool,
    pub timeout: bool,
    /// Order-level fault: the order is accepted, then its async step cancels with this code.
    pub cancel_with: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FaultSpec {
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    #[serde(default)]
    pub action: FaultAction,
    pub times: Option<u32>,
    pub probability: Option<f64>,
    #[serde(default)]
    pub phase: Phase,
}

pub struct Fault {
    pub id: String,
    pub spec: FaultSpec,
    pub remaining: Option<u32>,
    pub hits: u64,
}

/// What the pipeline must do to one request.
#[derive(Debug)]
pub struct InjectedFault {
    pub label: String,
    pub phase: Phase,
    pub delay_ms: u64,
    pub effect: Effect,
}

#[derive(Debug)]
pub enum Effect {
    Respond {
        status: u16,
        body: Option<Value>,
        retry_after_s: Option<u64>,
    },
    DropConnection,
    Timeout,
    DelayOnly,
}

/// The parts of a request that faults match on.
pub struct RequestProbe<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub order_type: Option<&'a str>,
}

impl FaultSpec {
    pub fn validate(&self) -> ApiResult<()> {
        let action = &self.action;
        let has_effect = action.status.is_some()
            || action.drop_connection
            || action.timeout
            || action.delay_ms > 0
            || action.cancel_with.is_some();
        if !has_effect {
            return Err(ApiError::bad_request(
                "action needs one of status, drop_connection, timeout, delay_ms, cancel_with",
            ));
        }
        if let Some(status) = action.status
            && !(100..=599).contains(&status)
        {
            return Err(ApiError::bad_request(
                "action.status must be an HTTP status",
            ));
        }
        if self.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(ApiError::bad_request("probability must be between 0 and 1"));
        }
        Ok(())
    }

    fn is_order_level(&self) -> bool {
        self.action.cancel_with.is_some()
    }

    fn matches(&self, probe: &RequestProbe) -> bool {
        let matcher = &self.matcher;
        matcher
            .method
            .as_ref()
            .is_none_or(|method| method.eq_ignore_ascii_case(probe.method))
            && matcher
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| probe.path.starts_with(prefix.as_str()))
            && matcher
                .order_type
                .as_ref()
                .is_none_or(|wanted| probe.order_type == Some(wanted.as_str()))
    }
}

impl Fault {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "match": self.spec.matcher,
            "action": self.spec.action,
            "times": self.spec.times,
            "probability": self.spec.probability,
            "phase": self.spec.phase,
            "remaining": self.remaining,
            "hits": self.hits,
        })
    }

    fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

impl State {
    pub fn add_fault(&mut self, spec: FaultSpec) -> String {
        let id = self.ids.next("flt");
        let remaining = spec.times;
        self.faults.insert(
            id.clone(),
            Fault {
                id: id.clone(),
                spec,
                remaining,
                hits: 0,
            },
        );
        id
    }

    /// Decides the fault (if any) for an API request: targeted faults first, then random knobs.
    pub fn plan_fault(&mut self, probe: &RequestProbe) -> Option<InjectedFault> {
        self.take_targeted_fault(probe, false)
            .map(|fault| {
                let action = &fault.spec.action;
                InjectedFault {
                    label: fault.id.clone(),
                    phase: fault.spec.phase,
                    delay_ms: action.delay_ms,
                    effect: if action.timeout {
                        Effect::Timeout
                    } else if action.drop_connection {
                        Effect::DropConnection
                    } else if let Some(status) = action.status {
                        Effect::Respond {
                            status,
                            body: action.body.clone(),
                            retry_after_s: action
                                .retry_after_s
                                .or((status == 429).then_some(self.config.retry_after_s)),
                        }
                    } else {
                        Effect::DelayOnly
                    },
                }
            })
            .or_else(|| self.random_fault())
    }

    /// An order-level fault for a newly submitted order: the code it will be canceled with.
    pub fn take_order_fault(&mut self, order_type: &str) -> Option<String> {
        let probe = RequestProbe {
            method: "POST",
            path: "/enterprise/orders",
            order_type: Some(order_type),
        };
        self.take_targeted_fault(&probe, true)
            .and_then(|fault| fault.spec.action.cancel_with.clone())
    }

    fn take_targeted_fault(&mut self, probe: &RequestProbe, order_level: bool) -> Option<Fault> {
        let candidates: Vec<String> = self
            .faults
            .values()
            .filter(|fault| {
                !fault.exhausted()
                    && fault.spec.is_order_level() == order_level
                    && fault.spec.matches(probe)
            })
            .map(|fault| fault.id.clone())
            .collect();
        for id in candidates {
            let probability = self.faults[&id].spec.probability;
            if probability.is_some_and(|p| !self.roll(p)) {
                continue;
            }
            let fault = self.faults.get_mut(&id)?;
            fault.hits += 1;
            if let Some(remaining) = fault.remaining.as_mut() {
                *remaining -= 1;
            }
            return Some(Fault {
                id: fault.id.clone(),
                spec: fault.spec.clone(),
                remaining: fault.remaining,
                hits: fault.hits,
            });
        }
        None
    }

    fn random_fault(&mut self) -> Option<InjectedFault> {
        if self.roll(self.config.drop_connection_rate) {
            return Some(InjectedFault {
                label: "random:drop_connection".into(),
                phase: Phase::After,
                delay_ms: 0,
                effect: Effect::DropConnection,
            });
        }
        if !self.roll(self.config.error_rate) {
            return None;
        }
        let status = self.pick_error_status()?;
        let phase = if self.roll(self.config.error_after_processing) {
            Phase::After
        } else {
            Phase::Before
        };
        Some(InjectedFault {
            label: format!("random:{status}"),
            phase,
            delay_ms: 0,
            effect: Effect::Respond {
                status,
                body: None,
                retry_after_s: (status == 429).then_some(self.config.retry_after_s),
            },
        })
    }

    fn pick_error_status(&mut self) -> Option<u16> {
        let weighted: Vec<(u16, u32)> = self
            .config
            .error_statuses
            .iter()
            .filter_map(|(status, weight)| Some((status.parse().ok()?, *weight)))
            .filter(|(_, weight)| *weight > 0)
            .collect();
        let total: u32 = weighted.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = self.rng.gen_range(0..total);
        for (status, weight) in weighted {
            if ticket < weight {
                return Some(status);
            }
            ticket -= weight;
        }
        None
    }

    pub fn pick_latency_ms(&mut self) -> u64 {
        let range = self.config.latency_ms;
        if range.max <= range.min {
            range.min
        } else {
            self.rng.gen_range(range.min..=range.max)
        }
    }
}
