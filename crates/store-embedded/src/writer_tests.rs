//! Unit tests of the writer, driven synchronously (no thread, no runtime) so that batch
//! boundaries are exact rather than timing-dependent.

use magpie_store::Table;
use magpie_store::conformance::{group_request, request};
use magpie_types::{EntryKind, GroupId};
use tempfile::TempDir;

use super::*;

type Answer = oneshot::Receiver<Result<AppendOutcome, StoreError>>;

fn writer(dir: &TempDir, max_batch: usize, seq_cache_capacity: usize) -> Writer {
    let tables = Tables::open(dir.path()).expect("open");
    writer_on(&tables, max_batch, seq_cache_capacity)
}

fn writer_on(tables: &Tables, max_batch: usize, seq_cache_capacity: usize) -> Writer {
    Writer {
        tables: tables.clone(),
        max_batch,
        tails: HashMap::new(),
        tail_cache_capacity: seq_cache_capacity,
        counters: Arc::default(),
        fail_commits: false,
    }
}

fn append_to(to: &str, cmid: &str) -> (Request, Answer) {
    let (reply, answer) = oneshot::channel();
    let req = Box::new(request("a", "alice", to, cmid, cmid));
    (Request::Append { req, reply }, answer)
}

fn append(cmid: &str) -> (Request, Answer) {
    append_to("bob", cmid)
}

fn put_user(name: &str) -> (Request, oneshot::Receiver<Result<(), StoreError>>) {
    let (reply, answer) = oneshot::channel();
    let app = AppId::new("a").expect("id");
    let user = UserId::new(name).expect("id");
    (Request::PutUser { app, user, reply }, answer)
}

fn stored_seq(mut answer: Answer) -> Seq {
    match answer.try_recv().expect("answered") {
        Ok(AppendOutcome::Stored(m)) => m.seq,
        other => panic!("expected Stored, got {other:?}"),
    }
}

fn commits(w: &Writer) -> u64 {
    w.counters.commits.load(Ordering::Relaxed)
}

fn log_cmids(w: &Writer, to: &str) -> Vec<(Seq, String)> {
    let (app, alice) = (
        AppId::new("a").expect("id"),
        UserId::new("alice").expect("id"),
    );
    let conv = ConvId::direct(&alice, &UserId::new(to).expect("id"));
    read::read_after(&w.tables, &app, &conv, 0, usize::MAX)
        .expect("read")
        .into_iter()
        .map(|m| (m.seq, m.client_msg_id.as_str().to_owned()))
        .collect()
}

#[test]
fn one_batch_is_one_commit_with_consecutive_seqs() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (mut reqs, answers): (Vec<_>, Vec<_>) = (0..500).map(|i| append(&format!("m{i}"))).unzip();
    // A retry of a message staged earlier in the same batch.
    let (retry, mut retry_answer) = append("m7");
    reqs.push(retry);
    w.process(reqs.into_iter());

    assert_eq!(commits(&w), 1);
    let seqs: Vec<_> = answers.into_iter().map(stored_seq).collect();
    assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
    match retry_answer.try_recv().expect("answered") {
        Ok(AppendOutcome::Duplicate(m)) => assert_eq!((m.seq, m.client_msg_id.as_str()), (8, "m7")),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(log_cmids(&w, "bob").len(), 500);
    assert_eq!(w.counters.appends.load(Ordering::Relaxed), 501);
}

#[test]
fn run_drains_the_queue_in_batches_of_at_most_max_batch() {
    let dir = TempDir::new().expect("tempdir");
    let w = writer(&dir, 100, 1000);
    let (tx, rx) = mpsc::channel(300);
    let mut answers = Vec::new();
    for i in 0..250 {
        let (req, answer) = append(&format!("m{i}"));
        assert!(tx.try_send(req).is_ok(), "queue has room");
        answers.push(answer);
    }
    drop(tx);
    let counters = w.counters.clone();
    // Queued before the writer starts: it must take them 100, 100, then 50 at a time.
    w.run(rx);
    assert_eq!(counters.commits.load(Ordering::Relaxed), 3);
    let seqs: Vec<_> = answers.into_iter().map(stored_seq).collect();
    assert_eq!(seqs, (1..=250).collect::<Vec<_>>());
}

