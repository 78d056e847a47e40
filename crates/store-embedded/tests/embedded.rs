//! What the embedded backend promises beyond the shared contract: durability across a clean
//! reopen (read positions, mentions and records too) and across SIGKILL, group commit, and
//! conversation-index order.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie_store::conformance::{group_request, request};
use magpie_store::{
    AppendOutcome, MessageStore, ReadStore, RecordStore, RecordWrite, StoreError, StoredMessage,
    Table, UserDirectory,
};
use magpie_store_embedded::{EmbeddedOptions, EmbeddedStore};
use magpie_types::{AppId, ConvId, EntryKind, GroupId, Seq, UserId};
use tempfile::TempDir;
use tokio::task::JoinSet;

fn app() -> AppId {
    AppId::new("a").expect("valid id")
}
fn user(s: &str) -> UserId {
    UserId::new(s).expect("valid id")
}
fn conv(a: &str, b: &str) -> ConvId {
    ConvId::direct(&user(a), &user(b))
}
fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).expect("open")
}
fn stored(outcome: AppendOutcome) -> StoredMessage {
    match outcome {
        AppendOutcome::Stored(m) => m,
        other => panic!("expected Stored, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(dir.path());
    let mut originals = Vec::new();
    for i in 0..20 {
        let out = store.append(request("a", "alice", "bob", &format!("b{i}"), "hi"));
        originals.push(stored(out.await.expect("append")));
    }
    for i in 0..5 {
        let out = store.append(request("a", "carol", "alice", &format!("c{i}"), "yo"));
        stored(out.await.expect("append"));
    }
    store.put_user(&app(), &user("alice")).await.expect("put");
    store.close().await.expect("close");

    let store = open(dir.path());
    let ab = conv("alice", "bob");
    let log = store.read_after(&app(), &ab, 0, 100).await.expect("read");
    assert_eq!(log, originals);
    assert_eq!(
        store
            .last_seq(&app(), &conv("alice", "carol"))
            .await
            .expect("seq"),
        5
    );
    // Dedup survives: a retry returns the original, even with other content.
    let retry = request("a", "alice", "bob", "b3", "changed");
    match store.append(retry).await.expect("append") {
        AppendOutcome::Duplicate(m) => assert_eq!(m, originals[3]),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    // The index and the directory survive.
    let index = store
        .conversations(&app(), &user("alice"), None, 10)
        .await
        .expect("index");
    let got: Vec<_> = index.iter().map(|e| (e.conv.clone(), e.last_seq)).collect();
    assert_eq!(got, [(ab.clone(), 20), (conv("alice", "carol"), 5)]);
    assert!(
        store
            .user_exists(&app(), &user("alice"))
            .await
            .expect("exists")
    );
    assert!(
        !store
            .user_exists(&app(), &user("bob"))
            .await
            .expect("exists")
    );
    // Seqs continue where they left off.
    let next = store
        .append(request("a", "bob", "alice", "new", "x"))
        .await
        .expect("append");
    assert_eq!(stored(next).seq, 21);
    drop(store); // Drop, not close: must release the directory too.

    let store = open(dir.path());
    assert_eq!(store.last_seq(&app(), &ab).await.expect("seq"), 21);
    store.close().await.expect("close");
}

/// Read positions, mentions, records and entry counts are durable too, and counts continue
/// after a reopen (the writer's cold cache reads the last entry's count from disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_mentions_and_records_survive_a_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let g = ConvId::group(&GroupId::new("g").expect("valid id"));
    let store = open(dir.path());
    for (i, kind) in [
        EntryKind::GroupEvent,
        EntryKind::Message,
        EntryKind::Message,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = group_request("alice", &format!("c{i}"), kind);
        if i == 1 {
            r.extras.mentions = vec![user("bob")];
            r.records = vec![RecordWrite {
                table: Table::Members,
                key: "g:bob".into(),
                value: Some(b"member".to_vec()),
            }];
        }
        stored(store.append(r).await.expect("append"));
    }
    let p = store
        .mark_read(&app(), &user("bob"), &g, 2, 9)
        .await
        .expect("mark");
    assert_eq!((p.seq, p.count), (2, 1));
    let groups = RecordWrite {
        table: Table::Groups,
        key: "g".into(),
        value: Some(b"profile".to_vec()),
    };
    store
        .write_records(&app(), vec![groups])
        .await
        .expect("write");
    store.close().await.expect("close");

    let store = open(dir.path());
    let p = store
        .read_position(&app(), &g, &user("bob"))
        .await
        .expect("read");
    assert_eq!((p.seq, p.count, p.version), (2, 1, 9));
    let mention = store.last_mention(&app(), &g, &user("bob")).await;
    assert_eq!(mention.expect("mention"), 2);
    let member = store.get_record(&app(), Table::Members, "g:bob").await;
    assert_eq!(member.expect("get").as_deref(), Some(&b"member"[..]));
    let profile = store.get_record(&app(), Table::Groups, "g").await;
    assert_eq!(profile.expect("get").as_deref(), Some(&b"profile"[..]));
    let next = group_request("alice", "c9", EntryKind::Message);
    let next = stored(store.append(next).await.expect("append"));
    assert_eq!((next.seq, next.count), (4, 3));
    let p = store
        .mark_read(&app(), &user("carol"), &g, 3, 1)
        .await
        .expect("mark");
    assert_eq!(
        (p.seq, p.count),
        (3, 2),
        "count of a committed entry, read from disk"
    );
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_opened_once() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(dir.path());
    let second = EmbeddedStore::open(dir.path(), EmbeddedOptions::default());
    assert!(matches!(second, Err(StoreError::Backend(_))), "{second:?}");
    store.close().await.expect("close");
}

/// Many concurrent appends share fsyncs. The exact batch boundaries are tested
/// deterministically in the writer's unit tests; here it is the public path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let dir = TempDir::new().expect("tempdir");
    let store = Arc::new(open(dir.path()));
    let mut tasks = JoinSet::new();
    for i in 0..500 {
        let store = store.clone();
        let peer = ["bob", "carol", "dave", "erin", "frank"][i % 5];
        tasks.spawn(async move {
            let out = store.append(request("a", "alice", peer, &format!("m{i}"), "x"));
            stored(out.await.expect("append"))
        });
    }
    let mut seqs = HashSet::new();
    while let Some(m) = tasks.join_next().await {
        let m = m.expect("task");
        assert!(seqs.insert((m.conv, m.seq)), "seq assigned twice");
    }
    let stats = store.stats();
    assert_eq!(stats.appends, 500);
    assert!(
        stats.commits >= 1 && stats.commits < stats.appends,
        "{stats:?}"
    );
}

/// Index keys must sort by conversation id, not by id length: "p2p:b:c" is shorter than
/// "p2p:alice:b" but comes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_pages_in_conversation_id_order() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(dir.path());
    for (to, cmid) in [("c", "1"), ("alice", "2"), ("bb", "3")] {
        stored(
            store
                .append(request("a", "b", to, cmid, "x"))
                .await
                .expect("append"),
        );
    }
    let list = store
        .conversations(&app(), &user("b"), None, 10)
        .await
        .expect("index");
    let ids: Vec<_> = list.iter().map(|e| e.conv.as_str()).collect();
    assert_eq!(ids, ["p2p:alice:b", "p2p:b:bb", "p2p:b:c"]);
    let page = store
        .conversations(&app(), &user("b"), Some(&list[0].conv), 1)
        .await
        .expect("index");
    assert_eq!(page[0].conv.as_str(), "p2p:b:bb");
    store.close().await.expect("close");
}

