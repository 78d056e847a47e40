//! Message operations (recall, edit, react, delete for me), typing, presence, profiles,
//! friends and blocks, against the fake server.

use magpie_client::{
    ClientError, ConnectionState, Content, ErrorCode, Event, Events, OpAck, ProfileUpdate,
    SocialKind, UserPresence,
};
use magpie_proto::{Body, pb};

use super::support::{FakeServer, WAIT};
use super::{connect, conv, messages, seqs, user, wait_for};

/// The next event that `pick` accepts (skipping others).
async fn next<T>(events: &mut Events, what: &str, pick: impl Fn(Event) -> Option<T>) -> T {
    let run = async {
        loop {
            match events.recv().await {
                Some(e) => {
                    if let Some(t) = pick(e) {
                        return t;
                    }
                }
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    };
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn is_op_event(e: &Event) -> bool {
    matches!(
        e,
        Event::Recalled { .. } | Event::Edited { .. } | Event::Reaction { .. }
    )
}

#[tokio::test]
async fn recall_edit_and_react_arrive_as_their_events_and_never_count_as_unread() {
    let server = FakeServer::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;
    let c = conv("alice", "bob");

    bob.send_text(&user("alice"), "oops").await.unwrap();
    assert_eq!(seqs(&messages(&mut alice_events, 1).await), [1]);
    let ack = bob.recall(&c, 1).await.unwrap();
    assert_eq!((ack.target, ack.seq, ack.duplicate), (1, 2, false));

    let recalled = Event::Recalled {
        conversation: c.clone(),
        seq: 1,
        by: user("bob"),
        entry_seq: 2,
    };
    for events in [&mut alice_events, &mut bob_events] {
        let seen = wait_for(events, "the recall", is_op_event).await;
        assert_eq!(seen.last(), Some(&recalled));
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, Event::Message(m) if m.seq == 2)),
            "no message for the recall entry: {seen:#?}"
        );
    }
    let info = alice.conversation(&c).unwrap();
    assert_eq!(
        (info.unread, info.last_seq),
        (1, 2),
        "the recall is no unread"
    );
    let last = info.last_message.unwrap();
    assert!(last.recalled && last.content.body.is_empty());
    assert_eq!(alice.total_unread(), 1);
    assert_eq!(
        alice.cursors().await.unwrap()[&c],
        2,
        "the cursor moved past it"
    );

    // Edit and react: their own events, still no unread.
    bob.send_text(&user("alice"), "helo").await.unwrap();
    bob.edit(&c, 3, Content::text("hello")).await.unwrap();
    let edited = next(&mut alice_events, "the edit", |e| match e {
        Event::Edited {
            seq,
            content,
            entry_seq,
            ..
        } => Some((seq, content, entry_seq)),
        _ => None,
    })
    .await;
    assert_eq!(edited, (3, Content::text("hello"), 4));
    alice.react(&c, 3, "👍", true).await.unwrap();
    let reaction = next(&mut bob_events, "alice's reaction", |e| match e {
        Event::Reaction {
            seq,
            user,
            emoji,
            add,
            entry_seq,
            ..
        } => Some((seq, user, emoji, add, entry_seq)),
        _ => None,
    })
    .await;
    assert_eq!(reaction, (3, user("alice"), "👍".to_owned(), true, 5));
    let own = next(&mut alice_events, "alice's own reaction", |e| match e {
        Event::Reaction { user, .. } => Some(user),
        _ => None,
    })
    .await;
    assert_eq!(
        own,
        user("alice"),
        "the sender's own op is delivered from its ack"
    );
    let info = alice.conversation(&c).unwrap();
    assert_eq!(info.unread, 2, "two messages from bob, no op entries");
    let last = info.last_message.unwrap();
    assert_eq!(
        (last.seq, last.text(), last.edited),
        (3, Some("hello"), true)
    );

    // History serves the targets marked, and the op entries with their kind.
    let page = alice.history(&c, 0, 10).await.unwrap();
    let recalled_msg = page.messages.iter().find(|m| m.seq == 1).unwrap();
    assert!(recalled_msg.recalled);
    let edit_entry = page.messages.iter().find(|m| m.seq == 4).unwrap();
    assert_eq!(edit_entry.target, Some(3));
    assert!(matches!(
        edit_entry.op_event(),
        Some(Event::Edited { seq: 3, .. })
    ));
}

