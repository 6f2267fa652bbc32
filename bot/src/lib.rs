//! Chat adapters. `slack` turns HTTP from Slack into typed events handed to a [`slack::SlackHandler`]
//! and renders/sends outgoing messages; [`routes::slack_router`] mounts it on axum.

pub mod routes;
pub mod slack;

pub use routes::{SlackState, slack_router};
pub mod chat;
pub mod commands;
pub mod discord;
pub mod flows;
pub mod install_state;
pub mod teams;
pub mod text;
