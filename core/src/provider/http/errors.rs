//! Tolerant reading of vendor error bodies into `ProviderError`.
//!
//! Accepts the Connect shape `{"type":"INVALID_REQUEST_PARAMS","messages":[...]}`,
//! RFC 7807-like `{"type","title","detail"}`, `{"message"}` (Gigs adds `"object":"error"`),
//! Airalo's `{"data":{…},"meta":{"message"}}` and OAuth's `{"error","error_description"}`;
//! anything unreadable is kept as text.

use std::time::Duration;

use serde_json::Value;

use crate::provider::ProviderError;

/// The longest slice of a body we copy into an error.
const BODY_SNIPPET: usize = 300;

/// What we could read from an error body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub(crate) kind: Option<String>,
    /// The best human-readable explanation found, if any.
    pub(crate) message: Option<String>,
}

impl ErrorBody {
    /// `None` when the body is not a JSON object.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
            return None;
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        let messages = map.get("messages").and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(message_text)
                .collect::<Vec<_>>()
                .join("; ")
        });
        let message = messages
            .filter(|m| !m.is_empty())
            .or_else(|| text("detail"))
            .or_else(|| text("message"))
            .or_else(|| text("error_description"))
            .or_else(|| text("title"))
            .or_else(|| {
                let meta = map.get("meta")?;
                meta.get("message")?.as_str().map(str::to_owned)
            });
        let kind = text("type")
            .or_else(|| text("error"))
            .or_else(|| text("code"));
        Some(Self { kind, message })
    }

    fn describe(&self, fallback: &str) -> String {
        match (&self.message, &self.kind) {
            (Some(m), _) => m.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => fallback.to_owned(),
        }
    }
}

/// `messages[]` entries are strings, or objects with a `message`/`detail`.
fn message_text(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => ["message", "detail", "title"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned),
        _ => None,
    }
}

/// Maps a non-2xx answer to the neutral error. `what` names the resource for `NotFound`.
pub(crate) fn map_error(
    status: u16,
    body: &[u8],
    what: &str,
    retry_after: Option<Duration>,
) -> ProviderError {
    let parsed = ErrorBody::parse(body);
    if let Some(err) = map_by_status(status, parsed.as_ref(), body, what, retry_after) {
        return err;
    }
    let Some(parsed) = parsed else {
        return protocol(status, body);
    };
    let message = parsed.describe(&format!("HTTP {status}"));
    match (parsed.kind.as_deref(), status) {
        (Some("UNACCEPTABLE"), _) | (_, 406) => ProviderError::QuotaExceeded { message },
        (Some("IDEMPOTENCY_KEY_REUSED"), _) => ProviderError::InvalidRequest {
            message: format!(
                "the Idempotency-Key was already used for a different request ({message})"
            ),
        },
        (Some("INVALID_STATE_TRANSITION"), _) | (_, 409) => ProviderError::InvalidState { message },
        _ => ProviderError::InvalidRequest { message },
    }
}

/// Statuses whose meaning does not depend on the body.
fn map_by_status(
    status: u16,
    parsed: Option<&ErrorBody>,
    body: &[u8],
    what: &str,
    retry_after: Option<Duration>,
) -> Option<ProviderError> {
    let err = match status {
        401 => ProviderError::Unauthorized,
        403 => ProviderError::Forbidden,
        404 => ProviderError::NotFound(what.to_owned()),
        408 | 500..=599 => ProviderError::Transient {
            detail: transient_detail(status, parsed, body),
        },
        429 => ProviderError::RateLimited { retry_after },
        _ => return None,
    };
    Some(err)
}

fn transient_detail(status: u16, parsed: Option<&ErrorBody>, body: &[u8]) -> String {
    match parsed {
        Some(p) => format!("HTTP {status}: {}", p.describe("no detail")),
        None if body.is_empty() => format!("HTTP {status} with an empty body"),
        None => format!("HTTP {status}: {}", snippet(body)),
    }
}

pub(crate) fn protocol(status: u16, body: &[u8]) -> ProviderError {
    ProviderError::Protocol {
        status,
        body: snippet(body),
    }
}

/// The start of a body as text, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(BODY_SNIPPET) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> ProviderError {
        map_error(status, body.as_bytes(), "order order_1", None)
    }

    #[test]
    fn reads_connect_and_problem_bodies() {
        let connect =
            r#"{"type":"INVALID_REQUEST_PARAMS","messages":["a is required","b is bad"]}"#;
        assert_eq!(
            map(400, connect),
            ProviderError::InvalidRequest {
                message: "a is required; b is bad".into()
            }
        );
        let problem = r#"{"type":"about:blank","title":"Bad","detail":"email is invalid"}"#;
        assert_eq!(
            map(422, problem),
            ProviderError::InvalidRequest {
                message: "email is invalid".into()
            }
        );
        let objects = r#"{"messages":[{"field":"x","message":"x is missing"}]}"#;
        assert_eq!(
            map(400, objects),
            ProviderError::InvalidRequest {
                message: "x is missing".into()
            }
        );
    }

    #[test]
    fn maps_by_type_and_status() {
        let conflict = r#"{"type":"INVALID_STATE_TRANSITION","messages":["already active"]}"#;
        assert_eq!(
            map(409, conflict),
            ProviderError::InvalidState {
                message: "already active".into()
            }
        );
        assert!(matches!(
            map(409, r#"{"type":"IDEMPOTENCY_KEY_REUSED"}"#),
            ProviderError::InvalidRequest { message } if message.contains("Idempotency-Key")
        ));
        assert_eq!(
            map(406, r#"{"type":"UNACCEPTABLE","messages":["daily limit"]}"#),
            ProviderError::QuotaExceeded {
                message: "daily limit".into()
            }
        );
        assert_eq!(map(401, ""), ProviderError::Unauthorized);
        assert_eq!(map(403, "nope"), ProviderError::Forbidden);
        assert_eq!(
            map(404, ""),
            ProviderError::NotFound("order order_1".into())
        );
        assert_eq!(
            map(429, ""),
            ProviderError::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn survives_unreadable_bodies() {
        assert_eq!(
            map(502, "<html>Bad Gateway</html>"),
            ProviderError::Transient {
                detail: "HTTP 502: <html>Bad Gateway</html>".into()
            }
        );
        assert_eq!(
            map(400, "oops"),
            ProviderError::Protocol {
                status: 400,
                body: "oops".into()
            }
        );
        assert_eq!(
            map(418, "[1,2]"),
            ProviderError::Protocol {
                status: 418,
                body: "[1,2]".into()
            }
        );
        let long = "é".repeat(1000);
        assert!(snippet(long.as_bytes()).chars().count() <= BODY_SNIPPET + 1);
    }
}
