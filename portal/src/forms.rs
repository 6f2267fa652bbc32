//! Form extraction whose failures read as a form error (which field, why), not a 400 with
//! framework wording.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::PortalError;

pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = PortalError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(PortalError::invalid("form", rejection.body_text())),
        }
    }
}

/// An optional form field: empty text is "not given".
pub fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The highest `page=` a list accepts: far past any real list, and small enough that the row
/// offset (page × page size) cannot overflow.
pub const MAX_PAGE: i64 = 1_000_000;

/// A list's `page=` value: absent or empty is the first page; anything else must be a whole
/// number from 1 to [`MAX_PAGE`].
pub fn page_number(value: &Option<String>) -> Result<i64, PortalError> {
    let Some(text) = non_empty(value) else {
        return Ok(1);
    };
    match text.parse::<i64>() {
        Ok(page) if (1..=MAX_PAGE).contains(&page) => Ok(page),
        _ => Err(PortalError::invalid(
            "page",
            format!("{text:?} is not a page number from 1 to {MAX_PAGE}"),
        )),
    }
}
