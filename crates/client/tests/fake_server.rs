//! The SDK against a fake server on 127.0.0.1:0: retries under the same client message id,
//! exactly-once ordered delivery through duplicates and gaps, reconnect with backoff and
//! sync, token errors, transports; groups, hidden seq ranges, the conversation list and read
//! positions (in `fake_server/groups_and_reads.rs`); message operations, typing, presence,
//! profiles and friends (in `fake_server/ops_and_people.rs`); live rooms (in
//! `fake_server/rooms.rs`).

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

#[path = "fake_server/groups_and_reads.rs"]
mod groups_and_reads;
#[path = "fake_server/ops_and_people.rs"]
mod ops_and_people;
#[path = "fake_server/rooms.rs"]
mod rooms;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use magpie_client::{
    Backoff, Client, ClientConfig, ClientError, ConnectionState, ConvId, ErrorCode, Event, Events,
    Message, UserId,
};
use magpie_proto::pb;
use support::{FakeServer, Mode, WAIT};

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn conv(a: &str, b: &str) -> ConvId {
    ConvId::direct(&user(a), &user(b))
}

/// Fast backoff and small pages, so that tests exercise paging and finish quickly.
fn config(server: &FakeServer, token: &str) -> ClientConfig {
    let mut c = ClientConfig::new(server.url(), token)
        .with_backoff(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            jitter: 1.0,
        })
        .with_connect_timeout(Duration::from_secs(5))
        .with_page_sizes(2, 2);
    if let Some(der) = &server.cert_der {
        c = c
            .add_root_certificate_der(der.clone())
            .with_public_roots(false);
    }
    c
}

async fn connect(server: &FakeServer, token: &str) -> (Client, Events) {
    let (client, mut events) = Client::connect(config(server, token)).await.unwrap();
    wait_for(&mut events, "first sync", |e| {
        matches!(e, Event::SyncComplete)
    })
    .await;
    (client, events)
}

/// Takes events until one matches; returns everything taken (the match last).
async fn wait_for(events: &mut Events, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let run = async {
        while let Some(e) = events.recv().await {
            let done = pred(&e);
            seen.push(e);
            if done {
                return;
            }
        }
        panic!("event stream ended while waiting for {what}");
    };
    if tokio::time::timeout(WAIT, run).await.is_err() {
        panic!("timed out waiting for {what}; saw {seen:#?}");
    }
    seen
}

/// The next `n` messages (skipping other events).
async fn messages(events: &mut Events, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    let run = async {
        while out.len() < n {
            match events.next_message().await {
                Some(m) => out.push(m),
                None => panic!("event stream ended"),
            }
        }
    };
    if tokio::time::timeout(WAIT, run).await.is_err() {
        panic!("timed out waiting for {n} messages; got {out:#?}");
    }
    out
}

fn seqs(ms: &[Message]) -> Vec<u64> {
    ms.iter().map(|m| m.seq).collect()
}

fn texts(ms: &[Message]) -> Vec<&str> {
    ms.iter().map(|m| m.text().unwrap()).collect()
}

// ---- (a) a send cut before its ack ------------------------------------------------------

#[tokio::test]
async fn send_cut_before_ack_is_retried_with_same_id_and_resolves_with_original_ack() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    server.state().cut_next_ack = true;

    let sender = alice.clone();
    let send = tokio::spawn(async move { sender.send_text(&user("bob"), "hello").await });

    // The connection dies mid-frame; the client reconnects, syncs, resends.
    let seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Connection(ConnectionState::Disconnected { .. })))
    );
    let ack = tokio::time::timeout(WAIT, send)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let stored = server.state().logs[conv("alice", "bob").as_str()].clone();
    assert_eq!(stored.len(), 1, "stored exactly once");
    assert_eq!(ack.seq, 1);
    assert_eq!(ack.msg_id, stored[0].msg_id, "the original ack");
    assert!(ack.duplicate);
    let sends = server.state().sends.clone();
    assert_eq!(sends.len(), 2, "sent, then retried once: {sends:?}");
    assert_eq!(sends[0], sends[1], "same client_msg_id");
    assert_eq!(sends[0].1, ack.client_msg_id.as_str());

    // The application saw the message exactly once, and the next one follows it.
    let mut all: Vec<Message> = seen
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    alice.send_text(&user("bob"), "second").await.unwrap();
    let need = 2 - all.len();
    all.extend(messages(&mut events, need).await);
    assert_eq!(seqs(&all), [1, 2]);
    assert_eq!(texts(&all), ["hello", "second"]);
    assert_eq!(all[0].from, user("alice"));
    assert_eq!(all[0].client_msg_id.as_ref(), Some(&ack.client_msg_id));
    alice.close().await;
}

