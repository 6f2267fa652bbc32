//! The Gigs personality under `/gigs`: a static API key per project, subscriptions that go
//! `pending → active` and announce it with signed `com.gigs.*` events, idempotent writes,
//! daily usage aggregates labelled by country and roaming, and porting in and out.
//!
//! Names marked [ext] are the simulator's where Gigs' own are not public.
use std::collections::BTreeMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};

use crate::accounts::Caller;
use crate::clock::{parse_date, rfc3339, rfc3339_opt};
use crate::idempotency;
use crate::ids::IdGen;
use crate::state::{Sim, State as SimState};
use crate::webhooks::DeliveryTarget;

/// The demo project and its API key.
pub const GIGS_PROJECT: &str = "lineup-demo";
pub const GIGS_API_KEY: &str = "gigs_test_lineup_demo";
/// How long a port-out authorisation code stays valid.
const PORT_OUT_VALIDITY: Duration = Duration::days(30);
const MAX_PAGE: usize = 200;

struct Plan {
    id: &'static str,
    name: &'static str,
    data_bytes: Option<i64>,
    countries: &'static [&'static str],
    price_cents: i64,
}

const GIB: i64 = 1024 * 1024 * 1024;

const PLANS: [Plan; 3] = [
    Plan {
        id: "pln_us_5gb",
        name: "US 5 GB",
        data_bytes: Some(5 * GIB),
        countries: &["US"],
        price_cents: 1500,
    },
    Plan {
        id: "pln_us_unlimited",
        name: "US Unlimited",
        data_bytes: None,
        countries: &["US"],
        price_cents: 4000,
    },
    Plan {
        id: "pln_na_10gb",
        name: "North America 10 GB",
        data_bytes: Some(10 * GIB),
        countries: &["US", "CA", "MX"],
        price_cents: 2500,
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Active,
    Ended,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }
}

struct Subscription {
    id: String,
    status: Status,
    plan: &'static str,
    user: String,
    sim_id: String,
    iccid: String,
    matching_id: String,
    phone_number: String,
    metadata: Value,
    created_at: OffsetDateTime,
    activate_at: OffsetDateTime,
    activated_at: Option<OffsetDateTime>,
    ended_at: Option<OffsetDateTime>,
    /// Usage thresholds (percent of the plan's data) already announced.
    thresholds_sent: Vec<u8>,
}

/// A plan change or a porting: applied once its due time has passed.
struct Pending {
    id: String,
    kind: PendingKind,
    subscription: String,
    status: &'static str,
    due_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

enum PendingKind {
    Change { plan: &'static str },
    Porting { phone_number: String },
}

/// Daily usage of one subscription in one country with one roaming label.
struct UsageDay {
    data: i64,
    updated_at: OffsetDateTime,
}

type UsageKey = (String, Date, String, &'static str);

/// Everything the Gigs personality knows; not written to state files.
pub struct GigsWorld {
    ids: IdGen,
    users: BTreeMap<String, (String, String)>,
    subscriptions: BTreeMap<String, Subscription>,
    pending: BTreeMap<String, Pending>,
    usage: BTreeMap<UsageKey, UsageDay>,
    /// [ext] Webhook endpoints: (url, signing secret).
    endpoints: Vec<(String, String)>,
}

impl GigsWorld {
    pub fn new(seed: u64) -> Self {
        Self {
            ids: IdGen::new(seed ^ 0x6166_5000),
            users: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            pending: BTreeMap::new(),
            usage: BTreeMap::new(),
            endpoints: Vec::new(),
        }
    }
}

pub fn routes(sim: Sim) -> Router<Sim> {
    let project = Router::new()
        .route("/plans", get(list_plans))
        .route("/users", get(find_users).post(create_user))
        .route(
            "/subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route("/subscriptions/{id}", get(get_subscription))
        .route("/subscriptions/{id}/end", post(end_subscription))
        .route(
            "/subscriptions/{id}/portOutAuthorizations",
            post(authorise_port_out),
        )
        .route("/subscriptionChanges", post(change_plan))
        .route("/subscriptionChanges/{id}", get(get_pending))
        .route("/portings", post(port_in))
        .route("/portings/{id}", get(get_pending))
        .route("/sims/{id}/credentials", get(sim_credentials))
        .route("/usage", get(list_usage))
        .route("/webhookEndpoints", post(add_endpoint))
        // Route layers, so the project in the path is known; authenticate runs first.
        .route_layer(from_fn_with_state(sim.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(sim, authenticate));
    Router::new().nest("/projects/{project}", project)
}

/// `/_sim/gigs/…`: what the tests drive by hand.
pub fn control_routes() -> Router<Sim> {
    Router::new().route("/subscriptions/{id}/usage", post(inject_usage))
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"object": "error", "type": kind, "message": message.into()});
    (status, Json(body)).into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("{what} {id} does not exist"),
    )
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "invalidRequest", message)
}

/// The bearer must be the project's API key; the project in the path must exist.
async fn authenticate(
    State(_sim): State<Sim>,
    Path(params): Path<BTreeMap<String, String>>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if bearer != Some(GIGS_API_KEY) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the API key is missing or invalid",
        );
    }
    let project = params.get("project").map(String::as_str).unwrap_or("");
    if project != GIGS_PROJECT {
        return not_found("project", project);
    }
    // The shared idempotency layer keys its records by caller.
    request.extensions_mut().insert(Caller {
        client_id: format!("gigs:{project}"),
        account_id: project.to_string(),
    });
    next.run(request).await
}

