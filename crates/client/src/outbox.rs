//! Requests waiting for an answer: sends (kept until acknowledged, definitely rejected, timed
//! out or the client closes) and queries, across reconnects.
//!
//! Every request has a key in one increasing sequence, so writing the ready set in key order
//! resends pending sends in their original order on a new connection. A request is either
//! *ready* (to be written on the current connection), *in flight* (the driver maps the
//! connection's request id to its key), or — for a send the server answered with a retryable
//! error — *waiting* for its retry time.

use std::collections::{BTreeMap, BTreeSet};

use magpie_proto::convert::content_to_pb;
use magpie_proto::{Body, pb};
use magpie_types::{ClientMsgId, Content, UserId};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::{ClientError, SendAck};

/// A send that has not been resolved yet.
pub(crate) struct PendingSend {
    pub(crate) client_msg_id: ClientMsgId,
    pub(crate) to: UserId,
    pub(crate) content: Content,
    /// Retryable errors so far (paces the retries).
    pub(crate) failures: u32,
    reply: oneshot::Sender<Result<SendAck, ClientError>>,
    deadline: Option<Instant>,
    retry_at: Option<Instant>,
}

impl PendingSend {
    /// Resolves the caller's future (a caller that went away is not an error).
    pub(crate) fn resolve(self, result: Result<SendAck, ClientError>) {
        let _ = self.reply.send(result);
    }
}

struct PendingQuery {
    body: Body,
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
    pub(crate) fn add_send(
        &mut self,
        client_msg_id: ClientMsgId,
        to: UserId,
        content: Content,
        reply: oneshot::Sender<Result<SendAck, ClientError>>,
        deadline: Option<Instant>,
    ) {
        let key = self.key();
        if let Some(at) = deadline {
            self.timers.insert((at, key, Timer::Deadline));
        }
        self.sends.insert(
            key,
            PendingSend {
                client_msg_id,
                to,
                content,
                failures: 0,
                reply,
                deadline,
                retry_at: None,
            },
        );
        self.ready.insert(key);
    }

    /// Adds a query, ready to be written.
    pub(crate) fn add_query(
        &mut self,
        body: Body,
        reply: oneshot::Sender<Result<Body, ClientError>>,
    ) {
        let key = self.key();
        self.queries.insert(key, PendingQuery { body, reply });
        self.ready.insert(key);
    }

    /// The next request to write on the current connection, in original order.
    pub(crate) fn next_ready(&mut self) -> Option<(u64, Body)> {
        while let Some(key) = self.ready.pop_first() {
            if let Some(s) = self.sends.get(&key) {
                let req = pb::SendRequest {
                    client_msg_id: s.client_msg_id.as_str().to_owned(),
                    to: Some(pb::send_request::To::User(s.to.as_str().to_owned())),
                    content: Some(content_to_pb(&s.content)),
                };
                return Some((key, Body::Send(req)));
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

    /// An in-flight request lost its connection: write it again on the next one.
    pub(crate) fn requeue(&mut self, key: u64) {
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
                        s.resolve(Err(ClientError::Timeout));
                    }
                }
            }
        }
    }

    /// Fails every pending request with `error` (the client is closing).
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        for (_, s) in std::mem::take(&mut self.sends) {
            s.resolve(Err(error.clone()));
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
    use std::time::Duration;

    fn send(o: &mut Outbox, id: &str) -> oneshot::Receiver<Result<SendAck, ClientError>> {
        let (tx, rx) = oneshot::channel();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        o.add_send(
            ClientMsgId::new(id).unwrap(),
            UserId::new("bob").unwrap(),
            Content::text(id),
            tx,
            deadline,
        );
        rx
    }

    fn cmid(body: &Body) -> &str {
        match body {
            Body::Send(s) => &s.client_msg_id,
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
