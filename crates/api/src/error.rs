//! [`ApiError`]: every refusal the API answers, as a status and a JSON body
//! `{"error": {"code", "message", "retry_after_ms"?}}`.
//!
//! Service errors map by [`ErrorKind`] (the table in the API contract); the HTTP layer adds
//! its own codes (authentication, bad JSON, body too large, idempotency). An internal
//! error's details go to the log only: the client reads "internal error".

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use magpie_core::ErrorKind;
use magpie_service::ServiceError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The wire error code, e.g. `NOT_FOUND`, `INVALID_ARGUMENT`, `UNAUTHENTICATED`.
    pub code: String,
    /// A human-readable explanation (never contains secrets).
    pub message: String,
    /// For rate limits and slow mode: when a retry can succeed, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Wire error code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// When a retry can succeed, ms (0: unknown).
    pub retry_after_ms: u64,
    /// Answer with `WWW-Authenticate` (a missing credential).
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_ms: 0,
            challenge: None,
        }
    }

    /// 400 INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// 400 INVALID_ARGUMENT naming the field: `field: why`.
    pub fn field(field: &str, why: impl std::fmt::Display) -> Self {
        Self::invalid(format!("{field}: {why}"))
    }

    /// 401 UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 500 INTERNAL; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error in the API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }

    /// The same error, with a `WWW-Authenticate` challenge.
    #[must_use]
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

/// Status and wire code of a service error kind.
pub fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        ErrorKind::MessageTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "MESSAGE_TOO_LARGE"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        ErrorKind::LimitExceeded => (StatusCode::UNPROCESSABLE_ENTITY, "LIMIT_EXCEEDED"),
        ErrorKind::Muted => (StatusCode::FORBIDDEN, "MUTED"),
        ErrorKind::Blocked => (StatusCode::FORBIDDEN, "BLOCKED"),
        ErrorKind::WindowClosed => (StatusCode::CONFLICT, "WINDOW_CLOSED"),
        ErrorKind::Banned => (StatusCode::FORBIDDEN, "BANNED"),
        ErrorKind::SlowMode => (StatusCode::TOO_MANY_REQUESTS, "SLOW_MODE"),
        ErrorKind::ContentRejected => (StatusCode::UNPROCESSABLE_ENTITY, "CONTENT_REJECTED"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "CONFLICT"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        // `ErrorKind` is non-exhaustive: a kind added later reads as internal until it is
        // mapped here.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = status_of(e.kind);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(e.message);
        }
        Self {
            status,
            code,
            message: e.message,
            retry_after_ms: e.retry_after_ms,
            challenge: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("magpie_api_errors_total", "code" => self.code).increment(1);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                retry_after_ms: (self.retry_after_ms > 0).then_some(self.retry_after_ms),
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Whole seconds, rounded up; at least one.
            let secs = self.retry_after_ms.div_ceil(1000).max(1);
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(c) = self.challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        res
    }
}

/// The answer to a request no route matches.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such route: {method} {}", uri.path()))
}

/// The answer to a method a route does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
