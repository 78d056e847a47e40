//! JSON renderings of SDK values for scripted output.
//!
//! `msg_id` is printed as a string: it is a 64-bit integer, beyond the 53 bits a JSON number
//! keeps exactly in JavaScript and jq.

use magpie_client::{Message, SendAck};
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
