//! Prometheus metrics: the process-wide recorder and the names it exports.
//!
//! Library crates record through the `metrics` facade (`counter!`, `histogram!`, ...); only
//! this crate picks the exporter. The recorder is global to the process, installed once (a
//! second server in the same process, as in tests, shares it), and rendered by the HTTP
//! listener at `/metrics`. Histograms of durations end in `_seconds` and use the buckets
//! below; counters end in `_total`, following the Prometheus naming conventions.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, seconds: from 100 µs (an in-memory hop) to 10 s (a stalled fsync).
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Batch-size buckets, requests per commit.
const BATCH: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Installs the recorder (once per process) and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("magpie_store_batch_size".into()), BATCH));
            let handle = match builder {
                Ok(b) => match b.install_recorder() {
                    Ok(h) => h,
                    Err(e) => {
                        // Another recorder is installed (an embedding application's):
                        // keep a private one so /metrics still answers.
                        tracing::warn!(error = %e, "metrics recorder already installed; /metrics shows a private recorder");
                        PrometheusBuilder::new().build_recorder().handle()
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "invalid metric buckets");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            let upkeep = handle.clone();
            // Histogram upkeep keeps the recorder's memory bounded.
            std::thread::Builder::new()
                .name("magpie-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| tracing::warn!(error = %e, "cannot start metrics upkeep"))
                .ok();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "magpie_connections",
        "Authenticated connections currently open."
    );
    describe_counter!(
        "magpie_connections_accepted_total",
        "TCP connections accepted, by listener."
    );
    describe_counter!(
        "magpie_connections_closed_total",
        "Authenticated connections closed, by reason."
    );
    describe_counter!(
        "magpie_errors_total",
        "Error frames sent to clients, by code (bad input, refusals, failures)."
    );
    describe_counter!(
        "magpie_messages_sent_total",
        "Messages stored (new, not retries)."
    );
    describe_counter!(
        "magpie_messages_deduplicated_total",
        "Sends answered with the original ack (retries)."
    );
    describe_histogram!(
        "magpie_send_seconds",
        Unit::Seconds,
        "From a send's arrival to its durable ack."
    );
    describe_counter!(
        "magpie_pushes_queued_total",
        "Messages queued to device connections."
    );
    describe_counter!(
        "magpie_push_retransmits_total",
        "Pushes sent again for lack of an ack."
    );
    describe_counter!(
        "magpie_slow_consumers_total",
        "Connections closed because their outbound queue was full."
    );
    describe_histogram!(
        "magpie_store_commit_seconds",
        Unit::Seconds,
        "Duration of one durable store commit (fsync included)."
    );
    describe_histogram!(
        "magpie_store_batch_size",
        "Requests sharing one store commit (group commit)."
    );
    describe_counter!(
        "magpie_store_commit_failures_total",
        "Store commits that failed."
    );
    describe_histogram!(
        "magpie_delivery_seconds",
        Unit::Seconds,
        "From a message's durable acceptance to its push being written to a device."
    );
    describe_histogram!(
        "magpie_delivery_ack_seconds",
        Unit::Seconds,
        "From a push's first write to the device's acknowledgement."
    );
    describe_histogram!(
        "magpie_outbound_queue_depth",
        "Items waiting in a connection's outbound queue when its writer wakes."
    );
    describe_counter!(
        "magpie_room_dropped_total",
        "Live-room deliveries dropped, by priority and reason (budget, queue_full)."
    );
    describe_counter!(
        "magpie_webhook_deliveries_total",
        "Webhook delivery attempts, by outcome (delivered, failed, dropped)."
    );
    describe_histogram!(
        "magpie_webhook_delivery_seconds",
        Unit::Seconds,
        "Duration of one webhook delivery attempt."
    );
    describe_counter!(
        "magpie_before_send_total",
        "Before-send hook calls, by outcome (allow, reject, rewrite, timeout, error)."
    );
    describe_histogram!(
        "magpie_before_send_seconds",
        Unit::Seconds,
        "Time a send waited for the before-send hook."
    );
    describe_counter!(
        "magpie_filter_matches_total",
        "Messages the word filter changed, by action (mask, reject)."
    );
    describe_counter!(
        "magpie_http_requests_total",
        "Server API requests, by method, route and status class."
    );
}
