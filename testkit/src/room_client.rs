//! A protocol-level live-room client for tests: a background reader records every room
//! message with its arrival time and (optionally) acknowledges reliable ones, while the
//! test sends requests one at a time.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, codec, frame};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::raw::{error_code, hello_frame};

/// A room message as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The room.
    pub room: String,
    /// The message.
    pub msg: pb::RoomMessage,
    /// When it arrived.
    pub at: Instant,
}

/// Everything the reader saw.
#[derive(Debug, Default)]
pub struct RoomLog {
    /// Room messages in arrival order (duplicates included).
    pub messages: Vec<Received>,
    /// `RoomBatch` frames received.
    pub batches: usize,
    /// Notices received.
    pub notices: Vec<pb::RoomNotice>,
    /// Per room: the highest reliable seq up to which every one has arrived.
    pub contiguous: HashMap<String, u64>,
    /// Per room: reliable seqs received beyond the contiguous one.
    ahead: HashMap<String, BTreeSet<u64>>,
    /// The server closed the connection.
    pub closed: bool,
}

impl RoomLog {
    /// Reliable seqs received in `room`, in arrival order (duplicates included).
    pub fn reliable_seqs(&self, room: &str) -> Vec<u64> {
        self.messages
            .iter()
            .filter(|r| r.room == room && r.msg.seq > 0)
            .map(|r| r.msg.seq)
            .collect()
    }

    /// Records reliable `seq` of `room`; returns the new contiguous seq if it advanced.
    fn reliable(&mut self, room: &str, seq: u64) -> Option<u64> {
        let c = self.contiguous.entry(room.to_owned()).or_insert(0);
        if seq <= *c {
            return None;
        }
        let ahead = self.ahead.entry(room.to_owned()).or_default();
        ahead.insert(seq);
        let before = *c;
        while ahead.remove(&(*c + 1)) {
            *c += 1;
        }
        (*c > before).then_some(*c)
    }
}

/// A connection used as a room member.
pub struct RoomClient {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    replies: mpsc::UnboundedReceiver<Frame>,
    /// What arrived.
    pub log: Arc<Mutex<RoomLog>>,
    next_rid: u64,
    reader: JoinHandle<()>,
}

impl Drop for RoomClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn write(w: &tokio::sync::Mutex<OwnedWriteHalf>, f: &Frame) {
    let mut out = BytesMut::new();
    codec::encode_prefixed(f, &mut out);
    let mut w = w.lock().await;
    let _ = w.write_all(&out).await;
}

