//! The SCIM 2.0 service provider (RFC 7643/7644) at `/scim/v2/` on each tenant's host: the
//! JSON an identity provider reads and writes, mapped to core's SCIM commands. It is the
//! portal's one set of routes outside `access::ROUTES`: no session, cookie or CSRF token,
//! only the tenant's bearer token (see [`ScimCaller`]), so the route table's guard does
//! not wrap it.

mod discovery;
mod error;
mod groups;
mod patch;
mod users;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lineup_core::ids::TenantId;
use lineup_core::organisation::scim::filter::{parse_group_filter, parse_user_filter};
use lineup_core::organisation::scim::{ScimCall, ScimClient, ScimPage};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Portal;
use crate::host::{Site, resolve_site};
pub use error::ScimError;

pub const CONTENT_TYPE: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Items a list answers with when the client does not say.
const DEFAULT_COUNT: i64 = 100;

/// The SCIM routes with their calls log, ready to nest at `/scim/v2`.
pub fn service(portal: Portal) -> Router {
    routes()
        .layer(axum::middleware::from_fn_with_state(
            portal.clone(),
            log_call,
        ))
        .with_state(portal)
}

fn routes() -> Router<Portal> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/Users", get(users::list).post(users::create))
        .route(
            "/Users/{id}",
            get(users::show)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route(
            "/Groups/{id}",
            get(groups::show)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route("/.search", axum::routing::post(search_everything))
        .fallback(|| async { ScimError::not_found("there is no such SCIM endpoint") })
}

/// `POST /.search` across resource types (RFC 7644 §3.4.3): users, then groups, as one
/// list, with the body's `filter` (applied to each type that understands it), paging and
/// `attributes` / `excludedAttributes`.
async fn search_everything(
    State(portal): State<Portal>,
    caller: ScimCaller,
    body: axum::body::Bytes,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search(&json_body(&body)?)?;
    let (start, count) = query.paging()?;
    let (user_filter, group_filter) = match query.filter.as_deref() {
        None => (None, None),
        Some(text) => {
            let users = parse_user_filter(text);
            let groups = parse_group_filter(text);
            if let (Err(e), Err(_)) = (&users, &groups) {
                return Err(ScimError::from(e.clone()));
            }
            (Some(users.ok()), Some(groups.ok()))
        }
    };
    let render_user = |u: &_| users::render(u, &caller.base_url);
    let render_group = |g: &_| groups::render(g, &caller.base_url);
    let mut resources = Vec::new();
    let users_total = match user_filter {
        Some(None) => 0,
        filter => {
            let page = portal
                .lineup
                .scim_users(&caller.client, filter.flatten().as_ref(), start, count)
                .await?;
            resources.extend(page.resources.iter().map(render_user));
            page.total
        }
    };
    let groups_total = match group_filter {
        Some(None) => 0,
        filter => {
            let left = count - i64::try_from(resources.len()).unwrap_or(count);
            let group_start = (start - users_total).max(1);
            let page = portal
                .lineup
                .scim_groups(
                    &caller.client,
                    filter.flatten().as_ref(),
                    group_start,
                    left.max(0),
                )
                .await?;
            if left > 0 {
                resources.extend(page.resources.iter().map(render_group));
            }
            page.total
        }
    };
    for resource in &mut resources {
        query.project(resource);
    }
    Ok(scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": users_total + groups_total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    ))
}

/// Who a call came from, as far as [`ScimCaller`] got: filled while the call runs, read by
/// [`log_call`] when it is answered.
#[derive(Debug, Default)]
struct CallSeen {
    tenant: Option<TenantId>,
    token_name: Option<String>,
}

type CallSlot = Arc<Mutex<CallSeen>>;

/// A failed call's error detail, as answered, for the calls log.
#[derive(Debug, Clone)]
struct CallError(String);

fn seen(parts: &Parts) -> Option<std::sync::MutexGuard<'_, CallSeen>> {
    parts.extensions.get::<CallSlot>().map(|slot| {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    })
}

/// Logs every call whose host names a tenant on that tenant's calls log (Settings →
/// Provisioning), refusals included. A log that cannot be written does not fail the call.
async fn log_call(
    State(portal): State<Portal>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let slot = CallSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let at = time::OffsetDateTime::now_utc();
    let response = next.run(request).await;
    let CallSeen { tenant, token_name } = std::mem::take(
        &mut *slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if let Some(tenant) = tenant {
        let call = ScimCall {
            at,
            token_name,
            method,
            path,
            status: response.status().as_u16(),
            error: response
                .extensions()
                .get::<CallError>()
                .map(|e| e.0.clone()),
        };
        if let Err(e) = portal.lineup.record_scim_call(tenant, call).await {
            tracing::warn!(%tenant, error = %e, "logging a SCIM call failed");
        }
    }
    response
}

/// The identity provider calling: the host names the tenant, and the bearer token must be
/// one of that tenant's live tokens (so a token never reaches another tenant).
pub struct ScimCaller {
    pub client: ScimClient,
    /// Where this tenant's SCIM resources live, e.g. `https://acme.example.com/scim/v2`.
    pub base_url: String,
}

impl FromRequestParts<Portal> for ScimCaller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, ScimError> {
        let tenant = match resolve_site(portal, &parts.headers).await {
            Ok(Site::Tenant(tenant)) => tenant,
            Ok(Site::Root) | Err(crate::PortalError::NotFound) => {
                return Err(ScimError::not_found(
                    "there is no organisation at this host",
                ));
            }
            Err(other) => return Err(ScimError::internal(other.to_string())),
        };
        if let Some(mut seen) = seen(parts) {
            seen.tenant = Some(tenant.id);
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ScimError::unauthorised("send the SCIM token as a Bearer token"))?;
        let client = portal.lineup.scim_client(tenant.id, bearer).await?;
        if let Some(mut seen) = seen(parts) {
            seen.token_name = Some(client.name.clone());
        }
        Ok(Self {
            client,
            base_url: format!("{}/scim/v2", portal.config.tenant_url(tenant.slug.as_str())),
        })
    }
}

/// `filter`, `startIndex` and `count` of a list request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

/// `id` and `schemas` are always returned (RFC 7643 §7).
const ALWAYS_RETURNED: [&str; 2] = ["id", "schemas"];

impl ListQuery {
    /// Narrow a rendered resource to `attributes`, or drop `excludedAttributes` (RFC 7644
    /// §3.9): names as `attribute`, `attribute.sub` or prefixed with their schema URN.
    fn project(&self, resource: &mut Value) {
        let names = |list: &Option<String>| -> Vec<(Option<String>, String, Option<String>)> {
            list.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(split_attribute)
                .collect()
        };
        let (included, excluded) = (names(&self.attributes), names(&self.excluded_attributes));
        let Value::Object(map) = resource else { return };
        if !included.is_empty() {
            map.retain(|key, value| {
                if ALWAYS_RETURNED.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                    return true;
                }
                let wanted: Vec<_> = included
                    .iter()
                    .filter(|(urn, name, _)| match urn {
                        Some(urn) => urn.eq_ignore_ascii_case(key),
                        None => name.eq_ignore_ascii_case(key),
                    })
                    .collect();
                if wanted.is_empty() {
                    return false;
                }
                let whole = wanted
                    .iter()
                    .any(|(urn, _, sub)| urn.is_none() && sub.is_none());
                if !whole && let Value::Object(inner) = value {
                    inner.retain(|k, _| {
                        wanted.iter().any(|(urn, name, sub)| match urn {
                            Some(_) => name.eq_ignore_ascii_case(k),
                            None => sub.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(k)),
                        })
                    });
                }
                true
            });
        }
        for (urn, name, sub) in &excluded {
            if ALWAYS_RETURNED.iter().any(|k| k.eq_ignore_ascii_case(name)) && urn.is_none() {
                continue;
            }
            let (outer, inner) = match (urn, sub) {
                (Some(urn), _) => (urn.as_str(), Some(name.as_str())),
                (None, sub) => (name.as_str(), sub.as_deref()),
            };
            let Some(key) = map.keys().find(|k| k.eq_ignore_ascii_case(outer)).cloned() else {
                continue;
            };
            match (inner, map.get_mut(&key)) {
                (None, _) => {
                    map.remove(&key);
                }
                (Some(inner), Some(Value::Object(object))) => {
                    object.retain(|k, _| !k.eq_ignore_ascii_case(inner));
                }
                _ => {}
            }
        }
    }
}

