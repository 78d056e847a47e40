//! Bad input: each malformed, oversized, premature or unauthorised request gets its typed
//! error (or a closed connection), nothing is stored, and the server keeps serving others.

use std::time::Duration;

use magpie_client::{ConvId, UserId};
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, frame};
use magpie_testkit::raw::{Next, error_code, hello_frame, send_frame};
use magpie_testkit::server::{expired_token, token_with};
use magpie_testkit::{OTHER_APP, OTHER_SECRET, RawConn, Recorder, TestServer, Transport, id};

fn u(s: &str) -> UserId {
    id(s)
}

/// A healthy client still works: the proof that the server kept serving.
async fn still_serving(server: &TestServer) {
    let (x, _e) = server.connect(Transport::Tcp, "alice", "probe").await;
    x.send_text(&u("bob"), "still here")
        .await
        .expect("server still serves");
    x.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_get_typed_errors() {
    let server = TestServer::start().await;
    let addr = server.addr(Transport::Tcp);

    // A length prefix announcing 1 GiB: refused before any allocation.
    let mut c = RawConn::connect(addr).await;
    c.send_raw(&(1u32 << 30).to_be_bytes()).await;
    c.expect_fatal(ErrorCode::FrameTooLarge).await;

    // A well-framed payload that is not protobuf.
    let mut c = RawConn::connect(addr).await;
    let junk = [0xffu8; 16];
    let mut bytes = (junk.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&junk);
    c.send_raw(&bytes).await;
    c.expect_fatal(ErrorCode::BadFrame).await;

    // The same after authenticating.
    let mut c = RawConn::connect(addr).await;
    c.login(&server.token("demo", "alice", "raw")).await;
    c.send_raw(&bytes).await;
    c.expect_fatal(ErrorCode::BadFrame).await;

    // An oversized frame after authenticating (the limit is 64 KiB by default).
    let mut c = RawConn::connect(addr).await;
    c.login(&server.token("demo", "alice", "raw2")).await;
    let mut big = (200_000u32).to_be_bytes().to_vec();
    big.extend(std::iter::repeat_n(0u8, 200_000));
    c.send_raw(&big).await;
    c.expect_fatal(ErrorCode::FrameTooLarge).await;

    // Random bytes of many shapes never take the server down.
    for seed in 0..50u32 {
        let mut c = RawConn::connect(addr).await;
        let noise: Vec<u8> = (0..(seed * 37 % 300))
            .map(|i| (i.wrapping_mul(seed + 7) % 251) as u8)
            .collect();
        c.send_raw(&noise).await;
        drop(c);
    }
    still_serving(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_accepted_before_a_valid_hello() {
    let server = TestServer::start().await;
    let addr = server.addr(Transport::Tcp);

    let mut c = RawConn::connect(addr).await;
    c.send(&send_frame(1, "bob", "early", "hi")).await;
    c.expect_fatal(ErrorCode::AuthRequired).await;

    let mut c = RawConn::connect(addr).await;
    let f = c.hello("not-a-jwt").await;
    assert_eq!(error_code(&f), Some(ErrorCode::Unauthenticated));
    c.expect_closed().await;

    // Signed with the wrong secret (a forged identity).
    let mut c = RawConn::connect(addr).await;
    let forged = token_with("demo", "guessed-secret-guessed-secret", "bob", "evil", 60);
    assert_eq!(
        error_code(&c.hello(&forged).await),
        Some(ErrorCode::Unauthenticated)
    );

    // Signed with another app's secret but naming the demo app.
    let mut c = RawConn::connect(addr).await;
    let cross = token_with("demo", OTHER_SECRET, "bob", "evil", 60);
    assert_eq!(
        error_code(&c.hello(&cross).await),
        Some(ErrorCode::Unauthenticated)
    );

    let mut c = RawConn::connect(addr).await;
    let old = expired_token("demo", magpie_server::demo::DEMO_SECRET, "alice", "d", 10);
    assert_eq!(
        error_code(&c.hello(&old).await),
        Some(ErrorCode::TokenExpired)
    );

    let mut c = RawConn::connect(addr).await;
    let mut h = hello_frame(&server.token("demo", "alice", "d"));
    if let Some(Body::Hello(ref mut hello)) = h.body {
        hello.protocol_version = 99;
    }
    c.send(&h).await;
    c.expect_fatal(ErrorCode::UnsupportedVersion).await;

    // A second Hello is refused but the session goes on.
    let mut c = RawConn::connect(addr).await;
    c.login(&server.token("demo", "alice", "twice")).await;
    c.send(&hello_frame(&server.token("demo", "bob", "x")))
        .await;
    assert_eq!(
        error_code(&c.recv_reply().await),
        Some(ErrorCode::AlreadyAuthenticated)
    );
    c.send(&send_frame(5, "bob", "after-second-hello", "x"))
        .await;
    let ack = c.recv_reply().await;
    match ack.body {
        Some(Body::SendAck(a)) => assert_eq!(ack.request_id, 5, "{a:?}"),
        other => panic!("expected an ack, got {other:?}"),
    }
    still_serving(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_has_a_deadline() {
    let server = TestServer::start_with(|c| c.gateway.handshake_timeout_ms = 300).await;
    let mut c = RawConn::connect(server.addr(Transport::Tcp)).await;
    c.expect_fatal(ErrorCode::HandshakeTimeout).await;
    still_serving(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_per_ip_are_capped() {
    let server = TestServer::start_with(|c| c.gateway.max_preauth_per_ip = 3).await;
    let addr = server.addr(Transport::Tcp);
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(RawConn::connect(addr).await);
    }
    // Give the server a moment to have accepted the three (their permits are taken on
    // accept); the fourth must be refused.
    let mut refused = false;
    for _ in 0..50 {
        let mut c = RawConn::connect(addr).await;
        match c.next_within(Duration::from_millis(200)).await {
            Next::Frame(f) => {
                assert_eq!(error_code(&f), Some(ErrorCode::TooManyConnections));
                refused = true;
                break;
            }
            Next::Closed | Next::Silent => {}
        }
    }
    assert!(
        refused,
        "a fourth unauthenticated connection was not refused"
    );
    // Over TLS a refused connection is closed before any handshake work is done: the
    // client sees the TLS handshake fail, not a rejection sent over a finished handshake.
    let tls =
        magpie_client::Client::connect(server.client_config(Transport::Tls, "alice", "tls")).await;
    assert!(
        matches!(tls, Err(magpie_client::ClientError::Connection(_))),
        "expected the TLS handshake to be refused, got {:?}",
        tls.map(|_| ())
    );
    // Authenticating releases the slot.
    idle[0].login(&server.token("demo", "alice", "p0")).await;
    let mut c = RawConn::connect(addr).await;
    c.login(&server.token("demo", "alice", "p1")).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_apps_users_and_foreign_conversations_are_out_of_reach() {
    let server = TestServer::start().await;
    server.add_users(OTHER_APP, &["dave"]).await;
    let mut c = RawConn::connect(server.addr(Transport::Tcp)).await;
    c.login(&server.token("demo", "alice", "d")).await;

    // dave exists only in the other app.
    c.send(&send_frame(2, "dave", "to-dave", "hi")).await;
    let f = c.recv_reply().await;
    assert_eq!(
        (f.request_id, error_code(&f)),
        (2, Some(ErrorCode::NotFound))
    );

    // Reading a conversation alice is not part of.
    c.send(&frame(
        3,
        Body::Pull(pb::PullRequest {
            conversation: "p2p:bob:carol".into(),
            after_seq: 0,
            limit: 10,
        }),
    ))
    .await;
    let f = c.recv_reply().await;
    assert_eq!(
        (f.request_id, error_code(&f)),
        (3, Some(ErrorCode::Forbidden))
    );
    c.send(&frame(
        4,
        Body::History(pb::HistoryRequest {
            conversation: "p2p:bob:carol".into(),
            before_seq: 0,
            limit: 10,
        }),
    ))
    .await;
    assert_eq!(
        error_code(&c.recv_reply().await),
        Some(ErrorCode::Forbidden)
    );

    // Malformed requests are refused with INVALID_ARGUMENT and the session continues.
    for (rid, bad) in [
        (5, send_frame(5, "bob", "", "empty id")),
        (6, send_frame(6, "b:ob", "x1", "bad recipient")),
        (
            7,
            frame(
                7,
                Body::Send(pb::SendRequest {
                    client_msg_id: "x2".into(),
                    to: None,
                    content: None,
                    ..pb::SendRequest::default()
                }),
            ),
        ),
        (
            8,
            frame(
                8,
                Body::Pull(pb::PullRequest {
                    conversation: "nonsense".into(),
                    after_seq: 0,
                    limit: 1,
                }),
            ),
        ),
    ] {
        c.send(&bad).await;
        let f = c.recv_reply().await;
        assert_eq!(
            (f.request_id, error_code(&f)),
            (rid, Some(ErrorCode::InvalidArgument))
        );
    }
    // A message over the content limit (32 KiB) but under the frame limit (64 KiB).
    c.send(&send_frame(9, "bob", "big", &"x".repeat(40_000)))
        .await;
    assert_eq!(
        error_code(&c.recv_reply().await),
        Some(ErrorCode::MessageTooLarge)
    );

    // Nothing was stored: the other app's dave has no conversation, and the demo log
    // between alice and bob holds only what a valid send put there.
    let (dave, dev) = magpie_client::Client::connect(server.client_config_in(
        OTHER_APP,
        Transport::Tcp,
        "dave",
        "d",
    ))
    .await
    .unwrap();
    let rd = Recorder::spawn(dev);
    assert!(dave.conversations().await.unwrap().is_empty());
    let (alice, _e) = server.connect(Transport::Tcp, "alice", "check").await;
    let conv = ConvId::direct(&u("alice"), &u("bob"));
    assert!(
        alice
            .history(&conv, 0, 10)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(rd.messages().is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_is_always_the_authenticated_user() {
    let server = TestServer::start().await;
    let (bob, bev) = server.connect(Transport::Tcp, "bob", "d").await;
    let rb = Recorder::spawn(bev);
    let mut c = RawConn::connect(server.addr(Transport::Tcp)).await;
    c.login(&server.token("demo", "alice", "d")).await;
    c.send(&send_frame(1, "bob", "who-am-i", "from alice"))
        .await;
    assert!(matches!(c.recv_reply().await.body, Some(Body::SendAck(_))));
    let conv = ConvId::direct(&u("alice"), &u("bob"));
    rb.wait_for_seq(&conv, 1).await;
    let m = rb
        .messages()
        .into_iter()
        .find(|m| m.conversation == conv)
        .unwrap();
    assert_eq!(m.from.as_str(), "alice");
    bob.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_websocket_messages_are_refused() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start().await;
    let url = format!("ws://{}/", server.addr(Transport::Ws));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text("hello?".into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    let Some(Ok(Message::Binary(b))) = reply else {
        panic!("expected an error frame, got {reply:?}")
    };
    let f = magpie_proto::decode_frame(&b, 1 << 20).unwrap();
    assert_eq!(error_code(&f), Some(ErrorCode::BadFrame));
    still_serving(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_user_is_rate_limited_and_others_are_not() {
    let server = TestServer::start_with(|c| {
        c.limits.send_rate_per_user = 5;
        c.limits.send_burst_per_user = 5;
    })
    .await;
    let mut c = RawConn::connect(server.addr(Transport::Tcp)).await;
    c.login(&server.token("demo", "alice", "flood")).await;
    for i in 1..=20u64 {
        c.send(&send_frame(i, "bob", &format!("flood-{i}"), "x"))
            .await;
    }
    let (mut acked, mut limited) = (0, 0);
    for _ in 0..20 {
        let f = c.recv_reply().await;
        match (&f.body, error_code(&f)) {
            (Some(Body::SendAck(_)), _) => acked += 1,
            (_, Some(ErrorCode::RateLimited)) => limited += 1,
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert!(limited > 0, "20 instant sends at 5/s were not limited");
    assert!(acked >= 5, "the burst was not allowed: {acked}");
    // Another user is unaffected; the SDK retries a limited send until it is stored.
    still_serving(&server).await;
    let (bob, _e) = server.connect(Transport::Tcp, "bob", "d").await;
    for i in 0..8 {
        bob.send_text(&u("alice"), format!("paced {i}"))
            .await
            .expect("retried until stored");
    }
    server.shutdown().await;
}
