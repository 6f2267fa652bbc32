//! Slack plumbing: request signing, inbound payload parsing, Block Kit rendering and limits,
//! and a Web API client (slack-morphism) whose base URL is configuration.

pub mod client;
pub mod config;
pub mod handler;
pub mod inbound;
pub mod limits;
pub mod render;
pub mod verify;

pub use client::{SlackApiError, SlackClient};
pub use config::SlackConfig;
pub use handler::{Installation, Reply, SlackHandler, ViewReply};
pub use inbound::{BlockAction, SlashCommand, ViewSubmission, WorkspaceEvent};
pub mod app;
pub use crate::install_state;
pub mod transport;

pub use app::SlackApp;
pub use install_state::InstallState;
pub use transport::SlackTransport;
