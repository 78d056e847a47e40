//! Frames from the server: replies matched to their requests by id, pushes, read updates,
//! notices, goaway and connection-fatal errors. What the entries and read positions mean is
//! `deliver`'s business; what the notices mean, `notices`'.

use magpie_proto::{Body, Frame, pb};
use magpie_types::ConvId;
use tokio::time::Instant;

use super::{Driver, Inflight};
use crate::ClientError;
use crate::error::ErrorCode;
use crate::transport::TransportError;

impl Driver {
    pub(super) fn on_read(&mut self, frame: Option<Result<Frame, TransportError>>) {
        match frame {
            Some(Ok(frame)) => {
                if let Some(s) = self.session.as_mut() {
                    s.last_recv = Instant::now();
                }
                self.on_frame(frame);
            }
            Some(Err(e)) => self.connection_lost(format!("read failed: {e}")),
            None => self.connection_lost("closed by the server".into()),
        }
    }

    // ---- frames -------------------------------------------------------------------------

    fn on_frame(&mut self, frame: Frame) {
        let Some(body) = frame.body else {
            tracing::debug!("ignoring a frame without a body");
            return;
        };
        if frame.request_id != 0 {
            let what = self
                .session
                .as_mut()
                .and_then(|s| s.inflight.remove(&frame.request_id));
            match what {
                Some((_, Inflight::Request(key))) => self.on_request_reply(key, body),
                Some((_, Inflight::List)) => self.on_list_reply(body),
                Some((_, Inflight::Pull(conv))) => self.on_pull_reply(&conv, body),
                Some((_, Inflight::Presence)) => self.on_presence_reply(body),
                Some((_, Inflight::RoomJoin { room, since })) => {
                    self.on_room_join_reply(room, since, body);
                }
                Some((_, Inflight::RoomFetch(room))) => self.on_room_fetch_reply(room, body),
                None => match body {
                    // Answers to pings, or to a send that timed out meanwhile.
                    Body::Pong(_) => {}
                    Body::SendAck(ack) => self.ack_hint(&ack.conversation, ack.seq),
                    Body::MessageOpResult(r) => self.ack_hint(&r.conversation, r.seq),
                    _ => tracing::debug!(id = frame.request_id, "ignoring a reply to no request"),
                },
            }
            return;
        }
        match body {
            Body::Push(push) => self.on_push(push),
            Body::ReadUpdate(update) => self.on_read_update(update),
            Body::MessagesDeleted(deleted) => self.on_messages_deleted(deleted),
            Body::TypingNotice(notice) => self.on_typing_notice(notice),
            Body::PresenceNotice(notice) => self.on_presence_notice(notice),
            Body::SocialNotice(notice) => self.on_social_notice(notice),
            Body::RoomBatch(batch) => self.on_room_batch(batch),
            Body::RoomNotice(notice) => self.on_room_notice(notice),
            Body::Goaway(goaway) => self.on_goaway(goaway),
            Body::Error(e) => self.on_connection_error(&e),
            Body::Pong(_) => {}
            _ => tracing::debug!("ignoring an unexpected server frame"),
        }
    }

    fn on_request_reply(&mut self, key: u64, body: Body) {
        if !self.outbox.is_send(key) {
            let result = match body {
                // A send that timed out meanwhile: its ack still tells where the log is.
                Body::SendAck(ack) => {
                    self.ack_hint(&ack.conversation, ack.seq);
                    return;
                }
                Body::MessageOpResult(r) => {
                    self.ack_hint(&r.conversation, r.seq);
                    return;
                }
                Body::Error(e) => Err(ClientError::rejected(&e)),
                other => {
                    if let (Body::PresenceList(_), Some(Body::SubscribePresence(request))) =
                        (&other, self.outbox.query_body(key))
                    {
                        self.presence.accepted(request);
                    }
                    // Answers that move the conversation list apply before the caller sees
                    // them, so that a snapshot taken after the call reflects them.
                    self.observe_answer(&other);
                    Ok(other)
                }
            };
            self.outbox.finish_query(key, result);
            return;
        }
        match body {
            Body::Error(e) => {
                let code = ErrorCode::from_wire(e.code);
                if self.outbox.gives_up_on(key, code) {
                    if let Some(send) = self.outbox.take_send(key) {
                        send.outgoing.fail(ClientError::rejected(&e));
                    }
                } else {
                    tracing::debug!(%code, "send failed; retrying with the same client message id");
                    self.retry_send(key);
                }
            }
            answer if self.outbox.is_answer(key, &answer) => {
                if let Some(send) = self.outbox.take_send(key) {
                    self.on_answer(send.outgoing, answer);
                }
            }
            _ => {
                tracing::warn!("unexpected answer to a send; retrying it");
                self.retry_send(key);
            }
        }
    }

