//! Core's integration tests, one binary: a module per concern, each on real SQLite and
//! PostgreSQL through testkit's both_backends!.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod airalo_adapter;
mod chat_workspaces;
mod gigs_adapter;
mod guardrails;
mod hook_receiver;
mod import;
mod jobs;
mod leavers;
mod lifecycle;
mod mail;
mod movers;
mod oneglobal_adapter;
mod orphans;
mod policy;
mod reports;
mod requests;
mod routing;
mod seen_ids;
mod store;
mod usage;
mod webhooks;
