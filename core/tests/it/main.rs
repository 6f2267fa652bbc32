//! Core's integration tests, one binary: a module per concern, each on real SQLite and
//! PostgreSQL through testkit's both_backends!.

mod guardrails;
mod import;
mod jobs;
mod lifecycle;
mod mail;
mod oneglobal_adapter;
mod policy;
mod reports;
mod requests;
mod store;
mod usage;
mod webhooks;
