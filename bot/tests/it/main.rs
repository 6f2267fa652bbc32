//! Every test of the chat adapters, built as one binary: a module per area, and one `harness`
//! with the fakes, recorders and routers they share.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod harness;

mod chat_scenarios;
mod client;
mod discord_interactions;
mod discord_transport;
mod leavers;
mod render_limits;
mod replicas;
mod roaming_choice;
mod slack_flows;
mod slack_routes;
mod teams_cards;
mod teams_endpoint;
mod teams_transport;