fn plan_json(plan: &Plan) -> Value {
    json!({
        "object": "plan",
        "id": plan.id,
        "name": plan.name,
        "status": "available",
        "allowances": {"dataBytes": plan.data_bytes, "voiceSeconds": 0, "smsMessages": 0},
        "coverage": {"countries": plan.countries},
        "price": {"amount": plan.price_cents, "currency": "USD"},
        "validity": {"unit": "month", "value": 1},
    })
}

fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|plan| plan.id == id)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
    email: Option<String>,
    subscription: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

/// A Gigs list: items after the cursor, and the last id when more follow.
fn list(items: Vec<(String, Value)>, query: &ListQuery) -> Response {
    let limit = query.limit.unwrap_or(10).clamp(1, MAX_PAGE);
    let start = query
        .after
        .as_ref()
        .map_or(0, |after| items.partition_point(|(id, _)| id <= after));
    let page: Vec<&(String, Value)> = items.iter().skip(start).take(limit).collect();
    let more = start + page.len() < items.len();
    let after = page.last().filter(|_| more).map(|(id, _)| id.clone());
    let body = json!({
        "object": "list",
        "items": page.iter().map(|(_, item)| item).collect::<Vec<_>>(),
        "moreItemsAfter": after,
        "moreItemsBefore": null,
    });
    Json(body).into_response()
}

async fn list_plans(Query(query): Query<ListQuery>) -> Response {
    let items = PLANS
        .iter()
        .map(|plan| (plan.id.to_string(), plan_json(plan)))
        .collect();
    list(items, &query)
}

fn user_json(id: &str, (email, name): &(String, String)) -> Value {
    json!({"object": "user", "id": id, "email": email, "fullName": name})
}

async fn find_users(State(sim): State<Sim>, Query(query): Query<ListQuery>) -> Response {
    let state = sim.lock();
    let items = state
        .gigs
        .users
        .iter()
        .filter(|(_, (email, _))| query.email.as_ref().is_none_or(|wanted| wanted == email))
        .map(|(id, user)| (id.clone(), user_json(id, user)))
        .collect();
    list(items, &query)
}

async fn create_user(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(email) = body["email"].as_str().filter(|e| e.contains('@')) else {
        return invalid("email must be an e-mail address");
    };
    let name = body["fullName"].as_str().unwrap_or_default().to_string();
    let mut state = sim.lock();
    if state.gigs.users.values().any(|(taken, _)| taken == email) {
        return error(
            StatusCode::CONFLICT,
            "userEmailTaken",
            format!("a user with the email {email} exists"),
        );
    }
    let id = state.gigs.ids.next("usr");
    let user = (email.to_string(), name);
    let json = user_json(&id, &user);
    state.gigs.users.insert(id, user);
    (StatusCode::CREATED, Json(json)).into_response()
}

impl Subscription {
    fn to_json(&self, smdp: &str) -> Value {
        json!({
            "object": "subscription",
            "id": self.id,
            "status": self.status.as_str(),
            "plan": self.plan,
            "user": self.user,
            "sim": {
                "object": "sim",
                "id": self.sim_id,
                "iccid": self.iccid,
                "type": "eSIM",
                "status": match self.status {
                    Status::Pending => "inactive",
                    Status::Active => "active",
                    Status::Ended => "retired",
                },
                "smdp": smdp,
            },
            "phoneNumber": self.phone_number,
            "metadata": self.metadata,
            "createdAt": rfc3339(self.created_at),
            "activatedAt": rfc3339_opt(self.activated_at),
            "endedAt": rfc3339_opt(self.ended_at),
        })
    }
}

