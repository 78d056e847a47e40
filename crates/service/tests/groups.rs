//! Groups at the service level: membership intervals under churn, the operations, and the
//! authorization matrix.

// Tests may unwrap (clippy.toml); this covers the helpers outside #[test] functions too.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use magpie_core::ErrorKind;
use magpie_service::{CreateGroup, Service, SessionCtx};
use magpie_types::{ClientMsgId, Content, ConvId, EntryKind, GroupId, JoinPolicy, Seq};
use rand::{Rng, SeedableRng, rngs::StdRng};
use support::{Device, connect, service, user};

fn gid(s: &str) -> GroupId {
    GroupId::new(s).unwrap()
}

async fn create(svc: &Service, owner: &SessionCtx, id: &str, members: &[&str]) -> Seq {
    svc.create_group(
        owner,
        CreateGroup {
            id: Some(gid(id)),
            name: format!("group {id}"),
            members: members.iter().map(|m| user(m)).collect(),
            ..CreateGroup::default()
        },
    )
    .await
    .unwrap()
    .seq
}

async fn say(svc: &Service, who: &SessionCtx, g: &str, cmid: &str) -> Result<Seq, ErrorKind> {
    svc.send_group(
        who,
        &gid(g),
        ClientMsgId::new(cmid).unwrap(),
        Content::text(cmid),
        Vec::new(),
        false,
        0,
    )
    .await
    .map(|a| a.seq)
    .map_err(|e| e.kind)
}

/// Everything `who` can pull from the start: (messages, hidden ranges), checked to tile
/// 1..=last_seq exactly.
async fn pull_all(svc: &Service, who: &SessionCtx, conv: &ConvId) -> Vec<Seq> {
    let (mut seen, mut cursor) = (Vec::new(), 0);
    loop {
        let page = svc.pull(who, conv, cursor, 7).await.unwrap();
        // Messages and hidden ranges, merged by seq.
        let mut items: Vec<(Seq, Seq, bool)> =
            page.hidden.iter().map(|&(f, t)| (f, t, false)).collect();
        items.extend(page.messages.iter().map(|m| (m.seq, m.seq, true)));
        items.sort_unstable();
        for (from, to, is_msg) in items {
            assert_eq!(
                from,
                cursor + 1,
                "pull pages have no gaps besides hidden ranges"
            );
            cursor = to;
            if is_msg {
                seen.push(from);
            }
        }
        if !page.has_more {
            assert_eq!(
                cursor, page.last_seq,
                "the cursor ends at the last visible seq"
            );
            return seen;
        }
    }
}

