//! The one HTTP client every delivery and before-send call shares, and the signed POST.
//!
//! One client means one connection pool: a receiver that is called for every message gets
//! kept-alive connections (HTTP/1.1, or HTTP/2 where its TLS offers it) instead of a
//! handshake per event. reqwest is built without a compiled-in crypto provider, so TLS
//! is configured here explicitly: rustls with the `ring` provider and the Mozilla roots
//! from `webpki-roots`, the same stack as the rest of the server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, Response, header};

use crate::error::WebhookError;
use crate::signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign};

/// What the sender calls itself.
const USER_AGENT: &str = concat!("magpie-webhooks/", env!("CARGO_PKG_VERSION"));

/// Builds the shared client. Redirects are not followed: a webhook URL is configured by
/// an operator, and following a redirect would send signed bodies to wherever the
/// receiver points (and turn a POST into a GET on 301/302).
pub(crate) fn build() -> Result<Client, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A preconfigured rustls config is used as given, so ALPN has to be offered here.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| WebhookError::Client(e.without_url().to_string()))
}

/// One signed request: what [`post`] sends.
pub(crate) struct Signed<'a> {
    /// Where to.
    pub url: &'a str,
    /// The app's signing secret.
    pub secret: &'a str,
    /// `X-Magpie-Event-Id`.
    pub id: &'a str,
    /// `X-Magpie-Event-Type`.
    pub kind: &'a str,
    /// The JSON body, exactly the bytes that are signed.
    pub body: Bytes,
    /// The whole exchange's deadline, answer body included.
    pub timeout: Duration,
}

/// POSTs `req.body` with the signature headers.
pub(crate) async fn post(client: &Client, req: Signed<'_>) -> Result<Response, reqwest::Error> {
    let signature = sign(req.secret.as_bytes(), &req.body);
    client
        .post(req.url)
        .timeout(req.timeout)
        .header(header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, req.id)
        .header(EVENT_TYPE_HEADER, req.kind)
        .header(SIGNATURE_HEADER, signature)
        .body(req.body)
        .send()
        .await
}

/// Why an answer's body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body is longer than the limit.
    TooLarge,
    /// Reading failed (including the request's timeout).
    Http(reqwest::Error),
}

/// Reads at most `max` bytes of `resp`'s body: a receiver cannot make the server buffer
/// an unbounded answer.
pub(crate) async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads and discards a small answer, so that its connection goes back to the pool (an
/// unread body would close it). A large or slow one is left: its connection is dropped.
pub(crate) async fn discard(resp: Response, max: usize) {
    let _ = read_limited(resp, max).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_builds_without_a_process_wide_crypto_provider() {
        assert!(super::build().is_ok());
    }
}
