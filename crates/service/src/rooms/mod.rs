//! Live rooms: presence membership, priorities, the downstream budget and batching.
//!
//! A room is loaded from its stored record (profile, settings, admins) and the standings of
//! moderated users (bans, mutes) on first use and stays in memory. Membership is presence:
//! a *connection* is a member from `join` until it leaves, disconnects, or is kicked.
//!
//! Messages are never stored. An accepted message waits in the room's current batching
//! window; when the window closes ([`Room::flush`]) the room chooses once, for all its
//! connections, what the window delivers within the downstream budget
//! (`magpie_core::room::budget`), and queues the same [`RoomBatch`] to every connection:
//! the gateway encodes it once and writes the same bytes to all of them. High-priority
//! messages are numbered and kept in the room's short log (`magpie_core::room::log`);
//! each connection acknowledges them cumulatively and the gateway retransmits from the
//! log what a connection has not acknowledged (see [`Room::reliable_after`]).
//!
//! A full connection queue drops the batch for that connection only (counted), and never
//! closes the connection: best-effort messages are best effort, and the reliable ones come
//! again from the log.

pub mod ops;
pub mod send;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::outbox::{self, TrySendError};
use bytes::Bytes;
use magpie_core::room::budget::Budget;
use magpie_core::room::log::{After, LogBounds, ReliableLog};
use magpie_store::records::{self, RoomRecord, RoomUserRecord};
use magpie_store::{Store, Table};
use magpie_types::{AppId, ClientMsgId, Content, MsgId, Priority, RoomId, Seq, UserId};
use parking_lot::{Mutex, RwLock};

use crate::error::ServiceError;
use crate::sessions::Outbound;

/// Records read per page while loading a room's moderated users.
const LOAD_PAGE: usize = 4_096;

/// Server-wide live-room settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// Downstream budget per connection when neither the app nor the room sets one, msgs/s.
    pub default_budget_per_s: u32,
    /// How long a batching window stays open, ms.
    pub batch_window_ms: u64,
    /// Reliable messages kept per room.
    pub log_max_len: usize,
    /// Oldest reliable message kept, ms.
    pub log_max_age_ms: u64,
    /// Room-wide send limit when the room sets none, msgs/s.
    pub default_send_rate_per_s: u32,
    /// Highest send limit or budget a room may set, msgs/s.
    pub max_rate_per_s: u32,
    /// How long a connection may leave reliable messages unacknowledged before they are
    /// sent again, ms.
    pub retransmit_ms: u64,
    /// Most reliable messages returned by one join, fetch or retransmission.
    pub max_fetch: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            default_budget_per_s: 40,
            batch_window_ms: 50,
            log_max_len: 1_000,
            log_max_age_ms: 300_000,
            default_send_rate_per_s: 1_000,
            max_rate_per_s: 100_000,
            retransmit_ms: 1_000,
            max_fetch: 500,
        }
    }
}

/// A room message, shared by every connection it goes to.
#[derive(Debug)]
pub struct RoomEntry {
    /// The room.
    pub room: RoomId,
    /// The server's id.
    pub msg_id: MsgId,
    /// The sender.
    pub from: UserId,
    /// The content.
    pub content: Content,
    /// Its priority.
    pub priority: Priority,
    /// The reliable seq (high priority only; 0 otherwise).
    pub seq: Seq,
    /// Acceptance time, Unix ms.
    pub server_time_ms: u64,
    /// A one-message batch frame for retransmissions, encoded once by the first
    /// connection that needs it.
    pub encoded: OnceLock<Bytes>,
}

/// What one batching window delivers to every connection of a room.
#[derive(Debug)]
pub struct RoomBatch {
    /// The room.
    pub room: RoomId,
    /// The messages, in the order the room accepted them.
    pub messages: Vec<Arc<RoomEntry>>,
    /// The highest reliable seq in the batch (0: none).
    pub last_seq: Seq,
    /// The batch frame, encoded once by the first connection that writes it.
    pub encoded: OnceLock<Bytes>,
}

/// Why a connection left a room, or what changed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomNoticeKind {
    /// Removed by an admin; may join again.
    Kicked,
    /// Removed and refused from now on.
    Banned,
    /// The room was closed.
    Closed,
    /// The user was muted.
    Muted,
    /// The user was unmuted.
    Unmuted,
}

impl RoomNoticeKind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kicked => "kicked",
            Self::Banned => "banned",
            Self::Closed => "closed",
            Self::Muted => "muted",
            Self::Unmuted => "unmuted",
        }
    }

    /// Whether the connection is no longer in the room.
    pub fn removes(self) -> bool {
        matches!(self, Self::Kicked | Self::Banned | Self::Closed)
    }
}

/// A notice to a room member's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomNotice {
    /// The room.
    pub room: RoomId,
    /// What happened.
    pub kind: RoomNoticeKind,
    /// Who did it.
    pub by: UserId,
    /// For `Muted`: until when, Unix ms.
    pub until_ms: u64,
}

