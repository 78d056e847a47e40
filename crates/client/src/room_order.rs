//! The live-room ordering rule, sans-I/O: per room, reliable (HIGH) messages reach the
//! application exactly once and in `seq` order; the others pass straight through.
//!
//! The server numbers a room's HIGH messages 1, 2, 3, … and retransmits each until the
//! connection acknowledges it (cumulatively), so the same HIGH message may arrive more than
//! once, and after a lost batch later seqs may arrive before earlier ones. NORMAL and LOW
//! messages carry seq 0: they are best effort and are delivered as they come, in batch order.
//!
//! A [`RoomOrder`] keeps `delivered`, the highest HIGH seq handed over with every one before
//! it (unknown until the join's answer sets the base), and `held`, HIGH messages that arrived
//! ahead of `delivered + 1`. A message at `delivered + 1` is delivered together with the held
//! ones it makes contiguous; one at or below `delivered` is a duplicate (and is acknowledged
//! again: the server evidently missed the ack); one further ahead is held. A gap that stays
//! open for [`GAP_WAIT`] (the server's retransmissions did not fill it) asks for a fetch from
//! the room's log ([`RoomOrder::poll_fetch`]); if the server answers that the messages are no
//! longer in its log, the rule skips ahead with a [`Step::Gap`] so that the application knows
//! what it will never see. Join answers (after a reconnect: every message after `delivered`
//! still in the log) go through the same rule, so nothing is doubled; a gap a join answer
//! leaves (the room's `last_seq` is ahead of what it brought: a rejoin from seq 0 brings
//! nothing) is fetched at once, since a new connection gets no retransmissions of what the
//! old one missed.
//!
//! Held messages are never acknowledged, so the server keeps retransmitting them: holding at
//! most [`MAX_HELD`] per room (dropping the furthest ahead) loses nothing.
//!
//! Inputs arrive through `on_*` methods with `now`; outputs are the [`Step`]s pushed to the
//! caller's vector, the fetch to issue ([`RoomOrder::poll_fetch`]) and the ack to send
//! ([`RoomOrder::take_ack`]). No I/O, no clock, no tokio.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use magpie_types::Seq;

/// How long a gap may stay open (waiting for the server's retransmissions) before the rule
/// asks for a fetch.
pub(crate) const GAP_WAIT: Duration = Duration::from_millis(1500);

/// HIGH messages held ahead of a gap, per room.
pub(crate) const MAX_HELD: usize = 4096;

/// What the application receives, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step<M> {
    /// The next message: a HIGH one in seq order, or a NORMAL / LOW one as it came.
    Deliver(M),
    /// HIGH seqs `from..=to` are lost (no longer in the room's log): skipped.
    Gap {
        /// The first seq skipped.
        from: Seq,
        /// The last seq skipped.
        to: Seq,
    },
}

/// One room's HIGH seq bookkeeping.
#[derive(Debug)]
pub(crate) struct RoomOrder<M> {
    /// The highest contiguous HIGH seq delivered; `None` until the join answer sets the base.
    delivered: Option<Seq>,
    /// The highest HIGH seq heard of (a message, or the room's `last_seq`).
    known: Seq,
    /// HIGH messages ahead of `delivered + 1`, by seq.
    held: BTreeMap<Seq, M>,
    /// Since when the current gap has been open (no fetch in flight).
    gap_since: Option<Instant>,
    /// A fetch is in flight; it asked for messages after this seq.
    fetching: Option<Seq>,
    /// Fetch without waiting: a join answer left a gap, and a new connection gets no
    /// retransmissions of what the old one missed.
    fetch_now: bool,
    /// An ack is worth sending (the delivered seq moved, or a duplicate came).
    ack_due: bool,
}

impl<M> RoomOrder<M> {
    /// A room being joined: HIGH messages are held until the join answer sets the base.
    pub(crate) fn joining() -> Self {
        Self {
            delivered: None,
            known: 0,
            held: BTreeMap::new(),
            gap_since: None,
            fetching: None,
            fetch_now: false,
            ack_due: false,
        }
    }

    /// The highest contiguous HIGH seq delivered (`None` before the first join answer).
    pub(crate) fn delivered(&self) -> Option<Seq> {
        self.delivered
    }

    /// One message of a batch: seq 0 (NORMAL, LOW) is delivered at once; a HIGH seq goes
    /// through the rule.
    pub(crate) fn on_message(&mut self, seq: Seq, m: M, now: Instant, out: &mut Vec<Step<M>>) {
        if seq == 0 {
            out.push(Step::Deliver(m));
            return;
        }
        self.known = self.known.max(seq);
        match self.delivered {
            None => self.hold(seq, m),
            Some(d) if seq <= d => self.ack_due = true,
            Some(d) if seq == d + 1 => {
                self.delivered = Some(seq);
                self.ack_due = true;
                out.push(Step::Deliver(m));
                self.drain(out);
            }
            Some(_) => self.hold(seq, m),
        }
        if !self.gap_open() {
            self.gap_since = None;
        } else if self.gap_since.is_none() && self.fetching.is_none() {
            self.gap_since = Some(now);
        }
    }

    /// The answer to a join that asked for messages after `since` (0: none). The first
    /// answer sets the base: `since`, or without one the room's `last_seq` (the connection
    /// receives what comes after it). `messages` are the HIGH messages after `since` still
    /// in the room's log; `gap` says some after `since` were not.
    pub(crate) fn on_joined(
        &mut self,
        since: Seq,
        last_seq: Seq,
        messages: Vec<(Seq, M)>,
        gap: bool,
        now: Instant,
        out: &mut Vec<Step<M>>,
    ) {
        if self.delivered.is_none() {
            let base = if since > 0 { since } else { last_seq };
            self.delivered = Some(base);
            // What came before the base is not this connection's to deliver.
            self.held = self.held.split_off(&base.saturating_add(1));
        }
        self.apply_log(messages, gap, last_seq, now, out);
        self.fetch_now = self.gap_open();
        self.ack_due = true;
    }