/// `urn:…:User:department` → (the URN, `department`, none); `name.givenName` → (none,
/// `name`, `givenName`); core schema URNs are dropped.
fn split_attribute(text: &str) -> (Option<String>, String, Option<String>) {
    let mut text = text;
    for urn in [users::USER_SCHEMA, groups::GROUP_SCHEMA] {
        if text.len() > urn.len() + 1
            && text[..urn.len()].eq_ignore_ascii_case(urn)
            && text.as_bytes()[urn.len()] == b':'
        {
            text = &text[urn.len() + 1..];
        }
    }
    if text.len() > users::ENTERPRISE_SCHEMA.len() + 1
        && text[..users::ENTERPRISE_SCHEMA.len()].eq_ignore_ascii_case(users::ENTERPRISE_SCHEMA)
    {
        let name = &text[users::ENTERPRISE_SCHEMA.len() + 1..];
        let name = name.split('.').next().unwrap_or(name);
        return (
            Some(users::ENTERPRISE_SCHEMA.to_owned()),
            name.to_owned(),
            None,
        );
    }
    if text.eq_ignore_ascii_case(users::ENTERPRISE_SCHEMA) {
        return (None, users::ENTERPRISE_SCHEMA.to_owned(), None);
    }
    match text.split_once('.') {
        Some((name, sub)) => (None, name.to_owned(), Some(sub.to_owned())),
        None => (None, text.to_owned(), None),
    }
}

