//! Who may send what in a live room, and the upstream controls.

use magpie_types::Priority;

/// Everything the send check needs to know, gathered by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendContext {
    /// The sender is the room's owner or an admin.
    pub is_admin: bool,
    /// The priority asked for (`None`: the sender's default).
    pub requested: Option<Priority>,
    /// The room lets members send high-priority messages (e.g. gifts).
    pub members_may_send_high: bool,
    /// Only admins may speak.
    pub mute_all: bool,
    /// The sender is muted until this Unix ms (0: not muted).
    pub muted_until_ms: u64,
    /// Slow mode: minimum ms between two messages of one sender (0: off).
    pub slow_mode_ms: u64,
    /// When the sender's last accepted message was, Unix ms (`None`: never).
    pub last_sent_ms: Option<u64>,
    /// Now, Unix ms.
    pub now_ms: u64,
}

/// Why a room send is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender is muted (or everyone is and the sender is no admin).
    #[error("you are muted in this room")]
    Muted {
        /// Until when (0: while mute-all lasts).
        until_ms: u64,
    },
    /// Slow mode: the sender must wait.
    #[error("slow mode: wait before sending again")]
    SlowMode {
        /// How long, ms.
        retry_after_ms: u64,
    },
    /// The sender may not use this priority.
    #[error("only room admins may send high-priority messages here")]
    Priority,
}

/// The priority the message is sent with, or why it is refused. Admins are exempt from
/// mute-all and slow mode; an explicit mute applies to everyone.
pub fn check_send(c: &SendContext) -> Result<Priority, Refusal> {
    if c.muted_until_ms > c.now_ms {
        return Err(Refusal::Muted {
            until_ms: c.muted_until_ms,
        });
    }
    if c.mute_all && !c.is_admin {
        return Err(Refusal::Muted { until_ms: 0 });
    }
    let priority = match c.requested {
        None if c.is_admin => Priority::High,
        None => Priority::Normal,
        Some(Priority::High) if !(c.is_admin || c.members_may_send_high) => {
            return Err(Refusal::Priority);
        }
        Some(p) => p,
    };
    if c.slow_mode_ms > 0
        && !c.is_admin
        && let Some(last) = c.last_sent_ms
    {
        let next = last.saturating_add(c.slow_mode_ms);
        if next > c.now_ms {
            return Err(Refusal::SlowMode {
                retry_after_ms: next - c.now_ms,
            });
        }
    }
    Ok(priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> SendContext {
        SendContext {
            is_admin: false,
            requested: None,
            members_may_send_high: false,
            mute_all: false,
            muted_until_ms: 0,
            slow_mode_ms: 0,
            last_sent_ms: None,
            now_ms: 1_000,
        }
    }

    #[test]
    fn defaults_follow_the_role() {
        assert_eq!(check_send(&member()), Ok(Priority::Normal));
        let admin = SendContext {
            is_admin: true,
            ..member()
        };
        assert_eq!(check_send(&admin), Ok(Priority::High));
        let low = SendContext {
            requested: Some(Priority::Low),
            ..admin
        };
        assert_eq!(check_send(&low), Ok(Priority::Low));
    }

    #[test]
    fn members_need_permission_for_high() {
        let high = SendContext {
            requested: Some(Priority::High),
            ..member()
        };
        assert_eq!(check_send(&high), Err(Refusal::Priority));
        let allowed = SendContext {
            members_may_send_high: true,
            ..high
        };
        assert_eq!(check_send(&allowed), Ok(Priority::High));
    }

    #[test]
    fn mutes_and_mute_all() {
        let muted = SendContext {
            muted_until_ms: 2_000,
            ..member()
        };
        assert_eq!(check_send(&muted), Err(Refusal::Muted { until_ms: 2_000 }));
        let expired = SendContext {
            now_ms: 2_000,
            ..muted
        };
        assert!(check_send(&expired).is_ok());
        let all = SendContext {
            mute_all: true,
            ..member()
        };
        assert_eq!(check_send(&all), Err(Refusal::Muted { until_ms: 0 }));
        let admin = SendContext {
            is_admin: true,
            ..all
        };
        assert!(check_send(&admin).is_ok());
    }

    #[test]
    fn slow_mode_spaces_a_members_messages() {
        let slow = SendContext {
            slow_mode_ms: 500,
            last_sent_ms: Some(800),
            ..member()
        };
        assert_eq!(
            check_send(&slow),
            Err(Refusal::SlowMode {
                retry_after_ms: 300
            })
        );
        let later = SendContext {
            now_ms: 1_300,
            ..slow
        };
        assert!(check_send(&later).is_ok());
        let admin = SendContext {
            is_admin: true,
            ..slow
        };
        assert!(check_send(&admin).is_ok());
    }
}