#[test]
fn failed_commit_fails_the_batch_and_skips_no_seq() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (reqs, answers): (Vec<_>, Vec<_>) = ["a1", "a2", "a3"].map(append).into_iter().unzip();
    w.process(reqs.into_iter());
    assert_eq!(
        answers.into_iter().map(stored_seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    w.fail_commits = true;
    let (reqs, answers): (Vec<_>, Vec<_>) = [append("b1"), append("b2"), append("a1")]
        .into_iter()
        .unzip();
    w.process(reqs.into_iter());
    for mut answer in answers {
        let got = answer.try_recv().expect("answered");
        assert!(matches!(got, Err(StoreError::Backend(_))), "{got:?}");
    }
    assert_eq!(commits(&w), 1);

    w.fail_commits = false;
    let (reqs, answers): (Vec<_>, Vec<_>) = ["b1", "b2"].map(append).into_iter().unzip();
    w.process(reqs.into_iter());
    // The failed batch's seqs (4, 5) are reused, and its messages were never stored, so
    // their retries are new messages, not duplicates.
    assert_eq!(
        answers.into_iter().map(stored_seq).collect::<Vec<_>>(),
        [4, 5]
    );
    let log = log_cmids(&w, "bob");
    let cmids: Vec<_> = log.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(cmids, ["a1", "a2", "a3", "b1", "b2"]);
}

#[test]
fn seqs_continue_from_disk_and_survive_cache_eviction() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1);
    // Alternating conversations with a one-entry cache: every append evicts the other.
    for i in 1..=5u64 {
        for to in ["bob", "carol"] {
            let (req, answer) = append_to(to, &format!("{to}{i}"));
            w.process(std::iter::once(req));
            assert_eq!(stored_seq(answer), i);
        }
    }
    // A fresh writer (cold cache) continues where the log ends.
    let mut cold = writer_on(&w.tables, 1024, 1000);
    let (req, answer) = append_to("carol", "carol6");
    cold.process(std::iter::once(req));
    assert_eq!(stored_seq(answer), 6);
}

#[test]
fn put_user_writes_once() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (reqs, mut answers): (Vec<_>, Vec<_>) =
        [put_user("zed"), put_user("zed")].into_iter().unzip();
    w.process(reqs.into_iter());
    assert_eq!(commits(&w), 1);
    for answer in &mut answers {
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    }
    let (req, mut answer) = put_user("zed");
    w.process(std::iter::once(req));
    assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    assert_eq!(commits(&w), 1, "a known user needs no commit");
    let app = AppId::new("a").expect("id");
    assert!(read::user_exists(&w.tables, &app, &UserId::new("zed").expect("id")).expect("read"));
    assert!(!read::user_exists(&w.tables, &app, &UserId::new("amy").expect("id")).expect("read"));
}

fn group_append(from: &str, cmid: &str, kind: EntryKind) -> (Request, Answer) {
    let (reply, answer) = oneshot::channel();
    let req = Box::new(group_request(from, cmid, kind));
    (Request::Append { req, reply }, answer)
}

type ReadAnswer = oneshot::Receiver<Result<ReadPosition, StoreError>>;

fn mark_read(user: &str, seq: Seq, version: u64) -> (Request, ReadAnswer) {
    let (reply, answer) = oneshot::channel();
    let request = Request::MarkRead {
        app: AppId::new("a").expect("id"),
        user: UserId::new(user).expect("id"),
        conv: group(),
        seq,
        version,
        reply,
    };
    (request, answer)
}

fn write_records(writes: Vec<RecordWrite>) -> (Request, oneshot::Receiver<Result<(), StoreError>>) {
    let (reply, answer) = oneshot::channel();
    let app = AppId::new("a").expect("id");
    (Request::WriteRecords { app, writes, reply }, answer)
}