const CHILD_DIR: &str = "MAGPIE_TEST_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "MAGPIE_TEST_CRASH_CHILD_ROUND";
const PEERS: [&str; 2] = ["bob", "carol"];

/// The child process of [`acked_appends_survive_sigkill`]; without its environment variable
/// it returns at once. It appends from 16 tasks as fast as it can and prints every
/// acknowledged append as `ACK <peer> <seq> <client_msg_id>` until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND).expect("round");
    let store = Arc::new(open(Path::new(&dir)));
    // libtest may have printed "test crash_child ... " without a newline.
    println!();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = JoinSet::new();
    for w in 0..16 {
        let (store, round) = (store.clone(), round.clone());
        tasks.spawn(async move {
            let peer = PEERS[w % PEERS.len()];
            let mut i = 0u64;
            // The deadline only guards against an orphaned child; the parent kills it first.
            while Instant::now() < deadline {
                let cmid = format!("r{round}w{w}i{i}");
                let out = store.append(request("a", "alice", peer, &cmid, "x"));
                let seq = stored(out.await.expect("append")).seq;
                println!("ACK {peer} {seq} {cmid}");
                i += 1;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
}

/// Kills a child that appends flat out with SIGKILL, three times on one directory; after
/// each kill every acknowledged append must be there, seqs must have no gaps, no
/// client_msg_id may be stored twice, and appends must continue at the next seq.
#[test]
fn acked_appends_survive_sigkill() {
    let dir = TempDir::new().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // (peer, seq) -> client_msg_id, of every acknowledged append so far.
    let mut acked = BTreeMap::new();
    for (round, kill_after) in [150, 300, 450].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut acks = 0;
        let mut killed = false;
        // Read to EOF even after the kill: lines printed before death were acknowledged.
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read child output");
            let Some(ack) = line.strip_prefix("ACK ") else {
                continue;
            };
            let (peer, seq, cmid) = parse_ack(ack);
            let before = acked.insert((peer.clone(), seq), cmid);
            assert!(before.is_none(), "seq {seq} with {peer} acknowledged twice");
            acks += 1;
            if acks == kill_after && !killed {
                child.kill().expect("kill child");
                killed = true;
            }
        }
        let status = child.wait().expect("wait child");
        assert!(killed, "child exited by itself after {acks} acks: {status}");
        rt.block_on(check_after_crash(dir.path(), round, &mut acked));
    }
}

fn parse_ack(ack: &str) -> (String, Seq, String) {
    let mut parts = ack.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(peer), Some(seq), Some(cmid)) => {
            (peer.to_owned(), seq.parse().expect("seq"), cmid.to_owned())
        }
        _ => panic!("malformed ack line {ack:?}"),
    }
}

