//! The session registry: which devices of which users are online, and how to reach them.
//!
//! Each authenticated connection registers a [`SessionHandle`] holding the sending side of
//! its bounded outbound queue. Fan-out uses `try_send`: a connection whose queue is full is
//! not keeping up, so it is cancelled (it will sync what it missed when it reconnects)
//! instead of letting its backlog grow server memory without bound.
//!
//! The map is sharded by `(app, user)` hash so that fan-out to different users rarely
//! contends on one lock. A device that connects again replaces its earlier session, which is
//! told to go away.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::outbox::{self, TrySendError};
use bytes::Bytes;
use magpie_store::StoredMessage;
use magpie_types::{AppId, DeviceId, UserId};
use parking_lot::Mutex;

const SHARDS: usize = 32;

/// A message on its way to connections, shared by all of them.
#[derive(Debug)]
pub struct Delivery {
    /// The stored message.
    pub msg: StoredMessage,
    /// The encoded push frame, filled by the first connection that writes it and reused by
    /// every other one: a message is encoded once, however many devices receive it.
    pub encoded: OnceLock<Bytes>,
}

/// A read position that moved: to the reader's other devices (with their unread and badge)
/// and, for 1:1, to the other user as a read receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadNotice {
    /// The conversation.
    pub conv: magpie_types::ConvId,
    /// Who read.
    pub user: UserId,
    /// Up to where.
    pub read_seq: magpie_types::Seq,
    /// The conversation's unread afterwards (for the reader's devices; 0 for receipts).
    pub unread: u64,
    /// The reader's badge afterwards (0 for receipts).
    pub total_unread: u64,
}

/// Messages a user deleted for themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedNotice {
    /// The conversation.
    pub conv: magpie_types::ConvId,
    /// The seqs.
    pub seqs: Vec<magpie_types::Seq>,
}

/// Someone typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypingNotice {
    /// The conversation.
    pub conv: magpie_types::ConvId,
    /// Who.
    pub user: UserId,
    /// Started (true) or stopped.
    pub typing: bool,
}

/// A user's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceNotice {
    /// Who.
    pub user: UserId,
    /// Online now.
    pub online: bool,
    /// When last online, Unix ms (0: never, or online now).
    pub last_seen_ms: u64,
}

/// A change in the social graph, for the other user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialNotice {
    /// `friend_request`, `friend_accepted`, `friend_declined` or `friend_removed`.
    pub kind: &'static str,
    /// Who did it.
    pub user: UserId,
    /// The request's note.
    pub message: String,
}

/// An item in a connection's outbound queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Push a message (tracked until the device acknowledges it).
    Message(Arc<Delivery>),
    /// A read position moved (not tracked: a lost one is repaired by the next list sync).
    Read(Arc<ReadNotice>),
    /// Messages were deleted for the user (to their other devices).
    Deleted(Arc<DeletedNotice>),
    /// Someone is typing (ephemeral).
    Typing(Arc<TypingNotice>),
    /// A user went online or offline (ephemeral).
    Presence(Arc<PresenceNotice>),
    /// A friend request, acceptance, decline or removal.
    Social(Arc<SocialNotice>),
    /// Room messages of one batching window (best effort: dropped if the queue is full).
    Room(Arc<crate::rooms::RoomBatch>),
    /// The connection left a room, or something changed for it there.
    RoomNotice(Arc<crate::rooms::RoomNotice>),
    /// Tell the client to go away, then close.
    GoAway {
        /// Why.
        reason: String,
        /// Whether the client should reconnect.
        reconnect: bool,
    },
}

/// Identity of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCtx {
    /// The app.
    pub app: AppId,
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// Unique id of the connection within this process.
    pub conn_id: u64,
}

/// How the registry reaches one connection.
#[derive(Debug, Clone)]
struct SessionHandle {
    conn_id: u64,
    device: DeviceId,
    tx: outbox::Sender<Outbound>,
}

/// A user's online sessions on this node: almost always one, kept inline in the map's slot
/// (a `Vec` would be a heap block of four handles per online user).
type Handles = smallvec::SmallVec<[SessionHandle; 1]>;

type Shard = Mutex<HashMap<(AppId, UserId), Handles>>;

/// All online sessions of this node.
#[derive(Debug)]
pub struct SessionRegistry {
    shards: Vec<Shard>,
    hasher: RandomState,
    next_conn: AtomicU64,
    online: AtomicUsize,
}

