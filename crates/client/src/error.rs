//! Errors returned by the SDK, and the server's error codes in a form applications can match.

use std::fmt;
use std::time::Duration;

use magpie_proto::pb;

/// A server error code (the `ErrorCode` of the wire protocol).
///
/// Codes this SDK does not know (added by a newer server) arrive as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be decoded.
    BadFrame,
    /// The frame exceeds the maximum frame size.
    FrameTooLarge,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// A frame other than Hello arrived before authentication.
    AuthRequired,
    /// The token is invalid.
    Unauthenticated,
    /// The token has expired.
    TokenExpired,
    /// Hello was not received in time.
    HandshakeTimeout,
    /// A second Hello on an authenticated connection.
    AlreadyAuthenticated,
    /// A field is missing or malformed.
    InvalidArgument,
    /// The message content exceeds the size limit.
    MessageTooLarge,
    /// The target does not exist in this app.
    NotFound,
    /// The user may not do this.
    Forbidden,
    /// Too many requests.
    RateLimited,
    /// The server could not complete the request; it may be retried.
    Unavailable,
    /// An internal server error.
    Internal,
    /// Too many connections from this address before authentication.
    TooManyConnections,
    /// The connection was idle for too long.
    IdleTimeout,
    /// The thing to create exists already (e.g. a group id in use).
    AlreadyExists,
    /// A size limit other than the message size was hit (e.g. the group is full).
    LimitExceeded,
    /// The sender is muted in this conversation (or everyone is, and the sender is no admin).
    Muted,
    /// The recipient blocked the sender (1:1), or the app lets only friends message each
    /// other and they are not friends.
    Blocked,
    /// The operation's time window has passed (e.g. recalling an old message).
    WindowClosed,
    /// The user is banned from the live room.
    Banned,
    /// The live room is in slow mode and the sender spoke too recently.
    SlowMode,
    /// The content filter or the app's before-send hook refused the message.
    ContentRejected,
    /// The change was based on an out-of-date version.
    Conflict,
    /// A code this SDK does not know (or 0, unspecified).
    Unknown(i32),
}

impl ErrorCode {
    /// The code for a wire value.
    pub fn from_wire(code: i32) -> Self {
        use pb::ErrorCode as W;
        match W::try_from(code) {
            Ok(W::BadFrame) => Self::BadFrame,
            Ok(W::FrameTooLarge) => Self::FrameTooLarge,
            Ok(W::UnsupportedVersion) => Self::UnsupportedVersion,
            Ok(W::AuthRequired) => Self::AuthRequired,
            Ok(W::Unauthenticated) => Self::Unauthenticated,
            Ok(W::TokenExpired) => Self::TokenExpired,
            Ok(W::HandshakeTimeout) => Self::HandshakeTimeout,
            Ok(W::AlreadyAuthenticated) => Self::AlreadyAuthenticated,
            Ok(W::InvalidArgument) => Self::InvalidArgument,
            Ok(W::MessageTooLarge) => Self::MessageTooLarge,
            Ok(W::NotFound) => Self::NotFound,
            Ok(W::Forbidden) => Self::Forbidden,
            Ok(W::RateLimited) => Self::RateLimited,
            Ok(W::Unavailable) => Self::Unavailable,
            Ok(W::Internal) => Self::Internal,
            Ok(W::TooManyConnections) => Self::TooManyConnections,
            Ok(W::IdleTimeout) => Self::IdleTimeout,
            Ok(W::AlreadyExists) => Self::AlreadyExists,
            Ok(W::LimitExceeded) => Self::LimitExceeded,
            Ok(W::Muted) => Self::Muted,
            Ok(W::Blocked) => Self::Blocked,
            Ok(W::WindowClosed) => Self::WindowClosed,
            Ok(W::Banned) => Self::Banned,
            Ok(W::SlowMode) => Self::SlowMode,
            Ok(W::ContentRejected) => Self::ContentRejected,
            Ok(W::Conflict) => Self::Conflict,
            Ok(W::Unspecified) | Err(_) => Self::Unknown(code),
        }
    }

    /// The stable name of the code, as in the protocol schema (`NOT_FOUND`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::BadFrame => "BAD_FRAME",
            Self::FrameTooLarge => "FRAME_TOO_LARGE",
            Self::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Self::AuthRequired => "AUTH_REQUIRED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::HandshakeTimeout => "HANDSHAKE_TIMEOUT",
            Self::AlreadyAuthenticated => "ALREADY_AUTHENTICATED",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::NotFound => "NOT_FOUND",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::TooManyConnections => "TOO_MANY_CONNECTIONS",
            Self::IdleTimeout => "IDLE_TIMEOUT",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::Muted => "MUTED",
            Self::Blocked => "BLOCKED",
            Self::WindowClosed => "WINDOW_CLOSED",
            Self::Banned => "BANNED",
            Self::SlowMode => "SLOW_MODE",
            Self::ContentRejected => "CONTENT_REJECTED",
            Self::Conflict => "CONFLICT",
            Self::Unknown(_) => "UNKNOWN",
        }
    }

    /// A definite rejection of a send or a message operation: nothing was stored, and
    /// retrying the same request cannot succeed (a muted sender must wait to be unmuted; a
    /// full group must shrink first; a block must be lifted; a closed recall window never
    /// opens again: none is worth retrying automatically).
    pub fn is_definite_rejection(self) -> bool {
        matches!(
            self,
            Self::InvalidArgument
                | Self::MessageTooLarge
                | Self::NotFound
                | Self::Forbidden
                | Self::AlreadyExists
                | Self::LimitExceeded
                | Self::Muted
                | Self::Blocked
                | Self::WindowClosed
                | Self::Banned
                | Self::ContentRejected
                | Self::Conflict
        )
    }

    /// A transient failure: the same request may be retried (with the same client message id).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::RateLimited | Self::Internal)
    }

    /// Fatal for the token in use: reconnecting with the same token cannot succeed.
    pub fn is_fatal_for_token(self) -> bool {
        matches!(
            self,
            Self::Unauthenticated | Self::TokenExpired | Self::UnsupportedVersion
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(code) => write!(f, "UNKNOWN({code})"),
            known => f.write_str(known.name()),
        }
    }
}

