//! What a conversation log entry is.
//!
//! A conversation's log is append-only and carries more than chat messages: membership and
//! group changes are entries too, so that every member's device learns them in the same
//! order as the messages around them. Only [`EntryKind::Message`] entries count as unread.

/// The kind of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EntryKind {
    /// A message a user sent.
    #[default]
    Message,
    /// A membership or group change (join, leave, kick, rename, ...); the content is TEXT
    /// holding a JSON object with at least `action`.
    GroupEvent,
    /// The message at the entry's target seq was recalled.
    Recall,
    /// The message at the entry's target seq was edited; the content is the new content.
    Edit,
    /// A reaction to the message at the entry's target seq: TEXT content holding the emoji,
    /// metadata `op` = `add` or `remove`.
    Reaction,
}

impl EntryKind {
    /// Stable numeric code, shared by the wire format and storage.
    pub fn code(self) -> u8 {
        match self {
            Self::Message => 0,
            Self::GroupEvent => 1,
            Self::Recall => 2,
            Self::Edit => 3,
            Self::Reaction => 4,
        }
    }

    /// The kind for a numeric code, if it is known.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::Message),
            1 => Some(Self::GroupEvent),
            2 => Some(Self::Recall),
            3 => Some(Self::Edit),
            4 => Some(Self::Reaction),
            _ => None,
        }
    }

    /// Whether entries of this kind count towards unread.
    pub fn counts_as_unread(self) -> bool {
        matches!(self, Self::Message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip() {
        for k in [
            EntryKind::Message,
            EntryKind::GroupEvent,
            EntryKind::Recall,
            EntryKind::Edit,
            EntryKind::Reaction,
        ] {
            assert_eq!(EntryKind::from_code(u32::from(k.code())), Some(k));
        }
        assert_eq!(EntryKind::from_code(9), None);
        assert!(EntryKind::Message.counts_as_unread());
        assert!(!EntryKind::GroupEvent.counts_as_unread());
        assert!(!EntryKind::Recall.counts_as_unread() && !EntryKind::Reaction.counts_as_unread());
    }
}
