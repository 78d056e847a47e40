//! Token revocation and user disable through the server API close live connections within
//! seconds, and the revoked token can never connect again.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use magpie_proto::Body;
use magpie_proto::pb::ErrorCode;
use magpie_testkit::raw::{Next, error_code};
use magpie_testkit::{RawConn, TestServer, Transport};
use serde_json::json;

/// Waits (at most 5 s: "within a few seconds") for a GoAway that says not to come back,
/// then for the close.
async fn expect_sent_away(c: &mut RawConn) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            Next::Frame(f) => {
                if let Some(Body::Goaway(g)) = f.body {
                    assert!(!g.reconnect, "a revoked session must not reconnect");
                    c.expect_closed().await;
                    return;
                }
            }
            other => panic!("expected a GoAway within 5 s, got {other:?}"),
        }
    }
}

async fn token(server: &TestServer, user: &str, device: &str) -> String {
    let (status, body) = server
        .rest("demo")
        .post(
            &format!("/v1/users/{user}/tokens"),
            json!({ "device": device, "ttl_secs": 600 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_tokens_closes_connections_and_refuses_the_token() {
    let server = TestServer::start().await;
    let rest = server.rest("demo");
    let addr = server.addr(Transport::Tcp);
    let phone = token(&server, "bob", "phone").await;
    let laptop = token(&server, "bob", "laptop").await;
    let mut p = RawConn::connect(addr).await;
    p.login(&phone).await;
    let mut l = RawConn::connect(addr).await;
    l.login(&laptop).await;

    // One device's tokens: only that device is sent away.
    let (status, body) = rest
        .post("/v1/users/bob/tokens/revoke", json!({ "device": "phone" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed_connections"], 1);
    expect_sent_away(&mut p).await;
    let mut again = RawConn::connect(addr).await;
    assert_eq!(
        error_code(&again.hello(&phone).await),
        Some(ErrorCode::Unauthenticated),
        "a revoked token cannot reconnect"
    );
    assert!(
        matches!(
            l.next_within(Duration::from_millis(300)).await,
            Next::Silent
        ),
        "the other device stays connected"
    );

    // A token issued after the revocation works.
    let fresh = token(&server, "bob", "phone").await;
    RawConn::connect(addr).await.login(&fresh).await;

    // All of the user's tokens.
    let (status, _) = rest.post("/v1/users/bob/tokens/revoke", json!({})).await;
    assert_eq!(status, 200);
    expect_sent_away(&mut l).await;
    for t in [&laptop, &fresh] {
        let mut c = RawConn::connect(addr).await;
        assert_eq!(
            error_code(&c.hello(t).await),
            Some(ErrorCode::Unauthenticated)
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_closes_every_connection_until_enabled() {
    let server = TestServer::start().await;
    let rest = server.rest("demo");
    let tcp = token(&server, "carol", "tcp").await;
    let mut a = RawConn::connect(server.addr(Transport::Tcp)).await;
    a.login(&tcp).await;
    // The SDK over WebSocket: told to go away, it stops for good.
    let (client, mut events) = server.connect(Transport::Ws, "carol", "ws").await;

    let (status, body) = rest.post("/v1/users/carol/disable", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["closed_connections"], 2);
    expect_sent_away(&mut a).await;
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.recv().await {
            if matches!(
                e,
                magpie_client::Event::Error(magpie_client::ClientError::GoneAway { .. })
            ) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(gone, "the SDK reports it was sent away");
    drop(client);

    let mut c = RawConn::connect(server.addr(Transport::Tcp)).await;
    assert_eq!(
        error_code(&c.hello(&tcp).await),
        Some(ErrorCode::Unauthenticated),
        "a disabled user cannot log in"
    );
    let (status, body) = rest
        .post("/v1/users/carol/tokens", json!({ "device": "x" }))
        .await;
    assert_eq!(status, 403, "no tokens for a disabled user: {body}");

    let (status, _) = rest.post("/v1/users/carol/enable", json!({})).await;
    assert_eq!(status, 200);
    // Disabling revoked nothing: the old token works again once enabled.
    RawConn::connect(server.addr(Transport::Tcp))
        .await
        .login(&tcp)
        .await;
    server.shutdown().await;
}
