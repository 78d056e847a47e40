//! The application-facing handles: [`Client`] (commands) and [`Events`] (what happened).
//!
//! This file holds connecting, sending, history and cursors; further `impl Client` blocks
//! hold the rest: `messages` (recall, edit, react, delete for me, typing), `groups`,
//! `conversations` (the conversation list), `social` (profiles, friends, blocks,
//! presence) and `rooms` (live rooms).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use magpie_proto::{Body, pb};
use magpie_types::{ClientMsgId, Content, ConvId, GroupId, Seq, UserId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{Channels, Command, Driver, Status};
use crate::inbox::SharedInbox;
use crate::outbox::Outgoing;
use crate::send::Draft;
use crate::transport::Connector;
use crate::{
    ClientConfig, ClientError, ConnectionState, Event, HistoryPage, Message, Recipient, SendAck,
    SendOptions, SessionInfo,
};

mod conversations;
mod groups;
mod messages;
mod rooms;
mod social;

/// Commands buffered towards the connection task before callers wait.
const COMMAND_BUFFER: usize = 256;

/// A handle to a Magpie connection. Cheap to clone; every clone talks to the same connection
/// task. When the last handle is dropped the connection closes.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    inbox: SharedInbox,
    request_timeout: Duration,
    list_page_size: u32,
}

impl Client {
    /// Connects and authenticates, then keeps the connection up in a background task
    /// (reconnecting with backoff, syncing after every reconnect).
    ///
    /// Returns once the first connection is authenticated, or with the first attempt's error
    /// (nothing is retried then). Must be called within a Tokio runtime.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (client, events) = Self::spawn(config, Some(ready_tx))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok((client, events)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// Like [`Client::connect`] but returns at once, before any connection exists; failed
    /// attempts (the first included) are retried with backoff and reported as
    /// [`Event::Connection`] events. Sends made meanwhile wait for a connection.
    pub fn connect_lazy(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        Self::spawn(config, None)
    }

    /// Sends text to a user (see [`Client::send`]).
    pub async fn send_text(
        &self,
        to: &UserId,
        text: impl Into<String>,
    ) -> Result<SendAck, ClientError> {
        self.send(to, Content::text(text)).await
    }

    /// Sends a message to a user under a fresh client message id.
    ///
    /// Resolves only with the server's acknowledgement (the message is durable) or a definite
    /// rejection ([`ClientError::Rejected`]); lost connections and transient server errors
    /// are retried under the same client message id, so the message is stored at most once.
    /// The message also arrives as an [`Event::Message`] in its conversation's order.
    ///
    /// The message is handed to the connection task at once: dropping the returned future
    /// does not withdraw it. [`ClientConfig::send_timeout`] bounds the wait (then the outcome
    /// is unknown: [`ClientError::Timeout`]).
    pub async fn send(&self, to: &UserId, content: Content) -> Result<SendAck, ClientError> {
        self.send_with(to, content, SendOptions::default()).await
    }

    /// Sends a message under a client message id of the caller's choice (for an application
    /// that persists its outbox and retries across restarts). Sending again with the same id
    /// returns the original ack.
    pub async fn send_with_id(
        &self,
        to: &UserId,
        client_msg_id: ClientMsgId,
        content: Content,
    ) -> Result<SendAck, ClientError> {
        let options = SendOptions::default().client_msg_id(client_msg_id);
        self.send_with(to, content, options).await
    }

    /// Sends text to a group (see [`Client::send_group`]).
    pub async fn send_group_text(
        &self,
        group: &GroupId,
        text: impl Into<String>,
    ) -> Result<SendAck, ClientError> {
        self.send_group(group, Content::text(text)).await
    }

    /// Sends a message to a group's conversation, with the same guarantees as
    /// [`Client::send`]. The server refuses it ([`ClientError::Rejected`]) if the user is not
    /// a member ([`ErrorCode::Forbidden`](crate::ErrorCode::Forbidden)) or is muted
    /// ([`ErrorCode::Muted`](crate::ErrorCode::Muted)).
    pub async fn send_group(
        &self,
        group: &GroupId,
        content: Content,
    ) -> Result<SendAck, ClientError> {
        self.send_with(group, content, SendOptions::default()).await
    }

