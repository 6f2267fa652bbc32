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
