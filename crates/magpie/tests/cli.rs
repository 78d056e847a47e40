//! The binary's client commands as a script would use them: JSON on stdout, errors on
//! stderr with a non-zero exit code.

use std::process::Command;

use serde_json::Value;

mod common;
use common::{Node, magpie};

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn send_tail_and_token_print_what_scripts_need() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(dir.path());
    let server = node.spawn();
    let url = node.tcp_url();

    let (ok, out, err) = magpie(&[
        "send",
        "--server",
        &url,
        "--as",
        "alice",
        "--to",
        "bob",
        "--client-msg-id",
        "cli-1",
        "hello bob",
    ]);
    assert!(ok, "{err}");
    let ack = &json_lines(&out)[0];
    assert_eq!(ack["conversation"], "p2p:alice:bob");
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["duplicate"], false);
    assert!(ack["msg_id"].as_str().unwrap().parse::<u64>().unwrap() > 0);

    // The same client message id over WebSocket: the original ack.
    let (ok, out, _) = magpie(&[
        "send",
        "--server",
        &node.ws_url(),
        "--as",
        "alice",
        "--to",
        "bob",
        "--client-msg-id",
        "cli-1",
        "hello bob",
    ]);
    assert!(ok);
    let again = &json_lines(&out)[0];
    assert_eq!(
        (&again["seq"], &again["msg_id"], &again["duplicate"]),
        (&ack["seq"], &ack["msg_id"], &Value::Bool(true))
    );

    // A device that never synced gets the whole history of its conversations.
    let (ok, out, err) = magpie(&["tail", "--server", &url, "--as", "bob", "--until-idle", "1"]);
    assert!(ok, "{err}");
    let lines = json_lines(&out);
    let mine: Vec<_> = lines
        .iter()
        .filter(|m| m["conversation"] == "p2p:alice:bob")
        .collect();
    assert_eq!(mine.len(), 1, "{lines:?}");
    let m = mine[0];
    assert_eq!(
        (&m["seq"], &m["from"], &m["text"]),
        (
            &Value::from(1),
            &Value::from("alice"),
            &Value::from("hello bob")
        )
    );
    assert_eq!(m["client_msg_id"], "cli-1");
    assert_eq!(m["msg_id"], ack["msg_id"]);
    // And carol's seeded welcome.
    assert!(
        lines
            .iter()
            .any(|m| m["conversation"] == "p2p:bob:carol" && m["from"] == "carol")
    );

    // Typed refusals: non-zero exit, the code on stderr.
    let (ok, _, err) = magpie(&[
        "send", "--server", &url, "--as", "alice", "--to", "nobody", "x",
    ]);
    assert!(!ok);
    assert!(err.contains("NOT_FOUND"), "{err}");
    let (ok, _, err) = magpie(&[
        "send",
        "--server",
        &url,
        "--as",
        "alice",
        "--app-secret",
        "wrong-secret-wrong-secret",
        "--to",
        "bob",
        "x",
    ]);
    assert!(!ok);
    assert!(err.contains("UNAUTHENTICATED"), "{err}");

    // A token from `magpie token` works with --token.
    let (ok, token, _) = magpie(&["token", "--user", "carol", "--device", "t1"]);
    assert!(ok);
    assert_eq!(token.trim().split('.').count(), 3);
    let (ok, out, err) = magpie(&[
        "send",
        "--server",
        &url,
        "--token",
        token.trim(),
        "--to",
        "alice",
        "from a token",
    ]);
    assert!(ok, "{err}");
    assert_eq!(json_lines(&out)[0]["conversation"], "p2p:alice:carol");
    drop(server);
}

#[test]
fn serve_drains_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(dir.path());
    let mut server = node.spawn();
    let health = std::net::TcpStream::connect(node.http);
    assert!(health.is_ok(), "HTTP listener is up");
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    // The data survives a clean restart: the seeded welcome is not seeded twice.
    let server = node.spawn();
    let (ok, out, _) = magpie(&[
        "tail",
        "--server",
        &node.tcp_url(),
        "--as",
        "alice",
        "--until-idle",
        "1",
    ]);
    assert!(ok);
    let welcomes = json_lines(&out)
        .iter()
        .filter(|m| m["from"] == "carol")
        .count();
    assert_eq!(welcomes, 1);
    drop(server);
}

