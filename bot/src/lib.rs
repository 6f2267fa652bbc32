//! Chat adapters for Slack, Microsoft Teams and Discord. Each verifies and parses its
//! platform's requests into [`chat::Conversation`] calls and renders the answers, and sends
//! through its [`chat::ChatTransport`]; [`flows`] holds what happens, once for every platform.

pub mod chat;
pub mod commands;
pub mod dedupe;
pub mod discord;
pub mod flows;
pub mod install_state;
pub mod slack;
pub mod teams;
pub mod text;
