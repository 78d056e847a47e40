//! The REST API and configuration commands as a script uses them: `api`, `app`,
//! `user import` against an in-process server (magpie-testkit) with an admin key, and
//! `config check` on files and environment variables. JSON on stdout, errors on stderr,
//! the exit status tells success.

// Tests unwrap: a panic is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use magpie_server::config::StorageKind;
use magpie_testkit::server::TestServer;
use serde_json::Value;

const ADMIN_KEY: &str = "cli-api-test-admin-key-0123456789";

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.out, self.err
            )
        })
    }
}

/// Runs `magpie args…` with `env` (and no other `MAGPIE_*` variable) and `stdin`.
fn magpie(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_magpie"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MAGPIE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("run magpie");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().expect("magpie output");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A node with the admin API on and the memory store (imports of thousands of users).
async fn server() -> (TestServer, String) {
    let server = TestServer::start_with(|c| {
        c.admin.key = ADMIN_KEY.into();
        c.storage = StorageKind::Memory;
    })
    .await;
    let url = format!("http://{}", server.http());
    (server, url)
}

/// `magpie app …` with the test's admin key; the JSON answer.
fn app(url: &str, args: &[&str]) -> Value {
    let mut all = vec!["app", "--url", url, "--admin-key", ADMIN_KEY];
    all.extend_from_slice(args);
    let r = magpie(&all, &[], None);
    assert!(r.ok(), "app {args:?}: {}", r.err);
    r.json()
}

/// `magpie api …` as `app` with `secret`.
fn api(url: &str, app: &str, secret: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut all = vec!["api", "--url", url, "--app", app];
    all.extend_from_slice(args);
    magpie(&all, &[("MAGPIE_APP_SECRET", secret)], stdin)
}

fn example_config() -> String {
    format!("{}/../../magpie.example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn config_check_prints_the_example_with_secrets_redacted() {
    let r = magpie(
        &["config", "check", "--config", &example_config()],
        &[],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    let v = r.json();
    assert_eq!(v["limits"]["max_page"], 200);
    assert!(
        matches!(v["admin"]["key"].as_str(), Some("" | "[redacted]")),
        "{v}"
    );
    for a in v["apps"].as_array().unwrap() {
        assert_eq!(a["secret"], "[redacted]");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.toml");
    std::fs::write(
        &file,
        "[admin]\nkey = \"admin-key-never-printed-42\"\n\n\
         [[apps]]\nid = \"shop\"\nsecret = \"app-secret-never-printed-42\"\n",
    )
    .unwrap();
    let r = magpie(
        &["config", "check", "-c", file.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    assert!(!r.out.contains("never-printed"), "{}", r.out);
    let v = r.json();
    assert_eq!(v["admin"]["key"], "[redacted]");
    assert_eq!(v["apps"][0]["id"], "shop");
    assert_eq!(v["apps"][0]["secret"], "[redacted]");
}

#[test]
fn config_check_names_a_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "[limits]\nmax_pag = 50\n").unwrap();
    let r = magpie(
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(r.code, Some(2), "{} {}", r.out, r.err);
    assert!(r.out.is_empty(), "{}", r.out);
    assert!(r.err.contains("max_pag"), "{}", r.err);
    assert!(r.err.contains("typo.toml"), "names the file: {}", r.err);

    let missing = dir.path().join("missing.toml");
    let r = magpie(
        &["config", "check", "--config", missing.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(r.code, Some(2), "{}", r.err);
    assert!(r.err.contains("missing.toml"), "{}", r.err);
}

#[test]
fn config_check_applies_the_environment_over_the_file() {
    let example = example_config();
    let r = magpie(
        &["config", "check", "--config", &example],
        &[("MAGPIE_LIMITS__MAX_PAGE", "50"), ("MAGPIE_NODE_ID", "7")],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
    let v = r.json();
    assert_eq!(
        (&v["limits"]["max_page"], &v["node_id"]),
        (&50.into(), &7.into())
    );

    let r = magpie(
        &["config", "check", "--config", &example],
        &[("MAGPIE_LIMITS__MAX_PAGE", "0")],
        None,
    );
    assert_eq!(r.code, Some(2), "{}", r.out);
    assert!(r.err.contains("max_page"), "{}", r.err);
    assert!(r.err.contains("MAGPIE_LIMITS__MAX_PAGE"), "{}", r.err);

    // Client-side variables share the prefix and do not disturb the check.
    let r = magpie(
        &["config", "check"],
        &[("MAGPIE_APP_SECRET", "x"), ("MAGPIE_HTTP", "http://h")],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_answers_with_json_errors_and_exit_codes() {
    let (_server, url) = server().await;
    let created = app(&url, &["create", "--id", "shop", "--name", "Shop"]);
    assert_eq!(created["id"], "shop");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 16, "{created}");

    let listed = app(&url, &["list"]);
    assert!(
        listed["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "shop"),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&secret),
        "list shows previews only"
    );

    // An unknown user: the JSON error on stdout, a one-line summary on stderr, exit ≠ 0.
    let r = api(&url, "shop", &secret, &["GET", "/v1/users/x"], None);
    assert!(!r.ok());
    assert_eq!(r.json()["error"]["code"], "NOT_FOUND", "{}", r.out);
    assert!(r.err.contains("HTTP 404 NOT_FOUND: "), "{}", r.err);
    assert_eq!(r.err.trim().lines().count(), 1, "{}", r.err);

    // A body from stdin, then the user is there; pretty JSON on stdout.
    let r = api(
        &url,
        "shop",
        &secret,
        &["post", "/v1/users", "-"],
        Some(br#"{"id": "x", "nickname": "Ex"}"#),
    );
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.json()["created"], true);
    let r = api(&url, "shop", &secret, &["GET", "/v1/users/x"], None);
    assert!(r.ok(), "{}", r.err);
    assert!(r.out.contains("\n  \""), "indented: {}", r.out);
    assert_eq!(
        (&r.json()["id"], &r.json()["nickname"]),
        (&"x".into(), &"Ex".into())
    );

    // The demo app cannot see shop's user: the app comes from the credentials.
    let r = magpie(&["api", "--url", &url, "GET", "/v1/users/x"], &[], None);
    assert!(!r.ok());
    assert!(r.err.contains("HTTP 404 NOT_FOUND"), "{}", r.err);

    // A wrong secret.
    let r = api(
        &url,
        "shop",
        "wrong-secret-wrong-secret",
        &["GET", "/v1/users/x"],
        None,
    );
    assert!(!r.ok());
    assert!(r.err.contains("HTTP 401 UNAUTHENTICATED"), "{}", r.err);

    // Admin paths take the admin key; an app's secret is never sent there.
    let r = magpie(
        &[
            "api",
            "--url",
            &url,
            "--admin-key",
            ADMIN_KEY,
            "GET",
            "/v1/admin/apps/shop",
        ],
        &[],
        None,
    );
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.json()["id"], "shop");
    let r = api(&url, "shop", &secret, &["GET", "/v1/admin/apps"], None);
    assert!(!r.ok());
    assert!(r.err.contains("--admin-key"), "{}", r.err);

    // Settings: read, write back at the current version, and a stale version is refused.
    let s = app(&url, &["settings", "--id", "shop"]);
    let version = s["version"].as_u64().unwrap();
    let settings = s["settings"].to_string();
    let v = version.to_string();
    let put = app(
        &url,
        &[
            "set",
            "--id",
            "shop",
            "--settings",
            &settings,
            "--version",
            &v,
        ],
    );
    assert!(put["version"].as_u64().unwrap() > version, "{put}");
    let r = magpie(
        &[
            "app",
            "--url",
            &url,
            "--admin-key",
            ADMIN_KEY,
            "set",
            "--id",
            "shop",
            "--settings",
            &settings,
            "--version",
            &v,
        ],
        &[],
        None,
    );
    assert!(!r.ok());
    assert!(r.err.contains("HTTP 409 CONFLICT"), "{}", r.err);

    // Client-side mistakes are caught before anything is sent.
    let r = api(
        &url,
        "shop",
        &secret,
        &["POST", "/v1/users", "{not json"],
        None,
    );
    assert!(!r.ok() && r.err.contains("not valid JSON"), "{}", r.err);
    let r = api(
        &url,
        "shop",
        &secret,
        &["-H", "no-colon", "GET", "/v1/users/x"],
        None,
    );
    assert!(!r.ok() && r.err.contains("NAME:VALUE"), "{}", r.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_import_sends_batches_and_is_safe_to_rerun() {
    let (_server, url) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize| format!("{{\"id\": \"u{i}\", \"nickname\": \"User {i}\"}}\n");
    let mut text: String = (0..2_500).map(line).collect();
    text.insert(0, '\n'); // blank lines are skipped
    let file = dir.path().join("users.jsonl");
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();
    let import = |path: &str, stdin: Option<&[u8]>| {
        magpie(&["user", "--url", &url, "import", path], &[], stdin)
    };

    let r = import(file, None);
    assert!(r.ok(), "{}", r.err);
    let v = r.json();
    assert_eq!(
        (&v["created"], &v["existing"], &v["batches"], &v["replayed"]),
        (&2_500.into(), &0.into(), &3.into(), &0.into()),
        "{v}"
    );

    // The same file again: every batch's Idempotency-Key is known, so the server replays
    // its first answers and applies nothing twice.
    let r = import(file, None);
    assert!(r.ok(), "{}", r.err);
    let again = r.json();
    assert_eq!(
        (&again["batches"], &again["replayed"]),
        (&3.into(), &3.into()),
        "{again}"
    );
    assert_eq!(
        (&again["created"], &again["existing"]),
        (&v["created"], &v["existing"])
    );

    // The same users in other bytes (newest first, from stdin): new keys, all existing.
    let reversed: String = (0..2_500).rev().map(line).collect();
    let r = import("-", Some(reversed.as_bytes()));
    assert!(r.ok(), "{}", r.err);
    let v = r.json();
    assert_eq!(
        (&v["created"], &v["existing"], &v["batches"], &v["replayed"]),
        (&0.into(), &2_500.into(), &3.into(), &0.into()),
        "{v}"
    );
    let r = magpie(&["api", "--url", &url, "GET", "/v1/users/u2499"], &[], None);
    assert!(r.ok(), "{}", r.err);
    assert_eq!(r.json()["nickname"], "User 2499");

    // A malformed line fails the import, naming the line, before anything is sent.
    let bad = "{\"id\": \"new1\"}\n\n{\"id\": \"new2\", \"nick\": 1}\n";
    let r = import("-", Some(bad.as_bytes()));
    assert!(!r.ok());
    assert!(r.err.contains("line 3"), "{}", r.err);
    assert!(r.out.is_empty(), "{}", r.out);
    let r = magpie(&["api", "--url", &url, "GET", "/v1/users/new1"], &[], None);
    assert!(
        r.err.contains("HTTP 404 NOT_FOUND"),
        "nothing was sent: {}",
        r.err
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_working_during_its_grace_period() {
    let (_server, url) = server().await;
    let created = app(&url, &["create", "--id", "rot"]);
    let old = created["secret"].as_str().unwrap().to_owned();

    let rotated = app(
        &url,
        &["rotate-secret", "--id", "rot", "--grace-secs", "3600"],
    );
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    assert!(
        rotated["previous_valid_until_ms"].as_u64().is_some(),
        "{rotated}"
    );

    for (i, secret) in [&old, &new].into_iter().enumerate() {
        let body = format!("{{\"id\": \"r{i}\"}}");
        let r = api(&url, "rot", secret, &["POST", "/v1/users", &body], None);
        assert!(r.ok(), "secret {i}: {}", r.err);
    }

    // Without grace the previous secret stops at once.
    let again = app(&url, &["rotate-secret", "--id", "rot", "--grace-secs", "0"]);
    let newest = again["secret"].as_str().unwrap();
    let r = api(&url, "rot", &new, &["GET", "/v1/users/r0"], None);
    assert!(r.err.contains("HTTP 401 UNAUTHENTICATED"), "{}", r.err);
    let r = api(&url, "rot", newest, &["GET", "/v1/users/r0"], None);
    assert!(r.ok(), "{}", r.err);
}
