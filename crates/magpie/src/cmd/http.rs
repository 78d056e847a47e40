//! The REST API client shared by `api`, `app` and `user`: one reqwest client, the two kinds
//! of credentials, and answers turned into JSON or a one-line error.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::{AdminKeyArgs, AppAuthArgs, HttpArgs};
use crate::cmd::client_args::secret_for;

/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a whole request; an import batch of 1000 users is the slowest call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    /// An app's backend: `Authorization: Basic base64(app:secret)`.
    App {
        /// App id.
        app: String,
        /// One of its secrets.
        secret: String,
    },
    /// The super-admin: `Authorization: Bearer KEY`.
    Admin {
        /// The admin key.
        key: String,
        /// The key is the public demo key, not one the user gave (used in error hints).
        demo_default: bool,
    },
}

impl Auth {
    /// App credentials from the flags (the demo secret for app `demo` by default).
    pub fn app(a: &AppAuthArgs) -> anyhow::Result<Self> {
        let app = magpie_types::AppId::new(a.app.as_str())?;
        let secret = secret_for(&app, a.app_secret.as_deref())?;
        Ok(Self::App {
            app: a.app.clone(),
            secret,
        })
    }

    /// The admin key from the flags, or the public demo key when `demo_default` allows it.
    pub fn admin(a: &AdminKeyArgs, demo_default: bool) -> anyhow::Result<Self> {
        match &a.admin_key {
            Some(k) => Ok(Self::Admin {
                key: k.clone(),
                demo_default: false,
            }),
            None if demo_default => Ok(Self::Admin {
                key: magpie_server::demo::DEMO_ADMIN_KEY.to_owned(),
                demo_default: true,
            }),
            None => anyhow::bail!(
                "admin routes need the admin key: pass --admin-key or set MAGPIE_ADMIN_KEY"
            ),
        }
    }

    fn header(&self) -> anyhow::Result<HeaderValue> {
        let text = match self {
            Self::App { app, secret } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{app}:{secret}"))
            ),
            Self::Admin { key, .. } => format!("Bearer {key}"),
        };
        let mut v = HeaderValue::from_str(&text)
            .context("the credentials contain characters not allowed in a header")?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// A connection to one server's REST API.
pub struct Api {
    client: reqwest::Client,
    base: String,
}

/// A request beyond method, path and auth.
#[derive(Default)]
pub struct Extra {
    /// The JSON body.
    pub body: Option<Value>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// More headers; an `Authorization` here replaces the one from [`Auth`].
    pub headers: HeaderMap,
}

/// The server's answer.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body as JSON, if it is JSON.
    pub json: Option<Value>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The answer is a replay of an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
    /// The request used the public demo admin key by default.
    demo_admin_key: bool,
}

impl Api {
    /// A client for the server at `http.url` (`http://` or `https://`).
    pub fn new(http: &HttpArgs) -> anyhow::Result<Self> {
        let base = http.url.trim_end_matches('/').to_owned();
        let host = if let Some(rest) = base.strip_prefix("https://") {
            rest
        } else if let Some(rest) = base.strip_prefix("http://") {
            if http.ca_cert.is_some() {
                anyhow::bail!("--ca-cert needs an https:// URL, not {base}");
            }
            rest
        } else {
            anyhow::bail!("the server URL must start with http:// or https://, not {base:?}");
        };
        if host.is_empty() {
            anyhow::bail!("the server URL {base:?} names no host");
        }
        // reqwest is built without a process-wide rustls provider ("rustls-no-provider"):
        // every client gets an explicit configuration, also for plain http.
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(http.ca_cert.as_deref())?)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(format!("magpie-cli/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { client, base })
    }

    /// Sends one request; transport failures are errors, any HTTP status is an [`Answer`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        extra: Extra,
    ) -> anyhow::Result<Answer> {
        if !path.starts_with('/') {
            anyhow::bail!("the path must start with `/`, not {path:?}");
        }
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.clone(), &url);
        if !extra.headers.contains_key(AUTHORIZATION) {
            req = req.header(AUTHORIZATION, auth.header()?);
        }
        if let Some(k) = &extra.idempotency_key {
            req = req.header("idempotency-key", k.as_str());
        }
        if let Some(body) = &extra.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?);
        }
        req = req.headers(extra.headers);
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let replayed = resp
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {method} {url}"))?
            .to_vec();
        let json = serde_json::from_slice(&body).ok();
        Ok(Answer {
            status,
            json,
            body,
            replayed,
            demo_admin_key: matches!(
                auth,
                Auth::Admin {
                    demo_default: true,
                    ..
                }
            ),
        })
    }

    /// Sends one request and returns the JSON body of a 2xx answer; anything else is an
    /// error whose message is [`Answer::summary`].
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        extra: Extra,
    ) -> anyhow::Result<(Value, bool)> {
        let a = self.call(method, path, auth, extra).await?;
        if !a.status.is_success() {
            anyhow::bail!("{}", a.summary());
        }
        let replayed = a.replayed;
        match a.json {
            Some(v) => Ok((v, replayed)),
            None if a.body.is_empty() => Ok((Value::Null, replayed)),
            None => anyhow::bail!(
                "HTTP {}: the answer is not JSON: {}",
                a.status.as_u16(),
                first_line(&a.body)
            ),
        }
    }
}

