//! The admin portal served over a real socket for tests, and a small browser: it keeps
//! cookies per host, follows nothing on its own, and echoes the last page's CSRF token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use lineup_core::email_address::Email;
use lineup_core::identity::user::Role;
use lineup_core::ids::TenantId;
use lineup_core::organisation::employee::Employee;
use lineup_portal::{Portal, PortalConfig, portal_router};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::TestStore;
use crate::world::{ADMIN, World, add_employee, add_tenant};

/// Every portal test user signs in with this.
pub const PASSWORD: &str = "a long test password";
/// Tenants live under this domain in tests: `acme.lineup.test`.
pub const BASE_DOMAIN: &str = "lineup.test";

/// The [`World`] company (tenant `acme`) with a portal user for every role, a second tenant
/// `globex` with its own owner, and the portal listening on a loopback port.
///
/// Acme's users: olivia (owner), fiona (finance), maria (manager of ada and alan),
/// `admin@example.com` (admin), `viewer@example.com` (viewer). Globex's owner is
/// `owner@globex.example`, and globex has one employee, `gina@example.com`.
pub struct PortalWorld {
    pub world: World,
    pub portal: Portal,
    pub addr: SocketAddr,
    pub globex: TenantId,
    pub gina: Employee,
}

impl std::ops::Deref for PortalWorld {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl PortalWorld {
    pub async fn new(store: TestStore) -> Self {
        let world = World::new(store).await;
        let lineup = &world.lineup;
        let tenant = world.tenant;
        lineup
            .add_user(
                tenant,
                &ADMIN,
                &world.maria.email,
                "Maria Tester",
                PASSWORD,
                Role::Manager,
                Some(world.maria.id),
            )
            .await
            .unwrap();
        for (email, role) in [
            ("admin@example.com", Role::Admin),
            ("viewer@example.com", Role::Viewer),
        ] {
            let email = Email::parse(email).unwrap();
            lineup
                .add_user(tenant, &ADMIN, &email, role.as_str(), PASSWORD, role, None)
                .await
                .unwrap();
        }
        let globex = add_tenant(lineup, "globex").await;
        let owner = Email::parse("owner@globex.example").unwrap();
        lineup
            .add_user(
                globex,
                &ADMIN,
                &owner,
                "Globex Owner",
                PASSWORD,
                Role::Owner,
                None,
            )
            .await
            .unwrap();
        let gina = add_employee(lineup, globex, "gina", None).await;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{BASE_DOMAIN}:{}", addr.port());
        let portal = Portal::new(lineup.clone(), PortalConfig::new(base.parse().unwrap()));
        let app = portal_router(portal.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            world,
            portal,
            addr,
            globex,
            gina,
        }
    }

    /// A fresh browser (no cookies) pointed at `host`, e.g. `acme.lineup.test`.
    pub fn browser(&self, host: &str) -> Browser {
        Browser::new(host, self.addr)
    }

    /// A browser on acme's portal signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let browser = self.browser(&format!("acme.{BASE_DOMAIN}"));
        browser.sign_in(email, PASSWORD).await;
        browser
    }

    /// The email of acme's user holding `role`.
    pub fn email_for(&self, role: Role) -> String {
        match role {
            Role::Owner => self.olivia.email.to_string(),
            Role::Finance => self.fiona.email.to_string(),
            Role::Manager => self.maria.email.to_string(),
            Role::Admin => "admin@example.com".to_owned(),
            Role::Viewer => "viewer@example.com".to_owned(),
        }
    }
}

/// One answer: status, headers and the body as text.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "expected {needle:?} in the page ({}):\n{}",
            self.status,
            self.body
        );
        self
    }
}

/// Where an upload carries its CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadToken {
    /// The `X-CSRF-Token` header.
    Header,
    /// A `_csrf` field before the file, as the portal's upload form sends it.
    FirstField,
    /// `?_csrf=` in the URL (refused: URLs end up in logs and history).
    Query,
}

pub struct Browser {
    client: reqwest::Client,
    origin: String,
    cookies: Mutex<BTreeMap<String, String>>,
    csrf: Mutex<Option<String>>,
}

