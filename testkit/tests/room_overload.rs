//! A live room under overload: senders far above every member's downstream budget.
//!
//! Proves: no member receives more best-effort messages than its budget allows (high
//! priority comes on top), every high-priority message reaches every member, once and in
//! order, within 3 s of being sent, and the drop counters in `/metrics` account for every
//! best-effort message a member did not receive.
//!
//! Alone in its binary: it reads process-wide counters.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use magpie_proto::pb::{self, Priority};
use magpie_testkit::room_client::RoomClient;
use magpie_testkit::{TestServer, Transport, http};
use tokio::time::Instant;

const MEMBERS: usize = 60;
const SENDERS: usize = 5;
const PER_SENDER: usize = 240;
const HIGH: u64 = 40;
const BUDGET: u32 = 20;

/// Sum of the values of `name{...}` lines whose labels include `label`.
fn sum(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_keeps_budgets_and_delivers_every_reliable_message_in_time() {
    let server = TestServer::start().await;
    let addr = server.addr(Transport::Tcp);
    let mut users = vec!["host".to_owned()];
    users.extend((0..MEMBERS).map(|i| format!("m{i}")));
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    server.add_users("demo", &names).await;

    let mut host = RoomClient::connect(addr, &server.token("demo", "host", "d"), true).await;
    host.create(
        "stage",
        pb::RoomSettings {
            budget_per_s: Some(BUDGET),
            send_rate_per_s: Some(100_000),
            ..Default::default()
        },
    )
    .await;
    host.join("stage", 0).await.unwrap();
    let mut members = Vec::new();
    for u in &users[1..] {
        let mut c = RoomClient::connect(addr, &server.token("demo", u, "d"), true).await;
        c.join("stage", 0).await.unwrap();
        members.push(c);
    }
    let senders: Vec<RoomClient> = members.drain(..SENDERS).collect();

    let started = Instant::now();
    // Best-effort senders: normal and low interleaved, as fast as acks come back.
    let mut tasks = Vec::new();
    for (s, mut c) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut sent = (0u64, 0u64);
            for i in 0..PER_SENDER {
                let p = if i % 2 == 0 {
                    Priority::Normal
                } else {
                    Priority::Low
                };
                c.say("stage", &format!("s{s}-{i}"), p, "").await.unwrap();
                if p == Priority::Normal {
                    sent.0 += 1;
                } else {
                    sent.1 += 1;
                }
            }
            (c, sent)
        }));
    }
    // The host's reliable messages, with their send times.
    let mut sent_at = Vec::new();
    for i in 1..=HIGH {
        sent_at.push(Instant::now());
        let a = host
            .say(
                "stage",
                &format!("gift {i}"),
                Priority::High,
                &format!("g{i}"),
            )
            .await
            .unwrap();
        assert_eq!(a.seq, i);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut sent = (0u64, 0u64);
    for t in tasks {
        let (c, (n, l)) = t.await.unwrap();
        sent.0 += n;
        sent.1 += l;
        members.push(c);
    }
    members.push(host);
    for m in &members {
        assert!(
            m.wait_for(Duration::from_secs(10), |l| l
                .contiguous
                .get("stage")
                .copied()
                == Some(HIGH))
                .await,
            "a member is missing reliable messages"
        );
    }
    // Let the last windows close before reading the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let span = started.elapsed().as_secs_f64();
    let (_, metrics) = http::get(server.http(), "/metrics").await;

    let mut missing = (0u64, 0u64);
    for m in &members {
        let log = m.log.lock();
        // Every reliable message, first arrivals in order, within 3 s of its send.
        let mut firsts = Vec::new();
        for r in log.messages.iter().filter(|r| r.msg.seq > 0) {
            if !firsts.iter().any(|(s, _)| *s == r.msg.seq) {
                firsts.push((r.msg.seq, r.at));
            }
        }
        let order: Vec<u64> = firsts.iter().map(|(s, _)| *s).collect();
        assert_eq!(order, (1..=HIGH).collect::<Vec<_>>());
        for (seq, at) in &firsts {
            let latency = at.duration_since(sent_at[(*seq - 1) as usize]);
            assert!(
                latency <= Duration::from_secs(3),
                "seq {seq} took {latency:?}"
            );
        }
        // The budget: a full bucket plus the rate over the whole run.
        let normal = log
            .messages
            .iter()
            .filter(|r| r.msg.priority == Priority::Normal as i32)
            .count() as u64;
        let low = log
            .messages
            .iter()
            .filter(|r| r.msg.priority == Priority::Low as i32)
            .count() as u64;
        let bound = f64::from(BUDGET) * span + f64::from(BUDGET);
        assert!(
            (normal + low) as f64 <= bound,
            "{} best-effort messages over a budget of {bound}",
            normal + low
        );
        missing.0 += sent.0 - normal;
        missing.1 += sent.1 - low;
    }
    // It was an overload, and the counters account for every message a member missed.
    assert!(missing.0 > 0 && missing.1 > 0);
    let dropped_normal = sum(&metrics, "magpie_room_dropped_total", "priority=\"normal\"");
    let dropped_low = sum(&metrics, "magpie_room_dropped_total", "priority=\"low\"");
    assert_eq!(
        (dropped_normal as u64, dropped_low as u64),
        missing,
        "{metrics}"
    );
    assert_eq!(
        sum(&metrics, "magpie_room_dropped_total", "priority=\"high\""),
        0.0
    );
    server.shutdown().await;
}
