//! How hard the sender tries: attempts, backoff and the request timeout.

use std::time::Duration;

/// Settings of the [`crate::WebhookSender`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Deliveries tried per event before it is dropped (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed delivery; each further failure doubles it.
    pub initial_backoff: Duration,
    /// The longest wait between two deliveries of one event.
    pub max_backoff: Duration,
    /// How long one event delivery may take, from connecting to the end of the answer.
    pub request_timeout: Duration,
}

impl Default for WebhookConfig {
    /// 12 attempts, 1 s doubling to at most 300 s (about half an hour in all), 5 s per
    /// request.
    fn default() -> Self {
        Self {
            max_attempts: 12,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl WebhookConfig {
    /// The wait after the `failures`-th failed delivery of an event (1 for the first):
    /// `initial_backoff · 2^(failures−1)`, capped at `max_backoff`, then scaled by `jitter`
    /// in `[0, 1]` into its upper half. The jitter spreads the retries of events that
    /// failed together (a receiver that was down) so they do not return as one burst; the
    /// lower bound keeps the backoff meaningful.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_in_the_upper_half() {
        let c = WebhookConfig::default();
        assert_eq!(c.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(c.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(c.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(c.backoff(4, 1.0), Duration::from_secs(8));
        assert_eq!(c.backoff(9, 1.0), Duration::from_secs(256));
        assert_eq!(c.backoff(10, 1.0), Duration::from_secs(300));
        assert_eq!(c.backoff(u32::MAX, 1.0), Duration::from_secs(300));
        assert_eq!(c.backoff(u32::MAX, 0.0), Duration::from_secs(150));
        assert_eq!(
            c.backoff(0, 1.0),
            Duration::from_secs(1),
            "0 reads as the first"
        );
        assert_eq!(
            c.backoff(3, 7.0),
            Duration::from_secs(4),
            "jitter is clamped"
        );
    }
}
