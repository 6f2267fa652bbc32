//! Microsoft Teams: the Bot Framework messaging endpoint (JWT-verified activities), Adaptive
//! Cards, and a Bot Connector client whose endpoints come from configuration and inbound
//! activities, so tests run against `lineup_testkit::fake_teams`.

pub mod auth;
pub mod client;
pub mod config;
pub mod inbound;
pub mod limits;
pub mod package;
pub mod render;
pub mod routes;
pub mod transport;

pub use auth::{AuthError, InboundVerifier, OutboundTokens};
pub use client::{BotConnector, ConnectorError, Member};
pub use config::TeamsConfig;
pub use inbound::{Activity, Intent};
pub use routes::{ServiceUrlStore, TeamsOutbound, TeamsState, TenantLinks, teams_router};
pub use transport::{InProcessConversations, KnownConversations, TeamsTransport};
