//! The crate graph is a ladder: a crate may depend only on the crates listed for it here
//! (and in ARCHITECTURE.md). A new edge is an architectural change: update both.
//! Also checks the sans-I/O invariant: the domain crates pull in no async runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Allowed normal (non-dev) dependencies between Magpie crates.
const LADDER: &[(&str, &[&str])] = &[
    ("magpie-types", &[]),
    ("magpie-proto", &["magpie-types"]),
    ("magpie-core", &["magpie-types"]),
    ("magpie-store", &["magpie-types"]),
    ("magpie-store-embedded", &["magpie-types", "magpie-store"]),
    (
        "magpie-service",
        &["magpie-types", "magpie-core", "magpie-store"],
    ),
    (
        "magpie-gateway",
        &[
            "magpie-types",
            "magpie-proto",
            "magpie-core",
            "magpie-store",
            "magpie-service",
        ],
    ),
    (
        "magpie-api",
        &[
            "magpie-types",
            "magpie-core",
            "magpie-store",
            "magpie-service",
        ],
    ),
    (
        "magpie-webhooks",
        &["magpie-types", "magpie-store", "magpie-service"],
    ),
    (
        "magpie-server",
        &[
            "magpie-types",
            "magpie-core",
            "magpie-store",
            "magpie-store-embedded",
            "magpie-service",
            "magpie-gateway",
            "magpie-api",
            "magpie-webhooks",
        ],
    ),
    ("magpie-client", &["magpie-types", "magpie-proto"]),
    (
        "magpie-bench",
        &["magpie-types", "magpie-proto", "magpie-core"],
    ),
    (
        "magpie",
        &[
            "magpie-types",
            "magpie-core",
            "magpie-server",
            "magpie-client",
            "magpie-bench",
        ],
    ),
    (
        "magpie-testkit",
        &[
            "magpie-types",
            "magpie-proto",
            "magpie-core",
            "magpie-store",
            "magpie-store-embedded",
            "magpie-service",
            "magpie-server",
            "magpie-client",
            "magpie-api",
            "magpie-webhooks",
        ],
    ),
];

/// Crates that must do no I/O: no async runtime among their normal dependencies.
const SANS_IO: &[&str] = &["magpie-types", "magpie-core"];

/// The workspace's own manifests. `--no-deps`: the checks read only the dependencies the
/// workspace crates declare, and resolving the whole graph would need every
/// platform's crates (Windows-only ones included) in the local registry cache.
fn metadata() -> serde_json::Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--no-deps",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata is JSON")
}

fn normal_deps(pkg: &serde_json::Value) -> BTreeSet<String> {
    pkg["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn crates_only_depend_on_crates_above_them() {
    let meta = metadata();
    let members: BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m.as_str().expect("id").to_owned())
        .collect();
    let ladder: BTreeMap<&str, &[&str]> = LADDER.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        if !members.contains(pkg["id"].as_str().expect("id")) {
            continue;
        }
        let name = pkg["name"].as_str().expect("name");
        seen.insert(name.to_owned());
        let allowed = ladder.get(name).unwrap_or_else(|| {
            panic!("crate {name} is not on the ladder: add it to ARCHITECTURE.md and here")
        });
        for dep in normal_deps(pkg).iter().filter(|d| d.starts_with("magpie")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} depends on {dep}, which the ladder does not allow"
            );
        }
        if SANS_IO.contains(&name) {
            for dep in normal_deps(pkg) {
                assert!(
                    !["tokio", "tokio-util", "mio", "async-std", "smol"].contains(&dep.as_str()),
                    "{name} must stay sans-I/O but depends on {dep}"
                );
            }
        }
    }
    for (name, _) in LADDER {
        assert!(
            seen.contains(*name),
            "ladder names {name}, which is not in the workspace"
        );
    }
}
