//! Teams driven as the Bot Framework drives us: activities with tokens signed like the Bot
//! Connector's into the real route, the real flows, core and simulator behind it, and a fake
//! Bot Connector (with its token service and key set) recording our calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lineup_bot::flows::ChatFlows;
use lineup_bot::teams::{TeamsConfig, TeamsOutbound, TeamsState, TeamsTransport, teams_router};
use lineup_core::audit::Actor;
use lineup_core::ids::RequestId;
use lineup_core::lines::request::{Request, cards};
use lineup_core::messaging::chat::Platform;
use lineup_core::organisation::employee::Employee;
use lineup_testkit::fake_teams::{
    ActivityCtx, FakeTeams, TokenClaims, invoke_action_activity, message_activity,
    sign_activity_token,
};
use lineup_testkit::world::{World, add_employee, add_tenant};
use serde_json::{Value, json};

use super::ChatHarness;

const APP_ID: &str = "00000000-aaaa-bbbb-cccc-000000000001";
const APP_PASSWORD: &str = "test-app-password";
pub const AAD_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const WAIT: Duration = Duration::from_secs(15);

pub struct Teams {
    pub world: World,
    pub fake: FakeTeams,
    pub flows: Arc<ChatFlows>,
    base: String,
    http: reqwest::Client,
}

/// The Teams user id of one of the world's people.
pub fn user_of(person: &Employee) -> String {
    format!(
        "29:1{}",
        person.email.as_str().split('@').next().unwrap_or_default()
    )
}

pub async fn teams(store: lineup_testkit::TestStore) -> Teams {
    let world = World::new(store).await;
    let fake = FakeTeams::start(APP_ID, APP_PASSWORD).await;
    let people = [
        &world.ada,
        &world.alan,
        &world.maria,
        &world.olivia,
        &world.fiona,
    ];
    for person in people {
        let email = person.email.as_str();
        fake.add_member(
            &user_of(person),
            &person.full_name(),
            Some(email),
            Some(email),
        );
    }
    world
        .lineup
        .install_workspace(
            world.tenant,
            &Actor::System,
            Platform::Teams,
            AAD_TENANT,
            None,
            "",
        )
        .await
        .unwrap();
    world
        .lineup
        .set_workspace_setting(
            Platform::Teams,
            AAD_TENANT,
            "service_url",
            json!(fake.service_url()),
        )
        .await
        .unwrap();
    // Teams cannot look people up by email: approvers are known by their stored Teams ids.
    for person in people {
        world
            .lineup
            .link_chat_user(world.tenant, person.id, Platform::Teams, &user_of(person))
            .await
            .unwrap();
    }
    let Replica { flows, base, .. } = start_replica(&world, &fake).await;
    Teams {
        world,
        fake,
        flows,
        base,
        http: reqwest::Client::new(),
    }
}

/// A server of the Teams route: its flows, the transport they send with, and its address.
pub struct Replica {
    pub flows: Arc<ChatFlows>,
    pub transport: TeamsTransport,
    pub base: String,
}

/// One more server over the world's database and the same fake Bot Connector, as a replica
/// behind a load balancer: its own router state, transport and flows.
pub async fn start_replica(world: &World, fake: &FakeTeams) -> Replica {
    let mut config = TeamsConfig::new(APP_ID, APP_PASSWORD);
    config.openid_metadata_url = fake.openid_metadata_url();
    config.token_url = fake.token_url();
    let outbound = TeamsOutbound::new(&config, Arc::new(world.lineup.clone()));
    let transport = outbound.transport();
    let flows = ChatFlows::new(world.lineup.clone(), vec![Arc::new(transport.clone())]);
    let state = TeamsState::with_outbound(
        config,
        flows.clone(),
        Arc::new(world.lineup.clone()),
        outbound,
        Arc::new(world.lineup.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, teams_router(state)).await.unwrap() });
    Replica {
        flows,
        transport,
        base: format!("http://{addr}"),
    }
}

impl Teams {
    pub fn ctx(&self, who: &Employee) -> ActivityCtx {
        ActivityCtx::personal(&self.fake.service_url(), AAD_TENANT, APP_ID, &user_of(who))
    }

    async fn post_with(&self, activity: &Value, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/teams/messages", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(serde_json::to_vec(activity).unwrap())
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, activity: &Value) -> Value {
        let token = sign_activity_token(&TokenClaims::new(APP_ID, &self.fake.service_url()));
        let response = self.post_with(activity, &token).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap_or(Value::Null)
    }

    /// Everything posted into `who`'s 1:1 chats (the one they opened, the one we opened).
    fn posts_to(&self, who: &Employee) -> Vec<lineup_testkit::fake_teams::Call> {
        let user = user_of(who);
        let theirs = self.ctx(who).conversation_id;
        let ours = self.fake.direct_conversation(AAD_TENANT, &user);
        self.fake
            .posts()
            .into_iter()
            .filter(|c| {
                c.conversation.as_deref() == Some(theirs.as_str())
                    || (ours.is_some() && c.conversation == ours)
            })
            .collect()
    }

