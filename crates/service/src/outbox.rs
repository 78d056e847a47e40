//! A connection's bounded outbound queue that holds no memory while it is empty.
//!
//! Every online connection has one queue, and most connections are idle: with tens of
//! thousands of them, what an empty queue costs is most of what an idle connection costs.
//! `tokio::sync::mpsc` allocates its first block of 32 slots (about 1 KiB for
//! [`crate::Outbound`]) when the channel is made and keeps it; this queue is a `VecDeque`
//! behind a lock, which allocates on the first item and gives the space back
//! ([`Receiver::trim`]) once drained. One producer lock and one wake-up per item, the same
//! as the channel it replaces; the consumer drains under the same uncontended lock.
//!
//! Semantics are those of a bounded mpsc channel: `try_send` fails with `Full` at capacity
//! (the caller decides: close a slow consumer, or drop a lossy signal) and with `Closed`
//! once the receiver is gone; `recv` yields `None` once every sender is gone and the queue
//! is drained. One addition: [`Sender::cancel`] ends the receiving connection at once
//! (`recv` yields `None` with items still queued), which is how the session registry
//! closes a slow or replaced connection without a cancellation token per connection.
//! And [`Sender::tick`] delivers the gateway's heartbeat tick through the same wake-up
//! ([`Receiver::next`] yields [`Next::Tick`]), so an idle connection waits on one future,
//! not on a timer or a broadcast receiver of its own.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};

use parking_lot::Mutex;

/// Why `try_send` did not queue the item (which it hands back).
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is at capacity.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why `try_recv` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The receiver's waker while it waits on an empty queue.
    waker: Option<Waker>,
    receiver_alive: bool,
    /// Set by [`Sender::cancel`]: the receiver stops at once.
    cancelled: bool,
    /// Set by [`Sender::tick`], cleared when the receiver sees it.
    ticked: bool,
}

/// What [`Receiver::next`] yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// A queued item.
    Item(T),
    /// A tick arrived (ahead of queued items, so a busy connection still sees it).
    Tick,
    /// Cancelled, or every sender is gone and the queue is drained.
    End,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    senders: AtomicUsize,
}