    fn retry_send(&mut self, key: u64) {
        if let Some(failures) = self.outbox.note_failure(key) {
            let delay = self.config.backoff.next_delay(failures - 1);
            self.outbox.retry_send_at(key, Instant::now() + delay);
        }
    }

    /// An entry the server stored (for a send or an operation whose caller went away): the
    /// log reaches at least `seq`.
    fn ack_hint(&mut self, conversation: &str, seq: u64) {
        if let Ok(conv) = ConvId::parse(conversation) {
            self.orderer.on_known(&conv, seq);
        }
    }

    fn on_list_reply(&mut self, body: Body) {
        let now = Instant::now();
        let Some(s) = self.session.as_mut() else {
            return;
        };
        match body {
            Body::ConversationList(list) => {
                let server_total = list.total_unread;
                let page = s.sync.on_page(list, &mut self.orderer);
                if let Some(next) = page.next {
                    s.request(Inflight::List, Body::ListConversations(next), now);
                }
                self.on_listed(page.listed, page.complete_version, server_total);
            }
            Body::Error(e) => {
                let e = ClientError::rejected(&e);
                self.connection_lost(format!("sync failed: {e}"));
            }
            _ => self.connection_lost("sync failed: unexpected answer to the list".into()),
        }
    }

    fn on_pull_reply(&mut self, conv: &ConvId, body: Body) {
        match body {
            Body::PullResult(page) => self.on_pull_page(conv, page),
            Body::Error(e) => {
                tracing::warn!(%conv, code = %ErrorCode::from_wire(e.code), "pull failed: {}", e.message);
                self.orderer.pull_failed(conv);
            }
            _ => {
                tracing::warn!(%conv, "unexpected answer to a pull");
                self.orderer.pull_failed(conv);
            }
        }
    }

    fn on_push(&mut self, push: pb::Push) {
        let delivered: Vec<pb::Delivered> = push
            .messages
            .iter()
            .map(|m| pb::Delivered {
                conversation: m.conversation.clone(),
                seq: m.seq,
            })
            .collect();
        for m in push.messages {
            self.accept(m);
        }
        // Every received message is acknowledged, duplicates and gaps included: the pull
        // (or the cursor) already covers them.
        if let Some(s) = self.session.as_mut()
            && !delivered.is_empty()
        {
            let ack = Body::PushAck(pb::PushAck { delivered });
            s.out.push_back(magpie_proto::frame(0, ack));
        }
    }

    fn on_goaway(&mut self, goaway: pb::GoAway) {
        if goaway.reconnect {
            self.connection_lost(format!("server going away: {}", goaway.reason));
        } else {
            let error = ClientError::GoneAway {
                reason: goaway.reason,
            };
            self.events.emit(crate::Event::Error(error.clone()));
            self.stop(error);
        }
    }

    /// An error with request id 0: fatal for the connection.
    fn on_connection_error(&mut self, e: &pb::Error) {
        let error = ClientError::rejected(e);
        if error.code().is_some_and(ErrorCode::is_fatal_for_token) {
            if let Some(token) = self.drop_session() {
                self.token_refused(Some(token), error);
            }
        } else {
            self.connection_lost(error.to_string());
        }
    }
}
