//! A small fake Magpie server for the SDK's tests, built from `magpie-proto` only.
//!
//! It keeps conversation logs in memory, accepts `Hello` (the token is the user id, or
//! `user/device`; `expired` and `bad` are refused), acks sends with increasing `seq` and
//! deduplicates them by `(sender, client_msg_id)`, pushes new messages to the recipient's
//! connections and the sender's other ones, and serves ListConversations, Pull and History.
//! Groups (`groups`): create, join, leave, add, get, with membership intervals, so that pulls
//! name the seqs a user may not see as hidden ranges; read positions, settings and the
//! conversation list's unread state (`lists`); message operations (recall, edit, react,
//! deduplicated by client message id like sends) and delete for me (`ops`); typing,
//! presence subscriptions, profiles, friends and blocks (`people`); live rooms (`rooms`).
//! Knobs let a test cut a connection mid-frame, refuse connections, fail sends, stay silent.
//! Everything it sees is recorded, and [`FakeServer::wait`] awaits a condition on that record
//! (no sleeps).

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

mod conn;
mod groups;
mod lists;
mod ops;
mod people;
mod rooms;

pub use rooms::FakeRoom;

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Every PullRequest with its user: (user, conversation, after_seq).
    pub user_pulls: Vec<(String, String, u64)>,
    /// Tokens presented in Hello.
    pub tokens: Vec<String>,
    /// Pings received.
    pub pings: usize,
    /// Groups by id.
    pub groups: BTreeMap<String, FakeGroup>,
    /// Read positions by (user, conversation).
    pub reads: HashMap<(String, String), u64>,
    /// Settings by (user, conversation): (pinned, muted, hidden).
    pub prefs: HashMap<(String, String), (bool, bool, bool)>,
    /// The `since_version` of every ListConversations.
    pub list_since: Vec<u64>,
    /// The list version: bumped by every change.
    pub version: u64,
    /// Every MessageOp: (user, client_msg_id).
    pub ops: Vec<(String, String)>,
    op_dedup: HashMap<(String, String), pb::MessageOpResult>,
    /// Every DeleteForMe: (user, conversation, seqs).
    pub deletes: Vec<(String, String, Vec<u64>)>,
    /// Every Typing: (user, conversation, typing).
    pub typing: Vec<(String, String, bool)>,
    /// Every SubscribePresence: (user, users).
    pub presence_subs: Vec<(String, Vec<String>)>,
    /// Profiles by user.
    pub profiles: BTreeMap<String, pb::Profile>,
    /// Pending friend requests: (from, to) → message.
    pub friend_requests: BTreeMap<(String, String), String>,
    /// Friendships, each as (smaller, larger) user id.
    pub friends: BTreeSet<(String, String)>,
    /// Blocks: (blocker, blocked).
    pub blocks: BTreeSet<(String, String)>,
    /// Live rooms by id.
    pub rooms: BTreeMap<String, FakeRoom>,
    /// Every room join: (user, room, since_seq).
    pub room_joins: Vec<(String, String, u64)>,
    /// Every room fetch: (user, room, since_seq).
    pub room_fetches: Vec<(String, String, u64)>,
    /// Every RoomSend: (user, client_msg_id, priority).
    pub room_sends: Vec<(String, String, i32)>,
    /// Every RoomAck: (user, room, seq).
    pub room_acks: Vec<(String, String, u64)>,

    /// Store the next send (or message op), then write half of its ack frame and close the
    /// connection.
    pub cut_next_ack: bool,
    /// Close this many of the next connections right after their Hello.
    pub refuse_next: usize,
    /// Answer the next sends (and message ops) with these errors (in order) without storing
    /// them.
    pub fail_next_sends: Vec<ErrorCode>,
    /// Answer the next room sends with these errors (popped from the end) without sending
    /// them (SLOW_MODE comes with a retry_after of 1.5 s).
    pub fail_next_room_sends: Vec<ErrorCode>,
    /// Accept the next room send, then write half of its ack frame and close the
    /// connection.
    pub cut_next_room_ack: bool,
    /// Heartbeat announced in HelloOk.
    pub heartbeat_ms: u32,
    /// Do not answer pings (a server that went silent).
    pub silent: bool,
}

/// A group: its members now and every user's visibility intervals (inclusive; the open one
/// ends at `u64::MAX`).
#[derive(Default, Clone)]
pub struct FakeGroup {
    pub name: String,
    pub owner: String,
    pub members: BTreeSet<String>,
    pub intervals: BTreeMap<String, Vec<(u64, u64)>>,
}

struct Conn {
    user: String,
    tx: mpsc::UnboundedSender<Ctl>,
}

