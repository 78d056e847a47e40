//! User tokens.
//!
//! A token is a JWT signed with the app's secret (HS256). Its header's `kid` names the app,
//! so the server can pick the right secret before verifying; the `app` claim repeats it and
//! must match. Claims: `sub` (user), `dev` (device), `iat`, `exp`. Expiry is checked against
//! the `now` the caller passes (not the library's clock) so tests control time. An app may
//! have several valid secrets at once (rotation), so verification takes a list.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use magpie_types::{AppId, DeviceId, UserId};
use serde::{Deserialize, Serialize};

/// The claims Magpie puts in a user token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// App id.
    pub app: String,
    /// User id.
    pub sub: String,
    /// Device id.
    pub dev: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Issued at, Unix ms (optional, more precise than `iat`): revocation compares issue
    /// times, and a token minted in the same second as a revocation must not be caught by
    /// it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iat_ms: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The app.
    pub app: AppId,
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// When the token expires, Unix seconds.
    pub expires_at: u64,
    /// When the token was issued, Unix ms (from `iat_ms`, else `iat` × 1000).
    pub issued_at_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a well-formed JWT, or claims missing or malformed.
    #[error("malformed token")]
    Malformed,
    /// The app named by the token does not exist.
    #[error("unknown app")]
    UnknownApp,
    /// No secret of the app verifies the signature, or the algorithm is not allowed.
    #[error("bad token signature")]
    BadSignature,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// Header and claims name different apps.
    #[error("token app mismatch")]
    AppMismatch,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign token: {0}")]
pub struct MintError(#[from] jsonwebtoken::errors::Error);

/// Mints a token for `user` on `device`, valid for `ttl_secs` from `now_secs`.
pub fn mint(
    app: &AppId,
    secret: &[u8],
    user: &UserId,
    device: &DeviceId,
    now_secs: u64,
    ttl_secs: u64,
) -> Result<String, MintError> {
    mint_at_ms(
        app,
        secret,
        user,
        device,
        now_secs.saturating_mul(1000),
        ttl_secs,
    )
}

/// Mints a token like [`mint`], recording the issue time to the millisecond.
pub fn mint_at_ms(
    app: &AppId,
    secret: &[u8],
    user: &UserId,
    device: &DeviceId,
    now_ms: u64,
    ttl_secs: u64,
) -> Result<String, MintError> {
    let now_secs = now_ms / 1000;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(app.to_string());
    let claims = Claims {
        app: app.to_string(),
        sub: user.to_string(),
        dev: device.to_string(),
        iat: now_secs,
        iat_ms: now_ms,
        exp: now_secs.saturating_add(ttl_secs),
    };
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// Verifies a token. `secrets_of` returns the app's currently valid secrets (none if the
/// app does not exist).
pub fn verify<S: AsRef<[u8]>>(
    token: &str,
    now_secs: u64,
    secrets_of: impl FnOnce(&AppId) -> Option<Vec<S>>,
) -> Result<Identity, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(AuthError::BadSignature);
    }
    let app = header
        .kid
        .as_deref()
        .and_then(|k| AppId::new(k).ok())
        .ok_or(AuthError::Malformed)?;
    let secrets = secrets_of(&app).ok_or(AuthError::UnknownApp)?;
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's clock.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let mut last = AuthError::BadSignature;
    for secret in secrets {
        match jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.as_ref()),
            &validation,
        ) {
            Ok(data) => return identity(app, data.claims, now_secs),
            Err(e) => {
                last = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature
                    | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => AuthError::BadSignature,
                    _ => AuthError::Malformed,
                }
            }
        }
    }
    Err(last)
}

fn identity(app: AppId, c: Claims, now_secs: u64) -> Result<Identity, AuthError> {
    if c.app != app.as_str() {
        return Err(AuthError::AppMismatch);
    }
    if c.exp <= now_secs {
        return Err(AuthError::Expired);
    }
    Ok(Identity {
        app,
        user: UserId::new(c.sub).map_err(|_| AuthError::Malformed)?,
        device: DeviceId::new(c.dev).map_err(|_| AuthError::Malformed)?,
        expires_at: c.exp,
        issued_at_ms: if c.iat_ms > 0 {
            c.iat_ms
        } else {
            c.iat.saturating_mul(1000)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AppId, UserId, DeviceId) {
        (
            AppId::new("demo").unwrap(),
            UserId::new("alice").unwrap(),
            DeviceId::new("phone").unwrap(),
        )
    }

    #[test]
    fn roundtrip_and_refusals() {
        let (app, user, dev) = ids();
        let t = mint(&app, b"s3cret", &user, &dev, 1000, 60).unwrap();
        let ok = verify(&t, 1030, |a| (a == &app).then(|| vec![b"s3cret".to_vec()])).unwrap();
        assert_eq!((ok.user, ok.device, ok.expires_at), (user, dev, 1060));
        assert_eq!(
            verify(&t, 1060, |_| Some(vec![b"s3cret".to_vec()])),
            Err(AuthError::Expired)
        );
        assert_eq!(
            verify(&t, 1000, |_| Some(vec![b"other".to_vec()])),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&t, 1000, |_| None::<Vec<Vec<u8>>>),
            Err(AuthError::UnknownApp)
        );
        assert_eq!(
            verify("garbage", 1000, |_| Some(vec![b"x".to_vec()])),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn any_current_secret_verifies_during_rotation() {
        let (app, user, dev) = ids();
        let t = mint(&app, b"old", &user, &dev, 1000, 60).unwrap();
        let ok = verify(&t, 1001, |_| Some(vec![b"new".to_vec(), b"old".to_vec()]));
        assert!(ok.is_ok());
    }

    #[test]
    fn header_app_must_match_claims() {
        let (app, user, dev) = ids();
        // Signed with app "other"'s secret but claiming app "demo" in the header: refused
        // because the claim names "other".
        let other = AppId::new("other").unwrap();
        let t = mint(&other, b"k", &user, &dev, 1000, 60).unwrap();
        let forged = {
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(app.to_string());
            let hjson = serde_json_header(&h);
            parts[0] = hjson;
            parts.join(".")
        };
        // The signature no longer matches the modified header.
        assert_eq!(
            verify(&forged, 1000, |_| Some(vec![b"k".to_vec()])),
            Err(AuthError::BadSignature)
        );
    }

    fn serde_json_header(h: &Header) -> String {
        // Re-encode a header the way a forger would, by minting with it and taking part 0.
        let claims = Claims {
            app: "x".into(),
            sub: "x".into(),
            dev: "x".into(),
            iat: 0,
            iat_ms: 0,
            exp: 1,
        };
        let t = jsonwebtoken::encode(h, &claims, &EncodingKey::from_secret(b"z")).unwrap();
        t.split('.').next().unwrap().to_owned()
    }
}
