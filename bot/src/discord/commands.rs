//! The `/esim` command definition (`manifests/discord/commands.json`, compiled in) and its
//! registration (`lineup discord register-commands`).

use serde_json::Value;

use super::client::{DiscordClient, DiscordError};

/// `manifests/discord/commands.json`: the body of Discord's bulk-overwrite endpoint.
pub const COMMANDS_JSON: &str = include_str!("../../../manifests/discord/commands.json");

/// The parsed manifest.
pub fn commands() -> Value {
    serde_json::from_str(COMMANDS_JSON).expect("manifests/discord/commands.json is valid JSON")
}

/// Registers (overwrites) the application's commands, in one guild when `guild_id` is given
/// (instant, for testing a server) or globally. Returns the registered command names.
pub async fn register_commands(
    client: &DiscordClient,
    guild_id: Option<&str>,
) -> Result<Vec<String>, DiscordError> {
    client.overwrite_commands(guild_id, &commands()).await
}
