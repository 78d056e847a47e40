//! Conversions between service values and protobuf.

use magpie_core::ErrorKind;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, convert::content_to_pb, frame};
use magpie_service::ops::Overlay;
use magpie_service::{
    ConvView, ConversationPage, MessagePage, Outbound, PresenceNotice, ReadNotice, ReadOutcome,
    SendAck, ServiceError,
};
use magpie_store::StoredMessage;
use magpie_types::EntryKind;

/// Counts an outgoing frame in the metrics if it is an error: every refusal and every bad
/// input is visible as `magpie_errors_total{code}`.
pub fn count_if_error(f: &Frame) {
    if let Some(Body::Error(e)) = &f.body {
        let code = ErrorCode::try_from(e.code).map_or("UNKNOWN", |c| c.as_str_name());
        metrics::counter!("magpie_errors_total", "code" => code).increment(1);
    }
}

/// The wire code of an error kind.
pub fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
        ErrorKind::MessageTooLarge => ErrorCode::MessageTooLarge,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::Forbidden => ErrorCode::Forbidden,
        ErrorKind::RateLimited => ErrorCode::RateLimited,
        ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        ErrorKind::LimitExceeded => ErrorCode::LimitExceeded,
        ErrorKind::Muted => ErrorCode::Muted,
        ErrorKind::Blocked => ErrorCode::Blocked,
        ErrorKind::WindowClosed => ErrorCode::WindowClosed,
        ErrorKind::Banned => ErrorCode::Banned,
        ErrorKind::SlowMode => ErrorCode::SlowMode,
        ErrorKind::ContentRejected => ErrorCode::ContentRejected,
        ErrorKind::Conflict => ErrorCode::Conflict,
        ErrorKind::Unavailable => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// An error frame answering `request_id`.
pub fn service_error(request_id: u64, e: &ServiceError) -> Frame {
    magpie_proto::error_frame_retry(
        request_id,
        error_code(e.kind),
        e.message.clone(),
        e.retry_after_ms,
    )
}

/// A stored message on the wire, as it stands now (recalled or edited).
pub fn message_now(m: &StoredMessage, overlay: Option<&Overlay>) -> pb::Message {
    let mut out = message(m);
    match overlay {
        Some(Overlay::Recalled) => {
            out.recalled = true;
            out.content = None;
        }
        Some(Overlay::Edited(c)) => {
            out.edited = true;
            out.content = Some(content_to_pb(c));
        }
        None => {}
    }
    out
}

/// A stored message on the wire.
pub fn message(m: &StoredMessage) -> pb::Message {
    let is_op = matches!(
        m.kind,
        EntryKind::Recall | EntryKind::Edit | EntryKind::Reaction
    );
    pb::Message {
        msg_id: m.msg_id,
        conversation: m.conv.to_string(),
        seq: m.seq,
        from_user: m.from_user.to_string(),
        from_device: m.from_device.to_string(),
        client_msg_id: m.client_msg_id.to_string(),
        content: Some(content_to_pb(&m.content)),
        server_time_ms: m.server_time,
        kind: i32::from(m.kind.code()),
        mentions: m.mentions.iter().map(ToString::to_string).collect(),
        mention_all: m.mention_all,
        reply_to: if is_op { 0 } else { m.reply_to },
        target: if is_op { m.reply_to } else { 0 },
        recalled: false,
        edited: false,
    }
}

/// A push frame carrying one message.
pub fn push(m: &StoredMessage) -> Frame {
    frame(
        0,
        Body::Push(pb::Push {
            messages: vec![message(m)],
        }),
    )
}

/// A send ack frame.
pub fn send_ack(request_id: u64, a: &SendAck) -> Frame {
    frame(
        request_id,
        Body::SendAck(pb::SendAck {
            client_msg_id: a.client_msg_id.to_string(),
            msg_id: a.msg_id,
            conversation: a.conv.to_string(),
            seq: a.seq,
            server_time_ms: a.server_time,
            duplicate: a.duplicate,
        }),
    )
}

