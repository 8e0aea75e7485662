#!/usr/bin/env bash
# SockJS benchmark on this machine: stompede's SockJS layer (the sockjs_test_server example) and
# sockjs-node (npm `sockjs`, the reference server, benches/sockjs-node) measured in the same run
# by stompede-loadgen, over loopback only. Each server is pinned to core 0 and the load tool to
# core 1. For each transport (websocket, xhr-streaming) three runs, each against a freshly
# started server (so that every run's CPU time and peak RSS are its own, and no session of an
# earlier run is still registered for broadcasts):
#   broadcast-max   session 0 sends as fast as the backlog bound allows, SESSIONS sessions receive
#   broadcast-rate  the same at RATE msgs/s, a rate both servers sustain: read latency here
#   echo            SESSIONS sessions, one message in flight each
# Prints a table (stompede, sockjs-node, ratio stompede/sockjs-node) on stdout; the JSON line of
# every run and the servers' logs stay in OUT. Bounded: every step has a timeout and the server
# is always stopped.
#
# Knobs (environment): SESSIONS=100 SIZE=100 RATE=500 WINDOW=1000 DURATION=10s WARMUP=2s
# PORT=18081 TRANSPORTS="websocket xhr-streaming" SERVERS="stompede sockjs-node"
# OUT=(a new temp dir) CARGO_TARGET_DIR (default: target).
# Example: SERVERS=sockjs-node RATE=100 scripts/bench-sockjs.sh
#
# WINDOW is the max-mode backlog bound (--max-in-flight): with the load tool's default of 200,
# stompede's example idled between bursts (about 1.5 M deliveries/s over websocket, 1.0 M over
# xhr-streaming, the server's core not full); from 1,000 on the figures stop growing. A deeper
# window only adds queueing latency, which is why max-mode latency is not a latency figure.
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-100}
SIZE=${SIZE:-100}
RATE=${RATE:-500}
WINDOW=${WINDOW:-1000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
PORT=${PORT:-18081}
TRANSPORTS=${TRANSPORTS:-websocket xhr-streaming}
SERVERS=${SERVERS:-stompede sockjs-node}
OUT=${OUT:-$(mktemp -d -t stompede-bench-sockjs.XXXXXX)}
BIN="${CARGO_TARGET_DIR:-target}/release"
ADDR="127.0.0.1:${PORT}"
# sockjs-node's default response_limit; stompede's example defaults to the protocol tests' 4096.
STREAM_BYTES_LIMIT=131072

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
mkdir -p "$OUT"

step "build (release): stompede-loadgen"
timeout 1800 cargo build --release -p stompede-loadgen
if [[ " $SERVERS " == *" stompede "* ]]; then
    step "build (release): the sockjs_test_server example"
    timeout 1800 cargo build --release -p stompede-server --example sockjs_test_server
fi
if [[ " $SERVERS " == *" sockjs-node "* ]]; then
    step "install sockjs-node (npm ci in benches/sockjs-node)"
    (cd benches/sockjs-node && timeout 300 npm ci --no-audit --no-fund --loglevel=error >&2)
fi

CLK_TCK=$(getconf CLK_TCK)
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT

# Starts server $1 on core 0 and waits for its greeting; the log goes to $2.
start_server() {
    local server=$1 log=$2
    case "$server" in
        stompede)
            RUST_LOG=${RUST_LOG:-warn} "${CORE0[@]}" "$BIN/examples/sockjs_test_server" \
                --bind "$ADDR" --stream-bytes-limit "$STREAM_BYTES_LIMIT" >"$log" 2>&1 &
            ;;
        sockjs-node)
            "${CORE0[@]}" node benches/sockjs-node/server.js --port "$PORT" >"$log" 2>&1 &
            ;;
        *)
            echo "unknown server $server (SERVERS: stompede, sockjs-node)" >&2
            exit 2
            ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        if [ "$(curl -sS --max-time 1 "http://${ADDR}/echo" 2>/dev/null)" = "Welcome to SockJS!" ]; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$server did not greet on http://${ADDR}/echo within 10 s; its log:" >&2
    cat "$log" >&2
    exit 1
}

# Busy and total ticks of cores 0 and 1. Busy is user, nice, system and steal (time the
# benchmark did not get either); irq and softirq are left out because loopback TCP does much of
# the servers' and the tool's network work there, charged to no process.
core_ticks() {
    awk '/^cpu[01] / { busy = $2 + $3 + $4 + $9; printf "%d %d ", busy, busy + $5 + $6 + $7 + $8 }' /proc/stat
}

# utime + stime of the server, in clock ticks.
server_ticks() {
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}

