//! The conversation list's unit tests and the property that the badge is the sum.

#![allow(clippy::unwrap_used)]

use super::*;
use magpie_types::{Content, GroupId};
use proptest::prelude::*;

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn dm() -> ConvId {
    ConvId::direct(&user("me"), &user("bob"))
}

fn group() -> ConvId {
    ConvId::group(&GroupId::new("team").unwrap())
}

fn inbox() -> Inbox {
    let mut i = Inbox::default();
    i.set_me(user("me"));
    i
}

fn msg(conv: &ConvId, seq: Seq, from: &str) -> Message {
    Message {
        conversation: conv.clone(),
        seq,
        msg_id: seq,
        from: user(from),
        from_device: None,
        client_msg_id: None,
        content: Content::text("x"),
        server_time: 1000 + seq,
        kind: EntryKind::Message,
        mentions: Vec::new(),
        mention_all: false,
        reply_to: None,
        target: None,
        recalled: false,
        edited: false,
    }
}

fn listed(conv: &ConvId, last_seq: Seq, read_seq: Seq, unread: u64) -> ConversationInfo {
    let mut c = ConversationInfo::new(conv.clone(), Some(&user("me")));
    c.last_seq = last_seq;
    c.last_time = 1000 + last_seq;
    c.read_seq = read_seq;
    c.unread = unread;
    c
}

fn event(seq: Seq, json: &str) -> GroupEvent {
    let mut m = msg(&group(), seq, "bob");
    m.kind = EntryKind::GroupEvent;
    m.content = Content::text(json);
    GroupEvent::from_message(&m).unwrap()
}

fn op_entry(conv: &ConvId, entry_seq: Seq, target: Seq, op: MessageOp) -> OpEntry {
    OpEntry {
        conversation: conv.clone(),
        entry_seq,
        target,
        by: user("bob"),
        server_time: 2000 + entry_seq,
        op,
    }
}

fn unread(i: &Inbox, conv: &ConvId) -> u64 {
    i.get(conv).unwrap().unread
}

#[test]
fn messages_from_others_count_and_own_messages_read() {
    let mut i = inbox();
    let c = dm();
    assert!(i.on_message(&msg(&c, 1, "bob")).is_some());
    i.on_message(&msg(&c, 2, "bob"));
    assert_eq!(unread(&i, &c), 2);
    assert_eq!(i.total_unread(), 2);
    assert_eq!(i.get(&c).unwrap().peer, Some(user("bob")));
    // A duplicate changes nothing.
    assert!(i.on_message(&msg(&c, 2, "bob")).is_none());
    i.on_message(&msg(&c, 3, "me"));
    let info = i.get(&c).unwrap();
    assert_eq!((info.unread, info.read_seq), (0, 3));
    assert_eq!(info.last_message.unwrap().seq, 3);
    assert_eq!(i.total_unread(), 0);
}

#[test]
fn pulled_messages_below_the_listing_are_not_counted_twice() {
    let mut i = inbox();
    let c = dm();
    i.on_listed(listed(&c, 5, 2, 3));
    assert_eq!(i.total_unread(), 3);
    for seq in 1..=5 {
        i.on_message(&msg(&c, seq, "bob"));
    }
    assert_eq!(
        unread(&i, &c),
        3,
        "seqs 3..=5 were already counted by the listing"
    );
    i.on_message(&msg(&c, 6, "bob"));
    assert_eq!(unread(&i, &c), 4);
    // Read on another device up to 5: the listed part clears, 6 stays.
    assert!(i.on_read(&c, 5, 1).is_some());
    assert_eq!(unread(&i, &c), 1);
    // Positions only move forward.
    assert!(i.on_read(&c, 4, 9).is_none());
    i.on_read(&c, 6, 0);
    assert_eq!(i.total_unread(), 0);
}

#[test]
fn a_read_inside_the_listed_range_takes_the_servers_count() {
    let mut i = inbox();
    let c = dm();
    i.on_listed(listed(&c, 10, 0, 10));
    i.on_message(&msg(&c, 11, "bob"));
    i.on_read(&c, 4, 7);
    assert_eq!(unread(&i, &c), 7, "6 listed after 4, and 11");
}

#[test]
fn a_listing_older_than_local_deliveries_keeps_them() {
    let mut i = inbox();
    let c = dm();
    for seq in 1..=4 {
        i.on_message(&msg(&c, seq, "bob"));
    }
    // Listed when the log ended at 3 (read up to 1); 4 was pushed since.
    let mut l = listed(&c, 3, 1, 2);
    l.pinned = true;
    i.on_listed(l);
    let info = i.get(&c).unwrap();
    assert_eq!(info.unread, 3, "2 listed + seq 4");
    assert_eq!(info.last_seq, 4);
    assert_eq!(info.last_message.unwrap().seq, 4);
    assert!(info.pinned);
}