/// A room's settings with defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// Downstream budget per connection, msgs/s.
    pub budget_per_s: u32,
    /// Slow mode interval, ms (0: off).
    pub slow_mode_ms: u32,
    /// Room-wide send limit, msgs/s.
    pub send_rate_per_s: u32,
    /// Only admins may speak.
    pub mute_all: bool,
    /// Members may send high-priority messages.
    pub members_may_send_high: bool,
}

/// A room as its members and admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room.
    pub room: RoomId,
    /// Display name.
    pub name: String,
    /// The owner.
    pub owner: String,
    /// Admins other than the owner.
    pub admins: Vec<String>,
    /// Distinct users online in the room.
    pub online: u64,
    /// Connections in the room.
    pub connections: u64,
    /// The last reliable seq.
    pub last_seq: Seq,
    /// Closed.
    pub closed: bool,
    /// Effective settings.
    pub settings: RoomSettings,
}

/// A connection in a room.
#[derive(Debug)]
struct Member {
    user: UserId,
    tx: outbox::Sender<Outbound>,
}

/// The connections in a room, and the distinct users among them (for the online count and
/// the member list).
#[derive(Debug, Default)]
pub(crate) struct Members {
    conns: HashMap<u64, Member>,
    users: BTreeMap<UserId, u32>,
}

impl Members {
    fn insert(&mut self, conn_id: u64, member: Member) {
        let user = member.user.clone();
        if let Some(old) = self.conns.insert(conn_id, member) {
            self.release(&old.user);
        }
        *self.users.entry(user).or_insert(0) += 1;
    }

    fn remove(&mut self, conn_id: u64) -> Option<Member> {
        let m = self.conns.remove(&conn_id)?;
        self.release(&m.user);
        Some(m)
    }

    fn release(&mut self, user: &UserId) {
        if let Some(n) = self.users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(user);
            }
        }
    }
}

/// What the room's lock guards.
#[derive(Debug)]
pub(crate) struct RoomState {
    pub(crate) record: RoomRecord,
    /// Moderated users (bans, mutes) as stored.
    pub(crate) users: HashMap<UserId, RoomUserRecord>,
    pub(crate) log: ReliableLog<(UserId, ClientMsgId), Arc<RoomEntry>>,
    /// The open batching window.
    pub(crate) pending: Vec<Arc<RoomEntry>>,
    /// The highest reliable seq already handed to the connections (later ones wait in the
    /// open window, and a joining connection gets them from there, not from the log).
    pub(crate) flushed_seq: Seq,
    /// Whether a flush of the window is scheduled.
    pub(crate) flush_scheduled: bool,
    pub(crate) last_flush_ms: u64,
    pub(crate) budget: Budget,
    pub(crate) budget_rate: u32,
    pub(crate) rotation: usize,
    /// Room-wide send rate.
    pub(crate) send_bucket: Budget,
    pub(crate) send_rate: u32,
    /// Each sender's last accepted message, Unix ms (for slow mode).
    pub(crate) last_sent: HashMap<UserId, u64>,
}

/// One live room.
#[derive(Debug)]
pub struct Room {
    /// The app.
    pub app: AppId,
    /// The room.
    pub id: RoomId,
    pub(crate) state: Mutex<RoomState>,
    /// Serialises changes to the stored record (read, write, update the copy), so two
    /// admins' concurrent changes cannot undo each other.
    pub(crate) writes: tokio::sync::Mutex<()>,
    members: RwLock<Members>,
    last_seq: AtomicU64,
}

