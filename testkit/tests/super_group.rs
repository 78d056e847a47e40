//! A 100,000-member super group on the embedded store: created in batches, a message to it
//! is stored once (the store's own append counter says so), every online member gets it
//! pushed, and an offline member syncs it.

// Tests may unwrap (clippy.toml); this covers the helpers outside #[test] functions too.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures_util::StreamExt;
use magpie_core::Limits;
use magpie_service::outbox;
use magpie_service::{
    AppConfig, AppRegistry, CreateGroup, Outbound, Service, ServiceConfig, SystemClock,
};
use magpie_store::Store;
use magpie_store_embedded::{EmbeddedOptions, EmbeddedStore};
use magpie_types::{AppId, ClientMsgId, Content, ConvId, DeviceId, GroupId, UserId};

const MEMBERS: usize = 100_000;
const ONLINE: usize = 2_000;

fn user(i: usize) -> UserId {
    UserId::new(format!("u{i:06}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_member_super_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let app = AppId::new("a").unwrap();
    let apps = AppRegistry::new();
    apps.upsert(AppConfig::new(
        app.clone(),
        "a",
        "a-secret-of-sixteen-bytes",
    ))
    .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let svc = Arc::new(
        Service::new(
            ServiceConfig {
                node_id: 1,
                limits: Limits::default(),
                rooms: magpie_service::RoomConfig::default(),
            },
            dyn_store,
            apps,
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    // Users, many writes per group commit.
    futures_util::stream::iter(0..MEMBERS)
        .for_each_concurrent(512, |i| {
            let (svc, app) = (svc.clone(), app.clone());
            async move { svc.ensure_user(&app, &user(i)).await.unwrap() }
        })
        .await;

    let session = |i: usize, cap: usize| {
        let (tx, rx) = outbox::channel(cap);
        let ctx = svc
            .sessions()
            .register(app.clone(), user(i), DeviceId::new("d").unwrap(), tx);
        (ctx, rx)
    };
    let (owner, _owner_rx) = session(0, 1 << 12);
    let g = GroupId::new("big").unwrap();
    let created = svc
        .create_group(
            &owner,
            CreateGroup {
                id: Some(g.clone()),
                name: "everyone".into(),
                super_group: true,
                members: (1..1_000).map(user).collect(),
                ..CreateGroup::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.group.record.member_count, 1_000);
    for start in (1_000..MEMBERS).step_by(1_000) {
        let batch = (start..start + 1_000).map(user).collect();
        svc.add_members(&owner, &g, batch).await.unwrap();
    }
    let info = svc.group_info(&owner, &g).await.unwrap();
    assert_eq!(info.record.member_count as usize, MEMBERS);
    // An ordinary group of that size is refused.
    let err = svc
        .create_group(
            &owner,
            CreateGroup {
                members: (1..4_000).map(user).collect(),
                ..CreateGroup::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err.kind,
        magpie_core::ErrorKind::LimitExceeded | magpie_core::ErrorKind::InvalidArgument
    ));

    // Online members: the last ONLINE users (the sender is online too).
    let mut online: Vec<_> = (MEMBERS - ONLINE..MEMBERS).map(|i| session(i, 8)).collect();
    let conv = ConvId::group(&g);
    let before_log = svc.pull(&owner, &conv, 0, 1).await.unwrap().last_seq;
    let appends_before = store.stats().appends;
    let ack = svc
        .send_group(
            &owner,
            &g,
            ClientMsgId::new("hello-all").unwrap(),
            Content::text("hello, 100,000 people"),
            Vec::new(),
            false,
            0,
        )
        .await
        .unwrap();
    assert_eq!(store.stats().appends - appends_before, 1, "stored once");
    assert_eq!(ack.seq, before_log + 1, "one entry in the log");
    for (ctx, rx) in &mut online {
        match rx.try_recv() {
            Ok(Outbound::Message(d)) => assert_eq!(d.msg.seq, ack.seq, "{}", ctx.user),
            other => panic!("{} got {other:?}", ctx.user),
        }
    }
    // An offline member (never connected) syncs it; the unread badge shows it.
    let (offline, _rx) = session(MEMBERS / 2, 8);
    let page = svc.pull(&offline, &conv, 0, 200).await.unwrap();
    let texts: Vec<_> = page
        .messages
        .iter()
        .filter(|m| m.kind == magpie_types::EntryKind::Message)
        .map(|m| String::from_utf8_lossy(&m.content.body).into_owned())
        .collect();
    assert_eq!(texts, vec!["hello, 100,000 people"]);
    let list = svc.conversations(&offline, None, 10, 0).await.unwrap();
    assert_eq!(list.total_unread, 1);
    assert!(
        list.conversations[0].first_seq > 1,
        "joined in a later batch"
    );
    // Read receipts come from read positions: two readers of 99,999 possible.
    svc.mark_read(&offline, &conv, 0).await.unwrap();
    let counts = svc.read_counts(&owner, &conv, &[ack.seq]).await.unwrap();
    assert_eq!(counts, vec![(1, (MEMBERS - 1) as u64)]);
}
