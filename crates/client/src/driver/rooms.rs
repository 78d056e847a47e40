//! Live rooms on the connection task: the rooms the application joined, each with its HIGH
//! seq ordering rule (`room_order`); batches and notices into events; cumulative acks;
//! fetches for gaps the server's retransmissions left open; and joining every room again,
//! from the seq it has, on every new connection.
//!
//! Joins are not outbox queries: the room's state decides the `since_seq` of every join, so
//! a join lost with its connection is simply sent again by the rejoin (and answers the
//! callers still waiting). A room whose first join was never answered and whose callers all
//! gave up is dropped rather than joined behind the application's back.

use magpie_proto::pb::room_request::Op;
use magpie_proto::{Body, pb};
use magpie_types::{RoomId, Seq};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Driver, Inflight, Session};
use crate::room::{RoomInfo, RoomJoined, RoomMessage, RoomNoticeKind, messages_from_pb, request};
use crate::room_order::{RoomOrder, Step};
use crate::{ClientError, ErrorCode, Event, UserId};

/// A caller waiting for a join's answer.
pub(super) type JoinReply = oneshot::Sender<Result<RoomJoined, ClientError>>;

/// A room the application joined, or is joining.
pub(super) struct Room {
    order: RoomOrder<pb::RoomMessage>,
    /// The seq to join after while the rule has no base yet (the caller's; 0: from now on).
    since: Seq,
    /// A join was answered: the room is the application's, joined again after reconnects.
    confirmed: bool,
    /// A join is in flight on the current connection.
    joining: bool,
    waiters: Vec<JoinReply>,
    /// Join again at this time (the server refused a rejoin with a transient error).
    rejoin_at: Option<Instant>,
    rejoin_failures: u32,
}

impl Room {
    fn new(since: Seq) -> Self {
        Self {
            order: RoomOrder::joining(),
            since,
            confirmed: false,
            joining: false,
            waiters: Vec::new(),
            rejoin_at: None,
            rejoin_failures: 0,
        }
    }

    /// The seq a join asks for messages after: what the rule has delivered, once it knows.
    fn join_since(&self) -> Seq {
        self.order.delivered().unwrap_or(self.since)
    }

    fn next_timer(&self) -> Option<Instant> {
        let fetch = self.order.next_timer().map(Instant::from_std);
        [fetch, self.rejoin_at].into_iter().flatten().min()
    }
}

impl Driver {
    /// The application joins `room` (after `since`, if the client does not know the room).
    pub(super) fn join_room(&mut self, room: RoomId, since: Seq, reply: JoinReply) {
        let now = Instant::now();
        let r = self
            .rooms
            .entry(room.clone())
            .or_insert_with(|| Room::new(since));
        r.waiters.push(reply);
        if !r.joining
            && let Some(s) = self.session.as_mut()
        {
            send_join(s, &room, r, now);
        }
    }

    /// The application leaves `room`: no more events from it, no rejoin.
    pub(super) fn forget_room(&mut self, room: &RoomId) {
        if let Some(r) = self.rooms.remove(room) {
            for waiter in r.waiters {
                let _ = waiter.send(Err(ClientError::Interrupted));
            }
        }
    }

