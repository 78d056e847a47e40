//! `Idempotency-Key`: a write retried with the same key gets the first answer again
//! instead of a second effect.
//!
//! A route layer inside the authentication layer (it needs the caller). For a POST, PUT,
//! PATCH or DELETE carrying the header it reads the body (within the body limit), computes
//! the request's fingerprint (hex SHA-256 of `METHOD \n PATH?QUERY \n BODY`), and then:
//!
//! - another request with the same (app, key) is in flight in this process → 409
//!   `IDEMPOTENCY_KEY_IN_USE` (the set is per process; the stored answers are shared);
//! - an answer is remembered under the key (24 h, `Service::idempotent_answer`): same
//!   fingerprint → that answer, with `Idempotent-Replayed: true`; another fingerprint → 422
//!   `IDEMPOTENCY_KEY_REUSED`;
//! - else the request runs, and its answer is remembered unless it is a 5xx or a 429 (a
//!   retry of those must run again: remembering a rate-limit refusal would refuse every
//!   retry for a day).
//!
//! Admin requests are remembered under the reserved app `_magpie` with keys prefixed
//! `admin:`.

use std::collections::HashSet;
use std::pin::Pin;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use magpie_service::apps::admin::SYSTEM_APP;
use magpie_service::idempotency::StoredAnswer;
use magpie_types::AppId;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::auth::{AdminCaller, AppCaller};
use crate::error::ApiError;
use crate::json::payload_too_large;
use crate::state::ApiState;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// The answer header telling that an answer is replayed.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key, bytes.
pub const MAX_KEY: usize = 128;
/// Largest answer kept, bytes (the API's answers are far smaller).
const MAX_ANSWER: usize = 4 << 20;

/// The route layer (see the module docs).
pub async fn idempotent(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(req).await;
    }
    let key = match request_key(req.headers()) {
        Ok(Some(k)) => k,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    match run(st, key, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

/// The request's `Idempotency-Key`, if any: 1 to 128 visible ASCII characters.
pub fn request_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(KEY_HEADER) else {
        return Ok(None);
    };
    let bytes = v.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

async fn run(st: ApiState, key: String, req: Request, next: Next) -> Result<Response, ApiError> {
    let (app, stored_key) = if let Some(AppCaller(app)) = req.extensions().get::<AppCaller>() {
        (app.clone(), key)
    } else if req.extensions().get::<AdminCaller>().is_some() {
        let app = AppId::new(SYSTEM_APP).map_err(ApiError::internal)?;
        (app, format!("admin:{key}"))
    } else {
        return Err(ApiError::internal(
            "the idempotency layer runs outside the authentication layer",
        ));
    };
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > crate::MAX_BODY as u64) {
        return Err(payload_too_large());
    }
    let body = read_limited(body, crate::MAX_BODY).await?;
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let fingerprint = fingerprint(&parts.method, path, &body);

    let _claim =
        Claim::take(&st.inflight, (app.to_string(), stored_key.clone())).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_IN_USE",
                "a request with this Idempotency-Key is in progress; retry later",
            )
        })?;
    if let Some(answer) = st.service.idempotent_answer(&app, &stored_key).await? {
        if answer.fingerprint != fingerprint {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with another request",
            ));
        }
        return Ok(replay(&answer));
    }

    let res = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = res.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER)
        .await
        .map_err(ApiError::internal)?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        let answer = StoredAnswer {
            fingerprint,
            status: status.as_u16(),
            body: text.to_owned(),
            created_ms: st.service.now_ms(),
        };
        if let Err(e) = st.service.remember_answer(&app, &stored_key, &answer).await {
            // The effect happened: answer it. A retry runs again (and a send is still
            // deduplicated by its client message id).
            tracing::warn!(error = %e, app = %app, "could not remember an idempotent answer");
        }
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Hex SHA-256 of `METHOD \n PATH?QUERY \n BODY`.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn replay(answer: &StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut res = (status, answer.body.clone()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    res
}

/// Reads a body of at most `limit` bytes.
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| ApiError::invalid("the request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(payload_too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// A claimed `(app, key)` in the in-flight set, released on drop (also when the request
/// is cancelled).
struct Claim<'a> {
    set: &'a Mutex<HashSet<(String, String)>>,
    slot: Option<(String, String)>,
}

impl<'a> Claim<'a> {
    fn take(set: &'a Mutex<HashSet<(String, String)>>, slot: (String, String)) -> Option<Self> {
        // The guard must be gone before a `Claim` exists: a refused claim is never built
        // (so its drop can neither deadlock on this lock nor release the holder's slot).
        let inserted = set.lock().insert(slot.clone());
        inserted.then(|| Self {
            set,
            slot: Some(slot),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.set.lock().remove(&slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_flight_is_claimed_once_and_released_on_drop() {
        let set = Mutex::new(HashSet::new());
        let slot = ("a".to_owned(), "k".to_owned());
        let first = Claim::take(&set, slot.clone());
        assert!(first.is_some());
        assert!(Claim::take(&set, slot.clone()).is_none(), "in flight");
        assert!(Claim::take(&set, ("b".to_owned(), "k".to_owned())).is_some());
        drop(first);
        assert!(Claim::take(&set, slot).is_some(), "released");
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let f = fingerprint(&Method::POST, "/v1/users?x=1", b"{}");
        assert_eq!(f.len(), 64);
        assert_ne!(f, fingerprint(&Method::PUT, "/v1/users?x=1", b"{}"));
        assert_ne!(f, fingerprint(&Method::POST, "/v1/users?x=2", b"{}"));
        assert_ne!(f, fingerprint(&Method::POST, "/v1/users?x=1", b"{ }"));
    }
}