fn group() -> ConvId {
    ConvId::group(&GroupId::new("g").expect("id"))
}

fn stored(mut answer: Answer) -> StoredMessage {
    match answer.try_recv().expect("answered") {
        Ok(AppendOutcome::Stored(m)) => m,
        other => panic!("expected Stored, got {other:?}"),
    }
}

fn position(mut answer: ReadAnswer) -> (Seq, u64, u64) {
    let p = answer.try_recv().expect("answered").expect("mark_read");
    (p.seq, p.count, p.version)
}

fn record(key: &str, value: Option<&[u8]>) -> RecordWrite {
    RecordWrite {
        table: Table::Members,
        key: key.to_owned(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn stored_position(w: &Writer, user: &str) -> ReadPosition {
    let (app, user) = (AppId::new("a").expect("id"), UserId::new(user).expect("id"));
    read::read_position(&w.tables, &app, &group(), &user).expect("read")
}

#[test]
fn a_batch_sees_the_counts_and_positions_it_staged() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (e1, a1) = group_append("alice", "c1", EntryKind::GroupEvent);
    let (e2, a2) = group_append("alice", "c2", EntryKind::Message);
    let (e3, a3) = group_append("alice", "c3", EntryKind::Message);
    // On an entry staged before it, and not the last one: its count is only in the batch.
    let (r1, p1) = mark_read("bob", 2, 10);
    // Behind the position staged just before: the staged one stays in force.
    let (r2, p2) = mark_read("bob", 1, 11);
    let (r3, p3) = mark_read("carol", 99, 12);
    let mut own = group_request("bob", "b1", EntryKind::Message);
    own.sender_read = true;
    own.msg_id = 77;
    let (reply, a4) = oneshot::channel();
    let e4 = Request::Append {
        req: Box::new(own),
        reply,
    };
    w.process([e1, e2, e3, r1, r2, r3, e4].into_iter());

    assert_eq!(commits(&w), 1);
    let counts: Vec<_> = [a1, a2, a3, a4]
        .into_iter()
        .map(|a| stored(a).count)
        .collect();
    assert_eq!(counts, [0, 1, 2, 3]);
    assert_eq!(position(p1), (2, 1, 10));
    assert_eq!(position(p2), (2, 1, 10), "never moves back");
    assert_eq!(position(p3), (3, 2, 12), "clamped to the staged last seq");
    let bob = stored_position(&w, "bob");
    assert_eq!((bob.seq, bob.count, bob.version), (4, 3, 77));
    assert_eq!(stored_position(&w, "carol").seq, 3);
}

#[test]
fn failed_commit_keeps_the_committed_tail_and_positions() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (e1, _) = group_append("alice", "c1", EntryKind::Message);
    let (e2, _) = group_append("alice", "c2", EntryKind::GroupEvent);
    w.process([e1, e2].into_iter());

    w.fail_commits = true;
    let (e3, a3) = group_append("alice", "c3", EntryKind::Message);
    let (r, mut p) = mark_read("bob", 3, 1);
    let (rec, mut done) = write_records(vec![record("k", Some(b"v"))]);
    w.process([e3, r, rec].into_iter());
    let mut a3 = a3;
    assert!(matches!(a3.try_recv(), Ok(Err(StoreError::Backend(_)))));
    assert!(matches!(p.try_recv(), Ok(Err(StoreError::Backend(_)))));
    assert!(matches!(done.try_recv(), Ok(Err(StoreError::Backend(_)))));

    w.fail_commits = false;
    let (e3, a3) = group_append("alice", "c3", EntryKind::Message);
    let (r, p) = mark_read("bob", 2, 2);
    w.process([e3, r].into_iter());
    let m = stored(a3);
    assert_eq!(
        (m.seq, m.count),
        (3, 2),
        "continues from the committed tail"
    );
    assert_eq!(
        position(p),
        (2, 1, 2),
        "the failed position was never in force"
    );
    let app = AppId::new("a").expect("id");
    let got = read::get_record(&w.tables, &app, Table::Members, "k").expect("get");
    assert_eq!(got, None);
}

#[test]
fn expect_seq_conflict_stages_nothing_of_its_request() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (e1, a1) = group_append("alice", "c1", EntryKind::Message);
    let mut wrong = group_request("alice", "c2", EntryKind::GroupEvent);
    wrong.expect_seq = Some(1);
    wrong.records = vec![record("wrong", Some(b"x"))];
    wrong.extras.mention_all = true;
    wrong.sender_read = true;
    let (reply, mut a2) = oneshot::channel();
    let e2 = Request::Append {
        req: Box::new(wrong),
        reply,
    };
    // Expects the seq the first append of this batch made the next one.
    let mut right = group_request("alice", "c3", EntryKind::GroupEvent);
    right.expect_seq = Some(2);
    right.records = vec![record("right", Some(b"y"))];
    let (reply, a3) = oneshot::channel();
    let e3 = Request::Append {
        req: Box::new(right),
        reply,
    };
    w.process([e1, e2, e3].into_iter());

    assert_eq!(stored(a1).seq, 1);
    assert!(matches!(a2.try_recv(), Ok(Err(StoreError::Conflict(_)))));
    assert_eq!(stored(a3).seq, 2);
    let app = AppId::new("a").expect("id");
    let get = |k| read::get_record(&w.tables, &app, Table::Members, k).expect("get");
    assert_eq!(get("wrong"), None);
    assert_eq!(get("right"), Some(b"y".to_vec()));
    let bob = UserId::new("bob").expect("id");
    assert_eq!(
        read::last_mention(&w.tables, &app, &group(), &bob).expect("read"),
        0
    );
    assert_eq!(stored_position(&w, "alice"), ReadPosition::default());
}