// ---- (b) duplicates and gaps in pushes --------------------------------------------------

#[tokio::test]
async fn pushes_with_duplicate_and_gap_reach_the_app_once_in_order() {
    let server = FakeServer::start().await;
    let (_alice, mut events) = connect(&server, "alice").await;
    let m1 = server.store("bob", "alice", "one");
    let _m2 = server.store("bob", "alice", "two");
    let m3 = server.store("bob", "alice", "three");

    server.push("alice", vec![m1.clone()]);
    server.push("alice", vec![m1]);
    server.push("alice", vec![m3]);

    let got = messages(&mut events, 3).await;
    assert_eq!(seqs(&got), [1, 2, 3]);
    assert_eq!(texts(&got), ["one", "two", "three"]);
    assert_eq!(got[0].from, user("bob"));

    let c = conv("alice", "bob").as_str().to_owned();
    server
        .wait("push acks for 1, 1 and 3", |s| {
            let acks = |seq| {
                s.push_acks
                    .iter()
                    .filter(|(cv, q)| *cv == c && *q == seq)
                    .count()
            };
            acks(1) == 2 && acks(3) == 1
        })
        .await;
    assert!(
        server.state().pulls.contains(&(c.clone(), 1)),
        "the gap was filled by a pull from the cursor"
    );

    // Nothing was delivered twice: the next message event is seq 4.
    let m4 = server.store("bob", "alice", "four");
    server.push("alice", vec![m4]);
    let next = messages(&mut events, 1).await;
    assert_eq!(seqs(&next), [4]);
}

// ---- (c) reconnect with backoff, then sync ----------------------------------------------

#[tokio::test]
async fn reconnects_with_backoff_after_server_closes_and_syncs_what_it_missed() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;

    // Missed while the connection is down (stored without a push).
    server.store("bob", "alice", "missed 1");
    server.store("carol", "alice", "missed 2");
    server.store("bob", "alice", "missed 3");
    server.state().refuse_next = 2;
    let accepted_before = server.state().accepted;
    server.kick("alice");

    let seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    let attempts: Vec<u32> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Connection(ConnectionState::Connecting { attempt }) => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(
        attempts,
        [1, 2, 3],
        "two refused attempts, then success: {seen:#?}"
    );
    let retry_delays = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Connection(ConnectionState::Disconnected {
                    retry_in: Some(_),
                    ..
                })
            )
        })
        .count();
    assert_eq!(retry_delays, 3, "each retry waited a backoff delay");
    assert_eq!(server.state().accepted - accepted_before, 3);
    assert!(matches!(alice.state(), ConnectionState::Connected(_)));

    let mut got: Vec<Message> = seen
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    got.sort_by(|a, b| (&a.conversation, a.seq).cmp(&(&b.conversation, b.seq)));
    let keys: Vec<(String, u64)> = got
        .iter()
        .map(|m| (m.conversation.as_str().to_owned(), m.seq))
        .collect();
    assert_eq!(
        keys,
        [
            ("p2p:alice:bob".to_owned(), 1),
            ("p2p:alice:bob".to_owned(), 2),
            ("p2p:alice:carol".to_owned(), 1),
        ]
    );
    let cursors = alice.cursors().await.unwrap();
    assert_eq!(cursors[&conv("alice", "bob")], 2);
    assert_eq!(cursors[&conv("alice", "carol")], 1);
}

// ---- more behaviour ---------------------------------------------------------------------

#[tokio::test]
async fn two_clients_chat_in_order_including_own_messages() {
    let server = FakeServer::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;

    for i in 0..5 {
        alice
            .send_text(&user("bob"), format!("a{i}"))
            .await
            .unwrap();
    }
    let ack = bob.send_text(&user("alice"), "b0").await.unwrap();
    assert_eq!(ack.seq, 6);
    assert_eq!(ack.conversation, conv("alice", "bob"));

    for events in [&mut alice_events, &mut bob_events] {
        let got = messages(events, 6).await;
        assert_eq!(seqs(&got), [1, 2, 3, 4, 5, 6]);
        assert_eq!(texts(&got), ["a0", "a1", "a2", "a3", "a4", "b0"]);
    }
    let c = conv("alice", "bob").as_str().to_owned();
    server
        .wait("bob acked alice's pushes", |s| {
            (1..=5).all(|q| s.push_acks.contains(&(c.clone(), q)))
        })
        .await;
    let sess = alice.session().unwrap();
    assert_eq!(sess.user_id, user("alice"));
    assert_eq!(sess.max_message_bytes, 4096);
}

