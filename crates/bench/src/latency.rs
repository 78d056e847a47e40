//! Latency distributions: HdrHistogram in microseconds, mergeable across tasks and worker
//! processes.
//!
//! Tasks collect raw samples in a `Vec<u64>` (a few bytes per message) and hand them over
//! when they finish; one histogram per distribution per process then records them. That
//! keeps memory at one histogram per process rather than one per connection (a 3-digit
//! histogram over this range is tens of kilobytes). Between processes a histogram travels as
//! its non-empty `[value, count]` buckets in the worker's JSON line and is merged by
//! recording them again: exact at the histogram's precision.
//!
//! A scenario whose tasks receive for a long time (a room's members get every message) would
//! hold too many raw samples; its tasks record through a [`Recorder`] instead: a small
//! buffer per task, emptied into one histogram per process behind a lock.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded, in microseconds (10 minutes: longer than any bounded run);
/// larger samples are clamped to it.
const MAX_US: u64 = 600_000_000;
/// Significant decimal digits kept.
const SIGFIGS: u8 = 3;
/// Samples a [`Recorder`] buffers before taking the shared histogram's lock.
const RECORDER_BUFFER: usize = 512;

/// One latency distribution.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

/// A histogram as its recorded buckets, for the JSON line of a worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets(pub Vec<(u64, u64)>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty distribution.
    pub fn new() -> Self {
        // Invariant: 1 ≤ low, high ≥ 2·low and 3 significant figures are valid bounds.
        Self(Histogram::new_with_bounds(1, MAX_US, SIGFIGS).expect("valid histogram bounds"))
    }

    /// Records samples in microseconds.
    pub fn record_all(&mut self, samples_us: &[u64]) {
        for &s in samples_us {
            self.0.saturating_record(s.clamp(1, MAX_US));
        }
    }

    /// Adds another distribution.
    pub fn merge(&mut self, buckets: &Buckets) {
        for &(value, count) in &buckets.0 {
            // Values came from a histogram with the same bounds, so they are in range.
            let _ = self.0.record_n(value.clamp(1, MAX_US), count);
        }
    }

    /// The recorded buckets.
    pub fn buckets(&self) -> Buckets {
        Buckets(
            self.0
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0..=1) in milliseconds, or `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.is_empty()).then(|| round3(self.0.value_at_quantile(q) as f64 / 1000.0))
    }

    /// The largest sample in milliseconds, or `None` without samples.
    pub fn max_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| round3(self.0.max() as f64 / 1000.0))
    }
}

/// One distribution shared by the tasks of a process.
pub type SharedLatency = Arc<Mutex<Latency>>;

/// A task's way into a [`SharedLatency`]: samples are buffered and recorded in batches, so
/// the lock is taken once per [`RECORDER_BUFFER`] samples. Whatever is buffered is
/// recorded when the recorder is dropped.
#[derive(Debug)]
pub struct Recorder {
    shared: SharedLatency,
    buf: Vec<u64>,
}

impl Recorder {
    /// A recorder into `shared`.
    pub fn new(shared: SharedLatency) -> Self {
        Self {
            shared,
            buf: Vec::with_capacity(RECORDER_BUFFER),
        }
    }

    /// Records one sample in microseconds.
    pub fn record(&mut self, us: u64) {
        self.buf.push(us);
        if self.buf.len() >= RECORDER_BUFFER {
            self.flush();
        }
    }

    /// Records the buffered samples now.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // A poisoned lock only means another task panicked mid-record; the counts stay valid.
        let mut h = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        h.record_all(&self.buf);
        self.buf.clear();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// `count` per second over `secs` seconds, rounded (0 for an empty interval).
pub fn per_second(count: u64, secs: f64) -> u64 {
    if secs > 0.0 {
        (count as f64 / secs).round() as u64
    } else {
        0
    }
}

/// Rounds to three decimals, for readable JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_through_buckets_preserves_quantiles() {
        let samples: Vec<u64> = (1..=10_000).map(|i| i * 37).collect();
        let mut whole = Latency::new();
        whole.record_all(&samples);
        let (a, b) = samples.split_at(3_000);
        let (mut x, mut y) = (Latency::new(), Latency::new());
        x.record_all(a);
        y.record_all(b);
        let json = serde_json::to_string(&y.buckets()).unwrap();
        x.merge(&serde_json::from_str(&json).unwrap());
        assert_eq!(x.len(), whole.len());
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(x.quantile_ms(q), whole.quantile_ms(q));
        }
        assert_eq!(x.max_ms(), whole.max_ms());
    }

    #[test]
    fn recorders_share_one_histogram() {
        let shared = SharedLatency::default();
        let (mut a, mut b) = (Recorder::new(shared.clone()), Recorder::new(shared.clone()));
        for i in 0..1_000 {
            a.record(i + 1);
            b.record(i + 1);
        }
        drop((a, b));
        assert_eq!(shared.lock().unwrap().len(), 2_000);
    }

    #[test]
    fn empty_has_no_quantiles() {
        assert_eq!(Latency::new().quantile_ms(0.5), None);
    }

    #[test]
    fn out_of_range_samples_are_clamped() {
        let mut l = Latency::new();
        l.record_all(&[0, u64::MAX]);
        assert_eq!(l.len(), 2);
    }
}
