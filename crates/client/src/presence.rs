//! Presence: who is online ([`UserPresence`]), and the connection's subscription.
//!
//! The server keeps a presence subscription per connection, so a reconnect silently loses
//! it. `PresenceSubscription` (sans-I/O) remembers the last subscription the server accepted
//! and says what to send again on every new connection, so that the application subscribes
//! once per client rather than once per connection.

use magpie_proto::pb;
use magpie_types::{Millis, UserId};

/// Whether a user is online.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserPresence {
    /// The user.
    pub user: UserId,
    /// Connected now (on any device).
    pub online: bool,
    /// When the user was last online (Unix milliseconds); `None` if never, or online now.
    pub last_seen: Option<Millis>,
}

impl UserPresence {
    pub(crate) fn from_pb(p: pb::UserPresence) -> Result<Self, String> {
        Ok(Self {
            user: UserId::new(p.user.as_str()).map_err(|e| format!("user {:?}: {e}", p.user))?,
            online: p.online,
            last_seen: (p.last_seen_ms != 0).then_some(p.last_seen_ms),
        })
    }
}

/// The users of a presence list; a malformed entry costs itself, not the list.
pub(crate) fn presence_list(list: pb::PresenceList) -> Vec<UserPresence> {
    list.users
        .into_iter()
        .filter_map(|p| {
            UserPresence::from_pb(p)
                .inspect_err(|e| tracing::warn!("ignoring a presence entry: {e}"))
                .ok()
        })
        .collect()
}

/// The subscription to re-send on every new connection: the last one the server accepted.
///
/// Recording only accepted subscriptions keeps the re-sent one equal to what the old
/// connection had (a refused subscription left it unchanged on the server). A subscription
/// still waiting in the outbox on a reconnect is written after the re-sent one, so the newest
/// wins on the server as it would have without the reconnect.
#[derive(Debug, Default)]
pub(crate) struct PresenceSubscription {
    users: Vec<String>,
}

impl PresenceSubscription {
    /// The server accepted `request` (it replaces the previous subscription).
    pub(crate) fn accepted(&mut self, request: &pb::SubscribePresence) {
        self.users.clone_from(&request.users);
    }

    /// What to send on a new connection; `None` when there is no subscription (a new
    /// connection starts with none).
    pub(crate) fn on_connect(&self) -> Option<pb::SubscribePresence> {
        (!self.users.is_empty()).then(|| pb::SubscribePresence {
            users: self.users.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn subscribe(users: &[&str]) -> pb::SubscribePresence {
        pb::SubscribePresence {
            users: users.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    #[test]
    fn the_last_accepted_subscription_is_sent_again() {
        let mut s = PresenceSubscription::default();
        assert_eq!(
            s.on_connect(),
            None,
            "nothing to re-send before subscribing"
        );
        s.accepted(&subscribe(&["bob", "carol"]));
        assert_eq!(s.on_connect(), Some(subscribe(&["bob", "carol"])));
        assert_eq!(s.on_connect(), s.on_connect(), "on every connection");
        s.accepted(&subscribe(&["dave"]));
        assert_eq!(s.on_connect(), Some(subscribe(&["dave"])), "replaced");
        s.accepted(&subscribe(&[]));
        assert_eq!(s.on_connect(), None, "unsubscribed");
    }

    #[test]
    fn presence_parses_and_drops_malformed_entries() {
        let list = pb::PresenceList {
            users: vec![
                pb::UserPresence {
                    user: "bob".into(),
                    online: false,
                    last_seen_ms: 42,
                },
                pb::UserPresence {
                    user: String::new(),
                    online: true,
                    last_seen_ms: 0,
                },
                pb::UserPresence {
                    user: "carol".into(),
                    online: true,
                    last_seen_ms: 0,
                },
            ],
        };
        let users = presence_list(list);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].last_seen, Some(42));
        assert!(users[1].online);
        assert_eq!(users[1].last_seen, None);
    }
}
