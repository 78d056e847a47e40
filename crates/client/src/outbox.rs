//! Requests waiting for an answer: sends (kept until acknowledged, definitely rejected, timed
//! out or the client closes) and queries, across reconnects.
//!
//! A *send* here is any request the server deduplicates by its client message id: a message,
//! or an operation on one (recall, edit, reaction), which is a log entry too. Both are kept
//! whole (`Outgoing`), so every retry writes the same request under the same id and the
//! server applies it at most once.
//!
//! Every request has a key in one increasing sequence, so writing the ready set in key order
//! resends pending sends in their original order on a new connection. A request is either
//! *ready* (to be written on the current connection), *in flight* (the driver maps the
//! connection's request id to its key), or — for a send the server answered with a retryable
//! error — *waiting* for its retry time.
//!
//! Sends are safe to write again (the server deduplicates by client message id) — all but
//! live-room messages that are not explicitly HIGH, which are best effort: a connection lost
//! before their ack fails them with [`ClientError::Interrupted`] — and so are
//! idempotent queries (reads, read positions, settings, deleting for oneself, presence
//! subscriptions). A query that changes state (a group operation, a friend request) is not:
//! when its connection drops before the answer it fails with [`ClientError::Interrupted`]
//! instead of being applied twice.

use std::collections::{BTreeMap, BTreeSet};

use magpie_proto::Body;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::ErrorCode;
use crate::message_op::OpDraft;
use crate::room_send::RoomDraft;
use crate::send::Draft;
use crate::{ClientError, OpAck, RoomSendAck, SendAck};

/// A request the server deduplicates by client message id, with the caller waiting for its
/// answer.
pub(crate) enum Outgoing {
    /// A message to send.
    Message {
        draft: Draft,
        reply: oneshot::Sender<Result<SendAck, ClientError>>,
    },
    /// An operation on an earlier message.
    Op {
        op: OpDraft,
        reply: oneshot::Sender<Result<OpAck, ClientError>>,
    },
    /// A live-room message. Only an explicitly HIGH one is retried (the server deduplicates
    /// those); the others are best effort and fail instead (see [`Outgoing::is_retried`]).
    Room {
        draft: RoomDraft,
        reply: oneshot::Sender<Result<RoomSendAck, ClientError>>,
    },
}

impl Outgoing {
    /// The request, the same bytes on every attempt.
    pub(crate) fn to_pb(&self) -> Body {
        match self {
            Self::Message { draft, .. } => Body::Send(draft.to_pb()),
            Self::Op { op, .. } => Body::MessageOp(op.to_pb()),
            Self::Room { draft, .. } => Body::RoomSend(draft.to_pb()),
        }
    }

    /// Whether the request is written again after a lost connection and retried after a
    /// transient error (the server deduplicates it).
    pub(crate) fn is_retried(&self) -> bool {
        match self {
            Self::Message { .. } | Self::Op { .. } => true,
            Self::Room { draft, .. } => draft.is_reliable(),
        }
    }

    /// Whether an error with `code` ends the request (else it is retried with the same
    /// client message id).
    pub(crate) fn gives_up_on(&self, code: ErrorCode) -> bool {
        match self {
            Self::Message { .. } | Self::Op { .. } => {
                code.is_definite_rejection()
                    || matches!(
                        code,
                        ErrorCode::BadFrame
                            | ErrorCode::FrameTooLarge
                            | ErrorCode::AlreadyAuthenticated
                            | ErrorCode::Unknown(_)
                    )
            }
            // A room refuses for reasons a quick retry does not change (slow mode and rate
            // limits say when to come back): only an unavailable server is retried.
            Self::Room { .. } => !(self.is_retried() && code == ErrorCode::Unavailable),
        }
    }

    /// The size of the content it carries (for the server's limit).
    pub(crate) fn content_size(&self) -> usize {
        match self {
            Self::Message { draft, .. } => draft.content.size(),
            Self::Op { op, .. } => op.content_size(),
            Self::Room { draft, .. } => draft.content.size(),
        }
    }

    /// Whether `body` is the kind of answer this request waits for.
    fn is_answered_by(&self, body: &Body) -> bool {
        matches!(
            (self, body),
            (Self::Message { .. }, Body::SendAck(_))
                | (Self::Op { .. }, Body::MessageOpResult(_))
                | (Self::Room { .. }, Body::RoomSendAck(_))
        )
    }

