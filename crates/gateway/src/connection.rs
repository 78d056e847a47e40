//! The life of one connection.
//!
//! 1. **Handshake.** The first frame must be `Hello` with a supported protocol version and a
//!    valid token, within the handshake deadline; anything else gets a typed error frame and
//!    the connection is closed. Until then the connection holds a pre-auth permit.
//! 2. **Session.** Once `HelloOk` is written the session gets a task of its own ([`Live`]),
//!    which runs a `select!` loop over: the outbound queue (pushes from other connections,
//!    go-away, cancellation by the registry or the drain, and the gateway's one-second tick
//!    for retransmissions and the idle timeout), replies of requests in progress, incoming
//!    frames (read only while fewer than `max_in_flight` requests are in progress, which is
//!    the backpressure), and, while the connection is in a live room, the room's
//!    retransmission timer.
//!
//! Memory: an idle connection's task holds the session and the small futures of that
//! select, nothing else; handlers are boxed while they run, and the queue, the transport's
//! buffers, the in-flight set and the room state allocate only when used (BENCHMARKS.md
//! has the breakdown).
//!
//! Writes are batched: everything ready in the outbound queue is fed to the sink before one
//! flush, so a burst of pushes costs one syscall. Every flush has a deadline; a peer that
//! stops reading is closed and will sync on reconnect.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use magpie_core::auth::AuthError;
use magpie_core::delivery::{DeliveryTracker, Poll};
use magpie_proto::codec::Outgoing;

use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, PROTOCOL_VERSION, encode_frame, error_frame, frame};
use magpie_service::outbox::Next;
use magpie_service::{Outbound, Service, SessionCtx};
use magpie_types::{ConvId, UserId};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::preauth::PreauthPermit;
use crate::probes::Probes;
use crate::transport::{FrameSink, FrameStream, ReadError};
use crate::wire;

use crate::in_flight::InFlight;
use crate::requests;
use crate::room_tracks::JoinedRooms;
use crate::wire_rooms;

/// Most queued outbound items written before one flush.
const WRITE_BATCH: usize = 128;

/// Takes a connection through its handshake to a registered session that has written
/// `HelloOk`, ready to [`Live::run`]; `None` if it ended on the way. `permit` is released
/// once the client authenticates.
///
/// The caller runs the session as a task of its own: a task's memory is its future's largest
/// state, so the handshake (TLS and WebSocket accepts, token check, account lookup, user
/// registration, the first write) lives in one short task and every idle connection's task
/// holds only the session.
pub(crate) async fn establish(
    (mut stream, mut sink): (FrameStream, FrameSink),
    service: Arc<Service>,
    config: Arc<GatewayConfig>,
    probes: Arc<Probes>,
    shutdown: CancellationToken,
    permit: PreauthPermit,
    handshake_deadline: Instant,
) -> Option<Live> {
    let hello = tokio::select! {
        h = Box::pin(handshake(&mut stream, &mut sink, &service, &config, handshake_deadline)) => h,
        // A connection still in its handshake when the drain ends is simply closed.
        () = shutdown.cancelled() => None,
    };
    let hello = hello?;
    drop(permit);
    let (mut session, rx) = Box::pin(start(hello, sink, service, config, probes)).await?;
    if shutdown.is_cancelled() {
        // Registered after the drain's `cancel_all` went by: end here instead. (The token is
        // cancelled before `cancel_all` runs, so one of the two sees every session.)
        session.finish(&End::Cancelled);
        return None;
    }
    Some(Live {
        session,
        stream,
        rx,
    })
}

/// An authenticated connection: everything its task holds while it is idle.
pub(crate) struct Live {
    session: Session,
    stream: FrameStream,
    rx: Outbox,
}

impl Live {
    /// Serves the session until it ends, then unregisters it.
    // Not an `async fn`: its future would keep the argument and a second copy for the
    // `mut` binding (an `async fn` future keeps an argument's storage for its whole life).
    // The block captures `self` once and uses its fields in place.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            // `HelloOk` waits in the sink, written here by the session's task rather than
            // by the handshake's: a transport may keep the waker of the task that last wrote
            // (tokio-tungstenite does, until the next write), which would keep the finished
            // handshake task's memory (about 1 KB) alive while the connection stays quiet.
            // Boxed like every handler, so the flush's future does not size the idle task.
            if let Err(end) = Box::pin(self.session.flush()).await {
                self.session.finish(&end);
                return;
            }
            let end = self.session.run(&mut self.stream, &mut self.rx).await;
            self.session.finish(&end);
        }
    }
}

