//! The live-room ordering rule: unit tests, an exhaustive test over every arrival order of
//! duplicated messages, and a model-based property test (a server with a short log that
//! evicts, retransmissions, reordering, fetches and reconnects).

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

/// Messages are their own seq (0 for NORMAL / LOW).
type Order = RoomOrder<Seq>;

fn t0() -> Instant {
    Instant::now()
}

fn joined(base: Seq, now: Instant) -> Order {
    let mut o = Order::joining();
    let mut out = Vec::new();
    o.on_joined(0, base, Vec::new(), false, now, &mut out);
    assert!(out.is_empty());
    o
}

fn feed(o: &mut Order, seqs: &[Seq], now: Instant) -> Vec<Step<Seq>> {
    let mut out = Vec::new();
    for &s in seqs {
        o.on_message(s, s, now, &mut out);
    }
    out
}

fn delivered(steps: &[Step<Seq>]) -> Vec<Seq> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Deliver(m) => Some(*m),
            Step::Gap { .. } => None,
        })
        .collect()
}

#[test]
fn duplicates_are_dropped_and_out_of_order_is_held_until_the_gap_fills() {
    let now = t0();
    let mut o = joined(0, now);
    assert_eq!(delivered(&feed(&mut o, &[1, 2], now)), [1, 2]);
    assert_eq!(o.take_ack(), Some(2));
    // A retransmitted 2 and an early 4: nothing to deliver; the duplicate is acked again.
    assert!(feed(&mut o, &[2, 4], now).is_empty());
    assert_eq!(o.take_ack(), Some(2));
    assert_eq!(o.next_timer(), Some(now + GAP_WAIT), "the gap is open");
    assert_eq!(delivered(&feed(&mut o, &[3], now)), [3, 4]);
    assert_eq!(o.take_ack(), Some(4));
    assert_eq!(o.take_ack(), None, "once");
    assert_eq!(o.next_timer(), None, "the gap is closed");
}

#[test]
fn unreliable_messages_pass_at_once_in_batch_order() {
    let now = t0();
    let mut o = joined(0, now);
    // 2 is held; the NORMAL message behind it is not.
    assert_eq!(delivered(&feed(&mut o, &[2, 0, 1], now)), [0, 1, 2]);
    let mut fresh = Order::joining();
    assert_eq!(
        delivered(&feed(&mut fresh, &[0], now)),
        [0],
        "even while joining"
    );
    assert_eq!(fresh.take_ack(), None);
}

#[test]
fn messages_before_the_join_answer_wait_for_the_base() {
    let now = t0();
    let mut o = Order::joining();
    assert!(feed(&mut o, &[10, 12, 11], now).is_empty());
    assert_eq!(o.next_timer(), None, "no base, no gap");
    let mut out = Vec::new();
    // The room was at 10 when the connection joined: 10 is not ours; 11 and 12 are.
    o.on_joined(0, 10, Vec::new(), false, now, &mut out);
    assert_eq!(delivered(&out), [11, 12]);
    assert_eq!(o.take_ack(), Some(12));
}

#[test]
fn rejoin_answer_is_applied_without_doubles() {
    let now = t0();
    let mut o = joined(0, now);
    feed(&mut o, &[1, 2, 3, 4, 6], now);
    o.connection_lost();
    assert_eq!(o.next_timer(), None, "the rejoin will tell");
    let mut out = Vec::new();
    let log = (3..=7).map(|s| (s, s)).collect();
    o.on_joined(4, 7, log, false, now, &mut out);
    assert_eq!(delivered(&out), [5, 6, 7]);
    assert_eq!(o.take_ack(), Some(7));
}

#[test]
fn a_gap_still_open_is_fetched_and_evicted_seqs_are_skipped() {
    let now = t0();
    let mut o = joined(0, now);
    feed(&mut o, &[1, 5], now);
    assert_eq!(o.poll_fetch(now), None, "wait for retransmissions first");
    let later = now + GAP_WAIT;
    assert_eq!(o.poll_fetch(later), Some(1));
    assert_eq!(o.poll_fetch(later), None, "one fetch at a time");
    assert_eq!(o.next_timer(), None);
    // The log lost 2 and 3; it still has 4 and 5.
    let mut out = Vec::new();
    o.on_fetched(vec![(4, 4), (5, 5)], true, 5, later, &mut out);
    assert_eq!(
        out,
        [
            Step::Gap { from: 2, to: 3 },
            Step::Deliver(4),
            Step::Deliver(5)
        ]
    );
    assert_eq!(o.take_ack(), Some(5));
    assert_eq!(o.next_timer(), None);
}

#[test]
fn a_fetch_that_fills_part_waits_again_and_failures_retry() {
    let now = t0();
    let mut o = joined(0, now);
    feed(&mut o, &[9], now);
    let t1 = now + GAP_WAIT;
    assert_eq!(o.poll_fetch(t1), Some(0));
    o.fetch_failed(t1);
    assert_eq!(o.next_timer(), Some(t1 + GAP_WAIT));
    let t2 = t1 + GAP_WAIT;
    assert_eq!(o.poll_fetch(t2), Some(0));
    let mut out = Vec::new();
    o.on_fetched(vec![(1, 1), (2, 2)], false, 9, t2, &mut out);
    assert_eq!(delivered(&out), [1, 2]);
    assert_eq!(o.next_timer(), Some(t2 + GAP_WAIT), "3..=8 still missing");
}

