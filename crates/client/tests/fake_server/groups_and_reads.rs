//! Groups, hidden seq ranges, the local conversation list and read positions, against the
//! fake server.

use magpie_client::{
    ConversationSettings, ErrorCode, Event, Events, GroupAction, GroupEvent, GroupId, JoinOutcome,
    NewGroup, SendOptions,
};
use magpie_proto::pb;
use magpie_types::Content;

use super::support::{FakeServer, WAIT};
use super::{connect, conv, messages, seqs, texts, user, wait_for};

fn gid(s: &str) -> GroupId {
    GroupId::new(s).unwrap()
}

/// The next `n` group events (skipping other events).
async fn group_events(events: &mut Events, n: usize) -> Vec<GroupEvent> {
    let mut out = Vec::new();
    let run = async {
        while out.len() < n {
            match events.recv().await {
                Some(Event::GroupEvent(e)) => out.push(e),
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    };
    if tokio::time::timeout(WAIT, run).await.is_err() {
        panic!("timed out waiting for {n} group events; got {out:#?}");
    }
    out
}

fn delivered_seqs(seen: &[Event]) -> Vec<u64> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.seq),
            Event::GroupEvent(g) => Some(g.seq),
            _ => None,
        })
        .collect()
}

/// (conversation, after_seq) of the pulls `who` made.
fn pulls_of(server: &FakeServer, who: &str) -> Vec<(String, u64)> {
    server
        .state()
        .user_pulls
        .iter()
        .filter(|(u, _, _)| u == who)
        .map(|(_, c, a)| (c.clone(), *a))
        .collect()
}

#[tokio::test]
async fn group_send_is_acked_and_reaches_members_with_mentions() {
    let server = FakeServer::start().await;
    let (alice, mut alice_events) = connect(&server, "alice").await;
    let (bob, mut bob_events) = connect(&server, "bob").await;

    let team = alice
        .create_group(
            NewGroup::named("Team")
                .with_id(gid("team"))
                .with_members([user("bob")]),
        )
        .await
        .unwrap();
    assert_eq!(team.id, gid("team"));
    assert_eq!(team.conversation.as_str(), "g:team");
    assert_eq!(team.owner, Some(user("alice")));
    assert_eq!(team.member_count, 2);
    for events in [&mut alice_events, &mut bob_events] {
        let created = group_events(events, 1).await;
        assert_eq!(created[0].action, GroupAction::Create);
        assert_eq!(created[0].seq, 1);
        assert_eq!(created[0].name.as_deref(), Some("Team"));
        assert_eq!(created[0].users, [user("alice"), user("bob")]);
    }

    let options = SendOptions::default().mention(user("bob")).reply_to(1);
    let ack = alice
        .send_with(&team.id, Content::text("hi @bob"), options)
        .await
        .unwrap();
    assert_eq!((ack.conversation.as_str(), ack.seq), ("g:team", 2));
    assert!(!ack.duplicate);
    let mine = messages(&mut alice_events, 1).await;
    let theirs = messages(&mut bob_events, 1).await;
    for got in [&mine, &theirs] {
        assert_eq!(seqs(got), [2]);
        assert_eq!(texts(got), ["hi @bob"]);
        assert_eq!(got[0].from, user("alice"));
        assert_eq!(got[0].mentions, [user("bob")]);
        assert_eq!(got[0].reply_to, Some(1));
    }

    // The conversation list follows: bob has an unread mention, alice has read her own.
    let bobs = bob.conversation(&team.conversation).unwrap();
    assert_eq!((bobs.unread, bobs.mentioned), (1, true));
    assert_eq!(bobs.name.as_deref(), Some("Team"));
    assert!(bobs.active);
    assert_eq!(bobs.last_message.unwrap().seq, 2);
    assert_eq!(bob.total_unread(), 1);
    let alices = alice.conversation(&team.conversation).unwrap();
    assert_eq!((alices.unread, alices.read_seq), (0, 2));

    let ack = alice.send_group_text(&team.id, "second").await.unwrap();
    assert_eq!(ack.seq, 3);
    assert_eq!(texts(&messages(&mut bob_events, 1).await), ["second"]);
    assert_eq!(bob.total_unread(), 2);

    // A non-member is refused, definitely.
    let (carol, _carol_events) = connect(&server, "carol").await;
    let err = carol
        .send_group_text(&team.id, "let me in")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
}

