//! The connection task: the one owner of the socket, in the style of async-nats and
//! mini-redis. [`Client`](crate::Client) handles talk to it through a bounded command channel;
//! it talks back through the event channel and a watch of the connection state.
//!
//! One `select!` loop drives everything: reading frames, writing queued frames, commands,
//! the connection attempt in progress, timers (heartbeat, liveness, backoff, send retries and
//! deadlines) and handing buffered events to the application. Nothing in the loop body
//! awaits, so a slow server or application never stalls heartbeats or acks.
//!
//! Per connection: hello (in `handshake`) → sync (list, then pulls), the presence
//! subscription and a join of every live room the application is in (after the HIGH seq it
//! has) sent again → every pending send, in original order, with its original client message
//! id. The rejoins are written before the sends, so a room send retried on the new
//! connection finds it in the room. Typing indicators are the one thing never queued:
//! written at once if there is a connection, dropped if not (a stale "typing" is worse than
//! none).
//!
//! Backpressure: the command channel is bounded and is not read while too many frames wait
//! to be written; frames are not read from the server while events wait for the application
//! beyond the event buffer (the server's own bounded queues then push back, and at worst it
//! drops the connection, which reconnect and sync repair).
//!
//! - `inbound`: frames from the server (replies by request id, pushes, goaway, errors).
//! - `deliver`: entries, hidden ranges and read positions, through the ordering rule into
//!   events and the conversation list.
//! - `notices`: the server's unacknowledged notices outside the log (typing, presence,
//!   friends, messages deleted on another device) into events.
//! - `rooms`: live rooms — batches through the HIGH seq rule into events, acks, gap
//!   fetches, notices, and joining every room again on a new connection.
//! - `io`: the event queue and the futures the loop waits on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::SinkExt;
use magpie_proto::{Body, Frame, pb};
use magpie_types::{ConvId, RoomId, Seq};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::ErrorCode;
use crate::handshake::{Attempt, Established, Failed, HELLO_REQUEST_ID};
use crate::inbox::SharedInbox;
use crate::order::Orderer;
use crate::outbox::{Outbox, Outgoing};
use crate::presence::PresenceSubscription;
use crate::sync::Sync;
use crate::transport::{Connector, FrameSink, FrameStream};
use crate::{ClientConfig, ClientError, ConnectionState, Event, SessionInfo, TokenSource};

mod deliver;
mod inbound;
mod io;
mod notices;
mod rooms;

use io::{
    EventQueue, attempt_done, has_capacity, next_frame, sleep_until_some, unix_ms, write_out,
};

/// Frames queued for writing above which commands wait.
const OUT_HIGH_WATER: usize = 256;
/// Frames queued for writing above which the server is deemed not to read: reconnect.
const OUT_LIMIT: usize = 16 * 1024;
/// Requests awaiting an answer on one connection.
const MAX_IN_FLIGHT: usize = 256;
/// The server closes a connection silent for this many heartbeat intervals; the client
/// deems the server gone after the same.
const SILENT_HEARTBEATS: u32 = 3;
/// How long a graceful close may spend writing what is queued.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A request from a [`Client`](crate::Client) handle.
pub(crate) enum Command {
    /// A message or a message operation: retried under its client message id.
    Send(Outgoing),
    Query {
        /// Boxed: a `Body` is several times larger than the other commands.
        body: Box<Body>,
        /// Safe to write again on a new connection (see `outbox`).
        idempotent: bool,
        reply: oneshot::Sender<Result<Body, ClientError>>,
    },
    Cursors {
        reply: oneshot::Sender<HashMap<ConvId, Seq>>,
    },
    /// Fire and forget: written on the current connection, if any.
    Typing(pb::Typing),
    /// Join a live room (and keep it joined across reconnects).
    JoinRoom {
        room: RoomId,
        /// Messages after this seq, if the client does not know the room yet.
        since: Seq,
        reply: rooms::JoinReply,
    },
    /// Stop following a live room (it is being left).
    ForgetRoom(RoomId),
    Close {
        done: oneshot::Sender<()>,
    },
}

