//! Delivery mechanics at the protocol level: retransmission of unacknowledged pushes, the
//! idle timeout, and the bound on a slow consumer's backlog.

use std::time::Duration;

use magpie_client::UserId;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, frame};
use magpie_testkit::raw::{Next, error_code};
use magpie_testkit::{RawConn, TestServer, Transport, id};

fn pushed(f: &Frame) -> Vec<(String, u64)> {
    match &f.body {
        Some(Body::Push(p)) => p
            .messages
            .iter()
            .map(|m| (m.conversation.clone(), m.seq))
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_pushes_are_sent_again_until_acked() {
    let server = TestServer::start_with(|c| c.gateway.ack_timeout_ms = 300).await;
    let mut bob = RawConn::connect(server.addr(Transport::Tcp)).await;
    bob.login(&server.token("demo", "bob", "raw")).await;
    let (alice, _e) = server.connect(Transport::Tcp, "alice", "d").await;
    let ack = alice
        .send_text(&id::<UserId>("bob"), "please ack")
        .await
        .unwrap();
    let key = (ack.conversation.to_string(), ack.seq);

    // First push, then (no ack) the same message again.
    assert_eq!(pushed(&bob.recv().await), vec![key.clone()]);
    assert_eq!(
        pushed(&bob.recv().await),
        vec![key.clone()],
        "not retransmitted"
    );

    // Acknowledge: no more copies arrive.
    bob.send(&frame(
        0,
        Body::PushAck(pb::PushAck {
            delivered: vec![pb::Delivered {
                conversation: key.0.clone(),
                seq: key.1,
            }],
        }),
    ))
    .await;
    // Drain a copy that may have been in flight when the ack was sent.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let mut copies_after_ack = 0;
    while tokio::time::Instant::now() < deadline {
        match bob.next_within(Duration::from_millis(100)).await {
            Next::Frame(f) if !pushed(&f).is_empty() => copies_after_ack += 1,
            Next::Closed => panic!("connection closed"),
            _ => {}
        }
    }
    assert!(
        copies_after_ack <= 1,
        "{copies_after_ack} copies after the ack"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_never_acks_is_disconnected_and_can_sync() {
    let server = TestServer::start_with(|c| {
        c.gateway.ack_timeout_ms = 100;
        c.gateway.max_push_attempts = 2;
    })
    .await;
    let mut bob = RawConn::connect(server.addr(Transport::Tcp)).await;
    bob.login(&server.token("demo", "bob", "raw")).await;
    let (alice, _e) = server.connect(Transport::Tcp, "alice", "d").await;
    alice.send_text(&id::<UserId>("bob"), "x").await.unwrap();
    bob.expect_closed().await;
    // The message is still there for the device's next sync.
    let mut again = RawConn::connect(server.addr(Transport::Tcp)).await;
    again.login(&server.token("demo", "bob", "raw")).await;
    again
        .send(&frame(
            2,
            Body::Pull(pb::PullRequest {
                conversation: "p2p:alice:bob".into(),
                after_seq: 0,
                limit: 10,
            }),
        ))
        .await;
    match again.recv_reply().await.body {
        Some(Body::PullResult(p)) => assert_eq!(p.messages.len(), 1),
        other => panic!("expected a pull result, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_pings_keep_them_alive() {
    let server = TestServer::start_with(|c| c.gateway.heartbeat_interval_ms = 300).await;
    let addr = server.addr(Transport::Tcp);
    let mut pinger = RawConn::connect(addr).await;
    pinger.login(&server.token("demo", "alice", "pinger")).await;
    let mut silent = RawConn::connect(addr).await;
    silent.login(&server.token("demo", "bob", "silent")).await;
    // The silent one is closed after ~3 intervals; meanwhile the pinger keeps pinging.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut silent_closed = false;
    while tokio::time::Instant::now() < deadline {
        pinger
            .send(&frame(9, Body::Ping(pb::Ping { client_time_ms: 1 })))
            .await;
        match pinger.recv_reply().await.body {
            Some(Body::Pong(p)) => assert_eq!(p.client_time_ms, 1),
            other => panic!("expected a pong, got {other:?}"),
        }
        if !silent_closed {
            match silent.next_within(Duration::from_millis(150)).await {
                Next::Frame(f) => {
                    assert_eq!(error_code(&f), Some(ErrorCode::IdleTimeout));
                    silent.expect_closed().await;
                    silent_closed = true;
                }
                Next::Closed => panic!("closed without saying why"),
                Next::Silent => {}
            }
        } else {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    assert!(silent_closed, "the silent connection was not closed");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let server = TestServer::start_with(|c| {
        c.gateway.outbound_queue = 8;
        c.gateway.write_timeout_ms = 500;
        c.gateway.ack_timeout_ms = 60_000;
    })
    .await;
    let bob: UserId = id("bob");
    let app = id("demo");
    // A raw client that authenticates and then never reads again.
    let mut stuck = RawConn::connect(server.addr(Transport::Tcp)).await;
    stuck.login(&server.token("demo", "bob", "stuck")).await;
    assert_eq!(server.service().sessions().devices_of(&app, &bob), 1);
    let (alice, _e) = server.connect(Transport::Tcp, "alice", "d").await;
    let body = "y".repeat(30_000);
    // ~30 MB: far more than the socket buffers hold, so the server's writes block.
    let mut sent = 0;
    while server.service().sessions().devices_of(&app, &bob) > 0 {
        alice.send_text(&bob, body.clone()).await.unwrap();
        sent += 1;
        assert!(sent < 1_000, "the stuck client was never disconnected");
    }
    // The server kept serving: a fresh device of bob syncs everything.
    let (b2, _e2) = server.connect(Transport::Tcp, "bob", "fresh").await;
    let conv = magpie_client::ConvId::direct(&id("alice"), &bob);
    let page = b2.history(&conv, 0, 1).await.unwrap();
    assert_eq!(page.messages[0].seq, sent);
    drop(stuck);
    server.shutdown().await;
}
