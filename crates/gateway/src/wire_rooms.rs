//! Live-room values on the wire.

use magpie_proto::convert::content_to_pb;
use magpie_proto::pb;
use magpie_proto::{Body, Frame, encode_frame, frame};
use magpie_service::{
    RoomBatch, RoomEntry, RoomFetched, RoomInfo, RoomJoined, RoomNotice, RoomSendAck, RoomSettings,
};
use magpie_types::Priority;

/// A room's settings on the wire.
pub fn settings(s: &RoomSettings) -> pb::RoomSettings {
    pb::RoomSettings {
        budget_per_s: Some(s.budget_per_s),
        slow_mode_ms: Some(s.slow_mode_ms),
        send_rate_per_s: Some(s.send_rate_per_s),
        mute_all: Some(s.mute_all),
        members_may_send_high: Some(s.members_may_send_high),
        name: None,
    }
}

/// A room on the wire.
pub fn info(i: &RoomInfo) -> pb::RoomInfo {
    pb::RoomInfo {
        room: i.room.to_string(),
        name: i.name.clone(),
        owner: i.owner.clone(),
        admins: i.admins.clone(),
        online: i.online,
        connections: i.connections,
        last_seq: i.last_seq,
        closed: i.closed,
        settings: Some(settings(&i.settings)),
    }
}

/// A priority on the wire.
pub fn priority(p: Priority) -> i32 {
    p.code()
}

/// A room message on the wire.
pub fn message(e: &RoomEntry) -> pb::RoomMessage {
    pb::RoomMessage {
        msg_id: e.msg_id,
        from: e.from.to_string(),
        content: Some(content_to_pb(&e.content)),
        priority: priority(e.priority),
        seq: e.seq,
        server_time_ms: e.server_time_ms,
    }
}

/// The encoded frame of a batch (built once per batch, shared by every connection).
pub fn encode_batch(b: &RoomBatch) -> bytes::Bytes {
    encode_frame(&frame(
        0,
        Body::RoomBatch(pb::RoomBatch {
            room: b.room.to_string(),
            messages: b.messages.iter().map(|e| message(e)).collect(),
        }),
    ))
}

/// The encoded one-message batch of a reliable message, for retransmissions.
pub fn encode_single(e: &RoomEntry) -> bytes::Bytes {
    encode_frame(&frame(
        0,
        Body::RoomBatch(pb::RoomBatch {
            room: e.room.to_string(),
            messages: vec![message(e)],
        }),
    ))
}

/// A notice frame.
pub fn notice(n: &RoomNotice) -> Frame {
    frame(
        0,
        Body::RoomNotice(pb::RoomNotice {
            room: n.room.to_string(),
            kind: n.kind.name().to_owned(),
            by: n.by.to_string(),
            until_ms: n.until_ms,
        }),
    )
}

/// A plain result carrying the room.
pub fn result(rid: u64, i: &RoomInfo) -> Frame {
    frame(
        rid,
        Body::RoomResult(pb::RoomResult {
            info: Some(info(i)),
            ..pb::RoomResult::default()
        }),
    )
}

/// The answer to a join.
pub fn joined(rid: u64, j: &RoomJoined) -> Frame {
    frame(
        rid,
        Body::RoomResult(pb::RoomResult {
            info: Some(info(&j.info)),
            messages: j.missed.iter().map(|e| message(e)).collect(),
            gap: j.gap,
            ..pb::RoomResult::default()
        }),
    )
}

/// The answer to a fetch.
pub fn fetched(rid: u64, f: &RoomFetched) -> Frame {
    frame(
        rid,
        Body::RoomResult(pb::RoomResult {
            info: Some(info(&f.info)),
            messages: f.messages.iter().map(|e| message(e)).collect(),
            gap: f.gap,
            ..pb::RoomResult::default()
        }),
    )
}

/// The ack of a room send.
pub fn send_ack(rid: u64, a: &RoomSendAck) -> Frame {
    frame(
        rid,
        Body::RoomSendAck(pb::RoomSendAck {
            msg_id: a.msg_id,
            seq: a.seq,
            server_time_ms: a.server_time_ms,
            priority: priority(a.priority),
            duplicate: a.duplicate,
        }),
    )
}
