//! Smoke test of `magpie bench` against a real `magpie serve --demo` process: each scenario
//! on a small scale, over TCP and WebSocket, in one process and spread over worker
//! processes. Correctness only — every connection opens, nothing is lost or doubled, the
//! JSON line is well-formed — never a timing assertion (CI machines vary).

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::Node;

/// Runs `magpie bench ARGS` and returns its one JSON line.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .arg("bench")
        .args(args)
        .args(["--timeout", "60"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run magpie bench");
    assert!(out.status.success(), "magpie bench {args:?} failed");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got {stdout:?}");
    serde_json::from_str(lines[0]).expect("a JSON line")
}

fn assert_p2p_exact(v: &Value, expected: u64) {
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["sent"], expected, "{v}");
    assert_eq!(v["acked"], expected, "{v}");
    assert_eq!(v["delivered"], expected, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["dups"], 0, "{v}");
    assert!(v["ack_p99_ms"].is_number(), "{v}");
    assert!(v["deliver_p99_ms"].is_number(), "{v}");
}

#[test]
fn bench_scenarios_lose_and_double_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let node = Node::new(dir.path());
    let guard = node.spawn();
    let pid = guard.0.id().to_string();
    let (tcp_url, ws_url) = (node.tcp_url(), node.ws_url());

    let tcp = bench(&[
        "connect",
        "--server",
        &tcp_url,
        "--connections",
        "50",
        "--hold",
        "0.2",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(tcp["scenario"], "connect");
    assert_eq!(tcp["connections"], 50, "{tcp}");
    assert_eq!(tcp["failed"], 0, "{tcp}");
    assert_eq!(tcp["dropped"], 0, "{tcp}");
    assert!(tcp["rss_per_conn_bytes"].is_i64(), "{tcp}");

    // Spread over two worker processes of 25 connections each, over WebSocket.
    let ws = bench(&[
        "connect",
        "--server",
        &ws_url,
        "--connections",
        "50",
        "--hold",
        "0.2",
        "--per-worker",
        "25",
    ]);
    assert_eq!(ws["transport"], "ws");
    assert_eq!(ws["workers"], 2, "{ws}");
    assert_eq!(ws["connections"], 50, "{ws}");
    assert_eq!(ws["failed"], 0, "{ws}");

    let p2p = bench(&[
        "p2p",
        "--server",
        &tcp_url,
        "--pairs",
        "5",
        "--messages",
        "50",
    ]);
    assert_eq!(p2p["scenario"], "p2p");
    assert_p2p_exact(&p2p, 250);

    // Two pairs per worker process: three workers, merged into one line.
    let spread = bench(&[
        "p2p",
        "--server",
        &tcp_url,
        "--pairs",
        "5",
        "--messages",
        "20",
        "--per-worker",
        "4",
    ]);
    assert_eq!(spread["workers"], 3, "{spread}");
    assert_p2p_exact(&spread, 100);

    // Open loop over WebSocket.
    let paced = bench(&[
        "p2p",
        "--server",
        &ws_url,
        "--pairs",
        "4",
        "--messages",
        "10",
        "--rate",
        "400",
    ]);
    assert_eq!(paced["rate"], 400.0);
    assert_p2p_exact(&paced, 40);
}

#[test]
fn bench_room_delivers_every_high_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let node = Node::new(dir.path());
    let _guard = node.spawn();
    let metrics = format!("http://{}/metrics", node.http);

    // 40 members over two worker processes, 4 of them sending 200 msgs/s for 2 s: every
    // 5th HIGH, the rest alternating NORMAL and LOW, within a budget of 50 msgs/s.
    let room = bench(&[
        "room",
        "--server",
        &node.tcp_url(),
        "--members",
        "40",
        "--senders",
        "4",
        "--rate",
        "200",
        "--high-every",
        "5",
        "--duration-s",
        "2",
        "--budget",
        "50",
        "--per-worker",
        "20",
        "--metrics-url",
        &metrics,
    ]);
    assert_eq!(room["scenario"], "room");
    assert_eq!(room["workers"], 2, "{room}");
    assert_eq!(room["joined"], 40, "{room}");
    assert_eq!(room["failed"], 0, "{room}");
    assert_eq!(room["closed"], 0, "{room}");
    assert_eq!(room["sent"], 400, "{room}");
    assert_eq!(room["acked"], 400, "{room}");
    assert_eq!(room["high_sent"], 80, "{room}");
    assert_eq!(room["high_accepted"], 80, "{room}");
    assert_eq!(room["unanswered"], 0, "{room}");
    assert_eq!(room["high_expected"], 80 * 40, "{room}");
    assert_eq!(room["high_delivered"], room["high_expected"], "{room}");
    assert_eq!(room["high_lost"], 0, "{room}");
    assert!(room["high_p99_ms"].is_number(), "{room}");
    assert!(
        room["send_errors"]
            .as_object()
            .is_some_and(|e| e.is_empty()),
        "{room}"
    );
    // Each member gets at most the budget's worth of best effort (plus its one-second
    // burst), and the server's counters saw the run.
    let best_effort = room["normal_delivered"].as_u64().unwrap_or(0)
        + room["low_delivered"].as_u64().unwrap_or(0);
    assert!(best_effort <= 40 * (50 * 2 + 50 + 10), "{room}");
    assert!(room["frames_received"].as_u64().unwrap_or(0) > 0, "{room}");
    assert_eq!(room["server_counters"]["messages_high"], 80, "{room}");
}

