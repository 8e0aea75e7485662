#!/usr/bin/env bash
# Fan-out benchmark on this machine: the server pinned to core 0, stompede-loadgen to core 1,
# over loopback only. Two runs: max mode (--rate 0), then a fixed rate (default 10 msgs/s to
# 1,000 subscribers = 10k deliveries/s). Prints each run's JSON line on stdout; progress and
# summaries go to stderr. Bounded: every step has a timeout and the server is always stopped.
#
# Knobs (environment): SUBS=1000 PUBS=1 SIZE=100 RATE=10 DURATION=10s WARMUP=2s PORT=18080
# CARGO_TARGET_DIR (default: target). Example: SUBS=5000 RATE=2 scripts/bench-fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUBS=${SUBS:-1000}
PUBS=${PUBS:-1}
SIZE=${SIZE:-100}
RATE=${RATE:-10}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
PORT=${PORT:-18080}
ADDR="127.0.0.1:${PORT}"
BIN="${CARGO_TARGET_DIR:-target}/release"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

step "build (release): stompede, stompede-loadgen"
cargo build --release -p stompede -p stompede-loadgen

LOG=$(mktemp -t stompede-bench.XXXXXX.log)
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        # Graceful shutdown is bounded by the server's grace period; do not wait past 15 s.
        for _ in $(seq 150); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT

step "start the server on ${ADDR} (core 0), log: ${LOG}"
STOMPEDE__SERVER__MAX_CONNECTIONS=20000 RUST_LOG=${RUST_LOG:-warn} \
    "${CORE0[@]}" "$BIN/stompede" serve --bind "$ADDR" >"$LOG" 2>&1 &
SERVER_PID=$!

ready=
for _ in $(seq 100); do
    if curl -fsS --max-time 1 "http://${ADDR}/healthz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "server did not answer /healthz within 10 s; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi

loadgen() {
    # Setup (30 s) + warm-up + duration + drain (5 s) + closing stay far below 5 minutes.
    "${CORE1[@]}" timeout 300 "$BIN/stompede-loadgen" fanout \
        --url "ws://${ADDR}/ws/websocket" \
        --subscribers "$SUBS" --publishers "$PUBS" --destination /topic/bench \
        --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" "$@"
}

step "max mode: --rate 0, ${SUBS} subscribers, ${PUBS} publishers, ${SIZE}-byte bodies"
MAX_JSON=$(loadgen --rate 0)

step "fixed rate: --rate ${RATE} (${SUBS} subscribers)"
RATE_JSON=$(loadgen --rate "$RATE")

stop_server

step "results (JSON: max mode, then fixed rate)"
printf '%s\n%s\n' "$MAX_JSON" "$RATE_JSON"
