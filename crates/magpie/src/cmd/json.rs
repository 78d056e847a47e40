//! JSON renderings of SDK values for scripted output.
//!
//! `msg_id` is printed as a string: it is a 64-bit integer, beyond the 53 bits a JSON number
//! keeps exactly in JavaScript and jq.

use magpie_client::{
    ConversationInfo, GroupChange, GroupInfo, GroupMember, Message, RoomInfo, RoomMessage,
    RoomSendAck, SendAck,
};
use serde_json::{Value, json};

/// A received message.
pub fn message(m: &Message) -> Value {
    json!({
        "conversation": m.conversation.as_str(),
        "seq": m.seq,
        "from": m.from.as_str(),
        "from_device": m.from_device.as_ref().map(|d| d.as_str()),
        "type": m.content.kind.name(),
        "text": m.text(),
        "msg_id": m.msg_id.to_string(),
        "client_msg_id": m.client_msg_id.as_ref().map(|c| c.as_str()),
        "server_time_ms": m.server_time,
        "kind": format!("{:?}", m.kind),
        "mentions": m.mentions.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "mention_all": m.mention_all,
        "reply_to": m.reply_to,
    })
}

/// A group's profile.
pub fn group(g: &GroupInfo) -> Value {
    json!({
        "id": g.id.as_str(),
        "conversation": g.conversation.as_str(),
        "name": g.name,
        "owner": g.owner.as_ref().map(|o| o.as_str()),
        "member_count": g.member_count,
        "join_policy": format!("{:?}", g.join_policy).to_lowercase(),
        "muted_all": g.muted_all,
        "dismissed": g.dismissed,
        "super_group": g.super_group,
        "notice": g.notice,
        "avatar_url": g.avatar_url,
        "custom": g.custom,
    })
}

/// The answer to a group change.
pub fn group_change(c: &GroupChange) -> Value {
    json!({
        "group": c.group.as_ref().map(group),
        "seq": c.seq,
    })
}

/// A group member.
pub fn member(m: &GroupMember) -> Value {
    json!({
        "user": m.user.as_str(),
        "role": format!("{:?}", m.role).to_lowercase(),
        "joined_seq": m.joined_seq,
        "muted_until_ms": m.muted_until,
    })
}

/// A conversation as the user sees it.
pub fn conversation(c: &ConversationInfo) -> Value {
    json!({
        "conversation": c.conversation.as_str(),
        "kind": if c.conversation.is_direct() { "direct" } else { "group" },
        "peer": c.peer.as_ref().map(|p| p.as_str()),
        "name": c.name,
        "unread": c.unread,
        "read_seq": c.read_seq,
        "last_seq": c.last_seq,
        "last_time_ms": c.last_time,
        "last_message": c.last_message.as_ref().map(message),
        "mentioned": c.mentioned,
        "pinned": c.pinned,
        "muted": c.muted,
        "hidden": c.hidden,
        "active": c.active,
        "peer_read_seq": c.peer_read_seq,
    })
}

/// A send ack.
pub fn ack(a: &SendAck) -> Value {
    json!({
        "conversation": a.conversation.as_str(),
        "seq": a.seq,
        "msg_id": a.msg_id.to_string(),
        "client_msg_id": a.client_msg_id.as_str(),
        "server_time_ms": a.server_time,
        "duplicate": a.duplicate,
    })
}

/// A live room.
pub fn room(r: &RoomInfo) -> Value {
    json!({
        "room": r.room.as_str(),
        "name": r.name,
        "owner": r.owner.as_ref().map(|o| o.as_str()),
        "admins": r.admins.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "online": r.online,
        "connections": r.connections,
        "last_seq": r.last_seq,
        "closed": r.closed,
        "settings": {
            "budget_per_s": r.settings.budget_per_s,
            "slow_mode_ms": r.settings.slow_mode_ms,
            "send_rate_per_s": r.settings.send_rate_per_s,
            "mute_all": r.settings.mute_all,
            "members_may_send_high": r.settings.members_may_send_high,
        },
    })
}

/// A live-room message; `seq` only for HIGH ones.
pub fn room_message(m: &RoomMessage) -> Value {
    let mut v = json!({
        "room": m.room.as_str(),
        "priority": m.priority.name(),
        "from": m.from.as_str(),
        "text": m.text(),
        "msg_id": m.msg_id.to_string(),
    });
    if let (Some(seq), Some(map)) = (m.seq, v.as_object_mut()) {
        map.insert("seq".into(), seq.into());
    }
    v
}

/// A live-room send ack (`seq` is null for NORMAL and LOW).
pub fn room_ack(a: &RoomSendAck) -> Value {
    json!({
        "room": a.room.as_str(),
        "msg_id": a.msg_id.to_string(),
        "seq": a.seq,
        "priority": a.priority.name(),
        "client_msg_id": a.client_msg_id.as_str(),
        "duplicate": a.duplicate,
    })
}