/// What handles can read without asking the task.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) state: ConnectionState,
    pub(crate) session: Option<SessionInfo>,
}

/// The channels the task is built with.
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) status: watch::Sender<Status>,
    /// Answered once with the outcome of the first attempt (for `Client::connect`); while it
    /// is pending, a failed attempt ends the task instead of retrying.
    pub(crate) ready: Option<oneshot::Sender<Result<(), ClientError>>>,
    /// The conversation list, which the task keeps and the handles read.
    pub(crate) inbox: SharedInbox,
}

/// What a connection's request id stands for.
enum Inflight {
    /// A send or query of the outbox.
    Request(u64),
    /// A page of the sync's conversation list.
    List,
    /// A pull page of a conversation.
    Pull(ConvId),
    /// The presence subscription, sent again on a new connection.
    Presence,
    /// A join of a live room, asking for messages after `since`.
    RoomJoin { room: RoomId, since: Seq },
    /// A fetch of a live room's gap.
    RoomFetch(RoomId),
}

/// An authenticated connection and its bookkeeping.
struct Session {
    sink: FrameSink,
    stream: FrameStream,
    out: VecDeque<Frame>,
    /// Frames were handed to the sink and not flushed yet.
    dirty: bool,
    inflight: BTreeMap<u64, (Instant, Inflight)>,
    next_request_id: u64,
    info: SessionInfo,
    token: String,
    next_ping: Instant,
    last_recv: Instant,
    sync: Sync,
}

impl Session {
    fn request(&mut self, what: Inflight, body: Body, now: Instant) {
        let id = self.next_id();
        self.inflight.insert(id, (now, what));
        self.out.push_back(magpie_proto::frame(id, body));
    }

    fn next_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }
}

type AttemptFuture = Pin<Box<dyn Future<Output = Result<Established, Failed>> + Send>>;

/// The connection task's state.
pub(crate) struct Driver {
    config: ClientConfig,
    connector: Connector,
    commands: mpsc::Receiver<Command>,
    events: EventQueue,
    status: watch::Sender<Status>,
    ready: Option<oneshot::Sender<Result<(), ClientError>>>,
    orderer: Orderer,
    inbox: SharedInbox,
    outbox: Outbox,
    presence: PresenceSubscription,
    /// The live rooms the application joined.
    rooms: HashMap<RoomId, rooms::Room>,
    session: Option<Session>,
    attempt: Option<AttemptFuture>,
    retry_at: Option<Instant>,
    /// Failures (lost connections, failed attempts) since the last completed sync; paces
    /// the backoff.
    failures: u32,
    /// Attempts since the last successful one (for [`ConnectionState::Connecting`]).
    attempts: u32,
    /// The last token the server refused as fatal, with the error.
    refused_token: Option<(String, ClientError)>,
    /// Largest content the server accepts (0 = unknown).
    max_message_bytes: u32,
    /// Set when the task should end, with the error pending requests fail with.
    stop: Option<ClientError>,
    close_waiters: Vec<oneshot::Sender<()>>,
}

impl Driver {
    pub(crate) fn new(config: ClientConfig, connector: Connector, channels: Channels) -> Self {
        let orderer = Orderer::new(
            config.initial_cursors.iter().map(|(c, s)| (c.clone(), *s)),
            config.max_concurrent_pulls,
        );
        Self {
            config,
            connector,
            commands: channels.commands,
            events: EventQueue {
                tx: channels.events,
                overflow: VecDeque::new(),
            },
            status: channels.status,
            ready: channels.ready,
            orderer,
            inbox: channels.inbox,
            outbox: Outbox::default(),
            presence: PresenceSubscription::default(),
            rooms: HashMap::new(),
            session: None,
            attempt: None,
            retry_at: None,
            failures: 0,
            attempts: 0,
            refused_token: None,
            max_message_bytes: 0,
            stop: None,
            close_waiters: Vec::new(),
        }
    }