# Runs one scenario against a fresh server: $1 server, $2 transport, $3 run name, then the
# load tool's scenario and arguments. Writes OUT/<server>.<transport>.<run>.json (the tool's
# JSON line) and .server (server CPU seconds, wall seconds of the run, peak RSS in KiB, and the
# busy share of core 0 and of core 1 over the run, whoever used them).
run() {
    local server=$1 transport=$2 name=$3
    shift 3
    local base="$OUT/$server.$transport.$name"
    step "$server, $transport, $name"
    start_server "$server" "$base.log"
    local ticks0 ticks1 t0 t1 rss cores0 cores1 status=0
    ticks0=$(server_ticks)
    cores0=$(core_ticks)
    t0=$(date +%s.%N)
    # Setup (30 s) + warm-up + duration + drain (5 s) + closing stay far below 5 minutes.
    "${CORE1[@]}" timeout 300 "$BIN/stompede-loadgen" "$@" --transport "$transport" \
        --sessions "$SESSIONS" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" \
        >"$base.json" || status=$?
    t1=$(date +%s.%N)
    cores1=$(core_ticks)
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        ticks1=$(server_ticks)
        rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
        echo "$cores0 $cores1" | awk -v a="$ticks0" -v b="$ticks1" -v hz="$CLK_TCK" -v t0="$t0" \
            -v t1="$t1" -v rss="$rss" '{
                busy0 = $5 - $1; total0 = $6 - $2; busy1 = $7 - $3; total1 = $8 - $4;
                share0 = 0; if (total0 > 0) share0 = busy0 / total0;
                share1 = 0; if (total1 > 0) share1 = busy1 / total1;
                printf "%.2f %.2f %d %.3f %.3f\n", (b - a) / hz, t1 - t0, rss, share0, share1
            }' >"$base.server"
    else
        echo "$server died during the run; its log: $base.log" >&2
        tail -20 "$base.log" >&2
        echo "died" >"$base.server"
    fi
    stop_server
    if [ "$status" -ne 0 ]; then
        echo "stompede-loadgen exited with $status for $server $transport $name" >&2
        echo "{\"failed\":\"exit $status\"}" >"$base.json"
    fi
}

for transport in $TRANSPORTS; do
    for server in $SERVERS; do
        run "$server" "$transport" broadcast-max sockjs-broadcast \
            --url "http://${ADDR}/broadcast" --rate 0 --max-in-flight "$WINDOW"
        run "$server" "$transport" broadcast-rate sockjs-broadcast \
            --url "http://${ADDR}/broadcast" --rate "$RATE"
        run "$server" "$transport" echo sockjs-echo --url "http://${ADDR}/echo"
    done
done

step "results (JSON lines and logs in $OUT)"
# node is there for sockjs-node anyway; it turns the JSON lines into the table.
OUT="$OUT" SERVERS="$SERVERS" TRANSPORTS="$TRANSPORTS" HEADER="SockJS benchmark: $SESSIONS \
sessions, $SIZE-byte messages, $DURATION measured after $WARMUP warm-up, fixed rate $RATE msgs/s \
($((RATE * SESSIONS)) deliveries/s); $PINNED; $(nproc) cores, $(uname -sr)" node - <<'EOF'
const fs = require('fs');
const path = require('path');
const out = process.env.OUT;
const servers = process.env.SERVERS.split(/\s+/).filter(Boolean);
const transports = process.env.TRANSPORTS.split(/\s+/).filter(Boolean);

