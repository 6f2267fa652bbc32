//! Core's integration tests, one binary: a module per concern, each on real SQLite and
//! PostgreSQL through testkit's both_backends!.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod guardrails;
mod import;
mod jobs;
mod lifecycle;
mod mail;
mod movers;
mod oneglobal_adapter;
mod orphans;
mod policy;
mod reports;
mod requests;
mod seen_ids;
mod store;
mod usage;
mod webhooks;
