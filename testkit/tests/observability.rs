//! Health, readiness and Prometheus metrics on the HTTP listener.

use std::time::Duration;

use magpie_proto::pb::ErrorCode;
use magpie_testkit::{RawConn, TestServer, Transport, http, id};

/// The value of a metric line (`name{labels} value`), if present.
fn value(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_traffic_and_bad_input() {
    let server = TestServer::start().await;
    let (a, _e) = server.connect(Transport::Tcp, "alice", "m").await;
    a.send_text(&id("bob"), "counted").await.unwrap();
    let mut bad = RawConn::connect(server.addr(Transport::Tcp)).await;
    bad.send_raw(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    bad.expect_fatal(ErrorCode::BadFrame).await;

    let (status, body) = http::get(server.http(), "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "magpie_connections",
        "magpie_messages_sent_total",
        "magpie_send_seconds_bucket",
        "magpie_store_commit_seconds_bucket",
        "magpie_store_batch_size_bucket",
        "magpie_pushes_queued_total",
        "# HELP magpie_errors_total",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    // The recorder is process-wide (other tests' servers share it), so check increases.
    assert!(value(&body, "magpie_messages_sent_total").unwrap_or(0.0) >= 1.0);
    assert!(
        value(&body, "magpie_errors_total{code=\"BAD_FRAME\"}").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    assert!(
        value(&body, "magpie_connections_accepted_total{listener=\"tcp\"}").unwrap_or(0.0) >= 2.0
    );
    a.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_off_while_draining() {
    let server = TestServer::start_with(|c| c.shutdown_grace_ms = 3_000).await;
    let addr = server.http();
    assert_eq!(http::get(addr, "/healthz").await.0, 200);
    assert_eq!(http::get(addr, "/readyz").await.0, 200);
    // A connection that never authenticates keeps the drain open for the grace period, so
    // the draining state can be observed; at the end of the grace it is closed. It connects
    // first: the listener accepts in order, so once the login below is answered the server
    // has accepted (and is tracking) this one too, whatever the scheduling.
    let mut silent = RawConn::connect(server.addr(Transport::Tcp)).await;
    let mut client = RawConn::connect(server.addr(Transport::Tcp)).await;
    client
        .login(&server.token("demo", "alice", "leaving"))
        .await;
    let stopping = tokio::spawn(server.shutdown());
    let mut saw_draining = false;
    for _ in 0..100 {
        if let Some((status, body)) = http::try_get(addr, "/readyz").await
            && status == 503
        {
            assert!(body.contains("draining"));
            saw_draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_draining, "/readyz never reported draining");
    // Authenticated clients are told to go away (and reconnect elsewhere).
    let f = client.recv().await;
    assert!(
        matches!(f.body, Some(magpie_proto::Body::Goaway(_))),
        "{f:?}"
    );
    silent.expect_closed().await;
    stopping.await.unwrap();
}

/// A drain does not wait on authenticated clients that stay: each is sent `GoAway` and the
/// server closes the connection itself, so a client that neither answers nor closes does
/// not hold the shutdown for the grace period. (Sessions registered after the `GoAway`s went
/// out are ended through their queues when the grace ends: `SessionRegistry::cancel_all`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_the_drain_closes_clients_that_stay() {
    let server = TestServer::start_with(|c| c.shutdown_grace_ms = 300).await;
    let mut stays = RawConn::connect(server.addr(Transport::Tcp)).await;
    stays.login(&server.token("demo", "alice", "stays")).await;
    let stopping = tokio::spawn(server.shutdown());
    let f = stays.recv().await;
    assert!(
        matches!(f.body, Some(magpie_proto::Body::Goaway(_))),
        "{f:?}"
    );
    // It neither answers nor closes; the server closes it.
    stays.expect_closed().await;
    stopping.await.unwrap();
}

/// With an internal listener, `/metrics` and the admin API are served there only; the
/// public listener keeps the app API, health and readiness. Delivery latency and HTTP
/// request metrics are exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_admin_move_to_the_internal_listener() {
    let server = TestServer::start_with(|c| {
        c.listen.internal = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let internal = server.config().listen.internal.unwrap();
    let (a, _ea) = server.connect(Transport::Tcp, "alice", "m").await;
    let (_b, eb) = server.connect(Transport::Tcp, "bob", "m").await;
    let bob = magpie_testkit::Recorder::spawn(eb);
    let ack = a.send_text(&id("bob"), "measured").await.unwrap();
    bob.wait_for_seq(&ack.conversation, ack.seq).await;

    assert_eq!(http::get(server.http(), "/healthz").await.0, 200);
    assert_eq!(http::get(server.http(), "/readyz").await.0, 200);
    assert_eq!(http::get(server.http(), "/metrics").await.0, 404);
    let (status, _) = server.rest("demo").get("/v1/users/alice").await;
    assert_eq!(status, 200, "the app API stays public");
    let public_admin = magpie_testkit::Rest::admin(server.http(), magpie_testkit::TEST_ADMIN_KEY);
    assert_eq!(public_admin.get("/v1/admin/apps").await.0, 404);
    let (status, apps) = server.admin().get("/v1/admin/apps").await;
    assert_eq!(status, 200, "{apps}");
    assert!(apps.to_string().contains("\"demo\""));

    // The push is acknowledged asynchronously: wait for its latency to be recorded.
    let mut body = String::new();
    for _ in 0..100 {
        let (status, b) = http::get(internal, "/metrics").await;
        assert_eq!(status, 200);
        body = b;
        if body.contains("magpie_delivery_ack_seconds_bucket") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for name in [
        "magpie_delivery_seconds_bucket",
        "magpie_delivery_ack_seconds_bucket",
        "magpie_outbound_queue_depth",
        "magpie_http_requests_total",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    server.shutdown().await;
}
