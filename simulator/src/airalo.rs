//! The Airalo personality under `/airalo/v2`: OAuth2 client credentials answered inside
//! `data`, travel packages grouped by country and operator, synchronous orders (no
//! idempotency key: an order's `description` is what a client can look it up by), usage by
//! ICCID at most once per 15 minutes per eSIM (429 with `Retry-After` sooner), and low-data
//! webhooks signed with HMAC-SHA512 in `airalo-signature`, sent only to URLs that answered
//! the opt-in `HEAD` with 200.
use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha512;
use time::{Duration, OffsetDateTime};

use crate::clock::{rfc3339, rfc3339_opt};
use crate::ids::IdGen;
use crate::state::{Sim, State as SimState};
use crate::webhooks::DeliveryTarget;

pub const AIRALO_CLIENT_ID: &str = "airalo-lineup-demo";
pub const AIRALO_CLIENT_SECRET: &str = "airalo-lineup-demo-secret";
/// One usage read per eSIM per this long.
pub const USAGE_INTERVAL: Duration = Duration::minutes(15);
const TOKEN_TTL_S: i64 = 86_400;
/// Low-data notifications at these shares of the allowance used.
const LOW_DATA_LEVELS: [u8; 2] = [75, 90];

struct Package {
    id: &'static str,
    title: &'static str,
    kind: &'static str,
    amount_mb: i64,
    days: u16,
    unlimited: bool,
    /// USD cents.
    price_cents: i64,
}

struct Country {
    slug: &'static str,
    code: &'static str,
    title: &'static str,
    operator: &'static str,
    packages: &'static [Package],
}

const COUNTRIES: [Country; 3] = [
    Country {
        slug: "united-states",
        code: "US",
        title: "United States",
        operator: "Change",
        packages: &[
            Package {
                id: "change-7days-1gb",
                title: "1 GB - 7 Days",
                kind: "sim",
                amount_mb: 1024,
                days: 7,
                unlimited: false,
                price_cents: 450,
            },
            Package {
                id: "change-30days-5gb",
                title: "5 GB - 30 Days",
                kind: "sim",
                amount_mb: 5120,
                days: 30,
                unlimited: false,
                price_cents: 1600,
            },
        ],
    },
    Country {
        slug: "japan",
        code: "JP",
        title: "Japan",
        operator: "Moshi Moshi",
        packages: &[
            Package {
                id: "moshi-moshi-7days-1gb",
                title: "1 GB - 7 Days",
                kind: "sim",
                amount_mb: 1024,
                days: 7,
                unlimited: false,
                price_cents: 450,
            },
            Package {
                id: "moshi-moshi-10days-3gb",
                title: "3 GB - 10 Days",
                kind: "sim",
                amount_mb: 3072,
                days: 10,
                unlimited: false,
                price_cents: 1100,
            },
            Package {
                id: "moshi-moshi-15days-10gb",
                title: "10 GB - 15 Days",
                kind: "sim",
                amount_mb: 10240,
                days: 15,
                unlimited: false,
                price_cents: 2600,
            },
        ],
    },
    Country {
        slug: "germany",
        code: "DE",
        title: "Germany",
        operator: "Hallo Mobil",
        packages: &[
            Package {
                id: "hallo-mobil-15days-3gb",
                title: "3 GB - 15 Days",
                kind: "sim",
                amount_mb: 3072,
                days: 15,
                unlimited: false,
                price_cents: 1100,
            },
            Package {
                id: "hallo-mobil-topup-1gb",
                title: "1 GB - 7 Days top-up",
                kind: "topup",
                amount_mb: 1024,
                days: 7,
                unlimited: false,
                price_cents: 500,
            },
        ],
    },
];

struct Order {
    id: u64,
    code: String,
    package: &'static Package,
    country: &'static Country,
    description: String,
    created_at: OffsetDateTime,
    iccid: String,
}

struct Esim {
    iccid: String,
    matching_id: String,
    order_id: u64,
    used_mb: i64,
    first_used_at: Option<OffsetDateTime>,
    last_usage_read: Option<OffsetDateTime>,
    levels_sent: Vec<u8>,
}

/// Everything the Airalo personality knows; not written to state files.
pub struct AiraloWorld {
    ids: IdGen,
    tokens: HashMap<String, OffsetDateTime>,
    orders: BTreeMap<u64, Order>,
    esims: BTreeMap<String, Esim>,
    /// Opted-in webhook URLs.
    webhooks: Vec<String>,
}

