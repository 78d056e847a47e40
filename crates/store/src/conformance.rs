//! The conformance suite: the storage contract as tests, run by every backend.
//!
//! A backend's test module invokes [`crate::store_conformance_tests!`] with an expression that
//! builds a fresh, empty store; the macro expands to one `#[tokio::test]` per check, so a
//! failure names the broken rule. The checks are plain async functions so that a backend may
//! also call them directly.

use std::collections::HashSet;
use std::sync::Arc;

use magpie_types::{AppId, ClientMsgId, Content, ConvId, DeviceId, EntryKind, GroupId, UserId};

use crate::model::{
    AppendOutcome, AppendRequest, EntryExtras, ReadPosition, RecordWrite, StoreError, Table,
};
use crate::traits::Store;

fn app(s: &str) -> AppId {
    AppId::new(s).expect("valid test id")
}
fn user(s: &str) -> UserId {
    UserId::new(s).expect("valid test id")
}

/// A request from `from` to `to` in `app_id` with the given client message id.
pub fn request(app_id: &str, from: &str, to: &str, cmid: &str, text: &str) -> AppendRequest {
    let (f, t) = (user(from), user(to));
    AppendRequest {
        app: app(app_id),
        conv: ConvId::direct(&f, &t),
        msg_id: 0,
        from_user: f.clone(),
        from_device: DeviceId::new("d1").expect("valid test id"),
        client_msg_id: ClientMsgId::new(cmid).expect("valid test id"),
        content: Content::text(text),
        server_time: 1_700_000_000_000,
        parties: vec![f, t],
        extras: EntryExtras::default(),
        expect_seq: None,
        sender_read: false,
        records: Vec::new(),
    }
}

/// A request appending to group `g` in app `a`.
pub fn group_request(from: &str, cmid: &str, kind: EntryKind) -> AppendRequest {
    let mut r = request("a", from, from, cmid, "g");
    r.conv = ConvId::group(&GroupId::new("g").expect("valid test id"));
    r.parties = Vec::new();
    r.extras.kind = kind;
    r
}

/// Seqs start at 1 and grow by exactly one per stored message.
pub async fn seq_starts_at_one_without_gaps<S: Store>(s: S) {
    for i in 1..=50u64 {
        let mut r = request("a", "alice", "bob", &format!("m{i}"), "x");
        r.msg_id = i;
        match s.append(r).await.expect("append") {
            AppendOutcome::Stored(m) => assert_eq!(m.seq, i),
            other => panic!("expected Stored, got {other:?}"),
        }
    }
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    assert_eq!(s.last_seq(&app("a"), &conv).await.expect("last_seq"), 50);
}