    /// The fetch to issue now, as the seq to fetch after: a gap has been open for
    /// [`GAP_WAIT`] (or was left by a join answer) and no fetch is in flight.
    pub(crate) fn poll_fetch(&mut self, now: Instant) -> Option<Seq> {
        let delivered = self.delivered?;
        let since = self.gap_since?;
        if self.fetching.is_some() || !(self.fetch_now || now >= since + GAP_WAIT) {
            return None;
        }
        self.fetching = Some(delivered);
        self.fetch_now = false;
        self.gap_since = None;
        Some(delivered)
    }

    /// The answer to the fetch in flight: the HIGH messages after its seq still in the log,
    /// `gap` if some were not, and the room's `last_seq`.
    pub(crate) fn on_fetched(
        &mut self,
        messages: Vec<(Seq, M)>,
        gap: bool,
        last_seq: Seq,
        now: Instant,
        out: &mut Vec<Step<M>>,
    ) {
        let since = self.fetching.take();
        let nothing = messages.is_empty();
        self.apply_log(messages, gap, last_seq, now, out);
        // The server has nothing after `since` and says nothing was evicted, yet later seqs
        // exist: it cannot fill the gap. Skip it rather than wait forever.
        if nothing && !gap && since.is_some() && self.delivered == since && self.gap_open() {
            let to = self.held.keys().next().map_or(self.known, |s| s - 1);
            self.skip_to(to, out);
            self.drain(out);
            self.restart_gap_timer(now);
        }
    }

    /// The fetch in flight failed: wait again before the next one.
    pub(crate) fn fetch_failed(&mut self, now: Instant) {
        self.fetching = None;
        self.restart_gap_timer(now);
    }

    /// The connection was lost: the fetch in flight will never be answered, and the rejoin
    /// on the next connection brings what is missing.
    pub(crate) fn connection_lost(&mut self) {
        self.fetching = None;
        self.fetch_now = false;
        self.gap_since = None;
        self.ack_due = false;
    }

    /// When [`RoomOrder::poll_fetch`] will have something to say.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        match self.fetching {
            Some(_) => None,
            None if self.fetch_now => self.gap_since,
            None => self.gap_since.map(|at| at + GAP_WAIT),
        }
    }

    /// The cumulative ack to send now, if one is due.
    pub(crate) fn take_ack(&mut self) -> Option<Seq> {
        if !std::mem::take(&mut self.ack_due) {
            return None;
        }
        self.delivered.filter(|d| *d > 0)
    }

    /// HIGH messages from the room's log (a join or fetch answer).
    fn apply_log(
        &mut self,
        mut messages: Vec<(Seq, M)>,
        gap: bool,
        last_seq: Seq,
        now: Instant,
        out: &mut Vec<Step<M>>,
    ) {
        messages.sort_by_key(|(seq, _)| *seq);
        self.known = self.known.max(last_seq);
        if gap {
            // The log lost everything after the asked seq up to its first message (up to
            // its last seq if it has none after it); of that, what we hold is not lost. The
            // answer may be older than what was delivered meanwhile: `skip_to` only moves
            // forward.
            let first_in_log = messages.first().map(|(s, _)| *s);
            let first_held = self.held.keys().next().copied();
            let to = match (first_in_log, first_held) {
                (Some(a), Some(h)) => a.min(h).saturating_sub(1),
                (Some(a), None) => a.saturating_sub(1),
                (None, Some(h)) => h.saturating_sub(1),
                (None, None) => last_seq,
            };
            self.skip_to(to, out);
        }
        for (seq, m) in messages {
            self.on_message(seq, m, now, out);
        }
        self.drain(out);
        self.restart_gap_timer(now);
    }

    /// Skips ahead to `to` with a [`Step::Gap`], if that is ahead.
    fn skip_to(&mut self, to: Seq, out: &mut Vec<Step<M>>) {
        let Some(d) = self.delivered else {
            return;
        };
        if to > d {
            out.push(Step::Gap { from: d + 1, to });
            self.delivered = Some(to);
            self.held = self.held.split_off(&to.saturating_add(1));
            self.ack_due = true;
        }
    }

    fn hold(&mut self, seq: Seq, m: M) {
        self.held.entry(seq).or_insert(m);
        while self.held.len() > MAX_HELD {
            // The server retransmits what was never acknowledged.
            self.held.pop_last();
        }
    }

    /// Delivers the held messages that have become contiguous.
    fn drain(&mut self, out: &mut Vec<Step<M>>) {
        let Some(mut d) = self.delivered else {
            return;
        };
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq > d + 1 {
                break;
            }
            let m = entry.remove();
            if seq == d + 1 {
                d = seq;
                self.ack_due = true;
                out.push(Step::Deliver(m));
            }
        }
        self.delivered = Some(d);
    }

    fn gap_open(&self) -> bool {
        self.delivered
            .is_some_and(|d| !self.held.is_empty() || self.known > d)
    }

    fn restart_gap_timer(&mut self, now: Instant) {
        self.gap_since = (self.gap_open() && self.fetching.is_none()).then_some(now);
    }
}

#[cfg(test)]
#[path = "room_order/tests.rs"]
mod tests;
