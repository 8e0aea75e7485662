#!/usr/bin/env bash
# stompede against RabbitMQ Web-STOMP on this machine, measured in the same run by
# stompede-loadgen over loopback, each server pinned to core 0 and the load tool to core 1.
# Every run starts its server afresh (so that its CPU time and peak RSS are its own):
#   flood-100, flood-1000  1 publisher → 100 / 1,000 subscribers on one /topic, as fast as the
#                          tool's backlog bound allows (--rate 0 --max-in-flight MAX_IN_FLIGHT)
#   rate-R                 1 → 1,000 at R msgs/s (R × 1,000 deliveries/s), for every R in
#                          SWEEP_RATES until the server has broken down twice (p99 over 1 s, loss,
#                          or the publisher held back); these are the latency-vs-load points
#   (search)               more rate-R runs between the highest rate that passed (p99 < P99_LIMIT
#                          ms, nothing lost, the rate held) and the lowest that failed, until they
#                          are within SEARCH_STEP of each other: the sustainable rate
#   rooms-max, rooms-rate  ROOMS rooms of ROOM_SIZE members, each member sending to its room
#                          (its own copy comes back too) as fast as the tool's bound allows, and
#                          at ROOM_RATE msgs/s per member
#   idle-N                 N idle STOMP sessions (CONNECT + one SUBSCRIBE each, from source
#                          addresses 127.0.0.2-254), the server's RSS growth per session
# FIXED_RATE (10 msgs/s, 10k deliveries/s) is always among the rate runs: the latency row.
# A flood starts with MAX_IN_FLIGHT messages per subscriber sent at once; RabbitMQ takes about
# 12 s to deliver that first 200 × 1,000, so floods warm up for FLOOD_WARMUP (the window then
# sees the steady state, where the publisher sends as fast as the server delivers) and a flood's
# rate is the window's deliveries divided by the window.
# Prints a table (stompede, RabbitMQ, ratio stompede/RabbitMQ, target) on stdout and renders
# latency against offered load to PLOT (gnuplot, installed from Debian when missing). Each run's
# JSON line, the tool's stderr, the server's log and a /proc sample every SAMPLE seconds (server
# CPU and RSS, tool CPU, cores 0 and 1) stay in OUT; scripts/bench-peers.py reads them.
# Bounded: every step has a timeout, the server of a run is always stopped (trap), and so is
# RabbitMQ at the end.
#
# Knobs (environment), with their defaults:
#   SERVERS="stompede rabbitmq"  RUNS="flood sweep search rooms idle"  (groups of runs to do)
#   SIZE=100  DURATION=10s  WARMUP=2s  FLOOD_WARMUP=15s  DRAIN=30s  MAX_IN_FLIGHT=200
#   FIXED_RATE=10  SWEEP_RATES="1 2 5 10 12 15 20 30 50 100 200 500 1000"  (msgs/s to 1,000)
#   P99_LIMIT=100  SEARCH_STEP=1.12  SEARCH_RUNS=6
#   ROOMS=100  ROOM_SIZE=10  ROOM_RATE=1  (msgs/s per member)
#   IDLE_SESSIONS="10000 19000"  IDLE_HOLD=10s  RABBITMQ_IDLE_MAX=(from `ulimit -Hn`: 17400)
#   PERF=0  (1: after stompede's rate runs, one more FIXED_RATE run under `perf record -g`)
#   PORT=18082  RABBITMQ_WS_PORT=15684  PLOT=benches/results/latency-vs-load.png
#   OUT=(a new temp dir; rate runs already in it are not run again)
#   CARGO_TARGET_DIR=target  BUILD=1  (0: use the binaries already there)
# Example: SERVERS=rabbitmq RUNS="sweep search" SWEEP_RATES="5 10 15" scripts/bench-peers.sh
#
# RabbitMQ is Debian's rabbitmq-server (scripts/rabbitmq.sh installs it) with one scheduler
# (+S 1:1, +SDcpu 1:1: pinned to one core it should not run more schedulers than cores), its own
# node name, ports and directory under OUT, and a virtual host named 127.0.0.1: stompede-loadgen
# sends the URL's host as CONNECT's `host` header, which RabbitMQ takes as the virtual host.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-stompede rabbitmq}
RUNS=${RUNS:-flood sweep search rooms idle}
SIZE=${SIZE:-100}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
FLOOD_WARMUP=${FLOOD_WARMUP:-15s}
DRAIN=${DRAIN:-30s}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-200}
FIXED_RATE=${FIXED_RATE:-10}
SWEEP_RATES=${SWEEP_RATES:-1 2 5 10 12 15 20 30 50 100 200 500 1000}
P99_LIMIT=${P99_LIMIT:-100}
SEARCH_STEP=${SEARCH_STEP:-1.12}
SEARCH_RUNS=${SEARCH_RUNS:-6}
ROOMS=${ROOMS:-100}
ROOM_SIZE=${ROOM_SIZE:-10}
ROOM_RATE=${ROOM_RATE:-1}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000 19000}
IDLE_HOLD=${IDLE_HOLD:-10s}
# RabbitMQ takes 90% of its open-files limit (less 100) as its socket limit and refuses new
# connections past it (its "file descriptor limit alarm"); with the 20,000 hard limit here that
# is 17,910, so an idle run asking it for more opens this many instead (a margin below).
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
RABBITMQ_IDLE_MAX=${RABBITMQ_IDLE_MAX:-$(((NOFILE - 100) * 9 / 10 / 100 * 100 - 500))}
PERF=${PERF:-0}
PORT=${PORT:-18082}
RABBITMQ_WS_PORT=${RABBITMQ_WS_PORT:-15684}
PLOT=${PLOT:-benches/results/latency-vs-load.png}
OUT=${OUT:-$(mktemp -d -t stompede-bench-peers.XXXXXX)}
SAMPLE=${SAMPLE:-0.5}
BIN="${CARGO_TARGET_DIR:-target}/release"
ADDR="127.0.0.1:${PORT}"
SUBS=1000
# One run: setup (connecting 19k sessions takes a while) + warm-up + window + drain + closing.
RUN_TIMEOUT=600