/// A retry with the same (app, sender, client_msg_id) returns the original and stores
/// nothing, even with different content or recipient.
pub async fn retry_returns_original<S: Store>(s: S) {
    let mut first = request("a", "alice", "bob", "same", "one");
    first.msg_id = 11;
    let stored = s.append(first).await.expect("append");
    let AppendOutcome::Stored(orig) = stored else {
        panic!("first append must store")
    };
    let found = s
        .original(
            &app("a"),
            &user("alice"),
            &ClientMsgId::new("same").expect("id"),
        )
        .await
        .expect("original");
    assert_eq!(found.as_ref(), Some(&orig));
    let none = s
        .original(
            &app("b"),
            &user("alice"),
            &ClientMsgId::new("same").expect("id"),
        )
        .await
        .expect("original");
    assert_eq!(none, None, "dedup keys are per app");
    let mut retry = request("a", "alice", "carol", "same", "two");
    retry.msg_id = 12;
    match s.append(retry).await.expect("append") {
        AppendOutcome::Duplicate(m) => assert_eq!(m, orig),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    let conv_bc = ConvId::direct(&user("alice"), &user("carol"));
    assert_eq!(s.last_seq(&app("a"), &conv_bc).await.expect("last_seq"), 0);
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    assert_eq!(s.last_seq(&app("a"), &conv).await.expect("last_seq"), 1);
    // Another sender may use the same client_msg_id.
    let other = s
        .append(request("a", "bob", "alice", "same", "three"))
        .await
        .expect("append");
    assert!(matches!(other, AppendOutcome::Stored(ref m) if m.seq == 2));
}

/// Apps never see each other's data: same users, same ids, separate logs and dedup.
pub async fn apps_are_isolated<S: Store>(s: S) {
    let a = s
        .append(request("app1", "alice", "bob", "c1", "in app1"))
        .await
        .expect("append");
    let b = s
        .append(request("app2", "alice", "bob", "c1", "in app2"))
        .await
        .expect("append");
    assert!(matches!(a, AppendOutcome::Stored(ref m) if m.seq == 1));
    assert!(matches!(b, AppendOutcome::Stored(ref m) if m.seq == 1));
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    let in1 = s
        .read_after(&app("app1"), &conv, 0, 10)
        .await
        .expect("read");
    assert_eq!(in1.len(), 1);
    assert_eq!(in1[0].content.as_text(), Some("in app1"));
    s.put_user(&app("app1"), &user("zed")).await.expect("put");
    assert!(
        s.user_exists(&app("app1"), &user("zed"))
            .await
            .expect("exists")
    );
    assert!(
        !s.user_exists(&app("app2"), &user("zed"))
            .await
            .expect("exists")
    );
    assert_eq!(
        s.conversations(&app("app2"), &user("alice"), None, 10)
            .await
            .expect("conversations")
            .len(),
        1
    );
    assert!(
        s.conversations(&app("app3"), &user("alice"), None, 10)
            .await
            .expect("conversations")
            .is_empty()
    );
}

/// Reads page forwards and backwards correctly, at the edges too.
pub async fn paging_reads<S: Store>(s: S) {
    for i in 1..=30u64 {
        s.append(request(
            "a",
            "alice",
            "bob",
            &format!("m{i}"),
            &format!("t{i}"),
        ))
        .await
        .expect("append");
    }
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    let a = app("a");
    let page = s.read_after(&a, &conv, 0, 10).await.expect("read");
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let page = s.read_after(&a, &conv, 25, 10).await.expect("read");
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (26..=30).collect::<Vec<_>>()
    );
    assert!(
        s.read_after(&a, &conv, 30, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        s.read_after(&a, &conv, u64::MAX, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let back = s.read_before(&a, &conv, u64::MAX, 5).await.expect("read");
    assert_eq!(
        back.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![30, 29, 28, 27, 26]
    );
    let back = s.read_before(&a, &conv, 4, 10).await.expect("read");
    assert_eq!(
        back.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(
        s.read_before(&a, &conv, 1, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        page_text(&s.read_after(&a, &conv, 4, 1).await.expect("read")),
        "t5"
    );
    let other = ConvId::direct(&user("x"), &user("y"));
    assert!(
        s.read_after(&a, &other, 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

fn page_text(page: &[crate::StoredMessage]) -> String {
    page.iter()
        .filter_map(|m| m.content.as_text())
        .collect::<Vec<_>>()
        .join(",")
}

/// The per-user index lists each party's conversations with the latest seq, paged by id.
pub async fn conversation_index<S: Store>(s: S) {
    s.append(request("a", "alice", "bob", "1", "x"))
        .await
        .expect("append");
    s.append(request("a", "alice", "carol", "2", "x"))
        .await
        .expect("append");
    s.append(request("a", "bob", "alice", "3", "x"))
        .await
        .expect("append");
    let a = app("a");
    let list = s
        .conversations(&a, &user("alice"), None, 10)
        .await
        .expect("list");
    let got: Vec<_> = list
        .iter()
        .map(|e| (e.conv.as_str().to_owned(), e.last_seq))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p2p:alice:bob".to_owned(), 2),
            ("p2p:alice:carol".to_owned(), 1)
        ]
    );
    let page = s
        .conversations(&a, &user("alice"), Some(&list[0].conv), 10)
        .await
        .expect("list");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].conv.as_str(), "p2p:alice:carol");
    assert_eq!(
        s.conversations(&a, &user("alice"), None, 1)
            .await
            .expect("list")
            .len(),
        1
    );
    let carol = s
        .conversations(&a, &user("carol"), None, 10)
        .await
        .expect("list");
    assert_eq!(carol.len(), 1);
}

/// Concurrent appends to one conversation get distinct consecutive seqs, and concurrent
/// retries of one client_msg_id store it once.
pub async fn concurrent_appends<S: Store>(s: S) {
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..40 {
                // Every worker also retries a shared id, to race dedup.
                let cmid = if i % 10 == 0 {
                    format!("shared{i}")
                } else {
                    format!("w{w}m{i}")
                };
                let out = s
                    .append(request("a", "alice", "bob", &cmid, "x"))
                    .await
                    .expect("append");
                if let AppendOutcome::Stored(m) = out {
                    seqs.push(m.seq);
                }
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    // 8 workers × 36 unique + 4 shared ids stored once each.
    let expected = 8 * 36 + 4;
    assert_eq!(all.len(), expected);
    let set: HashSet<_> = all.iter().copied().collect();
    assert_eq!(set.len(), expected);
    assert_eq!(*all.iter().max().expect("nonempty"), expected as u64);
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    let log = s
        .read_after(&app("a"), &conv, 0, 10_000)
        .await
        .expect("read");
    assert_eq!(log.len(), expected);
    let cmids: HashSet<_> = log.iter().map(|m| m.client_msg_id.clone()).collect();
    assert_eq!(cmids.len(), expected, "no client_msg_id stored twice");
}

/// Content and metadata survive storage unchanged.
pub async fn content_roundtrips<S: Store>(s: S) {
    let mut r = request("a", "alice", "bob", "c", "");
    r.content = Content {
        kind: magpie_types::ContentType::Custom,
        body: (0..=255u8).collect(),
        metadata: [
            ("k".to_owned(), "v".to_owned()),
            ("ü".to_owned(), "€".to_owned()),
        ]
        .into_iter()
        .collect(),
    };
    r.msg_id = 987_654_321;
    let want = r.content.clone();
    s.append(r).await.expect("append");
    let conv = ConvId::direct(&user("alice"), &user("bob"));
    let got = s.read_after(&app("a"), &conv, 0, 1).await.expect("read");
    assert_eq!(got[0].content, want);
    assert_eq!(got[0].msg_id, 987_654_321);
    assert_eq!(got[0].from_device.as_str(), "d1");
    assert_eq!(got[0].server_time, 1_700_000_000_000);
}

/// Entries keep their kind, mentions and reply; `count` counts only unread-counting
/// entries, cumulatively.
pub async fn entries_carry_kind_and_count<S: Store>(s: S) {
    let kinds = [
        EntryKind::GroupEvent,
        EntryKind::Message,
        EntryKind::Message,
        EntryKind::GroupEvent,
        EntryKind::Message,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let mut r = group_request("alice", &format!("c{i}"), *kind);
        if i == 2 {
            r.extras.mentions = vec![user("bob"), user("carol")];
            r.extras.reply_to = 2;
        }
        if i == 4 {
            r.extras.mention_all = true;
        }
        s.append(r).await.expect("append");
    }
    let conv = ConvId::group(&GroupId::new("g").expect("id"));
    let log = s.read_after(&app("a"), &conv, 0, 10).await.expect("read");
    let counts: Vec<u64> = log.iter().map(|m| m.count).collect();
    assert_eq!(counts, vec![0, 1, 2, 2, 3]);
    assert_eq!(log[0].kind, EntryKind::GroupEvent);
    assert_eq!(log[2].mentions, vec![user("bob"), user("carol")]);
    assert_eq!(log[2].reply_to, 2);
    assert!(log[4].mention_all && !log[2].mention_all);
    let (a, bob, dave) = (app("a"), user("bob"), user("dave"));
    assert_eq!(s.last_mention(&a, &conv, &bob).await.expect("mention"), 5);
    let mut r = group_request("alice", "c9", EntryKind::Message);
    r.extras.mentions = vec![bob.clone()];
    s.append(r).await.expect("append");
    assert_eq!(s.last_mention(&a, &conv, &bob).await.expect("mention"), 6);
    assert_eq!(s.last_mention(&a, &conv, &dave).await.expect("mention"), 5);
    assert_eq!(
        s.last_mention(&app("b"), &conv, &bob)
            .await
            .expect("mention"),
        0
    );
}

/// An append with a wrong `expect_seq` writes nothing, records included.
pub async fn expect_seq_guards_the_append<S: Store>(s: S) {
    let conv = ConvId::group(&GroupId::new("g").expect("id"));
    let mut r = group_request("alice", "c1", EntryKind::GroupEvent);
    r.expect_seq = Some(2);
    r.records = vec![put("x", b"1")];
    let err = s.append(r).await.expect_err("conflict");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.last_seq(&app("a"), &conv).await.expect("last"), 0);
    let got = s.get_record(&app("a"), Table::Members, "x").await;
    assert_eq!(got.expect("get"), None);
    let mut r = group_request("alice", "c1", EntryKind::GroupEvent);
    r.expect_seq = Some(1);
    r.records = vec![put("x", b"1")];
    s.append(r).await.expect("append");
    let got = s.get_record(&app("a"), Table::Members, "x").await;
    assert_eq!(got.expect("get"), Some(b"1".to_vec()));
}

fn put(key: &str, value: &[u8]) -> RecordWrite {
    RecordWrite {
        table: Table::Members,
        key: key.to_owned(),
        value: Some(value.to_vec()),
    }
}

/// Read positions move forward only, are clamped to the log, carry the entry count, are
/// listed per conversation by user, and a sender's own message moves theirs.
pub async fn read_positions_move_forward<S: Store>(s: S) {
    let (a, conv) = (app("a"), ConvId::group(&GroupId::new("g").expect("id")));
    for i in 0..4 {
        let kind = if i == 0 {
            EntryKind::GroupEvent
        } else {
            EntryKind::Message
        };
        s.append(group_request("alice", &format!("c{i}"), kind))
            .await
            .expect("append");
    }
    let (bob, carol) = (user("bob"), user("carol"));
    assert_eq!(
        s.read_position(&a, &conv, &bob).await.expect("read"),
        ReadPosition::default()
    );
    let p = s.mark_read(&a, &bob, &conv, 3, 7).await.expect("mark");
    assert_eq!((p.seq, p.count, p.version), (3, 2, 7));
    let p = s.mark_read(&a, &bob, &conv, 2, 8).await.expect("mark");
    assert_eq!((p.seq, p.version), (3, 7), "never moves back");
    let p = s.mark_read(&a, &carol, &conv, 99, 9).await.expect("mark");
    assert_eq!((p.seq, p.count), (4, 3), "clamped to the last seq");
    let mut mine = group_request("bob", "b1", EntryKind::Message);
    mine.sender_read = true;
    mine.msg_id = 42;
    s.append(mine).await.expect("append");
    let p = s.read_position(&a, &conv, &bob).await.expect("read");
    assert_eq!((p.seq, p.count, p.version), (5, 4, 42));
    let all = s.read_positions(&a, &conv, None, 10).await.expect("list");
    let users: Vec<_> = all.iter().map(|(u, p)| (u.as_str(), p.seq)).collect();
    assert_eq!(users, vec![("bob", 5), ("carol", 4)]);
    let rest = s
        .read_positions(&a, &conv, Some(&bob), 10)
        .await
        .expect("list");
    assert_eq!(rest.len(), 1);
    assert!(
        s.read_positions(&app("b"), &conv, None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Records: get, prefix scans with paging, deletes, all-or-nothing batches, per app.
pub async fn records_scan_by_prefix<S: Store>(s: S) {
    let a = app("a");
    let keys = ["g1:a", "g1:b", "g1:c", "g10:a", "g2:a"];
    let writes = keys.iter().map(|k| put(k, k.as_bytes())).collect();
    s.write_records(&a, writes).await.expect("write");
    s.write_records(&app("b"), vec![put("g1:z", b"other")])
        .await
        .expect("write");
    let scan = |prefix: &'static str, after: Option<&'static str>, limit| {
        let s = &s;
        let a = a.clone();
        async move {
            s.scan_records(&a, Table::Members, prefix, after, limit)
                .await
                .expect("scan")
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(scan("g1:", None, 10).await, vec!["g1:a", "g1:b", "g1:c"]);
    assert_eq!(scan("g1:", Some("g1:a"), 1).await, vec!["g1:b"]);
    assert_eq!(scan("g1:", Some("a"), 10).await.len(), 3);
    assert_eq!(scan("", None, 10).await.len(), 5);
    let none = s.scan_records(&a, Table::Groups, "", None, 10).await;
    assert!(none.expect("scan").is_empty(), "tables are separate");
    let del = RecordWrite {
        table: Table::Members,
        key: "g1:b".into(),
        value: None,
    };
    s.write_records(&a, vec![del, put("g1:d", b"d")])
        .await
        .expect("write");
    assert_eq!(scan("g1:", None, 10).await, vec!["g1:a", "g1:c", "g1:d"]);
    let got = s.get_record(&a, Table::Members, "g1:a").await.expect("get");
    assert_eq!(got.as_deref(), Some(&b"g1:a"[..]));
    let other = s.get_record(&app("b"), Table::Members, "g1:a").await;
    assert_eq!(other.expect("get"), None);
}

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh store built by
/// `$make`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            seq_starts_at_one_without_gaps,
            retry_returns_original,
            apps_are_isolated,
            paging_reads,
            conversation_index,
            concurrent_appends,
            content_roundtrips,
            entries_carry_kind_and_count,
            expect_seq_guards_the_append,
            read_positions_move_forward,
            records_scan_by_prefix
        );
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name($make).await;
            }
        )*
    };
}
