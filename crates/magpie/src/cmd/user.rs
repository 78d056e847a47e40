//! `magpie user import FILE.jsonl`: bulk user creation through `POST /v1/users/import`.
//!
//! The whole file is parsed and checked first, so a bad line fails the command before any
//! user is sent. Batches carry an `Idempotency-Key` derived from the file's SHA-256 and the
//! batch's index: re-running an import of the same file, after a failure half-way or not,
//! replays the batches the server already answered and sends only the others.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use magpie_types::UserId;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::{UserArgs, UserOp};
use crate::cmd::http::{self, Api, Auth, Extra};

/// Most users per request (the server's limit).
pub const BATCH: usize = 1_000;

/// The fields a line may carry.
const FIELDS: [&str; 4] = ["id", "nickname", "avatar_url", "custom"];

/// Runs one user operation.
pub async fn run(a: UserArgs) -> anyhow::Result<()> {
    match a.op {
        UserOp::Import { file } => {
            let auth = Auth::app(&a.app)?;
            let api = Api::new(&a.http)?;
            import(&api, &auth, &file).await
        }
    }
}

async fn import(api: &Api, auth: &Auth, file: &Path) -> anyhow::Result<()> {
    let (name, raw) = read_input(file)?;
    let users = parse(&raw).with_context(|| format!("{name}: nothing was sent"))?;
    let digest = hex::encode(Sha256::digest(&raw));
    let (mut created, mut existing, mut replayed) = (0u64, 0u64, 0u64);
    let batches = users.chunks(BATCH).count();
    for (i, batch) in users.chunks(BATCH).enumerate() {
        let (answer, was_replayed) = api
            .json(
                Method::POST,
                "/v1/users/import",
                auth,
                Extra {
                    body: Some(json!({ "users": batch })),
                    // 64 hex digits, the batch index: well within the key's 128 characters.
                    idempotency_key: Some(format!("import-{digest}-{i}")),
                    ..Extra::default()
                },
            )
            .await
            .with_context(|| {
                format!(
                    "batch {} of {batches} (users {}..={}); the batches before it were imported, \
                     re-run the same file to finish",
                    i + 1,
                    i * BATCH + 1,
                    i * BATCH + batch.len()
                )
            })?;
        let count = |k: &str| answer.get(k).and_then(Value::as_u64);
        let (Some(c), Some(e)) = (count("created"), count("existing")) else {
            anyhow::bail!("batch {}: unexpected answer {answer}", i + 1);
        };
        created += c;
        existing += e;
        replayed += u64::from(was_replayed);
    }
    let summary = json!({
        "created": created,
        "existing": existing,
        "batches": batches,
        "replayed": replayed,
    });
    http::print(&summary.to_string())
}

/// The input's display name and bytes (`-`: stdin).
fn read_input(file: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading stdin")?;
        Ok(("stdin".into(), raw))
    } else {
        let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        Ok((file.display().to_string(), raw))
    }
}

/// Every user of the file, in order, each as the JSON object to send. Errors name the line.
fn parse(raw: &[u8]) -> anyhow::Result<Vec<Value>> {
    let text = std::str::from_utf8(raw).context("the input is not UTF-8")?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let user = parse_line(line).with_context(|| format!("line {}", n + 1))?;
        users.push(user);
    }
    if users.is_empty() {
        anyhow::bail!("no users in the input");
    }
    Ok(users)
}

fn parse_line(line: &str) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_str(line).context("not JSON")?;
    let Value::Object(map) = &v else {
        anyhow::bail!("not a JSON object");
    };
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        anyhow::bail!("unknown field {k:?} (expected {})", FIELDS.join(", "));
    }
    let id = map
        .get("id")
        .context("no \"id\"")?
        .as_str()
        .context("\"id\" is not a string")?;
    UserId::new(id).with_context(|| format!("\"id\" {id:?}"))?;
    for k in ["nickname", "avatar_url"] {
        if map.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            anyhow::bail!("{k:?} is not a string");
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_and_blank_ones_skipped() {
        let ok = b"{\"id\": \"a\"}\n\n  \n{\"id\": \"b\", \"nickname\": \"B\", \"custom\": {\"x\": 1}}\n";
        let users = parse(ok).expect("valid");
        assert_eq!(users.len(), 2);
        assert_eq!(users[1]["custom"]["x"], 1);

        let msg = |raw: &[u8]| format!("{:#}", parse(raw).expect_err("invalid"));
        assert!(msg(b"{\"id\": \"a\"}\n\n{\"id\": 3}").starts_with("line 3:"));
        assert!(msg(b"{\"id\": \"a\"}\n{nope").starts_with("line 2: not JSON"));
        assert!(msg(b"{\"id\": \"a\", \"nick\": \"x\"}").contains("unknown field \"nick\""));
        assert!(msg(b"{\"id\": \"a:b\"}").starts_with("line 1:"));
        assert!(msg(b"[1]").contains("not a JSON object"));
        assert!(msg(b"\n\n").contains("no users"));
    }
}