#[test]
fn a_server_that_cannot_fill_the_gap_is_skipped_not_waited_for_forever() {
    let now = t0();
    let mut o = joined(0, now);
    feed(&mut o, &[3], now);
    let t1 = now + GAP_WAIT;
    assert_eq!(o.poll_fetch(t1), Some(0));
    let mut out = Vec::new();
    o.on_fetched(Vec::new(), false, 3, t1, &mut out);
    assert_eq!(out, [Step::Gap { from: 1, to: 2 }, Step::Deliver(3)]);
}

#[test]
fn a_gap_left_by_a_join_answer_is_fetched_at_once() {
    let now = t0();
    let mut o = joined(0, now);
    o.connection_lost();
    // Rejoining from 0 brings nothing, but the room has moved on to 2.
    let mut out = Vec::new();
    o.on_joined(0, 2, Vec::new(), false, now, &mut out);
    assert!(out.is_empty());
    assert_eq!(o.next_timer(), Some(now));
    assert_eq!(o.poll_fetch(now), Some(0));
    o.on_fetched(vec![(1, 1), (2, 2)], false, 2, now, &mut out);
    assert_eq!(delivered(&out), [1, 2]);
    assert_eq!(o.next_timer(), None);
}

#[test]
fn join_with_gap_and_nothing_left_skips_to_the_last_seq() {
    let now = t0();
    let mut o = Order::joining();
    let mut out = Vec::new();
    o.on_joined(3, 8, Vec::new(), true, now, &mut out);
    assert_eq!(out, [Step::Gap { from: 4, to: 8 }]);
    assert_eq!(o.delivered(), Some(8));
    assert_eq!(o.take_ack(), Some(8));
}

#[test]
fn held_messages_are_bounded() {
    let now = t0();
    let mut o = joined(0, now);
    let far: Vec<Seq> = (2..=(MAX_HELD as Seq + 10)).collect();
    assert!(feed(&mut o, &far, now).is_empty());
    assert_eq!(o.held.len(), MAX_HELD);
    // The nearest are kept; the rest come again (they were never acked).
    let out = feed(&mut o, &[1], now);
    assert_eq!(out.len(), MAX_HELD + 1);
}

// ---- exhaustive: every arrival order of duplicated messages -----------------------------

/// Every distinct permutation of `items` (a multiset), by recursion over the remaining
/// counts.
fn permutations(counts: &mut Vec<(Seq, usize)>, prefix: &mut Vec<Seq>, all: &mut Vec<Vec<Seq>>) {
    if counts.iter().all(|(_, n)| *n == 0) {
        all.push(prefix.clone());
        return;
    }
    for i in 0..counts.len() {
        if counts[i].1 == 0 {
            continue;
        }
        counts[i].1 -= 1;
        prefix.push(counts[i].0);
        permutations(counts, prefix, all);
        prefix.pop();
        counts[i].1 += 1;
    }
}

#[test]
fn every_arrival_order_with_duplicates_delivers_once_in_order() {
    // Seqs 1..=4 twice each and one NORMAL message: 22 680 orders.
    let mut counts = vec![(0, 1), (1, 2), (2, 2), (3, 2), (4, 2)];
    let mut all = Vec::new();
    permutations(&mut counts, &mut Vec::new(), &mut all);
    assert_eq!(all.len(), 22_680);
    let now = t0();
    for arrival in all {
        let mut o = joined(0, now);
        let out = feed(&mut o, &arrival, now);
        let high: Vec<Seq> = delivered(&out).into_iter().filter(|s| *s != 0).collect();
        assert_eq!(high, [1, 2, 3, 4], "arrival {arrival:?}");
        assert_eq!(delivered(&out).len(), 5, "the NORMAL one once: {arrival:?}");
        assert_eq!(o.take_ack(), Some(4));
        assert_eq!(o.next_timer(), None);
    }
}

// ---- model-based: a short log that evicts, retransmissions, fetches, reconnects ---------

#[derive(Debug, Clone)]
enum Op {
    /// The room accepts a new HIGH message (and sends it: it may arrive or not).
    Store,
    /// A NORMAL message arrives.
    Unreliable,
    /// The copy of this seq (wrapped into the stored ones) arrives: a first copy, a
    /// retransmission, or a stale duplicate.
    Arrive(usize),
    /// The server's short log evicts its oldest message.
    Evict,
    /// Time passes; a fetch the rule asks for is sent.
    Tick,
    /// The fetch in flight is answered from the log as it is now.
    AnswerFetch,
    /// The fetch in flight fails.
    FailFetch,
    /// The connection drops; the client rejoins with the seq it has.
    Reconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Store),
        1 => Just(Op::Unreliable),
        6 => any::<usize>().prop_map(Op::Arrive),
        1 => Just(Op::Evict),
        2 => Just(Op::Tick),
        1 => Just(Op::AnswerFetch),
        1 => Just(Op::FailFetch),
        1 => Just(Op::Reconnect),
    ]
}

