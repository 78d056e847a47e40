//! Live rooms against the fake server: HIGH messages once and in order through duplicates
//! and reordering, acks, the rejoin after a reconnect, gap fetches, HIGH sends retried under
//! one client message id, best-effort sends, notices and refusals.

use std::time::Duration;

use magpie_client::{
    ClientError, Content, ErrorCode, Event, Events, NewRoom, Priority, RoomId, RoomMessage,
    RoomNoticeKind, RoomSendOptions,
};
use magpie_proto::pb;

use super::support::{FakeServer, WAIT};
use super::{connect, user, wait_for};

fn room(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

/// The next `n` room messages (skipping other events); panics on a gap.
async fn room_messages(events: &mut Events, n: usize) -> Vec<RoomMessage> {
    let mut out = Vec::new();
    let run = async {
        while out.len() < n {
            match events.recv().await {
                Some(Event::Room(m)) => out.push(m),
                Some(e @ Event::RoomGap { .. }) => panic!("unexpected {e:?}"),
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    };
    if tokio::time::timeout(WAIT, run).await.is_err() {
        panic!("timed out waiting for {n} room messages; got {out:#?}");
    }
    out
}

/// Each message as (seq, text).
fn keyed(ms: &[RoomMessage]) -> Vec<(Option<u64>, &str)> {
    ms.iter().map(|m| (m.seq, m.text().unwrap())).collect()
}

fn high() -> RoomSendOptions {
    RoomSendOptions::default().priority(Priority::High)
}

#[tokio::test]
async fn high_room_messages_arrive_once_in_order_are_acked_and_recovered_after_reconnect() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    let live = room("live");
    let info = alice
        .create_room(NewRoom::named("Live").with_id(live.clone()))
        .await
        .unwrap();
    assert_eq!(
        (info.room.clone(), info.owner.clone()),
        (live.clone(), Some(user("alice")))
    );
    assert_eq!(info.settings.budget_per_s, 50);
    let joined = alice.join_room(&live).await.unwrap();
    assert_eq!(joined.info.last_seq, 0);
    assert!(joined.missed.is_empty() && !joined.gap);
    assert_eq!(server.room_joins("alice", "live"), [0]);

    let m: Vec<pb::RoomMessage> = (1..=4)
        .map(|i| server.room_store("live", "bob", &format!("gift {i}"), true))
        .collect();
    let chat = server.room_store("live", "bob", "hi", false);
    // 1 and 2; then a retransmitted 2, a chat message and an early 4; then 3.
    server.room_batch("alice", "live", vec![m[0].clone(), m[1].clone()]);
    server.room_batch("alice", "live", vec![m[1].clone(), chat, m[3].clone()]);
    server.room_batch("alice", "live", vec![m[2].clone()]);
    let got = room_messages(&mut events, 5).await;
    assert_eq!(
        keyed(&got),
        [
            (Some(1), "gift 1"),
            (Some(2), "gift 2"),
            // Best effort: not held behind the gap.
            (None, "hi"),
            (Some(3), "gift 3"),
            (Some(4), "gift 4"),
        ]
    );
    assert_eq!(got[0].room, live);
    assert_eq!(got[0].from, user("bob"));
    assert_eq!(got[0].priority, Priority::High);
    assert_eq!(got[2].priority, Priority::Normal);
    server
        .wait("alice acked 4", |s| {
            s.room_acks.contains(&("alice".into(), "live".into(), 4))
        })
        .await;
    let acks = server.room_acks("alice", "live");
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "cumulative: {acks:?}"
    );
    assert!(acks.contains(&2), "the first batch was acked: {acks:?}");

    // 5 is accepted while the connection is down: its batch is lost with it.
    let m5 = server.room_store("live", "bob", "gift 5", true);
    server.kick("alice");
    let got = room_messages(&mut events, 1).await;
    assert_eq!(keyed(&got), [(Some(5), "gift 5")]);
    assert_eq!(
        server.room_joins("alice", "live"),
        [0, 4],
        "rejoined after what it had"
    );
    server
        .wait("alice acked 5", |s| {
            s.room_acks.contains(&("alice".into(), "live".into(), 5))
        })
        .await;

    // A late retransmission of 5 on the new connection is a duplicate.
    let m6 = server.room_store("live", "bob", "gift 6", true);
    server.room_batch("alice", "live", vec![m5, m6]);
    let got = room_messages(&mut events, 1).await;
    assert_eq!(keyed(&got), [(Some(6), "gift 6")]);

    // Another client joining after a seq gets what followed it, in order, once.
    let (carol, mut carol_events) = connect(&server, "carol").await;
    let joined = carol.join_room_since(&live, 4).await.unwrap();
    assert_eq!(
        keyed(&joined.missed),
        [(Some(5), "gift 5"), (Some(6), "gift 6")]
    );
    let got = room_messages(&mut carol_events, 2).await;
    assert_eq!(got, joined.missed, "delivered as events too");
    let page = carol.room_members(&live, None, 10).await.unwrap();
    assert_eq!(page.users, [user("alice"), user("carol")]);
    let fetched = carol.fetch_room(&live, 5, 10).await.unwrap();
    assert_eq!(keyed(&fetched.messages), [(Some(6), "gift 6")]);
    assert_eq!(fetched.info.unwrap().last_seq, 6);

    // After leaving, the room's messages stop and a reconnect does not rejoin it.
    alice.leave_room(&live).await.unwrap();
    let m7 = server.room_store("live", "bob", "gift 7", true);
    server.room_batch("alice", "live", vec![m7]);
    server.kick("alice");
    let mut seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    seen.extend(std::iter::from_fn(|| events.try_recv()));
    assert!(
        seen.iter().all(|e| !matches!(e, Event::Room(_))),
        "{seen:#?}"
    );
    assert_eq!(server.room_joins("alice", "live"), [0, 4]);
}

#[tokio::test]
async fn a_gap_retransmissions_leave_open_is_fetched_and_lost_seqs_are_reported() {
    let server = FakeServer::start().await;
    server.create_room("live", "bob");
    let (alice, mut events) = connect(&server, "alice").await;
    alice.join_room(&room("live")).await.unwrap();
    let m: Vec<pb::RoomMessage> = (1..=4)
        .map(|i| server.room_store("live", "bob", &format!("gift {i}"), true))
        .collect();
    server.room_evict("live", 2);
    server.room_batch("alice", "live", vec![m[0].clone(), m[2].clone()]);
    // 2 never comes again and is no longer in the log; 4 is, but was never sent.
    let seen = wait_for(
        &mut events,
        "gift 4",
        |e| matches!(e, Event::Room(m) if m.seq == Some(4)),
    )
    .await;
    let got: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Room(m) => Some(format!("{}", m.seq.unwrap())),
            Event::RoomGap {
                from_seq, to_seq, ..
            } => Some(format!("gap {from_seq}-{to_seq}")),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["1", "gap 2-2", "3", "4"]);
    assert_eq!(
        server.state().room_fetches,
        [("alice".into(), "live".into(), 1)]
    );
    server
        .wait("alice acked 4", |s| {
            s.room_acks.contains(&("alice".into(), "live".into(), 4))
        })
        .await;
}