    /// Runs until the client closes or a fatal error.
    pub(crate) async fn run(mut self) {
        self.start_attempt();
        while self.stop.is_none() {
            self.pump(Instant::now());
            if self.stop.is_some() {
                break;
            }
            let wake = self.next_wake();
            let read = !self.events.is_backpressured();
            let take_commands = self
                .session
                .as_ref()
                .is_none_or(|s| s.out.len() < OUT_HIGH_WATER);
            let drain_events = self.events.is_backpressured();
            let (stream, writer) = match self.session.as_mut() {
                Some(s) => (
                    Some(&mut s.stream),
                    Some((&mut s.sink, &mut s.out, &mut s.dirty)),
                ),
                None => (None, None),
            };
            tokio::select! {
                frame = next_frame(stream), if read => self.on_read(frame),
                written = write_out(writer) => {
                    if let Err(e) = written {
                        self.connection_lost(format!("write failed: {e}"));
                    }
                }
                command = self.commands.recv(), if take_commands => self.on_command(command),
                result = attempt_done(&mut self.attempt) => {
                    self.attempt = None;
                    self.on_attempt(result);
                }
                () = sleep_until_some(wake) => self.on_wake(Instant::now()),
                open = has_capacity(&self.events.tx), if drain_events => self.events.drain(open),
            }
        }
        self.shutdown().await;
    }

    // ---- connection lifecycle ---------------------------------------------------------

    fn start_attempt(&mut self) {
        self.retry_at = None;
        self.attempts = self.attempts.saturating_add(1);
        self.set_state(ConnectionState::Connecting {
            attempt: self.attempts,
        });
        let attempt = Attempt {
            connector: self.connector.clone(),
            token: self.config.token.clone(),
            refused_token: self.refused_token.clone(),
            client_name: self.config.client_name.clone(),
            timeout: self.config.connect_timeout,
        };
        self.attempt = Some(Box::pin(attempt.run()));
    }

    fn on_attempt(&mut self, result: Result<Established, Failed>) {
        match result {
            Ok(established) => self.on_established(established),
            Err(Failed { error, token }) => {
                if let Some(ready) = self.ready.take() {
                    // `Client::connect` reports the first failure instead of retrying.
                    let _ = ready.send(Err(error.clone()));
                    self.stop(error);
                    return;
                }
                let fatal = error.code().is_some_and(ErrorCode::is_fatal_for_token);
                if fatal {
                    self.token_refused(token, error);
                } else {
                    self.schedule_retry(error.to_string());
                }
            }
        }
    }

    fn on_established(&mut self, e: Established) {
        let now = Instant::now();
        let heartbeat = e.session.heartbeat_interval;
        let since_version = {
            let mut inbox = self.inbox.lock();
            inbox.set_me(e.session.user_id.clone());
            inbox.list_version()
        };
        let (sync, list) = Sync::start(self.config.list_page_size, since_version);
        let mut session = Session {
            sink: e.sink,
            stream: e.stream,
            out: VecDeque::new(),
            dirty: false,
            inflight: BTreeMap::new(),
            next_request_id: HELLO_REQUEST_ID,
            info: e.session.clone(),
            token: e.token,
            next_ping: now + heartbeat,
            last_recv: now,
            sync,
        };
        // Sync first; `pump` then writes the pending sends behind it.
        session.request(Inflight::List, Body::ListConversations(list), now);
        // The server keeps presence subscriptions per connection.
        if let Some(subscription) = self.presence.on_connect() {
            session.request(
                Inflight::Presence,
                Body::SubscribePresence(subscription),
                now,
            );
        }
        self.session = Some(session);
        // Presence in live rooms is per connection too.
        self.rejoin_rooms(now);
        self.attempts = 0;
        self.refused_token = None;
        self.max_message_bytes = e.session.max_message_bytes;
        self.set_state(ConnectionState::Connected(e.session));
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
    }