#[test]
fn bench_group_delivers_every_message_to_every_member_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let node = Node::new(dir.path());
    let _guard = node.spawn();
    let metrics = format!("http://{}/metrics", node.http);

    // 50 members over two worker processes, added in batches of 20 (three requests), one
    // sender as fast as its window allows: every other member gets all 200 messages.
    let group = bench(&[
        "group",
        "--server",
        &node.tcp_url(),
        "--members",
        "50",
        "--messages",
        "200",
        "--add-batch",
        "20",
        "--per-worker",
        "25",
        "--metrics-url",
        &metrics,
    ]);
    assert_eq!(group["scenario"], "group");
    assert_eq!(group["workers"], 2, "{group}");
    assert_eq!(group["connected"], 50, "{group}");
    assert_eq!(group["failed"], 0, "{group}");
    assert_eq!(group["closed"], 0, "{group}");
    assert_eq!(group["setup_requests"], 3, "{group}");
    assert_eq!(group["sent"], 200, "{group}");
    assert_eq!(group["acked"], 200, "{group}");
    assert_eq!(group["unanswered"], 0, "{group}");
    assert_eq!(group["expected"], 200 * 49, "{group}");
    assert_eq!(group["delivered"], group["expected"], "{group}");
    assert_eq!(group["lost"], 0, "{group}");
    assert_eq!(group["dups"], 0, "{group}");
    assert!(group["deliver_p99_ms"].is_number(), "{group}");
    assert!(group["ack_p99_ms"].is_number(), "{group}");
    assert_eq!(group["server_counters"]["messages_sent"], 200, "{group}");

    // Three senders at a fixed rate over WebSocket, in one process, as a super group.
    let paced = bench(&[
        "group",
        "--server",
        &node.ws_url(),
        "--members",
        "20",
        "--messages",
        "60",
        "--senders",
        "3",
        "--rate",
        "300",
        "--super-group",
    ]);
    assert_eq!(paced["workers"], 1, "{paced}");
    assert_eq!(paced["super_group"], true, "{paced}");
    assert_eq!(paced["acked"], 60, "{paced}");
    assert_eq!(paced["expected"], 60 * 19, "{paced}");
    assert_eq!(paced["delivered"], paced["expected"], "{paced}");
    assert_eq!(paced["lost"], 0, "{paced}");
    assert_eq!(paced["dups"], 0, "{paced}");
}

#[test]
fn bench_refuses_targets_off_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "bench",
            "connect",
            "--server",
            "tcp://192.0.2.1:7700",
            "--connections",
            "1",
        ])
        .output()
        .expect("run magpie bench");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
