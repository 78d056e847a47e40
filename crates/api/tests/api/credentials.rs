//! Every route in the OpenAPI document refuses bad credentials, and another app's valid
//! credentials neither see nor change app `a`'s data. The routes come from the document,
//! so a new route is covered without touching this file.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{self, ADMIN_KEY, SECRET, fixtures, ok, plausible, send};

/// Routes that may create something in the caller's own app (they run last, and what
/// they did is checked to have stayed in app `b`).
const CREATORS: &[(&str, &str)] = &[
    ("POST", "/v1/users"),
    ("POST", "/v1/users/import"),
    // A token may be issued for a user who has never logged in: it creates them.
    ("POST", "/v1/users/{user}/tokens"),
];

#[tokio::test]
async fn every_route_refuses_bad_credentials() {
    let api = support::start().await;
    fixtures(&api).await;
    let doc = ok(api.bare(Method::GET, "/openapi.json")).await;
    let ops = support::operations(&doc);
    assert!(ops.len() > 20, "the document lists the routes: {ops:?}");
    let basic = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    for (method, path, scheme) in &ops {
        let what = format!("{method} {path}");
        let Some(scheme) = scheme else {
            assert_eq!(path, "/openapi.json", "{what} has no security requirement");
            continue;
        };
        // No credentials at all.
        let a = send(plausible(&api, method, path)).await;
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{what} without credentials: {a:?}"
        );
        assert_eq!(a.code(), "UNAUTHENTICATED", "{what}");
        let mut bad = vec![
            basic("a:wrong-secret"),
            format!("Bearer a:wrong-secret"),
            basic("nosuchapp:whatever"),
            basic("a"),
            "Basic !!!not-base64".to_owned(),
            "Digest abc".to_owned(),
            String::new(),
        ];
        match scheme.as_str() {
            "app" => {
                // The admin key is no app credential.
                bad.push(format!("Bearer {ADMIN_KEY}"));
                bad.push(basic(&format!("{ADMIN_KEY}:{ADMIN_KEY}")));
            }
            "admin" => {
                // App credentials are no admin key, whichever way they are sent.
                bad.push(basic(&format!("a:{SECRET}")));
                bad.push(format!("Bearer a:{SECRET}"));
                bad.push(format!("Bearer {SECRET}"));
                bad.push(format!("Bearer {ADMIN_KEY}x"));
            }
            other => panic!("{what}: unknown security scheme {other}"),
        }
        for auth in bad {
            let a = send(plausible(&api, method, path).header("authorization", &auth)).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{what} with a bad credential: {a:?}"
            );
            assert_eq!(a.code(), "UNAUTHENTICATED", "{what}");
        }
        // A missing credential is challenged.
        let a = send(plausible(&api, method, path)).await;
        assert!(a.headers.contains_key("www-authenticate"), "{what}");
    }

    // App `b`'s valid credentials on app `a`'s resources: never a success, except the
    // routes that create in `b`, which run last.
    let mut app_ops: Vec<_> = ops
        .iter()
        .filter(|(_, _, s)| s.as_deref() == Some("app"))
        .collect();
    let creates = |m: &Method, p: &str| CREATORS.contains(&(m.as_str(), p));
    app_ops.sort_by_key(|(m, p, _)| creates(m, p));
    for (method, path, _) in app_ops {
        let what = format!("{method} {path} with app b's credentials");
        let a = send(plausible(&api, method, path).basic_auth("b", Some(SECRET))).await;
        if creates(method, path) {
            assert!(a.status.is_success(), "{what}: {a:?}");
        } else {
            assert!(
                a.status.is_client_error(),
                "{what} reached app a's data: {a:?}"
            );
        }
    }
    // App `a` is as it was.
    let alice = ok(api.app("a", Method::GET, "/v1/users/alice")).await;
    assert_eq!(alice["disabled"], false);
    assert_eq!(alice["nickname"], "");
    for id in ["intruder", "intruder2"] {
        let a = send(api.app("a", Method::GET, &format!("/v1/users/{id}"))).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{id} was created in app a");
        ok(api.app("b", Method::GET, &format!("/v1/users/{id}"))).await;
    }
    let g = ok(api.app("a", Method::GET, "/v1/groups/g1")).await;
    assert_eq!(g["name"], "Group one");
    assert_eq!(g["member_count"], 2);
    let r = ok(api.app("a", Method::GET, "/v1/rooms/r1")).await;
    assert_eq!(r["closed"], false);
    let h = ok(api.app(
        "a",
        Method::GET,
        "/v1/users/alice/conversations/p2p:alice:bob/messages",
    ))
    .await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    // And the token issued with b's credentials is b's.
    let t = ok(api
        .app("b", Method::POST, "/v1/users/alice/tokens")
        .json(&json!({"device": "web"})))
    .await;
    let id = api
        .service
        .authenticate(t["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(id.app.as_str(), "b");
}

#[tokio::test]
async fn bearer_app_credentials_work_and_the_cross_app_read_is_not_found() {
    let api = support::start().await;
    api.users("a", &["alice"]).await;
    ok(api
        .bare(Method::GET, "/v1/users/alice")
        .bearer_auth(format!("a:{SECRET}")))
    .await;
    let a = send(api.app("b", Method::GET, "/v1/users/alice")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "NOT_FOUND");
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_key() {
    let api = support::start_with(None).await;
    for auth in [format!("Bearer {ADMIN_KEY}"), "Bearer ".to_owned()] {
        let a = send(
            api.bare(Method::GET, "/v1/admin/apps")
                .header("authorization", auth),
        )
        .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.message(), "the admin API is off");
    }
    let api = support::start_with(Some(String::new())).await;
    let a = send(
        api.bare(Method::GET, "/v1/admin/apps")
            .header("authorization", "Bearer "),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "an empty key means off");
}
