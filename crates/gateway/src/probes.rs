//! The per-push metrics, resolved once per gateway.
//!
//! `metrics::histogram!` looks its key up in the recorder's registry on every call; on the
//! push path (hundreds of thousands of pushes a second in a group fan-out) that lookup is
//! worth avoiding, so the gateway resolves the handles once, when it is built (after the
//! server installed the recorder), and every connection shares them.

use metrics::Histogram;

/// Handles of the metrics recorded per push.
#[derive(Debug, Clone)]
pub(crate) struct Probes {
    /// `magpie_delivery_seconds`: durable acceptance to written to the device.
    pub(crate) delivery: Histogram,
    /// `magpie_delivery_ack_seconds`: first push to the device's ack.
    pub(crate) delivery_ack: Histogram,
    /// `magpie_outbound_queue_depth`: items waiting when a connection's writer wakes.
    pub(crate) queue_depth: Histogram,
}

impl Probes {
    /// Resolves the handles in the recorder installed now.
    pub(crate) fn new() -> Self {
        Self {
            delivery: metrics::histogram!("magpie_delivery_seconds"),
            delivery_ack: metrics::histogram!("magpie_delivery_ack_seconds"),
            queue_depth: metrics::histogram!("magpie_outbound_queue_depth"),
        }
    }
}