    /// The server refused the token (or the protocol version) as fatal.
    fn token_refused(&mut self, token: Option<String>, error: ClientError) {
        let already_refused = self
            .refused_token
            .as_ref()
            .is_some_and(|(t, _)| Some(t) == token.as_ref());
        if !already_refused {
            self.events.emit(Event::Error(error.clone()));
        }
        let can_refresh = matches!(self.config.token, TokenSource::Provider(_))
            && error.code() != Some(ErrorCode::UnsupportedVersion);
        match token {
            Some(token) if can_refresh && !already_refused => {
                self.refused_token = Some((token, error.clone()));
                self.schedule_retry(error.to_string());
            }
            _ => self.stop(error),
        }
    }

    fn connection_lost(&mut self, reason: String) {
        if self.drop_session().is_some() {
            tracing::debug!(%reason, "connection lost");
            self.schedule_retry(reason);
        }
    }

    /// Ends the connection (dropping the session closes the socket); requests in flight on
    /// it will be written again on the next one. Returns the token the session used.
    fn drop_session(&mut self) -> Option<String> {
        let session = self.session.take()?;
        for (_, (_, what)) in session.inflight {
            if let Inflight::Request(key) = what {
                self.outbox.requeue(key);
            }
        }
        self.orderer.connection_lost();
        self.rooms_connection_lost();
        Some(session.token)
    }

    fn schedule_retry(&mut self, reason: String) {
        let delay = self.config.backoff.next_delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(Instant::now() + delay);
        self.set_state(ConnectionState::Disconnected {
            reason,
            retry_in: Some(delay),
        });
    }

    fn stop(&mut self, error: ClientError) {
        if self.stop.is_none() {
            self.stop = Some(error);
        }
    }