impl RoomClient {
    /// Connects and logs in. With `auto_ack`, reliable messages are acknowledged as they
    /// become contiguous.
    pub async fn connect(addr: SocketAddr, token: &str, auto_ack: bool) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut out = BytesMut::new();
        codec::encode_prefixed(&hello_frame(token), &mut out);
        stream.write_all(&out).await.expect("hello");
        let (mut read, write_half) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(write_half));
        let log = Arc::new(Mutex::new(RoomLog::default()));
        let (tx, replies) = mpsc::unbounded_channel();
        let (w, l) = (writer.clone(), log.clone());
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                loop {
                    let f = match codec::decode_prefixed(&mut buf, usize::MAX >> 1) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => panic!("undecodable frame: {e}"),
                    };
                    let acks = handle(&l, f, &tx);
                    if auto_ack {
                        for (room, seq) in acks {
                            write(&w, &frame(0, Body::RoomAck(pb::RoomAck { room, seq }))).await;
                        }
                    }
                }
                match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        l.lock().closed = true;
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let mut c = Self {
            writer,
            replies,
            log,
            next_rid: 10,
            reader,
        };
        let ok = c.reply_to(1).await;
        assert!(
            matches!(ok.body, Some(Body::HelloOk(_))),
            "login failed: {ok:?}"
        );
        c
    }

    async fn reply_to(&mut self, rid: u64) -> Frame {
        loop {
            let f = tokio::time::timeout(Duration::from_secs(10), self.replies.recv())
                .await
                .expect("a reply in time")
                .expect("connection open");
            if f.request_id == rid {
                return f;
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&mut self, body: Body) -> Frame {
        self.next_rid += 1;
        let rid = self.next_rid;
        write(&self.writer, &frame(rid, body)).await;
        self.reply_to(rid).await
    }

    /// Sends a frame that gets no reply.
    pub async fn send_frame(&self, body: Body) {
        write(&self.writer, &frame(0, body)).await;
    }

    /// A room operation; the result or the error code.
    pub async fn room(
        &mut self,
        room: &str,
        op: pb::room_request::Op,
    ) -> Result<pb::RoomResult, ErrorCode> {
        let f = self
            .request(Body::Room(pb::RoomRequest {
                room: room.to_owned(),
                op: Some(op),
            }))
            .await;
        match f.body {
            Some(Body::RoomResult(r)) => Ok(r),
            _ => Err(error_code(&f).unwrap_or_else(|| panic!("unexpected reply {f:?}"))),
        }
    }

    /// Creates a room with `settings`.
    pub async fn create(&mut self, room: &str, settings: pb::RoomSettings) -> pb::RoomInfo {
        let r = self
            .room(
                room,
                pb::room_request::Op::Create(pb::CreateRoom {
                    name: format!("room {room}"),
                    settings: Some(settings),
                }),
            )
            .await
            .expect("create room");
        r.info.expect("info")
    }

    /// Joins `room`, starting the reliable count from `since` (or the room's last seq).
    pub async fn join(&mut self, room: &str, since: u64) -> Result<pb::RoomResult, ErrorCode> {
        let r = self
            .room(
                room,
                pb::room_request::Op::Join(pb::JoinRoom { since_seq: since }),
            )
            .await?;
        let start = if since > 0 {
            since
        } else {
            r.info.as_ref().map_or(0, |i| i.last_seq)
        };
        let acks = {
            let mut log = self.log.lock();
            let c = log.contiguous.entry(room.to_owned()).or_insert(0);
            *c = (*c).max(start);
            let now = Instant::now();
            let mut acks = Vec::new();
            for m in &r.messages {
                log.messages.push(Received {
                    room: room.to_owned(),
                    msg: m.clone(),
                    at: now,
                });
                if let Some(c) = log.reliable(room, m.seq) {
                    acks.push(c);
                }
            }
            acks
        };
        if let Some(&seq) = acks.last() {
            self.send_frame(Body::RoomAck(pb::RoomAck {
                room: room.to_owned(),
                seq,
            }))
            .await;
        }
        Ok(r)
    }

    /// Sends text to `room` with `priority` (0: default) and an optional client message id.
    pub async fn say(
        &mut self,
        room: &str,
        text: &str,
        priority: pb::Priority,
        client_msg_id: &str,
    ) -> Result<pb::RoomSendAck, pb::Error> {
        let f = self
            .request(Body::RoomSend(pb::RoomSend {
                room: room.to_owned(),
                content: Some(magpie_proto::convert::text_content(text)),
                priority: priority as i32,
                client_msg_id: client_msg_id.to_owned(),
            }))
            .await;
        match f.body {
            Some(Body::RoomSendAck(a)) => Ok(a),
            Some(Body::Error(e)) => Err(e),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    /// Acknowledges reliable messages of `room` up to the contiguous seq received.
    pub async fn ack(&self, room: &str) {
        let seq = self.log.lock().contiguous.get(room).copied().unwrap_or(0);
        self.send_frame(Body::RoomAck(pb::RoomAck {
            room: room.to_owned(),
            seq,
        }))
        .await;
    }

    /// Waits until `done(log)` holds, up to `wait`; returns whether it did.
    pub async fn wait_for(&self, wait: Duration, done: impl Fn(&RoomLog) -> bool) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if done(&self.log.lock()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Records a frame; returns the acks to send (room, contiguous seq).
fn handle(
    log: &Mutex<RoomLog>,
    f: Frame,
    replies: &mpsc::UnboundedSender<Frame>,
) -> Vec<(String, u64)> {
    let mut acks = Vec::new();
    match f.body {
        Some(Body::RoomBatch(b)) => {
            let now = Instant::now();
            let mut log = log.lock();
            log.batches += 1;
            let mut advanced = None;
            for m in b.messages {
                if m.seq > 0
                    && let Some(c) = log.reliable(&b.room, m.seq)
                {
                    advanced = Some(c);
                }
                log.messages.push(Received {
                    room: b.room.clone(),
                    msg: m,
                    at: now,
                });
            }
            if let Some(c) = advanced {
                acks.push((b.room, c));
            }
        }
        Some(Body::RoomNotice(n)) => log.lock().notices.push(n),
        _ if f.request_id != 0 => {
            let _ = replies.send(f);
        }
        _ => {}
    }
    acks
}