/// A pull result frame.
pub fn pull_result(request_id: u64, conv: &str, p: &MessagePage) -> Frame {
    frame(
        request_id,
        Body::PullResult(pb::PullResult {
            conversation: conv.to_owned(),
            messages: p
                .messages
                .iter()
                .map(|m| message_now(m, p.overlays.get(&m.seq)))
                .collect(),
            has_more: p.has_more,
            last_seq: p.last_seq,
            hidden: p
                .hidden
                .iter()
                .map(|&(from, to)| pb::SeqRange { from, to })
                .collect(),
        }),
    )
}

/// A history result frame.
pub fn history_result(request_id: u64, conv: &str, p: &MessagePage) -> Frame {
    frame(
        request_id,
        Body::HistoryResult(pb::HistoryResult {
            conversation: conv.to_owned(),
            messages: p
                .messages
                .iter()
                .map(|m| message_now(m, p.overlays.get(&m.seq)))
                .collect(),
            has_more: p.has_more,
        }),
    )
}

/// One conversation as the user sees it, on the wire.
pub fn conversation(v: &ConvView) -> pb::ConversationInfo {
    pb::ConversationInfo {
        conversation: v.conv.to_string(),
        last_seq: v.last_seq,
        last_time_ms: v.last_time,
        peer: v.peer.as_ref().map(ToString::to_string).unwrap_or_default(),
        unread: v.unread,
        read_seq: v.read_seq,
        mentioned: v.mentioned,
        pinned: v.prefs.pinned,
        muted: v.prefs.muted,
        hidden: v.hidden,
        last_message: v
            .last_message
            .as_ref()
            .map(|m| message_now(m, v.last_overlay.as_ref())),
        peer_read_seq: v.peer_read_seq,
        name: v.name.clone(),
        active: v.active,
        first_seq: v.first_seq,
    }
}

/// A conversation list frame.
pub fn conversation_list(request_id: u64, p: &ConversationPage) -> Frame {
    frame(
        request_id,
        Body::ConversationList(pb::ConversationList {
            conversations: p.conversations.iter().map(conversation).collect(),
            has_more: p.has_more,
            version: p.version,
            total_unread: p.total_unread,
        }),
    )
}

/// A mark-read answer.
pub fn read_result(request_id: u64, r: &ReadOutcome) -> Frame {
    frame(
        request_id,
        Body::ReadResult(pb::ReadResult {
            conversation: r.conv.to_string(),
            read_seq: r.read_seq,
            unread: r.unread,
            total_unread: r.total_unread,
        }),
    )
}

/// An ephemeral notice as a frame (request id 0, not acknowledged); `None` for items that
/// are not notices.
pub fn notice(item: &Outbound) -> Option<Frame> {
    let body = match item {
        Outbound::Read(n) => return Some(read_update(n)),
        Outbound::Deleted(d) => Body::MessagesDeleted(pb::MessagesDeleted {
            conversation: d.conv.to_string(),
            seqs: d.seqs.clone(),
        }),
        Outbound::Typing(t) => Body::TypingNotice(pb::TypingNotice {
            conversation: t.conv.to_string(),
            user: t.user.to_string(),
            typing: t.typing,
        }),
        Outbound::Presence(p) => Body::PresenceNotice(pb::PresenceNotice {
            presence: Some(presence(p)),
        }),
        Outbound::Social(s) => Body::SocialNotice(pb::SocialNotice {
            kind: s.kind.to_owned(),
            user: s.user.to_string(),
            message: s.message.clone(),
        }),
        Outbound::RoomNotice(n) => return Some(crate::wire_rooms::notice(n)),
        Outbound::Message(_) | Outbound::Room(_) | Outbound::GoAway { .. } => return None,
    };
    Some(frame(0, body))
}

/// A user's presence on the wire.
pub fn presence(p: &PresenceNotice) -> pb::UserPresence {
    pb::UserPresence {
        user: p.user.to_string(),
        online: p.online,
        last_seen_ms: p.last_seen_ms,
    }
}

/// A read position that moved, pushed (request id 0, not acknowledged).
pub fn read_update(n: &ReadNotice) -> Frame {
    frame(
        0,
        Body::ReadUpdate(pb::ReadUpdate {
            conversation: n.conv.to_string(),
            user: n.user.to_string(),
            read_seq: n.read_seq,
            unread: n.unread,
            total_unread: n.total_unread,
        }),
    )
}
