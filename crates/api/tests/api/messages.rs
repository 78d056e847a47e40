//! Sending as a user and as the system, to a user, a group and a room; the conversation
//! list, history and read position.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, Api, fixtures, ok, send};

async fn history(api: &Api, user: &str, conv: &str) -> Vec<Value> {
    ok(api.app(
        "a",
        Method::GET,
        &format!("/v1/users/{user}/conversations/{conv}/messages"),
    ))
    .await["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn sends_to_users_and_groups_are_stored() {
    let api = support::start().await;
    fixtures(&api).await;
    // As a user, to a user.
    let ack = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "bob", "to": {"user": "alice"}, "client_msg_id": "m-1",
        "content": {"type": "text", "text": "hi alice", "metadata": {"k": "v"}}
    })))
    .await;
    assert_eq!(ack["conversation"], "p2p:alice:bob");
    assert_eq!(ack["seq"], 2);
    assert_eq!(ack["duplicate"], false);
    let msg_id = ack["msg_id"].as_str().expect("msg_id is a string");
    assert!(msg_id.parse::<u64>().is_ok());
    // The same client_msg_id again: a duplicate, not a second message.
    let again = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "bob", "to": {"user": "alice"}, "client_msg_id": "m-1",
        "content": {"type": "text", "text": "hi alice", "metadata": {"k": "v"}}
    })))
    .await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["msg_id"], ack["msg_id"]);
    let h = history(&api, "alice", "p2p:alice:bob").await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["seq"], 2, "newest first");
    assert_eq!(h[0]["from"], "bob");
    assert_eq!(
        h[0]["content"],
        json!({"type": "text", "text": "hi alice", "metadata": {"k": "v"}})
    );
    assert_eq!(h[0]["client_msg_id"], "m-1");

    // As the system, to a user (binary content).
    let ack = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "to": {"user": "carol"},
        "content": {"type": "custom", "body_base64": "AAEC"}
    })))
    .await;
    assert_eq!(ack["conversation"], "p2p:@system:carol");
    let h = history(&api, "carol", "p2p:@system:carol").await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["from"], "@system");
    assert_eq!(
        h[0]["content"],
        json!({"type": "custom", "body_base64": "AAEC"})
    );

    // As a member, to a group, with a mention.
    let ack = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "bob", "to": {"group": "g1"}, "mentions": ["alice"],
        "content": {"type": "text", "text": "hi group"}
    })))
    .await;
    assert_eq!(ack["conversation"], "g:g1");
    // As the system, to a group it is not a member of.
    let sys = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "to": {"group": "g1"}, "content": {"type": "text", "text": "maintenance tonight"}
    })))
    .await;
    assert_eq!(
        sys["seq"].as_u64().unwrap(),
        ack["seq"].as_u64().unwrap() + 1
    );
    let h = history(&api, "alice", "g:g1").await;
    let texts: Vec<_> = h
        .iter()
        .filter(|m| m["kind"] == "message")
        .map(|m| {
            (
                m["from"].as_str().unwrap(),
                m["content"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [("@system", "maintenance tonight"), ("bob", "hi group")]
    );
    assert_eq!(h[1]["mentions"], json!(["alice"]));
    // A non-member may not send to the group; a sender who does not exist is 404.
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "carol", "to": {"group": "g1"}, "content": {"type": "text", "text": "x"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "ghost", "to": {"user": "alice"}, "content": {"type": "text", "text": "x"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "ghost"}, "content": {"type": "text", "text": "x"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Room-only fields elsewhere are refused, naming the field.
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"}, "priority": "high",
        "content": {"type": "text", "text": "x"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().starts_with("priority"), "{a:?}");
}

#[tokio::test]
async fn the_system_sends_to_a_room() {
    let api = support::start().await;
    fixtures(&api).await;
    let ack = ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "to": {"room": "r1"}, "priority": "high", "content": {"type": "text", "text": "gift!"}
    })))
    .await;
    assert_eq!(ack["room"], "r1");
    assert_eq!(ack["priority"], "high");
    assert_eq!(ack["seq"], 1);
    let room = ok(api.app("a", Method::GET, "/v1/rooms/r1")).await;
    assert_eq!(room["last_seq"], 1);
    // A user who is not in the room may not send to it.
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "bob", "to": {"room": "r1"}, "content": {"type": "text", "text": "x"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn conversation_list_history_and_read() {
    let api = support::start().await;
    fixtures(&api).await;
    ok(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": "second"}
    })))
    .await;
    let list = ok(api.app("a", Method::GET, "/v1/users/bob/conversations")).await;
    assert_eq!(list["total_unread"], 2, "{list}");
    let convs = list["conversations"].as_array().unwrap();
    let p2p = convs
        .iter()
        .find(|c| c["conversation"] == "p2p:alice:bob")
        .unwrap();
    assert_eq!(p2p["unread"], 2);
    assert_eq!(p2p["peer"], "alice");
    assert_eq!(p2p["last_message"]["content"]["text"], "second");
    assert!(list["version"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(
        convs.iter().any(|c| c["conversation"] == "g:g1"),
        "bob is in g1: {list}"
    );

    // A page of one, then the rest.
    let page = ok(api.app(
        "a",
        Method::GET,
        "/v1/users/bob/conversations/p2p:alice:bob/messages?limit=1",
    ))
    .await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["messages"][0]["content"]["text"], "second");
    let older = ok(api.app(
        "a",
        Method::GET,
        "/v1/users/bob/conversations/p2p:alice:bob/messages?before=2&limit=10",
    ))
    .await;
    assert_eq!(older["has_more"], false);
    assert_eq!(older["messages"][0]["content"]["text"], "hello");

    // Read up to seq 1, then everything.
    let r = ok(api
        .app(
            "a",
            Method::POST,
            "/v1/users/bob/conversations/p2p:alice:bob/read",
        )
        .json(&json!({"seq": 1})))
    .await;
    assert_eq!(r["read_seq"], 1);
    assert_eq!(r["unread"], 1);
    let r = ok(api.app(
        "a",
        Method::POST,
        "/v1/users/bob/conversations/p2p:alice:bob/read",
    ))
    .await;
    assert_eq!(
        r,
        json!({"conversation": "p2p:alice:bob", "read_seq": 2, "unread": 0, "total_unread": 0})
    );
    // Incremental: nothing changed since the last version (writes newer than the version
    // less ten seconds of slack count as changed, so let a minute pass first).
    api.clock.advance(60_000);
    let v = ok(api.app("a", Method::GET, "/v1/users/bob/conversations")).await["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let since = ok(api.app(
        "a",
        Method::GET,
        &format!("/v1/users/bob/conversations?since_version={v}"),
    ))
    .await;
    assert_eq!(since["conversations"], json!([]), "{since}");
    // Someone else's conversation is not readable as carol.
    let a = send(api.app(
        "a",
        Method::GET,
        "/v1/users/carol/conversations/p2p:alice:bob/messages",
    ))
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{a:?}");
    let a = send(api.app("a", Method::GET, "/v1/users/ghost/conversations")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