/// Members join, leave, rejoin and are kicked while two members send a stream of messages;
/// every member's pushes, pull and history hold exactly the entries inside their intervals
/// (taken from the operations' own answers), each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_intervals_hold_under_churn() {
    let names: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (svc, _) = service(&refs).await;
    let mut devices: BTreeMap<String, Device> = names
        .iter()
        .map(|n| (n.clone(), connect(&svc, "a", n, "d1")))
        .collect();
    let ctx = |n: &str, d: &BTreeMap<String, Device>| d[n].ctx.clone();
    let owner = ctx("u0", &devices);
    create(&svc, &owner, "g", &["u1", "u2", "u3", "u4", "u5"]).await;
    let conv = ConvId::group(&gid("g"));
    // Intervals as the operations report them: user -> [(from, to)].
    let mut intervals: BTreeMap<String, Vec<(Seq, Seq)>> = BTreeMap::new();
    for n in ["u0", "u1", "u2", "u3", "u4", "u5"] {
        intervals.insert(n.into(), vec![(1, Seq::MAX)]);
    }

    let senders = ["u0", "u1"].map(|n| ctx(n, &devices));
    let stream = {
        let svc = svc.clone();
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..300 {
                let who = &senders[i % 2];
                if let Ok(seq) = say(&svc, who, "g", &format!("m{i}")).await {
                    accepted.push(seq);
                }
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            accepted
        })
    };
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..120 {
        let n = format!("u{}", rng.random_range(2..10));
        let me = ctx(&n, &devices);
        let active = intervals
            .get(&n)
            .and_then(|iv| iv.last())
            .is_some_and(|&(_, to)| to == Seq::MAX);
        let r = if active {
            if rng.random_bool(0.5) {
                svc.leave_group(&me, &gid("g")).await
            } else {
                svc.kick_members(&owner, &gid("g"), vec![user(&n)]).await
            }
        } else if rng.random_bool(0.5) {
            svc.join_group(&me, &gid("g")).await
        } else {
            svc.add_members(&owner, &gid("g"), vec![user(&n)]).await
        };
        let seq = r.expect("churn operation").seq;
        let iv = intervals.entry(n).or_default();
        if active {
            iv.last_mut().unwrap().1 = seq;
        } else {
            iv.push((seq, Seq::MAX));
        }
        tokio::task::yield_now().await;
    }
    let accepted = stream.await.unwrap();
    assert_eq!(accepted.len(), 300, "the two senders never left");
    let last = svc.pull(&owner, &conv, 0, 1).await.unwrap().last_seq;

    for (n, iv) in &intervals {
        let me = ctx(n, &devices);
        let want: Vec<Seq> = (1..=last)
            .filter(|s| iv.iter().any(|&(f, t)| f <= *s && *s <= t))
            .collect();
        // Pushes: exactly the visible entries, once each (the sender's own messages come
        // back as acks, not pushes).
        let own: BTreeSet<Seq> = if n == "u0" || n == "u1" {
            let k = usize::from(n == "u1");
            accepted.iter().copied().skip(k).step_by(2).collect()
        } else {
            BTreeSet::new()
        };
        let pushed: Vec<Seq> = devices
            .get_mut(n)
            .unwrap()
            .drain()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let pushed_set: BTreeSet<Seq> = pushed.iter().copied().collect();
        assert_eq!(pushed.len(), pushed_set.len(), "{n}: a push twice");
        let want_pushed: BTreeSet<Seq> =
            want.iter().copied().filter(|s| !own.contains(s)).collect();
        assert_eq!(
            pushed_set, want_pushed,
            "{n}: pushes outside or missing from {iv:?}"
        );
        // Sync and history: the same entries, in order.
        assert_eq!(pull_all(&svc, &me, &conv).await, want, "{n}: pull");
        let mut back = Vec::new();
        let mut before = 0;
        loop {
            let page = svc.history(&me, &conv, before, 9).await.unwrap();
            back.extend(page.messages.iter().map(|m| m.seq));
            match page.messages.last() {
                Some(m) if page.has_more => before = m.seq,
                _ => break,
            }
        }
        back.reverse();
        assert_eq!(back, want, "{n}: history");
    }
}

