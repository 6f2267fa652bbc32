//! The portal's one error type, mapped once to an HTTP answer: a page that says what went
//! wrong and what to do, or a redirect to sign in.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use lineup_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("there is no such page")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("sign in to continue")]
    SignInNeeded { next: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the form has expired or came from another site; reload the page and try again")]
    Csrf,
    #[error("too many attempts; try again in {minutes} minutes")]
    TooManyAttempts { minutes: u64 },
    #[error("the mobile provider did not complete this: {0}")]
    Provider(String),
    #[error("something went wrong on our side; it has been logged")]
    Internal(String),
}

impl PortalError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::SignInNeeded { .. } => StatusCode::SEE_OTHER,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Provider(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<CoreError> for PortalError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound { .. } => Self::NotFound,
            CoreError::Invalid { field, reason } => Self::invalid(field, reason),
            CoreError::Webhook(e) => Self::invalid("webhook", e.to_string()),
            e @ CoreError::IllegalTransition(_) => Self::Conflict(e.to_string()),
            CoreError::Conflict(message)
            | CoreError::Duplicate(message)
            | CoreError::Stale(message) => Self::Conflict(message),
            CoreError::NotAuthorised(message) => Self::Forbidden(message),
            e @ CoreError::ProviderNotConnected => Self::Conflict(e.to_string()),
            e @ (CoreError::Provider(_)
            | CoreError::OperationFailed { .. }
            | CoreError::ProviderTimeout(_)) => Self::Provider(e.to_string()),
            CoreError::Store(e) => Self::Internal(e.to_string()),
        }
    }
}

impl From<askama::Error> for PortalError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("rendering a page failed: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    message: String,
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        if let Self::SignInNeeded { next } = &self {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            return Redirect::to(&format!("/login?next={next}")).into_response();
        }
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "portal request failed");
        }
        let status = self.status();
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::UNPROCESSABLE_ENTITY => "Please check your input",
            StatusCode::CONFLICT => "That can't be done right now",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::BAD_GATEWAY => "The provider did not answer as expected",
            _ => "Something went wrong",
        };
        let page = ErrorPage {
            status: status.as_u16(),
            heading,
            message: self.to_string(),
        };
        match page.render() {
            Ok(body) => (status, Html(body)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}
