//! The HTTP client every adapter shares: authentication (OAuth2 client credentials or a
//! static API key), retries with back-off, and tolerant reading of vendor error bodies.
//!
//! * `transport` — builds every request, classifies every answer, retries.
//! * `token` — OAuth2 client-credentials token cache (one refresh at a time).
//! * `retry` — back-off policy; `errors` — error-body mapping.

pub(crate) mod errors;
pub(crate) mod retry;
pub(crate) mod token;
pub(crate) mod transport;

pub use retry::RetryPolicy;

use time::Date;
use url::Url;

use super::ProviderError;

/// An adapter's `base_url` (or another configured URL): http(s), usable as a base.
pub(crate) fn parse_url(adapter: &str, field: &str, text: &str) -> Result<Url, ProviderError> {
    let invalid = |reason: String| ProviderError::InvalidRequest {
        message: format!("{adapter} adapter configuration: {field} {text:?}{reason}"),
    };
    let url = Url::parse(text).map_err(|e| invalid(format!(": {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid(" is not an http(s) URL".into()));
    }
    Ok(url)
}

/// `YYYY-MM-DD`, as vendors take dates in queries.
pub(crate) fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
