//! Live rooms end to end over the protocol: reliable delivery with retransmission and
//! recovery after a reconnect, batching, the member list, moderation and upstream controls.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use magpie_proto::pb::{self, ErrorCode, Priority, room_moderate::Action, room_request::Op};
use magpie_testkit::room_client::RoomClient;
use magpie_testkit::{TestServer, Transport};

async fn member(server: &TestServer, user: &str, device: &str, auto_ack: bool) -> RoomClient {
    server.add_users("demo", &[user]).await;
    RoomClient::connect(
        server.addr(Transport::Tcp),
        &server.token("demo", user, device),
        auto_ack,
    )
    .await
}

fn code(e: &pb::Error) -> ErrorCode {
    ErrorCode::try_from(e.code).unwrap()
}

fn moderate(user: &str, action: Action) -> Op {
    Op::Moderate(pb::RoomModerate {
        user: user.into(),
        action: Some(action),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_reliable_messages_are_sent_again_until_acknowledged() {
    let server = TestServer::start_with(|c| c.rooms.retransmit_ms = 300).await;
    let mut owner = member(&server, "owner", "d", true).await;
    owner.create("live", pb::RoomSettings::default()).await;
    owner.join("live", 0).await.unwrap();
    let mut quiet = member(&server, "quiet", "d", false).await;
    quiet.join("live", 0).await.unwrap();

    let ack = owner
        .say("live", "gift", Priority::Default, "")
        .await
        .unwrap();
    assert_eq!((ack.seq, ack.priority), (1, Priority::High as i32));
    // Not acknowledged: it comes again.
    assert!(
        quiet
            .wait_for(Duration::from_secs(5), |l| l.reliable_seqs("live").len()
                >= 2)
            .await,
        "no retransmission"
    );
    quiet.ack("live").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_ack = quiet.log.lock().reliable_seqs("live").len();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        quiet.log.lock().reliable_seqs("live").len(),
        after_ack,
        "retransmitted after the ack"
    );
    // The acknowledging member got it exactly once.
    assert_eq!(owner.log.lock().reliable_seqs("live"), vec![1]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_reconnects_during_a_burst_recovers_every_reliable_message_once() {
    let server = TestServer::start().await;
    let mut owner = member(&server, "owner", "d", true).await;
    owner.create("burst", pb::RoomSettings::default()).await;
    owner.join("burst", 0).await.unwrap();
    let mut m = member(&server, "viewer", "phone", true).await;
    m.join("burst", 0).await.unwrap();

    let total = 60u64;
    let sender = tokio::spawn(async move {
        for i in 1..=total {
            let a = owner
                .say(
                    "burst",
                    &format!("notice {i}"),
                    Priority::High,
                    &format!("n{i}"),
                )
                .await
                .unwrap();
            assert_eq!(a.seq, i);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        owner
    });
    // Drop the connection mid-burst, stay away a while, come back.
    assert!(
        m.wait_for(Duration::from_secs(5), |l| l
            .contiguous
            .get("burst")
            .copied()
            .unwrap_or(0)
            >= 10)
            .await
    );
    // What the device had when its connection died is what it asks after.
    let log = m.log.clone();
    drop(m);
    let (had, mut seen) = {
        let l = log.lock();
        (l.contiguous["burst"], l.reliable_seqs("burst"))
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = member(&server, "viewer", "phone", true).await;
    let r = again.join("burst", had).await.unwrap();
    assert!(!r.gap);
    let owner = sender.await.unwrap();
    assert!(
        again
            .wait_for(Duration::from_secs(5), |l| l.contiguous["burst"] == total)
            .await,
        "missing reliable messages after the reconnect"
    );
    seen.extend(again.log.lock().reliable_seqs("burst"));
    // Recovered: every seq, and (with acks flowing) none twice.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (1..=total).collect::<Vec<_>>());
    assert_eq!(seen.len() as u64, total, "duplicates: {seen:?}");
    drop(owner);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_messages_are_batched_and_late_joiners_fetch_recent_reliable_ones() {
    let server = TestServer::start_with(|c| c.rooms.batch_window_ms = 100).await;
    let mut owner = member(&server, "owner", "d", true).await;
    owner
        .create(
            "b",
            pb::RoomSettings {
                budget_per_s: Some(10_000),
                ..Default::default()
            },
        )
        .await;
    owner.join("b", 0).await.unwrap();
    let mut viewer = member(&server, "viewer", "d", true).await;
    viewer.join("b", 0).await.unwrap();
    for i in 0..100 {
        let p = if i % 10 == 0 {
            Priority::High
        } else {
            Priority::Normal
        };
        owner.say("b", &format!("m{i}"), p, "").await.unwrap();
    }
    assert!(
        viewer
            .wait_for(Duration::from_secs(5), |l| l.messages.len() == 100)
            .await
    );
    {
        let log = viewer.log.lock();
        assert!(
            log.batches < 100,
            "{} batches for 100 messages",
            log.batches
        );
        // One order for everyone: the order the room accepted them.
        let texts: Vec<_> = log
            .messages
            .iter()
            .map(|r| r.msg.content.as_ref().unwrap().body.clone())
            .collect();
        let expected: Vec<_> = (0..100)
            .map(|i| bytes::Bytes::from(format!("m{i}")))
            .collect();
        assert_eq!(texts, expected);
    }
    // A late joiner fetches the recent reliable ones.
    let mut late = member(&server, "late", "d", true).await;
    let j = late.join("b", 0).await.unwrap();
    assert_eq!(j.info.unwrap().last_seq, 10);
    let f = late
        .room(
            "b",
            Op::Fetch(pb::FetchRoom {
                since_seq: 5,
                limit: 100,
            }),
        )
        .await
        .unwrap();
    let seqs: Vec<u64> = f.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![6, 7, 8, 9, 10]);
    // A retried reliable send is answered with the first one.
    let a = owner.say("b", "x", Priority::High, "same").await.unwrap();
    let b = owner.say("b", "x", Priority::High, "same").await.unwrap();
    assert_eq!((b.seq, b.msg_id, b.duplicate), (a.seq, a.msg_id, true));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_count_and_member_pages() {
    let server = TestServer::start().await;
    let mut owner = member(&server, "owner", "d", true).await;
    owner.create("p", pb::RoomSettings::default()).await;
    owner.join("p", 0).await.unwrap();
    let mut a1 = member(&server, "ann", "d1", true).await;
    let mut a2 = member(&server, "ann", "d2", true).await;
    let mut b = member(&server, "ben", "d", true).await;
    for c in [&mut a1, &mut a2, &mut b] {
        c.join("p", 0).await.unwrap();
    }
    let info = owner
        .room("p", Op::Get(pb::Empty {}))
        .await
        .unwrap()
        .info
        .unwrap();
    assert_eq!((info.online, info.connections), (3, 4));
    let page = owner
        .room(
            "p",
            Op::Members(pb::RoomMembersPage {
                after: String::new(),
                limit: 2,
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (page.users.clone(), page.has_more),
        (vec!["ann".to_owned(), "ben".to_owned()], true)
    );
    let page = owner
        .room(
            "p",
            Op::Members(pb::RoomMembersPage {
                after: "ben".into(),
                limit: 2,
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (page.users, page.has_more),
        (vec!["owner".to_owned()], false)
    );
    // Leaving and disconnecting both end presence.
    b.room("p", Op::Leave(pb::Empty {})).await.unwrap();
    drop(a2);
    let mut left = false;
    for _ in 0..100 {
        let i = owner
            .room("p", Op::Get(pb::Empty {}))
            .await
            .unwrap()
            .info
            .unwrap();
        if (i.online, i.connections) == (2, 2) {
            left = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(left, "presence did not follow the leave and the disconnect");
    drop(a1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_ban_mute_slow_mode_and_rate_limits_are_enforced() {
    let server = TestServer::start().await;
    let mut owner = member(&server, "owner", "d", true).await;
    owner.create("m", pb::RoomSettings::default()).await;
    owner.join("m", 0).await.unwrap();
    let mut bob = member(&server, "bob", "d", true).await;
    bob.join("m", 0).await.unwrap();
    let mut carl = member(&server, "carl", "d", true).await;
    carl.join("m", 0).await.unwrap();

    // Members may not use HIGH unless the room allows it; they default to NORMAL.
    let e = bob.say("m", "gift", Priority::High, "").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    let a = bob.say("m", "hi", Priority::Default, "").await.unwrap();
    assert_eq!((a.priority, a.seq), (Priority::Normal as i32, 0));
    // Only admins moderate.
    assert_eq!(
        bob.room("m", moderate("carl", Action::Kick(pb::Empty {})))
            .await
            .unwrap_err(),
        ErrorCode::Forbidden
    );

    // Kick: removed (told so), may not send, may join again.
    owner
        .room("m", moderate("bob", Action::Kick(pb::Empty {})))
        .await
        .unwrap();
    assert!(
        bob.wait_for(Duration::from_secs(5), |l| l
            .notices
            .iter()
            .any(|n| n.kind == "kicked"))
            .await
    );
    let e = bob
        .say("m", "still here?", Priority::Normal, "")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::Forbidden);
    bob.join("m", 0).await.unwrap();
    bob.say("m", "back", Priority::Normal, "").await.unwrap();

    // Mute for a while: refused with MUTED; unmute lifts it.
    owner
        .room("m", moderate("bob", Action::MuteMs(60_000)))
        .await
        .unwrap();
    let e = bob.say("m", "x", Priority::Normal, "").await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::Muted);
    owner
        .room("m", moderate("bob", Action::MuteMs(0)))
        .await
        .unwrap();
    bob.say("m", "y", Priority::Normal, "").await.unwrap();

    // Mute all: members refused, admins still speak.
    let set = |s: pb::RoomSettings| Op::Settings(s);
    owner
        .room(
            "m",
            set(pb::RoomSettings {
                mute_all: Some(true),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&carl.say("m", "x", Priority::Normal, "").await.unwrap_err()),
        ErrorCode::Muted
    );
    owner
        .say("m", "admins speak", Priority::High, "")
        .await
        .unwrap();
    owner
        .room(
            "m",
            set(pb::RoomSettings {
                mute_all: Some(false),
                slow_mode_ms: Some(5_000),
                ..Default::default()
            }),
        )
        .await
        .unwrap();

    // Slow mode: a second message within the interval waits; admins are exempt.
    carl.say("m", "one", Priority::Normal, "").await.unwrap();
    let e = carl
        .say("m", "two", Priority::Normal, "")
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::SlowMode);
    assert!(e.retry_after_ms > 0 && e.retry_after_ms <= 5_000, "{e:?}");
    owner.say("m", "a", Priority::Normal, "").await.unwrap();
    owner.say("m", "b", Priority::Normal, "").await.unwrap();

    // Room-wide send rate.
    owner
        .room(
            "m",
            set(pb::RoomSettings {
                slow_mode_ms: Some(0),
                send_rate_per_s: Some(3),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut limited = None;
    for i in 0..20 {
        if let Err(e) = owner.say("m", &format!("r{i}"), Priority::Normal, "").await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("the room's send rate was never enforced");
    assert_eq!(code(&e), ErrorCode::RateLimited);
    assert!(e.retry_after_ms > 0);

    // Ban: removed, told, and refused on every later join until unbanned.
    owner
        .room("m", moderate("carl", Action::Ban(pb::Empty {})))
        .await
        .unwrap();
    assert!(
        carl.wait_for(Duration::from_secs(5), |l| l
            .notices
            .iter()
            .any(|n| n.kind == "banned"))
            .await
    );
    assert_eq!(carl.join("m", 0).await.unwrap_err(), ErrorCode::Banned);
    let mut carl2 = member(&server, "carl", "other-device", true).await;
    assert_eq!(carl2.join("m", 0).await.unwrap_err(), ErrorCode::Banned);
    owner
        .room("m", moderate("carl", Action::Unban(pb::Empty {})))
        .await
        .unwrap();
    carl2.join("m", 0).await.unwrap();

    // The ban outlives a restart of the server (it is stored).
    owner
        .room("m", moderate("carl", Action::Ban(pb::Empty {})))
        .await
        .unwrap();
    drop((owner, bob, carl, carl2));
    let mut server = server;
    server.restart().await;
    let mut carl = member(&server, "carl", "d", true).await;
    assert_eq!(carl.join("m", 0).await.unwrap_err(), ErrorCode::Banned);

    // Close: members told and removed; nobody joins again.
    let mut owner = member(&server, "owner", "d", true).await;
    let mut dan = member(&server, "dan", "d", true).await;
    dan.join("m", 0).await.unwrap();
    owner.room("m", Op::Close(pb::Empty {})).await.unwrap();
    assert!(
        dan.wait_for(Duration::from_secs(5), |l| l
            .notices
            .iter()
            .any(|n| n.kind == "closed"))
            .await
    );
    assert_eq!(dan.join("m", 0).await.unwrap_err(), ErrorCode::NotFound);
    server.shutdown().await;
}
