//! HAL list responses with `limit` and an opaque `cursor`.
use std::collections::BTreeMap;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

pub const HAL_JSON: &str = "application/hal+json";

pub type QueryMap = BTreeMap<String, String>;

pub struct PageRequest {
    pub limit: usize,
    /// The id of the last item of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn from_query(query: &QueryMap) -> ApiResult<Self> {
        let limit = match query.get("limit") {
            None => 10,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=100).contains(limit))
                .ok_or_else(|| ApiError::bad_request("limit must be between 1 and 100"))?,
        };
        let after = match query.get("cursor") {
            None => None,
            Some(cursor) => Some(
                decode_cursor(cursor).ok_or_else(|| ApiError::bad_request("cursor is invalid"))?,
            ),
        };
        Ok(Self { limit, after })
    }
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || cursor.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("after:")
        .map(str::to_string)
}

fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("after:{last_id}"))
}

/// One page of `items` (already filtered and sorted by id) as a HAL document.
pub fn page(
    path: &str,
    query: &QueryMap,
    plural: &str,
    items: Vec<(String, Value)>,
) -> ApiResult<Response> {
    let request = PageRequest::from_query(query)?;
    let mut remaining = items
        .into_iter()
        .filter(|(id, _)| request.after.as_ref().is_none_or(|after| id > after))
        .peekable();
    let page: Vec<(String, Value)> = remaining.by_ref().take(request.limit).collect();
    let has_more = remaining.peek().is_some();
    let mut links = json!({"self": {"href": href(path, query)}});
    if let (true, Some((last_id, _))) = (has_more, page.last()) {
        let mut next_query = query.clone();
        next_query.insert("cursor".into(), encode_cursor(last_id));
        next_query.insert("limit".into(), request.limit.to_string());
        links["next"] = json!({"href": href(path, &next_query)});
    }
    let values: Vec<Value> = page.into_iter().map(|(_, value)| value).collect();
    let count = values.len();
    Ok(hal_json(json!({
        "_links": links,
        "_embedded": {plural: values},
        "count": count,
    })))
}

pub fn hal_json(body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HAL_JSON));
    response
}

fn href(path: &str, query: &QueryMap) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