enum Ctl {
    Frame(Box<Frame>),
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
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
    }

    /// Sends a ReadUpdate to every connection of `user` (as if `reader` read on another
    /// device or, for 1:1, the other party read).
    pub fn read_update(&self, user: &str, update: pb::ReadUpdate) {
        let f = frame(0, Body::ReadUpdate(update));
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
    }

    /// Sends a server-initiated frame (a notice) to every connection of `user`.
    pub fn notify(&self, user: &str, body: Body) {
        let f = frame(0, body);
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
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
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
    }

    /// Sends a connection-fatal error (request id 0) to every connection of `user`.
    pub fn fatal_error(&self, user: &str, code: ErrorCode) {
        let f = error_frame(0, code, "fatal");
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
    }

    /// Creates a live room owned by `owner`.
    pub fn create_room(&self, room: &str, owner: &str) {
        let r = FakeRoom {
            name: room.to_owned(),
            owner: owner.to_owned(),
            ..FakeRoom::default()
        };
        self.shared.lock().rooms.insert(room.to_owned(), r);
        self.shared.bump();
    }

    /// Appends a message to a room (HIGH: numbered and logged) without sending it.
    pub fn room_store(&self, room: &str, from: &str, text: &str, high: bool) -> pb::RoomMessage {
        let mut st = self.shared.lock();
        st.next_msg_id += 1;
        let msg_id = st.next_msg_id;
        let m = st
            .rooms
            .get_mut(room)
            .unwrap()
            .store(msg_id, from, text, high);
        drop(st);
        self.shared.bump();
        m
    }

    /// Evicts a room's log up to `seq`.
    pub fn room_evict(&self, room: &str, seq: u64) {
        self.shared
            .lock()
            .rooms
            .get_mut(room)
            .unwrap()
            .evict_through(seq);
    }

    /// Sends a RoomBatch to every connection of `user`.
    pub fn room_batch(&self, user: &str, room: &str, messages: Vec<pb::RoomMessage>) {
        let f = frame(
            0,
            Body::RoomBatch(pb::RoomBatch {
                room: room.to_owned(),
                messages,
            }),
        );
        self.to_user(user, || Ctl::Frame(Box::new(f.clone())));
    }

    /// The seqs `user` acknowledged for `room`, in order.
    pub fn room_acks(&self, user: &str, room: &str) -> Vec<u64> {
        self.shared
            .lock()
            .room_acks
            .iter()
            .filter(|(u, r, _)| u == user && r == room)
            .map(|(_, _, seq)| *seq)
            .collect()
    }

    /// The `since_seq` of every join of `room` by `user`, in order.
    pub fn room_joins(&self, user: &str, room: &str) -> Vec<u64> {
        self.shared
            .lock()
            .room_joins
            .iter()
            .filter(|(u, r, _)| u == user && r == room)
            .map(|(_, _, since)| *since)
            .collect()
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
    let entry = pb::Message {
        from_user: from.into(),
        from_device: device.into(),
        client_msg_id: cmid.into(),
        content: Some(content),
        ..Default::default()
    };
    let m = append(st, &conv, entry);
    // Sending marks the conversation read up to the message.
    st.reads.insert((from.to_owned(), conv), m.seq);
    m
}

/// Appends an entry to a conversation's log, assigning msg id, seq and time.
fn append(st: &mut State, conv: &str, mut m: pb::Message) -> pb::Message {
    st.next_msg_id += 1;
    st.version += 1;
    let log = st.logs.entry(conv.to_owned()).or_default();
    m.msg_id = st.next_msg_id;
    m.conversation = conv.to_owned();
    m.seq = log.len() as u64 + 1;
    m.server_time_ms = 1_700_000_000_000 + st.next_msg_id;
    log.push(m.clone());
    m
}

/// Whether `user` may see `seq` of `conv` (1:1: a party; group: inside an interval).
fn visible(st: &State, user: &str, conv: &str, seq: u64) -> bool {
    match conv.strip_prefix("g:") {
        Some(g) => st
            .groups
            .get(g)
            .and_then(|g| g.intervals.get(user))
            .is_some_and(|iv| iv.iter().any(|&(a, b)| a <= seq && seq <= b)),
        None => ConvId::parse(conv)
            .unwrap()
            .has_party(&UserId::new(user).unwrap()),
    }
}

/// Pushes an entry to every connection whose user may see it, except `except`.
fn fan_out(st: &State, m: &pb::Message, except: Option<u64>) {
    let push = frame(
        0,
        Body::Push(pb::Push {
            messages: vec![m.clone()],
        }),
    );
    for (conn_id, c) in &st.conns {
        if Some(*conn_id) != except && visible(st, &c.user, &m.conversation, m.seq) {
            let _ = c.tx.send(Ctl::Frame(Box::new(push.clone())));
        }
    }
}

/// Sends a frame to every connection of `user` except `except`.
fn send_to_user(st: &State, user: &str, f: &Frame, except: Option<u64>) {
    for (conn_id, c) in &st.conns {
        if Some(*conn_id) != except && c.user == user {
            let _ = c.tx.send(Ctl::Frame(Box::new(f.clone())));
        }
    }
}
