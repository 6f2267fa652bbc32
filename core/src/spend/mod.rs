//! What lines cost and how spend is kept in bounds: usage ingest and pricing, the policy
//! (caps, roaming presets) and the guardrails that enforce it, alerts, reports, the
//! optimisation report and the what-if replay of a proposed policy.

pub mod alert;
pub mod guardrail;
pub mod optimise;
pub mod policy;
pub mod pricing;
pub mod reports;
pub mod usage;
pub mod whatif;