impl AiraloWorld {
    pub fn new(seed: u64) -> Self {
        Self {
            ids: IdGen::new(seed ^ 0xA1_2A10),
            tokens: HashMap::new(),
            orders: BTreeMap::new(),
            esims: BTreeMap::new(),
            webhooks: Vec::new(),
        }
    }
}

pub fn routes(sim: Sim) -> Router<Sim> {
    let api = Router::new()
        .route("/packages", get(list_packages))
        .route("/orders", post(create_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/sims", get(list_sims))
        .route("/sims/{iccid}", get(get_sim))
        .route("/sims/{iccid}/usage", get(sim_usage))
        .route("/notifications/opt-in", post(opt_in))
        .route_layer(from_fn_with_state(sim, authenticate));
    Router::new()
        .route("/v2/token", post(issue_token))
        .nest("/v2", api)
}

/// `/_sim/airalo/…`: what the tests drive by hand.
pub fn control_routes() -> Router<Sim> {
    Router::new().route("/sims/{iccid}/usage", post(inject_usage))
}

/// Airalo's error shape: field errors under `data`, the summary in `meta.message`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"data": {}, "meta": {"message": message.into()}});
    (status, Json(body)).into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("{what} {id} was not found"))
}

fn success(data: Value) -> Response {
    Json(json!({"data": data, "meta": {"message": "success"}})).into_response()
}

async fn issue_token(
    State(sim): State<Sim>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "the form is unreadable");
    };
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "grant_type must be client_credentials",
        );
    }
    if field("client_id") != Some(AIRALO_CLIENT_ID)
        || field("client_secret") != Some(AIRALO_CLIENT_SECRET)
    {
        return error(StatusCode::UNAUTHORIZED, "the client credentials are wrong");
    }
    let mut state = sim.lock();
    let token = format!("airalo_{}", uuid::Uuid::new_v4().simple());
    let expires_at = state.now() + Duration::seconds(TOKEN_TTL_S);
    state.airalo.tokens.insert(token.clone(), expires_at);
    success(json!({"token_type": "Bearer", "expires_in": TOKEN_TTL_S, "access_token": token}))
}

async fn authenticate(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_string);
    let valid = {
        let state = sim.lock();
        let now = state.now();
        bearer
            .and_then(|token| state.airalo.tokens.get(&token).copied())
            .is_some_and(|expires_at| expires_at > now)
    };
    if !valid {
        return error(StatusCode::UNAUTHORIZED, "Unauthenticated.");
    }
    next.run(request).await
}

