//! The headers every portal answer carries so a browser confines the pages: script, styles
//! and images only from the portal itself (QR codes arrive as `data:` images), no framing by
//! other sites (clickjacking), no content-type guessing, and no full URLs leaked to others.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// No inline script or styles anywhere: pages load `/static/portal.js` and
/// `/static/portal.css`, and charts are inline SVG drawn with attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

const HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    // For browsers that predate `frame-ancestors`.
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
];

pub async fn add(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