#[test]
fn record_writes_of_one_key_in_a_batch_keep_the_last() {
    let dir = TempDir::new().expect("tempdir");
    let mut w = writer(&dir, 1024, 1000);
    let (first, _) = write_records(vec![record("gone", Some(b"1")), record("kept", None)]);
    let (second, _) = write_records(vec![record("gone", None), record("kept", Some(b"2"))]);
    let (empty, mut done) = write_records(Vec::new());
    w.process([first, second, empty].into_iter());
    assert!(matches!(done.try_recv(), Ok(Ok(()))));
    assert_eq!(commits(&w), 1);
    let app = AppId::new("a").expect("id");
    let scan = read::scan_records(&w.tables, &app, Table::Members, "", None, 10).expect("scan");
    assert_eq!(scan, [("kept".to_owned(), b"2".to_vec())]);
    // A request with nothing to write needs no commit.
    let (empty, _) = write_records(Vec::new());
    w.process(std::iter::once(empty));
    assert_eq!(commits(&w), 1);
}

#[test]
fn counts_continue_from_version_1_entries_on_disk() {
    let dir = TempDir::new().expect("tempdir");
    let tables = Tables::open(dir.path()).expect("open");
    let app = AppId::new("a").expect("id");
    for seq in 1..=2 {
        let key = keys::message_key(&app, &group(), seq).expect("key");
        tables
            .messages
            .insert(key, crate::codec::V1_MESSAGE)
            .expect("insert");
    }
    // A cold writer loads the tail from the last (version-1) entry: count == seq.
    let mut w = writer_on(&tables, 1024, 1000);
    let (e3, a3) = group_append("alice", "c3", EntryKind::GroupEvent);
    let (e4, a4) = group_append("alice", "c4", EntryKind::Message);
    let (r, p) = mark_read("bob", 1, 5);
    w.process([e3, e4, r].into_iter());
    assert_eq!((stored(a3).count, stored(a4).count), (2, 3));
    assert_eq!(
        position(p),
        (1, 1, 5),
        "a version-1 entry's count is its seq"
    );
    let log = read::read_after(&tables, &app, &group(), 0, 10).expect("read");
    let counts: Vec<_> = log.iter().map(|m| (m.seq, m.count)).collect();
    assert_eq!(counts, [(1, 1), (2, 2), (3, 2), (4, 3)]);
}