fn package_json(country: &Country, package: &Package) -> Value {
    let price = package.price_cents as f64 / 100.0;
    json!({
        "id": package.id,
        "type": package.kind,
        "title": package.title,
        "price": price,
        "net_price": (package.price_cents * 8 / 10) as f64 / 100.0,
        "amount": package.amount_mb,
        "day": package.days,
        "is_unlimited": package.unlimited,
        "data": format!("{} GB", package.amount_mb / 1024),
        "prices": {
            "recommended_retail_price": {"USD": price},
            "net_price": {"USD": (package.price_cents * 8 / 10) as f64 / 100.0},
        },
        "activation_policy": "first-usage",
        "countries": [{"country_code": country.code, "title": country.title}],
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PageQuery {
    limit: Option<usize>,
    page: Option<usize>,
    #[serde(rename = "filter[description]")]
    description: Option<String>,
}

/// One page of `items` in Airalo's `data` / `links` / `meta` shape.
fn paged(items: Vec<Value>, query: &PageQuery, path: &str, base_url: &str) -> Response {
    let limit = query.limit.unwrap_or(25).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let last_page = items.len().div_ceil(limit).max(1);
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    let next = (page < last_page)
        .then(|| format!("{base_url}/airalo/v2{path}?limit={limit}&page={}", page + 1));
    Json(json!({
        "data": data,
        "links": {"next": next},
        "meta": {"message": "success", "current_page": page, "last_page": last_page, "per_page": limit},
    }))
    .into_response()
}

async fn list_packages(State(sim): State<Sim>, Query(query): Query<PageQuery>) -> Response {
    let items = COUNTRIES
        .iter()
        .map(|country| {
            json!({
                "slug": country.slug,
                "country_code": country.code,
                "title": country.title,
                "operators": [{
                    "title": country.operator,
                    "type": "local",
                    "countries": [{"country_code": country.code, "title": country.title}],
                    "packages": country.packages.iter().map(|p| package_json(country, p)).collect::<Vec<_>>(),
                }],
            })
        })
        .collect();
    paged(items, &query, "/packages", sim.base_url())
}

fn find_package(id: &str) -> Option<(&'static Country, &'static Package)> {
    COUNTRIES.iter().find_map(|country| {
        country
            .packages
            .iter()
            .find(|package| package.id == id)
            .map(|package| (country, package))
    })
}

impl Order {
    fn to_json(&self, esim: Option<&Esim>, smdp: &str, base_url: &str) -> Value {
        let sims: Vec<Value> = esim
            .map(|esim| esim_json(esim, smdp, base_url))
            .into_iter()
            .collect();
        json!({
            "id": self.id,
            "code": self.code,
            "package_id": self.package.id,
            "quantity": 1,
            "type": self.package.kind,
            "description": self.description,
            "esim_type": "Prepaid",
            "validity": self.package.days,
            "package": format!("{} {}", self.country.title, self.package.title),
            "data": format!("{} GB", self.package.amount_mb / 1024),
            "price": self.package.price_cents as f64 / 100.0,
            "currency": "USD",
            "created_at": rfc3339(self.created_at),
            "sims": sims,
        })
    }
}

fn esim_json(esim: &Esim, smdp: &str, base_url: &str) -> Value {
    let code = format!("LPA:1${smdp}${}", esim.matching_id);
    json!({
        "id": esim.order_id,
        "iccid": esim.iccid,
        "lpa": smdp,
        "matching_id": esim.matching_id,
        "qrcode": code,
        "qrcode_url": format!("{base_url}/_sim/qr/{}.png", esim.iccid),
    })
}

async fn create_order(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some((country, package)) = body["package_id"].as_str().and_then(find_package) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "package_id must name an available package",
        );
    };
    if body["quantity"].as_u64().unwrap_or(1) != 1 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the simulator sells one eSIM per order",
        );
    }
    let mut state = sim.lock();
    let now = state.now();
    let world = &mut state.airalo;
    let id = world.orders.keys().next_back().map_or(1, |last| last + 1);
    let esim = Esim {
        iccid: world.ids.iccid(),
        matching_id: world.ids.matching_id(),
        order_id: id,
        used_mb: 0,
        first_used_at: None,
        last_usage_read: None,
        levels_sent: Vec::new(),
    };
    let order = Order {
        id,
        code: format!("{}-{id:06}", now.date()),
        package,
        country,
        description: body["description"].as_str().unwrap_or_default().to_string(),
        created_at: now,
        iccid: esim.iccid.clone(),
    };
    let json = order.to_json(Some(&esim), &state.config.smdp_address, sim.base_url());
    state.airalo.esims.insert(esim.iccid.clone(), esim);
    state.airalo.orders.insert(id, order);
    success(json)
}

fn order_json(state: &SimState, order: &Order, base_url: &str) -> Value {
    let esim = state.airalo.esims.get(&order.iccid);
    order.to_json(esim, &state.config.smdp_address, base_url)
}

async fn list_orders(State(sim): State<Sim>, Query(query): Query<PageQuery>) -> Response {
    let state = sim.lock();
    let items = state
        .airalo
        .orders
        .values()
        .filter(|order| {
            query
                .description
                .as_ref()
                .is_none_or(|wanted| *wanted == order.description)
        })
        .map(|order| order_json(&state, order, sim.base_url()))
        .collect();
    paged(items, &query, "/orders", sim.base_url())
}

async fn get_order(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    let state = sim.lock();
    match id.parse().ok().and_then(|id| state.airalo.orders.get(&id)) {
        Some(order) => success(order_json(&state, order, sim.base_url())),
        None => not_found("order", &id),
    }
}

fn sim_json(state: &SimState, esim: &Esim, base_url: &str) -> Value {
    let mut body = esim_json(esim, &state.config.smdp_address, base_url);
    if let Some(order) = state.airalo.orders.get(&esim.order_id) {
        body["created_at"] = rfc3339(order.created_at).into();
        body["simable"] = json!({
            "id": order.id,
            "code": order.code,
            "package_id": order.package.id,
            "description": order.description,
        });
    }
    body
}

async fn list_sims(State(sim): State<Sim>, Query(query): Query<PageQuery>) -> Response {
    let state = sim.lock();
    let items = state
        .airalo
        .esims
        .values()
        .map(|esim| sim_json(&state, esim, sim.base_url()))
        .collect();
    paged(items, &query, "/sims", sim.base_url())
}

async fn get_sim(State(sim): State<Sim>, Path(iccid): Path<String>) -> Response {
    let state = sim.lock();
    match state.airalo.esims.get(&iccid) {
        Some(esim) => success(sim_json(&state, esim, sim.base_url())),
        None => not_found("sim", &iccid),
    }
}