#[tokio::test]
async fn high_sends_are_retried_under_one_id_and_best_effort_ones_are_not() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    let live = room("live");
    server.create_room("live", "alice");

    let err = alice
        .send_room(&live, Content::text("too early"), high())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "not joined");
    alice.join_room(&live).await.unwrap();

    // Cut before the ack: resent under the same id after the reconnect (and the rejoin).
    server.state().cut_next_room_ack = true;
    let ack = alice
        .send_room(&live, Content::text("gift"), high())
        .await
        .unwrap();
    assert!(ack.duplicate, "the original ack");
    assert_eq!((ack.seq, ack.priority), (Some(1), Priority::High));
    let sends = server.state().room_sends.clone();
    assert_eq!(sends.len(), 3);
    assert_eq!(sends[1], sends[2], "same client_msg_id");
    assert_eq!(sends[1].1, ack.client_msg_id.as_str());
    // Its batch was lost with the connection; the rejoin (from 0) left a gap, fetched.
    let got = room_messages(&mut events, 1).await;
    assert_eq!(keyed(&got), [(Some(1), "gift")]);
    assert!(
        server
            .state()
            .room_fetches
            .contains(&("alice".into(), "live".into(), 0))
    );

    // UNAVAILABLE is retried for HIGH.
    server.state().fail_next_room_sends = vec![pb::ErrorCode::Unavailable];
    let ack = alice
        .send_room(&live, Content::text("gift 2"), high())
        .await
        .unwrap();
    assert_eq!((ack.seq, ack.duplicate), (Some(2), false));
    assert_eq!(
        keyed(&room_messages(&mut events, 1).await),
        [(Some(2), "gift 2")]
    );

    // Slow mode says when to come back.
    server.state().fail_next_room_sends = vec![pb::ErrorCode::SlowMode];
    let err = alice
        .send_room(&live, Content::text("chat"), RoomSendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SlowMode));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));

    // Best effort: a cut connection fails the send instead of repeating it.
    let before = server.state().room_sends.len();
    server.state().cut_next_room_ack = true;
    let options = RoomSendOptions::default().priority(Priority::Low);
    let err = alice
        .send_room(&live, Content::text("like"), options)
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::Interrupted);
    assert_eq!(server.state().room_sends.len(), before + 1);

    let ack = alice.send_room_text(&live, "hello").await.unwrap();
    assert_eq!((ack.seq, ack.priority), (None, Priority::Normal));
    let got = room_messages(&mut events, 1).await;
    assert_eq!(keyed(&got), [(None, "hello")]);
}

#[tokio::test]
async fn kicks_bans_and_closes_remove_the_user_and_are_not_undone_by_a_reconnect() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    let live = room("live");
    bob.create_room(NewRoom::named("Live").with_id(live.clone()))
        .await
        .unwrap();
    alice.join_room(&live).await.unwrap();

    bob.kick_from_room(&live, &user("alice")).await.unwrap();
    let seen = wait_for(&mut events, "kicked", |e| {
        matches!(e, Event::RoomNotice { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&Event::RoomNotice {
            room: live.clone(),
            kind: RoomNoticeKind::Kicked,
            by: Some(user("bob")),
            until_ms: None,
        })
    );
    server.kick("alice");
    wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    assert_eq!(
        server.room_joins("alice", "live"),
        [0],
        "no rejoin after a kick"
    );

    alice.join_room(&live).await.unwrap();
    bob.ban_from_room(&live, &user("alice")).await.unwrap();
    wait_for(&mut events, "banned", |e| {
        matches!(
            e,
            Event::RoomNotice {
                kind: RoomNoticeKind::Banned,
                ..
            }
        )
    })
    .await;
    let err = alice.join_room(&live).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Banned));
    bob.unban_from_room(&live, &user("alice")).await.unwrap();
    alice.join_room(&live).await.unwrap();

    let err = alice.close_room(&live).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "not the owner");
    bob.close_room(&live).await.unwrap();
    wait_for(&mut events, "closed", |e| {
        matches!(
            e,
            Event::RoomNotice {
                kind: RoomNoticeKind::Closed,
                ..
            }
        )
    })
    .await;
    let err = alice.join_room(&live).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let info = bob.room_info(&live).await.unwrap();
    assert!(info.closed);
}