/// Why an SDK call failed, or what went wrong on the connection (see
/// [`Event::Error`](crate::Event::Error)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration is invalid (URL, certificates, settings).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The server answered with an error. For a send, a definite rejection means the message
    /// was not stored.
    #[error("rejected by the server ({code}): {message}")]
    Rejected {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
        /// When a retry can succeed, if the server says (for
        /// [`ErrorCode::RateLimited`] and [`ErrorCode::SlowMode`]).
        retry_after: Option<Duration>,
    },
    /// The connection could not be established or failed (I/O, TLS, WebSocket).
    #[error("connection failed: {0}")]
    Connection(String),
    /// The token provider returned an error.
    #[error("token provider failed: {0}")]
    Token(String),
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server asked this client to go away and not to reconnect.
    #[error("the server asked the client not to reconnect: {reason}")]
    GoneAway {
        /// The reason the server gave.
        reason: String,
    },
    /// The request or send did not complete in the configured time. For a send, the outcome
    /// is unknown: the message may still have been stored (it then arrives through sync).
    #[error("timed out")]
    Timeout,
    /// The connection was lost while a request that changes state (a group operation) was
    /// in flight: the server may or may not have applied it. Such requests are not written
    /// again on the next connection, because applying them twice is not harmless; look at
    /// the state (e.g. [`Client::group`](crate::Client::group)) and decide.
    #[error(
        "the connection was lost before the answer; the request may or may not have been applied"
    )]
    Interrupted,
    /// The client was closed (by [`Client::close`](crate::Client::close), or because every
    /// [`Client`](crate::Client) handle was dropped, or after a fatal error).
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    /// The server's error code, if this error came from the server.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// When a retry can succeed, if the server said (a rate limit, slow mode).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn rejected(e: &pb::Error) -> Self {
        Self::Rejected {
            code: ErrorCode::from_wire(e.code),
            message: e.message.clone(),
            retry_after: (e.retry_after_ms > 0).then(|| Duration::from_millis(e.retry_after_ms)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_map_and_classify() {
        assert_eq!(
            ErrorCode::from_wire(pb::ErrorCode::NotFound as i32),
            ErrorCode::NotFound
        );
        assert_eq!(ErrorCode::from_wire(0), ErrorCode::Unknown(0));
        assert_eq!(ErrorCode::from_wire(999), ErrorCode::Unknown(999));
        assert_eq!(ErrorCode::Unknown(999).to_string(), "UNKNOWN(999)");
        assert_eq!(ErrorCode::TokenExpired.to_string(), "TOKEN_EXPIRED");
        assert!(ErrorCode::Forbidden.is_definite_rejection());
        assert!(ErrorCode::RateLimited.is_retryable());
        assert!(!ErrorCode::RateLimited.is_definite_rejection());
        assert!(ErrorCode::UnsupportedVersion.is_fatal_for_token());
        assert_eq!(ErrorCode::from_wire(20), ErrorCode::Muted);
        assert!(ErrorCode::Muted.is_definite_rejection());
        assert_eq!(ErrorCode::LimitExceeded.to_string(), "LIMIT_EXCEEDED");
        assert_eq!(ErrorCode::from_wire(21), ErrorCode::Blocked);
        assert_eq!(ErrorCode::WindowClosed.to_string(), "WINDOW_CLOSED");
        assert!(ErrorCode::Blocked.is_definite_rejection());
        assert!(ErrorCode::WindowClosed.is_definite_rejection());
        // Every named wire code maps to a named SDK code.
        for code in 1..=24 {
            assert!(!matches!(ErrorCode::from_wire(code), ErrorCode::Unknown(_)));
        }
        assert_eq!(ErrorCode::from_wire(24), ErrorCode::SlowMode);
        let slow = ClientError::rejected(&pb::Error {
            code: pb::ErrorCode::SlowMode as i32,
            message: "wait".into(),
            retry_after_ms: 1500,
        });
        assert_eq!(slow.retry_after(), Some(Duration::from_millis(1500)));
        let plain = ClientError::rejected(&pb::Error {
            code: pb::ErrorCode::Forbidden as i32,
            message: String::new(),
            retry_after_ms: 0,
        });
        assert_eq!(plain.retry_after(), None);
    }
}