async fn sim_usage(State(sim): State<Sim>, Path(iccid): Path<String>) -> Response {
    let mut state = sim.lock();
    let now = state.now();
    let Some(esim) = state.airalo.esims.get_mut(&iccid) else {
        return not_found("sim", &iccid);
    };
    if let Some(next) = esim.last_usage_read.map(|at| at + USAGE_INTERVAL)
        && next > now
    {
        let wait = (next - now).whole_seconds().max(1);
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    esim.last_usage_read = Some(now);
    let (used, first_used_at, order_id) = (esim.used_mb, esim.first_used_at, esim.order_id);
    let package = state.airalo.orders[&order_id].package;
    let expired_at = first_used_at.map(|at| at + Duration::days(i64::from(package.days)));
    let status = match (first_used_at, expired_at) {
        (None, _) => "NOT_ACTIVE",
        (_, Some(at)) if at <= now => "EXPIRED",
        _ if !package.unlimited && used >= package.amount_mb => "FINISHED",
        _ => "ACTIVE",
    };
    success(json!({
        "remaining": (package.amount_mb - used).max(0),
        "total": package.amount_mb,
        "expired_at": rfc3339_opt(expired_at),
        "is_unlimited": package.unlimited,
        "status": status,
        "remaining_voice": 0,
        "remaining_text": 0,
        "total_voice": 0,
        "total_text": 0,
    }))
}

/// Registers a webhook URL once it answers `HEAD` with 200, as Airalo's opt-in does.
async fn opt_in(State(sim): State<Sim>, Json(body): Json<Value>) -> Response {
    let Some(url) = body["webhook_url"]
        .as_str()
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_url must be an http(s) URL",
        );
    };
    let answered = sim.http().head(url).send().await.map(|r| r.status());
    if !matches!(answered, Ok(StatusCode::OK)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the webhook URL did not answer HEAD with 200 ({answered:?})"),
        );
    }
    let mut state = sim.lock();
    if !state.airalo.webhooks.iter().any(|known| known == url) {
        state.airalo.webhooks.push(url.to_string());
    }
    success(json!({"type": body["type"], "webhook_url": url}))
}

#[derive(Deserialize)]
struct UsageInput {
    mb: i64,
}

async fn inject_usage(
    State(sim): State<Sim>,
    Path(iccid): Path<String>,
    Json(input): Json<UsageInput>,
) -> Response {
    if input.mb <= 0 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "mb must be positive");
    }
    let mut guard = sim.lock();
    let state = &mut *guard;
    let now = state.now();
    let Some(esim) = state.airalo.esims.get_mut(&iccid) else {
        return not_found("sim", &iccid);
    };
    let package = state.airalo.orders[&esim.order_id].package;
    esim.first_used_at.get_or_insert(now);
    esim.used_mb = (esim.used_mb + input.mb).min(package.amount_mb);
    let used = esim.used_mb;
    let due: Vec<u8> = LOW_DATA_LEVELS
        .into_iter()
        .filter(|level| used * 100 >= package.amount_mb * i64::from(*level))
        .filter(|level| !esim.levels_sent.contains(level))
        .collect();
    esim.levels_sent.extend(&due);
    for level in due {
        let remaining = 100 - used * 100 / package.amount_mb;
        let body = json!({
            "level": format!("{level}%"),
            "iccid": iccid,
            "package_id": package.id,
            "remaining_percentage": remaining,
        });
        state.airalo_webhook("low_data", &body);
    }
    Json(json!({"iccid": iccid, "used_mb": used})).into_response()
}

/// `airalo-signature`: hex HMAC-SHA512 of the body, keyed with the partner's client secret.
pub fn airalo_signature(secret: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl SimState {
    fn airalo_webhook(&mut self, event_type: &str, body: &Value) {
        let event_id = self.airalo.ids.next("ntf");
        let body = body.to_string();
        for url in self.airalo.webhooks.clone() {
            let target = DeliveryTarget {
                webhook_id: None,
                kind: "airalo",
                url,
                secret: Some(AIRALO_CLIENT_SECRET.to_string()),
            };
            self.queue_delivery(target, &event_id, event_type, &body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_sha512_of_the_body() {
        let signature = airalo_signature("secret", "{}");
        let mut mac = Hmac::<Sha512>::new_from_slice(b"secret").unwrap();
        mac.update(b"{}");
        assert_eq!(signature, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature.len(), 128);
    }
}