async fn create_subscription(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(plan) = body["plan"].as_str().and_then(plan) else {
        return invalid("plan must name an available plan");
    };
    let Some(user) = body["user"].as_str() else {
        return invalid("user is required");
    };
    let mut state = sim.lock();
    if !state.gigs.users.contains_key(user) {
        return not_found("user", user);
    }
    let now = state.now();
    let delay = state.pick_order_delay();
    let world = &mut state.gigs;
    let subscription = Subscription {
        id: world.ids.next("sub"),
        status: Status::Pending,
        plan: plan.id,
        user: user.to_string(),
        sim_id: world.ids.next("sim"),
        iccid: world.ids.iccid(),
        matching_id: world.ids.matching_id(),
        phone_number: format!("+1555{}", world.ids.digits(7)),
        metadata: body.get("metadata").cloned().unwrap_or_else(|| json!({})),
        created_at: now,
        activate_at: now + delay,
        activated_at: None,
        ended_at: None,
        thresholds_sent: Vec::new(),
    };
    let json = subscription.to_json(&state.config.smdp_address);
    state
        .gigs
        .subscriptions
        .insert(subscription.id.clone(), subscription);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn list_subscriptions(State(sim): State<Sim>, Query(query): Query<ListQuery>) -> Response {
    let state = sim.lock();
    let smdp = &state.config.smdp_address;
    let items = state
        .gigs
        .subscriptions
        .values()
        .map(|sub| (sub.id.clone(), sub.to_json(smdp)))
        .collect();
    list(items, &query)
}

async fn get_subscription(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let state = sim.lock();
    match state.gigs.subscriptions.get(&id) {
        Some(sub) => Json(sub.to_json(&state.config.smdp_address)).into_response(),
        None => not_found("subscription", &id),
    }
}

async fn end_subscription(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    let now = state.now();
    let smdp = state.config.smdp_address.clone();
    let Some(sub) = state.gigs.subscriptions.get_mut(&id) else {
        return not_found("subscription", &id);
    };
    if sub.status == Status::Ended {
        return error(
            StatusCode::CONFLICT,
            "subscriptionEnded",
            "the subscription has already ended",
        );
    }
    sub.status = Status::Ended;
    sub.ended_at = Some(now);
    let json = sub.to_json(&smdp);
    state.gigs_event("com.gigs.subscription.ended", json.clone());
    Json(json).into_response()
}

async fn authorise_port_out(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    let now = state.now();
    let code = state.gigs.ids.digits(8);
    let Some(sub) = state.gigs.subscriptions.get(&id) else {
        return not_found("subscription", &id);
    };
    if sub.status != Status::Active {
        return error(
            StatusCode::CONFLICT,
            "subscriptionNotActive",
            "only an active subscription's number can be ported out",
        );
    }
    let body = json!({
        "object": "portOutAuthorization",
        "subscription": sub.id,
        "phoneNumber": sub.phone_number,
        "code": code,
        "expiresAt": rfc3339(now + PORT_OUT_VALIDITY),
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

impl Pending {
    fn to_json(&self) -> Value {
        let (object, extra) = match &self.kind {
            PendingKind::Change { plan } => ("subscriptionChange", json!({"plan": plan})),
            PendingKind::Porting { phone_number } => {
                ("porting", json!({"phoneNumber": phone_number}))
            }
        };
        let mut body = json!({
            "object": object,
            "id": self.id,
            "subscription": self.subscription,
            "status": self.status,
            "createdAt": rfc3339(self.created_at),
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }
}

/// Queues a plan change or a porting against an active or pending subscription.
fn queue_pending(
    sim: &Sim,
    prefix: &str,
    subscription: Option<&str>,
    kind: PendingKind,
) -> Response {
    let Some(subscription) = subscription else {
        return invalid("subscription is required");
    };
    let mut state = sim.lock();
    let live = state
        .gigs
        .subscriptions
        .get(subscription)
        .map(|sub| sub.status != Status::Ended);
    match live {
        None => return not_found("subscription", subscription),
        Some(false) => {
            return error(
                StatusCode::CONFLICT,
                "subscriptionEnded",
                "the subscription has ended",
            );
        }
        Some(true) => {}
    }
    let now = state.now();
    let delay = state.pick_order_delay();
    let pending = Pending {
        id: state.gigs.ids.next(prefix),
        kind,
        subscription: subscription.to_string(),
        status: "pending",
        due_at: now + delay,
        created_at: now,
    };
    let json = pending.to_json();
    state.gigs.pending.insert(pending.id.clone(), pending);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn change_plan(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(plan) = body["plan"].as_str().and_then(plan) else {
        return invalid("plan must name an available plan");
    };
    let kind = PendingKind::Change { plan: plan.id };
    queue_pending(&sim, "sch", body["subscription"].as_str(), kind)
}

async fn port_in(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(number) = body["phoneNumber"].as_str().filter(|n| {
        n.starts_with('+') && n.len() > 8 && n[1..].bytes().all(|b| b.is_ascii_digit())
    }) else {
        return invalid("phoneNumber must be an E.164 number");
    };
    if body["accountNumber"].as_str().is_none_or(str::is_empty) {
        return invalid("accountNumber (the donor carrier's account) is required");
    }
    let kind = PendingKind::Porting {
        phone_number: number.to_string(),
    };
    queue_pending(&sim, "prt", body["subscription"].as_str(), kind)
}

async fn get_pending(State(sim): State<Sim>, Path((_, id)): Path<(String, String)>) -> Response {
    let state = sim.lock();
    match state.gigs.pending.get(&id) {
        Some(pending) => Json(pending.to_json()).into_response(),
        None => not_found("operation", &id),
    }
}

async fn sim_credentials(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let state = sim.lock();
    let Some(sub) = state.gigs.subscriptions.values().find(|s| s.sim_id == id) else {
        return not_found("sim", &id);
    };
    let code = format!("LPA:1${}${}", state.config.smdp_address, sub.matching_id);
    Json(json!({
        "object": "simCredentials",
        "sim": sub.sim_id,
        "iccid": sub.iccid,
        "activationCode": code,
        "qrCodeUrl": format!("{}/_sim/qr/{}.png", sim.base_url(), sub.iccid),
        "eSimProfile": {"status": if sub.status == Status::Ended { "deleted" } else { "unknown" }},
    }))
    .into_response()
}

async fn list_usage(State(sim): State<Sim>, Query(query): Query<ListQuery>) -> Response {
    let dates = [&query.start, &query.end].map(|d| d.as_deref().map(parse_date));
    let [start, end] = match dates {
        [Some(None), _] | [_, Some(None)] => return invalid("start and end are YYYY-MM-DD"),
        [start, end] => [start.flatten(), end.flatten()],
    };
    let state = sim.lock();
    let items = state
        .gigs
        .usage
        .iter()
        .filter(|((sub, day, _, _), _)| {
            query
                .subscription
                .as_ref()
                .is_none_or(|wanted| wanted == sub)
                && start.is_none_or(|start| *day >= start)
                && end.is_none_or(|end| *day <= end)
        })
        .map(|((sub, day, country, roaming), usage)| {
            let start = day.midnight().assume_utc();
            let record = json!({
                "object": "usageRecord",
                "data": usage.data,
                "dataDeviceBytes": usage.data,
                "dataTetheringBytes": 0,
                "sms": 0,
                "voice": 0,
                "start": rfc3339(start),
                "end": rfc3339(start + Duration::days(1)),
                "updatedAt": rfc3339(usage.updated_at),
                "labels": {"country": country, "roaming": roaming, "subscription": sub},
            });
            (format!("{sub}|{day}|{country}|{roaming}"), record)
        })
        .collect();
    list(items, &query)
}

async fn add_endpoint(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(url) = body["url"]
        .as_str()
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
    else {
        return invalid("url must be an http(s) URL");
    };
    let mut state = sim.lock();
    let secret = match body["secret"].as_str() {
        Some(secret) if !secret.is_empty() => secret.to_string(),
        _ => format!("whsec_{}", state.gigs.ids.digits(32)),
    };
    let id = state.gigs.ids.next("whe");
    state.gigs.endpoints.push((url.to_string(), secret.clone()));
    let body = json!({"object": "webhookEndpoint", "id": id, "url": url, "secret": secret});
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageInput {
    data_bytes: i64,
    country: Option<String>,
    roaming: Option<String>,
    /// The day the usage happened (`YYYY-MM-DD`, default today): carriers report late.
    date: Option<String>,
}

async fn inject_usage(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    Json(input): Json<UsageInput>,
) -> Response {
    if input.data_bytes <= 0 {
        return invalid("data_bytes must be positive");
    }
    let roaming = match input.roaming.as_deref().unwrap_or("none") {
        "none" => "none",
        "domestic" => "domestic",
        "international" => "international",
        other => return invalid(format!("unknown roaming label {other}")),
    };
    let date = match input.date.as_deref().map(parse_date) {
        Some(None) => return invalid("date is YYYY-MM-DD"),
        Some(date) => date,
        None => None,
    };
    let mut state = sim.lock();
    let now = state.now();
    let Some(sub) = state.gigs.subscriptions.get(&id) else {
        return not_found("subscription", &id);
    };
    if sub.status != Status::Active {
        return error(
            StatusCode::CONFLICT,
            "subscriptionNotActive",
            "usage needs an active subscription",
        );
    }
    let country = input.country.unwrap_or_else(|| "US".into());
    let day = state
        .gigs
        .usage
        .entry((id.clone(), date.unwrap_or(now.date()), country, roaming))
        .or_insert(UsageDay {
            data: 0,
            updated_at: now,
        });
    day.data += input.data_bytes;
    day.updated_at = now;
    state.announce_thresholds(&id);
    Json(json!({"subscription": id, "recorded": input.data_bytes})).into_response()
}

impl SimState {
    /// Signs and queues a `com.gigs.*` event to every endpoint.
    fn gigs_event(&mut self, event_type: &str, data: Value) {
        let event_id = self.gigs.ids.next("evt");
        let body = json!({
            "object": "event",
            "id": event_id,
            "type": event_type,
            "time": rfc3339(self.now()),
            "data": data,
        })
        .to_string();
        for (url, secret) in self.gigs.endpoints.clone() {
            let target = DeliveryTarget {
                webhook_id: None,
                kind: "gigs",
                url,
                secret: Some(secret),
            };
            self.queue_delivery(target, &event_id, event_type, &body);
        }
    }

    fn announce_thresholds(&mut self, id: &str) {
        let thresholds = self.config.thresholds_pct.clone();
        let Some(sub) = self.gigs.subscriptions.get(id) else {
            return;
        };
        let Some(allowance) = plan(sub.plan).and_then(|p| p.data_bytes) else {
            return;
        };
        let used: i64 = self
            .gigs
            .usage
            .iter()
            .filter(|((owner, ..), _)| owner == id)
            .map(|(_, day)| day.data)
            .sum();
        let crossed: Vec<u8> = thresholds
            .into_iter()
            .filter(|pct| used * 100 >= allowance * i64::from(*pct))
            .filter(|pct| !sub.thresholds_sent.contains(pct))
            .collect();
        for pct in crossed {
            if let Some(sub) = self.gigs.subscriptions.get_mut(id) {
                sub.thresholds_sent.push(pct);
            }
            let data =
                json!({"subscription": id, "threshold": {"percentage": pct}, "dataBytes": used});
            self.gigs_event("com.gigs.usageThreshold.exceeded", data);
        }
    }

    /// Activates due subscriptions and applies due plan changes and portings.
    pub fn tick_gigs(&mut self) {
        let now = self.now();
        let smdp = self.config.smdp_address.clone();
        let due: Vec<String> = self
            .gigs
            .subscriptions
            .values()
            .filter(|sub| sub.status == Status::Pending && sub.activate_at <= now)
            .map(|sub| sub.id.clone())
            .collect();
        for id in due {
            let Some(sub) = self.gigs.subscriptions.get_mut(&id) else {
                continue;
            };
            sub.status = Status::Active;
            sub.activated_at = Some(now);
            let json = sub.to_json(&smdp);
            self.gigs_event("com.gigs.subscription.activated", json);
        }
        let due: Vec<String> = self
            .gigs
            .pending
            .values()
            .filter(|p| p.status == "pending" && p.due_at <= now)
            .map(|p| p.id.clone())
            .collect();
        for id in due {
            let Some(pending) = self.gigs.pending.get_mut(&id) else {
                continue;
            };
            let sub = self.gigs.subscriptions.get_mut(&pending.subscription);
            let event = match (&pending.kind, sub) {
                (_, None) => None,
                (_, Some(sub)) if sub.status == Status::Ended => {
                    pending.status = "failed";
                    None
                }
                (PendingKind::Change { plan }, Some(sub)) => {
                    sub.plan = plan;
                    pending.status = "applied";
                    Some("com.gigs.subscriptionChange.applied")
                }
                (PendingKind::Porting { phone_number }, Some(sub)) => {
                    sub.phone_number = phone_number.clone();
                    pending.status = "completed";
                    Some("com.gigs.porting.completed")
                }
            };
            let json = pending.to_json();
            if let Some(event) = event {
                self.gigs_event(event, json);
            }
        }
    }
}