#[tokio::test]
async fn an_op_cut_before_its_answer_is_retried_after_reconnect_and_applied_once() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    let c = conv("alice", "bob");
    alice.send_text(&user("bob"), "hi").await.unwrap();
    messages(&mut events, 1).await;
    server.state().cut_next_ack = true;

    let client = alice.clone();
    let c2 = c.clone();
    let op = tokio::spawn(async move { client.react(&c2, 1, "🎉", true).await });
    let mut seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    let ack: OpAck = tokio::time::timeout(WAIT, op)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((ack.seq, ack.target), (2, 1));
    assert!(ack.duplicate, "the original answer to the retry");

    let ops = server.state().ops.clone();
    assert_eq!(ops.len(), 2, "written, then retried once: {ops:?}");
    assert_eq!(ops[0], ops[1], "under the same client message id");
    assert_eq!(ops[0].1, ack.client_msg_id.as_str());
    let log = server.state().logs[c.as_str()].clone();
    assert_eq!(log.len(), 2, "stored once");

    // Exactly one reaction event, and the next message follows it.
    alice.send_text(&user("bob"), "after").await.unwrap();
    seen.extend(
        wait_for(
            &mut events,
            "the next message",
            |e| matches!(e, Event::Message(m) if m.seq == 3),
        )
        .await,
    );
    let reactions = seen
        .iter()
        .filter(|e| matches!(e, Event::Reaction { entry_seq: 2, .. }))
        .count();
    assert_eq!(reactions, 1, "{seen:#?}");
}

#[tokio::test]
async fn definite_refusals_of_ops_and_blocked_sends_are_not_retried() {
    let server = FakeServer::start().await;
    let (alice, _events) = connect(&server, "alice").await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    let c = conv("alice", "bob");
    alice.send_text(&user("bob"), "old").await.unwrap();

    server.state().fail_next_sends = vec![pb::ErrorCode::WindowClosed];
    let err = alice.recall(&c, 1).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::WindowClosed));
    assert_eq!(server.state().ops.len(), 1, "not retried");

    server.state().fail_next_sends = vec![pb::ErrorCode::Unavailable];
    let ack = alice.recall(&c, 1).await.unwrap();
    assert_eq!(ack.seq, 2);
    assert_eq!(server.state().ops.len(), 3, "a transient error is retried");

    let err = bob.recall(&c, 1).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden), "not the sender");

    bob.block(&user("alice"), true).await.unwrap();
    assert_eq!(bob.blocked().await.unwrap(), [user("alice")]);
    let err = alice.send_text(&user("bob"), "hello?").await.unwrap_err();
    assert!(matches!(
        err,
        ClientError::Rejected {
            code: ErrorCode::Blocked,
            ..
        }
    ));
    bob.block(&user("alice"), false).await.unwrap();
    alice.send_text(&user("bob"), "hello!").await.unwrap();
}