#[tokio::test]
async fn fresh_client_receives_whole_history_in_pages_and_seeded_cursors_resume() {
    let server = FakeServer::start().await;
    for i in 0..5 {
        server.store("bob", "alice", &format!("b{i}"));
    }
    for peer in ["carol", "dave", "erin"] {
        server.store(peer, "alice", &format!("{peer}0"));
    }
    let (alice, mut events) = Client::connect(config(&server, "alice")).await.unwrap();
    let seen = wait_for(&mut events, "sync", |e| matches!(e, Event::SyncComplete)).await;
    let got: Vec<Message> = seen
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 8);
    let bob: Vec<u64> = got
        .iter()
        .filter(|m| m.conversation == conv("alice", "bob"))
        .map(|m| m.seq)
        .collect();
    assert_eq!(bob, [1, 2, 3, 4, 5], "paged pulls, in order");
    let cursors = alice.cursors().await.unwrap();
    alice.close().await;

    // A restarted client seeded with the cursors gets only what is new.
    server.store("bob", "alice", "b5");
    let c = config(&server, "alice").with_initial_cursors(cursors);
    let (_alice, mut events) = Client::connect(c).await.unwrap();
    let seen = wait_for(&mut events, "sync", |e| matches!(e, Event::SyncComplete)).await;
    let got: Vec<(ConvId, u64)> = seen
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.conversation, m.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(conv("alice", "bob"), 6)]);
}

#[tokio::test]
async fn definite_rejection_fails_and_transient_errors_are_retried() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;

    let err = alice.send_text(&user("nobody"), "hi").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    assert!(matches!(err, ClientError::Rejected { .. }));

    server.state().fail_next_sends = vec![pb::ErrorCode::Unavailable, pb::ErrorCode::RateLimited];
    let ack = alice.send_text(&user("bob"), "eventually").await.unwrap();
    assert_eq!(ack.seq, 1);
    let sends = server.state().sends.clone();
    let ids: Vec<&String> = sends[1..].iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "same client_msg_id: {ids:?}"
    );
    assert_eq!(texts(&messages(&mut events, 1).await), ["eventually"]);

    // Too large for the server's announced limit: refused without a round trip.
    let big = "x".repeat(5000);
    let err = alice.send_text(&user("bob"), big).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::MessageTooLarge));
    assert_eq!(server.state().sends.len(), 4);
}

#[tokio::test]
async fn expired_static_token_is_fatal_without_reconnecting() {
    let server = FakeServer::start().await;
    let err = Client::connect(config(&server, "expired"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TokenExpired));

    // Started lazily, the refusal is an event, and the client stops instead of looping.
    let (client, mut events) = Client::connect_lazy(config(&server, "bad")).unwrap();
    let seen = wait_for(&mut events, "closed", |e| {
        matches!(e, Event::Connection(ConnectionState::Closed))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Error(ClientError::Rejected {
            code: ErrorCode::Unauthenticated,
            ..
        })
    )));
    assert!(events.recv().await.is_none(), "the stream ends");
    assert_eq!(server.state().tokens, ["expired", "bad"]);
    let err = client.send_text(&user("bob"), "x").await.unwrap_err();
    assert_eq!(err, ClientError::Closed);
}

#[tokio::test]
async fn token_provider_mints_a_new_token_after_expiry() {
    let server = FakeServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let c = config(&server, "unused").with_token_provider(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok::<_, magpie_client::BoxError>(if n == 0 {
                "alice".to_owned()
            } else {
                format!("alice/d{n}")
            })
        }
    });
    let (_alice, mut events) = Client::connect(c).await.unwrap();
    wait_for(&mut events, "sync", |e| matches!(e, Event::SyncComplete)).await;

    // The server declares the token expired mid-session.
    server.fatal_error("alice", pb::ErrorCode::TokenExpired);
    let seen = wait_for(&mut events, "reconnected", |e| {
        matches!(e, Event::Connection(ConnectionState::Connected(_)))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e, Event::Error(_))));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(server.state().tokens, ["alice", "alice/d1"]);
}

