//! Live-room vocabulary.

/// How a live-room message is delivered.
///
/// Ordered from most to least important: under overload, `Low` is dropped first, then
/// `Normal` is sampled; `High` is never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Reliable: numbered by the room's `seq`, kept in the room's short log, retransmitted
    /// until acknowledged. Gifts, admin notices, system commands.
    High,
    /// Chat.
    Normal,
    /// Likes, bullet comments.
    Low,
}

impl Priority {
    /// Stable numeric code, shared with the wire format (0 is "the sender's default").
    pub fn code(self) -> i32 {
        match self {
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
        }
    }

    /// The priority for a wire code; `None` for 0 (default) and unknown codes.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            1 => Some(Self::High),
            2 => Some(Self::Normal),
            3 => Some(Self::Low),
            _ => None,
        }
    }

    /// Lower-case name, for logs, metrics labels and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for p in [Priority::High, Priority::Normal, Priority::Low] {
            assert_eq!(Priority::from_code(p.code()), Some(p));
        }
        assert_eq!(Priority::from_code(0), None);
        assert!(Priority::High < Priority::Low);
    }
}
