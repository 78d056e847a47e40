//! Blocks, friends, profiles, message operations (recall, edit, react, delete for me),
//! typing and presence, at the service level.

// Tests may unwrap (clippy.toml); this covers the helpers outside #[test] functions too.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering;

use magpie_core::ErrorKind;
use magpie_service::ops::{MessageOp, Overlay};
use magpie_service::{CreateGroup, Outbound, ProfileChange};
use magpie_store::Table;
use magpie_types::{ClientMsgId, Content, ConvId, EntryKind, GroupId};
use support::{connect, service, user};

fn cmid(s: &str) -> ClientMsgId {
    ClientMsgId::new(s).unwrap()
}

#[tokio::test]
async fn a_block_refuses_and_stores_nothing() {
    let (svc, _) = service(&["alice", "bob"]).await;
    let (a, b) = (
        connect(&svc, "a", "alice", "d"),
        connect(&svc, "a", "bob", "d"),
    );
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    svc.send_direct(&b.ctx, user("alice"), cmid("1"), Content::text("hi"))
        .await
        .unwrap();
    svc.block(&a.ctx, user("bob"), true).await.unwrap();
    let err = svc
        .send_direct(&b.ctx, user("alice"), cmid("2"), Content::text("again"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Blocked);
    assert_eq!(
        svc.pull(&a.ctx, &conv, 0, 10).await.unwrap().last_seq,
        1,
        "nothing stored"
    );
    let err = svc
        .friend_request(&b.ctx, user("alice"), "please".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Blocked);
    assert!(
        svc.social_list(&a.ctx, Table::FriendRequests)
            .await
            .unwrap()
            .is_empty()
    );
    // Alice may still write to bob; the block is one way.
    svc.send_direct(&a.ctx, user("bob"), cmid("3"), Content::text("x"))
        .await
        .unwrap();
    assert_eq!(
        svc.social_list(&a.ctx, Table::Blocks).await.unwrap(),
        vec![user("bob")]
    );
    svc.block(&a.ctx, user("bob"), false).await.unwrap();
    svc.send_direct(&b.ctx, user("alice"), cmid("4"), Content::text("ok"))
        .await
        .unwrap();
}

#[tokio::test]
async fn friends_and_strangers() {
    let (svc, _) = service(&["alice", "bob"]).await;
    // App `b` lets only friends message each other.
    let (a, mut b) = (
        connect(&svc, "b", "alice", "d"),
        connect(&svc, "b", "bob", "d"),
    );
    let err = svc
        .send_direct(&a.ctx, user("bob"), cmid("1"), Content::text("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Blocked);
    assert!(
        !svc.friend_request(&a.ctx, user("bob"), "let's talk".into())
            .await
            .unwrap()
    );
    let notices: Vec<_> = std::iter::from_fn(|| b.rx.try_recv().ok()).collect();
    assert!(
        matches!(&notices[..], [Outbound::Social(n)] if n.kind == "friend_request" && n.message == "let's talk")
    );
    assert_eq!(
        svc.social_list(&b.ctx, Table::FriendRequests)
            .await
            .unwrap(),
        vec![user("alice")]
    );
    svc.respond_friend(&b.ctx, user("alice"), true)
        .await
        .unwrap();
    assert_eq!(
        svc.social_list(&a.ctx, Table::Friends).await.unwrap(),
        vec![user("bob")]
    );
    svc.send_direct(&a.ctx, user("bob"), cmid("2"), Content::text("hi friend"))
        .await
        .unwrap();
    svc.remove_friend(&b.ctx, user("alice")).await.unwrap();
    assert!(
        svc.social_list(&a.ctx, Table::Friends)
            .await
            .unwrap()
            .is_empty()
    );
    // Profiles.
    svc.set_profile(
        &a.ctx,
        ProfileChange {
            nickname: Some("Alice".into()),
            ..ProfileChange::default()
        },
    )
    .await
    .unwrap();
    let ps = svc
        .profiles(&b.ctx, &[user("alice"), user("nobody")])
        .await
        .unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].1.nickname, "Alice");
}

#[tokio::test]
async fn recall_edit_react_and_delete_for_me() {
    let (svc, clock) = service(&["o", "m", "x"]).await;
    let (o, mut m, x) = (
        connect(&svc, "a", "o", "d"),
        connect(&svc, "a", "m", "d"),
        connect(&svc, "a", "x", "d"),
    );
    let (mctx, octx, xctx) = (m.ctx.clone(), o.ctx.clone(), x.ctx.clone());
    let g = GroupId::new("g").unwrap();
    svc.create_group(
        &octx,
        CreateGroup {
            id: Some(g.clone()),
            members: vec![user("m"), user("x")],
            ..CreateGroup::default()
        },
    )
    .await
    .unwrap();
    let conv = ConvId::group(&g);
    let send = |who, id: &str| {
        let svc = svc.clone();
        let g = g.clone();
        let id = id.to_owned();
        async move {
            svc.send_group(
                who,
                &g,
                cmid(&id),
                Content::text(id.clone()),
                vec![],
                false,
                0,
            )
            .await
            .unwrap()
            .seq
        }
    };
    let s1 = send(&mctx, "s1").await;
    let s2 = send(&mctx, "s2").await;
    let s3 = send(&xctx, "s3").await;
    m.drain();
    // x cannot recall m's message; m can, within the window.
    let op = |who, seq, id: &str, op| {
        let svc = svc.clone();
        let conv = conv.clone();
        let id = id.to_owned();
        async move { svc.message_op(who, &conv, seq, cmid(&id), op).await }
    };
    let err = op(&xctx, s1, "r0", MessageOp::Recall).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    let r = op(&mctx, s1, "r1", MessageOp::Recall).await.unwrap();
    let again = op(&mctx, s1, "r1", MessageOp::Recall).await.unwrap();
    assert_eq!(
        (again.seq, again.duplicate),
        (r.seq, true),
        "a retried op is deduplicated"
    );
    // After the window, the sender may not; the group owner (an admin) still may.
    clock.0.store(10 * 60 * 1000, Ordering::Relaxed);
    let err = op(&mctx, s2, "r2", MessageOp::Recall).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::WindowClosed);
    op(&octx, s2, "r3", MessageOp::Recall).await.unwrap();
    // Edit (sender only) and react.
    let err = op(&mctx, s3, "e0", MessageOp::Edit(Content::text("no")))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Forbidden);
    op(
        &xctx,
        s3,
        "e1",
        MessageOp::Edit(Content::text("s3, edited")),
    )
    .await
    .unwrap();
    let react = MessageOp::React {
        emoji: "👍".into(),
        add: true,
    };
    op(&mctx, s3, "re", react).await.unwrap();
    // Everyone else got each op pushed as a log entry; none counts as unread.
    let pushed = m.drain();
    assert_eq!(
        pushed.len(),
        2,
        "{pushed:?}: r3 and e1 (own ops come back as acks)"
    );
    let page = svc.pull(&xctx, &conv, 0, 100).await.unwrap();
    assert_eq!(page.overlays.get(&s1), Some(&Overlay::Recalled));
    assert_eq!(page.overlays.get(&s2), Some(&Overlay::Recalled));
    assert_eq!(
        page.overlays.get(&s3),
        Some(&Overlay::Edited(Content::text("s3, edited")))
    );
    let kinds: Vec<EntryKind> = page.messages.iter().map(|m| m.kind).collect();
    assert!(kinds.ends_with(&[
        EntryKind::Recall,
        EntryKind::Recall,
        EntryKind::Edit,
        EntryKind::Reaction
    ]));
    let list = svc.conversations(&octx, None, 10, 0).await.unwrap();
    assert_eq!(list.conversations[0].unread, 3, "three messages, no ops");
    // Recalling again is refused: nothing left to recall.
    assert_eq!(
        op(&octx, s1, "r4", MessageOp::Recall)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );

    // Delete for me: gone from x's pulls (as a hidden seq) and history, still there for o.
    let (_x2, mut x2) = ((), connect(&svc, "a", "x", "d2"));
    svc.delete_for_me(&x.ctx, &conv, &[s3]).await.unwrap();
    let notice = std::iter::from_fn(|| x2.rx.try_recv().ok()).find_map(|i| match i {
        Outbound::Deleted(d) => Some(d.seqs.clone()),
        _ => None,
    });
    assert_eq!(notice, Some(vec![s3]));
    let page = svc.pull(&x.ctx, &conv, s2, 100).await.unwrap();
    assert!(page.messages.iter().all(|m| m.seq != s3));
    assert!(page.hidden.contains(&(s3, s3)), "{:?}", page.hidden);
    let hist = svc.history(&x.ctx, &conv, 0, 100).await.unwrap();
    assert!(hist.messages.iter().all(|m| m.seq != s3));
    let theirs = svc.history(&o.ctx, &conv, 0, 100).await.unwrap();
    assert!(theirs.messages.iter().any(|m| m.seq == s3));
}