#[test]
fn mentions_and_mute_and_hidden() {
    let mut i = inbox();
    let g = group();
    let mut m = msg(&g, 1, "bob");
    m.mentions = vec![user("me")];
    i.on_message(&m);
    i.on_message(&msg(&g, 2, "bob"));
    assert!(i.get(&g).unwrap().mentioned);
    i.on_read(&g, 1, 1);
    assert!(!i.get(&g).unwrap().mentioned, "the mention was read");
    let mut l = listed(&g, 2, 1, 1);
    l.muted = true;
    l.hidden = true;
    i.on_listed(l);
    assert_eq!(
        (unread(&i, &g), i.total_unread()),
        (1, 0),
        "muted: not in the badge"
    );
    assert!(i.get(&g).unwrap().hidden);
    i.on_message(&msg(&g, 3, "bob"));
    let info = i.get(&g).unwrap();
    assert!(!info.hidden, "a newer message shows it again");
    assert_eq!((info.unread, i.total_unread()), (2, 0));
}

#[test]
fn group_events_set_membership_and_name_but_never_unread() {
    let mut i = inbox();
    let g = group();
    i.on_group_event(&event(
        1,
        r#"{"action":"create","by":"bob","users":["me"],"name":"T"}"#,
    ));
    let info = i.get(&g).unwrap();
    assert!(info.active && info.is_group());
    assert_eq!(info.name.as_deref(), Some("T"));
    assert_eq!(info.unread, 0);
    i.on_group_event(&event(2, r#"{"action":"kick","by":"bob","users":["me"]}"#));
    assert!(!i.get(&g).unwrap().active);
    i.on_group_event(&event(3, r#"{"action":"update","name":"U"}"#));
    assert_eq!(i.get(&g).unwrap().name.as_deref(), Some("U"));
    assert_eq!(i.get(&g).unwrap().last_seq, 3);
    assert_eq!(i.get(&g).unwrap().last_message, None);
}

#[test]
fn recalls_edits_and_reactions_are_never_unread_and_update_the_preview() {
    let mut i = inbox();
    let c = dm();
    i.on_message(&msg(&c, 1, "bob"));
    let mut l = listed(&c, 1, 0, 1);
    l.hidden = true;
    l.last_message = Some(msg(&c, 1, "bob"));
    i.on_listed(l);
    let react = MessageOp::React {
        emoji: "👍".into(),
        add: true,
    };
    i.on_message_op(&op_entry(&c, 2, 1, react));
    i.on_message_op(&op_entry(&c, 3, 1, MessageOp::Edit(Content::text("fixed"))));
    let info = i.get(&c).unwrap();
    assert_eq!(
        (info.unread, info.last_seq),
        (1, 3),
        "not unread, but counted"
    );
    assert!(info.hidden, "only a message shows the conversation again");
    let last = info.last_message.unwrap();
    assert_eq!(
        (last.seq, last.text(), last.edited),
        (1, Some("fixed"), true)
    );
    assert!(
        i.on_message_op(&op_entry(&c, 4, 1, MessageOp::Recall))
            .is_some()
    );
    let last = i.get(&c).unwrap().last_message.unwrap();
    assert!(last.recalled && last.content.body.is_empty());
    // An edit after the recall does not bring content back; a duplicate changes nothing.
    i.on_message_op(&op_entry(&c, 5, 1, MessageOp::Edit(Content::text("again"))));
    assert!(
        i.get(&c)
            .unwrap()
            .last_message
            .unwrap()
            .content
            .body
            .is_empty()
    );
    assert!(
        i.on_message_op(&op_entry(&c, 5, 1, MessageOp::Recall))
            .is_none()
    );
    // An operation on an older message leaves the preview alone.
    i.on_message(&msg(&c, 6, "bob"));
    i.on_message_op(&op_entry(&c, 7, 1, MessageOp::Recall));
    let info = i.get(&c).unwrap();
    assert_eq!(info.last_message.unwrap().seq, 6);
    assert_eq!(info.unread, 2);
}

#[test]
fn deleted_messages_leave_the_unread_count_and_the_preview() {
    let mut i = inbox();
    let c = dm();
    for seq in 1..=3 {
        i.on_message(&msg(&c, seq, "bob"));
    }
    assert!(i.on_deleted(&c, &[2]).is_some());
    let info = i.get(&c).unwrap();
    assert_eq!(info.unread, 2);
    assert_eq!(info.last_message.unwrap().seq, 3);
    i.on_deleted(&c, &[3]);
    let info = i.get(&c).unwrap();
    assert_eq!((info.unread, i.total_unread()), (1, 1));
    assert_eq!(info.last_message, None, "unknown until the next listing");
    assert!(
        i.on_deleted(&dm_with("zed"), &[1]).is_none(),
        "unknown: ignored"
    );
}

fn dm_with(peer: &str) -> ConvId {
    ConvId::direct(&user("me"), &user(peer))
}

#[test]
fn peer_reads_and_unknown_conversations() {
    let mut i = inbox();
    let c = dm();
    assert!(
        i.on_read(&c, 3, 0).is_none(),
        "unknown: left to the next sync"
    );
    assert!(i.on_peer_read(&c, 3).is_none());
    i.on_message(&msg(&c, 1, "me"));
    assert_eq!(i.on_peer_read(&c, 1).unwrap().peer_read_seq, 1);
    assert!(i.on_peer_read(&c, 1).is_none(), "no change");
}

#[test]
fn snapshot_puts_pinned_first_then_newest() {
    let mut i = inbox();
    let a = ConvId::direct(&user("me"), &user("a"));
    let b = ConvId::direct(&user("me"), &user("b"));
    let c = ConvId::direct(&user("me"), &user("c"));
    i.on_message(&msg(&a, 1, "a"));
    i.on_message(&msg(&b, 5, "b"));
    let mut l = listed(&c, 1, 0, 1);
    l.pinned = true;
    i.on_listed(l);
    let order: Vec<ConvId> = i.snapshot().into_iter().map(|c| c.conversation).collect();
    assert_eq!(order, [c, b, a]);
    i.list_synced(7);
    assert_eq!(i.list_version(), 7);
}

// ---- Property: the badge is the sum ---------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Message {
        conv: usize,
        from_me: bool,
        mention: bool,
    },
    Listed {
        conv: usize,
        back: Seq,
        read_back: Seq,
        unread: u64,
        muted: bool,
    },
    Read {
        conv: usize,
        back: Seq,
        unread: u64,
    },
    PeerRead {
        conv: usize,
        seq: Seq,
    },
    Event {
        conv: usize,
    },
    Recall {
        conv: usize,
        back: Seq,
    },
    Deleted {
        conv: usize,
        back: Seq,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, any::<bool>(), any::<bool>())
            .prop_map(|(conv, from_me, mention)| Op::Message { conv, from_me, mention }),
        1 => (0..3usize, 0..4u64, 0..4u64, 0..6u64, any::<bool>()).prop_map(
            |(conv, back, read_back, unread, muted)| Op::Listed { conv, back, read_back, unread, muted }
        ),
        2 => (0..3usize, 0..4u64, 0..6u64)
            .prop_map(|(conv, back, unread)| Op::Read { conv, back, unread }),
        1 => (0..3usize, 0..10u64).prop_map(|(conv, seq)| Op::PeerRead { conv, seq }),
        1 => (0..3usize).prop_map(|conv| Op::Event { conv }),
        1 => (0..3usize, 0..4u64).prop_map(|(conv, back)| Op::Recall { conv, back }),
        1 => (0..3usize, 0..4u64).prop_map(|(conv, back)| Op::Deleted { conv, back }),
    ]
}

fn convs() -> [ConvId; 3] {
    [
        ConvId::direct(&user("me"), &user("a")),
        ConvId::direct(&user("me"), &user("b")),
        group(),
    ]
}

proptest! {
    #[test]
    fn total_is_always_the_sum_of_unmuted_unread(ops in proptest::collection::vec(op(), 0..80)) {
        let ids = convs();
        let mut i = inbox();
        let mut last = [0 as Seq; 3];
        for op in ops {
            match op {
                Op::Message { conv, from_me, mention } => {
                    last[conv] += 1;
                    let mut m = msg(&ids[conv], last[conv], if from_me { "me" } else { "x" });
                    m.mention_all = mention;
                    i.on_message(&m);
                }
                Op::Listed { conv, back, read_back, unread, muted } => {
                    let at = last[conv].saturating_sub(back);
                    let mut l = listed(&ids[conv], at, at.saturating_sub(read_back), unread);
                    l.muted = muted;
                    i.on_listed(l);
                }
                Op::Read { conv, back, unread } => {
                    i.on_read(&ids[conv], last[conv].saturating_sub(back), unread);
                }
                Op::PeerRead { conv, seq } => {
                    i.on_peer_read(&ids[conv], seq);
                }
                Op::Event { conv } => {
                    last[conv] += 1;
                    if ids[conv] == group() {
                        i.on_group_event(&event(last[conv], r#"{"action":"mute_all"}"#));
                    }
                }
                Op::Recall { conv, back } => {
                    last[conv] += 1;
                    let target = last[conv].saturating_sub(back + 1);
                    i.on_message_op(&op_entry(&ids[conv], last[conv], target, MessageOp::Recall));
                }
                Op::Deleted { conv, back } => {
                    i.on_deleted(&ids[conv], &[last[conv].saturating_sub(back)]);
                }
            }
            let snapshot = i.snapshot();
            let sum: u64 = snapshot.iter().filter(|c| !c.muted).map(|c| c.unread).sum();
            prop_assert_eq!(i.total_unread(), sum);
        }
    }
}
