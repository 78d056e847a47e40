//! The admin routes: apps, secret rotation, settings.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, ok, send};

#[tokio::test]
async fn create_list_get_app_and_use_its_credentials() {
    let api = support::start().await;
    let a =
        send(api.admin(Method::POST, "/v1/admin/apps").json(
            &json!({"id": "shop", "name": "The shop", "settings": {"allow_strangers": false}}),
        ))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let secret = a.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(a.json["id"], "shop");
    assert_eq!(a.json["version"], 1);
    assert_eq!(a.json["settings"]["allow_strangers"], false);
    // The new credentials work on app routes.
    let created = send(
        api.bare(Method::POST, "/v1/users")
            .basic_auth("shop", Some(&secret))
            .json(&json!({"id": "u1"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let a = send(
        api.bare(Method::GET, "/v1/users/u1")
            .basic_auth("shop", Some("nope")),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let a = send(
        api.admin(Method::POST, "/v1/admin/apps")
            .json(&json!({"id": "shop"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = send(
        api.admin(Method::POST, "/v1/admin/apps")
            .json(&json!({"id": "_x"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let list = ok(api.admin(Method::GET, "/v1/admin/apps")).await;
    let ids: Vec<_> = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "shop"]);
    let shop = ok(api.admin(Method::GET, "/v1/admin/apps/shop")).await;
    assert_eq!(shop["name"], "The shop");
    let preview = shop["secrets"][0]["preview"].as_str().unwrap();
    assert_eq!(preview, format!("{}…", &secret[..4]));
    assert!(
        !shop.to_string().contains(&secret),
        "a listing never shows the secret"
    );
    let a = send(api.admin(Method::GET, "/v1/admin/apps/nothing")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rotated_secrets_keep_working_for_their_grace_only() {
    let api = support::start().await;
    api.users("a", &["alice"]).await;
    let get = |secret: String| {
        let api = &api;
        async move {
            send(
                api.bare(Method::GET, "/v1/users/alice")
                    .basic_auth("a", Some(secret)),
            )
            .await
            .status
        }
    };
    let old = support::SECRET.to_owned();
    let r = ok(api
        .admin(Method::POST, "/v1/admin/apps/a/rotate-secret")
        .json(&json!({"grace_secs": 3600})))
    .await;
    let first = r["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        r["previous_valid_until_ms"],
        api.service.now_ms() + 3_600_000
    );
    assert_eq!(get(old.clone()).await, StatusCode::OK, "within the grace");
    assert_eq!(get(first.clone()).await, StatusCode::OK);
    api.clock.advance(3_600_000);
    assert_eq!(
        get(old.clone()).await,
        StatusCode::UNAUTHORIZED,
        "after the grace"
    );

    // Grace 0: the previous secret stops at once.
    let r = ok(api
        .admin(Method::POST, "/v1/admin/apps/a/rotate-secret")
        .json(&json!({"grace_secs": 0})))
    .await;
    let second = r["secret"].as_str().unwrap().to_owned();
    assert_eq!(get(first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(second).await, StatusCode::OK);
    let a = send(
        api.admin(Method::POST, "/v1/admin/apps/nothing/rotate-secret")
            .json(&json!({})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn settings_are_versioned_and_validated() {
    let api = support::start().await;
    ok(api
        .admin(Method::POST, "/v1/admin/apps")
        .json(&json!({"id": "shop"})))
    .await;
    let a = send(api.admin(Method::GET, "/v1/admin/apps/shop/settings")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["version"], 1);
    assert_eq!(a.headers["etag"], "\"1\"");
    let mut settings = a.json["settings"].clone();
    settings["recall_window_ms"] = json!(60_000);

    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .json(&json!({"settings": settings, "version": 1})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.json["version"], 2);
    assert_eq!(a.json["settings"]["recall_window_ms"], 60_000);
    assert_eq!(a.headers["etag"], "\"2\"");
    // Stale, in the body or in If-Match: 409.
    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .json(&json!({"settings": settings, "version": 1})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.code(), "CONFLICT");
    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .header("if-match", "\"1\"")
            .json(&json!({"settings": settings})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    ok(api
        .admin(Method::PUT, "/v1/admin/apps/shop/settings")
        .header("if-match", "\"2\"")
        .json(&json!({"settings": settings})))
    .await;
    // Invalid: 400 naming the field; unknown keys too.
    let mut bad = settings.clone();
    bad["webhooks"]["url"] = json!("ftp://nope");
    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .json(&json!({"settings": bad})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().contains("webhooks.url"), "{a:?}");
    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .json(&json!({"settings": {"allow_strangerz": true}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().contains("allow_strangerz"), "{a:?}");
    let a = send(
        api.admin(Method::PUT, "/v1/admin/apps/shop/settings")
            .header("if-match", "soon")
            .json(&json!({"settings": {}})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message().starts_with("If-Match"), "{a:?}");
    assert_eq!(
        ok(api.admin(Method::GET, "/v1/admin/apps/shop/settings")).await["version"],
        3
    );
}