#[tokio::test]
async fn typing_and_presence() {
    let (svc, _) = service(&["alice", "bob"]).await;
    let a = connect(&svc, "a", "alice", "d");
    let mut b = connect(&svc, "a", "bob", "d");
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    svc.typing(&a.ctx, &conv, true).await.unwrap();
    assert!(
        matches!(b.rx.try_recv(), Ok(Outbound::Typing(t)) if t.typing && t.user == user("alice"))
    );
    let stranger = ConvId::direct(&user("bob"), &user("carol"));
    assert_eq!(
        svc.typing(&a.ctx, &stranger, true).await.unwrap_err().kind,
        ErrorKind::Forbidden
    );
    let refused = (0..20)
        .filter_map(|_| futures_util::FutureExt::now_or_never(svc.typing(&a.ctx, &conv, true)))
        .filter(|r| r.as_ref().is_err_and(|e| e.kind == ErrorKind::RateLimited))
        .count();
    assert!(refused > 0, "typing is rate-limited");

    // Bob watches alice: a second device changes nothing; the last one leaving is "offline".
    let now = svc.subscribe_presence(&b.ctx, vec![user("alice")]).unwrap();
    assert!(now[0].online);
    while b.rx.try_recv().is_ok() {}
    let a2 = connect(&svc, "a", "alice", "d2");
    svc.connected(&a2.ctx).await;
    assert!(b.rx.try_recv().is_err(), "not the first device");
    for ctx in [&a.ctx, &a2.ctx] {
        svc.sessions().unregister(ctx);
        svc.disconnected(ctx).await;
    }
    match b.rx.try_recv() {
        Ok(Outbound::Presence(p)) => assert!(!p.online && p.last_seen_ms > 0),
        other => panic!("{other:?}"),
    }
}