    /// A new connection: joins every room again, after the seq it has.
    pub(super) fn rejoin_rooms(&mut self, now: Instant) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        self.rooms.retain(|_, r| {
            r.waiters.retain(|w| !w.is_closed());
            r.confirmed || !r.waiters.is_empty()
        });
        for (room, r) in &mut self.rooms {
            send_join(s, room, r, now);
        }
    }

    /// The connection was lost: joins and fetches in flight will never be answered.
    pub(super) fn rooms_connection_lost(&mut self) {
        for r in self.rooms.values_mut() {
            r.joining = false;
            r.rejoin_at = None;
            r.order.connection_lost();
        }
    }

    /// Issues the fetches of gaps left open and the rejoins that are due.
    pub(super) fn pump_rooms(&mut self, now: Instant) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let limit = self.config.pull_page_size;
        for (room, r) in &mut self.rooms {
            if !r.joining && r.rejoin_at.is_some_and(|at| at <= now) {
                r.rejoin_at = None;
                send_join(s, room, r, now);
            }
            if let Some(since_seq) = r.order.poll_fetch(now.into_std()) {
                let fetch = request(room, Op::Fetch(pb::FetchRoom { since_seq, limit }));
                s.request(Inflight::RoomFetch(room.clone()), Body::Room(fetch), now);
            }
        }
    }

    /// The earliest room timer (only with a connection: they all need one).
    pub(super) fn next_room_timer(&self) -> Option<Instant> {
        self.session.as_ref()?;
        self.rooms.values().filter_map(Room::next_timer).min()
    }

    /// Fails every caller waiting for a join (the client is closing).
    pub(super) fn fail_room_joins(&mut self, error: &ClientError) {
        for r in self.rooms.values_mut() {
            for waiter in r.waiters.drain(..) {
                let _ = waiter.send(Err(error.clone()));
            }
        }
    }

    // ---- frames -------------------------------------------------------------------------

    pub(super) fn on_room_batch(&mut self, batch: pb::RoomBatch) {
        let Ok(room) = RoomId::new(batch.room.as_str()) else {
            tracing::debug!(room = %batch.room, "ignoring a batch of a malformed room");
            return;
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            // Left meanwhile (or never joined through this client).
            tracing::debug!(%room, "ignoring a batch of a room not joined");
            return;
        };
        let now = Instant::now().into_std();
        let mut steps = Vec::new();
        for m in batch.messages {
            r.order.on_message(m.seq, m, now, &mut steps);
        }
        self.emit_room_steps(&room, steps);
        self.send_room_ack(&room);
    }

    pub(super) fn on_room_notice(&mut self, notice: pb::RoomNotice) {
        let Ok(room) = RoomId::new(notice.room.as_str()) else {
            tracing::debug!(room = %notice.room, "ignoring a notice of a malformed room");
            return;
        };
        let kind = RoomNoticeKind::from_wire(&notice.kind);
        if kind.removes()
            && let Some(r) = self.rooms.remove(&room)
        {
            let error = removal_error(&kind);
            for waiter in r.waiters {
                let _ = waiter.send(Err(error.clone()));
            }
        }
        self.events.emit(Event::RoomNotice {
            room,
            kind,
            by: UserId::new(notice.by).ok(),
            until_ms: (notice.until_ms != 0).then_some(notice.until_ms),
        });
    }

    /// The answer to a join that asked for messages after `since`.
    pub(super) fn on_room_join_reply(&mut self, room: RoomId, since: Seq, body: Body) {
        let now = Instant::now();
        let Some(r) = self.rooms.get_mut(&room) else {
            return; // left meanwhile
        };
        r.joining = false;
        let result = match body {
            Body::RoomResult(result) => result,
            Body::Error(e) => {
                let code = ErrorCode::from_wire(e.code);
                let error = ClientError::rejected(&e);
                if r.confirmed && code.is_retryable() {
                    r.rejoin_failures = r.rejoin_failures.saturating_add(1);
                    let delay = self.config.backoff.next_delay(r.rejoin_failures - 1);
                    tracing::debug!(%room, %code, "rejoin refused; trying again in {delay:?}");
                    r.rejoin_at = Some(now + delay);
                } else {
                    self.drop_room(&room, error);
                }
                return;
            }
            _ => {
                let error = ClientError::Protocol("unexpected answer to a room join".into());
                self.drop_room(&room, error);
                return;
            }
        };
        let info = match result.info.map(RoomInfo::from_pb).transpose() {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(%room, "a join answered with a malformed room: {e}");
                None
            }
        };
        let Some(info) = info else {
            // Without the room's last seq a first join has no base.
            let error = ClientError::Protocol("join answered without the room".into());
            self.drop_room(&room, error);
            return;
        };
        let missed = messages_from_pb(&room, &result.messages);
        let messages = result.messages.into_iter().map(|m| (m.seq, m)).collect();
        let mut steps = Vec::new();
        r.order.on_joined(
            since,
            info.last_seq,
            messages,
            result.gap,
            now.into_std(),
            &mut steps,
        );
        r.confirmed = true;
        r.rejoin_failures = 0;
        let waiters = std::mem::take(&mut r.waiters);
        self.emit_room_steps(&room, steps);
        self.send_room_ack(&room);
        let joined = RoomJoined {
            info,
            missed,
            gap: result.gap,
        };
        for waiter in waiters {
            let _ = waiter.send(Ok(joined.clone()));
        }
    }

    /// The answer to a fetch of a gap.
    pub(super) fn on_room_fetch_reply(&mut self, room: RoomId, body: Body) {
        let now = Instant::now().into_std();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        match body {
            Body::RoomResult(result) => {
                let last_seq = result.info.as_ref().map_or(0, |i| i.last_seq);
                let messages = result
                    .messages
                    .into_iter()
                    .filter(|m| m.seq != 0)
                    .map(|m| (m.seq, m))
                    .collect();
                let mut steps = Vec::new();
                r.order
                    .on_fetched(messages, result.gap, last_seq, now, &mut steps);
                self.emit_room_steps(&room, steps);
                self.send_room_ack(&room);
            }
            Body::Error(e) => {
                tracing::debug!(%room, code = %ErrorCode::from_wire(e.code), "room fetch failed: {}", e.message);
                r.order.fetch_failed(now);
            }
            _ => {
                tracing::warn!(%room, "unexpected answer to a room fetch");
                r.order.fetch_failed(now);
            }
        }
    }

    // ---- helpers ------------------------------------------------------------------------

    /// Forgets a room the server would not (re)join: its callers get `error`, and if the
    /// application had it, an event says so.
    fn drop_room(&mut self, room: &RoomId, error: ClientError) {
        let Some(r) = self.rooms.remove(room) else {
            return;
        };
        for waiter in r.waiters {
            let _ = waiter.send(Err(error.clone()));
        }
        if r.confirmed {
            self.events.emit(Event::RoomRejoinFailed {
                room: room.clone(),
                error,
            });
        }
    }

    fn emit_room_steps(&mut self, room: &RoomId, steps: Vec<Step<pb::RoomMessage>>) {
        for step in steps {
            match step {
                Step::Deliver(m) => match RoomMessage::from_pb(room.clone(), m) {
                    Ok(m) => self.events.emit(Event::Room(m)),
                    // Its seq is consumed all the same: nothing waits for it.
                    Err(e) => tracing::warn!(%room, "skipping a room message: {e}"),
                },
                Step::Gap { from, to } => self.events.emit(Event::RoomGap {
                    room: room.clone(),
                    from_seq: from,
                    to_seq: to,
                }),
            }
        }
    }

    /// Writes the room's cumulative ack if one is due (fire and forget, like push acks).
    fn send_room_ack(&mut self, room: &RoomId) {
        let Some(seq) = self.rooms.get_mut(room).and_then(|r| r.order.take_ack()) else {
            return;
        };
        if let Some(s) = self.session.as_mut() {
            let ack = pb::RoomAck {
                room: room.as_str().to_owned(),
                seq,
            };
            s.out.push_back(magpie_proto::frame(0, Body::RoomAck(ack)));
        }
    }
}

fn send_join(s: &mut Session, room: &RoomId, r: &mut Room, now: Instant) {
    let since = r.join_since();
    let join = request(room, Op::Join(pb::JoinRoom { since_seq: since }));
    s.request(
        Inflight::RoomJoin {
            room: room.clone(),
            since,
        },
        Body::Room(join),
        now,
    );
    r.joining = true;
}

/// What a caller still waiting for a join learns when a notice removed the user.
fn removal_error(kind: &RoomNoticeKind) -> ClientError {
    let code = match kind {
        RoomNoticeKind::Banned => ErrorCode::Banned,
        RoomNoticeKind::Closed => ErrorCode::NotFound,
        _ => ErrorCode::Forbidden,
    };
    ClientError::Rejected {
        code,
        message: format!("removed from the room ({})", kind.name()),
        retry_after: None,
    }
}