/// From an accepted `Hello` to a registered session with `HelloOk` in its sink, not yet
/// flushed; `None` if the connection ended on the way.
async fn start(
    hello: Hello,
    mut sink: FrameSink,
    service: Arc<Service>,
    config: Arc<GatewayConfig>,
    probes: Arc<Probes>,
) -> Option<(Session, Outbox)> {
    let (tx, rx) = magpie_service::outbox::channel(config.outbound_queue);
    // The registry ends this connection through its queue (`outbox::Sender::cancel`): for a
    // slow consumer, a replaced device, and the end of the gateway's drain alike. (A child
    // cancellation token per connection was one more allocation, and waiting on a token one
    // more future in every idle connection's task.)
    let ctx = service.sessions().register(
        hello.app.clone(),
        hello.user.clone(),
        hello.device.clone(),
        tx,
    );
    // A revocation that landed between the check in the handshake and the registration
    // found no connection to close: check again now that this one is registered.
    if service.admit(&hello.identity).await.is_err() {
        service.sessions().unregister(&ctx);
        let f = error_frame(
            hello.request_id,
            ErrorCode::Unauthenticated,
            "this token was revoked",
        );
        send_close(&mut sink, &config, f).await;
        return None;
    }
    tracing::debug!(conn = ctx.conn_id, app = %ctx.app, user = %ctx.user, device = %ctx.device, "authenticated");
    spawn_presence(&service, &ctx, true);
    let ok = frame(
        hello.request_id,
        Body::HelloOk(pb::HelloOk {
            protocol_version: PROTOCOL_VERSION,
            app_id: ctx.app.to_string(),
            user_id: ctx.user.to_string(),
            device_id: ctx.device.to_string(),
            server_time_ms: service.now_ms(),
            heartbeat_interval_ms: u32::try_from(config.heartbeat_interval.as_millis())
                .unwrap_or(u32::MAX),
            max_message_bytes: u32::try_from(service.limits().max_message_bytes)
                .unwrap_or(u32::MAX),
        }),
    );
    let mut session = Session {
        service,
        tracker: DeliveryTracker::new(config.delivery.clone()),
        config,
        probes,
        ctx,
        sink,
        in_flight: InFlight::default(),
        started: Instant::now(),
        rooms: JoinedRooms::default(),
    };
    // Fed, not flushed: the bytes go out from the session's own task (see `Live::run`).
    if let Err(e) = session.sink.feed(Outgoing::Frame(ok)).await {
        session.finish(&End::Io(e));
        return None;
    }
    Some((session, rx))
}

/// A connection's outbound queue, as its session reads it.
type Outbox = magpie_service::outbox::Receiver<Outbound>;

struct Hello {
    request_id: u64,
    identity: magpie_core::auth::Identity,
    app: magpie_types::AppId,
    user: UserId,
    device: magpie_types::DeviceId,
}

async fn handshake(
    stream: &mut FrameStream,
    sink: &mut FrameSink,
    service: &Service,
    config: &GatewayConfig,
    deadline: Instant,
) -> Option<Hello> {
    let first = match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => {
            fatal(
                sink,
                config,
                ErrorCode::HandshakeTimeout,
                "no Hello in time",
            )
            .await;
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            read_error(sink, config, &e).await;
            return None;
        }
        Ok(Some(Ok(f))) => f,
    };
    let request_id = first.request_id;
    let Some(Body::Hello(hello)) = first.body else {
        fatal(
            sink,
            config,
            ErrorCode::AuthRequired,
            "the first frame must be Hello",
        )
        .await;
        return None;
    };
    if hello.protocol_version != PROTOCOL_VERSION {
        let msg = format!(
            "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
            hello.protocol_version
        );
        send_close(
            sink,
            config,
            error_frame(request_id, ErrorCode::UnsupportedVersion, msg),
        )
        .await;
        return None;
    }
    let identity = match service.authenticate(&hello.token) {
        Ok(id) => id,
        Err(e) => {
            let code = match e {
                AuthError::Expired => ErrorCode::TokenExpired,
                _ => ErrorCode::Unauthenticated,
            };
            send_close(sink, config, error_frame(request_id, code, e.to_string())).await;
            return None;
        }
    };
    if let Err(e) = service.admit(&identity).await {
        let frame = match e.kind {
            // A disabled user or a revoked token: the same code as a bad token, so the
            // client stops reconnecting with it.
            magpie_core::ErrorKind::Forbidden => {
                error_frame(request_id, ErrorCode::Unauthenticated, e.message)
            }
            _ => wire::service_error(request_id, &e),
        };
        send_close(sink, config, frame).await;
        return None;
    }
    if let Err(e) = service.ensure_user(&identity.app, &identity.user).await {
        send_close(sink, config, wire::service_error(request_id, &e)).await;
        return None;
    }
    Some(Hello {
        request_id,
        app: identity.app.clone(),
        user: identity.user.clone(),
        device: identity.device.clone(),
        identity,
    })
}

