//! Ephemeral signals: typing indicators and presence. Never stored, never acknowledged,
//! pushed with [`crate::SessionRegistry::push_lossy`] so a busy connection drops them rather
//! than being closed, and they never compete with messages for a queue slot's guarantee.
//!
//! - Typing: rate-limited per user; sent on to the other party of a 1:1 chat, or to the
//!   online members of a group of at most [`TYPING_MAX_GROUP`] members (in a larger group
//!   "someone is typing" is noise, and the fan-out would cost more than the message).
//! - Presence: a user is online while at least one of their devices is connected. The
//!   change is pushed to the user's friends and to connections that subscribed to them.
//!   "Last seen" is kept in memory on this node (it resets on restart).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use magpie_core::ErrorKind;
use magpie_store::Table;
use magpie_types::{AppId, ConvId, ConvKind, UserId};
use parking_lot::Mutex;

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{Outbound, PresenceNotice, SessionCtx, TypingNotice};

/// Largest group whose members see typing indicators.
pub const TYPING_MAX_GROUP: u32 = 500;
/// Typing signals per second one user may send.
const TYPING_PER_SECOND: u32 = 5;
/// Most users one connection may watch.
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 1_000;

/// Typing limits and presence subscriptions of this node.
pub struct Signals {
    typing: DefaultKeyedRateLimiter<(AppId, UserId)>,
    /// Watched user → watching connections (conn id → watcher).
    watchers: Mutex<HashMap<(AppId, UserId), HashMap<u64, UserId>>>,
    /// Connection → the users it watches.
    by_conn: Mutex<HashMap<u64, (AppId, Vec<UserId>)>>,
    last_seen: Mutex<HashMap<(AppId, UserId), u64>>,
}

