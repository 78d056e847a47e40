//! Gateway settings.

use std::time::Duration;

use magpie_core::delivery::DeliveryConfig;

/// Timeouts, queue sizes and buffer limits of the access layer.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time allowed from accept to a successful `Hello` (TLS and WebSocket handshakes
    /// included).
    pub handshake_timeout: Duration,
    /// Interval at which clients should ping; a connection silent for three intervals is
    /// closed.
    pub heartbeat_interval: Duration,
    /// Outbound queue capacity per connection, in items. A connection whose queue is full
    /// is closed (it syncs on reconnect) instead of buffering without bound.
    pub outbound_queue: usize,
    /// Requests one connection may have in progress; beyond that the gateway stops reading
    /// from it (backpressure).
    pub max_in_flight: usize,
    /// Time allowed for one socket write to complete before the peer is declared stuck.
    pub write_timeout: Duration,
    /// Connections per IP address that may be in the pre-authentication phase at once.
    pub max_preauth_per_ip: usize,
    /// Push acknowledgement tracking.
    pub delivery: DeliveryConfig,
    /// WebSocket read buffer per connection, in bytes (tungstenite's default is 128 KiB).
    /// Every connection keeps it, idle or not; it also caps one read, so a frame larger
    /// than this takes several reads. 1 KiB holds the usual chat frame; 512 bytes measured
    /// the same per idle connection (allocator size classes), 4 KiB 3.5 KB more.
    pub ws_read_buffer: usize,
    /// WebSocket write buffer target per connection, in bytes.
    pub ws_write_buffer: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(30),
            outbound_queue: 1024,
            max_in_flight: 256,
            write_timeout: Duration::from_secs(10),
            max_preauth_per_ip: 256,
            delivery: DeliveryConfig::default(),
            ws_read_buffer: 1024,
            ws_write_buffer: 4 * 1024,
        }
    }
}

impl GatewayConfig {
    /// How long a connection may stay silent.
    pub fn idle_timeout(&self) -> Duration {
        self.heartbeat_interval * 3
    }
}