function load(server, transport, run) {
  const base = path.join(out, `${server}.${transport}.${run}`);
  let json = null;
  let res = null;
  try { json = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8').trim().split('\n').pop()); } catch (e) {}
  try {
    const f = fs.readFileSync(`${base}.server`, 'utf8').trim().split(/\s+/);
    res = f[0] === 'died' ? { died: true }
      : { cpu: +f[0], wall: +f[1], rssKiB: +f[2], core0: +f[3], core1: +f[4] };
  } catch (e) {}
  return { json, res };
}

const si = (x) => x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${x.toFixed(0)}`;
const ms = (x) => x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
const rows = [];
const notes = [];
const figures = [
  ['broadcast-max', 'deliveries/s', (j) => j.delivered_per_sec, si, true],
  ['broadcast-max', 'p50 ms (queueing)', (j) => j.latency_ms && j.latency_ms.p50, ms, false],
  ['broadcast-rate', 'deliveries/s', (j) => j.delivered_per_sec, si, true],
  ['broadcast-rate', 'p50 ms', (j) => j.latency_ms && j.latency_ms.p50, ms, false],
  ['broadcast-rate', 'p99 ms', (j) => j.latency_ms && j.latency_ms.p99, ms, false],
  ['broadcast-rate', 'p99.9 ms', (j) => j.latency_ms && j.latency_ms.p999, ms, false],
  ['broadcast-rate', 'max ms', (j) => j.latency_ms && j.latency_ms.max, ms, false],
  ['echo', 'round trips/s', (j) => j.round_trips_per_sec, si, true],
  ['echo', 'p50 ms', (j) => j.latency_ms && j.latency_ms.p50, ms, false],
  ['echo', 'p99 ms', (j) => j.latency_ms && j.latency_ms.p99, ms, false],
];

for (const transport of transports) {
  for (const [run, label, get, fmt, throughput] of figures) {
    const cells = servers.map((server) => {
      const { json } = load(server, transport, run);
      if (!json || json.failed) return { text: 'failed', value: null };
      const value = get(json);
      if (value == null) return { text: '-', value: null };
      // A saturated load tool makes a throughput figure a lower bound for the server.
      const bound = throughput && json.tool_cpu && json.tool_cpu.saturated ? '≥ ' : '';
      return { text: bound + fmt(value), value };
    });
    let ratio = '';
    if (servers.length === 2 && cells[0].value && cells[1].value) {
      ratio = `${(cells[0].value / cells[1].value).toFixed(2)}×`;
    }
    rows.push([transport, run, label, ...cells.map((c) => c.text), ratio]);
  }
  for (const server of servers) {
    const cpu = [];
    const rss = [];
    for (const run of ['broadcast-max', 'broadcast-rate', 'echo']) {
      const { json, res } = load(server, transport, run);
      if (res && res.died) cpu.push(`${run}: died`);
      else if (res) {
        cpu.push(`${run} ${res.cpu.toFixed(1)} s / ${res.wall.toFixed(1)} s (${Math.round(100 * res.cpu / res.wall)}%)`);
        rss.push((res.rssKiB / 1024).toFixed(0));
      }
      if (!json) continue;
      const what = `${server} ${transport} ${run}`;
      if (res && !res.died && res.wall > 0) {
        // Core 0 is the server's: whatever else ran there took time from it.
        const others = res.core0 - res.cpu / res.wall;
        if (others > 0.05) notes.push(`${what}: other processes (or steal) used ${Math.round(100 * others)}% of core 0 during the run: disturbed`);
        const tool = json.tool_cpu && json.tool_cpu.cores;
        if (tool != null && res.core1 - tool > 0.1) notes.push(`${what}: core 1 was ${Math.round(100 * res.core1)}% busy, the load tool ${Math.round(100 * tool)}%: others ran there`);
      }
      if (json.failed) notes.push(`${what}: the load tool failed (${json.failed}); see its stderr above`);
      if (json.tool_cpu && json.tool_cpu.cores != null) {
        const pct = Math.round(100 * json.tool_cpu.cores);
        if (json.tool_cpu.saturated) notes.push(`${what}: load tool at ${pct}% of its core: the throughput is a lower bound`);
      }
      if (json.loss) notes.push(`${what}: loss ${json.loss} of ${json.expected}`);
      if (json.out_of_order) notes.push(`${what}: ${json.out_of_order} messages out of order`);
      if (json.ended) notes.push(`${what}: ${json.ended} sessions ended early ${JSON.stringify(json.endings)}: ${json.first_error}`);
      if (json.drained === false) notes.push(`${what}: not drained within the drain timeout`);
      if (json.mismatches) notes.push(`${what}: ${json.mismatches} echoes differed from the message sent`);
      if (json.rate > 0 && json.sent_per_sec < 0.95 * json.rate) notes.push(`${what}: sent ${json.sent_per_sec}/s, below the requested ${json.rate}/s`);
    }
    notes.push(`${server} ${transport}: server CPU over each run (setup + warm-up + window + drain): ${cpu.join('; ')}; peak RSS MiB ${rss.join(' / ')}`);
  }
  const toolCpu = servers.map((server) => ['broadcast-max', 'broadcast-rate', 'echo'].map((run) => {
    const { json } = load(server, transport, run);
    return json && json.tool_cpu && json.tool_cpu.cores != null ? `${Math.round(100 * json.tool_cpu.cores)}%` : '-';
  }).join('/'));
  notes.push(`${transport}: load tool CPU in the window (max/rate/echo): ${servers.map((s, i) => `${s} ${toolCpu[i]}`).join(', ')}`);
}

const header = ['transport', 'run', 'figure', ...servers, servers.length === 2 ? 'ratio' : ''];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
console.log(process.env.HEADER);
if (servers.length === 2) console.log(`ratio = ${servers[0]} / ${servers[1]}: above 1 is better for ${servers[0]} on throughput, below 1 on latency`);
console.log('');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('');
for (const n of notes) console.log(`- ${n}`);
EOF
