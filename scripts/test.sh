#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of the workspace.
# This is the README's test command; .ci/run calls it.
#
# Magpie's current tests need no external service (the embedded store and in-process or
# spawned servers on 127.0.0.1). When a backend that needs PostgreSQL or NATS lands, this
# script starts them if they are not running, and fails loudly if it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is required (https://rustup.rs)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