step() { printf '\n==> %s\n' "$*" >&2; }
mkdir -p "$OUT" "$(dirname "$PLOT")"
OUT=$(cd "$OUT" && pwd)

if ! command -v taskset >/dev/null || [ "$(nproc)" -lt 2 ]; then
    echo "bench-peers.sh needs taskset and two cores (server on core 0, load on core 1)" >&2
    exit 1
fi

if [ "${BUILD:-1}" = 1 ]; then
    step "build (release): stompede, stompede-loadgen"
    timeout 1800 cargo build --release -p stompede -p stompede-loadgen
fi

if ! command -v gnuplot >/dev/null; then
    step "install gnuplot-nox (for $PLOT)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >&2 || true
    timeout 900 apt-get install -y -q --no-install-recommends gnuplot-nox >&2 ||
        echo "gnuplot could not be installed: no plot this time" >&2
fi

MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), \
$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
# From here on this shell and everything it starts (the sampler, curl, python) stays on the
# tool's core; the servers are started on core 0 explicitly.
taskset -pc 1 $$ >/dev/null

# Which scenarios this stompede-loadgen has: `rooms` and `idle` are newer than `fanout`.
LOADGEN_HELP=$("$BIN/stompede-loadgen" --help)
has_scenario() { grep -Eq "^  $1( |$)" <<<"$LOADGEN_HELP"; }

# RabbitMQ: private node, ports and directory; one scheduler; the vhost the tool asks for.
export STOMPEDE_RABBITMQ_DIR="$OUT/rabbitmq"
export STOMPEDE_RABBITMQ_NODE=stompede-bench@localhost
export STOMPEDE_RABBITMQ_AMQP_PORT=5683
export STOMPEDE_RABBITMQ_WS_PORT=$RABBITMQ_WS_PORT
export STOMPEDE_RABBITMQ_ERL_ARGS="+S 1:1 +SDcpu 1:1"
export STOMPEDE_RABBITMQ_VHOSTS=127.0.0.1

