//! Membership intervals: which seqs of a group's log a user may see.
//!
//! A user's membership of a group is a list of inclusive seq ranges, ascending and
//! disjoint. Each starts at the seq of the join event (so the joiner's devices receive it);
//! a closed one ends at the seq of the leave or kick event (so the leaver's devices learn it
//! too); the current one ends at `Seq::MAX`. Delivery, sync and history all ask these
//! functions, so "no message outside the interval" is decided in one place.

use magpie_types::Seq;

/// Inclusive seq ranges, ascending and disjoint.
pub type Intervals = [(Seq, Seq)];

/// Whether `seq` lies inside one of the intervals.
pub fn visible(intervals: &Intervals, seq: Seq) -> bool {
    intervals.iter().any(|&(from, to)| from <= seq && seq <= to)
}

/// The last seq the user may see when the log ends at `last_seq` (0 if none).
pub fn last_visible(intervals: &Intervals, last_seq: Seq) -> Seq {
    intervals
        .iter()
        .rev()
        .find(|&&(from, _)| from <= last_seq)
        .map_or(0, |&(_, to)| to.min(last_seq))
}

/// The first seq the user may see (0 if none).
pub fn first_visible(intervals: &Intervals) -> Seq {
    intervals.first().map_or(0, |&(from, _)| from)
}

/// The first visible seq greater than `after` and at most `upto`, with the interval end
/// it belongs to.
pub fn next_visible(intervals: &Intervals, after: Seq, upto: Seq) -> Option<(Seq, Seq)> {
    intervals.iter().find_map(|&(from, to)| {
        let start = from.max(after.saturating_add(1));
        (start <= to && start <= upto).then_some((start, to.min(upto)))
    })
}

/// Opens a new interval at `seq` (a join). Returns false if the user is a member already.
pub fn open(intervals: &mut Vec<(Seq, Seq)>, seq: Seq) -> bool {
    if is_open(intervals) {
        return false;
    }
    intervals.push((seq, Seq::MAX));
    true
}

/// Closes the current interval at `seq` (a leave or kick, inclusive). Returns false if the
/// user is not a member.
pub fn close(intervals: &mut [(Seq, Seq)], seq: Seq) -> bool {
    match intervals.last_mut() {
        Some(last) if last.1 == Seq::MAX && last.0 <= seq => {
            last.1 = seq;
            true
        }
        _ => false,
    }
}

/// Whether the user is a member now.
pub fn is_open(intervals: &Intervals) -> bool {
    intervals.last().is_some_and(|&(_, to)| to == Seq::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn join_leave_rejoin() {
        let mut iv = Vec::new();
        assert!(open(&mut iv, 5));
        assert!(!open(&mut iv, 6), "already a member");
        assert!(close(&mut iv, 9));
        assert!(!close(&mut iv, 10), "not a member");
        assert!(open(&mut iv, 20));
        assert_eq!(iv, vec![(5, 9), (20, Seq::MAX)]);
        assert!(!visible(&iv, 4) && visible(&iv, 5) && visible(&iv, 9));
        assert!(!visible(&iv, 10) && !visible(&iv, 19) && visible(&iv, 25));
        assert_eq!(last_visible(&iv, 15), 9);
        assert_eq!(last_visible(&iv, 30), 30);
        assert_eq!(last_visible(&iv, 3), 0);
        assert_eq!(first_visible(&iv), 5);
        assert_eq!(next_visible(&iv, 0, 30), Some((5, 9)));
        assert_eq!(next_visible(&iv, 9, 30), Some((20, 30)));
        assert_eq!(next_visible(&iv, 7, 30), Some((8, 9)));
        assert_eq!(next_visible(&iv, 30, 30), None);
        assert_eq!(next_visible(&iv, 9, 15), None);
    }

    fn intervals() -> impl Strategy<Value = Vec<(Seq, Seq)>> {
        proptest::collection::vec((1u64..5, 0u64..5), 0..5).prop_map(|steps| {
            let mut iv = Vec::new();
            let mut at = 0;
            for (gap, len) in steps {
                let from = at + gap;
                iv.push((from, from + len));
                at = from + len + 1;
            }
            if let Some(last) = iv.last_mut()
                && last.1 % 2 == 0
            {
                last.1 = Seq::MAX;
            }
            iv
        })
    }

    proptest! {
        /// Walking with `next_visible` visits exactly the visible seqs up to `upto`.
        #[test]
        fn next_visible_walks_exactly_the_visible_seqs(iv in intervals(), upto in 0u64..40) {
            let mut walked = Vec::new();
            let mut cursor = 0;
            while let Some((from, to)) = next_visible(&iv, cursor, upto) {
                prop_assert!(from > cursor && to >= from);
                walked.extend(from..=to);
                cursor = to;
            }
            let want: Vec<Seq> = (1..=upto).filter(|&s| visible(&iv, s)).collect();
            prop_assert_eq!(walked, want.clone());
            prop_assert_eq!(last_visible(&iv, upto), want.last().copied().unwrap_or(0));
        }
    }
}