async fn check_after_crash(dir: &Path, round: usize, acked: &mut BTreeMap<(String, Seq), String>) {
    let store = open(dir);
    for peer in PEERS {
        let c = conv("alice", peer);
        let log = store
            .read_after(&app(), &c, 0, usize::MAX)
            .await
            .expect("read");
        let last = log.len() as Seq;
        let seqs: Vec<_> = log.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=last).collect::<Vec<_>>(),
            "gap in the log with {peer}"
        );
        let cmids: HashSet<_> = log.iter().map(|m| m.client_msg_id.as_str()).collect();
        assert_eq!(cmids.len(), log.len(), "a client_msg_id stored twice");
        for ((p, seq), cmid) in acked.iter().filter(|((p, _), _)| p == peer) {
            let at = usize::try_from(*seq - 1).expect("small seq");
            let got = log.get(at).map(|m| m.client_msg_id.as_str());
            assert_eq!(got, Some(cmid.as_str()), "acked {p} #{seq} lost");
        }
        // Message, dedup record and index entry were one atomic commit.
        assert_eq!(store.last_seq(&app(), &c).await.expect("seq"), last);
        let index = store
            .conversations(&app(), &user("alice"), None, 10)
            .await
            .expect("index");
        let entry = index.iter().find(|e| e.conv == c).map(|e| e.last_seq);
        assert_eq!(
            entry,
            (last > 0).then_some(last),
            "index disagrees with log"
        );
        if let Some(newest) = log.last() {
            let retry = request("a", "alice", peer, newest.client_msg_id.as_str(), "again");
            match store.append(retry).await.expect("append") {
                AppendOutcome::Duplicate(m) => assert_eq!(&m, newest),
                other => panic!("expected Duplicate, got {other:?}"),
            }
        }
        // Appends continue right after the recovered end of the log.
        let cmid = format!("parent{round}{peer}");
        let next = stored(
            store
                .append(request("a", "alice", peer, &cmid, "x"))
                .await
                .expect("append"),
        );
        assert_eq!(next.seq, last + 1);
        acked.insert((peer.to_owned(), next.seq), cmid);
    }
    store.close().await.expect("close");
}
