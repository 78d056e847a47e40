//! Unread consistency, as a property: random concurrent sends, reads, mutes and device
//! reconnects in a group and in 1:1 chats; after every round, each user's per-conversation
//! unread equals a model computed from the server's log and the read positions the
//! operations reported, and the badge equals the sum over non-muted conversations.

// Tests may unwrap (clippy.toml); this covers the helpers outside #[test] functions too.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;
use magpie_service::{CreateGroup, Service, SessionCtx, SettingsChange};
use magpie_types::{ClientMsgId, Content, ConvId, EntryKind, GroupId, Seq};
use proptest::prelude::*;
use support::{connect, service, user};

const USERS: [&str; 3] = ["p0", "p1", "p2"];

#[derive(Debug, Clone)]
enum Op {
    /// User sends to the group (`None`) or to another user.
    Send(usize, Option<usize>),
    /// User marks a conversation read at a fraction of its length (0 = latest).
    Read(usize, usize, u8),
    /// User mutes or unmutes a conversation.
    Mute(usize, usize, bool),
    /// User's device reconnects (a new session).
    Reconnect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, proptest::option::of(0..3usize)).prop_map(|(u, t)| Op::Send(u, t)),
        2 => (0..3usize, 0..4usize, any::<u8>()).prop_map(|(u, c, f)| Op::Read(u, c, f)),
        1 => (0..3usize, 0..4usize, any::<bool>()).prop_map(|(u, c, m)| Op::Mute(u, c, m)),
        1 => (0..3usize).prop_map(Op::Reconnect),
    ]
}

/// The conversations a user may address by index: the group, then 1:1 with each user.
fn convs(me: usize) -> Vec<ConvId> {
    let mut v = vec![ConvId::group(&GroupId::new("g").unwrap())];
    v.extend(
        USERS
            .iter()
            .map(|o| ConvId::direct(&user(USERS[me]), &user(o))),
    );
    v
}

#[derive(Default)]
struct Model {
    /// (user, conv) -> highest read position reported or implied by an own send.
    read: BTreeMap<(usize, ConvId), Seq>,
    muted: BTreeMap<(usize, ConvId), bool>,
}

async fn run(rounds: Vec<Vec<Op>>) {
    let (svc, _) = service(&USERS).await;
    let mut devices: Vec<SessionCtx> = (0..3)
        .map(|u| connect(&svc, "a", USERS[u], "d0").ctx)
        .collect();
    svc.create_group(
        &devices[0],
        CreateGroup {
            id: Some(GroupId::new("g").unwrap()),
            members: vec![user("p1"), user("p2")],
            ..CreateGroup::default()
        },
    )
    .await
    .unwrap();
    let mut model = Model::default();
    let mut n = 0;
    for (round, ops) in rounds.into_iter().enumerate() {
        // Mutes and reconnects in order; sends and reads of the round all at once.
        let mut concurrent = Vec::new();
        for op in ops {
            match op {
                Op::Mute(u, c, m) => {
                    let conv = convs(u)[c].clone();
                    let change = SettingsChange {
                        muted: Some(m),
                        ..SettingsChange::default()
                    };
                    if svc
                        .set_conversation(&devices[u], &conv, change)
                        .await
                        .is_ok()
                    {
                        model.muted.insert((u, conv), m);
                    }
                }
                Op::Reconnect(u) => {
                    svc.sessions().unregister(&devices[u]);
                    devices[u] = connect(&svc, "a", USERS[u], &format!("d{round}")).ctx;
                }
                other => concurrent.push(other),
            }
        }
        let results = join_all(concurrent.into_iter().map(|op| {
            n += 1;
            let (svc, devices) = (svc.clone(), devices.clone());
            let cmid = format!("m{n}");
            async move { apply(&svc, &devices, op, cmid).await }
        }))
        .await;
        for (u, conv, seq) in results.into_iter().flatten() {
            let slot = model.read.entry((u, conv)).or_default();
            *slot = (*slot).max(seq);
        }
        check(&svc, &devices, &model).await;
    }
}

/// Applies one op; returns the read position it reports or implies.
async fn apply(
    svc: &Arc<Service>,
    devices: &[SessionCtx],
    op: Op,
    cmid: String,
) -> Option<(usize, ConvId, Seq)> {
    match op {
        Op::Send(u, to) => {
            let cmid = ClientMsgId::new(cmid).unwrap();
            let ack = match to {
                None => svc
                    .send_group(
                        &devices[u],
                        &GroupId::new("g").unwrap(),
                        cmid,
                        Content::text("x"),
                        vec![],
                        false,
                        0,
                    )
                    .await
                    .unwrap(),
                Some(t) => svc
                    .send_direct(&devices[u], user(USERS[t]), cmid, Content::text("x"))
                    .await
                    .unwrap(),
            };
            Some((u, ack.conv, ack.seq))
        }
        Op::Read(u, c, f) => {
            let conv = convs(u)[c].clone();
            let last = svc.pull(&devices[u], &conv, 0, 1).await.ok()?.last_seq;
            let seq = last * u64::from(f) / 255;
            let r = svc.mark_read(&devices[u], &conv, seq).await.unwrap();
            Some((u, conv, r.read_seq))
        }
        Op::Mute(..) | Op::Reconnect(_) => None,
    }
}

async fn check(svc: &Service, devices: &[SessionCtx], model: &Model) {
    for (u, dev) in devices.iter().enumerate() {
        let page = svc.conversations(dev, None, 200, 0).await.unwrap();
        let mut badge = 0;
        for v in &page.conversations {
            // The model: MESSAGE entries after the read position, from the server's log.
            let read = model.read.get(&(u, v.conv.clone())).copied().unwrap_or(0);
            let log = svc.pull(dev, &v.conv, 0, 200).await.unwrap().messages;
            let unread = log
                .iter()
                .filter(|m| m.kind == EntryKind::Message && m.seq > read)
                .count() as u64;
            assert_eq!(v.unread, unread, "{} in {}", USERS[u], v.conv);
            assert!(
                log.iter().all(|m| m.kind != EntryKind::Message
                    || m.from_user != dev.user
                    || m.seq <= read),
                "own messages are read"
            );
            let muted = model
                .muted
                .get(&(u, v.conv.clone()))
                .copied()
                .unwrap_or(false);
            assert_eq!(v.prefs.muted, muted);
            if !muted {
                badge += unread;
            }
        }
        assert_eq!(page.total_unread, badge, "badge of {}", USERS[u]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn unread_agrees_with_the_model(rounds in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..12)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(rounds));
    }
}