    async fn shutdown(mut self) {
        let error = self.stop.take().unwrap_or(ClientError::Closed);
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            self.refuse(command, &error);
        }
        self.outbox.fail_all(&error);
        self.fail_room_joins(&error);
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(error.clone()));
        }
        self.attempt = None;
        if let Some(mut s) = self.session.take() {
            // Graceful: write what is queued (push acks), then close our side.
            let close = async {
                while let Some(frame) = s.out.pop_front() {
                    s.sink.feed(frame).await?;
                }
                s.sink.close().await
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, close).await;
        }
        self.set_state(ConnectionState::Closed);
        for waiter in self.close_waiters.drain(..) {
            let _ = waiter.send(());
        }
        // Everything already accepted from the server reaches the application.
        self.events.flush().await;
    }

    fn refuse(&mut self, command: Command, error: &ClientError) {
        match command {
            Command::Send(outgoing) => outgoing.fail(error.clone()),
            Command::Query { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Command::Cursors { reply } => {
                let _ = reply.send(self.orderer.cursors());
            }
            Command::Typing(_) | Command::ForgetRoom(_) => {}
            Command::JoinRoom { reply, .. } => {
                let _ = reply.send(Err(error.clone()));
            }
            Command::Close { done } => self.close_waiters.push(done),
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        self.status.send_modify(|s| {
            if let ConnectionState::Connected(info) = &state {
                s.session = Some(info.clone());
            }
            s.state = state.clone();
        });
        self.events.emit(Event::Connection(state));
    }

    // ---- the loop's inputs ------------------------------------------------------------

    /// Moves ready work into the write queue and reports a finished sync.
    fn pump(&mut self, now: Instant) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while s.inflight.len() < MAX_IN_FLIGHT && s.out.len() < OUT_HIGH_WATER {
            let Some((key, body)) = self.outbox.next_ready() else {
                break;
            };
            s.request(Inflight::Request(key), body, now);
        }
        while s.inflight.len() < MAX_IN_FLIGHT {
            let Some((conv, after_seq)) = self.orderer.poll_pull() else {
                break;
            };
            let pull = pb::PullRequest {
                conversation: conv.as_str().to_owned(),
                after_seq,
                limit: self.config.pull_page_size,
            };
            s.request(Inflight::Pull(conv), Body::Pull(pull), now);
        }
        self.pump_rooms(now);
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if s.sync.poll_complete(&self.orderer) {
            self.failures = 0;
            self.events.emit(Event::SyncComplete);
        }
        if s.out.len() > OUT_LIMIT {
            self.connection_lost("the server does not read".into());
        }
    }

    /// The earliest timer: a send retry or deadline, the next connection attempt, the next
    /// ping, the silence limit, or the oldest unanswered request's limit.
    fn next_wake(&self) -> Option<Instant> {
        let session = self.session.as_ref().map(|s| {
            let mut at = s.next_ping;
            if !self.events.is_backpressured() {
                at = at.min(s.last_recv + s.info.heartbeat_interval * SILENT_HEARTBEATS);
            }
            if let Some((_, (sent, _))) = s.inflight.first_key_value() {
                at = at.min(*sent + self.config.ack_timeout);
            }
            at
        });
        [
            self.outbox.next_timer(),
            self.retry_at,
            session,
            self.next_room_timer(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_wake(&mut self, now: Instant) {
        self.outbox.fire_timers(now);
        if self.retry_at.is_some_and(|at| at <= now) && self.attempt.is_none() {
            self.start_attempt();
        }
        let backpressured = self.events.is_backpressured();
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let heartbeat = s.info.heartbeat_interval;
        if now >= s.next_ping {
            let ping = Body::Ping(pb::Ping {
                client_time_ms: unix_ms(),
            });
            let id = s.next_id();
            s.out.push_back(magpie_proto::frame(id, ping));
            s.next_ping = now + heartbeat;
        }
        if backpressured {
            // Not reading is our choice, not the server's silence.
            s.last_recv = now;
        }
        if now >= s.last_recv + heartbeat * SILENT_HEARTBEATS {
            self.connection_lost("the server went silent".into());
            return;
        }
        let stuck = s
            .inflight
            .first_key_value()
            .is_some_and(|(_, (sent, _))| now >= *sent + self.config.ack_timeout);
        if stuck {
            self.connection_lost("a request went unanswered".into());
        }
    }

    fn on_command(&mut self, command: Option<Command>) {
        let Some(command) = command else {
            // Every `Client` handle is gone.
            self.stop(ClientError::Closed);
            return;
        };
        match command {
            Command::Send(outgoing) => {
                let max = self.max_message_bytes as usize;
                let size = outgoing.content_size();
                if max > 0 && size > max {
                    outgoing.fail(ClientError::Rejected {
                        code: ErrorCode::MessageTooLarge,
                        message: format!(
                            "content is {size} bytes; the server accepts at most {max} (checked locally)"
                        ),
                        retry_after: None,
                    });
                    return;
                }
                let timeout = match &outgoing {
                    // A live room is now: a HIGH message is not retried for ever.
                    Outgoing::Room { draft, .. } => {
                        Some(draft.timeout.unwrap_or(self.config.request_timeout))
                    }
                    _ => self.config.send_timeout,
                };
                let deadline = timeout.map(|t| Instant::now() + t);
                self.outbox.add_send(outgoing, deadline);
            }
            Command::Query {
                body,
                idempotent,
                reply,
            } => self.outbox.add_query(*body, idempotent, reply),
            Command::Cursors { reply } => {
                let _ = reply.send(self.orderer.cursors());
            }
            Command::Typing(typing) => {
                if let Some(s) = self.session.as_mut() {
                    s.out
                        .push_back(magpie_proto::frame(0, Body::Typing(typing)));
                }
            }
            Command::JoinRoom { room, since, reply } => self.join_room(room, since, reply),
            Command::ForgetRoom(room) => self.forget_room(&room),
            Command::Close { done } => {
                self.close_waiters.push(done);
                self.stop(ClientError::Closed);
            }
        }
    }
}