impl Browser {
    pub fn new(host: &str, addr: SocketAddr) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, addr)
            .build()
            .unwrap();
        Self {
            client,
            origin: format!("http://{host}:{}", addr.port()),
            cookies: Mutex::default(),
            csrf: Mutex::default(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Present `value` as cookie `name` from now on (to replay one browser's session in
    /// another).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    /// The CSRF token of the last page that had a form.
    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }

    pub async fn get(&self, path: &str) -> Response {
        let request = self.client.get(format!("{}{path}", self.origin));
        self.send(request).await
    }

    /// Submit a form, adding the `_csrf` token of the last page seen.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf();
        if let Some(token) = &csrf
            && !fields.iter().any(|(k, _)| *k == "_csrf")
        {
            fields.push(("_csrf", token));
        }
        let body = serde_urlencoded::to_string(&fields).unwrap();
        let request = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Upload a file as `multipart/form-data` with extra text fields; the CSRF token goes
    /// in the `X-CSRF-Token` header.
    pub async fn upload(
        &self,
        path: &str,
        file_field: &str,
        filename: &str,
        content: &[u8],
        fields: &[(&str, &str)],
    ) -> Response {
        self.upload_with(
            UploadToken::Header,
            path,
            file_field,
            filename,
            content,
            fields,
        )
        .await
    }

    /// [`Browser::upload`], with the CSRF token carried as `token` says.
    pub async fn upload_with(
        &self,
        token: UploadToken,
        path: &str,
        file_field: &str,
        filename: &str,
        content: &[u8],
        fields: &[(&str, &str)],
    ) -> Response {
        let boundary = "lineup-test-boundary-7d1f3c";
        let csrf = self.csrf().unwrap_or_default();
        let mut fields = fields.to_vec();
        if token == UploadToken::FirstField {
            fields.insert(0, ("_csrf", csrf.as_str()));
        }
        let mut path = path.to_owned();
        if token == UploadToken::Query {
            path = format!("{path}?_csrf={csrf}");
        }
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{file_field}\"; \
                 filename=\"{filename}\"\r\ncontent-type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut request = self
            .client
            .post(format!("{}{path}", self.origin))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if token == UploadToken::Header {
            request = request.header("x-csrf-token", csrf);
        }
        self.send(request).await
    }

    /// Sign in through the login form; panics unless it succeeds.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.get("/login").await.assert_ok();
        let answer = self
            .post(
                "/login",
                &[("email", email), ("password", password), ("next", "/")],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "signing in as {email} failed: {}",
            answer.body
        );
        // Load a page so the session's CSRF token is known.
        self.get("/").await.assert_ok();
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let cookie_header = {
            let cookies = self.cookies.lock().unwrap();
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let request = if cookie_header.is_empty() {
            request
        } else {
            request.header("cookie", cookie_header)
        };
        let answer = request.send().await.expect("the portal answers");
        let status = answer.status();
        let headers = answer.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let Some((pair, attributes)) = value
                .to_str()
                .ok()
                .map(|v| v.split_once(';').unwrap_or((v, "")))
            else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let mut cookies = self.cookies.lock().unwrap();
            if attributes.contains("Max-Age=0") {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let body = answer.text().await.unwrap_or_default();
        if let Some(token) = csrf_in(&body) {
            *self.csrf.lock().unwrap() = Some(token);
        }
        Response {
            status,
            headers,
            body,
        }
    }
}

fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl PortalWorld {
    /// Deliver every queued email through `smtp` now (what the worker does every tick).
    pub async fn deliver_mail(
        &self,
        smtp: &crate::fake_smtp::FakeSmtp,
    ) -> lineup_core::messaging::outgoing_email::DeliveryReport {
        self.lineup
            .deliver_due_emails(&smtp.mailer(), lineup_core::store::now())
            .await
            .unwrap()
    }

    /// Serve the same tenants from a second portal, changed by `customize` (a mailer, a DNS
    /// resolver…), on its own loopback port.
    pub async fn serve_another(&self, customize: impl FnOnce(Portal) -> Portal) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{BASE_DOMAIN}:{}", addr.port());
        let portal = customize(Portal::new(
            self.lineup.clone(),
            PortalConfig::new(base.parse().unwrap()),
        ));
        let app = portal_router(portal).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// The portal user with this email.
    pub async fn user_id(&self, email: &str) -> lineup_core::ids::UserId {
        let mut tx = self.store.system().await.unwrap();
        lineup_core::store::users::find_by_email(&mut tx, email)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {email}"))
            .id
    }

    /// Make every emailed link of every tenant expire now, as if its time had passed.
    pub async fn expire_links(&self) {
        let past = lineup_core::store::now() - time::Duration::seconds(1);
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query("UPDATE user_tokens SET expires_at = $1")
                    .bind(past)
                    .execute(&mut **t)
                    .await
                    .unwrap();
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query("UPDATE user_tokens SET expires_at = $1")
                    .bind(past)
                    .execute(&mut **t)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    /// Make every session of every tenant expire now, as if its time had passed.
    pub async fn expire_sessions(&self) {
        let past = lineup_core::store::now() - time::Duration::seconds(1);
        let sql = "UPDATE sessions SET expires_at = $1";
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query(sql).bind(past).execute(&mut **t).await.unwrap();
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query(sql).bind(past).execute(&mut **t).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    /// How many session rows are stored, expired or not, across every tenant.
    pub async fn stored_sessions(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM sessions";
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query_scalar(sql).fetch_one(&mut **t).await.unwrap()
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query_scalar(sql).fetch_one(&mut **t).await.unwrap()
            }
        }
    }

    /// How many chat installations, of any tenant, still hold a (sealed) bot token.
    pub async fn stored_chat_tokens(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM chat_installations WHERE bot_token_encrypted IS NOT NULL";
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query_scalar(sql).fetch_one(&mut **t).await.unwrap()
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query_scalar(sql).fetch_one(&mut **t).await.unwrap()
            }
        }
    }

    /// Make every chat link code of every tenant an hour and a second old.
    pub async fn age_chat_link_codes(&self) {
        let past = lineup_core::store::now() - time::Duration::seconds(3601);
        let sql = "UPDATE chat_link_codes SET expires_at = $1";
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query(sql).bind(past).execute(&mut **t).await.unwrap();
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query(sql).bind(past).execute(&mut **t).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    /// Make every unverified custom-domain claim of every tenant `days` old.
    pub async fn age_domain_claims(&self, days: i64) {
        let claimed = lineup_core::store::now() - time::Duration::days(days);
        let sql = "UPDATE tenant_domains SET created_at = $1 WHERE verified_at IS NULL";
        let mut tx = self.store.system().await.unwrap();
        match &mut tx {
            lineup_core::store::Tx::Sqlite(t) => {
                sqlx::query(sql)
                    .bind(claimed)
                    .execute(&mut **t)
                    .await
                    .unwrap();
            }
            lineup_core::store::Tx::Postgres(t) => {
                sqlx::query(sql)
                    .bind(claimed)
                    .execute(&mut **t)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    /// The actions recorded in `tenant`'s audit log about one subject, oldest first.
    pub async fn audit_in(
        &self,
        tenant: TenantId,
        subject_type: &str,
        subject_id: &str,
    ) -> Vec<String> {
        let mut tx = self.store.tenant(tenant).await.unwrap();
        lineup_core::store::audit::list_for_subject(&mut tx, tenant, subject_type, subject_id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

impl Browser {
    /// Follow a link from an email (an absolute URL on this browser's host): its path only.
    pub async fn open_link(&self, link: &str) -> Response {
        let path = link
            .strip_prefix(&self.origin)
            .unwrap_or_else(|| panic!("{link} is not on {}", self.origin));
        self.get(path).await
    }
}

/// DNS as a test wants it: TXT records set by hand, so domain verification can be forced.
#[derive(Default)]
pub struct FakeDns {
    records: Mutex<BTreeMap<String, Vec<String>>>,
}

impl FakeDns {
    pub fn set_txt(&self, name: &str, value: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
    }
}

#[async_trait::async_trait]
impl lineup_core::organisation::custom_domain::TxtResolver for FakeDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default())
    }
}

/// The value of the form field `name` (a hidden input, or any `<input>`) in a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl Response {
    /// Where a redirect goes, panicking unless this is one.
    #[track_caller]
    pub fn redirected_to(&self) -> &str {
        assert!(
            self.status.is_redirection(),
            "expected a redirect, got {}: {}",
            self.status,
            self.body
        );
        self.location().expect("a redirect has a Location")
    }
}

/// Make the simulator's next order of `order_type` (e.g. `activate_subscription`,
/// `suspend_subscription`) be accepted and then cancelled with `code`.
pub async fn fail_next_order(world: &World, order_type: &str, code: &str) {
    world
        .sim(
            reqwest::Method::POST,
            "/_sim/faults",
            Some(serde_json::json!({
                "match": {"order_type": order_type},
                "action": {"cancel_with": code},
                "times": 1
            })),
        )
        .await;
}

/// A five-minute data session `ago` before now on `line`, in `country` (roaming anywhere but
/// the US), as the provider reports usage: feed it to `Lineup::record_usage`.
pub fn usage_record(
    line: &lineup_core::lines::line::Line,
    key: &str,
    ago: std::time::Duration,
    bytes: i64,
    country: &str,
) -> lineup_core::provider::UsageRecord {
    use lineup_core::provider::{Roaming, UsageRecord};
    let at = lineup_core::store::now() - ago;
    UsageRecord {
        dedupe_key: key.into(),
        subscription_id: line
            .provider_subscription_id
            .clone()
            .expect("an issued line has a subscription"),
        started_at: at,
        ended_at: at + std::time::Duration::from_secs(300),
        data_bytes: bytes,
        sms: 0,
        voice_seconds: 0,
        country: Some(country.into()),
        roaming: if country == "US" {
            Roaming::None
        } else {
            Roaming::International
        },
        in_bundle: None,
        observed_at: at,
    }
}

/// A monthly budget cap on one employee: `amount_minor`, alerting at `thresholds` (and at the
/// cap), applying `action` when reached.
pub async fn cap_employee(
    world: &World,
    employee: &Employee,
    amount_minor: i64,
    thresholds: Vec<u8>,
    action: lineup_core::spend::policy::CapAction,
) {
    use lineup_core::spend::policy::{BudgetCap, CapScope};
    world
        .lineup
        .set_budget_cap(
            world.tenant,
            &ADMIN,
            BudgetCap {
                scope: CapScope::Employee(employee.id),
                amount_minor,
                thresholds,
                action,
            },
        )
        .await
        .unwrap();
}

/// An employee CSV with every kind of defect at once, for the import tests: a byte-order
/// mark, CRLF line ends, no last-name column, a bad email (row 3), a duplicate differing only
/// in case (row 5), an unknown manager (row 6), a loop inside the file (rows 7 and 8), a loop
/// through an existing employee (row 10: Ada reports to Maria), and a quoted value with a
/// comma and a line break inside that is itself fine (row 9).
pub const EMPLOYEE_CSV_WITH_EVERY_DEFECT: &str = "\u{FEFF}Work Email,Given Name,Department,Cost Centre,Supervisor Email\r\n\
    good@example.com,Good,Sales,CC-1,olivia@example.com\r\n\
    not-an-email,Bad,Sales,CC-1,\r\n\
    dup@example.com,Dup,Sales,CC-1,\r\n\
    DUP@example.com,Dup again,Sales,CC-1,\r\n\
    orphan@example.com,Orphan,Sales,CC-1,ghost@example.com\r\n\
    loop1@example.com,Loop,Ops,CC-2,loop2@example.com\r\n\
    loop2@example.com,Loop,Ops,CC-2,loop1@example.com\r\n\
    quoted@example.com,\"Mary, Ann\",\"Research\r\nand Development\",CC-3,\r\n\
    maria@example.com,Maria,Ops,CC-2,ada@example.com\r\n";
