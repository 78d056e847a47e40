//! The loop's plumbing: the event queue towards the application and the futures the
//! `select!` waits on.

use std::collections::VecDeque;
use std::task::{Poll, ready};

use futures_util::StreamExt;
use magpie_proto::Frame;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::AttemptFuture;
use crate::Event;
use crate::handshake::{Established, Failed};
use crate::transport::{FrameSink, FrameStream, TransportError};

/// Events for the application: a bounded channel, plus an overflow for what one frame brings
/// beyond it. While the overflow is not empty the task stops reading from the server.
pub(super) struct EventQueue {
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) overflow: VecDeque<Event>,
}

impl EventQueue {
    pub(super) fn emit(&mut self, event: Event) {
        if !self.overflow.is_empty() {
            self.overflow.push_back(event);
            return;
        }
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.overflow.push_back(event),
            // Nobody listens any more: nothing to keep.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    pub(super) fn is_backpressured(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Moves buffered events into the channel while it has room.
    pub(super) fn drain(&mut self, open: bool) {
        if !open {
            self.overflow.clear();
            return;
        }
        while let Some(event) = self.overflow.pop_front() {
            if let Err(e) = self.tx.try_send(event) {
                if let mpsc::error::TrySendError::Full(event) = e {
                    self.overflow.push_front(event);
                }
                return;
            }
        }
    }

    /// Hands every buffered event over, waiting for the application as needed.
    pub(super) async fn flush(&mut self) {
        while let Some(event) = self.overflow.pop_front() {
            if self.tx.send(event).await.is_err() {
                self.overflow.clear();
            }
        }
    }
}

// ---- select! helpers -------------------------------------------------------------------

/// The next frame, or never if there is no connection.
pub(super) async fn next_frame(
    stream: Option<&mut FrameStream>,
) -> Option<Result<Frame, TransportError>> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Writes queued frames and flushes; never completes while there is nothing to write.
///
/// Cancel-safe: a frame leaves the queue only in the same poll that hands it to the sink.
pub(super) async fn write_out(
    writer: Option<(&mut FrameSink, &mut VecDeque<Frame>, &mut bool)>,
) -> Result<(), TransportError> {
    let Some((sink, out, dirty)) = writer else {
        return std::future::pending().await;
    };
    if out.is_empty() && !*dirty {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        while !out.is_empty() {
            ready!(sink.as_mut().poll_ready(cx))?;
            if let Some(frame) = out.pop_front() {
                sink.as_mut().start_send(frame)?;
                *dirty = true;
            }
        }
        ready!(sink.as_mut().poll_flush(cx))?;
        *dirty = false;
        Poll::Ready(Ok(()))
    })
    .await
}

/// The outcome of the attempt in progress, or never if there is none.
pub(super) async fn attempt_done(
    attempt: &mut Option<AttemptFuture>,
) -> Result<Established, Failed> {
    match attempt {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

/// Resolves when the channel has room (`true`) or is closed (`false`).
pub(super) async fn has_capacity(tx: &mpsc::Sender<Event>) -> bool {
    // The permit is released at once; only this task sends, so the room stays.
    tx.reserve().await.is_ok()
}

pub(super) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
