#!/usr/bin/env bash
# A private RabbitMQ broker with the Web-STOMP plugin, for the client crate's interop tests.
#
#   bash scripts/rabbitmq.sh start   # installs Debian's rabbitmq-server if missing, starts the
#                                    # broker, waits until Web-STOMP accepts, prints its URL
#   bash scripts/rabbitmq.sh stop    # stops it
#
# Then: STOMPEDE_RABBITMQ_WS=ws://127.0.0.1:15674/ws cargo test -p stompede-client --test rabbitmq
#
# The broker is nobody else's: its own node name, Erlang cookie, data and log directories under
# $STOMPEDE_RABBITMQ_DIR (default: target/rabbitmq, wiped at start), every listener on 127.0.0.1
# only (AMQP on 5673, not the default 5672; Web-STOMP on 15674; plain STOMP off). The default
# `guest` user may log in from loopback, as RabbitMQ allows by default. Every wait is bounded.
#
# STOMPEDE_RABBITMQ_ERL_ARGS adds arguments for the Erlang VM, e.g. "+S 1:1 +SDcpu 1:1" for one
# scheduler when the broker is pinned to one core (scripts/bench-peers.sh); run under
# `taskset -c N`, the broker inherits the pinning. STOMPEDE_RABBITMQ_VHOSTS names virtual hosts
# to create (and open to `guest`) once the broker is up: RabbitMQ takes CONNECT's `host` header
# as the virtual host, and a client that sends the URL's host name (stompede-loadgen sends
# 127.0.0.1) is refused unless a vhost of that name exists.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${STOMPEDE_RABBITMQ_DIR:-$ROOT/target/rabbitmq}"
NODE="${STOMPEDE_RABBITMQ_NODE:-stompede-test@localhost}"
AMQP_PORT="${STOMPEDE_RABBITMQ_AMQP_PORT:-5673}"
WS_PORT="${STOMPEDE_RABBITMQ_WS_PORT:-15674}"
BIN=/usr/lib/rabbitmq/bin
START_TIMEOUT=${STOMPEDE_RABBITMQ_START_TIMEOUT:-120}

log() { echo "rabbitmq.sh: $*" >&2; }

# The environment both the server and rabbitmqctl see: everything private to $DIR.
broker_env() {
    export HOME="$DIR" # the Erlang cookie lives in $HOME/.erlang.cookie
    export RABBITMQ_NODENAME="$NODE"
    export RABBITMQ_BASE="$DIR"
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$DIR/log"
    export RABBITMQ_PID_FILE="$DIR/rabbitmq.pid"
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$AMQP_PORT"
    # Erlang distribution (rabbitmqctl talks to the node through it) and epmd: loopback only.
    export RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000))
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS+=" ${STOMPEDE_RABBITMQ_ERL_ARGS:-}"
}

install() {
    if [ -x "$BIN/rabbitmq-server" ]; then
        return
    fi
    log "installing rabbitmq-server from Debian"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    # The package's own service is not started: policy-rc.d or the lack of an init system
    # prevents it in containers, and we never use it.
    timeout 900 apt-get install -y -q --no-install-recommends rabbitmq-server >&2
}

ws_accepts() {
    # A WebSocket handshake offering STOMP over bash's /dev/tcp (no curl needed); Web-STOMP
    # answers 101.
    local status
    status="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n" "$1" >&3
        head -c 12 <&3
    ' _ "$WS_PORT" 2>/dev/null || true)"
    [ "$status" = "HTTP/1.1 101" ]
}

stop() {
    broker_env
    if [ -f "$RABBITMQ_PID_FILE" ]; then
        local pid
        pid="$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)"
        timeout 60 "$BIN/rabbitmqctl" -n "$NODE" stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            log "node did not stop; killing pid $pid"
            kill "$pid" 2>/dev/null || true
            sleep 2
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$RABBITMQ_PID_FILE"
    fi
    # epmd was started for our node; end it only when no other Erlang node still uses it.
    if command -v epmd >/dev/null && ! epmd -names 2>/dev/null | grep -q '^name '; then
        epmd -kill >/dev/null 2>&1 || true
    fi
}

start() {
    install
    stop
    rm -rf "$DIR"
    mkdir -p "$DIR/log" "$DIR/mnesia"
    broker_env
    cat >"$RABBITMQ_CONFIG_FILE" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
stomp.listeners.tcp = none
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $WS_PORT
log.console = false
log.file.level = info
EOF
    echo '[].' >"$RABBITMQ_ADVANCED_CONFIG_FILE"
    echo '[rabbitmq_web_stomp].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"

    log "starting node $NODE (logs in $DIR/log)"
    nohup "$BIN/rabbitmq-server" >"$DIR/log/stdout.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + START_TIMEOUT))
    until ws_accepts; do
        if [ $SECONDS -ge $deadline ]; then
            log "Web-STOMP did not accept within ${START_TIMEOUT}s; last log lines:"
            tail -n 30 "$DIR/log/stdout.log" >&2 || true
            stop
            exit 1
        fi
        sleep 1
    done
    local vhost
    for vhost in ${STOMPEDE_RABBITMQ_VHOSTS:-}; do
        timeout 60 "$BIN/rabbitmqctl" -n "$NODE" add_vhost "$vhost" >/dev/null
        timeout 60 "$BIN/rabbitmqctl" -n "$NODE" set_permissions -p "$vhost" guest '.*' '.*' '.*' \
            >/dev/null
    done
    echo "ws://127.0.0.1:$WS_PORT/ws"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