#[tokio::test]
async fn delete_for_me_updates_this_device_and_reaches_the_others() {
    let server = FakeServer::start().await;
    let (phone, mut phone_events) = connect(&server, "alice/phone").await;
    let (_laptop, mut laptop_events) = connect(&server, "alice/laptop").await;
    let (bob, _bob_events) = connect(&server, "bob").await;
    let c = conv("alice", "bob");
    bob.send_text(&user("alice"), "one").await.unwrap();
    bob.send_text(&user("alice"), "two").await.unwrap();
    messages(&mut phone_events, 2).await;
    messages(&mut laptop_events, 2).await;
    assert_eq!(phone.conversation(&c).unwrap().unread, 2);

    assert_eq!(phone.delete_for_me(&c, &[2]).await.unwrap(), [2]);
    let info = phone.conversation(&c).unwrap();
    assert_eq!(info.unread, 1, "updated before the call returned");
    assert_eq!(info.last_message, None, "the deleted preview is gone");
    let deleted = next(&mut laptop_events, "the deletion", |e| match e {
        Event::MessagesDeleted { conversation, seqs } => Some((conversation, seqs)),
        _ => None,
    })
    .await;
    assert_eq!(deleted, (c.clone(), vec![2]));
    assert_eq!(
        phone.delete_for_me(&c, &[]).await.unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(server.state().deletes.len(), 1, "nothing asked for nothing");
}

#[tokio::test]
async fn typing_and_presence_notices_become_events() {
    let server = FakeServer::start().await;
    let (alice, _alice_events) = connect(&server, "alice").await;
    let (_bob, mut bob_events) = connect(&server, "bob").await;
    let c = conv("alice", "bob");

    alice.typing(&c, true).await.unwrap();
    let typing = next(&mut bob_events, "typing", |e| match e {
        Event::Typing {
            conversation,
            user,
            typing,
        } => Some((conversation, user, typing)),
        _ => None,
    })
    .await;
    assert_eq!(typing, (c.clone(), user("alice"), true));
    assert_eq!(server.state().typing.len(), 1);

    server.notify(
        "bob",
        Body::PresenceNotice(pb::PresenceNotice {
            presence: Some(pb::UserPresence {
                user: "alice".into(),
                online: false,
                last_seen_ms: 123,
            }),
        }),
    );
    let presence = next(&mut bob_events, "presence", |e| match e {
        Event::Presence(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(
        (presence.user, presence.online, presence.last_seen),
        (user("alice"), false, Some(123))
    );
}

#[tokio::test]
async fn typing_while_disconnected_is_dropped_not_queued() {
    let server = FakeServer::start().await;
    server.state().refuse_next = usize::MAX;
    let (alice, mut events) =
        magpie_client::Client::connect_lazy(super::config(&server, "alice")).unwrap();
    alice.typing(&conv("alice", "bob"), true).await.unwrap();
    // Commands are handled in order: once this answers, the typing was handled (while
    // every attempt was refused).
    alice.cursors().await.unwrap();
    server.state().refuse_next = 0;
    wait_for(&mut events, "sync", |e| matches!(e, Event::SyncComplete)).await;
    alice.send_text(&user("bob"), "x").await.unwrap();
    assert!(
        server.state().typing.is_empty(),
        "a stale indicator is never sent"
    );
}

#[tokio::test]
async fn presence_subscription_is_sent_again_after_reconnect() {
    let server = FakeServer::start().await;
    let (alice, mut events) = connect(&server, "alice").await;
    let (_bob, _bob_events) = connect(&server, "bob").await;

    let now = alice
        .subscribe_presence(&[user("bob"), user("carol")])
        .await
        .unwrap();
    let online: Vec<(String, bool)> = now
        .iter()
        .map(|p| (p.user.as_str().to_owned(), p.online))
        .collect();
    assert_eq!(online, [("bob".into(), true), ("carol".into(), false)]);

    server.kick("alice");
    // Presence may have changed meanwhile: everyone's is reported again.
    let mut reported: Vec<UserPresence> = Vec::new();
    while reported.len() < 2 {
        reported.push(
            next(&mut events, "presence after reconnect", |e| match e {
                Event::Presence(p) => Some(p),
                _ => None,
            })
            .await,
        );
    }
    let subs = server.state().presence_subs.clone();
    assert_eq!(subs.len(), 2);
    assert_eq!(
        subs[0], subs[1],
        "the same subscription on the new connection"
    );
    assert_eq!(reported[0].user, user("bob"));
    assert_eq!(reported[1].user, user("carol"));

    // Unsubscribed: nothing to send again.
    assert!(alice.subscribe_presence(&[]).await.unwrap().is_empty());
    server.kick("alice");
    wait_for(&mut events, "disconnect", |e| {
        matches!(e, Event::Connection(ConnectionState::Disconnected { .. }))
    })
    .await;
    wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    // Written after anything the new connection started with.
    alice.send_text(&user("bob"), "sync point").await.unwrap();
    assert_eq!(server.state().presence_subs.len(), 3);
}

#[tokio::test]
async fn profiles_and_friends_round_trip_with_notices() {
    let server = FakeServer::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;

    alice
        .set_profile(ProfileUpdate::default().nickname("Al").avatar_url("a.png"))
        .await
        .unwrap();
    let profiles = bob
        .get_profiles(&[user("alice"), user("zed")])
        .await
        .unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(
        (
            profiles[0].nickname.as_str(),
            profiles[0].avatar_url.as_str()
        ),
        ("Al", "a.png")
    );

    assert!(
        !alice
            .send_friend_request(&user("bob"), "hi bob")
            .await
            .unwrap()
    );
    let request = next(&mut bob_events, "the friend request", |e| match e {
        Event::Social {
            kind,
            user,
            message,
        } => Some((kind, user, message)),
        _ => None,
    })
    .await;
    assert_eq!(
        request,
        (SocialKind::FriendRequest, user("alice"), "hi bob".into())
    );
    assert_eq!(bob.friend_requests().await.unwrap(), [user("alice")]);
    bob.respond_friend(&user("alice"), true).await.unwrap();
    let accepted = next(&mut alice_events, "the acceptance", |e| match e {
        Event::Social { kind, user, .. } => Some((kind, user)),
        _ => None,
    })
    .await;
    assert_eq!(accepted, (SocialKind::FriendAccepted, user("bob")));
    assert_eq!(alice.friends().await.unwrap(), [user("bob")]);

    alice.remove_friend(&user("bob")).await.unwrap();
    let removed = next(&mut bob_events, "the removal", |e| match e {
        Event::Social { kind, .. } => Some(kind),
        _ => None,
    })
    .await;
    assert_eq!(removed, SocialKind::FriendRemoved);
    assert!(bob.friends().await.unwrap().is_empty());
    let err = bob.respond_friend(&user("alice"), true).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
}
