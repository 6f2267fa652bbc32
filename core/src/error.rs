//! The one error type core commands return; adapters map it once to their protocol.

use crate::lines::line::IllegalTransition;
use crate::provider::{ProviderError, WaitError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{what} {id} was not found")]
    NotFound { what: &'static str, id: String },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("{0}")]
    Conflict(String),
    /// Another record already holds this unique value (an email, a team name).
    #[error("{0}")]
    Duplicate(String),
    /// The record changed since the caller read it (its version no longer matches).
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    NotAuthorised(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The tenant has no provider account it may use.
    #[error("connect your provider account in Settings → Provider first")]
    ProviderNotConnected,
    #[error("provider webhook refused: {0}")]
    Webhook(crate::provider::WebhookError),
    #[error("the provider could not {operation} the line: {reason}")]
    OperationFailed {
        operation: &'static str,
        reason: String,
    },
    #[error("timed out waiting for the provider: {0}")]
    ProviderTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn invalid(field: &'static str, reason: impl ToString) -> Self {
        Self::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}

impl From<sqlx::Error> for CoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

impl From<WaitError> for CoreError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Provider(p) => Self::Provider(p),
            timed_out @ WaitError::TimedOut { .. } => Self::ProviderTimeout(timed_out.to_string()),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