#[tokio::test]
async fn goaway_reconnects_or_stops() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    server.goaway("alice", true);
    wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    assert_eq!(server.state().hellos_ok, 2);

    server.goaway("alice", false);
    let seen = wait_for(&mut events, "closed", |e| {
        matches!(e, Event::Connection(ConnectionState::Closed))
    })
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Error(ClientError::GoneAway { .. })))
    );
    assert_eq!(alice.state(), ConnectionState::Closed);
}

#[tokio::test]
async fn silent_server_is_detected_by_heartbeats() {
    let server = FakeServer::start().await;
    {
        let mut st = server.state();
        st.heartbeat_ms = 100;
        st.silent = true;
    }
    let (_alice, mut events) = connect(&server, "alice").await;
    let seen = wait_for(&mut events, "disconnect", |e| {
        matches!(e, Event::Connection(ConnectionState::Disconnected { .. }))
    })
    .await;
    assert!(server.state().pings >= 1);
    let reason = seen.iter().find_map(|e| match e {
        Event::Connection(ConnectionState::Disconnected { reason, .. }) => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.unwrap().contains("silent"));
}

#[tokio::test]
async fn history_and_conversation_list() {
    let server = FakeServer::start().await;
    for i in 1..=5 {
        server.store("bob", "alice", &format!("m{i}"));
    }
    server.store("carol", "alice", "c1");
    server.store("bob", "carol", "not alice's");
    let (alice, _events) = connect(&server, "alice").await;

    let list = alice.conversations().await.unwrap();
    let ids: Vec<(&str, u64)> = list
        .iter()
        .map(|c| (c.conversation.as_str(), c.last_seq))
        .collect();
    assert_eq!(ids, [("p2p:alice:bob", 5), ("p2p:alice:carol", 1)]);
    assert_eq!(list[0].peer, Some(user("bob")));

    let page = alice.history(&conv("alice", "bob"), 0, 2).await.unwrap();
    assert_eq!(seqs(&page.messages), [5, 4]);
    assert!(page.has_more);
    let page = alice.history(&conv("alice", "bob"), 4, 10).await.unwrap();
    assert_eq!(seqs(&page.messages), [3, 2, 1]);
    assert!(!page.has_more);
}

#[tokio::test]
async fn close_fails_pending_sends_and_ends_events() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    server.state().fail_next_sends = vec![pb::ErrorCode::Unavailable; 1000];
    let sender = alice.clone();
    let send = tokio::spawn(async move { sender.send_text(&user("bob"), "never").await });
    server.wait("a send attempt", |s| !s.sends.is_empty()).await;
    alice.close().await;
    let result = tokio::time::timeout(WAIT, send).await.unwrap().unwrap();
    assert_eq!(result.unwrap_err(), ClientError::Closed);
    wait_for(&mut events, "closed", |e| {
        matches!(e, Event::Connection(ConnectionState::Closed))
    })
    .await;
    assert!(events.recv().await.is_none());
}

#[tokio::test]
async fn send_waits_for_a_connection_when_started_lazily() {
    let server = FakeServer::start().await;
    server.state().refuse_next = 2;
    let (alice, mut events) = Client::connect_lazy(config(&server, "alice")).unwrap();
    let ack = tokio::time::timeout(WAIT, alice.send_text(&user("bob"), "queued"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.seq, 1);
    assert_eq!(texts(&messages(&mut events, 1).await), ["queued"]);
}

// ---- transports -------------------------------------------------------------------------

async fn round_trip(mode: Mode) {
    let server = FakeServer::start_mode(mode).await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (_bob, mut bob_events) = connect(&server, "bob").await;
    alice
        .send_text(&user("bob"), "over the wire")
        .await
        .unwrap();
    assert_eq!(
        texts(&messages(&mut alice_events, 1).await),
        ["over the wire"]
    );
    assert_eq!(
        texts(&messages(&mut bob_events, 1).await),
        ["over the wire"]
    );
}

#[tokio::test]
async fn tls_round_trip() {
    round_trip(Mode::Tls).await;
}

#[tokio::test]
async fn websocket_round_trip() {
    round_trip(Mode::Ws).await;
}

#[tokio::test]
async fn secure_websocket_round_trip() {
    round_trip(Mode::Wss).await;
}

#[tokio::test]
async fn tls_with_untrusted_certificate_fails_to_connect() {
    let server = FakeServer::start_mode(Mode::Tls).await;
    let c = ClientConfig::new(server.url(), "alice").with_connect_timeout(Duration::from_secs(5));
    let err = Client::connect(c).await.unwrap_err();
    assert!(matches!(err, ClientError::Connection(_)), "{err:?}");
}
