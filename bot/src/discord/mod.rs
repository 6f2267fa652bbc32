//! Discord over HTTP interactions (no gateway): Ed25519 request verification, interaction
//! parsing into [`crate::chat::Conversation`] calls, rendering of
//! [`lineup_core::messaging::chat_message::Message`] as embeds + components, Discord's documented limits, a REST
//! client (serenity's `Http`) whose base URL is configuration, the [`crate::chat::ChatTransport`]
//! implementation and the axum route `POST /discord/interactions`.
//!
//! Component `custom_id`s (≤ 100 characters) carry everything a click needs:
//!
//! | custom_id | what |
//! |---|---|
//! | `<action_id>\|<value>` | a [`lineup_core::messaging::chat_message::Action`] → `Conversation::click` |
//! | `@<guild_id>\|<action_id>\|<value>` | the same in a DM (DM interactions carry no guild) |
//! | `?<custom_id>` | an action with `confirm`: first an ephemeral "are you sure?" |
//! | `~plan` | the plan select of the request form (opens the modal) |
//! | `~deny\|<request_id>` | button / modal of the deny reason |
//! | `~request\|<plan_id>` | the request-form modal |

pub mod client;
pub mod commands;
pub mod config;
pub mod inbound;
pub mod install;
pub mod limits;
pub mod render;
pub mod routes;
pub mod transport;
pub mod verify;

pub use client::{DiscordClient, DiscordError};
pub use commands::{COMMANDS_JSON, register_commands};
pub use config::DiscordConfig;
pub use install::{DiscordInstall, DiscordInstallConfig, discord_install_router};
pub use routes::{DiscordState, discord_router};
pub use transport::DiscordTransport;
