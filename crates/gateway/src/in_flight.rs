//! A connection's requests in progress, holding nothing while there are none.
//!
//! `FuturesUnordered::new()` allocates its ready-to-run queue (about 140 bytes) at once, and
//! every idle connection would keep it. Here the set exists from the first request until a
//! tick finds it empty again.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use magpie_proto::Frame;

use crate::requests::Reply;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct InFlight(Option<FuturesUnordered<Reply>>);

impl InFlight {
    /// Requests in progress.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    /// Whether none is in progress.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a request.
    pub(crate) fn push(&mut self, reply: Reply) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(reply);
    }

    /// The next reply to complete (`None` if there is no request: the caller polls this only
    /// while [`Self::is_empty`] is false).
    pub(crate) async fn next(&mut self) -> Option<Option<Frame>> {
        match &mut self.0 {
            Some(set) => set.next().await,
            None => None,
        }
    }

    /// Gives the set's memory back if it is empty.
    pub(crate) fn trim(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }
}
