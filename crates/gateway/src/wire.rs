//! Conversions between service values and protobuf.

use magpie_core::ErrorKind;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, convert::content_to_pb, frame};
use magpie_service::{ConversationPage, MessagePage, SendAck, ServiceError};
use magpie_store::StoredMessage;

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
        ErrorKind::Unavailable => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// An error frame answering `request_id`.
pub fn service_error(request_id: u64, e: &ServiceError) -> Frame {
    magpie_proto::error_frame(request_id, error_code(e.kind), e.message.clone())
}

/// A stored message on the wire.
pub fn message(m: &StoredMessage) -> pb::Message {
    pb::Message {
        msg_id: m.msg_id,
        conversation: m.conv.to_string(),
        seq: m.seq,
        from_user: m.from_user.to_string(),
        from_device: m.from_device.to_string(),
        client_msg_id: m.client_msg_id.to_string(),
        content: Some(content_to_pb(&m.content)),
        server_time_ms: m.server_time,
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
            messages: p.messages.iter().map(message).collect(),
            has_more: p.has_more,
            last_seq: p.last_seq,
        }),
    )
}

/// A history result frame.
pub fn history_result(request_id: u64, conv: &str, p: &MessagePage) -> Frame {
    frame(
        request_id,
        Body::HistoryResult(pb::HistoryResult {
            conversation: conv.to_owned(),
            messages: p.messages.iter().map(message).collect(),
            has_more: p.has_more,
        }),
    )
}

/// A conversation list frame.
pub fn conversation_list(request_id: u64, p: &ConversationPage) -> Frame {
    frame(
        request_id,
        Body::ConversationList(pb::ConversationList {
            conversations: p
                .conversations
                .iter()
                .map(|(e, peer)| pb::ConversationInfo {
                    conversation: e.conv.to_string(),
                    last_seq: e.last_seq,
                    last_time_ms: e.last_time,
                    peer: peer.as_ref().map(ToString::to_string).unwrap_or_default(),
                })
                .collect(),
            has_more: p.has_more,
        }),
    )
}
