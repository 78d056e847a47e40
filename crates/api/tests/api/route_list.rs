//! The OpenAPI document lists every route the router serves, and each listed route is
//! served (no routing 404 or 405).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::support::{self, ADMIN_KEY, SECRET, fixtures, ok, plausible, send};

/// Every route, as this test knows them (kept by hand on purpose: a route added to the
/// router must be added here, and the document must list it).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/openapi.json"),
    ("POST", "/v1/users"),
    ("POST", "/v1/users/import"),
    ("GET", "/v1/users/{user}"),
    ("PATCH", "/v1/users/{user}"),
    ("DELETE", "/v1/users/{user}"),
    ("POST", "/v1/users/{user}/disable"),
    ("POST", "/v1/users/{user}/enable"),
    ("POST", "/v1/users/{user}/tokens"),
    ("POST", "/v1/users/{user}/tokens/revoke"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/groups"),
    ("GET", "/v1/groups/{group}"),
    ("PATCH", "/v1/groups/{group}"),
    ("DELETE", "/v1/groups/{group}"),
    ("GET", "/v1/groups/{group}/members"),
    ("POST", "/v1/groups/{group}/members"),
    ("DELETE", "/v1/groups/{group}/members/{user}"),
    ("POST", "/v1/rooms"),
    ("GET", "/v1/rooms/{room}"),
    ("PATCH", "/v1/rooms/{room}"),
    ("DELETE", "/v1/rooms/{room}"),
    ("GET", "/v1/rooms/{room}/members"),
    ("POST", "/v1/rooms/{room}/moderation"),
    ("GET", "/v1/users/{user}/conversations"),
    ("GET", "/v1/users/{user}/conversations/{conv}/messages"),
    ("POST", "/v1/users/{user}/conversations/{conv}/read"),
    ("POST", "/v1/admin/apps"),
    ("GET", "/v1/admin/apps"),
    ("GET", "/v1/admin/apps/{app}"),
    ("POST", "/v1/admin/apps/{app}/rotate-secret"),
    ("GET", "/v1/admin/apps/{app}/settings"),
    ("PUT", "/v1/admin/apps/{app}/settings"),
];

#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let api = support::start().await;
    fixtures(&api).await;
    let doc = ok(api.bare(Method::GET, "/openapi.json")).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["app"]["scheme"], "basic");
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    let listed: BTreeSet<(String, String)> = support::operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p))
        .collect();
    let known: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, known, "the document and this test's list differ");
    // The served document is the one `openapi()` builds.
    let built = serde_json::to_value(magpie_api::openapi()).unwrap();
    assert_eq!(built, doc);

    // Each listed route is served: with valid credentials, no routing 404 or 405. Destructive
    // routes run last so that the others find the fixtures.
    let rank = |m: &str, p: &str| match (m, p) {
        (_, "/v1/groups/{group}/members/{user}") => 1,
        ("DELETE", "/v1/users/{user}") => 3,
        ("DELETE", _) => 2,
        _ => 0,
    };
    let mut routes: Vec<_> = ROUTES.iter().collect();
    routes.sort_by_key(|(m, p)| rank(m, p));
    for (m, path) in routes {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        // Kick a plain member: the owner cannot be removed.
        let target = path.replace("/members/{user}", "/members/bob");
        let req = plausible(&api, &method, &target);
        let req = if path.starts_with("/v1/admin/") {
            req.bearer_auth(ADMIN_KEY)
        } else {
            req.basic_auth("a", Some(SECRET))
        };
        let a = send(req).await;
        assert_ne!(
            a.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{m} {path}: {a:?}"
        );
        assert!(
            !a.message().starts_with("no such route"),
            "{m} {path} is not routed: {a:?}"
        );
        assert!(
            a.status.is_success(),
            "{m} {path} with the fixtures should succeed: {a:?}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let api = support::start().await;
    let a = send(api.app("a", Method::GET, "/v1/nothing-here")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "NOT_FOUND");
    let a = send(api.bare(Method::GET, "/")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "NOT_FOUND");
    let a = send(api.app("a", Method::PUT, "/v1/messages")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
    let a = send(api.admin(Method::DELETE, "/v1/admin/apps")).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
}
