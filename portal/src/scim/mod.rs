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

use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lineup_core::organisation::scim::{ScimClient, ScimPage};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Portal;
use crate::host::{Site, resolve_site};
pub use error::ScimError;

pub const CONTENT_TYPE: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Items a list answers with when the client does not say.
const DEFAULT_COUNT: i64 = 100;

pub fn routes() -> Router<Portal> {
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

/// `POST /.search` across resource types (RFC 7644 §3.4.3) is not offered: list `/Users` or
/// `/Groups` instead.
async fn search_everything(_caller: ScimCaller) -> ScimError {
    ScimError::not_implemented(
        "searching several resource types at once is not supported; query /Users or /Groups",
    )
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
