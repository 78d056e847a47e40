//! Client configuration: where to connect, how to authenticate, how to retry.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use magpie_types::{ConvId, Seq};

use crate::ClientError;

/// The error type a [`TokenProvider`] may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`TokenProvider`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + 'a>>;

/// Mints a token for each connection attempt, so that a reconnect after the token expired can
/// use a fresh one.
///
/// Any `Fn() -> impl Future<Output = Result<String, BoxError>>` closure is a provider.
pub trait TokenProvider: Send + Sync + 'static {
    /// A token for the next connection attempt. Called before every attempt; returning the
    /// same token that the server just refused as expired or invalid stops reconnecting.
    fn token(&self) -> TokenFuture<'_>;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
{
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self())
    }
}

/// Where the client's tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// One token for every connection. When the server refuses it as expired or invalid the
    /// client stops.
    Static(String),
    /// A provider asked before every connection attempt.
    Provider(Arc<dyn TokenProvider>),
}

impl TokenSource {
    /// A source backed by `provider`.
    pub fn provider(provider: impl TokenProvider) -> Self {
        Self::Provider(Arc::new(provider))
    }

    pub(crate) async fn fetch(&self) -> Result<String, ClientError> {
        match self {
            Self::Static(t) => Ok(t.clone()),
            Self::Provider(p) => p
                .token()
                .await
                .map_err(|e| ClientError::Token(e.to_string())),
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token itself.
        match self {
            Self::Static(_) => f.write_str("TokenSource::Static(..)"),
            Self::Provider(_) => f.write_str("TokenSource::Provider(..)"),
        }
    }
}

impl From<String> for TokenSource {
    fn from(token: String) -> Self {
        Self::Static(token)
    }
}

impl From<&str> for TokenSource {
    fn from(token: &str) -> Self {
        Self::Static(token.to_owned())
    }
}

/// Reconnect (and send retry) backoff: exponential, capped, with jitter.
///
/// The n-th retry (from 0) waits `min(max, initial * 2^n)`, of which a random fraction up to
/// `jitter` is taken off: `jitter = 1.0` is "full jitter" (uniform between 0 and the cap),
/// which spreads a crowd of clients that lost the same server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay's cap.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Fraction of the delay that is randomised, in `0.0..=1.0`.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            jitter: 1.0,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (from 0), given `random` in `0.0..1.0`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let cap = self.initial.saturating_mul(factor).min(self.max);
        let off = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        cap.mul_f64(1.0 - off)
    }

    /// The delay before retry number `attempt`, with a fresh random draw.
    pub(crate) fn next_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

/// Everything [`Client::connect`](crate::Client::connect) needs.
///
/// Build it with [`ClientConfig::new`] and the `with_*` methods; every field has a documented
/// default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The server: `tcp://host:port`, `tls://host:port`, `ws://host[:port]/path` or
    /// `wss://host[:port]/path`.
    pub url: String,
    /// Where tokens come from.
    pub token: TokenSource,
    /// Extra trusted root certificates (DER) for `tls://` and `wss://`.
    pub root_certificates: Vec<Vec<u8>>,
    /// Whether the public web PKI roots (webpki-roots) are trusted too. Default: true.
    pub public_roots: bool,
    /// Reconnect backoff; also paces retries of sends the server answered with a retryable
    /// error.
    pub backoff: Backoff,
    /// Bound on one connection attempt: TCP, TLS, WebSocket and the Hello exchange.
    /// Default: 10 s.
    pub connect_timeout: Duration,
    /// Bound on a query ([`Client::history`](crate::Client::history),
    /// [`Client::conversations`](crate::Client::conversations)), from the call to the answer,
    /// including waiting for a connection. Default: 15 s.
    pub request_timeout: Duration,
    /// If a request sent on a connection (a send, a pull, a query) stays unanswered this long,
    /// the connection is deemed stuck and is replaced. Default: 20 s.
    pub ack_timeout: Duration,
    /// Overall bound on [`Client::send`](crate::Client::send). Default: none (a send keeps
    /// being retried until it is acknowledged, definitely rejected, or the client closes).
    pub send_timeout: Option<Duration>,
    /// Free-form client name sent in Hello, for the server's logs.
    pub client_name: String,
    /// Per-conversation cursors (the highest `seq` the application has already seen), so that
    /// a restarted application resumes instead of receiving all history again.
    pub initial_cursors: HashMap<ConvId, Seq>,
    /// Largest frame accepted from the server, in bytes. Default: 1 MiB.
    pub max_frame_bytes: usize,
    /// Messages asked for per pull page during sync. Default: 100.
    pub pull_page_size: u32,
    /// Conversations asked for per page when listing. Default: 100.
    pub list_page_size: u32,
    /// Conversations pulled at the same time. Default: 4.
    pub max_concurrent_pulls: usize,
    /// Events buffered for the application before the connection task stops reading from the
    /// server. Default: 1024.
    pub event_buffer: usize,
}

