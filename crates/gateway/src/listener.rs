//! Accept loops and the shared gateway state.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use magpie_proto::pb::ErrorCode;
use magpie_proto::{codec::Outgoing, error_frame};
use magpie_service::Service;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::GatewayConfig;
use crate::connection;
use crate::preauth::{PreauthLimiter, PreauthPermit};
use crate::transport::{FrameSink, FrameStream, stream_transport, ws_transport};

/// The period of the shared heartbeat tick.
const TICK: Duration = Duration::from_secs(1);

/// Which framing a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Length-prefixed frames over TCP.
    Tcp,
    /// One frame per binary WebSocket message.
    WebSocket,
}

/// The access layer of one node: configuration, the service it serves, and the signals
/// that stop it.
#[derive(Debug)]
pub struct Gateway {
    service: Arc<Service>,
    config: Arc<GatewayConfig>,
    preauth: PreauthLimiter,
    /// Stops accepting.
    stop_accepting: CancellationToken,
    /// Closes every connection (after the drain).
    close_connections: CancellationToken,
    tasks: TaskTracker,
    /// The per-push metric handles every connection shares.
    probes: Arc<crate::probes::Probes>,
    /// Starts the heartbeat tick once (see [`Gateway::start_ticker`]).
    ticker: std::sync::Once,
}

impl Gateway {
    /// A gateway serving `service`.
    pub fn new(service: Arc<Service>, config: GatewayConfig) -> Arc<Self> {
        Arc::new(Self {
            preauth: PreauthLimiter::new(config.max_preauth_per_ip),
            service,
            config: Arc::new(config),
            stop_accepting: CancellationToken::new(),
            close_connections: CancellationToken::new(),
            tasks: TaskTracker::new(),
            probes: Arc::new(crate::probes::Probes::new()),
            ticker: std::sync::Once::new(),
        })
    }

    /// Spawns an accept loop on `listener`. With `tls`, every connection starts with a TLS
    /// handshake.
    pub fn spawn_listener(
        self: &Arc<Self>,
        listener: TcpListener,
        protocol: Protocol,
        tls: Option<Arc<ServerConfig>>,
    ) {
        let gw = self.clone();
        let label = match (protocol, tls.is_some()) {
            (Protocol::Tcp, false) => "tcp",
            (Protocol::Tcp, true) => "tls",
            (Protocol::WebSocket, false) => "ws",
            (Protocol::WebSocket, true) => "wss",
        };
        let acceptor = tls.map(TlsAcceptor::from);
        self.ticker.call_once(|| self.start_ticker());
        self.tasks.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = gw.stop_accepting.cancelled() => break,
                    r = listener.accept() => r,
                };
                match accepted {
                    Ok((sock, peer)) => {
                        metrics::counter!("magpie_connections_accepted_total", "listener" => label)
                            .increment(1);
                        // The permit is taken here, in accept order, not in the spawned
                        // task: tasks run in any order, so a later connection could
                        // otherwise take the slot of an earlier one.
                        let permit = gw.preauth.try_acquire(peer.ip());
                        if permit.is_none() && acceptor.is_some() {
                            // Over the cap: a TLS handshake is the expensive part the cap
                            // protects against, so a refused TLS connection is closed at
                            // once (plaintext ones get a typed error, which costs nothing).
                            tracing::info!(%peer, "too many unauthenticated connections from this address");
                            metrics::counter!("magpie_errors_total", "code" => "TOO_MANY_CONNECTIONS")
                                .increment(1);
                            continue;
                        }
                        let gw2 = gw.clone();
                        let acceptor = acceptor.clone();
                        gw.tasks.spawn(async move {
                            // The session gets a task of its own (see `connection::establish`).
                            if let Some(live) =
                                gw2.handle(sock, peer, protocol, acceptor, permit).await
                            {
                                gw2.tasks.spawn(live.run());
                            }
                        });
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    /// Starts the one-second tick every connection's idle timeout and retransmissions run
    /// on, delivered through each connection's outbound queue (`outbox::Sender::tick`). One
    /// timer for the whole gateway: a per-connection `Interval` is a boxed timer entry (112
    /// bytes), and waiting on a broadcast receiver a 120-byte future, in every idle
    /// connection. The ticker stops once the gateway is dropped.
    fn start_ticker(self: &Arc<Self>) {
        let gw = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(gw) = gw.upgrade() else { break };
                gw.service.sessions().tick_all();
            }
        });
    }

    /// Graceful drain: stop accepting, tell every client to reconnect elsewhere, wait up
    /// to `grace` for connections to finish, then close the rest.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop_accepting.cancel();
        self.service.sessions().goaway_all("server shutting down");
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            // Connections still in their handshake wait on the token; sessions are ended
            // through their queues.
            self.close_connections.cancel();
            self.service.sessions().cancel_all();
            let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
        }
    }

    async fn handle(
        &self,
        sock: TcpStream,
        peer: SocketAddr,
        protocol: Protocol,
        tls: Option<TlsAcceptor>,
        permit: Option<PreauthPermit>,
    ) -> Option<connection::Live> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        let _ = sock.set_nodelay(true);
        // Boxed: the TLS and WebSocket handshake futures are large (~11 KB), and an unboxed
        // future is as large as its largest state, so even a plain TCP connection's
        // handshake task would be that large. On the heap it is freed once the accept ends.
        let handshake = Box::pin(async {
            match tls {
                Some(acceptor) => {
                    let tls = acceptor.accept(sock).await.ok()?;
                    self.frames(tls, protocol).await
                }
                None if protocol == Protocol::Tcp => Some(crate::plain_tcp::transport(
                    sock,
                    self.service.limits().max_frame_bytes,
                )),
                None => self.frames(sock, protocol).await,
            }
        });
        let established = tokio::time::timeout_at(deadline, handshake).await;
        let Ok(Some((stream, mut sink))) = established else {
            return None;
        };
        let Some(permit) = permit else {
            tracing::info!(%peer, "too many unauthenticated connections from this address");
            let f = error_frame(
                0,
                ErrorCode::TooManyConnections,
                "too many unauthenticated connections from this address",
            );
            crate::wire::count_if_error(&f);
            // Boxed like the accept: this rare state must not size every handshake task.
            let _ = Box::pin(tokio::time::timeout(self.config.write_timeout, async {
                use futures_util::SinkExt;
                sink.send(Outgoing::Frame(f)).await?;
                sink.close().await
            }))
            .await;
            return None;
        };
        connection::establish(
            (stream, sink),
            self.service.clone(),
            self.config.clone(),
            self.probes.clone(),
            self.close_connections.clone(),
            permit,
            deadline,
        )
        .await
    }

    async fn frames<S>(&self, io: S, protocol: Protocol) -> Option<(FrameStream, FrameSink)>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let max = self.service.limits().max_frame_bytes;
        match protocol {
            Protocol::Tcp => Some(stream_transport(io, max)),
            Protocol::WebSocket => {
                let ws_config = WebSocketConfig::default()
                    .read_buffer_size(self.config.ws_read_buffer)
                    .write_buffer_size(self.config.ws_write_buffer)
                    .max_write_buffer_size(self.config.ws_write_buffer.max(max) * 4)
                    .max_message_size(Some(max))
                    .max_frame_size(Some(max));
                let ws = tokio_tungstenite::accept_async_with_config(io, Some(ws_config))
                    .await
                    .ok()?;
                Some(ws_transport(ws, max))
            }
        }
    }
}