impl Default for SessionRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            next_conn: AtomicU64::new(1),
            online: AtomicUsize::new(0),
        }
    }

    /// Registers a connection. If the same device was already online, its earlier session
    /// is told to go away and removed.
    pub fn register(
        &self,
        app: AppId,
        user: UserId,
        device: DeviceId,
        tx: outbox::Sender<Outbound>,
    ) -> SessionCtx {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let key = (app.clone(), user.clone());
        let replaced = {
            let mut shard = self.shard(&key).lock();
            let list = shard.entry(key).or_default();
            let replaced = list
                .iter()
                .position(|h| h.device == device)
                .map(|i| list.swap_remove(i));
            list.push(SessionHandle {
                conn_id,
                device: device.clone(),
                tx,
            });
            replaced
        };
        match replaced {
            Some(old) => {
                let sent = old.tx.try_send(Outbound::GoAway {
                    reason: "this device connected again elsewhere".into(),
                    reconnect: false,
                });
                if sent.is_err() {
                    old.tx.cancel();
                }
            }
            None => {
                self.online.fetch_add(1, Ordering::Relaxed);
                metrics::gauge!("magpie_connections").increment(1.0);
            }
        }
        SessionCtx {
            app,
            user,
            device,
            conn_id,
        }
    }

    /// Removes a connection (if it is still registered).
    pub fn unregister(&self, ctx: &SessionCtx) {
        let key = (ctx.app.clone(), ctx.user.clone());
        let mut shard = self.shard(&key).lock();
        if let Some(list) = shard.get_mut(&key) {
            let before = list.len();
            list.retain(|h| h.conn_id != ctx.conn_id);
            if list.len() < before {
                self.online.fetch_sub(1, Ordering::Relaxed);
                metrics::gauge!("magpie_connections").decrement(1.0);
            }
            if list.is_empty() {
                shard.remove(&key);
            }
        }
    }

    /// Queues `item` for every connection of `user` except `except` (the connection that
    /// caused it). Returns how many connections it was queued for. A connection whose
    /// queue is full is not keeping up: it is cancelled (it syncs when it reconnects).
    pub fn push_to_user(
        &self,
        app: &AppId,
        user: &UserId,
        except: Option<u64>,
        item: &Outbound,
    ) -> usize {
        self.push(app, user, except, item, false)
    }

    /// Queues an ephemeral `item` (typing, presence) like [`Self::push_to_user`], but drops
    /// it for a connection whose queue is full: such signals are not worth closing a
    /// connection over, and must never compete with messages.
    pub fn push_lossy(
        &self,
        app: &AppId,
        user: &UserId,
        except: Option<u64>,
        item: &Outbound,
    ) -> usize {
        self.push(app, user, except, item, true)
    }

    fn push(
        &self,
        app: &AppId,
        user: &UserId,
        except: Option<u64>,
        item: &Outbound,
        lossy: bool,
    ) -> usize {
        let key = (app.clone(), user.clone());
        let shard = self.shard(&key).lock();
        let Some(list) = shard.get(&key) else {
            return 0;
        };
        let mut n = 0;
        for h in list.iter().filter(|h| Some(h.conn_id) != except) {
            match h.tx.try_send(item.clone()) {
                Ok(()) => n += 1,
                Err(TrySendError::Full(_)) if lossy => {
                    metrics::counter!("magpie_signals_dropped_total").increment(1);
                }
                Err(TrySendError::Full(_)) => {
                    tracing::info!(
                        conn = h.conn_id,
                        "outbound queue full; closing slow connection"
                    );
                    metrics::counter!("magpie_slow_consumers_total").increment(1);
                    h.tx.cancel();
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
        n
    }

    /// Queues an ephemeral `item` for one connection (dropped if its queue is full).
    pub fn push_to_conn(&self, app: &AppId, user: &UserId, conn_id: u64, item: &Outbound) -> bool {
        let key = (app.clone(), user.clone());
        let shard = self.shard(&key).lock();
        shard
            .get(&key)
            .and_then(|list| list.iter().find(|h| h.conn_id == conn_id))
            .is_some_and(|h| h.tx.try_send(item.clone()).is_ok())
    }

    /// Tells every connection to go away (graceful drain).
    pub fn goaway_all(&self, reason: &str) {
        for shard in &self.shards {
            for list in shard.lock().values() {
                for h in list {
                    let item = Outbound::GoAway {
                        reason: reason.to_owned(),
                        reconnect: true,
                    };
                    if h.tx.try_send(item).is_err() {
                        h.tx.cancel();
                    }
                }
            }
        }
    }

    /// Delivers the gateway's heartbeat tick to every connection (see `outbox`).
    pub fn tick_all(&self) {
        for shard in &self.shards {
            for list in shard.lock().values() {
                for h in list {
                    h.tx.tick();
                }
            }
        }
    }

    /// Ends every connection at once, whatever is queued (the end of a graceful drain).
    pub fn cancel_all(&self) {
        for shard in &self.shards {
            for list in shard.lock().values() {
                for h in list {
                    h.tx.cancel();
                }
            }
        }
    }

    /// Tells the connections of `user` (only those of `device`, if given) to go away and
    /// not come back: the user was disabled, deleted or had their tokens revoked. A
    /// connection whose queue is full is cancelled at once. Returns how many were told.
    pub fn close_user(
        &self,
        app: &AppId,
        user: &UserId,
        device: Option<&DeviceId>,
        reason: &str,
    ) -> usize {
        let key = (app.clone(), user.clone());
        let shard = self.shard(&key).lock();
        let Some(list) = shard.get(&key) else {
            return 0;
        };
        let mut n = 0;
        for h in list
            .iter()
            .filter(|h| device.is_none_or(|d| &h.device == d))
        {
            let item = Outbound::GoAway {
                reason: reason.to_owned(),
                reconnect: false,
            };
            if h.tx.try_send(item).is_err() {
                h.tx.cancel();
            }
            n += 1;
        }
        n
    }

    /// The outbound queue of one connection, if it is registered.
    pub fn sender_of(&self, ctx: &SessionCtx) -> Option<outbox::Sender<Outbound>> {
        let key = (ctx.app.clone(), ctx.user.clone());
        let shard = self.shard(&key).lock();
        shard
            .get(&key)
            .and_then(|list| list.iter().find(|h| h.conn_id == ctx.conn_id))
            .map(|h| h.tx.clone())
    }

    /// Number of registered connections.
    pub fn online(&self) -> usize {
        self.online.load(Ordering::Relaxed)
    }

    /// Number of connections of one user.
    pub fn devices_of(&self, app: &AppId, user: &UserId) -> usize {
        let key = (app.clone(), user.clone());
        self.shard(&key).lock().get(&key).map_or(0, |l| l.len())
    }

    fn shard(&self, key: &(AppId, UserId)) -> &Shard {
        let h = self.hasher.hash_one(key);
        // Invariant: SHARDS > 0 and the modulo keeps the index in range.
        &self.shards[(h % SHARDS as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AppId, UserId) {
        (AppId::new("a").unwrap(), UserId::new("u").unwrap())
    }

    fn goaway() -> Outbound {
        Outbound::GoAway {
            reason: String::new(),
            reconnect: true,
        }
    }

    #[test]
    fn replace_and_unregister() {
        let r = SessionRegistry::new();
        let (app, user) = ids();
        let (tx1, mut rx1) = outbox::channel(4);
        let (tx2, _rx2) = outbox::channel(4);
        let dev = DeviceId::new("d").unwrap();
        let c1 = r.register(app.clone(), user.clone(), dev.clone(), tx1);
        let c2 = r.register(app.clone(), user.clone(), dev, tx2);
        assert!(matches!(
            rx1.try_recv(),
            Ok(Outbound::GoAway {
                reconnect: false,
                ..
            })
        ));
        assert_eq!(r.online(), 1);
        r.unregister(&c1); // stale: no effect
        assert_eq!(r.devices_of(&app, &user), 1);
        r.unregister(&c2);
        assert_eq!(r.online(), 0);
    }

    #[test]
    fn full_queue_cancels_the_connection() {
        let r = SessionRegistry::new();
        let (app, user) = ids();
        let (tx, mut rx) = outbox::channel(1);
        let dev = DeviceId::new("d").unwrap();
        let c = r.register(app.clone(), user.clone(), dev, tx);
        assert_eq!(r.push_to_user(&app, &user, None, &goaway()), 1);
        assert_eq!(r.push_to_user(&app, &user, None, &goaway()), 0);
        assert_eq!(
            rx.try_recv().err(),
            Some(outbox::TryRecvError::Disconnected),
            "the connection is cancelled"
        );
        assert_eq!(r.push_to_user(&app, &user, Some(c.conn_id), &goaway()), 0);
    }
}
