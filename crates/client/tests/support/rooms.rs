//! The fake server's live rooms: create, join (with `since_seq`: the HIGH messages after it
//! still in the log, `gap` if some were evicted), leave, get, members, fetch, moderation
//! (kick and ban with their notices) and settings; sends (HIGH ones numbered and
//! deduplicated by client message id, everything broadcast to the room's connections in a
//! batch, the sender's included) and acks. Retransmission is left to the tests, which push
//! batches themselves ([`FakeServer::room_batch`](super::FakeServer::room_batch)) to
//! choose the duplicates and the order.

use std::collections::{BTreeSet, HashMap};

use magpie_proto::convert::text_content;
use magpie_proto::pb::{self, ErrorCode, room_moderate::Action, room_request::Op};
use magpie_proto::{Body, Frame, error_frame, error_frame_retry, frame};

use super::conn::{Next, Who};
use super::{Ctl, State};

/// A live room.
#[derive(Default, Clone)]
pub struct FakeRoom {
    pub name: String,
    pub owner: String,
    /// The log of HIGH messages (evicted ones removed from the front).
    pub log: Vec<pb::RoomMessage>,
    pub last_seq: u64,
    /// Connections in the room.
    pub conns: BTreeSet<u64>,
    pub banned: BTreeSet<String>,
    pub closed: bool,
    /// HIGH sends by (user, client_msg_id): their acks.
    pub dedup: HashMap<(String, String), pb::RoomSendAck>,
}

impl FakeRoom {
    /// Appends a HIGH message to the log (a NORMAL one when `high` is false: no seq).
    pub fn store(&mut self, msg_id: u64, from: &str, text: &str, high: bool) -> pb::RoomMessage {
        let (priority, seq) = if high {
            self.last_seq += 1;
            (pb::Priority::High, self.last_seq)
        } else {
            (pb::Priority::Normal, 0)
        };
        let m = pb::RoomMessage {
            msg_id,
            from: from.to_owned(),
            content: Some(text_content(text)),
            priority: priority as i32,
            seq,
            server_time_ms: 1_700_000_000_000 + msg_id,
        };
        if high {
            self.log.push(m.clone());
        }
        m
    }

    /// Evicts the log's messages up to `seq`.
    pub fn evict_through(&mut self, seq: u64) {
        self.log.retain(|m| m.seq > seq);
    }

