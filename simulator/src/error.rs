use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

tokio::task_local! {
    /// The correlation id of the request being served, so every error body can carry it.
    pub static CORRELATION_ID: String;
}

pub fn current_correlation_id() -> Option<String> {
    CORRELATION_ID.try_with(Clone::clone).ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    InvalidHttpMessage,
    InvalidRequestParams,
    Unauthorised,
    AccessDenied,
    NotFound,
    InvalidStateTransition,
    IdempotencyKeyReused,
    /// [sim] Control plane: the thing to create exists already.
    Conflict,
    Unacceptable,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
}

impl ErrorType {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidHttpMessage => "INVALID_HTTP_MESSAGE",
            Self::InvalidRequestParams => "INVALID_REQUEST_PARAMS",
            Self::Unauthorised => "UNAUTHORISED",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::NotFound => "NOT_FOUND",
            Self::InvalidStateTransition => "INVALID_STATE_TRANSITION",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::Conflict => "CONFLICT",
            Self::Unacceptable => "UNACCEPTABLE",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::InternalError => "INTERNAL_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidHttpMessage | Self::InvalidRequestParams => StatusCode::BAD_REQUEST,
            Self::Unauthorised => StatusCode::UNAUTHORIZED,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidStateTransition | Self::IdempotencyKeyReused | Self::Conflict => {
                StatusCode::CONFLICT
            }
            Self::Unacceptable => StatusCode::NOT_ACCEPTABLE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::InvalidHttpMessage => "Invalid HTTP message",
            Self::InvalidRequestParams => "Invalid request",
            Self::Unauthorised => "Unauthorised",
            Self::AccessDenied => "Access denied",
            Self::NotFound => "Not found",
            Self::InvalidStateTransition => "Invalid state transition",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::Conflict => "Conflict",
            Self::Unacceptable => "Unacceptable",
            Self::TooManyRequests => "Too many requests",
            Self::InternalError => "Internal error",
            Self::ServiceUnavailable => "Service unavailable",
        }
    }

    /// The error type a fault with this status pretends to be.
    pub fn for_status(status: u16) -> Self {
        match status {
            400 => Self::InvalidRequestParams,
            401 => Self::Unauthorised,
            403 => Self::AccessDenied,
            404 => Self::NotFound,
            406 => Self::Unacceptable,
            409 => Self::InvalidStateTransition,
            429 => Self::TooManyRequests,
            503 => Self::ServiceUnavailable,
            _ => Self::InternalError,
        }
    }
}

/// The one error type of the API; rendered once, as the superset error body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorType,
    pub status: StatusCode,
    pub messages: Vec<String>,
    pub retry_after_s: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.status(),
            messages: vec![message.into()],
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidRequestParams, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(ErrorType::NotFound, format!("{what} {id} not found"))
    }

    pub fn invalid_transition(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidStateTransition, message)
    }

    /// An injected error: any status code, typed as closely as possible.
    pub fn injected(status: u16, retry_after_s: Option<u64>) -> Self {
        let kind = ErrorType::for_status(status);
        Self {
            kind,
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            messages: vec![format!("simulated {status} fault")],
            retry_after_s,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "type": self.kind.code(),
            "title": self.kind.title(),
            "status": self.status.as_u16(),
            "messages": self.messages,
            "correlation_id": current_correlation_id(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
