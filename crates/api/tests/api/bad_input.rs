//! Bad input: typed 4xx JSON errors, never a panic or an HTML page.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, Answer, fixtures, send};

fn invalid(a: &Answer, mentions: &str) {
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
    assert_eq!(a.code(), "INVALID_ARGUMENT", "{a:?}");
    assert!(
        a.message().contains(mentions),
        "the message should name {mentions:?}: {a:?}"
    );
}

#[tokio::test]
async fn malformed_json_and_unknown_fields() {
    let api = support::start().await;
    fixtures(&api).await;
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .header("content-type", "application/json")
            .body("{\"id\": "),
    )
    .await;
    invalid(&a, "request body");
    let a = send(api.app("a", Method::POST, "/v1/users").body("not json")).await;
    invalid(&a, "request body");
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .json(&json!({"id": "x", "nick": "y"})),
    )
    .await;
    invalid(&a, "nick");
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .json(&json!({"nickname": "y"})),
    )
    .await;
    invalid(&a, "id");
    let a = send(api.app("a", Method::POST, "/v1/users").json(&json!(["id"]))).await;
    invalid(&a, "request body");
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob", "group": "g1"}, "content": {"type": "text", "text": "x"}
    })))
    .await;
    invalid(&a, "request body");
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"}, "content": {"type": "hologram", "text": "x"}
    })))
    .await;
    invalid(&a, "hologram");
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"},
        "content": {"type": "text", "text": "x", "body_base64": "eA=="}
    })))
    .await;
    invalid(&a, "content");
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"}, "content": {"type": "file", "body_base64": "***"}
    })))
    .await;
    invalid(&a, "content.body_base64");
    let a = send(
        api.app("a", Method::POST, "/v1/rooms/r1/moderation")
            .json(&json!({
                "action": "explode", "user": "bob"
            })),
    )
    .await;
    invalid(&a, "explode");
    let a = send(api.app("a", Method::GET, "/v1/groups/g1/members?limit=lots")).await;
    invalid(&a, "query");
    let a = send(api.app("a", Method::GET, "/v1/groups/g1/members?sort=asc")).await;
    invalid(&a, "query");
}

#[tokio::test]
async fn bad_ids_name_the_field() {
    let api = support::start().await;
    fixtures(&api).await;
    invalid(
        &send(api.app("a", Method::GET, "/v1/users/bad%20id")).await,
        "user",
    );
    invalid(
        &send(api.app("a", Method::GET, &format!("/v1/users/{}", "x".repeat(65)))).await,
        "user",
    );
    invalid(
        &send(api.app("a", Method::GET, "/v1/groups/a:b")).await,
        "group",
    );
    invalid(
        &send(api.app("a", Method::GET, "/v1/rooms/r%2F1")).await,
        "room",
    );
    invalid(
        &send(api.app(
            "a",
            Method::GET,
            "/v1/users/alice/conversations/p2p:bob:alice/messages",
        ))
        .await,
        "conv",
    );
    invalid(
        &send(api.app("a", Method::GET, "/v1/users/alice/conversations?after=nope")).await,
        "after",
    );
    invalid(
        &send(
            api.app("a", Method::POST, "/v1/users")
                .json(&json!({"id": "a b"})),
        )
        .await,
        "id",
    );
    invalid(
        &send(api.app("a", Method::POST, "/v1/users/import").json(&json!({
            "users": [{"id": "ok"}, {"id": "not ok"}]
        })))
        .await,
        "users[1].id",
    );
    invalid(
        &send(api.app("a", Method::POST, "/v1/messages").json(&json!({
            "from": "alice", "to": {"user": "b:c"}, "content": {"type": "text", "text": "x"}
        })))
        .await,
        "to.user",
    );
    invalid(
        &send(api.app("a", Method::POST, "/v1/messages").json(&json!({
            "from": "al ice", "to": {"user": "bob"}, "content": {"type": "text", "text": "x"}
        })))
        .await,
        "from",
    );
    invalid(
        &send(api.app("a", Method::POST, "/v1/messages").json(&json!({
            "from": "alice", "to": {"user": "bob"}, "client_msg_id": "",
            "content": {"type": "text", "text": "x"}
        })))
        .await,
        "client_msg_id",
    );
    invalid(
        &send(
            api.app("a", Method::POST, "/v1/groups/g1/members")
                .json(&json!({"users": ["ok", "n o"]})),
        )
        .await,
        "users[1]",
    );
    invalid(
        &send(
            api.app("a", Method::POST, "/v1/users/alice/tokens")
                .json(&json!({"device": "my phone"})),
        )
        .await,
        "device",
    );
    invalid(
        &send(api.admin(Method::GET, "/v1/admin/apps/a%20b")).await,
        "app",
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let api = support::start().await;
    let big = format!(
        "{{\"id\": \"x\", \"nickname\": \"{}\"}}",
        "n".repeat(magpie_api_max())
    );
    let a = send(api.app("a", Method::POST, "/v1/users").body(big.clone())).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{a:?}");
    assert_eq!(a.code(), "PAYLOAD_TOO_LARGE");
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .header("idempotency-key", "big")
            .body(big),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{a:?}");
    assert_eq!(a.code(), "PAYLOAD_TOO_LARGE");
    // A message over the content limit (but under the body limit) is the service's 413.
    api.users("a", &["alice", "bob"]).await;
    let text = "x".repeat(api.service.limits().max_message_bytes + 1);
    let a = send(api.app("a", Method::POST, "/v1/messages").json(&json!({
        "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": text}
    })))
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{a:?}");
    assert_eq!(a.code(), "MESSAGE_TOO_LARGE");
}

fn magpie_api_max() -> usize {
    magpie_api::MAX_BODY
}
