//! Slack: request signing, inbound payload parsing into [`crate::chat::Conversation`] calls,
//! Block Kit rendering and limits, a Web API client (slack-morphism) whose base URL is
//! configuration, the [`crate::chat::ChatTransport`] implementation, the install and
//! uninstall of the app ([`SlackApp`]) and the axum routes under `/slack/`.

pub mod app;
pub mod client;
pub mod config;
pub mod inbound;
pub mod limits;
pub mod render;
pub mod routes;
pub mod transport;
pub mod verify;

pub use crate::install_state;
pub use app::SlackApp;
pub use client::{Installation, SlackApiError, SlackClient};
pub use config::SlackConfig;
pub use inbound::{BlockAction, SlashCommand, ViewSubmission, WorkspaceEvent};
pub use install_state::InstallState;
pub use routes::{SlackState, SlackWorkspaces, slack_router};
pub use transport::SlackTransport;
