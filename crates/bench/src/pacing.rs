//! When a sender's messages leave, and which of them are still unanswered: the part of
//! sending that the `group` and `room` scenarios share (what a message carries and how an
//! answer is counted differ, and stay with each scenario).
//!
//! The run's messages are numbered `n = 0 .. total`; sender `j` of `S` sends `n ≡ j (mod S)`
//! ([`crate::room::mix::messages_of`]). At most `window` sends are unanswered at once. On a
//! [`Schedule::Rate`] message `n` is due at its slot, and the slot is its intended time even
//! when the window holds it back, so a server that falls behind is charged for the backlog
//! (no coordinated omission); on [`Schedule::Window`] the intended time is when the send
//! enters the write buffer. Request ids are `first_rid + k` for the sender's message `k`, so
//! an answer finds its message by index. No I/O here.

use crate::room::mix::messages_of;

/// When messages leave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// As soon as the window has room.
    Window,
    /// The run's message `n` at `first_us + n · spacing_us` after the shard's start.
    Rate {
        /// Slot of message 0, µs.
        first_us: f64,
        /// Spacing between the run's messages, µs.
        spacing_us: f64,
    },
}

/// A message to write now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// This sender's number for it.
    pub k: u64,
    /// The run's number for it.
    pub n: u64,
    /// Its request id.
    pub request_id: u64,
    /// Its intended time, µs after the shard's start.
    pub at_us: u64,
}

/// One sender's pacing state.
#[derive(Debug)]
pub struct Pacer {
    sender: u64,
    senders: u64,
    window: u32,
    schedule: Schedule,
    first_rid: u64,
    /// This sender's messages.
    count: u64,
    /// The next of them to write.
    next: u64,
    in_flight: u32,
    /// Intended time of each message written; `u64::MAX` once answered.
    intended: Vec<u64>,
}

impl Pacer {
    /// Sender `sender` of `senders`, sharing `total` messages.
    pub fn new(
        (sender, senders, total): (u64, u64, u64),
        window: u32,
        schedule: Schedule,
        first_rid: u64,
    ) -> Self {
        let count = messages_of(sender, senders, total);
        Self {
            sender,
            senders,
            window,
            schedule,
            first_rid,
            count,
            next: 0,
            in_flight: 0,
            intended: Vec::with_capacity(usize::try_from(count).unwrap_or(0)),
        }
    }

    /// This sender's share of the run's messages.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every message written and answered.
    pub fn done(&self) -> bool {
        self.next == self.count && self.in_flight == 0
    }

    /// Sends written but not answered yet.
    pub fn unanswered(&self) -> u64 {
        u64::from(self.in_flight)
    }

    /// The next message due at `now_us` that the window allows, recorded as written.
    pub fn next_due(&mut self, now_us: u64) -> Option<Due> {
        if self.next >= self.count || self.in_flight >= self.window {
            return None;
        }
        let at_us = match self.slot_us(self.next) {
            None => now_us,
            Some(slot) if slot <= now_us => slot,
            Some(_) => return None,
        };
        let k = self.next;
        self.intended.push(at_us);
        self.next += 1;
        self.in_flight += 1;
        Some(Due {
            k,
            n: self.global(k),
            request_id: k + self.first_rid,
            at_us,
        })
    }

    /// When the next message is due (µs after the start), if it waits for its slot rather
    /// than for the window.
    pub fn wake(&self) -> Option<u64> {
        if self.next < self.count && self.in_flight < self.window {
            self.slot_us(self.next)
        } else {
            None
        }
    }

    /// If `request_id` answers a written, still unanswered send: its intended time (the
    /// send is answered from now on).
    pub fn answer(&mut self, request_id: u64) -> Option<u64> {
        let k = request_id
            .checked_sub(self.first_rid)
            .and_then(|k| usize::try_from(k).ok())
            .filter(|&k| self.intended.get(k).is_some_and(|&t| t != u64::MAX))?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(std::mem::replace(&mut self.intended[k], u64::MAX))
    }

    /// The run-wide number of this sender's message `k`.
    fn global(&self, k: u64) -> u64 {
        k * self.senders + self.sender
    }

    fn slot_us(&self, k: u64) -> Option<u64> {
        match self.schedule {
            Schedule::Window => None,
            Schedule::Rate {
                first_us,
                spacing_us,
            } => Some((first_us + self.global(k) as f64 * spacing_us) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_bounds_what_is_unanswered() {
        // Sender 0 of 2 sends the run's messages 0, 2, 4: three of five.
        let mut p = Pacer::new((0, 2, 5), 2, Schedule::Window, 7);
        assert_eq!(p.count(), 3);
        let a = p.next_due(10).unwrap();
        assert_eq!((a.k, a.n, a.request_id, a.at_us), (0, 0, 7, 10));
        assert_eq!(p.next_due(10).unwrap().n, 2);
        assert_eq!(p.next_due(10), None, "the window is full");
        assert_eq!(p.wake(), None);
        assert_eq!(p.answer(7), Some(10));
        assert_eq!(p.answer(7), None, "answered once");
        assert_eq!(p.answer(6), None, "not a send's request id");
        assert_eq!(p.answer(99), None);
        assert_eq!(p.next_due(40).unwrap().n, 4);
        assert_eq!(p.next_due(40), None, "all written");
        assert!(!p.done());
        assert_eq!(p.unanswered(), 2);
        p.answer(8);
        p.answer(9);
        assert!(p.done());
    }

    #[test]
    fn on_a_rate_the_slot_is_the_intended_time() {
        // Sender 1 of 2, 100 µs per run message from 50: slots 150 and 350.
        let rate = Schedule::Rate {
            first_us: 50.0,
            spacing_us: 100.0,
        };
        let mut p = Pacer::new((1, 2, 5), 1, rate, 3);
        assert_eq!(p.count(), 2);
        assert_eq!(p.wake(), Some(150));
        assert_eq!(p.next_due(149), None, "not yet due");
        assert_eq!(p.next_due(400).unwrap().at_us, 150);
        assert_eq!(p.next_due(400), None, "the window holds the second back");
        assert_eq!(p.answer(3), Some(150));
        assert_eq!(
            p.next_due(900).unwrap().at_us,
            350,
            "late, but charged from its slot"
        );
    }
}