CLK_TCK=$(getconf CLK_TCK)
PAGE_KIB=$(($(getconf PAGESIZE) / 1024))
SERVER=
SERVER_PID=
URL=
TOOL_PID=
stop_server() {
    if [ -n "$TOOL_PID" ] && kill -0 "$TOOL_PID" 2>/dev/null; then
        kill "$TOOL_PID" 2>/dev/null || true
        wait "$TOOL_PID" 2>/dev/null || true
    fi
    TOOL_PID=
    case "$SERVER" in
        stompede)
            if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
                kill "$SERVER_PID" 2>/dev/null || true
                # Graceful shutdown is bounded by the server's grace period; not past 15 s.
                for _ in $(seq 150); do
                    kill -0 "$SERVER_PID" 2>/dev/null || break
                    sleep 0.1
                done
                kill -9 "$SERVER_PID" 2>/dev/null || true
                wait "$SERVER_PID" 2>/dev/null || true
            fi
            ;;
        rabbitmq)
            timeout 120 bash scripts/rabbitmq.sh stop >&2 || true
            ;;
    esac
    SERVER=
    SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Starts server $1 on core 0 (every thread), sets SERVER_PID and URL; the log goes to $2.
start_server() {
    local server=$1 log=$2
    SERVER=$server
    case "$server" in
        stompede)
            STOMPEDE__SERVER__MAX_CONNECTIONS=20000 RUST_LOG=${RUST_LOG:-warn} \
                taskset -c 0 "$BIN/stompede" serve --bind "$ADDR" >"$log" 2>&1 &
            SERVER_PID=$!
            URL="ws://${ADDR}/ws/websocket"
            local ready=
            for _ in $(seq 100); do
                if curl -fsS --max-time 1 "http://${ADDR}/healthz" >/dev/null 2>&1; then
                    ready=1
                    break
                fi
                kill -0 "$SERVER_PID" 2>/dev/null || break
                sleep 0.1
            done
            if [ -z "$ready" ]; then
                echo "stompede did not answer /healthz within 10 s; its log:" >&2
                cat "$log" >&2
                exit 1
            fi
            ;;
        rabbitmq)
            # The node inherits core 0 from taskset; rabbitmq.sh waits (bounded) for Web-STOMP.
            URL=$(taskset -c 0 timeout 300 bash scripts/rabbitmq.sh start 2>"$log")
            SERVER_PID=$(cat "$STOMPEDE_RABBITMQ_DIR/rabbitmq.pid")
            ;;
        *)
            echo "unknown server $server (SERVERS: stompede, rabbitmq)" >&2
            exit 2
            ;;
    esac
    # Every thread on core 0, whatever the process did with its affinity.
    taskset -apc 0 "$SERVER_PID" >/dev/null
}

# One /proc sample per line, fork-free (this runs on the tool's core during the window):
# wall time, server utime+stime ticks, server RSS KiB, tool ticks, core 0 busy and total ticks,
# core 1 busy and total ticks, and 1 once the tool's stderr has shown $marker. Busy is user,
# nice, system and steal; irq and softirq are left out because loopback TCP does much of both
# sides' network work there, charged to no process. Kills the tool after RUN_TIMEOUT seconds.
sample() {
    local out=$1 err=$2 marker=$3 deadline=$((SECONDS + RUN_TIMEOUT))
    local line rest stat sticks rss tticks c0b=0 c0t=0 c1b=0 c1t=0 phase=0 name a b c d e f g h
    local -a fields
    local wake
    exec {wake}<> <(:)
    set -f
    while kill -0 "$TOOL_PID" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "stompede-loadgen still running after ${RUN_TIMEOUT}s: killed" >&2
            kill "$TOOL_PID" 2>/dev/null || true
            break
        fi
        read -r stat <"/proc/$SERVER_PID/stat" 2>/dev/null || stat=
        rest=${stat##*) }
        fields=($rest)
        sticks=$((${fields[11]:-0} + ${fields[12]:-0}))
        read -r _ rss _ <"/proc/$SERVER_PID/statm" 2>/dev/null || rss=0
        read -r stat <"/proc/$TOOL_PID/stat" 2>/dev/null || stat=
        rest=${stat##*) }
        fields=($rest)
        tticks=$((${fields[11]:-0} + ${fields[12]:-0}))
        while read -r name a b c d e f g h _; do
            case $name in
                cpu0) c0b=$((a + b + c + h)) c0t=$((a + b + c + d + e + f + g + h)) ;;
                cpu1)
                    c1b=$((a + b + c + h)) c1t=$((a + b + c + d + e + f + g + h))
                    break
                    ;;
            esac
        done </proc/stat
        if [ $phase -eq 0 ] && [ -r "$err" ]; then
            while read -r line; do
                if [[ $line == *"$marker"* ]]; then
                    phase=1
                    break
                fi
            done <"$err"
        fi
        echo "$EPOCHREALTIME $sticks $((rss * PAGE_KIB)) $tticks $c0b $c0t $c1b $c1t $phase"
        read -rt "$SAMPLE" -u "$wake" _ || true
    done >"$out"
    set +f
    exec {wake}<&-
}