    async fn wait_for_post_to(
        &self,
        who: &Employee,
        ready: impl Fn(&lineup_testkit::fake_teams::Call) -> bool,
    ) -> lineup_testkit::fake_teams::Call {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.posts_to(who).into_iter().find(&ready) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for a Teams message to {}",
                who.email
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An Action.Execute click; what the invoke response told the clicker.
    fn click_activity(&self, who: &Employee, action: &str, value: &str) -> Value {
        invoke_action_activity(
            &self.ctx(who),
            action,
            json!({"action": action, "value": value}),
            "1700000000001",
        )
    }
}

fn told(response: &Value) -> Option<String> {
    match response["value"].as_str() {
        Some(text) if !text.is_empty() && text != "Done." => Some(text.to_owned()),
        _ => None,
    }
}

#[async_trait]
impl ChatHarness for Teams {
    fn world(&self) -> &World {
        &self.world
    }

    fn flows(&self) -> &ChatFlows {
        &self.flows
    }

    async fn request_line(&self) -> Request {
        let ada = &self.world.ada;
        self.post(&message_activity(&self.ctx(ada), "esim request"))
            .await;
        let form = self
            .wait_for_post_to(ada, |c| {
                c.card()
                    .is_some_and(|card| card.to_string().contains("esim.request"))
            })
            .await;
        let card = form.card().unwrap().clone();
        let submit = card["body"].as_array().unwrap().last().unwrap()["actions"][0].clone();
        let mut data = submit["data"].clone();
        data["plan"] = json!(self.world.plans[0].id.to_string());
        data["reason"] = json!("on-call phone");
        data["wanted_date"] = json!("");
        let verb = submit["verb"].as_str().unwrap().to_owned();
        let answer = self
            .post(&invoke_action_activity(
                &self.ctx(ada),
                &verb,
                data,
                "1700000000002",
            ))
            .await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let requests = self
            .world
            .lineup
            .requests_of(self.world.tenant, ada.id)
            .await
            .unwrap();
        requests.into_iter().next().expect("the request was stored")
    }

    async fn approval_cards_for(&self, who: &Employee, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self
            .posts_to(who)
            .iter()
            .filter(|c| {
                c.card()
                    .is_some_and(|card| card.to_string().contains(cards::APPROVE))
            })
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
        told(&self.post(&self.click_activity(who, action, value)).await)
    }

    async fn replayed_click(
        &self,
        who: &Employee,
        action: &str,
        value: &str,
    ) -> (Option<String>, Option<String>) {
        let activity = self.click_activity(who, action, value);
        let first = told(&self.post(&activity).await);
        let second =
            told(&self.post(&activity).await).filter(|t| t.contains("only the request's approver"));
        (first, second)
    }

    async fn deny(&self, who: &Employee, request: RequestId, reason: &str) {
        self.post(&self.click_activity(who, cards::DENY, &request.to_string()))
            .await;
        let form = self
            .wait_for_post_to(who, |c| {
                c.card()
                    .is_some_and(|card| card.to_string().contains("esim.deny_reason"))
            })
            .await;
        let card = form.card().unwrap().clone();
        let submit = card["body"].as_array().unwrap().last().unwrap()["actions"][0].clone();
        let mut data = submit["data"].clone();
        data["deny_reason"] = json!(reason);
        let verb = submit["verb"].as_str().unwrap().to_owned();
        self.post(&invoke_action_activity(
            &self.ctx(who),
            &verb,
            data,
            "1700000000003",
        ))
        .await;
    }

    async fn direct_message_contains(&self, who: &Employee, text: &str) {
        self.wait_for_post_to(who, |c| c.body.to_string().contains(text))
            .await;
    }

    async fn qr_received(&self, who: &Employee) {
        self.wait_for_post_to(who, |c| {
            c.body.to_string().contains("data:image/png;base64,")
        })
        .await;
    }

    async fn forged_request_status(&self) -> u16 {
        let mut claims = TokenClaims::new(APP_ID, &self.fake.service_url());
        claims.attacker_key = true;
        let activity = self.click_activity(&self.world.maria, cards::APPROVE, "x");
        self.post_with(&activity, &sign_activity_token(&claims))
            .await
            .status()
            .as_u16()
    }

    async fn stranger_clicks_approve(&self, request: RequestId) -> Option<String> {
        let globex = add_tenant(&self.world.lineup, "globex").await;
        let mallory = add_employee(&self.world.lineup, globex, "mallory", None).await;
        let other = "11111111-2222-3333-4444-555555555555";
        self.world
            .lineup
            .install_workspace(globex, &Actor::System, Platform::Teams, other, None, "")
            .await
            .unwrap();
        self.world
            .lineup
            .link_chat_user(globex, mallory.id, Platform::Teams, "29:1mallory")
            .await
            .unwrap();
        let ctx = ActivityCtx::personal(&self.fake.service_url(), other, APP_ID, "29:1mallory");
        let activity = invoke_action_activity(
            &ctx,
            cards::APPROVE,
            json!({"action": cards::APPROVE, "value": request.to_string()}),
            "1",
        );
        told(&self.post(&activity).await)
    }

    fn violations(&self) -> Vec<String> {
        self.fake
            .violations()
            .into_iter()
            .map(|v| format!("{}: {:?}", v.op, v.problems))
            .collect()
    }
}