    /// Fails the caller's future (a caller that went away is not an error).
    pub(crate) fn fail(self, error: ClientError) {
        match self {
            Self::Message { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Self::Op { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Self::Room { reply, .. } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// A send that has not been resolved yet.
pub(crate) struct PendingSend {
    pub(crate) outgoing: Outgoing,
    /// Retryable errors so far (paces the retries).
    pub(crate) failures: u32,
    deadline: Option<Instant>,
    retry_at: Option<Instant>,
}

struct PendingQuery {
    body: Body,
    /// Safe to write again after a lost connection.
    idempotent: bool,
    reply: oneshot::Sender<Result<Body, ClientError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retry,
    Deadline,
}

/// The pending requests.
#[derive(Default)]
pub(crate) struct Outbox {
    next_key: u64,
    sends: BTreeMap<u64, PendingSend>,
    queries: BTreeMap<u64, PendingQuery>,
    ready: BTreeSet<u64>,
    timers: BTreeSet<(Instant, u64, Timer)>,
}

impl Outbox {
    /// Adds a send, ready to be written.
    pub(crate) fn add_send(&mut self, outgoing: Outgoing, deadline: Option<Instant>) {
        let key = self.key();
        if let Some(at) = deadline {
            self.timers.insert((at, key, Timer::Deadline));
        }
        self.sends.insert(
            key,
            PendingSend {
                outgoing,
                failures: 0,
                deadline,
                retry_at: None,
            },
        );
        self.ready.insert(key);
    }

    /// Adds a query, ready to be written. A query that is not `idempotent` is written at most
    /// once.
    pub(crate) fn add_query(
        &mut self,
        body: Body,
        idempotent: bool,
        reply: oneshot::Sender<Result<Body, ClientError>>,
    ) {
        let key = self.key();
        self.queries.insert(
            key,
            PendingQuery {
                body,
                idempotent,
                reply,
            },
        );
        self.ready.insert(key);
    }

    /// The next request to write on the current connection, in original order.
    pub(crate) fn next_ready(&mut self) -> Option<(u64, Body)> {
        while let Some(key) = self.ready.pop_first() {
            if let Some(s) = self.sends.get(&key) {
                return Some((key, s.outgoing.to_pb()));
            }
            if let Some(q) = self.queries.get(&key) {
                if q.reply.is_closed() {
                    // The caller gave up (its timeout): do not bother the server.
                    self.queries.remove(&key);
                    continue;
                }
                return Some((key, q.body.clone()));
            }
        }
        None
    }

    /// An in-flight request lost its connection: write it again on the next one, or — for a
    /// query that changes state — fail it as [`ClientError::Interrupted`].
    pub(crate) fn requeue(&mut self, key: u64) {
        if self.queries.get(&key).is_some_and(|q| !q.idempotent) {
            self.finish_query(key, Err(ClientError::Interrupted));
            return;
        }
        if self
            .sends
            .get(&key)
            .is_some_and(|s| !s.outgoing.is_retried())
        {
            if let Some(s) = self.take_send(key) {
                s.outgoing.fail(ClientError::Interrupted);
            }
            return;
        }
        let waiting = self.sends.get(&key).is_some_and(|s| s.retry_at.is_some());
        if !waiting && (self.sends.contains_key(&key) || self.queries.contains_key(&key)) {
            self.ready.insert(key);
        }
    }

    /// Removes a send (to resolve it); `None` if it is no longer pending (e.g. timed out).
    pub(crate) fn take_send(&mut self, key: u64) -> Option<PendingSend> {
        let s = self.sends.remove(&key)?;
        self.ready.remove(&key);
        if let Some(at) = s.deadline {
            self.timers.remove(&(at, key, Timer::Deadline));
        }
        if let Some(at) = s.retry_at {
            self.timers.remove(&(at, key, Timer::Retry));
        }
        Some(s)
    }

    /// The number of retryable failures of a pending send so far, counting one more.
    pub(crate) fn note_failure(&mut self, key: u64) -> Option<u32> {
        let s = self.sends.get_mut(&key)?;
        s.failures = s.failures.saturating_add(1);
        Some(s.failures)
    }

    /// Writes a send again at `at` (after a retryable error).
    pub(crate) fn retry_send_at(&mut self, key: u64, at: Instant) {
        if let Some(s) = self.sends.get_mut(&key) {
            if let Some(old) = s.retry_at.replace(at) {
                self.timers.remove(&(old, key, Timer::Retry));
            }
            self.ready.remove(&key);
            self.timers.insert((at, key, Timer::Retry));
        }
    }

    /// Answers a query; `false` if it is no longer pending.
    pub(crate) fn finish_query(&mut self, key: u64, result: Result<Body, ClientError>) -> bool {
        match self.queries.remove(&key) {
            Some(q) => {
                self.ready.remove(&key);
                let _ = q.reply.send(result);
                true
            }
            None => false,
        }
    }

    /// Whether `key` is a pending send (as opposed to a query).
    pub(crate) fn is_send(&self, key: u64) -> bool {
        self.sends.contains_key(&key)
    }

    /// Whether `body` is the kind of answer the pending send `key` waits for (an ack for a
    /// message, a result for an operation).
    pub(crate) fn is_answer(&self, key: u64, body: &Body) -> bool {
        self.sends
            .get(&key)
            .is_some_and(|s| s.outgoing.is_answered_by(body))
    }

    /// Whether the pending send `key` ends with an error of `code` (else it is retried).
    pub(crate) fn gives_up_on(&self, key: u64, code: ErrorCode) -> bool {
        self.sends
            .get(&key)
            .is_none_or(|s| s.outgoing.gives_up_on(code))
    }

    /// The request of a pending query.
    pub(crate) fn query_body(&self, key: u64) -> Option<&Body> {
        self.queries.get(&key).map(|q| &q.body)
    }

    /// When the next timer fires.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Fires the timers due at `now`: retries become ready, expired sends fail with
    /// [`ClientError::Timeout`].
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, key, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Retry => {
                    if let Some(s) = self.sends.get_mut(&key) {
                        s.retry_at = None;
                        self.ready.insert(key);
                    }
                }
                Timer::Deadline => {
                    if let Some(s) = self.take_send(key) {
                        s.outgoing.fail(ClientError::Timeout);
                    }
                }
            }
        }
    }

    /// Fails every pending request with `error` (the client is closing).
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        for (_, s) in std::mem::take(&mut self.sends) {
            s.outgoing.fail(error.clone());
        }
        for (_, q) in std::mem::take(&mut self.queries) {
            let _ = q.reply.send(Err(error.clone()));
        }
        self.ready.clear();
        self.timers.clear();
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{MessageOp, Recipient, SendOptions};
    use magpie_proto::pb;
    use magpie_types::{ClientMsgId, Content, ConvId, UserId};
    use std::time::Duration;

    fn send(o: &mut Outbox, id: &str) -> oneshot::Receiver<Result<SendAck, ClientError>> {
        let (reply, rx) = oneshot::channel();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let draft = Draft::new(
            Recipient::User(UserId::new("bob").unwrap()),
            Content::text(id),
            SendOptions::default().client_msg_id(ClientMsgId::new(id).unwrap()),
        );
        o.add_send(Outgoing::Message { draft, reply }, deadline);
        rx
    }

    fn op(o: &mut Outbox, id: &str) -> oneshot::Receiver<Result<OpAck, ClientError>> {
        let (reply, rx) = oneshot::channel();
        let conv = ConvId::parse("p2p:alice:bob").unwrap();
        let op = OpDraft::new(conv, 1, MessageOp::Recall, ClientMsgId::new(id).ok());
        o.add_send(Outgoing::Op { op, reply }, None);
        rx
    }

    fn cmid(body: &Body) -> &str {
        match body {
            Body::Send(s) => &s.client_msg_id,
            Body::MessageOp(op) => &op.client_msg_id,
            _ => panic!("not a send"),
        }
    }

    #[test]
    fn requeued_sends_keep_their_order() {
        let mut o = Outbox::default();
        let _a = send(&mut o, "a");
        let _b = send(&mut o, "b");
        let (ka, a) = o.next_ready().unwrap();
        let (kb, _) = o.next_ready().unwrap();
        assert_eq!(cmid(&a), "a");
        assert!(o.next_ready().is_none());
        o.requeue(kb);
        o.requeue(ka);
        assert_eq!(cmid(&o.next_ready().unwrap().1), "a");
        assert_eq!(cmid(&o.next_ready().unwrap().1), "b");
    }

    #[test]
    fn message_ops_are_sends_retried_in_order_with_their_id() {
        let mut o = Outbox::default();
        let _a = send(&mut o, "a");
        let mut recall = op(&mut o, "r");
        let (ka, _) = o.next_ready().unwrap();
        let (kr, body) = o.next_ready().unwrap();
        assert_eq!(cmid(&body), "r");
        assert!(o.is_send(kr));
        let ack = Body::MessageOpResult(pb::MessageOpResult::default());
        assert!(o.is_answer(kr, &ack));
        assert!(!o.is_answer(ka, &ack), "a message waits for a send ack");
        o.requeue(kr);
        o.requeue(ka);
        assert_eq!(cmid(&o.next_ready().unwrap().1), "a");
        assert_eq!(cmid(&o.next_ready().unwrap().1), "r", "same id again");
        o.fail_all(&ClientError::Closed);
        assert_eq!(recall.try_recv().unwrap(), Err(ClientError::Closed));
    }

    #[test]
    fn lost_state_changing_queries_fail_instead_of_repeating() {
        let mut o = Outbox::default();
        let body = || Body::Ping(pb::Ping { client_time_ms: 0 });
        let (tx, mut change) = oneshot::channel();
        o.add_query(body(), false, tx);
        let (tx, _read) = oneshot::channel();
        o.add_query(body(), true, tx);
        let (kc, _) = o.next_ready().unwrap();
        let (kr, _) = o.next_ready().unwrap();
        o.requeue(kc);
        o.requeue(kr);
        assert_eq!(change.try_recv().unwrap(), Err(ClientError::Interrupted));
        assert_eq!(o.next_ready().unwrap().0, kr, "the read is written again");
        assert!(o.next_ready().is_none());
    }

    #[test]
    fn only_high_room_sends_survive_a_lost_connection() {
        use crate::RoomSendOptions;
        use magpie_types::{Priority, RoomId};
        let mut o = Outbox::default();
        let mut room = |priority| {
            let (reply, rx) = oneshot::channel();
            let options = RoomSendOptions {
                priority,
                ..RoomSendOptions::default()
            };
            let draft = RoomDraft::new(RoomId::new("live").unwrap(), Content::text("x"), options);
            let outgoing = Outgoing::Room { draft, reply };
            assert_eq!(
                outgoing.gives_up_on(ErrorCode::Unavailable),
                priority.is_none()
            );
            assert!(outgoing.gives_up_on(ErrorCode::SlowMode));
            o.add_send(outgoing, None);
            rx
        };
        let _high = room(Some(Priority::High));
        let mut chat = room(None);
        let (kh, high) = o.next_ready().unwrap();
        let (kc, _) = o.next_ready().unwrap();
        assert!(o.is_answer(kh, &Body::RoomSendAck(pb::RoomSendAck::default())));
        let Body::RoomSend(first) = high else {
            panic!("a room send");
        };
        o.requeue(kh);
        o.requeue(kc);
        assert_eq!(chat.try_recv().unwrap(), Err(ClientError::Interrupted));
        let (k, again) = o.next_ready().unwrap();
        assert_eq!(k, kh);
        assert_eq!(again, Body::RoomSend(first), "the same request again");
        assert!(o.next_ready().is_none());
    }

    #[test]
    fn retry_waits_for_its_timer_and_deadline_fails() {
        let mut o = Outbox::default();
        let mut rx = send(&mut o, "a");
        let (k, _) = o.next_ready().unwrap();
        let now = Instant::now();
        o.retry_send_at(k, now + Duration::from_secs(1));
        o.requeue(k); // a reconnect meanwhile must not skip the wait
        assert!(o.next_ready().is_none());
        o.fire_timers(now + Duration::from_secs(1));
        assert_eq!(o.next_ready().unwrap().0, k);
        o.fire_timers(now + Duration::from_secs(61));
        assert_eq!(rx.try_recv().unwrap(), Err(ClientError::Timeout));
        assert!(o.take_send(k).is_none());
        assert!(o.next_timer().is_none());
    }
}
