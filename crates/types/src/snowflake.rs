//! 64-bit, time-ordered message ids, unique across nodes.
//!
//! Layout (most significant first): 1 unused bit, 41 bits of milliseconds since
//! [`EPOCH_MS`] (about 69 years), 10 bits of node id, 12 bits of per-millisecond sequence.
//! The generator is sans-I/O: the caller passes `now`, so tests drive time by hand.
//! If the clock goes backwards the generator keeps using its last timestamp (borrowing from
//! the future) instead of ever issuing an id smaller than one it issued before.

/// Magpie's epoch: 2024-01-01T00:00:00Z, in Unix milliseconds.
pub const EPOCH_MS: u64 = 1_704_067_200_000;
/// Number of distinct node ids.
pub const MAX_NODES: u16 = 1 << NODE_BITS;

const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// A message id. Larger ids were issued later (per node, strictly; across nodes, up to clock
/// skew). Never 0.
pub type MsgId = u64;

/// Why a generator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnowflakeError {
    /// The node id does not fit in 10 bits.
    #[error("node id {0} is out of range (0..1024)")]
    NodeOutOfRange(u16),
}

/// Issues [`MsgId`]s for one node.
#[derive(Debug, Clone)]
pub struct Snowflake {
    node: u64,
    last_ms: u64,
    seq: u64,
}

impl Snowflake {
    /// A generator for `node` (0..1024).
    pub fn new(node: u16) -> Result<Self, SnowflakeError> {
        if node >= MAX_NODES {
            return Err(SnowflakeError::NodeOutOfRange(node));
        }
        Ok(Self {
            node: u64::from(node),
            last_ms: 0,
            seq: 0,
        })
    }

    /// The next id at wall-clock time `now_ms` (Unix milliseconds).
    pub fn next(&mut self, now_ms: u64) -> MsgId {
        let ms = now_ms.saturating_sub(EPOCH_MS).max(1);
        if ms > self.last_ms {
            self.last_ms = ms;
            self.seq = 0;
        } else {
            // Same millisecond, or the clock went backwards: keep the last timestamp.
            self.seq += 1;
            if self.seq > SEQ_MASK {
                // 4096 ids in one millisecond: borrow the next millisecond.
                self.last_ms += 1;
                self.seq = 0;
            }
        }
        (self.last_ms << (NODE_BITS + SEQ_BITS)) | (self.node << SEQ_BITS) | self.seq
    }

    /// The Unix millisecond timestamp encoded in an id.
    pub fn timestamp_of(id: MsgId) -> u64 {
        (id >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS
    }

    /// The node that issued an id.
    pub fn node_of(id: MsgId) -> u16 {
        // Invariant: the mask keeps 10 bits, which always fit in u16.
        u16::try_from((id >> SEQ_BITS) & u64::from(MAX_NODES - 1)).expect("10 bits fit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_carry_time_and_node() {
        let mut g = Snowflake::new(7).unwrap();
        let id = g.next(EPOCH_MS + 1234);
        assert_eq!(Snowflake::timestamp_of(id), EPOCH_MS + 1234);
        assert_eq!(Snowflake::node_of(id), 7);
        assert!(Snowflake::new(1024).is_err());
    }

    #[test]
    fn burst_within_one_millisecond_stays_increasing() {
        let mut g = Snowflake::new(1).unwrap();
        let mut last = 0;
        for _ in 0..10_000 {
            let id = g.next(EPOCH_MS + 5);
            assert!(id > last);
            last = id;
        }
    }

    proptest! {
        #[test]
        fn strictly_increasing_even_when_clock_regresses(
            steps in proptest::collection::vec(-50i64..50, 1..500),
            node in 0u16..1024,
        ) {
            let mut g = Snowflake::new(node).unwrap();
            let mut now = EPOCH_MS as i64 + 1_000_000;
            let mut last = 0;
            for s in steps {
                now += s;
                let id = g.next(now as u64);
                prop_assert!(id > last);
                prop_assert_eq!(Snowflake::node_of(id), node);
                last = id;
            }
        }

        #[test]
        fn distinct_nodes_never_collide(a in 0u16..1024, b in 0u16..1024, t in 1u64..1_000_000) {
            prop_assume!(a != b);
            let ia = Snowflake::new(a).unwrap().next(EPOCH_MS + t);
            let ib = Snowflake::new(b).unwrap().next(EPOCH_MS + t);
            prop_assert_ne!(ia, ib);
        }
    }
}
