//! The server's own counters: `GET /metrics` (Prometheus text) on its HTTP listener, read
//! before and after a run so that the run's share is the difference.
//!
//! Like [`crate::target`], the URL must name a loopback address. The request is plain
//! HTTP/1.0 on a tokio socket (the answer is then neither chunked nor kept alive), which
//! spares the bench an HTTP client for one request per run.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::target::{TargetError, loopback_ip};

/// Largest answer read, bytes.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A validated loopback metrics URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    addr: SocketAddrV4,
    path: String,
}

impl MetricsUrl {
    /// Parses `http://HOST:PORT[/path]` (path `/metrics` if none); refuses other hosts than
    /// loopback.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let bad = |why: &str| TargetError::new(format!("--metrics-url {url:?}: {why}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("use http://HOST:PORT/metrics"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/metrics"),
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port.parse().map_err(|_| bad("a bad port"))?;
        Ok(Self {
            addr: SocketAddrV4::new(loopback_ip(host)?, port),
            path: path.to_owned(),
        })
    }
}

/// A series' labels, `(key, value)` in the order the server wrote them.
pub type Labels = Vec<(String, String)>;

/// One sample: a series' labels and its value.
type Sample = (Labels, f64);

/// Counter values by series: `name` → its samples.
#[derive(Debug, Clone, Default)]
pub struct Counters(HashMap<String, Vec<Sample>>);

impl Counters {
    /// The sum of the series of `name` whose labels include every pair of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0.get(name).map_or(0.0, |series| {
            series
                .iter()
                .filter(|(have, _)| {
                    labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
                })
                .map(|(_, v)| v)
                .sum()
        })
    }

    /// Parses the Prometheus text format (comments and malformed lines are skipped).
    pub fn parse(text: &str) -> Self {
        let mut out: HashMap<String, Vec<Sample>> = HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((name, labels, value)) = parse_line(line) {
                out.entry(name).or_default().push((labels, value));
            }
        }
        Self(out)
    }
}

/// Reads the counters, giving up after `limit`.
pub async fn scrape(url: &MetricsUrl, limit: Duration) -> anyhow::Result<Counters> {
    let fetch = async {
        let mut s = TcpStream::connect(url.addr).await?;
        let req = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nAccept: text/plain\r\n\r\n",
            url.path, url.addr
        );
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        s.take(MAX_BODY).read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(limit, fetch)
        .await
        .context("the metrics endpoint did not answer in time")?
        .with_context(|| format!("reading http://{}{}", url.addr, url.path))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the metrics endpoint sent no HTTP header")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("the metrics endpoint answered {status:?}");
    }
    Ok(Counters::parse(body))
}

/// `name{k="v",...} value [timestamp]`.
fn parse_line(line: &str) -> Option<(String, Labels, f64)> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            let labels = parse_labels(line.get(open + 1..close)?)?;
            (&line[..open], labels, &line[close + 1..])
        }
        None => {
            let (name, rest) = line.split_once(char::is_whitespace)?;
            (name, Vec::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name.trim().to_owned(), labels, value))
}

/// `k="v",k2="v2"` (quoted values with `\"`, `\\` and `\n` escapes).
fn parse_labels(s: &str) -> Option<Labels> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        out.push((key.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_loopback_only() {
        let u = MetricsUrl::parse("http://127.0.0.1:7780").unwrap();
        assert_eq!(u.path, "/metrics");
        assert_eq!(u.addr.port(), 7780);
        let u = MetricsUrl::parse("http://localhost:9/m").unwrap();
        assert_eq!(u.path, "/m");
        assert!(MetricsUrl::parse("http://10.0.0.1:7780/metrics").is_err());
        assert!(MetricsUrl::parse("https://127.0.0.1:7780/metrics").is_err());
        assert!(MetricsUrl::parse("http://127.0.0.1/metrics").is_err());
    }

    #[test]
    fn counters_are_summed_by_label() {
        let text = "# TYPE magpie_room_dropped_total counter\n\
            magpie_room_dropped_total{priority=\"normal\",reason=\"budget\"} 10\n\
            magpie_room_dropped_total{reason=\"budget\",priority=\"low\"} 5\n\
            magpie_room_dropped_total{priority=\"low\",reason=\"queue_full\"} 2\n\
            magpie_room_batches_total 7 1700000000000\n\
            odd{x=\"a\\\"b\"} 1\n\
            broken{ 3\n";
        let c = Counters::parse(text);
        assert_eq!(
            c.sum("magpie_room_dropped_total", &[("reason", "budget")]),
            15.0
        );
        assert_eq!(
            c.sum("magpie_room_dropped_total", &[("priority", "low")]),
            7.0
        );
        assert_eq!(c.sum("magpie_room_dropped_total", &[]), 17.0);
        assert_eq!(c.sum("magpie_room_batches_total", &[]), 7.0);
        assert_eq!(c.sum("odd", &[("x", "a\"b")]), 1.0);
        assert_eq!(c.sum("missing", &[]), 0.0);
    }
}
