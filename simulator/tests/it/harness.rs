//! One simulator per test, and the calls tests make to it.

use std::time::Duration;

use lineup_simulator::{Credentials, RunningSimulator, SimConfig, TOKEN_PATH, spawn};
use serde_json::{Value, json};

pub struct Harness {
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
    pub token: String,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::for_tests()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let sim = spawn(
            "127.0.0.1:0".parse().unwrap(),
            config,
            Credentials::default(),
        )
        .await
        .expect("simulator starts");
        // No pooling: a connection the simulator drops on purpose must not be reused.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut harness = Self {
            sim,
            http,
            token: String::new(),
        };
        harness.token = harness.issue_token().await;
        harness
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn issue_token(&self) -> String {
        let credentials = Credentials::default();
        self.token_for(&credentials.client_id, &credentials.client_secret)
            .await
    }

    /// The token endpoint's answer for these client credentials.
    pub async fn request_token(&self, client_id: &str, client_secret: &str) -> reqwest::Response {
        self.http
            .post(self.url(TOKEN_PATH))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn token_for(&self, client_id: &str, client_secret: &str) -> String {
        let response = self.request_token(client_id, client_secret).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `GET` with another client's token.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json_as(&self, token: &str, path: &str) -> Value {
        let response = self.get_as(token, path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// `POST` with another client's token.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn configure(&self, patch: Value) {
        self.control(reqwest::Method::PUT, "/_sim/config", Some(patch))
            .await;
    }

    pub async fn template_id(&self, plan_name: &str) -> String {
        let fixtures = self
            .control(reqwest::Method::GET, "/_sim/fixtures", None)
            .await;
        let offering_id = fixtures["product_offerings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == plan_name)
            .expect("plan exists")["id"]
            .clone();
        fixtures["order_templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["product_offering_ids"][0] == offering_id)
            .expect("template exists")["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn activation_body(&self, template_id: &str, email: &str) -> Value {
        json!({
            "type": "activate_subscription",
            "account_id": self.sim.account_id(),
            "template_id": template_id,
            "subscriber": {"first_name": "Grace", "last_name": "Hopper", "email": email},
            "sim_profile": {"sim_type": "esim", "delivery": {"type": "api"}},
        })
    }

    /// Places an order and returns its JSON (202 expected).
    pub async fn place_order(&self, body: &Value) -> Value {
        let response = self.post("/enterprise/orders", body).send().await.unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    pub async fn wait_for_order(&self, order_id: &str) -> Value {
        for _ in 0..200 {
            let order = self
                .get_json(&format!("/enterprise/orders/{order_id}"))
                .await;
            if order["status"] != "pending" {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("order {order_id} never settled");
    }

    /// Activates a line on the given plan and returns its subscription id once active.
    pub async fn active_line(&self, plan_name: &str, email: &str) -> String {
        let template_id = self.template_id(plan_name).await;
        let order = self
            .place_order(&self.activation_body(&template_id, email))
            .await;
        let order = self.wait_for_order(order["id"].as_str().unwrap()).await;
        assert_eq!(order["status"], "completed", "{order}");
        order["subscription_id"].as_str().unwrap().to_string()
    }

    pub async fn change_line(&self, kind: &str, subscription_id: &str) -> reqwest::Response {
        let body = json!({"type": kind, "account_id": self.sim.account_id(), "subscription_id": subscription_id});
        self.post("/enterprise/orders", &body).send().await.unwrap()
    }
}
