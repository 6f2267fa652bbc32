//! Discord driven as Discord drives us: Ed25519-signed interactions into the real route, the
//! real flows, core and simulator behind it, and a fake Discord REST API recording our calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::discord::transport::DiscordTransport;
use lineup_bot::discord::{DiscordClient, DiscordConfig, DiscordState, discord_router};
use lineup_bot::flows::ChatFlows;
use lineup_core::audit::Actor;
use lineup_core::ids::RequestId;
use lineup_core::lines::request::{Request, cards};
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::employee::Employee;
use lineup_testkit::fake_discord::{
    APPLICATION_ID, FakeDiscord, sign_discord_request, test_public_key_hex, test_signing_key,
};
use lineup_testkit::world::{World, add_employee, add_tenant};
use serde_json::{Value, json};

use super::ChatHarness;

pub const GUILD: &str = "1400000000000000001";
const WAIT: Duration = Duration::from_secs(15);

pub struct Discord {
    pub world: World,
    pub fake: FakeDiscord,
    pub flows: Arc<ChatFlows>,
    url: String,
    http: reqwest::Client,
    seq: std::sync::atomic::AtomicU64,
}

/// A stable Discord user id for one of the world's people.
pub fn user_of(person: &Employee) -> String {
    let n: u64 = person.email.as_str().bytes().map(u64::from).sum();
    format!("15000000000{n:08}")
}