    /// Sends a message to a user or a group with [`SendOptions`]: mentions, `@all`, a reply,
    /// a client message id of the caller's choice. Same guarantees as [`Client::send`]:
    /// every retry carries the same request under the same client message id.
    pub async fn send_with(
        &self,
        to: impl Into<Recipient>,
        content: Content,
        options: SendOptions,
    ) -> Result<SendAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        let draft = Draft::new(to.into(), content, options);
        self.command(Command::Send(Outgoing::Message { draft, reply }))
            .await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// A page of a conversation's history, newest first: messages with `seq < before_seq`
    /// (`before_seq` 0 = from the newest), at most `limit`. History does not touch the event
    /// stream or the cursors.
    pub async fn history(
        &self,
        conversation: &ConvId,
        before_seq: Seq,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let request = Body::History(pb::HistoryRequest {
            conversation: conversation.as_str().to_owned(),
            before_seq,
            limit,
        });
        match self.query(request, true).await? {
            Body::HistoryResult(page) => Ok(HistoryPage {
                messages: page
                    .messages
                    .into_iter()
                    .filter_map(|m| {
                        Message::from_pb(m)
                            .inspect_err(|e| tracing::warn!("dropping a malformed message: {e}"))
                            .ok()
                    })
                    .collect(),
                has_more: page.has_more,
            }),
            _ => Err(ClientError::Protocol("unexpected answer to history".into())),
        }
    }

    /// Every conversation's cursor: the highest `seq` handed to the event stream. Persist
    /// these (after processing the events) and pass them to
    /// [`ClientConfig::with_initial_cursors`] to resume.
    pub async fn cursors(&self) -> Result<HashMap<ConvId, Seq>, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Cursors { reply }).await?;
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// The connection's current state.
    pub fn state(&self) -> ConnectionState {
        self.inner.status.borrow().state.clone()
    }

    /// The last session the server accepted (user, device, limits), if any.
    pub fn session(&self) -> Option<SessionInfo> {
        self.inner.status.borrow().session.clone()
    }

    /// Closes the connection gracefully: pending sends and queries fail with
    /// [`ClientError::Closed`], queued acknowledgements are written, the socket is closed,
    /// and the event stream ends after the events already received. Returns when the socket
    /// is closed; every handle is closed.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.command(Command::Close { done }).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn spawn(
        config: ClientConfig,
        ready: Option<oneshot::Sender<Result<(), ClientError>>>,
    ) -> Result<(Client, Events), ClientError> {
        config.validate()?;
        let connector = Connector::new(&config)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClientError::Config("the client must be started within a Tokio runtime".into())
        })?;
        let (command_tx, command_rx) = mpsc::channel(COMMAND_BUFFER);
        let (event_tx, event_rx) = mpsc::channel(config.event_buffer);
        let (status_tx, status_rx) = watch::channel(Status {
            state: ConnectionState::Connecting { attempt: 1 },
            session: None,
        });
        let inbox = SharedInbox::default();
        let inner = Inner {
            commands: command_tx,
            status: status_rx,
            inbox: inbox.clone(),
            request_timeout: config.request_timeout,
            list_page_size: config.list_page_size,
        };
        let channels = Channels {
            commands: command_rx,
            events: event_tx,
            status: status_tx,
            ready,
            inbox,
        };
        runtime.spawn(Driver::new(config, connector, channels).run());
        Ok((
            Client {
                inner: Arc::new(inner),
            },
            Events { rx: event_rx },
        ))
    }

    async fn command(&self, command: Command) -> Result<(), ClientError> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Sends a query and waits for its answer (an error frame becomes `Rejected`), bounded
    /// by the request timeout. A query that is not `idempotent` (it changes state) is
    /// written at most once: a connection lost before the answer fails it with
    /// [`ClientError::Interrupted`].
    async fn query(&self, body: Body, idempotent: bool) -> Result<Body, ClientError> {
        let run = async {
            let (reply, rx) = oneshot::channel();
            self.command(Command::Query {
                body: Box::new(body),
                idempotent,
                reply,
            })
            .await?;
            rx.await.map_err(|_| ClientError::Closed)?
        };
        tokio::time::timeout(self.inner.request_timeout, run)
            .await
            .map_err(|_| ClientError::Timeout)?
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The stream of [`Event`]s of one client, in order. Ends after the client closes.
///
/// Keep reading it: when the application falls behind by more than
/// [`ClientConfig::event_buffer`] events, the client stops reading from the server.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The next message, skipping other events; `None` once the client is closed.
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            if let Event::Message(m) = self.rx.recv().await? {
                return Some(m);
            }
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// A fresh random client message id (a version 4 UUID).
pub fn new_client_msg_id() -> ClientMsgId {
    let mut v: u128 = rand::random();
    v = (v & !(0xf << 76)) | (0x4 << 76); // version 4
    v = (v & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
    let s = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    );
    // Invariant: 36 characters of hex digits and '-', all in the allowed alphabet.
    ClientMsgId::new(s).expect("a UUID is a valid client message id")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_msg_ids_are_uuid_shaped_and_distinct() {
        let a = new_client_msg_id();
        let b = new_client_msg_id();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(&a.as_str()[14..15], "4");
    }

    #[tokio::test]
    async fn bad_config_fails_fast() {
        let err = Client::connect(ClientConfig::new("http://x", "t"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Config(_)));
        let mut c = ClientConfig::new("tcp://127.0.0.1:1", "t");
        c.pull_page_size = 0;
        assert!(matches!(
            Client::connect(c).await,
            Err(ClientError::Config(_))
        ));
    }
}