impl ClientConfig {
    /// A configuration with defaults for everything but the server and the token.
    pub fn new(url: impl Into<String>, token: impl Into<TokenSource>) -> Self {
        Self {
            url: url.into(),
            token: token.into(),
            root_certificates: Vec::new(),
            public_roots: true,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            ack_timeout: Duration::from_secs(20),
            send_timeout: None,
            client_name: concat!("magpie-client-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            initial_cursors: HashMap::new(),
            max_frame_bytes: 1024 * 1024,
            pull_page_size: 100,
            list_page_size: 100,
            max_concurrent_pulls: 4,
            event_buffer: 1024,
        }
    }

    /// Uses `provider` for tokens (see [`TokenProvider`]).
    pub fn with_token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.token = TokenSource::provider(provider);
        self
    }

    /// Trusts the certificates in a PEM bundle as roots.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ClientError::Config(format!("bad PEM: {e}")))?;
            self.root_certificates.push(cert.to_vec());
            found += 1;
        }
        if found == 0 {
            return Err(ClientError::Config("no certificate in PEM".into()));
        }
        Ok(self)
    }

    /// Trusts one DER-encoded certificate as a root.
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(der.into());
        self
    }

    /// Whether the public web PKI roots are trusted.
    pub fn with_public_roots(mut self, on: bool) -> Self {
        self.public_roots = on;
        self
    }

    /// Sets the reconnect backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`ClientConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::ack_timeout`].
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::send_timeout`].
    pub fn with_send_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets the client name sent in Hello.
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Seeds per-conversation cursors (see [`ClientConfig::initial_cursors`]).
    pub fn with_initial_cursors(
        mut self,
        cursors: impl IntoIterator<Item = (ConvId, Seq)>,
    ) -> Self {
        self.initial_cursors.extend(cursors);
        self
    }

    /// Sets [`ClientConfig::pull_page_size`] and [`ClientConfig::list_page_size`].
    pub fn with_page_sizes(mut self, pull: u32, list: u32) -> Self {
        self.pull_page_size = pull;
        self.list_page_size = list;
        self
    }

    /// Sets [`ClientConfig::max_frame_bytes`].
    pub fn with_max_frame_bytes(mut self, max: usize) -> Self {
        self.max_frame_bytes = max;
        self
    }

    /// Checks the settings that have no sensible interpretation when zero.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        let bad = |what: &str| Err(ClientError::Config(format!("{what} must be positive")));
        if self.backoff.initial.is_zero() {
            return bad("backoff.initial");
        }
        if self.pull_page_size == 0 {
            return bad("pull_page_size");
        }
        if self.list_page_size == 0 {
            return bad("list_page_size");
        }
        if self.max_concurrent_pulls == 0 {
            return bad("max_concurrent_pulls");
        }
        if self.event_buffer == 0 {
            return bad("event_buffer");
        }
        if self.max_frame_bytes < 1024 {
            return Err(ClientError::Config(
                "max_frame_bytes must be at least 1024".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.backoff.jitter) {
            return Err(ClientError::Config(
                "backoff.jitter must be in 0..=1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 1.0,
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(400));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        let fixed = Backoff { jitter: 0.0, ..b };
        assert_eq!(fixed.delay(1, 0.9), Duration::from_millis(200));
    }

    #[test]
    fn token_is_never_printed() {
        let c = ClientConfig::new("tcp://h:1", "secret-token");
        assert!(!format!("{c:?}").contains("secret-token"));
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let c = ClientConfig::new("tls://h:1", "t");
        assert!(c.add_root_certificates_pem(b"not pem").is_err());
    }
}
