//! Validated identifiers.
//!
//! Every identifier that arrives from the network is parsed into one of these types once, at
//! the edge, so that the rest of the code never sees an empty, oversized or ambiguous name
//! ("parse, don't validate"). The allowed alphabet excludes `:` so that a 1:1 conversation id
//! (`p2p:alice:bob`) can never be forged by a user name that contains the separator.

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which kind of identifier.
        kind: &'static str,
    },
    /// The identifier is longer than allowed.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which kind of identifier.
        kind: &'static str,
        /// The maximum length in bytes.
        max: usize,
    },
    /// The identifier contains a character outside `[A-Za-z0-9_.@-]`.
    #[error("{kind} may only contain letters, digits, '_', '.', '@' and '-'")]
    BadChar {
        /// Which kind of identifier.
        kind: &'static str,
    },
    /// A conversation id that is not of a known form.
    #[error("malformed conversation id")]
    BadConversation,
}

/// Longest app, user or device id, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest client message id, in bytes.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 64;

fn check_name(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
    {
        return Err(IdError::BadChar { kind });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an identifier.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_name($kind, &s, $max)?;
                Ok(Self(s))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A tenant. Every key and query in Magpie is scoped by it.
    AppId, "app id", MAX_NAME_LEN
);
name_type!(
    /// A user, unique within an app.
    UserId, "user id", MAX_NAME_LEN
);
name_type!(
    /// A group, unique within an app; its conversation is `g:<id>`.
    GroupId, "group id", MAX_NAME_LEN
);
name_type!(
    /// A live room, unique within an app. Rooms have no stored log of chat: see
    /// [`crate::room`].
    RoomId, "room id", MAX_NAME_LEN
);
name_type!(
    /// One of a user's devices (a phone, a browser tab, a CLI).
    DeviceId, "device id", MAX_NAME_LEN
);
name_type!(
    /// The sender's own id for a message, the key of deduplication: a retried send with the
    /// same `(app, sender, client_msg_id)` returns the original ack.
    ClientMsgId, "client message id", MAX_CLIENT_MSG_ID_LEN
);

/// What kind of conversation a [`ConvId`] names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// A group conversation: `g:<group>`.
    Group {
        /// The group.
        id: GroupId,
    },
    /// A 1:1 conversation between two users (the pair is ordered: `low < high`).
    Direct {
        /// The lexicographically smaller user.
        low: UserId,
        /// The lexicographically larger user.
        high: UserId,
    },
}

/// A conversation: a totally ordered log of messages.
///
/// The string form is stable and goes on the wire and into storage keys: `p2p:<a>:<b>` for a
/// 1:1 conversation with `a < b`, so both users derive the same id without a lookup.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvId(String);

impl ConvId {
    /// The 1:1 conversation between two users (in either order). A user may talk to
    /// themselves ("notes to self"): `a == b` is allowed.
    pub fn direct(a: &UserId, b: &UserId) -> Self {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Self(format!("p2p:{low}:{high}"))
    }

    /// The conversation of a group.
    pub fn group(id: &GroupId) -> Self {
        Self(format!("g:{id}"))
    }

    /// The group of a group conversation.
    pub fn group_id(&self) -> Option<GroupId> {
        match self.kind() {
            ConvKind::Group { id } => Some(id),
            ConvKind::Direct { .. } => None,
        }
    }

    /// Whether this is a 1:1 conversation.
    pub fn is_direct(&self) -> bool {
        self.0.starts_with("p2p:")
    }

    /// Parses a conversation id received from the network.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Self::kind_of(s)?;
        Ok(Self(s.to_owned()))
    }

    /// What kind of conversation this is.
    pub fn kind(&self) -> ConvKind {
        // Invariant: a ConvId is only built by `direct` or `parse`, both of which produce a
        // well-formed id, so re-parsing cannot fail.
        Self::kind_of(&self.0).expect("ConvId is always well-formed")
    }

    /// Whether `user` is a party of this 1:1 conversation.
    pub fn has_party(&self, user: &UserId) -> bool {
        match self.kind() {
            ConvKind::Direct { low, high } => &low == user || &high == user,
            ConvKind::Group { .. } => false,
        }
    }

    /// For a 1:1 conversation, the other party as seen from `me`.
    pub fn peer_of(&self, me: &UserId) -> Option<UserId> {
        match self.kind() {
            ConvKind::Direct { low, high } if &low == me => Some(high),
            ConvKind::Direct { low, high } if &high == me => Some(low),
            ConvKind::Direct { .. } | ConvKind::Group { .. } => None,
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn kind_of(s: &str) -> Result<ConvKind, IdError> {
        let mut parts = s.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("p2p"), Some(a), Some(b), None) => {
                let low = UserId::new(a).map_err(|_| IdError::BadConversation)?;
                let high = UserId::new(b).map_err(|_| IdError::BadConversation)?;
                if low > high {
                    return Err(IdError::BadConversation);
                }
                Ok(ConvKind::Direct { low, high })
            }
            (Some("g"), Some(g), None, None) => {
                let id = GroupId::new(g).map_err(|_| IdError::BadConversation)?;
                Ok(ConvKind::Group { id })
            }
            _ => Err(IdError::BadConversation),
        }
    }
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConvId({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_validated() {
        assert!(UserId::new("alice").is_ok());
        assert_eq!(UserId::new(""), Err(IdError::Empty { kind: "user id" }));
        assert!(matches!(UserId::new("a:b"), Err(IdError::BadChar { .. })));
        assert!(matches!(
            UserId::new("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn direct_conversation_is_symmetric() {
        let a = UserId::new("bob").unwrap();
        let b = UserId::new("alice").unwrap();
        let c = ConvId::direct(&a, &b);
        assert_eq!(c, ConvId::direct(&b, &a));
        assert_eq!(c.as_str(), "p2p:alice:bob");
        assert_eq!(c.peer_of(&a), Some(b.clone()));
        assert!(c.has_party(&b));
        assert!(!c.has_party(&UserId::new("carol").unwrap()));
    }

    #[test]
    fn malformed_conversations_are_refused() {
        for s in [
            "",
            "p2p",
            "p2p:a",
            "p2p:b:a",
            "p2p:a:b:c",
            "grp:x",
            "g:",
            "g:a:b",
            "g:a b",
            "p2p::a",
        ] {
            assert_eq!(ConvId::parse(s), Err(IdError::BadConversation), "{s}");
        }
    }

    #[test]
    fn group_conversation_roundtrips() {
        let g = GroupId::new("team-1").unwrap();
        let c = ConvId::group(&g);
        assert_eq!(c.as_str(), "g:team-1");
        assert_eq!(ConvId::parse("g:team-1").unwrap(), c);
        assert_eq!(c.group_id(), Some(g));
        assert!(!c.is_direct());
        assert!(!c.has_party(&UserId::new("team-1").unwrap()));
        assert_eq!(c.peer_of(&UserId::new("a").unwrap()), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = ConvId::parse(&s);
            let _ = UserId::new(s);
        }

        #[test]
        fn direct_roundtrips(a in "[a-z0-9_.@-]{1,64}", b in "[a-z0-9_.@-]{1,64}") {
            let (a, b) = (UserId::new(a).unwrap(), UserId::new(b).unwrap());
            let c = ConvId::direct(&a, &b);
            prop_assert_eq!(ConvId::parse(c.as_str()).unwrap(), c.clone());
            prop_assert!(c.has_party(&a) && c.has_party(&b));
        }
    }
}
