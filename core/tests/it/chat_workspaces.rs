//! Chat installations as clicks see them: remembered for a moment per process, changes made
//! in this process seen at once, changes made by another replica within a second.

use std::time::Duration;

use lineup_core::Lineup;
use lineup_core::audit::Actor;
use lineup_core::messaging::chat::Platform;
use lineup_core::secret::SecretBox;
use lineup_testkit::both_backends;
use lineup_testkit::world::{World, lineup_for, quick_poll};
use serde_json::json;

const TEAM: &str = "T0CACHE";

async fn token(lineup: &Lineup) -> Option<String> {
    lineup
        .workspace(Platform::Slack, TEAM)
        .await
        .unwrap()
        .map(|w| w.bot_token)
}

both_backends!(
    a_change_made_here_is_seen_by_the_next_click_at_once,
    |store| async move {
        let w = World::new(store).await;
        let lineup = &w.lineup;
        let install = |token: &'static str| {
            lineup.install_workspace(w.tenant, &Actor::System, Platform::Slack, TEAM, None, token)
        };
        install("xoxb-one").await.unwrap();
        assert_eq!(token(lineup).await.as_deref(), Some("xoxb-one"));
        // Reinstalled with a new token: the next lookup has it, not the remembered one.
        install("xoxb-two").await.unwrap();
        assert_eq!(token(lineup).await.as_deref(), Some("xoxb-two"));
        lineup
            .set_workspace_setting(Platform::Slack, TEAM, "service_url", json!("https://x"))
            .await
            .unwrap();
        let ws = lineup
            .workspace(Platform::Slack, TEAM)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ws.settings["service_url"], "https://x");
        lineup
            .uninstall_workspace(Platform::Slack, TEAM)
            .await
            .unwrap();
        assert_eq!(token(lineup).await, None, "uninstalled: unknown at once");
        install("xoxb-three").await.unwrap();
        assert_eq!(token(lineup).await.as_deref(), Some("xoxb-three"));
        lineup
            .disconnect_workspace(w.tenant, &Actor::System, Platform::Slack)
            .await
            .unwrap();
        assert_eq!(token(lineup).await, None, "disconnected: unknown at once");
    }
);

both_backends!(
    another_replica_sees_an_uninstall_within_a_second,
    |store| async move {
        let w = World::new(store).await;
        // Two replicas: one store, one secret key, each its own memory.
        let key = SecretBox::generate_hex_key();
        let here = w
            .lineup
            .clone()
            .with_secrets(SecretBox::from_hex(&key).unwrap());
        let other = lineup_for(w.lineup.store(), &w.sim, quick_poll())
            .with_secrets(SecretBox::from_hex(&key).unwrap());
        here.install_workspace(
            w.tenant,
            &Actor::System,
            Platform::Slack,
            TEAM,
            None,
            "xoxb",
        )
        .await
        .unwrap();
        assert!(token(&other).await.is_some());
        here.uninstall_workspace(Platform::Slack, TEAM)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(token(&other).await, None);
    }
);
