//! Reading conversations: pull (forward, for sync) and history (backward, for scrolling),
//! both limited to what the reader may see.
//!
//! A 1:1 conversation is visible whole to its two parties. A group's log is visible to a
//! user inside their membership intervals only ([`magpie_core::membership`]); a pull names
//! the seq ranges it skipped as `hidden`, so a client's cursor can move over them without
//! calling them a gap.

use magpie_core::ErrorKind;
use magpie_core::membership::{last_visible, next_visible};
use magpie_store::StoredMessage;
use magpie_types::{ConvId, ConvKind, Seq};

use std::collections::BTreeMap;

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::ops::Overlay;
use crate::sessions::SessionCtx;

/// A page of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages (ascending for pull, descending for history).
    pub messages: Vec<StoredMessage>,
    /// More messages follow in the same direction.
    pub has_more: bool,
    /// The last seq visible to the reader when read (pull only; 0 for history).
    pub last_seq: Seq,
    /// Inclusive seq ranges the reader may not see, between `after_seq` and the last
    /// message returned (pull only): outside their membership, or deleted for them.
    pub hidden: Vec<(Seq, Seq)>,
    /// How returned messages stand now: recalled or edited, by seq.
    pub overlays: BTreeMap<Seq, Overlay>,
}

impl Service {
    /// The seq ranges of `conv` that `who` may see, or a refusal if none.
    pub(crate) async fn visibility(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
    ) -> Result<Vec<(Seq, Seq)>, ServiceError> {
        match conv.kind() {
            ConvKind::Direct { .. } if conv.has_party(&who.user) => Ok(vec![(1, Seq::MAX)]),
            ConvKind::Direct { .. } => Err(not_member()),
            ConvKind::Group { id } => {
                let guard = self.groups.read(&*self.store, &who.app, &id).await?;
                guard
                    .as_ref()
                    .and_then(|s| s.members.get(&who.user))
                    .map(|m| m.intervals.clone())
                    .filter(|iv| !iv.is_empty())
                    .ok_or_else(not_member)
            }
        }
    }

    /// Visible messages of `conv` after `after_seq`, ascending, at most `limit`.
    pub async fn pull(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        after_seq: Seq,
        limit: u32,
    ) -> Result<MessagePage, ServiceError> {
        let iv = self.visibility(who, conv).await?;
        let limit = self.limits().page(limit);
        let upto = last_visible(&iv, self.store.last_seq(&who.app, conv).await?);
        let (mut messages, mut hidden) = (Vec::new(), Vec::new());
        let mut cursor = after_seq;
        let has_more = loop {
            let Some((from, to)) = next_visible(&iv, cursor, upto) else {
                break false;
            };
            if messages.len() == limit {
                break true;
            }
            if from > cursor + 1 {
                hidden.push((cursor + 1, from - 1));
            }
            let want =
                (limit - messages.len()).min(usize::try_from(to - from + 1).unwrap_or(usize::MAX));
            let page = self
                .store
                .read_after(&who.app, conv, from - 1, want)
                .await?;
            let before = cursor;
            for m in page.into_iter().take_while(|m| m.seq <= to) {
                cursor = m.seq;
                messages.push(m);
            }
            if cursor == before {
                // The log is shorter than its last seq said (it cannot be, but a loop that
                // makes no progress must end).
                break false;
            }
        };
        // Messages deleted for this reader become hidden seqs too.
        let deleted = self.deleted(who, conv).await?.seqs;
        if !deleted.is_empty() {
            for m in messages.iter().filter(|m| deleted.contains(&m.seq)) {
                hidden.push((m.seq, m.seq));
            }
            messages.retain(|m| !deleted.contains(&m.seq));
            hidden = merge_ranges(hidden);
        }
        let overlays = self.overlays(who, conv, &messages).await?;
        Ok(MessagePage {
            messages,
            has_more,
            last_seq: upto,
            hidden,
            overlays,
        })
    }

    /// Visible messages of `conv` before `before_seq` (0 = the newest), descending.
    pub async fn history(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        before_seq: Seq,
        limit: u32,
    ) -> Result<MessagePage, ServiceError> {
        let iv = self.visibility(who, conv).await?;
        let limit = self.limits().page(limit);
        let upto = last_visible(&iv, self.store.last_seq(&who.app, conv).await?);
        let mut below = match before_seq {
            0 => upto.saturating_add(1),
            b => b.min(upto.saturating_add(1)),
        };
        let mut messages = Vec::new();
        while messages.len() <= limit {
            let Some(&(from, to)) = iv.iter().rev().find(|(from, _)| *from < below) else {
                break;
            };
            let top = to.min(below - 1);
            let want = limit + 1 - messages.len();
            let page = self
                .store
                .read_before(&who.app, conv, top + 1, want)
                .await?;
            messages.extend(page.into_iter().take_while(|m| m.seq >= from));
            below = from;
        }
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        let deleted = self.deleted(who, conv).await?.seqs;
        messages.retain(|m| !deleted.contains(&m.seq));
        let overlays = self.overlays(who, conv, &messages).await?;
        Ok(MessagePage {
            messages,
            has_more,
            last_seq: 0,
            hidden: Vec::new(),
            overlays,
        })
    }
}

fn not_member() -> ServiceError {
    ServiceError::new(ErrorKind::Forbidden, "not a member of this conversation")
}

/// Sorts inclusive ranges and joins the ones that touch or overlap.
fn merge_ranges(mut ranges: Vec<(Seq, Seq)>) -> Vec<(Seq, Seq)> {
    ranges.sort_unstable();
    let mut out: Vec<(Seq, Seq)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if from <= last.1.saturating_add(1) => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge_ranges;

    #[test]
    fn ranges_merge_when_they_touch() {
        assert_eq!(
            merge_ranges(vec![(5, 5), (1, 3), (4, 4), (7, 9)]),
            vec![(1, 5), (7, 9)]
        );
        assert_eq!(merge_ranges(vec![]), vec![]);
    }
}
