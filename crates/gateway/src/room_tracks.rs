//! A connection's live rooms: which it is in, and how far it has acknowledged each room's
//! reliable messages.
//!
//! Reliable (high-priority) messages reach a connection in the room's batches; the client
//! acknowledges them cumulatively (`RoomAck`). A message is sent again only when the
//! connection has had it long enough to answer and has not: the clock starts when the
//! message is *written* to this connection (a message still queued, or in an open batching
//! window, is in transit, not lost). A batch dropped because the connection's queue was
//! full shows up as the room being ahead of what was written once the queue has drained.
//! Each retransmission without progress doubles the wait (up to 8×), so a client that is
//! slow to read is not buried under copies of what it has not read yet.

use std::collections::HashMap;
use std::sync::Arc;

use magpie_service::{Room, RoomEntry, RoomJoined};
use magpie_types::{RoomId, Seq};
use parking_lot::Mutex;

/// Most doublings of the retransmission wait.
const MAX_BACKOFF: u32 = 3;

#[derive(Debug)]
struct Track {
    room: Arc<Room>,
    /// The client has every reliable message up to here.
    acked: Seq,
    /// The highest reliable seq written to this connection.
    written: Seq,
    /// Since when the connection has been behind without progress (ms), if it is.
    behind_since: Option<u64>,
    /// Retransmissions since the ack last moved.
    backoff: u32,
}

/// The rooms of one connection. Shared between the connection loop and its room requests.
/// Allocated on the connection's first room request ([`JoinedRooms::shared`]): most
/// connections never join a room, and an idle one should hold nothing for rooms.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinedRooms(Option<Arc<Mutex<HashMap<RoomId, Track>>>>);

type Tracks = HashMap<RoomId, Track>;

impl JoinedRooms {
    /// A handle sharing this connection's rooms, created if this is the first.
    pub(crate) fn shared(&mut self) -> JoinedRooms {
        self.0.get_or_insert_with(Arc::default);
        self.clone()
    }

    /// Runs `f` on the tracks, if this connection has any room state.
    fn with<R>(&self, f: impl FnOnce(&mut Tracks) -> R) -> Option<R> {
        self.0.as_ref().map(|m| f(&mut m.lock()))
    }

    /// Records a join: the client has everything up to `joined.acked`, and the reply
    /// carries the `missed` messages after it.
    pub(crate) fn joined(&self, joined: &RoomJoined, now_ms: u64) {
        let written = joined
            .missed
            .iter()
            .map(|e| e.seq)
            .max()
            .unwrap_or(0)
            .max(joined.acked);
        let Some(map) = &self.0 else {
            // Requests get a handle from `shared`, which always has the map.
            debug_assert!(false, "a room joined through an unshared handle");
            return;
        };
        map.lock().insert(
            joined.room.id.clone(),
            Track {
                room: joined.room.clone(),
                acked: joined.acked,
                written,
                behind_since: (written > joined.acked).then_some(now_ms),
                backoff: 0,
            },
        );
    }

    /// Forgets a room (left, kicked, banned, closed).
    pub(crate) fn left(&self, room: &RoomId) {
        self.with(|t| t.remove(room));
    }

    /// Whether the connection is in any room.
    pub(crate) fn is_empty(&self) -> bool {
        self.with(|t| t.is_empty()).unwrap_or(true)
    }

    /// A batch whose highest reliable seq is `seq` was written to the connection.
    pub(crate) fn wrote(&self, room: &RoomId, seq: Seq, now_ms: u64) {
        self.with(|tracks| {
            if let Some(t) = tracks.get_mut(room)
                && seq > t.written
            {
                t.written = seq;
                if t.behind_since.is_none() && t.acked < seq {
                    t.behind_since = Some(now_ms);
                }
            }
        });
    }

    /// The client has every reliable message of `room` up to `seq`.
    pub(crate) fn on_ack(&self, room: &RoomId, seq: Seq, now_ms: u64) {
        self.with(|tracks| {
            if let Some(t) = tracks.get_mut(room) {
                let seq = seq.min(t.room.last_seq());
                if seq > t.acked {
                    t.acked = seq;
                    t.written = t.written.max(seq);
                    t.backoff = 0;
                    t.behind_since = (seq < t.written).then_some(now_ms);
                }
            }
        });
    }

    /// Reliable messages to write again now. `queue_empty`: nothing is waiting in the
    /// connection's outbound queue, so a room ahead of what was written means a batch was
    /// dropped. Rooms the connection was removed from (a kick whose notice did not fit its
    /// queue) are forgotten here.
    pub(crate) fn due(
        &self,
        conn_id: u64,
        now_ms: u64,
        retransmit_ms: u64,
        max: usize,
        queue_empty: bool,
    ) -> Vec<Arc<RoomEntry>> {
        let mut out = Vec::new();
        let Some(map) = &self.0 else {
            return out;
        };
        let mut tracks = map.lock();
        tracks.retain(|_, t| t.room.has_member(conn_id));
        for t in tracks.values_mut() {
            let target = if queue_empty {
                t.written.max(t.room.last_seq())
            } else {
                t.written
            };
            if target <= t.acked {
                t.behind_since = None;
                continue;
            }
            let wait = retransmit_ms << t.backoff.min(MAX_BACKOFF);
            match t.behind_since {
                None => t.behind_since = Some(now_ms),
                Some(since) if now_ms.saturating_sub(since) >= wait => {
                    let limit = usize::try_from(target - t.acked).unwrap_or(max).min(max);
                    let again = t.room.reliable_after(t.acked, limit, now_ms).items;
                    if let Some(last) = again.last() {
                        t.written = t.written.max(last.seq);
                    }
                    out.extend(again);
                    t.behind_since = Some(now_ms);
                    t.backoff += 1;
                }
                Some(_) => {}
            }
        }
        out
    }

    /// Takes the connection out of every room (it is closing).
    pub(crate) fn leave_all(&self, conn_id: u64) {
        self.with(|tracks| {
            for (_, t) in tracks.drain() {
                t.room.remove_member(conn_id);
            }
        });
    }
}
