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
