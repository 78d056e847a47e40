//! End-to-end tests through the Rust SDK against a real node on 127.0.0.1:0, over every
//! transport (TCP, WebSocket, TLS, secure WebSocket).

use std::collections::HashMap;

use magpie_client::{Client, ClientMsgId, ConvId, UserId};
use magpie_testkit::{DeliveryChecker, Recorder, TestServer, Transport, id};

fn u(s: &str) -> UserId {
    id(s)
}

/// The log's last seq, read through history.
async fn last_seq(c: &Client, conv: &ConvId) -> u64 {
    let page = c.history(conv, 0, 1).await.expect("history");
    page.messages.first().map_or(0, |m| m.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_delivers_exactly_once_in_order() {
    let server = TestServer::start().await;
    for t in Transport::ALL {
        let (a, b) = (
            format!("a-{t:?}").to_lowercase(),
            format!("b-{t:?}").to_lowercase(),
        );
        server.add_users("demo", &[&a, &b]).await;
        let (a1, a1ev) = server.connect(t, &a, "d1").await;
        let (_a2, a2ev) = server.connect(Transport::Tcp, &a, "d2").await;
        let (b1, b1ev) = server.connect(t, &b, "d1").await;
        let (ra1, ra2, rb1) = (
            Recorder::spawn(a1ev),
            Recorder::spawn(a2ev),
            Recorder::spawn(b1ev),
        );
        let conv = ConvId::direct(&u(&a), &u(&b));
        let n = 40;
        let (ua, ub) = (u(&a), u(&b));
        let sa = {
            let (c, to) = (a1.clone(), ub.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..n {
                    acks.push(c.send_text(&to, format!("a→b {i}")).await.expect("send"));
                }
                acks
            })
        };
        let sb = {
            let (c, to) = (b1.clone(), ua.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..n {
                    acks.push(c.send_text(&to, format!("b→a {i}")).await.expect("send"));
                }
                acks
            })
        };
        let mut checker = DeliveryChecker::new();
        for ack in sa.await.unwrap().iter().chain(sb.await.unwrap().iter()) {
            checker.accepted(ack);
        }
        let last = 2 * n;
        assert_eq!(last_seq(&a1, &conv).await, last);
        for r in [&ra1, &ra2, &rb1] {
            r.wait_for_seq(&conv, last).await;
        }
        checker.device("a1", &ua);
        checker.device("a2", &ua);
        checker.device("b1", &ub);
        for (dev, r) in [("a1", &ra1), ("a2", &ra2), ("b1", &rb1)] {
            for m in r.messages().iter().filter(|m| m.conversation == conv) {
                checker.received(dev, m);
            }
        }
        let report = checker.check(&HashMap::from([(conv.clone(), last)]));
        report.assert_clean();
        assert_eq!(report.delivered, 3 * last as usize, "{t:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_device_syncs_the_whole_history_in_pages() {
    let server = TestServer::start().await;
    server.add_users("demo", &["sx", "sy", "sz"]).await;
    let (x, _xev) = server.connect(Transport::Tcp, "sx", "d").await;
    let (z, _zev) = server.connect(Transport::Tcp, "sz", "d").await;
    let mut checker = DeliveryChecker::new();
    for i in 0..45 {
        checker.accepted(&x.send_text(&u("sy"), format!("m{i}")).await.unwrap());
    }
    for i in 0..5 {
        checker.accepted(&z.send_text(&u("sy"), format!("z{i}")).await.unwrap());
    }
    // A device that never synced: small pages force several pulls and list pages.
    let config = server
        .client_config(Transport::Ws, "sy", "fresh")
        .with_page_sizes(7, 1);
    let (y, yev) = Client::connect(config).await.unwrap();
    let ry = Recorder::spawn(yev);
    let (cx, cz) = (
        ConvId::direct(&u("sx"), &u("sy")),
        ConvId::direct(&u("sz"), &u("sy")),
    );
    ry.wait_for_seq(&cx, 45).await;
    ry.wait_for_seq(&cz, 5).await;
    checker.device("y", &u("sy"));
    for m in ry.messages() {
        checker.received("y", &m);
    }
    checker
        .check(&HashMap::from([(cx, 45), (cz, 5)]))
        .assert_clean();
    y.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_backwards_by_cursor() {
    let server = TestServer::start().await;
    server.add_users("demo", &["hx", "hy"]).await;
    let (x, _ev) = server.connect(Transport::Tcp, "hx", "d").await;
    for i in 1..=25 {
        x.send_text(&u("hy"), format!("h{i}")).await.unwrap();
    }
    let conv = ConvId::direct(&u("hx"), &u("hy"));
    let seqs =
        |p: &magpie_client::HistoryPage| p.messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let p1 = x.history(&conv, 0, 10).await.unwrap();
    assert_eq!(seqs(&p1), (16..=25).rev().collect::<Vec<_>>());
    assert!(p1.has_more);
    let p2 = x.history(&conv, 16, 10).await.unwrap();
    assert_eq!(seqs(&p2), (6..=15).rev().collect::<Vec<_>>());
    let p3 = x.history(&conv, 6, 10).await.unwrap();
    assert_eq!(seqs(&p3), (1..=5).rev().collect::<Vec<_>>());
    assert!(!p3.has_more);
    assert_eq!(p3.messages.last().unwrap().text(), Some("h1"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_returns_the_original_ack_across_reconnects() {
    let server = TestServer::start().await;
    server.add_users("demo", &["rx", "ry"]).await;
    let (y, yev) = server.connect(Transport::Tcp, "ry", "d").await;
    let ry = Recorder::spawn(yev);
    let cmid: ClientMsgId = id("retry-me");
    let (x1, _e1) = server.connect(Transport::Tcp, "rx", "d").await;
    let first = x1
        .send_with_id(&u("ry"), cmid.clone(), magpie_client::Content::text("once"))
        .await
        .unwrap();
    x1.close().await;
    // A new connection (as after a crash of the client) retries the same id.
    let (x2, _e2) = server.connect(Transport::Ws, "rx", "d").await;
    let again = x2
        .send_with_id(&u("ry"), cmid, magpie_client::Content::text("once"))
        .await
        .unwrap();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!((again.msg_id, again.seq), (first.msg_id, first.seq));
    let conv = ConvId::direct(&u("rx"), &u("ry"));
    // A later message proves the receiver has seen everything before it.
    x2.send_text(&u("ry"), "after").await.unwrap();
    ry.wait_for_seq(&conv, 2).await;
    let got: Vec<_> = ry
        .messages()
        .iter()
        .filter(|m| m.conversation == conv)
        .map(|m| m.seq)
        .collect();
    assert_eq!(got, vec![1, 2]);
    assert_eq!(last_seq(&y, &conv).await, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_and_doubles_nothing() {
    let mut server = TestServer::start().await;
    server.add_users("demo", &["kx", "ky"]).await;
    let (x, xev) = server.connect(Transport::Tcp, "kx", "d").await;
    let (_y, yev) = server.connect(Transport::Ws, "ky", "d").await;
    let (rx, ry) = (Recorder::spawn(xev), Recorder::spawn(yev));
    let n = 400;
    let sender = {
        let x = x.clone();
        tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..n {
                acks.push(x.send_text(&u("ky"), format!("k{i}")).await.expect("send"));
            }
            acks
        })
    };
    let conv = ConvId::direct(&u("kx"), &u("ky"));
    ry.wait_for_seq(&conv, 30).await;
    assert!(!sender.is_finished(), "the restart must happen mid-stream");
    server.restart().await;
    let acks = sender.await.unwrap();
    ry.wait_for_seq(&conv, n).await;
    rx.wait_for_seq(&conv, n).await;
    let mut checker = DeliveryChecker::new();
    for a in &acks {
        checker.accepted(a);
    }
    checker.device("x", &u("kx"));
    checker.device("y", &u("ky"));
    for m in rx.messages() {
        checker.received("x", &m);
    }
    for m in ry.messages() {
        checker.received("y", &m);
    }
    assert_eq!(last_seq(&x, &conv).await, n);
    checker.check(&HashMap::from([(conv, n)])).assert_clean();
    server.shutdown().await;
}
