//! A small fake Magpie server for the SDK's tests, built from `magpie-proto` only.
//!
//! It keeps conversation logs in memory, accepts `Hello` (the token is the user id, or
//! `user/device`; `expired` and `bad` are refused), acks sends with increasing `seq` and
//! deduplicates them by `(sender, client_msg_id)`, pushes new messages to the recipient's
//! connections and the sender's other ones, and serves ListConversations, Pull and History.
//! Knobs let a test cut a connection mid-frame, refuse connections, fail sends, stay silent.
//! Everything it sees is recorded, and [`FakeServer::wait`] awaits a condition on that record
//! (no sleeps).

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

mod conn;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use magpie_proto::convert::text_content;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, error_frame, frame};
use magpie_types::{ConvId, UserId};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How long any test waits for anything.
pub const WAIT: Duration = Duration::from_secs(10);

/// How clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Tls,
    Ws,
    Wss,
}

/// What the server has seen, and the knobs tests turn.
#[derive(Default)]
pub struct State {
    pub logs: BTreeMap<String, Vec<pb::Message>>,
    dedup: HashMap<(String, String), pb::SendAck>,
    next_msg_id: u64,
    next_conn: u64,
    conns: HashMap<u64, Conn>,
    /// TCP connections accepted.
    pub accepted: usize,
    /// Hellos answered with HelloOk.
    pub hellos_ok: usize,
    /// Every SendRequest: (sender, client_msg_id).
    pub sends: Vec<(String, String)>,
    /// Every PushAck entry: (conversation, seq).
    pub push_acks: Vec<(String, u64)>,
    /// Every PullRequest: (conversation, after_seq).
    pub pulls: Vec<(String, u64)>,
    /// Tokens presented in Hello.
    pub tokens: Vec<String>,
    /// Pings received.
    pub pings: usize,

    /// Store the next send, then write half of its ack frame and close the connection.
    pub cut_next_ack: bool,
    /// Close this many of the next connections right after their Hello.
    pub refuse_next: usize,
    /// Answer the next sends with these errors (in order) without storing them.
    pub fail_next_sends: Vec<ErrorCode>,
    /// Heartbeat announced in HelloOk.
    pub heartbeat_ms: u32,
    /// Do not answer pings (a server that went silent).
    pub silent: bool,
}

struct Conn {
    user: String,
    tx: mpsc::UnboundedSender<Ctl>,
}

enum Ctl {
    Frame(Frame),
    Close,
}

struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// A running fake server.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub mode: Mode,
    /// The self-signed certificate (DER) for TLS modes.
    pub cert_der: Option<Vec<u8>>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start() -> Self {
        Self::start_mode(Mode::Tcp).await
    }

    pub async fn start_mode(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                heartbeat_ms: 30_000,
                next_msg_id: 1000,
                ..State::default()
            }),
            changed,
        });
        let (acceptor, cert_der) = match mode {
            Mode::Tls | Mode::Wss => {
                let (acceptor, der) = conn::tls_acceptor();
                (Some(acceptor), Some(der))
            }
            Mode::Tcp | Mode::Ws => (None, None),
        };
        let task = tokio::spawn(conn::accept_loop(listener, mode, acceptor, shared.clone()));
        Self {
            addr,
            mode,
            cert_der,
            shared,
            task,
        }
    }

    /// The URL clients use.
    pub fn url(&self) -> String {
        match self.mode {
            Mode::Tcp => format!("tcp://{}", self.addr),
            Mode::Tls => format!("tls://{}", self.addr),
            Mode::Ws => format!("ws://{}/ws", self.addr),
            Mode::Wss => format!("wss://{}/ws", self.addr),
        }
    }

    /// The recorded state (and knobs).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Waits until `cond` holds on the state; panics after [`WAIT`].
    pub async fn wait(&self, what: &str, cond: impl Fn(&State) -> bool) {
        let mut rx = self.shared.changed.subscribe();
        let check = async {
            loop {
                if cond(&self.shared.lock()) {
                    return;
                }
                rx.changed().await.unwrap();
            }
        };
        tokio::time::timeout(WAIT, check)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
    }

    /// Stores a message from `from` to `to` without pushing it.
    pub fn store(&self, from: &str, to: &str, text: &str) -> pb::Message {
        let m = store(
            &mut self.shared.lock(),
            from,
            "dev0",
            to,
            &format!("srv-{text}"),
            text,
        );
        self.shared.bump();
        m
    }

    /// Pushes messages to every connection of `user`.
    pub fn push(&self, user: &str, messages: Vec<pb::Message>) {
        let f = frame(0, Body::Push(pb::Push { messages }));
        self.to_user(user, || Ctl::Frame(f.clone()));
    }

    /// Closes every connection of `user`.
    pub fn kick(&self, user: &str) {
        self.to_user(user, || Ctl::Close);
    }

    /// Sends GoAway to every connection of `user`.
    pub fn goaway(&self, user: &str, reconnect: bool) {
        let f = frame(
            0,
            Body::Goaway(pb::GoAway {
                reason: "draining".into(),
                reconnect,
            }),
        );
        self.to_user(user, || Ctl::Frame(f.clone()));
    }

    /// Sends a connection-fatal error (request id 0) to every connection of `user`.
    pub fn fatal_error(&self, user: &str, code: ErrorCode) {
        let f = error_frame(0, code, "fatal");
        self.to_user(user, || Ctl::Frame(f.clone()));
    }

    /// Connections currently open for `user`.
    pub fn connections(&self, user: &str) -> usize {
        self.shared
            .lock()
            .conns
            .values()
            .filter(|c| c.user == user)
            .count()
    }

    fn to_user(&self, user: &str, ctl: impl Fn() -> Ctl) {
        let st = self.shared.lock();
        for c in st.conns.values().filter(|c| c.user == user) {
            let _ = c.tx.send(ctl());
        }
    }
}

fn conv_of(a: &str, b: &str) -> String {
    ConvId::direct(&UserId::new(a).unwrap(), &UserId::new(b).unwrap())
        .as_str()
        .to_owned()
}

fn store(
    st: &mut State,
    from: &str,
    device: &str,
    to: &str,
    cmid: &str,
    text: &str,
) -> pb::Message {
    store_content(st, from, device, to, cmid, text_content(text))
}

fn store_content(
    st: &mut State,
    from: &str,
    device: &str,
    to: &str,
    cmid: &str,
    content: pb::Content,
) -> pb::Message {
    let conv = conv_of(from, to);
    st.next_msg_id += 1;
    let log = st.logs.entry(conv.clone()).or_default();
    let m = pb::Message {
        msg_id: st.next_msg_id,
        conversation: conv,
        seq: log.len() as u64 + 1,
        from_user: from.into(),
        from_device: device.into(),
        client_msg_id: cmid.into(),
        content: Some(content),
        server_time_ms: 1_700_000_000_000 + st.next_msg_id,
    };
    log.push(m.clone());
    m
}
