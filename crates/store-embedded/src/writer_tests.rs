//! Unit tests of the writer, driven synchronously (no thread, no runtime) so that batch
//! boundaries are exact rather than timing-dependent.

use magpie_store::conformance::request;
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
        seq_cache: HashMap::new(),
        seq_cache_capacity,
        counters: Arc::default(),
        fail_commits: false,
    }
}

fn append_to(to: &str, cmid: &str) -> (Request, Answer) {
    let (reply, answer) = oneshot::channel();
    let req = request("a", "alice", to, cmid, cmid);
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
