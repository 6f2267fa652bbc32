//! SCIM's error answer (RFC 7644 §3.12): the error schema, the status as a string, and a
//! `scimType` where the RFC names one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lineup_core::CoreError;
use lineup_core::organisation::scim::filter::FilterError;
use serde_json::json;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn unauthorised(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("noTarget"), detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, detail)
    }

    pub fn is_stale(&self) -> bool {
        self.status == StatusCode::PRECONDITION_FAILED
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some("invalidFilter"),
            e.to_string(),
        )
    }
}

impl From<CoreError> for ScimError {
    fn from(e: CoreError) -> Self {
        match e {
            e @ CoreError::NotFound { .. } => Self::not_found(e.to_string()),
            e @ CoreError::Invalid { .. } => Self::invalid_value(e.to_string()),
            CoreError::Duplicate(detail) => {
                Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
            }
            CoreError::Stale(detail) => Self::new(StatusCode::PRECONDITION_FAILED, None, detail),
            CoreError::NotAuthorised(detail) => Self::unauthorised(detail),
            e @ (CoreError::Conflict(_)
            | CoreError::IllegalTransition(_)
            | CoreError::ProviderNotConnected) => {
                Self::new(StatusCode::CONFLICT, None, e.to_string())
            }
            e @ (CoreError::Provider(_)
            | CoreError::OperationFailed { .. }
            | CoreError::ProviderTimeout(_)
            | CoreError::Webhook(_)) => Self::new(StatusCode::BAD_GATEWAY, None, e.to_string()),
            CoreError::Store(e) => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(detail = %self.detail, "a SCIM request failed");
        }
        let detail = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            "something went wrong on our side; it has been logged".to_owned()
        } else {
            self.detail
        };
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": detail.clone(),
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = super::scim_json(self.status, body);
        response.extensions_mut().insert(super::CallError(detail));
        response
    }
}
