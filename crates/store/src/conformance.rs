//! The conformance suite: the storage contract as tests, run by every backend.
//!
//! A backend's test module invokes [`crate::store_conformance_tests!`] with an expression that
//! builds a fresh, empty store; the macro expands to one `#[tokio::test]` per check, so a
//! failure names the broken rule. The checks are plain async functions so that a backend may
//! also call them directly.

use std::collections::HashSet;
use std::sync::Arc;

use magpie_types::{AppId, ClientMsgId, Content, ConvId, DeviceId, UserId};

use crate::model::{AppendOutcome, AppendRequest};
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
    }
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
            content_roundtrips
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