/// The producing side; cheap to clone.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The consuming side (one per queue).
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue of at most `capacity` items (at least one).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            receiver_alive: true,
            cancelled: false,
            ticked: false,
        }),
        capacity: capacity.max(1),
        senders: AtomicUsize::new(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut state = self.shared.state.lock();
            if !state.receiver_alive || state.cancelled {
                return Err(TrySendError::Closed(item));
            }
            if state.items.len() >= self.shared.capacity {
                return Err(TrySendError::Full(item));
            }
            state.items.push_back(item);
            state.waker.take()
        };
        // Woken outside the lock, so the receiver does not wake into a held lock.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.state.lock().receiver_alive
    }

    /// Wakes the receiver with a [`Next::Tick`] (ticks not yet seen collapse into one).
    pub fn tick(&self) {
        self.signal(|state| state.ticked = true);
    }

    /// Ends the receiver: its next `recv` yields `None`, whatever is queued. Sends after
    /// this are refused as `Closed`.
    pub fn cancel(&self) {
        self.signal(|state| state.cancelled = true);
    }

    /// Changes the state under the lock, then wakes a waiting receiver outside it.
    fn signal(&self, change: impl FnOnce(&mut State<T>)) {
        let waker = {
            let mut state = self.shared.state.lock();
            change(&mut state);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: a waiting receiver must learn that nothing more will come.
            let waker = self.shared.state.lock().waker.take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is drained, or at once
    /// after [`Sender::cancel`].
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut state = self.shared.state.lock();
            if state.cancelled {
                return Poll::Ready(None);
            }
            if let Some(item) = state.items.pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(None);
            }
            // Registered under the lock a sender takes to push, so a push after this
            // check always finds the waker.
            match &mut state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next tick or item; [`Next::End`] once cancelled, or once every sender is gone
    /// and the queue is drained.
    pub async fn next(&mut self) -> Next<T> {
        poll_fn(|cx| {
            let mut state = self.shared.state.lock();
            if state.cancelled {
                return Poll::Ready(Next::End);
            }
            if state.ticked {
                state.ticked = false;
                return Poll::Ready(Next::Tick);
            }
            if let Some(item) = state.items.pop_front() {
                return Poll::Ready(Next::Item(item));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(Next::End);
            }
            match &mut state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next item if one is queued now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.state.lock();
        if state.cancelled {
            return Err(TryRecvError::Disconnected);
        }
        match state.items.pop_front() {
            Some(item) => Ok(item),
            None if self.shared.senders.load(Ordering::Acquire) == 0 => {
                Err(TryRecvError::Disconnected)
            }
            None => Err(TryRecvError::Empty),
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.shared.state.lock().items.len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives the queue's space back if it is empty. Called by the connection on its
    /// periodic tick rather than after every drain, so a busy connection keeps its space
    /// between bursts and an idle one holds none.
    pub fn trim(&mut self) {
        let mut state = self.shared.state.lock();
        if state.items.is_empty() && state.items.capacity() > 0 {
            state.items = VecDeque::new();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Taken out of the lock before they are dropped: an item's drop may do anything.
        let items = {
            let mut state = self.shared.state.lock();
            state.receiver_alive = false;
            state.waker = None;
            std::mem::take(&mut state.items)
        };
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fifo() {
        let (tx, mut rx) = channel(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(tx.try_send(3), Ok(()));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.is_empty());
    }

    #[test]
    fn closed_both_ways() {
        let (tx, rx) = channel::<u8>(4);
        let tx2 = tx.clone();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx2.try_send(7), Err(TrySendError::Closed(7)));

        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(
            rx.try_recv(),
            Err(TryRecvError::Empty),
            "one sender is left"
        );
        drop(tx2);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn trim_releases_only_an_empty_queue() {
        let (tx, mut rx) = channel(64);
        for i in 0..10 {
            tx.try_send(i).unwrap();
        }
        rx.trim();
        assert_eq!(rx.len(), 10, "trim never drops items");
        while rx.try_recv().is_ok() {}
        assert!(rx.shared.state.lock().items.capacity() > 0);
        rx.trim();
        assert_eq!(rx.shared.state.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn cancel_ends_a_waiting_receiver_with_items_still_queued() {
        let (tx, mut rx) = channel(4);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second, rx)
        });
        tx.try_send(1).unwrap();
        tokio::task::yield_now().await;
        tx.try_send(2).unwrap();
        tx.cancel();
        let (first, second, mut rx) = waiting.await.unwrap();
        assert!(first == Some(1) || first.is_none());
        assert_eq!(second, None, "cancelled with an item queued");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn ticks_come_first_and_collapse() {
        let (tx, mut rx) = channel(4);
        tx.try_send(1).unwrap();
        tx.tick();
        tx.tick();
        assert_eq!(rx.next().await, Next::Tick);
        assert_eq!(rx.next().await, Next::Item(1));
        let waiting = tokio::spawn(async move { (rx.next().await, rx) });
        tokio::task::yield_now().await;
        tx.tick();
        let (got, mut rx) = waiting.await.unwrap();
        assert_eq!(got, Next::Tick, "a tick wakes a waiting receiver");
        tx.cancel();
        assert_eq!(rx.next().await, Next::End);
    }

    #[tokio::test]
    async fn recv_wakes_on_send_and_ends_with_the_last_sender() {
        let (tx, mut rx) = channel(8);
        let producer = tokio::spawn(async move {
            for i in 0..1000u32 {
                loop {
                    match tx.try_send(i) {
                        Ok(()) => break,
                        Err(TrySendError::Full(_)) => tokio::task::yield_now().await,
                        Err(TrySendError::Closed(_)) => return,
                    }
                }
            }
        });
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>(), "all, once, in order");
    }
}