impl Answer {
    /// One line for stderr: `HTTP 404 NOT_FOUND: no user "x" in this app`.
    pub fn summary(&self) -> String {
        let err = self.json.as_ref().and_then(|j| j.get("error"));
        let code = err.and_then(|e| e.get("code")).and_then(Value::as_str);
        let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
        let mut s = match (code, message) {
            (Some(c), Some(m)) => format!("HTTP {} {c}: {}", self.status.as_u16(), one_line(m)),
            (Some(c), None) => format!("HTTP {} {c}", self.status.as_u16()),
            _ => format!(
                "HTTP {} {}: {}",
                self.status.as_u16(),
                self.status.canonical_reason().unwrap_or("error"),
                first_line(&self.body)
            ),
        };
        if let Some(ms) = err
            .and_then(|e| e.get("retry_after_ms"))
            .and_then(Value::as_u64)
        {
            s.push_str(&format!(" (retry after {ms} ms)"));
        }
        if self.status == StatusCode::UNAUTHORIZED && self.demo_admin_key {
            s.push_str(" (sent the demo admin key: pass --admin-key or set MAGPIE_ADMIN_KEY)");
        }
        s
    }
}

/// Parses a `NAME: VALUE` header flag.
pub fn parse_header(s: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = s
        .split_once(':')
        .with_context(|| format!("header {s:?} is not NAME:VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("bad header name in {s:?}"))?;
    let value = HeaderValue::from_str(value.trim())
        .with_context(|| format!("bad header value in {s:?}"))?;
    Ok((name, value))
}

/// Reads a JSON argument: inline JSON, `-` for stdin, or (with `allow_file`) `@FILE`.
pub fn json_arg(what: &str, arg: &str, allow_file: bool) -> anyhow::Result<Value> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .with_context(|| format!("reading {what} from stdin"))?;
        s
    } else if let (true, Some(path)) = (allow_file, arg.strip_prefix('@')) {
        std::fs::read_to_string(path).with_context(|| format!("reading {what} from {path}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON"))
}

/// Prints JSON on stdout, indented.
pub fn print_pretty(v: &Value) -> anyhow::Result<()> {
    // Serialising a `Value` cannot fail; fall back to the compact form all the same.
    print(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
}

/// Prints a line on stdout. A closed pipe (`magpie api … | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// rustls with the ring provider, the public web PKI roots and an optional private CA;
/// ALPN offers HTTP/2 and HTTP/1.1.
fn tls_config(ca_cert: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| format!("bad PEM in {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("bad certificate in {}", path.display()))?;
            found += 1;
        }
        if found == 0 {
            anyhow::bail!("no certificate in {}", path.display());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = one_line(text.lines().find(|l| !l.trim().is_empty()).unwrap_or(""));
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let (n, v) = parse_header("X-Trace: abc def").expect("valid");
        assert_eq!((n.as_str(), v.to_str().ok()), ("x-trace", Some("abc def")));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn error_summaries_are_one_line() {
        let body = br#"{"error": {"code": "NOT_FOUND", "message": "no user \"x\"\nin this app"}}"#;
        let a = Answer {
            status: StatusCode::NOT_FOUND,
            json: serde_json::from_slice(body).ok(),
            body: body.to_vec(),
            replayed: false,
            demo_admin_key: false,
        };
        assert_eq!(
            a.summary(),
            r#"HTTP 404 NOT_FOUND: no user "x" in this app"#
        );
        let a = Answer {
            status: StatusCode::BAD_GATEWAY,
            json: None,
            body: b"\n<html>upstream\n down</html>".to_vec(),
            replayed: false,
            demo_admin_key: false,
        };
        assert_eq!(a.summary(), "HTTP 502 Bad Gateway: <html>upstream");
    }
}
