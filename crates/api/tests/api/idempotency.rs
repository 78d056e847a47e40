//! `Idempotency-Key`: replays, reuse with another request, validation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, fixtures, ok, send};

#[tokio::test]
async fn a_retried_send_is_answered_once_and_stored_once() {
    let api = support::start().await;
    fixtures(&api).await;
    let body = json!({
        "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": "once"}
    });
    let first = send(
        api.app("a", Method::POST, "/v1/messages")
            .header("idempotency-key", "send-1")
            .json(&body),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.replayed());
    let second = send(
        api.app("a", Method::POST, "/v1/messages")
            .header("idempotency-key", "send-1")
            .json(&body),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.replayed(), "{second:?}");
    assert_eq!(second.json, first.json);
    let h = ok(api.app(
        "a",
        Method::GET,
        "/v1/users/bob/conversations/p2p:alice:bob/messages",
    ))
    .await;
    let once: Vec<_> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["content"]["text"] == "once")
        .collect();
    assert_eq!(once.len(), 1, "stored once: {h}");
    // The client message id came from the key.
    assert!(
        once[0]["client_msg_id"]
            .as_str()
            .unwrap()
            .starts_with("idem-")
    );

    // The same key with another body: refused.
    let other = send(
        api.app("a", Method::POST, "/v1/messages")
            .header("idempotency-key", "send-1")
            .json(&json!({
                "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": "twice"}
            })),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED");
    // ... and on another path.
    let other = send(
        api.app("a", Method::POST, "/v1/users")
            .header("idempotency-key", "send-1")
            .json(&json!({"id": "zed"})),
    )
    .await;
    assert_eq!(other.code(), "IDEMPOTENCY_KEY_REUSED");

    // Keys are per app: app b's "send-1" is its own.
    api.users("b", &["alice", "bob"]).await;
    let b = send(
        api.app("b", Method::POST, "/v1/messages")
            .header("idempotency-key", "send-1")
            .json(&body),
    )
    .await;
    assert_eq!(b.status, StatusCode::OK, "{b:?}");
    assert!(!b.replayed());
}

#[tokio::test]
async fn refusals_are_replayed_and_admin_requests_too() {
    let api = support::start().await;
    // A 4xx answer is remembered: the retry gets it again, even once the cause is gone.
    let req = || {
        api.app("a", Method::PATCH, "/v1/users/late")
            .header("idempotency-key", "patch-late")
            .json(&json!({"nickname": "L"}))
    };
    let first = send(req()).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    api.users("a", &["late"]).await;
    let again = send(req()).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.replayed());

    let create = || {
        api.admin(Method::POST, "/v1/admin/apps")
            .header("idempotency-key", "create-shop")
            .json(&json!({"id": "shop"}))
    };
    let first = send(create()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = send(create()).await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "not 409: the first answer"
    );
    assert!(again.replayed());
    assert_eq!(again.json["secret"], first.json["secret"]);
    // Reads ignore the header.
    let list = send(
        api.admin(Method::GET, "/v1/admin/apps")
            .header("idempotency-key", "create-shop"),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.replayed());
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let api = support::start().await;
    for key in ["", &"k".repeat(129), "has space", "tab\there"] {
        let a = send(
            api.app("a", Method::POST, "/v1/users")
                .header("idempotency-key", key)
                .json(&json!({"id": "x"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{key:?}: {a:?}");
        assert!(a.message().contains("Idempotency-Key"), "{a:?}");
    }
    ok(api
        .app("a", Method::POST, "/v1/users")
        .header("idempotency-key", "k".repeat(128))
        .json(&json!({"id": "x"})))
    .await;
}