#[tokio::test]
async fn group_lifecycle_and_events() {
    let (svc, clock) = service(&["o", "a", "b", "c"]).await;
    let (o, a, b) = (
        connect(&svc, "a", "o", "d"),
        connect(&svc, "a", "a", "d"),
        connect(&svc, "a", "b", "d"),
    );
    let g = svc
        .create_group(
            &o.ctx,
            CreateGroup {
                name: "team".into(),
                members: vec![user("a")],
                join_policy: JoinPolicy::Approval,
                ..CreateGroup::default()
            },
        )
        .await
        .unwrap();
    let id = g.group.id.clone();
    assert_eq!((g.seq, g.group.record.member_count), (1, 2));
    // Approval: a join is pending until an admin approves.
    let pending = svc.join_group(&b.ctx, &id).await.unwrap();
    assert!(pending.pending);
    let reqs = svc.join_requests(&o.ctx, &id).await.unwrap();
    assert_eq!(reqs.members.len(), 1);
    assert_eq!(
        svc.join_requests(&a.ctx, &id).await.unwrap_err().kind,
        ErrorKind::Forbidden
    );
    let approved = svc
        .approve_joins(&o.ctx, &id, vec![user("b")])
        .await
        .unwrap();
    assert_eq!(approved.group.record.member_count, 3);
    // Mute a member for a while; mute all; admins still speak.
    svc.mute_member(&o.ctx, &id, user("a"), 60_000)
        .await
        .unwrap();
    assert_eq!(say_in(&svc, &a.ctx, &id, "x").await, Err(ErrorKind::Muted));
    clock.0.store(61_000, std::sync::atomic::Ordering::Relaxed);
    assert!(say_in(&svc, &a.ctx, &id, "y").await.is_ok());
    svc.mute_all(&o.ctx, &id, true).await.unwrap();
    assert_eq!(say_in(&svc, &b.ctx, &id, "z").await, Err(ErrorKind::Muted));
    svc.set_admin(&o.ctx, &id, user("b"), true).await.unwrap();
    assert!(say_in(&svc, &b.ctx, &id, "z").await.is_ok());
    // Transfer, then the old owner may leave; the new owner dismisses.
    svc.transfer_group(&o.ctx, &id, user("b")).await.unwrap();
    let left = svc.leave_group(&o.ctx, &id).await.unwrap();
    assert_eq!(left.group.record.owner, "b");
    let members = svc.group_members(&b.ctx, &id, None, 10).await.unwrap();
    let names: Vec<_> = members.members.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    svc.update_group(
        &b.ctx,
        &id,
        magpie_service::UpdateGroup {
            notice: Some("hello".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dismissed = svc.dismiss_group(&b.ctx, &id).await.unwrap();
    assert!(dismissed.group.record.dismissed);
    assert_eq!(
        say_in(&svc, &b.ctx, &id, "late").await,
        Err(ErrorKind::Forbidden)
    );
    // Every change is an event in the log, in order.
    let conv = ConvId::group(&id);
    let log = svc.history(&a.ctx, &conv, 0, 100).await.unwrap().messages;
    let events: Vec<String> = log
        .iter()
        .rev()
        .filter(|m| m.kind == EntryKind::GroupEvent)
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(&m.content.body).unwrap();
            v["action"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        events,
        [
            "create",
            "approve",
            "mute",
            "mute_all",
            "set_admin",
            "transfer_owner",
            "leave",
            "update",
            "dismiss"
        ]
    );
}

async fn say_in(
    svc: &Service,
    who: &SessionCtx,
    g: &GroupId,
    cmid: &str,
) -> Result<Seq, ErrorKind> {
    say(svc, who, g.as_str(), cmid).await
}

/// Every group and conversation operation by a non-member, a former member, a muted member
/// and a user of another app is refused with a typed error and changes nothing.
#[tokio::test]
async fn authorization_matrix() {
    let (svc, _) = service(&["o", "m", "x", "gone", "mute"]).await;
    let o = connect(&svc, "a", "o", "d");
    let outsider = connect(&svc, "a", "x", "d");
    let former = connect(&svc, "a", "gone", "d");
    let muted = connect(&svc, "a", "mute", "d");
    let foreign = connect(&svc, "b", "m", "d");
    create(&svc, &o.ctx, "g", &["m", "gone", "mute"]).await;
    svc.leave_group(&former.ctx, &gid("g")).await.unwrap();
    svc.mute_member(&o.ctx, &gid("g"), user("mute"), 3_600_000)
        .await
        .unwrap();
    let conv = ConvId::group(&gid("g"));
    let snapshot = |svc: std::sync::Arc<Service>, o: SessionCtx| async move {
        let info = svc.group_info(&o, &gid("g")).await.unwrap();
        let members = svc
            .group_members(&o, &gid("g"), None, 100)
            .await
            .unwrap()
            .members;
        let log = svc
            .pull(&o, &ConvId::group(&gid("g")), 0, 100)
            .await
            .unwrap();
        (info, members, log.last_seq)
    };
    let before = snapshot(svc.clone(), o.ctx.clone()).await;
    for (who, label) in [
        (&outsider.ctx, "non-member"),
        (&former.ctx, "former member"),
        (&muted.ctx, "muted member"),
        (&foreign.ctx, "other app"),
    ] {
        let g = gid("g");
        let mut results: Vec<(&str, Result<(), ErrorKind>)> = vec![
            (
                "send",
                say(&svc, who, "g", &format!("s-{}", label.replace(' ', "-")))
                    .await
                    .map(drop),
            ),
            (
                "add",
                svc.add_members(who, &g, vec![user("x")])
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "kick",
                svc.kick_members(who, &g, vec![user("m")])
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "mute",
                svc.mute_member(who, &g, user("m"), 1)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "mute_all",
                svc.mute_all(who, &g, true)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "update",
                svc.update_group(
                    who,
                    &g,
                    magpie_service::UpdateGroup {
                        name: Some("p".into()),
                        ..Default::default()
                    },
                )
                .await
                .map(drop)
                .map_err(|e| e.kind),
            ),
            (
                "dismiss",
                svc.dismiss_group(who, &g)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "transfer",
                svc.transfer_group(who, &g, user("m"))
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "set_admin",
                svc.set_admin(who, &g, user("m"), true)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "requests",
                svc.join_requests(who, &g)
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
            (
                "approve",
                svc.approve_joins(who, &g, vec![user("x")])
                    .await
                    .map(drop)
                    .map_err(|e| e.kind),
            ),
        ];
        if label != "muted member" {
            // A muted member is still a member: reading is theirs to do.
            results.extend([
                (
                    "members",
                    svc.group_members(who, &g, None, 10)
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
                (
                    "read_counts",
                    svc.read_counts(who, &conv, &[3])
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
            ]);
        }
        if label != "muted member" && label != "former member" {
            results.extend([
                (
                    "get",
                    svc.group_info(who, &g).await.map(drop).map_err(|e| e.kind),
                ),
                (
                    "pull",
                    svc.pull(who, &conv, 0, 10)
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
                (
                    "history",
                    svc.history(who, &conv, 0, 10)
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
                (
                    "mark_read",
                    svc.mark_read(who, &conv, 0)
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
                (
                    "settings",
                    svc.set_conversation(who, &conv, Default::default())
                        .await
                        .map(drop)
                        .map_err(|e| e.kind),
                ),
            ]);
        }
        if label == "former member" {
            // History up to the leave is theirs; anything later is not.
            let page = svc.pull(who, &conv, 0, 100).await.unwrap();
            assert!(page.messages.iter().all(|m| m.seq <= page.last_seq));
        }
        for (op, r) in results {
            let kind = r.expect_err(&format!("{label} may not {op}"));
            assert!(
                matches!(
                    kind,
                    ErrorKind::Forbidden | ErrorKind::NotFound | ErrorKind::Muted
                ),
                "{label} {op}: {kind:?}"
            );
            if label == "muted member" && op == "send" {
                assert_eq!(kind, ErrorKind::Muted);
            }
        }
        // The 1:1 conversation of two others is refused too.
        let other = ConvId::direct(&user("o"), &user("m"));
        if who.user.as_str() != "m" {
            assert_eq!(
                svc.pull(who, &other, 0, 1).await.unwrap_err().kind,
                ErrorKind::Forbidden
            );
            assert_eq!(
                svc.mark_read(who, &other, 0).await.unwrap_err().kind,
                ErrorKind::Forbidden
            );
        }
    }
    assert_eq!(
        snapshot(svc.clone(), o.ctx.clone()).await,
        before,
        "nothing changed"
    );
    // The other app has no group "g" at all, and a same-named group there is separate.
    let foreign_owner = connect(&svc, "b", "o", "d");
    create(&svc, &foreign_owner.ctx, "g", &["m"]).await;
    assert_eq!(
        snapshot(svc.clone(), o.ctx.clone()).await,
        before,
        "apps stay apart"
    );
}