impl Default for Signals {
    fn default() -> Self {
        let rate = NonZeroU32::new(TYPING_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Self {
            typing: RateLimiter::keyed(Quota::per_second(rate)),
            watchers: Mutex::default(),
            by_conn: Mutex::default(),
            last_seen: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}

impl Signals {
    /// Forgets idle rate-limiter keys.
    pub(crate) fn housekeeping(&self) {
        self.typing.retain_recent();
        self.typing.shrink_to_fit();
    }
}

impl Service {
    /// Tells the other members of `conv` that the user is (or stopped) typing.
    pub async fn typing(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        typing: bool,
    ) -> Result<(), ServiceError> {
        if self
            .signals
            .typing
            .check_key(&(who.app.clone(), who.user.clone()))
            .is_err()
        {
            return Err(ServiceError::new(
                ErrorKind::RateLimited,
                "typing too often",
            ));
        }
        let notice = Outbound::Typing(Arc::new(TypingNotice {
            conv: conv.clone(),
            user: who.user.clone(),
            typing,
        }));
        match conv.kind() {
            ConvKind::Direct { .. } => {
                let peer = conv.peer_of(&who.user).ok_or_else(|| {
                    ServiceError::new(ErrorKind::Forbidden, "not a member of this conversation")
                })?;
                if peer != who.user {
                    self.sessions.push_lossy(&who.app, &peer, None, &notice);
                }
            }
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, &who.app, &id).await?;
                let s = guard
                    .as_ref()
                    .filter(|s| s.active(&who.user).is_some())
                    .ok_or_else(|| {
                        ServiceError::new(ErrorKind::Forbidden, "not a member of this group")
                    })?;
                if s.record.member_count <= TYPING_MAX_GROUP {
                    for (u, _) in s.active_members().filter(|(u, _)| *u != &who.user) {
                        self.sessions.push_lossy(&who.app, u, None, &notice);
                    }
                }
            }
        }
        metrics::counter!("magpie_typing_signals_total").increment(1);
        Ok(())
    }

    /// Replaces this connection's presence subscription; returns the users' presence now.
    pub fn subscribe_presence(
        &self,
        who: &SessionCtx,
        users: Vec<UserId>,
    ) -> Result<Vec<PresenceNotice>, ServiceError> {
        if users.len() > MAX_PRESENCE_SUBSCRIPTIONS {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("at most {MAX_PRESENCE_SUBSCRIPTIONS} users per subscription"),
            ));
        }
        self.unsubscribe_presence(who.conn_id);
        {
            let mut watchers = self.signals.watchers.lock();
            for u in &users {
                watchers
                    .entry((who.app.clone(), u.clone()))
                    .or_default()
                    .insert(who.conn_id, who.user.clone());
            }
        }
        self.signals
            .by_conn
            .lock()
            .insert(who.conn_id, (who.app.clone(), users.clone()));
        Ok(users
            .iter()
            .map(|u| self.presence_of(&who.app, u))
            .collect())
    }

    /// A user's presence now.
    pub fn presence_of(&self, app: &AppId, user: &UserId) -> PresenceNotice {
        let online = self.sessions.devices_of(app, user) > 0;
        let last_seen_ms = if online {
            0
        } else {
            self.signals
                .last_seen
                .lock()
                .get(&(app.clone(), user.clone()))
                .copied()
                .unwrap_or(0)
        };
        PresenceNotice {
            user: user.clone(),
            online,
            last_seen_ms,
        }
    }

    /// A connection is up: if it is the user's first device, tell friends and watchers.
    pub async fn connected(&self, who: &SessionCtx) {
        if self.sessions.devices_of(&who.app, &who.user) == 1 {
            self.broadcast_presence(&who.app, &who.user).await;
            self.emit_presence(who, "user.online");
        }
    }

    /// A connection is gone: drop its subscription; if it was the user's last device,
    /// tell friends and watchers.
    pub async fn disconnected(&self, who: &SessionCtx) {
        self.unsubscribe_presence(who.conn_id);
        if self.sessions.devices_of(&who.app, &who.user) == 0 {
            self.signals
                .last_seen
                .lock()
                .insert((who.app.clone(), who.user.clone()), self.now_ms());
            self.broadcast_presence(&who.app, &who.user).await;
            self.emit_presence(who, "user.offline");
        }
    }

    fn emit_presence(&self, who: &SessionCtx, kind: &'static str) {
        self.emit(&who.app, kind, || {
            let id = self.next_id(self.now_ms());
            (
                format!("{kind}:{id}"),
                serde_json::json!({ "user": who.user.as_str(), "device": who.device.as_str() }),
            )
        });
    }

    fn unsubscribe_presence(&self, conn_id: u64) {
        let Some((app, users)) = self.signals.by_conn.lock().remove(&conn_id) else {
            return;
        };
        let mut watchers = self.signals.watchers.lock();
        for u in users {
            let key = (app.clone(), u);
            if let Some(w) = watchers.get_mut(&key) {
                w.remove(&conn_id);
                if w.is_empty() {
                    watchers.remove(&key);
                }
            }
        }
    }

    async fn broadcast_presence(&self, app: &AppId, user: &UserId) {
        let item = Outbound::Presence(Arc::new(self.presence_of(app, user)));
        let watchers: Vec<(u64, UserId)> = self
            .signals
            .watchers
            .lock()
            .get(&(app.clone(), user.clone()))
            .map(|w| w.iter().map(|(c, u)| (*c, u.clone())).collect())
            .unwrap_or_default();
        for (conn, watcher) in watchers {
            self.sessions.push_to_conn(app, &watcher, conn, &item);
        }
        // An app without friendships (most, and every one until its first) has nobody to
        // tell: no store read on every connect and disconnect.
        let friends = match self.table_is_empty(app, Table::Friends).await {
            Ok(true) => Ok(Vec::new()),
            Ok(false) => self.pairs_of(app, Table::Friends, user).await,
            Err(e) => Err(e),
        };
        match friends {
            Ok(friends) => {
                for f in friends {
                    self.sessions.push_lossy(app, &f, None, &item);
                }
            }
            Err(e) => tracing::debug!(error = %e, "presence: friends not read"),
        }
    }
}