pub async fn discord(store: lineup_testkit::TestStore) -> Discord {
    let world = World::new(store).await;
    let fake = FakeDiscord::start().await;
    let config = DiscordConfig::new(APPLICATION_ID, test_public_key_hex(), "bot-token")
        .with_api_base_url(fake.api_base_url());
    let client = DiscordClient::new(config).unwrap();
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Discord,
            GUILD,
            None,
            "",
        )
        .await
        .unwrap();
    // Discord tells no emails: people are linked by their stored Discord ids.
    for person in [
        &world.ada,
        &world.alan,
        &world.maria,
        &world.olivia,
        &world.fiona,
    ] {
        world
            .lineup
            .link_chat_user(world.tenant, person.id, Platform::Discord, &user_of(person))
            .await
            .unwrap();
    }
    let flows = ChatFlows::new(
        world.lineup.clone(),
        vec![Arc::new(DiscordTransport::new(client.clone()))],
    );
    let router = discord_router(
        DiscordState::with_client(client, flows.clone(), Arc::new(world.lineup.clone())).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Discord {
        world,
        fake,
        flows,
        url: format!("http://{addr}/discord/interactions"),
        http: reqwest::Client::new(),
        seq: std::sync::atomic::AtomicU64::new(1),
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc().unix_timestamp().to_string()
}

impl Discord {
    fn next_id(&self) -> String {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("19{:017}", n + rand_part())
    }

    /// An interaction from `user` in `guild`, shaped as Discord sends it.
    fn interaction(&self, kind: u64, guild: &str, user: &str, data: Value) -> Value {
        let id = self.next_id();
        json!({
            "app_permissions": "2248473465835073", "attachment_size_limit": 10485760,
            "application_id": APPLICATION_ID, "channel_id": "1600000000000000001",
            "data": data, "entitlements": [], "id": id, "locale": "en-US",
            "token": format!("tok-{id}"), "type": kind, "version": 1,
            "guild_id": guild, "guild_locale": "en-US", "context": 0,
            "authorizing_integration_owners": {"0": guild},
            "member": {"user": {"id": user, "username": "u", "discriminator": "0", "global_name": "U", "avatar": null},
                "roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "pending": false, "permissions": "2248473465835073", "nick": null, "avatar": null},
            "message": {"id": "1800000000000000001", "channel_id": "1600000000000000001", "type": 0, "content": "",
                "author": {"id": "1100000000000000002", "username": "Lineup", "discriminator": "0", "avatar": null, "bot": true},
                "timestamp": "2026-01-01T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": false, "flags": 0, "components": []},
        })
    }

    async fn send_raw(&self, raw: &[u8], ts: &str, signature: &str) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", ts)
            .body(raw.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn send(&self, body: &Value) -> Value {
        let raw = serde_json::to_vec(body).unwrap();
        let ts = now();
        let response = self
            .send_raw(
                &raw,
                &ts,
                &sign_discord_request(&test_signing_key(), &ts, &raw),
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// What an interaction response (or its later edit) told the person.
    async fn told(&self, response: &Value, interaction: &Value) -> Option<String> {
        match response["type"].as_u64() {
            Some(4) | Some(7) => Some(response["data"].to_string()),
            Some(5) | Some(6) => {
                let token = interaction["token"].as_str().unwrap_or_default().to_owned();
                let calls = self
                    .fake
                    .wait_for(Duration::from_millis(1500), |calls| {
                        calls.iter().any(|c| c.path.contains(&token))
                    })
                    .await;
                calls
                    .into_iter()
                    .find(|c| c.path.contains(&token))
                    .map(|c| c.body.to_string())
            }
            _ => None,
        }
    }

    fn messages_to(&self, who: &Employee) -> Vec<lineup_testkit::fake_discord::Call> {
        let Some(channel) = self.fake.dm_channel(&user_of(who)) else {
            return Vec::new();
        };
        self.fake
            .calls_to("POST", &format!("/channels/{channel}/messages"))
    }

    async fn wait_for_message_to(
        &self,
        who: &Employee,
        ready: impl Fn(&lineup_testkit::fake_discord::Call) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.messages_to(who).iter().any(&ready) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for a Discord DM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The custom id of a button with `action` in the newest card sent to `who`.
    fn button_id(&self, who: &Employee, action: &str) -> Option<String> {
        self.messages_to(who).iter().rev().find_map(|m| {
            let text = m.body["components"].to_string();
            text.contains(action).then(|| {
                m.body["components"]
                    .as_array()?
                    .iter()
                    .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
                    .find_map(|b| {
                        b["custom_id"]
                            .as_str()
                            .filter(|id| id.contains(action))
                            .map(str::to_owned)
                    })
            })?
        })
    }

    fn click_id(&self, who: &Employee, action: &str, value: &str) -> String {
        // The button we sent, when `who` has it; else what a forged or stale one would carry.
        self.button_id(who, action)
            .filter(|id| id.ends_with(value))
            .unwrap_or_else(|| format!("{action}|{value}"))
    }
}

fn rand_part() -> u64 {
    u64::from(uuid::Uuid::new_v4().as_fields().0 % 1_000_000)
}

#[async_trait]
impl ChatHarness for Discord {
    fn world(&self) -> &World {
        &self.world
    }

    fn flows(&self) -> &ChatFlows {
        &self.flows
    }

    async fn request_line(&self) -> Request {
        let ada = user_of(&self.world.ada);
        let opened = self
            .send(&self.interaction(
                2,
                GUILD,
                &ada,
                json!({"id": "1700000000000000001", "name": "esim", "type": 1,
            "options": [{"name": "request", "type": 1, "options": []}]}),
            ))
            .await;
        assert!(
            opened.to_string().contains("~plan"),
            "the plan picker: {opened}"
        );
        let plan = self.world.plans[0].id.to_string();
        let modal = self
            .send(&self.interaction(
                3,
                GUILD,
                &ada,
                json!({"component_type": 3, "custom_id": "~plan", "values": [plan]}),
            ))
            .await;
        assert_eq!(modal["type"], 9, "{modal}");
        let custom_id = modal["data"]["custom_id"].as_str().unwrap().to_owned();
        let submitted = self.send(&self.interaction(5, GUILD, &ada, json!({"custom_id": custom_id, "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "reason", "value": "on-call phone"}]},
            {"type": 1, "components": [{"type": 4, "custom_id": "wanted_date", "value": ""}]},
        ]}))).await;
        assert!(submitted["type"].as_u64().is_some(), "{submitted}");
        let requests = self
            .world
            .lineup
            .requests_of(self.world.tenant, self.world.ada.id)
            .await
            .unwrap();
        requests.into_iter().next().expect("the request was stored")
    }

    async fn approval_cards_for(&self, who: &Employee, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self
            .messages_to(who)
            .iter()
            .filter(|m| m.body["components"].to_string().contains(cards::APPROVE))
            .count()
            < n
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no approval card reached {}",
                who.email
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn click(&self, who: &Employee, action: &str, value: &str) -> Option<String> {
        let custom_id = self.click_id(who, action, value);
        let interaction = self.interaction(
            3,
            GUILD,
            &user_of(who),
            json!({"component_type": 2, "custom_id": custom_id}),
        );
        let response = self.send(&interaction).await;
        self.told(&response, &interaction).await
    }

    async fn replayed_click(
        &self,
        who: &Employee,
        action: &str,
        value: &str,
    ) -> (Option<String>, Option<String>) {
        let interaction = self.interaction(
            3,
            GUILD,
            &user_of(who),
            json!({"component_type": 2, "custom_id": format!("{action}|{value}")}),
        );
        let raw = serde_json::to_vec(&interaction).unwrap();
        let ts = now();
        let signature = sign_discord_request(&test_signing_key(), &ts, &raw);
        let first: Value = self
            .send_raw(&raw, &ts, &signature)
            .await
            .json()
            .await
            .unwrap();
        let second: Value = self
            .send_raw(&raw, &ts, &signature)
            .await
            .json()
            .await
            .unwrap();
        let second = second
            .to_string()
            .contains("only the request's approver")
            .then(|| second.to_string());
        (self.told(&first, &interaction).await, second)
    }

    async fn deny(&self, who: &Employee, request: RequestId, reason: &str) {
        let custom_id = self.click_id(who, cards::DENY, &request.to_string());
        let opened = self
            .send(&self.interaction(
                3,
                GUILD,
                &user_of(who),
                json!({"component_type": 2, "custom_id": custom_id}),
            ))
            .await;
        assert_eq!(opened["type"], 9, "Deny opens the reason form: {opened}");
        let modal_id = opened["data"]["custom_id"].as_str().unwrap().to_owned();
        self.send(&self.interaction(5, GUILD, &user_of(who), json!({"custom_id": modal_id, "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "deny_reason", "value": reason}]},
        ]}))).await;
    }

    async fn direct_message_contains(&self, who: &Employee, text: &str) {
        self.wait_for_message_to(who, |m| m.body.to_string().contains(text))
            .await;
    }

    async fn qr_received(&self, who: &Employee) {
        self.wait_for_message_to(who, |m| {
            m.attachments
                .iter()
                .any(|a| a.bytes.starts_with(b"\x89PNG"))
        })
        .await;
    }

    async fn forged_request_status(&self) -> u16 {
        let interaction = self.interaction(
            3,
            GUILD,
            &user_of(&self.world.maria),
            json!({"component_type": 2, "custom_id": "request.approve|x"}),
        );
        let raw = serde_json::to_vec(&interaction).unwrap();
        let ts = now();
        let forger = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        self.send_raw(&raw, &ts, &sign_discord_request(&forger, &ts, &raw))
            .await
            .status()
            .as_u16()
    }

    async fn stranger_clicks_approve(&self, request: RequestId) -> Option<String> {
        let globex = add_tenant(&self.world.lineup, "globex").await;
        let mallory = add_employee(&self.world.lineup, globex, "mallory", None).await;
        let other_guild = "1400000000000000009";
        self.world
            .lineup
            .install_workspace(
                globex,
                &Actor::System,
                Platform::Discord,
                other_guild,
                None,
                "",
            )
            .await
            .unwrap();
        self.world
            .lineup
            .link_chat_user(globex, mallory.id, Platform::Discord, "1500000000000000666")
            .await
            .unwrap();
        let interaction = self.interaction(
            3,
            other_guild,
            "1500000000000000666",
            json!({"component_type": 2, "custom_id": format!("{}|{request}", cards::APPROVE)}),
        );
        let response = self.send(&interaction).await;
        self.told(&response, &interaction).await
    }

    fn violations(&self) -> Vec<String> {
        self.fake
            .violations()
            .into_iter()
            .map(|v| format!("{}: {:?}", v.path, v.problems))
            .collect()
    }
}
