//! The error vocabulary shared by the service and the edges.

/// What went wrong, in terms a client can act on. Each maps to one wire error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A field is missing or malformed.
    InvalidArgument,
    /// Content exceeds the message size limit.
    MessageTooLarge,
    /// The target does not exist in this app.
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// Too many requests.
    RateLimited,
    /// The thing to create exists already.
    AlreadyExists,
    /// A limit other than the message size was hit (e.g. the group is full).
    LimitExceeded,
    /// The sender is muted.
    Muted,
    /// The recipient blocked the sender, or the app lets only friends message each other.
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
    /// Temporarily unable to serve; retry (with the same client_msg_id for sends).
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// Whether the request definitely did not take effect and retrying it unchanged cannot
    /// succeed.
    pub fn is_definite(self) -> bool {
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
}
