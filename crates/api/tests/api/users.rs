//! Users: create, import, read, change, tokens, disable, revoke, delete.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, app_id, ok, send};

#[tokio::test]
async fn create_import_get_patch() {
    let api = support::start().await;
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .json(&json!({"id": "alice", "nickname": "Alice", "custom": {"tier": "gold"}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json, json!({"id": "alice", "created": true}));
    // Again: 200, not created, profile fields updated.
    let a = send(
        api.app("a", Method::POST, "/v1/users")
            .json(&json!({"id": "alice", "avatar_url": "https://x/a.png"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["created"], false);

    let out = ok(api.app("a", Method::POST, "/v1/users/import").json(&json!({
        "users": [{"id": "alice"}, {"id": "bob", "nickname": "Bob"}, {"id": "carol"}]
    })))
    .await;
    assert_eq!(out, json!({"created": 2, "existing": 1}));

    let alice = ok(api.app("a", Method::GET, "/v1/users/alice")).await;
    assert_eq!(
        alice,
        json!({
            "id": "alice", "nickname": "Alice", "avatar_url": "https://x/a.png",
            "custom": "{\"tier\":\"gold\"}", "disabled": false, "online_devices": 0
        })
    );
    let bob = ok(api
        .app("a", Method::PATCH, "/v1/users/bob")
        .json(&json!({"nickname": "Robert", "custom": "plain"})))
    .await;
    assert_eq!(bob["nickname"], "Robert");
    assert_eq!(bob["custom"], "plain");
    let a = send(
        api.app("a", Method::PATCH, "/v1/users/nobody")
            .json(&json!({"nickname": "x"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Too many users in one import.
    let many: Vec<_> = (0..1001).map(|i| json!({"id": format!("u{i}")})).collect();
    let a = send(
        api.app("a", Method::POST, "/v1/users/import")
            .json(&json!({"users": many})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "INVALID_ARGUMENT");
}

#[tokio::test]
async fn tokens_disable_enable_revoke_delete() {
    let api = support::start().await;
    api.users("a", &["alice"]).await;
    let a = send(
        api.app("a", Method::POST, "/v1/users/alice/tokens")
            .json(&json!({"device": "web", "ttl_secs": 600})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let token = a.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        a.json["expires_at"],
        api.service.now_ms() / 1000 + 600,
        "expiry in Unix seconds"
    );
    let id = api.service.authenticate(&token).unwrap();
    assert_eq!(
        (id.app.as_str(), id.user.as_str(), id.device.as_str()),
        ("a", "alice", "web")
    );
    api.service.admit(&id).await.unwrap();

    // Disabled: the token's login is refused, and no new token is issued.
    let out = ok(api.app("a", Method::POST, "/v1/users/alice/disable")).await;
    assert_eq!(out, json!({"closed_connections": 0}));
    assert!(api.service.admit(&id).await.is_err());
    assert_eq!(
        ok(api.app("a", Method::GET, "/v1/users/alice")).await["disabled"],
        true
    );
    let a = send(
        api.app("a", Method::POST, "/v1/users/alice/tokens")
            .json(&json!({"device": "web"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let out = ok(api.app("a", Method::POST, "/v1/users/alice/enable")).await;
    assert_eq!(out, json!({"closed_connections": 0}));

    // Revoked: a token issued before is refused, one issued after works.
    api.clock.advance(5);
    let before = api
        .service
        .authenticate(
            ok(api
                .app("a", Method::POST, "/v1/users/alice/tokens")
                .json(&json!({"device": "phone"})))
            .await["token"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    api.service.admit(&before).await.unwrap();
    api.clock.advance(5);
    let out = ok(api
        .app("a", Method::POST, "/v1/users/alice/tokens/revoke")
        .json(&json!({"device": "phone"})))
    .await;
    assert_eq!(out["closed_connections"], 0);
    assert!(api.service.admit(&before).await.is_err(), "revoked");
    api.clock.advance(5);
    let after = api
        .service
        .authenticate(
            ok(api
                .app("a", Method::POST, "/v1/users/alice/tokens")
                .json(&json!({"device": "phone"})))
            .await["token"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    api.service.admit(&after).await.unwrap();
    // Revoking every device needs no body.
    ok(api.app("a", Method::POST, "/v1/users/alice/tokens/revoke")).await;
    assert!(api.service.admit(&after).await.is_err());

    // Deleted: gone from the API.
    ok(api.app("a", Method::DELETE, "/v1/users/alice")).await;
    let a = send(api.app("a", Method::GET, "/v1/users/alice")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(api.app("a", Method::DELETE, "/v1/users/alice")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Still there in app b? It never was.
    assert!(
        api.service
            .user_view(&app_id("b"), &magpie_types::UserId::new("alice").unwrap())
            .await
            .is_err()
    );
}
