//! The service's error type.

use magpie_core::ErrorKind;
use magpie_store::StoreError;

/// A refused or failed operation: a kind the client can act on, and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A human-readable explanation (never contains secrets).
    pub message: String,
    /// For rate limits and slow mode: when a retry can succeed, ms (0: unknown).
    pub retry_after_ms: u64,
}

impl ServiceError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_ms: 0,
        }
    }

    /// The same error, telling the client when a retry can succeed.
    #[must_use]
    pub fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = ms;
        self
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "storage failure");
        Self::new(ErrorKind::Unavailable, "storage is unavailable; retry")
    }
}