#[tokio::test]
async fn joining_late_and_rejoining_skip_hidden_seqs_without_a_gap() {
    let server = FakeServer::start().await;
    let (alice, _alice_events) = connect(&server, "alice").await;
    let team = alice
        .create_group(NewGroup::named("Team").with_id(gid("team")))
        .await
        .unwrap();
    for text in ["a1", "a2", "a3"] {
        alice.send_group_text(&team.id, text).await.unwrap();
    }

    // Carol joins at seq 5: the push of her join event is a gap from cursor 0, and the pull
    // that fills it names 1..=4 as hidden.
    let (carol, mut events) = connect(&server, "carol").await;
    let joined = carol.join_group(&team.id).await.unwrap();
    assert!(
        matches!(joined, JoinOutcome::Joined { seq: 5, .. }),
        "{joined:?}"
    );
    let seen = wait_for(
        &mut events,
        "the join event",
        |e| matches!(e, Event::GroupEvent(g) if g.seq == 5),
    )
    .await;
    assert_eq!(
        delivered_seqs(&seen),
        [5],
        "nothing before the join is delivered"
    );
    let join = match seen.last() {
        Some(Event::GroupEvent(g)) => g.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(join.action, GroupAction::Join);
    assert_eq!(join.users, [user("carol")]);
    assert_eq!(carol.cursors().await.unwrap()[&team.conversation], 5);
    assert_eq!(
        pulls_of(&server, "carol"),
        [("g:team".to_owned(), 0)],
        "one pull"
    );

    // The next message follows the cursor directly.
    alice.send_group_text(&team.id, "welcome").await.unwrap();
    let got = messages(&mut events, 1).await;
    assert_eq!((seqs(&got), texts(&got)), (vec![6], vec!["welcome"]));

    // Leave at 7 (still delivered), miss 8 and 9, rejoin at 10.
    let left = carol.leave_group(&team.id).await.unwrap();
    assert_eq!(left.seq, Some(7));
    let leave = group_events(&mut events, 1).await;
    assert_eq!((leave[0].seq, &leave[0].action), (7, &GroupAction::Leave));
    for text in ["b1", "b2"] {
        alice.send_group_text(&team.id, text).await.unwrap();
    }
    carol.join_group(&team.id).await.unwrap();
    let seen = wait_for(
        &mut events,
        "the rejoin event",
        |e| matches!(e, Event::GroupEvent(g) if g.seq == 10),
    )
    .await;
    assert_eq!(
        delivered_seqs(&seen),
        [10],
        "8 and 9 are skipped, not delivered"
    );
    assert_eq!(
        pulls_of(&server, "carol"),
        [("g:team".to_owned(), 0), ("g:team".to_owned(), 7)]
    );
    assert_eq!(carol.cursors().await.unwrap()[&team.conversation], 10);
    let info = carol.conversation(&team.conversation).unwrap();
    assert!(info.active);
    assert_eq!(info.unread, 1, "only \"welcome\" is hers to read");

    // A reconnect's sync finds nothing to deliver again.
    server.kick("carol");
    let seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    assert_eq!(delivered_seqs(&seen), Vec::<u64>::new());
    assert_eq!(pulls_of(&server, "carol").len(), 2);
}

#[tokio::test]
async fn read_update_clears_unread_and_read_receipts_reach_the_peer() {
    let server = FakeServer::start().await;
    for text in ["one", "two", "three"] {
        server.store("bob", "alice", text);
    }
    let c = conv("alice", "bob");
    let (alice, mut events) = connect(&server, "alice").await;
    // Listed with 3 unread; the pulls that then delivered 1..=3 did not count them again.
    assert_eq!(alice.conversation(&c).unwrap().unread, 3);
    assert_eq!(alice.total_unread(), 3);

    // Read on another device: the server tells this one.
    server.read_update(
        "alice",
        pb::ReadUpdate {
            conversation: c.as_str().into(),
            user: "alice".into(),
            read_seq: 3,
            unread: 0,
            total_unread: 0,
        },
    );
    let seen = wait_for(&mut events, "badge cleared", |e| {
        matches!(e, Event::TotalUnread(0))
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::ConversationUpdated(i) if i.conversation == c && i.unread == 0 && i.read_seq == 3
    )));
    assert_eq!(alice.total_unread(), 0);

    // Bob writes again; alice reads it; bob gets a receipt.
    let (bob, mut bob_events) = connect(&server, "bob").await;
    bob.send_text(&user("alice"), "four").await.unwrap();
    wait_for(&mut events, "one unread", |e| {
        matches!(e, Event::TotalUnread(1))
    })
    .await;
    let read = alice.mark_read(&c, None).await.unwrap();
    assert_eq!((read.read_seq, read.unread, read.total_unread), (4, 0, 0));
    assert_eq!(alice.total_unread(), 0, "applied before mark_read returns");
    wait_for(&mut bob_events, "read receipt", |e| {
        matches!(
            e,
            Event::ReadReceipt { conversation, user: who, read_seq: 4 }
                if *conversation == c && *who == user("alice")
        )
    })
    .await;
    assert_eq!(bob.conversation(&c).unwrap().peer_read_seq, 4);
}

#[tokio::test]
async fn muting_leaves_the_badge_and_reconnects_list_incrementally() {
    let server = FakeServer::start().await;
    server.store("bob", "alice", "from bob");
    server.store("carol", "alice", "from carol");
    let (alice, mut events) = connect(&server, "alice").await;
    assert_eq!(alice.total_unread(), 2);

    let bob = conv("alice", "bob");
    let settings = ConversationSettings::default().muted(true).pinned(true);
    let info = alice.set_conversation(&bob, settings).await.unwrap();
    assert!(info.muted && info.pinned);
    assert_eq!(info.unread, 1, "muted conversations keep their count");
    assert_eq!(alice.total_unread(), 1, "but leave the badge");
    let order: Vec<_> = alice
        .conversations_snapshot()
        .into_iter()
        .map(|c| c.conversation)
        .collect();
    assert_eq!(order, [bob.clone(), conv("alice", "carol")], "pinned first");

    server.kick("alice");
    let seen = wait_for(&mut events, "resync", |e| matches!(e, Event::SyncComplete)).await;
    assert_eq!(delivered_seqs(&seen), Vec::<u64>::new());
    let since = server.state().list_since.clone();
    assert_eq!(since.len(), 2);
    assert_eq!(since[0], 0, "the first sync lists everything");
    assert!(since[1] > 0, "the next one only what changed: {since:?}");
    assert_eq!(alice.total_unread(), 1);
}