impl ListQuery {
    /// A `/.search` body (RFC 7644 §3.4.3): the same parameters, attribute lists as arrays.
    fn from_search(body: &Value) -> Result<Self, ScimError> {
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match field(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(Value::Array(names)) => names
                    .iter()
                    .map(|n| {
                        n.as_str().map(str::to_owned).ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must list attribute names"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|names| Some(names.join(","))),
                Some(other) => Err(ScimError::invalid_value(format!(
                    "{name} must not be {other}"
                ))),
            }
        };
        Ok(Self {
            filter: text("filter")?,
            start_index: text("startIndex")?,
            count: text("count")?,
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }

    /// The 1-based start and the page size, as given or by default.
    fn paging(&self) -> Result<(i64, i64), ScimError> {
        let number = |name: &str, text: &Option<String>, default: i64| match text {
            None => Ok(default),
            Some(text) => text.trim().parse::<i64>().map_err(|_| {
                ScimError::invalid_value(format!("{name} must be a whole number, not {text:?}"))
            }),
        };
        Ok((
            number("startIndex", &self.start_index, 1)?.max(1),
            number("count", &self.count, DEFAULT_COUNT)?.max(0),
        ))
    }
}

pub type ListParams = Query<ListQuery>;

/// A list answer: the page's resources rendered by `render`.
fn list_response<T>(page: &ScimPage<T>, render: impl Fn(&T) -> Value) -> Response {
    let resources: Vec<Value> = page.resources.iter().map(render).collect();
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "startIndex": page.start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// A JSON answer in SCIM's content type.
pub fn scim_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body.to_string(),
    )
        .into_response()
}

/// One resource, with its version as the `ETag`.
fn resource_response(status: StatusCode, body: Value, version: &str) -> Response {
    let mut response = scim_json(status, body);
    if let Ok(etag) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn etag(version: &str) -> String {
    format!("W/\"{version}\"")
}

/// The version an `If-Match` header asks for (`W/"v"` or `"v"`), if any.
fn if_match(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::IF_MATCH)?.to_str().ok()?.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    Some(value.trim_matches('"').to_owned())
}

/// A request body as JSON, or a SCIM `invalidSyntax` error.
fn json_body(body: &[u8]) -> Result<Value, ScimError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    }
    Ok(value)
}

/// The value of `name` in `object`, ignoring case as SCIM attribute names do.
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// How many times a PATCH is re-applied when the resource changed under it.
const PATCH_ATTEMPTS: usize = 3;
