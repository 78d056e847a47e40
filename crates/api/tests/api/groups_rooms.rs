//! Groups and rooms through the API, acting as their owners.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, ok, send};

#[tokio::test]
async fn group_create_add_kick_members_dismiss() {
    let api = support::start().await;
    api.users("a", &["alice", "bob", "carol", "dave"]).await;
    let a = send(api.app("a", Method::POST, "/v1/groups").json(&json!({
        "id": "team", "owner": "alice", "name": "Team", "members": ["bob"],
        "notice": "be nice", "join_policy": "approval", "custom": {"color": "red"}
    })))
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let g = a.json;
    assert_eq!(g["id"], "team");
    assert_eq!(g["owner"], "alice");
    assert_eq!(g["join_policy"], "approval");
    assert_eq!(g["member_count"], 2);
    assert_eq!(g["custom"], "{\"color\":\"red\"}");
    assert_eq!(g["dismissed"], false);
    // The server picks an id when none is given.
    let other = ok(api
        .app("a", Method::POST, "/v1/groups")
        .json(&json!({"owner": "bob", "name": "Other"})))
    .await;
    assert!(!other["id"].as_str().unwrap().is_empty());
    let a = send(api.app("a", Method::POST, "/v1/groups").json(&json!({
        "id": "team", "owner": "alice", "name": "Again"
    })))
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.code(), "ALREADY_EXISTS");

    let g = ok(api.app("a", Method::GET, "/v1/groups/team")).await;
    assert_eq!(g["name"], "Team");
    let g = ok(api
        .app("a", Method::PATCH, "/v1/groups/team")
        .json(&json!({"name": "The team", "join_policy": "open"})))
    .await;
    assert_eq!(
        (g["name"].as_str(), g["join_policy"].as_str()),
        (Some("The team"), Some("open"))
    );

    let g = ok(api
        .app("a", Method::POST, "/v1/groups/team/members")
        .json(&json!({"users": ["carol", "dave"]})))
    .await;
    assert_eq!(g["member_count"], 4);
    let page = ok(api.app("a", Method::GET, "/v1/groups/team/members?limit=2")).await;
    assert_eq!(
        page,
        json!({"members": [
            {"user": "alice", "role": "owner", "muted_until_ms": 0},
            {"user": "bob", "role": "member", "muted_until_ms": 0}
        ], "next": "bob"})
    );
    let page = ok(api.app("a", Method::GET, "/v1/groups/team/members?after=bob")).await;
    let users: Vec<_> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["carol", "dave"]);
    assert_eq!(page["next"], json!(null));

    let g = ok(api.app("a", Method::DELETE, "/v1/groups/team/members/carol")).await;
    assert_eq!(g["member_count"], 3);
    let a = send(api.app("a", Method::DELETE, "/v1/groups/team/members/alice")).await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "the owner cannot be kicked"
    );
    assert!(a.message().starts_with("user"), "{a:?}");
    let a = send(
        api.app("a", Method::POST, "/v1/groups/team/members")
            .json(&json!({"users": ["ghost"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let g = ok(api.app("a", Method::DELETE, "/v1/groups/team")).await;
    assert_eq!(g["dismissed"], true);
    let a = send(
        api.app("a", Method::PATCH, "/v1/groups/team")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(api.app("a", Method::GET, "/v1/groups/nothing")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn room_create_get_patch_moderate_close() {
    let api = support::start().await;
    api.users("a", &["alice", "bob"]).await;
    let a = send(api.app("a", Method::POST, "/v1/rooms").json(&json!({
        "id": "live", "owner": "alice", "name": "Live", "slow_mode_ms": 1000
    })))
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    assert_eq!(a.json["id"], "live");
    assert_eq!(a.json["owner"], "alice");
    assert_eq!(a.json["settings"]["slow_mode_ms"], 1000);
    let a = send(
        api.app("a", Method::POST, "/v1/rooms")
            .json(&json!({"id": "live", "owner": "alice"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = send(
        api.app("a", Method::POST, "/v1/rooms")
            .json(&json!({"id": "x", "owner": "ghost"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let r = ok(api.app("a", Method::GET, "/v1/rooms/live")).await;
    assert_eq!(r["name"], "Live");
    assert_eq!(r["online"], 0);
    let r = ok(api
        .app("a", Method::PATCH, "/v1/rooms/live")
        .json(&json!({"name": "Live!", "mute_all": true})))
    .await;
    assert_eq!(r["name"], "Live!");
    assert_eq!(r["settings"]["mute_all"], true);
    let m = ok(api.app("a", Method::GET, "/v1/rooms/live/members")).await;
    assert_eq!(m, json!({"members": [], "next": null}));

    for body in [
        json!({"action": "ban", "user": "bob"}),
        json!({"action": "unban", "user": "bob"}),
        json!({"action": "mute", "user": "bob", "duration_ms": 60000}),
        json!({"action": "unmute", "user": "bob"}),
        json!({"action": "kick", "user": "bob"}),
    ] {
        ok(api
            .app("a", Method::POST, "/v1/rooms/live/moderation")
            .json(&body))
        .await;
    }
    let a = send(
        api.app("a", Method::POST, "/v1/rooms/live/moderation")
            .json(&json!({"action": "mute", "user": "bob"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().starts_with("duration_ms"), "{a:?}");
    let a = send(
        api.app("a", Method::POST, "/v1/rooms/live/moderation")
            .json(&json!({"action": "ban", "user": "alice"})),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "the owner cannot be moderated"
    );

    let r = ok(api.app("a", Method::DELETE, "/v1/rooms/live")).await;
    assert_eq!(r["closed"], true);
    assert_eq!(
        ok(api.app("a", Method::GET, "/v1/rooms/live")).await["closed"],
        true
    );
    let a = send(api.app("a", Method::GET, "/v1/rooms/nothing")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