/// Why a session ended (for logs).
enum End {
    ClientClosed,
    Cancelled,
    GoAway,
    Idle,
    Io(std::io::Error),
    BadInput(String),
    DeliveryFailed,
}

impl End {
    /// A short, fixed label for metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Cancelled => "cancelled",
            Self::GoAway => "goaway",
            Self::Idle => "idle",
            Self::Io(_) => "io",
            Self::BadInput(_) => "bad_input",
            Self::DeliveryFailed => "delivery_failed",
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed"),
            Self::Cancelled => f.write_str("cancelled (slow consumer, replaced, or shutdown)"),
            Self::GoAway => f.write_str("sent go-away"),
            Self::Idle => f.write_str("idle timeout"),
            Self::Io(e) => write!(f, "transport: {e}"),
            Self::BadInput(e) => write!(f, "bad input: {e}"),
            Self::DeliveryFailed => f.write_str("pushes not acknowledged"),
        }
    }
}

/// What woke a session's loop.
// Moved into the boxed handler at once, never stored: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Event {
    Outbound(Outbound),
    Reply(Option<Frame>),
    Incoming(Option<Result<Frame, ReadError>>),
    Tick,
    RoomTick,
}

struct Session {
    probes: Arc<Probes>,
    service: Arc<Service>,
    config: Arc<GatewayConfig>,
    ctx: SessionCtx,
    sink: FrameSink,
    tracker: DeliveryTracker<bytes::Bytes>,
    in_flight: InFlight,
    started: Instant,
    /// Live rooms this connection is in.
    rooms: JoinedRooms,
}

