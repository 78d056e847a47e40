//! The `X-Magpie-Signature` header: HMAC-SHA256 of the exact request body.
//!
//! The body is signed as sent, byte for byte, so a receiver must verify the raw bytes
//! before parsing them (re-serialising parsed JSON would not reproduce them). [`verify`]
//! is exported so that receivers written in Rust, and the tests, check signatures the
//! same way the sender makes them.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Magpie-Signature";
/// The header that carries the event id (the same on every retry).
pub const EVENT_ID_HEADER: &str = "X-Magpie-Event-Id";
/// The header that carries the event type (`message.sent`, `message.before_send`, ...).
pub const EVENT_TYPE_HEADER: &str = "X-Magpie-Event-Type";

/// The scheme prefix of the header value, naming the MAC.
const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// The `X-Magpie-Signature` header value for `body`: `sha256=` and the lowercase hex
/// HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Magpie-Signature` value) is the signature of `body` under
/// `secret`. The comparison takes the same time wherever the first differing byte is,
/// so timing tells an attacker nothing about the expected value.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(tag) = header.trim().strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(tag) = hex::decode(tag) else {
        return false;
    };
    let mut mac = keyed(secret);
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long keys are hashed, short ones padded), so
    // `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
    }

    #[test]
    fn refuses_wrong_secret_body_or_format() {
        let sig = sign(b"secret", b"{}");
        assert!(verify(b"secret", b"{}", &sig));
        assert!(!verify(b"other", b"{}", &sig));
        assert!(!verify(b"secret", b"{ }", &sig));
        assert!(!verify(b"secret", b"{}", sig.trim_start_matches("sha256=")));
        assert!(!verify(b"secret", b"{}", "sha256=zz"));
        assert!(!verify(b"secret", b"{}", "sha256="));
        assert!(
            verify(b"", b"", &sign(b"", b"")),
            "an empty key is still a key"
        );
    }
}