/// The model server: a log of seqs `1..=last`, of which `..=evicted` are gone.
struct Server {
    last: Seq,
    evicted: Seq,
}

const FETCH_LIMIT: usize = 3;

impl Server {
    /// The log after `since`: up to `limit` messages, and whether some were evicted.
    fn read(&self, since: Seq, limit: usize) -> (Vec<(Seq, Seq)>, bool) {
        let from = since.max(self.evicted) + 1;
        let messages = (from..=self.last).take(limit).map(|s| (s, s)).collect();
        (messages, self.evicted > since)
    }
}

/// Records steps with how far the log had evicted when they were taken.
fn record(out: Vec<Step<Seq>>, evicted: Seq, steps: &mut Vec<(Step<Seq>, Seq)>) {
    steps.extend(out.into_iter().map(|s| (s, evicted)));
}

/// Checks the steps so far: HIGH seqs delivered in order, each once, gaps only over seqs the
/// log had evicted, together covering `1..=delivered` without overlap.
fn check(steps: &[(Step<Seq>, Seq)], unreliable: usize) -> Seq {
    let mut next = 1;
    let mut normals = 0;
    for (step, evicted_then) in steps {
        match step {
            Step::Deliver(0) => normals += 1,
            Step::Deliver(s) => {
                assert_eq!(*s, next, "in order, once: {steps:?}");
                next += 1;
            }
            Step::Gap { from, to } => {
                assert_eq!(*from, next, "a gap starts at the next seq: {steps:?}");
                assert!(from <= to);
                assert!(
                    to <= evicted_then,
                    "only evicted seqs are skipped: {steps:?}"
                );
                next = to + 1;
            }
        }
    }
    assert_eq!(normals, unreliable, "every NORMAL message once");
    next - 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn high_messages_reach_the_app_once_in_order(ops in prop::collection::vec(op(), 1..120)) {
        let mut server = Server { last: 0, evicted: 0 };
        let mut order = Order::joining();
        let mut now = t0();
        let mut steps: Vec<(Step<Seq>, Seq)> = Vec::new();
        let mut unreliable = 0;
        let mut acked: Seq = 0;
        let mut fetch: Option<Seq> = None;
        // The first join: the room is empty.
        let mut out = Vec::new();
        order.on_joined(0, 0, Vec::new(), false, now, &mut out);
        record(out, server.evicted, &mut steps);

        for op in ops {
            let mut out = Vec::new();
            match op {
                Op::Store => server.last += 1,
                Op::Unreliable => {
                    unreliable += 1;
                    order.on_message(0, 0, now, &mut out);
                }
                Op::Arrive(i) => {
                    if server.last > 0 {
                        let seq = (i as Seq % server.last) + 1;
                        order.on_message(seq, seq, now, &mut out);
                    }
                }
                Op::Evict => server.evicted = (server.evicted + 1).min(server.last),
                Op::Tick => {
                    now += Duration::from_millis(1000);
                    if let Some(since) = order.poll_fetch(now) {
                        prop_assert!(fetch.is_none(), "one fetch at a time");
                        fetch = Some(since);
                    }
                }
                Op::AnswerFetch => {
                    if let Some(since) = fetch.take() {
                        let (messages, gap) = server.read(since, FETCH_LIMIT);
                        order.on_fetched(messages, gap, server.last, now, &mut out);
                    }
                }
                Op::FailFetch => {
                    if fetch.take().is_some() {
                        order.fetch_failed(now);
                    }
                }
                Op::Reconnect => {
                    fetch = None;
                    order.connection_lost();
                    let since = order.delivered().unwrap();
                    let (messages, gap) = server.read(since, usize::MAX);
                    order.on_joined(since, server.last, messages, gap, now, &mut out);
                }
            }
            record(out, server.evicted, &mut steps);
            if let Some(ack) = order.take_ack() {
                prop_assert!(ack >= acked, "acks never go back");
                prop_assert_eq!(Some(ack), order.delivered(), "acks are what was delivered");
                acked = ack;
            }
            check(&steps, unreliable);
        }

        // The server retransmits everything not acknowledged, and the rule catches up.
        if let Some(since) = fetch.take() {
            let (messages, gap) = server.read(since, FETCH_LIMIT);
            let mut out = Vec::new();
            order.on_fetched(messages, gap, server.last, now, &mut out);
            record(out, server.evicted, &mut steps);
        }
        let mut out = Vec::new();
        for seq in (acked + 1)..=server.last {
            order.on_message(seq, seq, now, &mut out);
        }
        record(out, server.evicted, &mut steps);
        prop_assert_eq!(check(&steps, unreliable), server.last, "everything, in the end");
        prop_assert_eq!(order.next_timer(), None, "no gap left open");
        if server.last > 0 {
            prop_assert_eq!(order.take_ack().or(Some(acked)), Some(server.last));
        }
    }
}