impl Session {
    async fn run(&mut self, stream: &mut FrameStream, rx: &mut Outbox) -> End {
        let mut last_heard = Instant::now();
        // Reliable room messages are checked more often than the heartbeat tick, so a lost
        // one is written again well within the 3 s a room promises. Only a connection in a
        // room has this timer.
        let mut room_tick: Option<tokio::time::Interval> = None;
        loop {
            match (&room_tick, self.rooms.is_empty()) {
                (None, false) => room_tick = Some(self.room_interval()),
                (Some(_), true) => room_tick = None,
                _ => {}
            }
            // The select yields a value and awaits nothing: the loop's own state stays
            // small, and the handler (a frame, the sink's feed and flush) is a boxed
            // future that exists while it runs, not in the task of every idle connection.
            let event = tokio::select! {
                biased;
                next = rx.next() => match next {
                    Next::Item(item) => Event::Outbound(item),
                    Next::Tick => {
                        // An idle connection gives its queue's space back.
                        rx.trim();
                        self.in_flight.trim();
                        Event::Tick
                    }
                    Next::End => return End::Cancelled,
                },
                Some(reply) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    Event::Reply(reply)
                }
                incoming = stream.next(), if self.in_flight.len() < self.config.max_in_flight => {
                    last_heard = Instant::now();
                    Event::Incoming(incoming)
                }
                _ = next_tick(&mut room_tick), if room_tick.is_some() => Event::RoomTick,
            };
            let result = Box::pin(self.handle(event, rx, last_heard)).await;
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn handle(
        &mut self,
        event: Event,
        rx: &mut Outbox,
        last_heard: Instant,
    ) -> Result<(), End> {
        match event {
            Event::Outbound(item) => self.outbound(item, rx).await,
            Event::Reply(reply) => self.replies(reply).await,
            Event::Incoming(None) => Err(End::ClientClosed),
            Event::Incoming(Some(Err(e))) => {
                read_error(&mut self.sink, &self.config, &e).await;
                Err(End::BadInput(e.to_string()))
            }
            Event::Incoming(Some(Ok(f))) => self.incoming(f).await,
            Event::Tick => self.on_tick(last_heard).await,
            Event::RoomTick => {
                let queue_empty = rx.is_empty();
                self.on_room_tick(queue_empty).await
            }
        }
    }

    /// Unregisters the connection once it has ended.
    fn finish(&mut self, end: &End) {
        let ctx = &self.ctx;
        self.rooms.leave_all(ctx.conn_id);
        self.service.sessions().unregister(ctx);
        spawn_presence(&self.service, ctx, false);
        metrics::counter!("magpie_connections_closed_total", "reason" => end.label()).increment(1);
        tracing::debug!(conn = ctx.conn_id, reason = %end, "connection closed");
    }

    fn room_interval(&self) -> tokio::time::Interval {
        let retransmit = self.service.room_config().retransmit_ms;
        let mut t = tokio::time::interval(Duration::from_millis((retransmit / 4).max(25)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    }

    /// Milliseconds since the session started: the tracker's clock.
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn outbound(&mut self, first: Outbound, rx: &mut Outbox) -> Result<(), End> {
        self.probes.queue_depth.record(rx.len() as f64);
        let mut item = Some(first);
        let mut fed = 0;
        while let Some(current) = item.take() {
            match current {
                Outbound::Message(d) => {
                    // Accepted (durable) to written to this device's socket.
                    self.probes.delivery.record(
                        self.service.now_ms().saturating_sub(d.msg.server_time) as f64 / 1000.0,
                    );
                    let bytes = d
                        .encoded
                        .get_or_init(|| encode_frame(&wire::push(&d.msg)))
                        .clone();
                    let now = self.now();
                    if self
                        .tracker
                        .on_push(d.msg.conv.clone(), d.msg.seq, bytes.clone(), now)
                        .is_err()
                    {
                        return Err(End::DeliveryFailed);
                    }
                    self.sink
                        .feed(Outgoing::Encoded(bytes))
                        .await
                        .map_err(End::Io)?;
                }
                Outbound::Room(b) => {
                    let bytes = b
                        .encoded
                        .get_or_init(|| wire_rooms::encode_batch(&b))
                        .clone();
                    if b.last_seq > 0 {
                        self.rooms.wrote(&b.room, b.last_seq, self.service.now_ms());
                    }
                    self.sink
                        .feed(Outgoing::Encoded(bytes))
                        .await
                        .map_err(End::Io)?;
                }
                Outbound::RoomNotice(n) => {
                    if n.kind.removes() {
                        self.rooms.left(&n.room);
                    }
                    let f = wire_rooms::notice(&n);
                    self.sink.feed(Outgoing::Frame(f)).await.map_err(End::Io)?;
                }
                Outbound::Read(_)
                | Outbound::Deleted(_)
                | Outbound::Typing(_)
                | Outbound::Presence(_)
                | Outbound::Social(_) => {
                    if let Some(f) = wire::notice(&current) {
                        self.sink.feed(Outgoing::Frame(f)).await.map_err(End::Io)?;
                    }
                }
                Outbound::GoAway { reason, reconnect } => {
                    let f = frame(0, Body::Goaway(pb::GoAway { reason, reconnect }));
                    let _ = self.write_now(Outgoing::Frame(f)).await;
                    return Err(End::GoAway);
                }
            }
            fed += 1;
            if fed < WRITE_BATCH {
                item = rx.try_recv().ok();
            }
        }
        self.flush().await
    }

    /// Writes `first` and every other reply that is already complete, then flushes once:
    /// the acks of one group commit become ready together and leave in one write.
    async fn replies(&mut self, first: Option<Frame>) -> Result<(), End> {
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(item) = next.take() {
            if let Some(f) = item {
                wire::count_if_error(&f);
                self.sink.feed(Outgoing::Frame(f)).await.map_err(End::Io)?;
            }
            fed += 1;
            if fed < WRITE_BATCH {
                next = self.in_flight.next().now_or_never().flatten();
            }
        }
        self.flush().await
    }

    async fn on_tick(&mut self, last_heard: Instant) -> Result<(), End> {
        if last_heard.elapsed() > self.config.idle_timeout() {
            let _ = self
                .write_now(Outgoing::Frame(error_frame(
                    0,
                    ErrorCode::IdleTimeout,
                    "idle for too long",
                )))
                .await;
            return Err(End::Idle);
        }
        let now = self.now();
        match self.tracker.poll(now) {
            Poll::Idle => Ok(()),
            Poll::Failed => Err(End::DeliveryFailed),
            Poll::Resend(frames) => {
                metrics::counter!("magpie_push_retransmits_total").increment(frames.len() as u64);
                for bytes in frames {
                    self.sink
                        .feed(Outgoing::Encoded(bytes))
                        .await
                        .map_err(End::Io)?;
                }
                self.flush().await
            }
        }
    }

    /// Writes again the reliable room messages this connection has left unacknowledged.
    async fn on_room_tick(&mut self, queue_empty: bool) -> Result<(), End> {
        let c = self.service.room_config();
        let due = self.rooms.due(
            self.ctx.conn_id,
            self.service.now_ms(),
            c.retransmit_ms,
            c.max_fetch,
            queue_empty,
        );
        if due.is_empty() {
            return Ok(());
        }
        metrics::counter!("magpie_room_retransmits_total").increment(due.len() as u64);
        for e in due {
            let bytes = e
                .encoded
                .get_or_init(|| wire_rooms::encode_single(&e))
                .clone();
            self.sink
                .feed(Outgoing::Encoded(bytes))
                .await
                .map_err(End::Io)?;
        }
        self.flush().await
    }

    async fn incoming(&mut self, f: Frame) -> Result<(), End> {
        let rid = f.request_id;
        let Some(body) = f.body else {
            return self
                .reply(error_frame(rid, ErrorCode::BadFrame, "frame has no body"))
                .await;
        };
        match body {
            Body::Ping(p) => {
                let pong = frame(
                    rid,
                    Body::Pong(pb::Pong {
                        client_time_ms: p.client_time_ms,
                        server_time_ms: self.service.now_ms(),
                    }),
                );
                self.reply(pong).await
            }
            Body::PushAck(ack) => {
                let now = self.now();
                for d in ack.delivered {
                    if let Ok(conv) = ConvId::parse(&d.conversation)
                        && let Some(pushed) = self.tracker.take_ack(&conv, d.seq)
                    {
                        // Push to device ack: the delivery half of a message's trip (the
                        // send half is `magpie_send_seconds`, request to durable ack).
                        self.probes
                            .delivery_ack
                            .record(now.saturating_sub(pushed) as f64 / 1000.0);
                    }
                }
                Ok(())
            }
            Body::RoomAck(ack) => {
                if let Ok(room) = magpie_types::RoomId::new(ack.room) {
                    self.rooms.on_ack(&room, ack.seq, self.service.now_ms());
                }
                Ok(())
            }
            Body::Hello(_) => {
                self.reply(error_frame(
                    rid,
                    ErrorCode::AlreadyAuthenticated,
                    "already authenticated",
                ))
                .await
            }
            other => {
                // Only a room request gets (and allocates) the connection's room state.
                let rooms = match other {
                    Body::Room(_) => self.rooms.shared(),
                    _ => JoinedRooms::default(),
                };
                let reply =
                    requests::dispatch(self.service.clone(), self.ctx.clone(), rid, other, &rooms);
                self.in_flight.push(reply);
                Ok(())
            }
        }
    }

    async fn reply(&mut self, f: Frame) -> Result<(), End> {
        self.write_now(Outgoing::Frame(f)).await.map_err(End::Io)
    }

    async fn write_now(&mut self, o: Outgoing) -> Result<(), std::io::Error> {
        if let Outgoing::Frame(f) = &o {
            wire::count_if_error(f);
        }
        self.sink.feed(o).await?;
        self.flush()
            .await
            .map_err(|_| std::io::Error::other("write timed out"))
    }

    async fn flush(&mut self) -> Result<(), End> {
        match timeout(self.config.write_timeout, self.sink.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(End::Io(e)),
            Err(_) => Err(End::Io(std::io::Error::other("write timed out"))),
        }
    }
}

/// The next tick of `timer`; never, without one.
async fn next_tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Presence changes are announced off the connection's path (they read the friend list).
fn spawn_presence(service: &Arc<Service>, ctx: &SessionCtx, connected: bool) {
    let (svc, ctx) = (service.clone(), ctx.clone());
    tokio::spawn(async move {
        if connected {
            svc.connected(&ctx).await;
        } else {
            svc.disconnected(&ctx).await;
        }
    });
}

async fn read_error(sink: &mut FrameSink, config: &GatewayConfig, e: &ReadError) {
    match e {
        ReadError::TooLarge(m) => fatal(sink, config, ErrorCode::FrameTooLarge, m).await,
        ReadError::Malformed(m) => fatal(sink, config, ErrorCode::BadFrame, m).await,
        ReadError::Io(_) => {}
    }
}

async fn fatal(sink: &mut FrameSink, config: &GatewayConfig, code: ErrorCode, msg: &str) {
    send_close(sink, config, error_frame(0, code, msg)).await;
}

/// Best effort: write a final frame and close, within the write deadline.
async fn send_close(sink: &mut FrameSink, config: &GatewayConfig, f: Frame) {
    wire::count_if_error(&f);
    let _ = timeout(config.write_timeout, async {
        sink.send(Outgoing::Frame(f)).await?;
        sink.close().await
    })
    .await;
}
