#!/usr/bin/env bash
# WebSocket echo on this machine: stompede's raw WebSocket path to a plain handler (`/echo/websocket`
# of the sockjs_test_server example: endpoint admission, session task, handler) against the floor,
# a bare axum echo on the same axum and tungstenite (the bare_ws_echo example), measured in the
# same run by `stompede-loadgen echo`. Each server is started fresh for each run and pinned to
# core 0, the load tool to core 1; runs alternate (bare, stompede, bare, ...) so that drift on a
# shared machine falls on both. Prints each run and the medians with the ratio stompede/bare on
# stdout; every JSON line stays in OUT. Bounded: every step has a timeout and the server is
# always stopped.
#
# Knobs (environment): RUNS=3 CONNECTIONS=100 SIZE=100 DURATION=10s WARMUP=2s PORT=18085
# OUT=(a new temp dir) CARGO_TARGET_DIR (default: target) BUILD=1 (0: use the binaries there).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-100}
SIZE=${SIZE:-100}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
PORT=${PORT:-18085}
OUT=${OUT:-$(mktemp -d -t stompede-bench-echo.XXXXXX)}
BIN="${CARGO_TARGET_DIR:-target}/release"
ADDR="127.0.0.1:${PORT}"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
mkdir -p "$OUT"

if [ "${BUILD:-1}" = 1 ]; then
    step "build (release): stompede-loadgen, the bare_ws_echo and sockjs_test_server examples"
    timeout 1800 cargo build --release -p stompede-loadgen
    timeout 1800 cargo build --release -p stompede-server \
        --example bare_ws_echo --example sockjs_test_server
fi

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT

# run SERVER N: one echo run against a fresh SERVER; its JSON line goes to OUT/SERVER.N.json.
run() {
    local server=$1 n=$2 url
    local base="$OUT/$server.$n"
    case $server in
        bare)
            RUST_LOG=warn "${CORE0[@]}" "$BIN/examples/bare_ws_echo" --bind "$ADDR" \
                >"$base.log" 2>&1 &
            url="ws://$ADDR/echo"
            ;;
        stompede)
            RUST_LOG=warn "${CORE0[@]}" "$BIN/examples/sockjs_test_server" --bind "$ADDR" \
                >"$base.log" 2>&1 &
            url="ws://$ADDR/echo/websocket"
            ;;
    esac
    server_pid=$!
    local up=0
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
        sleep 0.1
    done
    if [ $up = 0 ]; then
        echo "$server did not listen on $ADDR within 10 s; its log:" >&2
        cat "$base.log" >&2
        exit 1
    fi
    local t0
    t0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
    step "$server run $n: stompede-loadgen echo --url $url"
    if ! timeout 120 "${CORE1[@]}" "$BIN/stompede-loadgen" echo --url "$url" \
        --connections "$CONNECTIONS" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" \
        >"$base.json" 2>"$base.err"; then
        echo "stompede-loadgen failed against $server; see $base.err" >&2
        tail -5 "$base.err" >&2
        exit 1
    fi
    awk '{print $14 + $15}' "/proc/$server_pid/stat" | awk -v t0="$t0" '{print $1 - t0}' \
        >"$base.ticks"
    stop_server
}

for n in $(seq "$RUNS"); do
    for server in bare stompede; do
        run "$server" "$n"
    done
done

python3 - "$OUT" "$RUNS" "$(getconf CLK_TCK)" <<'PY'
import json, statistics, sys
out, runs, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for server in ("bare", "stompede"):
    for n in range(1, runs + 1):
        base = f"{out}/{server}.{n}"
        j = json.loads(open(f"{base}.json").read().strip().splitlines()[-1])
        ticks = float(open(f"{base}.ticks").read())
        lat = j.get("latency_ms") or {}
        tool = (j.get("tool_cpu") or {}).get("cores")
        loss = j.get("lost", 0)
        bad = j.get("mismatches", 0)
        print(f"{server:8} run {n}: {j['round_trips_per_sec']:>10,.0f} round trips/s  "
              f"p50 {lat.get('p50')} ms  p99 {lat.get('p99')} ms  server CPU {ticks / hz:.1f} s  "
              f"tool {tool} cores  lost {loss}  mismatches {bad}")
        rows.setdefault(server, []).append((j["round_trips_per_sec"], lat.get("p50"), lat.get("p99"), tool))
med = {s: [statistics.median(x[i] for x in v) for i in range(4)] for s, v in rows.items()}
b, s = med["bare"], med["stompede"]
print()
print("| figure (median of %d runs) | stompede | bare echo | ratio |" % runs)
print("|---|---|---|---|")
print(f"| round trips/s | {s[0]:,.0f} | {b[0]:,.0f} | {s[0] / b[0]:.2f}× |")
print(f"| p50 ms | {s[1]:.3f} | {b[1]:.3f} | {s[1] / b[1]:.2f}× |")
print(f"| p99 ms | {s[2]:.3f} | {b[2]:.3f} | {s[2] / b[2]:.2f}× |")
print(f"| load tool (cores) | {s[3]} | {b[3]} | |")
PY
echo "runs and logs: $OUT" >&2