impl Room {
    /// The last reliable seq (cheap: read by every connection's retransmission check).
    pub fn last_seq(&self) -> Seq {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Up to `limit` reliable messages after `since`, and whether some after it were
    /// already evicted.
    pub fn reliable_after(&self, since: Seq, limit: usize, now_ms: u64) -> After<Arc<RoomEntry>> {
        self.state.lock().log.after(since, limit, now_ms)
    }

    /// Removes a connection (it left, or disconnected). Returns whether it was a member.
    pub fn remove_member(&self, conn_id: u64) -> bool {
        self.members.write().remove(conn_id).is_some()
    }

    /// Whether `conn_id` is in the room.
    pub fn has_member(&self, conn_id: u64) -> bool {
        self.members.read().conns.contains_key(&conn_id)
    }

    /// Distinct users and connections online.
    pub fn online(&self) -> (u64, u64) {
        let m = self.members.read();
        (m.users.len() as u64, m.conns.len() as u64)
    }

    /// A page of online users after `after`, in id order, and whether more follow.
    pub fn online_users(&self, after: Option<&UserId>, limit: usize) -> (Vec<UserId>, bool) {
        use std::ops::Bound;
        let m = self.members.read();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = m.users.range((start, Bound::Unbounded)).map(|(u, _)| u);
        let page: Vec<UserId> = it.by_ref().take(limit).cloned().collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// Queues `item` to every connection of the room (or only `user`'s), dropping it for a
    /// full queue. Returns the connections it was queued for and those that were full.
    pub(crate) fn broadcast(&self, item: &Outbound, user: Option<&UserId>) -> (usize, usize) {
        self.broadcast_locked(self.members.read(), item, user)
    }

    /// The members, read-locked: taken under the room's state lock by a flush, so that a
    /// join (which adds its connection under the state lock) is either wholly before the
    /// batch, and gets it, or wholly after, and got its messages from the log.
    pub(crate) fn members_read(&self) -> parking_lot::RwLockReadGuard<'_, Members> {
        self.members.read()
    }

    /// [`Self::broadcast`] with the members already read-locked.
    pub(crate) fn broadcast_locked(
        &self,
        m: parking_lot::RwLockReadGuard<'_, Members>,
        item: &Outbound,
        user: Option<&UserId>,
    ) -> (usize, usize) {
        let mut queued = 0;
        let mut full = 0;
        let mut closed = Vec::new();
        {
            for (&conn, member) in &m.conns {
                if user.is_some_and(|u| *u != member.user) {
                    continue;
                }
                match member.tx.try_send(item.clone()) {
                    Ok(()) => queued += 1,
                    Err(TrySendError::Full(_)) => full += 1,
                    Err(TrySendError::Closed(_)) => closed.push(conn),
                }
            }
        }
        drop(m);
        if !closed.is_empty() {
            let mut m = self.members.write();
            for conn in closed {
                m.remove(conn);
            }
        }
        (queued, full)
    }

    /// Removes every connection of `user` (or all, with `None`), telling each why.
    pub(crate) fn remove_user(&self, user: Option<&UserId>, notice: &Arc<RoomNotice>) -> usize {
        let removed: Vec<Member> = {
            let mut m = self.members.write();
            let conns: Vec<u64> = m
                .conns
                .iter()
                .filter(|(_, member)| user.is_none_or(|u| *u == member.user))
                .map(|(&c, _)| c)
                .collect();
            conns.into_iter().filter_map(|c| m.remove(c)).collect()
        };
        for member in &removed {
            let _ = member.tx.try_send(Outbound::RoomNotice(notice.clone()));
        }
        removed.len()
    }

    fn add_member(&self, conn_id: u64, user: UserId, tx: outbox::Sender<Outbound>) {
        self.members.write().insert(conn_id, Member { user, tx });
    }
}

/// Loaded rooms of every app.
#[derive(Debug, Default)]
pub struct RoomRegistry {
    rooms: Mutex<HashMap<(AppId, RoomId), Arc<Room>>>,
}

impl RoomRegistry {
    /// The room if loaded.
    pub fn loaded(&self, app: &AppId, room: &RoomId) -> Option<Arc<Room>> {
        self.rooms.lock().get(&(app.clone(), room.clone())).cloned()
    }

    /// The room, loading it from the store on first use; `None` if it does not exist.
    pub async fn get(
        &self,
        store: &dyn Store,
        config: &RoomConfig,
        app: &AppId,
        room: &RoomId,
        now_ms: u64,
    ) -> Result<Option<Arc<Room>>, ServiceError> {
        if let Some(r) = self.loaded(app, room) {
            return Ok(Some(r));
        }
        let Some(bytes) = store
            .get_record(app, Table::Rooms, &records::room_key(room))
            .await?
        else {
            return Ok(None);
        };
        let record: RoomRecord = records::decode(&bytes)?;
        let prefix = records::room_user_prefix(room);
        let mut users = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .scan_records(app, Table::RoomUsers, &prefix, after.as_deref(), LOAD_PAGE)
                .await?;
            let full = page.len() == LOAD_PAGE;
            for (key, value) in &page {
                users.insert(records::user_of_key(key)?, records::decode(value)?);
            }
            after = page.into_iter().last().map(|(k, _)| k);
            if !full {
                break;
            }
        }
        let fresh = Arc::new(new_room(app, room, record, users, config, now_ms));
        // Two loads may race; the first inserted wins and both callers use it.
        let mut rooms = self.rooms.lock();
        Ok(Some(
            rooms
                .entry((app.clone(), room.clone()))
                .or_insert(fresh)
                .clone(),
        ))
    }

    /// Registers a room just created (its record is stored).
    pub(crate) fn insert(&self, room: Arc<Room>) {
        self.rooms
            .lock()
            .insert((room.app.clone(), room.id.clone()), room);
    }
}

pub(crate) fn new_room(
    app: &AppId,
    room: &RoomId,
    record: RoomRecord,
    users: HashMap<UserId, RoomUserRecord>,
    config: &RoomConfig,
    now_ms: u64,
) -> Room {
    Room {
        app: app.clone(),
        id: room.clone(),
        state: Mutex::new(RoomState {
            record,
            users,
            log: ReliableLog::new(LogBounds {
                max_len: config.log_max_len,
                max_age_ms: config.log_max_age_ms,
            }),
            pending: Vec::new(),
            flushed_seq: 0,
            flush_scheduled: false,
            last_flush_ms: 0,
            budget: Budget::new(0, now_ms),
            budget_rate: 0,
            rotation: 0,
            send_bucket: Budget::new(0, now_ms),
            send_rate: 0,
            last_sent: HashMap::new(),
        }),
        writes: tokio::sync::Mutex::new(()),
        members: RwLock::new(Members::default()),
        last_seq: AtomicU64::new(0),
    }
}
