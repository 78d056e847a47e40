//! Crash test: a real `magpie serve` process is killed with SIGKILL several times while
//! clients send in three conversations; it is restarted on the same data each time. At the
//! end every device must have received every message of its conversations exactly once, in
//! seq order, every acked message must be in the log at its acked seq, and no client message
//! id may be stored twice. The counts are printed as one JSON line.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use magpie_client::{Backoff, Client, ClientConfig, ConvId, SendAck, UserId};
use magpie_testkit::server::token_with;
use magpie_testkit::{DeliveryChecker, Recorder, id};

mod common;
use common::Node;

const KILLS: usize = 5;

fn config(url: String, user: &str, device: &str) -> ClientConfig {
    ClientConfig::new(
        url,
        token_with("demo", magpie_server::demo::DEMO_SECRET, user, device, 3600),
    )
    .with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.5,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sends_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(dir.path());
    let mut child = node.spawn();
    let tcp = format!("tcp://{}", node.tcp);
    let ws = format!("ws://{}/", node.ws);

    let pairs = [("alice", "bob"), ("bob", "carol"), ("carol", "alice")];
    let mut devices = Vec::new();
    for (user, dev, url) in [
        ("alice", "a1", &tcp),
        ("bob", "b1", &tcp),
        ("carol", "c1", &ws),
        ("alice", "a2", &ws),
    ] {
        let (c, ev) = Client::connect(config(url.clone(), user, dev))
            .await
            .unwrap();
        devices.push((user, dev, c, Recorder::spawn(ev)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, (from, to)) in pairs.iter().enumerate() {
        let client = devices[i].2.clone();
        let (to, stop) = (id::<UserId>(to), stop.clone());
        let from = from.to_string();
        senders.push(tokio::spawn(async move {
            let mut acks: Vec<SendAck> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                acks.push(
                    client
                        .send_text(&to, format!("{from} #{n}"))
                        .await
                        .expect("send"),
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            acks
        }));
    }

    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(250 + 97 * k as u64)).await;
        child.0.kill().expect("SIGKILL");
        child.0.wait().expect("reap");
        tokio::time::sleep(Duration::from_millis(50)).await;
        child = node.spawn();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut checker = DeliveryChecker::new();
    for s in senders {
        for a in s.await.unwrap() {
            checker.accepted(&a);
        }
    }
    // The log's final length, and its content, read by a fresh device.
    // Readers' events are drained (a client whose events nobody reads stops reading its
    // socket: that is the SDK's backpressure).
    let (reader, ev) = Client::connect(config(tcp.clone(), "alice", "reader"))
        .await
        .unwrap();
    let _ra = Recorder::spawn(ev);
    let (reader_b, evb) = Client::connect(config(tcp.clone(), "bob", "reader"))
        .await
        .unwrap();
    let _rb = Recorder::spawn(evb);
    let mut last_seq = HashMap::new();
    let mut stored_twice = 0;
    for (from, to) in pairs {
        let conv = ConvId::direct(&id(from), &id(to));
        let r = if conv.has_party(&id("alice")) {
            &reader
        } else {
            &reader_b
        };
        let mut seen = HashSet::new();
        let mut expect = None;
        let mut before = 0;
        loop {
            let page = r.history(&conv, before, 200).await.unwrap();
            for m in &page.messages {
                let want = expect.unwrap_or(m.seq);
                assert_eq!(m.seq, want, "gap in the stored log of {conv}");
                expect = Some(m.seq - 1);
                if !seen.insert(m.client_msg_id.clone()) {
                    stored_twice += 1;
                }
                last_seq.entry(conv.clone()).or_insert(m.seq);
            }
            match page.messages.last() {
                Some(m) if page.has_more => before = m.seq,
                _ => break,
            }
        }
        assert_eq!(expect, Some(0), "the log of {conv} does not start at seq 1");
    }
    for (user, dev, _c, rec) in &devices {
        let u: UserId = id(user);
        for (conv, last) in &last_seq {
            if conv.has_party(&u) {
                rec.wait_for_seq(conv, *last).await;
            }
        }
        checker.device(dev, &u);
        for m in rec.messages() {
            checker.received(dev, &m);
        }
    }
    let report = checker.check(&last_seq);
    println!(
        "{}",
        serde_json::json!({
            "kills": KILLS,
            "accepted": report.accepted,
            "delivered": report.delivered,
            "lost": report.lost,
            "duplicates": report.duplicates,
            "order_violations": report.order_violations,
            "conflicts": report.conflicts,
            "stored_twice": stored_twice,
        })
    );
    assert_eq!(stored_twice, 0);
    assert!(
        report.accepted > 100,
        "too few messages to mean anything: {}",
        report.accepted
    );
    report.assert_clean();
    drop(child);
}