# Runs one scenario against a fresh server: $1 server, $2 run name, $3 the tool's stderr line
# that starts the warm-up (for the samples), then the scenario and its arguments (the URL is
# added). Leaves OUT/<server>.<run>.{json,err,log,samples,end,cmd}.
run() {
    local server=$1 name=$2 marker=$3 scenario=$4
    shift 4
    local base="$OUT/$server.$name"
    step "$server: $name"
    start_server "$server" "$base.log"
    local args=("$scenario" --url "$URL" "$@")
    args=("${args[@]//@SERVER_PID@/$SERVER_PID}")
    echo "stompede-loadgen ${args[*]}" >"$base.cmd"
    printf '%s %s\n' "$(date +%s.%N)" "$CLK_TCK" >"$base.end"
    : >"$base.err"
    taskset -c 1 "$BIN/stompede-loadgen" "${args[@]}" >"$base.json" 2>"$base.err" &
    TOOL_PID=$!
    sample "$base.samples" "$base.err" "$marker"
    local status=0
    wait "$TOOL_PID" || status=$?
    TOOL_PID=
    # Summary lines of the tool (the progress lines stay in .err).
    grep -v '^\[\|^  subscribed\|^  opened [0-9]* *failed\|^opening\|^publishing' "$base.err" |
        tail -n 12 >&2 || true
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        local hwm=0 k v
        while read -r k v _; do
            [ "$k" = "VmHWM:" ] && hwm=$v
        done <"/proc/$SERVER_PID/status"
        local stat rest
        read -r stat <"/proc/$SERVER_PID/stat"
        rest=${stat##*) }
        set -f
        local -a fields=($rest)
        set +f
        # start time and clock ticks (written above), end time, server ticks, peak RSS KiB.
        printf '%s %s %s\n' "$(date +%s.%N)" "$((fields[11] + fields[12]))" "$hwm" >>"$base.end"
    else
        echo "$server died during $name; its log: $base.log" >&2
        tail -n 20 "$base.log" >&2 || true
        echo "died" >>"$base.end"
    fi
    stop_server
    if [ "$status" -ne 0 ]; then
        echo "stompede-loadgen exited with $status ($server $name); see $base.err" >&2
        tail -n 3 "$base.err" >&2 || true
        echo "{\"failed\":\"exit $status\"}" >"$base.json"
    fi
}

FANOUT=(--publishers 1 --destination /topic/bench --size "$SIZE" --duration "$DURATION"
    --drain-timeout "$DRAIN" --max-in-flight "$MAX_IN_FLIGHT")
MARK="publishing for"

# The rate runs go through here so that the sweep and the search share them.
rate_run() {
    local server=$1 rate=$2
    [ -s "$OUT/$server.rate-$rate.json" ] && return 0
    run "$server" "rate-$rate" "$MARK" fanout --subscribers "$SUBS" --rate "$rate" \
        --warmup "$WARMUP" "${FANOUT[@]}"
}

analyze() { python3 scripts/bench-peers.py "$@"; }

wants() { [[ " $RUNS " == *" $1 "* ]]; }

for server in $SERVERS; do
    if wants flood; then
        run "$server" flood-100 "$MARK" fanout --subscribers 100 --rate 0 \
            --warmup "$FLOOD_WARMUP" "${FANOUT[@]}"
        run "$server" flood-1000 "$MARK" fanout --subscribers "$SUBS" --rate 0 \
            --warmup "$FLOOD_WARMUP" "${FANOUT[@]}"
    fi

    if wants sweep; then
        # Latency against offered load, up to the second point past the server's breakdown.
        rate_run "$server" "$FIXED_RATE"
        broken=0
        for rate in $SWEEP_RATES; do
            rate_run "$server" "$rate"
            if [ "$(analyze verdict "$OUT/$server.rate-$rate.json" "$P99_LIMIT" broken)" = broken ]
            then
                broken=$((broken + 1))
                [ $broken -ge 2 ] && break
            fi
        done
    fi

    if wants search; then
        # Sustainable rate: narrow the bracket the rate runs so far left, geometrically.
        for _ in $(seq "$SEARCH_RUNS"); do
            next=$(analyze next-rate "$OUT" "$server" "$P99_LIMIT" "$SEARCH_STEP")
            [ -z "$next" ] && break
            step "$server: sustainable-rate search tries $next msgs/s"
            rate_run "$server" "$next"
        done
    fi

    if [ "$PERF" = 1 ] && [ "$server" = stompede ] && command -v perf >/dev/null; then
        # Not a measured run: perf's own work would disturb the figures.
        start_server stompede "$OUT/stompede.perf.log"
        step "stompede: perf record -g during a ${FIXED_RATE} msgs/s run"
        taskset -c 1 timeout "$RUN_TIMEOUT" "$BIN/stompede-loadgen" fanout --url "$URL" \
            --subscribers "$SUBS" --rate "$FIXED_RATE" --warmup "$WARMUP" "${FANOUT[@]}" \
            >"$OUT/stompede.perf.json" 2>"$OUT/stompede.perf.err" &
        TOOL_PID=$!
        for _ in $(seq 300); do
            grep -q "$MARK" "$OUT/stompede.perf.err" && break
            sleep 0.1
        done
        taskset -c 1 timeout 60 perf record -q -g -p "$SERVER_PID" -o "$OUT/perf.data" \
            -- sleep "${DURATION%s}" >/dev/null 2>&1 || true
        wait "$TOOL_PID" || true
        TOOL_PID=
        stop_server
        timeout 300 perf report -i "$OUT/perf.data" --no-children --percent-limit 1 --stdio \
            >"$OUT/perf-stompede-fixed.txt" 2>/dev/null || true
        timeout 300 perf report -i "$OUT/perf.data" --no-children --sort dso,sym -g none \
            --percent-limit 0.5 --stdio >"$OUT/perf-stompede-fixed-flat.txt" 2>/dev/null || true
        echo "perf profile: $OUT/perf-stompede-fixed-flat.txt (and perf-stompede-fixed.txt)" >&2
    fi

    if ! wants rooms; then
        :
    elif has_scenario rooms; then
        # Max mode: each member keeps at most 20 (the tool's default) of its own messages in
        # flight, so a slow server starts with a backlog too: the flood warm-up.
        ROOMS_ARGS=(--rooms "$ROOMS" --users "$ROOM_SIZE" --size "$SIZE" --duration "$DURATION"
            --drain-timeout "$DRAIN")
        run "$server" rooms-max "$MARK" rooms --rate 0 --warmup "$FLOOD_WARMUP" "${ROOMS_ARGS[@]}"
        run "$server" rooms-rate "$MARK" rooms --rate "$ROOM_RATE" --warmup "$WARMUP" \
            "${ROOMS_ARGS[@]}"
    else
        echo "this stompede-loadgen has no \`rooms\` scenario (an older build): rooms skipped" >&2
    fi

    if ! wants idle; then
        :
    elif has_scenario idle; then
        for n in $IDLE_SESSIONS; do
            sessions=$n
            if [ "$server" = rabbitmq ] && [ "$n" -gt "$RABBITMQ_IDLE_MAX" ]; then
                sessions=$RABBITMQ_IDLE_MAX
                echo "RabbitMQ holds about $RABBITMQ_IDLE_MAX sockets here: opening $sessions" >&2
            fi
            run "$server" "idle-$n" "holding for" idle --sessions "$sessions" --hold "$IDLE_HOLD" \
                --server-pid @SERVER_PID@
        done
    else
        echo "this stompede-loadgen has no \`idle\` scenario (an older build): idle skipped" >&2
    fi
done

step "results (JSON lines, samples and logs in $OUT)"
RABBITMQ_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo unknown)
ERLANG_VERSION=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo unknown)
export HEADER="stompede vs RabbitMQ Web-STOMP $RABBITMQ_VERSION (Erlang $ERLANG_VERSION, +S 1:1): \
$SIZE-byte bodies, $DURATION measured after $WARMUP warm-up, flood backlog bound \
$MAX_IN_FLIGHT msgs per subscriber ($FLOOD_WARMUP warm-up); servers on core 0, stompede-loadgen \
on core 1; $MACHINE"
analyze report "$OUT" "$SERVERS" "$FIXED_RATE" "$P99_LIMIT" "$PLOT"
