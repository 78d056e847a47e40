//! The short per-room log of reliable (high-priority) messages.
//!
//! High-priority messages are numbered by the room's `seq` (1, 2, 3, … without gaps) and
//! kept here, bounded by count and by age, so that a connection that missed some (a lost
//! batch, a full queue, a reconnect) gets them again, and a late joiner can fetch the recent
//! ones. A retried send (same sender and client message id) while the first is still in the
//! log is answered with the first one instead of being numbered twice.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use magpie_types::Seq;

/// Bounds of a [`ReliableLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    /// Most messages kept.
    pub max_len: usize,
    /// Oldest message kept, ms.
    pub max_age_ms: u64,
}

#[derive(Debug)]
struct Entry<K, P> {
    seq: Seq,
    at_ms: u64,
    key: Option<K>,
    payload: P,
}

/// The outcome of [`ReliableLog::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended<P> {
    /// Stored under a new seq.
    New(Seq),
    /// A retry of a message still in the log: its payload.
    Duplicate(P),
}

/// Messages after a seq, from [`ReliableLog::after`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After<P> {
    /// In seq order.
    pub items: Vec<P>,
    /// Some messages after the requested seq were already evicted.
    pub gap: bool,
}

/// The log. `K` identifies a send for deduplication; `P` is what is kept per message.
#[derive(Debug)]
pub struct ReliableLog<K, P> {
    bounds: LogBounds,
    entries: VecDeque<Entry<K, P>>,
    last_seq: Seq,
    dedup: HashMap<K, Seq>,
}

impl<K: Hash + Eq + Clone, P: Clone> ReliableLog<K, P> {
    /// An empty log.
    pub fn new(bounds: LogBounds) -> Self {
        Self {
            bounds,
            entries: VecDeque::new(),
            last_seq: 0,
            dedup: HashMap::new(),
        }
    }

    /// The seq of the last message appended (0: none yet).
    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The message a retry with `key` refers to, if it is still in the log.
    pub fn duplicate_of(&self, key: &K) -> Option<P> {
        let seq = *self.dedup.get(key)?;
        self.get(seq).map(|e| e.payload.clone())
    }

    /// The last message appended, if still held.
    pub fn newest(&self) -> Option<P> {
        self.entries.back().map(|e| e.payload.clone())
    }

    /// Appends a message built by `make` from its seq, unless `key` names a message still in
    /// the log.
    pub fn append(
        &mut self,
        now_ms: u64,
        key: Option<K>,
        make: impl FnOnce(Seq) -> P,
    ) -> Appended<P> {
        self.evict(now_ms);
        if let Some(k) = &key
            && let Some(first) = self.duplicate_of(k)
        {
            return Appended::Duplicate(first);
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        if let Some(k) = &key {
            self.dedup.insert(k.clone(), seq);
        }
        self.entries.push_back(Entry {
            seq,
            at_ms: now_ms,
            key,
            payload: make(seq),
        });
        self.evict(now_ms);
        Appended::New(seq)
    }

    /// Up to `limit` messages with seq > `since`, in order.
    pub fn after(&mut self, since: Seq, limit: usize, now_ms: u64) -> After<P> {
        self.evict(now_ms);
        let first = self.entries.front().map_or(self.last_seq + 1, |e| e.seq);
        let gap = since.saturating_add(1) < first && since < self.last_seq;
        let skip = usize::try_from((since + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        let items = self
            .entries
            .iter()
            .skip(skip)
            .take(limit)
            .map(|e| e.payload.clone())
            .collect();
        After { items, gap }
    }

    fn get(&self, seq: Seq) -> Option<&Entry<K, P>> {
        let first = self.entries.front()?.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.entries.get(i)
    }

    fn evict(&mut self, now_ms: u64) {
        while let Some(front) = self.entries.front() {
            let too_many = self.entries.len() > self.bounds.max_len;
            let too_old = front.at_ms.saturating_add(self.bounds.max_age_ms) < now_ms;
            if !(too_many || too_old) {
                break;
            }
            if let Some(Entry { key: Some(k), .. }) = self.entries.pop_front() {
                self.dedup.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> ReliableLog<&'static str, u64> {
        ReliableLog::new(LogBounds {
            max_len: 3,
            max_age_ms: 1_000,
        })
    }

    #[test]
    fn numbers_without_gaps_and_serves_after() {
        let mut l = log();
        for i in 1..=3 {
            assert_eq!(l.append(0, None, |s| s * 10), Appended::New(i));
        }
        let a = l.after(1, 10, 0);
        assert_eq!((a.items, a.gap), (vec![20, 30], false));
        assert_eq!(l.after(3, 10, 0).items, Vec::<u64>::new());
        assert_eq!(l.after(2, 1, 0).items, vec![30]);
    }

    #[test]
    fn evicts_by_count_and_age_and_reports_gaps() {
        let mut l = log();
        for _ in 0..4 {
            l.append(0, None, |s| s);
        }
        assert_eq!(l.len(), 3);
        let a = l.after(0, 10, 0);
        assert_eq!((a.items, a.gap), (vec![2, 3, 4], true));
        let a = l.after(1, 10, 0);
        assert_eq!((a.items, a.gap), (vec![2, 3, 4], false));
        let a = l.after(2, 10, 5_000);
        assert_eq!((a.items, a.gap), (vec![], true));
        assert!(l.is_empty());
        assert_eq!(l.last_seq(), 4);
        // Nothing after the last seq is ever a gap.
        assert!(!l.after(4, 10, 5_000).gap);
    }

    #[test]
    fn retries_are_deduplicated_while_in_the_log() {
        let mut l = log();
        assert_eq!(l.append(0, Some("a"), |s| s), Appended::New(1));
        assert_eq!(l.append(0, Some("a"), |s| s), Appended::Duplicate(1));
        assert_eq!(l.append(0, Some("b"), |s| s), Appended::New(2));
        // Once evicted, the key is forgotten.
        assert_eq!(l.append(5_000, Some("a"), |s| s), Appended::New(3));
    }
}
