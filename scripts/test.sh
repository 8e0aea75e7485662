#!/usr/bin/env bash
# The one test command (see README.md). Installs what the tests need on a fresh machine
# (Python venv with stomp.py and kosoku, npm packages, Debian's chromium and rabbitmq-server),
# then runs: format and
# lint checks, every Rust test, the end-to-end suites against the real binary, the SockJS
# protocol and WebSocket conformance suites against the SockJS test server, and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "client interop: stompede-client against RabbitMQ Web-STOMP (Debian's rabbitmq-server)"
rabbitmq_ws=$(bash scripts/rabbitmq.sh start)
trap 'bash scripts/rabbitmq.sh stop || true' EXIT
STOMPEDE_RABBITMQ_WS="$rabbitmq_ws" cargo test -p stompede-client --test rabbitmq --locked
bash scripts/rabbitmq.sh stop
trap - EXIT

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked

step "end-to-end (stomp.py, @stomp/stompjs) against the real binary"
cargo build -p stompede --locked
STOMPEDE_BIN="$PWD/target/debug/stompede" bash scripts/test-e2e.sh

step "SockJS protocol and Autobahn WebSocket conformance (SockJS test server)"
cargo build -p stompede-server --example sockjs_test_server --locked
SOCKJS_TEST_SERVER="$PWD/target/debug/examples/sockjs_test_server" \
    STOMPEDE_BIN="$PWD/target/debug/stompede" bash scripts/test-sockjs.sh

step "browser: sockjs-client + @stomp/stompjs in headless Chromium, every SockJS transport"
STOMPEDE_BIN="$PWD/target/debug/stompede" bash scripts/test-browser.sh