    fn info(&self, id: &str) -> pb::RoomInfo {
        pb::RoomInfo {
            room: id.to_owned(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            admins: Vec::new(),
            online: self.conns.len() as u64,
            connections: self.conns.len() as u64,
            last_seq: self.last_seq,
            closed: self.closed,
            settings: Some(pb::RoomSettings {
                budget_per_s: Some(50),
                slow_mode_ms: Some(0),
                send_rate_per_s: Some(0),
                mute_all: Some(false),
                members_may_send_high: Some(false),
                name: None,
            }),
        }
    }

    /// The log after `since`, at most `limit`, and whether some after it were evicted.
    fn after(&self, since: u64, limit: usize) -> (Vec<pb::RoomMessage>, bool) {
        let first_kept = self.log.first().map_or(self.last_seq + 1, |m| m.seq);
        let gap = first_kept > since + 1 && self.last_seq > since;
        let messages = self
            .log
            .iter()
            .filter(|m| m.seq > since)
            .take(limit)
            .cloned()
            .collect();
        (messages, gap)
    }
}

type Refusal = (ErrorCode, &'static str);

pub(super) fn on_room(st: &mut State, id: u64, req: pb::RoomRequest, who: &Who) -> Frame {
    match handle(st, req, who) {
        Ok(result) => frame(id, Body::RoomResult(result)),
        Err((code, message)) => error_frame(id, code, message),
    }
}

fn handle(st: &mut State, req: pb::RoomRequest, who: &Who) -> Result<pb::RoomResult, Refusal> {
    let op = req.op.ok_or((ErrorCode::InvalidArgument, "no op"))?;
    let mut rid = req.room;
    let mut result = pb::RoomResult::default();
    match op {
        Op::Create(c) => {
            if rid.is_empty() {
                rid = format!("room{}", st.rooms.len() + 1);
            }
            if st.rooms.contains_key(&rid) {
                return Err((ErrorCode::AlreadyExists, "room exists"));
            }
            let room = FakeRoom {
                name: c.name,
                owner: who.user.clone(),
                ..FakeRoom::default()
            };
            st.rooms.insert(rid.clone(), room);
        }
        Op::Join(j) => {
            st.room_joins
                .push((who.user.clone(), rid.clone(), j.since_seq));
            let room = open_room(st, &rid)?;
            if room.banned.contains(&who.user) {
                return Err((ErrorCode::Banned, "banned"));
            }
            room.conns.insert(who.conn);
            if j.since_seq > 0 {
                let (messages, gap) = room.after(j.since_seq, usize::MAX);
                result.messages = messages;
                result.gap = gap;
            }
        }
        Op::Leave(_) => {
            room(st, &rid)?.conns.remove(&who.conn);
        }
        Op::Close(_) => {
            let r = room(st, &rid)?;
            if r.owner != who.user {
                return Err((ErrorCode::Forbidden, "not the owner"));
            }
            r.closed = true;
            let conns = std::mem::take(&mut r.conns);
            notify(st, &conns, &rid, "closed", &who.user);
        }
        Op::Get(_) => {}
        Op::Members(_) => {
            let conns = room(st, &rid)?.conns.clone();
            let users: BTreeSet<String> = conns
                .iter()
                .filter_map(|c| st.conns.get(c).map(|c| c.user.clone()))
                .collect();
            result.users = users.into_iter().collect();
        }
        Op::Fetch(f) => {
            st.room_fetches
                .push((who.user.clone(), rid.clone(), f.since_seq));
            let limit = if f.limit == 0 { 100 } else { f.limit as usize };
            let (messages, gap) = room(st, &rid)?.after(f.since_seq, limit);
            result.messages = messages;
            result.gap = gap;
        }
        Op::Moderate(m) => {
            let action = m.action.ok_or((ErrorCode::InvalidArgument, "no action"))?;
            let r = room(st, &rid)?;
            if r.owner != who.user {
                return Err((ErrorCode::Forbidden, "not an admin"));
            }
            let kind = match action {
                Action::Kick(_) => "kicked",
                Action::Ban(_) => {
                    r.banned.insert(m.user.clone());
                    "banned"
                }
                Action::Unban(_) => {
                    r.banned.remove(&m.user);
                    ""
                }
                Action::MuteMs(_) => "muted",
                Action::Admin(_) => "",
            };
            if !kind.is_empty() {
                let theirs: BTreeSet<u64> = st
                    .conns
                    .iter()
                    .filter(|(_, c)| c.user == m.user)
                    .map(|(id, _)| *id)
                    .collect();
                let r = room(st, &rid)?;
                let targets: BTreeSet<u64> = r.conns.intersection(&theirs).copied().collect();
                if kind != "muted" {
                    r.conns.retain(|c| !targets.contains(c));
                }
                notify(st, &targets, &rid, kind, &who.user);
            }
        }
        Op::Settings(s) => {
            let r = room(st, &rid)?;
            if let Some(name) = s.name {
                r.name = name;
            }
        }
    }
    result.info = Some(room(st, &rid)?.info(&rid));
    Ok(result)
}

pub(super) fn on_send(st: &mut State, id: u64, req: pb::RoomSend, who: &Who) -> (Vec<Frame>, Next) {
    st.room_sends
        .push((who.user.clone(), req.client_msg_id.clone(), req.priority));
    if let Some(code) = st.fail_next_room_sends.pop() {
        let f = if code == ErrorCode::SlowMode {
            error_frame_retry(id, code, "slow down", 1500)
        } else {
            error_frame(id, code, "injected")
        };
        return (vec![f], Next::Continue);
    }
    let refuse = |code, message| (vec![error_frame(id, code, message)], Next::Continue);
    st.next_msg_id += 1;
    let msg_id = st.next_msg_id;
    let Some(room) = st.rooms.get_mut(&req.room).filter(|r| !r.closed) else {
        return refuse(ErrorCode::NotFound, "no such room");
    };
    if !room.conns.contains(&who.conn) {
        return refuse(ErrorCode::Forbidden, "not in the room");
    }
    let high = req.priority == pb::Priority::High as i32;
    let key = (who.user.clone(), req.client_msg_id.clone());
    if high && let Some(original) = room.dedup.get(&key) {
        let mut ack = *original;
        ack.duplicate = true;
        return (vec![frame(id, Body::RoomSendAck(ack))], Next::Continue);
    }
    let text = req
        .content
        .as_ref()
        .and_then(|c| std::str::from_utf8(&c.body).ok())
        .unwrap_or_default()
        .to_owned();
    let m = room.store(msg_id, &who.user, &text, high);
    let ack = pb::RoomSendAck {
        msg_id,
        seq: m.seq,
        server_time_ms: m.server_time_ms,
        priority: m.priority,
        duplicate: false,
    };
    if high {
        room.dedup.insert(key, ack);
    }
    let batch = frame(
        0,
        Body::RoomBatch(pb::RoomBatch {
            room: req.room.clone(),
            messages: vec![m],
        }),
    );
    let members = room.conns.clone();
    // Everyone else gets the batch now; the sender after its ack.
    for conn in members.iter().filter(|c| **c != who.conn) {
        if let Some(c) = st.conns.get(conn) {
            let _ = c.tx.send(Ctl::Frame(Box::new(batch.clone())));
        }
    }
    let ack = frame(id, Body::RoomSendAck(ack));
    if st.cut_next_room_ack {
        st.cut_next_room_ack = false;
        return (vec![], Next::CutAfter(Box::new(ack)));
    }
    (vec![ack, batch], Next::Continue)
}

pub(super) fn on_ack(st: &mut State, ack: pb::RoomAck, who: &Who) {
    st.room_acks.push((who.user.clone(), ack.room, ack.seq));
}

/// A connection ended: it is in no room any more.
pub(super) fn disconnect(st: &mut State, conn: u64) {
    for room in st.rooms.values_mut() {
        room.conns.remove(&conn);
    }
}

fn room<'a>(st: &'a mut State, id: &str) -> Result<&'a mut FakeRoom, Refusal> {
    st.rooms
        .get_mut(id)
        .ok_or((ErrorCode::NotFound, "no such room"))
}

fn open_room<'a>(st: &'a mut State, id: &str) -> Result<&'a mut FakeRoom, Refusal> {
    room(st, id).and_then(|r| {
        if r.closed {
            Err((ErrorCode::NotFound, "room closed"))
        } else {
            Ok(r)
        }
    })
}

fn notify(st: &State, conns: &BTreeSet<u64>, room: &str, kind: &str, by: &str) {
    let notice = frame(
        0,
        Body::RoomNotice(pb::RoomNotice {
            room: room.to_owned(),
            kind: kind.to_owned(),
            by: by.to_owned(),
            until_ms: 0,
        }),
    );
    for conn in conns {
        if let Some(c) = st.conns.get(conn) {
            let _ = c.tx.send(Ctl::Frame(Box::new(notice.clone())));
        }
    }
}
