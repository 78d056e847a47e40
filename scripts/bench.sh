#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: builds the release binary, and for each scenario
# starts a fresh `magpie serve --demo` (temporary data directory, free loopback ports),
# runs `magpie bench ...` against it, and stops it. Prints every JSON line, then a
# Markdown table of the figures.
#
# Everything runs on loopback and stops by itself (each bench run has a --timeout).
# Override the sizes through the environment, e.g. for a quick try:
#   CONNECTIONS=2000 PAIRS=100 MESSAGES=50 GROUP_MEMBERS=500 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-19000}
PAIRS=${PAIRS:-1000}
MESSAGES=${MESSAGES:-200}
RATE=${RATE:-2000}
RATE_MESSAGES=${RATE_MESSAGES:-20}
HOLD=${HOLD:-5}
ROOM_MEMBERS=${ROOM_MEMBERS:-15000}
ROOM_RATE=${ROOM_RATE:-1000}
ROOM_BUDGET=${ROOM_BUDGET:-40}
GROUP_MEMBERS=${GROUP_MEMBERS:-5000}
GROUP_MESSAGES=${GROUP_MESSAGES:-200}

cargo build --release -p magpie
BIN=target/release/magpie

# One process may hold at most `ulimit -Hn` open files (20,000 on the benchmark machine):
# the server holds every connection plus its own files; the bench spreads its side over
# worker processes of at most 8,000 connections each.
ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d)
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a fresh server; sets SERVER_PID, TCP_URL and WS_URL.
start_server() {
    local dir
    dir=$(mktemp -d "$WORK/server.XXXX")
    MAGPIE_LOG=warn "$BIN" serve --demo --data-dir "$dir/data" \
        --listen-tcp 127.0.0.1:0 --listen-ws 127.0.0.1:0 --listen-http 127.0.0.1:0 \
        >"$dir/out" 2>"$dir/err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [[ -s "$dir/out" ]] && break
        sleep 0.1
    done
    TCP_URL=$(sed -n 's/.*"tcp":"\([^"]*\)".*/\1/p' "$dir/out")
    HTTP_ADDR=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$dir/out")
    WS_URL=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' "$dir/out")
    if [[ -z "$TCP_URL" || -z "$WS_URL" ]]; then
        echo "the server did not start:" >&2
        cat "$dir/err" >&2
        exit 1
    fi
}

# Runs one scenario against a fresh server; the JSON line is appended to $WORK/results.
run() {
    local name=$1
    shift
    start_server
    local args=("$@")
    args=("${args[@]//@TCP@/$TCP_URL}")
    args=("${args[@]//@WS@/$WS_URL}")
    args=("${args[@]//@PID@/$SERVER_PID}")
    args=("${args[@]//@METRICS@/$HTTP_ADDR/metrics}")
    echo "== $name: magpie bench ${args[*]}" >&2
    local line
    line=$("$BIN" bench "${args[@]}")
    echo "$line"
    echo "$name|$line" >>"$WORK/results"
    stop_server
    # Let the kernel retire the closed connections before the next server starts.
    sleep 2
}

run "connect tcp" connect --server @TCP@ --connections "$CONNECTIONS" --hold "$HOLD" --server-pid @PID@
run "connect ws" connect --server @WS@ --connections "$CONNECTIONS" --hold "$HOLD" --server-pid @PID@
run "p2p max" p2p --server @TCP@ --pairs "$PAIRS" --messages "$MESSAGES"
run "p2p rate" p2p --server @TCP@ --pairs "$PAIRS" --messages "$RATE_MESSAGES" --rate "$RATE"
run "room" room --server @TCP@ --metrics-url @METRICS@ --members "$ROOM_MEMBERS" --senders 50 \
    --rate "$ROOM_RATE" --high-every 20 --duration-s 10 --budget "$ROOM_BUDGET" --per-worker 7500 --timeout 120
run "group" group --server @TCP@ --metrics-url @METRICS@ --members "$GROUP_MEMBERS" \
    --messages "$GROUP_MESSAGES" --timeout 120

field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"; }

echo
echo "| scenario | connections | connect/s | RSS/conn (B) | msgs/s | ack p50/p99 (ms) | deliver p50/p99 (ms) | lost | dups | failed |"
echo "|---|---|---|---|---|---|---|---|---|---|"
while IFS='|' read -r name line; do
    case $name in
    connect*)
        echo "| $name | $(field "$line" connections) | $(field "$line" connect_rate_per_s) | $(field "$line" rss_per_conn_bytes) | | | | | | $(field "$line" failed) |"
        ;;
    room*)
        echo "| $name ($(field "$line" members) members) | | | | $(field "$line" deliveries_per_s) deliveries/s | | $(field "$line" deliver_p50_ms) / $(field "$line" deliver_p99_ms) | HIGH $(field "$line" high_lost) lost, max $(field "$line" high_max_ms) ms | | $(field "$line" failed) |"
        ;;
    group*)
        echo "| $name ($(field "$line" members) members) | | | | $(field "$line" deliveries_per_s) deliveries/s | $(field "$line" ack_p50_ms) / $(field "$line" ack_p99_ms) | $(field "$line" deliver_p50_ms) / $(field "$line" deliver_p99_ms) | $(field "$line" lost) | $(field "$line" dups) | $(field "$line" failed) |"
        ;;
    p2p*)
        echo "| $name | | | | $(field "$line" msgs_per_s) | $(field "$line" ack_p50_ms) / $(field "$line" ack_p99_ms) | $(field "$line" deliver_p50_ms) / $(field "$line" deliver_p99_ms) | $(field "$line" lost) | $(field "$line" dups) | $(field "$line" failed) |"
        ;;
    esac
done <"$WORK/results"