/// The group commands, `send --group`, `conversations` and `read`, as a script uses them.
#[test]
fn groups_conversations_and_read_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(dir.path());
    let server = node.spawn();
    let url = node.tcp_url();
    let run = |args: &[&str]| {
        let mut all = vec![args[0], "--server", &url];
        all.extend_from_slice(&args[1..]);
        let (ok, out, err) = magpie(&all);
        assert!(ok, "magpie {args:?}: {err}");
        json_lines(&out).remove(0)
    };
    let group = |args: &[&str]| {
        let mut all = vec!["group", "--server", &url];
        all.extend_from_slice(args);
        let (ok, out, err) = magpie(&all);
        assert!(ok, "magpie group {args:?}: {err}");
        json_lines(&out).remove(0)
    };

    let g = group(&[
        "--as",
        "alice",
        "create",
        "--name",
        "team",
        "--members",
        "bob,carol",
    ]);
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (g["member_count"].as_u64(), g["owner"].as_str()),
        (Some(3), Some("alice"))
    );
    let conv = g["conversation"].as_str().unwrap().to_owned();
    assert_eq!(conv, format!("g:{id}"));

    let ack = run(&[
        "send",
        "--as",
        "alice",
        "--group",
        &id,
        "--mention",
        "bob",
        "hi team",
    ]);
    assert_eq!(ack["conversation"], conv.as_str());
    run(&["send", "--as", "carol", "--group", &id, "hello"]);

    // Bob has two unread in the group, one of them mentioning him.
    let (ok, out, err) = magpie(&["conversations", "--server", &url, "--as", "bob"]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation"] == conv.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(item["unread"], 2, "{item}");
    assert_eq!(item["mentioned"], true);
    assert_eq!(item["muted"], false);
    assert_eq!(item["last_message"]["text"], "hello");
    assert!(item["last_seq"].as_u64().unwrap() >= 3);

    // Reading clears it; alice's own messages never counted for her.
    let r = run(&["read", "--as", "bob", "--conversation", &conv]);
    assert_eq!(
        (r["unread"].as_u64(), r["read_seq"].as_u64()),
        (Some(0), item["last_seq"].as_u64())
    );
    let (_, out, _) = magpie(&["conversations", "--server", &url, "--as", "alice"]);
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation"] == conv.as_str())
        .unwrap();
    assert_eq!(mine["unread"], 1, "carol's message only: {mine}");

    // Remove carol; she can no longer send. Bob leaves.
    group(&[
        "--as",
        "alice",
        "remove",
        "--group",
        &id,
        "--members",
        "carol",
    ]);
    let (ok, _, err) = magpie(&[
        "send", "--server", &url, "--as", "carol", "--group", &id, "x",
    ]);
    assert!(!ok && err.contains("FORBIDDEN"), "{err}");
    group(&["--as", "bob", "leave", "--group", &id]);
    let members = group(&["--as", "alice", "members", "--group", &id]);
    let names: Vec<_> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].clone())
        .collect();
    assert_eq!(names, vec![Value::from("alice")]);
    group(&["--as", "alice", "add", "--group", &id, "--members", "bob"]);
    drop(server);
}

/// The room commands as a script uses them: create, a tail that sees messages with their
/// priorities (and `seq` for reliable ones), send, members, moderation, close.
#[test]
fn rooms_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(dir.path());
    let server = node.spawn();
    let url = node.tcp_url();
    let room = |args: &[&str]| {
        let mut all = vec!["room", args[0], "--server", &url];
        all.extend_from_slice(&args[1..]);
        let (ok, out, err) = magpie(&all);
        assert!(ok, "magpie room {args:?}: {err}");
        json_lines(&out).remove(0)
    };

    let info = room(&[
        "create", "--as", "alice", "--id", "stage", "--name", "Stage",
    ]);
    assert_eq!(
        (info["room"].as_str(), info["owner"].as_str()),
        (Some("stage"), Some("alice"))
    );
    // Reliable messages are kept: a tail that starts later still gets them with --since 0.
    let high = room(&["send", "--as", "alice", "--room", "stage", "welcome"]);
    assert_eq!(
        (high["priority"].as_str(), high["seq"].as_u64()),
        (Some("high"), Some(1))
    );
    let low = room(&[
        "send",
        "--as",
        "bob",
        "--room",
        "stage",
        "--priority",
        "low",
        "clap",
    ]);
    assert_eq!(low["priority"], "low");
    // Let its batching window close: best-effort messages are not kept for later joiners.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tail = std::process::Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "room",
            "tail",
            "--server",
            &url,
            "--as",
            "carol",
            "--room",
            "stage",
            "--since",
            "0",
            "--count",
            "2",
            "--timeout-ms",
            "10000",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The second message reaches the tail live once it has joined.
    let mut joined = false;
    for _ in 0..100 {
        let m = room(&["members", "--as", "alice", "stage"]);
        if m.to_string().contains("carol") {
            joined = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(joined, "the tail never joined");
    room(&["send", "--as", "bob", "--room", "stage", "hello all"]);
    let out = tail.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (
            lines[0]["room"].as_str(),
            lines[0]["priority"].as_str(),
            lines[0]["from"].as_str(),
            lines[0]["text"].as_str(),
            lines[0]["seq"].as_u64()
        ),
        (
            Some("stage"),
            Some("high"),
            Some("alice"),
            Some("welcome"),
            Some(1)
        )
    );
    assert_eq!(
        (
            lines[1]["priority"].as_str(),
            lines[1]["from"].as_str(),
            lines[1]["text"].as_str()
        ),
        (Some("normal"), Some("bob"), Some("hello all"))
    );
    assert!(
        lines[1].get("seq").is_none_or(Value::is_null),
        "{}",
        lines[1]
    );

    // A banned user cannot send (the send joins first, and the join is refused).
    room(&["ban", "--as", "alice", "--user", "bob", "stage"]);
    let (ok, _, err) = magpie(&[
        "room", "send", "--server", &url, "--as", "bob", "--room", "stage", "again",
    ]);
    assert!(!ok && err.contains("BANNED"), "{err}");
    let closed = room(&["close", "--as", "alice", "stage"]);
    assert_eq!(closed["closed"], true);
    drop(server);
}
